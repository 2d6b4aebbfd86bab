//! Reload under load (SIGHUP): `loadgen` streams over TCP and over a unix socket while the
//! test rewrites the config file and sends SIGHUP ten times — a transform filter changed,
//! a forward output to a loopback collector added and removed (twice), the TLS input's
//! certificate rotated, the prefilter changed, and one invalid file among them. Nothing may
//! be lost or closed:
//!
//! - both loadgen connections end cleanly (no sender connection is closed by a reload);
//! - every frame is accounted for: written + filtered + transform-filtered + dropped =
//!   frames, with nothing dropped;
//! - each connection's output equals an oracle: its frames in order, each kept or dropped
//!   by the filter of one generation, generations never going back (the writer logs the
//!   switch to each generation; the oracle finds a switch point per connection that
//!   explains every record, kept or not);
//! - the forward output gets its records while configured, and its connection to the
//!   collector is closed when a reload removes it;
//! - after the certificate rotation a new TLS handshake sees the new certificate (a client
//!   trusting only the old CA fails, one trusting the new CA succeeds);
//! - the invalid file is refused with its key named and counted, the running
//!   configuration kept.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use support::receiver::{
    free_port, metric, metrics_page, send_bidi, signal, wait_until, Ending, Launch, Receiver,
    Target, TempDir, BIN, DEADLINE, POLL,
};
use support::tls::{client_config, ready_accept, send_data, tls_connect, Ca};

/// Frames per loadgen connection, and the pace of each (messages per second): about 15 s
/// of traffic, longer than the ten reloads take.
const FRAMES: u64 = 150_000;
const RATE: u64 = 10_000;

/// The query types of the stream, by `seq % 5`.
const QTYPES: [(u16, &str); 5] = [(1, "A"), (28, "AAAA"), (15, "MX"), (16, "TXT"), (2, "NS")];

// ---------------------------------------------------------------------------------------
// Frames: written here, independently of the receiver's encoder.

use support::pb::{field_bytes, field_varint};

/// A DNS query for `qname` (dotted, absolute) and `qtype`.
fn dns_query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in qname.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// A dnstap CLIENT_QUERY from 192.0.2.1 with `identity`, `qname`, `qtype`.
fn frame(identity: &str, qname: &str, qtype: u16, id: u16) -> Vec<u8> {
    let mut msg = Vec::new();
    field_varint(1, 5, &mut msg); // type: CLIENT_QUERY
    field_varint(2, 1, &mut msg); // socket_family: INET
    field_varint(3, 1, &mut msg); // socket_protocol: UDP
    field_bytes(4, &[192, 0, 2, 1], &mut msg); // query_address
    field_varint(6, 5353, &mut msg); // query_port
    field_varint(8, 1_700_000_000, &mut msg); // query_time_sec
    field_bytes(10, &dns_query(id, qname, qtype), &mut msg); // query_message
    let mut d = Vec::new();
    field_bytes(1, identity.as_bytes(), &mut d);
    field_bytes(14, &msg, &mut d);
    field_varint(15, 1, &mut d); // type: MESSAGE
    d
}

/// The stream of connection `conn`: frame `seq` asks for `q<seq>.<conn>.reload.test.`.
fn stream_frame(conn: &str, seq: u64) -> Vec<u8> {
    let (qtype, _) = QTYPES[(seq % 5) as usize];
    frame(
        conn,
        &format!("q{seq}.{conn}.reload.test."),
        qtype,
        seq as u16,
    )
}

/// A Frame Streams file (what fstrm_capture writes) of `FRAMES` stream frames.
fn write_fstrm(path: &Path, conn: &str) {
    let mut out = Vec::new();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for seq in 0..FRAMES {
        write_data_frame(&stream_frame(conn, seq), &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    std::fs::write(path, out).unwrap();
}

// ---------------------------------------------------------------------------------------
// The configurations.

/// The transform filter of one generation.
#[derive(Clone, Copy, Debug)]
enum Chain {
    None,
    Drop(&'static [&'static str]),
    Keep(&'static [&'static str]),
}

impl Chain {
    fn keeps(self, qtype: &str) -> bool {
        match self {
            Chain::None => true,
            Chain::Drop(l) => !l.contains(&qtype),
            Chain::Keep(l) => l.contains(&qtype),
        }
    }

    fn yaml(self) -> String {
        match self {
            Chain::None => String::new(),
            Chain::Drop(l) => format!(
                "transforms:\n  filtering:\n    drop-qtypes: [{}]\n",
                l.join(", ")
            ),
            Chain::Keep(l) => format!(
                "transforms:\n  filtering:\n    keep-qtypes: [{}]\n",
                l.join(", ")
            ),
        }
    }
}

/// One rewrite of the config file.
#[derive(Clone, Copy, Debug)]
struct Step {
    chain: Chain,
    forward: bool,
    /// `filter.qname-regex: q` (the stream's names all match; the markers do not).
    prefilter: bool,
    /// Rotate the TLS input's certificate and key files before this reload.
    rotate_tls: bool,
    invalid: bool,
}

const fn step(chain: Chain) -> Step {
    Step {
        chain,
        forward: false,
        prefilter: false,
        rotate_tls: false,
        invalid: false,
    }
}

struct Ports {
    tcp: u16,
    tls: u16,
    metrics: u16,
    collector: u16,
    unix: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn config(p: &Ports, s: &Step) -> String {
    let mut t = format!(
        "threads: 2\nwriters: 1\n\
         inputs:\n  - tcp: 127.0.0.1:{}\n  - unix: {}\n  - tls: 127.0.0.1:{}\n\
         tls:\n  server-cert: {}\n  server-key: {}\n\
         metrics:\n  listen: 127.0.0.1:{}\n\
         outputs:\n  - stdout:\n      format: json\n",
        p.tcp,
        p.unix.display(),
        p.tls,
        p.cert.display(),
        p.key.display(),
        p.metrics
    );
    if s.forward {
        t.push_str(&format!(
            "  - forward:\n      remote: [127.0.0.1:{}]\n      format: json\n",
            p.collector
        ));
    }
    if s.prefilter {
        t.push_str("filter:\n  qname-regex: q\n");
    }
    if s.invalid {
        // Two errors in two sections: both are reported.
        t.push_str("transforms:\n  filtering:\n    drop-qtypes: [NOT-A-TYPE]\n");
        t.push_str("allow-from: [10.0.0.0/33]\n");
    } else {
        t.push_str(&s.chain.yaml());
    }
    t
}

// ---------------------------------------------------------------------------------------
// Peers: the loopback collector, loadgen.

/// Accepts connections and keeps every line each one sends; counts connections closed.
struct Collector {
    lines: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn start(port: u16) -> Collector {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        let c = Collector {
            lines: Arc::default(),
            accepted: Arc::default(),
            closed: Arc::default(),
            stop: Arc::default(),
        };
        let (lines, accepted, closed, stop) = (
            Arc::clone(&c.lines),
            Arc::clone(&c.accepted),
            Arc::clone(&c.closed),
            Arc::clone(&c.stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        accepted.fetch_add(1, Ordering::AcqRel);
                        let (lines, closed) = (Arc::clone(&lines), Arc::clone(&closed));
                        std::thread::spawn(move || {
                            for line in BufReader::new(s).lines() {
                                match line {
                                    Ok(l) => lines.lock().unwrap().push(l),
                                    Err(_) => break,
                                }
                            }
                            closed.fetch_add(1, Ordering::AcqRel);
                        });
                    }
                    // A poll step of the accept loop; it ends with the test.
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        c
    }

    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The workspace's loadgen, built beside the receiver (`cargo build --workspace`).
fn loadgen() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    let ok = p.is_file();
    support::skip::require(ok, "reload under load", || {
        format!("{} missing (cargo build --workspace)", p.display())
    })
    .then_some(p)
}

fn start_loadgen(bin: &Path, target: &[&str], file: &Path) -> Child {
    Command::new(bin)
        .args(target)
        .args(["-q", "--json", "--rate"])
        .arg(RATE.to_string())
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen")
}

/// Waits for loadgen (bounded) and returns its JSON report.
fn finish_loadgen(mut c: Child, what: &str) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        if c.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(180) {
            let _ = c.kill();
            panic!("{what}: loadgen did not finish");
        }
        // A poll step; the loop has a deadline.
        std::thread::sleep(POLL);
    }
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: loadgen failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {text}"))
}

// ---------------------------------------------------------------------------------------
// The oracle.

/// One output line's identity, sequence number (stream frames) and query type.
struct Line {
    identity: String,
    qname: String,
    qtype: String,
}

fn parse(line: &str) -> Line {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k}: {line}"))
            .to_owned()
    };
    Line {
        identity: s("identity"),
        qname: s("query-name"),
        qtype: s("query-type"),
    }
}

/// Checks that the records of connection `conn` in the output are what its frames give
/// under the generations' filters, switched at one point each, in order: walking the
/// frames, the earliest generation (not before the current one) whose filter agrees with
/// what happened to the frame (written or not) must exist. Returns the last generation
/// the stream reached.
fn check_stream(conn: &str, seqs: &[u64], gens: &[Chain]) -> usize {
    let mut g = 0;
    let mut next = 0;
    for seq in 0..FRAMES {
        let written = seqs.get(next) == Some(&seq);
        if written {
            next += 1;
        }
        let qtype = QTYPES[(seq % 5) as usize].1;
        match (g..gens.len()).find(|&k| gens[k].keeps(qtype) == written) {
            Some(k) => g = k,
            None => panic!(
                "{conn}: frame {seq} ({qtype}) {} although generation {g} ({:?}) and every \
                 later one {}",
                if written { "written" } else { "missing" },
                gens[g],
                if written { "drop it" } else { "keep it" }
            ),
        }
    }
    assert_eq!(
        next,
        seqs.len(),
        "{conn}: records out of order or repeated after frame {:?}",
        seqs.get(next)
    );
    g
}

// ---------------------------------------------------------------------------------------

#[test]
fn reload_under_load_loses_nothing_and_closes_no_sender() {
    let Some(loadgen) = loadgen() else {
        return;
    };
    let dir = TempDir::new("reload");
    let (ca1, ca2) = (Ca::new("reload-ca-1"), Ca::new("reload-ca-2"));
    let (cert, key) = ca1
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "srv");
    let ports = Ports {
        tcp: free_port(),
        tls: free_port(),
        metrics: free_port(),
        collector: free_port(),
        unix: dir.path("in.sock"),
        cert,
        key,
    };
    let collector = Collector::start(ports.collector);
    let (tcp_file, unix_file) = (dir.path("tcp.fstrm"), dir.path("unix.fstrm"));
    write_fstrm(&tcp_file, "tcp");
    write_fstrm(&unix_file, "unix");

    // Generation 0, then the ten rewrites; `gens` is the filter of each generation.
    let first = step(Chain::None);
    let steps = [
        step(Chain::Drop(&["AAAA"])),
        Step {
            forward: true,
            ..step(Chain::Drop(&["AAAA"]))
        },
        Step {
            forward: true,
            ..step(Chain::Drop(&["MX", "TXT"]))
        },
        Step {
            forward: true,
            rotate_tls: true,
            ..step(Chain::Drop(&["MX", "TXT"]))
        },
        Step {
            forward: true,
            invalid: true,
            ..step(Chain::Drop(&["MX", "TXT"]))
        },
        step(Chain::Keep(&["A", "NS"])),
        Step {
            prefilter: true,
            ..step(Chain::None)
        },
        Step {
            prefilter: true,
            ..step(Chain::Drop(&["NS"]))
        },
        Step {
            prefilter: true,
            forward: true,
            ..step(Chain::Drop(&["NS"]))
        },
        step(Chain::None),
    ];
    let cfg = dir.path("receiver.yaml");
    std::fs::write(&cfg, config(&ports, &first)).unwrap();
    let cfg_s = cfg.to_str().unwrap().to_owned();
    let r = Launch::new(&["-c", &cfg_s]).start();
    let m = ports.metrics;

    // Before the streams: a marker (passes: no prefilter yet) and a TLS stream on the first
    // certificate.
    let mut extra_frames = 0u64;
    let mut markers_written = 0u64;
    let marker = |n: u32| vec![frame("marker", &format!("m{n}.marker.test."), 1, 1)];
    send_bidi(&Target::Tcp(ports.tcp), &marker(0), Ending::Stop);
    extra_frames += 1;
    markers_written += 1;
    let tls_frames = |n: u16| -> Vec<Vec<u8>> {
        (0..5)
            .map(|i| frame("tls", &format!("t{n}-{i}.tls.test."), 1, i))
            .collect()
    };
    tls_send(&r, ports.tls, &ca1.cert_pem, &tls_frames(0)).expect("TLS with the first CA");
    extra_frames += 5;

    let tcp = start_loadgen(
        &loadgen,
        &["--tcp", &format!("127.0.0.1:{}", ports.tcp)],
        &tcp_file,
    );
    let unix = start_loadgen(&loadgen, &["-u", ports.unix.to_str().unwrap()], &unix_file);
    // Both streams are flowing before the first reload.
    wait_until(
        DEADLINE,
        || {
            let out = r.lines_so_far();
            out > 2_000
        },
        || format!("the streams did not start: {}", r.stderr()),
    );

    let mut gens = vec![first.chain];
    let mut generation = 0u64;
    let mut forwarded_before = 0usize;
    let mut removals = 0usize;
    for (i, s) in steps.iter().enumerate() {
        // Each generation runs for a while under the load before the next reload.
        let seen = r.lines_so_far();
        wait_until(
            DEADLINE,
            || r.lines_so_far() > seen + 3_000,
            || format!("step {i}: the output stalled: {}", r.stderr()),
        );
        if s.rotate_tls {
            let (c, k) = ca2
                .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
                .write(&dir.0, "srv");
            assert_eq!((&c, &k), (&ports.cert, &ports.key), "rotated in place");
        }
        std::fs::write(&cfg, config(&ports, s)).unwrap();
        signal(r.pid(), "HUP");
        if s.invalid {
            r.wait_log_count("reload refused", 2);
            let log = r.stderr();
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("reload refused"))
                .collect();
            for key in ["transforms.filtering.drop-qtypes", "allow-from[0]"] {
                assert!(
                    lines.iter().any(|l| l.contains(key)),
                    "{key} is named: {lines:?}"
                );
            }
            assert!(
                lines.iter().all(|l| l.contains(&cfg_s)),
                "the file is named: {lines:?}"
            );
            let page = metrics_page(m);
            assert_eq!(
                metric(&page, "dnstap_receiver_config_reload_failures_total"),
                1
            );
            assert_eq!(
                metric(&page, "dnstap_receiver_config_generation"),
                generation
            );
            continue;
        }
        generation += 1;
        gens.push(s.chain);
        // The switch points: the writer and each reader log the generation they take.
        r.wait_log(&format!(
            "writer: configuration generation {generation} in force"
        ));
        for reader in 0..2 {
            r.wait_log(&format!(
                "reader {reader}: configuration generation {generation} in force"
            ));
        }
        let page = metrics_page(m);
        assert_eq!(
            metric(&page, "dnstap_receiver_config_generation"),
            generation,
            "step {i}"
        );
        assert_eq!(
            metric(&page, "dnstap_receiver_config_reloads_total"),
            generation
        );
        let was_forwarding = steps[..i]
            .iter()
            .rev()
            .find(|p| !p.invalid)
            .map_or(first.forward, |p| p.forward);
        match (was_forwarding, s.forward) {
            (false, true) => {
                // Added: records reach the collector.
                let from = collector.count();
                wait_until(
                    DEADLINE,
                    || collector.count() > from + 100,
                    || format!("step {i}: nothing forwarded: {}", r.stderr()),
                );
            }
            (true, false) => {
                // Removed: what it held is delivered and its connection closed.
                removals += 1;
                wait_until(
                    DEADLINE,
                    || collector.closed.load(Ordering::Acquire) >= removals,
                    || {
                        format!(
                            "step {i}: the forward connection stayed open: {}",
                            r.stderr()
                        )
                    },
                );
                if removals == 1 {
                    forwarded_before = collector.count();
                }
            }
            _ => {}
        }
        if s.rotate_tls {
            // New handshakes see the new certificate only.
            assert!(
                tls_send(&r, ports.tls, &ca1.cert_pem, &tls_frames(1)).is_err(),
                "a client trusting only the old CA still got through"
            );
            tls_send(&r, ports.tls, &ca2.cert_pem, &tls_frames(2)).expect("TLS with the new CA");
            extra_frames += 5;
        }
        if s.prefilter {
            // The readers' prefilter changed: a marker no longer passes.
            send_bidi(&Target::Tcp(ports.tcp), &marker(i as u32 + 1), Ending::Stop);
            extra_frames += 1;
        }
    }
    // Back without a prefilter: a marker passes again.
    send_bidi(&Target::Tcp(ports.tcp), &marker(99), Ending::Stop);
    extra_frames += 1;
    markers_written += 1;
    // Every reload happened while both streams were still running.
    let (mut tcp, mut unix) = (tcp, unix);
    assert!(
        tcp.try_wait().unwrap().is_none() && unix.try_wait().unwrap().is_none(),
        "the streams ended before the last reload (too short for this machine?)"
    );
    let (tcp_report, unix_report) = (finish_loadgen(tcp, "tcp"), finish_loadgen(unix, "unix"));
    for (what, rep) in [("tcp", &tcp_report), ("unix", &unix_report)] {
        assert_eq!(rep["failed_connections"], 0, "{what}: {rep}");
        assert_eq!(rep["messages"], FRAMES, "{what}: {rep}");
    }
    let total = 2 * FRAMES + extra_frames;
    wait_until(
        DEADLINE,
        || {
            let p = metrics_page(m);
            metric(&p, "dnstap_receiver_frames_received_total") == total
                && metric(&p, "dnstap_receiver_messages_written_total")
                    + metric(&p, "dnstap_receiver_messages_filtered_total")
                    + metric(&p, "dnstap_receiver_records_filtered_total")
                    + metric(&p, "dnstap_receiver_messages_dropped_total")
                    == total
        },
        || format!("counters never added up: {}", metrics_page(m)),
    );
    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);

    // Exact accounting from the final statistics line.
    let (frames, written, filtered, tfiltered, dropped) = (
        done.stat("frames"),
        done.stat("written"),
        done.stat("filtered"),
        done.stat("transform-filtered"),
        done.stat("dropped"),
    );
    assert_eq!(frames, total, "{}", done.counters());
    assert_eq!(dropped, 0, "{}", done.counters());
    assert_eq!(done.stat("decode-errors"), 0, "{}", done.counters());
    assert_eq!(
        written + filtered + tfiltered + dropped,
        frames,
        "{}",
        done.counters()
    );
    let out: Vec<Line> = support::receiver::lines(&done.stdout)
        .iter()
        .map(|l| parse(l))
        .collect();
    assert_eq!(out.len() as u64, written, "{}", done.counters());

    // No sender connection was closed on error (the only error: the TLS client refused).
    let errors: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("connection closed:") && !l.contains(": tls "))
        .filter(|l| !l.contains("tls 127.0.0.1"))
        .collect();
    assert!(errors.is_empty(), "connections closed: {errors:?}");

    // The oracle, per connection.
    for conn in ["tcp", "unix"] {
        let seqs: Vec<u64> = out
            .iter()
            .filter(|l| l.identity == conn)
            .map(|l| {
                let n = l.qname.strip_prefix('q').and_then(|r| r.split('.').next());
                let seq: u64 = n.and_then(|n| n.parse().ok()).expect("a stream name");
                assert_eq!(QTYPES[(seq % 5) as usize].1, l.qtype, "{}", l.qname);
                seq
            })
            .collect();
        // The stream outlived the reloads: it must end under the last generation.
        let last = check_stream(conn, &seqs, &gens);
        assert_eq!(
            last,
            gens.len() - 1,
            "{conn}: the stream did not reach the last generation"
        );
    }
    let markers = out.iter().filter(|l| l.identity == "marker").count() as u64;
    assert_eq!(markers, markers_written, "markers: {}", done.counters());
    let prefiltered = steps.iter().filter(|s| s.prefilter).count() as u64;
    assert_eq!(
        filtered, prefiltered,
        "only the markers sent under the prefilter were prefiltered"
    );
    let tls = out.iter().filter(|l| l.identity == "tls").count();
    assert_eq!(tls, 10, "TLS streams on the old and the new certificate");

    // What the collector got was written to stdout too (same records, its own copy).
    let stdout_names: std::collections::HashSet<&str> =
        out.iter().map(|l| l.qname.as_str()).collect();
    let fwd = collector.lines.lock().unwrap().clone();
    assert!(fwd.len() > forwarded_before && forwarded_before > 0);
    for l in &fwd {
        let rec = parse(l);
        assert!(
            stdout_names.contains(rec.qname.as_str()),
            "forwarded but not written: {l}"
        );
    }
    assert_eq!(collector.accepted.load(Ordering::Acquire), 2);
}

/// One TLS stream of `payloads` to the receiver, trusting `ca_pem` only: Err when the
/// handshake (or anything after it) fails.
fn tls_send(r: &Receiver, port: u16, ca_pem: &str, payloads: &[Vec<u8>]) -> Result<(), String> {
    let cfg = client_config(ca_pem, None, &[]);
    let mut c = tls_connect(port, &cfg);
    ready_accept(&mut c).map_err(|e| e.to_string())?;
    send_data(&mut c, true, payloads, true).map_err(|e| format!("{e}: {}", r.stderr()))?;
    c.conn.send_close_notify();
    let _ = std::io::Write::flush(&mut c);
    Ok(())
}

/// The oracle itself: a switch back to an earlier filter, or a record the filters cannot
/// explain, is caught.
#[test]
fn the_oracle_refuses_what_no_switch_point_explains() {
    let gens = [Chain::None, Chain::Drop(&["AAAA"])];
    // Everything up to 10, then AAAA dropped: explained (switch at frame 10).
    let ok: Vec<u64> = (0..FRAMES)
        .filter(|&s| s < 10 || QTYPES[(s % 5) as usize].1 != "AAAA")
        .collect();
    assert_eq!(check_stream("t", &ok, &gens), 1);
    // AAAA dropped early, then written again: the filters never go back.
    let back: Vec<u64> = (0..FRAMES)
        .filter(|&s| !(10..20).contains(&s) || QTYPES[(s % 5) as usize].1 != "AAAA")
        .collect();
    let r = std::panic::catch_unwind(|| check_stream("t", &back, &gens));
    assert!(r.is_err(), "a switch back was accepted");
    // A frame lost (an A record missing): no filter drops it.
    let lost: Vec<u64> = (0..FRAMES).filter(|&s| s != 5).collect();
    let r = std::panic::catch_unwind(|| check_stream("t", &lost, &gens));
    assert!(r.is_err(), "a lost record was accepted");
}

/// With several writer threads (stdout only), a reload changes the format and the chains at
/// one batch: everything sent before is written the old way, everything sent after the
/// reload the new way. A reload that would need one writer (a forward output) is refused.
#[test]
fn several_writers_take_a_new_format_and_chain_at_one_batch() {
    let dir = TempDir::new("reload-ordered");
    let port = free_port();
    let cfg = dir.path("receiver.yaml");
    let base = format!(
        "threads: 1\nwriters: 2\ninputs:\n  - tcp: 127.0.0.1:{port}\n\
         outputs:\n  - stdout:\n      format: json\n"
    );
    std::fs::write(&cfg, &base).unwrap();
    let cfg_s = cfg.to_str().unwrap().to_owned();
    let r = Launch::new(&["-c", &cfg_s]).start();
    let batch = |who: &str| -> Vec<Vec<u8>> {
        (0..50u64)
            .map(|i| {
                let (qtype, _) = QTYPES[(i % 5) as usize];
                frame(who, &format!("n{i}.{who}.test."), qtype, i as u16)
            })
            .collect()
    };
    send_bidi(&Target::Tcp(port), &batch("before"), Ending::Stop);
    r.wait_lines(50, DEADLINE);

    let text = base.replace("format: json", "format: text")
        + "transforms:\n  filtering:\n    drop-qtypes: [AAAA]\n";
    std::fs::write(&cfg, &text).unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("reload: configuration generation 1 applied");
    send_bidi(&Target::Tcp(port), &batch("after"), Ending::Stop);
    r.wait_lines(90, DEADLINE);
    r.wait_log("writers: configuration generation 1 in force");

    // Needs one writer (no `writers:` key, a forward output): refused, the running
    // configuration kept.
    let fwd = format!(
        "threads: 1\ninputs:\n  - tcp: 127.0.0.1:{port}\noutputs:\n  - stdout:\n      \
         format: text\n  - forward:\n      remote: [127.0.0.1:{}]\n",
        free_port()
    );
    std::fs::write(&cfg, fwd).unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("reload refused");
    assert!(
        r.stderr().contains("writer threads run stdout"),
        "{}",
        r.stderr()
    );

    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let lines = support::receiver::lines(&done.stdout);
    assert_eq!(lines.len(), 90, "{}", done.counters());
    assert!(
        lines[..50]
            .iter()
            .all(|l| l.starts_with('{') && l.contains("\"before\"")),
        "{lines:?}"
    );
    assert!(
        lines[50..]
            .iter()
            .all(|l| !l.starts_with('{') && l.contains("after") && !l.contains(" AAAA ")),
        "{lines:?}"
    );
    assert_eq!(done.stat("transform-filtered"), 10, "{}", done.counters());
}

/// A list file is read again at each reload: a new list applies from the reload on; a list
/// that fails to load is refused with its file and line, and the list in force stays.
#[test]
fn list_files_reload_and_a_broken_list_keeps_the_old_one() {
    let dir = TempDir::new("reload-lists");
    let port = free_port();
    let list = dir.path("drop.txt");
    std::fs::write(&list, "# dropped domains\na.test\n").unwrap();
    let cfg = dir.path("receiver.yaml");
    std::fs::write(
        &cfg,
        format!(
            "threads: 1\nwriters: 1\ninputs:\n  - tcp: 127.0.0.1:{port}\n\
             outputs:\n  - stdout:\n      format: json\n\
             transforms:\n  filtering:\n    drop-domain-file: {}\n",
            list.display()
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap().to_owned();
    let r = Launch::new(&["-c", &cfg_s]).start();
    // One name under each domain, per round; the round is in the identity.
    let round = |n: u32| -> Vec<Vec<u8>> {
        ["x.a.test.", "x.b.test.", "x.c.test."]
            .iter()
            .map(|q| frame(&format!("round{n}"), q, 1, 1))
            .collect()
    };
    send_bidi(&Target::Tcp(port), &round(0), Ending::Stop);
    r.wait_lines(2, DEADLINE);

    std::fs::write(&list, "b.test\n").unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("writer: configuration generation 1 in force");
    send_bidi(&Target::Tcp(port), &round(1), Ending::Stop);
    r.wait_lines(4, DEADLINE);

    std::fs::write(&list, "c.test\nbad..name\n").unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("reload refused");
    let log = r.stderr();
    let line = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(
        line.contains(&format!("{}: line 2", list.display())),
        "file and line named: {line}"
    );
    send_bidi(&Target::Tcp(port), &round(2), Ending::Stop);
    r.wait_lines(6, DEADLINE);

    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let mut got: Vec<(String, String)> = support::receiver::lines(&done.stdout)
        .iter()
        .map(|l| {
            let p = parse(l);
            (p.identity, p.qname)
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = [
        ("round0", "x.b.test."),
        ("round0", "x.c.test."),
        ("round1", "x.a.test."),
        ("round1", "x.c.test."),
        ("round2", "x.a.test."),
        ("round2", "x.c.test."),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want, "{}", done.stderr);
}

/// A forward output replaced by a reload keeps its spill directory until it has finished:
/// a new output cannot open the same directory in that reload, which is refused.
#[test]
fn a_replaced_output_keeps_its_spill_directory_to_itself() {
    let dir = TempDir::new("reload-spill");
    let (port, collector) = (free_port(), free_port());
    let cfg = dir.path("receiver.yaml");
    let text = |format: &str| {
        format!(
            "threads: 1\ninputs:\n  - tcp: 127.0.0.1:{port}\noutputs:\n  - forward:\n      \
             remote: [127.0.0.1:{collector}]\n      format: {format}\n      overflow: spill\n      \
             spill-dir: {}\n",
            dir.path("spill").display()
        )
    };
    std::fs::write(&cfg, text("json")).unwrap();
    let cfg_s = cfg.to_str().unwrap().to_owned();
    let r = Launch::new(&["-c", &cfg_s]).start();
    std::fs::write(&cfg, text("text")).unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("reload refused");
    assert!(r.stderr().contains("spill directory"), "{}", r.stderr());
    // The same output unchanged is kept as it runs: no conflict.
    std::fs::write(&cfg, text("json")).unwrap();
    signal(r.pid(), "HUP");
    r.wait_log("reload: configuration generation 1 applied");
    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

/// On each I/O back-end, the readers take a new prefilter and a new `allow-from` between
/// receives: a connection open across the reload stays open and its next frames meet the
/// new prefilter; a new connection meets the new `allow-from`.
#[test]
fn readers_take_a_new_prefilter_and_allow_from_without_closing_a_connection() {
    for io in support::receiver::backends("reload readers") {
        let dir = TempDir::new("reload-readers");
        let port = free_port();
        let cfg = dir.path("receiver.yaml");
        let base =
            format!("threads: 1\nwriters: 1\nio: {io}\ninputs:\n  - tcp: 127.0.0.1:{port}\n");
        std::fs::write(&cfg, &base).unwrap();
        let cfg_s = cfg.to_str().unwrap().to_owned();
        let r = Launch::new(&["-c", &cfg_s, "--format", "json"]).start();
        let one = |q: &str| vec![frame(io, q, 1, 1)];
        let mut open = send_bidi(&Target::Tcp(port), &one("q1.test."), Ending::Open).unwrap();
        r.wait_lines(1, DEADLINE);

        std::fs::write(
            &cfg,
            format!("{base}filter:\n  qname-regex: q\nallow-from: [192.0.2.0/24]\n"),
        )
        .unwrap();
        signal(r.pid(), "HUP");
        r.wait_log("reader 0: configuration generation 1 in force");
        // The open connection: its next frames meet the new prefilter.
        send_data(
            &mut open,
            false,
            &[one("m2.test.").remove(0), one("q2.test.").remove(0)],
            true,
        )
        .unwrap_or_else(|e| panic!("{io}: the open connection: {e}: {}", r.stderr()));
        drop(open);
        r.wait_lines(2, DEADLINE);
        // A new connection from 127.0.0.1 is not in the new allow-from.
        let mut c = support::receiver::connect(&Target::Tcp(port));
        let mut b = [0u8; 16];
        let n = std::io::Read::read(&mut c, &mut b).unwrap_or(0);
        assert_eq!(n, 0, "{io}: refused by the new allow-from");

        let done = r.stop();
        assert_eq!(done.code, Some(0), "{io}: {}", done.stderr);
        let names: Vec<String> = support::receiver::lines(&done.stdout)
            .iter()
            .map(|l| parse(l).qname)
            .collect();
        assert_eq!(names, ["q1.test.", "q2.test."], "{io}: {}", done.stderr);
        assert_eq!(done.stat("filtered"), 1, "{io}: {}", done.counters());
        assert_eq!(done.stat("refused-acl"), 1, "{io}: {}", done.counters());
        assert_eq!(done.stat("errors"), 0, "{io}: {}", done.counters());
    }
}
