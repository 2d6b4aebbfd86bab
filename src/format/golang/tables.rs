//! The name tables of the `dnstap` CLI's libraries, as its Debian build (golang-dnstap 0.4,
//! miekg/dns 1.1) prints them: record types, classes, rcodes, opcodes, DNSSEC algorithm
//! and digest names, Extended DNS Error names and the dnstap enums. Read off the CLI's
//! own output (every type and class number was put through it), not the IANA registries:
//! they differ (type 23 is `NSAP-PTR` here, class 255 has no name, rcode 16 is `BADSIG`).
#![forbid(unsafe_code)]

use crate::dns::write_u64;

/// miekg's `TypeToString`; `None` prints as `TYPE<n>`.
pub(super) fn rtype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0 => "None",
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
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
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
        32768 => "TA",
        32769 => "DLV",
        65535 => "Reserved",
        _ => return None,
    })
}

/// `dns.Type(t).String()`.
pub(super) fn write_rtype(t: u16, out: &mut Vec<u8>) {
    match rtype_name(t) {
        Some(s) => out.extend_from_slice(s.as_bytes()),
        None => {
            out.extend_from_slice(b"TYPE");
            write_u64(t.into(), out);
        }
    }
}

/// `dns.Class(c).String()`: a mnemonic only where it is not also a type name (so 255,
/// `ANY`, prints as `CLASS255`).
pub(super) fn write_class(c: u16, out: &mut Vec<u8>) {
    let name: &[u8] = match c {
        1 => b"IN",
        2 => b"CS",
        3 => b"CH",
        4 => b"HS",
        254 => b"NONE",
        _ => {
            out.extend_from_slice(b"CLASS");
            write_u64(c.into(), out);
            return;
        }
    };
    out.extend_from_slice(name);
}

/// `RcodeToString` (empty for numbers it lacks, as the CLI prints them).
pub(super) fn rcode_name(r: u16) -> &'static str {
    match r {
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
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => "",
    }
}

/// `OpcodeToString` (empty for numbers it lacks).
pub(super) fn opcode_name(op: u8) -> &'static str {
    match op {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        _ => "",
    }
}

/// `AlgorithmToString` (DNSSEC algorithm numbers).
pub(super) fn algorithm_name(a: u8) -> Option<&'static str> {
    Some(match a {
        1 => "RSAMD5",
        2 => "DH",
        3 => "DSA",
        5 => "RSASHA1",
        6 => "DSA-NSEC3-SHA1",
        7 => "RSASHA1-NSEC3-SHA1",
        8 => "RSASHA256",
        10 => "RSASHA512",
        12 => "ECC-GOST",
        13 => "ECDSAP256SHA256",
        14 => "ECDSAP384SHA384",
        15 => "ED25519",
        16 => "ED448",
        252 => "INDIRECT",
        253 => "PRIVATEDNS",
        254 => "PRIVATEOID",
        _ => return None,
    })
}

/// `HashToString` (DS digest and NSEC3 hash numbers).
pub(super) fn hash_name(h: u8) -> Option<&'static str> {
    Some(match h {
        1 => "SHA1",
        2 => "SHA256",
        3 => "GOST94",
        4 => "SHA384",
        5 => "SHA512",
        _ => return None,
    })
}

/// `Message.Type` names of the CLI's dnstap.proto.
pub(super) fn message_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        1 => "AUTH_QUERY",
        2 => "AUTH_RESPONSE",
        3 => "RESOLVER_QUERY",
        4 => "RESOLVER_RESPONSE",
        5 => "CLIENT_QUERY",
        6 => "CLIENT_RESPONSE",
        7 => "FORWARDER_QUERY",
        8 => "FORWARDER_RESPONSE",
        9 => "STUB_QUERY",
        10 => "STUB_RESPONSE",
        11 => "TOOL_QUERY",
        12 => "TOOL_RESPONSE",
        13 => "UPDATE_QUERY",
        14 => "UPDATE_RESPONSE",
        _ => return None,
    })
}

/// `SocketFamily` names.
pub(super) fn family_name(f: u32) -> Option<&'static str> {
    Some(match f {
        1 => "INET",
        2 => "INET6",
        _ => return None,
    })
}

/// `SocketProtocol` names (this proto stops at DOH).
pub(super) fn protocol_name(p: u32) -> Option<&'static str> {
    Some(match p {
        1 => "UDP",
        2 => "TCP",
        3 => "DOT",
        4 => "DOH",
        _ => return None,
    })
}

/// `Dnstap.Type` names.
pub(super) fn dnstap_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        1 => "MESSAGE",
        _ => return None,
    })
}

/// Go's `fmt.Sprint` of a protobuf enum pointer: the name, the number for values the
/// enum lacks, `<nil>` when the field is absent.
pub(super) fn write_enum(v: Option<u32>, name: fn(u32) -> Option<&'static str>, out: &mut Vec<u8>) {
    match v {
        None => out.extend_from_slice(b"<nil>"),
        Some(n) => match name(n) {
            Some(s) => out.extend_from_slice(s.as_bytes()),
            None => write_u64(n.into(), out),
        },
    }
}
