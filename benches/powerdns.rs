//! The PowerDNS protobuf converter (`powerdns::convert`: one PBDNSMessage → one dnstap
//! payload) on real traffic: every CLIENT_* and RESOLVER_* message of the lab's unbound
//! capture, rebuilt as the PBDNSMessage pdns-recursor would send for it (type, family,
//! protocol, addresses, ports, time, id, question; responses with their rcode and one A
//! record). Each iteration converts every message once into one reused buffer, as the input
//! does; throughput is in messages. ns/msg = time per iteration / number of messages.
//!
//! The capture is the repository's fixture `lab/captures/unbound-unix.fstrm`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnstap_receiver::dnstap::{DnstapView, MessageView};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use dnstap_receiver::powerdns::{convert, Converted};

fn payloads() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/captures/unbound-unix.fstrm");
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = Decoder::new(DecoderConfig::default());
    let (mut reply, mut out, mut pos) = (Vec::new(), Vec::new(), 0);
    loop {
        let rest = &file[pos..];
        let step = decoder.decode(rest, &mut reply).expect("valid capture");
        pos += step.consumed;
        match step.event {
            Event::Data { payload } => out.push(rest[payload].to_vec()),
            Event::Control => {}
            Event::Finished | Event::NeedMore => break,
        }
    }
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, n: u64, v: u64) {
    varint(out, n << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, n: u64, b: &[u8]) {
    varint(out, (n << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The question's name in presentation form and its type (plain labels only).
fn question(dns: &[u8]) -> Option<(String, u16)> {
    let (mut at, mut name) = (12, String::new());
    loop {
        let len = usize::from(*dns.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        name.push_str(std::str::from_utf8(dns.get(at..at + len)?).ok()?);
        name.push('.');
        at += len;
    }
    let t = dns.get(at..at + 2)?;
    Some((name, u16::from_be_bytes([t[0], t[1]])))
}

/// The PBDNSMessage PowerDNS would send for this dnstap message.
fn pbdns(m: &MessageView<'_>) -> Option<Vec<u8>> {
    let (kind, response) = match m.message_type? {
        5 => (1, false),
        6 => (2, true),
        3 => (3, false),
        4 => (4, true),
        _ => return None,
    };
    let dns = if response {
        m.response_message
    } else {
        m.query_message
    }?;
    let (name, qtype) = question(dns)?;
    let mut out = Vec::new();
    field_varint(&mut out, 1, kind);
    field_bytes(&mut out, 2, &[0x5a; 16]);
    field_bytes(&mut out, 3, b"bench-recursor");
    field_varint(&mut out, 4, u64::from(m.socket_family?));
    field_varint(&mut out, 5, u64::from(m.socket_protocol?));
    field_bytes(&mut out, 6, m.query_address?);
    field_bytes(&mut out, 7, m.response_address?);
    field_varint(&mut out, 8, dns.len() as u64);
    field_varint(&mut out, 9, m.query_time_sec.or(m.response_time_sec)?);
    field_varint(&mut out, 10, 123_456);
    field_varint(
        &mut out,
        11,
        u64::from(u16::from_be_bytes([dns[0], dns[1]])),
    );
    let mut q = Vec::new();
    field_bytes(&mut q, 1, name.as_bytes());
    field_varint(&mut q, 2, u64::from(qtype));
    field_varint(&mut q, 3, 1);
    field_bytes(&mut out, 12, &q);
    if response {
        let mut r = Vec::new();
        field_varint(&mut r, 1, u64::from(dns[3] & 0xf));
        let mut rr = Vec::new();
        field_bytes(&mut rr, 1, name.as_bytes());
        field_varint(&mut rr, 2, 1);
        field_varint(&mut rr, 3, 1);
        field_varint(&mut rr, 4, 300);
        field_bytes(&mut rr, 5, &[192, 0, 2, 1]);
        field_bytes(&mut r, 2, &rr);
        field_varint(&mut r, 5, m.query_time_sec.unwrap_or(0));
        field_varint(&mut r, 6, 1);
        field_bytes(&mut out, 13, &r);
    }
    field_varint(&mut out, 20, u64::from(m.query_port?));
    field_varint(&mut out, 21, u64::from(m.response_port?));
    Some(out)
}

fn bench(c: &mut Criterion) {
    let messages: Vec<Vec<u8>> = payloads()
        .iter()
        .filter_map(|p| {
            let view = DnstapView::parse(p).ok()?;
            pbdns(&view.message()?.ok()?)
        })
        .collect();
    assert!(messages.len() > 1000, "{} messages", messages.len());
    let mut out = vec![0u8; 1 << 16];
    let mut g = c.benchmark_group("powerdns/msgs");
    g.throughput(Throughput::Elements(messages.len() as u64));
    g.bench_function("convert", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for m in &messages {
                match convert(black_box(m), &mut out) {
                    Ok(Converted::Written(n)) => total += n,
                    other => panic!("{other:?}"),
                }
            }
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
