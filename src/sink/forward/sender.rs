//! One sender thread of the forward output (one per collector connection): takes chunks
//! from the [`ChunkBuffer`] when the [`Balance`] gives it the turn and hands them to its
//! collector connection, keeps it polled and acknowledged while idle, reports failures to the
//! balance, and ends the thread when shutdown is over (everything acknowledged, or the
//! shutdown deadline passed), handing what is still held back to the buffer (spilled or
//! counted dropped). Knows nothing of sockets or TLS: that is [`Collector`]'s.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::balance::Balance;
use super::collector::{Collector, Step};
use crate::sink::buffer::{Chunk, ChunkBuffer, Popped};
use crate::{log_debug, log_warn};

/// The sender thread's state: the buffer it drains (shared with the output's other
/// collectors' threads), the collector it writes to and its turn in the [`Balance`].
pub(super) struct Sender {
    name: String,
    buffer: Arc<ChunkBuffer>,
    collector: Collector,
    /// The collector's index in the output's list.
    index: usize,
    /// This sender's place in the `round-robin` rotation (`index * connections-per-host +
    /// connection`).
    slot: usize,
    balance: Arc<Balance>,
    /// `hash`: every collector's buffer, so that a failing collector hands its chunks to
    /// the healthy ones. `None` otherwise (the buffer is shared).
    handoff: Option<Arc<Vec<Arc<ChunkBuffer>>>>,
    /// Counted idle in the balance (lingering at shutdown).
    idle: bool,
}

impl Sender {
    pub(super) fn new(
        name: String,
        buffer: Arc<ChunkBuffer>,
        collector: Collector,
        (index, slot): (usize, usize),
        balance: Arc<Balance>,
        handoff: Option<Arc<Vec<Arc<ChunkBuffer>>>>,
    ) -> Sender {
        Sender {
            name,
            buffer,
            collector,
            index,
            slot,
            balance,
            handoff,
            idle: false,
        }
    }

    /// The collector is up.
    fn up(&self) {
        self.balance.set_healthy(self.index, true);
    }

    /// The collector failed: with `failover` the turn passes on; with `hash` what waits
    /// in its buffer (the unconfirmed chunks first) is dealt out, chunk by chunk in turn, to
    /// the healthy collectors. (The records in those chunks were formatted for this
    /// collector and their keys are not known any more, so they are spread rather than
    /// re-hashed; every record formatted from now on goes to its key's next choice.)
    fn down(&self) {
        self.balance.set_healthy(self.index, false);
        self.balance.failed(self.index);
        let Some(all) = &self.handoff else {
            return;
        };
        let targets: Vec<usize> = self.balance.others_healthy(self.index).collect();
        if targets.is_empty() {
            return;
        }
        let mut shares: Vec<Vec<Chunk>> = targets.iter().map(|_| Vec::new()).collect();
        let mut k = 0;
        while let Popped::Chunk(c) = self.buffer.pop(Duration::ZERO) {
            shares[k % targets.len()].push(c);
            k += 1;
        }
        for (&t, share) in targets.iter().zip(shares) {
            if !share.is_empty() {
                all[t].requeue_front(share.into_iter());
            }
        }
    }

    pub(super) fn run(&mut self) {
        self.send();
        self.balance.set_done(self.index, self.slot);
        if !self.idle {
            self.balance.set_idle(true);
        }
    }

    /// Shutdown, this sender done: with several senders pulling, wait while another one
    /// still works, in case its collector fails and puts chunks back (true: chunks came
    /// back, send them). Bounded by the shutdown deadline.
    fn linger(&mut self) -> bool {
        if !self.balance.lingers() {
            return false;
        }
        self.balance.set_idle(true);
        self.idle = true;
        loop {
            let all_idle = self.balance.all_idle();
            if self.buffer.queued().0 > 0 {
                self.balance.set_idle(false);
                self.idle = false;
                return true;
            }
            if all_idle || self.past_deadline() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self) {
        loop {
            if !self.collector.is_connected() && !self.balance.may_send(self.index) {
                if self.balance.wants_home(self.index) && !self.buffer_closed() {
                    // Failover, the home collector while another one stands in: try it
                    // again (with the backoff) and take the turn back once it answers.
                    if self.collector.connect() {
                        self.up();
                        self.balance.back_home(self.index);
                        log_debug!("output {}: takes the turn back", self.name);
                    } else {
                        self.balance.set_healthy(self.index, false);
                    }
                    continue;
                }
                // Failover standby: wait for the turn; end once the active sender has
                // ended after the producer closed (nothing is left for us).
                if self.buffer_closed() && (self.balance.active_done() || self.past_deadline()) {
                    self.collector.disconnect();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if self.past_deadline() && self.buffer_closed() {
                // Shutdown time is up: what is still held goes to the spill queue's front
                // (or is counted dropped) in `finish`, connected or not.
                break;
            }
            if self.collector.is_connected() && !self.balance.may_send(self.index) {
                // Failover: the home collector took the turn back. Close once what this
                // connection carried is acknowledged (bounded; else try again), then stand
                // by; a later turn connects at once.
                let limit = Instant::now() + Duration::from_secs(5);
                if self.collector.drain_and_close_by(Some(limit)) {
                    log_debug!("output {}: hands the turn back", self.name);
                    self.collector.renew();
                } else if !self.collector.is_connected() {
                    self.down();
                }
                continue;
            }
            if self.past_deadline() && !self.collector.is_connected() {
                // Shutdown time is up and the collector is away: stop trying. Wait for the
                // producer to close (its pushes now drop or spill) and hand back the rest.
                if self.buffer_closed() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if !self.collector.is_connected() {
                if self.buffer_closed() && self.nothing_in_memory() {
                    break;
                }
                if !self.collector.connect() {
                    self.down();
                    continue;
                }
                self.up();
            }
            let chunk = match self
                .balance
                .take(self.slot, &self.buffer, Duration::from_millis(100))
            {
                Popped::Chunk(c) => Some(c),
                Popped::Empty => None,
                Popped::Finished => {
                    if self.collector.drain_and_close() {
                        if self.linger() {
                            // Chunks came back: connect again (at once) and send them.
                            self.collector.renew();
                            continue;
                        }
                        self.balance.set_done(self.index, self.slot);
                        return self.finish(Vec::new());
                    }
                    if !self.collector.is_connected() {
                        self.down();
                    }
                    continue;
                }
            };
            let step = match chunk {
                Some(c) => self.collector.write_chunk(c),
                None => self.collector.poll_peer(),
            };
            let step = match step {
                Step::Ok => self.collector.update_acks(),
                b => b,
            };
            if let Step::Broken(e) = step {
                self.collector.broken(&e);
                self.down();
            } else if self.collector.expired() {
                // `ttl`: close once everything written is acknowledged (bounded), open again.
                let limit = Instant::now() + Duration::from_secs(5);
                if self.collector.drain_and_close_by(Some(limit)) {
                    log_debug!("output {}: connection closed after its ttl", self.name);
                    self.collector.renew();
                } else if !self.collector.is_connected() {
                    self.down();
                }
            }
        }
        let leftovers = self.collector.take_sent();
        self.finish(leftovers);
    }

    fn finish(&mut self, leftovers: Vec<Chunk>) {
        let (kept, lost) = self.buffer.finish_consumer(leftovers);
        if kept > 0 {
            log_warn!(
                "output {}: {kept} records kept in the spill directory for the next run",
                self.name
            );
        }
        if lost > 0 {
            log_warn!(
                "output {}: {lost} records not delivered at shutdown (counted as dropped)",
                self.name
            );
        }
        self.collector.disconnect();
    }

    fn buffer_closed(&self) -> bool {
        self.buffer.is_closed()
    }

    /// Nothing held in memory (by us or the buffer). Records on disk do not count: at
    /// shutdown without a connection they stay in the spill queue for the next run.
    fn nothing_in_memory(&self) -> bool {
        self.collector.nothing_in_memory()
    }

    fn past_deadline(&self) -> bool {
        self.buffer.deadline().is_some_and(|d| Instant::now() >= d)
    }
}
