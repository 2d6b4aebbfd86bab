//! Socket calls std does not offer: a TCP listener with options set between `socket()` and
//! `bind()`, TCP keepalive tuning, a non-blocking receive, and the two queue counters
//! (`FIONREAD`, `SIOCOUTQ`). The counters are the one `ioctl` here, since no safe wrapper
//! exists for them.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, recv, setsockopt, socket, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, SockaddrStorage,
};

/// A non-blocking, close-on-exec TCP listener with SO_REUSEADDR (as std sets it) and, with
/// `reuse_port`, SO_REUSEPORT: then other processes (or a restarted one) can listen on the
/// same address at once, and the kernel spreads new connections among them. `backlog` is
/// capped by the kernel at `net.core.somaxconn`.
pub fn bind_tcp_listener(
    addr: SocketAddr,
    reuse_port: bool,
    backlog: i32,
) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(backlog).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

/// `addr` as a `sockaddr_storage` and the length of the sockaddr inside it (the tests' raw
/// sockets bind and connect with it).
pub fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data (integers and byte arrays, some fields private):
    // all-zero bytes are a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned (it is
            // made to hold any sockaddr); `ss` is exclusively borrowed.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned;
            // `ss` is exclusively borrowed.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn secs(d: Duration) -> u32 {
    d.as_secs().clamp(1, i32::MAX as u64) as u32
}

/// Turns on TCP keepalive: first probe after `idle` without traffic, then every `interval`,
/// `count` probes unanswered and the connection is reset. Also sets `TCP_USER_TIMEOUT`:
/// data left unacknowledged for `user_timeout` breaks the connection (a collector that
/// vanished without a FIN or RST is noticed instead of being written to for ever).
pub fn set_keepalive(
    fd: BorrowedFd<'_>,
    idle: Duration,
    interval: Duration,
    count: u32,
    user_timeout: Duration,
) -> io::Result<()> {
    setsockopt(&fd, sockopt::KeepAlive, &true)?;
    setsockopt(&fd, sockopt::TcpKeepIdle, &secs(idle))?;
    setsockopt(&fd, sockopt::TcpKeepInterval, &secs(interval))?;
    setsockopt(&fd, sockopt::TcpKeepCount, &count.clamp(1, 127))?;
    let ms = user_timeout.as_millis().clamp(1, i32::MAX as u128) as u32;
    setsockopt(&fd, sockopt::TcpUserTimeout, &ms)?;
    Ok(())
}

/// Receives without blocking: `Ok(None)` when nothing is waiting (or the call was
/// interrupted), `Ok(Some(0))` at the peer's end of stream.
pub fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `ioctl`s that report one count about a socket through an `int` out-parameter. A
/// closed set, so that [`socket_count`] can state its invariant for every request it sends.
#[derive(Clone, Copy, Debug)]
enum CountQuery {
    /// Bytes waiting in the receive queue (`FIONREAD`).
    Received,
    /// Bytes sent but not yet acknowledged by the peer (`SIOCOUTQ`, same number as
    /// `TIOCOUTQ`).
    Unacked,
}

fn socket_count(fd: BorrowedFd<'_>, q: CountQuery) -> io::Result<libc::c_int> {
    let request = match q {
        CountQuery::Received => libc::FIONREAD,
        CountQuery::Unacked => libc::TIOCOUTQ,
    };
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is a live descriptor borrowed for the call (a bad one is an error, not
    // undefined behaviour); both requests write exactly one c_int through the pointer,
    // which points at `n` on our stack.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut n as *mut libc::c_int) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

/// Bytes waiting in a socket's receive queue (`FIONREAD`, for TCP and unix streams).
pub fn queued_bytes(fd: impl AsFd) -> io::Result<usize> {
    let n = socket_count(fd.as_fd(), CountQuery::Received)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Bytes written to the socket that the peer's TCP stack has not acknowledged yet
/// (Linux `SIOCOUTQ`, the same number as `TIOCOUTQ`).
pub fn unacked_bytes(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let n = socket_count(fd, CountQuery::Unacked)?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn outq_drains_once_the_peer_acknowledges() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        set_keepalive(
            c.as_fd(),
            Duration::from_secs(5),
            Duration::from_secs(2),
            3,
            Duration::from_secs(20),
        )
        .unwrap();
        c.write_all(&[1u8; 1000]).unwrap();
        let mut buf = [0u8; 1000];
        s.read_exact(&mut buf).unwrap();
        let t0 = std::time::Instant::now();
        while unacked_bytes(c.as_fd()).unwrap() != 0 {
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut b = [0u8; 16];
        assert_eq!(recv_nonblocking(c.as_fd(), &mut b).unwrap(), None);
        s.write_all(b"hi").unwrap();
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(recv_nonblocking(c.as_fd(), &mut b).unwrap(), Some(2));
        assert_eq!(recv_nonblocking(c.as_fd(), &mut b).unwrap(), Some(0), "EOF");
    }
}
