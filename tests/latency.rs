//! The latency transform end to end, against oracles written here.
//!
//! - Every lab capture through `-r` with `transforms.latency`: each response's `latency`
//!   equals, to the microsecond, what this file computes from the capture with its own
//!   protobuf and DNS readers: the response's own two times when it has both, else the
//!   pairing of a plain map keyed like the transform (identity, message-type pair, client
//!   address and port, DNS id, lowercased qname, qtype). The queries the map still holds
//!   at the end are exactly the `TIMEOUT` records.
//! - A synthetic stream (knot-like: no times in responses) with every tenth response
//!   dropped: `TIMEOUT` records for exactly those queries, offline and from the daemon
//!   (where they come out by the clock, `queries-timeout` after arrival), with the metrics
//!   page's counters and `dnstap_latency_seconds` agreeing.
//! - 1 M outstanding queries stay within the table's bound (resident memory measured), and
//!   the step allocates nothing per message (a counting allocator).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use serde_json::Value;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_dnstap_receiver");
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// An independent reader of what the oracle needs from a dnstap payload.

fn varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*pos];
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    v
}

/// Field number → (varint or fixed value, or bytes) of one protobuf message (last wins).
#[derive(Default)]
struct Fields<'a> {
    nums: HashMap<u64, u64>,
    bytes: HashMap<u64, &'a [u8]>,
}

fn fields(b: &[u8]) -> Fields<'_> {
    let mut f = Fields::default();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos);
        let n = key >> 3;
        match key & 7 {
            0 => {
                let v = varint(b, &mut pos);
                f.nums.insert(n, v);
            }
            1 => {
                let v = u64::from_le_bytes(b[pos..pos + 8].try_into().unwrap());
                f.nums.insert(n, v);
                pos += 8;
            }
            5 => {
                let v = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap());
                f.nums.insert(n, u64::from(v));
                pos += 4;
            }
            2 => {
                let len = varint(b, &mut pos) as usize;
                f.bytes.insert(n, &b[pos..pos + len]);
                pos += len;
            }
            t => panic!("wire type {t}"),
        }
    }
    f
}

/// What the oracle reads of one dnstap message.
struct Msg {
    identity: Vec<u8>,
    mtype: u64,
    addr: Vec<u8>,
    port: u64,
    /// ns since the epoch
    qtime: Option<u128>,
    rtime: Option<u128>,
    /// DNS id, lowercased qname (wire form), qtype
    question: Option<(u16, Vec<u8>, u16)>,
}

/// Header id and first question of a DNS message; `None` without one.
fn question(m: &[u8]) -> Option<(u16, Vec<u8>, u16)> {
    if m.len() < 12 || u16::from_be_bytes([m[4], m[5]]) == 0 {
        return None;
    }
    let id = u16::from_be_bytes([m[0], m[1]]);
    let mut name = Vec::new();
    let mut pos = 12;
    let mut after = None;
    let mut hops = 0;
    loop {
        let len = *m.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            after.get_or_insert(pos + 2);
            pos = (len & 0x3f) << 8 | *m.get(pos + 1)? as usize;
            hops += 1;
            if hops > 64 {
                return None;
            }
            continue;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        name.push(len as u8);
        if len == 0 {
            pos += 1;
            break;
        }
        name.extend(
            m.get(pos + 1..pos + 1 + len)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        pos += 1 + len;
    }
    let at = after.unwrap_or(pos);
    let qtype = u16::from_be_bytes([*m.get(at)?, *m.get(at + 1)?]);
    m.get(at + 2..at + 4)?;
    Some((id, name, qtype))
}

fn read_msg(payload: &[u8]) -> Option<Msg> {
    let top = fields(payload);
    let m = fields(top.bytes.get(&14)?);
    let mtype = *m.nums.get(&1)?;
    let time = |sec: u64, nsec: u64| {
        m.nums.get(&sec).map(|s| {
            u128::from(*s) * 1_000_000_000 + u128::from(m.nums.get(&nsec).copied().unwrap_or(0))
        })
    };
    let (first, second) = if mtype % 2 == 1 { (10, 14) } else { (14, 10) };
    let dns = m.bytes.get(&first).or(m.bytes.get(&second));
    Some(Msg {
        identity: top.bytes.get(&1).map(|b| b.to_vec()).unwrap_or_default(),
        mtype,
        addr: m.bytes.get(&4).map(|b| b.to_vec()).unwrap_or_default(),
        port: m.nums.get(&6).copied().unwrap_or(0),
        qtime: time(8, 9),
        rtime: time(12, 13),
        question: dns.and_then(|d| question(d)),
    })
}

type OracleKey = (Vec<u8>, u64, Vec<u8>, u64, u16, Vec<u8>, u16);

/// What the oracle expects of a stream: per message, the latency text of a response
/// (`None`: no `latency` key), and the queries left unanswered at the end as
/// (port, DNS id, qname).
struct Expected {
    latency: Vec<Option<String>>,
    unanswered: BTreeSet<(u64, u16, Vec<u8>)>,
}

fn seconds_micros(ns: u128) -> String {
    let us = ns / 1_000;
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn oracle(payloads: &[Vec<u8>]) -> Expected {
    let mut pending: HashMap<OracleKey, Option<u128>> = HashMap::new();
    // (identity, pair) whose responses carried both times: their queries are not paired.
    let mut self_timed: HashSet<(Vec<u8>, u64)> = HashSet::new();
    let mut latency = Vec::new();
    for p in payloads {
        let Some(m) = read_msg(p) else {
            latency.push(None);
            continue;
        };
        if !(1..=14).contains(&m.mtype) {
            latency.push(None);
            continue;
        }
        let pair = m.mtype.div_ceil(2);
        let key = m.question.as_ref().map(|(id, name, qtype)| {
            (
                m.identity.clone(),
                pair,
                m.addr.clone(),
                m.port & 0xffff,
                *id,
                name.clone(),
                *qtype,
            )
        });
        let class = (m.identity.clone(), pair);
        if m.mtype % 2 == 1 {
            if let Some(k) = key {
                if !self_timed.contains(&class) {
                    pending.insert(k, m.qtime);
                }
            }
            latency.push(None);
            continue;
        }
        let matched = key.and_then(|k| pending.remove(&k));
        let l = match (m.qtime, m.rtime) {
            (Some(q), Some(r)) => {
                self_timed.insert(class);
                r.checked_sub(q)
            }
            (_, Some(r)) => matched.flatten().and_then(|q| r.checked_sub(q)),
            _ => None,
        };
        latency.push(l.map(seconds_micros));
    }
    let unanswered = pending
        .into_iter()
        .filter(|(k, _)| !self_timed.contains(&(k.0.clone(), k.1)))
        .map(|(k, _)| (k.3, k.4, k.5))
        .collect();
    Expected {
        latency,
        unanswered,
    }
}

// ---------------------------------------------------------------------------------------------
// Running the receiver.

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("latency-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `-r capture -c conf` output lines and stderr.
fn offline(capture: &Path, conf: &Path) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .args(["-v", "-r"])
        .arg(capture)
        .arg("-c")
        .arg(conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: {stderr}", capture.display());
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (lines, stderr)
}

/// The raw text of the top-level `"latency":` value of a json-full line.
fn latency_text(line: &str) -> Option<String> {
    // Top-level keys come before "message"; the DNS messages cannot contain this key.
    let head = &line[..line.find("\"message\":")?];
    let at = head.find("\"latency\":")? + "\"latency\":".len();
    Some(head[at..].split(',').next()?.to_string())
}

/// (port, DNS id, lowercased wire qname) of a TIMEOUT record's json-full line.
fn timeout_of(line: &str) -> (u64, u16, Vec<u8>) {
    let v: Value = serde_json::from_str(line).unwrap();
    let m = &v["message"];
    let q = &m["query_message"];
    assert_eq!(q["header"]["rcode"], "TIMEOUT", "{line}");
    assert!(v.get("latency").is_none(), "{line}");
    let name = q["question"][0]["name"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    let mut wire = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    (
        m["query_port"].as_u64().unwrap_or(0),
        q["header"]["id"].as_u64().unwrap() as u16,
        wire,
    )
}

const FULL: &str = "output-format:\n  json-full: true\n";

// ---------------------------------------------------------------------------------------------
// The lab captures.

#[test]
fn latency_equals_the_oracle_on_every_lab_capture() {
    let lab = support::lab::lab_dir().join("captures");
    if !support::skip::require(lab.exists(), "latency captures", || {
        format!("{} missing", lab.display())
    }) {
        return;
    }
    let dir = TempDir::new("captures");
    // A long timeout: the oracle pairs over the whole file, whatever the machine's speed.
    let conf = dir.write(
        "c.yaml",
        format!(
            "{FULL}transforms:\n  latency: {{unanswered-queries: true, queries-timeout: 3600}}\n"
        )
        .as_bytes(),
    );
    let mut report = Vec::new();
    let mut paired = 0usize;
    for cap in support::lab::captures() {
        let payloads = support::lab::capture_payloads(&cap);
        let want = oracle(&payloads);
        let (lines, stderr) = offline(&cap, &conf);
        let n = payloads.len();
        assert_eq!(
            lines.len(),
            n + want.unanswered.len(),
            "{}: one line per message, then one per unanswered query\n{stderr}",
            cap.display()
        );
        let mut with = 0;
        for (i, (line, want)) in lines.iter().zip(&want.latency).enumerate() {
            assert_eq!(
                latency_text(line).as_ref(),
                want.as_ref(),
                "{} message {i}: {line}",
                cap.display()
            );
            with += usize::from(want.is_some());
        }
        let got: BTreeSet<_> = lines[n..].iter().map(|l| timeout_of(l)).collect();
        assert_eq!(got.len(), lines.len() - n, "{}", cap.display());
        assert_eq!(got, want.unanswered, "{}", cap.display());
        let name = cap.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            stderr.contains("latency-counters: \"global\""),
            "{name}: {stderr}"
        );
        if ["knot", "kresd", "nsd"].iter().any(|s| name.starts_with(s)) {
            assert!(
                stderr.contains(&format!("matched={with} ")),
                "{name}: {stderr}"
            );
            paired += with;
        }
        report.push(format!(
            "{name}: {with} latencies, {} unanswered",
            got.len()
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        paired > 10_000,
        "the pairing oracle was exercised: {paired}"
    );
}

// ---------------------------------------------------------------------------------------------
// A synthetic stream with dropped responses.

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_num(field: u64, v: u64, out: &mut Vec<u8>) {
    pb_varint(field << 3, out);
    pb_varint(v, out);
}

fn pb_bytes(field: u64, v: &[u8], out: &mut Vec<u8>) {
    pb_varint(field << 3 | 2, out);
    pb_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

fn pb_time(field: u64, ns: u64, out: &mut Vec<u8>) {
    pb_num(field, ns / 1_000_000_000, out);
    pb_varint((field + 1) << 3 | 5, out);
    out.extend_from_slice(&((ns % 1_000_000_000) as u32).to_le_bytes());
}

/// A knot-like message: queries carry `query_time`, responses only `response_time`.
fn synth_payload(response: bool, port: u16, id: u16, name: &str, at_ns: u64) -> Vec<u8> {
    let mut dns = id.to_be_bytes().to_vec();
    dns.extend_from_slice(&[if response { 0x84 } else { 0 }, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        dns.push(label.len() as u8);
        dns.extend_from_slice(label.as_bytes());
    }
    dns.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut m = Vec::new();
    pb_num(1, if response { 2 } else { 1 }, &mut m);
    pb_num(2, 1, &mut m);
    pb_num(3, 1, &mut m);
    pb_bytes(4, &[198, 51, 100, 7], &mut m);
    pb_bytes(5, &[192, 0, 2, 53], &mut m);
    pb_num(6, u64::from(port), &mut m);
    pb_num(7, 53, &mut m);
    if response {
        pb_time(12, at_ns, &mut m);
        pb_bytes(14, &dns, &mut m);
    } else {
        pb_time(8, at_ns, &mut m);
        pb_bytes(10, &dns, &mut m);
    }
    let mut p = Vec::new();
    pb_bytes(1, b"synth", &mut p);
    pb_bytes(14, &m, &mut p);
    pb_num(15, 1, &mut p);
    p
}

/// `n` queries, every tenth response dropped, the others sent a few messages later, with
/// DNS ids repeating across ports and names (only the whole key tells them apart).
/// Returns the payloads and the Frame Streams file.
fn synthetic(n: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    let base = 1_800_000_000_000_000_000u64;
    let mut payloads = Vec::new();
    let mut later: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for i in 0..n {
        let (port, id, name) = (
            10_000 + (i % 7) as u16,
            (i % 500) as u16,
            format!("q{i}.Synth.test"),
        );
        let t = base + i * 1_000_000;
        payloads.push(synth_payload(false, port, id, &name, t));
        if i % 10 != 3 {
            let took = (i % 50) * 37_123 + 911;
            later.entry(i + 1 + i % 5).or_default().push(synth_payload(
                true,
                port,
                id,
                &name.to_uppercase(),
                t + took,
            ));
        }
        if let Some(v) = later.remove(&i) {
            payloads.extend(v);
        }
    }
    payloads.extend(later.into_values().flatten());
    let mut file = Vec::new();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut file);
    for p in &payloads {
        write_data_frame(p, &mut file);
    }
    write_control_frame(ControlType::Stop, None, &mut file);
    (payloads, file)
}

#[test]
fn unanswered_queries_of_a_synthetic_stream_are_exactly_the_timeouts_offline() {
    let (payloads, file) = synthetic(3000);
    let want = oracle(&payloads);
    assert_eq!(want.unanswered.len(), 300);
    let dir = TempDir::new("synth-offline");
    let cap = dir.write("s.fstrm", &file);
    let conf = dir.write(
        "c.yaml",
        format!(
            "{FULL}transforms:\n  latency: {{unanswered-queries: true, queries-timeout: 3600}}\n"
        )
        .as_bytes(),
    );
    let (lines, stderr) = offline(&cap, &conf);
    assert_eq!(lines.len(), payloads.len() + 300, "{stderr}");
    for (i, (line, want)) in lines.iter().zip(&want.latency).enumerate() {
        assert_eq!(latency_text(line).as_ref(), want.as_ref(), "message {i}");
    }
    let got: BTreeSet<_> = lines[payloads.len()..]
        .iter()
        .map(|l| timeout_of(l))
        .collect();
    assert_eq!(got, want.unanswered);
    assert!(
        stderr.contains("matched=2700 unmatched=0 ") && stderr.contains("reported=300 "),
        "{stderr}"
    );

    // The seed formats show the rcode as TIMEOUT too.
    let text = dir.write(
        "t.yaml",
        b"transforms:\n  latency: {unanswered-queries: true, queries-timeout: 3600}\n",
    );
    let (lines, _) = offline(&cap, &text);
    let timeouts: Vec<&String> = lines.iter().filter(|l| l.contains(" TIMEOUT ")).collect();
    assert_eq!(timeouts.len(), 300);
    assert!(
        timeouts.iter().all(|l| l.contains("AUTH_QUERY")),
        "{timeouts:?}"
    );
}

/// A running receiver, killed on drop.
struct Daemon {
    child: std::process::Child,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        let mut child = Command::new(BIN)
            .arg("-v")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let s2 = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                s2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            stdout: Some(stdout),
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn logged_after(&self, needle: &str) -> String {
        let t0 = Instant::now();
        loop {
            let log = self.log();
            if let Some(at) = log.find(needle) {
                let rest = &log[at + needle.len()..];
                return rest.split(['/', ' ', '\n']).next().unwrap().to_string();
            }
            assert!(t0.elapsed() < DEADLINE, "no {needle:?}: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> Vec<u8> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(t0.elapsed() < DEADLINE, "no exit: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stdout.take().unwrap().join().unwrap()
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

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_daemon_reports_unanswered_queries_when_their_timeout_passes() {
    let (payloads, file) = synthetic(2000);
    let want = oracle(&payloads);
    let dir = TempDir::new("synth-daemon");
    // One second: the writer handles a query and its response far closer together than
    // that, even on a loaded machine; the timeouts come from the idle writer's drain.
    let conf = dir.write(
        "c.yaml",
        format!("{FULL}transforms:\n  latency: {{unanswered-queries: true, queries-timeout: 1}}\n")
            .as_bytes(),
    );
    let d = Daemon::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        "0",
        "--metrics",
        "127.0.0.1:0",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let maddr = d.logged_after("metrics: http://");
    let iaddr = d.logged_after("listening on tcp ");
    let mut s = TcpStream::connect(&iaddr).unwrap();
    s.write_all(&file).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.read_to_end(&mut rest);

    // Wait for the event: every unanswered query reported.
    let reported = "dnstap_receiver_latency_timeouts_reported_total{chain=\"global\"}";
    let t0 = Instant::now();
    let text = loop {
        let text = scrape(&maddr);
        if metric(&text, reported) == Some(want.unanswered.len() as u64) {
            break text;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "not reported:\n{text}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let chain = |r: &str| format!("dnstap_receiver_latency_{r}{{chain=\"global\"");
    assert_eq!(
        metric(
            &text,
            &format!("{},result=\"matched\"}}", chain("responses_total"))
        ),
        Some(1800)
    );
    assert_eq!(
        metric(
            &text,
            &format!("{},reason=\"timed-out\"}}", chain("queries_removed_total"))
        ),
        Some(200)
    );
    assert_eq!(
        metric(&text, &format!("{}}}", chain("pending_queries"))),
        Some(0)
    );
    assert_eq!(
        metric(&text, "dnstap_latency_seconds_count{identity=\"synth\"}"),
        Some(1800)
    );
    // took = (i % 50) * 37.123 µs + 911 ns: at most 1.82 ms, so all within 2.5 ms.
    assert_eq!(
        metric(
            &text,
            "dnstap_latency_seconds_bucket{identity=\"synth\",le=\"0.0025\"}"
        ),
        Some(1800)
    );

    let out = String::from_utf8(d.stop()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), payloads.len() + want.unanswered.len());
    let got: BTreeSet<_> = lines
        .iter()
        .filter(|l| l.contains("\"TIMEOUT\""))
        .map(|l| timeout_of(l))
        .collect();
    assert_eq!(got, want.unanswered);
    let mut latencies: Vec<String> = lines.iter().filter_map(|l| latency_text(l)).collect();
    let mut expected: Vec<String> = want.latency.into_iter().flatten().collect();
    latencies.sort();
    expected.sort();
    assert_eq!(latencies, expected);
}

// ---------------------------------------------------------------------------------------------
// Memory.

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Set in the child process that measures (alone: the other tests of this file would
/// share its resident memory).
const PROBE_ENV: &str = "LATENCY_MEMORY_PROBE";

#[test]
fn a_million_outstanding_queries_stay_within_the_bound() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "memory_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("1 M pending").count(), 2, "{text}");
    eprintln!("{text}");
}

/// The measurement, run by [`a_million_outstanding_queries_stay_within_the_bound`] in a
/// process of its own; does nothing otherwise.
#[test]
fn memory_probe() {
    use dnstap_receiver::record::{Enrichment, Record, Timestamp};
    use dnstap_receiver::transform::latency::{Latency, LatencySpec};

    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    for unanswered in [false, true] {
        let before = rss_bytes();
        let l = Latency::new(LatencySpec {
            unanswered,
            max_pending: 1_000_000,
            ..LatencySpec::default()
        });
        let bound = l.snapshot().bound_bytes;
        let mut msg = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
        let now = Instant::now();
        let mut en = Enrichment::default();
        for i in 0..1_000_000u32 {
            msg[..2].copy_from_slice(&(i as u16).to_be_bytes());
            let mut rec = Record {
                identity: Some(b"ns1"),
                kind: Some(1),
                message_type: Some(1),
                query_address: Some(&[192, 0, 2, 1]),
                query_port: Some(i >> 16),
                query_time: Some(Timestamp { sec: 1, nsec: i }),
                query_message: Some(&msg),
                ..Record::default()
            };
            rec.parse_dns();
            en.reset();
            l.apply(&rec, &mut en, now);
        }
        let s = l.snapshot();
        let grown = rss_bytes().saturating_sub(before);
        eprintln!(
            "unanswered-queries {unanswered}: 1 M pending, resident +{} MiB, bound {} MiB",
            grown >> 20,
            bound >> 20
        );
        assert_eq!((s.pending, s.counts.evicted), (1_000_000, 0));
        // The table's bound, plus the step's fixed part (histograms, scratch buffers) and
        // the allocator's pages: under 1 MiB.
        assert!(
            grown <= bound + (1 << 20),
            "resident +{grown} over the bound {bound}"
        );
        // The documented sizes: 40 bytes per entry + 16 per index cell (2 cells per entry,
        // rounded up to a power of two), + 192 bytes per entry for the records.
        let documented = 1_000_000 * 40 + (1 << 21) * 8 + if unanswered { 192_000_000 } else { 0 };
        assert_eq!(bound, documented);
        drop(l);
    }
}

// ---------------------------------------------------------------------------------------------
// No allocation per message.

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn the_step_allocates_nothing_per_message() {
    use dnstap_receiver::record::{Enrichment, Record};
    use dnstap_receiver::transform::latency::{Latency, LatencySpec};

    let (payloads, _) = synthetic(3000);
    let records: Vec<Record<'_>> = payloads.iter().map(|p| Record::parse(p).unwrap()).collect();
    let l = Latency::new(LatencySpec {
        unanswered: true,
        ..LatencySpec::default()
    });
    let mut en = Enrichment::default();
    let mut pass = |at: Instant| {
        let mut reported = 0;
        for r in &records {
            en.reset();
            l.apply(r, &mut en, at);
        }
        // Everything still pending comes out (the TIMEOUT records are parsed and emitted).
        l.drain(at, true, &mut |r, _, en, _| {
            assert!(en.timeout && r.dns.is_some());
            reported += 1;
        });
        reported
    };
    // Warm-up: the identity's histogram slot, the scratch buffer's growth.
    assert_eq!(pass(Instant::now()), 300);
    let (reported, n) = support::alloc::allocations_in(|| pass(Instant::now()));
    assert_eq!(reported, 300);
    assert_eq!(n, 0, "allocations over {} messages", records.len());
}

// ---------------------------------------------------------------------------------------------
// Configuration errors.

#[test]
fn bad_values_and_several_writers_are_refused_naming_the_key() {
    let dir = TempDir::new("conf");
    for (yaml, needles) in [
        (
            "transforms:\n  latency:\n    queries-timeout: 0\n",
            &["transforms.latency.queries-timeout", ":3:"][..],
        ),
        (
            "outputs:\n  - stdout:\n      transforms:\n        latency:\n          max-pending: 0\n",
            &["outputs[0].stdout.transforms.latency.max-pending"][..],
        ),
        (
            "transforms:\n  latency:\n    max-pending: 1000\n    unanswered: true\n",
            &["unanswered"][..],
        ),
        (
            "writers: 2\ntransforms:\n  latency: {}\n",
            &["writers", "one writer"][..],
        ),
    ] {
        let conf = dir.write("bad.yaml", yaml.as_bytes());
        let out = Command::new(BIN)
            .arg("--check-config")
            .arg(&conf)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{yaml}: no {n:?} in {stderr}");
        }
    }
}
