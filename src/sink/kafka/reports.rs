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
        // librdkafka folds repeated identical errors itself ("N identical error(s)
        // suppressed"), so each event is worth a line.
        crate::log_warn!("kafka: {reason}");
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
