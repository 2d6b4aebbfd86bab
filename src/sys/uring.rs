//! io_uring, behind a small API: one [`Ring`] per reader thread. Operations that lend the
//! kernel no memory (accept, poll, cancel, the wait's timeout) are safe methods; the two that
//! do (`recv`, `send`) are `unsafe fn`s whose caller promises to keep the buffer alive and
//! untouched until the completion. Completions come back as [`Completion`] values, a
//! successful accept already as an owned descriptor.
//!
//! User data: the caller's token (below [`TOKEN_LIMIT`]) plus a kind in the top two bits,
//! set only here, so that a completion is known to be an accept (its result a new
//! descriptor) or this module's own timeout whatever the caller's tokens say.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};

/// Tokens must be below this (62 bits).
pub const TOKEN_LIMIT: u64 = 1 << 62;
const KIND_SHIFT: u32 = 62;
const KIND_PLAIN: u64 = 0;
const KIND_ACCEPT: u64 = 1;
const KIND_TIMEOUT: u64 = 2;

fn user_data(kind: u64, token: u64) -> io::Result<u64> {
    if token >= TOKEN_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "io_uring token out of range",
        ));
    }
    Ok((kind << KIND_SHIFT) | token)
}

/// Fails when this kernel or sandbox refuses io_uring (ENOSYS, EPERM, ...) or its io_uring
/// lacks one of the operations the receiver uses.
pub fn probe() -> io::Result<()> {
    let ring = IoUring::new(4)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [
        (opcode::Accept::CODE, "accept"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::Recv::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::AsyncCancel::CODE, "cancel"),
        (opcode::Timeout::CODE, "timeout"),
    ] {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("this kernel's io_uring lacks the {name} operation"),
            ));
        }
    }
    Ok(())
}

/// One completed operation.
#[derive(Debug)]
pub enum Completion {
    /// An accept: the new connection, or the (positive) errno.
    Accepted {
        token: u64,
        result: Result<OwnedFd, i32>,
    },
    /// Any other operation: its token and the kernel's result (negative errno on failure).
    Done { token: u64, result: i32 },
}

/// A submission and completion queue pair.
pub struct Ring {
    ring: IoUring,
    ext_arg: bool,
    /// The timespec of the TIMEOUT that bounds a wait on kernels without EXT_ARG: boxed, so
    /// it does not move while the operation is queued.
    timeout_spec: Box<types::Timespec>,
    timeout_pending: bool,
}

impl Ring {
    pub fn new(entries: u32) -> io::Result<Ring> {
        let ring = IoUring::builder().build(entries)?;
        let ext_arg = ring.params().is_feature_ext_arg();
        Ok(Ring {
            ring,
            ext_arg,
            timeout_spec: Box::new(types::Timespec::from(Duration::from_millis(100))),
            timeout_pending: false,
        })
    }

    /// Pushes one SQE, submitting first when the queue is full.
    ///
    /// # Safety
    /// Every buffer the entry points to must stay valid, and not be read, written, moved or
    /// freed, until its completion has been taken from the ring.
    unsafe fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from the caller's contract.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Accepts one connection on `listener` (the new socket non-blocking, close-on-exec).
    pub fn accept(&mut self, listener: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let e = opcode::Accept::new(
            types::Fd(listener.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        .build()
        .user_data(user_data(KIND_ACCEPT, token)?);
        // SAFETY: no buffers: the peer address is not asked for (null pointers).
        unsafe { self.push(&e) }
    }

    /// Waits once for `events` (`POLL*` bits) on `fd`.
    pub fn poll(&mut self, fd: BorrowedFd<'_>, events: u32, token: u64) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), events)
            .build()
            .user_data(user_data(KIND_PLAIN, token)?);
        // SAFETY: a poll carries no buffer.
        unsafe { self.push(&e) }
    }

    /// Cancels the operation submitted with token `target` (not an accept).
    pub fn cancel(&mut self, target: u64, token: u64) -> io::Result<()> {
        let e = opcode::AsyncCancel::new(user_data(KIND_PLAIN, target)?)
            .build()
            .user_data(user_data(KIND_PLAIN, token)?);
        // SAFETY: a cancel request carries no buffer.
        unsafe { self.push(&e) }
    }

    /// Receives into `ptr..ptr+len` (at most `u32::MAX` bytes are asked for).
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid for writes, and must not be read, written, moved
    /// (reallocated) or freed until this operation's completion has been taken from the ring.
    /// If the ring is dropped first, the memory must be leaked, not freed.
    pub unsafe fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        ptr: *mut u8,
        len: usize,
        flags: i32,
        token: u64,
    ) -> io::Result<()> {
        let len = len.min(u32::MAX as usize) as u32;
        let e = opcode::Recv::new(types::Fd(fd.as_raw_fd()), ptr, len)
            .flags(flags)
            .build()
            .user_data(user_data(KIND_PLAIN, token)?);
        // SAFETY: forwarded from the caller's contract: the buffer outlives the operation.
        unsafe { self.push(&e) }
    }

    /// Sends `ptr..ptr+len` (at most `u32::MAX` bytes).
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid for reads, and must not be written, moved (reallocated)
    /// or freed until this operation's completion has been taken from the ring. If the ring
    /// is dropped first, the memory must be leaked, not freed.
    pub unsafe fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        ptr: *const u8,
        len: usize,
        flags: i32,
        token: u64,
    ) -> io::Result<()> {
        let len = len.min(u32::MAX as usize) as u32;
        let e = opcode::Send::new(types::Fd(fd.as_raw_fd()), ptr, len)
            .flags(flags)
            .build()
            .user_data(user_data(KIND_PLAIN, token)?);
        // SAFETY: forwarded from the caller's contract: the buffer outlives the operation.
        unsafe { self.push(&e) }
    }

    /// Submits what is queued and waits up to `wait` for at least one completion (one
    /// `io_uring_enter`). A timeout, a signal or a busy completion queue is not an error.
    pub fn submit_and_wait(&mut self, wait: Duration) -> io::Result<()> {
        let r = if self.ext_arg {
            let ts = types::Timespec::from(wait);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(1, &args)
        } else {
            if !self.timeout_pending {
                *self.timeout_spec = types::Timespec::from(wait);
                let e = opcode::Timeout::new(&*self.timeout_spec)
                    .build()
                    .user_data(KIND_TIMEOUT << KIND_SHIFT);
                // SAFETY: the timespec is boxed in `self`, is not written while the TIMEOUT
                // is pending (`timeout_pending`), and outlives the operation.
                unsafe { self.push(&e)? };
                self.timeout_pending = true;
            }
            self.ring.submit_and_wait(1)
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Moves every available completion to `out` (this module's own timeouts excepted).
    pub fn completions(&mut self, out: &mut Vec<Completion>) {
        for c in self.ring.completion() {
            let (u, result) = (c.user_data(), c.result());
            let token = u & (TOKEN_LIMIT - 1);
            match u >> KIND_SHIFT {
                KIND_ACCEPT if result >= 0 => {
                    // SAFETY: the user data says this is an accept (only `accept` sets that
                    // kind), and a successful accept completion carries a new descriptor
                    // that this process owns and nothing else refers to.
                    let fd = unsafe { OwnedFd::from_raw_fd(result) };
                    out.push(Completion::Accepted {
                        token,
                        result: Ok(fd),
                    })
                }
                KIND_ACCEPT => out.push(Completion::Accepted {
                    token,
                    result: Err(-result),
                }),
                KIND_TIMEOUT => self.timeout_pending = false,
                _ => out.push(Completion::Done { token, result }),
            }
        }
    }
}
