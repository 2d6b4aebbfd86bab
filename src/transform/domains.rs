//! Domain lists at scale: a set of names, matched against a query name either as a domain
//! and everything under it, at label boundaries ([`Match::Subdomains`]: `example.com`
//! matches `example.com` and `a.example.com`, never `notexample.com`) or exactly
//! ([`Match::Exact`]). Case-insensitive (ASCII), as DNS names are.
//!
//! Built once from a list (one name a line, `#` comments, trailing dot optional); matched
//! per message in time that depends on the query name's length, not on the list's size:
//! the names are stored as keys in one hash table, and a query name is looked up once per
//! label suffix (at most 127 look-ups, usually 2–4). Knows names as label slices; nothing
//! of files (the caller reads them), records or counters.
//!
//! ```text
//!  key of "a.Example.com":   03 'c' 'o' 'm' 07 'e' 'x' 'a' 'm' 'p' 'l' 'e' 01 'a'
//!                            (labels from the right, each length-prefixed, lowercased)
//!  query "x.a.example.com":  look up "com", then "com.example", then "com.example.a" ✓
//! ```
//!
//! Memory: the table holds 32 bytes a slot at a load of at most 1/2, a key of up to 27
//! bytes inside its slot, longer ones in one byte arena: ~66 MB for a million names of
//! 20 bytes.
#![forbid(unsafe_code)]

use std::fmt;

use crate::dns::name::{lower8, tail_word};

/// The longest name in wire form (RFC 1035 §3.1), and so the longest key.
pub const MAX_NAME_LEN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// How a list's names match a query name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// The name itself and every name under it.
    Subdomains,
    /// The name itself only.
    Exact,
}

/// A line of a list that is not a domain name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListError {
    /// 1-based line number.
    pub line: usize,
    pub reason: &'static str,
    /// The offending text, cut to 80 bytes.
    pub text: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.reason, self.text)
    }
}

impl std::error::Error for ListError {}

/// Key bytes a slot holds itself; longer keys live in the arena.
const INLINE: usize = 27;

/// One slot of the open-addressing table, 32 bytes and aligned so that it never straddles
/// a cache line: 32 bits of the key's hash (0 = empty), the key's length, and the key itself
/// when it fits ([`INLINE`] bytes; most names do), else its offset in the arena (the first
/// 4 bytes of `key`, little-endian).
// PERF: benches/transform.rs drop_domain_1M_synthetic: with the key always in the arena,
// a listed name cost two cache misses (the slot, then the arena); inline, one.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
struct Slot {
    tag: u32,
    len: u8,
    key: [u8; INLINE],
}

/// A slot's tag from a table hash: its high half (the table index uses the low bits),
/// never 0.
#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1
}

/// A compiled domain list.
#[derive(Clone)]
pub struct DomainSet {
    mode: Match,
    /// Every key back to back.
    arena: Vec<u8>,
    /// Power-of-two length, at most half full.
    slots: Vec<Slot>,
    /// A Bloom filter over the keys' hashes, blocked to one 64-bit word a key (5 bits in
    /// it), one word per 8 slots (16 bits per key at the table's fullest, ~0.4 % false
    /// positives): most look-ups of a name that is not listed end here, in a structure 1/32
    /// of the table's size that stays in the CPU caches.
    // PERF: benches/transform.rs drop_domain_*_names: a split-block filter (a bit in each
    // of 8 32-bit words, 8 multiplies a check, scalar on the baseline x86-64 target) was
    // the costlier part of a check made for every suffix length some listed name has;
    // this one and the label ring together took the lab names from 55-56 to 50-52 ns.
    bloom: Vec<u64>,
    len: usize,
    /// Bit `tld_bit(h)` set for the hash `h` of every listed name's last label (case-folded):
    /// 64 Kibit.
    tlds: Box<[u64]>,
    /// Fewest and most labels of a listed name: shorter or longer suffixes of a query name
    /// are not looked up (a list of registered domains skips the TLD look-up).
    min_labels: usize,
    max_labels: usize,
}

impl fmt::Debug for DomainSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainSet")
            .field("mode", &self.mode)
            .field("names", &self.len)
            .field("arena_bytes", &self.arena.len())
            .field(
                "table_bytes",
                &(self.slots.len() * std::mem::size_of::<Slot>()),
            )
            .field("bloom_bytes", &(self.bloom.len() * 8))
            .finish()
    }
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash of one label, case-folded (`Example` and `EXAMPLE` hash alike), read 8 bytes at
/// a time.
#[inline]
pub(crate) fn label_hash(label: &[u8]) -> u64 {
    let mut h = (label.len() as u64).wrapping_mul(K);
    let mut chunks = label.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ lower8(u64::from_le_bytes(w))).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h.rotate_left(5) ^ lower8(tail_word(rest))).wrapping_mul(K);
    }
    h
}

/// A suffix's hash from its parent's (`acc`, 0 for the root) and the hash of its leftmost
/// label: insert and look-up fold the labels from the right, in the same order.
#[inline]
fn fold(acc: u64, label: u64) -> u64 {
    (acc.rotate_left(23) ^ label).wrapping_mul(K)
}

/// The table hash: mixed so the low bits depend on every input bit; never 0 (0 marks an
/// empty slot).
#[inline]
fn finish(h: u64) -> u64 {
    let mut x = h;
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x | 1
}

/// The labels [`DomainSet::matches`] keeps of a name, from the right: suffixes of up to this
/// many labels take the fast path.
const RING: usize = 16;

/// Bits of the top-level-label filter (8 KiB).
const TLD_BITS: usize = 1 << 16;

/// A label hash's bit in the top-level-label filter: its high bits (the multiply leaves
/// the low ones poorly mixed).
#[inline]
fn tld_bit(label_hash: u64) -> usize {
    (label_hash >> 48) as usize & (TLD_BITS - 1)
}

/// Slots per Bloom word: 16 bits per key at the table's fullest.
const SLOTS_PER_WORD: usize = 8;

/// The 5 bits a key sets in its Bloom word, from the hash's bits 1..=30 (bit 0 is always
/// set by [`finish`]).
#[inline]
fn bloom_mask(hash: u64) -> u64 {
    let bit = |shift: u32| 1u64 << (hash >> shift & 63);
    bit(1) | bit(7) | bit(13) | bit(19) | bit(25)
}

/// The word of a key: the hash's high half (the table uses its low bits).
#[inline]
fn bloom_word(hash: u64, words: usize) -> usize {
    (hash >> 32) as usize & (words - 1)
}

impl DomainSet {
    /// Parses a list: one name a line in presentation form (`example.com` or
    /// `example.com.`), blank lines and `#` comments (whole line or after the name) ignored.
    /// Duplicates are stored once. The first line that is not a name is the error.
    pub fn parse(mode: Match, text: &str) -> Result<DomainSet, ListError> {
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let mut set = DomainSet::with_capacity(mode, lines);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            set.insert(line).map_err(|reason| ListError {
                line: i + 1,
                reason,
                text: line.chars().take(80).collect(),
            })?;
        }
        Ok(set)
    }

    fn with_capacity(mode: Match, names: usize) -> DomainSet {
        let slots = (names.max(8) * 2).next_power_of_two().max(SLOTS_PER_WORD);
        DomainSet {
            mode,
            arena: Vec::new(),
            slots: vec![Slot::default(); slots],
            bloom: vec![0; slots / SLOTS_PER_WORD],
            tlds: vec![0; TLD_BITS / 64].into_boxed_slice(),
            len: 0,
            min_labels: usize::MAX,
            max_labels: 0,
        }
    }

    /// Names in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn mode(&self) -> Match {
        self.mode
    }

    /// Bytes the set holds on the heap (keys and table).
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.bloom.capacity() * 8
            + self.tlds.len() * 8
    }

    /// Adds one name in presentation form. Errors name what is wrong with it.
    pub fn insert(&mut self, name: &str) -> Result<(), &'static str> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err("the root (an empty name) would match every name");
        }
        if name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err("a name has no spaces (one name a line)");
        }
        let mut key = [0u8; MAX_NAME_LEN];
        let mut key_len = 0;
        let mut h = 0;
        let mut labels = 0;
        for label in name.rsplit('.') {
            let label = label.as_bytes();
            if label.is_empty() {
                return Err("empty label (two dots in a row)");
            }
            if label.len() > MAX_LABEL_LEN {
                return Err("label longer than 63 bytes");
            }
            // + 1 for the length byte, + 1 for the root label the wire form ends with
            if key_len + 1 + label.len() + 1 > MAX_NAME_LEN {
                return Err("name longer than 255 bytes in wire form");
            }
            key[key_len] = label.len() as u8;
            lowercase_into(label, &mut key[key_len + 1..key_len + 1 + label.len()]);
            let lh = label_hash(label);
            if labels == 0 {
                let bit = tld_bit(lh);
                if let Some(w) = self.tlds.get_mut(bit / 64) {
                    *w |= 1 << (bit % 64);
                }
            }
            h = fold(h, lh);
            key_len += 1 + label.len();
            labels += 1;
        }
        self.min_labels = self.min_labels.min(labels);
        self.max_labels = self.max_labels.max(labels);
        self.insert_key(&key[..key_len], finish(h));
        Ok(())
    }

    fn insert_key(&mut self, key: &[u8], hash: u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.tag == 0 {
                let mut new = Slot {
                    tag: tag_of(hash),
                    len: key.len() as u8,
                    key: [0; INLINE],
                };
                if let Some(inline) = new.key.get_mut(..key.len()) {
                    inline.copy_from_slice(key);
                } else {
                    let offset = self.arena.len() as u32;
                    new.key[..4].copy_from_slice(&offset.to_le_bytes());
                    self.arena.extend_from_slice(key);
                }
                self.slots[i] = new;
                self.len += 1;
                self.bloom_add(hash);
                return;
            }
            if slot.tag == tag_of(hash) && self.key(&slot) == key {
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let doubled = vec![Slot::default(); self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        self.bloom = vec![0; self.slots.len() / SLOTS_PER_WORD];
        for slot in old.into_iter().filter(|s| s.tag != 0) {
            // the slot keeps only part of the hash: the key's is computed again
            let hash = key_hash(self.key(&slot));
            let mut i = hash as usize & mask;
            while self.slots[i].tag != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
            self.bloom_add(hash);
        }
    }

    fn bloom_add(&mut self, hash: u64) {
        let at = bloom_word(hash, self.bloom.len());
        if let Some(w) = self.bloom.get_mut(at) {
            *w |= bloom_mask(hash);
        }
    }

    /// Whether some listed name's last label has this label hash (`false`: none has).
    #[inline]
    fn tld_may_hold(&self, label_hash: u64) -> bool {
        let bit = tld_bit(label_hash);
        self.tlds
            .get(bit / 64)
            .is_some_and(|w| w >> (bit % 64) & 1 != 0)
    }

    /// Whether a key of this hash may be in the set (`false`: it is not).
    // PERF: benches/transform.rs drop_domain_1M_synthetic: the look-ups of names that are
    // not listed (most traffic) touched the 64 MiB table, a cache miss each; the filter
    // (2 MiB for a million names) answers most of them from the caches.
    #[inline]
    fn bloom_may_hold(&self, hash: u64) -> bool {
        let mask = bloom_mask(hash);
        self.bloom
            .get(bloom_word(hash, self.bloom.len()))
            .is_none_or(|w| w & mask == mask)
    }

    /// A slot's key: inline, or in the arena.
    #[inline]
    fn key<'s>(&'s self, slot: &'s Slot) -> &'s [u8] {
        let len = usize::from(slot.len);
        if let Some(inline) = slot.key.get(..len) {
            return inline;
        }
        let start = u32::from_le_bytes([slot.key[0], slot.key[1], slot.key[2], slot.key[3]]);
        let start = start as usize;
        self.arena.get(start..start + len).unwrap_or(&[])
    }

    /// Whether a name, given as its labels leftmost first (root excluded, as
    /// [`crate::dns::Name::labels`] yields them), is in the set: itself or, for
    /// [`Match::Subdomains`], one of its parent domains. The root name never matches.
    ///
    /// One walk keeps the last labels (only suffixes with as many labels as some listed
    /// name are looked up); their hashes are then folded from the right (case-folded, 8
    /// bytes at a time), checked in the top-level-label and Bloom filters, and only those
    /// that pass are looked up in the table. The key bytes are compared only when a slot's
    /// tag agrees. Allocates nothing, whatever the name's length.
    #[inline]
    pub fn matches<'n, I>(&self, labels: I) -> bool
    where
        I: Iterator<Item = &'n [u8]> + Clone,
    {
        if self.len == 0 {
            return false;
        }
        // The last labels in a ring (only they can form a listed suffix), so a deep name
        // (ip6.arpa, 34 labels) under a list of short names takes this path too, and no
        // name needs a heap copy of its labels.
        let mut ring: [&[u8]; RING] = [&[]; RING];
        let mut n = 0;
        for label in labels.clone() {
            if let Some(slot) = ring.get_mut(n % RING) {
                *slot = label;
            }
            n += 1;
        }
        let (first, last) = match self.mode {
            Match::Subdomains => (self.min_labels, self.max_labels.min(n)),
            Match::Exact => (n, n),
        };
        if n == 0 || first > last {
            return false;
        }
        if last > RING {
            return self.matches_deep(labels, first, last);
        }
        // The suffix of `s` labels starts at label n - s (leftmost first).
        let at = |s: usize| ring.get((n - s) % RING).copied().unwrap_or(&[]);
        // PERF: benches/transform.rs drop_domain_*_synthetic: a name under a top-level
        // label that no listed name has (most misses) ends here, before the Bloom filter.
        let tld = label_hash(at(1));
        if !self.tld_may_hold(tld) {
            return false;
        }
        // The candidate suffixes' hashes (suffix `first + j` at `cands[j]`), then their
        // Bloom words, then the table for those that pass, shortest first.
        // PERF: benches/transform.rs drop_domain_1M_synthetic: the Bloom words are read in
        // a loop that does not branch on them, so their cache misses overlap instead of
        // following one another.
        let mut cands = [0u64; RING];
        let mut h = fold(0, tld);
        for suffix in 1..=last {
            if suffix > 1 {
                h = fold(h, label_hash(at(suffix)));
            }
            if let Some(c) = suffix.checked_sub(first).and_then(|j| cands.get_mut(j)) {
                *c = finish(h);
            }
        }
        let m = last + 1 - first;
        let mut maybe = 0u32;
        for (j, &c) in cands.iter().take(m).enumerate() {
            maybe |= u32::from(self.bloom_may_hold(c)) << j;
        }
        while maybe != 0 {
            let j = maybe.trailing_zeros() as usize;
            maybe &= maybe - 1;
            let suffix = first + j;
            let hash = cands.get(j).copied().unwrap_or(0);
            if self.probe(
                hash,
                (n - suffix..n).map(|i| ring.get(i % RING).copied().unwrap_or(&[])),
            ) {
                return true;
            }
        }
        false
    }

    /// [`DomainSet::matches`] when a suffix of more than [`RING`] labels is to be looked up
    /// (exact names that deep, or a list of such names): the last 128 labels (a name has at
    /// most 127) in a larger ring, each suffix looked up in turn.
    #[cold]
    fn matches_deep<'n, I>(&self, labels: I, first: usize, last: usize) -> bool
    where
        I: Iterator<Item = &'n [u8]> + Clone,
    {
        const DEEP: usize = 128;
        let mut ring: [&[u8]; DEEP] = [&[]; DEEP];
        let mut n = 0;
        for label in labels {
            if let Some(slot) = ring.get_mut(n % DEEP) {
                *slot = label;
            }
            n += 1;
        }
        let last = last.min(DEEP);
        let label = |i: usize| ring.get(i % DEEP).copied().unwrap_or(&[]);
        let mut h = 0;
        for suffix in 1..=last {
            h = fold(h, label_hash(label(n - suffix)));
            if suffix >= first {
                let hash = finish(h);
                if self.bloom_may_hold(hash) && self.probe(hash, (n - suffix..n).map(label)) {
                    return true;
                }
            }
        }
        false
    }

    /// Whether the slot chain of `hash` holds the key of the name whose labels, leftmost
    /// first, `labels` yields.
    #[inline]
    fn probe<'n>(&self, hash: u64, labels: impl Iterator<Item = &'n [u8]> + Clone) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        let tag = tag_of(hash);
        loop {
            let Some(slot) = self.slots.get(i) else {
                return false;
            };
            if slot.tag == 0 {
                return false;
            }
            if slot.tag == tag && key_equals(self.key(slot), labels.clone()) {
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// [`DomainSet::matches`] on a name in presentation form (tests, tools).
    pub fn matches_text(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return false;
        }
        self.matches(name.split('.').map(str::as_bytes))
    }
}

/// The table hash of a stored key (labels from the right, length-prefixed, lowercased): the
/// hash [`DomainSet::insert`] computed for it.
fn key_hash(key: &[u8]) -> u64 {
    let mut h = 0;
    let mut at = 0;
    while let Some(&len) = key.get(at) {
        let label = key.get(at + 1..at + 1 + usize::from(len)).unwrap_or(&[]);
        h = fold(h, label_hash(label));
        at += 1 + usize::from(len);
    }
    finish(h)
}

/// Whether a stored key (labels from the right, length-prefixed, lowercased) spells the
/// name whose labels, leftmost first, `labels` yields (compared case-insensitively).
fn key_equals<'n>(key: &[u8], labels: impl Iterator<Item = &'n [u8]>) -> bool {
    let mut end = key.len();
    for label in labels {
        // the key's last label is the query suffix's first: walk the key from its end
        let Some(start) = end.checked_sub(label.len()) else {
            return false;
        };
        let (Some(stored), Some(&len)) = (
            key.get(start..end),
            start.checked_sub(1).and_then(|p| key.get(p)),
        ) else {
            return false;
        };
        if usize::from(len) != label.len() || !label_equals(stored, label) {
            return false;
        }
        end = start - 1;
    }
    end == 0
}

/// Whether a stored label (lowercased) and a query label of the same length are equal,
/// ASCII case aside: 8 bytes at a time, the tail as [`tail_word`] reads it (which reads every
/// byte, so equal words mean equal bytes).
// PERF: benches/transform.rs drop_domain_*_synthetic: byte by byte, comparing the
// 22-byte key of a listed name cost a branch per byte.
#[inline]
fn label_equals(stored: &[u8], label: &[u8]) -> bool {
    let word = |c: &[u8]| c.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w));
    let mut a = stored.chunks_exact(8);
    let mut b = label.chunks_exact(8);
    let mut same = true;
    for (x, y) in (&mut a).zip(&mut b) {
        same &= word(x) == lower8(word(y));
    }
    let (x, y) = (a.remainder(), b.remainder());
    same && (x.is_empty() || tail_word(x) == lower8(tail_word(y)))
}

/// Writes `label` lowercased into `dst` (same length) and returns it.
#[inline]
fn lowercase_into<'d>(label: &[u8], dst: &'d mut [u8]) -> &'d [u8] {
    for (d, s) in dst.iter_mut().zip(label) {
        *d = s.to_ascii_lowercase();
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::{DomainSet, Match};

    #[test]
    fn a_set_grown_past_its_first_size_still_finds_every_name() {
        // The table and its Bloom filter are rebuilt as the set grows.
        let mut set = DomainSet::parse(Match::Subdomains, "").unwrap();
        for i in 0..5000 {
            set.insert(&format!("n{i}.grown.example")).unwrap();
        }
        assert_eq!(set.len(), 5000);
        for i in 0..5000 {
            assert!(set.matches_text(&format!("www.N{i}.grown.example")), "{i}");
            assert!(!set.matches_text(&format!("n{i}x.grown.example")), "{i}");
        }
        assert!(!set.matches_text("grown.example"));
    }

    #[test]
    fn long_keys_live_in_the_arena_and_survive_growth() {
        // keys past the slot's inline bytes, mixed with short ones, through several grows
        let mut set = DomainSet::parse(Match::Exact, "").unwrap();
        let long = |i: usize| format!("a-rather-long-label-{i}.another-long-label.example");
        for i in 0..3000 {
            set.insert(&long(i)).unwrap();
            set.insert(&format!("s{i}.example")).unwrap();
        }
        assert_eq!(set.len(), 6000);
        assert!(set.arena.len() > 3000 * super::INLINE);
        for i in 0..3000 {
            assert!(set.matches_text(&long(i).to_uppercase()), "{i}");
            assert!(set.matches_text(&format!("S{i}.example")), "{i}");
            assert!(!set.matches_text(&format!("x.{}", long(i))), "{i}");
            assert!(!set.matches_text(&format!("{}x", long(i))), "{i}");
        }
    }

    #[test]
    fn a_hash_hit_with_other_bytes_is_no_match() {
        // a query whose hash equals a listed key's (a collision, forced here by probing
        // with the listed key's hash) is compared byte by byte and refused
        for name in [
            "short.example",
            "a-label-long-enough-to-leave-the-slot.example",
        ] {
            let set = DomainSet::parse(Match::Exact, name).unwrap();
            let listed: Vec<&[u8]> = name.split('.').map(str::as_bytes).collect();
            let slot = set.slots.iter().find(|s| s.tag != 0).copied().unwrap();
            let hash = super::key_hash(set.key(&slot));
            assert!(set.probe(hash, listed.iter().copied()), "{name}");
            for other in [
                "shorT.exampla",
                "other.example",
                "x.short.example",
                "example",
            ] {
                let labels: Vec<&[u8]> = other.split('.').map(str::as_bytes).collect();
                assert!(!set.probe(hash, labels.iter().copied()), "{name} {other}");
            }
        }
    }

    /// The slow reference: compare the lowercased text of the name and each parent.
    fn reference(list: &[&str], mode: Match, name: &str) -> bool {
        let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        let name = norm(name);
        if name.is_empty() {
            return false;
        }
        let labels: Vec<&str> = name.split('.').collect();
        let candidates: Vec<String> = match mode {
            Match::Exact => vec![name.clone()],
            Match::Subdomains => (0..labels.len()).map(|i| labels[i..].join(".")).collect(),
        };
        list.iter().any(|l| candidates.contains(&norm(l)))
    }

    #[test]
    fn label_boundaries_and_case() {
        let list = ["example.com", "Test.ORG.", "a.b.c.d"];
        let s = DomainSet::parse(Match::Subdomains, &list.join("\n")).unwrap();
        let e = DomainSet::parse(Match::Exact, &list.join("\n")).unwrap();
        for name in [
            "example.com",
            "a.example.com.",
            "A.EXAMPLE.COM",
            "notexample.com",
            "example.com.evil",
            "com",
            "test.org",
            "x.y.test.org",
            "b.c.d",
            "a.b.c.d",
            "z.a.b.c.d",
            "xa.b.c.d",
            ".",
        ] {
            assert_eq!(
                s.matches_text(name),
                reference(&list, Match::Subdomains, name),
                "{name}"
            );
            assert_eq!(
                e.matches_text(name),
                reference(&list, Match::Exact, name),
                "{name}"
            );
        }
        assert!(s.matches_text("a.example.com"));
        assert!(!s.matches_text("notexample.com"));
        assert!(!e.matches_text("a.example.com"));
    }

    #[test]
    fn word_compare_agrees_with_eq_ignore_ascii_case() {
        let words = [
            "a",
            "A",
            "b",
            "ab",
            "aB",
            "ac",
            "abc",
            "aBc",
            "abd",
            "abcd",
            "abce",
            "abcde",
            "abcdE",
            "abcdf",
            "example",
            "EXAMPLE",
            "examplf",
            "n1234567",
            "N1234567",
            "n1234568",
            "a-rather-long-label",
            "A-RATHER-LONG-LABEL",
            "a-rather-long-labem",
            "\u{e9}t\u{e9}",
            "\u{c9}t\u{c9}",
            "[@`{",
            "{`@[",
        ];
        for stored in words {
            let lower = stored.to_ascii_lowercase();
            for query in words.iter().filter(|q| q.len() == stored.len()) {
                assert_eq!(
                    super::label_equals(lower.as_bytes(), query.as_bytes()),
                    lower.eq_ignore_ascii_case(query),
                    "{stored} {query}"
                );
            }
        }
    }

    #[test]
    fn swar_lowercase_agrees_with_std_on_every_byte() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut w = [b'q'; 8];
                w[pos] = b;
                let mut want = w;
                want.make_ascii_lowercase();
                assert_eq!(
                    super::lower8(u64::from_le_bytes(w)).to_le_bytes(),
                    want,
                    "{b:#x}@{pos}"
                );
            }
        }
    }

    #[test]
    fn long_names_take_the_slow_path_with_the_same_answer() {
        let deep: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        let name = deep.join(".");
        let parent = deep[20..].join(".");
        let s = DomainSet::parse(Match::Subdomains, &format!("{parent}\nother.test")).unwrap();
        assert!(s.matches_text(&name));
        assert!(!s.matches_text(&format!("{}.x", deep[..30].join("."))));
        let e = DomainSet::parse(Match::Exact, &name).unwrap();
        assert!(e.matches_text(&name.to_uppercase()));
        assert!(!e.matches_text(&parent));
    }

    #[test]
    fn deep_names_under_short_listed_names_wrap_the_label_ring() {
        // 34 labels, as an ip6.arpa name has, and past the 127 a real name can have
        let list = "ip6.arpa\nl3.l2.l1.test";
        let s = DomainSet::parse(Match::Subdomains, list).unwrap();
        for depth in [15, 16, 17, 34, 200] {
            let nibbles: Vec<String> = (0..depth).map(|i| format!("{:x}", i % 16)).collect();
            let name = format!("{}.IP6.arpa", nibbles.join("."));
            assert!(s.matches_text(&name), "{depth}");
            assert!(!s.matches_text(&format!("{name}.x")), "{depth}");
            assert!(s.matches_text(&format!("{}.l3.l2.l1.test", nibbles.join("."))));
            assert!(!s.matches_text(&format!("{}.l2.l1.test", nibbles.join("."))));
        }
    }

    #[test]
    fn comments_blank_lines_and_duplicates() {
        let s = DomainSet::parse(
            Match::Subdomains,
            "# blocked\n\nexample.com  # trailing\nEXAMPLE.com.\n  spaced.test  \n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.matches_text("www.spaced.test"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (text, line, why) in [
            ("ok.test\na..b\n", 2, "empty label"),
            ("a b\n", 1, "spaces"),
            (".\n", 1, "root"),
            (&format!("{}.test", "x".repeat(64)), 1, "63"),
            (&vec!["abcdefgh"; 40].join("."), 1, "255"),
        ] {
            let e = DomainSet::parse(Match::Exact, text).unwrap_err();
            assert_eq!(e.line, line, "{text}");
            assert!(e.reason.contains(why) || e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn agrees_with_the_reference_on_a_generated_list() {
        // a deterministic pseudo-random list of names over a small alphabet, so that
        // suffix collisions and near misses are common
        let mut x: u64 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut gen = |n: usize, min_labels: u64| -> Vec<String> {
            (0..n)
                .map(|_| {
                    let labels = min_labels + next() % 3;
                    (0..labels)
                        .map(|_| {
                            let len = 1 + next() % 2;
                            (0..len)
                                .map(|_| (b'a' + (next() % 3) as u8) as char)
                                .collect::<String>()
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect()
        };
        let list = gen(300, 2);
        // random names, the listed names themselves, one label below them, and near misses
        // (a listed name with its first label grown by a letter)
        let mut queries = gen(4000, 1);
        for l in &list {
            queries.push(l.to_ascii_uppercase());
            queries.push(format!("x.{l}"));
            queries.push(format!("b{l}"));
        }
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        for mode in [Match::Subdomains, Match::Exact] {
            let set = DomainSet::parse(mode, &list.join("\n")).unwrap();
            let mut hits = 0;
            for q in &queries {
                let want = reference(&refs, mode, q);
                assert_eq!(set.matches_text(q), want, "{mode:?} {q}");
                hits += usize::from(want);
            }
            // the generated data must exercise both answers
            assert!(
                hits > 200 && hits < queries.len() - 200,
                "{mode:?}: {hits} hits"
            );
        }
    }
}
