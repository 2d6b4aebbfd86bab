//! The bounded chunk buffer between an output's producer (the writer thread, formatting
//! records into chunks) and its consumer (the output's own sender thread: a TCP connection,
//! a broker client). Owns the overflow policy and the counting of what it drops; knows
//! nothing of formats or sockets, so every network output can use it.
//!
//! ```text
//!  writer thread                     ChunkBuffer                      sender thread
//!  Output::record → chunk ─ push ─►  [memory FIFO ≤ max_bytes]  ─ pop ─►  write / send
//!                               full? policy:                       ◄─ requeue_front (broken
//!                                 block        wait for room             connection: resend)
//!                                 drop-newest  drop this chunk       ─► delivered / dropped
//!                                 drop-oldest  drop the oldest       ─► recycle (the Vec)
//!                                 spill        append to SpillQueue (disk)
//! ```
//!
//! A [`Chunk`] is whole records (a chunk boundary is a record boundary) plus their count, so
//! every drop is counted in records. Order is kept across memory and disk: once anything is
//! on disk, new chunks go to disk too until the consumer has read the disk queue empty, so
//! memory always holds the oldest chunks and the disk the newest.
//!
//! Accounting in [`OutputStats`] (the producer counts `records` itself): `buffered` is the
//! records in memory here or held by the consumer (popped, not yet delivered); `spilled` the
//! records on disk; `dropped` every record a policy or a give-up threw away. The consumer
//! reports the fate of each popped chunk with [`ChunkBuffer::delivered`],
//! [`ChunkBuffer::requeue_front`] or, at the very end, [`ChunkBuffer::finish_consumer`].
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sink::spill::{Recovered, SpillQueue, SpillSpec};
use crate::stats::OutputStats;

/// What happens when the memory buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// The producer waits: the writer thread stalls, the pipeline queue fills, the readers
    /// stop reading and the DNS servers see TCP back-pressure. Nothing is lost.
    Block,
    /// The chunk being pushed (the newest records) is dropped and counted.
    DropNewest,
    /// The oldest queued chunks are dropped and counted to make room. Chunks queued again
    /// for a resend are kept (they may have reached the peer already, so they are neither
    /// lost nor droppable); when only those are left, the new chunk is dropped.
    DropOldest,
    /// Full memory goes to a bounded on-disk queue, replayed in order.
    Spill,
}

impl OverflowPolicy {
    pub fn name(self) -> &'static str {
        match self {
            OverflowPolicy::Block => "block",
            OverflowPolicy::DropNewest => "drop-newest",
            OverflowPolicy::DropOldest => "drop-oldest",
            OverflowPolicy::Spill => "spill",
        }
    }
}

/// A buffer's configuration, validated by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferSpec {
    /// Most bytes of memory (the chunks' allocations) queued in memory (one chunk more when
    /// the queue is empty, so a chunk larger than the bound still moves).
    pub max_bytes: usize,
    pub policy: OverflowPolicy,
    /// Required with [`OverflowPolicy::Spill`], ignored otherwise.
    pub spill: Option<SpillSpec>,
}

/// Whole records, formatted, and how many. `resend` is set when the chunk comes back through
/// [`ChunkBuffer::requeue_front`] (it may have reached the peer already).
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub records: u32,
    pub resend: bool,
}

/// What [`ChunkBuffer::pop`] found.
#[derive(Debug)]
pub enum Popped {
    Chunk(Chunk),
    /// Nothing arrived within the wait.
    Empty,
    /// The producer closed the buffer and everything has been popped.
    Finished,
}

/// Free `Vec`s kept for reuse, so steady state allocates no chunk buffers.
const FREE_KEEP: usize = 4;

#[derive(Debug)]
struct State {
    queue: VecDeque<Chunk>,
    /// Memory held by `queue`: `sum(queue[].data.capacity())` (capacity, not length, so that
    /// many small chunks in large allocations cannot pass the bound).
    bytes: usize,
    spill: Option<SpillQueue>,
    /// The producer will push no more.
    closed: bool,
    /// After this, a blocked push gives up (drops and counts) instead of waiting on.
    give_up_at: Option<Instant>,
    free: Vec<Vec<u8>>,
    /// A spill error was already logged (log once, count always).
    spill_error_logged: bool,
}

/// The buffer; share it as `Arc<ChunkBuffer>` between one producer and one consumer.
#[derive(Debug)]
pub struct ChunkBuffer {
    name: String,
    max_bytes: usize,
    policy: OverflowPolicy,
    state: Mutex<State>,
    /// Signalled when a chunk is queued or the buffer closes (the consumer waits).
    ready: Condvar,
    /// Signalled when room appears or a give-up deadline is set (blocked producers wait).
    room: Condvar,
    stats: Arc<OutputStats>,
}

impl ChunkBuffer {
    /// A buffer for the output called `name` (for log lines). With the spill policy the spill
    /// directory is opened and whatever a previous run left there is queued first; its records
    /// are added to `stats.records` and `stats.spilled`.
    pub fn new(
        name: &str,
        spec: &BufferSpec,
        stats: Arc<OutputStats>,
    ) -> io::Result<(ChunkBuffer, Option<Recovered>)> {
        let (spill, recovered) = match (spec.policy, &spec.spill) {
            (OverflowPolicy::Spill, Some(s)) => {
                let (q, rec) = SpillQueue::open(s)?;
                stats.records.fetch_add(rec.records, Ordering::Relaxed);
                stats.spilled.fetch_add(rec.records, Ordering::Relaxed);
                (Some(q), Some(rec))
            }
            (OverflowPolicy::Spill, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the spill policy needs a spill directory",
                ))
            }
            _ => (None, None),
        };
        Ok((
            ChunkBuffer {
                name: name.to_string(),
                max_bytes: spec.max_bytes.max(1),
                policy: spec.policy,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    bytes: 0,
                    spill,
                    closed: false,
                    give_up_at: None,
                    free: Vec::new(),
                    spill_error_logged: false,
                }),
                ready: Condvar::new(),
                room: Condvar::new(),
                stats,
            },
            recovered,
        ))
    }

    pub fn policy(&self) -> OverflowPolicy {
        self.policy
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn stats(&self) -> &Arc<OutputStats> {
        &self.stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated in a way that
        // matters more than stopping would: keep going with the data as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty `Vec` for the producer's next chunk (recycled when possible).
    pub fn take_vec(&self, capacity: usize) -> Vec<u8> {
        let v = self.lock().free.pop();
        v.unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Gives a chunk's `Vec` back for reuse.
    pub fn recycle(&self, mut data: Vec<u8>) {
        data.clear();
        let mut st = self.lock();
        if st.free.len() < FREE_KEEP {
            st.free.push(data);
        }
    }

    /// Producer: queues a chunk, applying the overflow policy when memory is full. Blocks
    /// only under [`OverflowPolicy::Block`], and then only until room appears or the
    /// give-up deadline set by [`ChunkBuffer::give_up_at`] passes.
    pub fn push(&self, chunk: Chunk) {
        if chunk.records == 0 && chunk.data.is_empty() {
            return self.recycle(chunk.data);
        }
        let n = chunk.records as u64;
        let mut st = self.lock();
        // Order: while anything is on disk, newer chunks go behind it.
        if st.spill.as_ref().is_some_and(|s| !s.is_empty()) {
            return self.spill_locked(st, chunk);
        }
        loop {
            let fits = st.bytes == 0 || st.bytes + chunk.data.capacity() <= self.max_bytes;
            if fits {
                st.bytes += chunk.data.capacity();
                st.queue.push_back(chunk);
                add(&self.stats.buffered, n);
                drop(st);
                self.ready.notify_one();
                return;
            }
            match self.policy {
                OverflowPolicy::Block => {
                    if st.give_up_at.is_some_and(|t| Instant::now() >= t) {
                        drop(st);
                        return self.drop_chunk(chunk);
                    }
                    let wait = match st.give_up_at {
                        Some(t) => t.saturating_duration_since(Instant::now()),
                        None => Duration::from_millis(500),
                    };
                    st = self
                        .room
                        .wait_timeout(st, wait.max(Duration::from_millis(1)))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                OverflowPolicy::DropNewest => {
                    drop(st);
                    return self.drop_chunk(chunk);
                }
                OverflowPolicy::DropOldest => {
                    // Chunks coming back for a resend may already be at the collector:
                    // dropping them would count as lost records that arrived. Drop the
                    // oldest never-written chunk instead; if there is none, the new one.
                    let Some(at) = st.queue.iter().position(|c| !c.resend) else {
                        drop(st);
                        return self.drop_chunk(chunk);
                    };
                    if let Some(old) = st.queue.remove(at) {
                        st.bytes -= old.data.capacity();
                        self.count_dropped(old.records as u64);
                        sub(&self.stats.buffered, old.records as u64);
                        if st.free.len() < FREE_KEEP {
                            let mut v = old.data;
                            v.clear();
                            st.free.push(v);
                        }
                    }
                }
                OverflowPolicy::Spill => return self.spill_locked(st, chunk),
            }
        }
    }

    fn spill_locked(&self, mut st: MutexGuard<'_, State>, chunk: Chunk) {
        let n = chunk.records as u64;
        let Some(spill) = st.spill.as_mut() else {
            drop(st);
            return self.drop_chunk(chunk);
        };
        match spill.push(&chunk.data, chunk.records) {
            Ok(p) => {
                sub(&self.stats.spilled, p.dropped_older);
                self.count_dropped(p.dropped_older);
                if p.stored {
                    add(&self.stats.spilled, n);
                } else {
                    self.count_dropped(n);
                }
            }
            Err(e) => {
                if !st.spill_error_logged {
                    st.spill_error_logged = true;
                    crate::log_error!("output {}: spill write failed: {e}", self.name);
                }
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                self.count_dropped(n);
            }
        }
        if st.free.len() < FREE_KEEP {
            let mut v = chunk.data;
            v.clear();
            st.free.push(v);
        }
        drop(st);
        self.ready.notify_one();
    }

    fn drop_chunk(&self, chunk: Chunk) {
        self.count_dropped(chunk.records as u64);
        self.recycle(chunk.data);
    }

    fn count_dropped(&self, n: u64) {
        add(&self.stats.dropped, n);
    }

    /// Producer: no more pushes. The consumer's [`ChunkBuffer::pop`] returns
    /// [`Popped::Finished`] once everything is out.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Shutdown: from `deadline` on, a blocked push drops its chunk (counted) instead of
    /// waiting; consumers read it with [`ChunkBuffer::deadline`] to stop retrying. The
    /// earliest deadline set wins.
    pub fn give_up_at(&self, deadline: Instant) {
        let mut st = self.lock();
        st.give_up_at = Some(st.give_up_at.map_or(deadline, |t| t.min(deadline)));
        drop(st);
        self.room.notify_all();
        self.ready.notify_all();
    }

    /// True once the producer called [`ChunkBuffer::close`].
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The give-up deadline, once shutdown has set one.
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().give_up_at
    }

    /// Consumer: the oldest chunk (memory first, then disk), waiting up to `wait` for one.
    pub fn pop(&self, wait: Duration) -> Popped {
        let t0 = Instant::now();
        let mut st = self.lock();
        loop {
            if let Some(c) = st.queue.pop_front() {
                st.bytes -= c.data.capacity();
                drop(st);
                self.room.notify_one();
                return Popped::Chunk(c);
            }
            if st.spill.as_ref().is_some_and(|s| !s.is_empty()) {
                let mut data = st.free.pop().unwrap_or_default();
                let r = match st.spill.as_mut() {
                    Some(s) => s.pop(&mut data),
                    None => Ok(None),
                };
                match r {
                    Ok(Some(records)) => {
                        sub(&self.stats.spilled, records as u64);
                        add(&self.stats.buffered, records as u64);
                        return Popped::Chunk(Chunk {
                            data,
                            records,
                            resend: false,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // An unreadable segment: log, count what it still held, go on.
                        crate::log_error!("output {}: spill read failed: {e}", self.name);
                        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                        let lost = match st.spill.as_mut().map(|s| s.drop_front()) {
                            Some(Ok(n)) => n,
                            _ => {
                                // Cannot even delete it: stop using the disk.
                                let n = st.spill.as_ref().map_or(0, |s| s.records());
                                st.spill = None;
                                n
                            }
                        };
                        sub(&self.stats.spilled, lost);
                        self.count_dropped(lost);
                    }
                }
                continue;
            }
            if st.closed {
                return Popped::Finished;
            }
            let left = wait.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return Popped::Empty;
            }
            st = self
                .ready
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Consumer: these chunks (oldest first) were written to a connection that broke before
    /// the peer confirmed them; queue them again ahead of everything, marked `resend`. May
    /// pass `max_bytes` for a while: they were already held by the consumer.
    pub fn requeue_front(&self, chunks: impl DoubleEndedIterator<Item = Chunk>) {
        let mut st = self.lock();
        for mut c in chunks.rev() {
            c.resend = true;
            st.bytes += c.data.capacity();
            st.queue.push_front(c);
        }
        drop(st);
        self.ready.notify_one();
    }

    /// Consumer: the peer has this chunk. Counts it delivered and recycles its `Vec`.
    pub fn delivered(&self, chunk: Chunk) {
        let n = chunk.records as u64;
        add(&self.stats.delivered, n);
        add(&self.stats.bytes, chunk.data.len() as u64);
        sub(&self.stats.buffered, n);
        self.recycle(chunk.data);
    }

    /// Consumer: this popped chunk is lost for good (counted as dropped).
    pub fn dropped(&self, chunk: Chunk) {
        sub(&self.stats.buffered, chunk.records as u64);
        self.drop_chunk(chunk);
    }

    /// Consumer, at the very end (closed and done, or given up): `leftovers` (chunks it still
    /// holds, oldest first) and everything still queued in memory are written to the front
    /// of the spill queue (spill policy) or dropped and counted (other policies); the spill
    /// queue is synced so a restart finds it. Returns (records kept on disk, records dropped).
    pub fn finish_consumer(&self, leftovers: Vec<Chunk>) -> (u64, u64) {
        let mut st = self.lock();
        let mut all: Vec<Chunk> = leftovers;
        all.extend(st.queue.drain(..));
        st.bytes = 0;
        let n: u64 = all.iter().map(|c| c.records as u64).sum();
        let mut kept = 0;
        let mut lost = n;
        if let Some(spill) = st.spill.as_mut() {
            if n > 0 {
                match spill.push_front(all.iter().map(|c| (c.data.as_slice(), c.records))) {
                    Ok(dropped) => {
                        kept = n - dropped.min(n);
                        lost = dropped.min(n);
                    }
                    Err(e) => {
                        crate::log_error!("output {}: spill at shutdown failed: {e}", self.name);
                    }
                }
            }
            if let Err(e) = spill.sync() {
                crate::log_error!("output {}: spill sync failed: {e}", self.name);
            }
        }
        drop(st);
        sub(&self.stats.buffered, n);
        add(&self.stats.spilled, kept);
        self.count_dropped(lost);
        (kept, lost)
    }

    /// Records and bytes (allocated) queued in memory now (not counting the consumer's).
    pub fn queued(&self) -> (u64, usize) {
        let st = self.lock();
        (st.queue.iter().map(|c| c.records as u64).sum(), st.bytes)
    }
}

fn add(a: &AtomicU64, n: u64) {
    if n != 0 {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// Gauges never go below zero, even if a caller miscounts.
fn sub(a: &AtomicU64, n: u64) {
    if n != 0 {
        let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn buf(policy: OverflowPolicy, max: usize, spill: Option<PathBuf>) -> Arc<ChunkBuffer> {
        let spec = BufferSpec {
            max_bytes: max,
            policy,
            spill: spill.map(|dir| SpillSpec {
                dir,
                max_bytes: 1 << 20,
                segment_bytes: 4096,
            }),
        };
        Arc::new(
            ChunkBuffer::new("t", &spec, Arc::new(OutputStats::default()))
                .unwrap()
                .0,
        )
    }

    fn chunk(i: u32) -> Chunk {
        let mut data = Vec::with_capacity(10);
        data.extend_from_slice(format!("{i:09}\n").as_bytes());
        Chunk {
            data,
            records: 1,
            resend: false,
        }
    }

    fn id(c: &Chunk) -> u32 {
        std::str::from_utf8(&c.data)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn pop_all(b: &ChunkBuffer) -> Vec<u32> {
        let mut v = Vec::new();
        while let Popped::Chunk(c) = b.pop(Duration::ZERO) {
            v.push(id(&c));
            b.delivered(c);
        }
        v
    }

    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    #[test]
    fn drop_newest_keeps_the_oldest_and_counts() {
        let b = buf(OverflowPolicy::DropNewest, 30, None); // 3 chunks of 10 bytes
        for i in 0..10 {
            b.push(chunk(i));
        }
        assert_eq!(get(&b.stats().dropped), 7);
        assert_eq!(pop_all(&b), vec![0, 1, 2]);
        assert_eq!(get(&b.stats().delivered), 3);
        assert_eq!(get(&b.stats().buffered), 0);
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let b = buf(OverflowPolicy::DropOldest, 30, None);
        for i in 0..10 {
            b.push(chunk(i));
        }
        assert_eq!(get(&b.stats().dropped), 7);
        assert_eq!(pop_all(&b), vec![7, 8, 9]);
    }

    #[test]
    fn drop_oldest_keeps_chunks_waiting_for_a_resend() {
        let b = buf(OverflowPolicy::DropOldest, 30, None);
        for i in 0..3 {
            b.push(chunk(i));
        }
        let a = match b.pop(Duration::ZERO) {
            Popped::Chunk(c) => c,
            p => panic!("{p:?}"),
        };
        b.requeue_front(std::iter::once(a));
        for i in 3..6 {
            b.push(chunk(i));
        }
        // 0 (resend) stays; 1, 2, 3 made room for 3, 4, 5 in turn.
        assert_eq!(pop_all(&b), vec![0, 4, 5]);
        assert_eq!(get(&b.stats().dropped), 3);
    }

    #[test]
    fn block_waits_for_room_then_gives_up_at_the_deadline() {
        let b = buf(OverflowPolicy::Block, 20, None);
        b.push(chunk(0));
        b.push(chunk(1));
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || {
            b2.push(chunk(2)); // waits for the consumer
            b2.push(chunk(3));
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !t.is_finished(),
            "a full block buffer makes the producer wait"
        );
        let mut got = Vec::new();
        while got.len() < 4 {
            if let Popped::Chunk(c) = b.pop(Duration::from_secs(5)) {
                got.push(id(&c));
                b.delivered(c);
            }
        }
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(get(&b.stats().dropped), 0);

        // Nobody consumes: the deadline ends the wait, and the chunk is counted.
        b.push(chunk(4));
        b.push(chunk(5));
        b.give_up_at(Instant::now() + Duration::from_millis(50));
        let t0 = Instant::now();
        b.push(chunk(6));
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(get(&b.stats().dropped), 1);
    }

    #[test]
    fn requeued_chunks_come_first_marked_resend() {
        let b = buf(OverflowPolicy::Block, 1000, None);
        for i in 0..4 {
            b.push(chunk(i));
        }
        let a = match b.pop(Duration::ZERO) {
            Popped::Chunk(c) => c,
            p => panic!("{p:?}"),
        };
        let c = match b.pop(Duration::ZERO) {
            Popped::Chunk(c) => c,
            p => panic!("{p:?}"),
        };
        b.requeue_front(vec![a, c].into_iter());
        let mut order = Vec::new();
        while let Popped::Chunk(c) = b.pop(Duration::ZERO) {
            order.push((id(&c), c.resend));
            b.delivered(c);
        }
        assert_eq!(order, vec![(0, true), (1, true), (2, false), (3, false)]);
        b.close();
        assert!(matches!(b.pop(Duration::ZERO), Popped::Finished));
    }

    #[test]
    fn spill_keeps_order_across_memory_and_disk() {
        let dir = std::env::temp_dir().join(format!("buf-spill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let b = buf(OverflowPolicy::Spill, 30, Some(dir.clone()));
        for i in 0..10 {
            b.push(chunk(i));
        }
        assert_eq!(get(&b.stats().spilled), 7);
        assert_eq!(get(&b.stats().buffered), 3);
        // Take two from memory, then push more: they must queue behind the disk.
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Popped::Chunk(c) = b.pop(Duration::ZERO) {
                got.push(id(&c));
                b.delivered(c);
            }
        }
        for i in 10..13 {
            b.push(chunk(i));
        }
        got.extend(pop_all(&b));
        assert_eq!(got, (0..13).collect::<Vec<_>>());
        assert_eq!(get(&b.stats().dropped), 0);
        assert_eq!(get(&b.stats().spilled), 0);
        assert_eq!(get(&b.stats().delivered), 13);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn spill_survives_a_restart_including_memory_and_leftovers() {
        let dir = std::env::temp_dir().join(format!("buf-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let b = buf(OverflowPolicy::Spill, 30, Some(dir.clone()));
            for i in 0..8 {
                b.push(chunk(i));
            }
            // The consumer holds chunk 0 (written, unconfirmed) when the run ends.
            let held = match b.pop(Duration::ZERO) {
                Popped::Chunk(c) => c,
                p => panic!("{p:?}"),
            };
            b.close();
            let (kept, lost) = b.finish_consumer(vec![held]);
            assert_eq!((kept, lost), (3, 0));
            assert_eq!(get(&b.stats().spilled), 8);
            assert_eq!(get(&b.stats().buffered), 0);
        }
        let b = buf(OverflowPolicy::Spill, 30, Some(dir.clone()));
        assert_eq!(get(&b.stats().records), 8, "recovered records are counted");
        b.push(chunk(8));
        assert_eq!(pop_all(&b), (0..9).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn finish_without_spill_counts_leftovers_as_dropped() {
        let b = buf(OverflowPolicy::Block, 1000, None);
        for i in 0..5 {
            b.push(chunk(i));
        }
        let held = match b.pop(Duration::ZERO) {
            Popped::Chunk(c) => c,
            p => panic!("{p:?}"),
        };
        assert_eq!(b.finish_consumer(vec![held]), (0, 5));
        assert_eq!(get(&b.stats().dropped), 5);
        assert_eq!(get(&b.stats().buffered), 0);
    }
}
