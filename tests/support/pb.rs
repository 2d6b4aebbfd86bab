//! Protocol Buffers written by hand, independently of the receiver's encoder and decoder:
//! the wire primitives (varint, tagged fields) the tests build dnstap payloads from, and
//! one ready payload, a client query, for the tests that only need many distinct records.

/// A varint (base 128, least significant group first).
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Field `field` as a varint (wire type 0).
pub fn field_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(v, out);
}

/// Field `field` as length-delimited bytes (wire type 2).
pub fn field_bytes(field: u64, v: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

/// Field `field` as a little-endian fixed32 (wire type 5).
pub fn field_fixed32(field: u64, v: u32, out: &mut Vec<u8>) {
    varint(field << 3 | 5, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A dnstap CLIENT_QUERY for `q{i}.{zone}.test. IN A` (DNS id `i`'s low 16 bits), one
/// distinct record per `i`:
///
/// ```text
///  Dnstap   { identity(1), message(14) = Message, type(15) = MESSAGE }
///  Message  { type(1) = CLIENT_QUERY, socket_family(2) = INET, socket_protocol(3) = UDP,
///             query_address(4) = address, query_port(6) = 1024 + i % 60000,
///             query_time_sec(8) = 1764000000 + i / 1000, [query_time_nsec(9) = nsec],
///             query_message(10) = the DNS query }
/// ```
pub fn client_query(
    i: u64,
    identity: &str,
    zone: &str,
    address: [u8; 4],
    nsec: Option<u32>,
) -> Vec<u8> {
    let mut dns = vec![(i >> 8) as u8, i as u8, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in [format!("q{i}").as_str(), zone, "test"] {
        dns.push(label.len() as u8);
        dns.extend_from_slice(label.as_bytes());
    }
    dns.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut m = Vec::new();
    field_varint(1, 5, &mut m);
    field_varint(2, 1, &mut m);
    field_varint(3, 1, &mut m);
    field_bytes(4, &address, &mut m);
    field_varint(6, 1024 + (i % 60000), &mut m);
    field_varint(8, 1_764_000_000 + i / 1000, &mut m);
    if let Some(ns) = nsec {
        field_fixed32(9, ns, &mut m);
    }
    field_bytes(10, &dns, &mut m);
    let mut d = Vec::new();
    field_bytes(1, identity.as_bytes(), &mut d);
    field_bytes(14, &m, &mut d);
    field_varint(15, 1, &mut d);
    d
}
