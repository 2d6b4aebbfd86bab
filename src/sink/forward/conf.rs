//! The forward output's settings, validated ([`ForwardConf`], [`TlsConf`]): what one
//! output connects to, how it formats, buffers, waits and replays, and the memory bound
//! that follows. Values only: no files are read and nothing connects here.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

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
    /// Name checked against the collector's certificate (a DNS name or an IP).
    pub server_name: String,
}

/// One forward output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardConf {
    pub host: String,
    pub port: u16,
    pub format: FormatKind,
    pub tls: Option<TlsConf>,
    pub connect_timeout: Duration,
    /// Longest wait between two connection attempts.
    pub reconnect_max: Duration,
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
    /// `forward HOST:PORT` or `forward+tls HOST:PORT`: log lines and metric labels.
    pub fn name(&self) -> String {
        let tls = if self.tls.is_some() { "+tls" } else { "" };
        if self.host.contains(':') {
            format!("forward{tls} [{}]:{}", self.host, self.port)
        } else {
            format!("forward{tls} {}:{}", self.host, self.port)
        }
    }

    /// Most bytes this output holds in memory: the queue, the replay window, the
    /// unacknowledged send queue (bounded by the kernel's largest send buffer, counted as
    /// 4 MiB, Linux's default `tcp_wmem` maximum), the chunk being filled, the one being
    /// written and the few kept for reuse (6 chunk allocations of chunk-size + 64 KiB). The
    /// chunks kept for replay are counted in wire bytes; their allocations are up to 64 KiB
    /// larger than their contents, hence the 5/4.
    pub fn memory_bound(&self) -> u64 {
        let chunk_alloc = self.chunk_bytes as u64 + (64 << 10);
        let kept = (self.replay_window + (4 << 20)) * 5 / 4;
        self.buffer.max_bytes as u64 + kept + 6 * chunk_alloc
    }
}
