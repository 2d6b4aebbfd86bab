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

mod receiver_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use receiver_common::{
    backends, capture, capture_payloads, free_port, last_stat, offline_lines, read_control, Conn,
    TempDir, BIN,
};

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
// The receiver, with a stdout reader the test can pause and a memory sampler.

struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
    /// While set, nothing reads the receiver's stdout: the pipe fills and the writer stalls.
    paused: Arc<AtomicBool>,
    /// Complete lines read so far.
    lines: Arc<AtomicU64>,
    stdout_thread: Option<JoinHandle<Vec<String>>>,
    sampler: Option<(Arc<AtomicBool>, JoinHandle<u64>)>,
}

impl Daemon {
    /// Starts the receiver with `-v --threads 2 args`; `keep` keeps the stdout lines.
    fn start(args: &[&str], keep: bool) -> Daemon {
        let mut child = Command::new(BIN)
            .arg("-v")
            .args(["--threads", THREADS])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dnstap_receiver");
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let s2 = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => s2
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        let paused = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicU64::new(0));
        let out = child.stdout.take().unwrap();
        let (p2, l2) = (Arc::clone(&paused), Arc::clone(&lines));
        let stdout_thread = std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, out);
            let mut kept = Vec::new();
            let mut line = String::new();
            loop {
                while p2.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return kept,
                    Ok(_) => {
                        l2.fetch_add(1, Ordering::Relaxed);
                        if keep {
                            kept.push(line.trim_end_matches('\n').to_owned());
                        }
                    }
                }
            }
        });
        let mut d = Daemon {
            child,
            stderr,
            stderr_thread: Some(stderr_thread),
            paused,
            lines,
            stdout_thread: Some(stdout_thread),
            sampler: None,
        };
        let t0 = Instant::now();
        while !d.stderr().contains("io back-end:") {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("receiver exited early ({st}): {}", d.stderr());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "receiver did not start: {}",
                d.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d.sampler = Some(sample_rss(d.child.id()));
        d
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The documented memory bound for this receiver with `conns` connections whose frames
    /// are at most `max_frame` bytes, from the pool it logged at start-up:
    /// `buffers × (buffer-size + buffer-size / 8) + 1.25 MiB + conns × (partial frame)`.
    fn documented_bound(&self, conns: u64, max_frame: u64) -> u64 {
        let log = self.stderr();
        let line = log
            .lines()
            .find(|l| l.contains("pool: "))
            .expect("the pool line");
        let after = &line[line.find("pool: ").unwrap() + 6..];
        let mut words = after.split(' ');
        let buffers: u64 = words.next().unwrap().parse().unwrap();
        let size: u64 = words.nth(2).unwrap().parse().unwrap();
        // One output buffer (≈ 1.25 MiB) per writer thread: "..., N writer thread(s)".
        let writers: u64 = log
            .split(" writer thread(s)")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the writer count");
        buffers * (size + size / 8) + writers * (5 << 18) + conns * (max_frame + PER_CONNECTION)
    }

    /// Sends SIGTERM, waits (bounded), and returns the exit code, stderr, the stdout lines
    /// (if kept), how many there were, and the peak RSS in bytes.
    fn stop(mut self, deadline: Duration) -> Done {
        signal(self.child.id(), "TERM");
        self.wait(deadline)
    }

    fn wait(&mut self, deadline: Duration) -> Done {
        self.paused.store(false, Ordering::Release);
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("receiver did not exit in time: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let peak = match self.sampler.take() {
            Some((stop, h)) => {
                stop.store(true, Ordering::Release);
                h.join().unwrap()
            }
            None => 0,
        };
        let kept = self
            .stdout_thread
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        if let Some(h) = self.stderr_thread.take() {
            let _ = h.join();
        }
        Done {
            code: status.code(),
            stderr: self.stderr(),
            kept,
            lines: self.lines.load(Ordering::Relaxed),
            peak_rss: peak,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Done {
    code: Option<i32>,
    stderr: String,
    kept: Vec<String>,
    lines: u64,
    peak_rss: u64,
}

impl Done {
    fn stat(&self, key: &str) -> u64 {
        last_stat(&self.stderr, key)
    }

    /// The end counters, for the report line.
    fn counters(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains("stats:"))
            .unwrap_or("");
        line[line.find("stats: ").map_or(0, |i| i + 7)..].to_owned()
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Samples `/proc/PID/status` every second until told to stop; returns the highest of the
/// sampled `VmRSS` and the kernel's own high-water mark `VmHWM` (which catches peaks
/// between samples).
fn sample_rss(pid: u32) -> (Arc<AtomicBool>, JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let h = std::thread::spawn(move || {
        let mut peak = 0u64;
        let path = format!("/proc/{pid}/status");
        // Bounded: a test never runs for a day.
        for i in 0..86_400u64 {
            let Ok(text) = std::fs::read_to_string(&path) else {
                break;
            };
            for key in ["VmRSS:", "VmHWM:"] {
                if let Some(kib) = status_kib(&text, key) {
                    peak = peak.max(kib << 10);
                }
            }
            // One sample a second, but notice "stop" within 50 ms.
            for _ in 0..20 {
                if s2.load(Ordering::Acquire) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = i;
        }
        peak
    });
    (stop, h)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn check_memory(test: &str, d: &Done, bound: u64) {
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

#[derive(Clone, Debug)]
enum Target {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

fn connect(t: &Target, timeout: Duration) -> Box<dyn Conn> {
    let t0 = Instant::now();
    loop {
        let r: std::io::Result<Box<dyn Conn>> = match t {
            Target::Tcp(p) => TcpStream::connect(("127.0.0.1", *p)).map(|s| {
                s.set_read_timeout(Some(timeout)).unwrap();
                s.set_write_timeout(Some(timeout)).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
            Target::Unix(p) => UnixStream::connect(p).map(|s| {
                s.set_read_timeout(Some(timeout)).unwrap();
                s.set_write_timeout(Some(timeout)).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
        };
        match r {
            Ok(c) => return c,
            Err(e) => {
                assert!(t0.elapsed() < Duration::from_secs(30), "connect {t:?}: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
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
    let file = receiver_common::lab_dir().join("captures/wire/nsd-wire.fstrm");
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
    let d = Daemon::start(&["--io", io, "-c", cfg.to_str().unwrap()], true);
    let pid = d.child.id();

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
    let bound = d.documented_bound(CONNECTIONS as u64, max_len(&payloads));
    let done = d.stop(Duration::from_secs(120));
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
    let mut got: HashMap<&str, u64> = HashMap::new();
    for l in &done.kept {
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
fn stalled_output(io: &str, policy: &str) -> (Done, u64, u64) {
    const SENDERS: usize = 4;
    let test = format!("stalled_output/{io}/{policy}");
    let file = capture("nsd-unix.fstrm");
    let payloads = Arc::new(capture_payloads(&file));
    let dir = TempDir::new("stall");
    let sock = dir.path("s.sock");
    let port = free_port();
    let cfg = dir.path("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\nqueue:\n  policy: {policy}\n",
            sock.display()
        ),
    )
    .unwrap();
    let d = Daemon::start(&["--io", io, "-c", cfg.to_str().unwrap()], false);
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
    std::thread::sleep(Duration::from_secs(3));
    let before = d.lines.load(Ordering::Relaxed);
    assert!(before > 0, "{test}: nothing flowed before the stall");
    d.paused.store(true, Ordering::Release);
    let stall = Duration::from_secs(stall_secs());
    std::thread::sleep(stall);
    let during = d.lines.load(Ordering::Relaxed);
    d.paused.store(false, Ordering::Release);
    // Flow again for a while, then stop the senders (each ends with STOP / FINISH).
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        d.lines.load(Ordering::Relaxed) > during,
        "{test}: nothing flowed after the stall"
    );
    stop.store(true, Ordering::Release);
    let sent: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
    let bound = d.documented_bound(SENDERS as u64, max_len(&payloads));
    // Everything the receiver took is written (block) or counted (drop) before it exits.
    let t0 = Instant::now();
    let mut last = u64::MAX;
    while t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        let now = d.lines.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let done = d.stop(Duration::from_secs(120));
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
    let io = if receiver_common::uring_usable("stalled_output_with_block") {
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
        let d = Daemon::start(&["--io", io, "-c", cfg.to_str().unwrap()], false);
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
        let t0 = Instant::now();
        while d.lines.load(Ordering::Relaxed) < 50_000 {
            assert!(t0.elapsed() < Duration::from_secs(60), "{test}: no load");
            std::thread::sleep(Duration::from_millis(20));
        }
        let bound = d.documented_bound(6, max_len(&payloads));
        let done = d.stop(Duration::from_secs(60));
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
