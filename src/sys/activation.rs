//! systemd socket activation, the receiving end of `sd_listen_fds(3)`: the listening sockets a
//! `.socket` unit (or `systemd-socket-activate`) opened and handed to this process as
//! descriptors 3, 4, ... with `LISTEN_PID`, `LISTEN_FDS` and optionally `LISTEN_FDNAMES` in
//! the environment.
//!
//! Taking a descriptor number from the environment and owning it is the one unsafe step here;
//! every descriptor is checked (open, a socket, listening, stream) before it is handed out,
//! typed as a std listener with its address. Knows nothing of inputs or configuration:
//! matching a socket to a configured input is the input floor's business.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage,
};

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Set once the descriptors have been taken: a second [`take_listen_fds`] returns none, so
/// that no descriptor is owned twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// One listening socket passed by the service manager.
#[derive(Debug)]
pub struct ActivatedSocket {
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=` in the unit; systemd's default
    /// is the socket unit's name), when given.
    pub name: Option<String>,
    /// The descriptor number it came as (for messages).
    pub fd: RawFd,
    pub listener: ActivatedListener,
}

/// A passed socket typed by its address family.
#[derive(Debug)]
pub enum ActivatedListener {
    /// `ListenStream=` on an IP address or a port.
    Tcp(TcpListener, SocketAddr),
    /// `ListenStream=` on a path. `None`: an abstract or unnamed socket.
    Unix(UnixListener, Option<PathBuf>),
}

impl ActivatedSocket {
    /// `tcp 127.0.0.1:6000` or `unix /run/dnstap/dnstap.sock`, with the name if any.
    pub fn describe(&self) -> String {
        let addr = match &self.listener {
            ActivatedListener::Tcp(_, a) => format!("tcp {a}"),
            ActivatedListener::Unix(_, Some(p)) => format!("unix {}", p.display()),
            ActivatedListener::Unix(_, None) => "unix (abstract or unnamed)".into(),
        };
        match &self.name {
            Some(n) => format!("{addr} (fd {}, name {n:?})", self.fd),
            None => format!("{addr} (fd {})", self.fd),
        }
    }
}

/// The environment that describes the passed descriptors, as read (so that parsing can be
/// tested without a service manager).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListenEnv {
    pub pid: Option<String>,
    pub fds: Option<String>,
    pub names: Option<String>,
}

impl ListenEnv {
    pub fn from_process() -> ListenEnv {
        let get = |k| std::env::var(k).ok();
        ListenEnv {
            pid: get("LISTEN_PID"),
            fds: get("LISTEN_FDS"),
            names: get("LISTEN_FDNAMES"),
        }
    }

    /// How many descriptors were passed to the process `my_pid`, and their names: `Ok(None)`
    /// when nothing was passed to it (no `LISTEN_FDS`, or a `LISTEN_PID` naming another
    /// process, as when a shell inherited the variables and started us as its child).
    pub fn parse(&self, my_pid: u32) -> io::Result<Option<Vec<Option<String>>>> {
        let (Some(pid), Some(fds)) = (&self.pid, &self.fds) else {
            return Ok(None);
        };
        let bad = |what: &str, v: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}={v:?} is not a number"),
            )
        };
        let pid: u32 = pid.trim().parse().map_err(|_| bad("LISTEN_PID", pid))?;
        if pid != my_pid {
            return Ok(None);
        }
        let n: usize = fds.trim().parse().map_err(|_| bad("LISTEN_FDS", fds))?;
        // The descriptor numbers must stay ints; no service passes more than a few.
        if n > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS={n}: implausibly many descriptors"),
            ));
        }
        let mut names: Vec<Option<String>> = match &self.names {
            Some(s) => s
                .split(':')
                .map(|n| Some(n.to_string()).filter(|n| !n.is_empty()))
                .collect(),
            None => Vec::new(),
        };
        // A LISTEN_FDNAMES with another count is ignored, as sd_listen_fds_with_names does.
        if names.len() != n {
            names = vec![None; n];
        }
        Ok(Some(names))
    }
}

/// Takes the listening sockets passed to this process, once: `Ok(empty)` when none were (or
/// on a second call). Each is made close-on-exec and non-blocking. Fails on a passed
/// descriptor that is closed, not a socket, not listening, not a stream socket, or of a
/// family other than IPv4, IPv6 and unix.
pub fn take_listen_fds() -> io::Result<Vec<ActivatedSocket>> {
    let Some(names) = ListenEnv::from_process().parse(std::process::id())? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let fd = LISTEN_FDS_START + i as RawFd;
        // SAFETY: F_GETFD reads the descriptor's flags and touches no memory; on a number
        // that is not an open descriptor it fails with EBADF, which is handled.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDS: descriptor {fd} is not open"),
            ));
        }
        // SAFETY: `fd` is open (checked above) and was passed to this process, by the
        // protocol LISTEN_PID/LISTEN_FDS establish (LISTEN_PID is our pid), for it to own.
        // Nothing else in the process takes descriptors from 3 up on this protocol's say-so,
        // and TAKEN makes sure this loop runs once, so each descriptor gets one owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        out.push(classify(owned, fd, name)?);
    }
    Ok(out)
}

fn classify(owned: OwnedFd, fd: RawFd, name: Option<String>) -> io::Result<ActivatedSocket> {
    let what = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("fd {fd}: {msg}"));
    let addr: SockaddrStorage =
        getsockname(owned.as_raw_fd()).map_err(|e| what(&format!("not a socket ({e})")))?;
    if getsockopt(&owned, sockopt::SockType).map_err(io::Error::from)? != SockType::Stream {
        return Err(what(
            "not a stream socket (ListenStream= is what Frame Streams needs)",
        ));
    }
    if !getsockopt(&owned, sockopt::AcceptConn).map_err(io::Error::from)? {
        return Err(what(
            "a socket that is not listening (Accept=no is required)",
        ));
    }
    let listener = match addr.family() {
        Some(AddressFamily::Inet | AddressFamily::Inet6) => {
            let l = TcpListener::from(owned);
            let a = l.local_addr()?;
            l.set_nonblocking(true)?;
            ActivatedListener::Tcp(l, a)
        }
        Some(AddressFamily::Unix) => {
            let l = UnixListener::from(owned);
            let path = l.local_addr()?.as_pathname().map(|p| p.to_path_buf());
            l.set_nonblocking(true)?;
            ActivatedListener::Unix(l, path)
        }
        other => return Err(what(&format!("unsupported address family {other:?}"))),
    };
    // std's conversions keep the descriptor's flags: make it close-on-exec as sd_listen_fds
    // does, so that nothing we might start inherits it.
    let raw = match &listener {
        ActivatedListener::Tcp(l, _) => l.as_raw_fd(),
        ActivatedListener::Unix(l, _) => l.as_raw_fd(),
    };
    // SAFETY: F_SETFD on a descriptor we own (held by `listener`) sets a flag; no memory is
    // passed.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ActivatedSocket { name, fd, listener })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pid: &str, fds: &str, names: Option<&str>) -> ListenEnv {
        ListenEnv {
            pid: Some(pid.into()),
            fds: Some(fds.into()),
            names: names.map(Into::into),
        }
    }

    #[test]
    fn nothing_passed_without_the_variables() {
        assert_eq!(ListenEnv::default().parse(7).unwrap(), None);
    }

    #[test]
    fn another_process_pid_means_not_for_us() {
        assert_eq!(env("8", "2", None).parse(7).unwrap(), None);
    }

    #[test]
    fn names_are_matched_by_position() {
        let got = env("7", "2", Some("dnstap-unix:dnstap-tcp"))
            .parse(7)
            .unwrap();
        assert_eq!(
            got,
            Some(vec![Some("dnstap-unix".into()), Some("dnstap-tcp".into())])
        );
    }

    #[test]
    fn names_of_the_wrong_count_are_ignored() {
        let got = env("7", "2", Some("one")).parse(7).unwrap();
        assert_eq!(got, Some(vec![None, None]));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(env("x", "2", None).parse(7).is_err());
        assert!(env("7", "-1", None).parse(7).is_err());
    }
}
