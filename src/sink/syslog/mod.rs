//! The syslog output: each record as one syslog message (RFC 5424, or RFC 3164 on request)
//! whose MSG is the chosen format's line, to the local socket (`/dev/log`, unix datagram),
//! UDP, TCP with RFC 6587 octet counting, or TLS (RFC 5425). Knows nothing of inputs or of
//! the config file.
//!
//! * `message.rs`: [`SyslogWriter`], the header and the framing (sans-io but for the clock);
//! * `dgram.rs`: unix datagram and UDP: chunks through the forward output's
//!   [`ChunkBuffer`](crate::sink::buffer::ChunkBuffer), one datagram per message;
//! * TCP and TLS are the forward output itself ([`ForwardOutput`] with a [`SyslogWriter`]
//!   instead of a bare format): its buffer, overflow policies, reconnection, TLS client,
//!   acknowledgements and at-least-once replay, counted the same way. An octet-counted
//!   chunk is whole messages, so a replayed chunk is whole messages too.
//!
//! ```text
//!  writer: record ─► SyslogWriter ─► "LEN <PRI>1 TS HOST APP PID MSGID - line" ─► chunk
//!          chunk ─► ChunkBuffer (block / drop-newest / drop-oldest / spill)
//!  sender: tcp, tls ─► the chunk as it is (forward's collector connection)
//!          unix, udp ─► each message alone, the framing taken off
//! ```
#![forbid(unsafe_code)]

mod dgram;
mod message;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use dgram::{DgramConf, DgramOutput, Peer};
pub use message::{next_message, MessageConf, Rfc, SyslogWriter};

use crate::format::{FormatKind, Formatter};
use crate::sink::buffer::ChunkBuffer;
use crate::sink::forward::{ForwardConf, ForwardOutput};
use crate::sink::Output;
use crate::stats::OutputStats;

/// How the messages travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A unix datagram socket (`/dev/log`).
    Unix(PathBuf),
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Unix(_) => "unix",
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// One syslog output, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogConf {
    pub transport: Transport,
    pub format: FormatKind,
    pub message: MessageConf,
    /// The network part: the remote (one collector; none for `unix`), TLS, timeouts,
    /// chunk size and buffer (with its overflow policy), as for a forward output.
    pub net: ForwardConf,
}

impl SyslogConf {
    /// `syslog unix:/dev/log`, `syslog udp 10.0.0.2:514`, `syslog tls host:6514`: log lines
    /// and metric labels.
    pub fn name(&self) -> String {
        match &self.transport {
            Transport::Unix(p) => format!("syslog unix:{}", p.display()),
            t => {
                let remote = self
                    .net
                    .collectors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                format!("syslog {} {remote}", t.name())
            }
        }
    }
}

/// An output started, and the buffers whose give-up deadline shutdown sets.
pub type Started = (Box<dyn Output>, Vec<Arc<ChunkBuffer>>);

/// The output started, and its buffer (shutdown sets its give-up deadline).
pub fn start(conf: &SyslogConf, stats: Arc<OutputStats>) -> io::Result<Started> {
    let writer = SyslogWriter::new(Formatter::new(conf.format), &conf.message);
    let name = conf.name();
    let net = &conf.net;
    let peer = match &conf.transport {
        Transport::Tcp | Transport::Tls => {
            let out = ForwardOutput::start_with(net, name, writer, stats)?;
            let buffers = out.buffers();
            return Ok((Box::new(out), buffers));
        }
        Transport::Unix(p) => Peer::Unix(p.clone()),
        Transport::Udp => {
            let c = net
                .collectors
                .first()
                .ok_or_else(|| io::Error::other(format!("{name}: no remote")))?;
            Peer::Udp {
                host: c.host.clone(),
                port: c.port,
            }
        }
    };
    let dconf = DgramConf {
        peer,
        chunk_bytes: net.chunk_bytes,
        buffer: net.buffer.clone(),
        backoff_init: net.backoff_init,
        reconnect_max: net.reconnect_max,
        shutdown_timeout: net.shutdown_timeout,
    };
    let out = DgramOutput::start(name, &dconf, writer, stats)?;
    let b = out.buffer();
    Ok((Box::new(out), vec![b]))
}

/// The shutdown timeout (for the buffers' give-up deadline).
pub fn shutdown_timeout(conf: &SyslogConf) -> Duration {
    conf.net.shutdown_timeout
}

/// One line for the `-v` log.
pub fn describe(conf: &SyslogConf) -> String {
    let m = &conf.message;
    format!(
        "{} ({:?}, rfc {}, facility {}, severity {}, app-name {}, hostname {}, overflow {}, \
         buffer {} KiB)",
        conf.name(),
        conf.format,
        match m.rfc {
            Rfc::Rfc5424 => 5424,
            Rfc::Rfc3164 => 3164,
        },
        m.facility,
        m.severity,
        m.app_name,
        m.hostname,
        conf.net.buffer.policy.name(),
        conf.net.buffer.max_bytes >> 10,
    )
}
