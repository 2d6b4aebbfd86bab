//! The few socket calls the forward output needs that `std` does not offer: TCP keepalive
//! tuning, `TCP_USER_TIMEOUT`, the count of sent-but-unacknowledged bytes (`SIOCOUTQ`), and a
//! non-blocking receive. This is the output side's io edge: every `unsafe` block is here,
//! each a single libc call on a descriptor the caller owns, with a `// SAFETY:` note.
//! Knows nothing of records, chunks or TLS.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor borrowed for the call; the option value is a
    // c_int on our stack and its exact size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn secs(d: Duration) -> libc::c_int {
    d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int
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
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
    setsockopt_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        count.clamp(1, 127) as libc::c_int,
    )?;
    let ms = user_timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
}

/// Bytes written to the socket that the peer's TCP stack has not acknowledged yet
/// (Linux `SIOCOUTQ`, the same number as `TIOCOUTQ`).
pub fn unacked_bytes(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is a live socket borrowed for the call; SIOCOUTQ writes one c_int
    // through the pointer, which points at `n` on our stack.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    if r == 0 {
        Ok(n.max(0) as u64)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives without blocking: `Ok(None)` when nothing is waiting, `Ok(Some(0))` at the
/// peer's end of stream.
pub fn recv_nonblocking(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `fd` is a live socket borrowed for the call; the kernel writes at most
    // `buf.len()` bytes into `buf`, which we hold mutably.
    let r = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if r >= 0 {
        return Ok(Some(r as usize));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock => Ok(None),
        io::ErrorKind::Interrupted => Ok(None),
        _ => Err(e),
    }
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
