//! Inputs: listening sockets, the reader threads and their I/O back-ends.
//!
//! Each reader thread runs one event loop (io_uring in [`uring`], or epoll in [`epoll`]) over
//! every listener: the kernel hands each new connection to one of them. The per-connection
//! protocol work is the sans-io [`conn::Connection`]; the back-ends only move bytes between
//! sockets and pooled buffers, then give filled buffers to the [`crate::pipeline::Shipper`].
//!
//! TLS inputs add a [`tls::TlsSession`] between the socket and the `Connection` (ciphertext
//! in, plaintext into pooled buffers); [`security`] holds the TLS configuration, the
//! `allow-from` list ([`acl`]), unix socket permissions and the handshake timeout.
//!
//! The system calls std does not wrap are [`crate::sys`]'s. `unsafe` is denied here, forbidden
//! in every other input module but [`uring`], whose RECV and SEND lend buffers to the kernel
//! under the contract of [`crate::sys::uring::Ring::recv`]; each use carries a `// SAFETY:`
//! comment.
#![deny(unsafe_code)]

pub mod acl;
pub mod conn;
pub mod epoll;
pub mod security;
pub mod signals;
pub mod spec;
pub mod stall;
pub mod tls;
#[allow(unsafe_code)]
pub mod uring;

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::filter::Filter;
use crate::framestream::DecoderConfig;
use crate::pipeline::reload::Published;
use crate::pipeline::{Pipeline, Shipper};
use crate::stats::{InputStats, ThreadStats};

use self::acl::{LogDecision, RefusalLog};
use self::conn::{ConnError, Connection, CONN_ERROR_KINDS};
use self::security::InputSecurity;
pub use self::spec::InputSpec;
use self::tls::{FailureKind, TlsSession};
use crate::sys::activation::{ActivatedListener, ActivatedSocket};

/// A bound, non-blocking listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
        /// False for a socket the service manager created (socket activation): its file
        /// outlives this process and is not removed at exit.
        remove_at_exit: bool,
    },
    /// TCP whose connections speak TLS (the server config is in [`InputSecurity`]).
    Tls(TcpListener),
    /// TCP whose connections send PowerDNS protobuf logging ([`conn::Connection::new_powerdns`]).
    PowerDns(TcpListener),
    /// The same inside TLS.
    PowerDnsTls(TcpListener),
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l)
            | Listener::Tls(l)
            | Listener::PowerDns(l)
            | Listener::PowerDnsTls(l) => l.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

impl Listener {
    /// Binds one input. A unix socket file left by a previous run is replaced when nothing
    /// answers on it; if something does, start-up fails rather than steal its address.
    pub fn bind(spec: &InputSpec) -> io::Result<Listener> {
        Listener::bind_with(spec, &InputSecurity::default())
    }

    /// Like [`Listener::bind`], then gives a unix socket file the configured owner, group
    /// and mode (before any thread accepts on it).
    pub fn bind_with(spec: &InputSpec, security: &InputSecurity) -> io::Result<Listener> {
        let l = match spec {
            InputSpec::Tcp(addr) => {
                let l = bind_tcp(*addr, security.reuse_port)
                    .map_err(|e| io::Error::new(e.kind(), format!("tcp {addr}: {e}")))?;
                Listener::Tcp(l)
            }
            InputSpec::Tls(addr) => {
                let l = bind_tcp(*addr, security.reuse_port)
                    .map_err(|e| io::Error::new(e.kind(), format!("tls {addr}: {e}")))?;
                Listener::Tls(l)
            }
            InputSpec::PowerDns(addr) => {
                let l = bind_tcp(*addr, security.reuse_port)
                    .map_err(|e| io::Error::new(e.kind(), format!("powerdns {addr}: {e}")))?;
                Listener::PowerDns(l)
            }
            InputSpec::PowerDnsTls(addr) => {
                let l = bind_tcp(*addr, security.reuse_port)
                    .map_err(|e| io::Error::new(e.kind(), format!("powerdns-tls {addr}: {e}")))?;
                Listener::PowerDnsTls(l)
            }
            InputSpec::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("unix {}: {e}", path.display()))
                })?;
                l.set_nonblocking(true)?;
                if let Err(e) = security::apply_unix_perms(path, &security.unix) {
                    let _ = std::fs::remove_file(path);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("unix {}: {e}", path.display()),
                    ));
                }
                Listener::Unix {
                    listener: l,
                    path: path.clone(),
                    remove_at_exit: true,
                }
            }
        };
        Ok(l)
    }

    pub fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l)
            | Listener::Tls(l)
            | Listener::PowerDns(l)
            | Listener::PowerDnsTls(l) => l.as_raw_fd(),
            Listener::Unix { listener, .. } => listener.as_raw_fd(),
        }
    }

    /// True for PowerDNS protobuf listeners.
    pub fn is_powerdns(&self) -> bool {
        matches!(self, Listener::PowerDns(_) | Listener::PowerDnsTls(_))
    }

    /// True for TLS listeners.
    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tls(_) | Listener::PowerDnsTls(_))
    }

    /// True for TCP and TLS listeners (subject to `allow-from`).
    pub fn is_ip(&self) -> bool {
        !matches!(self, Listener::Unix { .. })
    }

    /// Accepts one connection (non-blocking): `Ok(None)` when none is pending.
    pub fn accept(&self) -> io::Result<Option<(Stream, String)>> {
        let r = match self {
            Listener::Tcp(l) => l
                .accept()
                .map(|(s, a)| (Stream::Tcp(s), format!("tcp {a}"))),
            Listener::Tls(l) => l
                .accept()
                .map(|(s, a)| (Stream::Tcp(s), format!("tls {a}"))),
            Listener::PowerDns(l) => l
                .accept()
                .map(|(s, a)| (Stream::Tcp(s), format!("powerdns {a}"))),
            Listener::PowerDnsTls(l) => l
                .accept()
                .map(|(s, a)| (Stream::Tcp(s), format!("powerdns-tls {a}"))),
            Listener::Unix { listener, path, .. } => listener
                .accept()
                .map(|(s, _)| (Stream::Unix(s), format!("unix {}", path.display()))),
        };
        match r {
            Ok((s, name)) => {
                s.set_nonblocking(true)?;
                Ok(Some((s, name)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Wraps a socket accepted elsewhere (io_uring) and names its peer.
    pub fn adopt(&self, fd: std::os::fd::OwnedFd) -> io::Result<(Stream, String)> {
        let (s, name) = match self {
            Listener::Tcp(_)
            | Listener::Tls(_)
            | Listener::PowerDns(_)
            | Listener::PowerDnsTls(_) => {
                let s = TcpStream::from(fd);
                let scheme = match self {
                    Listener::Tls(_) => "tls",
                    Listener::PowerDns(_) => "powerdns",
                    Listener::PowerDnsTls(_) => "powerdns-tls",
                    _ => "tcp",
                };
                let name = match s.peer_addr() {
                    Ok(a) => format!("{scheme} {a}"),
                    Err(_) => format!("{scheme} ?"),
                };
                (Stream::Tcp(s), name)
            }
            Listener::Unix { path, .. } => (
                Stream::Unix(UnixStream::from(fd)),
                format!("unix {}", path.display()),
            ),
        };
        s.set_nonblocking(true)?;
        Ok((s, name))
    }

    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp {a}"),
                Err(_) => "tcp ?".into(),
            },
            Listener::Tls(l) => match l.local_addr() {
                Ok(a) => format!("tls {a}"),
                Err(_) => "tls ?".into(),
            },
            Listener::PowerDns(l) => match l.local_addr() {
                Ok(a) => format!("powerdns {a}"),
                Err(_) => "powerdns ?".into(),
            },
            Listener::PowerDnsTls(l) => match l.local_addr() {
                Ok(a) => format!("powerdns-tls {a}"),
                Err(_) => "powerdns-tls ?".into(),
            },
            Listener::Unix { path, .. } => format!("unix {}", path.display()),
        }
    }

    /// Removes the socket file of a unix listener (at exit), unless the service manager
    /// made it.
    pub fn cleanup(&self) {
        if let Listener::Unix {
            path,
            remove_at_exit: true,
            ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Opens every input: a listening socket passed by the service manager (socket
    /// activation, `activated`) whose address is the input's is used as it is; the other
    /// inputs are bound. A passed socket that matches no input is an error, so that a unit
    /// and a config that disagree are noticed at start rather than leaving senders queued on
    /// a socket nobody accepts from. Returns each listener and whether it was passed.
    pub fn open_all(
        specs: &[InputSpec],
        security: &InputSecurity,
        activated: Vec<ActivatedSocket>,
    ) -> io::Result<Vec<(Listener, bool)>> {
        let mut left: Vec<Option<ActivatedSocket>> = activated.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let found = left
                .iter_mut()
                .find(|a| {
                    a.as_ref()
                        .is_some_and(|a| activated_matches(spec, &a.listener))
                })
                .and_then(Option::take);
            out.push(match found {
                Some(a) => (Listener::from_activated(spec, a.listener)?, true),
                None => (Listener::bind_with(spec, security)?, false),
            });
        }
        let unused: Vec<String> = left.iter().flatten().map(|a| a.describe()).collect();
        if !unused.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "socket activation: no configured input listens on {} (configure an \
                     input with that address, or remove it from the .socket unit)",
                    unused.join(", ")
                ),
            ));
        }
        Ok(out)
    }

    fn from_activated(spec: &InputSpec, l: ActivatedListener) -> io::Result<Listener> {
        Ok(match (spec, l) {
            (InputSpec::Tcp(_), ActivatedListener::Tcp(l, _)) => Listener::Tcp(l),
            (InputSpec::Tls(_), ActivatedListener::Tcp(l, _)) => Listener::Tls(l),
            (InputSpec::PowerDns(_), ActivatedListener::Tcp(l, _)) => Listener::PowerDns(l),
            (InputSpec::PowerDnsTls(_), ActivatedListener::Tcp(l, _)) => Listener::PowerDnsTls(l),
            (InputSpec::Unix(path), ActivatedListener::Unix(l, _)) => Listener::Unix {
                listener: l,
                path: path.clone(),
                remove_at_exit: false,
            },
            (spec, _) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket activation: passed socket does not fit {spec}"),
                ))
            }
        })
    }
}

/// True when a passed socket listens where `spec` would: the same path, or the same
/// address and port. An input on the unspecified address (`0.0.0.0:6000`, the default)
/// also takes `[::]:6000`, which is what `ListenStream=6000` binds (dual-stack).
fn activated_matches(spec: &InputSpec, l: &ActivatedListener) -> bool {
    match (spec, l) {
        (
            InputSpec::Tcp(want)
            | InputSpec::Tls(want)
            | InputSpec::PowerDns(want)
            | InputSpec::PowerDnsTls(want),
            ActivatedListener::Tcp(_, have),
        ) => {
            want == have
                || (want.port() == have.port()
                    && want.ip().is_unspecified()
                    && have.ip().is_unspecified())
        }
        (InputSpec::Unix(want), ActivatedListener::Unix(_, Some(have))) => want == have,
        _ => false,
    }
}

/// Backlog of TCP listeners: the kernel caps it at `net.core.somaxconn`.
const TCP_BACKLOG: i32 = 4096;

/// A non-blocking TCP listener with SO_REUSEADDR (as std sets it) and, with `reuse_port`,
/// SO_REUSEPORT: then other processes (or a restarted one) can listen on the same address
/// at once, and the kernel spreads new connections among them. std cannot set an option
/// between socket() and bind(), hence [`crate::sys::socket::bind_tcp_listener`].
fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    crate::sys::socket::bind_tcp_listener(addr, reuse_port, TCP_BACKLOG)
}

/// `addr` as a `sockaddr_storage` and the length of the sockaddr inside it (for bind,
/// connect; the tests' raw sockets use it too).
pub use crate::sys::socket::sockaddr_of;

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not replacing it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{}: another process is listening on this socket",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            crate::log_debug!("removing stale socket file {}", path.display());
            std::fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// An accepted connection's socket (non-blocking).
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Stream {
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    /// The peer's IP address (TCP), as a plain IPv4 address for IPv4-mapped peers.
    pub fn peer_ip(&self) -> Option<IpAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip().to_canonical()),
            Stream::Unix(_) => None,
        }
    }

    /// Shuts both directions down: pending operations on the socket complete at once.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

/// Which back-end runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Uring,
    Epoll,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
        })
    }
}

/// What a reload can change on the input side: the prefilters and the input security
/// (TLS certificates and keys, `allow-from`, the handshake timeout). Readers pick a new one
/// up between receives ([`ReaderCtx::refresh`]); connections already open keep their TLS
/// session, new handshakes use the new certificate.
#[derive(Debug)]
pub struct ReaderConf {
    pub filter: Arc<Filter>,
    pub security: Arc<InputSecurity>,
}

/// Everything one reader thread needs.
#[derive(Debug, Clone)]
pub struct ReaderCtx {
    pub id: usize,
    pub listeners: Arc<Vec<Listener>>,
    pub pipeline: Arc<Pipeline>,
    pub filter: Arc<Filter>,
    pub decoder: DecoderConfig,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<ThreadStats>,
    /// TLS, allow-from, handshake timeout.
    pub security: Arc<InputSecurity>,
    /// Per-listener counters, by listener index (may be empty: then only `stats` counts).
    pub input_stats: Arc<Vec<Arc<InputStats>>>,
    /// The log of `allow-from` refusals (which addresses were reported): shared by every
    /// reader, and kept across reloads.
    pub refusals: Arc<RefusalLog>,
    /// Where reloads publish `filter` and `security` (None: they never change).
    pub live: Option<Arc<Published<ReaderConf>>>,
    /// The generation `filter` and `security` come from.
    pub generation: u64,
}

/// A log of refused connections with the default summary interval.
pub fn refusal_log() -> Arc<RefusalLog> {
    Arc::new(RefusalLog::new(security::REFUSAL_SUMMARY_EVERY))
}

impl ReaderCtx {
    /// Picks up the filter and security a reload published, if any: called by the event
    /// loops between receives. PERF: one atomic load when nothing changed.
    #[inline]
    pub fn refresh(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        if live.generation() == self.generation {
            return;
        }
        let (g, conf) = live.load();
        self.filter = Arc::clone(&conf.filter);
        self.security = Arc::clone(&conf.security);
        self.generation = g;
        crate::log_debug!("reader {}: configuration generation {g} in force", self.id);
    }

    /// [`ReaderCtx::new_connection`] for a connection accepted on listener `li`: its bytes,
    /// frames and connection counts also go to that listener's counters.
    pub fn new_connection_on(&self, li: usize, peer: String) -> Connection {
        let mut conn = self.new_connection(peer);
        if self.listeners.get(li).is_some_and(Listener::is_powerdns) {
            conn =
                Connection::new_powerdns(conn.peer().to_string(), self.pipeline.pool.buffer_size());
        }
        if let Some(input) = self.input_stats.get(li) {
            ThreadStats::add(&input.accepted, 1);
            conn.set_input(Arc::clone(input));
        }
        conn
    }

    pub fn new_connection(&self, peer: String) -> Connection {
        // A process-wide number tells apart connections with the same name (every unix
        // peer of one socket looks alike).
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let peer = format!("{peer} #{}", NEXT.fetch_add(1, Ordering::Relaxed));
        ThreadStats::add(&self.stats.accepted, 1);
        crate::log_debug!("{peer}: connected (reader {})", self.id);
        Connection::new(peer, self.decoder, self.pipeline.pool.buffer_size())
    }

    /// Applies `allow-from` to a connection accepted on `l`: false (counted, logged without
    /// flooding) when the peer may not connect; the caller then drops the socket.
    pub fn admit(&self, l: &Listener, stream: &Stream, peer: &str) -> bool {
        let acl = &self.security.allow_from;
        if !l.is_ip() || acl.is_open() {
            return true;
        }
        let ip = stream.peer_ip();
        if ip.is_some_and(|ip| acl.allows(ip)) {
            return true;
        }
        ThreadStats::add(&self.stats.refused_acl, 1);
        let Some(ip) = ip else {
            crate::log_warn!("{peer}: refused (peer address unknown; allow-from is set)");
            return false;
        };
        match self.refusals.on_refused(ip, Instant::now()) {
            LogDecision::First => {
                crate::log_warn!("{peer}: refused: {ip} is not in allow-from (further refusals of this address are summed up)")
            }
            LogDecision::Summary { refused, addresses } => crate::log_warn!(
                "allow-from: refused {refused} more connection(s) from {addresses} address(es) \
                 already reported"
            ),
            LogDecision::Quiet => {}
        }
        false
    }

    /// A TLS session for a connection accepted on `l` (None for plain listeners, or when the
    /// session cannot be made: logged).
    pub fn tls_session(&self, l: &Listener, peer: &str) -> Option<Box<TlsSession>> {
        if !l.is_tls() {
            return None;
        }
        let cfg = self.security.tls.as_ref()?;
        match TlsSession::new(Arc::clone(cfg)) {
            Ok(s) => Some(Box::new(s)),
            Err(e) => {
                crate::log_warn!("{peer}: cannot start TLS: {e}");
                None
            }
        }
    }

    /// When the handshake of a connection accepted now must be over.
    pub fn handshake_deadline(&self) -> Instant {
        Instant::now() + self.security.handshake_timeout
    }

    /// Logs and counts the end of a connection.
    pub fn closed(&self, conn: &Connection, why: Result<(), ConnError>) {
        ThreadStats::add(&self.stats.closed, 1);
        if let Some(input) = conn.input() {
            ThreadStats::add(&input.closed, 1);
        }
        match &why {
            Err(ConnError::HandshakeTimeout(_)) => {
                ThreadStats::add(&self.stats.handshake_timeouts, 1)
            }
            Err(ConnError::Io(e)) => {
                if let Some(f) = tls::tls_failure(e) {
                    ThreadStats::add(&self.stats.tls_failed, 1);
                    if f.kind == FailureKind::ClientCert {
                        ThreadStats::add(&self.stats.refused_cert, 1);
                    }
                    ThreadStats::add(&self.stats.conn_errors, 1);
                    let tls_slot = CONN_ERROR_KINDS.iter().position(|k| *k == "tls");
                    if let Some(slot) = tls_slot.and_then(|i| self.stats.conn_error_kinds.get(i)) {
                        ThreadStats::add(slot, 1);
                    }
                    crate::log_warn!("{}: connection closed: {f}", conn.peer());
                    return;
                }
            }
            _ => {}
        }
        // After STOP the stream is complete; a peer that hangs up before reading FINISH
        // (unbound does at shutdown) is not worth a warning.
        let why = match why {
            Err(ConnError::Io(_)) if conn.is_finished() => Ok(()),
            // Connected and closed without a byte: a port probe or health check.
            Err(ConnError::Protocol(e))
                if e.offset == 0
                    && matches!(e.kind, crate::framestream::ErrorKind::EofBeforeStart { .. }) =>
            {
                crate::log_debug!("{}: closed before sending anything", conn.peer());
                return;
            }
            other => other,
        };
        match why {
            Ok(()) => crate::log_debug!("{}: closed", conn.peer()),
            Err(e) => {
                ThreadStats::add(&self.stats.conn_errors, 1);
                if let Some(slot) = self.stats.conn_error_kinds.get(e.kind_slot()) {
                    ThreadStats::add(slot, 1);
                }
                crate::log_warn!("{}: connection closed: {e}", conn.peer());
            }
        }
    }
}

/// What one read from a socket did.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Bytes were processed; `full` when they filled the space offered (more may wait).
    Data {
        full: bool,
    },
    /// Nothing to read now.
    WouldBlock,
    /// No free buffer: try again when the writer returns some.
    NoBuffer,
    /// The peer closed (clean or not, as the result says).
    Eof(Result<(), ConnError>),
    Error(ConnError),
}

/// Decodes frames left whole in the carry (a receive whose frame table filled up) into
/// fresh buffers. Without `wait`, stops when the pool is empty (the next receive decodes
/// them); with `wait` (end of stream), waits for the writer to return buffers.
pub fn decode_carried(
    ctx: &ReaderCtx,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
    wait: bool,
) -> Result<(), ConnError> {
    while conn.has_complete_frame() {
        let Some(mut buf) = ctx.pipeline.pool.take() else {
            if !wait {
                return Ok(());
            }
            shipper.flush(&ctx.stats);
            std::thread::park_timeout(std::time::Duration::from_millis(1));
            continue;
        };
        let off = conn.load_carry(&mut buf);
        let r = conn.on_recv(&mut buf, off, &ctx.filter, &ctx.stats);
        shipper.route(buf, &ctx.stats);
        r?;
    }
    Ok(())
}

/// The peer closed: decode what is left whole, then ask the decoder whether the end was
/// clean.
pub fn end_of_stream(
    ctx: &ReaderCtx,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
) -> Result<(), ConnError> {
    decode_carried(ctx, conn, shipper, true)?;
    conn.on_eof()
}

/// One synchronous read into a pooled buffer (or the oversize frame being assembled), then
/// decode and route. Used by the epoll back-end and by both back-ends' final drain.
pub fn read_once(
    ctx: &ReaderCtx,
    stream: &Stream,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
) -> ReadOutcome {
    read_into(ctx, conn, shipper, |dst| stream.read(dst))
}

/// [`read_once`] with any byte source: the socket itself, or a TLS session's plaintext.
/// `source` fills the slice it is given (`Ok(0)` = end of stream, `WouldBlock` = nothing
/// now) and is called at most once.
#[inline]
pub fn read_into(
    ctx: &ReaderCtx,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
    mut source: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> ReadOutcome {
    let stats = &*ctx.stats;
    if conn.assembling() {
        let spare = conn.big_spare();
        let space = spare.len();
        return match source(spare) {
            Ok(0) => ReadOutcome::Eof(conn.on_eof()),
            Ok(n) => match conn.on_big_recv(n, &ctx.filter, stats) {
                Ok(Some(b)) => {
                    // After the frames copied before it, to keep the connection's order.
                    shipper.flush(stats);
                    shipper.ship(b, stats);
                    ReadOutcome::Data { full: n == space }
                }
                Ok(None) => ReadOutcome::Data { full: n == space },
                Err(e) => ReadOutcome::Error(e),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadOutcome::Data { full: true },
            Err(e) => ReadOutcome::Error(ConnError::Io(e)),
        };
    }
    let Some(mut buf) = ctx.pipeline.pool.take() else {
        return ReadOutcome::NoBuffer;
    };
    let off = conn.load_carry(&mut buf);
    let space = buf.data.len() - off;
    match source(&mut buf.data[off..]) {
        Ok(0) => {
            ctx.pipeline.pool.give(buf);
            ReadOutcome::Eof(end_of_stream(ctx, conn, shipper))
        }
        Ok(n) => match conn.on_recv(&mut buf, off + n, &ctx.filter, stats) {
            Ok(()) => {
                shipper.route(buf, stats);
                match decode_carried(ctx, conn, shipper, false) {
                    Ok(()) => ReadOutcome::Data { full: n == space },
                    Err(e) => ReadOutcome::Error(e),
                }
            }
            Err(e) => {
                // Frames decoded before the error are good: keep them.
                shipper.route(buf, stats);
                ReadOutcome::Error(e)
            }
        },
        Err(e) => {
            ctx.pipeline.pool.give(buf);
            match e.kind() {
                io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
                io::ErrorKind::Interrupted => ReadOutcome::Data { full: true },
                _ => ReadOutcome::Error(ConnError::Io(e)),
            }
        }
    }
}

/// At shutdown: reads what the kernel already holds for this connection, so frames
/// received before the stop are not lost, and no more: the byte count the socket reports
/// when the drain starts (`FIONREAD`) bounds the reads, so a sender that keeps writing
/// cannot hold the stop up (it took ~20 s per busy connection with only the read-count
/// bound; docs/hardening.md). Returns the final outcome to log.
pub fn drain_on_stop(
    ctx: &ReaderCtx,
    stream: &Stream,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
) -> Result<(), ConnError> {
    let mut left = crate::sys::socket::queued_bytes(stream).unwrap_or(usize::MAX);
    drain(ctx, conn, shipper, |conn, shipper| {
        if left == 0 {
            return None;
        }
        let limited = |dst: &mut [u8]| {
            let n = dst.len().min(left);
            let r = match dst.get_mut(..n) {
                Some(d) => stream.read(d),
                None => Ok(0),
            };
            if let Ok(got) = r {
                left = left.saturating_sub(got);
            }
            r
        };
        Some(read_into(ctx, conn, shipper, limited))
    })
}

/// The drain loop shared by plain and TLS connections: `step` reads once (`None`: nothing
/// more to read), at most [`DRAIN_READS`] times; then what the carry holds whole is
/// decoded.
fn drain(
    ctx: &ReaderCtx,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
    mut step: impl FnMut(&mut Connection, &mut Shipper<'_>) -> Option<ReadOutcome>,
) -> Result<(), ConnError> {
    for _ in 0..DRAIN_READS {
        match step(conn, shipper) {
            None => break,
            Some(ReadOutcome::Data { .. }) => continue,
            Some(ReadOutcome::NoBuffer) => {
                shipper.flush(&ctx.stats);
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
            Some(ReadOutcome::WouldBlock) => break,
            Some(ReadOutcome::Eof(r)) => return r,
            Some(ReadOutcome::Error(e)) => return Err(e),
        }
    }
    decode_carried(ctx, conn, shipper, true)
}

/// Reads per connection at most, when stopping (the bound of last resort: plain
/// connections stop first at the bytes queued when the drain began).
const DRAIN_READS: usize = 1024;

/// [`read_once`] for a TLS connection: receives ciphertext from the socket when the session
/// holds nothing, then decrypts into a pooled buffer and decodes. `Data { full: true }`
/// means more may be waiting (in the session or the socket).
pub fn tls_read_once(
    ctx: &ReaderCtx,
    stream: &Stream,
    conn: &mut Connection,
    tls: &mut TlsSession,
    shipper: &mut Shipper<'_>,
) -> ReadOutcome {
    let mut more = false;
    if !tls.has_input() {
        let space = tls.recv_space();
        if !space.is_empty() {
            match stream.read(space) {
                Ok(0) => tls.on_eof(),
                Ok(n) => tls.on_received(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    return ReadOutcome::Data { full: true }
                }
                Err(e) => return ReadOutcome::Error(ConnError::Io(e)),
            }
        }
        // Something arrived: there may be more behind it even if it was all handshake.
        more = true;
    }
    let outcome = read_into(ctx, conn, shipper, |dst| tls.read_plaintext(dst));
    report_handshake(conn, tls);
    match outcome {
        ReadOutcome::Data { .. } => ReadOutcome::Data {
            full: more || tls.has_input(),
        },
        ReadOutcome::WouldBlock if more => ReadOutcome::Data { full: true },
        other => other,
    }
}

/// Logs (with `-v`) the TLS version and cipher suite once the handshake is done.
pub fn report_handshake(conn: &Connection, tls: &mut TlsSession) {
    if let Some(what) = tls.handshake_report() {
        crate::log_debug!("{}: TLS handshake done: {what}", conn.peer());
    }
}

/// Moves a connection's pending replies through TLS: Frame Streams replies are encrypted,
/// close_notify follows FINISH, and every TLS record waiting (handshake, alerts) is
/// appended to `out`.
pub fn tls_replies(conn: &mut Connection, tls: &mut TlsSession, out: &mut Vec<u8>) {
    let mut plain = Vec::new();
    conn.take_reply(&mut plain);
    tls.write_plaintext(&plain);
    if conn.is_finished() {
        tls.close();
    }
    tls.take_outgoing(out);
}

/// [`drain_on_stop`] for a TLS connection.
pub fn tls_drain_on_stop(
    ctx: &ReaderCtx,
    stream: &Stream,
    conn: &mut Connection,
    tls: &mut TlsSession,
    shipper: &mut Shipper<'_>,
) -> Result<(), ConnError> {
    drain(ctx, conn, shipper, |conn, shipper| {
        Some(tls_read_once(ctx, stream, conn, tls, shipper))
    })
}

/// Probes io_uring: `Err` carries why it cannot be used (ENOSYS, EPERM...).
pub fn uring_available() -> Result<(), io::Error> {
    uring::probe()
}

/// Raises this process's soft limit on open files to its hard limit (see
/// [`crate::sys::limits::raise_open_files_limit`]). Returns the soft limit before and after.
pub fn raise_open_files_limit() -> io::Result<(u64, u64)> {
    crate::sys::limits::raise_open_files_limit()
}
