//! The crossing from reader threads to the writer: pooled buffers, batches, the bounded queue,
//! the queue policy, and the writer loop that decodes and formats.
//!
//! ```text
//!  reader ── recv into Batch (pooled buffer) ── frames located and filtered in place
//!     │  many accepted bytes: the Batch itself is pushed (zero copy)
//!     │  few: the frames are copied into the reader's copy Batch, the buffer goes back
//!     ▼
//!  ArrayQueue<Box<Batch>> (bounded; full → block or drop+count)
//!     ▼
//!  writer ── Record::parse once ── global Chain ── per output: its Chain, then the Output
//!     │                              (transforms; each removal counted by reason)
//!     └── Batch back to the Pool
//! ```
//!
//! A [`Batch`] is one buffer plus the ranges of its accepted frames: one queue push carries
//! hundreds of messages. Memory is bounded by the pool: `pool_size × (buffer_size +
//! frames_cap × 8)`; the queue only holds pool buffers (plus, rarely, one oversize frame per
//! connection). Nothing here knows about sockets or the Frame Streams protocol.
#![forbid(unsafe_code)]

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

pub mod ordered;
pub mod reload;

use crate::record::Enrichment;
use crate::record::{DecodeError, Record};
use crate::sink::Output;
use crate::stats::{OutputStats, ThreadStats, TRANSFORM_REASON_SLOTS};
use crate::transform::{Chains, DropReason, Origin, ReasonCounts, Verdict};

use self::reload::Handoff;

// The counters in `stats` have one slot per transform drop reason.
const _: () = assert!(DropReason::ALL.len() == TRANSFORM_REASON_SLOTS);

/// One buffer and the payload ranges of the accepted frames in it.
///
/// Invariants: every range in `frames` lies within `data[..]`; `frames.len() <=
/// frames.capacity()` and the capacity is fixed at creation (pushing never allocates).
#[derive(Debug)]
pub struct Batch {
    /// The bytes. For pooled batches `data.len()` is the pool's buffer size, always.
    pub data: Vec<u8>,
    /// Accepted payloads, as `start..end` offsets into `data`.
    pub frames: Vec<(u32, u32)>,
    /// Copy batches: how many bytes of `data` are used (`0 <= used <= data.len()`).
    pub used: usize,
}

impl Batch {
    fn new(size: usize, frames_cap: usize) -> Batch {
        Batch {
            data: vec![0; size],
            frames: Vec::with_capacity(frames_cap),
            used: 0,
        }
    }

    /// A batch outside the pool, for one frame larger than a pooled buffer.
    pub fn oversize(size: usize) -> Batch {
        Batch::new(size, 1)
    }

    /// Records an accepted payload; false when the frame table is full.
    #[inline]
    pub fn push_frame(&mut self, r: Range<usize>) -> bool {
        if self.frames.len() == self.frames.capacity() || r.end > self.data.len() {
            return false;
        }
        self.frames.push((r.start as u32, r.end as u32));
        true
    }

    pub fn frames_full(&self) -> bool {
        self.frames.len() == self.frames.capacity()
    }

    /// Total bytes of the accepted payloads.
    pub fn payload_bytes(&self) -> usize {
        self.frames.iter().map(|&(s, e)| (e - s) as usize).sum()
    }

    /// Copies one payload to the end of a copy batch; false when it does not fit.
    fn append_copy(&mut self, payload: &[u8]) -> bool {
        let end = self.used + payload.len();
        if end > self.data.len() || self.frames_full() {
            return false;
        }
        self.data[self.used..end].copy_from_slice(payload);
        self.frames.push((self.used as u32, end as u32));
        self.used = end;
        true
    }

    /// The payload of frame `i`.
    pub fn payload(&self, i: usize) -> Option<&[u8]> {
        let &(s, e) = self.frames.get(i)?;
        self.data.get(s as usize..e as usize)
    }
}

/// A fixed set of equal buffers, allocated at start-up.
#[derive(Debug)]
pub struct Pool {
    free: ArrayQueue<Box<Batch>>,
    buffer_size: usize,
    frames_cap: usize,
    total: usize,
}

impl Pool {
    /// `count` buffers of `buffer_size` bytes each.
    pub fn new(count: usize, buffer_size: usize) -> Pool {
        let count = count.max(1);
        let frames_cap = frames_cap(buffer_size);
        let free = ArrayQueue::new(count);
        for _ in 0..count {
            let _ = free.push(Box::new(Batch::new(buffer_size, frames_cap)));
        }
        Pool {
            free,
            buffer_size,
            frames_cap,
            total: count,
        }
    }

    pub fn take(&self) -> Option<Box<Batch>> {
        self.free.pop()
    }

    /// Returns a batch; one that is not a pool buffer (oversize) is freed.
    pub fn give(&self, mut b: Box<Batch>) {
        if b.data.len() != self.buffer_size || b.frames.capacity() != self.frames_cap {
            return;
        }
        b.frames.clear();
        b.used = 0;
        let _ = self.free.push(b);
    }

    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Bytes the pool holds in all.
    pub fn memory_bound(&self) -> usize {
        memory_bound(self.total, self.buffer_size)
    }
}

/// Frame ranges one pooled buffer can hold. A dnstap frame is rarely under 64 bytes; a
/// buffer of smaller frames ends its batch early and carries the rest to the next buffer
/// (see input::conn).
fn frames_cap(buffer_size: usize) -> usize {
    (buffer_size / 64).max(64)
}

/// Bytes `count` pooled buffers of `buffer_size` hold, frame tables included: what
/// [`Pool::memory_bound`] reports, computed without allocating (for `--check-config`).
pub fn memory_bound(count: usize, buffer_size: usize) -> usize {
    count.max(1) * (buffer_size + frames_cap(buffer_size) * 8)
}

/// Buffers each reader may hold at once beyond the queue: its copy batch, one buffer being
/// received into per in-flight recv (io_uring keeps up to [`MAX_RECV_INFLIGHT`]).
pub const MAX_RECV_INFLIGHT: usize = 8;

/// Pool size for a pipeline: the queue can be full while every reader still holds its
/// buffers and the writer works on one, so a waiting reader is always eventually served.
pub fn pool_size(queue_capacity: usize, readers: usize) -> usize {
    queue_capacity + readers * (MAX_RECV_INFLIGHT + 2) + 2
}

/// What readers do when the writer falls behind (the queue is full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Readers stop reading; back-pressure reaches the senders' sockets.
    Block,
    /// The batch is dropped and counted.
    Drop,
}

/// Shared by the readers and the writer.
#[derive(Debug)]
pub struct Pipeline {
    pub pool: Pool,
    queue: ArrayQueue<Box<Batch>>,
    policy: QueuePolicy,
    writer: OnceLock<Thread>,
    writer_idle: AtomicBool,
    readers_left: AtomicUsize,
    /// Set when the writer stopped for good (output error): readers drop from then on.
    writer_gone: AtomicBool,
    readers: Mutex<Vec<Thread>>,
    /// Frames a reader held in its copy batch when it ended without shipping them (a reader
    /// thread that failed for good): counted here, since the reader's stats are gone.
    lost_at_reader_exit: AtomicU64,
}

impl Pipeline {
    pub fn new(pool: Pool, queue_capacity: usize, policy: QueuePolicy, readers: usize) -> Self {
        Pipeline {
            pool,
            queue: ArrayQueue::new(queue_capacity.max(1)),
            policy,
            writer: OnceLock::new(),
            writer_idle: AtomicBool::new(false),
            readers_left: AtomicUsize::new(readers),
            writer_gone: AtomicBool::new(false),
            readers: Mutex::new(Vec::new()),
            lost_at_reader_exit: AtomicU64::new(0),
        }
    }

    /// Called by a reader thread at start, so the writer can wake it when buffers return.
    pub fn register_reader(&self) {
        if let Ok(mut r) = self.readers.lock() {
            r.push(std::thread::current());
        }
    }

    /// Hands a batch of accepted frames to the writer, applying the queue policy. True when
    /// the reader had to wait for room in the queue (policy `block`): its connections were
    /// not served meanwhile (see `input::stall`).
    pub fn ship(&self, b: Box<Batch>, stats: &ThreadStats) -> bool {
        if b.frames.is_empty() {
            self.pool.give(b);
            return false;
        }
        let mut b = b;
        let mut waited = false;
        loop {
            if self.writer_gone.load(Ordering::Relaxed) {
                ThreadStats::add(&stats.dropped, b.frames.len() as u64);
                ThreadStats::add(&stats.dropped_writer_gone, b.frames.len() as u64);
                self.pool.give(b);
                return waited;
            }
            match self.queue.push(b) {
                Ok(()) => {
                    self.wake_writer();
                    return waited;
                }
                Err(back) => match self.policy {
                    QueuePolicy::Drop => {
                        ThreadStats::add(&stats.dropped, back.frames.len() as u64);
                        self.pool.give(back);
                        return waited;
                    }
                    QueuePolicy::Block => {
                        // The reader thread stops here, so it stops reading its sockets:
                        // back-pressure reaches the senders through TCP/unix flow control.
                        b = back;
                        waited = true;
                        self.wake_writer();
                        std::thread::park_timeout(Duration::from_micros(500));
                    }
                },
            }
        }
    }

    fn wake_writer(&self) {
        if self.writer_idle.swap(false, Ordering::AcqRel) {
            if let Some(w) = self.writer.get() {
                w.unpark();
            }
        }
    }

    fn wake_readers(&self) {
        if let Ok(r) = self.readers.lock() {
            for t in r.iter() {
                t.unpark();
            }
        }
    }

    /// A reader thread has shipped its last batch.
    pub fn reader_done(&self) {
        self.readers_left.fetch_sub(1, Ordering::AcqRel);
        self.writer_idle.store(true, Ordering::Release);
        self.wake_writer();
    }

    /// Batches waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Frames lost because a reader ended with them unshipped (see [`Shipper`]'s drop).
    pub fn lost_at_reader_exit(&self) -> u64 {
        self.lost_at_reader_exit.load(Ordering::Relaxed)
    }

    /// Batches the queue holds at most.
    pub fn queue_capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Takes one batch as the writer would (benchmarks and tests of the reader side).
    #[doc(hidden)]
    pub fn pop_for_bench(&self) -> Option<Box<Batch>> {
        self.queue.pop()
    }
}

/// The transform stage as one writer thread runs it: the shared chains, the scratch the
/// steps write their changes into, the counters of what the chains remove, hold and make,
/// and the per-batch tallies published to those counters.
#[derive(Debug, Default)]
pub struct WriterTransforms {
    chains: Chains,
    /// Each output's counters (index-aligned with the outputs), for what its chain withholds.
    output_stats: Vec<Arc<OutputStats>>,
    /// Removed by the global chain in the current batch.
    global: ReasonCounts,
    /// Withheld by each output's chain in the current batch.
    per_output: Vec<ReasonCounts>,
    /// Held / released / made by the global chain, and by each output's chain.
    flow: Flow,
    per_output_flow: Vec<Flow>,
    /// Records the global chain's drains handed to the outputs in the current batch.
    emitted: u64,
    /// What the global chain changed in the current record (reset per record).
    en: Enrichment,
    /// What an output's chain changed on top of `en`.
    en_out: Enrichment,
    /// Whether a chain keeps state: the writer then drains it as time passes.
    stateful: bool,
}

/// Records a chain held, released and made (see [`ThreadStats::transform_held`]).
#[derive(Clone, Copy, Debug, Default)]
struct Flow {
    held: u64,
    released: u64,
    generated: u64,
}

impl Flow {
    fn count(&mut self, origin: Origin) {
        match origin {
            Origin::Released => self.released += 1,
            Origin::Generated => self.generated += 1,
        }
    }
}

impl WriterTransforms {
    /// `output_stats` are the outputs' counters, in the order of the outputs the writer runs
    /// (and of `chains.outputs`).
    pub fn new(chains: Chains, output_stats: Vec<Arc<OutputStats>>) -> WriterTransforms {
        let per_output = vec![ReasonCounts::default(); output_stats.len()];
        let per_output_flow = vec![Flow::default(); output_stats.len()];
        let stateful = chains.is_stateful();
        WriterTransforms {
            chains,
            output_stats,
            global: ReasonCounts::default(),
            per_output,
            flow: Flow::default(),
            per_output_flow,
            emitted: 0,
            en: Enrichment::default(),
            en_out: Enrichment::default(),
            stateful,
        }
    }

    /// Whether no chain has a step: the writer skips the stage entirely.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// Runs the global chain: whether the record goes on to the outputs (counted when not).
    /// What the chain changed is left in `self.en` for [`Self::deliver`].
    #[inline]
    fn keep_global(&mut self, rec: &Record<'_>, now: Instant) -> bool {
        self.en.reset();
        match self.chains.global.apply(rec, &mut self.en, now) {
            Verdict::Keep => true,
            Verdict::Drop(r) => {
                self.global[r.index()] += 1;
                false
            }
            Verdict::Held => {
                self.flow.held += 1;
                false
            }
        }
    }

    /// Hands a record the global chain kept (its changes in `self.en`) to every output
    /// whose own chain keeps it; the outputs see the changed values.
    #[inline]
    fn deliver(
        &mut self,
        outputs: &mut [Box<dyn Output>],
        rec: &Record<'_>,
        payload: &[u8],
        now: Instant,
    ) -> io::Result<()> {
        let WriterTransforms {
            chains,
            per_output,
            per_output_flow,
            en,
            en_out,
            ..
        } = self;
        let overlaid;
        let seen: &Record<'_> = if en.is_clear() {
            rec
        } else {
            overlaid = rec.overlaid(en);
            &overlaid
        };
        for (i, o) in outputs.iter_mut().enumerate() {
            let chain = chains.output(i);
            if chain.is_empty() {
                o.record(seen, payload)?;
                continue;
            }
            en_out.clone_from(en);
            match chain.apply(rec, en_out, now) {
                Verdict::Keep if en_out.is_clear() => o.record(rec, payload)?,
                Verdict::Keep => o.record(&rec.overlaid(en_out), payload)?,
                Verdict::Drop(r) => {
                    if let Some(c) = per_output.get_mut(i) {
                        c[r.index()] += 1;
                    }
                }
                Verdict::Held => {
                    if let Some(f) = per_output_flow.get_mut(i) {
                        f.held += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Emits what the stateful chains hold and is due at `now` (everything when `all`):
    /// the global chain's records go to every output through their own chains, an
    /// output chain's records to that output. Counted like records from the queue.
    fn drain(
        &mut self,
        outputs: &mut [Box<dyn Output>],
        now: Instant,
        all: bool,
    ) -> io::Result<()> {
        if !self.stateful {
            return Ok(());
        }
        let mut result = Ok(());
        let global = Arc::clone(&self.chains.global);
        global.drain(now, all, &mut |e| {
            self.flow.count(e.origin);
            match e.verdict {
                Verdict::Keep => {
                    self.emitted += 1;
                    self.en.clone_from(e.en);
                    if result.is_ok() {
                        result = self.deliver(outputs, e.rec, e.payload, now);
                    }
                }
                Verdict::Drop(r) => self.global[r.index()] += 1,
                Verdict::Held => self.flow.held += 1,
            }
        });
        for (i, o) in outputs.iter_mut().enumerate() {
            let chain = Arc::clone(self.chains.outputs.get(i).unwrap_or(&self.chains.global));
            if i >= self.chains.outputs.len() || !chain.is_stateful() {
                continue;
            }
            let (counts, flow) = (&mut self.per_output[i], &mut self.per_output_flow[i]);
            chain.drain(now, all, &mut |e| {
                flow.count(e.origin);
                match e.verdict {
                    Verdict::Keep => {
                        if result.is_ok() {
                            result = o.record(e.rec, e.payload);
                        }
                    }
                    Verdict::Drop(r) => counts[r.index()] += 1,
                    Verdict::Held => flow.held += 1,
                }
            });
        }
        result
    }

    /// Records the global chain removed or held in this batch.
    fn global_removed(&self) -> u64 {
        self.global.iter().sum::<u64>() + self.flow.held
    }

    /// Adds this batch's global tallies to `stats` and clears them.
    fn publish_global(&mut self, stats: &ThreadStats) {
        for (a, n) in stats.transform_filtered.iter().zip(&mut self.global) {
            ThreadStats::add(a, std::mem::take(n));
        }
        let f = std::mem::take(&mut self.flow);
        ThreadStats::add(&stats.transform_held, f.held);
        ThreadStats::add(&stats.transform_released, f.released);
        ThreadStats::add(&stats.transform_generated, f.generated);
    }

    /// Adds this batch's per-output tallies to the outputs' counters and clears them
    /// (`keep`: false when the batch was lost with the writer, then they are only cleared).
    fn publish_outputs(&mut self, keep: bool) {
        let outs = self.per_output.iter_mut().zip(&mut self.per_output_flow);
        for ((counts, flow), out) in outs.zip(&self.output_stats) {
            for (a, n) in out.filtered.iter().zip(counts.iter_mut()) {
                let n = std::mem::take(n);
                if keep {
                    ThreadStats::add(a, n);
                }
            }
            let f = std::mem::take(flow);
            if keep {
                ThreadStats::add(&out.held, f.held);
                ThreadStats::add(&out.released, f.released);
                ThreadStats::add(&out.generated, f.generated);
            }
        }
    }

    /// Drains the chains and publishes what that changed (`written` gets what the global
    /// chain emitted and the outputs took).
    fn drain_and_publish(
        &mut self,
        outputs: &mut [Box<dyn Output>],
        stats: &ThreadStats,
        all: bool,
    ) -> io::Result<()> {
        if !self.stateful {
            return Ok(());
        }
        let r = self.drain(outputs, Instant::now(), all);
        ThreadStats::add(&stats.written, std::mem::take(&mut self.emitted));
        self.publish_global(stats);
        self.publish_outputs(true);
        r
    }
}

/// The writer loop: until every reader is done and the queue is empty, decode each accepted
/// frame once and hand the record to every output; outputs buffer and write in large
/// writes. Buffers go back to the pool as soon as a batch is done.
/// Returns an error when an output fails for good (the pipeline then drops and counts).
pub fn run_writer(
    p: &Pipeline,
    outputs: &mut Vec<Box<dyn Output>>,
    stats: &ThreadStats,
) -> io::Result<()> {
    run_writer_observed(p, outputs, stats, &mut ())
}

/// Sees every decoded record in the writer thread, before the outputs do (traffic
/// statistics). `observe` runs per record and must not allocate or block; `publish` runs
/// after each batch, to make what was observed visible to other threads.
pub trait Observer {
    fn observe(&mut self, rec: &Record<'_>, payload: &[u8]);
    fn publish(&mut self);
}

/// No observer.
impl Observer for () {
    #[inline(always)]
    fn observe(&mut self, _: &Record<'_>, _: &[u8]) {}
    #[inline(always)]
    fn publish(&mut self) {}
}

/// An optional observer.
impl<T: Observer> Observer for Option<T> {
    #[inline(always)]
    fn observe(&mut self, rec: &Record<'_>, payload: &[u8]) {
        if let Some(o) = self {
            o.observe(rec, payload);
        }
    }
    #[inline(always)]
    fn publish(&mut self) {
        if let Some(o) = self {
            o.publish();
        }
    }
}

/// [`run_writer`] with an [`Observer`] of every decoded record.
pub fn run_writer_observed<O: Observer>(
    p: &Pipeline,
    outputs: &mut Vec<Box<dyn Output>>,
    stats: &ThreadStats,
    observer: &mut O,
) -> io::Result<()> {
    run_writer_with(
        p,
        outputs,
        &mut WriterTransforms::default(),
        stats,
        observer,
    )
}

/// The writer with its transform chains: each decoded record goes through the global chain,
/// then, per output, through that output's chain before the output gets it. The observer
/// sees every decoded record, before any chain.
pub fn run_writer_with<O: Observer>(
    p: &Pipeline,
    outputs: &mut Vec<Box<dyn Output>>,
    transforms: &mut WriterTransforms,
    stats: &ThreadStats,
    observer: &mut O,
) -> io::Result<()> {
    run_writer_reloading(p, outputs, transforms, stats, observer, None)
}

/// A new configuration for the single writer (a reload): its chains and outputs, taken
/// between two batches.
pub struct WriterGen {
    pub chains: Chains,
    /// The outputs in their new order: running ones kept, new ones started.
    pub outputs: Vec<OutputSlot>,
    /// Their counters, index-aligned with `outputs`.
    pub output_stats: Vec<Arc<OutputStats>>,
}

impl std::fmt::Debug for WriterGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterGen")
            .field("outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

/// One output of a new configuration.
pub enum OutputSlot {
    /// The running output at this index, unchanged: its connections stay open.
    Keep(usize),
    /// A new output, already started.
    New(Box<dyn Output>),
}

/// [`run_writer_with`] that also takes new configurations from `reload` between batches
/// (see [`WriterGen`]): stateful chains are drained into the outputs they fed, outputs no
/// longer configured are flushed at once and finished on a thread of their own, and the
/// writer goes on with the new chains and outputs. Outputs retired this way are waited for
/// before this returns.
pub fn run_writer_reloading<O: Observer>(
    p: &Pipeline,
    outputs: &mut Vec<Box<dyn Output>>,
    transforms: &mut WriterTransforms,
    stats: &ThreadStats,
    observer: &mut O,
    reload: Option<&Handoff<WriterGen>>,
) -> io::Result<()> {
    let _ = p.writer.set(std::thread::current());
    // The full formats show the rate at which an output's records were sampled.
    for (i, o) in outputs.iter_mut().enumerate() {
        let rate = transforms.chains.sample_rate(i);
        if rate > 1 {
            o.set_sample_rate(rate);
        }
    }
    let mut retiring = Vec::new();
    let mut result = writer_loop(
        p,
        outputs,
        transforms,
        stats,
        observer,
        reload,
        &mut retiring,
    );
    if result.is_ok() {
        // End of the stream: what the stateful transforms still hold goes out now.
        result = transforms.drain_and_publish(outputs, stats, true);
    }
    for o in outputs.iter_mut() {
        let r = o.finish();
        if let Err(e) = r {
            crate::log_error!("output {}: {e}", o.name());
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    for h in retiring {
        // Each retired output logged its own failure.
        let _ = h.join();
    }
    if result.is_err() {
        p.writer_failed(stats);
    }
    result
}

/// Puts a new configuration in force between two batches (see [`run_writer_reloading`]).
fn apply_generation(
    generation: u64,
    gen: WriterGen,
    outputs: &mut Vec<Box<dyn Output>>,
    transforms: &mut WriterTransforms,
    stats: &ThreadStats,
    retiring: &mut Vec<std::thread::JoinHandle<()>>,
) -> io::Result<()> {
    // The chains being replaced hand what they hold to the outputs they fed.
    transforms.drain_and_publish(outputs, stats, true)?;
    let mut old: Vec<Option<Box<dyn Output>>> = outputs.drain(..).map(Some).collect();
    let mut next = Vec::with_capacity(gen.outputs.len());
    for slot in gen.outputs {
        match slot {
            OutputSlot::Keep(j) => match old.get_mut(j).and_then(Option::take) {
                Some(o) => next.push(o),
                None => {
                    // Cannot happen (main keeps each running output once); fail loudly
                    // rather than write to the wrong output.
                    return Err(io::Error::other(format!(
                        "reload: output {j} is not running"
                    )));
                }
            },
            OutputSlot::New(o) => next.push(o),
        }
    }
    for mut o in old.into_iter().flatten() {
        // Written out now, so what it got before the switch comes before what a new
        // output on the same descriptor prints; then finished (delivered, bounded by its
        // own timeout) off the writer thread.
        if let Err(e) = o.flush() {
            crate::log_warn!("output {} (removed): {e}", o.name());
        }
        let spawned = std::thread::Builder::new()
            .name("retire-output".into())
            .spawn(move || {
                let name = o.name().to_string();
                match o.finish() {
                    Ok(()) => crate::log_debug!("output {name}: removed by the reload"),
                    Err(e) => crate::log_error!("output {name} (removed): {e}"),
                }
            });
        match spawned {
            Ok(h) => retiring.push(h),
            Err(e) => crate::log_error!("cannot start a thread to finish a removed output: {e}"),
        }
    }
    *outputs = next;
    *transforms = WriterTransforms::new(gen.chains, gen.output_stats);
    for (i, o) in outputs.iter_mut().enumerate() {
        o.set_sample_rate(transforms.chains.sample_rate(i));
    }
    crate::log_debug!(
        "writer: configuration generation {generation} in force ({} outputs)",
        outputs.len()
    );
    Ok(())
}

impl Pipeline {
    /// The writer stopped for good: readers drop (and count) from now on, and what is still
    /// queued is counted as dropped and given back so blocked readers can finish.
    fn writer_failed(&self, stats: &ThreadStats) {
        self.writer_gone.store(true, Ordering::Release);
        while let Some(b) = self.queue.pop() {
            ThreadStats::add(&stats.dropped, b.frames.len() as u64);
            ThreadStats::add(&stats.dropped_writer_gone, b.frames.len() as u64);
            self.pool.give(b);
        }
        self.wake_readers();
    }
}

fn writer_loop<O: Observer>(
    p: &Pipeline,
    outputs: &mut Vec<Box<dyn Output>>,
    transforms: &mut WriterTransforms,
    stats: &ThreadStats,
    observer: &mut O,
    reload: Option<&Handoff<WriterGen>>,
    retiring: &mut Vec<std::thread::JoinHandle<()>>,
) -> io::Result<()> {
    loop {
        // PERF: one atomic load per batch (or idle wake-up); nothing per message.
        if let Some(h) = reload.filter(|h| h.is_pending()) {
            if let Some((g, gen)) = h.take() {
                apply_generation(g, gen, outputs, transforms, stats, retiring)?;
            }
        }
        if let Some(b) = p.queue.pop() {
            let r = if transforms.is_empty() {
                write_batch(&b, outputs, stats, observer)
            } else {
                write_batch_transformed(&b, outputs, transforms, stats, observer)
            };
            observer.publish();
            p.pool.give(b);
            p.wake_readers_if_starved();
            r?;
            transforms.drain_and_publish(outputs, stats, false)?;
            continue;
        }
        // Time passes for the stateful transforms (windows close, queries time out) even
        // when nothing arrives.
        transforms.drain_and_publish(outputs, stats, false)?;
        // Queue empty: let every output write what it holds, then sleep until a reader
        // pushes.
        for o in outputs.iter_mut() {
            o.flush()?;
        }
        if p.readers_left.load(Ordering::Acquire) == 0 && p.queue.is_empty() {
            return Ok(());
        }
        p.writer_idle.store(true, Ordering::Release);
        if p.queue.is_empty() && p.readers_left.load(Ordering::Acquire) != 0 {
            std::thread::park_timeout(Duration::from_millis(50));
        }
        p.writer_idle.store(false, Ordering::Release);
    }
}

/// Decodes every frame of one batch and hands each record to every output.
///
/// Every frame of the batch ends up counted once: `written`, `decode_errors`, or (after an
/// output failed for good) `dropped` as writer-gone.
fn write_batch<O: Observer>(
    b: &Batch,
    outputs: &mut [Box<dyn Output>],
    stats: &ThreadStats,
    observer: &mut O,
) -> io::Result<()> {
    let (written, errors, result) = decode_batch(b, |rec, payload| {
        observer.observe(rec, payload);
        outputs.iter_mut().try_for_each(|o| o.record(rec, payload))
    });
    ThreadStats::add(&stats.written, written);
    ThreadStats::add(&stats.decode_errors, errors);
    // An output failed: the frames after the failing one are lost with the writer.
    let lost = (b.frames.len() as u64).saturating_sub(written + errors);
    ThreadStats::add(&stats.dropped, lost);
    ThreadStats::add(&stats.dropped_writer_gone, lost);
    result
}

/// [`write_batch`] with transform chains: a record the global chain removes goes to no
/// output and is counted in `transform_filtered` (not in `written`); one an output's chain
/// withholds is counted in that output's `filtered`.
///
/// Every frame of the batch ends up counted once: `written`, `transform_filtered`,
/// `decode_errors`, or `dropped` as writer-gone.
fn write_batch_transformed<O: Observer>(
    b: &Batch,
    outputs: &mut [Box<dyn Output>],
    t: &mut WriterTransforms,
    stats: &ThreadStats,
    observer: &mut O,
) -> io::Result<()> {
    let now = Instant::now();
    let (decoded, errors, result) = decode_batch(b, |rec, payload| {
        observer.observe(rec, payload);
        if !t.keep_global(rec, now) {
            return Ok(());
        }
        t.deliver(outputs, rec, payload, now)
    });
    let removed = t.global_removed();
    let written = decoded - removed;
    t.publish_global(stats);
    t.publish_outputs(true);
    ThreadStats::add(&stats.written, written);
    ThreadStats::add(&stats.decode_errors, errors);
    let lost = (b.frames.len() as u64).saturating_sub(decoded + errors);
    ThreadStats::add(&stats.dropped, lost);
    ThreadStats::add(&stats.dropped_writer_gone, lost);
    result
}

/// Decodes the frames of `b` in order and hands each record and its payload to `each`,
/// stopping at the first error `each` returns. Undecodable payloads are skipped and logged
/// at a bounded rate. Returns the records decoded (handed to `each`), the frames that did
/// not decode, and `each`'s error if any (the frames after it were not looked at).
#[inline]
fn decode_batch(
    b: &Batch,
    mut each: impl FnMut(&Record<'_>, &[u8]) -> io::Result<()>,
) -> (u64, u64, io::Result<()>) {
    let (mut decoded, mut errors) = (0u64, 0u64);
    let mut last_error = None;
    let mut result = Ok(());
    // One record, refilled in place for each frame (see `Record::parse_in_place`).
    let mut rec = Record::default();
    for &(s, e) in &b.frames {
        let Some(payload) = b.data.get(s as usize..e as usize) else {
            errors += 1;
            continue;
        };
        match rec.parse_in_place(payload) {
            Ok(()) => {
                decoded += 1;
                if let Err(e) = each(&rec, payload) {
                    result = Err(e);
                    break;
                }
            }
            Err(e) => {
                errors += 1;
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        warn_undecodable(errors, e);
    }
    (decoded, errors, result)
}

/// At most one "undecodable" warning per this interval (the first one at once).
const UNDECODABLE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs payloads whose protobuf is broken: the first at once, then at most one line per
/// [`UNDECODABLE_LOG_EVERY`] carrying the count since the previous line, so a sender of
/// garbage cannot flood the log. Every one is counted in `decode-errors` regardless. The
/// batch does not know its connections, so the line cannot name the peer; the framing was
/// sound, so the connection stays open and its next message is decoded as usual.
fn warn_undecodable(n: u64, latest: DecodeError) {
    static STATE: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));
    let Ok(mut st) = STATE.lock() else {
        return;
    };
    st.1 += n;
    if st.0.is_none_or(|t| t.elapsed() >= UNDECODABLE_LOG_EVERY) {
        crate::log_warn!(
            "{} undecodable dnstap message(s) skipped ({latest}); counted in decode-errors",
            st.1
        );
        *st = (Some(Instant::now()), 0);
    }
}

impl Pipeline {
    fn wake_readers_if_starved(&self) {
        // PERF: readers only wait for buffers when the pool ran dry; waking them costs a
        // lock and a syscall, so only do it when that was the case.
        if self.pool.available() <= 1 {
            self.wake_readers();
        }
    }
}

/// The reader side: routes each receive buffer's accepted frames, batching small amounts
/// from many receives (and connections) into one copy batch.
#[derive(Debug)]
pub struct Shipper<'a> {
    p: &'a Pipeline,
    copy: Option<Box<Batch>>,
    /// A `ship` waited for room in the queue since [`Shipper::take_waited`] last asked.
    waited: bool,
}

impl<'a> Shipper<'a> {
    pub fn new(p: &'a Pipeline) -> Self {
        Shipper {
            p,
            copy: None,
            waited: false,
        }
    }

    /// Whether the reader waited for room in the queue since the last call (the reader
    /// was held up by its output: `input::stall`).
    pub fn take_waited(&mut self) -> bool {
        std::mem::take(&mut self.waited)
    }

    /// Ships a whole batch now (a caller that copied frames of the same connection into
    /// the copy batch flushes first), noting whether it waited for the queue.
    pub fn ship(&mut self, b: Box<Batch>, stats: &ThreadStats) {
        self.waited |= self.p.ship(b, stats);
    }

    pub fn pipeline(&self) -> &'a Pipeline {
        self.p
    }

    /// Takes a receive buffer whose accepted frames are in `b.frames`: ships it whole when it
    /// holds at least a quarter buffer of payload, else copies the frames into the copy
    /// batch and returns the buffer to the pool. Never blocks for a buffer: when none is free
    /// the receive buffer itself is shipped.
    pub fn route(&mut self, mut b: Box<Batch>, stats: &ThreadStats) {
        if b.frames.is_empty() {
            self.p.pool.give(b);
            return;
        }
        // PERF: zero copy for bulk input (fast senders fill whole buffers); copying is only
        // worth it for the trickle of a slow sender, where it saves a buffer per receive.
        if b.payload_bytes() >= self.p.pool.buffer_size() / 4 {
            // Frames copied earlier go first: a connection's records keep their order.
            self.flush(stats);
            self.ship(b, stats);
            return;
        }
        let mut done = 0;
        while done < b.frames.len() {
            let (s, e) = b.frames[done];
            let payload = &b.data[s as usize..e as usize];
            let fits = self.copy.as_mut().is_some_and(|c| c.append_copy(payload));
            if fits {
                done += 1;
                continue;
            }
            if let Some(full) = self.copy.take() {
                self.ship(full, stats);
            }
            match self.p.pool.take() {
                Some(c) => self.copy = Some(c),
                None => break,
            }
            // A fresh copy batch can hold any payload that fit in a pool buffer.
            if let Some(c) = self.copy.as_mut() {
                if !c.append_copy(payload) {
                    break;
                }
                done += 1;
            }
        }
        if done == b.frames.len() {
            self.p.pool.give(b);
        } else {
            b.frames.drain(..done);
            self.ship(b, stats);
        }
    }

    /// Ships the copy batch if it holds anything (end of an event-loop round).
    pub fn flush(&mut self, stats: &ThreadStats) {
        if self.copy.as_ref().is_some_and(|c| !c.frames.is_empty()) {
            if let Some(c) = self.copy.take() {
                self.ship(c, stats);
            }
        }
    }
}

impl Drop for Shipper<'_> {
    /// A reader that ends normally flushes first; one that fails for good may still hold
    /// frames here: they are lost, and counted.
    fn drop(&mut self) {
        if let Some(c) = self.copy.take() {
            self.p
                .lost_at_reader_exit
                .fetch_add(c.frames.len() as u64, Ordering::Relaxed);
            self.p.pool.give(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(pool: &Pool, frames: &[&[u8]]) -> Box<Batch> {
        let mut b = pool.take().unwrap();
        let mut at = 0;
        for f in frames {
            b.data[at..at + f.len()].copy_from_slice(f);
            assert!(b.push_frame(at..at + f.len()));
            at += f.len();
        }
        b
    }

    fn drain(p: &Pipeline) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(b) = p.queue.pop() {
            for i in 0..b.frames.len() {
                v.push(b.payload(i).unwrap().to_vec());
            }
            p.pool.give(b);
        }
        v
    }

    #[test]
    fn pool_is_bounded_and_recycles() {
        let pool = Pool::new(2, 4096);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        pool.give(a);
        pool.give(Box::new(Batch::oversize(10_000))); // not a pool buffer: freed
        assert_eq!(pool.available(), 1);
        pool.give(b);
        assert_eq!(pool.available(), 2);
        assert!(pool.take().unwrap().frames.is_empty());
    }

    #[test]
    fn small_receives_are_copied_into_one_batch() {
        let p = Pipeline::new(Pool::new(8, 4096), 4, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let mut sh = Shipper::new(&p);
        for i in 0..5u8 {
            let b = filled(&p.pool, &[&[i; 10], &[i + 100; 20]]);
            sh.route(b, &stats);
        }
        assert_eq!(p.queued(), 0, "small receives wait in the copy batch");
        sh.flush(&stats);
        assert_eq!(p.queued(), 1, "one push for ten frames");
        let got = drain(&p);
        assert_eq!(got.len(), 10);
        assert_eq!(got[2], vec![1u8; 10]);
        assert_eq!(got[9], vec![104u8; 20]);
        drop(sh);
        assert_eq!(p.pool.available(), 8, "every buffer came back");
    }

    #[test]
    fn frames_left_in_a_dropped_shipper_are_counted() {
        let p = Pipeline::new(Pool::new(8, 4096), 4, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let mut sh = Shipper::new(&p);
        sh.route(filled(&p.pool, &[&[1; 10], &[2; 10], &[3; 10]]), &stats);
        drop(sh);
        assert_eq!(p.lost_at_reader_exit(), 3);
        assert_eq!(p.pool.available(), 8);
    }

    #[test]
    fn bulk_receive_is_shipped_without_copy() {
        let p = Pipeline::new(Pool::new(4, 4096), 4, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let mut sh = Shipper::new(&p);
        let big = vec![7u8; 2000];
        sh.route(filled(&p.pool, &[&big]), &stats);
        assert_eq!(p.queued(), 1);
        assert_eq!(drain(&p), vec![big]);
    }

    #[test]
    fn small_then_bulk_receives_keep_their_order() {
        let p = Pipeline::new(Pool::new(8, 4096), 4, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let mut sh = Shipper::new(&p);
        let (small, big) = (vec![1u8; 10], vec![2u8; 2000]);
        sh.route(filled(&p.pool, &[&small]), &stats);
        sh.route(filled(&p.pool, &[&big]), &stats);
        sh.flush(&stats);
        assert_eq!(drain(&p), vec![small, big], "the copied frame goes first");
    }

    #[test]
    fn drop_policy_counts_dropped_frames() {
        let p = Pipeline::new(Pool::new(4, 4096), 1, QueuePolicy::Drop, 1);
        let stats = ThreadStats::default();
        let big = vec![1u8; 2000];
        p.ship(filled(&p.pool, &[&big, &big]), &stats);
        p.ship(filled(&p.pool, &[&big]), &stats);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(drain(&p).len(), 2);
        assert_eq!(p.pool.available(), 4);
    }

    #[test]
    fn block_policy_waits_for_the_consumer() {
        let p = Pipeline::new(Pool::new(4, 4096), 1, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let big = vec![1u8; 2000];
        std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut n = 0;
                while n < 3 {
                    if let Some(b) = p.queue.pop() {
                        n += b.frames.len();
                        p.pool.give(b);
                    } else {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                n
            });
            for _ in 0..3 {
                let b = loop {
                    if let Some(b) = p.pool.take() {
                        break b;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                };
                let mut b = b;
                b.data[..2000].copy_from_slice(&big);
                b.push_frame(0..2000);
                p.ship(b, &stats);
            }
            assert_eq!(consumer.join().unwrap(), 3);
        });
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn frame_table_never_grows() {
        let pool = Pool::new(1, 4096);
        let mut b = pool.take().unwrap();
        let cap = b.frames.capacity();
        for i in 0..cap {
            assert!(b.push_frame(i..i + 1));
        }
        assert!(!b.push_frame(0..1));
        assert_eq!(b.frames.capacity(), cap);
        assert!(
            !b.push_frame(4000..5000),
            "range past the buffer is refused"
        );
    }

    /// The identities an output was handed.
    type Seen = Arc<Mutex<Vec<String>>>;

    /// An output that keeps the identities it is handed and says when it was finished.
    struct Collect {
        seen: Seen,
        finished: Arc<AtomicBool>,
    }

    impl Collect {
        fn boxed() -> (Box<dyn Output>, Seen, Arc<AtomicBool>) {
            let (seen, finished) = (Arc::default(), Arc::default());
            let o = Collect {
                seen: Arc::clone(&seen),
                finished: Arc::clone(&finished),
            };
            (Box::new(o), seen, finished)
        }
    }

    impl Output for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
            let id = String::from_utf8_lossy(rec.identity.unwrap_or_default()).into_owned();
            self.seen.lock().unwrap().push(id);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            self.finished.store(true, Ordering::Release);
            Ok(())
        }
    }

    /// A dnstap payload with identity `id` and type MESSAGE.
    fn identity_payload(id: &str) -> Vec<u8> {
        let mut v = vec![0x0a, id.len() as u8];
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&[0x78, 0x01]);
        v
    }

    fn wait(what: &str, cond: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(20), "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_writer_takes_new_outputs_between_batches_and_finishes_the_removed_ones() {
        let p = Pipeline::new(Pool::new(8, 4096), 4, QueuePolicy::Block, 1);
        let stats = ThreadStats::default();
        let handoff = Handoff::new(0);
        let (a, a_seen, a_done) = Collect::boxed();
        let (b, b_seen, b_done) = Collect::boxed();
        let (c, c_seen, c_done) = Collect::boxed();
        let batch = |ids: &[&str]| {
            let payloads: Vec<Vec<u8>> = ids.iter().map(|i| identity_payload(i)).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            filled(&p.pool, &refs)
        };
        let gen = |outputs: Vec<OutputSlot>| WriterGen {
            chains: Chains::default(),
            output_stats: outputs.iter().map(|_| Arc::default()).collect(),
            outputs,
        };
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                let mut outputs = vec![a];
                let mut t = WriterTransforms::default();
                run_writer_reloading(&p, &mut outputs, &mut t, &stats, &mut (), Some(&handoff))
            });
            p.ship(batch(&["1", "1"]), &stats);
            wait("batch 1", || a_seen.lock().unwrap().len() == 2);

            // a stays, b is added.
            assert!(handoff
                .offer(1, gen(vec![OutputSlot::Keep(0), OutputSlot::New(b)]))
                .is_ok());
            wait("generation 1 taken", || handoff.taken() == 1);
            p.ship(batch(&["2", "2", "2"]), &stats);
            wait("batch 2", || b_seen.lock().unwrap().len() == 3);

            // Both replaced by c: they are finished, c gets what follows.
            assert!(handoff.offer(2, gen(vec![OutputSlot::New(c)])).is_ok());
            wait("generation 2 taken", || handoff.taken() == 2);
            wait("a and b finished", || {
                a_done.load(Ordering::Acquire) && b_done.load(Ordering::Acquire)
            });
            p.ship(batch(&["3"]), &stats);
            p.reader_done();
            writer.join().unwrap().unwrap();
        });
        assert_eq!(*a_seen.lock().unwrap(), ["1", "1", "2", "2", "2"]);
        assert_eq!(*b_seen.lock().unwrap(), ["2", "2", "2"]);
        assert_eq!(*c_seen.lock().unwrap(), ["3"]);
        assert!(c_done.load(Ordering::Acquire));
        assert_eq!(stats.written.load(Ordering::Relaxed), 6);
    }
}
