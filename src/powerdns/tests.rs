//! Conversion checks: PBDNSMessages built here field by field, converted, and read back
//! with the dnstap views and the `domain` crate's DNS parser (an independent oracle).

use super::wire::Writer;
use super::*;
use crate::dnstap::{DnstapView, MessageView};

/// A PBDNSMessage as a test writes it.
struct Msg<'a> {
    kind: u64,
    qname: &'a [u8],
    qtype: u64,
    rcode: Option<u64>,
    rrs: &'a [(&'a [u8], u64, &'a [u8])],
    policy: Option<(&'a [u8], u64, u64)>,
    v6: bool,
}

fn pb(m: &Msg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 4096];
    let mut w = Writer::new(&mut out);
    w.field_varint(1, m.kind);
    w.field_bytes(2, &[7; 16]);
    w.field_bytes(3, b"dnsdist-test");
    w.field_varint(4, if m.v6 { 2 } else { 1 });
    w.field_varint(5, 1);
    if m.v6 {
        let mut a = [0u8; 16];
        a[15] = 1;
        w.field_bytes(6, &a);
        a[15] = 2;
        w.field_bytes(7, &a);
    } else {
        w.field_bytes(6, &[127, 0, 0, 1]);
        w.field_bytes(7, &[127, 0, 0, 2]);
    }
    w.field_varint(8, 40);
    w.field_varint(9, 1_700_000_000);
    w.field_varint(10, 123_456);
    w.field_varint(11, 0xbeef);
    let q = w.begin_len(12);
    w.field_bytes(1, m.qname);
    w.field_varint(2, m.qtype);
    w.field_varint(3, 1);
    w.end_len(q);
    if m.kind == 2 || m.kind == 4 {
        let r = w.begin_len(13);
        if let Some(rc) = m.rcode {
            w.field_varint(1, rc);
        }
        for (name, t, rdata) in m.rrs {
            let rr = w.begin_len(2);
            w.field_bytes(1, name);
            w.field_varint(2, *t);
            w.field_varint(3, 1);
            w.field_varint(4, 300);
            w.field_bytes(5, rdata);
            w.field_varint(6, 1); // udr: unknown to dnstap, skipped
            w.end_len(rr);
        }
        w.field_bytes(4, b"a-tag");
        w.field_varint(5, 1_699_999_999);
        w.field_varint(6, 5);
        if let Some((rule, ptype, kind)) = m.policy {
            w.field_bytes(3, rule);
            w.field_varint(7, ptype);
            w.field_varint(10, kind);
            w.field_bytes(9, b"hit.example.");
        }
        w.end_len(r);
    }
    w.field_varint(20, 53000);
    w.field_varint(21, 53);
    w.field_varint(99, 1); // a field from a later schema
    let n = w.finish().unwrap();
    out.truncate(n);
    out
}

fn query(kind: u64) -> Msg<'static> {
    Msg {
        kind,
        qname: b"www.example.com.",
        qtype: 28,
        rcode: None,
        rrs: &[],
        policy: None,
        v6: false,
    }
}

fn converted(msg: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 8192];
    match convert(msg, &mut out) {
        Ok(Converted::Written(n)) => out[..n].to_vec(),
        other => panic!("{other:?}"),
    }
}

fn view(payload: &[u8]) -> (DnstapView<'_>, MessageView<'_>) {
    let d = DnstapView::parse(payload).unwrap();
    let m = d.message().unwrap().unwrap();
    (d, m)
}

#[test]
fn a_client_query_becomes_client_query() {
    let bytes = converted(&pb(&query(1)));
    let (d, m) = view(&bytes);
    assert_eq!(d.identity, Some(&b"dnsdist-test"[..]));
    assert_eq!(d.kind, Some(1));
    assert_eq!(m.message_type, Some(5));
    assert_eq!(m.socket_family, Some(1));
    assert_eq!(m.socket_protocol, Some(1));
    assert_eq!(m.query_address, Some(&[127, 0, 0, 1][..]));
    assert_eq!(m.response_address, Some(&[127, 0, 0, 2][..]));
    assert_eq!((m.query_port, m.response_port), (Some(53000), Some(53)));
    assert_eq!(m.query_time_sec, Some(1_700_000_000));
    assert_eq!(m.query_time_nsec, Some(123_456_000));
    assert_eq!(m.response_time_sec, None);
    assert!(m.response_message.is_none());
    let dns = domain::base::Message::from_octets(m.query_message.unwrap()).unwrap();
    assert_eq!(dns.header().id(), 0xbeef);
    assert!(!dns.header().qr());
    let q = dns.sole_question().unwrap();
    assert_eq!(q.qname().to_string(), "www.example.com");
    assert_eq!(q.qtype().to_int(), 28);
}

#[test]
fn every_message_type_maps() {
    for (kind, want) in [(1, 5), (2, 6), (3, 3), (4, 4)] {
        let bytes = converted(&pb(&query(kind)));
        assert_eq!(view(&bytes).1.message_type, Some(want), "PB type {kind}");
    }
    let mut out = [0u8; 512];
    for kind in [0, 5, 99] {
        assert_eq!(
            convert(&pb(&query(kind)), &mut out),
            Ok(Converted::Skipped),
            "PB type {kind}"
        );
    }
}

#[test]
fn a_response_carries_rcode_answers_and_both_times() {
    let m = Msg {
        kind: 2,
        rcode: Some(3),
        rrs: &[
            (b"www.example.com.", 5, b"web.example.net."),
            (b"web.example.net.", 1, &[192, 0, 2, 1]),
            (
                b"web.example.net.",
                28,
                &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            (b"web.example.net.", 16, b"\"text rdata is not parsed\""),
        ],
        v6: true,
        ..query(2)
    };
    let bytes = converted(&pb(&m));
    let (_, v) = view(&bytes);
    assert_eq!(v.message_type, Some(6));
    assert_eq!(v.socket_family, Some(2));
    assert_eq!(v.query_address.map(<[u8]>::len), Some(16));
    assert_eq!(v.response_time_sec, Some(1_700_000_000));
    assert_eq!(v.query_time_sec, Some(1_699_999_999));
    assert_eq!(v.query_time_nsec, Some(5_000));
    let dns = domain::base::Message::from_octets(v.response_message.unwrap()).unwrap();
    assert!(dns.header().qr());
    assert_eq!(dns.header().id(), 0xbeef);
    assert_eq!(dns.header().rcode().to_int(), 3);
    assert_eq!(
        dns.header_counts().ancount(),
        3,
        "the TXT record is dropped"
    );
    let types: Vec<u16> = dns
        .answer()
        .unwrap()
        .map(|r| r.unwrap().rtype().to_int())
        .collect();
    assert_eq!(types, [5, 1, 28]);
    let q = dns.sole_question().unwrap();
    assert_eq!(q.qname().to_string(), "www.example.com");
}

#[test]
fn a_network_error_response_has_no_dns_message() {
    let m = Msg {
        rcode: Some(65536),
        ..query(4)
    };
    let bytes = converted(&pb(&m));
    let (_, v) = view(&bytes);
    assert_eq!(v.message_type, Some(4));
    assert!(v.response_message.is_none() && v.query_message.is_none());
}

#[test]
fn response_tags_become_dnstap_extra() {
    let m = Msg {
        rcode: Some(0),
        ..query(2)
    };
    let bytes = converted(&pb(&m));
    let (d, _) = view(&bytes);
    assert_eq!(d.extra, Some(&b"tags=a-tag"[..]));
    // Several, joined; none: no extra at all (a query carries no response).
    let mut out = vec![0u8; 256];
    let mut w = Writer::new(&mut out);
    w.field_varint(1, 1);
    let r = w.begin_len(13);
    w.field_bytes(4, b"a-tag");
    w.field_bytes(4, b"b2");
    w.end_len(r);
    let n = w.finish().unwrap();
    let bytes = converted(&out[..n]);
    assert_eq!(view(&bytes).0.extra, Some(&b"tags=a-tag,b2"[..]));
    let bytes = converted(&pb(&query(1)));
    assert_eq!(view(&bytes).0.extra, None);
}

#[test]
fn an_applied_policy_becomes_a_dnstap_policy() {
    let m = Msg {
        rcode: Some(3),
        policy: Some((b"rpz.example", 2, 3)),
        ..query(2)
    };
    let bytes = converted(&pb(&m));
    let (_, v) = view(&bytes);
    let p = v.policy().unwrap().unwrap();
    assert_eq!(p.rule, Some(&b"rpz.example"[..]));
    assert_eq!(p.matched, Some(1), "QNAME");
    assert_eq!(p.action, Some(1), "NXDOMAIN");
    assert_eq!(p.value, Some(&b"hit.example."[..]));
}

#[test]
fn names_in_presentation_form_become_wire_names() {
    let mut out = [0u8; 255];
    let cases: [(&[u8], &[u8]); 6] = [
        (b".", b"\0"),
        (b"", b"\0"),
        (b"a.b.", b"\x01a\x01b\0"),
        (b"a.b", b"\x01a\x01b\0"),
        (b"a\\.b.c.", b"\x03a.b\x01c\0"),
        (b"\\032x.", b"\x02 x\0"),
    ];
    for (text, wire) in cases {
        let n = name_to_wire(text, &mut out).unwrap();
        assert_eq!(&out[..n], wire, "{:?}", String::from_utf8_lossy(text));
    }
    for bad in [&b"a..b"[..], b"..", &[b'x'; 64], b"\\999.", b"a\\"] {
        assert_eq!(name_to_wire(bad, &mut out), None, "{bad:?}");
    }
    let long = [b"abcdefghi.".as_slice(); 26].concat();
    assert_eq!(
        name_to_wire(&long, &mut out),
        None,
        "261 bytes in wire form"
    );
}

#[test]
fn a_bad_qname_gives_a_message_without_question() {
    let m = Msg {
        qname: b"a..b",
        ..query(1)
    };
    let bytes = converted(&pb(&m));
    let (_, v) = view(&bytes);
    let dns = domain::base::Message::from_octets(v.query_message.unwrap()).unwrap();
    assert_eq!(dns.header_counts().qdcount(), 0);
}

#[test]
fn malformed_protobuf_is_an_error_and_never_a_panic() {
    let good = pb(&Msg {
        rcode: Some(0),
        rrs: &[(b"x.", 1, &[1, 2, 3, 4])],
        ..query(2)
    });
    let mut out = vec![0u8; 8192];
    // Every truncation either converts (a prefix that ends between fields) or errors.
    for n in 0..good.len() {
        let _ = convert(&good[..n], &mut out);
    }
    assert!(convert(&good[..good.len() - 1], &mut out).is_err());
    assert!(convert(&[0x08], &mut out).is_err(), "truncated varint");
    assert!(convert(&[0x0b, 0], &mut out).is_err(), "group");
}

#[test]
fn a_small_output_is_no_room_not_an_error() {
    let msg = pb(&query(1));
    let need = converted(&msg).len();
    // Nested lengths are reserved 3 bytes each while written (two levels deep at most).
    let mut out = vec![0u8; need + 6];
    assert!(matches!(convert(&msg, &mut out), Ok(Converted::Written(n)) if n == need));
    for short in [0, 1, 10, need - 1] {
        assert_eq!(convert(&msg, &mut out[..short]), Ok(Converted::NoRoom));
    }
}

#[test]
fn frame_len_hint_reads_the_prefix() {
    assert_eq!(frame_len_hint(&[]), None);
    assert_eq!(frame_len_hint(&[1]), None);
    assert_eq!(frame_len_hint(&[1, 2, 3]), Some(2 + 258));
}
