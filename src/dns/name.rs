//! Domain names on the wire: validation (RFC 1035 limits, compression pointers only
//! backwards), label iteration and presentation format written into caller buffers.
//!
//! A [`Name`] is only ever made by [`Name::parse`], which walks the whole name once and
//! checks every limit; afterwards label iteration and printing re-walk the same bytes and
//! cannot fail (they still use checked reads, so a logic slip ends the walk instead of
//! panicking). Knows nothing of record types or of dnstap.
#![forbid(unsafe_code)]

use std::ops::ControlFlow;

use super::{DnsError, DnsErrorKind};

/// Longest name in wire form, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4): the two top bits of the length byte must be 0.
pub const MAX_LABEL_LEN: usize = 63;
/// A name of at most 255 wire bytes has at most 127 non-root labels, so an honest name
/// never needs more pointers than that. The cap bounds the work for pointer-to-pointer
/// chains, which the strictly-backwards rule alone would bound only by the message size.
const MAX_POINTERS: usize = 128;

/// What a [`Name::visit`] visitor wants after a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// The next label too.
    Next,
    /// No more labels, but the rest of the name checked as [`Name::parse`] does.
    Check,
    /// Nothing more: the walk ends here.
    Stop,
}

/// A validated name inside a message: `start` is the offset of its first length byte.
///
/// Invariant: the bytes from `start` (following pointers) form a name that passed
/// [`Name::parse`]: every label is inside `msg`, the wire length is at most 255 and every
/// pointer points strictly before the label sequence it interrupts.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    msg: &'a [u8],
    start: usize,
    /// Length in uncompressed wire form, root byte included (1 for the root name).
    wire_len: u8,
    /// Number of labels, the root excluded (at most 127 in 255 bytes).
    labels: u8,
    /// No compression pointer: the name is `msg[start..start + wire_len]`.
    contiguous: bool,
    /// Every length byte, the root's included, is below 0x21 (a label of at most 32
    /// bytes), so a length byte never reads as a printable character.
    short_labels: bool,
}

impl<'a> Name<'a> {
    /// Validates the name at `offset`; returns it and the offset just past it in place
    /// (after the first pointer, if any).
    ///
    /// ```text
    /// label:    | len (0..=63) | len bytes ...|       00 = root, ends the name
    /// pointer:  | 1 1 |  offset (14 bits)     |       must be < start of the current run
    /// ```
    /// Length bytes 0x40..=0xbf (label types 01 and 10) are rejected.
    #[inline]
    pub fn parse(msg: &'a [u8], offset: usize) -> Result<(Name<'a>, usize), DnsError> {
        match Name::visit(msg, offset, |_| Visit::Next)? {
            ControlFlow::Continue(parsed) => Ok(parsed),
            ControlFlow::Break(()) => unreachable!("this visitor never stops"),
        }
    }

    /// [`Name::parse`] that also hands each label (the root excluded), in order, to
    /// `visit`, which says after each one whether it wants the next ([`Visit`]). With
    /// [`Visit::Stop`] the walk ends there, `Ok(Break(()))`, and the rest of the name is
    /// never read (so it may still be invalid); otherwise the result is `parse`'s.
    ///
    /// A label is handed over as soon as its bytes are known to be inside `msg`, before the
    /// rest of the name is checked; a visitor that wants the name's validity must not stop.
    #[inline(always)]
    pub fn visit(
        msg: &'a [u8],
        offset: usize,
        mut visit: impl FnMut(&'a [u8]) -> Visit,
    ) -> Result<ControlFlow<(), (Name<'a>, usize)>, DnsError> {
        let err = |kind, offset| DnsError { kind, offset };
        let mut wants = true;
        let mut pos = offset;
        // Where the current run of labels started: a pointer must land before it. This is
        // the "strictly backwards" rule that makes loops impossible: each jump lowers it.
        let mut run_start = offset;
        let mut end = None;
        let mut wire_len = 0usize;
        let mut pointers = 0usize;
        let mut labels = 0u8;
        let mut short_labels = true;
        loop {
            let len = *msg.get(pos).ok_or(err(DnsErrorKind::Truncated, pos))? as usize;
            match len & 0xc0 {
                0x00 => {
                    wire_len += len + 1;
                    if wire_len > MAX_NAME_LEN {
                        return Err(err(DnsErrorKind::NameTooLong, pos));
                    }
                    if len == 0 {
                        pos += 1;
                        break;
                    }
                    // At most 127 labels fit in 255 bytes: no overflow.
                    labels = labels.wrapping_add(1);
                    short_labels &= len < 0x21;
                    let next = pos + 1 + len;
                    let Some(label) = msg.get(pos + 1..next) else {
                        return Err(err(DnsErrorKind::Truncated, pos));
                    };
                    if wants {
                        match visit(label) {
                            Visit::Next => {}
                            Visit::Check => wants = false,
                            Visit::Stop => return Ok(ControlFlow::Break(())),
                        }
                    }
                    pos = next;
                }
                0xc0 => {
                    let low = *msg.get(pos + 1).ok_or(err(DnsErrorKind::Truncated, pos))?;
                    let target = ((len & 0x3f) << 8) | low as usize;
                    pointers += 1;
                    if target >= run_start || pointers > MAX_POINTERS {
                        return Err(err(DnsErrorKind::BadPointer, pos));
                    }
                    if end.is_none() {
                        end = Some(pos + 2);
                    }
                    run_start = target;
                    pos = target;
                }
                _ => return Err(err(DnsErrorKind::BadLabel, pos)),
            }
        }
        let name = Name {
            msg,
            start: offset,
            wire_len: wire_len as u8,
            labels,
            contiguous: end.is_none(),
            short_labels,
        };
        Ok(ControlFlow::Continue((name, end.unwrap_or(pos))))
    }

    /// The root name, not tied to any message (for callers that need a placeholder).
    pub fn root() -> Name<'static> {
        Name {
            msg: &[0],
            start: 0,
            wire_len: 1,
            labels: 0,
            contiguous: true,
            short_labels: true,
        }
    }

    /// Offset of the name's first length byte in the message.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Length in uncompressed wire form, root byte included (1..=255).
    pub fn wire_len(&self) -> usize {
        self.wire_len as usize
    }

    pub fn is_root(&self) -> bool {
        self.wire_len == 1
    }

    /// Iterator over the labels, leftmost first, root excluded.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            msg: self.msg,
            pos: self.start,
            hops: 0,
        }
    }

    /// Calls `f` with each label's bytes, from the leftmost label; the root label is not
    /// passed. The name was validated by `parse`, so this cannot fail.
    pub fn for_each_label(&self, mut f: impl FnMut(&'a [u8])) {
        for label in self.labels() {
            f(label);
        }
    }

    /// Number of non-root labels.
    pub fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// Writes the presentation form with a trailing dot ("." for the root), escaping as
    /// [`escape_label_into`] does.
    pub fn write_presentation(&self, out: &mut Vec<u8>) {
        if self.write_plain_presentation(out) {
            return;
        }
        // Escapes at most quadruple a byte; reserving the common case avoids regrowing.
        out.reserve(self.wire_len as usize);
        let mut any = false;
        for label in self.labels() {
            escape_label_into(label, out);
            out.push(b'.');
            any = true;
        }
        if !any {
            out.push(b'.');
        }
    }

    /// The presentation form of a name that needs no escaping and holds no compression
    /// pointer (a question's name, nearly always), written with one copy: the wire bytes
    /// after the first length byte, with every later length byte (and the root byte)
    /// turned into `.`. Returns false, having written nothing, for any other name; the
    /// caller then takes the label-by-label path, which gives the same text.
    /// (It may have grown `out`'s capacity.)
    ///
    /// ```text
    /// wire:  03 w w w 07 e x a m p l e 04 t e s t 00
    /// text:     w w w .  e x a m p l e .  t e s t .
    /// ```
    // PERF: one copy per name instead of one per label plus a push per dot; long and
    // many-label names dominated the JSON writer's profile (scripts/perf.sh, synthetic
    // corpus: write_name_quoted was 14 % of the writer thread; benches/format.rs json).
    #[inline]
    pub fn write_plain_presentation(&self, out: &mut Vec<u8>) -> bool {
        let Some(wire) = self.contiguous_wire() else {
            return false;
        };
        let Some((&first, rest)) = wire.split_first() else {
            return false;
        };
        if first == 0 {
            out.push(b'.');
            return true;
        }
        let base = out.len();
        if self.short_labels {
            let high = match rest.len() {
                16.. => plain_chunks::<16>(rest, out),
                8..=15 => plain_chunks::<8>(rest, out),
                4..=7 => plain_chunks::<4>(rest, out),
                _ => plain_chunks::<1>(rest, out),
            };
            // Every byte printable and unescaped, and as many bytes of 0x21 or more as
            // there are label bytes: the bytes below are the length bytes.
            if high.is_none_or(|high| high + usize::from(self.labels) != rest.len()) {
                out.truncate(base);
            }
        } else {
            out.extend_from_slice(rest);
            let plain = out
                .get_mut(base..)
                .is_some_and(|text| long_labels_to_dots(text, rest, first));
            if !plain {
                out.truncate(base);
            }
        }
        out.len() > base
    }

    /// The name's uncompressed wire form (root byte included) when it lies in one piece
    /// in the message: no compression pointer (a question's name, nearly always).
    #[inline]
    pub fn contiguous_wire(&self) -> Option<&'a [u8]> {
        if !self.contiguous {
            return None;
        }
        self.msg
            .get(self.start..self.start + self.wire_len as usize)
    }

    /// Case-insensitive (ASCII) comparison of two names, label by label.
    pub fn eq_ignore_case(&self, other: &Name<'_>) -> bool {
        if self.wire_len != other.wire_len {
            return false;
        }
        let mut a = self.labels();
        let mut b = other.labels();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                _ => return false,
            }
        }
    }
}

/// Appends `rest` (at least `K` bytes), the wire bytes of a contiguous name after its
/// first length byte, with every byte below 0x21 turned into `.`; returns how many of its
/// bytes are 0x21 or more, or `None` when one of them needs an escape (then what was
/// appended is to be cut off). For a name whose length bytes are all below 0x21, that
/// count tells whether they are the only such bytes: a plain name has
/// `rest.len() - labels` of the others.
///
/// No label walk: `rest` is read in chunks of `K` bytes, the last one overlapping the one
/// before (its bytes already seen are not counted again), each turned into text and
/// checked in one branch-free pass that vectorises, and appended whole.
// PERF: the label walk of [`long_labels_to_dots`] is a chain of dependent loads, one per
// label (34 for the synthetic corpus's ip6.arpa names), and its byte loop ended in a
// scalar tail of up to 15 bytes, most of a short name (Name::write_plain_presentation was
// 13 % of the JSON writer thread; scripts/perf.sh, synthetic corpus). Chunks are read
// from the message and written out, never read back from `out`: a wide load of bytes
// just stored by narrower moves waits for them.
#[inline(always)]
fn plain_chunks<const K: usize>(rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let (mut high, mut bad) = (0usize, false);
    let mut chunks = rest.chunks_exact(K);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&[u8; K]>::try_from(chunk) {
            let (text, h, b) = plain_chunk(chunk, 0);
            high += h;
            bad |= b;
            out.extend_from_slice(&text);
        }
    }
    let left = chunks.remainder().len();
    if left > 0 {
        // The last K bytes, of which the first K - left are out already.
        let tail = rest.last_chunk::<K>()?;
        let (text, h, b) = plain_chunk(tail, K - left);
        high += h;
        bad |= b;
        out.truncate(out.len().saturating_sub(K - left));
        out.extend_from_slice(&text);
    }
    (!bad).then_some(high)
}

/// One chunk of [`plain_chunks`]: its text, how many of its bytes from `skip` on are 0x21
/// or more, and whether one of those needs an escape.
#[inline(always)]
fn plain_chunk<const K: usize>(chunk: &[u8; K], skip: usize) -> ([u8; K], usize, bool) {
    let mut text = [0u8; K];
    let (mut high, mut bad) = (0u8, false);
    for (i, (t, &c)) in text.iter_mut().zip(chunk).enumerate() {
        let low = c < 0x21;
        let counted = i >= skip;
        bad |= counted
            & ((c > 0x7e)
                | (c == b'.')
                | (c == b'"')
                | (c == b'(')
                | (c == b')')
                | (c == b';')
                | (c == b'\\')
                | (c == b'@')
                | (c == b'$'));
        high += u8::from(counted & !low);
        *t = if low { b'.' } else { c };
    }
    (text, usize::from(high), bad)
}

/// Turns `text`, a copy of `rest` (a contiguous name's wire bytes after its first length
/// byte, `first`), into presentation text in place; true when the name needs no escape.
/// For the names [`plain_chunks`] does not take: a label of 33 bytes or more, whose length
/// byte may read as a printable character. The length bytes are found by walking the
/// labels.
#[inline(never)]
fn long_labels_to_dots(text: &mut [u8], rest: &[u8], first: u8) -> bool {
    // rest[first] is the second length byte; each length byte becomes a dot. The walk
    // reads the wire (reading the bytes just copied would wait for the copy's stores).
    let mut at = first as usize;
    let mut seps = 0u8;
    loop {
        let (Some(&len), Some(dot)) = (rest.get(at), text.get_mut(at)) else {
            return false;
        };
        *dot = b'.';
        seps = seps.wrapping_add(1);
        if len == 0 {
            // The root byte must be the last one.
            if at + 1 != rest.len() {
                return false;
            }
            break;
        }
        at += 1 + len as usize;
    }
    // Every byte printable and unescaped, and no dot but the separators (a dot inside a
    // label needs an escape). Branch-free, so it vectorises.
    let (mut bad, mut dots) = (0u8, 0u8);
    for &b in text.iter() {
        bad |= u8::from(
            (b.wrapping_sub(0x21) > 0x7e - 0x21)
                | (b == b'"')
                | (b == b'(')
                | (b == b')')
                | (b == b';')
                | (b == b'\\')
                | (b == b'@')
                | (b == b'$'),
        );
        dots = dots.wrapping_add(u8::from(b == b'.'));
    }
    bad == 0 && dots == seps
}

/// Shows the presentation form (`Name("www.example.test.")`), not the whole message.
impl std::fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = Vec::new();
        self.write_presentation(&mut v);
        f.debug_tuple("Name")
            .field(&String::from_utf8_lossy(&v))
            .finish()
    }
}

/// Labels of a validated [`Name`], leftmost first.
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    msg: &'a [u8],
    /// Offset of the next length byte; `usize::MAX` once finished.
    pos: usize,
    hops: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let len = *self.msg.get(self.pos)? as usize;
            if len & 0xc0 == 0xc0 {
                let low = *self.msg.get(self.pos + 1)? as usize;
                self.hops += 1;
                // Cannot trigger on a validated name; it keeps a logic slip finite.
                if self.hops > MAX_POINTERS {
                    self.pos = usize::MAX;
                    return None;
                }
                self.pos = ((len & 0x3f) << 8) | low;
                continue;
            }
            if len == 0 || len > MAX_LABEL_LEN {
                self.pos = usize::MAX;
                return None;
            }
            let label = self.msg.get(self.pos + 1..self.pos + 1 + len)?;
            self.pos += 1 + len;
            return Some(label);
        }
    }
}

/// Lowercases the ASCII letters of 8 bytes at once (other bytes unchanged): a byte gets
/// 0x20 added when it lies in 'A'..='Z'. Length bytes of a wire name (0..=63) are left
/// alone, so a whole wire name can be folded word by word.
#[inline]
pub fn lower8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte set when the byte (below 0x80) is >= 'A' and <= 'Z'.
    let low7 = w & !HIGH;
    let ge_a = low7.wrapping_add(ONES * (0x80 - u64::from(b'A')));
    let gt_z = low7.wrapping_add(ONES * (0x7f - u64::from(b'Z')));
    let upper = ge_a & !gt_z & !w & HIGH;
    w | (upper >> 2)
}

/// The 1..=7 bytes at the end of a string as one word, read without a copy: two
/// overlapping 4-byte reads from 4 bytes up, three single bytes below. With the length
/// known (the hashes that use it hash the length first) the word determines the bytes, so
/// overlaps cannot make two strings alike. Bytewise, so [`lower8`] of the word is the word
/// of the lowercased bytes.
// PERF: benches/transform.rs drop_domain_*_synthetic, latency_*: copying the tail into a
// zeroed word called memcpy and then read the word back before the copy had landed (a
// store-forwarding stall): a third of a domain-list look-up's time.
#[inline]
pub fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    if let (Some(a), Some(b)) = (
        rest.first_chunk::<4>(),
        rest.get(n.saturating_sub(4)..)
            .and_then(|t| t.first_chunk::<4>()),
    ) {
        u64::from(u32::from_le_bytes(*a)) | u64::from(u32::from_le_bytes(*b)) << 32
    } else {
        let at = |i: usize| u64::from(rest.get(i).copied().unwrap_or(0));
        at(0) | at(n / 2) << 8 | at(n.saturating_sub(1)) << 16
    }
}

/// Writes one label in presentation form as the seed tool (dnspython) renders it:
/// `"`, `(`, `)`, `.`, `;`, `\`, `@`, `$` get a backslash; bytes outside 0x21..=0x7e
/// (space included) are written `\DDD` (three decimal digits).
#[inline]
pub fn escape_label_into(label: &[u8], out: &mut Vec<u8>) {
    escape_into::<false>(label, out);
}

/// [`escape_label_into`] with the label's ASCII letters lowercased (escapes are digits and
/// backslashes, which lowercasing leaves alone), in one pass.
#[inline]
pub fn escape_label_lower_into(label: &[u8], out: &mut Vec<u8>) {
    escape_into::<true>(label, out);
}

#[inline(always)]
#[allow(
    clippy::indexing_slicing,
    reason = "a u8 indexes the 256-entry ESCAPE table"
)]
fn escape_into<const LOWER: bool>(label: &[u8], out: &mut Vec<u8>) {
    // PERF: most labels need no escape; one table look-up per byte and a single copy is
    // what keeps `dns/parse+qname_text` cheap. Lowercased, the copy lowercases as it goes
    // (a slice-map extend writes without a capacity check per byte) instead of a copy and a
    // second pass.
    if label.iter().all(|&b| ESCAPE[b as usize] == PLAIN) {
        if LOWER {
            out.extend(label.iter().map(u8::to_ascii_lowercase));
        } else {
            out.extend_from_slice(label);
        }
        return;
    }
    for &b in label {
        match ESCAPE[b as usize] {
            PLAIN if LOWER => out.push(b.to_ascii_lowercase()),
            PLAIN => out.push(b),
            BACKSLASH => out.extend_from_slice(&[b'\\', b]),
            _ => write_ddd(b, out),
        }
    }
}

const PLAIN: u8 = 0;
const BACKSLASH: u8 = 1;
const DECIMAL: u8 = 2;

/// How each byte is written in a label (dnspython's rules, see [`escape_label_into`]).
#[allow(
    clippy::indexing_slicing,
    reason = "b runs over 0x21..=0x7e, inside the table"
)]
static ESCAPE: [u8; 256] = {
    let mut t = [DECIMAL; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        t[b] = match b as u8 {
            b'"' | b'(' | b')' | b'.' | b';' | b'\\' | b'@' | b'$' => BACKSLASH,
            _ => PLAIN,
        };
        b += 1;
    }
    t
};

/// `\DDD`: a backslash and three decimal digits.
pub(crate) fn write_ddd(b: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'\\', b'0' + b / 100, b'0' + (b / 10) % 10, b'0' + b % 10]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower8_folds_only_ascii_capitals() {
        let all: Vec<u8> = (0..=255u8).collect();
        for c in all.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            let got = lower8(u64::from_le_bytes(w)).to_le_bytes();
            let want: Vec<u8> = c.iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(got.to_vec(), want);
        }
    }

    #[test]
    fn contiguous_wire_only_without_pointers() {
        // Question name at 12, an answer owner as a pointer to it.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(b"\x03www\x07Example\x03com\x00");
        let at = m.len();
        m.extend_from_slice(&[0x01, b'a', 0xc0, 12]);
        let (q, _) = Name::parse(&m, 12).unwrap();
        assert_eq!(q.contiguous_wire(), Some(&m[12..at]));
        let (p, _) = Name::parse(&m, at).unwrap();
        assert_eq!(p.contiguous_wire(), None);
        let (root, _) = Name::parse(&[0u8], 0).unwrap();
        assert_eq!(root.contiguous_wire(), Some(&[0u8][..]));
    }

    /// The one-copy path against the label-by-label path (the oracle), on plain names,
    /// names that need escapes, the root, and a compressed name.
    #[test]
    fn plain_presentation_matches_label_by_label() {
        let slow = |n: &Name<'_>| {
            let mut out = b"prefix".to_vec();
            let mut any = false;
            for label in n.labels() {
                escape_label_into(label, &mut out);
                out.push(b'.');
                any = true;
            }
            if !any {
                out.push(b'.');
            }
            out
        };
        let long = [b'a'; 63];
        let names: Vec<Vec<u8>> = vec![
            wire(&[b"www", b"example", b"test"]),
            wire(&[]),
            wire(&[&long, &long, &long, b"x"]),
            wire(&[b"a b", b"test"]),
            wire(&[b"x.y", b"test"]),
            wire(&[
                b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"ip6", b"arpa",
            ]),
            wire(&[b"caf\xe9", b"test"]),
        ];
        for w in &names {
            let (n, _) = Name::parse(w, 0).unwrap();
            let mut fast = b"prefix".to_vec();
            let plain = n.write_plain_presentation(&mut fast);
            let plain_bytes = n
                .labels()
                .all(|l| l.iter().all(|&b| ESCAPE[b as usize] == PLAIN));
            assert_eq!(plain, plain_bytes, "{n:?}");
            if plain {
                assert_eq!(fast, slow(&n), "{n:?}");
            } else {
                assert_eq!(fast, b"prefix", "nothing written when refused");
            }
            let mut full = b"prefix".to_vec();
            n.write_presentation(&mut full);
            assert_eq!(full, slow(&n));
        }
        // A compressed name: "www" + pointer to "example.test." at offset 0.
        let mut msg = wire(&[b"example", b"test"]);
        let at = msg.len();
        msg.extend_from_slice(b"\x03www\xc0\x00");
        let (n, _) = Name::parse(&msg, at).unwrap();
        let mut out = Vec::new();
        assert!(!n.write_plain_presentation(&mut out) && out.is_empty());
        n.write_presentation(&mut out);
        assert_eq!(out, b"www.example.test.");
    }

    /// Random names around every boundary of the fast path (labels of 32 and 33 bytes,
    /// bytes just below and above 0x21 and 0x7e, every byte that needs an escape, many
    /// labels): the plain presentation is written exactly when no label needs an escape,
    /// and is then the label-by-label text.
    #[test]
    fn plain_presentation_matches_label_by_label_on_random_names() {
        let alphabet: &[u8] = b"az09-_.\"()@$;\\\x00\x01\x1f\x20\x21\x7e\x7f\x80\xff";
        let mut x: u64 = 0x1234_5678_9abc_def0;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut plain_seen, mut refused_seen) = (0, 0);
        for _ in 0..20_000 {
            let mut labels: Vec<Vec<u8>> = Vec::new();
            let mut total = 1;
            for _ in 0..next() % 40 {
                let len = match next() % 8 {
                    0 => 32,
                    1 => 33,
                    2 => 1 + next() as usize % 63,
                    _ => 1 + next() as usize % 4,
                };
                if total + len + 1 > 255 {
                    break;
                }
                total += len + 1;
                let clean = next() % 4 != 0;
                labels.push(
                    (0..len)
                        .map(|_| {
                            let pick = next() as usize;
                            if clean {
                                b"abcxyz0189-"[pick % 11]
                            } else {
                                alphabet[pick % alphabet.len()]
                            }
                        })
                        .collect(),
                );
            }
            let refs: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
            let w = wire(&refs);
            let (n, _) = Name::parse(&w, 0).unwrap();
            assert_eq!(n.label_count(), labels.len());
            let mut fast = b"prefix".to_vec();
            let plain = n.write_plain_presentation(&mut fast);
            let plain_bytes = labels
                .iter()
                .all(|l| l.iter().all(|&b| ESCAPE[b as usize] == PLAIN));
            assert_eq!(plain, plain_bytes, "{n:?}");
            // The label-by-label text, independent of the fast path.
            let mut slow = b"prefix".to_vec();
            for label in n.labels() {
                escape_label_into(label, &mut slow);
                slow.push(b'.');
            }
            if labels.is_empty() {
                slow.push(b'.');
            }
            if plain {
                assert_eq!(fast, slow, "{n:?}");
                plain_seen += 1;
            } else {
                assert_eq!(fast, b"prefix", "nothing written when refused");
                refused_seen += 1;
            }
        }
        assert!(plain_seen > 1000 && refused_seen > 1000);
    }

    fn text(msg: &[u8], off: usize) -> Result<(String, usize), DnsErrorKind> {
        let (n, end) = Name::parse(msg, off).map_err(|e| e.kind)?;
        let mut out = Vec::new();
        n.write_presentation(&mut out);
        Ok((String::from_utf8(out).unwrap(), end))
    }

    fn wire(labels: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in labels {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v
    }

    #[test]
    fn visit_offers_labels_in_order_and_stops_or_checks_on_request() {
        use super::Visit;
        use std::ops::ControlFlow;
        // "www" + pointer to "example.test." at 0, then a broken name: "www" + bad label.
        let mut msg = wire(&[b"example", b"test"]);
        let at = msg.len();
        msg.extend_from_slice(b"\x03www\xc0\x00");
        let broken = msg.len();
        msg.extend_from_slice(b"\x03www\x41");
        let mut seen = Vec::new();
        let r = Name::visit(&msg, at, |l| {
            seen.push(l.to_vec());
            Visit::Next
        });
        let Ok(ControlFlow::Continue((n, end))) = r else {
            panic!("{r:?}")
        };
        assert_eq!((n.wire_len(), end), (18, at + 6));
        assert_eq!(
            seen,
            [b"www".to_vec(), b"example".to_vec(), b"test".to_vec()]
        );
        // Check: no more labels, the rest still checked; Stop: nothing more read.
        let mut offered = 0;
        let r = Name::visit(&msg, at, |_| {
            offered += 1;
            Visit::Check
        });
        assert!(matches!(r, Ok(ControlFlow::Continue(_))) && offered == 1);
        let r = Name::visit(&msg, broken, |_| Visit::Check);
        assert_eq!(r.unwrap_err().kind, DnsErrorKind::BadLabel);
        let r = Name::visit(&msg, broken, |_| Visit::Stop);
        assert!(matches!(r, Ok(ControlFlow::Break(()))));
        assert!(Name::parse(&msg, broken).is_err());
    }

    #[test]
    fn root_and_simple() {
        assert_eq!(text(&[0], 0).unwrap(), (".".to_string(), 1));
        let w = wire(&[b"www", b"Example", b"test"]);
        assert_eq!(
            text(&w, 0).unwrap(),
            ("www.Example.test.".to_string(), w.len())
        );
        let (n, _) = Name::parse(&w, 0).unwrap();
        assert_eq!(n.wire_len(), w.len());
        assert_eq!(n.label_count(), 3);
        let mut seen = Vec::new();
        n.for_each_label(|l| seen.push(l.to_vec()));
        assert_eq!(
            seen,
            vec![b"www".to_vec(), b"Example".to_vec(), b"test".to_vec()]
        );
    }

    #[test]
    fn escapes_like_dnspython() {
        let w = wire(&[b"a.b", b"\"();\\@$", b" \x00\x7f\xff~!"]);
        let (s, _) = text(&w, 0).unwrap();
        assert_eq!(s, r#"a\.b.\"\(\)\;\\\@\$.\032\000\127\255~!."#);
    }

    #[test]
    fn lowercased_escapes_are_the_escapes_lowercased() {
        let mut labels: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        labels.push(b"WwW-Example_09".to_vec());
        labels.push(b"A.B\\C\"D E\xffZ".to_vec());
        for l in &labels {
            let (mut want, mut got) = (Vec::new(), Vec::new());
            escape_label_into(l, &mut want);
            want.make_ascii_lowercase();
            escape_label_lower_into(l, &mut got);
            assert_eq!(got, want, "{l:?}");
        }
    }

    #[test]
    fn compression_backwards_ok() {
        // "test." at 0, "example" + ptr->0 at 6, "www" + ptr->6 at 16
        let mut m = wire(&[b"test"]);
        m.extend_from_slice(&[7]);
        m.extend_from_slice(b"example");
        m.extend_from_slice(&[0xc0, 0]);
        let www = m.len();
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 6]);
        let (s, end) = text(&m, www).unwrap();
        assert_eq!(s, "www.example.test.");
        assert_eq!(end, www + 6);
        // A bare pointer.
        let p = m.len();
        m.extend_from_slice(&[0xc0, www as u8]);
        assert_eq!(
            text(&m, p).unwrap(),
            ("www.example.test.".to_string(), p + 2)
        );
    }

    #[test]
    fn pointer_loops_rejected() {
        // self pointer
        assert_eq!(text(&[0xc0, 0], 0), Err(DnsErrorKind::BadPointer));
        // forward pointer
        assert_eq!(text(&[0xc0, 2, 0], 0), Err(DnsErrorKind::BadPointer));
        // pointer into the current run (backwards, but loops): label at 2, ptr at 4 -> 2
        assert_eq!(
            text(&[0, 0, 1, b'a', 0xc0, 2], 2),
            Err(DnsErrorKind::BadPointer)
        );
        // two pointers pointing at each other
        assert_eq!(text(&[0xc0, 2, 0xc0, 0], 2), Err(DnsErrorKind::BadPointer));
        // pointer chain that comes back up: 4 -> 0 -> 2 (2 >= run start 0's... forward)
        assert_eq!(
            text(&[0xc0, 2, 1, b'a', 0xc0, 0], 4),
            Err(DnsErrorKind::BadPointer)
        );
        // a long strictly-backwards chain of pointers is capped
        let mut m = vec![0u8];
        for i in 0..200usize {
            let target = if i == 0 { 0 } else { 1 + (i - 1) * 2 };
            m.extend_from_slice(&[0xc0 | (target >> 8) as u8, target as u8]);
        }
        assert_eq!(text(&m, m.len() - 2), Err(DnsErrorKind::BadPointer));
        // a short chain is fine
        assert_eq!(text(&m, 1 + 10 * 2).unwrap().0, ".");
    }

    #[test]
    fn label_and_name_limits() {
        let l63 = [b'a'; 63];
        let w = wire(&[&l63]);
        assert!(text(&w, 0).is_ok());
        let l64 = [b'a'; 64];
        let w = wire(&[&l64]);
        assert_eq!(text(&w, 0), Err(DnsErrorKind::BadLabel));
        // 0x80 label type
        assert_eq!(text(&[0x80, 0], 0), Err(DnsErrorKind::BadLabel));
        // 255 bytes: 3 x 63-byte labels (192) + 61-byte label (62) + root = 255
        let l61 = [b'b'; 61];
        let w = wire(&[&l63, &l63, &l63, &l61]);
        assert_eq!(w.len(), 255);
        assert!(text(&w, 0).is_ok());
        let l62 = [b'b'; 62];
        let w = wire(&[&l63, &l63, &l63, &l62]);
        assert_eq!(w.len(), 256);
        assert_eq!(text(&w, 0), Err(DnsErrorKind::NameTooLong));
        // too long through compression: 200 bytes here, 100 bytes pointed to
        let mut m = wire(&[&[b'c'; 63], &[b'c'; 35]]);
        let at = m.len();
        m.extend_from_slice(&[63]);
        m.extend_from_slice(&[b'd'; 63]);
        m.extend_from_slice(&[63]);
        m.extend_from_slice(&[b'd'; 63]);
        m.extend_from_slice(&[30]);
        m.extend_from_slice(&[b'd'; 30]);
        m.extend_from_slice(&[0xc0, 0]);
        assert_eq!(text(&m, at), Err(DnsErrorKind::NameTooLong));
    }

    #[test]
    fn truncated_never_panics() {
        let w = wire(&[b"www", b"example", b"test"]);
        for cut in 0..w.len() {
            assert_eq!(
                text(&w[..cut], 0),
                Err(DnsErrorKind::Truncated),
                "cut {cut}"
            );
        }
        assert_eq!(text(&[0xc0], 0), Err(DnsErrorKind::Truncated));
        assert_eq!(text(&[], 5), Err(DnsErrorKind::Truncated));
    }

    #[test]
    fn eq_ignore_case() {
        let a = wire(&[b"WWW", b"example"]);
        let b = wire(&[b"www", b"EXAMPLE"]);
        let c = wire(&[b"www", b"exampl"]);
        let (na, _) = Name::parse(&a, 0).unwrap();
        let (nb, _) = Name::parse(&b, 0).unwrap();
        let (nc, _) = Name::parse(&c, 0).unwrap();
        assert!(na.eq_ignore_case(&nb));
        assert!(!na.eq_ignore_case(&nc));
    }
}
