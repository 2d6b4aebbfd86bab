//! Presentation format of rdata (the zone-file text dig prints), written into a caller's
//! `Vec<u8>`. Known types are decoded field by field; every other type, and a known
//! type whose fields cannot be expressed in its presentation form, is written in the
//! RFC 3597 generic form `\# <len> <HEX>`. Rdata that does not match its type's wire
//! layout is an error (the caller marks the record malformed) and nothing is written.
//!
//! Names inside rdata are read with [`Name::parse`] against the message cut at the end
//! of the rdata: compression pointers may point anywhere before (RFC 3597 §4 allows them
//! for the RFC 1035 types; accepting them everywhere costs nothing), but a name can never
//! run past its rdata.
//!
//! Choices where presentations differ between tools (documented for the formatters):
//! hex is upper case (DS digests, SSHFP/TLSA data, NSEC3 salt, generic rdata: as dig and
//! RFC 3597 print them); base64 and hex are written as one unbroken token; RRSIG times
//! are always `YYYYMMDDHHmmSS`; CAA tags, SVCB keys and TXT strings follow RFC 8659,
//! RFC 9460 and dig. Empty rdata of a fixed-layout type is an error here: UPDATE
//! deletions (class ANY/NONE, RFC 2136 §2.5) carry none, and only the caller knows the
//! class.
#![forbid(unsafe_code)]

use super::name::Name;
use super::text::{
    write_base32hex, write_base64, write_escaped, write_hex_upper, write_ipv4, write_ipv6,
    write_quoted, write_rrsig_time, write_u64,
};
use super::{types, DnsError, DnsErrorKind};
use std::ops::Range;

/// Writes the presentation of `rtype` rdata at `rdata` in `msg`, appending to `out`.
/// On error `out` is left as it was.
pub fn write_presentation(
    msg: &[u8],
    rtype: u16,
    rdata: Range<usize>,
    out: &mut Vec<u8>,
) -> Result<(), DnsError> {
    if rdata.start > rdata.end || rdata.end > msg.len() {
        return Err(DnsError::new(
            DnsErrorKind::Truncated,
            rdata.start.min(msg.len()),
        ));
    }
    let mark = out.len();
    let mut r = Reader {
        msg: msg.get(..rdata.end).unwrap_or(msg),
        pos: rdata.start,
    };
    match write_known(rtype, &mut r, out) {
        Ok(()) if r.pos == rdata.end => Ok(()),
        Ok(()) => {
            out.truncate(mark);
            Err(DnsError::new(DnsErrorKind::BadRdata, r.pos))
        }
        Err(Fail::Generic) => {
            out.truncate(mark);
            write_generic(msg.get(rdata).unwrap_or(&[]), out);
            Ok(())
        }
        Err(Fail::Bad(e)) => {
            out.truncate(mark);
            Err(e)
        }
    }
}

/// RFC 3597 §5: `\# <length> <hex>` (`\# 0` for empty rdata).
pub fn write_generic(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\# ");
    write_u64(data.len() as u64, out);
    if !data.is_empty() {
        out.push(b' ');
        write_hex_upper(data, out);
    }
}

enum Fail {
    /// The rdata is malformed.
    Bad(DnsError),
    /// Well-formed on the wire but not expressible in the type's own text form.
    Generic,
}

impl From<DnsError> for Fail {
    fn from(e: DnsError) -> Fail {
        Fail::Bad(e)
    }
}

/// A cursor over one rdata. `msg` ends where the rdata ends; `pos <= msg.len()`.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bad(&self) -> Fail {
        Fail::Bad(DnsError::new(DnsErrorKind::BadRdata, self.pos))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let Some(b) = self.msg.get(self.pos..self.pos + n) else {
            return Err(Fail::Bad(DnsError::new(DnsErrorKind::Truncated, self.pos)));
        };
        self.pos += n;
        Ok(b)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Fail> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Fail> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = self.msg.get(self.pos..).unwrap_or(&[]);
        self.pos = self.msg.len();
        r
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.msg.len()
    }
    fn name(&mut self) -> Result<Name<'a>, Fail> {
        let (n, end) = Name::parse(self.msg, self.pos)?;
        self.pos = end;
        Ok(n)
    }
    /// `<character-string>`: a length byte and that many bytes.
    fn char_string(&mut self) -> Result<&'a [u8], Fail> {
        let n = self.u8()? as usize;
        self.bytes(n)
    }
}

fn num(n: impl Into<u64>, out: &mut Vec<u8>) {
    write_u64(n.into(), out);
}

fn sp(out: &mut Vec<u8>) {
    out.push(b' ');
}

fn write_known(rtype: u16, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    match rtype {
        types::A => write_ipv4(r.array()?, out),
        types::AAAA => write_ipv6(r.array()?, out),
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: one name
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => r.name()?.write_presentation(out),
        // MX, AFSDB, RT, KX: preference and a name
        15 | 18 | 21 | 36 => {
            num(r.u16()?, out);
            sp(out);
            r.name()?.write_presentation(out);
        }
        // MINFO, RP: two names
        14 | 17 => {
            r.name()?.write_presentation(out);
            sp(out);
            r.name()?.write_presentation(out);
        }
        types::SOA => {
            r.name()?.write_presentation(out);
            sp(out);
            r.name()?.write_presentation(out);
            for _ in 0..5 {
                sp(out);
                num(r.u32()?, out);
            }
        }
        // TXT, SPF: one or more character-strings
        types::TXT | 99 => {
            if r.is_empty() {
                return Err(r.bad());
            }
            let mut first = true;
            while !r.is_empty() {
                if !first {
                    sp(out);
                }
                write_quoted(r.char_string()?, out);
                first = false;
            }
        }
        types::HINFO => {
            write_quoted(r.char_string()?, out);
            sp(out);
            write_quoted(r.char_string()?, out);
        }
        types::SRV => {
            for _ in 0..3 {
                num(r.u16()?, out);
                sp(out);
            }
            r.name()?.write_presentation(out);
        }
        // NAPTR (RFC 3403): order, preference, flags, services, regexp, replacement
        35 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u16()?, out);
            for _ in 0..3 {
                sp(out);
                write_quoted(r.char_string()?, out);
            }
            sp(out);
            r.name()?.write_presentation(out);
        }
        types::CAA => {
            num(r.u8()?, out);
            sp(out);
            let tag = r.char_string()?;
            // RFC 8659 §4.1: the tag is 1..=15 letters and digits, printed bare.
            if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(Fail::Generic);
            }
            out.extend_from_slice(tag);
            sp(out);
            write_quoted(r.rest(), out);
        }
        // DS, CDS, DLV: key tag, algorithm, digest type, digest
        types::DS | 59 | 32769 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            let digest = r.rest();
            if digest.is_empty() {
                return Err(Fail::Generic);
            }
            write_hex_upper(digest, out);
        }
        // DNSKEY, CDNSKEY, KEY: flags, protocol, algorithm, key
        types::DNSKEY | 60 | 25 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            let key = r.rest();
            if !key.is_empty() {
                sp(out);
                write_base64(key, out);
            }
        }
        // RRSIG, SIG
        types::RRSIG | 24 => {
            types::write_rtype(r.u16()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u32()?, out);
            sp(out);
            write_rrsig_time(r.u32()?, out);
            sp(out);
            write_rrsig_time(r.u32()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            r.name()?.write_presentation(out);
            let sig = r.rest();
            if !sig.is_empty() {
                sp(out);
                write_base64(sig, out);
            }
        }
        types::NSEC => {
            r.name()?.write_presentation(out);
            write_type_bitmap(r, out)?;
        }
        types::NSEC3 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            write_salt(r.char_string()?, out);
            sp(out);
            let hash = r.char_string()?;
            if hash.is_empty() {
                return Err(r.bad());
            }
            write_base32hex(hash, out);
            write_type_bitmap(r, out)?;
        }
        // NSEC3PARAM
        51 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            write_salt(r.char_string()?, out);
        }
        // SSHFP: algorithm, fingerprint type, fingerprint
        44 => {
            num(r.u8()?, out);
            sp(out);
            num(r.u8()?, out);
            sp(out);
            hex_nonempty(r.rest(), out)?;
        }
        // TLSA, SMIMEA: usage, selector, matching type, data
        52 | 53 => {
            for _ in 0..3 {
                num(r.u8()?, out);
                sp(out);
            }
            hex_nonempty(r.rest(), out)?;
        }
        // URI (RFC 7553): priority, weight, target as one quoted string
        256 => {
            num(r.u16()?, out);
            sp(out);
            num(r.u16()?, out);
            sp(out);
            let target = r.rest();
            if target.is_empty() {
                return Err(r.bad());
            }
            write_quoted(target, out);
        }
        types::SVCB | types::HTTPS => write_svcb(r, out)?,
        _ => return Err(Fail::Generic),
    }
    Ok(())
}

fn hex_nonempty(data: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    if data.is_empty() {
        return Err(Fail::Generic);
    }
    write_hex_upper(data, out);
    Ok(())
}

/// NSEC3 salt: hex, or `-` when empty (RFC 5155 §3.3).
fn write_salt(salt: &[u8], out: &mut Vec<u8>) {
    if salt.is_empty() {
        out.push(b'-');
    } else {
        write_hex_upper(salt, out);
    }
}

/// The NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2), each type preceded by a space.
///
/// ```text
/// { | window (8) | length (8, 1..=32) | bitmap (length bytes, MSB = lowest type) | }*
/// ```
/// Windows must be in increasing order.
fn write_type_bitmap(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    let mut last_window: Option<u8> = None;
    while !r.is_empty() {
        let window = r.u8()?;
        let len = r.u8()? as usize;
        if len == 0 || len > 32 || last_window.is_some_and(|w| w >= window) {
            return Err(r.bad());
        }
        last_window = Some(window);
        let bits = r.bytes(len)?;
        for (i, &byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let t = (window as u16) << 8 | (i as u16 * 8 + bit);
                    sp(out);
                    types::write_rtype(t, out);
                }
            }
        }
    }
    Ok(())
}

/// SVCB/HTTPS (RFC 9460 §2.2): priority, target, then the SvcParams.
///
/// ```text
/// | SvcPriority (16) | TargetName | { | SvcParamKey (16) | length (16) | value | }* |
/// ```
/// Keys must be strictly increasing (§2.2: otherwise the RR is malformed).
fn write_svcb(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Fail> {
    num(r.u16()?, out);
    sp(out);
    r.name()?.write_presentation(out);
    let mut last: Option<u16> = None;
    while !r.is_empty() {
        let key = r.u16()?;
        if last.is_some_and(|k| k >= key) {
            return Err(r.bad());
        }
        last = Some(key);
        let len = r.u16()? as usize;
        let at = r.pos;
        let value = r.bytes(len)?;
        let bad = || Fail::Bad(DnsError::new(DnsErrorKind::BadRdata, at));
        sp(out);
        write_svc_key(key, out);
        match key {
            // mandatory: a non-empty list of keys
            0 => {
                if value.is_empty() || value.len() % 2 != 0 {
                    return Err(bad());
                }
                out.push(b'=');
                for (i, k) in value.chunks_exact(2).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let &[hi, lo] = k {
                        write_svc_key(u16::from_be_bytes([hi, lo]), out);
                    }
                }
            }
            // alpn: a non-empty list of non-empty length-prefixed ids, shown as
            // a quoted comma-separated list (commas and backslashes inside an id are
            // escaped twice: once for the list, once for the character-string).
            1 => {
                out.extend_from_slice(b"=\"");
                let mut v = Reader { msg: value, pos: 0 };
                if v.is_empty() {
                    return Err(bad());
                }
                let mut first = true;
                while !v.is_empty() {
                    let id = v.char_string().map_err(|_| bad())?;
                    if id.is_empty() {
                        return Err(bad());
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    for &b in id {
                        match b {
                            b',' => out.extend_from_slice(b"\\\\,"),
                            b'\\' => out.extend_from_slice(b"\\\\\\\\"),
                            _ => write_escaped(&[b], out),
                        }
                    }
                }
                out.push(b'"');
            }
            // no-default-alpn: no value
            2 => {
                if !value.is_empty() {
                    return Err(bad());
                }
            }
            3 => {
                let [a, b] = *value else { return Err(bad()) };
                out.push(b'=');
                num(u16::from_be_bytes([a, b]), out);
            }
            4 => {
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(bad());
                }
                out.push(b'=');
                for (i, a) in value.chunks_exact(4).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let &[a, b, c, d] = a {
                        write_ipv4([a, b, c, d], out);
                    }
                }
            }
            // ech: the ECHConfigList in base64
            5 => {
                out.push(b'=');
                write_base64(value, out);
            }
            6 => {
                if value.is_empty() || value.len() % 16 != 0 {
                    return Err(bad());
                }
                out.push(b'=');
                for (i, a) in value.chunks_exact(16).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let mut addr = [0u8; 16];
                    addr.copy_from_slice(a);
                    write_ipv6(addr, out);
                }
            }
            // dohpath (RFC 9461) and unknown keys: a quoted string, omitted when empty
            _ => {
                if !value.is_empty() {
                    out.push(b'=');
                    write_quoted(value, out);
                }
            }
        }
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
        8 => b"ohttp",
        _ => {
            out.extend_from_slice(b"key");
            num(key, out);
            return;
        }
    };
    out.extend_from_slice(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12-byte header, then "example.test." at offset 12 (so `0xc0 0x0c` points to it),
    /// then the rdata.
    const PREFIX: &[u8] = b"\0\0\0\0\0\0\0\0\0\0\0\0\x07example\x04test\x00";

    fn show(rtype: u16, rdata: &[u8]) -> Result<String, DnsErrorKind> {
        let mut m = PREFIX.to_vec();
        m.extend_from_slice(rdata);
        let mut out = b"keep:".to_vec();
        let res = write_presentation(&m, rtype, PREFIX.len()..m.len(), &mut out);
        let s = String::from_utf8(out).unwrap();
        match res {
            Ok(()) => Ok(s.strip_prefix("keep:").unwrap().to_string()),
            Err(e) => {
                assert_eq!(s, "keep:", "output must be rolled back on error");
                Err(e.kind)
            }
        }
    }

    /// Every strict prefix of a well-formed rdata must be an error, never a panic.
    fn all_prefixes_fail(rtype: u16, rdata: &[u8]) {
        for cut in 0..rdata.len() {
            assert!(
                show(rtype, &rdata[..cut]).is_err(),
                "type {rtype} cut {cut}"
            );
        }
    }

    /// Prefixes cut inside a field fail; cuts at `ok_cuts` (the end of a complete list
    /// item) are well-formed rdata.
    fn prefixes_fail_except(rtype: u16, rdata: &[u8], ok_cuts: &[usize]) {
        for cut in 0..rdata.len() {
            let r = show(rtype, &rdata[..cut]);
            assert_eq!(
                r.is_ok(),
                ok_cuts.contains(&cut),
                "type {rtype} cut {cut}: {r:?}"
            );
        }
    }

    fn name(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in s.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn addresses() {
        assert_eq!(show(1, &[192, 0, 2, 1]).unwrap(), "192.0.2.1");
        assert_eq!(show(1, &[192, 0, 2]), Err(DnsErrorKind::Truncated));
        assert_eq!(show(1, &[192, 0, 2, 1, 0]), Err(DnsErrorKind::BadRdata));
        let a6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(show(28, &a6).unwrap(), "2001:db8::1");
        all_prefixes_fail(28, &a6);
    }

    #[test]
    fn single_names_compressed_or_not() {
        for t in [2, 5, 12, 39] {
            assert_eq!(
                show(t, &name("ns1.example.test")).unwrap(),
                "ns1.example.test."
            );
            assert_eq!(
                show(t, &[3, b'n', b's', b'1', 0xc0, 12]).unwrap(),
                "ns1.example.test."
            );
            assert_eq!(show(t, &[0xc0, 12]).unwrap(), "example.test.");
            assert_eq!(show(t, &[0]).unwrap(), ".");
            all_prefixes_fail(t, &name("ns1.example.test"));
            // pointer to itself / forwards
            assert_eq!(
                show(t, &[0xc0, PREFIX.len() as u8]),
                Err(DnsErrorKind::BadPointer)
            );
            assert_eq!(show(t, &[0xc0, 200]), Err(DnsErrorKind::BadPointer));
            // trailing garbage
            assert_eq!(show(t, &[0, 0]), Err(DnsErrorKind::BadRdata));
        }
    }

    #[test]
    fn mx_srv_soa() {
        let mx = cat(&[&[0, 10], &[4, b'm', b'a', b'i', b'l', 0xc0, 12]]);
        assert_eq!(show(15, &mx).unwrap(), "10 mail.example.test.");
        all_prefixes_fail(15, &mx);
        let srv = cat(&[&[0, 1, 0, 2, 0x01, 0xbb], &name("www.example.test")]);
        assert_eq!(show(33, &srv).unwrap(), "1 2 443 www.example.test.");
        all_prefixes_fail(33, &srv);
        let soa = cat(&[
            &[3, b'n', b's', b'1', 0xc0, 12],
            &[10],
            b"hostmaster",
            &[0xc0, 12],
            &2024010101u32.to_be_bytes(),
            &3600u32.to_be_bytes(),
            &900u32.to_be_bytes(),
            &604800u32.to_be_bytes(),
            &300u32.to_be_bytes(),
        ]);
        assert_eq!(
            show(6, &soa).unwrap(),
            "ns1.example.test. hostmaster.example.test. 2024010101 3600 900 604800 300"
        );
        all_prefixes_fail(6, &soa);
    }

    #[test]
    fn txt_hinfo_caa_uri() {
        let txt = b"\x05hello\x0asay \"hi\" \\\x02\x00\xff";
        assert_eq!(
            show(16, txt).unwrap(),
            r#""hello" "say \"hi\" \\" "\000\255""#
        );
        assert_eq!(show(16, b"\x00").unwrap(), r#""""#);
        assert_eq!(show(16, b""), Err(DnsErrorKind::BadRdata));
        assert_eq!(show(16, b"\x05hell"), Err(DnsErrorKind::Truncated));
        assert_eq!(show(13, b"\x03CPU\x02OS").unwrap(), r#""CPU" "OS""#);
        all_prefixes_fail(13, b"\x03CPU\x02OS");
        let caa = b"\x00\x05issueletsencrypt.org";
        assert_eq!(show(257, caa).unwrap(), r#"0 issue "letsencrypt.org""#);
        assert_eq!(
            show(257, b"\x80\x05iodefmailto:a@b").unwrap(),
            r#"128 iodef "mailto:a@b""#
        );
        assert_eq!(show(257, b"\x00\x02i!x").unwrap(), r"\# 5 0002692178");
        all_prefixes_fail(257, &caa[..7]);
        let uri = b"\x00\x0a\x00\x01https://example.test/";
        assert_eq!(show(256, uri).unwrap(), r#"10 1 "https://example.test/""#);
        assert_eq!(show(256, &uri[..4]), Err(DnsErrorKind::BadRdata));
    }

    #[test]
    fn dnssec_types() {
        let ds = cat(&[&[0x30, 0x39, 8, 2], &[0x49, 0xfd, 0x46, 0xe6]]);
        assert_eq!(show(43, &ds).unwrap(), "12345 8 2 49FD46E6");
        assert_eq!(show(43, &ds[..4]).unwrap(), r"\# 4 30390802");
        all_prefixes_fail(43, &ds[..4]);
        let key = cat(&[&[1, 1, 3, 13], b"foobar"]);
        assert_eq!(show(48, &key).unwrap(), "257 3 13 Zm9vYmFy");
        all_prefixes_fail(48, &key[..4]);
        let rrsig = cat(&[
            &[0, 1, 13, 2],
            &3600u32.to_be_bytes(),
            &1_704_067_199u32.to_be_bytes(),
            &951_782_400u32.to_be_bytes(),
            &[0x30, 0x39, 0xc0, 12],
            b"foob",
        ]);
        assert_eq!(
            show(46, &rrsig).unwrap(),
            "A 13 2 3600 20231231235959 20000229000000 12345 example.test. Zm9vYg=="
        );
        all_prefixes_fail(46, &rrsig[..20]);
        // NSEC: next name, bitmap for A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY and CAA
        let nsec = cat(&[
            &name("a.example.test"),
            &[0, 7, 0x62, 0x01, 0x80, 0x08, 0x00, 0x03, 0x80],
            &[1, 1, 0x40],
        ]);
        assert_eq!(
            show(47, &nsec).unwrap(),
            "a.example.test. A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY CAA"
        );
        prefixes_fail_except(47, &nsec, &[16, 25]);
        // windows out of order, zero-length window, window too long
        let bad = cat(&[&[0], &[1, 1, 0x40], &[0, 1, 0x40]]);
        assert_eq!(show(47, &bad), Err(DnsErrorKind::BadRdata));
        assert_eq!(show(47, &[0, 0, 0]), Err(DnsErrorKind::BadRdata));
        let mut long = vec![0, 0, 33];
        long.extend_from_slice(&[0u8; 33]);
        assert_eq!(show(47, &long), Err(DnsErrorKind::BadRdata));
        // unknown type in a bitmap: window 1, bit 7 = type 263
        assert_eq!(show(47, &[0, 1, 1, 0x01]).unwrap(), ". TYPE263");
        let nsec3 = cat(&[
            &[1, 1, 0, 10, 4, 0xaa, 0xbb, 0xcc, 0xdd, 5],
            b"foobr",
            &[0, 1, 0x40],
        ]);
        assert_eq!(show(50, &nsec3).unwrap(), "1 1 10 AABBCCDD CPNMUOJI A");
        let nsec3_nosalt = [1, 0, 0, 0, 0, 1, 0xff];
        assert_eq!(show(50, &nsec3_nosalt).unwrap(), "1 0 0 - VS");
        assert_eq!(show(50, &[1, 0, 0, 0, 0, 0]), Err(DnsErrorKind::BadRdata));
        prefixes_fail_except(50, &nsec3, &[15]);
        assert_eq!(show(51, &[1, 0, 0, 5, 0]).unwrap(), "1 0 5 -");
        assert_eq!(show(51, &[1, 0, 0, 5, 1, 0xab]).unwrap(), "1 0 5 AB");
    }

    #[test]
    fn naptr_rp_afsdb() {
        let naptr = cat(&[
            &[0, 100, 0, 10],
            b"\x01U\x07E2U+sip\x1c!^.*$!sip:info@example.test!",
            &[0],
        ]);
        assert_eq!(
            show(35, &naptr).unwrap(),
            r#"100 10 "U" "E2U+sip" "!^.*$!sip:info@example.test!" ."#
        );
        all_prefixes_fail(35, &naptr);
        let rp = cat(&[&[5], b"admin", &[0xc0, 12], &[0]]);
        assert_eq!(show(17, &rp).unwrap(), "admin.example.test. .");
        all_prefixes_fail(17, &rp);
        assert_eq!(show(18, &[0, 1, 0xc0, 12]).unwrap(), "1 example.test.");
    }

    #[test]
    fn sshfp_tlsa() {
        assert_eq!(show(44, &[1, 2, 0xde, 0xad]).unwrap(), "1 2 DEAD");
        assert_eq!(show(44, &[1, 2]).unwrap(), r"\# 2 0102");
        assert_eq!(show(52, &[3, 1, 1, 0xbe, 0xef]).unwrap(), "3 1 1 BEEF");
        all_prefixes_fail(52, &[3, 1, 1]);
    }

    #[test]
    fn svcb_https() {
        let https = cat(&[
            &[0, 1, 0],
            &[0, 0, 0, 4, 0, 1, 0, 3],
            &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'],
            &[0, 2, 0, 0],
            &[0, 3, 0, 2, 0x01, 0xbb],
            &[0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2],
            &[0, 5, 0, 3, b'f', b'o', b'o'],
            &[
                0, 6, 0, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
            &[0, 7, 0, 5],
            b"/q{?}",
            &[0xfd, 0xe9, 0, 2, b'a', b'"'],
            &[0xfd, 0xea, 0, 0],
        ]);
        assert_eq!(
            show(65, &https).unwrap(),
            "1 . mandatory=alpn,port alpn=\"h2,h3\" no-default-alpn port=443 \
             ipv4hint=192.0.2.1,192.0.2.2 ech=Zm9v ipv6hint=2001:db8::1 dohpath=\"/q{?}\" \
             key65001=\"a\\\"\" key65002"
        );
        prefixes_fail_except(65, &https, &[3, 11, 21, 25, 31, 43, 50, 70, 79, 85]);
        let alias = cat(&[&[0, 0], &name("svc.example.test")]);
        assert_eq!(show(64, &alias).unwrap(), "0 svc.example.test.");
        // alpn ids with a comma and a backslash
        let esc = cat(&[&[0, 1, 0], &[0, 1, 0, 4, 3, b'a', b',', b'\\']]);
        assert_eq!(show(65, &esc).unwrap(), r#"1 . alpn="a\\,\\\\""#);
        // keys out of order, duplicate keys, bad lengths
        let bad = [
            cat(&[&[0, 1, 0], &[0, 3, 0, 2, 0, 1], &[0, 1, 0, 1, 0]]),
            cat(&[&[0, 1, 0], &[0, 3, 0, 2, 0, 1], &[0, 3, 0, 2, 0, 1]]),
            cat(&[&[0, 1, 0], &[0, 3, 0, 1, 0]]),
            cat(&[&[0, 1, 0], &[0, 2, 0, 1, 0]]),
            cat(&[&[0, 1, 0], &[0, 4, 0, 3, 1, 2, 3]]),
            cat(&[&[0, 1, 0], &[0, 6, 0, 4, 1, 2, 3, 4]]),
            cat(&[&[0, 1, 0], &[0, 0, 0, 1, 0]]),
            cat(&[&[0, 1, 0], &[0, 1, 0, 0]]),
            cat(&[&[0, 1, 0], &[0, 1, 0, 1, 0]]),
            cat(&[&[0, 1, 0], &[0, 1, 0, 2, 2, b'h']]),
            cat(&[&[0, 1, 0], &[0, 3, 0, 9, 0, 1]]),
        ];
        for (i, b) in bad.iter().enumerate() {
            assert!(show(65, b).is_err(), "case {i}: {:?}", show(65, b));
        }
    }

    #[test]
    fn generic_and_odd_ranges() {
        assert_eq!(show(65280, &[0xa, 0, 0, 1]).unwrap(), r"\# 4 0A000001");
        assert_eq!(show(65280, &[]).unwrap(), r"\# 0");
        assert_eq!(show(41, &[0, 10, 0, 0]).unwrap(), r"\# 4 000A0000");
        let m = [0u8; 4];
        let mut out = Vec::new();
        assert!(write_presentation(&m, 1, 2..6, &mut out).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..2;
        assert!(write_presentation(&m, 1, backwards, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn names_cannot_run_past_rdata() {
        // rdata of 2 bytes: a label of length 5 running into the bytes after it
        let mut m = PREFIX.to_vec();
        let start = m.len();
        m.extend_from_slice(&[5, b'a', b'b', b'c', b'd', b'e', 0]);
        let mut out = Vec::new();
        let r = write_presentation(&m, 5, start..start + 2, &mut out);
        assert_eq!(r.unwrap_err().kind, DnsErrorKind::Truncated);
    }
}
