//! Inputs: listening sockets, the reader threads and their I/O back-ends.
//!
//! Each reader thread runs one event loop (io_uring in [`uring`], or epoll in [`epoll`]) over
//! every listener: the kernel hands each new connection to one of them. The per-connection
//! protocol work is the sans-io [`conn::Connection`]; the back-ends only move bytes between
//! sockets and pooled buffers, then give filled buffers to the [`crate::pipeline::Shipper`].
//!
//! `unsafe` is allowed under this directory only, for the system calls std does not wrap
//! (io_uring submissions, epoll, signal masks); each use carries a `// SAFETY:` comment.

pub mod conn;
pub mod epoll;
pub mod signals;
pub mod uring;

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::InputSpec;
use crate::filter::Filter;
use crate::framestream::DecoderConfig;
use crate::pipeline::{Pipeline, Shipper};
use crate::stats::{InputStats, ThreadStats};

use self::conn::{ConnError, Connection};

/// A bound, non-blocking listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    /// Binds one input. A unix socket file left by a previous run is replaced when nothing
    /// answers on it; if something does, start-up fails rather than steal its address.
    pub fn bind(spec: &InputSpec) -> io::Result<Listener> {
        let l = match spec {
            InputSpec::Tcp(addr) => {
                let l = TcpListener::bind(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("tcp {addr}: {e}")))?;
                l.set_nonblocking(true)?;
                Listener::Tcp(l)
            }
            InputSpec::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("unix {}: {e}", path.display()))
                })?;
                l.set_nonblocking(true)?;
                Listener::Unix {
                    listener: l,
                    path: path.clone(),
                }
            }
        };
        Ok(l)
    }

    pub fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix { listener, .. } => listener.as_raw_fd(),
        }
    }

    /// Accepts one connection (non-blocking): `Ok(None)` when none is pending.
    pub fn accept(&self) -> io::Result<Option<(Stream, String)>> {
        let r = match self {
            Listener::Tcp(l) => l
                .accept()
                .map(|(s, a)| (Stream::Tcp(s), format!("tcp {a}"))),
            Listener::Unix { listener, path } => listener
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
            Listener::Tcp(_) => {
                let s = TcpStream::from(fd);
                let name = match s.peer_addr() {
                    Ok(a) => format!("tcp {a}"),
                    Err(_) => "tcp ?".to_string(),
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
            Listener::Unix { path, .. } => format!("unix {}", path.display()),
        }
    }

    /// Removes the socket file of a unix listener (at exit).
    pub fn cleanup(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

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
    /// Per-listener counters, by listener index (may be empty: then only `stats` counts).
    pub input_stats: Arc<Vec<Arc<InputStats>>>,
}

impl ReaderCtx {
    /// [`ReaderCtx::new_connection`] for a connection accepted on listener `li`: its bytes,
    /// frames and connection counts also go to that listener's counters.
    pub fn new_connection_on(&self, li: usize, peer: String) -> Connection {
        let mut conn = self.new_connection(peer);
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

    /// Logs and counts the end of a connection.
    pub fn closed(&self, conn: &Connection, why: Result<(), ConnError>) {
        ThreadStats::add(&self.stats.closed, 1);
        if let Some(input) = conn.input() {
            ThreadStats::add(&input.closed, 1);
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
    let stats = &*ctx.stats;
    if conn.assembling() {
        let spare = conn.big_spare();
        let space = spare.len();
        return match stream.read(spare) {
            Ok(0) => ReadOutcome::Eof(conn.on_eof()),
            Ok(n) => match conn.on_big_recv(n, &ctx.filter, stats) {
                Ok(Some(b)) => {
                    shipper.pipeline().ship(b, stats);
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
    match stream.read(&mut buf.data[off..]) {
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

/// At shutdown: reads what the kernel already holds for this connection (bounded), so
/// frames received before the signal are not lost. Returns the final outcome to log.
pub fn drain_on_stop(
    ctx: &ReaderCtx,
    stream: &Stream,
    conn: &mut Connection,
    shipper: &mut Shipper<'_>,
) -> Result<(), ConnError> {
    for _ in 0..1024 {
        match read_once(ctx, stream, conn, shipper) {
            ReadOutcome::Data { .. } => continue,
            ReadOutcome::NoBuffer => {
                shipper.flush(&ctx.stats);
                std::thread::park_timeout(std::time::Duration::from_millis(1));
            }
            ReadOutcome::WouldBlock => return decode_carried(ctx, conn, shipper, true),
            ReadOutcome::Eof(r) => return r,
            ReadOutcome::Error(e) => return Err(e),
        }
    }
    decode_carried(ctx, conn, shipper, true)
}

/// Probes io_uring: `Err` carries why it cannot be used (ENOSYS, EPERM...).
pub fn uring_available() -> Result<(), io::Error> {
    uring::probe()
}
