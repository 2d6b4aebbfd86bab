//! The Kafka producer side of the output (built with the `kafka` feature): librdkafka
//! through the `rdkafka` crate, the overflow policies, the replacement of a failed
//! producer and the shutdown rules. The module documentation (`mod.rs`) has the picture.
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};

use crate::format::{escape, FormatKind, Formatter};
use crate::record::Record;
use crate::sink::buffer::OverflowPolicy;
use crate::sink::kafka::reports::Reports;
use crate::sink::kafka::settings::{KafkaSettings, KeyKind, ValueKind};
use crate::sink::kafka::{chunk_record, spill, Chunk};
use crate::sink::staged::{Mark, Staged, StagedOutput, Stager};
use crate::sink::Output;
use crate::stats::OutputStats;

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

/// How a record's value is made.
#[derive(Debug)]
enum Value {
    Format(Formatter),
    Raw,
}

/// Records to send again before anything else (a replaced producer's), with the position
/// of the next one (`0 <= pos <= chunk.data.len()`; `left` records remain from there).
#[derive(Debug, Default)]
struct Resend {
    chunk: Chunk,
    pos: usize,
    left: u32,
}

/// The Kafka output of the writer thread.
pub struct KafkaOutput {
    name: String,
    topic: String,
    key: KeyKind,
    value: Value,
    overflow: OverflowPolicy,
    shutdown_timeout: Duration,
    config: ClientConfig,
    producer: BaseProducer<Reports>,
    /// Where every producer of this output puts the records to send again.
    rescued: Arc<Mutex<Chunk>>,
    resend: Resend,
    spill: Option<spill::KafkaSpill>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    /// Records sent since delivery reports were last served.
    unpolled: u32,
    stats: Arc<OutputStats>,
    last_failure_log: Instant,
    /// Since when, and for how many records, the overflow policy has been acting; whether
    /// its start was logged.
    overflowing: Option<(Instant, u64, bool)>,
    last_overflow_log: Option<Instant>,
}

/// What became of one record handed to librdkafka.
enum Sent {
    Queued,
    /// Not taken now: librdkafka's queue is full, or the producer is failed and must be
    /// replaced first.
    NotNow,
    /// Refused for good (too large, unknown partition...): counted as dropped.
    Refused,
}

fn make_producer(
    config: &ClientConfig,
    name: &str,
    stats: &Arc<OutputStats>,
    rescued: &Arc<Mutex<Chunk>>,
) -> io::Result<BaseProducer<Reports>> {
    config
        .create_with_context(Reports::new(Arc::clone(stats), Arc::clone(rescued)))
        .map_err(|e| io::Error::other(format!("{name}: {e}")))
}

impl KafkaOutput {
    /// Creates the producer (librdkafka connects in the background; an unreachable broker
    /// is not an error here) and opens the spill queue, if any.
    pub fn new(settings: &KafkaSettings, stats: Arc<OutputStats>) -> io::Result<KafkaOutput> {
        let mut config = ClientConfig::new();
        for (k, v) in &settings.properties {
            config.set(k, v);
        }
        // librdkafka's own detail lines (and `librdkafka: {debug: ...}`) reach the log
        // only with -v.
        config.set_log_level(if crate::stats::verbose() {
            RDKafkaLogLevel::Debug
        } else {
            RDKafkaLogLevel::Warning
        });
        if settings.property("sasl.mechanism") == Some("PLAIN")
            && settings.property("security.protocol") == Some("sasl_plaintext")
        {
            crate::log_warn!(
                "{}: SASL PLAIN without TLS sends the password in clear text",
                settings.name
            );
        }
        let rescued = Arc::new(Mutex::new(Chunk::default()));
        let producer = make_producer(&config, &settings.name, &stats, &rescued)?;
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
            config,
            producer,
            rescued,
            resend: Resend::default(),
            spill,
            key_buf: Vec::with_capacity(256),
            value_buf: Vec::with_capacity(4096),
            unpolled: 0,
            stats,
            last_failure_log: Instant::now(),
            overflowing: None,
            last_overflow_log: None,
        })
    }

    /// Serves the pending delivery reports (counting them), without waiting.
    fn serve_reports(&mut self) {
        self.unpolled = 0;
        serve(&self.producer);
    }

    /// The producer hit a fatal error (for instance a broker that lost its state answers
    /// "unknown producer id" to an idempotent producer): every record it holds comes back
    /// through its delivery reports and is sent again, first and in order, by a new
    /// producer. At-least-once: a record the broker had written before the error may
    /// arrive twice (counted in `resent`).
    fn replace_producer(&mut self) -> io::Result<()> {
        let held = self.producer.in_flight_count();
        crate::log_warn!(
            "{}: the producer failed for good; replacing it and sending its {held} record(s) again",
            self.name
        );
        self.producer
            .context()
            .rescue
            .store(true, Ordering::Relaxed);
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let _ = self.producer.flush(Duration::from_secs(5));
        serve(&self.producer);
        let fresh = make_producer(&self.config, &self.name, &self.stats, &self.rescued)?;
        // Dropping the old producer purges what it might still hold into `rescued`.
        drop(std::mem::replace(&mut self.producer, fresh));
        let mut rescued = match self.rescued.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(_) => Chunk::default(),
        };
        self.stats
            .resent
            .fetch_add(u64::from(rescued.records), Ordering::Relaxed);
        // The rescued records were sent before whatever is left of the current resend.
        if let Some(rest) = self.resend.chunk.data.get(self.resend.pos..) {
            rescued.data.extend_from_slice(rest);
            rescued.records += self.resend.left;
        }
        self.resend = Resend {
            left: rescued.records,
            chunk: rescued,
            pos: 0,
        };
        Ok(())
    }

    fn backlog_empty(&self) -> bool {
        self.resend.left == 0 && self.spill.as_ref().is_none_or(|sp| sp.is_empty())
    }

    /// Sends what waits in front of new records (a replaced producer's records, then the
    /// spill) while librdkafka has room; true when nothing waits any more.
    fn drain_backlog(&mut self) -> io::Result<bool> {
        if self.producer.context().fatal.load(Ordering::Relaxed) {
            self.replace_producer()?;
        }
        while self.resend.left > 0 {
            let Some((kv, next)) = chunk_record(&self.resend.chunk.data, self.resend.pos) else {
                // Our own framing, written in memory: cannot happen; count, never loop.
                self.stats
                    .dropped
                    .fetch_add(u64::from(self.resend.left), Ordering::Relaxed);
                self.resend.left = 0;
                break;
            };
            let sent = send(&self.producer, &self.topic, &self.stats, kv.0, kv.1);
            self.unpolled += 1;
            if let Sent::NotNow = sent {
                return Ok(false);
            }
            self.resend.pos = next;
            self.resend.left -= 1;
            if self.unpolled >= POLL_EVERY {
                self.serve_reports();
            }
        }
        if self.resend.pos != 0 {
            self.resend = Resend::default();
        }
        let Some(sp) = self.spill.as_mut() else {
            return Ok(true);
        };
        while let Some((key, value)) = sp.peek()? {
            let sent = send(&self.producer, &self.topic, &self.stats, key, value);
            self.unpolled += 1;
            if let Sent::NotNow = sent {
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

    /// One record, sent now.
    fn send_now(&mut self, key: Option<&[u8]>, value: &[u8]) -> Sent {
        self.unpolled += 1;
        send(&self.producer, &self.topic, &self.stats, key, value)
    }

    /// Produces one record after whatever waits in front of it (order is kept), applying
    /// the overflow policy when librdkafka has no room.
    fn produce(&mut self, key: Option<&[u8]>, value: &[u8]) -> io::Result<()> {
        if self.unpolled >= POLL_EVERY {
            self.serve_reports();
        }
        if !self.backlog_empty() && !self.drain_backlog()? {
            return self.overflow(key, value);
        }
        match self.send_now(key, value) {
            Sent::Queued | Sent::Refused => {
                if self.overflowing.is_some() {
                    self.end_overflow();
                }
                Ok(())
            }
            Sent::NotNow => self.overflow(key, value),
        }
    }

    /// The current record could not be queued now: apply the overflow policy.
    fn overflow(&mut self, key: Option<&[u8]>, value: &[u8]) -> io::Result<()> {
        if self.overflowing.is_none() {
            let log = self
                .last_overflow_log
                .is_none_or(|t| t.elapsed() >= FAILURE_LOG_EVERY);
            if log {
                crate::log_warn!(
                    "{}: librdkafka queue full or producer failed ({} records held): \
                     overflow policy {}",
                    self.name,
                    self.producer.in_flight_count(),
                    self.overflow.name()
                );
                self.last_overflow_log = Some(Instant::now());
            }
            self.overflowing = Some((Instant::now(), 0, log));
        }
        if let Some((_, n, _)) = self.overflowing.as_mut() {
            *n += 1;
        }
        match self.overflow {
            OverflowPolicy::Block => loop {
                // Back-pressure: serving reports frees room as the broker acknowledges.
                self.producer.poll(BLOCK_WAIT);
                self.serve_reports();
                if self.drain_backlog()? && !matches!(self.send_now(key, value), Sent::NotNow) {
                    return Ok(());
                }
                self.update_gauges();
            },
            // drop-oldest is refused by the spec; were it set, the newest record goes.
            OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => {
                if self.drain_backlog()? && !matches!(self.send_now(key, value), Sent::NotNow) {
                    return Ok(());
                }
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            OverflowPolicy::Spill => {
                let dropped = match self.spill.as_mut() {
                    Some(sp) => sp.add(key, value)?,
                    None => 1,
                };
                self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// An overflow episode is over (records are queued again, nothing waits): say so if
    /// its start was said.
    fn end_overflow(&mut self) {
        if !self.backlog_empty() {
            return;
        }
        if let Some((since, n, logged)) = self.overflowing.take() {
            if logged {
                crate::log_warn!(
                    "{}: overflow over after {:.1} s; {n} record(s) met the {} policy",
                    self.name,
                    since.elapsed().as_secs_f64(),
                    self.overflow.name()
                );
            }
        }
    }

    /// Gauges and the failure summary line.
    fn update_gauges(&mut self) {
        let held = self.producer.in_flight_count().max(0) as u64 + u64::from(self.resend.left);
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
}

/// Appends the record's `kind` of key to `out`; false when the record has no such value
/// (then it is produced without a key).
fn write_key(kind: KeyKind, rec: &Record<'_>, out: &mut Vec<u8>) -> bool {
    match kind {
        KeyKind::None => false,
        KeyKind::Identity => match rec.identity {
            Some(id) if !id.is_empty() => {
                out.extend_from_slice(id);
                true
            }
            _ => false,
        },
        KeyKind::ClientIp => match rec.query_address {
            Some(a) => {
                escape::write_ip(a, true, out);
                true
            }
            None => false,
        },
        KeyKind::Qname => match &rec.dns {
            Some(Ok(m)) => match &m.question {
                Some(q) => {
                    let at = out.len();
                    q.name.write_presentation(out);
                    out[at..].make_ascii_lowercase();
                    true
                }
                None => false,
            },
            _ => false,
        },
    }
}

/// Appends the record's Kafka value to `out`: the format's line without its newline (one
/// JSON object per Kafka record), or the raw payload.
fn write_value(fmt: Option<&Formatter>, rec: &Record<'_>, raw: &[u8], out: &mut Vec<u8>) {
    match fmt {
        Some(f) => {
            let at = out.len();
            f.write(rec, out);
            if out.len() > at && out.last() == Some(&b'\n') {
                out.pop();
            }
        }
        None => out.extend_from_slice(raw),
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
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Sent::NotNow,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::Fatal), _)) => {
            producer.context().fatal.store(true, Ordering::Relaxed);
            Sent::NotNow
        }
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

/// A Kafka output's formatting half for the ordered writers: each record's key, then its
/// value, with the split between them.
#[derive(Debug)]
struct KeyedStager {
    key: KeyKind,
    /// Whether the value is the raw payload rather than the format's line.
    raw: bool,
}

impl Stager for KeyedStager {
    #[inline]
    fn stage(&self, fmt: &Formatter, rec: &Record<'_>, raw: &[u8], out: &mut Staged) {
        let keyed = write_key(self.key, rec, &mut out.bytes);
        let value_at = out.bytes.len();
        write_value((!self.raw).then_some(fmt), rec, raw, &mut out.bytes);
        out.marks.push(Mark {
            end: out.bytes.len(),
            value_at,
            keyed,
            lane: 0,
        });
    }
}

/// Several writers: keys and values are made in parallel, and produced here in queue
/// order, so the records of one key reach their partition in one writer's order.
impl StagedOutput for KafkaOutput {
    fn stager(&self) -> Arc<dyn Stager> {
        Arc::new(KeyedStager {
            key: self.key,
            raw: matches!(self.value, Value::Raw),
        })
    }

    fn commit(&mut self, staged: &Staged, records: u64) -> io::Result<()> {
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        for (handed, (key, value, _)) in staged.records().enumerate() {
            if let Err(e) = self.produce(key, value) {
                // The output is gone: the rest of the batch was counted in `records`
                // and never reached librdkafka.
                let lost = records.saturating_sub(handed as u64 + 1);
                self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Output for KafkaOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        if let Value::Format(f) = &mut self.value {
            f.sample_rate = rate.max(1);
        }
    }

    fn record(&mut self, rec: &Record<'_>, raw: &[u8]) -> io::Result<()> {
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        // Taken out for the call (no allocation: put back after), so `produce` can borrow
        // the output mutably.
        let (mut key_buf, mut value_buf) = (
            std::mem::take(&mut self.key_buf),
            std::mem::take(&mut self.value_buf),
        );
        key_buf.clear();
        let has_key = write_key(self.key, rec, &mut key_buf);
        let value = match &self.value {
            Value::Raw => raw,
            Value::Format(f) => {
                value_buf.clear();
                write_value(Some(f), rec, raw, &mut value_buf);
                &value_buf[..]
            }
        };
        let r = self.produce(has_key.then_some(&key_buf[..]), value);
        self.key_buf = key_buf;
        self.value_buf = value_buf;
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.serve_reports();
        if self.drain_backlog()? && self.overflowing.is_some() {
            self.end_overflow();
        }
        self.update_gauges();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.shutdown_timeout;
        // What waits first, while there is time: it holds the oldest records.
        while !self.drain_backlog()? && Instant::now() < deadline {
            self.producer.poll(BLOCK_WAIT);
            self.serve_reports();
        }
        let mut flushed = false;
        while !flushed && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            flushed = self
                .producer
                .flush(left.min(Duration::from_millis(200)))
                .is_ok();
            self.serve_reports();
            if self.producer.context().fatal.load(Ordering::Relaxed) {
                self.replace_producer()?;
                self.drain_backlog()?;
            }
        }
        let mut result = Ok(());
        if !flushed || self.resend.left > 0 {
            let held = self.producer.in_flight_count().max(0) as u64 + u64::from(self.resend.left);
            let keep = self.spill.is_some();
            self.producer
                .context()
                .rescue
                .store(keep, Ordering::Relaxed);
            // Purged records come back as delivery reports: rescued into the spill, or
            // counted as dropped.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = self.producer.flush(Duration::from_secs(1));
            self.serve_reports();
            let mut rescued = match self.rescued.lock() {
                Ok(mut c) => std::mem::take(&mut *c),
                Err(_) => Chunk::default(),
            };
            if let Some(rest) = self.resend.chunk.data.get(self.resend.pos..) {
                rescued.data.extend_from_slice(rest);
                rescued.records += self.resend.left;
            }
            self.resend = Resend::default();
            if let Some(sp) = self.spill.as_mut() {
                let n = u64::from(rescued.records);
                let dropped = sp.save_front(rescued)?;
                self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                crate::log_warn!(
                    "{}: {held} record(s) not acknowledged within {:?}: {} saved to {}",
                    self.name,
                    self.shutdown_timeout,
                    n.saturating_sub(dropped),
                    sp.describe()
                );
            } else {
                self.stats
                    .dropped
                    .fetch_add(u64::from(rescued.records), Ordering::Relaxed);
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
