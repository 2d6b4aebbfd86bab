//! Counters and the stderr log of the receiver daemon.
//!
//! Every thread owns one [`ThreadStats`] (atomics written by that thread only, read by the
//! reporter); [`StatsRegistry::snapshot`] sums them. The log is a tiny timestamped stderr
//! writer: no logging crate, one `write` per line so lines from several threads never mix.
//! Nothing here knows about sockets, frames or formats.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Counters of one thread. Only the owning thread adds; anyone may read.
#[derive(Debug, Default)]
pub struct ThreadStats {
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    pub conn_errors: AtomicU64,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub filtered: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Connections refused by `allow-from`.
    pub refused_acl: AtomicU64,
    /// TLS connections that failed (handshake or later), client certificate refusals included.
    pub tls_failed: AtomicU64,
    /// Mutual TLS: connections refused for a missing or unverifiable client certificate.
    pub refused_cert: AtomicU64,
    /// Connections closed because their handshake (TLS + Frame Streams) took too long.
    pub handshake_timeouts: AtomicU64,
    /// The part of `dropped` lost because the writer had stopped for good (the rest was
    /// dropped by the `drop` queue policy).
    pub dropped_writer_gone: AtomicU64,
    /// Connections closed on error, by kind: the index is the caller's (see
    /// `input::conn::CONN_ERROR_KINDS`); `conn_errors` is their sum.
    pub conn_error_kinds: [AtomicU64; CONN_ERROR_SLOTS],
    /// Decoded records the global transform chain removed, by reason: the index is the
    /// caller's (`transform::DropReason::index`). Not in `written`.
    pub transform_filtered: [AtomicU64; TRANSFORM_REASON_SLOTS],
    /// Decoded records a stateful step of the global chain took to emit later (the
    /// reducer). Not in `written` until released.
    pub transform_held: AtomicU64,
    /// Held records emitted since (each then counted in `written` or, when a later step
    /// removed it, in `transform_filtered`).
    pub transform_released: AtomicU64,
    /// Records the global chain made (the latency transform's `TIMEOUT` records), counted
    /// in `written` (or `transform_filtered`) too.
    pub transform_generated: AtomicU64,
}

/// Slots of [`ThreadStats::conn_error_kinds`].
pub const CONN_ERROR_SLOTS: usize = 24;

/// Slots of the per-reason transform counters ([`ThreadStats::transform_filtered`],
/// [`OutputStats::filtered`]): one per `transform::DropReason` (checked where they are
/// filled).
pub const TRANSFORM_REASON_SLOTS: usize = 8;

/// Counters of one listener, shared by every reader thread that serves its connections.
/// Added to once per receive or per connection, never per frame.
#[derive(Debug, Default)]
pub struct InputStats {
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    /// Data frames received.
    pub frames: AtomicU64,
    /// Bytes received (Frame Streams framing included).
    pub bytes: AtomicU64,
    /// Data frames refused by the filters.
    pub filtered: AtomicU64,
}

impl ThreadStats {
    /// Adds `n` to one counter. Relaxed: counters are statistics, not synchronisation.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Counters of one output (stdout, a forward connection, ...), updated by whoever moves its
/// records: the writer thread, and the output's own sender thread if it has one.
///
/// For each output: records handed to it = `delivered` + `dropped` + what it still holds
/// (`buffered` in memory, `spilled` on disk); records the writer had for it =
/// `records` + Σ `filtered` (withheld by the output's own transforms).
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Records handed to the output by the writer.
    pub records: AtomicU64,
    /// Records delivered (written to the file descriptor, or acknowledged by the peer).
    pub delivered: AtomicU64,
    /// Bytes delivered.
    pub bytes: AtomicU64,
    /// Records dropped by the output's overflow policy or on a fatal error.
    pub dropped: AtomicU64,
    /// Failed writes or connections (each retry counts).
    pub write_errors: AtomicU64,
    /// Connections re-established after a failure.
    pub reconnects: AtomicU64,
    /// Records sent more than once (at-least-once replay after a broken connection).
    pub resent: AtomicU64,
    /// Gauge: records held in memory now.
    pub buffered: AtomicU64,
    /// Gauge: records held on disk now.
    pub spilled: AtomicU64,
    /// Records the output's own transform chain withheld (never handed to it), by reason
    /// (`transform::DropReason::index`).
    pub filtered: [AtomicU64; TRANSFORM_REASON_SLOTS],
    /// Records the output's own chain holds or held, released since, and made: as the
    /// `transform_*` counters of [`ThreadStats`], for this output's chain.
    pub held: AtomicU64,
    pub released: AtomicU64,
    pub generated: AtomicU64,
    /// A forward output's counters per collector, set once at start (empty otherwise).
    pub collectors: std::sync::OnceLock<Vec<CollectorStats>>,
}

/// Counters of one collector of a forward output. Per output, Σ `delivered` over its
/// collectors = the output's `delivered`, Σ `resent` = its `resent`.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// `host:port`, the `collector` label.
    pub addr: String,
    /// Records this collector acknowledged (and were released from the replay window).
    pub delivered: AtomicU64,
    /// Records written to this collector a second time or more (replayed after a break,
    /// here or on another collector).
    pub resent: AtomicU64,
    /// Failed connection attempts and broken connections.
    pub connection_failures: AtomicU64,
}

impl OutputStats {
    /// One summary line for this output, logged after the `stats:` line with `-v`:
    /// `output-counters: "forward 10.0.0.2:8192" records=... delivered=... dropped=...`.
    pub fn summary(&self, name: &str) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "output-counters: {name:?} records={} delivered={} bytes={} dropped={} \
             write-errors={} reconnects={} resent={} buffered={} spilled={} filtered={}",
            g(&self.records),
            g(&self.delivered),
            g(&self.bytes),
            g(&self.dropped),
            g(&self.write_errors),
            g(&self.reconnects),
            g(&self.resent),
            g(&self.buffered),
            g(&self.spilled),
            self.filtered.iter().map(g).sum::<u64>()
        )
    }

    /// With several collectors, one line per collector, logged after [`Self::summary`]:
    /// `collector-counters: "forward a:1,b:2" collector=a:1 delivered=... resent=...
    /// connection-failures=...`; none otherwise.
    pub fn collector_summaries(&self, name: &str) -> Vec<String> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match self.collectors.get() {
            Some(cs) if cs.len() > 1 => cs
                .iter()
                .map(|c| {
                    format!(
                        "collector-counters: {name:?} collector={} delivered={} resent={} \
                         connection-failures={}",
                        c.addr,
                        g(&c.delivered),
                        g(&c.resent),
                        g(&c.connection_failures)
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The sum of every thread's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub accepted: u64,
    pub closed: u64,
    pub conn_errors: u64,
    pub frames: u64,
    pub bytes: u64,
    pub filtered: u64,
    pub dropped: u64,
    pub written: u64,
    pub decode_errors: u64,
    pub refused_acl: u64,
    pub tls_failed: u64,
    pub refused_cert: u64,
    pub handshake_timeouts: u64,
    pub dropped_writer_gone: u64,
    /// Records the global transform chain removed, by reason slot.
    pub transform_filtered: [u64; TRANSFORM_REASON_SLOTS],
    pub transform_held: u64,
    pub transform_released: u64,
    pub transform_generated: u64,
}

impl Snapshot {
    /// Records the global transform chain removed, all reasons.
    pub fn transform_filtered_total(&self) -> u64 {
        self.transform_filtered.iter().sum()
    }

    /// Records a stateful transform holds now (held, not yet released).
    pub fn transform_holding(&self) -> u64 {
        self.transform_held.saturating_sub(self.transform_released)
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.accepted.saturating_sub(self.closed)
    }

    /// One summary line; `prev` and `secs` give the message rate since the previous one.
    pub fn summary(&self, prev: &Snapshot, secs: f64) -> String {
        let rate = if secs > 0.0 {
            (self.written.saturating_sub(prev.written)) as f64 / secs
        } else {
            0.0
        };
        format!(
            "stats: connections open={} accepted={} closed={} errors={} frames={} bytes={} \
             written={} msgs/s={:.0} filtered={} dropped={} decode-errors={} refused-acl={} \
             tls-failed={} refused-cert={} handshake-timeouts={} transform-filtered={} \
             transform-holding={} transform-generated={}",
            self.open(),
            self.accepted,
            self.closed,
            self.conn_errors,
            self.frames,
            self.bytes,
            self.written,
            rate,
            self.filtered,
            self.dropped,
            self.decode_errors,
            self.refused_acl,
            self.tls_failed,
            self.refused_cert,
            self.handshake_timeouts,
            self.transform_filtered_total(),
            self.transform_holding(),
            self.transform_generated
        )
    }
}

/// All threads' counters, and every output's.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    threads: Mutex<Vec<Arc<ThreadStats>>>,
    outputs: Mutex<Vec<(String, Arc<OutputStats>)>>,
    inputs: Mutex<Vec<(String, Arc<InputStats>)>>,
}

impl StatsRegistry {
    /// Registers a listener's counters under its name (`tcp 0.0.0.0:6000`).
    pub fn register_input(&self, name: &str) -> Arc<InputStats> {
        let stats = Arc::new(InputStats::default());
        if let Ok(mut inputs) = self.inputs.lock() {
            inputs.push((name.to_string(), Arc::clone(&stats)));
        }
        stats
    }

    /// Every listener's name and counters, in registration order.
    pub fn inputs(&self) -> Vec<(String, Arc<InputStats>)> {
        match self.inputs.lock() {
            Ok(i) => i.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// Sum of every thread's connection errors, by kind slot.
    pub fn conn_error_kinds(&self) -> [u64; CONN_ERROR_SLOTS] {
        let mut v = [0u64; CONN_ERROR_SLOTS];
        if let Ok(threads) = self.threads.lock() {
            for t in threads.iter() {
                for (sum, a) in v.iter_mut().zip(t.conn_error_kinds.iter()) {
                    *sum += a.load(Ordering::Relaxed);
                }
            }
        }
        v
    }

    /// Registers an output's counters under its name (`stdout`, `forward 10.0.0.2:8192`).
    pub fn register_output(&self, name: &str) -> Arc<OutputStats> {
        let stats = Arc::new(OutputStats::default());
        if let Ok(mut outputs) = self.outputs.lock() {
            outputs.push((name.to_string(), Arc::clone(&stats)));
        }
        stats
    }

    /// The counters of the output named `name`, registered if no output had that name
    /// (an output a reload adds again counts on where it left off).
    pub fn output_named(&self, name: &str) -> Arc<OutputStats> {
        if let Ok(outputs) = self.outputs.lock() {
            if let Some((_, s)) = outputs.iter().find(|(n, _)| n == name) {
                return Arc::clone(s);
            }
        }
        self.register_output(name)
    }

    /// Every output's name and counters, in registration order.
    pub fn outputs(&self) -> Vec<(String, Arc<OutputStats>)> {
        match self.outputs.lock() {
            Ok(o) => o.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// Registers a new thread's counters and returns them.
    pub fn register(&self) -> Arc<ThreadStats> {
        let stats = Arc::new(ThreadStats::default());
        if let Ok(mut threads) = self.threads.lock() {
            threads.push(Arc::clone(&stats));
        }
        stats
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        let Ok(threads) = self.threads.lock() else {
            return s;
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for t in threads.iter() {
            s.accepted += get(&t.accepted);
            s.closed += get(&t.closed);
            s.conn_errors += get(&t.conn_errors);
            s.frames += get(&t.frames);
            s.bytes += get(&t.bytes);
            s.filtered += get(&t.filtered);
            s.dropped += get(&t.dropped);
            s.written += get(&t.written);
            s.decode_errors += get(&t.decode_errors);
            s.refused_acl += get(&t.refused_acl);
            s.tls_failed += get(&t.tls_failed);
            s.refused_cert += get(&t.refused_cert);
            s.handshake_timeouts += get(&t.handshake_timeouts);
            s.dropped_writer_gone += get(&t.dropped_writer_gone);
            for (sum, a) in s.transform_filtered.iter_mut().zip(&t.transform_filtered) {
                *sum += get(a);
            }
            s.transform_held += get(&t.transform_held);
            s.transform_released += get(&t.transform_released);
            s.transform_generated += get(&t.transform_generated);
        }
        s
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns debug lines (`-v`) on or off for the whole process.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Writes one line to stderr: `2026-11-25T18:40:01.123Z LEVEL message`.
pub fn log_line(level: &str, msg: std::fmt::Arguments<'_>) {
    let mut line = String::with_capacity(128);
    push_utc_timestamp(&mut line, SystemTime::now());
    let _ = write!(line, " {level} {msg}");
    line.push('\n');
    // One write per line: stderr is unbuffered, so lines from threads do not interleave.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Informational line, shown only with `-v`.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => {
        if $crate::stats::verbose() {
            $crate::stats::log_line("INFO", format_args!($($arg)*))
        }
    };
}

/// Warning line, always shown (a connection closed on error, a dropped batch...).
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => {
        $crate::stats::log_line("WARN", format_args!($($arg)*))
    };
}

/// Error line, always shown.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => {
        $crate::stats::log_line("ERROR", format_args!($($arg)*))
    };
}

/// Appends `t` as ISO 8601 UTC with milliseconds.
fn push_utc_timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_is_utc_iso8601() {
        let mut s = String::new();
        // 2021-03-04T05:06:07.089Z
        push_utc_timestamp(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(1_614_834_367_089),
        );
        assert_eq!(s, "2021-03-04T05:06:07.089Z");
        s.clear();
        push_utc_timestamp(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
        s.clear();
        // leap day
        push_utc_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(s, "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn registry_sums_threads() {
        let reg = StatsRegistry::default();
        let a = reg.register();
        let b = reg.register();
        ThreadStats::add(&a.frames, 3);
        ThreadStats::add(&b.frames, 4);
        ThreadStats::add(&a.accepted, 2);
        ThreadStats::add(&b.closed, 1);
        let s = reg.snapshot();
        assert_eq!(s.frames, 7);
        assert_eq!(s.open(), 1);
        let line = s.summary(&Snapshot::default(), 1.0);
        assert!(line.contains("frames=7"), "{line}");
    }
}
