//! Shared by the benches: the frames of a lab capture, decoded once.

use std::ops::Range;
use std::path::{Path, PathBuf};

use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

/// The repository's lab; its `captures/` are fixtures recorded by `lab/capture.sh`.
pub fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab")
}

/// The bytes of a capture and the payload range of each data frame. `BENCH_CAPTURE=FILE`
/// replaces the lab capture with any `.fstrm` file (e.g. `loadgen --synth --write-fstrm`,
/// the corpus of scripts/perf.sh), so a stage can be measured on the same messages as the
/// end-to-end runs.
pub fn capture(name: &str) -> (Vec<u8>, Vec<Range<usize>>) {
    let path = match std::env::var_os("BENCH_CAPTURE") {
        Some(file) => PathBuf::from(file),
        None => lab_dir().join("captures").join(name),
    };
    capture_file(&path)
}

/// The bytes of one `.fstrm` file and the payload range of each data frame.
pub fn capture_file(path: &Path) -> (Vec<u8>, Vec<Range<usize>>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let (mut pos, mut frames) = (0, Vec::new());
    loop {
        let step = dec
            .decode(&bytes[pos..], &mut reply)
            .expect("valid capture");
        match step.event {
            Event::Data { payload } => frames.push(pos + payload.start..pos + payload.end),
            Event::NeedMore | Event::Finished => break,
            Event::Control => {}
        }
        pos += step.consumed;
    }
    (bytes, frames)
}

/// CPU time of the calling thread, in ns. On a shared machine wall-clock benchmarks count
/// the time other processes held the CPU; this does not, so the figures it gives are
/// printed beside criterion's.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on
    // Linux. On failure `ts` stays zero, which only spoils the printed figure.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs `pass` (which handles `per_pass` messages) until about 2 s of CPU time have been
/// spent, and prints the median of 10 slices as CPU ns per message. With
/// `BENCH_CPU_ONLY=TEXT` in the environment, only the names containing TEXT are run
/// (criterion's filter does not reach these).
pub fn print_cpu_ns_per_msg(name: &str, per_pass: usize, mut pass: impl FnMut()) {
    if std::env::var("BENCH_CPU_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    for _ in 0..3 {
        pass(); // warm-up
    }
    let mut slices = Vec::new();
    for _ in 0..10 {
        let start = thread_cpu_ns();
        let mut n = 0u64;
        while thread_cpu_ns() - start < 200_000_000 {
            pass();
            n += per_pass as u64;
        }
        slices.push((thread_cpu_ns() - start) as f64 / n as f64);
    }
    slices.sort_by(|a, b| a.total_cmp(b));
    println!("{name}: {:.0} CPU ns/msg (median of 10 slices)", slices[5]);
}
