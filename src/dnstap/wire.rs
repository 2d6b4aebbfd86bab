//! Protobuf wire-format cursor under the dnstap views: reads keys, varints, length-delimited
//! bytes and fixed32 values from one borrowed buffer, and checks and skips the fields a view
//! does not ask for. It owns the wire diagram below, the one-byte scan error [`Bad`] and the
//! public [`ViewError`] it becomes. It knows no dnstap field numbers (those are in
//! `view.rs`), no Frame Streams, no DNS. Every length read from the buffer is checked before
//! use; nothing here panics on malformed input.
//!
//! Protobuf wire format, as far as dnstap needs it:
//!
//! ```text
//! field     = key value
//! key       = varint( field_number << 3 | wire_type )
//! wire_type   0 VARINT   value = varint (1..=10 bytes, 7 bits each, little-endian groups,
//!                                high bit set = more bytes follow)
//!             1 I64      value = 8 bytes little-endian      (skipped: no dnstap field uses it)
//!             2 LEN      value = varint(length) then `length` bytes (bytes, nested message)
//!             3 SGROUP,
//!             4 EGROUP   deprecated groups: rejected (no dnstap field uses them)
//!             5 I32      value = 4 bytes little-endian      (query_time_nsec, response_time_nsec)
//!             6, 7       invalid
//! ```
#![forbid(unsafe_code)]

/// Malformed protobuf: small and `Copy`; `offset` is where in the buffer given to `parse`
/// (for [`MessageView`](super::MessageView) and [`PolicyView`](super::PolicyView),
/// relative to the start of that nested message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewError {
    pub what: &'static str,
    pub offset: usize,
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed dnstap protobuf: {} at offset {}",
            self.what, self.offset
        )
    }
}

impl std::error::Error for ViewError {}

// Wire types.
pub(super) const VARINT: u64 = 0;
const I64: u64 = 1;
pub(super) const LEN: u64 = 2;
const SGROUP: u64 = 3;
const EGROUP: u64 = 4;
pub(super) const I32: u64 = 5;

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Cursor over one protobuf message. Invariant: `0 <= pos <= buf.len()`; every method
/// either advances `pos` past one complete item, or returns a [`Bad`] and leaves `pos` at the
/// start of the item it could not read (so `pos` is the error's offset).
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

/// What was wrong, inside the scan. PERF: a one-byte error keeps `Result<u64, Bad>` and
/// `Result<&[u8], Bad>` in two registers on the hot path (benches/dnstap.rs "view");
/// [`Reader::error`] turns it into the public [`ViewError`] once, at the boundary.
#[derive(Clone, Copy, Debug)]
pub(super) enum Bad {
    TruncatedVarint,
    LongVarint,
    FieldNumber,
    PastEnd,
    TruncatedFixed32,
    TruncatedFixed64,
    Group,
    WireType,
    Repeated,
}

impl Bad {
    /// The public error for this one at `offset`, for scans whose reader stays local
    /// (`Reader::error` takes the reader's address, which keeps it out of registers).
    #[cold]
    pub(super) fn at(self, offset: usize) -> ViewError {
        ViewError {
            what: self.what(),
            offset,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Bad::TruncatedVarint => "truncated varint",
            Bad::LongVarint => "varint longer than 10 bytes",
            Bad::FieldNumber => "invalid field number",
            Bad::PastEnd => "length past end of message",
            Bad::TruncatedFixed32 => "truncated fixed32",
            Bad::TruncatedFixed64 => "truncated fixed64",
            Bad::Group => "group wire type (deprecated)",
            Bad::WireType => "invalid wire type",
            Bad::Repeated => "embedded message field repeated",
        }
    }
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline(always)]
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[cold]
    pub(super) fn error(&self, bad: Bad) -> ViewError {
        ViewError {
            what: bad.what(),
            offset: self.pos,
        }
    }

    /// Where the next key starts and the key; `(buf.len(), 0)` at the end of the message
    /// (0 is never a valid key, so it matches no field).
    #[inline(always)]
    pub(super) fn next_key(&mut self) -> Result<(usize, u64), Bad> {
        let at = self.pos;
        if at >= self.buf.len() {
            return Ok((at, 0));
        }
        Ok((at, self.varint()?))
    }

    /// One varint, up to 64 bits; bits past 64 in the tenth byte are ignored.
    #[inline(always)]
    pub(super) fn varint(&mut self) -> Result<u64, Bad> {
        // PERF: most dnstap varints (keys, enums, lengths of addresses and DNS messages under
        // 128 bytes) are one byte; take them without entering the loop (benches/dnstap.rs
        // "view").
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            // PERF: two-byte varints are the lengths of most DNS messages and of the
            // embedded Message (128..16383 bytes); take them inline too. varint_slow was
            // 5 % of the filter-reject path's reader threads (scripts/perf.sh, synthetic
            // corpus).
            Some(&b0) if self.buf.get(self.pos + 1).is_some_and(|&b1| b1 < 0x80) => {
                let b1 = self.buf.get(self.pos + 1).copied().unwrap_or(0);
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7)
            }
            _ => {
                let (value, end) = varint_slow(self.buf, self.pos)?;
                self.pos = end;
                Ok(value)
            }
        }
    }

    /// A length-delimited value: the bytes, borrowed.
    #[inline(always)]
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], Bad> {
        let at = self.pos;
        let len = self.varint()?;
        // `pos <= buf.len()` always, and `len` is compared before any addition.
        let rest = self.buf.len() - self.pos;
        if len > rest as u64 {
            self.pos = at;
            return Err(Bad::PastEnd);
        }
        let end = self.pos + len as usize;
        match self.buf.get(self.pos..end) {
            Some(value) => {
                self.pos = end;
                Ok(value)
            }
            None => {
                self.pos = at;
                Err(Bad::PastEnd)
            }
        }
    }

    #[inline(always)]
    pub(super) fn fixed32(&mut self) -> Result<u32, Bad> {
        let end = self.pos.saturating_add(4);
        match self
            .buf
            .get(self.pos..end)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
        {
            Some(b) => {
                self.pos = end;
                Ok(u32::from_le_bytes(b))
            }
            None => Err(Bad::TruncatedFixed32),
        }
    }

    /// Skips one varint value (1 to 10 bytes), accepting and refusing exactly what
    /// [`Reader::varint`] does, without decoding it.
    #[inline(always)]
    pub(super) fn skip_varint(&mut self) -> Result<(), Bad> {
        // PERF: one-byte varints (enums, `Dnstap.type` at the very end of the payload, where
        // the 8-byte load below cannot be made) without the slow path: the top-level scan
        // spent 21 instructions a message in varint_slow (cachegrind, benches/filter.rs).
        if self.buf.get(self.pos).is_some_and(|&b| b < 0x80) {
            self.pos += 1;
            return Ok(());
        }
        if let Some(word) = self.buf.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
            // A byte below 0x80 ends the varint: the lowest such byte's index + 1 is its
            // length (up to 8 bytes; longer ones take the slow path).
            let ends = !u64::from_le_bytes(*word) & 0x8080_8080_8080_8080;
            if ends != 0 {
                self.pos += (ends.trailing_zeros() / 8) as usize + 1;
                return Ok(());
            }
        }
        self.pos = varint_slow(self.buf, self.pos)?.1;
        Ok(())
    }

    /// Checks the key of a field we do not read, which started at `at`, and skips its value.
    /// A key needs checking only here: the keys we match on are valid by construction.
    /// Field numbers must be 1 ..= 2^29-1 (protobuf's rule; it also keeps every key within the
    /// 32 bits quick-protobuf reads).
    // PERF: a varint (the filter's scan skips the times) is skipped by finding its last
    // byte in one 8-byte load instead of decoding it; a length or fixed32 by the reads of
    // [`Reader::bytes`] and [`Reader::fixed32`].
    #[inline(always)]
    pub(super) fn skip(&mut self, at: usize, key: u64) -> Result<(), Bad> {
        let field = key >> 3;
        if field == 0 || field > MAX_FIELD_NUMBER {
            self.pos = at;
            return Err(Bad::FieldNumber);
        }
        match key & 7 {
            VARINT => self.skip_varint(),
            LEN => self.bytes().map(|_| ()),
            I32 => self.fixed32().map(|_| ()),
            I64 if self.buf.len() - self.pos < 8 => Err(Bad::TruncatedFixed64),
            I64 => {
                self.pos += 8;
                Ok(())
            }
            SGROUP | EGROUP => Err(Bad::Group),
            _ => Err(Bad::WireType),
        }
    }
}

/// A varint of at most 8 bytes at the start of `bytes`, read from one 8-byte load: its
/// value and length. `None` when fewer than 8 bytes are left or the varint is longer.
#[inline(always)]
fn varint_word(bytes: &[u8]) -> Option<(u64, usize)> {
    let word = u64::from_le_bytes(*bytes.first_chunk::<8>()?);
    // A byte below 0x80 ends the varint; the lowest such byte's high bit (clear in the
    // word) is `ends`' lowest bit.
    let ends = !word & 0x8080_8080_8080_8080;
    if ends == 0 {
        return None;
    }
    let len = (ends.trailing_zeros() / 8 + 1) as usize;
    // The varint's bytes, without their continuation bits, then the 7-bit groups packed
    // together: pairs of bytes, then pairs of those, then the two halves.
    let mut x = word & (ends ^ (ends - 1)) & 0x7f7f_7f7f_7f7f_7f7f;
    x = (x & 0x007f_007f_007f_007f) | (x & 0x7f00_7f00_7f00_7f00) >> 1;
    x = (x & 0x0000_3fff_0000_3fff) | (x & 0x3fff_0000_3fff_0000) >> 2;
    x = (x & 0x0000_0000_0fff_ffff) | (x & 0x0fff_ffff_0000_0000) >> 4;
    Some((x, len))
}

// PERF: the rare paths are free functions of (buf, pos), not `&mut Reader` methods, so the
// reader does not escape to memory and `pos` stays in a register in the scan loops
// (benches/dnstap.rs "view").

/// A varint of 1 to 10 bytes at `pos`: its value and the position after it.
#[inline(never)]
fn varint_slow(buf: &[u8], pos: usize) -> Result<(u64, usize), Bad> {
    // PERF: up to 8 bytes (the times' seconds take 5, ports from 16384 take 3) from one
    // 8-byte load, without the loop below; varint_slow was 2.5 % of the JSON writer thread
    // (scripts/perf.sh, synthetic corpus).
    if let Some((value, len)) = buf.get(pos..).and_then(varint_word) {
        return Ok((value, pos + len));
    }
    let mut value = 0u64;
    let mut i = pos;
    // Shifts 0, 7, .., 63: ten bytes at most; the tenth byte's bits past 64 fall off.
    let mut shift = 0;
    while shift < 64 {
        let Some(&b) = buf.get(i) else {
            return Err(Bad::TruncatedVarint);
        };
        i += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok((value, i));
        }
        shift += 7;
    }
    Err(Bad::LongVarint)
}

#[cfg(test)]
mod tests {
    use super::Reader;

    /// The varint at the start of `bytes`, a byte at a time (up to 10 bytes).
    fn byte_loop(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
            if b < 0x80 {
                return Some((value, i + 1));
            }
        }
        None
    }

    /// Every varint length (1 to 10 bytes), at the end of the buffer and before more
    /// bytes, non-minimal encodings included: the reader (one byte, two bytes, one 8-byte
    /// load, or its loop) gives what a byte at a time gives.
    #[test]
    fn varints_read_as_the_byte_loop_reads_them() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let value = x >> (x % 64);
            let mut buf = Vec::new();
            let mut v = value;
            while v >= 0x80 {
                buf.push(v as u8 | 0x80);
                v >>= 7;
            }
            buf.push(v as u8);
            // Sometimes padded to a longer (non-minimal) form.
            if i % 5 == 0 && buf.len() < 10 {
                let last = buf.len() - 1;
                buf[last] |= 0x80;
                buf.push(0);
            }
            let len = buf.len();
            buf.extend(std::iter::repeat_n(0x80 | (x >> 8) as u8, (i % 9) as usize));
            buf.push(1);
            let cut = if i % 3 == 0 { len } else { buf.len() };
            let bytes = &buf[..cut];
            let mut r = Reader::new(bytes);
            let got = r.varint().map(|v| (v, r.pos)).ok();
            assert_eq!(got, byte_loop(bytes), "{bytes:02x?}");
            assert_eq!(got, Some((value, len)), "{bytes:02x?}");
        }
    }
}
