//! Record data as miekg/dns (the `dnstap` CLI's DNS library) reads and prints it: its
//! unpacking rules (a record may stop at any field boundary, the fields left out print
//! as zero or empty; a field cut in the middle fails the whole message with miekg's
//! error text) and each type's `String()`. Names are read with [`Name::parse`] against
//! the message cut at the end of the rdata, as miekg cuts it.
//!
//! Types miekg decodes that are not written here (LOC, APL, CERT, HIP, ...) fall back to
//! its generic form (`\# <len> <hex>`) and differ from the CLI; docs/formats.md lists them.
#![forbid(unsafe_code)]

use crate::dns::write_u64;

use super::gofmt::{write_base32hex, write_base64, write_hex_lower, write_hex_upper, write_ip};
use super::tables::{algorithm_name, ede_name, hash_name, write_rtype};

/// A miekg unpacking error: its `Error()` text, and the number a few of them end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fail {
    text: &'static str,
    number: Option<usize>,
}

impl Fail {
    pub(super) const fn new(text: &'static str) -> Fail {
        Fail { text, number: None }
    }
    /// Writes the error text.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text.as_bytes());
        if let Some(n) = self.number {
            write_u64(n as u64, out);
        }
    }
}

pub(super) const ERR_U8: Fail = Fail::new("dns: overflow unpacking uint8");
pub(super) const ERR_U16: Fail = Fail::new("dns: overflow unpacking uint16");
pub(super) const ERR_U32: Fail = Fail::new("dns: overflow unpacking uint32");
pub(super) const ERR_BUF: Fail = Fail::new("dns: buffer size too small");
pub(super) const ERR_RDLENGTH: Fail = Fail::new("dns: bad rdlength");

/// A name inside a message, as miekg's `UnpackDomainName` reads it: labels, and
/// compression pointers in any direction (a loop ends at the 127th pointer), at most 255
/// octets in wire form. (`dns::Name` takes backward pointers only, as RFC 1035 has them;
/// miekg follows forward ones too, and the CLI prints what it finds there.)
#[derive(Clone, Copy, Debug)]
pub(super) struct WireName {
    /// The offset of the name's first byte in the message it was read from.
    start: usize,
}

/// miekg's `maxCompressionPointers`.
const MAX_POINTERS: usize = 126;

/// Walks the name at `off`, handing each label to `label`; returns the offset just past
/// the name in place (after its first pointer, if any).
fn walk_name<'a>(
    msg: &'a [u8],
    mut off: usize,
    mut label: impl FnMut(&'a [u8]),
) -> Result<usize, Fail> {
    let mut end = None;
    // Octets left for labels and their length bytes (the root byte is not counted).
    let mut budget = 255isize;
    let mut pointers = 0;
    loop {
        let c = *msg.get(off).ok_or(ERR_BUF)? as usize;
        off += 1;
        match c & 0xc0 {
            0x00 => {
                if c == 0 {
                    break;
                }
                let l = msg.get(off..off + c).ok_or(ERR_BUF)?;
                budget -= c as isize + 1;
                if budget <= 0 {
                    return Err(Fail::new(
                        "dns: domain name exceeded 255 wire-format octets",
                    ));
                }
                label(l);
                off += c;
            }
            0xc0 => {
                let low = *msg.get(off).ok_or(ERR_BUF)? as usize;
                off += 1;
                end.get_or_insert(off);
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(Fail::new("dns: too many compression pointers"));
                }
                off = (c & 0x3f) << 8 | low;
            }
            _ => return Err(Fail::new("dns: bad rdata")),
        }
    }
    Ok(end.unwrap_or(off))
}

/// Reads the name at `off` in `msg`: the name and the offset after it.
pub(super) fn parse_name(msg: &[u8], off: usize) -> Result<(WireName, usize), Fail> {
    let end = walk_name(msg, off, |_| {})?;
    Ok((WireName { start: off }, end))
}

/// A name as miekg's `UnpackDomainName` and `sprintName` write it: labels joined by `.`,
/// a trailing `.`, `.` ` ` `'` `@` `;` `(` `)` `"` `\` escaped with a backslash, bytes
/// outside `!`..`~` as `\DDD`; the root is `.`. `msg` is the one `name` was read from.
pub(super) fn write_name(msg: &[u8], name: WireName, out: &mut Vec<u8>) {
    let mut any = false;
    // The name was read from `msg` already: the walk cannot fail.
    let _ = walk_name(msg, name.start, |label| {
        any = true;
        for &b in label {
            match b {
                b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                    out.push(b'\\');
                    out.push(b);
                }
                b'!'..=b'~' => out.push(b),
                _ => write_ddd(b, out),
            }
        }
        out.push(b'.');
    });
    if !any {
        out.push(b'.');
    }
}

/// `\DDD`: three decimal digits.
pub(super) fn write_ddd(b: u8, out: &mut Vec<u8>) {
    out.push(b'\\');
    out.push(b'0' + b / 100);
    out.push(b'0' + b / 10 % 10);
    out.push(b'0' + b % 10);
}

/// One byte of a quoted string (miekg's `writeTXTStringByte`).
fn txt_byte(b: u8, out: &mut Vec<u8>) {
    match b {
        b'"' | b'\\' => {
            out.push(b'\\');
            out.push(b);
        }
        b' '..=b'~' => out.push(b),
        _ => write_ddd(b, out),
    }
}

/// A character-string in quotes, every byte escaped by [`txt_byte`] (TXT, HINFO).
fn write_txt(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        txt_byte(b, out);
    }
    out.push(b'"');
}

/// A character-string as miekg's `unpackString` keeps it (NAPTR fields, CAA tag): `"`
/// and `\` escaped, other bytes outside ` `..`~` as `\DDD`.
fn write_unpacked_string(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        txt_byte(b, out);
    }
}

/// miekg's `sprintTxtOctet` over raw bytes (CAA value, URI target): the raw bytes are
/// read as if they were presentation text, so a backslash escapes what follows it
/// (`\DDD` is a byte, `\.` stays as it is, a lone trailing `\` is dropped).
fn write_txt_octet(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'.') {
            out.extend_from_slice(b"\\.");
            i += 2;
            continue;
        }
        match next_byte(s, i) {
            None => i += 1,
            Some((b, n)) => {
                txt_byte(b, out);
                i += n;
            }
        }
    }
    out.push(b'"');
}

/// miekg's `nextByte`: the byte at `i` and how many input bytes it took, reading a
/// backslash escape (`\X` or `\DDD`); `None` for a dangling backslash.
fn next_byte(s: &[u8], i: usize) -> Option<(u8, usize)> {
    let b = *s.get(i)?;
    if b != b'\\' {
        return Some((b, 1));
    }
    match s.len() - i {
        1 => None,
        2 | 3 => Some((s[i + 1], 2)),
        _ => {
            let d = &s[i + 1..i + 4];
            if d.iter().all(u8::is_ascii_digit) {
                let v =
                    (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                Some((v as u8, 4))
            } else {
                Some((s[i + 1], 2))
            }
        }
    }
}

/// A cursor over one rdata in the message cut at the rdata's end (`msg.len()` is the
/// end). miekg stops a record at any field boundary: once `pos == msg.len()`, every
/// later field reads as zero or empty (`done`).
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.msg.len()
    }
    fn take(&mut self, n: usize, err: &'static str) -> Result<&'a [u8], Fail> {
        if self.done() {
            return Ok(&[]);
        }
        let b = self.msg.get(self.pos..self.pos + n).ok_or(Fail::new(err))?;
        self.pos += n;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1, ERR_U8.text)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self) -> Result<u16, Fail> {
        Ok(match *self.take(2, ERR_U16.text)? {
            [a, b] => u16::from_be_bytes([a, b]),
            _ => 0,
        })
    }
    fn u64(&mut self) -> Result<u64, Fail> {
        Ok(match self.take(8, "dns: overflow unpacking uint64")? {
            [] => 0,
            b => b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)),
        })
    }
    fn u32(&mut self) -> Result<u32, Fail> {
        Ok(match *self.take(4, ERR_U32.text)? {
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        })
    }
    /// A name, written; nothing when the record already ended.
    fn name(&mut self, out: &mut Vec<u8>) -> Result<(), Fail> {
        if self.done() {
            return Ok(());
        }
        let (n, end) = parse_name(self.msg, self.pos)?;
        self.pos = end;
        write_name(self.msg, n, out);
        Ok(())
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = self.msg.get(self.pos..).unwrap_or(&[]);
        self.pos = self.msg.len();
        r
    }
    /// A `<character-string>` (length byte and bytes).
    fn char_string(&mut self, err: &'static str) -> Result<&'a [u8], Fail> {
        if self.done() {
            return Ok(&[]);
        }
        let n = self.u8()? as usize;
        let b = self.msg.get(self.pos..self.pos + n).ok_or(Fail::new(err))?;
        self.pos += n;
        Ok(b)
    }
}

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

fn num(n: impl Into<u64>, out: &mut Vec<u8>) {
    write_u64(n.into(), out);
}

fn sp(out: &mut Vec<u8>) {
    out.push(b' ');
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
fn write_type_bitmap(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
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

/// SVCB/HTTPS: priority, target, then each parameter as `key="value"`.
fn write_svcb(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    num(r.u16()?, out);
    sp(out);
    r.name(out)?;
    let mut last: Option<u16> = None;
    while !r.done() {
        let hdr = r
            .msg
            .get(r.pos..r.pos + 4)
            .ok_or(Fail::new("dns: overflow unpacking SVCB"))?;
        let key = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let value = r
            .msg
            .get(r.pos + 4..r.pos + 4 + len)
            .ok_or(Fail::new("dns: overflow unpacking SVCB"))?;
        if key == 65535 {
            return Err(Fail::new("dns: bad SVCB key"));
        }
        sp(out);
        write_svc_key(key, out);
        out.extend_from_slice(b"=\"");
        write_svc_value(key, value, out)?;
        out.push(b'"');
        if last.is_some_and(|k| key <= k) {
            return Err(Fail::new("dns: SVCB keys not in strictly increasing order"));
        }
        last = Some(key);
        r.pos += 4 + len;
    }
    Ok(())
}

fn write_svc_key(key: u16, out: &mut Vec<u8>) {
    let name: &[u8] = match key {
        0 => b"mandatory",
        1 => b"alpn",
        2 => b"no-default-alpn",
        3 => b"port",
        4 => b"ipv4hint",
        5 => b"ech",
        6 => b"ipv6hint",
        7 => b"dohpath",
        _ => {
            out.extend_from_slice(b"key");
            num(key, out);
            return;
        }
    };
    out.extend_from_slice(name);
}

fn write_svc_value(key: u16, v: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    match key {
        0 => {
            if v.len() % 2 != 0 {
                return Err(Fail::new(
                    "dns: svcbmandatory: value length is not a multiple of 2",
                ));
            }
            for (i, k) in v.chunks_exact(2).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_svc_key(u16::from_be_bytes([k[0], k[1]]), out);
            }
        }
        1 => {
            let mut i = 0;
            let mut first = true;
            while i < v.len() {
                let n = v[i] as usize;
                let id = v
                    .get(i + 1..i + 1 + n)
                    .ok_or(Fail::new("dns: svcbalpn: alpn array overflowing"))?;
                if !first {
                    out.push(b',');
                }
                first = false;
                // Commas and backslashes doubly escaped, as miekg writes them.
                for &b in id {
                    match b {
                        b'"' | b';' | b' ' => {
                            out.push(b'\\');
                            out.push(b);
                        }
                        b',' => out.extend_from_slice(b"\\\\\\044"),
                        b'\\' => out.extend_from_slice(b"\\\\\\092"),
                        b'!'..=b'~' => out.push(b),
                        _ => write_ddd(b, out),
                    }
                }
                i += 1 + n;
            }
        }
        2 => {
            if !v.is_empty() {
                return Err(Fail::new(
                    "dns: svcbnodefaultalpn: no-default-alpn must have no value",
                ));
            }
        }
        3 => {
            let &[a, b] = v else {
                return Err(Fail::new(
                    "dns: svcbport: port length is not exactly 2 octets",
                ));
            };
            num(u16::from_be_bytes([a, b]), out);
        }
        4 => {
            if v.is_empty() || v.len() % 4 != 0 {
                return Err(Fail::new(
                    "dns: svcbipv4hint: ipv4 address byte array length is not a multiple of 4",
                ));
            }
            for (i, a) in v.chunks_exact(4).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_ip(a, out);
            }
        }
        5 => write_base64(v, out),
        6 => {
            if v.is_empty() || v.len() % 16 != 0 {
                return Err(Fail::new(
                    "dns: svcbipv6hint: ipv6 address byte array length not a multiple of 16",
                ));
            }
            for (i, a) in v.chunks_exact(16).enumerate() {
                if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
                    return Err(Fail::new("dns: svcbipv6hint: expected ipv6, got ipv4"));
                }
                if i > 0 {
                    out.push(b',');
                }
                write_ip(a, out);
            }
        }
        _ => {
            for &b in v {
                match b {
                    b'"' | b';' | b' ' | b'\\' => {
                        out.push(b'\\');
                        out.push(b);
                    }
                    b' '..=b'~' => out.push(b),
                    _ => write_ddd(b, out),
                }
            }
        }
    }
    Ok(())
}

/// The EDNS options of an OPT record at `start..msg.len()`, each on its own line as
/// miekg's `OPT.String()` writes them (options it does not know print as `LOCAL OPT`).
pub(super) fn write_edns_options(msg: &[u8], start: usize, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut pos = start;
    while pos < msg.len() {
        let hdr = msg
            .get(pos..pos + 4)
            .ok_or(Fail::new("dns: overflow unpacking opt"))?;
        let code = u16::from_be_bytes([hdr[0], hdr[1]]);
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let data = msg
            .get(pos + 4..pos + 4 + len)
            .ok_or(Fail::new("dns: overflow unpacking opt"))?;
        write_option(code, data, out)?;
        pos += 4 + len;
    }
    Ok(())
}

fn write_option(code: u16, d: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    match code {
        3 => {
            out.extend_from_slice(b"\n; NSID: ");
            write_hex_lower(d, out);
            // Each byte as the character of that code point, in parentheses.
            out.extend_from_slice(b"  ");
            for &b in d {
                out.push(b'(');
                if b < 0x80 {
                    out.push(b);
                } else {
                    out.push(0xc0 | b >> 6);
                    out.push(0x80 | (b & 0x3f));
                }
                out.push(b')');
            }
        }
        8 => {
            out.extend_from_slice(b"\n; SUBNET: ");
            write_subnet(d, out)?;
        }
        10 => {
            out.extend_from_slice(b"\n; COOKIE: ");
            write_hex_lower(d, out);
        }
        // EXPIRE: unpacked (and checked) but not among the options miekg 1.1 prints.
        9 => {
            if !matches!(d.len(), 0 | 4) {
                return Err(ERR_BUF);
            }
        }
        11 => {
            out.extend_from_slice(b"\n; KEEPALIVE: use tcp keep-alive");
            match *d {
                [] => out.extend_from_slice(b", timeout omitted"),
                [a, b] => {
                    let t = u16::from_be_bytes([a, b]);
                    if t == 0 {
                        out.extend_from_slice(b", timeout omitted");
                    } else {
                        out.extend_from_slice(b", timeout ");
                        num(u64::from(t) * 100, out);
                        out.extend_from_slice(b"ms");
                    }
                }
                _ => {
                    return Err(Fail {
                        text: "dns: length mismatch, want 0/2 but got ",
                        number: Some(d.len()),
                    })
                }
            }
        }
        2 => {
            out.extend_from_slice(b"\n; UPDATE LEASE: ");
            let (lease, key_lease) = match *d {
                [a, b, c, e] => (u32::from_be_bytes([a, b, c, e]), 0),
                [a, b, c, e, f, g, h, i] => (
                    u32::from_be_bytes([a, b, c, e]),
                    u32::from_be_bytes([f, g, h, i]),
                ),
                _ => return Err(ERR_BUF),
            };
            num(lease, out);
            sp(out);
            num(key_lease, out);
        }
        1 => {
            out.extend_from_slice(b"\n; LONG LIVED QUERIES: ");
            if d.len() < 18 {
                return Err(ERR_BUF);
            }
            let be16 = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
            for i in [0, 2, 4] {
                num(be16(i), out);
                sp(out);
            }
            num(
                u64::from_be_bytes(d[6..14].try_into().unwrap_or_default()),
                out,
            );
            sp(out);
            num(
                u32::from_be_bytes(d[14..18].try_into().unwrap_or_default()),
                out,
            );
        }
        5 | 6 | 7 => {
            out.extend_from_slice(match code {
                5 => b"\n; DNSSEC ALGORITHM UNDERSTOOD: ".as_slice(),
                6 => b"\n; DS HASH UNDERSTOOD: ",
                _ => b"\n; NSEC3 HASH UNDERSTOOD: ",
            });
            for &a in d {
                sp(out);
                let name = if code == 5 {
                    algorithm_name(a)
                } else {
                    hash_name(a)
                };
                match name {
                    Some(s) => out.extend_from_slice(s.as_bytes()),
                    None => num(a, out),
                }
            }
        }
        12 => {
            out.extend_from_slice(b"\n; PADDING: ");
            write_hex_upper(d, out);
        }
        15 => {
            out.extend_from_slice(b"\n; EDE: ");
            let (Some(&a), Some(&b)) = (d.first(), d.get(1)) else {
                return Err(ERR_BUF);
            };
            let info = u16::from_be_bytes([a, b]);
            num(info, out);
            if let Some(name) = ede_name(info) {
                out.extend_from_slice(b" (");
                out.extend_from_slice(name.as_bytes());
                out.push(b')');
            }
            out.extend_from_slice(b": (");
            out.extend_from_slice(&d[2..]);
            out.push(b')');
        }
        _ => {
            out.extend_from_slice(b"\n; LOCAL OPT: ");
            num(code, out);
            out.extend_from_slice(b":0x");
            write_hex_lower(d, out);
        }
    }
    Ok(())
}

/// EDNS Client Subnet (RFC 7871): `address/source/scope`, an IPv6 address in brackets.
fn write_subnet(d: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    let &[f0, f1, source, scope, ref addr @ ..] = d else {
        return Err(ERR_BUF);
    };
    let family = u16::from_be_bytes([f0, f1]);
    let mut a = [0u8; 16];
    match family {
        0 => {
            if source != 0 {
                return Err(Fail::new("dns: bad address family"));
            }
            out.extend_from_slice(b"0.0.0.0");
        }
        1 => {
            if source > 32 || scope > 32 {
                return Err(Fail::new("dns: bad netmask"));
            }
            let n = addr.len().min(4);
            a[..n].copy_from_slice(&addr[..n]);
            write_ip(&a[..4], out);
        }
        2 => {
            if source > 128 || scope > 128 {
                return Err(Fail::new("dns: bad netmask"));
            }
            let n = addr.len().min(16);
            a[..n].copy_from_slice(&addr[..n]);
            if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
                write_ip(&a, out);
            } else {
                out.push(b'[');
                write_ip(&a, out);
                out.push(b']');
            }
        }
        _ => return Err(Fail::new("dns: bad address family")),
    }
    out.push(b'/');
    num(source, out);
    out.push(b'/');
    num(scope, out);
    Ok(())
}
