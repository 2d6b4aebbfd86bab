//! Shared helpers of the receiver integration tests: run the built binary, find free ports
//! and temp dirs, read capture files, and speak Frame Streams as a sender (bidirectional or
//! not). Every wait here has a deadline, so a hung receiver fails the test instead of
//! hanging it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_dnstap_receiver");
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn lab_dir() -> PathBuf {
    match std::env::var_os("LAB_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/lab"),
    }
}

/// Every `.fstrm` capture of the lab (top level and `wire/`), sorted.
pub fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [lab_dir().join("captures"), lab_dir().join("captures/wire")] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "fstrm") {
                    v.push(p);
                }
            }
        }
    }
    v.sort();
    assert!(
        !v.is_empty(),
        "no captures found under {}",
        lab_dir().display()
    );
    v
}

pub fn capture(name: &str) -> PathBuf {
    let p = lab_dir().join("captures").join(name);
    assert!(p.exists(), "{} missing", p.display());
    p
}

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

/// True when this kernel lets us use io_uring; otherwise prints why the test is skipped.
pub fn uring_usable(test: &str) -> bool {
    match io_uring::IoUring::new(4) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("NOTICE: {test}: io_uring unavailable here ({e}); skipping the uring run");
            false
        }
    }
}

/// The back-ends to test: always epoll, uring when the kernel allows it.
pub fn backends(test: &str) -> Vec<&'static str> {
    let mut v = vec!["epoll"];
    if uring_usable(test) {
        v.push("uring");
    }
    v
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

/// A running receiver with its stdout and stderr collected by threads.
pub struct Receiver {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
}

pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Receiver {
    /// Starts the binary with `-v` and `args`, and waits until it is listening.
    pub fn start(args: &[&str]) -> Receiver {
        Receiver::start_paused(args, Duration::ZERO)
    }

    /// Like `start`, but nothing reads the receiver's stdout for `pause` (a stalled output).
    pub fn start_paused(args: &[&str], pause: Duration) -> Receiver {
        Receiver::start_full(args, pause, &[])
    }

    /// Like `start`, with extra environment variables for the receiver.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Receiver {
        Receiver::start_full(args, Duration::ZERO, env)
    }

    fn start_full(args: &[&str], pause: Duration, env: &[(&str, &str)]) -> Receiver {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("-v")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dnstap_receiver");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            std::thread::sleep(pause);
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let s2 = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
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
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stderr contains `needle` (bounded).
    pub fn wait_log(&self, needle: &str) {
        let t0 = Instant::now();
        while !self.stderr().contains(needle) {
            assert!(
                t0.elapsed() < DEADLINE,
                "no {needle:?} in log: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log shows `n` closed connections (bounded).
    pub fn wait_closed(&self, n: usize) {
        let t0 = Instant::now();
        loop {
            let s = self.stderr();
            let closed = s.matches(": closed").count() + s.matches("connection closed:").count();
            if closed >= n {
                return;
            }
            assert!(
                t0.elapsed() < DEADLINE,
                "only {closed} of {n} connections closed: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and collects everything (bounded).
    pub fn stop(mut self) -> Finished {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        self.wait()
    }

    /// Waits for exit (bounded; killed after the deadline).
    pub fn wait(&mut self) -> Finished {
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("receiver did not exit in time: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
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
        }
    }
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
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Finished {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The data frame payloads of a Frame Streams capture file, parsed independently of the
/// crate's decoder.
///
/// ```text
///  control: | 0u32 | len u32 BE | len bytes |     data: | len u32 BE (!= 0) | len bytes |
/// ```
pub fn capture_payloads(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut v = Vec::new();
    let mut i = 0;
    let be = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    while i + 4 <= b.len() {
        let n = be(&b[i..]);
        if n == 0 {
            let c = be(&b[i + 4..]);
            i += 8 + c;
        } else {
            v.push(b[i + 4..i + 4 + n].to_vec());
            i += 4 + n;
        }
    }
    v
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
    let t0 = Instant::now();
    loop {
        let r: std::io::Result<Box<dyn Conn>> = match t {
            Target::Tcp(p) => TcpStream::connect(("127.0.0.1", *p)).map(|s| {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
            Target::Unix(p) => UnixStream::connect(p).map(|s| {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                Box::new(s) as Box<dyn Conn>
            }),
        };
        match r {
            Ok(c) => return c,
            Err(e) => {
                assert!(t0.elapsed() < Duration::from_secs(10), "connect {t:?}: {e}");
                std::thread::sleep(Duration::from_millis(20));
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
