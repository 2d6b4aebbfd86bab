//! Byte-level writers shared by the formats: string escaping for the text line, JSON and
//! YAML double-quoted scalars; UTC timestamps (civil-from-days, no time crate); IP
//! addresses. All append to a caller's `Vec<u8>` and never allocate beyond its growth.
//! Knows nothing of records or dnstap.
#![forbid(unsafe_code)]

use std::cell::Cell;

use crate::dns::Name;
use crate::record::Timestamp;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Size of a [`Padded`] fragment.
pub const PADDED: usize = 48;

/// A short byte string (at most [`PADDED`] bytes) kept in a fixed-size array, so that it
/// is appended with one fixed-size copy and cut back to its length.
///
/// Invariant: `len <= PADDED`; `bytes[len..]` is zero (never written out).
#[derive(Clone, Copy, Debug)]
pub struct Padded {
    len: u8,
    bytes: [u8; PADDED],
}

impl Padded {
    /// `parts` concatenated; `None` when they exceed [`PADDED`] bytes.
    pub fn new(parts: &[&[u8]]) -> Option<Padded> {
        let mut bytes = [0; PADDED];
        let mut len = 0;
        for p in parts {
            bytes.get_mut(len..len + p.len())?.copy_from_slice(p);
            len += p.len();
        }
        Some(Padded {
            len: len as u8,
            bytes,
        })
    }

    /// The fragment's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Appends the fragment.
    #[inline]
    pub fn append(&self, out: &mut Vec<u8>) {
        // PERF: a constant-size copy is a few inline stores; a copy of a few bytes of
        // variable length is a call to memmove (8 % of the JSON writer's samples on the
        // real-capture corpus, where records are small; benches/format.rs, json). The
        // cut-back only lowers the length.
        let end = out.len() + usize::from(self.len);
        out.extend_from_slice(&self.bytes);
        out.truncate(end);
    }
}

#[inline]
fn push_hex_byte(prefix: &[u8], b: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    out.push(HEX[(b >> 4) as usize]);
    out.push(HEX[(b & 15) as usize]);
}

/// A text-line token: must stay one whitespace-free field on one line. Printable ASCII
/// other than `\` is copied; `\` becomes `\\`; valid non-ASCII characters that are neither
/// control nor whitespace are copied as UTF-8; every other byte (space, controls, DEL,
/// Unicode whitespace and controls, bytes of invalid UTF-8) becomes `\xHH`.
pub fn write_text_token(bytes: &[u8], out: &mut Vec<u8>) {
    // PERF: identities are short clean ASCII (benches/format.rs, text); copy them whole.
    if bytes
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) && b != b'\\')
    {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        let s = chunk.valid();
        {
            for c in s.chars() {
                let mut buf = [0u8; 4];
                let enc = c.encode_utf8(&mut buf).as_bytes();
                if c == '\\' {
                    out.extend_from_slice(b"\\\\");
                } else if c.is_ascii_graphic()
                    || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
                {
                    out.extend_from_slice(enc);
                } else {
                    for &b in enc {
                        push_hex_byte(b"\\x", b, out);
                    }
                }
            }
        }
        for &b in chunk.invalid() {
            push_hex_byte(b"\\x", b, out);
        }
    }
}

/// JSON string body (without quotes), RFC 8259: `"` and `\` escaped, controls below 0x20
/// as `\n` `\r` `\t` `\b` `\f` or `\u00XX`; valid UTF-8 copied as is; a byte that is not
/// part of valid UTF-8 is written `\u00XX` (its Latin-1 character), so the output is always
/// valid UTF-8 and valid JSON.
pub fn write_json_str_body(bytes: &[u8], out: &mut Vec<u8>) {
    // PERF: identities are short clean ASCII (benches/format.rs, json); copy them whole,
    // by fixed-size moves when short (`append_short`: a memmove call was 0.7 % of the JSON
    // writer). Those of up to 32 bytes are checked as two overlapping fixed-size chunks,
    // each in one branch-free pass that vectorises (the byte loop was 3 % of the JSON
    // writer thread; scripts/perf.sh, synthetic corpus).
    let clean = match bytes.len() {
        16..=32 => json_clean_ends::<16>(bytes),
        8..=15 => json_clean_ends::<8>(bytes),
        4..=7 => json_clean_ends::<4>(bytes),
        _ => bytes.iter().all(|&b| json_clean(b)),
    };
    if clean {
        crate::dns::append_short(bytes, out);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        let s = chunk.valid();
        {
            let b = s.as_bytes();
            let mut from = 0;
            for (i, &c) in b.iter().enumerate() {
                let esc: &[u8] = match c {
                    b'"' => b"\\\"",
                    b'\\' => b"\\\\",
                    b'\n' => b"\\n",
                    b'\r' => b"\\r",
                    b'\t' => b"\\t",
                    0x08 => b"\\b",
                    0x0c => b"\\f",
                    0..=0x1f => b"",
                    _ => continue,
                };
                out.extend_from_slice(&b[from..i]);
                if esc.is_empty() {
                    push_hex_byte(b"\\u00", c, out);
                } else {
                    out.extend_from_slice(esc);
                }
                from = i + 1;
            }
            out.extend_from_slice(&b[from..]);
        }
        for &b in chunk.invalid() {
            push_hex_byte(b"\\u00", b, out);
        }
    }
}

/// A byte a JSON string holds as it is (printable ASCII but `"` and `\\`).
#[inline(always)]
fn json_clean(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) & (b != b'"') & (b != b'\\')
}

/// Whether the first `K` and the last `K` bytes of `bytes` (`K..=2K` bytes: all of them)
/// are [`json_clean`]; each chunk read once and checked without a branch.
#[inline(always)]
fn json_clean_ends<const K: usize>(bytes: &[u8]) -> bool {
    let all = |chunk: &[u8; K]| chunk.iter().fold(true, |ok, &b| ok & json_clean(b));
    match (bytes.first_chunk::<K>(), bytes.last_chunk::<K>()) {
        (Some(head), Some(tail)) => all(head) & all(tail),
        _ => false,
    }
}

/// A JSON string with its quotes.
pub fn write_json_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    write_json_str_body(bytes, out);
    out.push(b'"');
}

/// YAML double-quoted scalar body (YAML 1.1 and 1.2): `"` and `\` escaped; everything a
/// parser could fold or refuse is escaped: C0 controls, DEL and C1 controls as `\xHH`
/// (`\n` `\r` `\t` `\0` short forms), U+0085 `\N`, U+2028 `\L`, U+2029 `\P`, U+FEFF
/// `\uFEFF`; a byte that is not part of valid UTF-8 is `\xHH` (its Latin-1 character, as in
/// JSON).
pub fn write_yaml_str_body(bytes: &[u8], out: &mut Vec<u8>) {
    // PERF: the seed values are short ASCII (benches/format.rs, yaml); skip char decoding.
    if bytes
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        let s = chunk.valid();
        {
            for c in s.chars() {
                match c {
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    '\0' => out.extend_from_slice(b"\\0"),
                    '\u{85}' => out.extend_from_slice(b"\\N"),
                    '\u{2028}' => out.extend_from_slice(b"\\L"),
                    '\u{2029}' => out.extend_from_slice(b"\\P"),
                    '\u{feff}' => out.extend_from_slice(b"\\uFEFF"),
                    '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                        push_hex_byte(b"\\x", c as u32 as u8, out)
                    }
                    _ => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        for &b in chunk.invalid() {
            push_hex_byte(b"\\x", b, out);
        }
    }
}

/// A YAML double-quoted scalar with its quotes.
pub fn write_yaml_str(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    write_yaml_str_body(bytes, out);
    out.push(b'"');
}

/// Escapes, in place, the `"` and `\` of the text appended since `start` (JSON and YAML
/// double-quoted use the same two escapes). For rendered DNS names, which are printable
/// ASCII: written straight into `out`, fixed up only in the rare case they contain either.
pub fn escape_quotes_since(out: &mut Vec<u8>, start: usize) {
    let Some(tail) = out.get(start..) else { return };
    // PERF: two memchr scans settle the common case; a counting loop over short names
    // took a third of the JSON line (benches/format.rs, json).
    if !tail.contains(&b'"') && !tail.contains(&b'\\') {
        return;
    }
    let extra = tail.iter().filter(|&&b| b == b'"' || b == b'\\').count();
    let old_len = out.len();
    out.resize(old_len + extra, 0);
    // Walk backwards, moving each byte to its final place.
    let mut dst = out.len();
    let mut src = old_len;
    while src > start {
        src -= 1;
        let b = out[src];
        dst -= 1;
        out[dst] = b;
        if b == b'"' || b == b'\\' {
            dst -= 1;
            out[dst] = b'\\';
        }
    }
}

/// A name in dnspython presentation form (as [`Name::write_presentation`]), already
/// escaped for a JSON or YAML double-quoted string: the presentation's backslashes are
/// doubled and its `"` escaped, in the same pass.
pub fn write_name_quoted(name: &Name<'_>, out: &mut Vec<u8>) {
    // A name without escapes reads the same quoted or not: one copy (see the PERF note
    // on `Name::write_plain_presentation`).
    if name.write_plain_presentation(out) {
        return;
    }
    // PERF: one pass instead of rendering then re-scanning for `"` and `\`
    // (benches/format.rs, json).
    let mut any = false;
    for label in name.labels() {
        any = true;
        let plain = |b: u8| {
            (0x21..=0x7e).contains(&b)
                && !matches!(b, b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$')
        };
        if label.iter().all(|&b| plain(b)) {
            out.extend_from_slice(label);
        } else {
            for &b in label {
                match b {
                    // presentation `\"` → `\\\"`, presentation `\\` → `\\\\`
                    b'"' => out.extend_from_slice(b"\\\\\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\\\\\"),
                    b'(' | b')' | b'.' | b';' | b'@' | b'$' => {
                        out.extend_from_slice(b"\\\\");
                        out.push(b);
                    }
                    0x21..=0x7e => out.push(b),
                    _ => {
                        out.extend_from_slice(b"\\\\");
                        out.push(b'0' + b / 100);
                        out.push(b'0' + b / 10 % 10);
                        out.push(b'0' + b % 10);
                    }
                }
            }
        }
        out.push(b'.');
    }
    if !any {
        out.push(b'.');
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar. Works
/// on 400-year eras of 146097 days, with years starting in March so the leap day is last.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// "00".."99": two digits per lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (UTC, microseconds truncated from `nsec`,
/// always six digits). `sep` is the date/time separator (`T` for the seed formats).
pub fn write_timestamp(ts: Timestamp, sep: u8, out: &mut Vec<u8>) {
    write_timestamp_digits(ts, sep, false, out)
}

/// As [`write_timestamp`] with all nine digits of `nsec` (the full formats).
pub fn write_timestamp_nanos(ts: Timestamp, out: &mut Vec<u8>) {
    write_timestamp_digits(ts, b'T', true, out)
}

fn write_timestamp_digits(ts: Timestamp, sep: u8, nanos: bool, out: &mut Vec<u8>) {
    // PERF: the whole stamp is built in one window and kept once; a push per piece was a
    // fifth of the text line (benches/format.rs, text).
    // u64 seconds fit i64 days easily; clamp the (absurd) top of the range instead of wrapping.
    let sec = ts.sec.min(i64::MAX as u64 / 2);
    // At most 12 year digits (the clamp above) + 32 for the rest.
    // PERF: written straight into `out` and cut back (`append_window`): a constant-size
    // window is inline stores, where the stamp's own length made a memmove call
    // (benches/format.rs, format_real), and a stack buffer copied out whole had to wait
    // for its narrow stores (benches/format.rs "writer").
    crate::dns::append_window::<48>(out, |b| {
        let mut n = match LAST_SECOND.get() {
            (last, last_sep, text) if last == sec && last_sep == sep => {
                b[..SECOND_LEN].copy_from_slice(&text);
                SECOND_LEN
            }
            _ => write_second(sec, sep, b),
        };
        // nsec above 999_999_999 is not a valid protobuf Timestamp; clamp so it stays 6
        // digits.
        let nsec = ts.nsec.min(999_999_999);
        put2(b, n, nsec / 10_000_000);
        put2(b, n + 2, nsec / 100_000);
        put2(b, n + 4, nsec / 1_000);
        n += 6;
        if nanos {
            put2(b, n, nsec / 10);
            b[n + 2] = b'0' + (nsec % 10) as u8;
            n += 3;
        }
        b[n..n + 6].copy_from_slice(b"+00:00");
        n + 6
    })
}

/// Length of `YYYY-MM-DDTHH:MM:SS.` for years 0 to 9999.
const SECOND_LEN: usize = 20;

thread_local! {
    // PERF: records come in time order, so most share the second of the record before;
    // the date and time of day are computed once per second and thread (the civil
    // calendar arithmetic and eleven two-digit writes were the largest share of the text
    // line after the name; benches/format.rs text on the synthetic corpus).
    /// The last second written by this thread, its separator and its text.
    static LAST_SECOND: Cell<(u64, u8, [u8; SECOND_LEN])> =
        const { Cell::new((u64::MAX, 0, [0; SECOND_LEN])) };
}

/// Writes `YYYY-MM-DD<sep>HH:MM:SS.` for `sec` at the start of `b`; returns its length.
/// Remembers the text in [`LAST_SECOND`] when the year has four digits.
fn write_second(sec: u64, sep: u8, b: &mut [u8; 48]) -> usize {
    let days = (sec / 86_400) as i64;
    let rem = (sec % 86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let n = if (0..10_000).contains(&year) {
        put2(b, 0, (year / 100) as u32);
        put2(b, 2, (year % 100) as u32);
        4
    } else {
        // Years past 9999 simply have more digits.
        let mut itoa = itoa::Buffer::new();
        let y = itoa.format(year).as_bytes();
        b[..y.len()].copy_from_slice(y);
        y.len()
    };
    b[n] = b'-';
    put2(b, n + 1, month);
    b[n + 3] = b'-';
    put2(b, n + 4, day);
    b[n + 6] = sep;
    put2(b, n + 7, rem / 3600);
    b[n + 9] = b':';
    put2(b, n + 10, rem / 60 % 60);
    b[n + 12] = b':';
    put2(b, n + 13, rem % 60);
    b[n + 15] = b'.';
    if let Some(text) = b.first_chunk::<SECOND_LEN>().filter(|_| n == 4) {
        LAST_SECOND.set((sec, sep, *text));
    }
    n + 16
}

/// Writes `v % 100` as two digits at `b[at..at + 2]`.
#[inline]
fn put2(b: &mut [u8], at: usize, v: u32) {
    let i = (v % 100) as usize * 2;
    b[at..at + 2].copy_from_slice(&PAIRS[i..i + 2]);
}

/// Writes an address: 4 bytes as dotted IPv4, 16 bytes as RFC 5952 IPv6. With
/// `unmap_v4`, an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is written as plain IPv4
/// (the seed formats); without, as `::ffff:a.b.c.d`. Any other length is written as
/// `0x` and hex (never silently dropped).
pub fn write_ip(addr: &[u8], unmap_v4: bool, out: &mut Vec<u8>) {
    match addr.len() {
        4 => {
            if let Ok(v4) = <[u8; 4]>::try_from(addr) {
                crate::dns::write_ipv4(v4, out);
            }
        }
        16 => {
            match <[u8; 16]>::try_from(addr) {
                Ok([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]) if unmap_v4 => {
                    crate::dns::write_ipv4([a, b, c, d], out)
                }
                // RFC 5952, IPv4-mapped with a dotted tail (`::ffff:a.b.c.d`).
                Ok(v6) => crate::dns::write_ipv6(v6, out),
                Err(_) => {}
            }
        }
        _ => {
            out.extend_from_slice(b"0x");
            for &b in addr {
                push_hex_byte(b"", b, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        civil_from_days, escape_quotes_since, write_ip, write_json_str, write_text_token,
        write_timestamp, write_yaml_str,
    };
    use crate::record::Timestamp;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ts(sec: u64, nsec: u32) -> String {
        let mut v = Vec::new();
        write_timestamp(Timestamp { sec, nsec }, b'T', &mut v);
        String::from_utf8(v).unwrap()
    }

    /// Slow oracle: count days forward from 1970 one year and one month at a time.
    fn slow_civil(mut days: i64) -> (i64, u32, u32) {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut y = 1970;
        loop {
            let n = if leap(y) { 366 } else { 365 };
            if days < n {
                break;
            }
            days -= n;
            y += 1;
        }
        let lens = [
            31,
            if leap(y) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut m = 0;
        while days >= lens[m] {
            days -= lens[m];
            m += 1;
        }
        (y, m as u32 + 1, days as u32 + 1)
    }

    #[test]
    fn civil_from_days_matches_slow_count() {
        let mut d = 0;
        while d < 200_000 {
            assert_eq!(civil_from_days(d), slow_civil(d), "day {d}");
            d += 1;
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(ts(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            ts(1_600_282_313, 547_352_123),
            "2020-09-16T18:51:53.547352+00:00"
        );
        assert_eq!(
            ts(951_782_400, 999_999_999),
            "2000-02-29T00:00:00.999999+00:00"
        );
        assert_eq!(ts(4_107_456_000, 0), "2100-02-28T00:00:00.000000+00:00");
        assert_eq!(ts(4_107_542_400, 1), "2100-03-01T00:00:00.000000+00:00");
        assert_eq!(ts(2_147_483_647, 0), "2038-01-19T03:14:07.000000+00:00");
        assert_eq!(
            ts(2_147_483_648, 500_000),
            "2038-01-19T03:14:08.000500+00:00"
        );
        assert_eq!(ts(253_402_300_799, 0), "9999-12-31T23:59:59.000000+00:00");
        assert_eq!(ts(253_402_300_800, 0), "10000-01-01T00:00:00.000000+00:00");
        assert_eq!(ts(1_709_164_800, 0), "2024-02-29T00:00:00.000000+00:00");
        assert_eq!(ts(5, 4_000_000_000), "1970-01-01T00:00:05.999999+00:00");
        let mut v = Vec::new();
        super::write_timestamp_nanos(Timestamp { sec: 1, nsec: 5 }, &mut v);
        assert_eq!(v, b"1970-01-01T00:00:01.000000005+00:00");
        // u64::MAX must not panic.
        assert!(!ts(u64::MAX, 0).is_empty());
    }

    /// The per-thread cache of the last second: a run of stamps with repeated seconds,
    /// both separators, the nine-digit form and five-digit years in between must read as
    /// each stamp does on a fresh thread (empty cache).
    #[test]
    fn repeated_seconds_give_the_same_text_as_fresh_ones() {
        let write = |sec: u64, nsec: u32, mode: u8| {
            let mut v = Vec::new();
            let t = Timestamp { sec, nsec };
            match mode {
                0 => write_timestamp(t, b'T', &mut v),
                1 => write_timestamp(t, b' ', &mut v),
                _ => super::write_timestamp_nanos(t, &mut v),
            }
            v
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut sec = 1_700_000_000u64;
        let mut seen_hits = 0;
        for i in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0 => sec += 1,
                1 => sec = sec.wrapping_add(86_400 * (x % 400)),
                2 => sec = 253_402_300_800 + x % 1000, // year 10000
                3 => sec = 1_700_000_000 + x % 100_000,
                _ => seen_hits += 1, // same second again
            }
            let (nsec, mode) = ((x >> 20) as u32 % 1_000_000_000, (x >> 8) as u8 % 3);
            let here = write(sec, nsec, mode);
            let fresh = std::thread::spawn(move || write(sec, nsec, mode))
                .join()
                .unwrap();
            assert_eq!(here, fresh, "stamp {i}: {sec}.{nsec} mode {mode}");
        }
        assert!(seen_hits > 1000);
    }

    fn ip(a: &[u8], unmap: bool) -> String {
        let mut v = Vec::new();
        write_ip(a, unmap, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn ip_addresses_match_std() {
        assert_eq!(ip(&[127, 0, 0, 1], true), "127.0.0.1");
        let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().octets();
        assert_eq!(ip(&mapped, true), "192.0.2.1");
        assert_eq!(ip(&mapped, false), "::ffff:192.0.2.1");
        assert_eq!(ip(&[1, 2, 3], true), "0x010203");
        assert_eq!(ip(&[], true), "0x");
        // RFC 5952 form, compared with std's (which follows it) on varied addresses.
        let mut x: u64 = 12345;
        for i in 0..5000u32 {
            let mut a = [0u8; 16];
            for (j, b) in a.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Many zero groups, so that runs of zeros of every length appear.
                *b = if (x >> (j % 8)) & 3 == 0 { x as u8 } else { 0 };
            }
            if i % 7 == 0 {
                a = [0; 16];
                a[15] = i as u8;
            }
            let std = Ipv6Addr::from(a);
            if std.to_ipv4_mapped().is_some() {
                continue;
            }
            assert_eq!(ip(&a, false), std.to_string(), "{a:?}");
        }
    }

    #[test]
    fn text_tokens_stay_one_field() {
        let t = |b: &[u8]| {
            let mut v = Vec::new();
            write_text_token(b, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(t(b"lab-unbound"), "lab-unbound");
        assert_eq!(t(b"my server\n"), "my\\x20server\\x0a");
        assert_eq!(t(b"a\\b"), "a\\\\b");
        assert_eq!(t("dév".as_bytes()), "dév");
        assert_eq!(t(b"\xff\x7f"), "\\xff\\x7f");
        assert_eq!(
            t("a\u{2028}b\u{a0}".as_bytes()),
            "a\\xe2\\x80\\xa8b\\xc2\\xa0"
        );
    }

    #[test]
    fn json_strings() {
        let j = |b: &[u8]| {
            let mut v = Vec::new();
            write_json_str(b, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(j(b"plain"), "\"plain\"");
        assert_eq!(j(b"q\"b\\s/"), "\"q\\\"b\\\\s/\"");
        assert_eq!(
            j(b"\n\r\t\x08\x0c\x00\x1f\x7f"),
            "\"\\n\\r\\t\\b\\f\\u0000\\u001f\x7f\""
        );
        assert_eq!(j("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(j(b"a\xffb\xc3"), "\"a\\u00ffb\\u00c3\"");
        // Round trip through an independent parser.
        for s in [&b"x\"\\\n\x01\xfe\xed"[..], "ü\u{2028}".as_bytes(), b""] {
            let parsed: String = serde_json::from_str(&j(s)).unwrap();
            assert_eq!(parsed, latin1_fallback(s));
        }
    }

    /// Strings of every length around the 32-byte window, clean or with one byte to escape
    /// anywhere (NUL included): what serde_json writes for them.
    #[test]
    fn json_strings_of_every_length_match_serde() {
        let specials = [b'"', b'\\', 0, 0x1f, b'\n', 0x7f, b' ', b'~'];
        for n in 0..=40usize {
            let clean: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let mut cases = vec![clean.clone()];
            for at in 0..n {
                for &c in &specials {
                    let mut v = clean.clone();
                    v[at] = c;
                    cases.push(v);
                }
            }
            for case in cases {
                let mut v = b"x".to_vec();
                write_json_str(&case, &mut v);
                let text = std::str::from_utf8(&case).unwrap();
                assert_eq!(
                    String::from_utf8(v).unwrap(),
                    format!("x{}", serde_json::to_string(text).unwrap()),
                    "{case:?}"
                );
            }
        }
    }

    /// What the JSON/YAML rules promise: valid UTF-8 as text, other bytes as Latin-1.
    fn latin1_fallback(s: &[u8]) -> String {
        let mut o = String::new();
        for c in s.utf8_chunks() {
            o.push_str(c.valid());
            o.extend(c.invalid().iter().map(|&b| b as char));
        }
        o
    }

    #[test]
    fn yaml_strings_round_trip() {
        let y = |b: &[u8]| {
            let mut v = Vec::new();
            write_yaml_str(b, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(y(b"NO"), "\"NO\"");
        assert_eq!(y(b"a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(y(b"\x00\x07\x7f"), "\"\\0\\x07\\x7f\"");
        assert_eq!(
            y("\u{85}\u{2028}\u{2029}\u{feff}".as_bytes()),
            "\"\\N\\L\\P\\uFEFF\""
        );
        assert_eq!(y(b"\xff"), "\"\\xff\"");
        let tricky: &[&[u8]] = &[
            b"NO",
            b"yes",
            b"on",
            b"off",
            b"y",
            b"n",
            b"~",
            b"null",
            b"-",
            b"123",
            b"0x1f",
            b"1e5",
            b".inf",
            b"a: b",
            b"# c",
            b"&anchor",
            b"*ref",
            b"!tag",
            b"%dir",
            b"@x",
            b"`x",
            b"|",
            b">",
            b"{a}",
            b"[1]",
            b"'q'",
            b"\"q\"",
            b" lead",
            b"trail ",
            b"2020-09-16",
            b"a\nb",
            b"\t",
            b"\x00\x01\x1b\x7f",
            "\u{85}\u{a0}\u{2028}x".as_bytes(),
            b"\xff\xfe",
            b"\\",
            b"",
            b"---",
            b"...",
        ];
        for s in tricky {
            let doc = format!("v: {}\n", y(s));
            let parsed: std::collections::BTreeMap<String, String> =
                serde_saphyr::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
            assert_eq!(parsed["v"], latin1_fallback(s), "{doc:?}");
        }
    }

    #[test]
    fn quoted_names_match_presentation_then_escape() {
        // Wire names over an alphabet rich in special bytes (xorshift, fixed seed).
        let alphabet: &[u8] = b"aZ09-_.\\\"();@$ \x00\x7f\xff";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            let mut wire = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..x % 4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = 1 + (x % 6) as usize;
                wire.push(len as u8);
                for k in 0..len {
                    wire.push(alphabet[((x >> (k * 5)) % alphabet.len() as u64) as usize]);
                }
            }
            wire.push(0);
            let (name, _) = crate::dns::Name::parse(&wire, 0).unwrap();
            let mut want = Vec::new();
            name.write_presentation(&mut want);
            escape_quotes_since(&mut want, 0);
            let mut got = Vec::new();
            super::write_name_quoted(&name, &mut got);
            assert_eq!(got, want, "{wire:?}");
        }
    }

    #[test]
    fn quotes_escaped_in_place() {
        let mut v = b"{\"k\":\"".to_vec();
        let start = v.len();
        v.extend_from_slice(b"a\\\"b.\\\\c.");
        escape_quotes_since(&mut v, start);
        assert_eq!(v, b"{\"k\":\"a\\\\\\\"b.\\\\\\\\c.".to_vec());
        let mut v = b"plain.".to_vec();
        escape_quotes_since(&mut v, 0);
        assert_eq!(v, b"plain.");
    }
}
