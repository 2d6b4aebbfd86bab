//! Small presentation-format encoders shared by rdata and EDNS writers: decimal, hex,
//! base64, base32hex, IPv4/IPv6 addresses, quoted character-strings and RRSIG times.
//! All append to a caller's `Vec<u8>`; none allocates anything else.
#![forbid(unsafe_code)]

use super::name::write_ddd;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Appends `N` zero bytes to `out`, lets `fill` write into them, and keeps the first
/// `fill`'s return value (at most `N`) of them.
///
/// PERF: for short text of variable length (a number, an address, a timestamp): writing it
/// straight into `out` and cutting back is a few fixed-size stores. Built in a stack buffer
/// and appended, it cost a memmove call per piece, which also had to wait for the buffer's
/// narrow stores before reading them back whole (memmove was 12 % of the JSON writer
/// thread; scripts/perf.sh, synthetic corpus; benches/format.rs "writer").
#[inline(always)]
pub fn append_window<const N: usize>(out: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; N]) -> usize) {
    let base = out.len();
    out.extend_from_slice(&[0; N]);
    let len = match out.get_mut(base..).and_then(<[u8]>::first_chunk_mut::<N>) {
        Some(window) => fill(window).min(N),
        None => 0,
    };
    out.truncate(base + len);
}

/// Appends `bytes`; those of at most 32 bytes (identities, most names) by fixed-size moves,
/// the longer ones by one copy. See [`append_window`] for why.
#[inline(always)]
pub fn append_short(bytes: &[u8], out: &mut Vec<u8>) {
    let n = bytes.len();
    if n > 32 {
        out.extend_from_slice(bytes);
        return;
    }
    append_window::<32>(out, |w| {
        copy_short(bytes, w);
        n
    });
}

/// Copies `src` (at most 32 bytes; longer ones are not copied) to the start of `dst` (at
/// least `src.len()` bytes) by fixed-size moves.
#[inline(always)]
fn copy_short(src: &[u8], dst: &mut [u8]) {
    // Two moves of K bytes, from the start and to the end, cover K..=2K bytes.
    match src.len() {
        16..=32 => copy_ends::<16>(src, dst),
        8..=15 => copy_ends::<8>(src, dst),
        4..=7 => copy_ends::<4>(src, dst),
        0..=3 => {
            for (d, &b) in dst.iter_mut().zip(src) {
                *d = b;
            }
        }
        _ => {}
    }
}

/// `src` (K..=2K bytes) into the start of `dst`: its first K bytes, then its last K bytes
/// (overlapping the first when shorter than 2K).
#[inline(always)]
fn copy_ends<const K: usize>(src: &[u8], dst: &mut [u8]) {
    if let (Some(head), Some(d)) = (src.first_chunk::<K>(), dst.first_chunk_mut::<K>()) {
        *d = *head;
    }
    let tail_at = src.len().saturating_sub(K);
    if let (Some(tail), Some(d)) = (
        src.last_chunk::<K>(),
        dst.get_mut(tail_at..).and_then(<[u8]>::first_chunk_mut::<K>),
    ) {
        *d = *tail;
    }
}

/// "00".."99": two digits per lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Decimal, no padding.
#[inline]
pub fn write_u64(n: u64, out: &mut Vec<u8>) {
    // PERF: written in place ([`append_window`]); ports and lengths were a memmove call
    // each in the JSON line.
    append_window::<20>(out, |w| decimal(n, w))
}

/// `n` in decimal at the start of `w`; returns the number of digits.
#[allow(
    clippy::indexing_slicing,
    reason = "u64::MAX has 20 digits, so 0 <= at - 2 < at <= len <= 20; pairs are \
              indexed by (v % 100) * 2 + 1 < 200"
)]
#[inline(always)]
fn decimal(n: u64, w: &mut [u8; 20]) -> usize {
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let (mut at, mut v) = (len, n);
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        at -= 2;
        w[at] = PAIRS[pair];
        w[at + 1] = PAIRS[pair + 1];
    }
    if v >= 10 {
        let pair = v as usize * 2;
        w[0] = PAIRS[pair];
        w[1] = PAIRS[pair + 1];
    } else {
        w[0] = b'0' + v as u8;
    }
    len
}

#[allow(
    clippy::indexing_slicing,
    reason = "a nibble (0..16) indexes a 16-entry table"
)]
pub(crate) fn write_hex_upper(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() * 2);
    for &b in data {
        out.push(HEX_UPPER[(b >> 4) as usize]);
        out.push(HEX_UPPER[(b & 15) as usize]);
    }
}

#[allow(
    clippy::indexing_slicing,
    reason = "a nibble (0..16) indexes a 16-entry table"
)]
pub(crate) fn write_hex_lower(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() * 2);
    for &b in data {
        out.push(HEX_LOWER[(b >> 4) as usize]);
        out.push(HEX_LOWER[(b & 15) as usize]);
    }
}

/// RFC 4648 §4 base64 with padding.
#[allow(
    clippy::indexing_slicing,
    reason = "indices are masked to 6 bits: 0..64"
)]
pub(crate) fn write_base64(data: &[u8], out: &mut Vec<u8>) {
    const ALPHA: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(data.len().div_ceil(3) * 4);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let &[a, b, c] = c else {
            continue;
        };
        let v = (a as u32) << 16 | (b as u32) << 8 | c as u32;
        for shift in [18, 12, 6, 0] {
            out.push(ALPHA[(v >> shift & 63) as usize]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let v = (a as u32) << 16;
            out.extend_from_slice(&[ALPHA[(v >> 18) as usize], ALPHA[(v >> 12 & 63) as usize]]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let v = (a as u32) << 16 | (b as u32) << 8;
            for shift in [18, 12, 6] {
                out.push(ALPHA[(v >> shift & 63) as usize]);
            }
            out.push(b'=');
        }
        _ => {}
    }
}

/// RFC 4648 §7 base32hex, upper case, no padding (the NSEC3 presentation, RFC 5155 §3.3).
#[allow(
    clippy::indexing_slicing,
    reason = "indices are masked to 5 bits: 0..32"
)]
pub(crate) fn write_base32hex(data: &[u8], out: &mut Vec<u8>) {
    const ALPHA: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHA[(acc >> bits & 31) as usize]);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHA[(acc << (5 - bits) & 31) as usize]);
    }
}

/// Each octet's decimal text followed by a dot, in four bytes, and that text's length
/// (2 to 4, the dot included).
#[allow(
    clippy::indexing_slicing,
    reason = "built at compile time, o < 256 indexes a 256-entry table"
)]
const OCTET_DOT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = ((o / 100) as u8, (o / 10 % 10) as u8, (o % 10) as u8);
        t[o] = if o >= 100 {
            ([b'0' + h, b'0' + d, b'0' + u, b'.'], 4)
        } else if o >= 10 {
            ([b'0' + d, b'0' + u, b'.', 0], 3)
        } else {
            ([b'0' + u, b'.', 0, 0], 2)
        };
        o += 1;
    }
    t
};

/// Dotted-quad IPv4.
#[allow(
    clippy::indexing_slicing,
    reason = "an octet (0..256) indexes a 256-entry table"
)]
pub fn write_ipv4(a: [u8; 4], out: &mut Vec<u8>) {
    // PERF: written in place ([`append_window`]) instead of seven small appends, or a
    // stack buffer and a memmove call; each octet is one table look-up and one 4-byte
    // store, where choosing its digit count was two branches on the address, which random
    // client addresses mispredict (write_ipv4 was 3 % of the JSON writer thread;
    // scripts/perf.sh, synthetic corpus).
    append_window::<16>(out, |b| {
        let mut n = 0;
        for octet in a {
            let (text, len) = OCTET_DOT[usize::from(octet)];
            // n <= 12: at most three octets of four bytes before this one.
            if let Some(at) = b.get_mut(n..n + 4) {
                at.copy_from_slice(&text);
            }
            n += usize::from(len);
        }
        // Without the last octet's dot.
        n - 1
    })
}

/// RFC 5952 text form: lower-case hex, the first longest run of two or more zero groups
/// as `::`, and IPv4-mapped addresses (`::ffff:0:0/96`) with a dotted tail.
pub fn write_ipv6(a: [u8; 16], out: &mut Vec<u8>) {
    let mut g = [0u16; 8];
    for (x, pair) in g.iter_mut().zip(a.chunks_exact(2)) {
        if let &[hi, lo] = pair {
            *x = u16::from_be_bytes([hi, lo]);
        }
    }
    if let [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b0, b1, b2, b3] = a {
        out.extend_from_slice(b"::ffff:");
        write_ipv4([b0, b1, b2, b3], out);
        return;
    }
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        if x == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len < 2 {
        best_len = 0;
        best = 8;
    }
    // PERF: written in place ([`append_window`]): at most 39 bytes (eight groups of four
    // digits and seven colons), where a push per digit and colon was 4 % of the JSON
    // writer (scripts/perf.sh, synthetic corpus).
    append_window::<40>(out, |b| write_ipv6_groups(&g, best, best_len, b))
}

/// The groups of [`write_ipv6`] at the start of `b`, with `best_len` groups from `best`
/// written as `::` (none when `best` is 8); returns the length.
#[allow(
    clippy::indexing_slicing,
    reason = "g has 8 groups and the loop runs while i < 8; at most 8 * 4 digits and 7 \
              separators (or 2 for `::`) go into 40 bytes, so n + 4 < 40 at every write; \
              a nibble (0..16) indexes a 16-entry table"
)]
#[inline(always)]
fn write_ipv6_groups(g: &[u16; 8], best: usize, best_len: usize, b: &mut [u8; 40]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < 8 {
        if i == best {
            b[n] = b':';
            b[n + 1] = b':';
            n += 2;
            i += best_len;
            continue;
        }
        if i > 0 && i != best + best_len {
            b[n] = b':';
            n += 1;
        }
        // Lower-case hex without leading zeros: 1 to 4 digits.
        let x = g[i];
        let digits = (16 - x.leading_zeros() as usize).div_ceil(4).max(1);
        for k in 0..digits {
            let shift = 4 * (digits - 1 - k);
            b[n + k] = HEX_LOWER[usize::from(x >> shift & 15)];
        }
        n += digits;
        i += 1;
    }
    n
}

/// A `<character-string>` in double quotes: `"` and `\` get a backslash, bytes outside
/// 0x20..=0x7e are written `\DDD`; spaces stay as they are (dig and dnspython agree).
pub(crate) fn write_quoted(data: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    write_escaped(data, out);
    out.push(b'"');
}

/// The inside of [`write_quoted`].
pub(crate) fn write_escaped(data: &[u8], out: &mut Vec<u8>) {
    for &b in data {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => write_ddd(b, out),
        }
    }
}

/// RRSIG time (RFC 4034 §3.2): seconds since 1970 as `YYYYMMDDHHmmSS`, UTC.
#[allow(
    clippy::indexing_slicing,
    reason = "the field widths add up to 14, the buffer's length, so at + k < 14"
)]
pub(crate) fn write_rrsig_time(t: u32, out: &mut Vec<u8>) {
    let secs = t as u64;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = [0u8; 14];
    let fields = [
        (y, 4),
        (m, 2),
        (d, 2),
        (rem / 3600, 2),
        (rem / 60 % 60, 2),
        (rem % 60, 2),
    ];
    let mut at = 0;
    for (v, width) in fields {
        let mut v = v;
        for k in (0..width).rev() {
            buf[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        at += width;
    }
    out.extend_from_slice(&buf);
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
/// Works in 400-year eras (146097 days) counted from 0000-03-01, so that the leap day
/// is the last day of each computed year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719468 = days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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
    fn base64_vectors() {
        // RFC 4648 §10
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(s(|v| write_base64(i.as_bytes(), v)), o);
        }
        assert_eq!(s(|v| write_base64(b"foobar", v)), "Zm9vYmFy");
        assert_eq!(s(|v| write_base64(&[0xff, 0xfe, 0xfd], v)), "//79");
    }

    #[test]
    fn base32hex_vectors() {
        // RFC 4648 §10 (padding dropped)
        for (i, o) in [
            ("f", "CO"),
            ("fo", "CPNG"),
            ("foo", "CPNMU"),
            ("foob", "CPNMUOG"),
            ("foobar", "CPNMUOJ1E8"),
        ] {
            assert_eq!(s(|v| write_base32hex(i.as_bytes(), v)), o);
        }
    }

    /// Every length a short append handles by moves, and the longer ones, after what `out`
    /// already held: the bytes as given, nothing more.
    #[test]
    fn short_appends_write_exactly_the_bytes() {
        let src: Vec<u8> = (1..=80u8).collect();
        for start in [0, 1, 7] {
            for n in 0..=70 {
                let bytes = &src[start..start + n];
                let mut v = b"ab".to_vec();
                append_short(bytes, &mut v);
                assert_eq!(&v[..2], b"ab");
                assert_eq!(&v[2..], bytes, "length {n}");
            }
        }
        let mut v = b"x".to_vec();
        append_window::<8>(&mut v, |w| {
            w[..3].copy_from_slice(b"abc");
            99 // more than the window: kept to the window
        });
        assert_eq!(v, b"xabc\0\0\0\0\0");
    }

    /// Numbers and dotted quads match std's text, also after what `out` already held.
    #[test]
    fn numbers_and_ipv4_match_std() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut values = vec![0, 9, 10, 99, 100, 255, 256, 999, 1_000, 99_999, 100_000];
        values.extend([u64::from(u32::MAX), u64::MAX]);
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % 10u64.pow((x >> 60) as u32 % 11));
        }
        for o in 0..=255u8 {
            for a in [[o, 0, 9, 255 - o], [255, o, o / 2, 10], [1, 99, o, o % 100]] {
                let mut v = b"ab".to_vec();
                write_ipv4(a, &mut v);
                assert_eq!(v, format!("ab{}", std::net::Ipv4Addr::from(a)).as_bytes());
            }
        }
        for n in values {
            let mut v = b"ab".to_vec();
            write_u64(n, &mut v);
            assert_eq!(v, format!("ab{n}").as_bytes());
            let a = (n as u32).to_be_bytes();
            let mut v = b"ab".to_vec();
            write_ipv4(a, &mut v);
            assert_eq!(v, format!("ab{}", std::net::Ipv4Addr::from(a)).as_bytes());
        }
    }

    #[test]
    fn ipv6_matches_std() {
        let cases: [[u8; 16]; 6] = [
            [0; 16],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0],
        ];
        for c in cases {
            assert_eq!(
                s(|v| write_ipv6(c, v)),
                std::net::Ipv6Addr::from(c).to_string()
            );
        }
        // a simple PRNG sweep with many zero groups
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut a = [0u8; 16];
            for i in 0..8 {
                if x >> i & 1 == 1 {
                    a[2 * i] = (x >> (8 + i)) as u8 & 0x0f;
                    a[2 * i + 1] = (x >> (16 + i)) as u8;
                }
            }
            assert_eq!(
                s(|v| write_ipv6(a, v)),
                std::net::Ipv6Addr::from(a).to_string()
            );
        }
    }

    #[test]
    fn rrsig_times() {
        assert_eq!(s(|v| write_rrsig_time(0, v)), "19700101000000");
        assert_eq!(s(|v| write_rrsig_time(951_782_400, v)), "20000229000000");
        assert_eq!(s(|v| write_rrsig_time(1_704_067_199, v)), "20231231235959");
        assert_eq!(s(|v| write_rrsig_time(u32::MAX, v)), "21060207062815");
        // slow oracle: count days forward
        let mut day = 0u64;
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        while day < 50_000 {
            assert_eq!(civil_from_days(day), (y, m, d));
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let mdays = [
                31,
                if leap { 29 } else { 28 },
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
            d += 1;
            if d > mdays[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
            day += 1;
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(
            s(|v| write_quoted(b"a \"b\"\\c\x00\xff", v)),
            r#""a \"b\"\\c\000\255""#
        );
    }
}
