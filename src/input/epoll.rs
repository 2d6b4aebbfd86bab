//! The epoll back-end: level-triggered readiness, then plain non-blocking `read`/`write`.
//! Used where io_uring is unavailable (disabled by sysctl, blocked by seccomp) or when
//! `--io epoll` is asked for. The protocol work is [`super::conn::Connection`]'s.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::pipeline::Shipper;

use super::conn::{ConnError, Connection};
use super::{drain_on_stop, read_once, ReadOutcome, ReaderCtx, Stream};

/// A safe wrapper over one epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; the returned fd is checked before use and
        // owned by the OwnedFd from then on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event that lives across the call; the kernel copies
        // it. A bad `fd` is reported as an error, not undefined behaviour.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms`; fills `events` (its capacity is the maximum).
    pub fn wait(&self, events: &mut Vec<libc::epoll_event>, timeout_ms: i32) -> io::Result<()> {
        events.clear();
        let max = events.capacity().min(i32::MAX as usize) as i32;
        // SAFETY: the kernel writes at most `max` entries into the vector's spare capacity,
        // which holds at least `max` epoll_event values.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        // SAFETY: the kernel initialised the first `n` (<= max <= capacity) entries.
        unsafe { events.set_len(n as usize) };
        Ok(())
    }
}

const IN: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

struct EConn {
    stream: Stream,
    conn: Connection,
    /// Reply bytes not yet written: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    want_out: bool,
}

/// Runs one reader thread's epoll loop until the stop flag is set. The caller reports the
/// reader as done to the pipeline, whatever the outcome.
pub fn run(ctx: ReaderCtx) -> io::Result<()> {
    let ep = Epoll::new()?;
    let nl = ctx.listeners.len() as u64;
    for (i, l) in ctx.listeners.iter().enumerate() {
        // EPOLLEXCLUSIVE: one reader thread is woken per new connection, not all of them.
        ep.add(
            l.fd(),
            libc::EPOLLIN as u32 | libc::EPOLLEXCLUSIVE as u32,
            i as u64,
        )?;
    }
    ctx.pipeline.register_reader();
    let mut shipper = Shipper::new(&ctx.pipeline);
    let mut conns: Vec<Option<EConn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events: Vec<libc::epoll_event> = Vec::with_capacity(256);
    let stats = &*ctx.stats;

    while !ctx.stop.load(Ordering::Acquire) {
        ep.wait(&mut events, 100)?;
        let mut starved = false;
        for ev in events.iter() {
            let (token, flags) = (ev.u64, ev.events);
            if token < nl {
                accept_all(&ctx, &ep, token as usize, &mut conns, &mut free);
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
                    match read_once(&ctx, &c.stream, &mut c.conn, &mut shipper) {
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
            if end.is_none() && c.conn.is_finished() && c.sent == c.out.len() {
                end = Some(Ok(()));
            }
            if end.is_none() {
                let want = c.sent < c.out.len();
                if want != c.want_out {
                    c.want_out = want;
                    let evs = if want { IN | OUT } else { IN };
                    if let Err(e) = ep.modify(c.stream.fd(), evs, token) {
                        end = Some(Err(ConnError::Io(e)));
                    }
                }
            }
            if let Some(why) = end {
                if let Some(c) = conns.get_mut(slot).and_then(Option::take) {
                    let _ = ep.delete(c.stream.fd());
                    ctx.closed(&c.conn, why);
                    free.push(slot);
                }
            }
        }
        shipper.flush(stats);
        if starved {
            // Every buffer is queued or being written: wait for the writer to return some
            // (it unparks readers when the pool runs low). Meanwhile the kernel socket
            // buffers fill and the senders slow down.
            std::thread::park_timeout(Duration::from_millis(1));
        }
    }

    // Shutdown: stop accepting, take in what the kernel already holds, then close.
    for l in ctx.listeners.iter() {
        let _ = ep.delete(l.fd());
    }
    for c in conns.iter_mut().filter_map(Option::take) {
        let mut c = c;
        let why = drain_on_stop(&ctx, &c.stream, &mut c.conn, &mut shipper);
        let _ = send_replies(&mut c);
        ctx.closed(&c.conn, why);
    }
    shipper.flush(stats);
    Ok(())
}

fn accept_all(
    ctx: &ReaderCtx,
    ep: &Epoll,
    li: usize,
    conns: &mut Vec<Option<EConn>>,
    free: &mut Vec<usize>,
) {
    let Some(l) = ctx.listeners.get(li) else {
        return;
    };
    for _ in 0..64 {
        match l.accept() {
            Ok(Some((stream, peer))) => {
                let slot = free.pop().unwrap_or_else(|| {
                    conns.push(None);
                    conns.len() - 1
                });
                let token = ctx.listeners.len() as u64 + slot as u64;
                if let Err(e) = ep.add(stream.fd(), IN, token) {
                    crate::log_warn!("{peer}: cannot watch connection: {e}");
                    free.push(slot);
                    continue;
                }
                let conn = ctx.new_connection_on(li, peer);
                conns[slot] = Some(EConn {
                    stream,
                    conn,
                    out: Vec::with_capacity(64),
                    sent: 0,
                    want_out: false,
                });
            }
            Ok(None) => return,
            Err(e) => {
                // EMFILE and friends: log and retry on the next wake-up.
                crate::log_warn!("{}: accept failed: {e}", l.describe());
                return;
            }
        }
    }
}

/// Moves new reply bytes to the connection's send buffer and writes what it can.
fn send_replies(c: &mut EConn) -> Result<(), ConnError> {
    if c.sent == c.out.len() {
        c.out.clear();
        c.sent = 0;
    }
    c.conn.take_reply(&mut c.out);
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
