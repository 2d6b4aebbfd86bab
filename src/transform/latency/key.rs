//! The matching key of a query or response: identity, query kind (the message type pair),
//! client address and port, DNS id, qname (ASCII case folded) and qtype, reduced to a keyed
//! 128-bit hash. The table stores the hash, not the fields: 16 bytes per entry whatever the
//! qname's length, and two different keys share a hash with probability 2^-128 per
//! comparison. The hash is keyed with random seeds drawn at start-up, so a client cannot
//! aim queries at one probe chain.
//!
//! Knows records and DNS views; allocation-free (a compressed qname is folded into a stack
//! buffer).
#![forbid(unsafe_code)]

use std::hash::{BuildHasher, Hasher};

use crate::dns::name::{lower8, tail_word};
use crate::dns::MessageView;
use crate::record::Record;

/// A key's hash; never `[0, 0]` (the table's "dead entry" mark).
pub type Key = [u64; 2];

/// The secret multipliers of the two hash lanes.
#[derive(Clone, Copy, Debug)]
pub struct Seeds {
    a: u64,
    b: u64,
}

impl Seeds {
    /// Random seeds (from the standard library's per-process random keys).
    pub fn random() -> Seeds {
        let s = std::collections::hash_map::RandomState::new();
        let draw = |salt: u64| {
            let mut h = s.build_hasher();
            h.write_u64(salt);
            h.finish()
        };
        Seeds::fixed(draw(1), draw(2))
    }

    /// Fixed seeds (tests and benchmarks that want the same table layout every run).
    pub fn fixed(a: u64, b: u64) -> Seeds {
        // Odd multipliers with both halves busy mix every input bit into the high half.
        Seeds {
            a: (a | 1) ^ 0x9e37_79b9_7f4a_7c15,
            b: (b | 1) ^ 0xc2b2_ae3d_27d4_eb4f,
        }
    }
}

/// Multiplies and folds the 128-bit product (the "folded multiply" of wyhash-style mixers).
#[inline(always)]
fn fold(x: u64, m: u64) -> u64 {
    let p = u128::from(x) * u128::from(m);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Two independent lanes over the same words.
struct Lanes {
    a: u64,
    b: u64,
    seeds: Seeds,
}

impl Lanes {
    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.a = fold(self.a ^ w, self.seeds.a);
        self.b = fold(self.b ^ w.rotate_left(29), self.seeds.b);
    }

    /// A byte string, length first (so adjacent fields cannot trade bytes).
    #[inline(always)]
    fn bytes(&mut self, v: &[u8]) {
        self.bytes_mapped(v, |w| w);
    }

    /// [`Lanes::bytes`] of `v` with its ASCII letters lowercased.
    #[inline(always)]
    fn bytes_folded(&mut self, v: &[u8]) {
        self.bytes_mapped(v, lower8);
    }

    #[inline(always)]
    fn bytes_mapped(&mut self, v: &[u8], map: impl Fn(u64) -> u64) {
        self.word(v.len() as u64 | 0xa5 << 56);
        let mut chunks = v.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(map(u64::from_le_bytes(w)));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // PERF: a copy into a zeroed word stalled on store forwarding (see tail_word).
            self.word(map(tail_word(rest)));
        }
    }

    fn finish(mut self) -> Key {
        self.word(0x5bd1_e995);
        let a = fold(self.a, self.seeds.b);
        let b = fold(self.b, self.seeds.a) | 1;
        [a, b]
    }
}

/// Which half of a query/response pair a message type is, and of which pair: `(query,
/// pair)` for the dnstap types 1..=14 (odd: query; `pair` = 1..=7), `None` otherwise.
#[inline]
pub fn kind(message_type: Option<u32>) -> Option<(bool, u8)> {
    match message_type {
        Some(t @ 1..=14) => Some((t % 2 == 1, t.div_ceil(2) as u8)),
        _ => None,
    }
}

/// The key of `rec` (of message-type pair `pair`), from its DNS message; `None` when the
/// message has no readable question (nothing to match on).
#[inline]
pub fn of(rec: &Record<'_>, pair: u8, seeds: Seeds) -> Option<Key> {
    let Some(Ok(view)) = &rec.dns else {
        return None;
    };
    of_view(rec, view, pair, seeds)
}

#[inline]
fn of_view(rec: &Record<'_>, view: &MessageView<'_>, pair: u8, seeds: Seeds) -> Option<Key> {
    let q = view.question.as_ref()?;
    let mut l = Lanes {
        a: 0x243f_6a88_85a3_08d3,
        b: 0x1319_8a2e_0370_7344,
        seeds,
    };
    l.bytes(rec.identity.unwrap_or_default());
    let addr = rec.query_address.unwrap_or_default();
    let port = rec.query_port.unwrap_or(0) & 0xffff;
    l.word(
        u64::from(pair)
            | u64::from(port) << 8
            | u64::from(view.header.id) << 24
            | u64::from(q.qtype) << 40,
    );
    l.bytes(addr);
    // The qname in uncompressed wire form, ASCII letters folded to lower case: a response
    // echoes the query's name, perhaps with its case changed (0x20 randomisation is undone
    // by nobody, but a server may normalise).
    // PERF: a name in one piece (no pointer: a question's, nearly always) is hashed from
    // the message word by word, folded to lower case 8 bytes at a time; the same bytes as
    // the label-by-label copy below, so both give the same key.
    if let Some((_root, wire)) = q.name.contiguous_wire().and_then(|w| w.split_last()) {
        l.bytes_folded(wire);
        return Some(l.finish());
    }
    let mut name = [0u8; 256];
    let mut n = 0usize;
    q.name.for_each_label(|label| {
        // The name was validated (wire length <= 255), so this stays inside `name`.
        if let Some(dst) = name.get_mut(n..n + 1 + label.len()) {
            dst[0] = label.len() as u8;
            for (d, s) in dst[1..].iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
            n += 1 + label.len();
        }
    });
    l.bytes(&name[..n]);
    Some(l.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
        let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(qname);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    fn key(id: &'static [u8], addr: &'static [u8], port: u32, m: &[u8], pair: u8) -> Key {
        let rec = Record {
            identity: Some(id),
            query_address: Some(addr),
            query_port: Some(port),
            dns: Some(MessageView::parse(m)),
            ..Record::default()
        };
        of(&rec, pair, Seeds::fixed(1, 2)).unwrap()
    }

    /// The word-by-word path for names in one piece hashes what the label-by-label copy
    /// (taken by compressed names) hashes.
    #[test]
    fn folded_wire_hashes_as_the_lowercased_copy() {
        for wire in [
            &b"\x07ExAmPlE\x03COM"[..],
            b"\x03www\x0bLab-Test-01\x02Zz\x04[AZ]",
            b"\x01A",
            b"",
        ] {
            let seeds = Seeds::fixed(3, 4);
            let lanes = || Lanes { a: 1, b: 2, seeds };
            let (mut fast, mut slow) = (lanes(), lanes());
            fast.bytes_folded(wire);
            slow.bytes(&wire.to_ascii_lowercase());
            assert_eq!(fast.finish(), slow.finish(), "{wire:?}");
        }
    }

    #[test]
    fn every_field_counts_and_case_does_not() {
        let m = msg(7, b"\x07example\x03com\x00", 1);
        let base = key(b"ns1", &[192, 0, 2, 1], 5353, &m, 3);
        assert_eq!(
            base,
            key(
                b"ns1",
                &[192, 0, 2, 1],
                5353,
                &msg(7, b"\x07ExAmPlE\x03COM\x00", 1),
                3
            )
        );
        let others = [
            key(b"ns2", &[192, 0, 2, 1], 5353, &m, 3),
            key(b"ns1", &[192, 0, 2, 2], 5353, &m, 3),
            key(b"ns1", &[192, 0, 2, 1], 5354, &m, 3),
            key(
                b"ns1",
                &[192, 0, 2, 1],
                5353,
                &msg(8, b"\x07example\x03com\x00", 1),
                3,
            ),
            key(
                b"ns1",
                &[192, 0, 2, 1],
                5353,
                &msg(7, b"\x07example\x03org\x00", 1),
                3,
            ),
            key(
                b"ns1",
                &[192, 0, 2, 1],
                5353,
                &msg(7, b"\x07example\x03com\x00", 28),
                3,
            ),
            key(b"ns1", &[192, 0, 2, 1], 5353, &m, 1),
            key(b"ns1", &[0; 16], 5353, &m, 3),
        ];
        for (i, k) in others.iter().enumerate() {
            assert_ne!(*k, base, "field {i}");
            assert_ne!(*k, [0, 0]);
        }
    }

    #[test]
    fn no_question_no_key_and_kinds_pair_up() {
        let rec = Record {
            dns: Some(MessageView::parse(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            ..Record::default()
        };
        assert_eq!(of(&rec, 1, Seeds::random()), None);
        assert_eq!(kind(Some(5)), Some((true, 3)));
        assert_eq!(kind(Some(6)), Some((false, 3)));
        assert_eq!(kind(Some(1)), Some((true, 1)));
        assert_eq!(kind(Some(14)), Some((false, 7)));
        assert_eq!(kind(Some(15)), None);
        assert_eq!(kind(None), None);
    }
}
