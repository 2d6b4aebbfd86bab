//! DNS wire messages for the generator's exchanges (RFC 1035 §4.1): the query, and a
//! response with answers by qtype, compression pointers, SOA for negative answers
//! (RFC 2308) and EDNS (RFC 6891).
#![forbid(unsafe_code)]

use super::rng::Rng;
use super::{mtype, qtype, Edns, Exchange, Role};

//  header, 12 bytes:
//  ┌────────┬──┬──────┬──┬──┬──┬──┬───┬──────┬─────────┬─────────┬─────────┬─────────┐
//  │ ID (16)│QR│opcode│AA│TC│RD│RA│Z  │rcode │ QDCOUNT │ ANCOUNT │ NSCOUNT │ ARCOUNT │
//  └────────┴──┴──────┴──┴──┴──┴──┴───┴──────┴─────────┴─────────┴─────────┴─────────┘
//  question: QNAME (labels) QTYPE QCLASS; RR: NAME TYPE CLASS TTL(32) RDLENGTH RDATA.
//  A name may end in a pointer, two bytes 0b11 + 14-bit offset of an earlier name.

/// The question always starts right after the header: a pointer to the qname.
const QNAME_PTR: u16 = 0xc000 | 12;
const CLASS_IN: u16 = 1;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    put16(out, id);
    put16(out, flags);
    for c in counts {
        put16(out, c);
    }
}

fn question(out: &mut Vec<u8>, qname: &[u8], qtype: u16) {
    out.extend_from_slice(qname);
    put16(out, qtype);
    put16(out, CLASS_IN);
}

pub(super) fn write_query(ex: &Exchange, qname: &[u8], out: &mut Vec<u8>) {
    let (opcode, qtype) = if ex.mtype == mtype::UPDATE_QUERY {
        (5u16, qtype::SOA) // UPDATE: the zone section has the SOA type
    } else {
        (0, ex.qtype)
    };
    let flags = opcode << 11 | u16::from(ex.rd) << 8;
    header(out, ex.id, flags, [1, 0, 0, u16::from(ex.edns.is_some())]);
    question(out, qname, qtype);
    if let Some(e) = &ex.edns {
        opt(out, e, ex, false);
    }
}

/// OPT pseudo-RR (RFC 6891 §6.1.2): owner root, CLASS = UDP size, TTL = ext-rcode,
/// version, DO flag; options: COOKIE (RFC 7873), client subnet (RFC 7871).
fn opt(out: &mut Vec<u8>, e: &Edns, ex: &Exchange, response: bool) {
    out.push(0);
    put16(out, qtype::OPT);
    put16(out, e.udp_size);
    put32(out, if e.dnssec_ok { 0x8000 } else { 0 });
    let len_at = out.len();
    put16(out, 0);
    if let Some(c) = &e.cookie {
        put16(out, 10);
        if response {
            put16(out, 24);
            out.extend_from_slice(c);
            out.extend_from_slice(&ex.answer_seed.to_be_bytes());
            out.extend_from_slice(&ex.query_ns.to_be_bytes());
        } else {
            put16(out, 8);
            out.extend_from_slice(c);
        }
    }
    if e.ecs && !ex.ipv6 {
        put16(out, 8);
        put16(out, 7);
        put16(out, 1); // family IPv4
        out.push(24);
        out.push(if response { 24 } else { 0 });
        out.extend_from_slice(&[10, (ex.client >> 8) as u8, ex.client as u8]);
    }
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// Starts an RR with an owner given as a pointer; returns where RDLENGTH goes.
fn rr_start(out: &mut Vec<u8>, owner_ptr: u16, rtype: u16, ttl: u32) -> usize {
    put16(out, owner_ptr);
    put16(out, rtype);
    put16(out, CLASS_IN);
    put32(out, ttl);
    let at = out.len();
    put16(out, 0);
    at
}

fn rr_end(out: &mut [u8], len_at: usize) {
    let rdlen = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
}

/// A compression pointer to the qname's last two labels (the "zone"; at most 129 bytes).
fn zone_ptr(qname: &[u8]) -> u16 {
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Some(&len) = qname.get(pos) {
        if len == 0 {
            break;
        }
        starts.push(pos);
        pos += 1 + len as usize;
    }
    let zone = starts.len().saturating_sub(2);
    match starts.get(zone) {
        Some(&p) => 0xc000 | (12 + p as u16),
        None => QNAME_PTR,
    }
}

pub(super) fn write_response(ex: &Exchange, qname: &[u8], role: Role, out: &mut Vec<u8>) {
    let mut rng = Rng::new(ex.answer_seed);
    let update = ex.mtype == mtype::UPDATE_QUERY;
    let qtype = if update { qtype::SOA } else { ex.qtype };
    let opcode: u16 = if update { 5 } else { 0 };
    let aa = role == Role::Auth && !update;
    let ra = role != Role::Auth;
    let flags = 0x8000
        | opcode << 11
        | u16::from(aa) << 10
        | u16::from(ex.rd) << 8
        | u16::from(ra) << 7
        | u16::from(ex.rcode);
    header(out, ex.id, flags, [1, 0, 0, 0]);
    question(out, qname, qtype);
    let mut counts = [1u16, 0, 0, u16::from(ex.edns.is_some())];
    // Names in records (ns1.<zone>, mx.<zone>, ...) point into the zone, the qname's last
    // two labels: short enough that a prefix label never takes a name past 255 bytes.
    let zone = zone_ptr(qname);
    let ttl = [300, 60, 3600, 86400, 30][rng.weighted(&[400, 200, 250, 100, 50])];
    if ex.rcode == 0 && !update && !rng.chance(100) {
        counts[1] = answers(out, qtype, ttl, zone, &mut rng);
    }
    if (ex.rcode == 3 || (ex.rcode == 0 && counts[1] == 0)) && !update {
        // NXDOMAIN / NODATA: the zone's SOA in the authority section (RFC 2308).
        let at = rr_start(out, zone, qtype::SOA, 3600);
        soa_rdata(out, zone, &mut rng);
        rr_end(out, at);
        counts[2] = 1;
    }
    if let Some(e) = &ex.edns {
        opt(out, e, ex, true);
    }
    // The counts are known only now: patch the header.
    for (i, c) in counts.iter().enumerate() {
        out[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
    }
}

fn soa_rdata(out: &mut Vec<u8>, zone: u16, rng: &mut Rng) {
    out.extend_from_slice(b"\x03ns1");
    put16(out, zone);
    out.extend_from_slice(b"\x0ahostmaster");
    put16(out, zone);
    put32(out, 2026010100 + rng.below(100) as u32);
    for v in [7200, 3600, 1209600, 300] {
        put32(out, v);
    }
}

/// Writes the answer section for `qtype` (sometimes behind a CNAME); returns the RR count.
/// Owners point to the qname; names inside RDATA are a label or two plus a pointer to `zone`.
fn answers(out: &mut Vec<u8>, qtype: u16, ttl: u32, zone: u16, rng: &mut Rng) -> u16 {
    let mut owner = QNAME_PTR;
    let mut count = 0;
    if matches!(qtype, qtype::A | qtype::AAAA | qtype::HTTPS) && rng.chance(150) {
        let at = rr_start(out, owner, qtype::CNAME, ttl);
        owner = 0xc000 | out.len() as u16;
        out.extend_from_slice(b"\x04edge");
        let n = rng.range(1, 40);
        out.push(format!("c{n}").len() as u8);
        out.extend_from_slice(format!("c{n}").as_bytes());
        out.extend_from_slice(b"\x0bexample-cdn\x03net\x00");
        rr_end(out, at);
        count += 1;
    }
    let n = match qtype {
        qtype::A | qtype::AAAA => rng.weighted(&[0, 600, 200, 100, 100]) as u16,
        qtype::NS | qtype::MX | qtype::TXT => rng.range(1, 4) as u16,
        qtype::ANY => 6,
        _ => 1,
    };
    for i in 0..n {
        let rtype = if qtype == qtype::ANY {
            [
                qtype::A,
                qtype::AAAA,
                qtype::MX,
                qtype::TXT,
                qtype::NS,
                qtype::SOA,
            ][i as usize % 6]
        } else {
            qtype
        };
        let at = rr_start(out, owner, rtype, ttl);
        rdata(out, rtype, zone, rng);
        rr_end(out, at);
        count += 1;
    }
    count
}

fn rdata(out: &mut Vec<u8>, rtype: u16, zone: u16, rng: &mut Rng) {
    match rtype {
        qtype::A => {
            let mut a = [0u8; 4];
            rng.fill(&mut a);
            out.extend_from_slice(&a);
        }
        qtype::AAAA => {
            let mut a = [0u8; 16];
            rng.fill(&mut a);
            a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            out.extend_from_slice(&a);
        }
        qtype::NS | qtype::CNAME | qtype::PTR => {
            let l = format!("ns{}", rng.range(1, 9));
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
            put16(out, zone);
        }
        qtype::MX => {
            put16(out, rng.range(0, 5) as u16 * 10);
            out.extend_from_slice(b"\x02mx");
            put16(out, zone);
        }
        qtype::TXT => {
            // Long-tailed string lengths: SPF records, verification tokens, DKIM keys.
            for _ in 0..rng.range(1, 2) {
                let len = [rng.range(8, 40), rng.range(40, 120), rng.range(200, 255)]
                    [rng.weighted(&[700, 250, 50])] as usize;
                out.push(len as u8);
                for _ in 0..len {
                    out.push(
                        b"v=spf1 include:_spf.example -all abcdefgh0123456789"
                            [rng.below(50) as usize],
                    );
                }
            }
        }
        qtype::SOA => soa_rdata(out, zone, rng),
        qtype::SRV => {
            put16(out, 10);
            put16(out, rng.range(0, 100) as u16);
            put16(out, [443, 5060, 389, 5222][rng.below(4) as usize]);
            out.extend_from_slice(b"\x03srv");
            put16(out, zone);
        }
        qtype::DS => {
            put16(out, rng.below(65536) as u16);
            out.push(13); // ECDSAP256SHA256
            out.push(2); // SHA-256
            let mut d = [0u8; 32];
            rng.fill(&mut d);
            out.extend_from_slice(&d);
        }
        qtype::DNSKEY => {
            put16(out, 257);
            out.push(3);
            out.push(13);
            let mut k = [0u8; 64];
            rng.fill(&mut k);
            out.extend_from_slice(&k);
        }
        qtype::HTTPS => {
            // SvcPriority 1, TargetName ".", alpn="h2,h3" (RFC 9460 §2.2, §7.1).
            put16(out, 1);
            out.push(0);
            put16(out, 1);
            put16(out, 6);
            out.extend_from_slice(b"\x02h2\x02h3");
        }
        _ => {
            let mut b = [0u8; 12];
            rng.fill(&mut b);
            out.extend_from_slice(&b[..rng.range(0, 12) as usize]);
        }
    }
}
