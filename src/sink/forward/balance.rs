//! Which collectors may take chunks now (`loadbalance:`). Each collector has its own sender
//! thread pulling from the output's one [`ChunkBuffer`](crate::sink::buffer::ChunkBuffer):
//! with `round-robin` every connected collector pulls (so chunks go to whoever is ready,
//! and N collectors take about N times the load of one); with `failover` only the active
//! one does, and a failure hands the turn to the next. Chunks a failing collector had not
//! confirmed go back to the buffer's front (`Collector::broken`), so whichever collector
//! pulls next re-sends them. Knows nothing of sockets.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::conf::LoadBalance;

/// Shared by the sender threads of one output.
#[derive(Debug)]
pub(super) struct Balance {
    mode: LoadBalance,
    /// `failover`: the index of the collector that sends now.
    active: AtomicUsize,
    /// Per sender thread: it has ended.
    done: Vec<AtomicBool>,
    /// Per collector: not known to be down (its last connection attempt did not fail).
    healthy: Vec<AtomicBool>,
    /// Sender threads still working (neither ended nor waiting at shutdown for chunks
    /// another one may put back).
    busy: AtomicUsize,
}

impl Balance {
    /// `n >= 1` collectors; with `failover` the first active one is picked at random, so
    /// that receivers started with the same list spread over the collectors.
    pub(super) fn new(mode: LoadBalance, n: usize, threads: usize) -> Balance {
        let n = n.max(1);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(0)
            ^ std::process::id() as usize;
        Balance {
            mode,
            active: AtomicUsize::new(seed % n),
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
            healthy: (0..n).map(|_| AtomicBool::new(true)).collect(),
            busy: AtomicUsize::new(threads),
        }
    }

    /// Whether collector `i` may pull chunks now.
    pub(super) fn may_send(&self, i: usize) -> bool {
        match self.mode {
            LoadBalance::RoundRobin | LoadBalance::Hash(_) => true,
            LoadBalance::Failover => self.active.load(Ordering::Acquire) == i,
        }
    }

    /// Collector `i` failed (could not connect, or its connection broke): with `failover`
    /// the next collector in the list takes over (if `i` still had the turn).
    pub(super) fn failed(&self, i: usize) {
        if self.mode == LoadBalance::Failover {
            let next = (i + 1) % self.done.len();
            let _ = self
                .active
                .compare_exchange(i, next, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Collector `i` is up (connected) or down (failed).
    pub(super) fn set_healthy(&self, i: usize, up: bool) {
        self.healthy[i].store(up, Ordering::Relaxed);
    }

    /// Per collector: not known to be down (what `hash` picks from).
    pub(super) fn healthy(&self) -> &[AtomicBool] {
        &self.healthy
    }

    /// The first collector after `i` (in list order, wrapping) that is healthy and whose
    /// sender still runs.
    pub(super) fn next_healthy(&self, i: usize) -> Option<usize> {
        let n = self.done.len();
        (1..n).map(|d| (i + d) % n).find(|&j| {
            self.healthy[j].load(Ordering::Relaxed) && !self.done[j].load(Ordering::Acquire)
        })
    }

    /// Whether a sender that has finished waits at shutdown for chunks a failing one puts
    /// back (several senders pulling at once: not `failover`, whose standby takes over).
    pub(super) fn lingers(&self) -> bool {
        self.mode != LoadBalance::Failover && self.busy.load(Ordering::Acquire) > 1
    }

    /// A sender stops working (`true`: ends or lingers) or works again (`false`).
    pub(super) fn set_idle(&self, idle: bool) {
        if idle {
            self.busy.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.busy.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// No sender works any more: nothing can be put back into a buffer.
    pub(super) fn all_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Sender `i` has ended.
    pub(super) fn set_done(&self, i: usize) {
        self.done[i].store(true, Ordering::Release);
    }

    /// `failover`: the sender that has the turn has ended (a standby may end too).
    pub(super) fn active_done(&self) -> bool {
        let a = self.active.load(Ordering::Acquire);
        self.done[a].load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_passes_the_turn_round_the_ring_and_round_robin_lets_all_send() {
        let b = Balance::new(LoadBalance::Failover, 3, 3);
        let a = (0..3).find(|&i| b.may_send(i)).unwrap();
        assert_eq!((0..3).filter(|&i| b.may_send(i)).count(), 1);
        b.failed((a + 1) % 3); // not its turn: nothing changes
        assert!(b.may_send(a));
        b.failed(a);
        assert!(b.may_send((a + 1) % 3));
        let r = Balance::new(LoadBalance::RoundRobin, 3, 3);
        assert!((0..3).all(|i| r.may_send(i)));
    }
}
