//! SIGINT/SIGTERM as a value: blocked in every thread and read by the main thread (see
//! [`crate::sys::signal::Signals`]), so no code runs in a signal handler and shutdown is an
//! ordinary flag.
#![forbid(unsafe_code)]

pub use crate::sys::signal::Signals;

/// The name of a termination signal, for the log.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}
