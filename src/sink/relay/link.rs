//! One remote of the relay output, on its own thread: connect (unix, TCP or TLS), the
//! sender's Frame Streams handshake ([`SenderHandshake`]: READY, wait for ACCEPT, START),
//! chunks of data frames written whole, kept until the peer's kernel has taken them plus
//! `replay-window` bytes (SIOCOUTQ), put back at the buffer's front on a break; at the end
//! STOP, then FINISH awaited (the peer has read everything) before closing. Knows nothing
//! of records.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::{RelayAddr, RelayConf};
use crate::framestream::{SenderEvent, SenderHandshake};
use crate::sink::buffer::{Chunk, ChunkBuffer, Popped};
use crate::sink::forward::backoff::Backoff;
use crate::sink::sockopt;
use crate::stats::{CollectorStats, OutputStats};
use crate::{log_debug, log_warn};

type TlsSetup = (Arc<rustls::ClientConfig>, ServerName<'static>);

enum Wire {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<rustls::ClientConnection>, TcpStream),
}

impl Wire {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Wire::Unix(s) => s.as_fd(),
            Wire::Tcp(s) | Wire::Tls(_, s) => s.as_fd(),
        }
    }

    fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        match self {
            Wire::Unix(s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))
            }
            Wire::Tcp(s) | Wire::Tls(_, s) => {
                s.set_read_timeout(Some(read))?;
                s.set_write_timeout(Some(write))
            }
        }
    }

    /// Writes all of `data`; returns the bytes put on the wire (TLS: encrypted). A write
    /// timeout is retried until `deadline` (when set) passes.
    fn write_all(&mut self, data: &[u8], deadline: Option<Instant>) -> io::Result<u64> {
        let retry = |e: &io::Error| -> io::Result<()> {
            let again = matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            );
            if again && deadline.is_none_or(|d| Instant::now() < d) {
                Ok(())
            } else {
                Err(io::Error::new(e.kind(), e.to_string()))
            }
        };
        match self {
            Wire::Unix(s) => write_retrying(s, data, retry),
            Wire::Tcp(s) => write_retrying(s, data, retry),
            Wire::Tls(tls, s) => {
                let mut off = 0;
                let mut wire = 0;
                while off < data.len() || tls.wants_write() {
                    if off < data.len() {
                        off += tls.writer().write(&data[off..])?;
                    }
                    while tls.wants_write() {
                        match tls.write_tls(s) {
                            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                            Ok(n) => wire += n as u64,
                            Err(e) => retry(&e)?,
                        }
                    }
                }
                Ok(wire)
            }
        }
    }

    /// Reads some plaintext (blocking, with the read timeout).
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Unix(s) => s.read(buf),
            Wire::Tcp(s) => s.read(buf),
            Wire::Tls(tls, s) => loop {
                match tls.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if tls.read_tls(s)? == 0 {
                            return Ok(0);
                        }
                        tls.process_new_packets().map_err(io::Error::other)?;
                        // Whatever the session answers (alerts, key updates) goes out now.
                        while tls.wants_write() {
                            tls.write_tls(s)?;
                        }
                    }
                    Err(e) => return Err(e),
                }
            },
        }
    }
}

fn write_retrying(
    s: &mut impl Write,
    data: &[u8],
    retry: impl Fn(&io::Error) -> io::Result<()>,
) -> io::Result<u64> {
    let mut off = 0;
    while off < data.len() {
        match s.write(&data[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) => retry(&e)?,
        }
    }
    Ok(data.len() as u64)
}

/// A chunk written on the current connection; `end` is the wire offset just after it.
struct Sent {
    chunk: Chunk,
    end: u64,
}

/// One remote. Invariants: `sent` in write order, `end` non-decreasing;
/// `wire_acked <= wire_written`.
pub(super) struct Link {
    name: String,
    addr: RelayAddr,
    tls: Option<TlsSetup>,
    connect_timeout: Duration,
    replay_window: u64,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    healthy: Arc<Vec<AtomicBool>>,
    index: usize,
    wire: Option<Wire>,
    sent: VecDeque<Sent>,
    wire_written: u64,
    wire_acked: u64,
    backoff: Backoff,
    tried: bool,
    connected_once: bool,
    /// The current connection's handshake (in `Data` once connected).
    hs: Option<SenderHandshake>,
    ctl: Vec<u8>,
}

/// How long one blocking write or read waits before the thread looks at shutdown.
const SLICE: Duration = Duration::from_millis(500);

impl Link {
    pub(super) fn new(
        name: String,
        addr: RelayAddr,
        conf: &RelayConf,
        tls: Option<TlsSetup>,
        buffer: Arc<ChunkBuffer>,
        stats: Arc<OutputStats>,
        (healthy, index): (Arc<Vec<AtomicBool>>, usize),
    ) -> Link {
        Link {
            name,
            addr,
            tls,
            connect_timeout: conf.connect_timeout,
            replay_window: conf.replay_window,
            buffer,
            stats,
            healthy,
            index,
            wire: None,
            sent: VecDeque::new(),
            wire_written: 0,
            wire_acked: 0,
            backoff: Backoff::new(conf.backoff_init, conf.reconnect_max),
            tried: false,
            connected_once: false,
            hs: None,
            ctl: Vec::with_capacity(64),
        }
    }

    /// This remote's own counters.
    fn own(&self) -> Option<&CollectorStats> {
        self.stats.collectors.get().and_then(|v| v.get(self.index))
    }

    fn release(&self, chunk: Chunk) {
        if let Some(c) = self.own() {
            c.delivered
                .fetch_add(chunk.records as u64, Ordering::Relaxed);
        }
        self.buffer.delivered(chunk);
    }

    fn count_failure(&self) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.own() {
            c.connection_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn set_healthy(&self, up: bool) {
        if let Some(h) = self.healthy.get(self.index) {
            h.store(up, Ordering::Relaxed);
        }
    }

    fn past_deadline(&self) -> bool {
        self.buffer.deadline().is_some_and(|d| Instant::now() >= d)
    }

    pub(super) fn run(&mut self) {
        loop {
            if self.wire.is_none() {
                let closed = self.buffer.is_closed();
                if closed && (self.past_deadline() || self.nothing_held()) {
                    break;
                }
                if !self.connect() {
                    continue;
                }
            }
            let step = match self.buffer.pop(Duration::from_millis(100)) {
                Popped::Chunk(c) => self.write_chunk(c),
                Popped::Empty => self.poll_peer(),
                Popped::Finished => {
                    if self.finish_stream() {
                        break;
                    }
                    continue;
                }
            };
            let step = step.and_then(|()| self.update_acks());
            if let Err(e) = step {
                self.broken(&e);
            }
        }
        let leftovers: Vec<Chunk> = self.sent.drain(..).map(|s| s.chunk).collect();
        let (kept, lost) = self.buffer.finish_consumer(leftovers);
        if kept + lost > 0 {
            log_warn!(
                "output {}: {lost} records not delivered at shutdown (counted as dropped), {kept} spilled",
                self.name
            );
        }
    }

    fn nothing_held(&self) -> bool {
        self.sent.is_empty() && self.buffer.queued().0 == 0
    }

    /// One attempt (after the backoff wait for a retry, cut short by shutdown): connect
    /// and do the handshake up to START.
    fn connect(&mut self) -> bool {
        if std::mem::replace(&mut self.tried, true) {
            let until = Instant::now() + self.backoff.next();
            while Instant::now() < until {
                if self.past_deadline() || (self.buffer.is_closed() && self.nothing_held()) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            }
        }
        match self.open() {
            Ok((w, hs)) => {
                self.hs = Some(hs);
                if self.connected_once {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.connected_once = true;
                self.wire = Some(w);
                self.set_healthy(true);
                log_debug!("output {}: connected", self.name);
                true
            }
            Err(e) => {
                self.count_failure();
                self.set_healthy(false);
                log_warn!("output {}: cannot connect: {e}", self.name);
                false
            }
        }
    }

    fn open(&mut self) -> io::Result<(Wire, SenderHandshake)> {
        let mut w = match &self.addr {
            RelayAddr::Unix(p) => Wire::Unix(UnixStream::connect(p)?),
            RelayAddr::Tcp { host, port } => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
                let mut got = None;
                for a in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&a, self.connect_timeout) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = got.ok_or(last)?;
                s.set_nodelay(true)?;
                match &self.tls {
                    Some((cfg, sn)) => {
                        let mut tls = rustls::ClientConnection::new(Arc::clone(cfg), sn.clone())
                            .map_err(io::Error::other)?;
                        let mut s = s;
                        s.set_read_timeout(Some(self.connect_timeout))?;
                        s.set_write_timeout(Some(self.connect_timeout))?;
                        while tls.is_handshaking() {
                            tls.complete_io(&mut s)?;
                        }
                        Wire::Tls(Box::new(tls), s)
                    }
                    None => Wire::Tcp(s),
                }
            }
        };
        w.set_timeouts(self.connect_timeout, self.connect_timeout)?;
        let mut hs = SenderHandshake::new();
        self.ctl.clear();
        hs.write_ready(&mut self.ctl).map_err(io::Error::other)?;
        let limit = Some(Instant::now() + self.connect_timeout);
        let mut wire = w.write_all(&self.ctl, limit)?;
        // ACCEPT: at most a control frame; read until the handshake says it is whole.
        let mut got = Vec::with_capacity(64);
        let mut b = [0u8; 512];
        loop {
            let n = w.read_some(&mut b)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            got.extend_from_slice(&b[..n]);
            let step = hs.on_read(&got).map_err(io::Error::other)?;
            if step.event == SenderEvent::Accepted {
                break;
            }
            if got.len() > 4096 {
                return Err(io::Error::other("no ACCEPT in the peer's first 4 KiB"));
            }
        }
        self.ctl.clear();
        hs.write_start(&mut self.ctl).map_err(io::Error::other)?;
        wire += w.write_all(&self.ctl, limit)?;
        w.set_timeouts(SLICE, SLICE)?;
        self.wire_written = wire;
        self.wire_acked = 0;
        Ok((w, hs))
    }

    fn write_chunk(&mut self, chunk: Chunk) -> io::Result<()> {
        if chunk.resend {
            self.stats
                .resent
                .fetch_add(chunk.records as u64, Ordering::Relaxed);
            if let Some(c) = self.own() {
                c.resent.fetch_add(chunk.records as u64, Ordering::Relaxed);
            }
        }
        let deadline = self.buffer.deadline();
        let Some(w) = self.wire.as_mut() else {
            self.buffer.requeue_front(std::iter::once(chunk));
            return Ok(());
        };
        let r = w.write_all(&chunk.data, deadline);
        if let Ok(n) = &r {
            self.wire_written += n;
        }
        self.sent.push_back(Sent {
            chunk: Chunk {
                resend: false,
                ..chunk
            },
            end: self.wire_written,
        });
        r.map(|_| ())
    }

    /// Nothing to send: notice a peer that closed (a receiver says nothing after ACCEPT
    /// until FINISH).
    fn poll_peer(&mut self) -> io::Result<()> {
        let Some(w) = self.wire.as_mut() else {
            return Ok(());
        };
        let mut b = [0u8; 4096];
        match sockopt::recv_nonblocking(w.fd(), &mut b)? {
            Some(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the receiver closed the connection",
            )),
            Some(n) => {
                // TLS: the session's own records (tickets, key updates, alerts) go through
                // it, so that its state stays in step; plaintext is not expected here.
                if let Wire::Tls(tls, _) = w {
                    let mut rd = b.get(..n).unwrap_or_default();
                    while !rd.is_empty() {
                        tls.read_tls(&mut rd)?;
                        tls.process_new_packets().map_err(io::Error::other)?;
                    }
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Releases the chunks the peer's kernel took, past the replay window.
    fn update_acks(&mut self) -> io::Result<()> {
        let Some(w) = self.wire.as_ref() else {
            return Ok(());
        };
        let outq = sockopt::unacked_bytes(w.fd())?;
        let acked = self.wire_written.saturating_sub(outq);
        if acked > self.wire_acked {
            self.wire_acked = acked;
            self.backoff.reset();
        }
        while self
            .sent
            .front()
            .is_some_and(|s| s.end + self.replay_window <= self.wire_acked)
        {
            if let Some(s) = self.sent.pop_front() {
                self.release(s.chunk);
            }
        }
        Ok(())
    }

    fn broken(&mut self, e: &io::Error) {
        self.count_failure();
        self.set_healthy(false);
        let n: u64 = self.sent.iter().map(|s| s.chunk.records as u64).sum();
        log_warn!(
            "output {}: connection lost ({e}); {n} records since the last confirmed point will be sent again",
            self.name
        );
        self.wire = None;
        let sent: Vec<Chunk> = self.sent.drain(..).map(|s| s.chunk).collect();
        self.buffer.requeue_front(sent.into_iter());
    }

    /// Everything is written: STOP, then FINISH from the peer (it has read every frame),
    /// then close. True when done; false when the connection broke (chunks requeued).
    fn finish_stream(&mut self) -> bool {
        let Some(w) = self.wire.as_mut() else {
            return true;
        };
        let Some(mut hs) = self.hs.take() else {
            return true;
        };
        self.ctl.clear();
        let r = hs
            .write_stop(&mut self.ctl)
            .map_err(io::Error::other)
            .and_then(|()| w.write_all(&self.ctl, self.buffer.deadline()))
            .and_then(|_| {
                let mut got = Vec::with_capacity(64);
                let mut b = [0u8; 256];
                loop {
                    match w.read_some(&mut b) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "closed before FINISH",
                            ))
                        }
                        Ok(n) => got.extend_from_slice(&b[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            if self.buffer.deadline().is_some_and(|d| Instant::now() >= d) {
                                return Err(e);
                            }
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    let step = hs.on_read(&got).map_err(io::Error::other)?;
                    if step.event == SenderEvent::Finished {
                        return Ok(());
                    }
                }
            });
        match r {
            Ok(()) => {
                if let Some(Wire::Tls(tls, s)) = self.wire.as_mut() {
                    tls.send_close_notify();
                    let _ = tls.write_tls(s);
                }
                self.wire = None;
                let sent: Vec<Sent> = self.sent.drain(..).collect();
                for s in sent {
                    self.release(s.chunk);
                }
                true
            }
            Err(e) => {
                self.broken(&e);
                false
            }
        }
    }
}
