//! The forward output's settings, validated ([`ForwardConf`], [`TlsConf`]): what one
//! output connects to, how it formats, buffers, waits and replays, and the memory bound
//! that follows. Values only: no files are read and nothing connects here (the TLS client
//! configuration arrives compiled, see `tls.rs`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use super::hash::HashKey;
use super::tls::ClientTls;
use crate::format::FormatKind;
use crate::sink::buffer::BufferSpec;

/// TLS towards the collector, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConf {
    /// PEM bundle of the CAs that may sign the collector's certificate.
    pub ca: PathBuf,
    /// Client certificate chain (PEM) and its key, when the collector asks for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name checked against every collector's certificate (a DNS name or an IP); when
    /// unset, each collector's own host.
    pub server_name: Option<String>,
    /// The files above, read and compiled once (equal when the files' bytes are).
    pub client: ClientTls,
}

/// One collector: a name or address and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for CollectorAddr {
    /// `host:port`, `[v6]:port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How chunks are spread over several collectors (`loadbalance:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalance {
    /// One collector at a time (the home one, picked at random at start); when it fails,
    /// the next one takes over until the home one is up again.
    #[default]
    Failover,
    /// Chunks in strict rotation over the healthy collectors (a stalled one is skipped).
    RoundRobin,
    /// Records with the same key go to the same healthy collector (rendezvous hashing).
    Hash(HashKey),
}

impl LoadBalance {
    pub fn name(self) -> &'static str {
        match self {
            LoadBalance::Failover => "failover",
            LoadBalance::RoundRobin => "round-robin",
            LoadBalance::Hash(_) => "hash",
        }
    }
}

/// One forward output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardConf {
    /// At least one; in the order written.
    pub collectors: Vec<CollectorAddr>,
    pub loadbalance: LoadBalance,
    /// Connections (each with its sender thread) to every collector.
    pub connections_per_host: usize,
    pub format: FormatKind,
    pub tls: Option<TlsConf>,
    pub connect_timeout: Duration,
    /// First wait before reconnecting to a collector (doubles up to `reconnect_max`).
    pub backoff_init: Duration,
    /// Longest wait between two connection attempts.
    pub reconnect_max: Duration,
    /// A connection older than this is closed cleanly (once what it carried is
    /// acknowledged) and opened again, so that a name is resolved again (`ttl`).
    pub ttl: Option<Duration>,
    /// How long shutdown keeps trying to deliver (then spills or drops, counted).
    pub shutdown_timeout: Duration,
    /// TCP keepalive idle time (probes every idle/3, 3 probes).
    pub keepalive: Duration,
    /// A chunk is pushed to the buffer once it holds this many bytes.
    pub chunk_bytes: usize,
    pub buffer: BufferSpec,
    /// Acknowledged bytes kept for replay after a break (see the module doc).
    pub replay_window: u64,
}

impl ForwardConf {
    /// `forward HOST:PORT` or `forward+tls HOST:PORT` (several collectors: comma-separated):
    /// log lines and metric labels.
    pub fn name(&self) -> String {
        let tls = if self.tls.is_some() { "+tls" } else { "" };
        let list: Vec<String> = self.collectors.iter().map(|c| c.to_string()).collect();
        format!("forward{tls} {}", list.join(","))
    }

    /// Most bytes this output holds in memory: the queue, the replay window, the
    /// unacknowledged send queue (bounded by the kernel's largest send buffer, counted as
    /// 4 MiB, Linux's default `tcp_wmem` maximum) per connection, the chunk being filled, the
    /// one each connection is writing and the few kept for reuse (5 + connections chunk
    /// allocations of chunk-size + 64 KiB). The
    /// chunks kept for replay are counted in wire bytes; their allocations are up to 64 KiB
    /// larger than their contents, hence the 5/4.
    pub fn memory_bound(&self) -> u64 {
        let chunk_alloc = self.chunk_bytes as u64 + (64 << 10);
        let n = (self.collectors.len() * self.connections_per_host).max(1) as u64;
        let kept = (self.replay_window + (4 << 20)) * 5 / 4;
        self.buffer.max_bytes as u64 + n * kept + (5 + n) * chunk_alloc
    }
}
