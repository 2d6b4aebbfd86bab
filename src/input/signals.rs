//! SIGINT/SIGTERM (stop) and SIGHUP (reload) as values: blocked in every thread and read by
//! the main thread (see [`crate::sys::signal::Signals`]), so no code runs in a signal
//! handler and shutdown is an ordinary flag.
#![forbid(unsafe_code)]

pub use crate::sys::signal::Signals;

/// The name of a signal, for the log.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Whether `sig` asks for a reload of the configuration (SIGHUP) rather than a stop.
pub fn is_reload(sig: i32) -> bool {
    sig == libc::SIGHUP
}
