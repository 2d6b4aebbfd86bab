//! Process resource limits.
#![forbid(unsafe_code)]

use std::io;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises this process's soft limit on open files to its hard limit: every connection is a
/// file descriptor, and the usual soft default (1024) would refuse senders long before the
/// pool or the queue limits anything. Returns the soft limit before and after.
pub fn raise_open_files_limit() -> io::Result<(u64, u64)> {
    let (old, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    // An unlimited hard limit cannot be the soft one: the kernel caps descriptors at
    // fs.nr_open.
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = hard.min(ceiling);
    if want > old {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard)?;
        return Ok((old, want));
    }
    Ok((old, old))
}
