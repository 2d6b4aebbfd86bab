//! `dr4-json`: the JSON line of python `dnstap_receiver` 4.7 (`output.stdout.format: json`),
//! its seventeen keys in its order, with `json.dumps` separators (`", "`, `": "`) and its
//! ASCII-only escaping:
//!
//! ```text
//! {"identity": "dev-centos8", "qname": "ns2.google.com.", "rrtype": "A", "query-ip": "-", "query-port": "-", "response-ip": "-", "response-port": "-", "latency": "-", "message": "RESOLVER_QUERY", "family": "INET", "protocol": "UDP", "length": 43, "timestamp": 1600282313.547353, "type": "query", "rcode": "NOERROR", "id": 4660, "datetime": "2020-09-16T18:51:53.547353+00:00"}
//! ```
//!
//! Where 4.7 is wrong we are right, and say so in `docs/migrating.md`: rcode 4 is `NOTIMP`
//! (4.7: `NOIMP`), type 52 `TLSA` (4.7: `TSLA`), unknown types `TYPE<n>` (4.7: `-`),
//! names in presentation form with `\`-escapes (4.7 joins raw labels and drops bytes that
//! are not UTF-8), a cut question `-` (4.7: the bytes it read, type `NONE`), and records
//! 4.7 drops (DNS message under 12 bytes, identity not UTF-8, unknown message type) are
//! printed. `latency` is `-` until the latency transform fills [`Extras::latency_ns`]
//! (4.7 matches queries to responses itself and rounds to milliseconds).
#![forbid(unsafe_code)]

use std::io::Write;

use crate::dns;
use crate::dnstap;
use crate::format::dnscollector::Extras;
use crate::format::escape;
use crate::format::seed;
use crate::record::{Record, Timestamp};

/// The body of a JSON string as Python's `json.dumps` writes it (`ensure_ascii`): printable
/// ASCII as it is, `"` `\` and `\n` `\r` `\t` `\b` `\f` escaped, everything else `\uXXXX`
/// (UTF-16, surrogate pairs above U+FFFF); bytes that are not UTF-8 become U+FFFD.
pub fn write_py_json_body(b: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let u = |unit: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 15)]);
        }
    };
    if b.iter()
        .all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        out.extend_from_slice(b);
        return;
    }
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                ' '..='~' => out.push(ch as u8),
                _ => {
                    let mut units = [0u16; 2];
                    for &unit in ch.encode_utf16(&mut units).iter() {
                        u(unit, out);
                    }
                }
            }
        }
        if !chunk.invalid().is_empty() {
            u(0xfffd, out);
        }
    }
}

fn py_str(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    write_py_json_body(b, out);
    out.push(b'"');
}

/// A float as Python's `repr`: the shortest decimal that reads back the same, with `.0`
/// on whole numbers and an exponent below 1e-4 or from 1e16.
pub fn write_py_float(x: f64, out: &mut Vec<u8>) {
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{x:e}");
        // Rust writes `1e-9`, Python `1e-09` (and `1e+16`).
        if let Some(e) = out[start..].iter().position(|&c| c == b'e') {
            let at = start + e + 1;
            let neg = out.get(at) == Some(&b'-');
            let digits = out.len() - at - usize::from(neg);
            if !neg {
                out.insert(at, b'+');
            }
            if digits < 2 {
                let d = at + 1;
                out.insert(d, b'0');
            }
        }
        return;
    }
    let start = out.len();
    let _ = write!(out, "{x}");
    if !out[start..].contains(&b'.') {
        out.extend_from_slice(b".0");
    }
}

/// Seconds as 4.7 computes them: `sec + nsec * 1e-9` in floating point.
fn seconds(ts: Timestamp) -> f64 {
    ts.sec as f64 + f64::from(ts.nsec) * 1e-9
}

/// `datetime.fromtimestamp(t, tz=utc).isoformat()`: microseconds rounded half to even from
/// the float, the fraction left out when it is zero.
pub fn write_py_datetime(t: f64, out: &mut Vec<u8>) {
    let whole = t.trunc();
    let mut us = ((t - whole) * 1e6).round_ties_even();
    let mut sec = whole;
    if us >= 1e6 {
        us -= 1e6;
        sec += 1.0;
    }
    let ts = Timestamp {
        sec: sec.max(0.0) as u64,
        nsec: (us as u32).saturating_mul(1000),
    };
    let start = out.len();
    escape::write_timestamp(ts, b'T', out);
    if us == 0.0 {
        // Drop ".000000" before "+00:00".
        let dot = out.len() - b".000000+00:00".len();
        if out.get(dot) == Some(&b'.') && dot > start {
            out.drain(dot..dot + 7);
        }
    }
}

fn addr(family: Option<u32>, a: Option<&[u8]>, out: &mut Vec<u8>) {
    match (family, a) {
        (Some(1), Some(a)) if a.len() == 16 => {
            // 4.7 keeps the last four bytes of a 16-byte address sent as INET (CoreDNS).
            escape::write_ip(&a[12..], false, out);
        }
        (Some(1), Some(a)) if a.len() == 4 => escape::write_ip(a, false, out),
        (Some(2), Some(a)) if a.len() == 16 => escape::write_ip(a, false, out),
        _ => out.extend_from_slice(seed::ABSENT),
    }
}

fn port(p: Option<u32>, out: &mut Vec<u8>) {
    match p {
        Some(p) if p > 0 => dns::write_u64(p.into(), out),
        _ => out.extend_from_slice(b"\"-\""),
    }
}

/// Appends one JSON line.
pub fn write_record(rec: &Record<'_>, ex: &Extras, out: &mut Vec<u8>) {
    let query = rec.message_type.is_none_or(dnstap::is_query_type);
    let (msg, time) = if query {
        (rec.query_message, rec.query_time)
    } else {
        (rec.response_message, rec.response_time)
    };
    let view = match &rec.dns {
        Some(Ok(v)) => Some(v),
        _ => None,
    };
    let question = view.and_then(|v| v.question.as_ref());

    out.extend_from_slice(b"{\"identity\": ");
    match rec.identity {
        Some(id) if !id.is_empty() => py_str(id, out),
        _ => out.extend_from_slice(b"\"-\""),
    }
    out.extend_from_slice(b", \"qname\": \"");
    match question {
        Some(q) => {
            let start = out.len();
            q.name.write_presentation(out);
            // Presentation form is ASCII; only `"` and `\` need JSON escapes.
            escape::escape_quotes_since(out, start);
        }
        None => out.extend_from_slice(seed::ABSENT),
    }
    out.extend_from_slice(b"\", \"rrtype\": \"");
    match question {
        Some(q) => dns::types::write_rtype(q.qtype, out),
        None => out.extend_from_slice(seed::ABSENT),
    }
    out.extend_from_slice(b"\", \"query-ip\": \"");
    addr(rec.socket_family, rec.query_address, out);
    out.extend_from_slice(b"\", \"query-port\": ");
    port(rec.query_port, out);
    out.extend_from_slice(b", \"response-ip\": \"");
    addr(rec.socket_family, rec.response_address, out);
    out.extend_from_slice(b"\", \"response-port\": ");
    port(rec.response_port, out);
    out.extend_from_slice(b", \"latency\": ");
    match ex.latency_ns {
        Some(ns) => write_py_float((ns as f64 / 1e9 * 1e3).round_ties_even() / 1e3, out),
        None => out.extend_from_slice(b"\"-\""),
    }
    out.extend_from_slice(b", \"message\": \"");
    let name = rec.message_type.and_then(dnstap::message_type_name);
    out.extend_from_slice(name.unwrap_or("-").as_bytes());
    out.extend_from_slice(b"\", \"family\": \"");
    let fam = rec.socket_family.and_then(dnstap::family_name);
    out.extend_from_slice(fam.unwrap_or("-").as_bytes());
    out.extend_from_slice(b"\", \"protocol\": \"");
    let proto = rec.socket_protocol.and_then(dnstap::protocol_name);
    out.extend_from_slice(proto.unwrap_or("-").as_bytes());
    out.extend_from_slice(b"\", \"length\": ");
    dns::write_u64(msg.map_or(0, |m| m.len() as u64), out);
    let t = seconds(time.unwrap_or(Timestamp { sec: 0, nsec: 0 }));
    out.extend_from_slice(b", \"timestamp\": ");
    write_py_float(t, out);
    out.extend_from_slice(if query {
        b", \"type\": \"query\", \"rcode\": "
    } else {
        b", \"type\": \"response\", \"rcode\": "
    });
    match seed::header(rec) {
        Some(h) => {
            out.push(b'"');
            let r = u16::from(h.rcode());
            match dns::types::rcode_name(r) {
                // A query the latency transform reports unanswered.
                _ if ex.timeout => out.extend_from_slice(seed::TIMEOUT),
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => dns::write_u64(r.into(), out),
            }
            out.extend_from_slice(b"\", \"id\": ");
            dns::write_u64(h.id.into(), out);
        }
        None => out.extend_from_slice(b"\"-\", \"id\": \"-\""),
    }
    out.extend_from_slice(b", \"datetime\": \"");
    write_py_datetime(t, out);
    out.extend_from_slice(b"\"}\n");
}

#[cfg(test)]
mod tests {
    use super::{write_py_datetime, write_py_float, write_py_json_body};

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    /// Expected values are what CPython 3.11 prints (`repr`, `isoformat`, `json.dumps`).
    #[test]
    fn python_float_repr() {
        assert_eq!(s(|o| write_py_float(0.0, o)), "0.0");
        assert_eq!(s(|o| write_py_float(1e-9, o)), "1e-09");
        assert_eq!(s(|o| write_py_float(1e16, o)), "1e+16");
        assert_eq!(s(|o| write_py_float(12.0, o)), "12.0");
        let t = 1_600_282_313f64 + 547_352_999f64 * 1e-9;
        assert_eq!(s(|o| write_py_float(t, o)), "1600282313.547353");
    }

    #[test]
    fn python_isoformat_rounds_microseconds_half_even() {
        let t = 1_600_282_313f64 + 547_352_999f64 * 1e-9;
        assert_eq!(
            s(|o| write_py_datetime(t, o)),
            "2020-09-16T18:51:53.547353+00:00"
        );
        assert_eq!(
            s(|o| write_py_datetime(1_600_282_313.0, o)),
            "2020-09-16T18:51:53+00:00"
        );
        let t = 1_600_282_313f64 + 999_999_900f64 * 1e-9;
        assert_eq!(s(|o| write_py_datetime(t, o)), "2020-09-16T18:51:54+00:00");
    }

    #[test]
    fn python_json_escapes() {
        let got = s(|o| write_py_json_body("é\u{7f}😀\"\\\n\u{1}".as_bytes(), o));
        assert_eq!(got, "\\u00e9\\u007f\\ud83d\\ude00\\\"\\\\\\n\\u0001");
        assert_eq!(s(|o| write_py_json_body(b"a\xffb", o)), "a\\ufffdb");
    }
}
