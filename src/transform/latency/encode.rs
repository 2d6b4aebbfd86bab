//! A query's record written back as a dnstap protobuf: what the latency table keeps of a
//! pending query so that, when it times out, the `TIMEOUT` record can be printed by every
//! format and sent by the raw outputs. The writer hands the transforms the decoded record,
//! not its payload, so the record's fields are encoded again (every field `Record` holds;
//! unknown fields of the original are not kept).
//!
//! ```text
//!  Dnstap { identity=1 version=2 extra=3 message=14 { type=1 socket_family=2
//!           socket_protocol=3 query_address=4 response_address=5 query_port=6
//!           response_port=7 query_time_sec=8 query_time_nsec=9 (fixed32)
//!           query_message=10 query_zone=11 response_time_sec=12
//!           response_time_nsec=13 (fixed32) response_message=14 policy=15 { type=1
//!           rule=2 action=3 match=4 value=5 } http_protocol=16 } type=15 }
//! ```
//!
//! Appends to a buffer the caller reuses (no allocation once it has grown).
#![forbid(unsafe_code)]

use crate::record::{Policy, Record, Timestamp};

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn key(field: u32, wire_type: u32, out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | wire_type), out);
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

fn uint(field: u32, v: Option<impl Into<u64>>, out: &mut Vec<u8>) {
    if let Some(v) = v {
        key(field, 0, out);
        varint(v.into(), out);
    }
}

fn uint_len(field: u32, v: Option<impl Into<u64>>) -> usize {
    v.map_or(0, |v| key_len(field) + varint_len(v.into()))
}

fn bytes(field: u32, v: Option<&[u8]>, out: &mut Vec<u8>) {
    if let Some(v) = v {
        key(field, 2, out);
        varint(v.len() as u64, out);
        out.extend_from_slice(v);
    }
}

fn bytes_len(field: u32, v: Option<&[u8]>) -> usize {
    v.map_or(0, |v| key_len(field) + varint_len(v.len() as u64) + v.len())
}

fn time(sec_field: u32, t: Option<Timestamp>, out: &mut Vec<u8>) {
    if let Some(t) = t {
        uint(sec_field, Some(t.sec), out);
        key(sec_field + 1, 5, out);
        out.extend_from_slice(&t.nsec.to_le_bytes());
    }
}

fn time_len(sec_field: u32, t: Option<Timestamp>) -> usize {
    t.map_or(0, |t| {
        uint_len(sec_field, Some(t.sec)) + key_len(sec_field + 1) + 4
    })
}

fn policy_len(p: &Policy<'_>) -> usize {
    bytes_len(1, p.kind)
        + bytes_len(2, p.rule)
        + uint_len(3, p.action)
        + uint_len(4, p.matched)
        + bytes_len(5, p.value)
}

fn message_len(r: &Record<'_>) -> usize {
    uint_len(1, r.message_type)
        + uint_len(2, r.socket_family)
        + uint_len(3, r.socket_protocol)
        + bytes_len(4, r.query_address)
        + bytes_len(5, r.response_address)
        + uint_len(6, r.query_port)
        + uint_len(7, r.response_port)
        + time_len(8, r.query_time)
        + bytes_len(10, r.query_message)
        + bytes_len(11, r.query_zone)
        + time_len(12, r.response_time)
        + bytes_len(14, r.response_message)
        + r.policy.as_ref().map_or(0, |p| {
            let n = policy_len(p);
            key_len(15) + varint_len(n as u64) + n
        })
        + uint_len(16, r.http_protocol)
}

/// Appends `r` as a dnstap payload to `out`.
pub fn write(r: &Record<'_>, out: &mut Vec<u8>) {
    bytes(1, r.identity, out);
    bytes(2, r.version, out);
    bytes(3, r.extra, out);
    key(14, 2, out);
    varint(message_len(r) as u64, out);
    uint(1, r.message_type, out);
    uint(2, r.socket_family, out);
    uint(3, r.socket_protocol, out);
    bytes(4, r.query_address, out);
    bytes(5, r.response_address, out);
    uint(6, r.query_port, out);
    uint(7, r.response_port, out);
    time(8, r.query_time, out);
    bytes(10, r.query_message, out);
    bytes(11, r.query_zone, out);
    time(12, r.response_time, out);
    bytes(14, r.response_message, out);
    if let Some(p) = &r.policy {
        key(15, 2, out);
        varint(policy_len(p) as u64, out);
        bytes(1, p.kind, out);
        bytes(2, p.rule, out);
        uint(3, p.action, out);
        uint(4, p.matched, out);
        bytes(5, p.value, out);
    }
    uint(16, r.http_protocol, out);
    uint(15, r.kind, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_agree_with_what_is_written() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut b = Vec::new();
            varint(v, &mut b);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
        let mut b = Vec::new();
        key(16, 0, &mut b);
        assert_eq!(b.len(), key_len(16));
    }

    #[test]
    fn a_record_reads_back_the_same() {
        let q: &[u8] = &[0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
        let r = Record {
            identity: Some(b"ns1"),
            version: Some(b"v"),
            extra: Some(&[0xff; 200]),
            kind: Some(1),
            message_type: Some(5),
            socket_family: Some(2),
            socket_protocol: Some(1),
            query_address: Some(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            response_address: Some(&[192, 0, 2, 1]),
            query_port: Some(65535),
            response_port: Some(53),
            query_time: Some(Timestamp {
                sec: 1_800_000_000,
                nsec: 999_999_999,
            }),
            query_message: Some(q),
            query_zone: Some(b"\x00"),
            policy: Some(Policy {
                kind: Some(b"RPZ"),
                rule: None,
                action: Some(2),
                matched: Some(1),
                value: Some(b"x"),
            }),
            http_protocol: Some(3),
            ..Record::default()
        };
        let mut out = Vec::new();
        write(&r, &mut out);
        let back = Record::decode(&out).unwrap();
        assert_eq!(
            format!("{:?}", back),
            format!("{:?}", Record::parse(&out).unwrap())
        );
        let mut again = Vec::new();
        write(&back, &mut again);
        assert_eq!(out, again);
        assert_eq!(back.identity, r.identity);
        assert_eq!(back.extra, r.extra);
        assert_eq!(back.query_time, r.query_time);
        assert_eq!(back.query_port, r.query_port);
        assert_eq!(back.policy, r.policy);
        assert_eq!(back.http_protocol, r.http_protocol);
        assert_eq!(back.query_message, Some(q));
        assert!(matches!(back.dns, Some(Ok(ref v)) if v.header.id == 7));
    }
}
