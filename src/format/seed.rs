//! The eleven values the seed tool printed for each message, taken from a [`Record`] and
//! written through an [`Emit`] implementation (text token, JSON string, YAML scalar).
//! Where each comes from, and `-` for absent values, is documented in `docs/formats.md`.
#![forbid(unsafe_code)]

use crate::dns::{self, write_u64};
use crate::dnstap;
use crate::format::escape;
use crate::record::Record;

/// The absent value in every seed format.
pub const ABSENT: &[u8] = b"-";

/// How one format writes the three kinds of seed value.
pub trait Emit {
    /// A string from arbitrary bytes (escaped as the format needs).
    fn bytes(v: &[u8], out: &mut Vec<u8>);
    /// A string whose bytes `f` writes and that needs no escaping at all (mnemonics,
    /// numbers written as strings, addresses, timestamps, `-`). Default: double-quoted,
    /// as JSON and YAML write it.
    #[inline]
    fn ascii(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
        out.push(b'"');
        f(out);
        out.push(b'"');
    }
    /// A DNS name in presentation form. Default: double-quoted, with the escaping that is
    /// valid in both JSON and YAML double-quoted strings.
    #[inline]
    fn name(name: &dns::Name<'_>, out: &mut Vec<u8>) {
        out.push(b'"');
        crate::format::escape::write_name_quoted(name, out);
        out.push(b'"');
    }
    /// A number (bare in every format).
    #[inline]
    fn number(v: u64, out: &mut Vec<u8>) {
        write_u64(v, out);
    }
}

/// Either a `&'static` name or the number itself, written as a string.
#[inline]
fn name_or_number(name: Option<&'static str>, n: u64, out: &mut Vec<u8>) {
    match name {
        Some(s) => out.extend_from_slice(s.as_bytes()),
        None => write_u64(n, out),
    }
}

/// The parsed DNS message, when the record has one that parsed.
#[inline]
fn dns_view<'r, 'a>(rec: &'r Record<'a>) -> Option<&'r dns::MessageView<'a>> {
    match &rec.dns {
        Some(Ok(m)) => Some(m),
        _ => None,
    }
}

/// The DNS header of the message the record is about: the parsed view's, or, when the view
/// failed past the header (a truncated or malformed question), the 12 header bytes read on
/// their own, so id, flags, rcode and counts survive a broken question.
#[inline]
pub fn header(rec: &Record<'_>) -> Option<dns::Header> {
    match &rec.dns {
        Some(Ok(m)) => Some(m.header),
        Some(Err(_)) => dns::Header::parse(rec.dns_message()?).ok(),
        None => None,
    }
}

/// The raw DNS message bytes the record is about (query for query types).
#[inline]
pub fn dns_bytes<'a>(rec: &Record<'a>) -> Option<&'a [u8]> {
    let query = rec.message_type.map(dnstap::is_query_type).unwrap_or(true);
    if query {
        rec.query_message.or(rec.response_message)
    } else {
        rec.response_message.or(rec.query_message)
    }
}

/// `timestamp`: [`Record::timestamp`] in UTC, microseconds.
pub fn timestamp<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    match rec.timestamp() {
        Some(ts) => E::ascii(out, |o| escape::write_timestamp(ts, b'T', o)),
        None => E::ascii(out, |o| o.extend_from_slice(ABSENT)),
    }
}

/// `identity`: `Dnstap.identity`; absent or empty is `-`.
pub fn identity<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    match rec.identity {
        Some(id) if !id.is_empty() => E::bytes(id, out),
        _ => E::ascii(out, |o| o.extend_from_slice(ABSENT)),
    }
}

/// `message`: the `Message.type` name, the number when unknown.
pub fn message<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    E::ascii(out, |o| match rec.message_type {
        Some(t) => name_or_number(dnstap::message_type_name(t), u64::from(t), o),
        None => o.extend_from_slice(ABSENT),
    })
}

/// The rcode shown for a query that got no response in time (the latency transform's
/// `unanswered-queries`, as DNS-collector does).
pub const TIMEOUT: &[u8] = b"TIMEOUT";

/// `code`: the 4-bit header rcode's name (the number when unknown); `-` without a
/// readable DNS header (a message whose question is broken still has one); `TIMEOUT` for
/// an unanswered query. The EDNS extended rcode is shown by the full formats only: the
/// seed's line showed the header rcode, and finding the OPT record means walking every
/// record of the message.
pub fn rcode<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    if rec.enrich.is_some_and(|e| e.timeout) {
        // A query the latency transform saw go unanswered.
        return E::ascii(out, |o| o.extend_from_slice(TIMEOUT));
    }
    E::ascii(out, |o| match header(rec) {
        Some(h) => {
            let r = h.rcode();
            name_or_number(dns::types::rcode_name(u16::from(r)), u64::from(r), o)
        }
        None => o.extend_from_slice(ABSENT),
    })
}

/// `source-ip`: `Message.query_address`, an IPv4-mapped IPv6 address shown as IPv4.
pub fn source_ip<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    E::ascii(out, |o| match rec.query_address {
        Some(a) => escape::write_ip(a, true, o),
        None => o.extend_from_slice(ABSENT),
    })
}

/// `source-port`: `Message.query_port`; absent or 0 is `-` (a string in JSON and YAML).
pub fn source_port<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    match rec.query_port {
        Some(p) if p != 0 => E::number(u64::from(p), out),
        _ => E::ascii(out, |o| o.extend_from_slice(ABSENT)),
    }
}

/// `protocol` (JSON/YAML) / the family field of the line: `IP4` or `IP6`.
pub fn family<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    E::ascii(out, |o| match rec.socket_family {
        Some(f) => name_or_number(dnstap::family_label(f), u64::from(f), o),
        None => o.extend_from_slice(ABSENT),
    })
}

/// `transport`: UDP, TCP, DOT, DOH, DNSCryptUDP, DNSCryptTCP, DOQ.
pub fn transport<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    E::ascii(out, |o| match rec.socket_protocol {
        Some(p) => name_or_number(dnstap::protocol_label(p), u64::from(p), o),
        None => o.extend_from_slice(ABSENT),
    })
}

/// `length`: size in bytes of the DNS message the record is about.
pub fn length<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    match dns_bytes(rec) {
        Some(m) => E::number(m.len() as u64, out),
        None => E::ascii(out, |o| o.extend_from_slice(ABSENT)),
    }
}

/// `query-name`: the first question's name, dnspython form; `-` without one.
pub fn qname<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    match dns_view(rec).and_then(|m| m.question.as_ref()) {
        Some(q) => E::name(&q.name, out),
        None => E::ascii(out, |o| o.extend_from_slice(ABSENT)),
    }
}

/// `query-type`: the first question's type mnemonic, `TYPE<n>` when unknown.
pub fn qtype<E: Emit>(rec: &Record<'_>, out: &mut Vec<u8>) {
    E::ascii(out, |o| {
        match dns_view(rec).and_then(|m| m.question.as_ref()) {
            Some(q) => dns::types::write_rtype(q.qtype, o),
            None => o.extend_from_slice(ABSENT),
        }
    })
}

/// Hand-built records shared by the unit tests of the seed formats.
#[cfg(test)]
pub mod fixtures {
    use crate::dns;
    use crate::record::{Record, Timestamp};

    /// A DNS message: header with `flags`, one question (`labels`, `qtype`, class IN), and an
    /// empty OPT record when `edns`.
    pub fn dns_msg(flags: u16, labels: &[&[u8]], qtype: u16, edns: bool) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
        for l in labels {
            m.push(l.len() as u8);
            m.extend_from_slice(l);
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        if edns {
            m.extend_from_slice(&[0, 0, 41, 0x02, 0, 0, 0, 0, 0, 0, 0]);
        }
        m
    }

    /// The seed's own example: RESOLVER_QUERY, no address or port, 43 bytes, ns2.google.com. A
    pub fn seed_query(msg: &[u8]) -> Record<'_> {
        Record {
            identity: Some(b"dev-centos8"),
            kind: Some(1),
            message_type: Some(3),
            socket_family: Some(1),
            socket_protocol: Some(1),
            query_time: Some(Timestamp {
                sec: 1_600_282_313,
                nsec: 547_352_999,
            }),
            query_message: Some(msg),
            dns: Some(dns::MessageView::parse(msg)),
            ..Record::default()
        }
    }

    pub fn google_query() -> Vec<u8> {
        dns_msg(0x0100, &[b"ns2", b"google", b"com"], 1, true)
    }

    /// CLIENT_RESPONSE over IPv6/TCP, NXDOMAIN for an AAAA question.
    pub fn v6_response(msg: &[u8]) -> Record<'_> {
        Record {
            identity: Some(b"lab-unbound"),
            kind: Some(1),
            message_type: Some(6),
            socket_family: Some(2),
            socket_protocol: Some(2),
            query_address: Some(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            response_address: Some(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            query_port: Some(53_000),
            response_port: Some(53),
            query_time: Some(Timestamp {
                sec: 1_700_000_000,
                nsec: 0,
            }),
            response_time: Some(Timestamp {
                sec: 1_700_000_001,
                nsec: 123_456_789,
            }),
            response_message: Some(msg),
            dns: Some(dns::MessageView::parse(msg)),
            ..Record::default()
        }
    }

    pub fn nxdomain_aaaa() -> Vec<u8> {
        dns_msg(0x8183, &[b"nope", b"example", b"test"], 28, false)
    }

    /// Unknown numbers everywhere, a v4-mapped address, an identity that needs escaping,
    /// a name with special bytes.
    pub fn odd(msg: &[u8]) -> Record<'_> {
        Record {
            identity: Some(b"my \"lab\"\n"),
            message_type: Some(99),
            socket_family: Some(7),
            socket_protocol: Some(42),
            query_address: Some(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]),
            query_port: Some(0),
            query_time: Some(Timestamp { sec: 0, nsec: 0 }),
            query_message: Some(msg),
            dns: Some(dns::MessageView::parse(msg)),
            ..Record::default()
        }
    }

    pub fn odd_msg() -> Vec<u8> {
        dns_msg(0x000d, &[b"a\"b", b"c\\d e"], 65_280, false)
    }
}

#[cfg(test)]
mod tests {
    use super::{fixtures, Emit};
    use crate::dns;

    /// Values as they are (the formats' own escaping is tested with them).
    struct Plain;
    impl Emit for Plain {
        fn bytes(v: &[u8], out: &mut Vec<u8>) {
            out.extend_from_slice(v);
        }
    }

    fn value(
        f: fn(&crate::record::Record<'_>, &mut Vec<u8>),
        rec: &crate::record::Record<'_>,
    ) -> String {
        let mut v = Vec::new();
        f(rec, &mut v);
        String::from_utf8(v).unwrap()
    }

    /// The NXDOMAIN response with its question cut in the middle of the name.
    fn broken_question() -> Vec<u8> {
        let mut m = fixtures::nxdomain_aaaa();
        m.truncate(12 + 6);
        m
    }

    #[test]
    fn truncated_question_keeps_header_rcode() {
        let msg = broken_question();
        let mut rec = fixtures::v6_response(&msg);
        rec.dns = Some(dns::MessageView::parse(&msg));
        assert!(matches!(rec.dns, Some(Err(_))));
        assert_eq!(super::header(&rec).map(|h| h.id), Some(0x1234));
        assert_eq!(value(super::rcode::<Plain>, &rec), "\"NXDOMAIN\"");
        assert_eq!(value(super::qname::<Plain>, &rec), "\"-\"");
    }

    #[test]
    fn shorter_than_a_header_has_no_rcode() {
        let msg = [0x12u8, 0x34, 0x81];
        let mut rec = fixtures::v6_response(&msg);
        rec.dns = Some(dns::MessageView::parse(&msg));
        assert_eq!(super::header(&rec), None);
        assert_eq!(value(super::rcode::<Plain>, &rec), "\"-\"");
    }
}
