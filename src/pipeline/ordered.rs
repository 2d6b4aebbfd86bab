//! Several writer threads for one output, with the output fed in queue order.
//!
//! One writer decodes and formats every record; when that thread is the limit (it is, for
//! JSON and text on a few cores: docs/performance.md), `--writers N` runs N of them. Each
//! takes the next batch off the queue with a ticket (its position in queue order), decodes
//! and formats the whole batch into its own [`Staged`] records, gives the batch back to the
//! pool, then waits for its turn and hands the records to the output
//! ([`StagedOutput::commit`]). Formatting runs in parallel; commits happen one at a time,
//! in ticket order, so the output sees its records in exactly one writer's order: stdout
//! prints the same bytes, a forward output fills the same chunks (per collector with
//! `loadbalance: hash`), a Kafka output produces in the same order (so per key, too).
//!
//! ```text
//!  queue ──pop+ticket──► writer 0: decode + format batch 7 into its Staged ──┐
//!        ──pop+ticket──► writer 1: decode + format batch 8 into its Staged ──┤ turn 7, then 8
//!                                                                            ▼
//!                                  output: fd write_all / chunks → ChunkBuffer / produce
//! ```
//!
//! Transforms: each writer runs the global chain and then the output's own chain on every
//! record it decodes (the chains are shared and immutable), and counts what they remove.
//! Stateful steps (reducer, latency) need every record in one place: the configuration
//! keeps one writer for them.
//!
//! One output only (`crate::sink::staged` says which kinds); a list of several outputs, or
//! another kind, keeps the single writer of `crate::pipeline`, which hands records one at a
//! time in order.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::reload::Published;
use super::{decode_batch, Batch, Observer, Pipeline};
use crate::format::Formatter;
use crate::record::Enrichment;
use crate::sink::staged::{Staged, StagedOutput, Stager};
use crate::sink::WriteOutput;
use crate::stats::{OutputStats, ThreadStats};
use crate::transform::{Chain, Chains, ReasonCounts, Verdict};

/// A secondary writer (readers unpark only the first) looks at the queue again after this
/// long when it found it empty.
const SECONDARY_IDLE: Duration = Duration::from_millis(2);

/// What one writer thread owns: its counters and its traffic observer.
pub struct WriterSlot<O: Observer> {
    pub stats: Arc<ThreadStats>,
    pub observer: O,
}

/// The shared output, and whose turn it is to hand it a batch.
struct Turn<S> {
    /// Ticket of the batch whose records go out next.
    next: u64,
    out: S,
}

/// The format and chains the ordered writers run: one generation of the configuration.
/// `formatter` is the output's format as configured (stdout's `format`, a forward output's
/// `format`, a Kafka output's JSON `value`); only stdout's can change on a reload (the
/// others' is part of an output, which a reload cannot replace under several writers).
#[derive(Debug)]
pub struct OrderedGen {
    pub formatter: Formatter,
    pub chains: Chains,
}

/// The next ticket, and the configuration the batch popped with it is written with.
struct Tickets {
    next: u64,
    generation: u64,
    gen: Arc<OrderedGen>,
}

struct Shared<S> {
    /// Hands out tickets; held only while popping one batch. A reload takes effect at a
    /// ticket: every batch before it is written with the old format and chains, every
    /// batch from it on with the new ones, whichever writer formats it.
    tickets: Mutex<Tickets>,
    /// Tickets handed out so far (`Tickets::next`, readable without the lock): the writer
    /// of the last one flushes the output when the queue is empty.
    taken: AtomicU64,
    /// Where a reload publishes a new generation.
    reload: Option<Arc<Published<OrderedGen>>>,
    /// The output's formatting half, shared by the writers.
    stager: Arc<dyn Stager>,
    turn: Mutex<Turn<S>>,
    turn_changed: Condvar,
    /// The output failed: later batches are counted as lost, and the writers stop.
    failed: AtomicBool,
    out_stats: Arc<OutputStats>,
}

/// Runs `slots.len()` writer threads (the calling thread is the first) for a descriptor
/// (stdout) until every reader is done and the queue is empty, or the output fails.
/// Returns the first error; the pipeline then drops and counts what is still queued, as
/// with one writer.
pub fn run_ordered_writers<W: Write + Send, O: Observer + Send>(
    p: &Pipeline,
    slots: Vec<WriterSlot<O>>,
    formatter: Formatter,
    out: W,
    out_stats: Arc<OutputStats>,
) -> io::Result<()> {
    run_ordered_writers_with(p, slots, formatter, out, out_stats, Chains::default())
}

/// [`run_ordered_writers`] with transform chains: `chains.global`, then `chains.output(0)`
/// (the one output's own chain).
pub fn run_ordered_writers_with<W: Write + Send, O: Observer + Send>(
    p: &Pipeline,
    slots: Vec<WriterSlot<O>>,
    formatter: Formatter,
    out: W,
    out_stats: Arc<OutputStats>,
    chains: Chains,
) -> io::Result<()> {
    let gen = OrderedGen { formatter, chains };
    let out = WriteOutput::new("stdout", gen.formatter.clone(), out, Arc::clone(&out_stats));
    run_ordered_writers_reloading(p, slots, out, out_stats, Arc::new(gen), None)
}

/// The ordered writers for any [`StagedOutput`] (stdout, forward, Kafka), taking each new
/// generation `reload` publishes (a configuration reload: format, chains) at the next
/// ticket. `gen` is generation 0; `out_stats` are the output's counters (what its own
/// chain withholds is counted there). The output is finished before this returns.
pub fn run_ordered_writers_reloading<S: StagedOutput, O: Observer + Send>(
    p: &Pipeline,
    slots: Vec<WriterSlot<O>>,
    out: S,
    out_stats: Arc<OutputStats>,
    gen: Arc<OrderedGen>,
    reload: Option<Arc<Published<OrderedGen>>>,
) -> io::Result<()> {
    let _ = p.writer.set(std::thread::current());
    let generation = reload.as_ref().map_or(0, |r| r.generation());
    let shared = Shared {
        tickets: Mutex::new(Tickets {
            next: 0,
            generation,
            gen: with_rate(&gen),
        }),
        taken: AtomicU64::new(0),
        reload,
        stager: out.stager(),
        turn: Mutex::new(Turn { next: 0, out }),
        turn_changed: Condvar::new(),
        failed: AtomicBool::new(false),
        out_stats,
    };
    let mut slots = slots.into_iter();
    let Some(first) = slots.next() else {
        return Ok(());
    };
    let first_stats = Arc::clone(&first.stats);
    let result = std::thread::scope(|scope| {
        let mut others = Vec::new();
        for (i, slot) in slots.enumerate() {
            let shared = &shared;
            let spawned = std::thread::Builder::new()
                .name(format!("writer-{}", i + 1))
                .spawn_scoped(scope, move || worker(p, shared, slot, false));
            match spawned {
                Ok(h) => others.push(h),
                // Fewer writers than asked: the output is the same, only slower.
                Err(e) => crate::log_warn!("cannot start writer thread {}: {e}", i + 1),
            }
        }
        let mut result = worker(p, &shared, first, true);
        for h in others {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a writer thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    });
    let mut turn = shared.turn.into_inner().unwrap_or_else(|e| e.into_inner());
    let name = turn.out.name().to_string();
    if let Err(e) = &result {
        crate::log_error!("output {name}: {e}");
        p.writer_failed(&first_stats);
    }
    // Delivered (bounded by the output's own timeouts) after the queue was given back, so
    // readers blocked on a failed output are not kept waiting meanwhile.
    let finished = turn.out.finish();
    if let Err(e) = &finished {
        crate::log_error!("output {name}: {e}");
    }
    result.and(finished)
}

/// One writer thread. `primary`: the thread readers unpark when they push.
fn worker<S: StagedOutput, O: Observer>(
    p: &Pipeline,
    shared: &Shared<S>,
    mut slot: WriterSlot<O>,
    primary: bool,
) -> io::Result<()> {
    // PERF: kept across batches (cleared, not freed): no allocation per message once they
    // reached a batch's size (tests/no_alloc.rs).
    let mut staged = Staged {
        bytes: Vec::with_capacity(1 << 20),
        marks: Vec::with_capacity(4096),
    };
    let mut scratch = (Enrichment::default(), Enrichment::default());
    loop {
        if shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some((b, ticket, gen)) = take(p, shared) else {
            if p.readers_left.load(Ordering::Acquire) == 0 && p.queue.is_empty() {
                return Ok(());
            }
            if primary {
                p.writer_idle.store(true, Ordering::Release);
                if p.queue.is_empty() && p.readers_left.load(Ordering::Acquire) != 0 {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
                p.writer_idle.store(false, Ordering::Release);
                // Time passes for the output too (delivery reports, gauges) when nothing
                // arrives; a writer holding the turn is busy with it anyway.
                idle_flush(p, shared)?;
            } else {
                std::thread::park_timeout(SECONDARY_IDLE);
            }
            continue;
        };
        // From here the ticket must be committed, or every later writer would wait for it
        // forever: the guard commits it (as a failure) if this thread unwinds.
        let mut guard = TicketGuard {
            shared,
            ticket,
            done: false,
        };
        staged.clear();
        let mut tally = Tally::default();
        format_batch(
            &b,
            &gen.formatter,
            &gen.chains,
            &*shared.stager,
            &mut staged,
            &mut slot.observer,
            &mut tally,
            &mut scratch,
        );
        slot.observer.publish();
        let decoded = tally.formatted + tally.output_removed() + tally.global_removed();
        ThreadStats::add(&slot.stats.decode_errors, b.frames.len() as u64 - decoded);
        for (a, n) in slot.stats.transform_filtered.iter().zip(tally.global) {
            ThreadStats::add(a, n);
        }
        ThreadStats::add(&slot.stats.transform_held, tally.global_held);
        p.pool.give(b);
        p.wake_readers_if_starved();
        let r = guard.commit(p, &staged, &tally, &slot.stats);
        if r.is_err() {
            // A parked primary should see the failure now, not after its timeout.
            if let Some(w) = p.writer.get() {
                w.unpark();
            }
            return r;
        }
    }
}

/// The primary writer found nothing to do: lets the output write out what it holds,
/// unless another writer is handing it a batch right now.
fn idle_flush<S: StagedOutput>(p: &Pipeline, shared: &Shared<S>) -> io::Result<()> {
    let Ok(mut turn) = shared.turn.try_lock() else {
        return Ok(());
    };
    if shared.failed.load(Ordering::Acquire) || !p.queue.is_empty() {
        return Ok(());
    }
    let r = turn.out.flush();
    if r.is_err() {
        shared.failed.store(true, Ordering::Release);
    }
    r
}

impl<S> Shared<S> {
    /// Blocks until `ticket` may write. A poisoned lock (a writer panicked while holding
    /// it) is taken over: the turn counter is still consistent.
    fn wait_turn(&self, ticket: u64) -> MutexGuard<'_, Turn<S>> {
        let mut turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        while turn.next != ticket {
            turn = self
                .turn_changed
                .wait(turn)
                .unwrap_or_else(|e| e.into_inner());
        }
        turn
    }
}

/// The format with the sample rate of the chains before the output (the full formats
/// show it).
fn with_rate(gen: &OrderedGen) -> Arc<OrderedGen> {
    Arc::new(OrderedGen {
        formatter: gen
            .formatter
            .clone()
            .with_sample_rate(gen.chains.sample_rate(0)),
        chains: gen.chains.clone(),
    })
}

/// The next batch in queue order, its ticket, and the configuration to write it with.
fn take<S>(p: &Pipeline, shared: &Shared<S>) -> Option<(Box<Batch>, u64, Arc<OrderedGen>)> {
    let mut t = shared.tickets.lock().unwrap_or_else(|e| e.into_inner());
    let b = p.queue.pop()?;
    // PERF: one atomic load per batch; the lock is the ticket lock already held.
    if let Some(r) = shared.reload.as_ref() {
        if r.generation() != t.generation {
            let (g, gen) = r.load();
            t.generation = g;
            t.gen = with_rate(&gen);
            crate::log_debug!(
                "writers: configuration generation {g} in force from batch {}",
                t.next
            );
        }
    }
    let ticket = t.next;
    t.next += 1;
    shared.taken.store(t.next, Ordering::Release);
    Some((b, ticket, Arc::clone(&t.gen)))
}

/// A ticket taken and not yet written.
struct TicketGuard<'s, S> {
    shared: &'s Shared<S>,
    ticket: u64,
    done: bool,
}

impl<S: StagedOutput> TicketGuard<'_, S> {
    /// Waits for this ticket's turn and hands `staged` (`tally.formatted` records) to the
    /// output, or counts the batch's records that passed the global chain as lost when the
    /// output failed earlier. The writer of the last ticket taken, finding the queue empty,
    /// then lets the output write out what it holds (as one writer does when idle).
    fn commit(
        &mut self,
        p: &Pipeline,
        staged: &Staged,
        tally: &Tally,
        stats: &ThreadStats,
    ) -> io::Result<()> {
        let shared = self.shared;
        let records = tally.formatted;
        // Passed the global chain: handed to the output stage.
        let passed = records + tally.output_removed();
        let mut turn = shared.wait_turn(self.ticket);
        let r = if shared.failed.load(Ordering::Acquire) {
            ThreadStats::add(&stats.dropped, passed);
            ThreadStats::add(&stats.dropped_writer_gone, passed);
            Ok(())
        } else {
            ThreadStats::add(&stats.written, passed);
            let out = &shared.out_stats;
            for (a, n) in out.filtered.iter().zip(tally.output) {
                ThreadStats::add(a, n);
            }
            ThreadStats::add(&out.held, tally.output_held);
            let mut r = turn.out.commit(staged, records);
            let last = shared.taken.load(Ordering::Acquire) == self.ticket + 1;
            if r.is_ok() && last && p.queue.is_empty() {
                r = turn.out.flush();
            }
            if r.is_err() {
                shared.failed.store(true, Ordering::Release);
            }
            r
        };
        self.advance(turn);
        r
    }

    fn advance(&mut self, mut turn: MutexGuard<'_, Turn<S>>) {
        turn.next += 1;
        drop(turn);
        self.done = true;
        self.shared.turn_changed.notify_all();
    }
}

impl<S> Drop for TicketGuard<'_, S> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Unwinding with a ticket: stop everyone, and pass the turn on in order.
        let shared = self.shared;
        shared.failed.store(true, Ordering::Release);
        let mut turn = shared.wait_turn(self.ticket);
        turn.next += 1;
        drop(turn);
        shared.turn_changed.notify_all();
    }
}

/// What one batch became: records formatted, and records the chains removed by reason.
/// The batch's other frames did not decode.
#[derive(Debug, Default)]
struct Tally {
    formatted: u64,
    global: ReasonCounts,
    output: ReasonCounts,
    /// Held by a stateful step (never with several writers: the configuration refuses it).
    global_held: u64,
    output_held: u64,
}

impl Tally {
    fn global_removed(&self) -> u64 {
        self.global.iter().sum::<u64>() + self.global_held
    }

    fn output_removed(&self) -> u64 {
        self.output.iter().sum::<u64>() + self.output_held
    }
}

/// Decodes every frame of `b`, runs the chains, and stages the records they keep into
/// `staged` with the output's stager (undecodable frames are logged at a bounded rate).
#[allow(clippy::too_many_arguments)]
fn format_batch<O: Observer>(
    b: &Batch,
    formatter: &Formatter,
    chains: &Chains,
    stager: &dyn Stager,
    staged: &mut Staged,
    observer: &mut O,
    tally: &mut Tally,
    scratch: &mut (Enrichment, Enrichment),
) {
    let global: &Chain = &chains.global;
    let own = chains.output(0);
    let now = Instant::now();
    let (en, en_out) = (&mut scratch.0, &mut scratch.1);
    let _ = decode_batch(b, |rec, payload| {
        observer.observe(rec, payload);
        en.reset();
        if !global.is_empty() {
            match global.apply(rec, en, now) {
                Verdict::Keep => {}
                Verdict::Drop(r) => {
                    tally.global[r.index()] += 1;
                    return Ok(());
                }
                Verdict::Held => {
                    // Stateful chains run with one writer (the configuration refuses
                    // more); counted all the same.
                    tally.global_held += 1;
                    return Ok(());
                }
            }
        }
        let mut seen = if en.is_clear() {
            None
        } else {
            Some(rec.overlaid(en))
        };
        if !own.is_empty() {
            en_out.clone_from(en);
            match own.apply(rec, en_out, now) {
                Verdict::Keep => {
                    if !en_out.is_clear() {
                        seen = Some(rec.overlaid(en_out));
                    }
                }
                Verdict::Drop(r) => {
                    tally.output[r.index()] += 1;
                    return Ok(());
                }
                Verdict::Held => {
                    tally.output_held += 1;
                    return Ok(());
                }
            }
        }
        stager.stage(formatter, seen.as_ref().unwrap_or(rec), payload, staged);
        tally.formatted += 1;
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatKind;
    use crate::pipeline::{Pool, QueuePolicy};

    /// A writer that fails once it has taken `limit` bytes.
    struct Limited {
        got: Arc<Mutex<Vec<u8>>>,
        limit: usize,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut got = self.got.lock().unwrap();
            if got.len() + buf.len() > self.limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"));
            }
            got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A dnstap payload with identity `id` (field 1) and type MESSAGE (field 15 = 1).
    fn payload(id: &str) -> Vec<u8> {
        let mut v = vec![0x0a, id.len() as u8];
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&[0x78, 0x01]);
        v
    }

    /// `batches` batches of `per` records each, queued in order, then every reader done.
    fn queued(batches: usize, per: usize) -> (Pipeline, Vec<String>) {
        let p = Pipeline::new(Pool::new(batches + 2, 4096), batches, QueuePolicy::Block, 0);
        let mut ids = Vec::new();
        for i in 0..batches {
            let mut b = p.pool.take().unwrap();
            let mut at = 0;
            for j in 0..per {
                let id = format!("b{i}r{j}");
                let pl = payload(&id);
                b.data[at..at + pl.len()].copy_from_slice(&pl);
                assert!(b.push_frame(at..at + pl.len()));
                at += pl.len();
                ids.push(id);
            }
            p.queue.push(b).unwrap();
        }
        (p, ids)
    }

    fn slots(n: usize) -> Vec<WriterSlot<()>> {
        (0..n)
            .map(|_| WriterSlot {
                stats: Arc::new(ThreadStats::default()),
                observer: (),
            })
            .collect()
    }

    #[test]
    fn four_writers_print_in_queue_order_and_count_everything() {
        let (p, ids) = queued(200, 7);
        let got = Arc::new(Mutex::new(Vec::new()));
        let out = Limited {
            got: Arc::clone(&got),
            limit: usize::MAX,
        };
        let ostats = Arc::new(OutputStats::default());
        let s = slots(4);
        let stats: Vec<_> = s.iter().map(|w| Arc::clone(&w.stats)).collect();
        let fmt = Formatter::new(FormatKind::Json);
        run_ordered_writers(&p, s, fmt, out, Arc::clone(&ostats)).unwrap();
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        let seen: Vec<&str> = text.lines().map(|l| l.split('"').nth(3).unwrap()).collect();
        assert_eq!(seen, ids.iter().map(String::as_str).collect::<Vec<_>>());
        let written: u64 = stats
            .iter()
            .map(|s| s.written.load(Ordering::Relaxed))
            .sum();
        assert_eq!(written, 1400);
        assert_eq!(ostats.delivered.load(Ordering::Relaxed), 1400);
        assert_eq!(ostats.bytes.load(Ordering::Relaxed), text.len() as u64);
        assert_eq!(p.pool.available(), p.pool.total());
    }

    #[test]
    fn chains_remove_records_and_every_removal_is_counted() {
        use crate::transform::{Chain, Chains, DropReason, Filtering, FilteringSpec, Step};
        // These records carry no dnstap Message, so no message type: a message-type list
        // removes all of them (global), an rcode keep list would (the output's).
        let only = |spec: FilteringSpec| {
            Arc::new(Chain::new(vec![Step::Filtering(Filtering::new(&spec))]))
        };
        for (global, own) in [(true, false), (false, true)] {
            let (p, _) = queued(50, 4);
            let got = Arc::new(Mutex::new(Vec::new()));
            let out = Limited {
                got: Arc::clone(&got),
                limit: usize::MAX,
            };
            let chains = Chains {
                global: if global {
                    only(FilteringSpec {
                        message_types: Some(vec![5]),
                        ..FilteringSpec::default()
                    })
                } else {
                    Arc::default()
                },
                outputs: vec![if own {
                    only(FilteringSpec {
                        keep_rcodes: Some(vec![3]),
                        ..FilteringSpec::default()
                    })
                } else {
                    Arc::default()
                }],
            };
            let ostats = Arc::new(OutputStats::default());
            let s = slots(3);
            let stats: Vec<_> = s.iter().map(|w| Arc::clone(&w.stats)).collect();
            let fmt = Formatter::new(FormatKind::Json);
            run_ordered_writers_with(&p, s, fmt, out, Arc::clone(&ostats), chains).unwrap();
            assert!(got.lock().unwrap().is_empty());
            let sum = |f: fn(&ThreadStats) -> u64| -> u64 { stats.iter().map(|s| f(s)).sum() };
            let written = sum(|s| s.written.load(Ordering::Relaxed));
            let removed = sum(|s| {
                s.transform_filtered[DropReason::MessageType.index()].load(Ordering::Relaxed)
            });
            let withheld = ostats.filtered[DropReason::Rcode.index()].load(Ordering::Relaxed);
            assert_eq!(ostats.records.load(Ordering::Relaxed), 0);
            if global {
                assert_eq!((written, removed, withheld), (0, 200, 0));
            } else {
                // Written (past the global chain), then withheld by the output's own.
                assert_eq!((written, removed, withheld), (200, 0, 200));
            }
        }
    }

    #[test]
    fn a_failed_write_stops_every_writer_and_counts_the_rest_as_dropped() {
        let (p, _) = queued(100, 5);
        let got = Arc::new(Mutex::new(Vec::new()));
        // Room for a few batches only.
        let out = Limited {
            got: Arc::clone(&got),
            limit: 2000,
        };
        let ostats = Arc::new(OutputStats::default());
        let s = slots(3);
        let stats: Vec<_> = s.iter().map(|w| Arc::clone(&w.stats)).collect();
        let fmt = Formatter::new(FormatKind::Json);
        let r = run_ordered_writers(&p, s, fmt, out, Arc::clone(&ostats));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let sum = |f: fn(&ThreadStats) -> &std::sync::atomic::AtomicU64| -> u64 {
            stats.iter().map(|s| f(s).load(Ordering::Relaxed)).sum()
        };
        let written = sum(|s| &s.written);
        let dropped = sum(|s| &s.dropped);
        // Every record is accounted for once: handed to the output, or dropped.
        assert_eq!(written + dropped, 500);
        assert_eq!(
            ostats.delivered.load(Ordering::Relaxed) + ostats.dropped.load(Ordering::Relaxed),
            written
        );
        assert_eq!(ostats.write_errors.load(Ordering::Relaxed), 1);
        assert!(p.writer_gone.load(Ordering::Relaxed));
        assert!(p.queue.is_empty());
    }
}
