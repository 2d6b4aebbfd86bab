//! Live interop: real DNS servers from the lab (`$LAB_DIR`, else `../shared/lab`) send dnstap
//! to our `dnstap_receiver`, which prints JSON lines; the test checks those lines against what
//! was sent.
//!
//! One case = one server over one transport. For each case the test starts the upstream
//! authoritative servers the server needs (`run-server.sh nsd none` …), our receiver
//! (`-u SOCK` or `-l 127.0.0.1 -p PORT`, `--format json`, stdout to a file), the server
//! pointed at it, then runs `traffic.sh`, waits `LAB_SETTLE` seconds (unbound drops queued
//! frames at exit), stops the server, then stops the receiver with SIGTERM, and asserts:
//!
//! 1. every output line is a JSON object with a known `message` type;
//! 2. every query name belongs to the traffic: for the server's incoming queries (and their
//!    responses) exactly a name `traffic.sh` sends (or its readiness probe / nsupdate names);
//!    for upstream messages (RESOLVER_*, FORWARDER_*: QNAME minimisation, CNAME chasing) a
//!    name inside the lab's zones;
//! 3. counts. Incoming queries (CLIENT_QUERY; AUTH_QUERY for nsd/knot; CLIENT+AUTH+UPDATE
//!    for bind, which logs RD=0 queries as AUTH_QUERY) per (name, type) equal what
//!    `traffic.sh` sends, rebuilt here from the lab's query files and checked against the
//!    `sent=` figures traffic.sh reports. Two keys vary from run to run and must only reach
//!    their expected count: `example.test SOA` (run-server.sh's readiness probe) and
//!    `big.example.test TXT` (dig resends the truncated answer's query); for bind also the
//!    SOA lookups nsupdate makes under dyn.test.
//!    Servers that lose frames under bursts with no queue setting (nsd, knot, kresd: see
//!    docs/servers.md) and pdns-recursor (it logs only its upstream queries, whose number
//!    depends on its cache) are reached through a tap (a relay in this file) that records every byte the
//!    server wrote; there the receiver's count per message type must equal the data frames
//!    on the wire exactly, and the traffic count may fall short by at most 1 %.
//!
//! Cases run one at a time (a process-wide mutex plus a lock directory in /tmp, so that
//! parallel test processes do not collide), on their own DNS ports (55xx, see `PORTS`) and a
//! fresh temp dir for `LAB_RUN` / `LAB_CAPTURES`: the lab itself may be read-only.
//! A missing prerequisite (lab, server binaries, dnsperf, dig) skips the case with a
//! message, except when `CI=true`, where it fails. `DNSTAP_INTEROP=0` skips every case.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Unix,
    Tcp,
}

struct Case {
    server: &'static str,
    transport: Transport,
    /// unbound only: `dnstap-bidirectional: no` (START, data, STOP; no READY/ACCEPT/FINISH).
    unidirectional: bool,
    /// Message types that count the server's incoming queries; empty for pdns-recursor.
    counted: &'static [&'static str],
    /// Relay through a tap that records the server's bytes (see the file comment).
    tap: bool,
}

const UNBOUND_UNIX: Case = Case {
    server: "unbound",
    transport: Transport::Unix,
    unidirectional: false,
    counted: &["CLIENT_QUERY"],
    tap: false,
};

#[test]
fn unbound_unix() {
    run_case(&UNBOUND_UNIX);
}

#[test]
fn unbound_tcp() {
    run_case(&Case {
        transport: Transport::Tcp,
        ..UNBOUND_UNIX
    });
}

#[test]
fn unbound_unix_unidirectional() {
    run_case(&Case {
        unidirectional: true,
        ..UNBOUND_UNIX
    });
}

#[test]
fn dnsdist_unix() {
    run_case(&Case {
        server: "dnsdist",
        ..UNBOUND_UNIX
    });
}

#[test]
fn dnsdist_tcp() {
    run_case(&Case {
        server: "dnsdist",
        transport: Transport::Tcp,
        ..UNBOUND_UNIX
    });
}

#[test]
fn bind_unix() {
    run_case(&Case {
        server: "bind",
        counted: &["CLIENT_QUERY", "AUTH_QUERY", "UPDATE_QUERY"],
        ..UNBOUND_UNIX
    });
}

#[test]
fn nsd_unix() {
    run_case(&Case {
        server: "nsd",
        counted: &["AUTH_QUERY"],
        tap: true,
        ..UNBOUND_UNIX
    });
}

#[test]
fn knot_unix() {
    run_case(&Case {
        server: "knot",
        counted: &["AUTH_QUERY"],
        tap: true,
        ..UNBOUND_UNIX
    });
}

#[test]
fn kresd_unix() {
    run_case(&Case {
        server: "kresd",
        tap: true,
        ..UNBOUND_UNIX
    });
}

const PDNS_UNIX: Case = Case {
    server: "pdns-recursor",
    counted: &[],
    tap: true,
    ..UNBOUND_UNIX
};

#[test]
fn pdns_recursor_unix() {
    run_case(&PDNS_UNIX);
}

#[test]
fn pdns_recursor_tcp() {
    run_case(&Case {
        transport: Transport::Tcp,
        ..PDNS_UNIX
    });
}

/// DNS ports for the lab servers in these tests: away from the lab defaults (53xx), so a
/// lab someone runs by hand on the same machine does not collide with the test.
const PORTS: &[(&str, &str)] = &[
    ("NSD_PORT", "5501"),
    ("KNOT_PORT", "5502"),
    ("UNBOUND_PORT", "5511"),
    ("KRESD_PORT", "5512"),
    ("REC_PORT", "5513"),
    ("BIND_PORT", "5514"),
    ("DNSDIST_PORT", "5515"),
    ("UNBOUND_DOT_PORT", "8551"),
    ("KRESD_DOT_PORT", "8552"),
    ("KRESD_DOH_PORT", "4452"),
    ("DNSDIST_DOT_PORT", "8555"),
    ("DNSDIST_DOH_PORT", "4455"),
];

/// Incoming queries the traffic count may miss on a tapped server (permille): those servers
/// drop frames when their queue overflows, which the receiver cannot see.
const TAPPED_TRAFFIC_SHORTFALL_PERMILLE: u64 = 10;

// ---------------------------------------------------------------------------------------
// The run

fn run_case(case: &Case) {
    let id = case_id(case);
    if std::env::var("DNSTAP_INTEROP").as_deref() == Ok("0") {
        eprintln!("{id}: skipped (DNSTAP_INTEROP=0)");
        return;
    }
    let Some(lab_dir) = prerequisites(case) else {
        return;
    };
    let _guard = TestLock::acquire();
    let t0 = Instant::now();
    let mut run = Run::new(case, &id, lab_dir);
    let outcome = run.execute(case);
    eprintln!("{id}: {:.1} s", t0.elapsed().as_secs_f64());
    match outcome {
        Ok(()) => run.keep = false,
        Err(e) => panic!("{id}: {e}\n(state kept in {})", run.tmp.display()),
    }
}

fn case_id(case: &Case) -> String {
    let t = match case.transport {
        Transport::Unix => "unix",
        Transport::Tcp => "tcp",
    };
    let uni = if case.unidirectional {
        "-unidirectional"
    } else {
        ""
    };
    format!("{}-{t}{uni}", case.server)
}

/// Everything one case started, stopped on drop even when an assertion fails.
struct Run {
    lab: PathBuf,
    /// Short (unix socket paths are limited to 107 bytes): `/tmp/dti-PID-ID`.
    tmp: PathBuf,
    env: Vec<(String, String)>,
    receiver: Option<Child>,
    tap: Option<Tap>,
    /// Keep `tmp` for inspection (set until the case passed).
    keep: bool,
}

impl Run {
    fn new(case: &Case, id: &str, lab: PathBuf) -> Run {
        let tmp = PathBuf::from(format!("/tmp/dti-{}-{id}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("cap")).expect("create temp dir");
        let mut env: Vec<(String, String)> = vec![
            ("LAB_DIR".into(), lab.display().to_string()),
            ("LAB_RUN".into(), tmp.join("run").display().to_string()),
            ("LAB_CAPTURES".into(), tmp.join("cap").display().to_string()),
            ("LAB_START_TIMEOUT".into(), "30".into()),
        ];
        env.extend(PORTS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if case.unidirectional {
            env.push(("UNBOUND_DNSTAP_BIDIRECTIONAL".into(), "no".into()));
        }
        Run {
            lab,
            tmp,
            env,
            receiver: None,
            tap: None,
            keep: true,
        }
    }

    fn execute(&mut self, case: &Case) -> Result<(), String> {
        // Upstreams first: the resolvers need nsd (example.test, ".") and knot (lab.test);
        // dnsdist sits in front of unbound. nsd and knot under test need nothing.
        let upstreams: &[&str] = match case.server {
            "nsd" | "knot" => &[],
            "dnsdist" => &["nsd", "knot", "unbound"],
            _ => &["nsd", "knot"],
        };
        for up in upstreams {
            self.lab_script("run-server.sh", &[up, "none"])?;
        }

        let out_path = self.tmp.join("receiver.jsonl");
        let target = self.start_receiver(case.transport, &out_path)?;
        let server_target = if case.tap {
            self.start_tap(case.transport, &target)?
        } else {
            target
        };
        let transport = match case.transport {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
        };
        self.lab_script("run-server.sh", &[case.server, transport, &server_target])?;
        let traffic = self.lab_script("traffic.sh", &[case.server])?;
        let traffic_log = String::from_utf8_lossy(&traffic.stderr).into_owned();
        let settle: f64 = std::env::var("LAB_SETTLE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0);
        std::thread::sleep(Duration::from_secs_f64(settle));
        self.lab_script("stop.sh", &[case.server])?;
        let wire = match self.tap.take() {
            Some(tap) => Some(tap.finish(Duration::from_secs(10))?),
            None => None,
        };
        let status = self.stop_receiver()?;
        self.lab_script("stop.sh", &[])?;
        if !status.success() {
            return Err(format!(
                "receiver exited with {status} after SIGTERM ({})",
                self.logs()
            ));
        }

        let output = std::fs::read_to_string(&out_path).map_err(|e| format!("{e}"))?;
        let lines = parse_output(&output).map_err(|e| format!("{e} ({})", self.logs()))?;
        check_names(case, &lines)?;
        let by_type = count_types(&lines);
        eprintln!(
            "{}: receiver: {} lines {:?}",
            case_id(case),
            lines.len(),
            by_type
        );
        if let Some(wire) = wire {
            let mut on_wire = BTreeMap::new();
            eprintln!(
                "{}: tap recorded {} connection(s)",
                case_id(case),
                wire.len()
            );
            for conn in &wire {
                for (t, n) in wire_type_counts(conn)? {
                    *on_wire.entry(t).or_insert(0) += n;
                }
            }
            if on_wire != by_type {
                return Err(format!(
                    "message types printed {by_type:?} != data frames the server wrote \
                     {on_wire:?} ({})",
                    self.logs()
                ));
            }
        }
        if case.counted.is_empty() {
            // pdns-recursor: only upstream messages; each query has its response.
            let q = by_type.get("RESOLVER_QUERY").copied().unwrap_or(0);
            let r = by_type.get("RESOLVER_RESPONSE").copied().unwrap_or(0);
            if q < 1000 || q != r {
                return Err(format!(
                    "pdns-recursor: RESOLVER_QUERY {q}, RESOLVER_RESPONSE {r}"
                ));
            }
        } else {
            let sent = expected_traffic(&self.lab, case.server, &traffic_log)?;
            let allowance = if case.tap {
                sent.values().sum::<u64>() * TAPPED_TRAFFIC_SHORTFALL_PERMILLE / 1000
            } else {
                0
            };
            check_counts(case, &lines, &sent, allowance)?;
        }
        Ok(())
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Runs one lab script to completion (through bash: a copied lab may have lost its
    /// execute bits); its stderr (the lab's log lines) is returned.
    fn lab_script(&self, script: &str, args: &[&str]) -> Result<Output, String> {
        let out = self
            .command(Path::new("bash"))
            .arg(self.lab.join(script))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{script}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out)
    }

    /// Starts our receiver; returns the target to give the server (socket path or
    /// 127.0.0.1:PORT).
    fn start_receiver(&mut self, transport: Transport, out: &Path) -> Result<String, String> {
        let mut cmd = self.command(Path::new(env!("CARGO_BIN_EXE_dnstap_receiver")));
        cmd.args(["--format", "json", "-v"]);
        let target = match transport {
            Transport::Unix => {
                let sock = self.tmp.join("r.sock");
                cmd.arg("-u").arg(&sock);
                sock.display().to_string()
            }
            Transport::Tcp => {
                let port = free_port()?;
                cmd.args(["-l", "127.0.0.1", "-p", &port.to_string()]);
                format!("127.0.0.1:{port}")
            }
        };
        let stdout = File::create(out).map_err(|e| e.to_string())?;
        let stderr = File::create(self.tmp.join("receiver.log")).map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start dnstap_receiver: {e}"))?;
        self.receiver = Some(child);
        self.wait_listening(transport, &target, "dnstap_receiver")?;
        Ok(target)
    }

    /// A recording relay between the server and the receiver (see [`Tap`]).
    fn start_tap(&mut self, transport: Transport, receiver: &str) -> Result<String, String> {
        let tap = Tap::start(transport, &self.tmp.join("tap.sock"), receiver)?;
        let target = tap.target.clone();
        self.tap = Some(tap);
        Ok(target)
    }

    fn wait_listening(
        &mut self,
        transport: Transport,
        target: &str,
        what: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let up = match transport {
                Transport::Unix => Path::new(target).exists(),
                Transport::Tcp => tcp_listening(target),
            };
            if up {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{what} is not listening on {target} after 15 s ({})",
            self.logs()
        ))
    }

    /// SIGTERM, then up to 20 s for a clean exit.
    fn stop_receiver(&mut self) -> Result<ExitStatus, String> {
        let child = self.receiver.take().ok_or("receiver not running")?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_or_kill(child, Duration::from_secs(20), "dnstap_receiver")
    }

    fn logs(&self) -> String {
        format!("receiver log: {}", self.tmp.join("receiver.log").display())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.receiver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(tap) = self.tap.take() {
            tap.stop.store(true, Ordering::Relaxed);
        }
        // stop.sh only touches PIDs recorded under this case's LAB_RUN.
        let _ = self
            .command(Path::new("bash"))
            .arg(self.lab.join("stop.sh"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A relay the server connects to instead of the receiver: every connection is passed on to
/// the receiver byte for byte, both ways, and what the server wrote is kept per connection.
/// Those bytes are the oracle for what the receiver should print. (A relay of our own,
/// not socat, because pdns-recursor opens more than one connection.)
struct Tap {
    target: String,
    /// Bytes the server wrote, one buffer per accepted connection.
    recorded: Arc<Mutex<Vec<Recording>>>,
    stop: Arc<AtomicBool>,
    acceptor: std::thread::JoinHandle<Vec<std::thread::JoinHandle<()>>>,
}

/// The bytes one server connection wrote.
type Recording = Arc<Mutex<Vec<u8>>>;

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.write_all(buf),
            Conn::Tcp(s) => s.write_all(buf),
        }
    }
}

impl Tap {
    fn start(transport: Transport, sock: &Path, receiver: &str) -> Result<Tap, String> {
        enum Listener {
            Unix(UnixListener),
            Tcp(TcpListener),
        }
        let (listener, target) = match transport {
            Transport::Unix => {
                let l = UnixListener::bind(sock).map_err(|e| format!("tap: {e}"))?;
                (Listener::Unix(l), sock.display().to_string())
            }
            Transport::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("tap: {e}"))?;
                let addr = l.local_addr().map_err(|e| e.to_string())?;
                (Listener::Tcp(l), addr.to_string())
            }
        };
        match &listener {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
        .map_err(|e| e.to_string())?;
        let recorded: Arc<Mutex<Vec<Recording>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, stop2, receiver) = (recorded.clone(), stop.clone(), receiver.to_string());
        let acceptor = std::thread::spawn(move || {
            let mut relays = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let accepted = match &listener {
                    Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
                    Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
                };
                let server = match accepted {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let upstream = match transport {
                    Transport::Unix => UnixStream::connect(&receiver).map(Conn::Unix),
                    Transport::Tcp => TcpStream::connect(&receiver).map(Conn::Tcp),
                };
                let Ok(upstream) = upstream else { continue };
                if let Conn::Unix(s) = &server {
                    let _ = s.set_nonblocking(false);
                }
                if let Conn::Tcp(s) = &server {
                    let _ = s.set_nonblocking(false);
                }
                let buf = Arc::new(Mutex::new(Vec::new()));
                rec.lock().unwrap().push(buf.clone());
                relays.extend(relay(server, upstream, buf));
            }
            relays
        });
        Ok(Tap {
            target,
            recorded,
            stop,
            acceptor,
        })
    }

    /// Waits (up to `limit`) until every relayed connection has closed both ways, then
    /// returns the server's bytes per connection.
    fn finish(self, limit: Duration) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + limit;
        self.stop.store(true, Ordering::Relaxed);
        let relays = self.acceptor.join().map_err(|_| "tap acceptor panicked")?;
        for r in relays {
            while !r.is_finished() {
                if Instant::now() > deadline {
                    return Err("tap: a connection stayed open after the server stopped".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            r.join().map_err(|_| "tap relay panicked")?;
        }
        let recorded = self.recorded.lock().unwrap();
        Ok(recorded.iter().map(|b| b.lock().unwrap().clone()).collect())
    }
}

/// Two threads: server → receiver (recorded) and receiver → server. Each passes EOF on as
/// a half-close, as the peers' Frame Streams handshake expects.
fn relay(
    server: Conn,
    upstream: Conn,
    record: Arc<Mutex<Vec<u8>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let pipe = |mut from: Conn, mut to: Conn, record: Option<Arc<Mutex<Vec<u8>>>>| {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(r) = &record {
                            r.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            to.shutdown_write();
        })
    };
    let (Ok(server2), Ok(upstream2)) = (server.try_clone(), upstream.try_clone()) else {
        return Vec::new();
    };
    vec![
        pipe(server, upstream, Some(record)),
        pipe(upstream2, server2, None),
    ]
}

fn wait_or_kill(mut child: Child, limit: Duration, what: &str) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not exit within {} s", limit.as_secs()));
            }
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Whether something listens on `host:port`, asked of `ss` so that no probe connection
/// reaches the receiver (it would log a connection that ended before START).
fn tcp_listening(target: &str) -> bool {
    let port = target.rsplit(':').next().unwrap_or("");
    Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Checking the output

/// The fields of one output line the checks use.
#[derive(Debug)]
struct Line {
    message: String,
    /// Lower case, with the trailing dot; `None` when the receiver printed "-".
    qname: Option<String>,
    qtype: String,
}

fn parse_output(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| format!("output line {}: not JSON ({e}): {raw}", i + 1))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let message = field("message").ok_or(format!("line {}: no message: {raw}", i + 1))?;
        if !TYPES.contains(&message.as_str()) {
            return Err(format!("line {}: unknown message type: {raw}", i + 1));
        }
        let qname = field("query-name")
            .filter(|n| n != "-")
            .map(|n| n.to_ascii_lowercase());
        let qtype = field("query-type").unwrap_or_default();
        lines.push(Line {
            message,
            qname,
            qtype,
        });
    }
    if lines.is_empty() {
        return Err("the receiver printed nothing".into());
    }
    Ok(lines)
}

const TYPES: [&str; 14] = [
    "AUTH_QUERY",
    "AUTH_RESPONSE",
    "RESOLVER_QUERY",
    "RESOLVER_RESPONSE",
    "CLIENT_QUERY",
    "CLIENT_RESPONSE",
    "FORWARDER_QUERY",
    "FORWARDER_RESPONSE",
    "STUB_QUERY",
    "STUB_RESPONSE",
    "TOOL_QUERY",
    "TOOL_RESPONSE",
    "UPDATE_QUERY",
    "UPDATE_RESPONSE",
];

fn count_types(lines: &[Line]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.message.clone()).or_insert(0) += 1;
    }
    m
}

/// Zones the lab serves, plus the local root hint's name: every upstream query stays inside.
const LAB_ZONES: [&str; 5] = [
    "example.test.",
    "lab.test.",
    "bind.test.",
    "dyn.test.",
    "lab-root.",
];

fn check_names(case: &Case, lines: &[Line]) -> Result<(), String> {
    let lab = lab_dir_path();
    let allowed = allowed_names(&lab)?;
    let upstream = |m: &str| m.starts_with("RESOLVER_") || m.starts_with("FORWARDER_");
    let mut bad: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines {
        let ok = match &l.qname {
            // A response without a question section (FORMERR and the like) has no name.
            None => !l.message.ends_with("_QUERY"),
            Some(n) if upstream(&l.message) => {
                allowed.contains(n) || LAB_ZONES.iter().any(|z| n.ends_with(&format!(".{z}")))
            }
            Some(n) => allowed.contains(n),
        };
        if !ok {
            let key = format!("{} {:?}", l.message, l.qname);
            *bad.entry(key).or_insert(0) += 1;
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: names that traffic.sh never sent: {bad:?}",
            case_id(case)
        ))
    }
}

/// Every name traffic.sh and the lab scripts query, and all their ancestors ("." included):
/// resolvers ask for parents (QNAME minimisation, NS lookups).
fn allowed_names(lab: &Path) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for (name, _) in query_file(&lab.join("queries/mix.txt"))? {
        names.insert(name);
    }
    for (name, _) in DIG_QUERIES {
        names.insert(fqdn(name));
    }
    names.insert("example.test.".into()); // run-server.sh readiness probe
    let updates =
        std::fs::read_to_string(lab.join("queries/updates.txt")).map_err(|e| e.to_string())?;
    for l in updates.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let ["update" | "prereq", _, name, ..] = w.as_slice() {
            names.insert(fqdn(name));
        }
    }
    let mut all = BTreeSet::new();
    for n in names {
        let mut rest = n.as_str();
        all.insert(rest.to_string());
        while let Some((_, parent)) = rest.split_once('.') {
            rest = parent;
            all.insert(if rest.is_empty() {
                ".".to_string()
            } else {
                rest.to_string()
            });
        }
    }
    Ok(all)
}

type Key = (String, String);

/// The dig batch of traffic.sh (step 4), sent once over IPv4 and once over IPv6.
const DIG_QUERIES: [(&str, &str); 31] = [
    ("www.example.test", "A"),
    ("host0007.lab.test", "AAAA"),
    ("example.test", "ANY"),
    ("www.example.test", "A"),
    ("big.example.test", "TXT"),
    ("big.example.test", "TXT"),
    ("version.bind", "TXT"),
    ("www.example.test", "A"),
    ("blocked.example.test", "A"),
    ("n001.bind.test", "A"),
    ("n002.bind.test", "A"),
    ("n003.bind.test", "A"),
    ("n004.bind.test", "A"),
    ("n005.bind.test", "A"),
    ("n006.bind.test", "A"),
    ("n007.bind.test", "A"),
    ("n008.bind.test", "A"),
    ("n009.bind.test", "A"),
    ("n010.bind.test", "A"),
    ("n011.bind.test", "A"),
    ("n012.bind.test", "A"),
    ("n013.bind.test", "A"),
    ("n014.bind.test", "A"),
    ("n015.bind.test", "A"),
    ("n016.bind.test", "A"),
    ("n017.bind.test", "A"),
    ("n018.bind.test", "A"),
    ("n019.bind.test", "A"),
    ("n020.bind.test", "A"),
    ("bind.test", "SOA"),
    ("www.bind.test", "AAAA"),
];

fn fqdn(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n.ends_with('.') {
        n
    } else {
        n + "."
    }
}

fn query_file(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((fqdn(w.next()?), w.next()?.to_ascii_uppercase()))
        })
        .collect())
}

/// The incoming queries traffic.sh sends to `server`, per (name, type), rebuilt from its
/// steps with the lab's default sizes. Each dnsperf step's `sent=` in traffic.sh's log must
/// equal the lines the step uses, or the rebuild is wrong and the test says so.
fn expected_traffic(lab: &Path, server: &str, log: &str) -> Result<BTreeMap<Key, u64>, String> {
    let mix = query_file(&lab.join("queries/mix.txt"))?;
    let head = |n: usize| &mix[..n.min(mix.len())];
    let mut steps: Vec<(&str, &[Key])> = vec![
        ("udp4", &mix[..]),
        ("tcp4", head(300)),
        ("udp6+edns+do", head(200)),
        ("tcp6", head(50)),
    ];
    match server {
        "unbound" => steps.push(("dot4", head(200))),
        "kresd" | "dnsdist" => steps.extend([("dot4", head(200)), ("doh4", head(200))]),
        _ => {}
    }
    let mut want: BTreeMap<Key, u64> = BTreeMap::new();
    for (label, queries) in steps {
        let sent = reported_sent(log, server, label)
            .ok_or(format!("traffic.sh reported no `{label}` step:\n{log}"))?;
        if sent != queries.len() as u64 {
            return Err(format!(
                "traffic.sh {label}: sent={sent}, expected {}",
                queries.len()
            ));
        }
        for k in queries {
            *want.entry(k.clone()).or_insert(0) += 1;
        }
    }
    for (name, qtype) in DIG_QUERIES {
        *want.entry((fqdn(name), qtype.to_string())).or_insert(0) += 2;
    }
    if server == "bind" {
        // One UPDATE per `send`; its question is the zone's SOA.
        let updates =
            std::fs::read_to_string(lab.join("queries/updates.txt")).map_err(|e| e.to_string())?;
        let sends = updates.lines().filter(|l| l.trim() == "send").count() as u64;
        want.insert(("dyn.test.".into(), "SOA".into()), sends);
    }
    Ok(want)
}

/// `traffic SERVER LABEL: sent=N completed=...` from traffic.sh's log.
fn reported_sent(log: &str, server: &str, label: &str) -> Option<u64> {
    let prefix = format!("traffic {server} {label}: sent=");
    log.lines().find_map(|l| {
        let rest = &l[l.find(&prefix)? + prefix.len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Keys whose count varies between runs: checked only for reaching the expected count.
fn is_noisy(server: &str, key: &Key) -> bool {
    let (name, qtype) = (key.0.as_str(), key.1.as_str());
    (name == "example.test." && qtype == "SOA")
        || (name == "big.example.test." && qtype == "TXT")
        || (server == "bind" && qtype == "SOA" && name.ends_with(".dyn.test."))
}

fn check_counts(
    case: &Case,
    lines: &[Line],
    want: &BTreeMap<Key, u64>,
    allowance: u64,
) -> Result<(), String> {
    let mut got: BTreeMap<Key, u64> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| case.counted.contains(&l.message.as_str()))
    {
        let key = (l.qname.clone().unwrap_or_default(), l.qtype.clone());
        *got.entry(key).or_insert(0) += 1;
    }
    let mut missing = 0;
    let mut surplus: Vec<String> = Vec::new();
    let keys: BTreeSet<&Key> = want.keys().chain(got.keys()).collect();
    for k in keys {
        let (w, g) = (
            want.get(k).copied().unwrap_or(0),
            got.get(k).copied().unwrap_or(0),
        );
        if is_noisy(case.server, k) {
            missing += w.saturating_sub(g);
        } else if g > w {
            surplus.push(format!("{} {}: {g} > {w}", k.0, k.1));
        } else {
            missing += w - g;
        }
    }
    let total_want: u64 = want.values().sum();
    let total_got: u64 = got.values().sum();
    eprintln!(
        "{}: {:?} counted {total_got}, traffic {total_want} (+ probes/retries), missing {missing}",
        case_id(case),
        case.counted
    );
    if !surplus.is_empty() {
        return Err(format!("more queries logged than sent: {surplus:?}"));
    }
    if missing > allowance {
        return Err(format!(
            "{missing} of {total_want} queries sent are missing from {:?} (allowed {allowance})",
            case.counted
        ));
    }
    Ok(())
}

/// Counts the data frames in a sender's raw byte stream per dnstap message type: the
/// independent oracle for tapped cases.
///
/// ```text
/// data frame:     u32 BE length (> 0) | payload (a dnstap protobuf)
/// control frame:  u32 BE 0 | u32 BE length | control type + fields (READY, START, STOP)
/// ```
fn wire_type_counts(bytes: &[u8]) -> Result<BTreeMap<String, u64>, String> {
    let mut counts = BTreeMap::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, after) = take_u32(rest).ok_or("truncated frame length")?;
        let len = len as usize;
        if len == 0 {
            let (clen, after) = take_u32(after).ok_or("truncated control frame")?;
            rest = after
                .get(clen as usize..)
                .ok_or("truncated control frame")?;
        } else {
            let body = after.get(..len).ok_or("truncated data frame")?;
            let t = message_type(body).ok_or("data frame without Message.type")?;
            let name = TYPES
                .get((t as usize).wrapping_sub(1))
                .copied()
                .unwrap_or("?");
            *counts.entry(name.to_string()).or_insert(0) += 1;
            rest = &after[len..];
        }
    }
    Ok(counts)
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (h, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*h), rest))
}

/// `Dnstap.message` (field 14) → `Message.type` (field 1), by walking protobuf fields.
fn message_type(dnstap: &[u8]) -> Option<u64> {
    let message = proto_fields(dnstap)?.into_iter().find(|f| f.0 == 14)?.1?;
    let t = proto_fields(message)?.into_iter().find(|f| f.0 == 1)?.2;
    t
}

/// (field number, length-delimited bytes, varint value) for each field.
#[allow(clippy::type_complexity)]
fn proto_fields(mut b: &[u8]) -> Option<Vec<(u64, Option<&[u8]>, Option<u64>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (key, r) = varint(b)?;
        b = r;
        match key & 7 {
            0 => {
                let (v, r) = varint(b)?;
                out.push((key >> 3, None, Some(v)));
                b = r;
            }
            1 => b = b.get(8..)?,
            2 => {
                let (n, r) = varint(b)?;
                let n = usize::try_from(n).ok()?;
                out.push((key >> 3, Some(r.get(..n)?), None));
                b = r.get(n..)?;
            }
            5 => b = b.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Prerequisites and serialisation

fn lab_dir_path() -> PathBuf {
    std::env::var_os("LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/lab"))
}

/// The lab and the programs this case runs. `None` = skip (only outside CI).
fn prerequisites(case: &Case) -> Option<PathBuf> {
    let lab = lab_dir_path();
    let mut missing = Vec::new();
    if !lab.join("run-server.sh").is_file() {
        missing.push(format!("lab at {}", lab.display()));
    }
    let server_bin = match case.server {
        "unbound" => "unbound",
        "dnsdist" => "dnsdist",
        "bind" => "named",
        "nsd" => "nsd",
        "knot" => "knotd",
        "kresd" => "kresd",
        _ => "pdns_recursor",
    };
    let mut programs = vec![
        server_bin, "nsd", "knotd", "dnsperf", "dig", "ss", "perl", "openssl",
    ];
    if case.server == "dnsdist" {
        programs.push("unbound");
    }
    if case.server == "bind" {
        programs.push("nsupdate");
    }
    for p in programs {
        if !on_path(p) {
            missing.push(p.to_string());
        }
    }
    // The receiver itself: a build whose binary cannot even print its help is not one to
    // run against servers (this is what a contract stub does).
    let help = Command::new(env!("CARGO_BIN_EXE_dnstap_receiver"))
        .arg("--help")
        .output();
    if !help.is_ok_and(|o| o.status.success()) {
        missing.push("a working dnstap_receiver binary (`dnstap_receiver --help` fails)".into());
    }
    if missing.is_empty() {
        return Some(lab.canonicalize().unwrap_or(lab));
    }
    let msg = format!(
        "{}: missing prerequisites: {}",
        case_id(case),
        missing.join(", ")
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg} (CI=true: not skipping)"
    );
    eprintln!("{msg}: skipped (the lab's setup.sh installs the programs)");
    None
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| d.join(program).is_file())
}

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// One case at a time on this machine: the mutex for threads of this test binary, a lock
/// directory for other processes (nextest, a second checkout). A lock left by a dead
/// process is taken over.
struct TestLock {
    _inner: std::sync::MutexGuard<'static, ()>,
    dir: PathBuf,
}

impl TestLock {
    fn acquire() -> TestLock {
        let inner = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = PathBuf::from("/tmp/dnstap-receiver-interop.lock");
        let deadline = Instant::now() + Duration::from_secs(1200);
        loop {
            if std::fs::create_dir(&dir).is_ok() {
                let _ = File::create(dir.join("pid"))
                    .and_then(|mut f| write!(f, "{}", std::process::id()));
                return TestLock { _inner: inner, dir };
            }
            let holder = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
            let alive =
                !holder.is_empty() && Path::new(&format!("/proc/{}", holder.trim())).exists();
            if !alive && !holder.is_empty() {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "interop lock {} held too long",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn wire_counter_reads_frames_and_types() {
    // READY control frame, one CLIENT_QUERY data frame, STOP.
    let mut b = vec![0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4];
    let payload = [0x72, 2, 0x08, 5]; // field 14 (LEN 2) { field 1 = 5 }
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
    let counts = wire_type_counts(&b).unwrap();
    assert_eq!(counts.get("CLIENT_QUERY"), Some(&1));
    assert_eq!(counts.len(), 1);
    assert!(wire_type_counts(&b[..b.len() - 1]).is_err());
}
