//! The epoll back-end: level-triggered readiness, then plain non-blocking `read`/`write`.
//! Used where io_uring is unavailable (disabled by sysctl, blocked by seccomp) or when
//! `--io epoll` is asked for. The protocol work is [`super::conn::Connection`]'s; on TLS
//! inputs a [`TlsSession`] sits between the socket and it. The epoll instance itself is
//! [`crate::sys::epoll::Epoll`].
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::Shipper;
use crate::sys::epoll::{Epoll, Events};

use super::conn::{ConnError, Connection};
use super::stall::{self, Deadlines, Stall};
use super::tls::TlsSession;
use super::{
    drain_on_stop, read_once, tls_drain_on_stop, tls_read_once, tls_replies, ReadOutcome,
    ReaderCtx, Stream,
};

const IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
/// How listeners are watched. EPOLLEXCLUSIVE: one reader thread is woken per new
/// connection, not all of them.
const LISTEN: u32 = libc::EPOLLIN as u32 | libc::EPOLLEXCLUSIVE as u32;
/// After a failed accept (EMFILE: out of descriptors), how long a listener is unwatched.
/// Level-triggered, it would otherwise wake this thread at once, forever, with a log line
/// each time.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

struct EConn {
    stream: Stream,
    conn: Connection,
    /// Reply bytes not yet written: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    want_out: bool,
    /// TLS inputs only.
    tls: Option<Box<TlsSession>>,
    /// When the handshake (TLS, then Frame Streams up to START) must be over.
    deadline: Instant,
}

impl EConn {
    fn read_once(&mut self, ctx: &ReaderCtx, shipper: &mut Shipper<'_>) -> ReadOutcome {
        match self.tls.as_deref_mut() {
            None => read_once(ctx, &self.stream, &mut self.conn, shipper),
            Some(tls) => tls_read_once(ctx, &self.stream, &mut self.conn, tls, shipper),
        }
    }
}

/// Runs one reader thread's epoll loop until the stop flag is set. The caller reports the
/// reader as done to the pipeline, whatever the outcome.
pub fn run(mut ctx: ReaderCtx) -> io::Result<()> {
    let ep = Epoll::new()?;
    let nl = ctx.listeners.len() as u64;
    for (i, l) in ctx.listeners.iter().enumerate() {
        ep.add(l, LISTEN, i as u64)?;
    }
    // Listeners taken out of the set after a failed accept, and when to watch them again.
    let mut accept_paused: Vec<Option<Instant>> = vec![None; ctx.listeners.len()];
    ctx.pipeline.register_reader();
    // Held apart from `ctx`, which a reload changes between receives.
    let pipeline = Arc::clone(&ctx.pipeline);
    let mut shipper = Shipper::new(&pipeline);
    let mut conns: Vec<Option<EConn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(256);
    let thread_stats = Arc::clone(&ctx.stats);
    let stats = &*thread_stats;
    let mut deadlines: Deadlines = VecDeque::new();
    // TLS connections whose session still holds bytes when the pool ran dry: the socket may
    // not become readable again, so they are served again without waiting for it.
    let mut retry: Vec<usize> = Vec::new();
    let mut work: Vec<(u64, u32)> = Vec::with_capacity(256);
    // Held up by the output (no buffer, or no room in the queue): no deadline runs.
    let mut stall = Stall::default();
    let mut round_start = Instant::now();

    while !ctx.stop.load(Ordering::Acquire) {
        ctx.refresh();
        let timeout = if retry.is_empty() { 100 } else { 1 };
        ep.wait(&mut events, timeout)?;
        let mut starved = false;
        for (li, paused) in accept_paused.iter_mut().enumerate() {
            if paused.is_some_and(|t| t <= Instant::now()) {
                if let Some(l) = ctx.listeners.get(li) {
                    ep.add(l, LISTEN, li as u64)?;
                }
                *paused = None;
            }
        }
        work.clear();
        work.extend(events.iter());
        work.extend(retry.drain(..).map(|slot| (nl + slot as u64, IN)));
        for &(token, flags) in work.iter() {
            if token < nl {
                let li = token as usize;
                if !accept_all(&ctx, &ep, li, &mut conns, &mut free, &mut deadlines) {
                    if let (Some(l), Some(p)) = (ctx.listeners.get(li), accept_paused.get_mut(li)) {
                        let _ = ep.delete(l);
                        *p = Some(Instant::now() + ACCEPT_RETRY);
                    }
                }
                continue;
            }
            let slot = (token - nl) as usize;
            let Some(Some(c)) = conns.get_mut(slot) else {
                continue;
            };
            let mut end: Option<Result<(), ConnError>> = None;
            if flags & OUT != 0 {
                if let Err(e) = flush_out(c) {
                    end = Some(Err(e));
                }
            }
            if end.is_none() && flags & !OUT != 0 {
                // A few reads per wake-up, then let other connections have their turn.
                for _ in 0..4 {
                    match c.read_once(&ctx, &mut shipper) {
                        ReadOutcome::Data { full } => {
                            if let Err(e) = send_replies(c) {
                                end = Some(Err(e));
                                break;
                            }
                            if c.conn.is_finished() {
                                break;
                            }
                            if !full {
                                break;
                            }
                        }
                        ReadOutcome::WouldBlock => break,
                        ReadOutcome::NoBuffer => {
                            starved = true;
                            break;
                        }
                        ReadOutcome::Eof(r) => {
                            end = Some(r);
                            break;
                        }
                        ReadOutcome::Error(e) => {
                            end = Some(Err(e));
                            break;
                        }
                    }
                }
            }
            if end.is_none() && c.tls.is_some() {
                // TLS handshake records and alerts come out of reads that yield no data.
                if let Err(e) = send_replies(c) {
                    end = Some(Err(e));
                }
                // Bytes left in the session (no buffer, or the read cap above) are served
                // on the next round: the socket may have nothing more to wake us with.
                if c.tls.as_ref().is_some_and(|t| t.has_input()) && !retry.contains(&slot) {
                    retry.push(slot);
                }
            }
            if let (Some(Err(_)), true) = (&end, c.tls.is_some()) {
                // Best effort: let the peer see the TLS alert.
                let _ = send_replies(c);
            }
            if end.is_none() && c.conn.is_finished() && c.sent == c.out.len() {
                end = Some(Ok(()));
            }
            if end.is_none() {
                let want = c.sent < c.out.len();
                if want != c.want_out {
                    c.want_out = want;
                    let evs = if want { IN | OUT } else { IN };
                    if let Err(e) = ep.modify(&c.stream, evs, token) {
                        end = Some(Err(ConnError::Io(e)));
                    }
                }
            }
            if let Some(why) = end {
                if let Some(c) = conns.get_mut(slot).and_then(Option::take) {
                    let _ = ep.delete(&c.stream);
                    ctx.closed(&c.conn, why);
                    free.push(slot);
                }
            }
        }
        shipper.flush(stats);
        let now = Instant::now();
        let held = starved | shipper.take_waited();
        if let Some(by) = stall.round(held, round_start, now) {
            stall::postpone(&mut deadlines, by, |slot, old, new| {
                if let Some(Some(c)) = conns.get_mut(slot) {
                    if c.deadline == old {
                        c.deadline = new;
                    }
                }
            });
        }
        round_start = now;
        if !stall.held() {
            expire_handshakes(&ctx, &ep, &mut conns, &mut free, &mut deadlines);
        }
        if starved {
            // Every buffer is queued or being written: wait for the writer to return some
            // (it unparks readers when the pool runs low). Meanwhile the kernel socket
            // buffers fill and the senders slow down.
            std::thread::park_timeout(Duration::from_millis(1));
        }
    }

    // Shutdown: stop accepting, take in what the kernel already holds, then close.
    for l in ctx.listeners.iter() {
        let _ = ep.delete(l);
    }
    for c in conns.iter_mut().filter_map(Option::take) {
        let mut c = c;
        let why = match c.tls.as_deref_mut() {
            None => drain_on_stop(&ctx, &c.stream, &mut c.conn, &mut shipper),
            Some(tls) => tls_drain_on_stop(&ctx, &c.stream, &mut c.conn, tls, &mut shipper),
        };
        let _ = send_replies(&mut c);
        ctx.closed(&c.conn, why);
    }
    shipper.flush(stats);
    Ok(())
}

/// Closes the connections whose handshake is past its deadline.
fn expire_handshakes(
    ctx: &ReaderCtx,
    ep: &Epoll,
    conns: &mut [Option<EConn>],
    free: &mut Vec<usize>,
    deadlines: &mut Deadlines,
) {
    let now = Instant::now();
    while let Some(&(at, slot)) = deadlines.front() {
        if at > now {
            return;
        }
        deadlines.pop_front();
        let Some(Some(c)) = conns.get(slot) else {
            continue;
        };
        let done = c.conn.is_started() && !c.tls.as_ref().is_some_and(|t| t.is_handshaking());
        if c.deadline != at || done {
            continue;
        }
        if let Some(c) = conns.get_mut(slot).and_then(Option::take) {
            let _ = ep.delete(&c.stream);
            ctx.closed(
                &c.conn,
                Err(ConnError::HandshakeTimeout(ctx.security.handshake_timeout)),
            );
            free.push(slot);
        }
    }
}

/// Accepts what is pending (up to 64). False when accept failed: the caller unwatches the
/// listener for [`ACCEPT_RETRY`].
fn accept_all(
    ctx: &ReaderCtx,
    ep: &Epoll,
    li: usize,
    conns: &mut Vec<Option<EConn>>,
    free: &mut Vec<usize>,
    deadlines: &mut Deadlines,
) -> bool {
    let Some(l) = ctx.listeners.get(li) else {
        return true;
    };
    for _ in 0..64 {
        match l.accept() {
            Ok(Some((stream, peer))) => {
                if !ctx.admit(l, &stream, &peer) {
                    continue;
                }
                let tls = ctx.tls_session(l, &peer);
                if l.is_tls() && tls.is_none() {
                    continue;
                }
                let slot = free.pop().unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                let token = ctx.listeners.len() as u64 + slot as u64;
                if let Err(e) = ep.add(&stream, IN, token) {
                    crate::log_warn!("{peer}: cannot watch connection: {e}");
                    free.push(slot);
                    continue;
                }
                let conn = ctx.new_connection_on(li, peer);
                let deadline = ctx.handshake_deadline();
                deadlines.push_back((deadline, slot));
                conns[slot] = Some(EConn {
                    stream,
                    conn,
                    out: Vec::with_capacity(64),
                    sent: 0,
                    want_out: false,
                    tls,
                    deadline,
                });
            }
            Ok(None) => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                // EMFILE and friends: log, and retry a little later rather than spin.
                crate::log_warn!("{}: accept failed: {e}", l.describe());
                return false;
            }
        }
    }
    true
}

/// Moves new reply bytes to the connection's send buffer and writes what it can.
fn send_replies(c: &mut EConn) -> Result<(), ConnError> {
    if c.sent == c.out.len() {
        c.out.clear();
        c.sent = 0;
    }
    match c.tls.as_deref_mut() {
        None => c.conn.take_reply(&mut c.out),
        Some(tls) => tls_replies(&mut c.conn, tls, &mut c.out),
    }
    flush_out(c)
}

fn flush_out(c: &mut EConn) -> Result<(), ConnError> {
    while c.sent < c.out.len() {
        match c.stream.write(&c.out[c.sent..]) {
            Ok(0) => return Err(ConnError::Io(io::ErrorKind::WriteZero.into())),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ConnError::Io(e)),
        }
    }
    Ok(())
}
