//! The syslog output over datagrams: the local socket (`/dev/log`, unix datagram) or UDP.
//! The writer thread frames messages into chunks ([`SyslogWriter`]) and pushes them to the
//! output's [`ChunkBuffer`] (so the overflow policies are the forward output's); one sender
//! thread pops chunks and sends each message as one datagram. A send that fails (the syslog
//! daemon is down or restarting: `ENOENT`, `ECONNREFUSED`) counts a write error, keeps the
//! rest of the chunk, and the socket is opened again after the forward output's backoff;
//! what was sent before the failure is counted delivered. Over UDP a refusal (`ECONNREFUSED`,
//! the ICMP report of an earlier datagram) is counted and the datagram sent again at once
//! (`Sender::send_one`). "Delivered" means handed to the kernel: a datagram the peer never
//! reads is not seen here (UDP gives no acknowledgement).
#![forbid(unsafe_code)]

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::message::{next_message, SyslogWriter};
use crate::record::Record;
use crate::sink::buffer::{BufferSpec, Chunk, ChunkBuffer, Popped};
use crate::sink::forward::backoff::Backoff;
use crate::sink::{Output, RecordWriter};
use crate::stats::OutputStats;
use crate::{log_debug, log_warn};

/// Where the datagrams go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Unix(PathBuf),
    Udp { host: String, port: u16 },
}

/// The datagram output's settings (from the syslog output's, validated).
#[derive(Clone, Debug)]
pub struct DgramConf {
    pub peer: Peer,
    pub chunk_bytes: usize,
    pub buffer: BufferSpec,
    pub backoff_init: Duration,
    pub reconnect_max: Duration,
    pub shutdown_timeout: Duration,
}

/// What the writer thread calls.
#[derive(Debug)]
pub struct DgramOutput {
    name: String,
    writer: SyslogWriter,
    chunk: Vec<u8>,
    /// Records in `chunk`.
    records: u32,
    chunk_bytes: usize,
    shutdown_timeout: Duration,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    sender: Option<JoinHandle<()>>,
}

impl DgramOutput {
    /// Opens the buffer (and spill directory) and starts the sender thread; a peer that is
    /// not there yet is not an error (records wait in the buffer).
    pub fn start(
        name: String,
        conf: &DgramConf,
        writer: SyslogWriter,
        stats: Arc<OutputStats>,
    ) -> io::Result<DgramOutput> {
        let (buffer, recovered) = ChunkBuffer::new(&name, &conf.buffer, Arc::clone(&stats))?;
        if let Some(r) = recovered.filter(|r| r.records > 0) {
            log_debug!(
                "output {name}: {} records in {} spill segments from a previous run, sent first",
                r.records,
                r.segments
            );
        }
        let buffer = Arc::new(buffer);
        let mut sender = Sender {
            name: name.clone(),
            peer: conf.peer.clone(),
            buffer: Arc::clone(&buffer),
            stats: Arc::clone(&stats),
            backoff: Backoff::new(conf.backoff_init, conf.reconnect_max),
            sock: None,
            tried: false,
            down_logged: false,
            refused_logged: false,
        };
        let sender = std::thread::Builder::new()
            .name("syslog".into())
            .spawn(move || sender.run())?;
        Ok(DgramOutput {
            name,
            writer,
            chunk: buffer.take_vec(conf.chunk_bytes + (64 << 10)),
            records: 0,
            chunk_bytes: conf.chunk_bytes,
            shutdown_timeout: conf.shutdown_timeout,
            buffer,
            stats,
            sender: Some(sender),
        })
    }

    /// The buffer, so that shutdown can set its give-up deadline.
    pub fn buffer(&self) -> Arc<ChunkBuffer> {
        Arc::clone(&self.buffer)
    }

    fn push_chunk(&mut self) {
        if self.records == 0 {
            return;
        }
        // As the forward output: a small chunk gets an allocation of its own size, so the
        // memory bound is not eaten by mostly empty chunk-size allocations.
        let data = if self.chunk.len() < self.chunk_bytes / 4 {
            let small = self.chunk.as_slice().to_vec();
            self.chunk.clear();
            small
        } else {
            let fresh = self.buffer.take_vec(self.chunk_bytes + (64 << 10));
            std::mem::replace(&mut self.chunk, fresh)
        };
        let records = std::mem::take(&mut self.records);
        self.buffer.push(Chunk {
            data,
            records,
            resend: false,
        });
    }
}

impl Output for DgramOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn set_sample_rate(&mut self, rate: u32) {
        self.writer.set_sample_rate(rate);
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
        self.writer.write_record(rec, &mut self.chunk);
        self.records += 1;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if self.chunk.len() >= self.chunk_bytes || self.records == u32::MAX {
            self.push_chunk();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_chunk();
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.push_chunk();
        self.buffer
            .give_up_at(Instant::now() + self.shutdown_timeout);
        self.buffer.close();
        if let Some(h) = self.sender.take() {
            if h.join().is_err() {
                return Err(io::Error::other(format!(
                    "{}: sender thread panicked",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

impl Drop for DgramOutput {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let _ = self.finish();
        }
    }
}

enum Sock {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Sock {
    fn send(&self, msg: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Unix(s) => s.send(msg),
            Sock::Udp(s) => s.send(msg),
        }
    }
}

/// How long one blocked send (a full receive queue on the local socket) waits before the
/// sender checks for shutdown.
const SEND_SLICE: Duration = Duration::from_millis(500);

/// UDP refusals (reports of earlier datagrams) taken in a row for one datagram before the
/// socket is reopened after the backoff.
const MAX_REFUSALS_PER_SEND: u32 = 8;

/// The sender thread.
struct Sender {
    name: String,
    peer: Peer,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    backoff: Backoff,
    sock: Option<Sock>,
    /// A socket was opened or tried before (the next attempt waits the backoff).
    tried: bool,
    /// The peer's absence was logged (once per outage).
    down_logged: bool,
    /// A UDP refusal was logged (once per run; each one is counted).
    refused_logged: bool,
}

impl Sender {
    fn run(&mut self) {
        // The chunk being sent and the offset of its first unsent message.
        let mut held: Option<Chunk> = None;
        loop {
            if held.is_none() {
                match self.buffer.pop(Duration::from_millis(100)) {
                    Popped::Chunk(c) => held = Some(c),
                    Popped::Empty => continue,
                    Popped::Finished => break,
                }
            }
            if self.past_deadline() && self.buffer.is_closed() {
                break;
            }
            if self.sock.is_none() && !self.open() {
                continue;
            }
            let Some(chunk) = held.take() else {
                continue;
            };
            match self.send_chunk(chunk) {
                None => self.backoff.reset(),
                Some(rest) => held = Some(rest),
            }
        }
        let (kept, lost) = self.buffer.finish_consumer(held.into_iter().collect());
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
    }

    fn past_deadline(&self) -> bool {
        self.buffer.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// One attempt to open the socket (after the backoff wait for a retry, cut short by
    /// shutdown). True when open.
    fn open(&mut self) -> bool {
        if std::mem::replace(&mut self.tried, true) {
            let until = Instant::now() + self.backoff.next();
            while Instant::now() < until {
                if self.past_deadline() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
            }
        }
        match self.connect() {
            Ok(s) => {
                if self.down_logged {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    log_debug!("output {}: the peer is back", self.name);
                }
                self.down_logged = false;
                self.sock = Some(s);
                true
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut self.down_logged, true) {
                    log_warn!("output {}: cannot send: {e}", self.name);
                }
                false
            }
        }
    }

    fn connect(&self) -> io::Result<Sock> {
        match &self.peer {
            Peer::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_write_timeout(Some(SEND_SLICE))?;
                Ok(Sock::Unix(s))
            }
            Peer::Udp { host, port } => {
                let addrs: Vec<SocketAddr> = (host.as_str(), *port).to_socket_addrs()?.collect();
                let a = addrs.first().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "the name has no address")
                })?;
                let local: SocketAddr = if a.is_ipv4() {
                    "0.0.0.0:0".parse().map_err(io::Error::other)?
                } else {
                    "[::]:0".parse().map_err(io::Error::other)?
                };
                let s = UdpSocket::bind(local)?;
                s.connect(a)?;
                Ok(Sock::Udp(s))
            }
        }
    }

    /// Sends every message of `chunk`; `None` when all went out (counted delivered), else
    /// the unsent rest (what went out before the failure is counted delivered).
    fn send_chunk(&mut self, mut chunk: Chunk) -> Option<Chunk> {
        let mut at = 0;
        let mut sent = 0u32;
        let failure = loop {
            let Some((msg, end)) = next_message(&chunk.data, at) else {
                break None;
            };
            match self.send_one(msg) {
                Ok(()) => {
                    at = end;
                    sent += 1;
                }
                Err(e) => break Some(e),
            }
        };
        let Some(e) = failure else {
            self.buffer.delivered(chunk);
            return None;
        };
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        if !std::mem::replace(&mut self.down_logged, true) {
            log_warn!("output {}: send failed: {e}", self.name);
        }
        self.sock = None;
        if sent == 0 {
            return Some(chunk);
        }
        let rest = Chunk {
            data: chunk.data[at..].to_vec(),
            records: chunk.records - sent,
            resend: false,
        };
        chunk.data.truncate(at);
        chunk.records = sent;
        self.buffer.delivered(chunk);
        Some(rest)
    }

    /// One datagram; a send blocked by a full local queue is retried until shutdown time
    /// is up.
    ///
    /// Over UDP, `ECONNREFUSED` reports the ICMP "port unreachable" of an *earlier*
    /// datagram (the kernel keeps it on the connected socket and fails the next send with
    /// it, clearing it): counted as a write error and logged once, and the same datagram is
    /// sent again at once. Closing the socket and waiting the backoff instead would hold
    /// every following datagram for a backoff each while nobody listens (a stalled
    /// pipeline under `block`, every record dropped at shutdown), for a transport that
    /// promises nothing past the kernel.
    fn send_one(&mut self, msg: &[u8]) -> io::Result<()> {
        let Some(s) = &self.sock else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no socket"));
        };
        let mut refused = 0u32;
        loop {
            match s.send(msg) {
                Ok(_) => return Ok(()),
                // Each report is one earlier datagram's (several may be on their way over
                // a network); a long run of them falls back to reopening after the backoff.
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        && matches!(s, Sock::Udp(_))
                        && refused < MAX_REFUSALS_PER_SEND =>
                {
                    refused += 1;
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    if !std::mem::replace(&mut self.refused_logged, true) {
                        log_warn!(
                            "output {}: the collector refuses datagrams (ICMP port \
                             unreachable): nobody listens there; counted in write-errors",
                            self.name
                        );
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) && !self.past_deadline() => {}
                Err(e) => return Err(e),
            }
        }
    }
}
