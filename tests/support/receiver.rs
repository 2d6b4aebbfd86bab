//! Running the receiver in integration tests: the built binary with its stdout lines
//! counted (and kept, or not), its stdout pausable (a stalled output), its memory sampled
//! (`Launch::sample_rss`), its log and metrics page read; free ports and temp dirs; and
//! Frame Streams senders (bidirectional or not). Every wait here polls with a deadline, so a
//! hung receiver fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_dnstap_receiver");
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The pause inside every poll loop here: short, and always under a deadline.
pub const POLL: Duration = Duration::from_millis(20);

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("dr-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True when the io_uring half of `test` runs: the kernel accepts io_uring, or (when it
/// does not) [`super::skip::uring_or_opt_out`] decides: a failure under `CI=true`, unless
/// `DNSTAP_NO_IO_URING=1`.
pub fn uring_usable(test: &str) -> bool {
    let probe = io_uring::IoUring::new(4)
        .map(drop)
        .map_err(|e| e.to_string());
    super::skip::uring_or_opt_out(&format!("{test} (io_uring half)"), probe)
}

/// The back-ends to test: always epoll, uring unless [`uring_usable`] says otherwise.
pub fn backends(test: &str) -> Vec<&'static str> {
    let mut v = vec!["epoll"];
    if uring_usable(test) {
        v.push("uring");
    }
    v
}

/// Polls `cond` every [`POLL`] until it holds; panics with `what()` after `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "{} (waited {limit:?})", what());
        // A poll step; the loop has a deadline.
        std::thread::sleep(POLL);
    }
}

/// `dnstap_receiver -r FILE [extra]` output lines (the oracle for live input).
pub fn offline_lines(file: &Path, extra: &[&str]) -> Vec<String> {
    let out = Command::new(BIN)
        .arg("-r")
        .arg(file)
        .args(extra)
        .output()
        .expect("run dnstap_receiver -r");
    assert!(
        out.status.success(),
        "-r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

pub fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// How to start a receiver: [`Receiver::start`] and friends for the usual cases, or
/// `Launch::new(args)...start()`.
pub struct Launch<'a> {
    args: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
    /// Nothing reads stdout for this long after the start (a stalled output).
    pause: Duration,
    /// Keep stdout's bytes for [`Finished::stdout`] (off for floods: only lines are counted).
    keep_stdout: bool,
    /// Sample the process's memory (VmRSS / VmHWM) for [`Finished::peak_rss`].
    sample_rss: bool,
}

impl<'a> Launch<'a> {
    pub fn new(args: &[&'a str]) -> Launch<'a> {
        Launch {
            args: args.to_vec(),
            env: Vec::new(),
            pause: Duration::ZERO,
            keep_stdout: true,
            sample_rss: false,
        }
    }

    pub fn env(mut self, env: &[(&'a str, &'a str)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    pub fn keep_stdout(mut self, keep: bool) -> Self {
        self.keep_stdout = keep;
        self
    }

    pub fn sample_rss(mut self) -> Self {
        self.sample_rss = true;
        self
    }

    /// Starts the binary with `-v` and the arguments, and waits until it is listening.
    pub fn start(self) -> Receiver {
        let mut child = Command::new(BIN)
            .envs(self.env.iter().copied())
            .arg("-v")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dnstap_receiver");
        let paused = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicU64::new(0));
        let out = child.stdout.take().unwrap();
        let (p2, l2, pause, keep) = (
            Arc::clone(&paused),
            Arc::clone(&lines),
            self.pause,
            self.keep_stdout,
        );
        let stdout = std::thread::spawn(move || read_stdout(out, pause, &p2, &l2, keep));
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
        let mut r = Receiver {
            child,
            stdout: Some(stdout),
            stderr,
            stderr_thread: Some(stderr_thread),
            paused,
            lines,
            sampler: None,
        };
        // "io back-end:" is logged after every listener is bound.
        let t0 = Instant::now();
        while !r.stderr().contains("io back-end:") {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("receiver exited early ({st}): {}", r.stderr());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "receiver did not start: {}",
                r.stderr()
            );
            // A poll step; the loop has a deadline.
            std::thread::sleep(POLL);
        }
        if self.sample_rss {
            r.sampler = Some(sample_rss(r.child.id()));
        }
        r
    }
}

/// The stdout reader: waits out `pause` (and any pause the test sets), counts complete
/// lines, keeps the bytes when `keep`.
fn read_stdout(
    mut out: impl Read,
    pause: Duration,
    paused: &AtomicBool,
    lines: &AtomicU64,
    keep: bool,
) -> Vec<u8> {
    let t0 = Instant::now();
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        while t0.elapsed() < pause || paused.load(Ordering::Acquire) {
            // Deliberate: the test stalls the output; nothing reads the pipe meanwhile.
            std::thread::sleep(POLL);
        }
        match out.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let nl = buf[..n].iter().filter(|&&b| b == b'\n').count();
                lines.fetch_add(nl as u64, Ordering::Release);
                if keep {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
}

/// A running receiver with its stdout and stderr collected by threads, and (when asked)
/// its memory sampled.
pub struct Receiver {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
    /// While set, nothing reads the receiver's stdout: the pipe fills and the writer stalls.
    paused: Arc<AtomicBool>,
    /// Complete stdout lines read so far.
    lines: Arc<AtomicU64>,
    sampler: Option<(Arc<AtomicBool>, JoinHandle<u64>)>,
}

pub struct Finished {
    pub code: Option<i32>,
    /// Empty when the launch did not keep stdout.
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Complete stdout lines, kept or not.
    pub lines: u64,
    /// Highest VmRSS / VmHWM sampled, in bytes (0 without sampling).
    pub peak_rss: u64,
}

impl Finished {
    /// `key=` of the final statistics line.
    pub fn stat(&self, key: &str) -> u64 {
        last_stat(&self.stderr, key)
    }

    /// The end counters (the final statistics line after `stats: `).
    pub fn counters(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains("stats:"))
            .unwrap_or("");
        line[line.find("stats: ").map_or(0, |i| i + 7)..].to_owned()
    }
}

impl Receiver {
    /// Starts the binary with `-v` and `args`, and waits until it is listening.
    pub fn start(args: &[&str]) -> Receiver {
        Launch::new(args).start()
    }

    /// Like `start`, but nothing reads the receiver's stdout for `pause` (a stalled output).
    pub fn start_paused(args: &[&str], pause: Duration) -> Receiver {
        Launch::new(args).pause(pause).start()
    }

    /// Like `start`, with extra environment variables for the receiver.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Receiver {
        Launch::new(args).env(env).start()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Complete stdout lines read so far.
    pub fn lines_so_far(&self) -> u64 {
        self.lines.load(Ordering::Acquire)
    }

    /// Stops (true) or resumes (false) reading stdout.
    pub fn pause_output(&self, on: bool) {
        self.paused.store(on, Ordering::Release);
    }

    /// Waits until stdout has shown at least `n` lines (bounded).
    pub fn wait_lines(&self, n: u64, limit: Duration) {
        wait_until(
            limit,
            || self.lines_so_far() >= n,
            || {
                format!(
                    "only {} of {n} lines: {}",
                    self.lines_so_far(),
                    self.stderr()
                )
            },
        );
    }

    /// Waits until stderr contains `needle` (bounded).
    pub fn wait_log(&self, needle: &str) {
        self.wait_log_count(needle, 1);
    }

    /// Waits until stderr contains `needle` at least `n` times (bounded).
    pub fn wait_log_count(&self, needle: &str, n: usize) {
        wait_until(
            DEADLINE,
            || self.stderr().matches(needle).count() >= n,
            || format!("fewer than {n} {needle:?} in log: {}", self.stderr()),
        );
    }

    /// Waits until the log shows `n` closed connections (bounded).
    pub fn wait_closed(&self, n: usize) {
        let closed =
            |s: &str| s.matches(": closed").count() + s.matches("connection closed:").count();
        wait_until(
            DEADLINE,
            || closed(&self.stderr()) >= n,
            || {
                let s = self.stderr();
                format!("only {} of {n} connections closed: {s}", closed(&s))
            },
        );
    }

    /// The documented memory bound for this receiver with `conns` connections whose frames
    /// are at most `max_frame` bytes plus `per_connection` of their own state, from the pool
    /// it logged at start-up:
    /// `buffers × (buffer-size + buffer-size / 8) + writers × 1.25 MiB + conns × (partial frame)`.
    pub fn documented_bound(&self, conns: u64, max_frame: u64, per_connection: u64) -> u64 {
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
        buffers * (size + size / 8) + writers * (5 << 18) + conns * (max_frame + per_connection)
    }

    /// Sends SIGTERM and collects everything (bounded).
    pub fn stop(self) -> Finished {
        self.stop_within(DEADLINE)
    }

    /// Sends SIGTERM and collects everything; killed (and the test failed) after `limit`.
    pub fn stop_within(mut self, limit: Duration) -> Finished {
        signal(self.pid(), "TERM");
        self.wait_within(limit)
    }

    /// Waits for exit (bounded; killed after the deadline).
    pub fn wait(&mut self) -> Finished {
        self.wait_within(DEADLINE)
    }

    fn wait_within(&mut self, limit: Duration) -> Finished {
        self.pause_output(false);
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("receiver did not exit in time: {}", self.stderr());
            }
            // A poll step; the loop has a deadline.
            std::thread::sleep(POLL);
        };
        let peak_rss = match self.sampler.take() {
            Some((stop, h)) => {
                stop.store(true, Ordering::Release);
                h.join().unwrap()
            }
            None => 0,
        };
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        if let Some(h) = self.stderr_thread.take() {
            let _ = h.join();
        }
        Finished {
            code: status.code(),
            stdout,
            stderr: self.stderr(),
            lines: self.lines.load(Ordering::Acquire),
            peak_rss,
        }
    }
}

/// `kill -SIG pid`.
pub fn signal(pid: u32, sig: &str) {
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
        for _ in 0..86_400u64 {
            let Ok(text) = std::fs::read_to_string(&path) else {
                break;
            };
            for key in ["VmRSS:", "VmHWM:"] {
                if let Some(kib) = status_kib(&text, key) {
                    peak = peak.max(kib << 10);
                }
            }
            // The sampling period (one a second), noticing "stop" within 50 ms.
            for _ in 0..20 {
                if s2.load(Ordering::Acquire) {
                    return peak;
                }
                // The sampling period; the loop is bounded.
                std::thread::sleep(Duration::from_millis(50));
            }
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

/// A plain HTTP/1.1 GET on 127.0.0.1: (status code, body). Bounded by timeouts.
pub fn http_get(port: u16, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: Basic {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    split_response(&resp)
}

pub fn split_response(resp: &[u8]) -> (u16, String) {
    let resp = String::from_utf8_lossy(resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, dechunk(body));
    }
    (status, body.to_string())
}

/// Undoes chunked transfer encoding (Prometheus answers its API in chunks).
fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        b = &rest[n + 2..];
    }
    out
}

/// The value of an unlabelled sample, or the sum over every label set of a family, in a
/// metrics page.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The receiver's metrics page at `127.0.0.1:port/metrics`.
pub fn metrics_page(port: u16) -> String {
    let (code, body) = http_get(port, "/metrics", None);
    assert_eq!(code, 200, "metrics page: {body}");
    body
}

/// Waits until counter `name` on the metrics endpoint at `port` satisfies `cond` (bounded);
/// returns the page.
pub fn wait_metric(port: u16, name: &str, limit: Duration, cond: impl Fn(u64) -> bool) -> String {
    let mut page = String::new();
    wait_until(
        limit,
        || {
            page = metrics_page(port);
            cond(metric(&page, name))
        },
        || format!("{name} never reached the expected value"),
    );
    page
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion (for start-up errors), bounded.
pub fn run_to_exit(args: &[&str]) -> Finished {
    run_to_exit_env(args, &[])
}

pub fn run_to_exit_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut child = Command::new(BIN)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        // A poll step; the loop has a deadline.
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Finished {
        code: out.status.code(),
        lines: out.stdout.iter().filter(|&&b| b == b'\n').count() as u64,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak_rss: 0,
    }
}

/// Where a sender connects.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

pub fn connect(t: &Target) -> Box<dyn Conn> {
    connect_within(t, Duration::from_secs(20), None, Duration::from_secs(10))
}

/// Connects to `t` (retrying while the receiver starts, up to `retry_for`), with `timeout`
/// on reads and, when given, `write_timeout` on writes.
pub fn connect_within(
    t: &Target,
    timeout: Duration,
    write_timeout: Option<Duration>,
    retry_for: Duration,
) -> Box<dyn Conn> {
    let t0 = Instant::now();
    loop {
        let r: std::io::Result<Box<dyn Conn>> = match t {
            Target::Tcp(p) => TcpStream::connect(("127.0.0.1", *p)).map(|s| {
                s.set_read_timeout(Some(timeout)).unwrap();
                s.set_write_timeout(write_timeout).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
            Target::Unix(p) => UnixStream::connect(p).map(|s| {
                s.set_read_timeout(Some(timeout)).unwrap();
                s.set_write_timeout(write_timeout).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
        };
        match r {
            Ok(c) => return c,
            Err(e) => {
                assert!(t0.elapsed() < retry_for, "connect {t:?}: {e}");
                // A poll step; the loop has a deadline.
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Reads one control frame and returns its type.
pub fn read_control(c: &mut dyn Conn) -> u32 {
    let mut h = [0u8; 8];
    c.read_exact(&mut h).expect("read control frame header");
    assert_eq!(&h[..4], &[0, 0, 0, 0], "expected a control frame");
    let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    assert!((4..=512).contains(&n), "control frame length {n}");
    let mut body = vec![0u8; n];
    c.read_exact(&mut body).expect("read control frame body");
    u32::from_be_bytes([body[0], body[1], body[2], body[3]])
}

/// How a sender ends its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// STOP, then wait for FINISH (bidirectional) and close.
    Stop,
    /// Close right after the last data frame.
    Eof,
    /// Keep the connection open (returned to the caller).
    Open,
}

/// Sends `payloads` with the bidirectional handshake (READY/ACCEPT/START ... STOP/FINISH),
/// in writes of about 64 KiB (frames straddle writes).
pub fn send_bidi(t: &Target, payloads: &[Vec<u8>], ending: Ending) -> Option<Box<dyn Conn>> {
    let mut c = connect(t);
    let mut out = Vec::new();
    write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), &mut out);
    c.write_all(&out).unwrap();
    assert_eq!(
        read_control(&mut *c),
        ControlType::Accept as u32,
        "ACCEPT expected"
    );
    out.clear();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for p in payloads {
        write_data_frame(p, &mut out);
        if out.len() >= 65_000 {
            c.write_all(&out).unwrap();
            out.clear();
        }
    }
    if ending == Ending::Stop {
        write_control_frame(ControlType::Stop, None, &mut out);
    }
    c.write_all(&out).unwrap();
    c.flush().unwrap();
    match ending {
        Ending::Stop => {
            assert_eq!(
                read_control(&mut *c),
                ControlType::Finish as u32,
                "FINISH expected"
            );
            None
        }
        Ending::Eof => None,
        Ending::Open => Some(c),
    }
}

/// Writes raw bytes (a unidirectional stream) and closes.
pub fn send_raw(t: &Target, bytes: &[u8]) {
    let mut c = connect(t);
    for chunk in bytes.chunks(50_000) {
        c.write_all(chunk).unwrap();
    }
}

/// The value of `key=` in the last statistics line of a log.
pub fn last_stat(log: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("stats:"))
        .expect("a stats line");
    let pat = format!(" {key}=");
    let at = line.find(&pat).unwrap_or_else(|| panic!("{key} in {line}")) + pat.len();
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

/// A TCP connection from `src` (a loopback alias such as 127.0.0.2) to `dst`: std cannot
/// bind before connecting, so the socket is made with libc.
pub fn connect_from(src: IpAddr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let (domain, sa, len) = sockaddr(SocketAddr::new(src, 0));
    // SAFETY: plain integer arguments; the returned descriptor is checked, then owned.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns; the stream closes it on drop.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: `sa` is a properly initialised sockaddr_storage of `len` valid bytes.
    if unsafe { libc::bind(fd, (&raw const sa).cast(), len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (_, da, dlen) = sockaddr(dst);
    // SAFETY: as for bind.
    if unsafe { libc::connect(fd, (&raw const da).cast(), dlen) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// The socket domain of `a`, and `a` as a sockaddr (the receiver's own conversion).
fn sockaddr(a: SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    let domain = if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let (ss, len) = dnstap_receiver::input::sockaddr_of(a);
    (domain, ss, len)
}
