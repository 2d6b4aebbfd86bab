//! The forward output's sender thread: pops chunks from the [`ChunkBuffer`] and hands them to
//! the collector connection, keeps it polled and acknowledged while idle, and ends the thread
//! when shutdown is over (everything acknowledged, or the shutdown deadline passed), handing
//! what is still held back to the buffer (spilled or counted dropped). Knows nothing of
//! sockets or TLS: that is [`Collector`]'s. A load balancer over several collectors would
//! take the collector's place here.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::collector::{Collector, Step};
use crate::log_warn;
use crate::sink::buffer::{Chunk, ChunkBuffer, Popped};

/// The sender thread's state: the buffer it drains and the collector it writes to.
pub(super) struct Sender {
    name: String,
    buffer: Arc<ChunkBuffer>,
    collector: Collector,
}

impl Sender {
    pub(super) fn new(name: String, buffer: Arc<ChunkBuffer>, collector: Collector) -> Sender {
        Sender {
            name,
            buffer,
            collector,
        }
    }

    pub(super) fn run(&mut self) {
        loop {
            if self.past_deadline() && self.buffer_closed() {
                // Shutdown time is up: what is still held goes to the spill queue's front
                // (or is counted dropped) in `finish`, connected or not.
                break;
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
                    continue;
                }
            }
            let chunk = match self.buffer.pop(Duration::from_millis(100)) {
                Popped::Chunk(c) => Some(c),
                Popped::Empty => None,
                Popped::Finished => {
                    if self.collector.drain_and_close() {
                        return self.finish(Vec::new());
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
