//! The reducer (`transforms.reducer`) end to end, against an independent oracle.
//!
//! The reference is the receiver's own `-r FILE --format json-full` with no transform:
//! every record, parsed with serde_json. The test computes each record's key (the
//! `unique-fields`) in plain Rust from those JSON values, counts the records and sums their
//! DNS message lengths per key, and compares that with the reduced output of the same input:
//! per key, Σ `reducer.occurrences` = records in, Σ `reducer.cumulative-length` = their
//! lengths. On the lab captures (offline), on `loadgen --synth` traffic (with a small
//! `max-entries`, so that windows close early), and in the daemon (global and per-output
//! reducer, with every counter of docs/metrics.md adding up).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use dnstap_receiver::record::{Enrichment, Record};
use dnstap_receiver::transform::{Reducer, ReducerSpec, Verdict};
use serde_json::Value;

mod support;

use support::receiver::{free_port, metric, metrics_page, wait_until, Receiver, TempDir, BIN};

const DEADLINE: Duration = Duration::from_secs(60);

/// The lab captures the offline tests read. Empty when they are missing, as the tests' one
/// skip helper decides (a NOTICE by hand, a failure under `CI=true`).
fn captures() -> Vec<PathBuf> {
    let dir = support::lab::lab_dir().join("captures");
    let files: Vec<PathBuf> = [
        "unbound-tcp.fstrm",
        "bind-unix.fstrm",
        "dnsdist-unix.fstrm",
        "knot-unix.fstrm",
        "pdns-recursor-unix.fstrm",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let ok = support::skip::require(files.iter().all(|p| p.exists()), "reducer", || {
        format!("lab captures missing in {}", dir.display())
    });
    if ok {
        files
    } else {
        Vec::new()
    }
}

/// `-r FILE --format json-full [args]`: stdout lines and stderr.
fn offline(file: &Path, args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .arg("-r")
        .arg(file)
        .args(["--format", "json-full", "-v"])
        .args(args)
        .output()
        .expect("run dnstap_receiver");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    (text.lines().map(str::to_string).collect(), stderr)
}

/// The oracle's key of a record on the default `unique-fields`: identity, message type,
/// client address, qname (lowercased), qtype, rcode; absent values as `-`. Also the
/// length of the DNS message the record is about.
fn key(v: &Value, fields: &[&str]) -> (String, u64) {
    let m = &v["message"];
    let mtype = m["type"].as_str().unwrap_or("-");
    let (first, second) = if mtype.ends_with("_QUERY") || m.get("type").is_none() {
        ("query_message", "response_message")
    } else {
        ("response_message", "query_message")
    };
    let msg = m.get(first).or_else(|| m.get(second));
    let length = msg.and_then(|d| d["length"].as_u64()).unwrap_or(0);
    // A message that could not be read has no question or rcode for the reducer.
    let dns = msg.filter(|d| d.get("malformed").is_none());
    let q = dns.and_then(|d| d["question"].get(0));
    let s = |x: Option<&Value>| match x {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".into(),
    };
    let mut k = Vec::new();
    for f in fields {
        k.push(match *f {
            "identity" => s(v.get("identity")),
            "message-type" => s(m.get("type")),
            "query-ip" => s(m.get("query_address")),
            "query-port" => s(m.get("query_port")),
            "qname" => q
                .and_then(|q| q["name"].as_str())
                .map_or("-".into(), str::to_ascii_lowercase),
            "qtype" => s(q.and_then(|q| q.get("type"))),
            "rcode" => s(dns.and_then(|d| d["header"].get("rcode"))),
            other => panic!("oracle knows no {other}"),
        });
    }
    (k.join("|"), length)
}

const DEFAULT_FIELDS: [&str; 6] = [
    "identity",
    "message-type",
    "query-ip",
    "qname",
    "qtype",
    "rcode",
];

/// Records and DNS bytes per key, from plain records.
fn expected(lines: &[String], fields: &[&str]) -> BTreeMap<String, (u64, u64)> {
    let mut m = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let (k, len) = key(&v, fields);
        let e = m.entry(k).or_insert((0, 0));
        e.0 += 1;
        e.1 += len;
    }
    m
}

/// Σ occurrences and Σ cumulative-length per key, from reduced records; and how many
/// records each key came out as.
type Got = (BTreeMap<String, (u64, u64)>, BTreeMap<String, u64>);

fn reduced(lines: &[String], fields: &[&str]) -> Got {
    let (mut sums, mut records) = (BTreeMap::new(), BTreeMap::new());
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let r = v
            .get("reducer")
            .unwrap_or_else(|| panic!("no reducer: {l}"));
        let occ = r["occurrences"].as_u64().unwrap();
        let len = r["cumulative-length"].as_u64().unwrap();
        assert!(occ >= 1, "{l}");
        let (k, own) = key(&v, fields);
        assert!(len >= own, "the first record's length is in the sum: {l}");
        let e = sums.entry(k.clone()).or_insert((0, 0));
        e.0 += occ;
        e.1 += len;
        *records.entry(k).or_insert(0) += 1;
    }
    (sums, records)
}

/// `key=N` of the offline summary line (`frames=`, `written=`, `reduced=`).
fn stat(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("frames="))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    let at = line
        .find(&format!("{key}="))
        .map(|i| i + key.len() + 1)
        .unwrap_or_else(|| panic!("no {key}= in {line}"));
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn lab_captures_fold_into_one_record_per_key_with_every_occurrence_counted() {
    let dir = TempDir::new("reducer-lab");
    // One window for the whole file: every key comes out exactly once.
    let conf = dir.path("r.yaml");
    std::fs::write(
        &conf,
        "transforms:\n  reducer:\n    repetitive-traffic-detector: true\n    watch-interval: 3600\n",
    )
    .unwrap();
    for cap in captures() {
        let (plain, _) = offline(&cap, &[]);
        assert!(plain.len() > 100, "{}: too small", cap.display());
        let want = expected(&plain, &DEFAULT_FIELDS);
        let (lines, stderr) = offline(&cap, &["-c", conf.to_str().unwrap()]);
        let (got, records) = reduced(&lines, &DEFAULT_FIELDS);
        assert_eq!(got, want, "{}", cap.display());
        assert!(
            records.values().all(|&n| n == 1),
            "{}: a key twice in one window",
            cap.display()
        );
        assert!(
            lines.len() < plain.len(),
            "{}: nothing reduced",
            cap.display()
        );
        // The counters: frames = written + reduced; every held record released.
        let n = plain.len() as u64;
        assert_eq!(stat(&stderr, "frames"), n, "{stderr}");
        assert_eq!(stat(&stderr, "written"), lines.len() as u64, "{stderr}");
        assert_eq!(stat(&stderr, "reduced"), n - lines.len() as u64, "{stderr}");
    }
}

#[test]
fn unique_fields_choose_the_key_by_our_names_or_dns_collectors() {
    let Some(cap) = captures().into_iter().next() else {
        return;
    };
    let dir = TempDir::new("reducer-fields");
    let (plain, _) = offline(&cap, &[]);
    for (names, fields) in [
        ("[dns.qname]", &["qname"][..]),
        (
            "[qname, qtype, query-port]",
            &["qname", "qtype", "query-port"][..],
        ),
        (
            "[network.query-ip, dnstap.operation]",
            &["query-ip", "message-type"][..],
        ),
    ] {
        let conf = dir.path("f.yaml");
        std::fs::write(
            &conf,
            format!(
                "transforms:\n  reducer:\n    watch-interval: 3600\n    unique-fields: {names}\n"
            ),
        )
        .unwrap();
        let (lines, _) = offline(&cap, &["-c", conf.to_str().unwrap()]);
        let (got, records) = reduced(&lines, fields);
        assert_eq!(got, expected(&plain, fields), "{names}");
        assert_eq!(records.len(), lines.len(), "{names}: one record per key");
    }
}

/// The workspace's loadgen, built beside the receiver (`cargo build --workspace`). `None`
/// (with a NOTICE) when it is missing outside CI.
fn loadgen() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    let ok = support::skip::require(p.is_file(), "reducer", || {
        format!("{} missing (cargo build --workspace)", p.display())
    });
    ok.then_some(p)
}

#[test]
fn a_full_table_flushes_early_and_synthetic_traffic_still_adds_up() {
    let Some(bin) = loadgen() else { return };
    let dir = TempDir::new("reducer-synth");
    let synth = dir.path("synth.fstrm");
    let out = Command::new(bin)
        .args(["--synth", "-q", "--seed", "11", "--synth-messages", "40000"])
        .args(["--synth-names", "300", "--synth-identities", "3"])
        .arg("--write-fstrm")
        .arg(&synth)
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (plain, _) = offline(&synth, &[]);
    assert_eq!(plain.len(), 40_000);
    let want = expected(&plain, &DEFAULT_FIELDS);
    assert!(want.len() > 1000, "{} keys", want.len());

    let conf = dir.path("r.yaml");
    std::fs::write(
        &conf,
        "transforms:\n  reducer:\n    watch-interval: 3600\n    max-entries: 500\n",
    )
    .unwrap();
    let (lines, stderr) = offline(&synth, &["-c", conf.to_str().unwrap()]);
    let (got, records) = reduced(&lines, &DEFAULT_FIELDS);
    assert_eq!(got, want);
    // Windows closed at 500 keys: some keys come out more than once, and no window held
    // more than 500 keys (each key is once per window, so a record count per key above
    // the number of windows is impossible).
    let windows = lines.len().div_ceil(500);
    assert!(records.values().any(|&n| n > 1), "no early flush");
    assert!(
        lines.len() >= want.len(),
        "{} < {}",
        lines.len(),
        want.len()
    );
    assert!(records.values().all(|&n| n as usize <= windows));
    assert_eq!(
        stat(&stderr, "written") + stat(&stderr, "reduced"),
        40_000,
        "{stderr}"
    );
}

/// Sends a capture file's bytes (a unidirectional Frame Streams stream) to `port`.
fn send(port: u16, file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// The daemon with the reducer in the global chain (`per_output`: false) or in stdout's own
/// chain: the output, the counters on the metrics page and their identities.
fn daemon_run(per_output: bool) {
    let Some(cap) = captures().into_iter().next() else {
        return;
    };
    let (plain, _) = offline(&cap, &[]);
    let n = plain.len() as u64;
    let want = expected(&plain, &DEFAULT_FIELDS);
    let dir = TempDir::new("reducer-daemon");
    // A short window, so that records are released while the daemon runs.
    let reducer = "reducer:\n  watch-interval: 0.2\n";
    let indent = |s: &str, by: usize| -> String {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect()
    };
    let yaml = if per_output {
        format!(
            "outputs:\n  - stdout:\n      format: json-full\n      transforms:\n{}",
            indent(reducer, 8)
        )
    } else {
        format!(
            "outputs:\n  - stdout:\n      format: json-full\ntransforms:\n{}",
            indent(reducer, 2)
        )
    };
    let conf = dir.path("d.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let (port, mport) = (free_port(), free_port());
    let (p, m) = (port.to_string(), format!("127.0.0.1:{mport}"));
    let r = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &p,
        "--metrics",
        &m,
        "-c",
        conf.to_str().unwrap(),
    ]);
    r.wait_log("metrics: http://");
    send(port, &cap);

    let (held, released, reduced_name, written_name) = if per_output {
        (
            "output_records_transform_held_total",
            "output_records_transform_released_total",
            "output_records_filtered_total",
            "output_records_total",
        )
    } else {
        (
            "records_transform_held_total",
            "records_transform_released_total",
            "records_filtered_total",
            "messages_written_total",
        )
    };
    let name = |s: &str| format!("dnstap_receiver_{s}");
    let page = std::cell::RefCell::new(String::new());
    // Settled: everything received, nothing held any more, every record written or reduced.
    wait_until(
        DEADLINE,
        || {
            let p = metrics_page(mport);
            let g = |s: &str| metric(&p, &name(s));
            let settled = g("frames_received_total") == n
                && g(held) > 0
                && g(held) == g(released)
                && g(written_name) + g(reduced_name) == n;
            *page.borrow_mut() = p;
            settled
        },
        || format!("not settled:\n{}\n{}", page.borrow(), r.stderr()),
    );
    let page = page.into_inner();
    let g = |s: &str| metric(&page, &name(s));
    assert_eq!(g("records_transform_generated_total"), 0);
    assert_eq!(g("output_records_transform_generated_total"), 0);
    // frames = written + Σ filtered + held − released (docs/metrics.md), held − released = 0.
    assert_eq!(
        g("messages_written_total") + g("records_filtered_total") + g("messages_filtered_total"),
        n
    );
    let fin = r.stop();
    let lines: Vec<String> = String::from_utf8(fin.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (got, _) = reduced(&lines, &DEFAULT_FIELDS);
    assert_eq!(got, want, "per_output {per_output}");
    assert_eq!(
        lines.len() as u64,
        g(released),
        "every record out was held once"
    );
    assert_eq!(g(written_name), lines.len() as u64);
}

#[test]
fn daemon_global_reducer_releases_every_window_and_the_counters_add_up() {
    daemon_run(false);
}

#[test]
fn daemon_per_output_reducer_releases_every_window_and_the_counters_add_up() {
    daemon_run(true);
}

#[test]
fn bad_reducer_values_stop_start_up_naming_the_key() {
    let dir = TempDir::new("reducer-bad");
    for (yaml, needles) in [
        (
            "transforms:\n  reducer:\n    unique-fields: [qname, qnmae]\n",
            &["transforms.reducer.unique-fields[1]", "qnmae", "dns.qname"][..],
        ),
        (
            "transforms:\n  reducer:\n    max-entries: 0\n",
            &["transforms.reducer.max-entries"][..],
        ),
        (
            "transforms:\n  reducer:\n    watch-interval: -1\n",
            &["transforms.reducer.watch-interval"][..],
        ),
        (
            "writers: 2\ntransforms:\n  reducer: {}\n",
            &["writers", "stateful"][..],
        ),
    ] {
        let conf = dir.path("bad.yaml");
        std::fs::write(&conf, yaml).unwrap();
        let out = Command::new(BIN)
            .args(["-r", "/nonexistent.fstrm", "-c", conf.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{yaml}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{yaml}: no {n:?} in {stderr}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No allocation per record once the windows' buffers have grown.

#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

#[test]
fn reducer_windows_reuse_their_buffers() {
    let Some(cap) = captures().into_iter().next() else {
        return;
    };
    let payloads = support::lab::capture_payloads(&cap);
    let records: Vec<Record<'_>> = payloads
        .iter()
        .filter_map(|p| Record::parse(p).ok())
        .collect();
    // A small table, so that windows also close early on the way.
    let r = Reducer::new(&ReducerSpec {
        max_entries: 3000,
        ..ReducerSpec::default()
    });
    let mut en = Enrichment::default();
    let mut pass = || {
        let now = Instant::now();
        let (mut out, mut folded) = (0u64, 0u64);
        for batch in records.chunks(512) {
            for rec in batch {
                en.reset();
                match r.apply(rec, &mut en, now) {
                    Verdict::Keep => out += 1,
                    Verdict::Held => {}
                    Verdict::Drop(_) => folded += 1,
                }
            }
            r.drain(now, false, &mut |_, _, en, _| {
                out += 1;
                assert!(en.reducer.is_some());
            });
        }
        r.drain(now, true, &mut |_, _, _, _| out += 1);
        (out, folded)
    };
    // Warm-up: the windows' buffers grow to their size.
    let first = pass();
    let _ = pass();
    let (counted, n) = support::alloc::allocations_in(pass);
    assert_eq!(n, 0, "allocations in a pass");
    assert_eq!(counted, first, "the same records out each pass");
    assert_eq!(first.0 + first.1, records.len() as u64);
}
