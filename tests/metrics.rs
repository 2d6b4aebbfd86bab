//! The Prometheus endpoint against independent checkers: `promtool check metrics` on what
//! it serves during a replay, a real `prometheus` server scraping it during a `loadgen` run
//! (its HTTP API must show counters that add up and match what was sent), basic auth, and
//! TLS through a rustls client that trusts only a certificate made here by `openssl`.
//!
//! Needs `promtool` and `prometheus` (Debian package prometheus) and `openssl`; without them
//! the tests print why and pass, except with `CI=true`, where they fail.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::lab::{capture, capture_payloads};
use support::receiver::{
    free_port, http_get, send_bidi, split_response, Ending, Receiver, Target, TempDir, BIN,
};
use support::skip;

/// True when `tool` runs; else the skip helper decides (a NOTICE by hand, a failure under
/// `CI=true`).
fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    skip::require(ok, test, || {
        format!("{tool} not found in PATH (Debian package prometheus / openssl)")
    })
}

/// The value of an unlabelled sample, or the sum over every label set of a family.
fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The sample of `dnstap_receiver_{family}` whose one label `key` is `v`.
fn labelled(text: &str, family: &str, key: &str, v: &str) -> u64 {
    value(text, &format!("dnstap_receiver_{family}{{{key}=\"{v}\"}}"))
}

/// `promtool check metrics` on `text`: (passed, its output).
fn promtool(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), msg)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn promtool_accepts_the_page_during_and_after_a_replay() {
    if !have("promtool", "promtool_accepts_the_page") {
        return;
    }
    // One writer, then two (each counts traffic on its own; the page merges them).
    for writers in ["1", "2"] {
        replay_and_check_the_page(writers);
    }
}

fn replay_and_check_the_page(writers: &str) {
    let (port, mport) = (free_port(), free_port());
    let mflag = format!("127.0.0.1:{mport}");
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--metrics",
        &mflag,
        "--io",
        "epoll",
        "--writers",
        writers,
    ]);
    let payloads = capture_payloads(&capture("unbound-tcp.fstrm"));
    let n = payloads.len() as u64;
    // Scrape while two senders run, so the page is checked with counters in motion.
    let during = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| send_bidi(&Target::Tcp(port), &payloads, Ending::Stop));
        }
        http_get(mport, "/metrics", None)
    });
    assert_eq!(during.0, 200);
    let (ok, msg) = promtool(&during.1);
    assert!(
        ok,
        "promtool rejected the page during the replay: {msg}\n{}",
        during.1
    );

    let t0 = Instant::now();
    let after = loop {
        let (_, text) = http_get(mport, "/metrics", None);
        if value(&text, "dnstap_receiver_messages_written_total") == 2 * n {
            break text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not all written:\n{text}"
        );
        // A poll step; the loop has a deadline.
        std::thread::sleep(Duration::from_millis(50));
    };
    let (ok, msg) = promtool(&after);
    assert!(ok, "promtool rejected the page: {msg}\n{after}");
    let v = |name: &str| value(&after, &format!("dnstap_receiver_{name}"));
    assert_eq!(v("frames_received_total"), 2 * n);
    assert_eq!(v("input_frames_total"), 2 * n);
    assert_eq!(v("connections_accepted_total"), 2);
    assert_eq!(
        v("messages_dropped_total") + v("messages_filtered_total"),
        0
    );
    // Every decoded message lands exactly once in each traffic dimension and identity.
    for family in [
        "dns_messages_total",
        "dns_protocol_messages_total",
        "dns_family_messages_total",
        "dns_qtype_messages_total",
        "identity_messages_total",
    ] {
        assert_eq!(v(family), 2 * n, "{family}");
    }
    assert_eq!(
        v("identity_bytes_total"),
        2 * payloads.iter().map(|p| p.len() as u64).sum::<u64>()
    );
    // No series twice (two writers' identities are merged by label).
    let series: Vec<&str> = after
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
        .collect();
    let distinct: std::collections::HashSet<&&str> = series.iter().collect();
    assert_eq!(
        distinct.len(),
        series.len(),
        "writers {writers}: a series repeats"
    );
    // The -v summary line says the same as the page (same counters).
    let fin = rx.stop();
    let last = support::receiver::last_stat(&fin.stderr, "written");
    assert_eq!(last, 2 * n, "writers {writers}: {}", fin.stderr);
}

#[test]
fn basic_auth_refuses_without_and_serves_with_the_password() {
    let dir = TempDir::new("metrics-auth");
    let (port, mport) = (free_port(), free_port());
    let pwfile = dir.path("pw");
    write(&pwfile, "s3cret\n");
    let cfg = dir.path("c.yaml");
    write(
        &cfg,
        &format!(
            "metrics:\n  listen: 127.0.0.1:{mport}\n  basic-auth:\n    user: prom\n    \
             password-file: {}\n",
            pwfile.display()
        ),
    );
    let _rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(http_get(mport, "/metrics", None).0, 401);
    // base64("prom:wrong"), base64("prom:s3cret")
    assert_eq!(http_get(mport, "/metrics", Some("cHJvbTp3cm9uZw==")).0, 401);
    let (st, body) = http_get(mport, "/metrics", Some("cHJvbTpzM2NyZXQ="));
    assert_eq!(st, 200);
    assert!(
        body.contains("dnstap_receiver_frames_received_total 0\n"),
        "{body}"
    );
    assert_eq!(http_get(mport, "/other", Some("cHJvbTpzM2NyZXQ=")).0, 404);
}

#[test]
fn protocol_errors_are_counted_by_kind_per_input() {
    let (port, mport) = (free_port(), free_port());
    let mflag = format!("127.0.0.1:{mport}");
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--metrics",
        &mflag,
    ]);
    // A data frame before START, then a control frame of 4096 bytes (the limit is 512).
    support::receiver::send_raw(&Target::Tcp(port), b"\0\0\0\x05hello");
    support::receiver::send_raw(&Target::Tcp(port), b"\0\0\0\0\0\0\x10\0\0\0");
    rx.wait_closed(2);
    let (_, text) = http_get(mport, "/metrics", None);
    let kind = |k: &str| labelled(&text, "connection_errors_total", "kind", k);
    assert_eq!(kind("data_before_start"), 1, "{text}");
    assert_eq!(kind("control_frame_too_large"), 1, "{text}");
    assert_eq!(value(&text, "dnstap_receiver_connection_errors_total"), 2);
    let input = format!("{{input=\"tcp 127.0.0.1:{port}\"}}");
    assert_eq!(
        value(
            &text,
            &format!("dnstap_receiver_input_connections_accepted_total{input}")
        ),
        2
    );
    assert_eq!(
        value(&text, &format!("dnstap_receiver_input_bytes_total{input}")),
        19
    );
}

/// Refusals before any Frame Streams data are counted by reason: a peer outside
/// `allow-from`, and an admitted one that never sends READY within `handshake-timeout`.
#[test]
fn refused_connections_are_counted_by_reason() {
    let dir = TempDir::new("metrics-refused");
    let (port, mport) = (free_port(), free_port());
    let cfg = dir.path("c.yaml");
    write(
        &cfg,
        &format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\nallow-from: [127.0.0.2/32]\n\
             handshake-timeout: 1\nmetrics:\n  listen: 127.0.0.1:{mport}\n"
        ),
    );
    let rx = Receiver::start(&["-c", cfg.to_str().unwrap()]);
    let dst: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..3 {
        let mut s = support::receiver::connect_from("127.0.0.1".parse().unwrap(), dst).unwrap();
        let mut b = [0u8; 8];
        assert!(
            matches!(s.read(&mut b), Ok(0) | Err(_)),
            "a refused peer got bytes"
        );
    }
    // Admitted, then silent: closed by the handshake timeout.
    let mut s = support::receiver::connect_from("127.0.0.2".parse().unwrap(), dst).unwrap();
    let mut b = [0u8; 8];
    assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    rx.wait_closed(1);
    let (_, text) = http_get(mport, "/metrics", None);
    let reason = |r: &str| labelled(&text, "connections_refused_total", "reason", r);
    assert_eq!(reason("allow_list"), 3, "{text}");
    assert_eq!(reason("handshake_timeout"), 1, "{text}");
    assert_eq!(reason("tls"), 0, "{text}");
    assert_eq!(
        labelled(
            &text,
            "connection_errors_total",
            "kind",
            "handshake_timeout"
        ),
        1,
        "{text}"
    );
    if have("promtool", "refused_connections_are_counted_by_reason") {
        let (ok, out) = promtool(&text);
        assert!(ok, "{out}");
    }
}

#[test]
fn bad_metrics_settings_stop_start_up_naming_the_key() {
    let dir = TempDir::new("metrics-bad");
    let cfg = dir.path("c.yaml");
    write(
        &cfg,
        "metrics:\n  listen: 127.0.0.1:1\n  tls-cert: /nonexistent.pem\n",
    );
    let out = support::receiver::run_to_exit(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("metrics.tls-key"), "{}", out.stderr);
    write(
        &cfg,
        "metrics:\n  listen: 127.0.0.1:0\n  tls-cert: /nonexistent.pem\n  tls-key: /x.pem\n",
    );
    let out = support::receiver::run_to_exit(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("metrics.tls-cert"), "{}", out.stderr);
    let out = support::receiver::run_to_exit(&["--metrics", "nope"]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("--metrics"), "{}", out.stderr);
}

/// A self-signed certificate for 127.0.0.1 made by openssl: (cert, key).
fn make_cert(dir: &TempDir) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.path("cert.pem"), dir.path("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl req failed");
    (cert, key)
}

#[test]
fn tls_endpoint_serves_to_a_client_that_trusts_its_certificate() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    if !have("openssl", "tls_endpoint") {
        return;
    }
    let dir = TempDir::new("metrics-tls");
    let (cert, key) = make_cert(&dir);
    let (port, mport) = (free_port(), free_port());
    let cfg = dir.path("c.yaml");
    write(
        &cfg,
        &format!(
            "metrics:\n  listen: 127.0.0.1:{mport}\n  tls-cert: {}\n  tls-key: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    // The line comes after the start-up lines Receiver::start waits for: wait for it too.
    rx.wait_log("metrics: https://");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    // The server ends with close_notify: a clean end of stream.
    tls.read_to_end(&mut resp)
        .expect("TLS read to close_notify");
    let (st, body) = split_response(&resp);
    assert_eq!(st, 200);
    assert!(body.contains("# TYPE dnstap_receiver_frames_received_total counter"));

    // Plain HTTP on the TLS port gets no page.
    let mut plain = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("dnstap_receiver_"));
}

/// A `prometheus` server on loopback, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    fn start(target_port: u16) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let port = free_port();
        let cfg = dir.path("prometheus.yml");
        write(
            &cfg,
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: receiver\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: \
                 ['127.0.0.1:{target_port}']\n"
            ),
        );
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let t0 = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http_get(port, "/-/ready", None).0 == 200
            {
                return p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "prometheus not ready"
            );
            // A poll step; the loop has a deadline.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of an instant query that yields one sample (`None` when it yields none).
    fn query(&self, q: &str) -> Option<f64> {
        let mut enc = String::new();
        for b in q.bytes() {
            if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        let (st, body) = http_get(self.port, &format!("/api/v1/query?query={enc}"), None);
        assert_eq!(st, 200, "{q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("API JSON");
        assert_eq!(v["status"], "success", "{body}");
        let r = v["data"]["result"].as_array()?.first()?.clone();
        r["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace's loadgen binary, built beside the receiver (`cargo test --workspace`).
fn loadgen_bin() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    p.is_file().then_some(p)
}

#[test]
fn prometheus_sees_counters_that_add_up_to_what_loadgen_sent() {
    if !have("prometheus", "prometheus_sees_counters") {
        return;
    }
    let dir = TempDir::new("metrics-prom");
    let (port, mport) = (free_port(), free_port());
    // A filter, so that `filtered` is part of the sum too.
    let cfg = dir.path("c.yaml");
    write(
        &cfg,
        &format!(
            "filter:\n  dnstap-identities: lab-unbound\nmetrics:\n  listen: 127.0.0.1:{mport}\n"
        ),
    );
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    let prom = Prometheus::start(mport);
    let files = [capture("unbound-tcp.fstrm"), capture("bind-unix.fstrm")];
    let per_pass: u64 = files.iter().map(|f| capture_payloads(f).len() as u64).sum();
    let connections = 3u64;
    let sent = match loadgen_bin() {
        Some(lg) => {
            let out = Command::new(lg)
                .args(["--tcp", &format!("127.0.0.1:{port}")])
                .args(["-n", &connections.to_string()])
                .args(["--verify", &format!("http://127.0.0.1:{mport}/metrics")])
                .args(&files)
                .output()
                .expect("run loadgen");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "loadgen --verify failed: {err}");
            assert!(err.contains("verify: OK"), "{err}");
            connections * per_pass
        }
        None => {
            skip::missing(
                "prometheus_sees_counters (loadgen --verify)",
                &format!(
                    "loadgen binary not found beside {BIN} (run `cargo test --workspace`); \
                     sending with the test's own sender"
                ),
            );
            let payloads: Vec<Vec<u8>> = files.iter().flat_map(|f| capture_payloads(f)).collect();
            for _ in 0..connections {
                send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
            }
            connections * per_pass
        }
    };
    // Wait until Prometheus has scraped the final counters (scrape interval 1 s).
    let t0 = Instant::now();
    let received = loop {
        let r = prom.query("sum(dnstap_receiver_frames_received_total)");
        let acc = prom.query(
            "sum(dnstap_receiver_messages_written_total) + \
             sum(dnstap_receiver_messages_filtered_total) + \
             sum(dnstap_receiver_messages_dropped_total) + \
             sum(dnstap_receiver_decode_errors_total)",
        );
        // stdout writes what it holds once the queue is idle: wait for that scrape too.
        let delivered = prom.query("sum(dnstap_receiver_output_records_written_total)");
        let written = prom.query("sum(dnstap_receiver_messages_written_total)");
        if r == Some(sent as f64) && acc == r && delivered == written {
            break r.unwrap_or_default() as u64;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "prometheus never saw received={sent} with matching sum: received={r:?} sum={acc:?}\n{}",
            rx.stderr()
        );
        // A poll step; the loop has a deadline.
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(received, sent);
    let q = |e: &str| prom.query(e).map(|v| v as u64);
    let written = q("sum(dnstap_receiver_messages_written_total)").unwrap();
    let filtered = q("sum(dnstap_receiver_messages_filtered_total)").unwrap();
    assert!(
        written > 0 && filtered > 0,
        "written={written} filtered={filtered}"
    );
    assert_eq!(
        q("sum(dnstap_receiver_identity_messages_total{identity=\"lab-unbound\"})"),
        Some(written),
        "only the allowed identity is written"
    );
    assert_eq!(q("sum(dnstap_receiver_dns_messages_total)"), Some(written));
    assert_eq!(
        q("sum(dnstap_receiver_input_frames_total)"),
        Some(sent),
        "per-input counters"
    );
    assert_eq!(
        q("sum(dnstap_receiver_output_records_written_total)"),
        Some(written),
        "stdout delivered every written record"
    );
    assert_eq!(
        q("dnstap_receiver_connections_accepted_total"),
        Some(connections)
    );
    assert_eq!(q("up{job=\"receiver\"}"), Some(1));
}
