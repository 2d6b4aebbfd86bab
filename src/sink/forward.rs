//! The forward output: records as lines (JSON by default) over one TCP or TLS connection to
//! a collector (Logstash `tcp { codec => json_lines }`, syslog-ng, Vector...). Owns the
//! chunking of formatted records, the sender thread, reconnection and the at-least-once
//! replay; the overflow policy is [`crate::sink::buffer`]'s. Knows nothing of inputs.
//!
//! ```text
//!  writer thread: record → format into the current chunk (≤ chunk-size, whole records)
//!                 full chunk, or queue empty (flush) → ChunkBuffer::push (overflow policy)
//!  sender thread: connect (timeout, keepalive, TLS) ── pop chunk ── write ── keep it in
//!                 `sent` with its end offset on the wire
//!                 SIOCOUTQ → bytes the peer acknowledged → chunks older than the replay
//!                 window are delivered (counted) and recycled
//!                 broken connection → every chunk in `sent` goes back to the buffer's front
//!                 (counted in `resent` when written again) → reconnect with backoff + jitter
//! ```
//!
//! At-least-once: a chunk stays in `sent` until the peer's TCP stack has acknowledged it
//! *and* at least `replay-window` more bytes have been acknowledged after it. An
//! acknowledgement only says the bytes reached the collector's socket buffer, not that the
//! collector read them: a collector stopped with unread data in its socket loses them. The
//! window covers that (it should be at least the collector's receive buffer plus what it
//! holds in memory before writing). With TLS the offsets are those of the encrypted bytes:
//! each chunk is encrypted and written whole before the next, so chunk boundaries are TLS
//! record boundaries and the same arithmetic holds. Duplicates after a break are at most
//! the records of the chunks in `sent` (unacknowledged bytes ≤ the socket send buffer, plus
//! the window, plus one chunk); each one re-sent is counted in `OutputStats::resent`.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::format::{FormatKind, Formatter};
use crate::record::Record;
use crate::sink::buffer::{BufferSpec, Chunk, ChunkBuffer, Popped};
use crate::sink::sockopt;
use crate::sink::Output;
use crate::stats::OutputStats;
use crate::{log_debug, log_warn};

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

/// Builds the rustls client configuration: reads the CA bundle and the client certificate
/// and key. Errors name the file and what is wrong with it.
pub fn tls_client_config(t: &TlsConf) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let iter =
        CertificateDer::pem_file_iter(&t.ca).map_err(|e| format!("{}: {e}", t.ca.display()))?;
    for c in iter {
        let c = c.map_err(|e| format!("{}: {e}", t.ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", t.ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate in the file", t.ca.display()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate in the file", cert.display()));
            }
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both tls-cert and tls-key".into()),
    };
    ServerName::try_from(t.server_name.clone())
        .map_err(|_| format!("{:?} is not a valid server name", t.server_name))?;
    Ok(Arc::new(config))
}

/// The output the writer thread calls.
#[derive(Debug)]
pub struct ForwardOutput {
    name: String,
    formatter: Formatter,
    chunk: Vec<u8>,
    chunk_records: u32,
    chunk_bytes: usize,
    shutdown_timeout: Duration,
    buffer: Arc<ChunkBuffer>,
    stats: Arc<OutputStats>,
    sender: Option<JoinHandle<()>>,
}

impl ForwardOutput {
    /// Opens the buffer (and spill directory), builds TLS, and starts the sender thread. The
    /// first connection is made by the sender; a collector that is down at start is not an
    /// error (records wait in the buffer).
    pub fn start(conf: &ForwardConf, stats: Arc<OutputStats>) -> io::Result<ForwardOutput> {
        let name = conf.name();
        let (buffer, recovered) = ChunkBuffer::new(&name, &conf.buffer, Arc::clone(&stats))?;
        if let Some(r) = recovered.filter(|r| r.records > 0) {
            log_debug!(
                "output {name}: {} records in {} spill segments from a previous run, sent first",
                r.records,
                r.segments
            );
        }
        let buffer = Arc::new(buffer);
        let tls = match &conf.tls {
            Some(t) => {
                let cfg = tls_client_config(t).map_err(io::Error::other)?;
                let sn = ServerName::try_from(t.server_name.clone())
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Some((cfg, sn))
            }
            None => None,
        };
        let mut sender = Sender {
            name: name.clone(),
            host: conf.host.clone(),
            port: conf.port,
            tls,
            connect_timeout: conf.connect_timeout,
            keepalive: conf.keepalive,
            replay_window: conf.replay_window,
            buffer: Arc::clone(&buffer),
            stats: Arc::clone(&stats),
            conn: None,
            sent: VecDeque::new(),
            wire_written: 0,
            wire_acked: 0,
            backoff: Backoff::new(Duration::from_millis(100), conf.reconnect_max),
            connected_once: false,
            scratch: vec![0; 16 << 10],
        };
        let handle = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || sender.run())?;
        Ok(ForwardOutput {
            name,
            formatter: Formatter::new(conf.format),
            chunk: buffer.take_vec(conf.chunk_bytes + (64 << 10)),
            chunk_records: 0,
            chunk_bytes: conf.chunk_bytes,
            shutdown_timeout: conf.shutdown_timeout,
            buffer,
            stats,
            sender: Some(handle),
        })
    }

    /// The buffer, so that shutdown can set its give-up deadline
    /// ([`ChunkBuffer::give_up_at`]) while the writer may still be blocked in it.
    pub fn buffer(&self) -> Arc<ChunkBuffer> {
        Arc::clone(&self.buffer)
    }

    fn push_chunk(&mut self) {
        if self.chunk_records == 0 {
            return;
        }
        // A small chunk (a flush at a low rate) is copied into an allocation of its own
        // size, so the buffer's memory bound (counted in allocated bytes) is not eaten by
        // mostly empty chunk-size allocations.
        let data = if self.chunk.len() < self.chunk_bytes / 4 {
            let small = self.chunk.as_slice().to_vec();
            self.chunk.clear();
            small
        } else {
            std::mem::replace(
                &mut self.chunk,
                self.buffer.take_vec(self.chunk_bytes + (64 << 10)),
            )
        };
        let records = std::mem::take(&mut self.chunk_records);
        self.buffer.push(Chunk {
            data,
            records,
            resend: false,
        });
    }
}

impl Output for ForwardOutput {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn record(&mut self, rec: &Record<'_>, _raw: &[u8]) -> io::Result<()> {
        self.formatter.write(rec, &mut self.chunk);
        self.chunk_records += 1;
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if self.chunk.len() >= self.chunk_bytes || self.chunk_records == u32::MAX {
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

impl Drop for ForwardOutput {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let _ = self.finish();
        }
    }
}

/// Exponential backoff with jitter: each wait is drawn from [d/2, d), d doubling from `min`
/// up to `max`; reset once a connection has carried data.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
    rng: u64,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ ((std::process::id() as u64) << 32);
        Backoff {
            min,
            max: max.max(min),
            cur: min,
            rng: seed | 1,
        }
    }

    fn next(&mut self) -> Duration {
        // xorshift64: jitter only needs to differ between receivers started together.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let d = self.cur;
        self.cur = (self.cur * 2).min(self.max);
        let half = d / 2;
        let nanos = half.as_nanos().max(1) as u64;
        half + Duration::from_nanos(self.rng % nanos)
    }

    fn reset(&mut self) {
        self.cur = self.min;
    }
}

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
enum Step {
    Ok,
    Broken(io::Error),
}

/// The sender thread's state. Invariants: chunks in `sent` are in write order with
/// non-decreasing `end`; `wire_acked <= wire_written`.
struct Sender {
    name: String,
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
    scratch: Vec<u8>,
}

/// How long one blocking write may wait before the sender checks for shutdown.
const WRITE_SLICE: Duration = Duration::from_millis(500);

impl Sender {
    fn run(&mut self) {
        loop {
            if self.past_deadline() && self.conn.is_none() {
                // Shutdown time is up and the collector is away: stop trying. Wait for the
                // producer to close (its pushes now drop or spill) and hand back the rest.
                if self.buffer_closed() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if self.conn.is_none() {
                if self.buffer_closed() && self.nothing_in_memory() {
                    break;
                }
                if !self.connect() {
                    continue;
                }
            }
            let chunk = match self.buffer.pop(Duration::from_millis(100)) {
                Popped::Chunk(c) => Some(c),
                Popped::Empty => None,
                Popped::Finished => {
                    if self.drain_and_close() {
                        return self.finish(Vec::new());
                    }
                    continue;
                }
            };
            let step = match chunk {
                Some(c) => self.write_chunk(c),
                None => self.poll_peer(),
            };
            let step = match step {
                Step::Ok => self.update_acks(),
                b => b,
            };
            if let Step::Broken(e) = step {
                self.broken(&e);
            }
        }
        let leftovers: Vec<Chunk> = self.sent.drain(..).map(|s| s.chunk).collect();
        self.finish(leftovers);
    }

    fn finish(&mut self, leftovers: Vec<Chunk>) {
        let (kept, lost) = self.buffer.finish_consumer(leftovers);
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
        self.conn = None;
    }

    fn buffer_closed(&self) -> bool {
        self.buffer.is_closed()
    }

    /// Nothing held in memory (by us or the buffer). Records on disk do not count: at
    /// shutdown without a connection they stay in the spill queue for the next run.
    fn nothing_in_memory(&self) -> bool {
        self.sent.is_empty() && self.buffer.queued().0 == 0
    }

    fn past_deadline(&self) -> bool {
        self.buffer.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// One connection attempt (after the backoff wait for a retry). True when connected.
    fn connect(&mut self) -> bool {
        if self.connected_once || self.stats.write_errors.load(Ordering::Relaxed) > 0 {
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
                if self.connected_once {
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
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
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
    fn write_chunk(&mut self, chunk: Chunk) -> Step {
        if chunk.resend {
            self.stats
                .resent
                .fetch_add(chunk.records as u64, Ordering::Relaxed);
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
    fn poll_peer(&mut self) -> Step {
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
    fn update_acks(&mut self) -> Step {
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
                self.buffer.delivered(s.chunk);
            }
        }
        Step::Ok
    }

    /// The connection failed: everything written on it goes back to the front of the buffer.
    fn broken(&mut self, e: &io::Error) {
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
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
    fn drain_and_close(&mut self) -> bool {
        if self.conn.is_none() {
            return self.sent.is_empty();
        }
        loop {
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
        for s in self.sent.drain(..) {
            self.buffer.delivered(s.chunk);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::buffer::OverflowPolicy;
    use std::net::TcpListener;

    fn conf(port: u16, policy: OverflowPolicy) -> ForwardConf {
        ForwardConf {
            host: "127.0.0.1".into(),
            port,
            format: FormatKind::Json,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            reconnect_max: Duration::from_millis(400),
            shutdown_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(30),
            chunk_bytes: 4096,
            buffer: BufferSpec {
                max_bytes: 1 << 20,
                policy,
                spill: None,
            },
            replay_window: 0,
        }
    }

    fn rec(i: u16) -> Record<'static> {
        let id: &'static str = Box::leak(format!("ns{i}").into_boxed_str());
        Record {
            identity: Some(id.as_bytes()),
            message_type: Some(5),
            ..Record::default()
        }
    }

    fn read_lines(l: &TcpListener, want: usize) -> Vec<String> {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let mut b = [0u8; 65536];
        while all.iter().filter(|&&c| c == b'\n').count() < want {
            match s.read(&mut b) {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&b[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        String::from_utf8(all)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let w: Vec<Duration> = (0..8).map(|_| b.next()).collect();
        assert!(w[0] >= Duration::from_millis(50) && w[0] < Duration::from_millis(100));
        assert!(w[3] >= Duration::from_millis(400) && w[3] < Duration::from_millis(800));
        for d in &w[5..] {
            assert!(
                *d >= Duration::from_millis(500) && *d < Duration::from_secs(1),
                "{d:?}"
            );
        }
        b.reset();
        assert!(b.next() < Duration::from_millis(100));
    }

    #[test]
    fn lines_arrive_in_order_and_are_counted_delivered() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut o =
            ForwardOutput::start(&conf(port, OverflowPolicy::Block), stats.clone()).unwrap();
        let reader = std::thread::spawn(move || read_lines(&l, 500));
        for i in 0..500 {
            o.record(&rec(i), b"").unwrap();
        }
        o.finish().unwrap();
        let lines = reader.join().unwrap();
        assert_eq!(lines.len(), 500);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.contains(&format!("\"identity\": \"ns{i}\"")), "{l}");
        }
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 500);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(stats.buffered.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn collector_down_at_shutdown_counts_everything_dropped() {
        // Nothing listens on this port.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::DropNewest);
        c.shutdown_timeout = Duration::from_millis(300);
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        for i in 0..100 {
            o.record(&rec(i), b"").unwrap();
        }
        let t0 = Instant::now();
        o.finish().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(3), "bounded shutdown");
        assert_eq!(stats.records.load(Ordering::Relaxed), 100);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 100);
        assert!(stats.write_errors.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_broken_connection_resends_what_was_not_confirmed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stats = Arc::new(OutputStats::default());
        let mut c = conf(port, OverflowPolicy::Block);
        // Keep everything for replay: the first collector "loses" what it read.
        c.replay_window = 1 << 30;
        let mut o = ForwardOutput::start(&c, stats.clone()).unwrap();
        for i in 0..50 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        // First connection: read 50 lines, then close without a word.
        let first = read_lines(&l, 50);
        assert_eq!(first.len(), 50);
        // The sender notices the close and reconnects; the second collector gets all 50
        // again plus the new ones.
        for i in 50..60 {
            o.record(&rec(i), b"").unwrap();
        }
        o.flush().unwrap();
        let reader = std::thread::spawn(move || read_lines(&l, 60));
        std::thread::sleep(Duration::from_millis(200));
        o.finish().unwrap();
        let second = reader.join().unwrap();
        assert_eq!(second.len(), 60, "{second:?}");
        // The chunk of 50..60 may or may not have been written before the break showed.
        let resent = stats.resent.load(Ordering::Relaxed);
        assert!((50..=60).contains(&resent), "{resent}");
        for (i, l) in second.iter().enumerate() {
            assert!(l.contains(&format!("\"identity\": \"ns{i}\"")), "{l}");
        }
        assert_eq!(stats.reconnects.load(Ordering::Relaxed), 1);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 60);
    }
}
