//! Record data as miekg/dns (the `dnstap` CLI's DNS library) reads and prints it: each
//! type's unpacking (a record may stop at any field boundary, the fields left out print as
//! zero or empty; a field cut in the middle fails the whole message with miekg's error
//! text) and its `String()`. Every type miekg has a record type for is written here (SVCB
//! and HTTPS in [`super::svcb`]); the others print in the RFC 3597 form. Names are read
//! against the message cut at the end of the rdata, as miekg cuts it.
#![forbid(unsafe_code)]

use super::gofmt::{write_base32hex, write_base64, write_hex_lower, write_hex_upper, write_ip};
use super::svcb::write_svcb;
use super::tables::{algorithm_name, write_rtype};
use super::wire::{
    num, sp, write_txt, write_txt_octet, write_unpacked_string, Fail, Reader, ERR_RDLENGTH,
};

/// The types miekg/dns has a record type for (its `TypeToRR`); every other type is
/// unpacked and printed in the RFC 3597 form with `CLASS<n>` and `TYPE<n>` in the header.
pub(super) fn miekg_knows(t: u16) -> bool {
    matches!(
        t,
        1..=10
            | 12..=19
            | 21
            | 23..=29
            | 31..=33
            | 35..=37
            | 39
            | 41..=44
            | 46..=53
            | 55..=65
            | 99..=102
            | 104..=109
            | 249
            | 250
            | 255..=258
            | 32768
            | 32769
    )
}

/// What miekg prints before the record header for a type: `;` for the types without a
/// presentation format (NULL, TKEY), the TSIG pseudosection's title for TSIG.
pub(super) fn header_prefix(t: u16) -> &'static [u8] {
    match t {
        10 | 249 => b";",
        250 => b"\n;; TSIG PSEUDOSECTION:\n; ",
        _ => b"",
    }
}

/// Writes the rdata of a record of `rtype` at `start..msg.len()` as miekg's `String()`
/// does after the header (`msg` is cut at the rdata's end). `Err` is miekg's unpack
/// error for the whole message; `out` then holds a partial write the caller drops.
pub(super) fn write_rdata(
    msg: &[u8],
    start: usize,
    rtype: u16,
    out: &mut Vec<u8>,
) -> Result<(), Fail> {
    let mut r = Reader { msg, pos: start };
    write_known(rtype, &mut r, out)?;
    if r.pos != msg.len() {
        return Err(ERR_RDLENGTH);
    }
    Ok(())
}

fn write_known(rtype: u16, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    match rtype {
        1 => {
            let a = r.take(4, "dns: overflow unpacking a")?;
            if !a.is_empty() {
                write_ip(a, out);
            }
        }
        28 => {
            let a = r.take(16, "dns: overflow unpacking aaaa")?;
            if !a.is_empty() {
                write_ip(a, out);
            }
        }
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => r.name(out)?,
        // MX, AFSDB, RT, KX
        15 | 18 | 21 | 36 => {
            num(r.u16()?, out);
            sp(out);
            r.name(out)?;
        }
        // MINFO, RP
        14 | 17 => {
            r.name(out)?;
            sp(out);
            r.name(out)?;
        }
        6 => {
            r.name(out)?;
            sp(out);
            r.name(out)?;
            for _ in 0..5 {
                sp(out);
                num(r.u32()?, out);
            }
        }
        // TXT, SPF, AVC
        16 | 99 | 258 => {
            let mut first = true;
            while !r.done() {
                if !first {
                    sp(out);
                }
                write_txt(r.char_string("dns: overflow unpacking txt")?, out);
                first = false;
            }
        }
        13 => {
            let cpu = r.char_string("dns: overflow unpacking txt")?;
            let os = r.char_string("dns: overflow unpacking txt")?;
            write_txt(cpu, out);
            sp(out);
            write_txt(os, out);
        }
        33 => {
            for _ in 0..3 {
                num(r.u16()?, out);
                sp(out);
            }
            r.name(out)?;
        }
        35 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u16()?, out);
            for _ in 0..3 {
                out.extend_from_slice(b" \"");
                write_unpacked_string(r.char_string("dns: overflow unpacking txt")?, out);
                out.push(b'"');
            }
            sp(out);
            r.name(out)?;
        }
        257 => {
            num(r.u8()?, out);
            sp(out);
            write_unpacked_string(r.char_string("dns: overflow unpacking txt")?, out);
            sp(out);
            write_txt_octet(r.rest(), out);
        }
        // DS, CDS, TA, DLV
        43 | 59 | 32768 | 32769 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            write_hex_upper(r.rest(), out);
        }
        // DNSKEY, CDNSKEY, KEY
        48 | 60 | 25 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            write_base64(r.rest(), out);
        }
        // RRSIG, SIG
        46 | 24 => {
            write_rtype(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u32()?, out);
            sp(out);
            write_sig_time(r.u32()?, out);
            sp(out);
            write_sig_time(r.u32()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            r.name(out)?;
            sp(out);
            write_base64(r.rest(), out);
        }
        47 => {
            r.name(out)?;
            write_type_bitmap(r, out)?;
        }
        50 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            let salt_len = r.u8()? as usize;
            let salt = r.take(salt_len, "dns: overflow unpacking hex")?;
            write_salt(salt, out);
            sp(out);
            let hash_len = r.u8()? as usize;
            let hash = r.take(hash_len, "dns: overflow unpacking base32")?;
            write_base32hex(hash, out);
            write_type_bitmap(r, out)?;
        }
        51 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            let salt_len = r.u8()? as usize;
            let salt = r.take(salt_len, "dns: overflow unpacking hex")?;
            write_salt(salt, out);
        }
        44 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            write_hex_upper(r.rest(), out);
        }
        // TLSA, SMIMEA: the data in lower case, as miekg keeps it.
        52 | 53 => {
            for _ in 0..3 {
                num(r.u8()?, out);
                sp(out);
            }
            write_hex_lower(r.rest(), out);
        }
        256 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            write_txt_octet(r.rest(), out);
        }
        64 | 65 => write_svcb(r, out)?,
        // NULL: the bytes as they are
        10 => out.extend_from_slice(r.rest()),
        // X25: the PSDN address as miekg keeps a character-string, unquoted
        19 => write_unpacked_string(r.char_string("dns: overflow unpacking txt")?, out),
        // PX: preference, MAP822, MAPX400
        26 => {
            num(r.u16()?, out);
            sp(out);
            r.name(out)?;
            sp(out);
            r.name(out)?;
        }
        // GPOS: three character-strings, unquoted
        27 => {
            for i in 0..3 {
                if i > 0 {
                    sp(out);
                }
                write_unpacked_string(r.char_string("dns: overflow unpacking txt")?, out);
            }
        }
        // EID, NIMLOC: upper-case hex
        31 | 32 => write_hex_upper(r.rest(), out),
        // DHCID, OPENPGPKEY: base64
        49 | 61 => write_base64(r.rest(), out),
        // NINFO: character-strings as TXT
        56 => {
            let mut first = true;
            while !r.done() {
                if !first {
                    sp(out);
                }
                write_txt(r.char_string("dns: overflow unpacking txt")?, out);
                first = false;
            }
        }
        // RKEY: as DNSKEY
        57 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            write_base64(r.rest(), out);
        }
        // TALINK: previous and next name
        58 => {
            r.name(out)?;
            sp(out);
            r.name(out)?;
        }
        // UINFO: one character-string, quoted
        100 => write_txt(r.char_string("dns: overflow unpacking txt")?, out),
        // UID, GID
        101 | 102 => num(r.u32()?, out),
        // NID, L64: preference and a 64-bit identifier in four hex groups (L64's in
        // upper case)
        104 | 106 => {
            num(r.u16()?, out);
            sp(out);
            let v = r.u64()?;
            write_hex_groups(v, rtype == 106, out);
        }
        // L32: preference and an IPv4 locator (nothing after the preference without one)
        105 => {
            num(r.u16()?, out);
            let a = r.take(4, "dns: overflow unpacking a")?;
            if !a.is_empty() {
                sp(out);
                write_ip(a, out);
            }
        }
        // LP: preference and a name
        107 => {
            num(r.u16()?, out);
            sp(out);
            r.name(out)?;
        }
        // EUI48, EUI64: hex pairs joined by dashes
        108 => {
            let v = match r.take(6, "dns: overflow unpacking uint64 as uint48")? {
                [] => [0; 6],
                b => [b[0], b[1], b[2], b[3], b[4], b[5]],
            };
            write_eui(&v, out);
        }
        109 => write_eui(&r.u64()?.to_be_bytes(), out),
        249 => write_tkey(r, out)?,
        250 => write_tsig(r, out)?,
        // ANY: no rdata at all (any byte is then a bad rdlength)
        255 => {}
        // NSAP-PTR (miekg's number for it is 23): a name
        23 => r.name(out)?,
        // CERT: type (mnemonic or number), key tag, algorithm (mnemonic or number), base64
        37 => {
            let t = r.u16()?;
            match cert_type_name(t) {
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => num(t, out),
            }
            sp(out);
            num(r.u16()?, out);
            sp(out);
            let a = r.u8()?;
            match algorithm_name(a) {
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => num(a, out),
            }
            sp(out);
            write_base64(r.rest(), out);
        }
        29 => write_loc(r, out)?,
        42 => write_apl(r, out)?,
        // HIP: algorithm, HIT (lower-case hex), public key, rendezvous servers
        55 => {
            let hit_len = r.u8()?;
            let alg = r.u8()?;
            let key_len = r.u16()?;
            num(alg, out);
            sp(out);
            write_hex_lower(r.take(hit_len.into(), "dns: overflow unpacking hex")?, out);
            sp(out);
            write_base64(
                r.take(key_len.into(), "dns: overflow unpacking base64")?,
                out,
            );
            while !r.done() {
                sp(out);
                r.name(out)?;
            }
        }
        // CSYNC: SOA serial, flags, type bitmap
        62 => {
            num(r.u32()?, out);
            sp(out);
            num(r.u16()?, out);
            write_type_bitmap(r, out)?;
        }
        // ZONEMD: serial, scheme, hash algorithm, digest (lower-case hex)
        63 => {
            num(r.u32()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            write_hex_lower(r.rest(), out);
        }
        _ => {
            let data = r.rest();
            out.extend_from_slice(b"\\# ");
            num(data.len() as u64, out);
            sp(out);
            write_hex_lower(data, out);
        }
    }
    Ok(())
}

/// miekg's `CertTypeToString`.
fn cert_type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "PKIX",
        2 => "SPKI",
        3 => "PGP",
        4 => "IPIX",
        5 => "ISPKI",
        6 => "IPGP",
        7 => "ACPKIX",
        8 => "IACPKIX",
        253 => "URI",
        254 => "OID",
        _ => return None,
    })
}

/// LOC (RFC 1876) as miekg prints it: `d m s.sss N|S d m s.sss E|W altm sizem hpm vpm`.
fn write_loc(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    const EQUATOR: u32 = 1 << 31;
    let _version = r.u8()?;
    let size = r.u8()?;
    let horiz = r.u8()?;
    let vert = r.u8()?;
    let lat = r.u32()?;
    let lon = r.u32()?;
    let alt = r.u32()?;
    for (v, pos, neg) in [(lat, b'N', b'S'), (lon, b'E', b'W')] {
        let (v, hemi) = if v > EQUATOR {
            (v - EQUATOR, pos)
        } else {
            (EQUATOR - v, neg)
        };
        let (deg, rest) = (v / 3_600_000, v % 3_600_000);
        let (min, ms) = (rest / 60_000, rest % 60_000);
        pad2(deg, out);
        sp(out);
        pad2(min, out);
        sp(out);
        // %0.3f of the milliseconds / 1000: exact in decimal.
        num(ms / 1000, out);
        out.push(b'.');
        pad3(ms % 1000, out);
        sp(out);
        out.push(hemi);
        sp(out);
    }
    // Altitude: centimetres above 100 km below the WGS 84 spheroid; %.2f or %.0f metres.
    let cm = i64::from(alt) - 10_000_000;
    if cm < 0 {
        out.push(b'-');
    }
    num(cm.unsigned_abs() / 100, out);
    if alt % 100 != 0 {
        out.push(b'.');
        pad2((cm.unsigned_abs() % 100) as u32, out);
    }
    out.extend_from_slice(b"m ");
    for (i, v) in [size, horiz, vert].into_iter().enumerate() {
        if i > 0 {
            sp(out);
        }
        let (m, e) = (v >> 4, v & 15);
        if e < 2 {
            out.extend_from_slice(b"0.");
            pad2(u32::from(if e == 1 { m.wrapping_mul(10) } else { m }), out);
        } else {
            num(m, out);
            for _ in 2..e {
                out.push(b'0');
            }
        }
        out.push(b'm');
    }
    Ok(())
}

/// `%02d`.
fn pad2(v: u32, out: &mut Vec<u8>) {
    if v < 10 {
        out.push(b'0');
    }
    num(v, out);
}

/// `%03d`.
fn pad3(v: u32, out: &mut Vec<u8>) {
    if v < 100 {
        out.push(b'0');
    }
    pad2(v, out);
}

/// APL (RFC 3123): `[!]family:address/prefix`, space-separated.
fn write_apl(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut first = true;
    while !r.done() {
        if r.msg.len() - r.pos < 4 {
            return Err(Fail::new("dns: overflow unpacking APL prefix"));
        }
        let family = r.u16()?;
        let prefix = r.u8()?;
        let n = r.u8()?;
        let size = match family {
            1 => 4,
            2 => 16,
            _ => return Err(Fail::new("dns: unrecognized APL address family")),
        };
        if usize::from(prefix) > 8 * size {
            return Err(Fail::new("dns: APL prefix too long"));
        }
        let afd = usize::from(n & 0x7f);
        if afd > size {
            return Err(Fail::new("dns: APL length too long"));
        }
        let bytes = r.take(afd, "dns: overflow unpacking APL address")?;
        if bytes.last() == Some(&0) {
            return Err(Fail::new("dns: extra APL address bits"));
        }
        let mut ip = [0u8; 16];
        ip[..bytes.len()].copy_from_slice(bytes);
        // Bits past the prefix must be zero.
        for (i, b) in ip[..size].iter().enumerate() {
            let keep = (usize::from(prefix).saturating_sub(8 * i)).min(8);
            let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
            if b & !mask != 0 {
                return Err(Fail::new("dns: invalid APL address length"));
            }
        }
        if !first {
            sp(out);
        }
        first = false;
        if n & 0x80 != 0 {
            out.push(b'!');
        }
        out.push(if size == 4 { b'1' } else { b'2' });
        out.push(b':');
        if size == 16 && ip[..10].iter().all(|&b| b == 0) && ip[10] == 0xff && ip[11] == 0xff {
            out.extend_from_slice(b"::ffff:");
        }
        write_ip(&ip[..size], out);
        out.push(b'/');
        num(prefix, out);
    }
    Ok(())
}

/// `%0.16x` of a 64-bit value cut into four groups of four digits.
fn write_hex_groups(v: u64, upper: bool, out: &mut Vec<u8>) {
    for (i, pair) in v.to_be_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(b':');
        }
        if upper {
            write_hex_upper(pair, out);
        } else {
            write_hex_lower(pair, out);
        }
    }
}

fn write_eui(bytes: &[u8], out: &mut Vec<u8>) {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(b'-');
        }
        write_hex_lower(std::slice::from_ref(b), out);
    }
}

/// TKEY (no presentation format; miekg's `String()` fields).
fn write_tkey(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    sp(out);
    r.name(out)?;
    sp(out);
    write_sig_time(r.u32()?, out);
    sp(out);
    write_sig_time(r.u32()?, out);
    for _ in 0..2 {
        sp(out);
        num(r.u16()?, out);
    }
    let key_len = r.u16()?;
    sp(out);
    num(key_len, out);
    sp(out);
    write_hex_lower(r.take(key_len.into(), "dns: overflow unpacking hex")?, out);
    let other_len = r.u16()?;
    sp(out);
    num(other_len, out);
    sp(out);
    write_hex_lower(
        r.take(other_len.into(), "dns: overflow unpacking hex")?,
        out,
    );
    Ok(())
}

/// TSIG (RFC 8945; no presentation format; miekg's `String()` fields).
fn write_tsig(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    sp(out);
    r.name(out)?;
    sp(out);
    let t = match r.take(6, "dns: overflow unpacking uint64 as uint48")? {
        [] => 0,
        b => b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)),
    };
    write_sig_time_u64(t, out);
    sp(out);
    num(r.u16()?, out);
    let mac_len = r.u16()?;
    sp(out);
    num(mac_len, out);
    sp(out);
    write_hex_upper(r.take(mac_len.into(), "dns: overflow unpacking hex")?, out);
    for _ in 0..2 {
        sp(out);
        num(r.u16()?, out);
    }
    let other_len = r.u16()?;
    sp(out);
    num(other_len, out);
    sp(out);
    write_hex_lower(
        r.take(other_len.into(), "dns: overflow unpacking hex")?,
        out,
    );
    Ok(())
}

/// NSEC3 salt: `-` when empty, else upper-case hex.
fn write_salt(salt: &[u8], out: &mut Vec<u8>) {
    if salt.is_empty() {
        out.push(b'-');
    } else {
        write_hex_upper(salt, out);
    }
}

/// RRSIG times: `YYYYMMDDHHmmSS` in UTC. (miekg adjusts by RFC 1982 serial arithmetic
/// against the clock, which changes nothing for any 32-bit time before 2106 while the
/// clock is before 2038 + 68 years.)
fn write_sig_time(t: u32, out: &mut Vec<u8>) {
    write_sig_time_u64(t.into(), out);
}

fn write_sig_time_u64(t: u64, out: &mut Vec<u8>) {
    let sec = t as i64;
    let (y, m, d) = crate::format::escape::civil_from_days(sec.div_euclid(86_400));
    let rem = sec.rem_euclid(86_400) as u32;
    let two = |v: u32, out: &mut Vec<u8>| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    two((y / 100) as u32, out);
    two((y % 100) as u32, out);
    two(m, out);
    two(d, out);
    two(rem / 3600, out);
    two(rem / 60 % 60, out);
    two(rem % 60, out);
}

/// The NSEC/NSEC3 type bitmap, each type preceded by a space; miekg's checks and texts.
pub(super) fn write_type_bitmap(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut last: i32 = -1;
    while !r.done() {
        let (Some(&window), Some(&len)) = (r.msg.get(r.pos), r.msg.get(r.pos + 1)) else {
            return Err(Fail::new("dns: overflow unpacking NSEC(3)"));
        };
        r.pos += 2;
        if (window as i32) <= last {
            return Err(Fail::new("dns: out of order NSEC(3) block in type bitmap"));
        }
        if len == 0 {
            return Err(Fail::new("dns: empty NSEC(3) block in type bitmap"));
        }
        if len > 32 {
            return Err(Fail::new("dns: NSEC(3) block too long in type bitmap"));
        }
        let bits = r
            .msg
            .get(r.pos..r.pos + len as usize)
            .ok_or(Fail::new("dns: overflowing NSEC(3) block in type bitmap"))?;
        r.pos += len as usize;
        last = window as i32;
        for (i, &byte) in bits.iter().enumerate() {
            for bit in 0..8u16 {
                if byte & (0x80 >> bit) != 0 {
                    sp(out);
                    write_rtype((window as u16) << 8 | (i as u16 * 8 + bit), out);
                }
            }
        }
    }
    Ok(())
}
