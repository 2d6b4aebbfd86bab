//! The io_uring back-end: one ring per reader thread; accept, poll, recv and send are
//! submitted as SQEs and many completions are handled per `io_uring_enter`.
//!
//! A connection's life: ACCEPT → POLL(POLLIN) → RECV into a pooled buffer (MSG_DONTWAIT, so a
//! buffer is never parked in the kernel waiting for a quiet peer) → decode in place → RECV
//! again while receives fill the buffer, else POLL. Replies go out as SEND. An idle
//! connection therefore holds no buffer, and at most [`MAX_RECV_INFLIGHT`] buffers per ring
//! are lent to the kernel, which is what keeps the pool bound valid.
//!
//! The ring itself is [`crate::sys::uring::Ring`]; the `unsafe` left here is the two calls
//! that lend it memory (RECV, SEND), each under the contract below.
//!
//! Safety model: a buffer given to the kernel in an SQE (a pooled batch, an oversize frame
//! buffer, a send buffer) is owned by this loop's per-connection state and is neither
//! touched, moved (heap storage does not move with its owner) nor freed until its
//! completion arrives; a connection slot is freed only when none of its operations is in
//! flight. If the loop has to bail out with operations in flight, their buffers are leaked.
//!
//! TLS connections receive ciphertext into their [`TlsSession`]'s own buffer (not a pooled
//! one, so these receives do not count against [`MAX_RECV_INFLIGHT`]); on completion the
//! session decrypts into pooled buffers, as [`super::read_into`] does for the epoll back-end.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::{Batch, Shipper, MAX_RECV_INFLIGHT};
use crate::stats::ThreadStats;
use crate::sys::uring::{Completion, Ring};

use super::conn::{ConnError, Connection};
use super::stall::{self, Deadlines, Stall};
use super::tls::TlsSession;
use super::{
    drain_on_stop, read_into, tls_drain_on_stop, tls_replies, ReadOutcome, ReaderCtx, Stream,
};

const RING_ENTRIES: u32 = 1024;

/// Fails when this kernel or sandbox refuses io_uring (ENOSYS, EPERM, ...).
/// `DNSTAP_RECEIVER_NO_URING=1` makes the probe fail as a kernel without io_uring would
/// (ENOSYS), to exercise the fallback on machines where io_uring works.
pub fn probe() -> io::Result<()> {
    if std::env::var_os("DNSTAP_RECEIVER_NO_URING").is_some_and(|v| v == "1") {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    crate::sys::uring::probe()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Accept = 1,
    Poll = 2,
    Recv = 3,
    Send = 4,
    Cancel = 5,
}

fn ud(op: Op, idx: usize) -> u64 {
    ((idx as u64) << 8) | op as u64
}

fn split(ud: u64) -> (u64, usize) {
    (ud & 0xff, (ud >> 8) as usize)
}

struct UConn {
    stream: Stream,
    conn: Connection,
    /// The pooled buffer lent to an in-flight RECV, and where the received bytes start.
    recv_buf: Option<Box<Batch>>,
    recv_off: usize,
    recv_space: usize,
    recv_inflight: bool,
    poll_inflight: bool,
    /// Bytes of the in-flight SEND (`send_buf[sent..]` still to go); untouched while in flight.
    send_buf: Vec<u8>,
    sent: usize,
    send_inflight: bool,
    waiting: bool,
    cancel_sent: bool,
    /// Set when the connection must close once nothing is in flight.
    closing: Option<Result<(), ConnError>>,
    /// TLS inputs only. While a RECV is in flight, its receive space (the session's inbound
    /// buffer past its filled part) is the kernel's: the session is not touched.
    tls: Option<Box<TlsSession>>,
    /// When the handshake (TLS, then Frame Streams up to START) must be over.
    deadline: Instant,
}

impl UConn {
    fn busy(&self) -> bool {
        self.recv_inflight || self.poll_inflight || self.send_inflight
    }
}

struct Loop<'a> {
    /// Shared with the calls that borrow the loop's other fields; replaced (copy on write)
    /// when a reload publishes a new filter or security, between completions.
    ctx: Rc<ReaderCtx>,
    ring: Ring,
    shipper: Shipper<'a>,
    conns: Vec<Option<UConn>>,
    free: Vec<usize>,
    waiting: VecDeque<usize>,
    recvs_inflight: usize,
    /// RECVs of TLS connections (into session buffers, not pooled ones).
    tls_recvs_inflight: usize,
    sends_inflight: usize,
    /// Handshake deadlines in accept order (see `expire_handshakes`).
    deadlines: Deadlines,
    /// Whether the loop is held up by its output (no deadline runs meanwhile), and when
    /// the current round began.
    stall: Stall,
    round_start: Instant,
    stopping: bool,
    accept_retry: Vec<Option<Instant>>,
}

/// Runs one reader thread's io_uring loop until the stop flag is set. The caller reports the
/// reader as done to the pipeline, whatever the outcome.
pub fn run(ctx: ReaderCtx) -> io::Result<()> {
    let ring = Ring::new(RING_ENTRIES)?;
    ctx.pipeline.register_reader();
    let pipeline = Arc::clone(&ctx.pipeline);
    let listeners = ctx.listeners.len();
    let mut lp = Loop {
        ctx: Rc::new(ctx),
        ring,
        shipper: Shipper::new(&pipeline),
        conns: Vec::new(),
        free: Vec::new(),
        waiting: VecDeque::new(),
        recvs_inflight: 0,
        tls_recvs_inflight: 0,
        sends_inflight: 0,
        deadlines: VecDeque::new(),
        stall: Stall::default(),
        round_start: Instant::now(),
        stopping: false,
        accept_retry: vec![None; listeners],
    };
    let result = lp.run();
    lp.finish();
    result
}

impl Loop<'_> {
    fn run(&mut self) -> io::Result<()> {
        for li in 0..self.ctx.listeners.len() {
            self.arm_accept(li)?;
        }
        let mut cqes: Vec<Completion> = Vec::with_capacity(RING_ENTRIES as usize);
        loop {
            if !self.stopping && self.ctx.stop.load(Ordering::Acquire) {
                self.stopping = true;
            }
            if self.stopping
                && self.recvs_inflight == 0
                && self.tls_recvs_inflight == 0
                && self.sends_inflight == 0
            {
                return Ok(());
            }
            if !self.stopping {
                Rc::make_mut(&mut self.ctx).refresh();
                self.retry_accepts()?;
                self.serve_waiting()?;
                self.track_stall();
                if !self.stall.held() {
                    self.expire_handshakes()?;
                }
            }
            self.shipper.flush(&self.ctx.stats);

            let wait = if !self.waiting.is_empty() || self.stopping {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(100)
            };
            self.ring.submit_and_wait(wait)?;
            cqes.clear();
            self.ring.completions(&mut cqes);
            for c in cqes.drain(..) {
                self.on_completion(c)?;
            }
        }
    }

    fn arm_accept(&mut self, li: usize) -> io::Result<()> {
        let Some(l) = self.ctx.listeners.get(li) else {
            return Ok(());
        };
        self.ring.accept(l.as_fd(), ud(Op::Accept, li))
    }

    fn retry_accepts(&mut self) -> io::Result<()> {
        let now = Instant::now();
        for li in 0..self.accept_retry.len() {
            if self.accept_retry[li].is_some_and(|t| t <= now) {
                self.accept_retry[li] = None;
                self.arm_accept(li)?;
            }
        }
        Ok(())
    }

    fn on_completion(&mut self, c: Completion) -> io::Result<()> {
        let (u, res) = match c {
            Completion::Accepted { token, result } => {
                let (_, li) = split(token);
                return self.on_accept(li, result);
            }
            Completion::Done { token, result } => (token, result),
        };
        let (op, idx) = split(u);
        match op {
            x if x == Op::Poll as u64 => {
                let mut readable = false;
                if let Some(c) = self.conn_mut(idx) {
                    c.poll_inflight = false;
                    if res < 0 && c.closing.is_none() && res != -libc::ECANCELED {
                        c.closing = Some(Err(ConnError::Io(io::Error::from_raw_os_error(-res))));
                    }
                    readable = res >= 0 && c.closing.is_none();
                }
                if readable {
                    self.start_recv(idx)?;
                }
                self.after_event(idx)
            }
            x if x == Op::Recv as u64 => self.on_recv(idx, res),
            x if x == Op::Send as u64 => self.on_send(idx, res),
            _ => Ok(()),
        }
    }

    fn conn_mut(&mut self, idx: usize) -> Option<&mut UConn> {
        self.conns.get_mut(idx).and_then(Option::as_mut)
    }

    /// An accept completed: the new connection, or the errno.
    fn on_accept(&mut self, li: usize, res: Result<OwnedFd, i32>) -> io::Result<()> {
        match res {
            Ok(fd) => {
                if let Some(l) = self.ctx.listeners.get(li) {
                    match l.adopt(fd) {
                        Ok((stream, peer)) => 'admit: {
                            if !self.ctx.admit(l, &stream, &peer) {
                                break 'admit;
                            }
                            let tls = self.ctx.tls_session(l, &peer);
                            if l.is_tls() && tls.is_none() {
                                break 'admit;
                            }
                            let conn = self.ctx.new_connection_on(li, peer);
                            let deadline = self.ctx.handshake_deadline();
                            let slot = self.free.pop().unwrap_or_else(|| {
                                self.conns.push(None);
                                self.conns.len() - 1
                            });
                            self.conns[slot] = Some(UConn {
                                stream,
                                conn,
                                recv_buf: None,
                                recv_off: 0,
                                recv_space: 0,
                                recv_inflight: false,
                                poll_inflight: false,
                                send_buf: Vec::with_capacity(64),
                                sent: 0,
                                send_inflight: false,
                                waiting: false,
                                cancel_sent: false,
                                closing: None,
                                tls,
                                deadline,
                            });
                            self.deadlines.push_back((deadline, slot));
                            if !self.stopping {
                                self.arm_poll(slot)?;
                            }
                        }
                        Err(e) => {
                            crate::log_warn!("{}: accepted socket unusable: {e}", l.describe())
                        }
                    }
                }
            }
            Err(err) => {
                if err != libc::EAGAIN && err != libc::EINTR && err != libc::ECONNABORTED {
                    if let Some(l) = self.ctx.listeners.get(li) {
                        crate::log_warn!(
                            "{}: accept failed: {}",
                            l.describe(),
                            io::Error::from_raw_os_error(err)
                        );
                    }
                    // EMFILE and the like: try again a little later rather than spin.
                    if let Some(slot) = self.accept_retry.get_mut(li) {
                        *slot = Some(Instant::now() + Duration::from_millis(100));
                    }
                    return Ok(());
                }
            }
        }
        if self.stopping {
            return Ok(());
        }
        self.arm_accept(li)
    }

    fn arm_poll(&mut self, slot: usize) -> io::Result<()> {
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        if c.poll_inflight || c.recv_inflight || c.closing.is_some() {
            return Ok(());
        }
        c.poll_inflight = true;
        let Some(c) = self.conns.get(slot).and_then(Option::as_ref) else {
            return Ok(());
        };
        let events = (libc::POLLIN | libc::POLLRDHUP) as u32;
        self.ring.poll(c.stream.as_fd(), events, ud(Op::Poll, slot))
    }

    /// Starts a receive on a readable connection, or queues it until a buffer is free.
    fn start_recv(&mut self, slot: usize) -> io::Result<()> {
        if self.stopping {
            return Ok(());
        }
        let at_limit = self.recvs_inflight >= MAX_RECV_INFLIGHT;
        let pool = &self.ctx.pipeline.pool;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        if c.recv_inflight || c.closing.is_some() {
            return Ok(());
        }
        let fd = c.stream.as_fd();
        if let Some(tls) = c.tls.as_deref_mut() {
            if tls.has_input() {
                // Decrypt what the session holds before receiving more.
                return self.tls_progress(slot, false);
            }
            let space = tls.recv_space();
            let (ptr, len) = (space.as_mut_ptr(), space.len());
            if len == 0 {
                return self.tls_progress(slot, false);
            }
            c.recv_space = len;
            c.recv_inflight = true;
            self.tls_recvs_inflight += 1;
            // SAFETY: `ptr..ptr+len` is the receive space of the session's boxed inbound
            // buffer, owned by this connection's state; the session is not used (so the
            // buffer is neither read, written, moved nor freed) until this RECV completes
            // (`recv_inflight`).
            return unsafe {
                self.ring
                    .recv(fd, ptr, len, libc::MSG_DONTWAIT, ud(Op::Recv, slot))
            };
        }
        let (ptr, len) = if c.conn.assembling() {
            let spare = c.conn.big_spare();
            (spare.as_mut_ptr(), spare.len())
        } else {
            let buf = if at_limit { None } else { pool.take() };
            let Some(mut buf) = buf else {
                if !c.waiting {
                    c.waiting = true;
                    self.waiting.push_back(slot);
                }
                return Ok(());
            };
            let off = c.conn.load_carry(&mut buf);
            let spare = &mut buf.data[off..];
            let (ptr, len) = (spare.as_mut_ptr(), spare.len());
            c.recv_off = off;
            c.recv_buf = Some(buf);
            (ptr, len)
        };
        c.recv_space = len;
        c.recv_inflight = true;
        self.recvs_inflight += 1;
        // SAFETY: `ptr..ptr+len` lies in a heap buffer owned by this connection's state (the
        // pooled batch in `recv_buf`, or the oversize frame buffer inside `conn`); neither is
        // read, written, reallocated or freed until this RECV completes (`recv_inflight`).
        unsafe {
            self.ring
                .recv(fd, ptr, len, libc::MSG_DONTWAIT, ud(Op::Recv, slot))
        }
    }

    fn serve_waiting(&mut self) -> io::Result<()> {
        let mut n = self.waiting.len();
        while n > 0 && self.recvs_inflight < MAX_RECV_INFLIGHT {
            n -= 1;
            let Some(slot) = self.waiting.pop_front() else {
                break;
            };
            let Some(c) = self.conn_mut(slot) else {
                continue;
            };
            c.waiting = false;
            if self.ctx.pipeline.pool.available() == 0 {
                if let Some(c) = self.conn_mut(slot) {
                    c.waiting = true;
                }
                self.waiting.push_front(slot);
                break;
            }
            self.start_recv(slot)?;
        }
        if !self.waiting.is_empty() && self.recvs_inflight == 0 {
            // Every buffer is with the writer or the queue: wait for the writer to return
            // some. Meanwhile the senders' kernel buffers fill up (back-pressure).
            self.shipper.flush(&self.ctx.stats);
            std::thread::park_timeout(Duration::from_millis(1));
        }
        Ok(())
    }

    fn on_recv(&mut self, slot: usize, res: i32) -> io::Result<()> {
        if self.conn_mut(slot).is_some_and(|c| c.tls.is_some()) {
            return self.on_tls_recv(slot, res);
        }
        self.recvs_inflight = self.recvs_inflight.saturating_sub(1);
        let ctx = Rc::clone(&self.ctx);
        let ctx = &*ctx;
        let stats: &ThreadStats = &ctx.stats;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        c.recv_inflight = false;
        let buf = c.recv_buf.take();
        let mut again = false;
        if res > 0 {
            let n = res as usize;
            again = n == c.recv_space;
            match buf {
                Some(mut b) => {
                    let r = c.conn.on_recv(&mut b, c.recv_off + n, &ctx.filter, stats);
                    self.shipper.route(b, stats);
                    let r = r.and_then(|()| {
                        super::decode_carried(ctx, &mut c.conn, &mut self.shipper, false)
                    });
                    if let Err(e) = r {
                        c.closing = Some(Err(e));
                    }
                }
                None => match c.conn.on_big_recv(n, &ctx.filter, stats) {
                    Ok(Some(b)) => {
                        // After the frames copied before it, to keep the connection's order.
                        self.shipper.flush(stats);
                        self.shipper.ship(b, stats)
                    }
                    Ok(None) => {}
                    Err(e) => c.closing = Some(Err(e)),
                },
            }
        } else {
            if let Some(b) = buf {
                ctx.pipeline.pool.give(b);
            }
            if res == 0 {
                c.closing = Some(super::end_of_stream(ctx, &mut c.conn, &mut self.shipper));
            } else if res != -libc::EAGAIN && res != -libc::EINTR {
                c.closing = Some(Err(ConnError::Io(io::Error::from_raw_os_error(-res))));
            }
        }
        self.queue_replies(slot)?;
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        if c.closing.is_none() && c.conn.is_finished() && !c.send_inflight {
            c.closing = Some(Ok(()));
        }
        if c.closing.is_none() && !self.stopping {
            if again || res == -libc::EINTR {
                self.start_recv(slot)?;
            } else {
                self.arm_poll(slot)?;
            }
        }
        self.after_event(slot)
    }

    /// A RECV of a TLS connection completed: hand the ciphertext to the session, then decrypt.
    fn on_tls_recv(&mut self, slot: usize, res: i32) -> io::Result<()> {
        self.tls_recvs_inflight = self.tls_recvs_inflight.saturating_sub(1);
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        c.recv_inflight = false;
        let mut again = false;
        if let Some(tls) = c.tls.as_deref_mut() {
            if res > 0 {
                tls.on_received(res as usize);
                again = res as usize == c.recv_space;
            } else if res == 0 {
                tls.on_eof();
            } else if res != -libc::EAGAIN && res != -libc::EINTR && c.closing.is_none() {
                c.closing = Some(Err(ConnError::Io(io::Error::from_raw_os_error(-res))));
            }
        }
        if c.closing.is_some() {
            return self.after_event(slot);
        }
        self.tls_progress(slot, again || res == -libc::EINTR)
    }

    /// Decrypts what a TLS connection's session holds into pooled buffers (decoding and
    /// routing them as a plain receive would), sends what TLS has to send, then waits for
    /// the socket again (`again`: receive at once, the last one filled its space).
    fn tls_progress(&mut self, slot: usize, again: bool) -> io::Result<()> {
        let ctx = Rc::clone(&self.ctx);
        let ctx = &*ctx;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let mut starved = false;
        let mut pending = false;
        if let Some(tls) = c.tls.as_deref_mut() {
            // Bounded: 64 KiB of ciphertext fills a few buffers at most.
            for _ in 0..64 {
                match read_into(ctx, &mut c.conn, &mut self.shipper, |d| {
                    tls.read_plaintext(d)
                }) {
                    ReadOutcome::Data { .. } => {
                        if c.conn.is_finished() {
                            break;
                        }
                    }
                    ReadOutcome::WouldBlock => break,
                    ReadOutcome::NoBuffer => {
                        starved = true;
                        break;
                    }
                    ReadOutcome::Eof(r) => {
                        c.closing = Some(r);
                        break;
                    }
                    ReadOutcome::Error(e) => {
                        c.closing = Some(Err(e));
                        break;
                    }
                }
            }
            pending = tls.has_input();
            super::report_handshake(&c.conn, tls);
        }
        if c.closing.is_none() && (starved || pending) && !c.waiting {
            // Served again when buffers come back (serve_waiting → start_recv).
            c.waiting = true;
            self.waiting.push_back(slot);
        }
        self.queue_replies(slot)?;
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        if c.closing.is_none() && c.conn.is_finished() && !c.send_inflight {
            c.closing = Some(Ok(()));
        }
        if c.closing.is_none() && !c.waiting && !self.stopping {
            if again {
                self.start_recv(slot)?;
            } else {
                self.arm_poll(slot)?;
            }
        }
        self.after_event(slot)
    }

    /// Notes whether the last round was held up by the output (connections waiting for a
    /// pool buffer, or a batch waiting for room in the queue); when a hold-up ends, the
    /// handshake deadlines move back by its length (`input::stall`).
    fn track_stall(&mut self) {
        let now = Instant::now();
        let held = !self.waiting.is_empty() | self.shipper.take_waited();
        if let Some(by) = self.stall.round(held, self.round_start, now) {
            let conns = &mut self.conns;
            stall::postpone(&mut self.deadlines, by, |slot, old, new| {
                if let Some(c) = conns.get_mut(slot).and_then(Option::as_mut) {
                    if c.deadline == old {
                        c.deadline = new;
                    }
                }
            });
        }
        self.round_start = now;
    }

    /// Closes the connections whose handshake is past its deadline: marked closing, the
    /// socket shut down so that whatever is in flight completes at once.
    fn expire_handshakes(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let timeout = self.ctx.security.handshake_timeout;
        while let Some(&(at, slot)) = self.deadlines.front() {
            if at > now {
                return Ok(());
            }
            self.deadlines.pop_front();
            let Some(c) = self.conn_mut(slot) else {
                continue;
            };
            let done = c.conn.is_started() && !c.tls.as_ref().is_some_and(|t| t.is_handshaking());
            if c.deadline != at || done || c.closing.is_some() {
                continue;
            }
            c.closing = Some(Err(ConnError::HandshakeTimeout(timeout)));
            c.stream.shutdown();
            self.after_event(slot)?;
        }
        Ok(())
    }

    /// Sends pending reply bytes unless a send is already in flight.
    fn queue_replies(&mut self, slot: usize) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        if c.send_inflight {
            return Ok(());
        }
        if c.sent == c.send_buf.len() {
            c.send_buf.clear();
            c.sent = 0;
        }
        match c.tls.as_deref_mut() {
            None => c.conn.take_reply(&mut c.send_buf),
            Some(tls) => tls_replies(&mut c.conn, tls, &mut c.send_buf),
        }
        if c.sent == c.send_buf.len() {
            return Ok(());
        }
        let pending = &c.send_buf[c.sent..];
        let (ptr, len) = (pending.as_ptr(), pending.len());
        c.send_inflight = true;
        self.sends_inflight += 1;
        let fd = c.stream.as_fd();
        // SAFETY: `send_buf` belongs to this connection and is not modified (new replies
        // wait in the Connection), moved or freed until this SEND completes
        // (`send_inflight`).
        unsafe {
            self.ring
                .send(fd, ptr, len, libc::MSG_NOSIGNAL, ud(Op::Send, slot))
        }
    }

    fn on_send(&mut self, slot: usize, res: i32) -> io::Result<()> {
        self.sends_inflight = self.sends_inflight.saturating_sub(1);
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        c.send_inflight = false;
        if res < 0 {
            if res != -libc::EINTR && res != -libc::EAGAIN && c.closing.is_none() {
                c.closing = Some(Err(ConnError::Io(io::Error::from_raw_os_error(-res))));
            }
        } else {
            c.sent = (c.sent + res as usize).min(c.send_buf.len());
        }
        if c.closing.is_none() || self.stopping {
            self.queue_replies(slot)?;
        }
        if let Some(c) = self.conn_mut(slot) {
            if c.closing.is_none() && c.conn.is_finished() && !c.send_inflight {
                c.closing = Some(Ok(()));
            }
        }
        self.after_event(slot)
    }

    /// Closes a connection whose end was decided, once none of its operations is in flight.
    fn after_event(&mut self, slot: usize) -> io::Result<()> {
        let Some(c) = self.conn_mut(slot) else {
            return Ok(());
        };
        if c.closing.is_none() {
            return Ok(());
        }
        if c.poll_inflight {
            if c.cancel_sent {
                return Ok(());
            }
            c.cancel_sent = true;
            return self.ring.cancel(ud(Op::Poll, slot), ud(Op::Cancel, slot));
        }
        if c.busy() {
            return Ok(());
        }
        if let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) {
            let why = c.closing.take().unwrap_or(Ok(()));
            if let Some(b) = c.recv_buf.take() {
                self.ctx.pipeline.pool.give(b);
            }
            self.ctx.closed(&c.conn, why);
            self.free.push(slot);
            self.waiting.retain(|&s| s != slot);
        }
        Ok(())
    }

    /// After the loop: read what the kernel already holds, close everything, and make sure
    /// no buffer the kernel may still write to is freed.
    fn finish(&mut self) {
        let ctx = Rc::clone(&self.ctx);
        let ctx = &*ctx;
        for slot in 0..self.conns.len() {
            let Some(mut c) = self.conns[slot].take() else {
                continue;
            };
            if c.recv_inflight || c.send_inflight {
                // Only on an error exit: the kernel may still use these buffers.
                std::mem::forget(c);
                continue;
            }
            let why = match c.closing.take() {
                Some(w) => w,
                None => {
                    let mut out = Vec::new();
                    let r = match c.tls.as_deref_mut() {
                        None => {
                            let r = drain_on_stop(ctx, &c.stream, &mut c.conn, &mut self.shipper);
                            c.conn.take_reply(&mut out);
                            r
                        }
                        Some(tls) => {
                            let r = tls_drain_on_stop(
                                ctx,
                                &c.stream,
                                &mut c.conn,
                                tls,
                                &mut self.shipper,
                            );
                            tls_replies(&mut c.conn, tls, &mut out);
                            r
                        }
                    };
                    if !out.is_empty() {
                        let _ = c.stream.write(&out);
                    }
                    r
                }
            };
            if let Some(b) = c.recv_buf.take() {
                ctx.pipeline.pool.give(b);
            }
            ctx.closed(&c.conn, why);
        }
        self.shipper.flush(&ctx.stats);
    }
}
