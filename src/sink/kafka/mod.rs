//! The Kafka output: each record becomes one Kafka record (key chosen for partition
//! locality, value the JSON line or the raw dnstap protobuf), produced through librdkafka
//! (the `rdkafka` crate's bundled build). A record counts as delivered only when the broker
//! acknowledged it (`acks=all` by default, idempotent): the count is made in librdkafka's
//! delivery report, not at `send`. Knows records, formats and Kafka; nothing of the inputs
//! or the queue.
//!
//! ```text
//!  writer thread                        librdkafka threads            broker
//!  record() ─ key, value ─► send ──► [bounded queue] ── batches ──► produce (acks=all)
//!     │            QueueFull │        ◄── delivery reports ◄──────── acknowledged
//!     │   block: poll, retry │          (served by poll() on the writer thread:
//!     │   drop:  count       │           delivered / dropped counted there)
//!     │   spill: ─► spill file queue ── replayed in order when there is room
//! ```
//!
//! Memory is bounded by librdkafka's queue (`queue-messages`, `queue-kbytes`): with `block`
//! and `spill` a record is never given up on time alone (`message.timeout.ms=0`), so a
//! broker outage fills that queue and the overflow policy takes over. Delivery reports are
//! served on the writer thread (`BaseProducer::poll`), so no lock is shared with a callback
//! thread and the spill is only ever touched by one thread.
#![forbid(unsafe_code)]

pub mod spec;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::ClientContext;

use crate::format::{escape, FormatKind, Formatter};
use crate::record::Record;
use crate::sink::buffer::OverflowPolicy;
use crate::sink::Output;
use crate::stats::OutputStats;

pub use spec::{KafkaSettings, KafkaSpec, KeyKind, ValueKind};

/// Serve delivery reports after this many records (they free librdkafka's queue).
const POLL_EVERY: u32 = 256;
/// How long `block` waits for room between two tries.
const BLOCK_WAIT: Duration = Duration::from_millis(5);
/// Failed deliveries are summed into one log line at most this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// librdkafka's version string (`2.12.1`), for the start-up log and the docs.
pub fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

/// One line for the `-v` start-up log: the choices and every librdkafka property
/// (secrets hidden).
pub fn describe(k: &KafkaSettings) -> String {
    let props: Vec<String> = k
        .public_properties()
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    format!(
        "{} (librdkafka {}, key {:?}, value {:?}, overflow {}{}; {})",
        k.name,
        librdkafka_version(),
        k.key,
        k.value,
        k.overflow.name(),
        match &k.spill {
            Some(s) => format!(
                ", spill {} up to {} MiB",
                s.dir.display(),
                s.max_bytes >> 20
            ),
            None => String::new(),
        },
        props.join(" ")
    )
}

/// The delivery-report side: counts what the broker acknowledged or refused. Runs on the
/// thread that polls the producer (the writer thread).
struct Reports {
    stats: Arc<OutputStats>,
    /// Events handled (reports, errors, logs), so the poll loop knows when the queue is dry.
    events: AtomicU64,
    /// Failed deliveries since the last log line, and the last reason.
    failed: AtomicU64,
    last_failure: Mutex<String>,
    /// A transport error was seen and no delivery succeeded since.
    down: AtomicBool,
    /// Shutdown with a spill: purged records are kept here (spill chunk framing) instead of
    /// being counted as dropped.
    rescue: AtomicBool,
    rescued: Mutex<Chunk>,
}

/// Records framed for the spill queue, in order.
///
/// ```text
///  record = | key_len u32 LE (u32::MAX: no key) | value_len u32 LE | key | value |
/// ```
#[derive(Debug, Default)]
pub struct Chunk {
    pub data: Vec<u8>,
    pub records: u32,
}

/// No key, in [`Chunk`] framing.
const NO_KEY: u32 = u32::MAX;

impl Chunk {
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8]) {
        let klen = key.map_or(NO_KEY, |k| k.len() as u32);
        self.data.extend_from_slice(&klen.to_le_bytes());
        self.data
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        if let Some(k) = key {
            self.data.extend_from_slice(k);
        }
        self.data.extend_from_slice(value);
        self.records += 1;
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.records = 0;
    }
}

/// A Kafka record's key (if any) and value.
pub type KeyValue<'a> = (Option<&'a [u8]>, &'a [u8]);

/// One record of a chunk starting at `pos`: its key and value, and where the next record
/// starts; `None` when the bytes there do not hold a whole record (end of chunk, or a
/// damaged one).
pub fn chunk_record(data: &[u8], pos: usize) -> Option<(KeyValue<'_>, usize)> {
    let head = data.get(pos..pos.checked_add(8)?)?;
    let klen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let vlen = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut at = pos + 8;
    let key = if klen == NO_KEY {
        None
    } else {
        let end = at.checked_add(klen as usize)?;
        let k = data.get(at..end)?;
        at = end;
        Some(k)
    };
    let end = at.checked_add(vlen)?;
    let value = data.get(at..end)?;
    Some(((key, value), end))
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => crate::log_warn!("kafka: {fac}: {msg}"),
            _ => crate::log_debug!("kafka: {fac}: {msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        ) {
            self.down.store(true, Ordering::Relaxed);
        }
        // librdkafka itself folds repeated identical errors ("N identical error(s)
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
                let purged = matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                );
                if purged && self.rescue.load(Ordering::Relaxed) {
                    if let Ok(mut c) = self.rescued.lock() {
                        c.push(m.key(), m.payload().unwrap_or(&[]));
                        return;
                    }
                }
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_failure.lock() {
                    *last = e.to_string();
                }
            }
        }
    }
}

/// How a record's value is made.
#[derive(Debug)]
enum Value {
    Format(Formatter),
    Raw,
}

/// The Kafka output of the writer thread.
pub struct KafkaOutput {
    name: String,
    topic: String,
    key: KeyKind,
    value: Value,
    overflow: OverflowPolicy,
    shutdown_timeout: Duration,
    producer: BaseProducer<Reports>,
    spill: Option<spill::KafkaSpill>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Records sent since delivery reports were last served.
    unpolled: u32,
    stats: Arc<OutputStats>,
    last_failure_log: Instant,
    /// Since when, and for how many records, the overflow policy has been acting.
    overflowing: Option<(Instant, u64)>,
}

mod spill;

/// What became of one record handed to librdkafka.
enum Sent {
    Queued,
    /// librdkafka's queue is full: the record was not taken.
    Full,
    /// Refused for good (too large, unknown partition...): counted as dropped.
    Refused,
}

impl KafkaOutput {
    /// Creates the producer (librdkafka connects in the background; an unreachable broker
    /// is not an error here) and opens the spill queue, if any.
    pub fn new(settings: &KafkaSettings, stats: Arc<OutputStats>) -> io::Result<KafkaOutput> {
        let mut cfg = ClientConfig::new();
        for (k, v) in &settings.properties {
            cfg.set(k, v);
        }
        if settings.property("sasl.mechanism") == Some("PLAIN")
            && settings.property("security.protocol") == Some("sasl_plaintext")
        {
            crate::log_warn!(
                "{}: SASL PLAIN without TLS sends the password in clear text",
                settings.name
            );
        }
        let reports = Reports {
            stats: Arc::clone(&stats),
            events: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_failure: Mutex::new(String::new()),
            down: AtomicBool::new(false),
            rescue: AtomicBool::new(false),
            rescued: Mutex::new(Chunk::default()),
        };
        let producer: BaseProducer<Reports> = cfg
            .create_with_context(reports)
            .map_err(|e| io::Error::other(format!("{}: {e}", settings.name)))?;
        let spill = match &settings.spill {
            Some(s) => {
                let sp = spill::KafkaSpill::open(s)?;
                stats.spilled.store(sp.held(), Ordering::Relaxed);
                Some(sp)
            }
            None => None,
        };
        let value = match settings.value {
            ValueKind::Json => Value::Format(Formatter::new(FormatKind::Json)),
            ValueKind::JsonFull => Value::Format(Formatter::new(FormatKind::JsonFull)),
            ValueKind::Raw => Value::Raw,
        };
        Ok(KafkaOutput {
            name: settings.name.clone(),
            topic: settings.topic.clone(),
            key: settings.key,
            value,
            overflow: settings.overflow,
            shutdown_timeout: settings.shutdown_timeout,
            producer,
            spill,
            key_buf: Vec::with_capacity(256),
            value_buf: Vec::with_capacity(4096),
            unpolled: 0,
            stats,
            last_failure_log: Instant::now(),
            overflowing: None,
        })
    }

    /// Writes the record's key into `key_buf`; false when the record has no such value
    /// (then it is produced without a key).
    fn write_key(&mut self, rec: &Record<'_>) -> bool {
        self.key_buf.clear();
        match self.key {
            KeyKind::None => false,
            KeyKind::Identity => match rec.identity {
                Some(id) if !id.is_empty() => {
                    self.key_buf.extend_from_slice(id);
                    true
                }
                _ => false,
            },
            KeyKind::ClientIp => match rec.query_address {
                Some(a) => {
                    escape::write_ip(a, true, &mut self.key_buf);
                    true
                }
                None => false,
            },
            KeyKind::Qname => match &rec.dns {
                Some(Ok(m)) => match &m.question {
                    Some(q) => {
                        q.name.write_presentation(&mut self.key_buf);
                        self.key_buf.make_ascii_lowercase();
                        true
                    }
                    None => false,
                },
                _ => false,
            },
        }
    }

    /// Serves the pending delivery reports (counting them), without waiting.
    fn serve_reports(&mut self) {
        self.unpolled = 0;
        serve(&self.producer);
    }

    /// An overflow episode is over (records are queued again, nothing is spilled): say so.
    fn end_overflow(&mut self) {
        let spill_empty = self.spill.as_ref().is_none_or(|sp| sp.is_empty());
        if let Some((since, n)) = self.overflowing.filter(|_| spill_empty) {
            crate::log_warn!(
                "{}: overflow over after {:.1} s; {n} record(s) met the {} policy",
                self.name,
                since.elapsed().as_secs_f64(),
                self.overflow.name()
            );
            self.overflowing = None;
        }
    }

    /// Gauges and the failure summary line.
    fn update_gauges(&mut self) {
        let held = self.producer.in_flight_count().max(0) as u64;
        self.stats.buffered.store(held, Ordering::Relaxed);
        if let Some(sp) = self.spill.as_mut() {
            self.stats.spilled.store(sp.held(), Ordering::Relaxed);
            let lost = sp.take_lost();
            self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
        }
        if self.last_failure_log.elapsed() >= FAILURE_LOG_EVERY {
            let reports = self.producer.context();
            let n = reports.failed.swap(0, Ordering::Relaxed);
            if n > 0 {
                let why = reports
                    .last_failure
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_default();
                crate::log_warn!(
                    "{}: {n} record(s) not delivered (dropped): {why}",
                    self.name
                );
            }
            self.last_failure_log = Instant::now();
        }
    }

    /// Sends spilled records in order while librdkafka has room; true when the spill is
    /// empty afterwards.
    fn replay_spill(&mut self) -> io::Result<bool> {
        let Some(sp) = self.spill.as_mut() else {
            return Ok(true);
        };
        while let Some((key, value)) = sp.peek()? {
            let sent = send(&self.producer, &self.topic, &self.stats, key, value);
            self.unpolled += 1;
            if let Sent::Full = sent {
                return Ok(false);
            }
            sp.advance();
            if self.unpolled >= POLL_EVERY {
                self.unpolled = 0;
                serve(&self.producer);
            }
        }
        Ok(true)
    }

    /// The record in `key_buf`/`value_buf` (or `raw`) could not be queued now: apply the
    /// overflow policy.
    fn overflow(&mut self, has_key: bool, raw: Option<&[u8]>) -> io::Result<()> {
        if self.overflowing.is_none() {
            crate::log_warn!(
                "{}: librdkafka queue full ({} records held): overflow policy {}",
                self.name,
                self.producer.in_flight_count(),
                self.overflow.name()
            );
            self.overflowing = Some((Instant::now(), 0));
        }
        if let Some((_, n)) = self.overflowing.as_mut() {
            *n += 1;
        }
        match self.overflow {
            OverflowPolicy::Block => loop {
                // Back-pressure: serving reports frees room as the broker acknowledges.
                self.producer.poll(BLOCK_WAIT);
                self.serve_reports();
                let key = has_key.then_some(&self.key_buf[..]);
                let value = raw.unwrap_or(&self.value_buf);
                let sent = send(&self.producer, &self.topic, &self.stats, key, value);
                self.unpolled += 1;
                if !matches!(sent, Sent::Full) {
                    return Ok(());
                }
                self.update_gauges();
            },
            // drop-oldest is refused by the spec; were it set, the newest record goes.
            OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            OverflowPolicy::Spill => {
                let key = has_key.then_some(&self.key_buf[..]);
                let value = raw.unwrap_or(&self.value_buf);
                let dropped = match self.spill.as_mut() {
                    Some(sp) => sp.add(key, value)?,
                    None => 1,
                };
                self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                Ok(())
            }
        }
    }
}

/// Hands one record to librdkafka (never blocks). A record refused for good is counted
/// as dropped here.
fn send(
    producer: &BaseProducer<Reports>,
    topic: &str,
    stats: &OutputStats,
    key: Option<&[u8]>,
    value: &[u8],
) -> Sent {
    let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
    if let Some(k) = key {
        r = r.key(k);
    }
    match producer.send(r) {
        Ok(()) => Sent::Queued,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Sent::Full,
        Err((e, _)) => {
            let reports = producer.context();
            reports.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = reports.last_failure.lock() {
                *last = e.to_string();
            }
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            Sent::Refused
        }
    }
}

/// Serves the delivery reports librdkafka has ready, without waiting.
fn serve(producer: &BaseProducer<Reports>) {
    let events = &producer.context().events;
    // PERF: one poll serves one event, and one delivery-report event carries a whole
    // batch; stop as soon as a poll finds nothing.
    for _ in 0..64 {
        let before = events.load(Ordering::Relaxed);
        producer.poll(Duration::ZERO);
        if events.load(Ordering::Relaxed) == before {
            break;
        }
    }
}

impl Output for KafkaOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn record(&mut self, rec: &Record<'_>, raw: &[u8]) -> io::Result<()> {
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        let has_key = self.write_key(rec);
        let raw = match &self.value {
            Value::Raw => Some(raw),
            Value::Format(f) => {
                self.value_buf.clear();
                f.write(rec, &mut self.value_buf);
                // One JSON object per Kafka record: the line's newline is not part of it.
                if self.value_buf.last() == Some(&b'\n') {
                    self.value_buf.pop();
                }
                None
            }
        };
        if self.unpolled >= POLL_EVERY {
            self.serve_reports();
        }
        // Once anything is spilled, later records queue behind it: order is kept.
        if self.spill.as_ref().is_some_and(|sp| !sp.is_empty()) {
            return self.overflow(has_key, raw);
        }
        let key = has_key.then_some(&self.key_buf[..]);
        let value = raw.unwrap_or(&self.value_buf);
        let sent = send(&self.producer, &self.topic, &self.stats, key, value);
        self.unpolled += 1;
        match sent {
            Sent::Queued | Sent::Refused => {
                if self.overflowing.is_some() {
                    self.end_overflow();
                }
                Ok(())
            }
            Sent::Full => self.overflow(has_key, raw),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.serve_reports();
        if self.replay_spill()? && self.overflowing.is_some() {
            self.end_overflow();
        }
        self.update_gauges();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.shutdown_timeout;
        // The spill first, while there is time: it holds the oldest records.
        while !self.replay_spill()? && Instant::now() < deadline {
            self.producer.poll(BLOCK_WAIT);
            self.serve_reports();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let flushed = self.producer.flush(left);
        self.serve_reports();
        let mut result = Ok(());
        if flushed.is_err() {
            let held = self.producer.in_flight_count().max(0);
            let rescue = self.spill.is_some();
            self.producer
                .context()
                .rescue
                .store(rescue, Ordering::Relaxed);
            // Purged records come back as delivery reports: rescued into the spill, or
            // counted as dropped.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = self.producer.flush(Duration::from_secs(1));
            self.serve_reports();
            if let Some(sp) = self.spill.as_mut() {
                let rescued = match self.producer.context().rescued.lock() {
                    Ok(mut c) => std::mem::take(&mut *c),
                    Err(_) => Chunk::default(),
                };
                let n = u64::from(rescued.records);
                let dropped = sp.save_front(rescued)?;
                self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                crate::log_warn!(
                    "{}: {held} record(s) not acknowledged within {:?}: {} saved to {}",
                    self.name,
                    self.shutdown_timeout,
                    n - dropped.min(n),
                    sp.describe()
                );
            } else {
                crate::log_error!(
                    "{}: {held} record(s) not acknowledged within {:?}: dropped",
                    self.name,
                    self.shutdown_timeout
                );
                result = Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{}: {held} record(s) not acknowledged", self.name),
                ));
            }
        }
        if let Some(sp) = self.spill.as_mut() {
            let dropped = sp.close()?;
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        // Show the last failures now rather than in ten seconds.
        self.last_failure_log = Instant::now() - FAILURE_LOG_EVERY;
        self.update_gauges();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing_round_trips_and_refuses_short_bytes() {
        let mut c = Chunk::default();
        c.push(Some(b"k1"), b"v1");
        c.push(None, b"");
        c.push(Some(b""), b"value three");
        assert_eq!(c.records, 3);
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some(((k, v), next)) = chunk_record(&c.data, pos) {
            got.push((k.map(<[u8]>::to_vec), v.to_vec()));
            pos = next;
        }
        assert_eq!(pos, c.data.len());
        assert_eq!(
            got,
            vec![
                (Some(b"k1".to_vec()), b"v1".to_vec()),
                (None, Vec::new()),
                (Some(Vec::new()), b"value three".to_vec()),
            ]
        );
        // Every truncation is refused, never a panic.
        for cut in 0..c.data.len() {
            let mut pos = 0;
            while let Some((_, next)) = chunk_record(&c.data[..cut], pos) {
                pos = next;
            }
            assert!(pos <= cut);
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(chunk_record(&huge, 0).is_none());
    }

    #[test]
    fn bundled_librdkafka_is_recent_and_has_what_the_spec_offers() {
        // The brokers' ApiVersions exchange needs a current librdkafka (the system's 2.0.2
        // fails it), and the spec offers lz4, zstd, TLS, SASL PLAIN and SCRAM.
        let v = librdkafka_version();
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        assert!((major, minor) >= (2, 1), "librdkafka {v}");
        let mut spec = spec::KafkaSpec {
            brokers: Some(spec::Brokers::One("127.0.0.1:1".into())),
            compression: Some(spec::Compression::Zstd),
            sasl: Some(spec::SaslSpec {
                mechanism: Some(spec::SaslMechanism::ScramSha512),
                username: Some("u".into()),
                password: Some("p".into()),
                password_file: None,
            }),
            tls: Some(spec::TlsSpec {
                enable: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = spec::resolve(&spec, None).unwrap().unwrap();
        let out = KafkaOutput::new(&s, Arc::new(OutputStats::default()));
        assert!(out.is_ok(), "{:?}", out.err());
        spec.compression = Some(spec::Compression::Lz4);
        spec.sasl = None;
        spec.tls = None;
        let s = spec::resolve(&spec, None).unwrap().unwrap();
        assert!(KafkaOutput::new(&s, Arc::new(OutputStats::default())).is_ok());
    }
}
