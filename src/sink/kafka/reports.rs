//! The librdkafka callbacks of the Kafka output ([`Reports`], the producer's context):
//! delivery reports counted into [`OutputStats`] (a record is `delivered` only when the
//! broker acknowledged it), global errors and log lines sent to our log, and the records
//! to be re-sent kept aside. Runs on the thread that polls the producer (the writer).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

use crate::sink::kafka::Chunk;
use crate::stats::OutputStats;

/// What the delivery reports of one producer found. One per producer; `rescued` is shared
/// by every producer of one output (a re-created producer keeps collecting into it).
pub struct Reports {
    pub stats: Arc<OutputStats>,
    /// Events handled (reports, errors, logs), so the poll loop knows when the queue is dry.
    pub events: AtomicU64,
    /// Failed deliveries since the last log line, and the last reason.
    pub failed: AtomicU64,
    pub last_failure: Mutex<String>,
    /// A transport error was seen and no delivery succeeded since.
    down: AtomicBool,
    /// librdkafka raised a fatal error: this producer must be replaced.
    pub fatal: AtomicBool,
    /// Purged records go to `rescued` instead of being counted as dropped (set while the
    /// producer is replaced, and at shutdown with a spill).
    pub rescue: AtomicBool,
    /// Records to send again, in the order their reports came (per partition, so per key,
    /// the order they were sent in).
    pub rescued: Arc<Mutex<Chunk>>,
    /// The last error line and when, to fold the duplicate the crate's poll loop delivers.
    last_error: Mutex<(String, Option<Instant>)>,
    /// Keeps a broker outage from filling the log with the same line.
    repeats: Mutex<RepeatFilter>,
}

impl Reports {
    pub fn new(stats: Arc<OutputStats>, rescued: Arc<Mutex<Chunk>>) -> Reports {
        Reports {
            stats,
            events: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_failure: Mutex::new(String::new()),
            down: AtomicBool::new(false),
            fatal: AtomicBool::new(false),
            rescue: AtomicBool::new(false),
            rescued,
            last_error: Mutex::new((String::new(), None)),
            repeats: Mutex::new(RepeatFilter::default()),
        }
    }

    fn note_failure(&self, e: &KafkaError) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_failure.lock() {
            *last = e.to_string();
        }
    }
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        // Every problem worth a warning also comes as an error event (below); the log
        // lines are the details, for -v.
        let _ = level;
        crate::log_debug!("kafka: librdkafka {fac}: {msg}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        // The crate hands each error event to this callback twice (once while polling the
        // queue, once in the producer's own dispatch): fold the copy.
        if let Ok(mut last) = self.last_error.lock() {
            let dup = last.0 == reason
                && last
                    .1
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(50));
            *last = (reason.to_string(), Some(Instant::now()));
            if dup {
                return;
            }
        }
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure) => {
                self.down.store(true, Ordering::Relaxed);
            }
            Some(RDKafkaErrorCode::Fatal) => self.fatal.store(true, Ordering::Relaxed),
            _ => {}
        }
        // librdkafka folds some repeats itself ("N identical error(s) suppressed"), but
        // with brokers down it still raised "N/N brokers are down" several times a second.
        let verdict = match self.repeats.lock() {
            Ok(mut f) => f.admit(reason, Instant::now()),
            Err(_) => Repeat::Log { earlier: 0 },
        };
        match verdict {
            Repeat::Log { earlier: 0 } => crate::log_warn!("kafka: {reason}"),
            Repeat::Log { earlier } => crate::log_warn!(
                "kafka: {reason} (and {earlier} more error line(s) not logged since the last)"
            ),
            Repeat::Skip => {}
        }
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.events.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(m) => {
                let n = m.payload_len() + m.key().map_or(0, <[u8]>::len);
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                if self.down.swap(false, Ordering::Relaxed) {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    crate::log_warn!("kafka: brokers acknowledge again");
                }
            }
            Err((e, m)) => {
                let code = e.rdkafka_error_code();
                // A fatal producer fails what it holds: those records are sent again by its
                // replacement. Purged ones are kept when asked.
                let keep = code == Some(RDKafkaErrorCode::Fatal)
                    || (self.rescue.load(Ordering::Relaxed)
                        && matches!(
                            code,
                            Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                        ));
                if keep {
                    if let Ok(mut c) = self.rescued.lock() {
                        c.push(m.key(), m.payload().unwrap_or(&[]));
                        return;
                    }
                }
                self.note_failure(e);
            }
        }
    }
}

/// The same error line is logged at most once per this interval.
const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Decides which error lines reach the log: a line unlike the last one logged goes out at
/// once; the same line again only after [`REPEAT_EVERY`], saying how many were left out.
#[derive(Debug, Default)]
struct RepeatFilter {
    last: String,
    at: Option<Instant>,
    skipped: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Repeat {
    /// Log it; `earlier` lines were left out since the last one logged.
    Log {
        earlier: u64,
    },
    Skip,
}

impl RepeatFilter {
    fn admit(&mut self, line: &str, now: Instant) -> Repeat {
        let recent = self
            .at
            .is_some_and(|t| now.saturating_duration_since(t) < REPEAT_EVERY);
        if recent && self.last == line {
            self.skipped += 1;
            return Repeat::Skip;
        }
        let earlier = std::mem::take(&mut self.skipped);
        self.last.clear();
        self.last.push_str(line);
        self.at = Some(now);
        Repeat::Log { earlier }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_line_is_logged_once_per_interval_and_new_lines_at_once() {
        let mut f = RepeatFilter::default();
        let t0 = Instant::now();
        let down = "1/1 brokers are down";
        assert_eq!(f.admit(down, t0), Repeat::Log { earlier: 0 });
        for i in 1..=20 {
            let t = t0 + Duration::from_millis(100 * i);
            assert_eq!(f.admit(down, t), Repeat::Skip);
        }
        // Another error goes out at once, saying what was left out.
        let other = "ssl handshake failed";
        let t = t0 + Duration::from_secs(3);
        assert_eq!(f.admit(other, t), Repeat::Log { earlier: 20 });
        assert_eq!(f.admit(other, t + Duration::from_secs(1)), Repeat::Skip);
        // The same line again once the interval has passed.
        let later = t + REPEAT_EVERY;
        assert_eq!(f.admit(other, later), Repeat::Log { earlier: 1 });
    }
}
