//! Which collectors take chunks now (`loadbalance:`), shared by the sender threads of one
//! output. Knows nothing of sockets.
//!
//! * `failover`: only the active collector's senders take chunks from the output's one
//!   [`ChunkBuffer`]; a failure hands the turn to the next collector in the list. The
//!   collector picked at start (at random) is the *home* one: while another one has the
//!   turn, the home collector's sender keeps trying to connect (with its backoff) and takes
//!   the turn back once it can, so a collector restarted after a failure carries the load
//!   again; the one that stood in closes once what it wrote is acknowledged.
//! * `round-robin`: strict rotation of chunks over the senders of the healthy collectors.
//!   A turn passes from sender to sender (in list order): only the sender whose turn it is
//!   pops the next chunk from the shared buffer, then passes the turn on, so with equally
//!   able collectors each takes the same share whatever the threads' scheduling (pulling
//!   "whoever is ready" gave one collector 0.40 of four under CPU contention). The rotation
//!   skips a collector that is down, a sender that has ended, and a sender that has *stalled*:
//!   it has not come back for a chunk within [`STALL`] of leaving with its last one (a
//!   collector that stopped reading, a write blocked) while the others wait. A stalled sender
//!   rejoins the rotation as soon as it asks for a chunk again. Shutdown (the producer has
//!   closed the buffer) ends the rotation: every sender pops what is left.
//! * `hash`: every sender has its collector's own buffer; the turn does not apply.
//!
//! Chunks a failing collector had not confirmed go back to the buffer's front
//! (`Collector::broken`), so whichever sender pops next re-sends them.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::conf::LoadBalance;
use crate::sink::buffer::{ChunkBuffer, Popped};

/// `round-robin`: how long the others wait for the sender whose turn it is before the
/// rotation skips it (it is busy with its previous chunk: a full socket, a slow collector).
/// Long against a thread's scheduling delay on a loaded machine, short against an outage.
pub(super) const STALL: Duration = Duration::from_millis(300);

/// The longest a sender waiting for its turn sleeps before it looks again (for a stall).
const TURN_POLL: Duration = Duration::from_millis(20);

/// Shared by the sender threads of one output.
#[derive(Debug)]
pub(super) struct Balance {
    mode: LoadBalance,
    /// `failover`: the index of the collector that sends now.
    active: AtomicUsize,
    /// `failover`: the collector picked at start, which takes the turn back once it is up.
    home: usize,
    /// Per collector: a sender of it has ended.
    done: Vec<AtomicBool>,
    /// Per collector: not known to be down (its last connection attempt did not fail).
    healthy: Vec<AtomicBool>,
    /// Sender threads still working (neither ended nor waiting at shutdown for chunks
    /// another one may put back).
    busy: AtomicUsize,
    /// `round-robin` with more than one sender: the turn.
    rotation: Option<Rotation>,
}

/// `round-robin`'s turn, over sender slots (`collector * per_host + connection`).
#[derive(Debug)]
struct Rotation {
    per_host: usize,
    /// The slot whose turn it is.
    turn: Mutex<usize>,
    /// Signalled when the turn moves.
    turned: Condvar,
    /// Per slot: the sender is asking for a chunk (waiting for its turn or popping).
    at_gate: Vec<AtomicBool>,
    /// Per slot: when it last left the gate, in nanoseconds since `epoch`.
    left_gate: Vec<AtomicU64>,
    /// Per slot: skipped for a stall until it comes back to the gate.
    stalled: Vec<AtomicBool>,
    /// Per slot: the sender thread has ended.
    ended: Vec<AtomicBool>,
    epoch: Instant,
}

impl Rotation {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Slot `s` is away from the gate since longer than [`STALL`].
    fn stalled_now(&self, s: usize, now: Instant) -> bool {
        !self.at_gate[s].load(Ordering::Acquire)
            && self
                .nanos(now)
                .saturating_sub(self.left_gate[s].load(Ordering::Acquire))
                >= STALL.as_nanos() as u64
    }
}

impl Balance {
    /// `n >= 1` collectors with `per_host` connections (sender threads) each; with
    /// `failover` the home collector is picked at random, so that receivers started with
    /// the same list spread over the collectors.
    pub(super) fn new(mode: LoadBalance, n: usize, per_host: usize) -> Balance {
        let n = n.max(1);
        let per_host = per_host.max(1);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(0)
            ^ std::process::id() as usize;
        let slots = n * per_host;
        let rotation = (mode == LoadBalance::RoundRobin && slots > 1).then(|| Rotation {
            per_host,
            turn: Mutex::new(0),
            turned: Condvar::new(),
            at_gate: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            left_gate: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            stalled: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            ended: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            epoch: Instant::now(),
        });
        Balance {
            mode,
            active: AtomicUsize::new(seed % n),
            home: seed % n,
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
            healthy: (0..n).map(|_| AtomicBool::new(true)).collect(),
            busy: AtomicUsize::new(slots),
            rotation,
        }
    }

    /// Whether collector `i` may take chunks now.
    pub(super) fn may_send(&self, i: usize) -> bool {
        match self.mode {
            LoadBalance::RoundRobin | LoadBalance::Hash(_) => true,
            LoadBalance::Failover => self.active.load(Ordering::Acquire) == i,
        }
    }

    /// `failover`: collector `i` is the home one and another one has the turn: its sender
    /// keeps trying to connect, to take the turn back.
    pub(super) fn wants_home(&self, i: usize) -> bool {
        self.mode == LoadBalance::Failover
            && i == self.home
            && self.active.load(Ordering::Acquire) != i
    }

    /// `failover`: the home collector `i` is up again and takes the turn back.
    pub(super) fn back_home(&self, i: usize) {
        if self.mode == LoadBalance::Failover && i == self.home {
            self.active.store(i, Ordering::Release);
        }
    }

    /// Collector `i` failed (could not connect, or its connection broke): with `failover`
    /// the next collector in the list takes over (if `i` still had the turn); with
    /// `round-robin` the turn passes on if one of its senders had it.
    pub(super) fn failed(&self, i: usize) {
        match self.mode {
            LoadBalance::Failover => {
                let next = (i + 1) % self.done.len();
                let _ = self
                    .active
                    .compare_exchange(i, next, Ordering::AcqRel, Ordering::Acquire);
            }
            LoadBalance::RoundRobin => {
                if let Some(r) = &self.rotation {
                    let t = *r.lock();
                    if t / r.per_host == i {
                        self.pass_turn(t);
                    }
                }
            }
            LoadBalance::Hash(_) => {}
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

    /// The collectors other than `i` that are healthy and whose senders still run, in list
    /// order starting after `i`.
    pub(super) fn others_healthy(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.done.len();
        (1..n).map(move |d| (i + d) % n).filter(|&j| {
            self.healthy[j].load(Ordering::Relaxed) && !self.done[j].load(Ordering::Acquire)
        })
    }

    /// The next chunk for the sender in `slot` (waiting up to `wait`): with `round-robin`
    /// once its turn has come (see the module doc), otherwise at once.
    pub(super) fn take(&self, slot: usize, buffer: &ChunkBuffer, wait: Duration) -> Popped {
        let Some(r) = &self.rotation else {
            return buffer.pop(wait);
        };
        r.at_gate[slot].store(true, Ordering::Release);
        r.stalled[slot].store(false, Ordering::Release);
        let until = Instant::now() + wait;
        let got = loop {
            let now = Instant::now();
            let left = until.saturating_duration_since(now);
            if buffer.is_closed() {
                // Shutdown: no more rotation, every sender drains what is left.
                break buffer.pop(left);
            }
            let mut turn = r.lock();
            let t = *turn;
            if t == slot {
                drop(turn);
                break buffer.pop(left);
            }
            if !self.live(r, t) || r.stalled_now(t, now) {
                if r.stalled_now(t, now) {
                    r.stalled[t].store(true, Ordering::Release);
                }
                *turn = slot;
                continue;
            }
            if left.is_zero() {
                break Popped::Empty;
            }
            drop(
                r.turned
                    .wait_timeout(turn, left.min(TURN_POLL))
                    .unwrap_or_else(|p| p.into_inner()),
            );
        };
        if matches!(got, Popped::Chunk(_)) && !buffer.is_closed() {
            let holder = *r.lock();
            if holder == slot {
                self.pass_turn(slot);
            }
        }
        r.left_gate[slot].store(r.nanos(Instant::now()), Ordering::Release);
        r.at_gate[slot].store(false, Ordering::Release);
        got
    }

    /// Slot `s` can take its turn: its collector is healthy, its sender runs and has not
    /// stalled.
    fn live(&self, r: &Rotation, s: usize) -> bool {
        self.healthy[s / r.per_host].load(Ordering::Relaxed)
            && !r.ended[s].load(Ordering::Acquire)
            && (!r.stalled[s].load(Ordering::Acquire) || r.at_gate[s].load(Ordering::Acquire))
    }

    /// The turn moves from `from` to the next live slot in list order (back to `from` when
    /// no other is live).
    fn pass_turn(&self, from: usize) {
        let Some(r) = &self.rotation else {
            return;
        };
        let n = r.at_gate.len();
        let next = (1..n)
            .map(|d| (from + d) % n)
            .find(|&s| self.live(r, s))
            .unwrap_or(from);
        let mut turn = r.lock();
        if *turn == from {
            *turn = next;
        }
        drop(turn);
        r.turned.notify_all();
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

    /// The sender of collector `i` in `slot` has ended.
    pub(super) fn set_done(&self, i: usize, slot: usize) {
        self.done[i].store(true, Ordering::Release);
        if let Some(r) = &self.rotation {
            r.ended[slot].store(true, Ordering::Release);
            if *r.lock() == slot {
                self.pass_turn(slot);
            }
        }
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
    use crate::sink::buffer::{BufferSpec, Chunk, OverflowPolicy};
    use crate::stats::OutputStats;
    use std::sync::Arc;

    #[test]
    fn failover_passes_the_turn_round_the_ring_and_goes_back_home() {
        let b = Balance::new(LoadBalance::Failover, 3, 1);
        let a = (0..3).find(|&i| b.may_send(i)).unwrap();
        assert_eq!((0..3).filter(|&i| b.may_send(i)).count(), 1);
        assert!(!b.wants_home(a));
        b.failed((a + 1) % 3); // not its turn: nothing changes
        assert!(b.may_send(a));
        b.failed(a);
        assert!(b.may_send((a + 1) % 3));
        assert!(b.wants_home(a));
        b.back_home((a + 1) % 3); // not the home one: nothing changes
        assert!(b.may_send((a + 1) % 3));
        b.back_home(a);
        assert!(b.may_send(a) && !b.wants_home(a));
        let r = Balance::new(LoadBalance::RoundRobin, 3, 1);
        assert!((0..3).all(|i| r.may_send(i)));
    }

    fn buffer() -> ChunkBuffer {
        let spec = BufferSpec {
            max_bytes: 1 << 20,
            policy: OverflowPolicy::Block,
            spill: None,
        };
        ChunkBuffer::new("t", &spec, Arc::new(OutputStats::default()))
            .unwrap()
            .0
    }

    fn push(b: &ChunkBuffer, k: u32) {
        b.push(Chunk {
            data: vec![b'x'; 8],
            records: k,
            resend: false,
        });
    }

    fn records(p: Popped) -> Option<u32> {
        match p {
            Popped::Chunk(c) => Some(c.records),
            _ => None,
        }
    }

    #[test]
    fn round_robin_hands_chunks_out_in_strict_rotation_skipping_a_down_collector() {
        let b = Balance::new(LoadBalance::RoundRobin, 3, 1);
        let buf = buffer();
        for k in 1..=7 {
            push(&buf, k);
        }
        let z = Duration::ZERO;
        assert_eq!(records(b.take(0, &buf, z)), Some(1));
        // Slot 1's turn (it is live, not stalled): nothing for slot 2.
        assert!(records(b.take(2, &buf, z)).is_none());
        assert_eq!(records(b.take(1, &buf, z)), Some(2));
        assert_eq!(records(b.take(2, &buf, z)), Some(3));
        assert_eq!(records(b.take(0, &buf, z)), Some(4));
        // Collector 1 goes down: the rotation skips it.
        b.set_healthy(1, false);
        b.failed(1);
        assert!(records(b.take(1, &buf, z)).is_none());
        assert_eq!(records(b.take(2, &buf, z)), Some(5));
        assert_eq!(records(b.take(0, &buf, z)), Some(6));
        // Slot 2 stalls (away longer than STALL): slot 0 takes its turn.
        std::thread::sleep(STALL + Duration::from_millis(50));
        assert_eq!(records(b.take(0, &buf, z)), Some(7));
    }
}
