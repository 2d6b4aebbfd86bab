//! Prometheus metrics: the compiled endpoint settings ([`MetricsConfig`], built by `config`
//! from the `metrics:` section), and the text exposition of every counter the receiver keeps
//! (pipeline, inputs, outputs, DNS traffic). The HTTP endpoint that serves it is [`http`];
//! the traffic counters the writer fills are [`traffic`].
//!
//! ```text
//!  StatsRegistry (threads, inputs, outputs) ─┐
//!  Pipeline (queue, pool)                    ├─► Scrape ─► render() ─► text/plain 0.0.4
//!  TrafficShared (writer's traffic counters) ─┘
//! ```
//!
//! Rendering is done per scrape on the HTTP thread, from a snapshot: it allocates, the hot
//! path does not. The `-v` summary line is built from the same [`Snapshot`]. Every metric is
//! listed, with its meaning and the accounting identity, in docs/metrics.md. Knows the
//! counters' layout; knows nothing of sockets except in [`http`], nothing of the config file.
#![forbid(unsafe_code)]

pub mod http;
pub mod latency;
pub mod traffic;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::input::conn::CONN_ERROR_KINDS;
use crate::pipeline::Pipeline;
use crate::stats::{
    InputStats, OutputStats, Snapshot, StatsRegistry, CONN_ERROR_SLOTS, TRANSFORM_REASON_SLOTS,
};
use crate::transform::DropReason;

use self::traffic::{TrafficShared, TrafficSnapshot};

/// Every metric name starts with this.
pub const PREFIX: &str = "dnstap_receiver_";

// ---------------------------------------------------------------------------------------------
// The endpoint's settings.

/// Where the basic-auth password comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Inline(String),
    File(PathBuf),
}

/// Shows the file name, never an inline password.
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::Inline(_) => f.write_str("Inline(..)"),
            Password::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// The validated metrics settings. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// User and password.
    pub basic_auth: Option<(String, Password)>,
    /// Certificate chain and key files.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("listen", &self.listen)
            .field("basic_auth_user", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// What one scrape shows.

/// Everything one scrape renders, copied at one moment.
#[derive(Debug, Default)]
pub struct Scrape {
    pub totals: Snapshot,
    pub conn_error_kinds: [u64; CONN_ERROR_SLOTS],
    /// Connections refused before any Frame Streams byte, by reason (allow-list, TLS
    /// handshake, handshake timeout...): filled from the input layer's counters; the
    /// family is left out while empty.
    pub refused: Vec<(&'static str, u64)>,
    /// Listener name and counters.
    pub inputs: Vec<(String, InputCounts)>,
    /// Output name and counters.
    pub outputs: Vec<(String, OutputCounts)>,
    /// A forward output's counters per collector (outputs with several collectors only;
    /// the families are left out while empty).
    pub collectors: Vec<CollectorCounts>,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub pool_free: u64,
    pub pool_total: u64,
    /// Frames a failing reader thread held unshipped.
    pub lost_at_reader_exit: u64,
    /// `None` when traffic is not counted.
    pub traffic: Option<TrafficSnapshot>,
    /// The latency transform's counters, per chain that has one ([`latency::collect`]).
    pub latency: Vec<(String, crate::transform::latency::LatencySnapshot)>,
    /// Configuration reloads; `None` where there are none (the families are left out).
    pub reloads: Option<ReloadCounts>,
}

/// Configuration reloads (SIGHUP), counted by the thread that runs them.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads applied.
    pub reloads: AtomicU64,
    /// Reloads refused (the configuration was invalid, or needed a restart): the running
    /// one was kept.
    pub failures: AtomicU64,
    /// The generation of the configuration in force (0: the one read at start).
    pub generation: AtomicU64,
}

impl ReloadStats {
    pub fn counts(&self) -> ReloadCounts {
        ReloadCounts {
            reloads: self.reloads.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            generation: self.generation.load(Ordering::Relaxed),
        }
    }
}

/// [`ReloadStats`] read once, for one scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadCounts {
    pub reloads: u64,
    pub failures: u64,
    pub generation: u64,
}

/// Reads every counter once, for one scrape.
/// `traffic`: the writers' traffic counters (one per writer thread; none when traffic is
/// not counted).
pub fn collect(reg: &StatsRegistry, p: &Pipeline, traffic: &[Arc<TrafficShared>]) -> Scrape {
    // Traffic first, totals last: the writer adds to `written` once per batch, before it
    // publishes traffic, so a scrape never shows traffic ahead of `messages_written_total`.
    // Outputs count per record and may lead `written` by up to one batch; every counter
    // agrees once the pipeline is idle (docs/metrics.md).
    let traffic = match traffic {
        [] => None,
        [one] => Some(one.snapshot()),
        many => {
            let parts: Vec<TrafficSnapshot> = many.iter().map(|t| t.snapshot()).collect();
            Some(TrafficSnapshot::merge(&parts))
        }
    };
    let outputs = reg
        .outputs()
        .iter()
        .map(|(n, s)| (n.clone(), OutputCounts::from(&**s)))
        .collect();
    let collectors = reg
        .outputs()
        .iter()
        .flat_map(|(n, s)| CollectorCounts::of(n, s))
        .collect();
    let inputs = reg
        .inputs()
        .iter()
        .map(|(n, s)| (n.clone(), InputCounts::from(&**s)))
        .collect();
    let totals = reg.snapshot();
    Scrape {
        collectors,
        conn_error_kinds: reg.conn_error_kinds(),
        // `tls_failed` includes the client certificate refusals; each is counted once here.
        refused: vec![
            ("allow_list", totals.refused_acl),
            ("tls", totals.tls_failed.saturating_sub(totals.refused_cert)),
            ("client_cert", totals.refused_cert),
            ("handshake_timeout", totals.handshake_timeouts),
        ],
        inputs,
        outputs,
        queue_depth: p.queued() as u64,
        queue_capacity: p.queue_capacity() as u64,
        pool_free: p.pool.available() as u64,
        pool_total: p.pool.total() as u64,
        lost_at_reader_exit: p.lost_at_reader_exit(),
        traffic,
        totals,
        // Filled by the caller, who has the chains (latency::collect).
        latency: Vec::new(),
        reloads: None,
    }
}

/// [`InputStats`] read at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct InputCounts {
    pub accepted: u64,
    pub closed: u64,
    pub frames: u64,
    pub bytes: u64,
    pub filtered: u64,
}

impl From<&InputStats> for InputCounts {
    fn from(s: &InputStats) -> Self {
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        InputCounts {
            accepted: g(&s.accepted),
            closed: g(&s.closed),
            frames: g(&s.frames),
            bytes: g(&s.bytes),
            filtered: g(&s.filtered),
        }
    }
}

/// [`OutputStats`] read at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputCounts {
    pub records: u64,
    pub delivered: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub reconnects: u64,
    pub resent: u64,
    pub buffered: u64,
    pub spilled: u64,
    /// Withheld by the output's own transform chain, by `DropReason::index`.
    pub filtered: [u64; TRANSFORM_REASON_SLOTS],
    /// Held, released and made by the output's own stateful transforms (the reducer).
    pub held: u64,
    pub released: u64,
    pub generated: u64,
}

impl From<&OutputStats> for OutputCounts {
    fn from(s: &OutputStats) -> Self {
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        OutputCounts {
            records: g(&s.records),
            delivered: g(&s.delivered),
            bytes: g(&s.bytes),
            dropped: g(&s.dropped),
            write_errors: g(&s.write_errors),
            reconnects: g(&s.reconnects),
            resent: g(&s.resent),
            buffered: g(&s.buffered),
            spilled: g(&s.spilled),
            filtered: std::array::from_fn(|i| s.filtered.get(i).map_or(0, g)),
            held: g(&s.held),
            released: g(&s.released),
            generated: g(&s.generated),
        }
    }
}

/// One collector of a forward output, read at one moment.
#[derive(Clone, Debug, Default)]
pub struct CollectorCounts {
    pub output: String,
    pub collector: String,
    pub delivered: u64,
    pub resent: u64,
    pub connection_failures: u64,
}

impl CollectorCounts {
    /// The collectors of an output that has several (none otherwise: with one, the
    /// output's own counters say it all).
    fn of(output: &str, s: &OutputStats) -> Vec<CollectorCounts> {
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        match s.collectors.get() {
            Some(cs) if cs.len() > 1 => cs
                .iter()
                .map(|c| CollectorCounts {
                    output: output.to_string(),
                    collector: c.addr.clone(),
                    delivered: g(&c.delivered),
                    resent: g(&c.resent),
                    connection_failures: g(&c.connection_failures),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The text exposition format (version 0.0.4).

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds the exposition text: one `# HELP` and `# TYPE` per family, then its samples.
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {kind}");
    }

    /// One sample; `labels` are (name, value) pairs, values escaped here.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(PREFIX);
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_value(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(itoa::Buffer::new().format(value));
        self.out.push('\n');
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family with one sample per label value.
    fn by(&mut self, name: &str, kind: &str, help: &str, label: &str, values: &[(&str, u64)]) {
        self.family(name, kind, help);
        for (v, n) in values {
            self.sample(name, &[(label, v)], *n);
        }
    }
}

/// Label value escaping of the text format: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Nanoseconds as seconds with nine decimals (`1.000250000`), for the histogram sum.
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Renders one scrape in the Prometheus text format.
pub fn render(s: &Scrape) -> String {
    let mut t = Text {
        out: String::with_capacity(16 << 10),
    };
    let a = &s.totals;
    t.family("build_info", "gauge", "Version of the receiver (always 1).");
    t.sample("build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

    // Connections.
    t.single(
        "connections_accepted_total",
        "counter",
        "Connections accepted on every input.",
        a.accepted,
    );
    t.single(
        "connections_closed_total",
        "counter",
        "Connections closed, cleanly or on error.",
        a.closed,
    );
    t.single(
        "connections_open",
        "gauge",
        "Connections open now.",
        a.open(),
    );
    if !s.refused.is_empty() {
        t.by(
            "connections_refused_total",
            "counter",
            "Connections refused or closed before the Frame Streams handshake, by reason.",
            "reason",
            &s.refused,
        );
    }
    t.family(
        "connection_errors_total",
        "counter",
        "Connections closed on error, by kind (socket error or Frame Streams protocol error).",
    );
    for (i, kind) in CONN_ERROR_KINDS.iter().enumerate() {
        let n = s.conn_error_kinds.get(i).copied().unwrap_or(0);
        t.sample("connection_errors_total", &[("kind", kind)], n);
    }

    // Frames and the accounting identity.
    t.single(
        "frames_received_total",
        "counter",
        "Data frames (dnstap messages) received on every input.",
        a.frames,
    );
    t.single(
        "bytes_received_total",
        "counter",
        "Bytes received on every input, Frame Streams framing included.",
        a.bytes,
    );
    t.single(
        "messages_filtered_total",
        "counter",
        "Received messages refused by the identity and qname filters.",
        a.filtered,
    );
    t.single(
        "messages_written_total",
        "counter",
        "Messages decoded and handed to every output.",
        a.written,
    );
    t.family(
        "records_filtered_total",
        "counter",
        "Decoded records the global transforms removed (not written), by reason.",
    );
    for r in DropReason::ALL {
        let n = a.transform_filtered.get(r.index()).copied().unwrap_or(0);
        t.sample("records_filtered_total", &[("reason", r.as_str())], n);
    }
    t.single(
        "records_transform_held_total",
        "counter",
        "Records a stateful global transform (the reducer) took, to emit later.",
        a.transform_held,
    );
    t.single(
        "records_transform_released_total",
        "counter",
        "Held records the global transforms emitted since (counted in written too).",
        a.transform_released,
    );
    t.single(
        "records_transform_generated_total",
        "counter",
        "Records the global transforms made (counted in written too).",
        a.transform_generated,
    );
    let queue_full = a.dropped.saturating_sub(a.dropped_writer_gone);
    t.by(
        "messages_dropped_total",
        "counter",
        "Accepted messages lost before decoding: queue full under the drop policy, the \
         writer stopped after an output failed, or a reader thread failed holding them.",
        "reason",
        &[
            ("queue_full", queue_full),
            ("writer_gone", a.dropped_writer_gone),
            ("reader_failed", s.lost_at_reader_exit),
        ],
    );
    t.by(
        "decode_errors_total",
        "counter",
        "Accepted messages whose dnstap protobuf could not be decoded (not written).",
        "kind",
        &[("dnstap", a.decode_errors)],
    );

    // Queue and pool.
    t.single(
        "queue_depth",
        "gauge",
        "Batches waiting in the reader-to-writer queue.",
        s.queue_depth,
    );
    t.single(
        "queue_capacity",
        "gauge",
        "Batches the queue holds at most.",
        s.queue_capacity,
    );
    t.single(
        "pool_buffers_free",
        "gauge",
        "Receive buffers free in the pool.",
        s.pool_free,
    );
    t.single(
        "pool_buffers",
        "gauge",
        "Receive buffers in the pool.",
        s.pool_total,
    );

    render_inputs(&mut t, &s.inputs);
    render_outputs(&mut t, &s.outputs);
    render_collectors(&mut t, &s.collectors);
    if let Some(tr) = &s.traffic {
        render_traffic(&mut t, tr);
    }
    if let Some(r) = &s.reloads {
        t.single(
            "config_reloads_total",
            "counter",
            "Configuration reloads applied (SIGHUP).",
            r.reloads,
        );
        t.single(
            "config_reload_failures_total",
            "counter",
            "Configuration reloads refused (invalid, or needing a restart): the running \
             configuration was kept.",
            r.failures,
        );
        t.single(
            "config_generation",
            "gauge",
            "Generation of the configuration in force (0: the one read at start).",
            r.generation,
        );
    }
    latency::render(&mut t, &s.latency);
    t.out
}

fn render_inputs(t: &mut Text, inputs: &[(String, InputCounts)]) {
    type Get = fn(&InputCounts) -> u64;
    let families: [(&str, &str, &str, Get); 5] = [
        (
            "input_connections_accepted_total",
            "counter",
            "Connections accepted, per input.",
            |c| c.accepted,
        ),
        (
            "input_connections_open",
            "gauge",
            "Connections open now, per input.",
            |c| c.accepted.saturating_sub(c.closed),
        ),
        (
            "input_frames_total",
            "counter",
            "Data frames received, per input.",
            |c| c.frames,
        ),
        (
            "input_bytes_total",
            "counter",
            "Bytes received, per input.",
            |c| c.bytes,
        ),
        (
            "input_filtered_total",
            "counter",
            "Received messages refused by the filters, per input.",
            |c| c.filtered,
        ),
    ];
    for (name, kind, help, get) in families {
        t.family(name, kind, help);
        for (input, c) in inputs {
            t.sample(name, &[("input", input)], get(c));
        }
    }
}

fn render_collectors(t: &mut Text, collectors: &[CollectorCounts]) {
    if collectors.is_empty() {
        return;
    }
    type Get = fn(&CollectorCounts) -> u64;
    let families: [(&str, &str, Get); 3] = [
        (
            "output_collector_records_written_total",
            "Records a collector of a forward output acknowledged (per output and collector).",
            |c| c.delivered,
        ),
        (
            "output_collector_resent_total",
            "Records written to this collector again (replayed after a break, here or on \
             another collector).",
            |c| c.resent,
        ),
        (
            "output_collector_connection_failures_total",
            "Failed connection attempts and broken connections, per collector.",
            |c| c.connection_failures,
        ),
    ];
    for (name, help, get) in families {
        t.family(name, "counter", help);
        for c in collectors {
            t.sample(
                name,
                &[("output", &c.output), ("collector", &c.collector)],
                get(c),
            );
        }
    }
}

fn render_outputs(t: &mut Text, outputs: &[(String, OutputCounts)]) {
    type Get = fn(&OutputCounts) -> u64;
    let families: [(&str, &str, &str, Get); 12] = [
        (
            "output_records_total",
            "counter",
            "Records handed to the output by the writer.",
            |c| c.records,
        ),
        (
            "output_records_written_total",
            "counter",
            "Records delivered by the output (written, or acknowledged by the peer).",
            |c| c.delivered,
        ),
        (
            "output_bytes_written_total",
            "counter",
            "Bytes delivered by the output.",
            |c| c.bytes,
        ),
        (
            "output_dropped_total",
            "counter",
            "Records the output dropped (overflow policy, or a write that failed for good).",
            |c| c.dropped,
        ),
        (
            "output_write_errors_total",
            "counter",
            "Failed writes or connection attempts of the output (each retry counts).",
            |c| c.write_errors,
        ),
        (
            "output_reconnects_total",
            "counter",
            "Connections the output re-established after a failure.",
            |c| c.reconnects,
        ),
        (
            "output_resent_total",
            "counter",
            "Records the output sent more than once (replay after a broken connection).",
            |c| c.resent,
        ),
        (
            "output_buffered",
            "gauge",
            "Records the output holds in memory now.",
            |c| c.buffered,
        ),
        (
            "output_spilled",
            "gauge",
            "Records the output holds on disk now.",
            |c| c.spilled,
        ),
        (
            "output_records_transform_held_total",
            "counter",
            "Records the output's own stateful transforms (the reducer) took, to emit later.",
            |c| c.held,
        ),
        (
            "output_records_transform_released_total",
            "counter",
            "Held records the output's own transforms emitted since.",
            |c| c.released,
        ),
        (
            "output_records_transform_generated_total",
            "counter",
            "Records the output's own transforms made.",
            |c| c.generated,
        ),
    ];
    for (name, kind, help, get) in families {
        t.family(name, kind, help);
        for (output, c) in outputs {
            t.sample(name, &[("output", output)], get(c));
        }
    }
    t.family(
        "output_records_filtered_total",
        "counter",
        "Records the output's own transforms withheld from it, by reason.",
    );
    for (output, c) in outputs {
        for r in DropReason::ALL {
            let n = c.filtered.get(r.index()).copied().unwrap_or(0);
            t.sample(
                "output_records_filtered_total",
                &[("output", output), ("reason", r.as_str())],
                n,
            );
        }
    }
}

fn render_traffic(t: &mut Text, s: &TrafficSnapshot) {
    use self::traffic as tr;
    let dim = |labels: &[&'static str], off: usize| -> Vec<(&'static str, u64)> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| (*l, s.get(off + i)))
            .collect()
    };
    t.by(
        "dns_messages_total",
        "counter",
        "Decoded messages by dnstap message type (unknown types: other).",
        "type",
        &dim(&tr::MESSAGE_TYPES, tr::OFF_TYPE),
    );
    t.by(
        "dns_protocol_messages_total",
        "counter",
        "Decoded messages by socket protocol (absent or unknown: other).",
        "protocol",
        &dim(&tr::PROTOCOLS, tr::OFF_PROTO),
    );
    t.by(
        "dns_family_messages_total",
        "counter",
        "Decoded messages by socket family (absent or unknown: other).",
        "family",
        &dim(&tr::FAMILIES, tr::OFF_FAMILY),
    );
    t.by(
        "dns_responses_total",
        "counter",
        "Decoded messages whose DNS message is a response (QR set), by 4-bit header RCODE.",
        "rcode",
        &dim(&tr::RCODES, tr::OFF_RCODE),
    );
    let qtypes: Vec<(&str, u64)> = (0..tr::QTYPE_SLOTS)
        .map(|i| (tr::qtype_label(i), s.get(tr::OFF_QTYPE + i)))
        .collect();
    t.by(
        "dns_qtype_messages_total",
        "counter",
        "Decoded messages by the QTYPE of their first question (unlisted: other; no readable \
         question: none).",
        "qtype",
        &qtypes,
    );
    t.by(
        "dns_parse_errors_total",
        "counter",
        "Decoded messages whose DNS header or question is malformed (still written), by kind.",
        "kind",
        &dim(&tr::DNS_ERRORS, tr::OFF_DNS_ERR),
    );

    let name = "dns_response_latency_seconds";
    t.family(
        name,
        "histogram",
        "Response time minus query time of response messages that carry both.",
    );
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (i, le) in tr::LATENCY_BOUNDS_NS.iter().enumerate() {
        cumulative += s.get(tr::OFF_LAT + i);
        let le = seconds(*le);
        let le = le.trim_end_matches('0').trim_end_matches('.');
        t.sample(&bucket, &[("le", le)], cumulative);
    }
    cumulative += s.get(tr::OFF_LAT + tr::LATENCY_BOUNDS_NS.len());
    t.sample(&bucket, &[("le", "+Inf")], cumulative);
    let _ = writeln!(
        t.out,
        "{PREFIX}{name}_sum {}",
        seconds(s.get(tr::OFF_LAT_SUM_NS))
    );
    t.sample(&format!("{name}_count"), &[], s.get(tr::OFF_LAT_COUNT));
    t.single(
        "dns_response_latency_negative_total",
        "counter",
        "Responses whose response time is before their query time (not in the histogram).",
        s.get(tr::OFF_LAT_NEGATIVE),
    );

    let ids = s.identities.len().min(tr::IDENTITY_SLOTS + 2);
    t.family(
        "identity_messages_total",
        "counter",
        "Decoded messages per dnstap identity (the first 64 distinct identities; later ones: \
         other; none or empty: \"\").",
    );
    for (i, id) in s.identities.iter().take(ids).enumerate() {
        t.sample(
            "identity_messages_total",
            &[("identity", id)],
            s.get(tr::OFF_ID_MSGS + i),
        );
    }
    t.family(
        "identity_bytes_total",
        "counter",
        "dnstap payload bytes of the decoded messages, per dnstap identity.",
    );
    for (i, id) in s.identities.iter().take(ids).enumerate() {
        t.sample(
            "identity_bytes_total",
            &[("identity", id)],
            s.get(tr::OFF_ID_BYTES + i),
        );
    }
    // Per identity and rcode / qtype: only the pairs seen (at most 66 × 13 and 66 × 30).
    t.family(
        "identity_responses_total",
        "counter",
        "Responses (QR set) per dnstap identity and 4-bit header RCODE (pairs seen only).",
    );
    for (i, id) in s.identities.iter().take(ids).enumerate() {
        for (rc, name) in tr::RCODES.iter().enumerate() {
            let v = s.get(tr::OFF_ID_RCODE + i * tr::RCODES.len() + rc);
            if v > 0 {
                t.sample(
                    "identity_responses_total",
                    &[("identity", id), ("rcode", name)],
                    v,
                );
            }
        }
    }
    t.family(
        "identity_qtype_messages_total",
        "counter",
        "Decoded messages per dnstap identity and QTYPE of their first question (pairs seen \
         only; labels as dns_qtype_messages_total).",
    );
    for (i, id) in s.identities.iter().take(ids).enumerate() {
        for q in 0..tr::QTYPE_SLOTS {
            let v = s.get(tr::OFF_ID_QTYPE + i * tr::QTYPE_SLOTS + q);
            if v > 0 {
                t.sample(
                    "identity_qtype_messages_total",
                    &[("identity", id), ("qtype", tr::qtype_label(q))],
                    v,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn scrape() -> Scrape {
        let (mut tc, shared) = traffic::TrafficCounter::new();
        for id in [&b"ns\"1\\x\n"[..], b"ns2", b""] {
            let r = Record {
                identity: Some(id),
                message_type: Some(6),
                ..Record::default()
            };
            tc.observe(&r, b"abc");
        }
        tc.publish();
        Scrape {
            totals: Snapshot {
                accepted: 3,
                closed: 1,
                frames: 10,
                filtered: 2,
                written: 5,
                dropped: 2,
                dropped_writer_gone: 1,
                decode_errors: 1,
                ..Snapshot::default()
            },
            inputs: vec![("tcp 127.0.0.1:6000".into(), InputCounts::default())],
            refused: vec![("allow_list", 2), ("tls", 1)],
            outputs: vec![("stdout".into(), OutputCounts::default())],
            traffic: Some(shared.snapshot()),
            latency: vec![(
                "global".into(),
                crate::transform::latency::LatencySnapshot {
                    histograms: vec![crate::transform::latency::IdentityHistogram {
                        identity: Some(b"ns2".to_vec()),
                        count: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )],
            ..Scrape::default()
        }
    }

    /// Every sample line's metric name belongs to the family declared just above it, and
    /// every family has HELP then TYPE exactly once.
    #[test]
    fn every_sample_follows_its_help_and_type() {
        let text = render(&scrape());
        let mut family = String::new();
        let mut seen = std::collections::HashSet::new();
        let mut series_seen = std::collections::HashSet::new();
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                let ty = lines.next().unwrap();
                assert!(ty.starts_with(&format!("# TYPE {name} ")), "{ty}");
                assert!(seen.insert(name.clone()), "{name} declared twice");
                if name.ends_with("_total") {
                    assert!(ty.ends_with(" counter"), "{ty}");
                }
                family = name;
                continue;
            }
            let series = l.rsplit_once(' ').unwrap().0;
            assert!(series_seen.insert(series.to_string()), "{series} twice");
            let metric = l.split(['{', ' ']).next().unwrap();
            assert!(
                metric == family
                    || (ty_is_histogram(&text, &family)
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| metric == format!("{family}{s}"))),
                "{metric} outside its family {family}"
            );
        }
        assert!(seen.len() > 30);
    }

    fn ty_is_histogram(text: &str, family: &str) -> bool {
        text.contains(&format!("# TYPE {family} histogram"))
    }

    #[test]
    fn accounting_and_escaping() {
        let text = render(&scrape());
        for want in [
            "dnstap_receiver_frames_received_total 10\n",
            "dnstap_receiver_messages_dropped_total{reason=\"queue_full\"} 1\n",
            "dnstap_receiver_messages_dropped_total{reason=\"writer_gone\"} 1\n",
            "dnstap_receiver_connections_open 2\n",
            "dnstap_receiver_connections_refused_total{reason=\"allow_list\"} 2\n",
            // identity_label doubles the backslash, the text format doubles both again.
            "dnstap_receiver_identity_messages_total{identity=\"ns\\\"1\\\\\\\\x\\n\"} 1\n",
            "dnstap_receiver_identity_messages_total{identity=\"\"} 1\n",
            "dnstap_receiver_identity_bytes_total{identity=\"ns2\"} 3\n",
            "dnstap_receiver_identity_qtype_messages_total{identity=\"ns2\",qtype=\"none\"} 1\n",
            "dnstap_receiver_dns_messages_total{type=\"CLIENT_RESPONSE\"} 3\n",
            "dnstap_receiver_dns_response_latency_seconds_bucket{le=\"0.0001\"} 0\n",
            "dnstap_receiver_dns_response_latency_seconds_bucket{le=\"10\"} 0\n",
            "dnstap_receiver_dns_response_latency_seconds_bucket{le=\"+Inf\"} 0\n",
            "dnstap_receiver_dns_response_latency_seconds_sum 0.000000000\n",
            "dnstap_receiver_input_frames_total{input=\"tcp 127.0.0.1:6000\"} 0\n",
            "dnstap_receiver_output_records_written_total{output=\"stdout\"} 0\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        // No response was seen: no (identity, rcode) pair is written.
        assert!(!text.contains("dnstap_receiver_identity_responses_total{"));
    }
}
