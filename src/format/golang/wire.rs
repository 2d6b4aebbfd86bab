//! The parts of miekg/dns's unpacking the record and EDNS writers share: its error values
//! ([`Fail`]), names as it reads them ([`WireName`]: compression pointers in any
//! direction), its string escapes, and a field reader ([`Reader`]) that lets a record end
//! at any field boundary as miekg does.
#![forbid(unsafe_code)]

use crate::dns::write_u64;

/// A miekg unpacking error: its `Error()` text, and the number a few of them end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fail {
    pub(super) text: &'static str,
    pub(super) number: Option<usize>,
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
pub(super) fn txt_byte(b: u8, out: &mut Vec<u8>) {
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
pub(super) fn write_txt(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        txt_byte(b, out);
    }
    out.push(b'"');
}

/// A character-string as miekg's `unpackString` keeps it (NAPTR fields, CAA tag): `"`
/// and `\` escaped, other bytes outside ` `..`~` as `\DDD`.
pub(super) fn write_unpacked_string(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        txt_byte(b, out);
    }
}

/// miekg's `sprintTxtOctet` over raw bytes (CAA value, URI target): the raw bytes are
/// read as if they were presentation text, so a backslash escapes what follows it
/// (`\DDD` is a byte, `\.` stays as it is, a lone trailing `\` is dropped).
pub(super) fn write_txt_octet(s: &[u8], out: &mut Vec<u8>) {
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
pub(super) fn next_byte(s: &[u8], i: usize) -> Option<(u8, usize)> {
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
pub(super) struct Reader<'a> {
    pub(super) msg: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn done(&self) -> bool {
        self.pos >= self.msg.len()
    }
    pub(super) fn take(&mut self, n: usize, err: &'static str) -> Result<&'a [u8], Fail> {
        if self.done() {
            return Ok(&[]);
        }
        let b = self.msg.get(self.pos..self.pos + n).ok_or(Fail::new(err))?;
        self.pos += n;
        Ok(b)
    }
    pub(super) fn u8(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1, ERR_U8.text)?.first().copied().unwrap_or(0))
    }
    pub(super) fn u16(&mut self) -> Result<u16, Fail> {
        Ok(match *self.take(2, ERR_U16.text)? {
            [a, b] => u16::from_be_bytes([a, b]),
            _ => 0,
        })
    }
    pub(super) fn u64(&mut self) -> Result<u64, Fail> {
        Ok(match self.take(8, "dns: overflow unpacking uint64")? {
            [] => 0,
            b => b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)),
        })
    }
    pub(super) fn u32(&mut self) -> Result<u32, Fail> {
        Ok(match *self.take(4, ERR_U32.text)? {
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        })
    }
    /// A name, written; nothing when the record already ended.
    pub(super) fn name(&mut self, out: &mut Vec<u8>) -> Result<(), Fail> {
        if self.done() {
            return Ok(());
        }
        let (n, end) = parse_name(self.msg, self.pos)?;
        self.pos = end;
        write_name(self.msg, n, out);
        Ok(())
    }
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let r = self.msg.get(self.pos..).unwrap_or(&[]);
        self.pos = self.msg.len();
        r
    }
    /// A `<character-string>` (length byte and bytes).
    pub(super) fn char_string(&mut self, err: &'static str) -> Result<&'a [u8], Fail> {
        if self.done() {
            return Ok(&[]);
        }
        let n = self.u8()? as usize;
        let b = self.msg.get(self.pos..self.pos + n).ok_or(Fail::new(err))?;
        self.pos += n;
        Ok(b)
    }
}

pub(super) fn num(n: impl Into<u64>, out: &mut Vec<u8>) {
    write_u64(n.into(), out);
}

pub(super) fn sp(out: &mut Vec<u8>) {
    out.push(b' ');
}
