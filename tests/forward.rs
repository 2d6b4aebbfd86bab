//! The forward output against a real collector: syslog-ng (a TCP or TLS source, one JSON
//! object per line, a JSON parser, a file destination) stands in for Logstash. Checks that
//! every record arrives exactly as `-r` prints it, that a collector stopped for 30 s mid-run
//! loses nothing with `block` and `spill` (duplicates only within the counted `resent`) and
//! exactly the counted drops with `drop-newest` / `drop-oldest`, that memory stays bounded
//! during the outage, that the spill queue survives a receiver restart, and TLS.
//!
//! Without syslog-ng in `PATH` the tests skip with a NOTICE, or fail under `CI=true`
//! (`support::skip`).

mod support;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE;
use dnstap_receiver::framestream::{write_control_frame, write_data_frame, ControlType};
use support::lab::capture;
use support::receiver::{
    free_port, metric, metrics_page, offline_lines, send_bidi, wait_until, Ending, Receiver,
    Target, TempDir,
};
use support::skip;
use support::syslog::{have_syslog_ng, Collector};

/// How long the collector is away in the fault tests (the figure).
const OUTAGE: Duration = Duration::from_secs(30);

/// A dnstap CLIENT_QUERY for `q{i}.fw.test.` (unique per record) from 192.0.2.1, with
/// nanoseconds in its query time ([`support::pb::client_query`]).
fn payload(i: u64) -> Vec<u8> {
    support::pb::client_query(
        i,
        "fw-test",
        "fw",
        [192, 0, 2, 1],
        Some(((i % 1000) * 1_000_000) as u32),
    )
}

fn payloads(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(payload).collect()
}

/// Writes `payloads` as a unidirectional Frame Streams file (the `-r` oracle's input).
fn write_capture(path: &Path, payloads: &[Vec<u8>]) {
    let mut out = Vec::new();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for p in payloads {
        write_data_frame(p, &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    std::fs::write(path, out).unwrap();
}

/// The counters of the forward output in the receiver's final `-v` lines.
fn counters(stderr: &str) -> HashMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("output-counters: \"forward"))
        .unwrap_or_else(|| panic!("no output-counters line in: {stderr}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `(N MiB bound)` of the pool, and `memory bound N MiB` of the forward output, from the
/// start-up log.
fn logged_bounds_mib(stderr: &str) -> (u64, u64) {
    let num_before = |s: &str, pat: &str| -> u64 {
        let at = s.find(pat).unwrap_or_else(|| panic!("{pat} in {s}"));
        s[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let pool = num_before(stderr, " MiB bound)");
    let at = stderr.find("memory bound ").expect("memory bound in log") + "memory bound ".len();
    let fwd = stderr[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (pool, fwd)
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("receiver.yaml");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(body.as_bytes()).unwrap();
    p
}

/// Query names of the collector's lines, each checked to be a JSON object of the seed keys.
fn names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v["query-name"].as_str().expect("query-name").to_string()
        })
        .collect()
}

#[test]
fn forwarded_captures_arrive_once_as_offline_prints_them() {
    if !have_syslog_ng("forwarded_captures_arrive_once_as_offline_prints_them") {
        return;
    }
    let tmp = TempDir::new("fwd-eq");
    let cport = free_port();
    let mut collector = Collector::start(&tmp.0, cport);
    let rport = free_port();
    let target = format!("127.0.0.1:{cport}");
    let rp = rport.to_string();
    let rx = Receiver::start(&["-l", "127.0.0.1", "-p", &rp, "--io", "epoll", "-f", &target]);
    // Three DNS servers' streams at once, multiplexed onto the one outgoing connection.
    let files = ["unbound-tcp.fstrm", "bind-unix.fstrm", "dnsdist-tcp.fstrm"];
    let mut want = Vec::new();
    let mut senders = Vec::new();
    for f in files {
        let path = capture(f);
        want.extend(offline_lines(&path, &["--format", "json"]));
        let p = support::lab::capture_payloads(&path);
        senders.push(std::thread::spawn(move || {
            send_bidi(&Target::Tcp(rport), &p, Ending::Stop);
        }));
    }
    for s in senders {
        s.join().unwrap();
    }
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    assert!(
        fin.stdout.is_empty(),
        "no stdout while forwarding (seed behaviour)"
    );
    collector.drain();
    assert_eq!(collector.count(), want.len(), "collector line count");
    let got = collector.lines();
    assert_eq!(collector.bad(), "", "every line parses as JSON");
    // Equal as JSON: each line parsed, re-serialised canonically (sorted keys), then the
    // two multisets compared.
    let parse = |v: &Vec<String>| -> Vec<String> {
        let mut x: Vec<String> = v
            .iter()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                v.to_string()
            })
            .collect();
        x.sort_unstable();
        x
    };
    assert!(parse(&got) == parse(&want), "records differ from -r output");
    let c = counters(&fin.stderr);
    assert_eq!(c["records"], want.len() as u64);
    assert_eq!(c["delivered"], want.len() as u64);
    assert_eq!(c["dropped"], 0);
}

/// A run of `total` unique records with the collector stopped for [`OUTAGE`] in the middle:
/// the first `paced` records go out at a moderate pace before the stop, the rest at full
/// speed during the outage. Returns the collector's query names and the receiver's final
/// counters.
fn fault_run(tag: &str, overflow: &str, extra: &str) -> (Vec<String>, HashMap<String, u64>, u64) {
    let total: u64 = 300_000;
    let paced: u64 = 60_000;
    let tmp = TempDir::new(tag);
    let cport = free_port();
    let mut collector = Collector::start(&tmp.0, cport);
    let rport = free_port();
    let mport = free_port();
    let metrics = format!("127.0.0.1:{mport}");
    let spill = tmp.path("spill");
    let conf = write_config(
        &tmp.0,
        &format!(
            "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: {cport}\n  \
             overflow: {overflow}\n  buffer-size: 4194304\n  chunk-size: 65536\n  \
             replay-window: 8388608\n  reconnect-max: 2\n  shutdown-timeout: 20\n  \
             spill-dir: {}\n{extra}",
            spill.display()
        ),
    );
    let rp = rport.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rp,
        "--io",
        "epoll",
        "--threads",
        "1",
        "--metrics",
        &metrics,
        "-c",
        conf.to_str().unwrap(),
    ]);
    // Both lines come after "io back-end:", which is all `Receiver::start` waits for.
    rx.wait_log(" MiB bound)");
    rx.wait_log("memory bound ");
    let (pool_mib, fwd_mib) = logged_bounds_mib(&rx.stderr());
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        let mut c = send_bidi(&Target::Tcp(rport), &[], Ending::Open).unwrap();
        let mut out = Vec::new();
        let mut i = 0;
        while i < paced {
            out.clear();
            for p in payloads(i..i + 2000) {
                write_data_frame(&p, &mut out);
            }
            c.write_all(&out).unwrap();
            i += 2000;
            // Deliberate: the first records go out at a moderate pace.
            std::thread::sleep(Duration::from_millis(20));
        }
        go_rx.recv().unwrap();
        while i < total {
            out.clear();
            for p in payloads(i..(i + 5000).min(total)) {
                write_data_frame(&p, &mut out);
            }
            c.write_all(&out).unwrap();
            i += 5000;
        }
        out.clear();
        write_control_frame(ControlType::Stop, None, &mut out);
        c.write_all(&out).unwrap();
        // FINISH comes once the receiver has read up to STOP, which under `block` waits for
        // the backlog to drain into the restarted collector: longer than the helper's 20 s
        // socket timeout on a loaded machine. Wait up to 3 minutes for its 12 bytes.
        let t0 = Instant::now();
        let mut got = 0;
        let mut b = [0u8; 64];
        while got < 12 && t0.elapsed() < Duration::from_secs(180) {
            match c.read(&mut b) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("waiting for FINISH: {e}"),
            }
        }
        assert!(got >= 12, "no FINISH from the receiver");
    });
    // Stop the collector once part of the stream has reached it.
    let t0 = Instant::now();
    while collector.count() < 20_000 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "collector got nothing"
        );
        // A poll step; the loop has a deadline.
        std::thread::sleep(Duration::from_millis(20));
    }
    collector.stop();
    go_tx.send(()).unwrap();
    let mut peak = 0;
    let t_out = Instant::now();
    while t_out.elapsed() < OUTAGE {
        peak = peak.max(rss_kib(rx.pid()));
        // Deliberate: the collector stays away for the whole OUTAGE; memory sampled meanwhile.
        std::thread::sleep(Duration::from_millis(100));
    }
    collector.spawn();
    sender.join().unwrap();
    // Let the backlog reach the collector: it holds a line for every record the forward
    // output did not drop. Then stop the receiver for its final counters.
    wait_until(
        Duration::from_secs(60),
        || {
            let dropped = metric(&metrics_page(mport), "dnstap_receiver_output_dropped_total");
            collector.count() as u64 + dropped >= total
        },
        || {
            format!(
                "collector has {} lines of {total}: {}",
                collector.count(),
                metrics_page(mport)
            )
        },
    );
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let c = counters(&fin.stderr);
    collector.drain();
    assert_eq!(collector.bad(), "", "every line parses as JSON");
    let got = names(&collector.lines());
    // Memory: the pipeline's pool + this output's documented bound + the process itself.
    let margin_mib = 24;
    let bound_kib = (pool_mib + fwd_mib + margin_mib) * 1024;
    eprintln!(
        "{tag}: peak RSS during the outage {peak} KiB (bound {bound_kib} KiB = pool {pool_mib} \
         + forward {fwd_mib} + {margin_mib} MiB); counters {c:?}; collector lines {}",
        got.len()
    );
    assert!(
        peak > 0 && peak <= bound_kib,
        "RSS {peak} KiB over {bound_kib} KiB"
    );
    assert_eq!(c["records"], total);
    (got, c, total)
}

/// Every record arrived; extra copies only within the counted re-sends.
fn assert_all_once_or_resent(got: &[String], c: &HashMap<String, u64>, total: u64) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for n in got {
        *seen.entry(n.as_str()).or_default() += 1;
    }
    let missing: Vec<u64> = (0..total)
        .filter(|i| !seen.contains_key(format!("q{i}.fw.test.").as_str()))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "records missing, e.g. {missing:?}; {c:?}"
    );
    assert_eq!(seen.len() as u64, total, "no foreign records");
    let dups = got.len() as u64 - total;
    assert!(
        dups <= c["resent"],
        "{dups} duplicates but only {} re-sent",
        c["resent"]
    );
    assert_eq!(c["dropped"], 0);
    assert_eq!(c["delivered"], total);
}

fn assert_drops_equal_shortfall(got: &[String], c: &HashMap<String, u64>, total: u64) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for n in got {
        *seen.entry(n.as_str()).or_default() += 1;
    }
    let unique = seen.len() as u64;
    assert!(c["dropped"] > 0, "the outage overflowed the buffer: {c:?}");
    assert_eq!(
        c["dropped"],
        total - unique,
        "drop counter == shortfall; {c:?}"
    );
    let dups = got.len() as u64 - unique;
    assert!(
        dups <= c["resent"],
        "{dups} duplicates but only {} re-sent",
        c["resent"]
    );
}

#[test]
fn collector_outage_block_loses_nothing() {
    if !have_syslog_ng("collector_outage_block_loses_nothing") {
        return;
    }
    let (got, c, total) = fault_run("fwd-block", "block", "");
    assert_all_once_or_resent(&got, &c, total);
}

#[test]
fn collector_outage_spill_loses_nothing() {
    if !have_syslog_ng("collector_outage_spill_loses_nothing") {
        return;
    }
    let (got, c, total) = fault_run("fwd-spill", "spill", "  spill-max-bytes: 268435456\n");
    assert!(c["write-errors"] > 0);
    assert_all_once_or_resent(&got, &c, total);
}

#[test]
fn collector_outage_drop_newest_counts_every_drop() {
    if !have_syslog_ng("collector_outage_drop_newest_counts_every_drop") {
        return;
    }
    let (got, c, total) = fault_run("fwd-dropnew", "drop-newest", "");
    assert_drops_equal_shortfall(&got, &c, total);
}

#[test]
fn collector_outage_drop_oldest_counts_every_drop() {
    if !have_syslog_ng("collector_outage_drop_oldest_counts_every_drop") {
        return;
    }
    let (got, c, total) = fault_run("fwd-dropold", "drop-oldest", "");
    assert_drops_equal_shortfall(&got, &c, total);
}

#[test]
fn spill_survives_a_receiver_restart() {
    if !have_syslog_ng("spill_survives_a_receiver_restart") {
        return;
    }
    let tmp = TempDir::new("fwd-restart");
    let cport = free_port();
    let spill = tmp.path("spill");
    let conf = write_config(
        &tmp.0,
        &format!(
            "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: {cport}\n  \
             overflow: spill\n  spill-dir: {}\n  buffer-size: 1048576\n  chunk-size: 65536\n  \
             shutdown-timeout: 1\n  reconnect-max: 1\n",
            spill.display()
        ),
    );
    let total = 50_000u64;
    let args = |port: &str| -> Vec<String> {
        [
            "-l",
            "127.0.0.1",
            "-p",
            port,
            "--io",
            "epoll",
            "-c",
            conf.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // Run 1: no collector at all; everything ends on disk.
    let rp = free_port().to_string();
    let a = args(&rp);
    let rx = Receiver::start(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let port: u16 = rp.parse().unwrap();
    send_bidi(&Target::Tcp(port), &payloads(0..total), Ending::Stop);
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let c = counters(&fin.stderr);
    assert_eq!(c["records"], total);
    assert_eq!(c["spilled"], total, "everything kept on disk: {c:?}");
    assert_eq!(c["dropped"], 0);
    // Run 2: the collector is up; the spill is replayed first, then new records.
    let mut collector = Collector::start(&tmp.0, cport);
    let rp = free_port().to_string();
    let a = args(&rp);
    let rx = Receiver::start(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let port: u16 = rp.parse().unwrap();
    send_bidi(
        &Target::Tcp(port),
        &payloads(total..total + 1000),
        Ending::Stop,
    );
    collector.wait_count(total as usize + 1000, Duration::from_secs(60));
    let fin = rx.stop();
    collector.drain();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let c = counters(&fin.stderr);
    let got = names(&collector.lines());
    assert_eq!(got.len() as u64, total + 1000, "{c:?}");
    // In order: the spilled records first.
    for (i, n) in got.iter().enumerate() {
        assert_eq!(n, &format!("q{i}.fw.test."));
    }
    assert_eq!(c["spilled"], 0);
    assert_eq!(c["delivered"], total + 1000);
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| -> bool {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:collector.test\n",
    )
    .ok()?;
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=fw test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=collector.test",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    ok.then(|| {
        (
            dir.join("ca.pem"),
            dir.join("server.pem"),
            dir.join("server.key"),
        )
    })
}

#[test]
fn forward_over_tls_to_syslog_ng() {
    if !have_syslog_ng("forward_over_tls_to_syslog_ng") {
        return;
    }
    let tmp = TempDir::new("fwd-tls");
    let Some((ca, cert, key)) = make_certs(&tmp.0) else {
        skip::missing(
            "forward_over_tls_to_syslog_ng",
            "openssl not found in PATH (or it could not make the test certificates)",
        );
        return;
    };
    let cport = free_port();
    let mut collector = Collector::start_tls(&tmp.0, cport, &cert, &key);
    let conf = write_config(
        &tmp.0,
        &format!(
            "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: {cport}\n  \
             tls: true\n  tls-ca: {}\n  tls-server-name: collector.test\n",
            ca.display()
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let n = 20_000u64;
    let p = payloads(0..n);
    let file = tmp.path("in.fstrm");
    write_capture(&file, &p);
    send_bidi(&Target::Tcp(rp), &p, Ending::Stop);
    collector.wait_count(n as usize, Duration::from_secs(60));
    let fin = rx.stop();
    collector.drain();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let mut got = collector.lines();
    let mut want = offline_lines(&file, &["--format", "json"]);
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "TLS-forwarded lines differ from -r output");
    assert_eq!(counters(&fin.stderr)["delivered"], n);
}

#[test]
fn outputs_list_runs_stdout_and_forward_each_in_its_format() {
    if !have_syslog_ng("outputs_list_runs_stdout_and_forward_each_in_its_format") {
        return;
    }
    let tmp = TempDir::new("fwd-multi");
    let cport = free_port();
    let mut collector = Collector::start(&tmp.0, cport);
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n  - stdout:\n      format: text\n  - forward:\n      \
             remote-address: 127.0.0.1\n      remote-port: {cport}\n      format: json-full\n"
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let path = capture("nsd-unix.fstrm");
    send_bidi(
        &Target::Tcp(rp),
        &support::lab::capture_payloads(&path),
        Ending::Stop,
    );
    let want_text = offline_lines(&path, &["--format", "text"]);
    let want_json = offline_lines(&path, &["--format", "json-full"]);
    collector.wait_count(want_json.len(), Duration::from_secs(60));
    let fin = rx.stop();
    collector.drain();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    assert_eq!(
        support::receiver::lines(&fin.stdout),
        want_text,
        "stdout: text, in order"
    );
    assert_eq!(
        collector.lines(),
        want_json,
        "collector: json-full, in order"
    );
    assert_eq!(collector.bad(), "");
}
