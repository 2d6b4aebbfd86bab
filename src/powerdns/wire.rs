//! Protobuf reading and writing for the PowerDNS converter: a cursor over one borrowed
//! message ([`Reader`]) and a writer into a caller's byte slice ([`Writer`]). Knows no field
//! numbers; allocates nothing; never panics on malformed input.
//!
//! ```text
//! field     = key value
//! key       = varint( field_number << 3 | wire_type )
//! wire_type   0 VARINT   value = varint (1..=10 bytes, 7 bits each, little-endian groups)
//!             1 I64      value = 8 bytes (skipped)
//!             2 LEN      value = varint(length) then `length` bytes
//!             5 I32      value = 4 bytes (skipped)
//!             3, 4 (groups), 6, 7: rejected
//! ```
#![forbid(unsafe_code)]

/// Wire types.
pub const VARINT: u8 = 0;
pub const LEN: u8 = 2;
const I64: u8 = 1;
const I32: u8 = 5;

/// One field's value, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// An I64 or I32 field (no PowerDNS field uses them): skipped.
    Fixed,
}

/// Cursor over one message. Invariant: `0 <= pos <= buf.len()`.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Where the cursor is (the offset of the next field).
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated varint");
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let s = self.buf.get(self.pos..end).ok_or("length past the end")?;
        self.pos = end;
        Ok(s)
    }

    /// The next field: `Ok(None)` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, &'static str> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err("bad field number");
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflows")?;
                Value::Bytes(self.take(n)?)
            }
            I64 => {
                self.take(8)?;
                Value::Fixed
            }
            I32 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err("unsupported wire type"),
        };
        Ok(Some((number as u32, value)))
    }
}

/// Writes protobuf into `out[..]`. Invariant: `0 <= pos <= out.len()`. A write that does
/// not fit sets `full` and writes nothing more; the caller checks [`Writer::finish`].
pub struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
    full: bool,
}

/// Bytes reserved for the length of a nested message: 3 varint bytes hold up to 2 MiB,
/// more than any converted message (a PowerDNS message is at most 64 KiB).
const NESTED_LEN: usize = 3;

impl<'o> Writer<'o> {
    pub fn new(out: &'o mut [u8]) -> Writer<'o> {
        Writer {
            out,
            pos: 0,
            full: false,
        }
    }

    /// Bytes written, or None when `out` was too small.
    pub fn finish(self) -> Option<usize> {
        (!self.full).then_some(self.pos)
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, b: &[u8]) {
        if self.full {
            return;
        }
        let end = self.pos + b.len();
        match self.out.get_mut(self.pos..end) {
            Some(to) => {
                to.copy_from_slice(b);
                self.pos = end;
            }
            None => self.full = true,
        }
    }

    pub fn byte(&mut self, b: u8) {
        self.bytes(&[b]);
    }

    pub fn u16_be(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub fn varint(&mut self, mut v: u64) {
        let mut tmp = [0u8; 10];
        let mut n = 0;
        for slot in tmp.iter_mut() {
            n += 1;
            if v < 0x80 {
                *slot = v as u8;
                break;
            }
            *slot = (v as u8 & 0x7f) | 0x80;
            v >>= 7;
        }
        self.bytes(tmp.get(..n).unwrap_or_default());
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    pub fn field_varint(&mut self, field: u32, v: u64) {
        self.key(field, VARINT);
        self.varint(v);
    }

    pub fn field_bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, LEN);
        self.varint(b.len() as u64);
        self.bytes(b);
    }

    pub fn field_fixed32(&mut self, field: u32, v: u32) {
        self.key(field, I32);
        self.bytes(&v.to_le_bytes());
    }

    /// Starts a LEN field whose length is not known yet: returns the mark to give
    /// [`Writer::end_len`] once its content is written.
    pub fn begin_len(&mut self, field: u32) -> usize {
        self.key(field, LEN);
        let mark = self.pos;
        self.bytes(&[0; NESTED_LEN]);
        mark
    }

    /// Ends the LEN field begun at `mark`: writes its length and moves the content back
    /// over the unused reserved bytes (one `copy_within`, no allocation).
    pub fn end_len(&mut self, mark: usize) {
        if self.full {
            return;
        }
        let start = mark + NESTED_LEN;
        let len = self.pos - start;
        if len >= 1 << (7 * NESTED_LEN) {
            self.full = true;
            return;
        }
        let mut tmp = [0u8; NESTED_LEN];
        let (mut v, mut n) = (len, 0);
        for slot in tmp.iter_mut() {
            n += 1;
            if v < 0x80 {
                *slot = v as u8;
                break;
            }
            *slot = (v as u8 & 0x7f) | 0x80;
            v >>= 7;
        }
        if let (Some(to), Some(from)) = (self.out.get_mut(mark..mark + n), tmp.get(..n)) {
            to.copy_from_slice(from);
        }
        self.out.copy_within(start..self.pos, mark + n);
        self.pos = mark + n + len;
    }

    /// Marks the output full (a value that cannot be written, such as a bad name).
    pub fn fail(&mut self) {
        self.full = true;
    }

    /// Overwrites the two bytes at `at` (a DNS count written before its items).
    pub fn patch_u16_be(&mut self, at: usize, v: u16) {
        if let Some(to) = self.out.get_mut(at..at + 2) {
            to.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// True once a write did not fit.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Forgets everything written after `at` (and a failure since): used to drop a
    /// partially written optional part.
    pub fn truncate(&mut self, at: usize) {
        if at <= self.pos {
            self.pos = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lengths_are_minimal_varints() {
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let mut out = vec![0u8; 30_000];
            let mut w = Writer::new(&mut out);
            w.field_varint(1, 7);
            let m = w.begin_len(14);
            w.bytes(&vec![0xab; len]);
            w.end_len(m);
            let n = w.finish().unwrap();
            let mut r = Reader::new(&out[..n]);
            assert_eq!(r.next_field().unwrap(), Some((1, Value::Varint(7))));
            match r.next_field().unwrap() {
                Some((14, Value::Bytes(b))) => assert_eq!(b, &vec![0xab; len][..]),
                other => panic!("{other:?}"),
            }
            assert_eq!(r.next_field().unwrap(), None);
        }
    }

    #[test]
    fn a_write_past_the_end_marks_the_writer_full() {
        let mut out = [0u8; 4];
        let mut w = Writer::new(&mut out);
        w.field_bytes(1, b"hello");
        assert!(w.is_full());
        assert_eq!(w.finish(), None);
    }

    #[test]
    fn truncated_fields_are_errors() {
        for bad in [&[0x0a, 5, 1, 2][..], &[0x08, 0x80], &[0x0b], &[0x00, 1]] {
            assert!(Reader::new(bad).next_field().is_err(), "{bad:?}");
        }
    }
}
