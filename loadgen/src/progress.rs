//! Live progress: every sender adds what it wrote to two process-wide counters after each
//! write (one relaxed atomic add per write of hundreds of KiB, nothing per message), and a
//! printer thread turns them into one stderr line per second with the live rate.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static MESSAGES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Called by a sender after each successful write.
pub fn record(messages: u64, bytes: u64) {
    MESSAGES.fetch_add(messages, Ordering::Relaxed);
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Messages and bytes written so far by every sender of the process.
pub fn totals() -> (u64, u64) {
    (
        MESSAGES.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

/// One progress line: elapsed time, totals, the rate over the last interval and overall.
pub fn line(elapsed: f64, messages: u64, bytes: u64, interval_rate: f64) -> String {
    let overall = if elapsed > 0.0 {
        messages as f64 / elapsed
    } else {
        0.0
    };
    format!(
        "loadgen: {elapsed:6.1} s {messages:>12} msgs {:>9.1} MB  now {} msg/s  avg {} msg/s",
        bytes as f64 / 1e6,
        si(interval_rate),
        si(overall),
    )
}

/// `12.3 M`, `456.7 k`, `89`.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Prints a progress line once per second until `done` is set. On a terminal the line is
/// rewritten in place; otherwise (a log file, a script) one line per second.
pub fn run_printer(started: Instant, done: &AtomicBool) {
    let tty = std::io::stderr().is_terminal();
    let mut last = (started, 0u64);
    let mut next = started + Duration::from_secs(1);
    loop {
        // Sleep in small steps so the printer notices the end of a short run quickly.
        while Instant::now() < next {
            if done.load(Ordering::Relaxed) {
                if tty {
                    eprintln!();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = Instant::now();
        let (messages, bytes) = totals();
        let dt = now.duration_since(last.0).as_secs_f64();
        let rate = (messages - last.1) as f64 / dt.max(1e-9);
        let text = line(
            now.duration_since(started).as_secs_f64(),
            messages,
            bytes,
            rate,
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{text}")
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
        last = (now, messages);
        next += Duration::from_secs(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_totals_and_rates() {
        let l = line(2.0, 5_000_000, 750_000_000, 2_600_000.0);
        assert!(l.contains("5000000 msgs"), "{l}");
        assert!(l.contains("750.0 MB"), "{l}");
        assert!(l.contains("now 2.60 M msg/s"), "{l}");
        assert!(l.contains("avg 2.50 M msg/s"), "{l}");
        assert!(line(0.0, 0, 0, 0.0).contains("avg 0 msg/s"));
    }

    #[test]
    fn record_adds_up() {
        let before = totals();
        record(3, 30);
        record(4, 40);
        let after = totals();
        // Other tests in this process may send too: at least our part is there.
        assert!(after.0 - before.0 >= 7 && after.1 - before.1 >= 70);
    }
}
