//! The Grafana dashboard (docs/grafana/dnstap-receiver.json) against a real Prometheus: a
//! receiver with a TCP and a unix input takes synthetic load from two loadgen processes,
//! Prometheus scrapes it every second, and every query of every panel goes through
//! Prometheus' HTTP API and must return data. A typo'd metric or label name returns an
//! empty result and fails here.
//! The receiver runs the latency transform, so the per-identity latency panel
//! (`dnstap_latency_seconds`) must return data as well.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::receiver::{free_port, http_get, Receiver, TempDir, BIN};

/// The latency transform's histogram (per identity).
const LATENCY_METRIC: &str = "dnstap_latency_seconds";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `(panel title, expr)` of the dashboard, rows included.
fn panel_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("docs/grafana/dnstap-receiver.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    let mut todo: Vec<&serde_json::Value> = dash["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = todo.pop() {
        if let Some(inner) = p["panels"].as_array() {
            todo.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?").to_string();
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("every target has an expr");
            out.push((title.clone(), expr.to_string()));
        }
    }
    out
}

#[test]
fn dashboard_is_well_formed() {
    let q = panel_queries();
    assert!(q.len() >= 20, "only {} queries", q.len());
    for needle in [
        "input_frames_total",
        "output_records_written_total",
        "messages_dropped_total",
        "records_filtered_total",
        "output_dropped_total",
        "queue_depth",
        "dns_response_latency_seconds_bucket",
        LATENCY_METRIC,
        "dns_responses_total",
        "dns_qtype_messages_total",
        "identity_messages_total",
    ] {
        assert!(
            q.iter().any(|(_, e)| e.contains(needle)),
            "no panel queries {needle}"
        );
    }
}

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn loadgen_bin() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    p.is_file().then_some(p)
}

fn encode(q: &str) -> String {
    let mut enc = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

/// The result of an instant query: the number of series (or samples) it returned.
fn query(port: u16, q: &str) -> usize {
    let (st, body) = http_get(port, &format!("/api/v1/query?query={}", encode(q)), None);
    assert_eq!(st, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("API JSON");
    assert_eq!(v["status"], "success", "{q}: {body}");
    match &v["data"]["result"] {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Null => 0,
        _ => 1, // a scalar
    }
}

#[test]
fn every_panel_query_returns_data_from_prometheus() {
    let test = "dashboard queries";
    if !support::skip::require(have("prometheus"), test, || {
        "prometheus not found in PATH (Debian package prometheus)".into()
    }) {
        return;
    }
    let Some(loadgen) = loadgen_bin() else {
        support::skip::missing(
            test,
            "the loadgen binary is not built beside the receiver (cargo test --workspace)",
        );
        return;
    };
    let dir = TempDir::new("dashboard");
    let (port, mport, pport) = (free_port(), free_port(), free_port());
    let sock = dir.path("d.sock");
    let cfg = dir.path("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\nmetrics:\n  listen: 127.0.0.1:{mport}\ntransforms:\n  latency: {{measure-latency: true}}\n",
            sock.display()
        ),
    )
    .unwrap();
    let rx = Receiver::start(&["-c", cfg.to_str().unwrap(), "--format", "json"]);

    let mut children = Kill(Vec::new());
    // Paced load on both inputs for as long as the test needs it (killed at the end).
    for target in [
        vec!["--tcp".to_string(), format!("127.0.0.1:{port}")],
        vec!["-u".to_string(), sock.display().to_string()],
    ] {
        let c = Command::new(&loadgen)
            .args([
                "--synth",
                "--seed",
                "3",
                "--rate",
                "5000",
                "--duration",
                "240",
                "-q",
            ])
            .args(&target)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn loadgen");
        children.0.push(c);
    }
    let prom_cfg = dir.path("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: receiver\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )
    .unwrap();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    children.0.push(prom);
    let deadline = Duration::from_secs(120);
    let t0 = Instant::now();
    while !(std::net::TcpStream::connect(("127.0.0.1", pport)).is_ok()
        && http_get(pport, "/-/ready", None).0 == 200)
    {
        assert!(t0.elapsed() < deadline, "prometheus not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Enough scrapes under load for rate() over the panels' window.
    let t0 = Instant::now();
    while query(
        pport,
        "count_over_time(dnstap_receiver_frames_received_total[1m]) >= 5",
    ) == 0
    {
        assert!(
            t0.elapsed() < deadline,
            "prometheus did not scrape the receiver"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let t0 = Instant::now();
    let mut exposition = String::new();
    while !exposition.contains(LATENCY_METRIC) && t0.elapsed() < Duration::from_secs(20) {
        exposition = http_get(mport, "/metrics", None).1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        exposition.contains(LATENCY_METRIC),
        "the receiver runs the latency transform but exposes no {LATENCY_METRIC}"
    );
    let mut empty = Vec::new();
    let queries = panel_queries();
    for (title, expr) in &queries {
        // Grafana's interval variable: at least four scrapes.
        let q = expr.replace("$__rate_interval", "15s");
        let t0 = Instant::now();
        let mut n = query(pport, &q);
        // Under load every series is there at once; a little patience for the rate windows.
        while n == 0 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(500));
            n = query(pport, &q);
        }
        if n == 0 {
            empty.push(format!("{title}: {q}"));
        }
    }
    drop(children);
    let _ = rx.stop();
    assert!(
        empty.is_empty(),
        "panel queries without data (a metric or label name wrong?):\n{}",
        empty.join("\n")
    );
    eprintln!(
        "dashboard: {} panel queries checked against Prometheus",
        queries.len()
    );
}
