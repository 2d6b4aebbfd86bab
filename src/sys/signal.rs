//! SIGINT/SIGTERM (stop) and SIGHUP (reload the configuration) as values: the signals are
//! blocked in every thread (the mask is inherited by threads spawned afterwards) and the
//! main thread reads them from a `signalfd`, so no code runs in a signal handler and
//! shutdown and reload are ordinary work of the main thread.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The blocked signals and the descriptor they are read from.
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks SIGINT, SIGTERM and SIGHUP for the calling thread and the threads it spawns
    /// later. Call before spawning any thread.
    pub fn block() -> io::Result<Signals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGHUP);
        // SIGUSR1: file outputs reopen their files (logrotate).
        set.add(Signal::SIGUSR1);
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    /// Waits up to `timeout` (to the millisecond) for SIGINT, SIGTERM or SIGHUP; returns
    /// the signal number if one came.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        match self.fd.read_signal() {
            Ok(Some(info)) => i32::try_from(info.ssi_signo).ok().filter(|&s| s > 0),
            _ => None,
        }
    }
}
