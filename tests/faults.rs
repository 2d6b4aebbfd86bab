//! Load and faults: a thousand concurrent senders, the output stalled for a minute under full
//! input (with each queue policy), and SIGTERM under load. Throughout, the receiver's memory
//! is sampled from `/proc/PID/status` and must stay below the bound `docs/receiver.md`
//! documents ("Memory bound") plus [`RSS_MARGIN`] for the process itself.
//!
//! The end counters come from the receiver's final `-v` summary line and are checked against
//! what the test sent and what came out on stdout (one text line per record). Each test
//! prints one `FAULT-REPORT` line with its peak memory and end counters; `docs/hardening.md`
//! records them.
//!
//! Every loop is bounded in count and time. `FAULT_STALL_SECS` shortens the stall (default
//! 60 s, the figure the hardening issue asks for) when iterating locally.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use support::lab::{capture, capture_payloads};
use support::receiver::{
    backends, connect_within, free_port, lines, offline_lines, read_control, Conn, Finished,
    Launch, Receiver, Target, TempDir,
};
use support::receiver::{metric, metrics_page, wait_until};

/// Allowance over the documented bound for the process itself: code, libraries, thread
/// stacks, allocator slack. The idle debug binary is about 17 MiB before its pool is
/// touched.
const RSS_MARGIN: u64 = 32 << 20;
/// Per-connection state the documented bound counts as "the head of one partial frame":
/// here at most the largest frame of the capture, plus this much for the connection's own
/// buffers (reply, send, decoder).
const PER_CONNECTION: u64 = 4 << 10;
/// Reader threads of every receiver here (the pool size depends on it).
const THREADS: &str = "2";

// ---------------------------------------------------------------------------------------------
// The receiver (support::receiver, with its memory sampled) and its memory bound.

/// Starts the receiver with `-v --threads 2 args`, its memory sampled; `keep` keeps stdout.
fn start(args: &[&str], keep: bool) -> Receiver {
    let mut all = vec!["--threads", THREADS];
    all.extend_from_slice(args);
    Launch::new(&all).keep_stdout(keep).sample_rss().start()
}

fn check_memory(test: &str, d: &Finished, bound: u64) {
    let limit = bound + RSS_MARGIN;
    eprintln!(
        "FAULT-REPORT {test}: peak_rss={:.1}MiB documented_bound={:.1}MiB limit={:.1}MiB \
         lines={} counters: {}",
        d.peak_rss as f64 / 1048576.0,
        bound as f64 / 1048576.0,
        limit as f64 / 1048576.0,
        d.lines,
        d.counters()
    );
    assert!(d.peak_rss > 0, "{test}: no memory sample");
    assert!(
        d.peak_rss <= limit,
        "{test}: peak RSS {} bytes over the bound {bound} + margin {RSS_MARGIN}",
        d.peak_rss
    );
}

/// Raises this test process's open-files soft limit to the hard limit (a thousand client
/// sockets). Returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        // Root (CI) may raise the hard limit too; anyone may raise the soft one to it.
        if lim.rlim_max < 8192 {
            let want = libc::rlimit {
                rlim_cur: 8192,
                rlim_max: 8192,
            };
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &want);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(1 << 20);
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

// ---------------------------------------------------------------------------------------------
// Senders.

fn connect(t: &Target, timeout: Duration) -> Box<dyn Conn> {
    connect_within(t, timeout, Some(timeout), Duration::from_secs(30))
}

/// READY, wait for ACCEPT, START.
fn handshake(c: &mut dyn Conn) {
    let mut out = Vec::new();
    write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), &mut out);
    c.write_all(&out).unwrap();
    assert_eq!(read_control(c), ControlType::Accept as u32, "ACCEPT");
    out.clear();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    c.write_all(&out).unwrap();
}

fn frames_of(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        write_data_frame(p, &mut out);
    }
    out
}

fn stop_frame() -> Vec<u8> {
    let mut out = Vec::new();
    write_control_frame(ControlType::Stop, None, &mut out);
    out
}

fn max_len(payloads: &[Vec<u8>]) -> u64 {
    payloads
        .iter()
        .map(|p| p.len() as u64 + 4)
        .max()
        .unwrap_or(0)
}

/// Senders that repeat one capture on `n` connections until `stop` is set (or `cap`
/// repetitions each), counting the frames whose bytes were fully written. With `finish`,
/// each ends with STOP and waits for FINISH; otherwise it just stops (the receiver may be
/// gone).
fn flood(
    t: &Target,
    n: usize,
    payloads: &Arc<Vec<Vec<u8>>>,
    stop: &Arc<AtomicBool>,
    cap: u64,
    finish: bool,
) -> Vec<JoinHandle<u64>> {
    let bytes = Arc::new(frames_of(payloads));
    let per_rep = payloads.len() as u64;
    (0..n)
        .map(|_| {
            let (t, bytes, stop) = (t.clone(), Arc::clone(&bytes), Arc::clone(stop));
            std::thread::spawn(move || {
                let mut c = connect(&t, Duration::from_secs(300));
                handshake(&mut *c);
                let mut sent = 0u64;
                for _ in 0..cap {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    if c.write_all(&bytes).is_err() {
                        // Only without `finish` (SIGTERM): the receiver went away mid-write.
                        assert!(!finish, "write failed while the receiver should be up");
                        return sent;
                    }
                    sent += per_rep;
                }
                if finish {
                    c.write_all(&stop_frame()).unwrap();
                    assert_eq!(read_control(&mut *c), ControlType::Finish as u32, "FINISH");
                }
                sent
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A thousand concurrent senders.

const CONNECTIONS: usize = 1000;
/// Client threads; each owns CONNECTIONS / SENDER_THREADS connections and writes them in
/// turns, so every connection is mid-stream at once.
const SENDER_THREADS: usize = 8;
/// Bytes one connection gets per turn.
const TURN: usize = 4096;

fn thousand(io: &str) {
    let test = format!("thousand_senders/{io}");
    let have = raise_nofile();
    assert!(
        have >= CONNECTIONS as u64 + 100,
        "{test}: the open-files hard limit ({have}) is below {} (raise it for the test user)",
        CONNECTIONS + 100
    );
    let file = support::lab::lab_dir().join("captures/wire/nsd-wire.fstrm");
    let payloads = capture_payloads(&file);
    let one = offline_lines(&file, &[]);
    assert_eq!(one.len(), payloads.len());
    let mut stream = frames_of(&payloads);
    stream.extend(stop_frame());
    let stream = Arc::new(stream);

    let dir = TempDir::new("thousand");
    let sock = dir.path("k.sock");
    let port = free_port();
    let cfg = dir.path("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\n",
            sock.display()
        ),
    )
    .unwrap();
    let d = start(&["--io", io, "-c", cfg.to_str().unwrap()], true);
    let pid = d.pid();

    // Everyone connects and shakes hands; then all are counted open at once; then all send.
    let connected = Arc::new(Barrier::new(SENDER_THREADS + 1));
    let go = Arc::new(Barrier::new(SENDER_THREADS + 1));
    let per_thread = CONNECTIONS / SENDER_THREADS;
    let handles: Vec<JoinHandle<()>> = (0..SENDER_THREADS)
        .map(|k| {
            let (connected, go, stream) =
                (Arc::clone(&connected), Arc::clone(&go), Arc::clone(&stream));
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<Box<dyn Conn>> = (0..per_thread)
                    .map(|i| {
                        let t = if (k * per_thread + i) % 2 == 0 {
                            Target::Tcp(port)
                        } else {
                            Target::Unix(sock.clone())
                        };
                        let mut c = connect(&t, Duration::from_secs(60));
                        handshake(&mut *c);
                        c
                    })
                    .collect();
                connected.wait();
                go.wait();
                let mut at = 0;
                while at < stream.len() {
                    let end = (at + TURN).min(stream.len());
                    for c in conns.iter_mut() {
                        c.write_all(&stream[at..end]).unwrap();
                    }
                    at = end;
                }
                for c in conns.iter_mut() {
                    assert_eq!(read_control(&mut **c), ControlType::Finish as u32);
                }
            })
        })
        .collect();
    connected.wait();
    // The receiver holds a descriptor for each of them now (plus listeners, pipes, rings).
    let t0 = Instant::now();
    let fds = loop {
        let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        if n >= CONNECTIONS || t0.elapsed() > Duration::from_secs(30) {
            break n;
        }
        // A poll, bounded above.
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        fds >= CONNECTIONS,
        "{test}: only {fds} descriptors open in the receiver"
    );
    go.wait();
    for h in handles {
        h.join().unwrap();
    }
    let bound = d.documented_bound(CONNECTIONS as u64, max_len(&payloads), PER_CONNECTION);
    let done = d.stop_within(Duration::from_secs(120));
    assert_eq!(done.code, Some(0), "{test}: {}", done.stderr);
    assert!(!done.stderr.contains("panicked"), "{test}");
    assert!(!done.stderr.contains("WARN"), "{test}: {}", done.stderr);
    assert_eq!(done.stat("accepted"), CONNECTIONS as u64, "{test}");
    assert_eq!(done.stat("errors"), 0, "{test}");
    let total = (CONNECTIONS * payloads.len()) as u64;
    assert_eq!(done.stat("frames"), total, "{test}: frames");
    assert_eq!(done.stat("written"), total, "{test}: written");
    assert_eq!(done.lines, total, "{test}: lines");
    // Every record of every connection: each line of the capture, a thousand times.
    let mut want: HashMap<&str, u64> = HashMap::new();
    for l in &one {
        *want.entry(l.as_str()).or_default() += CONNECTIONS as u64;
    }
    let kept = lines(&done.stdout);
    let mut got: HashMap<&str, u64> = HashMap::new();
    for l in &kept {
        *got.entry(l.as_str()).or_default() += 1;
    }
    assert!(got == want, "{test}: the records differ from the capture's");
    check_memory(&test, &done, bound);
}

#[test]
fn a_thousand_concurrent_senders() {
    for io in backends("a_thousand_concurrent_senders") {
        thousand(io);
    }
}

// ---------------------------------------------------------------------------------------------
// The output stalled under full input.

fn stall_secs() -> u64 {
    std::env::var("FAULT_STALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// Senders on `SENDERS` connections (half TCP, half unix) flood the receiver; after a while
/// of normal flow the test stops reading stdout for the stall, senders still pushing; then
/// it reads again, stops the senders, and compares.
fn stalled_output(io: &str, policy: &str) -> (Finished, u64, u64) {
    const SENDERS: usize = 4;
    let test = format!("stalled_output/{io}/{policy}");
    let file = capture("nsd-unix.fstrm");
    let payloads = Arc::new(capture_payloads(&file));
    let dir = TempDir::new("stall");
    let sock = dir.path("s.sock");
    let (port, mport) = (free_port(), free_port());
    let cfg = dir.path("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\nqueue:\n  policy: {policy}\n\
             metrics:\n  listen: 127.0.0.1:{mport}\n",
            sock.display()
        ),
    )
    .unwrap();
    let d = start(&["--io", io, "-c", cfg.to_str().unwrap()], false);
    let stop = Arc::new(AtomicBool::new(false));
    // Bounded by count too: 10,000 repetitions of 7,230 frames per connection is far more
    // than a minute of this machine.
    let mut senders = flood(
        &Target::Tcp(port),
        SENDERS / 2,
        &payloads,
        &stop,
        10_000,
        true,
    );
    senders.extend(flood(
        &Target::Unix(sock.clone()),
        SENDERS / 2,
        &payloads,
        &stop,
        10_000,
        true,
    ));
    // Normal flow first: a whole capture's worth of lines is out.
    d.wait_lines(payloads.len() as u64, Duration::from_secs(60));
    let before = d.lines_so_far();
    assert!(before > 0, "{test}: nothing flowed before the stall");
    d.pause_output(true);
    let stall = Duration::from_secs(stall_secs());
    // Deliberate: the stall itself (nothing reads stdout for this long, senders push on).
    std::thread::sleep(stall);
    let during = d.lines_so_far();
    d.pause_output(false);
    // Flow again (another capture's worth of lines), then stop the senders (each ends with
    // STOP / FINISH).
    d.wait_lines(during + payloads.len() as u64, Duration::from_secs(60));
    stop.store(true, Ordering::Release);
    let sent: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
    let bound = d.documented_bound(SENDERS as u64, max_len(&payloads), PER_CONNECTION);
    // Everything the receiver took is written (block) or counted (drop) before it exits:
    // wait until its counters say so, then stop it.
    wait_until(
        Duration::from_secs(120),
        || {
            let page = metrics_page(mport);
            metric(&page, "dnstap_receiver_messages_written_total")
                + metric(&page, "dnstap_receiver_messages_dropped_total")
                == metric(&page, "dnstap_receiver_frames_received_total")
        },
        || format!("{test}: frames still in the queue: {}", metrics_page(mport)),
    );
    let done = d.stop_within(Duration::from_secs(120));
    assert_eq!(done.code, Some(0), "{test}: {}", done.stderr);
    assert!(!done.stderr.contains("panicked"), "{test}");
    assert_eq!(
        done.stat("frames"),
        sent,
        "{test}: every frame sent was read"
    );
    assert_eq!(done.stat("decode-errors"), 0, "{test}");
    assert_eq!(
        done.lines,
        done.stat("written"),
        "{test}: a line per written record"
    );
    check_memory(&test, &done, bound);
    (done, sent, during - before)
}

#[test]
fn stalled_output_with_block_loses_nothing() {
    let io = if support::receiver::uring_usable("stalled_output_with_block") {
        "uring"
    } else {
        "epoll"
    };
    let (done, sent, _) = stalled_output(io, "block");
    assert_eq!(done.stat("dropped"), 0, "block never drops");
    assert_eq!(done.lines, sent, "every record sent is printed");
}

#[test]
fn stalled_output_with_drop_counts_the_shortfall() {
    let (done, sent, _) = stalled_output("epoll", "drop");
    let dropped = done.stat("dropped");
    assert!(
        dropped > 0,
        "a minute of stalled output under full input drops"
    );
    assert_eq!(dropped, sent - done.lines, "dropped = sent - printed");
}

// ---------------------------------------------------------------------------------------------
// SIGTERM under load.

#[test]
fn sigterm_under_load_writes_every_frame_read() {
    for io in backends("sigterm_under_load") {
        let test = format!("sigterm_under_load/{io}");
        let file = capture("bind-unix.fstrm");
        let payloads = Arc::new(capture_payloads(&file));
        let dir = TempDir::new("sigterm");
        let sock = dir.path("t.sock");
        let port = free_port();
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            format!(
                "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\nqueue:\n  policy: block\n",
                sock.display()
            ),
        )
        .unwrap();
        let d = start(&["--io", io, "-c", cfg.to_str().unwrap()], false);
        let stop = Arc::new(AtomicBool::new(false));
        let mut senders = flood(&Target::Tcp(port), 3, &payloads, &stop, 10_000, false);
        senders.extend(flood(
            &Target::Unix(sock.clone()),
            3,
            &payloads,
            &stop,
            10_000,
            false,
        ));
        // Under load: records are flowing when the signal comes.
        d.wait_lines(50_000, Duration::from_secs(60));
        let bound = d.documented_bound(6, max_len(&payloads), PER_CONNECTION);
        let done = d.stop_within(Duration::from_secs(60));
        stop.store(true, Ordering::Release);
        let sent: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done.code, Some(0), "{test}: {}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{test}");
        let frames = done.stat("frames");
        let written = done.stat("written");
        assert!(
            frames > 0 && frames <= sent + 6 * payloads.len() as u64,
            "{test}"
        );
        assert_eq!(done.stat("dropped"), 0, "{test}: block never drops");
        assert_eq!(
            frames,
            written + done.stat("filtered") + done.stat("dropped") + done.stat("decode-errors"),
            "{test}: every frame read is written (or counted)"
        );
        assert_eq!(done.lines, written, "{test}: a line per written record");
        check_memory(&test, &done, bound);
    }
}
