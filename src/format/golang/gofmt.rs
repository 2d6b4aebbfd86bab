//! How Go renders the values the `dnstap` CLI prints: `net.IP.String`, `time.Time.Format`
//! (the three layouts the CLI uses), `strconv.Quote` and `encoding/json` string escaping.
//! Byte writers into a caller's buffer, no allocation. Knows nothing of dnstap or DNS.
#![forbid(unsafe_code)]

use crate::dns::write_u64;
use crate::format::escape::civil_from_days;

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(super) fn push_hex(b: u8, out: &mut Vec<u8>) {
    out.push(HEX[(b >> 4) as usize]);
    out.push(HEX[(b & 15) as usize]);
}

/// Lower-case hex of every byte (Go's `hex.EncodeToString`).
pub(super) fn write_hex_lower(data: &[u8], out: &mut Vec<u8>) {
    for &b in data {
        push_hex(b, out);
    }
}

/// Upper-case hex (`strings.ToUpper` of the above, `%X`).
pub(super) fn write_hex_upper(data: &[u8], out: &mut Vec<u8>) {
    const UP: &[u8; 16] = b"0123456789ABCDEF";
    for &b in data {
        out.push(UP[(b >> 4) as usize]);
        out.push(UP[(b & 15) as usize]);
    }
}

/// RFC 4648 §4 base64 with padding (`base64.StdEncoding`).
pub(super) fn write_base64(data: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in data.chunks(3) {
        let v = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        out.push(A[(v >> 18 & 63) as usize]);
        out.push(A[(v >> 12 & 63) as usize]);
        out.push(if c.len() > 1 {
            A[(v >> 6 & 63) as usize]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            A[(v & 63) as usize]
        } else {
            b'='
        });
    }
}

/// RFC 4648 §7 base32 "extended hex" alphabet, no padding (miekg's NSEC3 hashes).
pub(super) fn write_base32hex(data: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    for c in data.chunks(5) {
        let mut v = 0u64;
        for i in 0..5 {
            v = v << 8 | c.get(i).copied().unwrap_or(0) as u64;
        }
        // Characters carrying data: ceil(bits / 5).
        for i in 0..(c.len() * 8).div_ceil(5) {
            out.push(A[(v >> (35 - 5 * i) & 31) as usize]);
        }
    }
}

/// `net.IP(addr).String()`: `<nil>` for no bytes, dotted quad for 4 bytes and for an
/// IPv4-mapped IPv6 address, RFC 5952 for 16 bytes, `?` and hex for any other length.
pub(super) fn write_ip(addr: &[u8], out: &mut Vec<u8>) {
    match addr.len() {
        0 => out.extend_from_slice(b"<nil>"),
        4 => write_dotted(addr, out),
        16 if addr[..10].iter().all(|&b| b == 0) && addr[10] == 0xff && addr[11] == 0xff => {
            write_dotted(&addr[12..], out)
        }
        16 => write_ipv6(addr, out),
        _ => {
            out.push(b'?');
            write_hex_lower(addr, out);
        }
    }
}

fn write_dotted(a: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in a.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_u64(b.into(), out);
    }
}

/// Go's IPv6 text: the longest run of two or more zero groups (the first of equals)
/// becomes `::`; groups are lower-case hex without leading zeros.
fn write_ipv6(a: &[u8], out: &mut Vec<u8>) {
    let g = |i: usize| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        let mut j = i;
        while j < 8 && g(j) == 0 {
            j += 1;
        }
        if j - i >= 2 && j - i > best_len {
            best = i;
            best_len = j - i;
        }
        i = j.max(i + 1);
    }
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.extend_from_slice(b"::");
            i += best_len;
            continue;
        }
        if i > 0 && i != best + best_len {
            out.push(b':');
        }
        let v = g(i);
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let d = (v >> shift & 15) as usize;
            if d != 0 || started || shift == 0 {
                out.push(HEX[d]);
                started = true;
            }
        }
        i += 1;
    }
}

/// A moment as Go's `time.Unix(sec, nsec).UTC()` holds it: seconds since the epoch
/// (nanoseconds past one second carried over) and the nanoseconds within the second.
fn normalise(sec: u64, nsec: u32) -> (i64, u32) {
    (
        (sec as i64).wrapping_add((nsec / 1_000_000_000) as i64),
        nsec % 1_000_000_000,
    )
}

fn two(v: u32, out: &mut Vec<u8>) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

/// `HH:MM:SS` of the second `sec` in UTC.
fn write_clock(sec: i64, out: &mut Vec<u8>) {
    let rem = sec.rem_euclid(86_400) as u32;
    two(rem / 3600, out);
    out.push(b':');
    two(rem / 60 % 60, out);
    out.push(b':');
    two(rem % 60, out);
}

/// `YYYY-MM-DD<sep>HH:MM:SS`, then the fraction as Go's `.999999999` writes it (trailing
/// zeros dropped, no dot when it is zero).
fn write_date_time(sec: u64, nsec: u32, sep: u8, out: &mut Vec<u8>) {
    let (sec, nsec) = normalise(sec, nsec);
    let (year, month, day) = civil_from_days(sec.div_euclid(86_400));
    if (0..10_000).contains(&year) {
        two((year / 100) as u32, out);
        two((year % 100) as u32, out);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
    }
    out.push(b'-');
    two(month, out);
    out.push(b'-');
    two(day, out);
    out.push(sep);
    write_clock(sec, out);
    if nsec != 0 {
        let mut digits = [0u8; 9];
        let mut n = nsec;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
}

/// The quiet text's time: `15:04:05` of the seconds (the CLI uses the local zone: we
/// write UTC), then `.%06d` of the nanoseconds divided by 1000 (more digits when the
/// field is past a second, as Go's `%06d` does).
pub(super) fn write_quiet_time(sec: u64, nsec: u32, out: &mut Vec<u8>) {
    write_clock(sec as i64, out);
    out.push(b'.');
    let us = nsec / 1000;
    let mut b = itoa::Buffer::new();
    let s = b.format(us).as_bytes();
    for _ in s.len()..6 {
        out.push(b'0');
    }
    out.extend_from_slice(s);
}

/// YAML's `2006-01-02 15:04:05.999999999` (UTC).
pub(super) fn write_yaml_time(sec: u64, nsec: u32, out: &mut Vec<u8>) {
    write_date_time(sec, nsec, b' ', out);
}

/// JSON's `time.RFC3339Nano` in UTC (`2006-01-02T15:04:05.999999999Z`).
pub(super) fn write_json_time(sec: u64, nsec: u32, out: &mut Vec<u8>) {
    write_date_time(sec, nsec, b'T', out);
    out.push(b'Z');
}

/// Decodes one UTF-8 character at the start of `s` as Go does: `(char, width)`, or
/// `None` for an invalid byte (Go's `RuneError` of width 1).
fn decode_utf8(s: &[u8]) -> Option<(char, usize)> {
    let w = match s.first()? {
        0..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let c = std::str::from_utf8(s.get(..w)?).ok()?.chars().next()?;
    Some((c, w))
}

/// Go's `unicode.IsPrint` for a non-ASCII character, to the extent the CLI's inputs need:
/// C1 controls, format characters, separators other than the ASCII space, private use
/// and non-characters are not printable. (Unassigned code points are taken as printable;
/// Go's tables say otherwise.)
fn go_is_print(c: char) -> bool {
    !matches!(c as u32,
        0x80..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x1680 | 0x180e
        | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f | 0x3000
        | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff
        | 0xe0000..=0xe0fff | 0xf0000..=0x10ffff)
}

/// `strconv.Quote(string(v))`, quotes included.
pub(super) fn write_go_quote(v: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    while i < v.len() {
        let Some((c, w)) = decode_utf8(&v[i..]) else {
            out.extend_from_slice(b"\\x");
            push_hex(v[i], out);
            i += 1;
            continue;
        };
        match c {
            '"' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            ' '..='~' => out.push(c as u8),
            '\x07' => out.extend_from_slice(b"\\a"),
            '\x08' => out.extend_from_slice(b"\\b"),
            '\x0c' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\x0b' => out.extend_from_slice(b"\\v"),
            '\0'..='\x1f' | '\x7f' => {
                out.extend_from_slice(b"\\x");
                push_hex(c as u8, out);
            }
            _ if go_is_print(c) => out.extend_from_slice(&v[i..i + w]),
            _ => {
                let n = c as u32;
                if n < 0x10000 {
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[(n >> shift & 15) as usize]);
                    }
                } else {
                    out.extend_from_slice(b"\\U");
                    for shift in [28, 24, 20, 16, 12, 8, 4, 0] {
                        out.push(HEX[(n >> shift & 15) as usize]);
                    }
                }
            }
        }
        i += w;
    }
    out.push(b'"');
}

/// The body of a JSON string as Go 1.19's `encoding/json` writes it (HTML escaping on):
/// `"` and `\` escaped, `\n` `\r` `\t`, other controls and `<` `>` `&` as `\u00XX`,
/// U+2028/U+2029 as `\u2028`/`\u2029`, each byte of invalid UTF-8 as `\ufffd`.
pub(super) fn write_json_body(v: &[u8], out: &mut Vec<u8>) {
    // PERF: names, addresses and the dig text are mostly plain ASCII: copy safe runs whole.
    let mut i = 0;
    while i < v.len() {
        let start = i;
        while i < v.len() && json_safe(v[i]) {
            i += 1;
        }
        out.extend_from_slice(&v[start..i]);
        if i == v.len() {
            break;
        }
        let b = v[i];
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => {
                    out.extend_from_slice(b"\\u00");
                    push_hex(b, out);
                }
            }
            i += 1;
            continue;
        }
        match decode_utf8(&v[i..]) {
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
            }
            Some(('\u{2028}', w)) => {
                out.extend_from_slice(b"\\u2028");
                i += w;
            }
            Some(('\u{2029}', w)) => {
                out.extend_from_slice(b"\\u2029");
                i += w;
            }
            Some((_, w)) => {
                out.extend_from_slice(&v[i..i + w]);
                i += w;
            }
        }
    }
}

#[inline]
fn json_safe(b: u8) -> bool {
    (0x20..=0x7f).contains(&b) && !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl Fn(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn addresses_as_go_prints_them() {
        assert_eq!(s(|o| write_ip(&[], o)), "<nil>");
        assert_eq!(s(|o| write_ip(&[1, 2, 3], o)), "?010203");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(s(|o| write_ip(&v6, o)), "::1");
        v6[10] = 0xff;
        v6[11] = 0xff;
        assert_eq!(s(|o| write_ip(&v6, o)), "0.0.0.1");
        let a: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(s(|o| write_ip(&a, o)), "2001:db8:0:1::1");
        let b: [u8; 16] = [0x20, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(s(|o| write_ip(&b, o)), "2001:0:0:1:1::");
        let c: [u8; 16] = [0x20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(s(|o| write_ip(&c, o)), "2001::1:0:0:1:0");
    }

    #[test]
    fn times() {
        assert_eq!(
            s(|o| write_yaml_time(1_700_000_000, 0, o)),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            s(|o| write_yaml_time(1_700_000_000, 1_500_000_000, o)),
            "2023-11-14 22:13:21.5"
        );
        assert_eq!(
            s(|o| write_json_time(1_700_000_000, 123_456_780, o)),
            "2023-11-14T22:13:20.12345678Z"
        );
        assert_eq!(
            s(|o| write_quiet_time(1_700_000_000, 1_500_000_000, o)),
            "22:13:20.1500000"
        );
        assert_eq!(
            s(|o| write_quiet_time(1_700_000_000, 5_000, o)),
            "22:13:20.000005"
        );
    }

    #[test]
    fn quote_and_json() {
        let v = b"a\"b\\c\x01\x7f\xff\xc3\xa9\xc2\x85\xe2\x80\xa8<>&\t\n";
        assert_eq!(
            s(|o| write_go_quote(v, o)),
            "\"a\\\"b\\\\c\\x01\\x7f\\xff\u{e9}\\u0085\\u2028<>&\\t\\n\""
        );
        assert_eq!(
            s(|o| write_json_body(v, o)),
            "a\\\"b\\\\c\\u0001\u{7f}\\ufffd\u{e9}\u{85}\\u2028\\u003c\\u003e\\u0026\\t\\n"
        );
    }

    #[test]
    fn base_encodings() {
        assert_eq!(s(|o| write_base64(b"ab", o)), "YWI=");
        assert_eq!(s(|o| write_base32hex(b"a", o)), "C4");
        assert_eq!(s(|o| write_base32hex(b"abcde", o)), "C5H66P35");
    }
}
