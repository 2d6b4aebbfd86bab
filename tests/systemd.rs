//! systemd integration: the units in docs/systemd pass `systemd-analyze verify` without a
//! word, and under `systemd-socket-activate` (unix and TCP sockets passed as descriptors
//! 3 and 4) the receiver is stopped and started again five times while senders keep
//! connecting: no connection attempt is refused, and every record a sender saw confirmed
//! (FINISH) is in the output.
//!
//! `systemd-socket-activate` execs the command in its own process, so a restart needs
//! someone to hold the sockets between two runs, as systemd does between two starts of the
//! service: a small shell loop (the exec'd command) keeps descriptors 3 and 4 open and
//! starts the receiver again when the test says so, with `LISTEN_PID` set to the
//! receiver's own pid. `NOTIFY_SOCKET` points at a datagram socket of the test, which is
//! how the test learns READY=1 (with MAINPID) and STOPPING=1.

mod support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use support::receiver::{backends, free_port, signal, wait_until, TempDir, BIN, DEADLINE};

const RESTARTS: usize = 5;
const PER_BATCH: usize = 50;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !support::skip::require(have("systemd-analyze"), "systemd units verify", || {
        "systemd-analyze not found (Debian package systemd)".into()
    }) {
        return;
    }
    // verify checks that ExecStart= names an executable: point it at the built binary.
    let dir = TempDir::new("units");
    for unit in ["dnstap-receiver.service", "dnstap-receiver.socket"] {
        let text = std::fs::read_to_string(repo().join("docs/systemd").join(unit)).unwrap();
        std::fs::write(
            dir.path(unit),
            text.replace("/usr/bin/dnstap_receiver", BIN),
        )
        .unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path("dnstap-receiver.socket"))
        .arg(dir.path("dnstap-receiver.service"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    // verify exits 0 on unknown keys, only warning: any word about our units is a failure.
    let ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("dnstap-receiver"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify warns:\n{said}");
}

#[test]
fn service_exposure_stays_low() {
    if !support::skip::require(have("systemd-analyze"), "systemd unit security", || {
        "systemd-analyze not found (Debian package systemd)".into()
    }) {
        return;
    }
    let dir = TempDir::new("units-security");
    let unit = "dnstap-receiver.service";
    let text = std::fs::read_to_string(repo().join("docs/systemd").join(unit)).unwrap();
    std::fs::write(
        dir.path(unit),
        text.replace("/usr/bin/dnstap_receiver", BIN),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(dir.path(unit))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    // "→ Overall exposure level for dnstap-receiver.service: 1.2 OK 🙂" (0 best, 10 worst)
    let level: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for dnstap-receiver.service: ")
                .nth(1)
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    eprintln!("systemd-analyze security: exposure {level}");
    assert!(
        level <= 2.0,
        "the service's exposure rose to {level}:\n{said}"
    );
}

/// A dnstap `Dnstap { identity, type: MESSAGE, message: Message { type: CLIENT_QUERY } }`,
/// encoded by hand (dnstap.proto field numbers).
fn dnstap_payload(identity: &str) -> Vec<u8> {
    use support::pb::{field_bytes, field_varint};
    let mut m = Vec::new();
    field_varint(1, 5, &mut m); // Message.type = CLIENT_QUERY
    field_varint(8, 1_700_000_000, &mut m); // query_time_sec
    let mut d = Vec::new();
    field_bytes(1, identity.as_bytes(), &mut d); // Dnstap.identity
    field_bytes(14, &m, &mut d); // Dnstap.message
    field_varint(15, 1, &mut d); // Dnstap.type = MESSAGE
    d
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Unix,
}

#[derive(Clone)]
struct Target {
    kind: Kind,
    port: u16,
    path: PathBuf,
}

impl Target {
    fn connect(&self) -> io::Result<Box<dyn Conn>> {
        let c: Box<dyn Conn> = match self.kind {
            Kind::Tcp => {
                let s = TcpStream::connect(("127.0.0.1", self.port))?;
                s.set_read_timeout(Some(DEADLINE))?;
                s.set_write_timeout(Some(DEADLINE))?;
                Box::new(s)
            }
            Kind::Unix => {
                let s = UnixStream::connect(&self.path)?;
                s.set_read_timeout(Some(DEADLINE))?;
                s.set_write_timeout(Some(DEADLINE))?;
                Box::new(s)
            }
        };
        Ok(c)
    }
}

fn read_control(c: &mut dyn Conn) -> io::Result<u32> {
    let mut h = [0u8; 8];
    c.read_exact(&mut h)?;
    let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if h[..4] != [0, 0, 0, 0] || !(4..=512).contains(&n) {
        return Err(io::Error::other("not a control frame"));
    }
    let mut body = vec![0u8; n];
    c.read_exact(&mut body)?;
    Ok(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// Identities of batch `b` of sender `tag`.
fn batch_ids(tag: &str, b: u64) -> Vec<String> {
    (0..PER_BATCH).map(|i| format!("{tag}-{b}-{i}")).collect()
}

/// Sends READY (the first write of a connection).
fn send_ready(c: &mut dyn Conn) -> io::Result<()> {
    let mut out = Vec::new();
    write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), &mut out);
    c.write_all(&out)
}

/// The rest of a bidirectional stream after READY: ACCEPT, START, the batch, STOP, FINISH.
/// `Ok` only when FINISH came: then every frame was taken in.
fn finish_batch(c: &mut dyn Conn, ids: &[String]) -> io::Result<()> {
    if read_control(c)? != ControlType::Accept as u32 {
        return Err(io::Error::other("ACCEPT expected"));
    }
    let mut out = Vec::new();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for id in ids {
        write_data_frame(&dnstap_payload(id), &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    c.write_all(&out)?;
    if read_control(c)? != ControlType::Finish as u32 {
        return Err(io::Error::other("FINISH expected"));
    }
    Ok(())
}

#[derive(Default)]
struct Ledger {
    /// Batches confirmed by FINISH: (tag, batch number).
    confirmed: Mutex<Vec<(String, u64)>>,
    /// Connection attempts refused (must stay 0) and other connect errors.
    refused: AtomicU64,
    connect_errors: Mutex<Vec<String>>,
    /// Connections cut before FINISH (the receiver stopped under them); resent.
    broken: AtomicU64,
}

/// One sender: batch after batch, one connection each, until `stop`. A batch whose
/// connection breaks before FINISH is sent again on a new connection.
fn sender(target: Target, tag: String, ledger: Arc<Ledger>, stop: Arc<AtomicBool>) {
    let mut b = 0u64;
    let t0 = Instant::now();
    while !stop.load(Ordering::Acquire) && t0.elapsed() < 3 * DEADLINE {
        let ids = batch_ids(&tag, b);
        let mut c = match target.connect() {
            Ok(c) => c,
            Err(e) => {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    ledger.refused.fetch_add(1, Ordering::Relaxed);
                }
                ledger
                    .connect_errors
                    .lock()
                    .unwrap()
                    .push(format!("{tag}: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        match send_ready(&mut *c).and_then(|()| finish_batch(&mut *c, &ids)) {
            Ok(()) => {
                ledger.confirmed.lock().unwrap().push((tag.clone(), b));
                b += 1;
            }
            Err(_) => {
                ledger.broken.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Waits for the next notification datagram; returns its text.
fn next_notification(rx: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    // EINTR is not the deadline: a signal reached this process (the harness's children come
    // and go), so wait again.
    let n = loop {
        match rx.recv(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r.expect("no notification from the receiver in time"),
        }
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn wait_ready(rx: &UnixDatagram) -> u32 {
    loop {
        let msg = next_notification(rx);
        if msg.lines().any(|l| l == "READY=1") {
            let pid = msg
                .lines()
                .find_map(|l| l.strip_prefix("MAINPID="))
                .expect("READY=1 without MAINPID");
            return pid.parse().unwrap();
        }
    }
}

fn wait_stopping(rx: &UnixDatagram) {
    while !next_notification(rx).lines().any(|l| l == "STOPPING=1") {}
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie has exited; its parent reaps it.
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn identities(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let rest = l.split("\"identity\": \"").nth(1)?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect()
}

struct Activate {
    child: Child,
    dir: PathBuf,
}

impl Drop for Activate {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("stop"), b"");
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("last-pid")) {
            let pid = pid.trim().parse().unwrap_or(0);
            if pid != 0 && !gone(pid) {
                signal(pid, "KILL");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shell loop that plays systemd's part between two runs: it holds descriptors 3 and 4,
/// starts the receiver with LISTEN_PID set to the receiver's own pid (the inner `sh`
/// execs it), and after each exit waits for `go.N` (or `stop`). Bounded: it gives up after
/// a minute of waiting.
const SUPERVISOR: &str = r#"
n=0
while :; do
  sh -c 'echo $$ > "$DIR/last-pid"; LISTEN_PID=$$ exec "$BIN" -v -c "$CONF" --format json --io "$IO"' \
    >>"$DIR/out.jsonl" 2>>"$DIR/receiver.log"
  n=$((n+1))
  waited=0
  while [ ! -e "$DIR/go.$n" ]; do
    [ -e "$DIR/stop" ] && exit 0
    waited=$((waited+1)); [ "$waited" -gt 3000 ] && exit 1
    sleep 0.02
  done
done
"#;

#[test]
fn restarts_under_socket_activation_refuse_nothing_and_lose_nothing() {
    if !support::skip::require(
        have("systemd-socket-activate"),
        "socket activation restarts",
        || "systemd-socket-activate not found (Debian package systemd)".into(),
    ) {
        return;
    }
    for io in backends("socket activation restarts") {
        restarts_with(io);
    }
}

fn restarts_with(io: &str) {
    let dir = TempDir::new("sockact");
    let port = free_port();
    let sock = dir.path("d.sock");
    let conf = dir.path("dnstap.conf");
    std::fs::write(
        &conf,
        format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\n",
            sock.display()
        ),
    )
    .unwrap();
    let notify_path = dir.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let env = |k: &str, v: &str| format!("{k}={v}");
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-l")
        .arg(&sock)
        .arg("--fdname=dnstap-tcp:dnstap-unix")
        .arg("-E")
        .arg(env("BIN", BIN))
        .arg("-E")
        .arg(env("CONF", conf.to_str().unwrap()))
        .arg("-E")
        .arg(env("DIR", dir.0.to_str().unwrap()))
        .arg("-E")
        .arg(env("NOTIFY_SOCKET", notify_path.to_str().unwrap()))
        .arg("-E")
        .arg(env("IO", io))
        .arg("-E")
        .arg(env("PATH", &std::env::var("PATH").unwrap_or_default()))
        .args(["sh", "-c", SUPERVISOR])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("activate.log")).unwrap())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let _activate = Activate {
        child,
        dir: dir.0.clone(),
    };
    // systemd-socket-activate binds before it waits for the first connection.
    wait_until(
        DEADLINE,
        || sock.exists() && TcpStream::connect(("127.0.0.1", port)).is_ok(),
        || "systemd-socket-activate did not listen".into(),
    );

    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let targets = [
        Target {
            kind: Kind::Tcp,
            port,
            path: sock.clone(),
        },
        Target {
            kind: Kind::Unix,
            port,
            path: sock.clone(),
        },
    ];
    let senders: Vec<_> = targets
        .iter()
        .map(|t| {
            let (t, l, s) = (t.clone(), Arc::clone(&ledger), Arc::clone(&stop));
            let tag = format!("{:?}", t.kind).to_lowercase();
            std::thread::spawn(move || sender(t, tag, l, s))
        })
        .collect();

    let confirmed = |l: &Ledger| l.confirmed.lock().unwrap().len();
    let mut downtime_batches = Vec::new();
    for round in 1..=RESTARTS {
        let pid = wait_ready(&notify);
        let log = dir.path("receiver.log");
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            said.matches("(socket from the service manager)").count() >= 2 * round,
            "the receiver did not take both passed sockets:\n{said}"
        );
        // Let the senders get through some batches with this instance.
        let before = confirmed(&ledger);
        wait_until(
            DEADLINE,
            || confirmed(&ledger) >= before + 6,
            || format!("round {round}: senders made no progress"),
        );
        signal(pid, "TERM");
        wait_stopping(&notify);
        wait_until(
            DEADLINE,
            || gone(pid),
            || format!("receiver {pid} did not exit"),
        );
        // Down: nobody accepts. A connection attempt must still succeed (it queues in the
        // listening socket's backlog), and its records reach the next instance.
        let mut pending = Vec::new();
        for t in &targets {
            let mut c = t.connect().unwrap_or_else(|e| {
                panic!(
                    "round {round}: {:?} connect while the receiver is down: {e}",
                    t.kind
                )
            });
            send_ready(&mut *c).unwrap();
            let tag = format!("down{round}-{:?}", t.kind).to_lowercase();
            pending.push((c, tag));
        }
        std::fs::write(dir.path(&format!("go.{round}")), b"").unwrap();
        for (mut c, tag) in pending {
            let ids = batch_ids(&tag, 0);
            finish_batch(&mut *c, &ids).unwrap_or_else(|e| {
                panic!("{tag}: a connection made while down was not served: {e}")
            });
            downtime_batches.push((tag, 0));
        }
    }
    // The last instance: some more batches, then stop everything.
    let pid = wait_ready(&notify);
    let before = confirmed(&ledger);
    wait_until(
        DEADLINE,
        || confirmed(&ledger) >= before + 6,
        || "senders made no progress after the last restart".into(),
    );
    stop.store(true, Ordering::Release);
    for s in senders {
        s.join().unwrap();
    }
    std::fs::write(dir.path("stop"), b"").unwrap();
    signal(pid, "TERM");
    wait_until(
        DEADLINE,
        || gone(pid),
        || format!("receiver {pid} did not exit"),
    );

    let got = identities(&dir.path("out.jsonl"));
    let mut count = std::collections::HashMap::new();
    for id in &got {
        *count.entry(id.as_str()).or_insert(0u32) += 1;
    }
    let mut all = ledger.confirmed.lock().unwrap().clone();
    all.extend(downtime_batches);
    let mut missing = Vec::new();
    for (tag, b) in &all {
        for id in batch_ids(tag, *b) {
            if !count.contains_key(id.as_str()) {
                missing.push(id);
            }
        }
    }
    // Nothing in the output that no sender sent: only confirmed batches, and the one batch
    // per sender that was under way when the sender stopped or was cut.
    let expected: std::collections::HashSet<String> = all
        .iter()
        .flat_map(|(tag, b)| batch_ids(tag, *b))
        .chain(["tcp", "unix"].iter().flat_map(|tag| {
            let next = all.iter().filter(|(t, _)| t == tag).count() as u64;
            batch_ids(tag, next)
        }))
        .collect();
    let stray: Vec<&String> = got.iter().filter(|id| !expected.contains(*id)).collect();
    assert!(
        stray.is_empty(),
        "records no sender sent: {:?}",
        &stray[..stray.len().min(5)]
    );
    let refused = ledger.refused.load(Ordering::Relaxed);
    let broken = ledger.broken.load(Ordering::Relaxed);
    let dup = count.values().filter(|&&n| n > 1).count();
    eprintln!(
        "socket activation (--io {io}): {RESTARTS} restarts, {} confirmed batches ({} records), {} \
         output lines, {refused} refused, {broken} connections cut before FINISH (resent), \
         {dup} records written twice (from resent batches)",
        all.len(),
        all.len() * PER_BATCH,
        got.len()
    );
    assert_eq!(
        refused,
        0,
        "connection attempts refused: {:?}",
        ledger.connect_errors.lock().unwrap()
    );
    assert!(
        ledger.connect_errors.lock().unwrap().is_empty(),
        "connect errors: {:?}",
        ledger.connect_errors.lock().unwrap()
    );
    assert!(
        missing.is_empty(),
        "{} confirmed records missing from the output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // The unix socket file belongs to the service manager: the receiver left it in place.
    assert!(
        sock.exists(),
        "the receiver removed the passed unix socket's file"
    );
}

#[test]
fn a_passed_socket_no_input_listens_on_is_refused_at_start() {
    if !support::skip::require(
        have("systemd-socket-activate"),
        "socket activation mismatch",
        || "systemd-socket-activate not found (Debian package systemd)".into(),
    ) {
        return;
    }
    let dir = TempDir::new("sockact-mismatch");
    let (passed, configured) = (free_port(), free_port());
    let conf = dir.path("dnstap.conf");
    std::fs::write(&conf, format!("inputs:\n  - tcp: 127.0.0.1:{configured}\n")).unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(format!("127.0.0.1:{passed}"))
        .args([BIN, "-c", conf.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate");
    // The first connection starts the command.
    wait_until(
        DEADLINE,
        || TcpStream::connect(("127.0.0.1", passed)).is_ok(),
        || "systemd-socket-activate did not listen".into(),
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < DEADLINE, "the receiver did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "no configured input listens on tcp 127.0.0.1:{passed}"
        )),
        "{err}"
    );
}
