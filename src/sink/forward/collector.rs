//! One collector connection of the forward output: connect (timeout, keepalive, TLS
//! handshake), write chunks whole, read the peer's TCP acknowledgements (SIOCOUTQ) and keep
//! every chunk written in the at-least-once replay window (`sent`) until it is acknowledged
//! plus `replay-window` bytes; on a break, put the window back at the buffer's front; at
//! shutdown, wait for the last acknowledgements and close cleanly. The sender thread
//! (`sender.rs`) decides when to call what; this file knows nothing of the writer thread,
//! formats or records. (The raw socket calls are [`crate::sink::sockopt`]'s.)
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::backoff::Backoff;
use super::conf::{CollectorAddr, ForwardConf};
use crate::sink::buffer::{Chunk, ChunkBuffer};
use crate::sink::sockopt;
use crate::stats::{CollectorStats, OutputStats};
use crate::{log_debug, log_warn};

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::ClientConnection>, TcpStream),
}

impl Conn {
    fn sock(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) | Conn::Tls(_, s) => s,
        }
    }
}

/// A chunk written on the current connection: `end` is the wire offset just after it.
struct Sent {
    chunk: Chunk,
    end: u64,
}

/// Outcome of one attempt to move data.
pub(super) enum Step {
    Ok,
    Broken(io::Error),
}

/// One collector connection. Invariants: chunks in `sent` are in write order with
/// non-decreasing `end`; `wire_acked <= wire_written`.
pub(super) struct Collector {
    /// The output's name (with several collectors, plus this one's address), for log lines.
    name: String,
    /// Index in the output's list (and in `stats.collectors`).
    index: usize,
    host: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    connect_timeout: Duration,
    keepalive: Duration,
    replay_window: u64,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    conn: Option<Conn>,
    sent: VecDeque<Sent>,
    wire_written: u64,
    wire_acked: u64,
    backoff: Backoff,
    connected_once: bool,
    failed_once: bool,
    ttl: Option<Duration>,
    connected_at: Instant,
    /// The last connection was closed for its age: the next one is opened at once.
    renew: bool,
    /// Same, kept until the connection is made (not counted in `reconnects`).
    renewed: bool,
    scratch: Vec<u8>,
}

/// How long one blocking write may wait before the sender checks for shutdown.
const WRITE_SLICE: Duration = Duration::from_millis(500);

impl Collector {
    /// Not connected yet: the first [`Collector::connect`] does not wait.
    pub(super) fn new(
        name: String,
        index: usize,
        addr: &CollectorAddr,
        conf: &ForwardConf,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
        buffer: Arc<ChunkBuffer>,
        stats: Arc<OutputStats>,
    ) -> Collector {
        Collector {
            name,
            index,
            host: addr.host.clone(),
            port: addr.port,
            tls,
            connect_timeout: conf.connect_timeout,
            keepalive: conf.keepalive,
            replay_window: conf.replay_window,
            buffer,
            stats,
            conn: None,
            sent: VecDeque::new(),
            wire_written: 0,
            wire_acked: 0,
            backoff: Backoff::new(conf.backoff_init, conf.reconnect_max),
            connected_once: false,
            failed_once: false,
            ttl: conf.ttl,
            connected_at: Instant::now(),
            renew: false,
            renewed: false,
            scratch: vec![0; 16 << 10],
        }
    }

    /// This collector's own counters (when the output registered them).
    fn own(&self) -> Option<&CollectorStats> {
        self.stats.collectors.get().and_then(|v| v.get(self.index))
    }

    fn count_failure(&mut self) {
        self.failed_once = true;
        if let Some(c) = self.own() {
            c.connection_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn released(&self, chunk: Chunk) {
        if let Some(c) = self.own() {
            c.delivered
                .fetch_add(chunk.records as u64, Ordering::Relaxed);
        }
        self.buffer.delivered(chunk);
    }

    /// The connection has lived longer than `ttl`.
    pub(super) fn expired(&self) -> bool {
        self.conn.is_some() && self.ttl.is_some_and(|t| self.connected_at.elapsed() >= t)
    }

    /// After a clean close for age: the next connection is opened without waiting and is
    /// not counted as a reconnect.
    pub(super) fn renew(&mut self) {
        self.renew = true;
        self.renewed = true;
    }

    fn renewing_ok(&mut self) -> bool {
        std::mem::take(&mut self.renewed)
    }

    pub(super) fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops the connection (without a clean close: for the end of the thread).
    pub(super) fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Takes the chunks of the replay window, oldest first (at the end of the thread).
    pub(super) fn take_sent(&mut self) -> Vec<Chunk> {
        self.sent.drain(..).map(|s| s.chunk).collect()
    }

    fn buffer_closed(&self) -> bool {
        self.buffer.is_closed()
    }

    /// Nothing held in memory (by us or the buffer). Records on disk do not count: at
    /// shutdown without a connection they stay in the spill queue for the next run.
    pub(super) fn nothing_in_memory(&self) -> bool {
        self.sent.is_empty() && self.buffer.queued().0 == 0
    }

    fn past_deadline(&self) -> bool {
        self.buffer.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// One connection attempt (after the backoff wait for a retry). True when connected.
    pub(super) fn connect(&mut self) -> bool {
        if (self.connected_once || self.failed_once) && !std::mem::take(&mut self.renew) {
            // Only a retry waits; the wait is cut short by shutdown.
            let wait = self.backoff.next();
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if self.past_deadline() || (self.buffer_closed() && self.nothing_in_memory()) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
            }
        }
        match self.open() {
            Ok(conn) => {
                self.connected_at = Instant::now();
                if self.connected_once && !self.renewing_ok() {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                log_debug!("output {}: connected", self.name);
                self.connected_once = true;
                self.conn = Some(conn);
                self.wire_written = 0;
                self.wire_acked = 0;
                true
            }
            Err(e) => {
                self.renewed = false;
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                self.count_failure();
                log_warn!("output {}: cannot connect: {e}", self.name);
                false
            }
        }
    }

    fn open(&self) -> io::Result<Conn> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.connect_timeout) {
                Ok(s) => return self.setup(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn setup(&self, s: TcpStream) -> io::Result<Conn> {
        s.set_nodelay(true)?;
        let ka = self.keepalive;
        sockopt::set_keepalive(
            s.as_fd(),
            ka,
            (ka / 3).max(Duration::from_secs(1)),
            3,
            ka * 2,
        )?;
        let Some((cfg, sn)) = &self.tls else {
            s.set_write_timeout(Some(WRITE_SLICE))?;
            return Ok(Conn::Plain(s));
        };
        let mut tls =
            rustls::ClientConnection::new(Arc::clone(cfg), sn.clone()).map_err(io::Error::other)?;
        let mut s = s;
        s.set_read_timeout(Some(self.connect_timeout))?;
        s.set_write_timeout(Some(self.connect_timeout))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut s)?;
        }
        s.set_write_timeout(Some(WRITE_SLICE))?;
        Ok(Conn::Tls(Box::new(tls), s))
    }

    /// Writes one chunk whole; on success it joins `sent`.
    pub(super) fn write_chunk(&mut self, chunk: Chunk) -> Step {
        if chunk.resend {
            self.stats
                .resent
                .fetch_add(chunk.records as u64, Ordering::Relaxed);
            if let Some(c) = self.own() {
                c.resent.fetch_add(chunk.records as u64, Ordering::Relaxed);
            }
        }
        let r = match self.conn.as_mut() {
            Some(Conn::Plain(s)) => write_plain(s, &chunk.data, &self.buffer),
            Some(Conn::Tls(tls, s)) => write_tls(tls, s, &chunk.data, &self.buffer),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "not connected")),
        };
        match r {
            Ok(n) => {
                self.wire_written += n;
                let end = self.wire_written;
                self.sent.push_back(Sent { chunk, end });
                Step::Ok
            }
            Err(e) => {
                // Part of it may have gone out: it is re-sent with the rest.
                let end = self.wire_written;
                self.sent.push_back(Sent {
                    chunk: Chunk {
                        resend: false,
                        ..chunk
                    },
                    end,
                });
                Step::Broken(e)
            }
        }
    }

    /// Nothing to send: notice a collector that closed, and let TLS read what it sent.
    pub(super) fn poll_peer(&mut self) -> Step {
        let Some(conn) = self.conn.as_mut() else {
            return Step::Ok;
        };
        loop {
            match sockopt::recv_nonblocking(conn.sock().as_fd(), &mut self.scratch) {
                Ok(None) => return Step::Ok,
                Ok(Some(0)) => {
                    return Step::Broken(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the collector closed the connection",
                    ))
                }
                Ok(Some(n)) => {
                    if let Conn::Tls(tls, _) = conn {
                        let mut rd = &self.scratch[..n];
                        while !rd.is_empty() {
                            if let Err(e) = tls.read_tls(&mut rd) {
                                return Step::Broken(e);
                            }
                            if let Err(e) = tls.process_new_packets() {
                                return Step::Broken(io::Error::other(e));
                            }
                        }
                        // Application data from the collector is not expected; discard it.
                        let mut sink = [0u8; 4096];
                        while let Ok(k) = tls.reader().read(&mut sink) {
                            if k == 0 {
                                return Step::Broken(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the collector ended the TLS session",
                                ));
                            }
                        }
                    }
                    // Plain TCP: a collector has nothing to say; discard.
                }
                Err(e) => return Step::Broken(e),
            }
        }
    }

    /// Reads how much the peer acknowledged and releases chunks past the replay window.
    pub(super) fn update_acks(&mut self) -> Step {
        let Some(conn) = self.conn.as_ref() else {
            return Step::Ok;
        };
        match sockopt::unacked_bytes(conn.sock().as_fd()) {
            Ok(outq) => {
                let acked = self.wire_written.saturating_sub(outq);
                if acked > self.wire_acked {
                    self.backoff.reset();
                    self.wire_acked = acked;
                }
            }
            Err(e) => return Step::Broken(e),
        }
        while let Some(s) = self.sent.front() {
            if s.end + self.replay_window > self.wire_acked {
                break;
            }
            if let Some(s) = self.sent.pop_front() {
                self.released(s.chunk);
            }
        }
        Step::Ok
    }

    /// The connection failed: everything written on it goes back to the front of the buffer.
    pub(super) fn broken(&mut self, e: &io::Error) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        self.count_failure();
        let n: u64 = self.sent.iter().map(|s| s.chunk.records as u64).sum();
        log_warn!(
            "output {}: connection lost ({e}); {n} records written since the last confirmed \
             point will be sent again",
            self.name
        );
        self.conn = None;
        let sent: Vec<Chunk> = self.sent.drain(..).map(|s| s.chunk).collect();
        self.buffer.requeue_front(sent.into_iter());
    }

    /// Everything is written: wait (bounded by the shutdown deadline) until the peer has
    /// acknowledged it all, then close. True when done; false when the connection broke
    /// (the caller reconnects and re-sends).
    pub(super) fn drain_and_close(&mut self) -> bool {
        self.drain_and_close_by(None)
    }

    /// [`Self::drain_and_close`], giving up (false, still connected) at `limit`.
    pub(super) fn drain_and_close_by(&mut self, limit: Option<Instant>) -> bool {
        if self.conn.is_none() {
            return self.sent.is_empty();
        }
        loop {
            if limit.is_some_and(|l| Instant::now() >= l) {
                return false;
            }
            if let Step::Broken(e) = self.update_acks() {
                self.broken(&e);
                return false;
            }
            if self.wire_acked >= self.wire_written {
                break;
            }
            if self.past_deadline() {
                return false;
            }
            if let Step::Broken(e) = self.poll_peer() {
                self.broken(&e);
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // All acknowledged by the peer's TCP: close cleanly (TLS close_notify, then FIN).
        if let Some(Conn::Tls(tls, s)) = self.conn.as_mut() {
            tls.send_close_notify();
            let _ = write_tls_pending(tls, s, &self.buffer);
        }
        if let Some(c) = self.conn.take() {
            let _ = c.sock().shutdown(std::net::Shutdown::Write);
        }
        let sent: Vec<Sent> = self.sent.drain(..).collect();
        for s in sent {
            self.released(s.chunk);
        }
        true
    }
}

/// Writes all of `data` to a blocking socket with a write timeout; a timeout is retried
/// until the buffer's shutdown deadline passes. Returns the bytes written.
fn write_plain(s: &mut TcpStream, data: &[u8], buf: &ChunkBuffer) -> io::Result<u64> {
    let mut off = 0;
    while off < data.len() {
        match s.write(&data[off..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => off += n,
            Err(e) if retryable(&e) => check_deadline(buf)?,
            Err(e) => return Err(e),
        }
    }
    Ok(data.len() as u64)
}

/// Encrypts `data` and writes the TLS records; returns the encrypted bytes written.
fn write_tls(
    tls: &mut rustls::ClientConnection,
    s: &mut TcpStream,
    data: &[u8],
    buf: &ChunkBuffer,
) -> io::Result<u64> {
    let mut off = 0;
    let mut wire = 0;
    while off < data.len() {
        let n = tls.writer().write(&data[off..])?;
        off += n;
        wire += write_tls_pending(tls, s, buf)?;
        if n == 0 && !tls.wants_write() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "TLS took nothing"));
        }
    }
    Ok(wire)
}

fn write_tls_pending(
    tls: &mut rustls::ClientConnection,
    s: &mut TcpStream,
    buf: &ChunkBuffer,
) -> io::Result<u64> {
    let mut wire = 0;
    while tls.wants_write() {
        match tls.write_tls(s) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => wire += n as u64,
            Err(e) if retryable(&e) => check_deadline(buf)?,
            Err(e) => return Err(e),
        }
    }
    Ok(wire)
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn check_deadline(buf: &ChunkBuffer) -> io::Result<()> {
    match buf.deadline() {
        Some(d) if Instant::now() >= d => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the collector does not take data and shutdown time is up",
        )),
        _ => Ok(()),
    }
}
