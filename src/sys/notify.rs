//! The service manager's readiness protocol (`sd_notify(3)`, `Type=notify`): one datagram of
//! `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an
//! abstract socket). Without the variable every call is a no-op, so the daemon calls these
//! unconditionally.
//!
//! Knows nothing of what the daemon does between the states it reports.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go; `None` inside when the process was not started by a service
/// manager that listens.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`. A malformed value is an error (the unit says `Type=notify`
    /// and the manager would wait in vain); an absent one gives a notifier that does nothing.
    pub fn from_env() -> io::Result<Notifier> {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Ok(Notifier { target: None }),
            Some(v) => {
                let v = v.to_str().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "NOTIFY_SOCKET is not UTF-8")
                })?;
                Notifier::to(v)
            }
        }
    }

    /// A notifier sending to `socket` (`/run/systemd/notify` or `@abstract-name`).
    pub fn to(socket: &str) -> io::Result<Notifier> {
        let addr = if let Some(name) = socket.strip_prefix('@') {
            SocketAddr::from_abstract_name(name.as_bytes())?
        } else if socket.starts_with('/') {
            SocketAddr::from_pathname(socket)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NOTIFY_SOCKET={socket:?}: neither a path nor @abstract (vsock is not supported)"),
            ));
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some((sock, addr)),
        })
    }

    /// True when notifications go somewhere.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state` (newline-separated `KEY=VALUE` assignments) as one datagram.
    pub fn send(&self, state: &str) -> io::Result<()> {
        match &self.target {
            None => Ok(()),
            Some((sock, addr)) => sock.send_to_addr(state.as_bytes(), addr).map(|_| ()),
        }
    }

    /// Start-up is complete: listening sockets bound, threads running.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={}",
            std::process::id(),
            one_line(status)
        ))
    }

    /// A reload began; send [`Notifier::ready`] again when it is done. `MONOTONIC_USEC` is
    /// what `Type=notify-reload` (systemd 253 and later) requires with it.
    pub fn reloading(&self) -> io::Result<()> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()))
    }

    /// Shutdown began (the service manager then waits for the exit instead of judging it).
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    /// A free-form status line (`systemctl status` shows it).
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock the service manager compares
/// `MONOTONIC_USEC` with (std's `Instant` reads it but does not expose the value).
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the pointer, which points at `ts`
    // on our stack; CLOCK_MONOTONIC always exists on Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec.max(0) as u64) * 1_000_000 + (ts.tv_nsec.max(0) as u64) / 1_000
}

/// A STATUS value ends at the line's end: newlines would start new assignments.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn no_socket_means_no_op() {
        let n = Notifier { target: None };
        assert!(!n.is_active());
        n.ready("x").unwrap();
    }

    #[test]
    fn ready_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::to(path.to_str().unwrap()).unwrap();
        n.ready("listening\non 2 sockets").unwrap();
        let mut buf = [0u8; 256];
        let got = rx.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..got]).unwrap();
        assert!(msg.starts_with("READY=1\nMAINPID="), "{msg}");
        assert!(msg.ends_with("STATUS=listening on 2 sockets"), "{msg}");
        n.reloading().unwrap();
        let got = rx.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..got])
            .unwrap()
            .starts_with("RELOADING=1\nMONOTONIC_USEC="));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_socket_and_bad_values() {
        let name = format!("dnstap-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .stopping("bye")
            .unwrap();
        let mut buf = [0u8; 64];
        let got = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"STOPPING=1\nSTATUS=bye");
        assert!(Notifier::to("vsock:2:1").is_err());
    }
}
