//! How a reload reaches running threads: a new value published behind a generation number.
//! A thread keeps what it uses (an `Arc`, or values it owns), and between two units of work
//! (a receive, a batch) compares one atomic number with the generation it runs; only when
//! they differ does it take a lock to pick the new value up. Nothing here runs per message.
//!
//! ```text
//!  main (SIGHUP) ── Settings::build ok ──► Published::publish(v)   generation g → g+1
//!                                          Handoff::offer(v)
//!  reader, between receives: generation() != mine? ── load() ── new filter, TLS, allow-from
//!  writer, between batches:  generation() != mine? ── take() ── new chains and outputs
//! ```
//!
//! [`Published`] shares one value with many threads (readers); [`Handoff`] moves one value
//! to one thread (the writer takes the new outputs it then owns). Knows nothing of what the
//! values are.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A value shared with many threads, replaced as a whole by [`Published::publish`].
#[derive(Debug)]
pub struct Published<T> {
    generation: AtomicU64,
    current: Mutex<(u64, Arc<T>)>,
}

impl<T> Published<T> {
    /// `value` as generation `generation` (the one the threads start with).
    pub fn new(generation: u64, value: Arc<T>) -> Published<T> {
        Published {
            generation: AtomicU64::new(generation),
            current: Mutex::new((generation, value)),
        }
    }

    /// The generation in force: one atomic load, for the check between units of work.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The value in force and its generation.
    pub fn load(&self) -> (u64, Arc<T>) {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (cur.0, Arc::clone(&cur.1))
    }

    /// Replaces the value: threads pick it up at their next check.
    pub fn publish(&self, generation: u64, value: Arc<T>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = (generation, value);
        self.generation.store(generation, Ordering::Release);
    }
}

/// A value moved to one thread: offered by the reloading thread, taken by the thread that
/// runs it. At most one offer is pending.
#[derive(Debug)]
pub struct Handoff<T> {
    /// The generation of the last offer.
    offered: AtomicU64,
    /// The generation the taking thread runs (what it took last).
    taken: AtomicU64,
    pending: Mutex<Option<(u64, T)>>,
}

impl<T> Handoff<T> {
    /// Nothing pending; the taker runs `generation`.
    pub fn new(generation: u64) -> Handoff<T> {
        Handoff {
            offered: AtomicU64::new(generation),
            taken: AtomicU64::new(generation),
            pending: Mutex::new(None),
        }
    }

    /// Offers `value` as `generation`; gives it back when an earlier offer is still
    /// pending (the taker has not reached a point where it looks).
    pub fn offer(&self, generation: u64, value: T) -> Result<(), T> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_some() {
            return Err(value);
        }
        *p = Some((generation, value));
        self.offered.store(generation, Ordering::Release);
        Ok(())
    }

    /// Whether an offer waits: one atomic load, for the check between units of work.
    #[inline]
    pub fn is_pending(&self) -> bool {
        self.offered.load(Ordering::Acquire) != self.taken.load(Ordering::Relaxed)
    }

    /// Takes the pending offer, if any.
    pub fn take(&self) -> Option<(u64, T)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (g, v) = p.take()?;
        self.taken.store(g, Ordering::Release);
        Some((g, v))
    }

    /// The generation the taker runs.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_value_is_seen_after_its_generation() {
        let p = Published::new(0, Arc::new("a"));
        assert_eq!(p.generation(), 0);
        p.publish(1, Arc::new("b"));
        assert_eq!(p.generation(), 1);
        assert_eq!(*p.load().1, "b");
    }

    #[test]
    fn one_offer_at_a_time_and_taking_marks_it_run() {
        let h = Handoff::new(0);
        assert!(!h.is_pending());
        assert!(h.offer(1, "x").is_ok());
        assert!(h.is_pending());
        assert_eq!(h.offer(2, "y"), Err("y"));
        assert_eq!(h.take(), Some((1, "x")));
        assert!(!h.is_pending());
        assert_eq!(h.taken(), 1);
        assert_eq!(h.take(), None);
        assert!(h.offer(2, "y").is_ok());
    }
}
