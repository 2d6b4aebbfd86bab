//! One epoll instance, safe: descriptors are borrowed for each call, events are plain
//! `(token, flags)` pairs, and waiting fills a buffer allocated once by the caller.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll as NixEpoll, EpollCreateFlags, EpollEvent, EpollFlags};

/// An epoll instance (closed on drop).
#[derive(Debug)]
pub struct Epoll {
    ep: NixEpoll,
}

/// The buffer [`Epoll::wait`] fills: its capacity, fixed at creation, is the most events
/// one wait returns.
#[derive(Debug)]
pub struct Events {
    buf: Vec<EpollEvent>,
    /// Entries of `buf` filled by the last wait: `0 <= len <= buf.len()`.
    len: usize,
}

impl Events {
    pub fn with_capacity(n: usize) -> Events {
        Events {
            buf: vec![EpollEvent::empty(); n],
            len: 0,
        }
    }

    /// The last wait's events as `(token, EPOLL* flags)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.buf
            .iter()
            .take(self.len)
            .map(|e| (e.data(), e.events().bits() as u32))
    }
}

fn event(flags: u32, token: u64) -> EpollEvent {
    EpollEvent::new(EpollFlags::from_bits_retain(flags as i32), token)
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        Ok(Epoll {
            ep: NixEpoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        })
    }

    /// Watches `fd` for `flags` (`EPOLL*` bits); its events carry `token`.
    pub fn add(&self, fd: impl AsFd, flags: u32, token: u64) -> io::Result<()> {
        Ok(self.ep.add(fd, event(flags, token))?)
    }

    pub fn modify(&self, fd: impl AsFd, flags: u32, token: u64) -> io::Result<()> {
        Ok(self.ep.modify(fd, &mut event(flags, token))?)
    }

    pub fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        Ok(self.ep.delete(fd)?)
    }

    /// Waits up to `timeout_ms` and fills `events` (one `epoll_wait`; no allocation). An
    /// interrupted wait returns no events.
    pub fn wait(&self, events: &mut Events, timeout_ms: u16) -> io::Result<()> {
        events.len = 0;
        match self.ep.wait(&mut events.buf, timeout_ms) {
            Ok(n) => events.len = n.min(events.buf.len()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}
