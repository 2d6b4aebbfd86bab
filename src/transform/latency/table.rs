//! The pending-query table: a ring of fixed-size entries in arrival order, an
//! open-addressing index over it, and (for `unanswered-queries`) a byte ring holding each
//! pending query's record. Everything is allocated once, at its bound; nothing is
//! allocated per query.
//!
//! ```text
//!  index (linear probing, 2^k cells of 8 bytes, at most half full)
//!   cell = hash bits (32) | ring position + 1 (32); 0 = empty
//!        │
//!        ▼
//!  ring (max-pending entries of 40 bytes, oldest at `head`)
//!   | key (16) | query time ns (8) | deadline ns (8) | arena end (4) | stored length (2) | class (2) |
//!        │ (stored length > 0)
//!        ▼
//!  arena (byte ring; a query's record ends at `arena end`, modulo 2^32)
//! ```
//!
//! Every query has the same timeout, so arrival order is expiry order: the ring is the
//! timing wheel (its head is always the next entry to expire, found in O(1)). A matched
//! query is removed from the index at once and its ring entry marked dead; the ring slot
//! and its arena bytes are reused when the head passes it. So a query waits for its
//! response until `queries-timeout` passes or `max-pending` later queries have arrived,
//! whichever comes first; in the second case it is evicted (counted).
//!
//! Deletion from the index shifts the following cells back (no tombstones), so probes stay
//! as short as the load allows.
#![forbid(unsafe_code)]

use super::key::Key;

/// One pending query (or a dead slot: `key == [0, 0]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    /// The query's `query_time` in ns since the epoch; `u64::MAX` when it had none.
    pub query_ns: u64,
    /// When it times out, in ns of the table's clock.
    pub deadline: u64,
    /// Where its stored record ends in the arena (a position modulo 2^32).
    arena_end: u32,
    /// Length of its stored record; 0 when none is stored.
    pub stored: u16,
    /// The caller's tag (the latency step's sender class).
    pub class: u16,
}

impl Entry {
    pub fn is_alive(&self) -> bool {
        self.key != [0, 0]
    }
}

const EMPTY: u64 = 0;

/// A byte ring; positions count bytes ever reserved, modulo 2^32 (the capacity is below
/// 2^31, so differences of positions are exact).
#[derive(Debug)]
struct Arena {
    bytes: Box<[u8]>,
    /// Oldest byte still in use, and the next byte to write (positions).
    read: u32,
    write: u32,
}

impl Arena {
    fn cap(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// Where `n` bytes would go (position of their start) if reserved now, and whether
    /// they fit beside what is in use. A record never wraps: it skips to the start.
    fn place(&self, n: u32) -> (u32, bool) {
        let cap = self.cap();
        let at = self.write % cap;
        let start = if at + n > cap {
            self.write.wrapping_add(cap - at)
        } else {
            self.write
        };
        let used_after = start.wrapping_add(n).wrapping_sub(self.read);
        (start, used_after <= cap)
    }
}

/// What [`Table::insert`] pushed out to make room: alive entries only.
pub type Pushed<'a> = &'a mut dyn FnMut(Entry);

#[derive(Debug)]
pub struct Table {
    /// The ring; grows (within its reserved capacity) until it is full once.
    ring: Vec<Entry>,
    cap: usize,
    head: usize,
    len: usize,
    /// Entries alive (in the index).
    live: usize,
    index: Box<[u64]>,
    mask: usize,
    arena: Option<Arena>,
}

impl Table {
    /// A table for `max_pending` queries (`>= 1`); with `arena_bytes > 0` it also keeps
    /// each query's record (up to that many bytes in all, below 2^31).
    pub fn new(max_pending: usize, arena_bytes: usize) -> Table {
        let cap = max_pending.max(1);
        let cells = (cap * 2).next_power_of_two();
        let arena = (arena_bytes > 0).then(|| Arena {
            // Zeroed memory from the allocator: pages are touched only when used.
            bytes: vec![0u8; arena_bytes.min((1 << 31) - 1)].into_boxed_slice(),
            read: 0,
            write: 0,
        });
        Table {
            ring: Vec::with_capacity(cap),
            cap,
            head: 0,
            len: 0,
            live: 0,
            index: vec![EMPTY; cells].into_boxed_slice(),
            mask: cells - 1,
            arena,
        }
    }

    /// Bytes the table may hold at most (ring, index and arena, as reserved).
    pub fn bound_bytes(&self) -> usize {
        self.cap * std::mem::size_of::<Entry>()
            + self.index.len() * 8
            + self.arena.as_ref().map_or(0, |a| a.bytes.len())
    }

    /// Queries waiting for their response.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn stores_records(&self) -> bool {
        self.arena.is_some()
    }

    #[inline]
    fn home(&self, key: &Key) -> usize {
        key[0] as u32 as usize & self.mask
    }

    #[inline]
    fn cell(key: &Key, pos: usize) -> u64 {
        (key[0] << 32) | (pos as u64 + 1)
    }

    /// The index cell and ring position of the alive entry with `key` whose deadline is
    /// after `now`.
    #[inline]
    fn find(&self, key: &Key, now: u64) -> Option<(usize, usize)> {
        let tag = key[0] << 32;
        let mut i = self.home(key);
        loop {
            let c = *self.index.get(i)?;
            if c == EMPTY {
                return None;
            }
            if c & 0xffff_ffff_0000_0000 == tag {
                let pos = (c as u32 as usize).wrapping_sub(1);
                if let Some(e) = self.ring.get(pos) {
                    if e.key == *key && e.deadline > now {
                        return Some((i, pos));
                    }
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes the alive entry with `key` (not yet expired at `now`) and returns it.
    #[inline]
    pub fn take(&mut self, key: &Key, now: u64) -> Option<Entry> {
        let (cell, pos) = self.find(key, now)?;
        self.unindex(cell);
        let e = self.ring.get_mut(pos)?;
        let out = *e;
        e.key = [0, 0];
        self.live -= 1;
        Some(out)
    }

    /// Empties index cell `hole`, shifting back the cells of its probe run that may move.
    fn unindex(&mut self, mut hole: usize) {
        let mask = self.mask;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let c = self.index[j];
            if c == EMPTY {
                break;
            }
            let home = (c >> 32) as usize & mask;
            // `c` may fill the hole when its home is not inside (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.index[hole] = c;
                hole = j;
            }
        }
        self.index[hole] = EMPTY;
    }

    /// The index cell of the entry at ring position `pos` (alive, so indexed).
    fn cell_of(&self, pos: usize) -> Option<usize> {
        let e = self.ring.get(pos)?;
        let want = Table::cell(&e.key, pos);
        let mut i = self.home(&e.key);
        for _ in 0..self.index.len() {
            match self.index[i] {
                EMPTY => return None,
                c if c == want => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// Drops the oldest entry (alive or dead); returns it when it was alive, with its stored
    /// record (if any) still readable through [`Table::stored`] until the next insert.
    pub fn pop_oldest(&mut self) -> Option<Entry> {
        if self.len == 0 {
            return None;
        }
        let pos = self.head;
        self.head = (self.head + 1) % self.cap;
        self.len -= 1;
        let e = *self.ring.get(pos)?;
        if let Some(a) = &mut self.arena {
            // Every entry records where the arena stood after it (with or without bytes).
            a.read = e.arena_end;
        }
        if !e.is_alive() {
            return None;
        }
        if let Some(c) = self.cell_of(pos) {
            self.unindex(c);
        }
        self.live -= 1;
        if let Some(x) = self.ring.get_mut(pos) {
            x.key = [0, 0];
        }
        Some(e)
    }

    /// The oldest entry's deadline, when it is alive (dead ones are skipped by the caller
    /// with [`Table::pop_oldest`]); `None` when empty.
    pub fn oldest(&self) -> Option<&Entry> {
        (self.len > 0).then(|| self.ring.get(self.head)).flatten()
    }

    /// The stored record of an entry just returned by [`Table::pop_oldest`] or
    /// [`Table::take`] (valid until the next insert).
    pub fn stored(&self, e: &Entry) -> Option<&[u8]> {
        let a = self.arena.as_ref()?;
        if e.stored == 0 {
            return None;
        }
        let end = (e.arena_end.wrapping_sub(1) % a.cap()) as usize + 1;
        a.bytes.get(end - e.stored as usize..end)
    }

    /// Adds a pending query: `key` must not be alive (the caller takes it first). Makes
    /// room by dropping the oldest entries; each alive one is handed to `pushed` (evicted).
    /// `record` is kept when the table stores records and it fits in a quarter of the
    /// arena and in 64 KiB (else the entry stores none).
    pub fn insert(
        &mut self,
        key: Key,
        class: u16,
        query_ns: u64,
        deadline: u64,
        record: &[u8],
        pushed: Pushed<'_>,
    ) {
        if self.len == self.cap {
            if let Some(e) = self.pop_oldest() {
                pushed(e);
            }
        }
        let mut entry = Entry {
            key,
            query_ns,
            deadline,
            arena_end: 0,
            stored: 0,
            class,
        };
        let storable = self.arena.as_ref().is_some_and(|a| {
            !record.is_empty()
                && record.len() <= usize::from(u16::MAX)
                && record.len() as u32 <= a.cap() / 4
        });
        if storable {
            let n = record.len() as u32;
            loop {
                let fits = self.arena.as_ref().is_some_and(|a| a.place(n).1);
                if fits || self.len == 0 {
                    break;
                }
                if let Some(e) = self.pop_oldest() {
                    pushed(e);
                }
            }
            if let Some(a) = &mut self.arena {
                let (start, _) = a.place(n);
                let at = (start % a.cap()) as usize;
                if let Some(dst) = a.bytes.get_mut(at..at + n as usize) {
                    dst.copy_from_slice(record);
                }
                a.write = start.wrapping_add(n);
                entry.arena_end = a.write;
                entry.stored = n as u16;
            }
        } else if let Some(a) = &self.arena {
            // No bytes, but the arena's read position still moves past this entry.
            entry.arena_end = a.write;
        }
        let pos = (self.head + self.len) % self.cap;
        if pos == self.ring.len() {
            self.ring.push(entry);
        } else if let Some(slot) = self.ring.get_mut(pos) {
            *slot = entry;
        }
        self.len += 1;
        self.live += 1;
        let mut i = self.home(&key);
        while self.index[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.index[i] = Table::cell(&key, pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u64) -> Key {
        // Keys whose index homes collide a lot (low bits shared), to exercise the shifts.
        [(i % 7) | (i << 40), i | 1]
    }

    #[test]
    fn take_finds_what_insert_put_until_the_deadline() {
        let mut t = Table::new(100, 0);
        let mut pushed = Vec::new();
        for i in 1..=50 {
            t.insert(k(i), 0, i, 1000 + i, &[], &mut |e| pushed.push(e));
        }
        assert!(pushed.is_empty());
        assert_eq!(t.live(), 50);
        // Remove every third, then every key must still be found or not as expected.
        for i in (1..=50).step_by(3) {
            assert_eq!(t.take(&k(i), 0).map(|e| e.query_ns), Some(i));
        }
        for i in 1..=50 {
            let found = t.take(&k(i), 0).is_some();
            assert_eq!(found, (i - 1) % 3 != 0, "{i}");
        }
        assert_eq!(t.live(), 0);
        assert_eq!(t.take(&k(1), 0), None);
        // Past its deadline an entry is not found (it waits for the drain).
        t.insert(k(60), 0, 1, 500, &[], &mut |_| {});
        assert_eq!(t.take(&k(60), 500), None);
        assert_eq!(t.oldest().map(|e| e.deadline), Some(1001));
    }

    #[test]
    fn a_full_ring_pushes_out_the_oldest_alive_one() {
        let mut t = Table::new(4, 0);
        let mut pushed = Vec::new();
        for i in 1..=4 {
            t.insert(k(i), 0, i, 100, &[], &mut |e| pushed.push(e.query_ns));
        }
        t.take(&k(1), 0).unwrap();
        // The oldest slot is dead: reused silently.
        t.insert(k(5), 0, 5, 100, &[], &mut |e| pushed.push(e.query_ns));
        assert!(pushed.is_empty());
        t.insert(k(6), 0, 6, 100, &[], &mut |e| pushed.push(e.query_ns));
        assert_eq!(pushed, vec![2]);
        assert_eq!(t.live(), 4);
        for i in 3..=6 {
            assert!(t.take(&k(i), 0).is_some(), "{i}");
        }
    }

    #[test]
    fn the_arena_keeps_records_in_order_and_evicts_for_room() {
        let mut t = Table::new(1000, 64);
        let mut pushed = Vec::new();
        for i in 1..=6u8 {
            let rec = vec![i; 10];
            t.insert(k(u64::from(i)), 0, 0, 100, &rec, &mut |e| {
                pushed.push(e.key)
            });
        }
        // 6 × 10 bytes fit in 64; the 7th does not fit before the end, starts over at 0,
        // and needs the first record's bytes.
        assert!(pushed.is_empty());
        t.insert(k(7), 0, 0, 100, &[7; 10], &mut |e| pushed.push(e.key));
        assert_eq!(pushed, vec![k(1)]);
        // Too large (over a quarter of the arena): kept without a record.
        t.insert(k(8), 0, 0, 100, &[8; 17], &mut |e| pushed.push(e.key));
        assert_eq!(pushed.len(), 1);
        let mut seen = Vec::new();
        while t.oldest().is_some() {
            if let Some(e) = t.pop_oldest() {
                seen.push(t.stored(&e).map(|s| s.to_vec()));
            }
        }
        assert_eq!(seen.len(), 7);
        for (i, s) in seen.iter().take(6).enumerate() {
            assert_eq!(s.as_deref(), Some(&[i as u8 + 2; 10][..]));
        }
        assert_eq!(seen[6], None);
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn random_operations_agree_with_a_map() {
        use std::collections::HashMap;
        let mut t = Table::new(64, 0);
        let mut m: HashMap<Key, u64> = HashMap::new();
        let mut order: std::collections::VecDeque<Key> = Default::default();
        let mut x = 0x1234_5678_9abc_def1u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = k(x % 200);
            if x % 3 == 0 {
                let got = t.take(&key, 0).map(|e| e.query_ns);
                assert_eq!(got, m.remove(&key), "step {step}");
            } else if !m.contains_key(&key) {
                let mut pushed = Vec::new();
                t.insert(key, 0, step, u64::MAX, &[], &mut |e| pushed.push(e.key));
                // The model: a ring of 64 slots in arrival order, dead ones included.
                order.push_back(key);
                let old = if order.len() > 64 {
                    order.pop_front()
                } else {
                    None
                };
                for p in &pushed {
                    assert_eq!(Some(*p), old, "step {step}");
                    assert!(m.remove(p).is_some(), "step {step}");
                }
                m.insert(key, step);
            }
            assert_eq!(t.live(), m.len(), "step {step}");
        }
    }
}
