//! The one decision, for every test, about something this machine may lack (a peer program,
//! a tool, the lab, root, an IPv6 loopback, io_uring, the loadgen binary): skip with a
//! NOTICE when run by hand, fail when `CI=true`. [`missing`] is that decision; everything
//! else here finds a thing and calls it when the thing is not there.
//!
//! A skip prints `NOTICE: skipped <check>: <why>` on stderr and, when `DNSTAP_SKIP_LOG`
//! names a file, appends the line `<check>: <why>` to it (the test script counts those
//! lines, and CI fails on any).
//!
//! io_uring has one explicit opt-out: under `CI=true` a kernel that refuses io_uring fails
//! the test, unless `DNSTAP_NO_IO_URING=1` is set; then the io_uring half of each test is
//! skipped and logged like any other skip (see [`uring_or_opt_out`]).
//!
//! Standard library only: the loadgen crate includes this file with `#[path]`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file a skipped check is appended to, one line each.
pub const SKIP_LOG_ENV: &str = "DNSTAP_SKIP_LOG";
/// `1`: a kernel without io_uring skips the io_uring half instead of failing under CI.
pub const NO_IO_URING_ENV: &str = "DNSTAP_NO_IO_URING";

/// True under `CI=true`: nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `check` (a test or a part of one) cannot run because of `why`, which names the missing
/// thing (`syslog-ng not found in PATH`). Under `CI=true` this panics; otherwise it prints
/// and logs the skip and returns, and the caller skips.
pub fn missing(check: &str, why: &str) {
    assert!(
        !in_ci(),
        "{check}: {why} (CI=true: a missing prerequisite fails the test instead of skipping it)"
    );
    skipped(check, why);
}

/// `ok`, or [`missing`]`(check, why())` and false.
pub fn require(ok: bool, check: &str, why: impl FnOnce() -> String) -> bool {
    if !ok {
        missing(check, &why());
    }
    ok
}

/// An explicit opt-out the user asked for (`DNSTAP_INTEROP=0`): not a failure even under
/// `CI=true`, but printed and logged like any skip, so the run's count shows it.
pub fn opted_out(check: &str, why: &str) {
    skipped(check, why);
}

/// Prints and logs a skip (the caller has decided it is allowed).
fn skipped(check: &str, why: &str) {
    eprintln!("NOTICE: skipped {check}: {why}");
    if let Some(log) = std::env::var_os(SKIP_LOG_ENV) {
        let line = format!("{check}: {}\n", why.replace('\n', " "));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "cannot append to {SKIP_LOG_ENV}={}: {e}",
                Path::new(&log).display()
            );
        }
    }
}

/// The program `name` in a directory of `PATH` (and `extra` directories), if any.
pub fn find_program(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The program `name` from `PATH`, or [`missing`]`(check, "NAME not found in PATH")`.
pub fn need_program(check: &str, name: &str) -> Option<PathBuf> {
    need_program_in(check, name, &[], "")
}

/// [`need_program`] that also looks in `extra` directories; `hint` (may be empty) says how
/// the program gets installed.
pub fn need_program_in(check: &str, name: &str, extra: &[PathBuf], hint: &str) -> Option<PathBuf> {
    let found = find_program(name, extra);
    if found.is_none() {
        let mut why = format!("{name} not found in PATH");
        if !extra.is_empty() {
            let dirs: Vec<String> = extra.iter().map(|d| d.display().to_string()).collect();
            why.push_str(&format!(" nor in {}", dirs.join(", ")));
        }
        if !hint.is_empty() {
            why.push_str(&format!(" ({hint})"));
        }
        missing(check, &why);
    }
    found
}

/// Whether this process runs as root; else [`missing`]`(check, "not root")`.
pub fn need_root(check: &str) -> bool {
    // /proc/self belongs to this process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    require(root, check, || "not running as root".to_string())
}

/// Whether `[::1]` can be bound; else [`missing`]`(check, "no IPv6 loopback")`.
pub fn need_ipv6_loopback(check: &str) -> bool {
    let bound = std::net::TcpListener::bind("[::1]:0");
    let why = bound.as_ref().err().map(|e| e.to_string());
    require(bound.is_ok(), check, || {
        format!(
            "no IPv6 loopback (bind [::1]:0: {})",
            why.unwrap_or_default()
        )
    })
}

/// What to do about io_uring, given whether the kernel accepted it (`probe`): true when the
/// io_uring half of `check` runs. A refusal fails under `CI=true` unless
/// `DNSTAP_NO_IO_URING=1`, which skips (and logs) that half instead.
pub fn uring_or_opt_out(check: &str, probe: Result<(), String>) -> bool {
    let Err(e) = probe else {
        return true;
    };
    let why = format!("io_uring refused by this kernel ({e})");
    if std::env::var(NO_IO_URING_ENV).as_deref() == Ok("1") {
        skipped(check, &format!("{why}; {NO_IO_URING_ENV}=1"));
    } else {
        missing(
            check,
            &format!("{why}; set {NO_IO_URING_ENV}=1 to skip the io_uring half"),
        );
    }
    false
}
