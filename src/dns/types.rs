//! Names of DNS numbers (types, classes, rcodes, opcodes, EDNS option codes and Extended
//! DNS Error codes) as `&'static str`, and writers for the RFC 3597 fallback forms
//! (`TYPE65280`, `CLASS7`). Tables follow the IANA registries; unknown numbers are never
//! an error, they are written as numbers.
#![forbid(unsafe_code)]

pub const A: u16 = 1;
pub const NS: u16 = 2;
pub const CNAME: u16 = 5;
pub const SOA: u16 = 6;
pub const PTR: u16 = 12;
pub const HINFO: u16 = 13;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const SRV: u16 = 33;
pub const DNAME: u16 = 39;
pub const OPT: u16 = 41;
pub const DS: u16 = 43;
pub const RRSIG: u16 = 46;
pub const NSEC: u16 = 47;
pub const DNSKEY: u16 = 48;
pub const NSEC3: u16 = 50;
pub const SVCB: u16 = 64;
pub const HTTPS: u16 = 65;
pub const CAA: u16 = 257;

/// Mnemonic of an RR type, if known ("A", "AAAA", ...).
pub fn rtype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        66 => "DSYNC",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        261 => "RESINFO",
        262 => "WALLET",
        32768 => "TA",
        32769 => "DLV",
        _ => return None,
    })
}

/// Inverse of [`rtype_name`] (ASCII case-insensitive), also accepting `TYPE<n>`.
pub fn rtype_from_name(s: &str) -> Option<u16> {
    if let Some(n) = strip_prefix_ignore_case(s, "TYPE") {
        return n.parse().ok();
    }
    (0..=u16::MAX).find(|&t| rtype_name(t).is_some_and(|m| m.eq_ignore_ascii_case(s)))
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    let rest = s.get(prefix.len()..)?;
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

/// Writes `name` if known, else `prefix` followed by the number.
fn write_or_number(name: Option<&'static str>, prefix: &[u8], n: u64, out: &mut Vec<u8>) {
    match name {
        Some(s) => out.extend_from_slice(s.as_bytes()),
        None => {
            out.extend_from_slice(prefix);
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
    }
}

/// Writes the mnemonic or `TYPE<n>`.
pub fn write_rtype(t: u16, out: &mut Vec<u8>) {
    write_or_number(rtype_name(t), b"TYPE", t.into(), out);
}

/// Mnemonic of an rcode including EDNS extended values ("NOERROR", "BADVERS", ...).
/// 16 is BADVERS (RFC 6891); BADSIG shares the number in TSIG context only.
pub fn rcode_name(rcode: u16) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}

/// Writes the rcode mnemonic or `RCODE<n>`.
pub fn write_rcode(rcode: u16, out: &mut Vec<u8>) {
    write_or_number(rcode_name(rcode), b"RCODE", rcode.into(), out);
}

pub fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        6 => "DSO",
        _ => return None,
    })
}

/// Writes the opcode mnemonic or `OPCODE<n>`.
pub fn write_opcode(op: u8, out: &mut Vec<u8>) {
    write_or_number(opcode_name(op), b"OPCODE", op.into(), out);
}

pub fn class_name(c: u16) -> Option<&'static str> {
    Some(match c {
        1 => "IN",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => return None,
    })
}

/// Writes the class mnemonic or `CLASS<n>` (RFC 3597).
pub fn write_class(c: u16, out: &mut Vec<u8>) {
    write_or_number(class_name(c), b"CLASS", c.into(), out);
}

/// EDNS option code names (IANA "DNS EDNS0 Option Codes").
pub fn edns_option_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "LLQ",
        2 => "UL",
        3 => "NSID",
        5 => "DAU",
        6 => "DHU",
        7 => "N3U",
        8 => "ECS",
        9 => "EXPIRE",
        10 => "COOKIE",
        11 => "KEEPALIVE",
        12 => "PADDING",
        13 => "CHAIN",
        14 => "KEY-TAG",
        15 => "EDE",
        16 => "CLIENT-TAG",
        17 => "SERVER-TAG",
        18 => "REPORT-CHANNEL",
        19 => "ZONEVERSION",
        _ => return None,
    })
}

/// Extended DNS Error info-code names (RFC 8914 §4 and the IANA registry).
pub fn ede_name(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "Other Error",
        1 => "Unsupported DNSKEY Algorithm",
        2 => "Unsupported DS Digest Type",
        3 => "Stale Answer",
        4 => "Forged Answer",
        5 => "DNSSEC Indeterminate",
        6 => "DNSSEC Bogus",
        7 => "Signature Expired",
        8 => "Signature Not Yet Valid",
        9 => "DNSKEY Missing",
        10 => "RRSIGs Missing",
        11 => "No Zone Key Bit Set",
        12 => "NSEC Missing",
        13 => "Cached Error",
        14 => "Not Ready",
        15 => "Blocked",
        16 => "Censored",
        17 => "Filtered",
        18 => "Prohibited",
        19 => "Stale NXDOMAIN Answer",
        20 => "Not Authoritative",
        21 => "Not Supported",
        22 => "No Reachable Authority",
        23 => "Network Error",
        24 => "Invalid Data",
        25 => "Signature Expired before Valid",
        26 => "Too Early",
        27 => "Unsupported NSEC3 Iterations Value",
        28 => "Unable to conform to policy",
        29 => "Synthesized",
        30 => "Invalid Query Type",
        _ => return None,
    })
}

/// The Extended DNS Error names as the Go DNS tools print them (the golang `dnstap` CLI's
/// `ExtendedErrorCodeToString` and DNS-collector): the codes of RFC 8914 only (0-24), code
/// 0 spelt "Other".
pub fn ede_name_rfc8914(code: u16) -> Option<&'static str> {
    match code {
        0 => Some("Other"),
        1..=24 => ede_name(code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rtypes() {
        assert_eq!(rtype_name(1), Some("A"));
        assert_eq!(rtype_name(64), Some("SVCB"));
        assert_eq!(rtype_name(65), Some("HTTPS"));
        assert_eq!(rtype_name(257), Some("CAA"));
        assert_eq!(rtype_name(255), Some("ANY"));
        assert_eq!(rtype_name(252), Some("AXFR"));
        assert_eq!(rtype_name(251), Some("IXFR"));
        assert_eq!(rtype_name(41), Some("OPT"));
        assert_eq!(rtype_name(52), Some("TLSA"));
        assert_eq!(rtype_name(44), Some("SSHFP"));
        assert_eq!(rtype_name(256), Some("URI"));
        assert_eq!(w(|o| write_rtype(65280, o)), "TYPE65280");
        assert_eq!(w(|o| write_rtype(0, o)), "TYPE0");
        assert_eq!(w(|o| write_rtype(28, o)), "AAAA");
        assert_eq!(rtype_from_name("aaaa"), Some(28));
        assert_eq!(rtype_from_name("type65280"), Some(65280));
        assert_eq!(rtype_from_name("TYPE"), None);
        assert_eq!(rtype_from_name("nope"), None);
    }

    #[test]
    fn rcodes_opcodes_classes() {
        assert_eq!(rcode_name(0), Some("NOERROR"));
        assert_eq!(rcode_name(3), Some("NXDOMAIN"));
        assert_eq!(rcode_name(11), Some("DSOTYPENI"));
        assert_eq!(rcode_name(16), Some("BADVERS"));
        assert_eq!(rcode_name(23), Some("BADCOOKIE"));
        assert_eq!(rcode_name(12), None);
        assert_eq!(w(|o| write_rcode(4095, o)), "RCODE4095");
        assert_eq!(opcode_name(5), Some("UPDATE"));
        assert_eq!(opcode_name(6), Some("DSO"));
        assert_eq!(opcode_name(3), None);
        assert_eq!(w(|o| write_opcode(3, o)), "OPCODE3");
        assert_eq!(class_name(3), Some("CH"));
        assert_eq!(w(|o| write_class(7, o)), "CLASS7");
        assert_eq!(ede_name(18), Some("Prohibited"));
        assert_eq!(ede_name(0), Some("Other Error"));
        assert_eq!(ede_name(29), Some("Synthesized"));
        // the Go tools' spelling: RFC 8914's codes only, 0 as "Other"
        assert_eq!(ede_name_rfc8914(0), Some("Other"));
        assert_eq!(ede_name_rfc8914(24), Some("Invalid Data"));
        assert_eq!(ede_name_rfc8914(25), None);
        assert_eq!(edns_option_name(10), Some("COOKIE"));
    }
}
