//! The `transforms:` keys end to end, against an independent oracle.
//!
//! The reference is the receiver's own `-r CAPTURE --format json-full` with no transform:
//! every record, parsed with serde_json. For each filter key the test computes, in plain
//! Rust over those parsed records, which ones the key keeps, and compares that with the
//! output of the same command with the key configured (offline mode runs the same chains as
//! the daemon). The daemon test routes one capture to two outputs (stdout and a forward
//! output to a loopback listener) with a global chain and a chain per output, and checks
//! both outputs and every counter against the oracle.
//!
//! Self-contained on purpose (its own small helpers): it needs the binary, a lab capture
//! (`<repo>/lab/captures`, or `LAB_DIR`) and loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_dnstap_receiver");
const DEADLINE: Duration = Duration::from_secs(60);
/// Its messages: client, forwarder and resolver queries and responses; NOERROR, NXDOMAIN,
/// REFUSED, SERVFAIL; A, AAAA, TXT, MX, NS, SRV, SOA, ...; names under example.test,
/// lab.test, bind.test and outside.invalid.
const CAPTURE: &str = "unbound-tcp.fstrm";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The lab capture the tests read (`<repo>/lab/captures`). `None` when it is missing, as
/// decided by the tests' one skip helper (a NOTICE by hand, a failure under `CI=true`).
fn capture() -> Option<PathBuf> {
    let p = support::lab::lab_dir().join("captures").join(CAPTURE);
    support::skip::require(p.exists(), "transforms", || {
        format!("lab capture {} missing", p.display())
    })
    .then_some(p)
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "xform-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary offline on `capture` with `args`; returns its stdout lines and stderr.
fn offline(capture: &Path, args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .arg("-r")
        .arg(capture)
        .args(["--format", "json-full"])
        .args(args)
        .output()
        .expect("run dnstap_receiver");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    (text.lines().map(str::to_string).collect(), stderr)
}

/// One record of the reference output, reduced to what the filters look at.
#[derive(Clone, Debug)]
struct Rec {
    line: String,
    /// dnstap message type name (`CLIENT_QUERY`).
    mtype: String,
    /// The DNS message the record is about (query for `*_QUERY`, else the response, each
    /// falling back to the other), when it has a readable header.
    dns: Option<Dns>,
    /// The client: `query_address`, `query_port`, and the DNS id of the message above.
    qaddr: Option<IpAddr>,
    qport: Option<u64>,
    id: Option<u64>,
}

#[derive(Clone, Debug)]
struct Dns {
    rcode: String,
    /// First question: name (lowercased, no trailing dot) and type name.
    question: Option<(String, String)>,
}

fn parse(line: &str) -> Rec {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let m = &v["message"];
    let mtype = m["type"].as_str().unwrap_or("").to_string();
    let (first, second) = if mtype.ends_with("_QUERY") {
        ("query_message", "response_message")
    } else {
        ("response_message", "query_message")
    };
    let msg = m.get(first).or_else(|| m.get(second));
    let id = msg.and_then(|msg| msg["header"]["id"].as_u64());
    let dns = msg.and_then(|msg| {
        let rcode = msg["header"]["rcode"].as_str()?.to_string();
        let question = msg["question"].get(0).map(|q| {
            let name = q["name"].as_str().unwrap_or("").to_ascii_lowercase();
            let name = name.trim_end_matches('.').to_string();
            (name, q["type"].as_str().unwrap_or("").to_string())
        });
        Some(Dns { rcode, question })
    });
    Rec {
        line: line.to_string(),
        mtype,
        dns,
        qaddr: m["query_address"].as_str().and_then(|a| a.parse().ok()),
        qport: m["query_port"].as_u64(),
        id,
    }
}

/// The reference: every record of the capture, no transform.
fn reference(capture: &Path) -> Vec<Rec> {
    let (lines, _) = offline(capture, &[]);
    assert!(lines.len() > 1000, "capture too small: {}", lines.len());
    lines.iter().map(|l| parse(l)).collect()
}

/// Whether `name` is `domain` or under it, at a label boundary, ignoring ASCII case.
fn in_domain(name: &str, domain: &str) -> bool {
    let (n, d) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    let d = d.trim_end_matches('.');
    n == d || n.ends_with(&format!(".{d}"))
}

/// Writes a config with a global `filtering` section of `body` (indented YAML lines), runs
/// the capture through it, and checks the output against `keep` over the reference; returns
/// the `-v` offline summary.
fn check(
    capture: &Path,
    refs: &[Rec],
    dir: &TempDir,
    body: &str,
    keep: impl Fn(&Rec) -> bool,
) -> String {
    let conf = dir.write("conf.yaml", &format!("transforms:\n  filtering:\n{body}"));
    let (got, stderr) = offline(capture, &["-v", "-c", conf.to_str().unwrap()]);
    let want: Vec<&str> = refs
        .iter()
        .filter(|r| keep(r))
        .map(|r| r.line.as_str())
        .collect();
    assert!(
        !want.is_empty() && want.len() < refs.len(),
        "{body}: the oracle keeps {} of {}; choose a key that splits the capture",
        want.len(),
        refs.len()
    );
    assert_eq!(got.len(), want.len(), "{body}: record count");
    assert!(
        got.iter().map(String::as_str).eq(want.iter().copied()),
        "{body}: records differ"
    );
    // The offline summary counts what the chain removed.
    let removed = refs.len() - want.len();
    let line = stderr
        .lines()
        .find(|l| l.contains("transform-filtered="))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    assert!(
        line.contains(&format!("transform-filtered={removed}")),
        "{body}: {line}"
    );
    line.to_string()
}

fn rcode_is(r: &Rec, names: &[&str]) -> Option<bool> {
    r.dns.as_ref().map(|d| names.contains(&d.rcode.as_str()))
}

fn qtype_is(r: &Rec, names: &[&str]) -> Option<bool> {
    r.dns
        .as_ref()
        .and_then(|d| d.question.as_ref())
        .map(|(_, t)| names.contains(&t.as_str()))
}

fn qname(r: &Rec) -> Option<&str> {
    r.dns
        .as_ref()
        .and_then(|d| d.question.as_ref())
        .map(|(n, _)| n.as_str())
}

// ---------------------------------------------------------------------------------------------
// Offline: each key against the oracle.

#[test]
fn message_type_keys_keep_what_the_oracle_keeps() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("mtype");
    check(&cap, &refs, &dir, "    log-queries: false\n", |r| {
        !r.mtype.ends_with("_QUERY")
    });
    check(&cap, &refs, &dir, "    log-replies: false\n", |r| {
        !r.mtype.ends_with("_RESPONSE")
    });
    // A name and a number (8 = FORWARDER_RESPONSE in dnstap.proto).
    check(
        &cap,
        &refs,
        &dir,
        "    message-types: [CLIENT_QUERY, 8]\n",
        |r| r.mtype == "CLIENT_QUERY" || r.mtype == "FORWARDER_RESPONSE",
    );
}

#[test]
fn rcode_keys_keep_what_the_oracle_keeps() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("rcode");
    // A record without a DNS message has no rcode: a drop list keeps it, a keep list drops it.
    check(&cap, &refs, &dir, "    drop-rcodes: [NOERROR]\n", |r| {
        rcode_is(r, &["NOERROR"]) != Some(true)
    });
    // 5 = REFUSED.
    check(&cap, &refs, &dir, "    keep-rcodes: [nxdomain, 5]\n", |r| {
        rcode_is(r, &["NXDOMAIN", "REFUSED"]) == Some(true)
    });
}

#[test]
fn qtype_keys_keep_what_the_oracle_keeps() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("qtype");
    // 28 = AAAA.
    check(&cap, &refs, &dir, "    drop-qtypes: [A, 28]\n", |r| {
        qtype_is(r, &["A", "AAAA"]) != Some(true)
    });
    // 6 = SOA.
    check(&cap, &refs, &dir, "    keep-qtypes: [MX, txt, 6]\n", |r| {
        qtype_is(r, &["MX", "TXT", "SOA"]) == Some(true)
    });
}

#[test]
fn domain_lists_match_at_label_boundaries_ignoring_case() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("domain");
    // `AMPLE.TEST` is a suffix of `example.test` as text but not at a label boundary: it
    // must match nothing there. `Bind.Test` matches bind.test and everything under it.
    let drop = dir.write("drop.txt", "# known good\nAMPLE.TEST\nBind.Test.\n");
    let body = format!("    drop-domain-file: {}\n", drop.display());
    check(&cap, &refs, &dir, &body, |r| {
        !qname(r).is_some_and(|n| in_domain(n, "ample.test") || in_domain(n, "bind.test"))
    });
    assert!(refs
        .iter()
        .any(|r| qname(r).is_some_and(|n| n.ends_with("example.test"))));
    let keep = dir.write("keep.txt", "Example.TEST\n");
    let body = format!("    keep-domain-file: {}\n", keep.display());
    check(&cap, &refs, &dir, &body, |r| {
        qname(r).is_some_and(|n| in_domain(n, "example.test"))
    });
}

#[test]
fn fqdn_lists_match_exact_names_only() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("fqdn");
    let keep = dir.write("keep.txt", "WWW.example.test\nlab.test.\n");
    let body = format!("    keep-fqdn-file: {}\n", keep.display());
    check(&cap, &refs, &dir, &body, |r| {
        qname(r).is_some_and(|n| n == "www.example.test" || n == "lab.test")
    });
    let drop = dir.write("drop.txt", "example.test\n");
    let body = format!("    drop-fqdn-file: {}\n", drop.display());
    check(&cap, &refs, &dir, &body, |r| {
        qname(r) != Some("example.test")
    });
}

#[test]
fn keys_combine_and_the_first_failing_one_is_the_reason() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("combined");
    let body = "    log-queries: false\n    keep-rcodes: [NXDOMAIN]\n    drop-qtypes: [AAAA]\n";
    let line = check(&cap, &refs, &dir, body, |r| {
        !r.mtype.ends_with("_QUERY")
            && rcode_is(r, &["NXDOMAIN"]) == Some(true)
            && qtype_is(r, &["AAAA"]) != Some(true)
    });
    // Checked in order: message type, rcode, qtype; the first that fails is the reason.
    let by_type = refs.iter().filter(|r| r.mtype.ends_with("_QUERY")).count();
    let rest: Vec<&Rec> = refs
        .iter()
        .filter(|r| !r.mtype.ends_with("_QUERY"))
        .collect();
    let by_rcode = rest
        .iter()
        .filter(|r| rcode_is(r, &["NXDOMAIN"]) != Some(true))
        .count();
    let by_qtype = rest
        .iter()
        .filter(|r| rcode_is(r, &["NXDOMAIN"]) == Some(true))
        .filter(|r| qtype_is(r, &["AAAA"]) == Some(true))
        .count();
    assert!(by_qtype > 0, "the capture has no NXDOMAIN AAAA response");
    let want = format!("(message-type={by_type} rcode={by_rcode} qtype={by_qtype})");
    assert!(line.contains(&want), "{want} not in {line}");
}

// ---------------------------------------------------------------------------------------------
// Client address lists and sampling, on synthetic traffic (thousands of clients, IPv4 and
// IPv6; the lab's captures have only 127.0.0.1 and ::1).

/// The workspace's loadgen, built beside the receiver (`cargo build --workspace`). `None`
/// (with a NOTICE) when it is missing outside CI.
fn loadgen() -> Option<PathBuf> {
    let p = Path::new(BIN).with_file_name("loadgen");
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var_os("CI").is_none(), "{} missing", p.display());
    eprintln!(
        "NOTICE: {} missing (cargo build --workspace); skipped",
        p.display()
    );
    None
}

/// A synthetic capture of `messages` messages in `dir` (`loadgen --synth --write-fstrm`).
fn synthetic(dir: &TempDir, messages: u64) -> Option<PathBuf> {
    let bin = loadgen()?;
    let p = dir.0.join(format!("synth-{messages}.fstrm"));
    let out = Command::new(bin)
        .args(["--synth", "-q", "--seed", "7", "--synth-messages"])
        .arg(messages.to_string())
        .arg("--write-fstrm")
        .arg(&p)
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(p)
}

/// The oracle's network test: the first `prefix` bits of `a` and `net` are equal (the same
/// family only; IPv4-mapped IPv6 is not in the synthetic traffic).
fn in_net(a: IpAddr, net: IpAddr, prefix: u32) -> bool {
    let bits = |x: IpAddr| -> (Vec<bool>, bool) {
        let (bytes, v4) = match x {
            IpAddr::V4(v) => (v.octets().to_vec(), true),
            IpAddr::V6(v) => (v.octets().to_vec(), false),
        };
        let b = bytes
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
            .collect();
        (b, v4)
    };
    let ((a, a4), (n, n4)) = (bits(a), bits(net));
    a4 == n4 && a[..prefix as usize] == n[..prefix as usize]
}

#[test]
fn query_ip_lists_keep_what_the_oracle_keeps() {
    let dir = TempDir::new("queryip");
    let Some(cap) = synthetic(&dir, 60_000) else {
        return;
    };
    let refs = reference(&cap);
    assert!(
        refs.iter().all(|r| !r.line.contains("\"filtering\"")),
        "sample-rate without sampling"
    );
    // Networks cut from the traffic's own addresses, at prefix lengths whose boundaries
    // fall inside the populations: the most frequent IPv4 and IPv6 clients.
    let mut counts: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for a in refs.iter().filter_map(|r| r.qaddr) {
        *counts.entry(a).or_default() += 1;
    }
    let mut by_count: Vec<(IpAddr, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let v4: Vec<IpAddr> = by_count
        .iter()
        .map(|x| x.0)
        .filter(IpAddr::is_ipv4)
        .collect();
    let v6: Vec<IpAddr> = by_count
        .iter()
        .map(|x| x.0)
        .filter(IpAddr::is_ipv6)
        .collect();
    assert!(
        v4.len() > 10 && v6.len() > 10,
        "{} v4, {} v6",
        v4.len(),
        v6.len()
    );
    let nets: Vec<(IpAddr, u32)> = vec![
        (v4[0], 32),
        (v4[1], 24),
        (v4[2], 31),
        (v4[3], 17),
        (v6[0], 128),
        (v6[1], 64),
        (v6[2], 127),
        (v6[3], 100),
    ];
    let listed = |r: &Rec, nets: &[(IpAddr, u32)]| {
        r.qaddr
            .is_some_and(|a| nets.iter().any(|&(n, p)| in_net(a, n, p)))
    };
    let entry = |&(n, p): &(IpAddr, u32)| format!("{n}/{p}");
    // Inline drop list: IPv4 and IPv6 together.
    let inline: Vec<String> = nets.iter().map(entry).collect();
    let body = format!("    drop-queryip: ['{}']\n", inline.join("', '"));
    let line = check(&cap, &refs, &dir, &body, |r| !listed(r, &nets));
    assert!(line.contains("query-ip="), "{line}");
    // A keep file with comments; a record without an address would be dropped.
    let text: String = nets
        .iter()
        .map(|n| format!("{}  # client\n", entry(n)))
        .collect();
    let keep = dir.write("keep-ips.txt", &format!("# clients\n\n{text}"));
    let body = format!("    keep-queryip-file: {}\n", keep.display());
    check(&cap, &refs, &dir, &body, |r| listed(r, &nets));
    // Boundaries: the network just past a listed host (its neighbour's /32) keeps it.
    let IpAddr::V4(a) = v4[0] else { unreachable!() };
    let next = IpAddr::V4((u32::from(a) ^ 1).into());
    let edge = [(next, 32), (v6[4], 128)];
    let drop = dir.write(
        "drop-ips.txt",
        &format!("{}\n{}\n", entry(&edge[0]), entry(&edge[1])),
    );
    let body = format!("    drop-queryip-file: {}\n", drop.display());
    check(&cap, &refs, &dir, &body, |r| !listed(r, &edge));
}

/// What a query and its response share: client address, client port, DNS id.
type PairKey = (Option<IpAddr>, Option<u64>, Option<u64>);

/// Reference lines with the `filtering` key a sampled stream adds taken out.
fn unsampled(line: &str, rate: u32) -> String {
    line.replacen(&format!(",\"filtering\":{{\"sample-rate\":{rate}}}"), "", 1)
}

#[test]
fn sampling_keeps_queries_and_responses_together_and_kept_rcodes() {
    let dir = TempDir::new("sample-pairs");
    let Some(cap) = synthetic(&dir, 100_000) else {
        return;
    };
    let refs = reference(&cap);
    let conf = dir.write(
        "conf.yaml",
        "transforms:\n  filtering:\n    downsample: 8\n",
    );
    let (got, _) = offline(&cap, &["-c", conf.to_str().unwrap()]);
    assert!(
        got.iter()
            .all(|l| l.contains(",\"filtering\":{\"sample-rate\":8},")),
        "every record of a sampled stream carries its rate"
    );
    let kept: std::collections::HashSet<String> = got.iter().map(|l| unsampled(l, 8)).collect();
    assert_eq!(kept.len(), got.len(), "duplicate lines");
    let saved = ["NXDOMAIN", "SERVFAIL", "REFUSED"];
    // The default keep list: such records are never sampled out.
    // (address, port, id) → (kept, dropped).
    let mut by_key: BTreeMap<PairKey, (usize, usize)> = BTreeMap::new();
    let mut n_saved = 0;
    for r in &refs {
        let is_kept = kept.contains(&r.line);
        if rcode_is(r, &saved) == Some(true) {
            assert!(is_kept, "a {saved:?} record was sampled out: {}", r.line);
            n_saved += 1;
            continue;
        }
        // Everything else with the same client address, port and id goes together.
        let e = by_key.entry((r.qaddr, r.qport, r.id)).or_default();
        if is_kept {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    assert!(n_saved > 0, "no NXDOMAIN/SERVFAIL/REFUSED in the traffic");
    let split: Vec<_> = by_key
        .iter()
        .filter(|(_, (k, d))| *k > 0 && *d > 0)
        .collect();
    assert!(
        split.is_empty(),
        "pairs split: {:?}",
        &split[..split.len().min(5)]
    );
    // Queries and responses were both in play: some kept keys hold both.
    let pairs_kept = by_key.values().filter(|(k, _)| *k >= 2).count();
    assert!(pairs_kept > 100, "{pairs_kept}");
    // Every kept response's query (same address, port, id, and the query's type) is kept
    // too, unless the response was saved by its rcode.
    let kept_recs: Vec<Rec> = got.iter().map(|l| parse(&unsampled(l, 8))).collect();
    let queries: std::collections::HashSet<_> = kept_recs
        .iter()
        .filter(|r| r.mtype.ends_with("_QUERY"))
        .map(|r| (r.qaddr, r.qport, r.id, r.mtype.clone()))
        .collect();
    let all_queries: std::collections::HashSet<_> = refs
        .iter()
        .filter(|r| r.mtype.ends_with("_QUERY"))
        .map(|r| (r.qaddr, r.qport, r.id, r.mtype.clone()))
        .collect();
    let mut matched = 0;
    for r in kept_recs.iter().filter(|r| r.mtype.ends_with("_RESPONSE")) {
        if rcode_is(r, &saved) == Some(true) {
            continue;
        }
        let q = (
            r.qaddr,
            r.qport,
            r.id,
            r.mtype.replace("_RESPONSE", "_QUERY"),
        );
        if all_queries.contains(&q) {
            assert!(
                queries.contains(&q),
                "query of a kept response dropped: {}",
                r.line
            );
            matched += 1;
        }
    }
    assert!(matched > 100, "{matched}");
}

#[test]
fn sampling_keeps_one_in_n_of_a_million_messages() {
    let dir = TempDir::new("sample-rate");
    let Some(cap) = synthetic(&dir, 1_000_000) else {
        return;
    };
    for (n, keep) in [(10u64, "[]"), (3, "[]")] {
        let conf = dir.write(
            "conf.yaml",
            &format!("transforms:\n  filtering:\n    downsample: {n}\n    downsample-keep-rcodes: {keep}\n"),
        );
        let out = Command::new(BIN)
            .arg("-r")
            .arg(&cap)
            .args(["--format", "text", "-v", "-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .output()
            .expect("run dnstap_receiver");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("transform-filtered="))
            .unwrap_or_else(|| panic!("no summary: {stderr}"));
        let field = |k: &str| -> u64 {
            let at = line
                .find(&format!("{k}="))
                .unwrap_or_else(|| panic!("{k} in {line}"));
            line[at + k.len() + 1..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (frames, written, sampled) = (field("frames"), field("written"), field("sampled"));
        assert_eq!(frames, 1_000_000, "{line}");
        assert_eq!(written + sampled, frames, "{line}");
        let want = frames / n;
        assert!(
            written.abs_diff(want) * 10 <= want,
            "1 in {n}: kept {written} of {frames}, want {want} ± 10 %"
        );
    }
}

#[test]
fn bad_values_stop_start_up_naming_the_key_and_value() {
    let dir = TempDir::new("bad");
    let cases: [(&str, &[&str]); 6] = [
        (
            "transforms:\n  filtering:\n    keep-rcodes: [BADVERS]\n",
            &["bad.yaml:3: transforms.filtering.keep-rcodes", "BADVERS", "4-bit header rcode"],
        ),
        (
            "transforms:\n  filtering:\n    drop-qtypes: [AAAAX]\n",
            &["bad.yaml:3: transforms.filtering.drop-qtypes", "AAAAX"],
        ),
        (
            "transforms:\n  filtering:\n    keep-rcode: [0]\n",
            &["keep-rcode", "line 3"],
        ),
        (
            "outputs:\n  - stdout:\n      transforms:\n        filtering:\n          message-types: [CLIENT_QUERI]\n",
            &["bad.yaml:5: outputs[0].stdout.transforms.filtering.message-types", "CLIENT_QUERI"],
        ),
        (
            "transforms:\n  filtering:\n    drop-domain-file: list.txt\n",
            &["bad.yaml:3: transforms.filtering.drop-domain-file", "list.txt", "line 2"],
        ),
        (
            // An empty keep list would keep nothing: refused, naming the file.
            "transforms:\n  filtering:\n    keep-queryip-file: clients.txt\n",
            &["bad.yaml:3: transforms.filtering.keep-queryip-file", "clients.txt", "empty"],
        ),
    ];
    dir.write("list.txt", "good.example\nnot a domain\n");
    dir.write("clients.txt", "# filled by the provisioning job\n");
    for (yaml, needles) in cases {
        let conf = dir.write("bad.yaml", yaml);
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
// The daemon: a global chain, then one chain per output, and the counters.

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
        let d = Daemon {
            child,
            stdout: Some(stdout),
            stderr,
        };
        d.wait_log("metrics: http://");
        d
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_log(&self, needle: &str) {
        let t0 = Instant::now();
        while !self.log().contains(needle) {
            assert!(t0.elapsed() < DEADLINE, "no {needle:?}: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics address the receiver logged (`--metrics 127.0.0.1:0`).
    fn metrics_addr(&self) -> String {
        let log = self.log();
        let at = log.find("metrics: http://").unwrap() + "metrics: http://".len();
        log[at..].split('/').next().unwrap().to_string()
    }

    /// The input address it logged (`-p 0`).
    fn input_addr(&self) -> String {
        let log = self.log();
        let at = log.find("listening on tcp ").unwrap() + "listening on tcp ".len();
        log[at..].split_whitespace().next().unwrap().to_string()
    }

    /// SIGTERM, then the whole stdout (bounded).
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

/// One scrape: `name{labels}` → value.
fn scrape(addr: &str) -> BTreeMap<String, u64> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((
                k.trim_start_matches("dnstap_receiver_").to_string(),
                v.parse().ok()?,
            ))
        })
        .collect()
}

fn get(m: &BTreeMap<String, u64>, key: &str) -> u64 {
    *m.get(key).unwrap_or_else(|| panic!("no {key} in scrape"))
}

#[test]
fn per_output_chains_route_records_and_every_removal_is_counted() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("route");

    // The collector: a loopback listener reading lines until the receiver closes.
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let cport = collector.local_addr().unwrap().port();
    let received = std::thread::spawn(move || {
        let (s, _) = collector.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        BufReader::new(s)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });

    // Global: responses only. stdout: NXDOMAIN only (the security collector case).
    // forward: every response but those under example.test (a known-good list).
    let good = dir.write("good.txt", "example.test\n");
    let conf = dir.write(
        "conf.yaml",
        &format!(
            "transforms:\n  filtering:\n    log-queries: false\n\
             outputs:\n  - stdout:\n      format: json-full\n      transforms:\n        filtering:\n          keep-rcodes: [NXDOMAIN]\n\
             \x20 - forward:\n      remote-address: 127.0.0.1\n      remote-port: {cport}\n      format: json-full\n      transforms:\n        filtering:\n          drop-domain-file: {}\n",
            good.display()
        ),
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
    d.wait_log("listening on tcp ");
    let (maddr, iaddr) = (d.metrics_addr(), d.input_addr());

    // The capture as a unidirectional Frame Streams stream (START, data, STOP), as a
    // sender that does not wait for ACCEPT writes it.
    let bytes = std::fs::read(&cap).unwrap();
    let mut s = TcpStream::connect(&iaddr).unwrap();
    s.write_all(&bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.read_to_end(&mut rest);

    // The oracle.
    let responses: Vec<&Rec> = refs
        .iter()
        .filter(|r| !r.mtype.ends_with("_QUERY"))
        .collect();
    let queries = refs.len() - responses.len();
    let to_stdout: Vec<&str> = responses
        .iter()
        .filter(|r| rcode_is(r, &["NXDOMAIN"]) == Some(true))
        .map(|r| r.line.as_str())
        .collect();
    let to_forward: Vec<&str> = responses
        .iter()
        .filter(|r| !qname(r).is_some_and(|n| in_domain(n, "example.test")))
        .map(|r| r.line.as_str())
        .collect();

    // Wait until every record is counted (the forward output delivers the rest at
    // shutdown; its `output_records_written_total` trails the collector's reads by its
    // replay window).
    let n = refs.len() as u64;
    let t0 = Instant::now();
    let m = loop {
        let m = scrape(&maddr);
        let settled = get(&m, "frames_received_total") == n
            && get(&m, "queue_depth") == 0
            && get(&m, "messages_written_total")
                + get(&m, "records_filtered_total{reason=\"message-type\"}")
                == n;
        if settled {
            break m;
        }
        assert!(t0.elapsed() < DEADLINE, "not settled: {m:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let fwd = m
        .keys()
        .find_map(|k| {
            k.strip_prefix("output_records_total{output=\"")
                .and_then(|r| r.strip_suffix("\"}"))
                .filter(|o| o.starts_with("forward"))
                .map(str::to_string)
        })
        .unwrap();
    let stdout = d.stop();
    let got_forward = received.join().unwrap();

    let got_stdout: Vec<&str> = std::str::from_utf8(&stdout).unwrap().lines().collect();
    assert_eq!(got_stdout, to_stdout, "stdout: NXDOMAIN responses");
    assert_eq!(
        got_forward, to_forward,
        "forward: responses outside example.test"
    );

    // The counters: the global chain's removals by reason, each output's by output and
    // reason, and the identities of docs/metrics.md.
    let reason = |r: &str| format!("records_filtered_total{{reason=\"{r}\"}}");
    let out_reason = |o: &str, r: &str| {
        format!("output_records_filtered_total{{output=\"{o}\",reason=\"{r}\"}}")
    };
    assert_eq!(get(&m, &reason("message-type")), queries as u64);
    for r in ["rcode", "qtype", "domain", "fqdn"] {
        assert_eq!(get(&m, &reason(r)), 0, "{r}");
    }
    let written = get(&m, "messages_written_total");
    assert_eq!(written, responses.len() as u64);
    assert_eq!(
        written
            + get(&m, "messages_filtered_total")
            + get(&m, &reason("message-type"))
            + get(&m, "decode_errors_total{kind=\"dnstap\"}"),
        n
    );
    assert_eq!(
        get(&m, &out_reason("stdout", "rcode")),
        (responses.len() - to_stdout.len()) as u64
    );
    assert_eq!(
        get(&m, &out_reason(&fwd, "domain")),
        (responses.len() - to_forward.len()) as u64
    );
    for (o, kept) in [
        ("stdout", to_stdout.len()),
        (fwd.as_str(), to_forward.len()),
    ] {
        let handed = get(&m, &format!("output_records_total{{output=\"{o}\"}}"));
        assert_eq!(handed, kept as u64, "{o}");
        let withheld: u64 = ["message-type", "rcode", "qtype", "domain", "fqdn"]
            .iter()
            .map(|r| get(&m, &out_reason(o, r)))
            .sum();
        assert_eq!(
            handed + withheld,
            written,
            "{o}: records + filtered = written"
        );
    }
}

#[test]
fn each_output_shows_its_own_sample_rate_and_samplers_nest() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    let dir = TempDir::new("sample-daemon");
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let cport = collector.local_addr().unwrap().port();
    let received = std::thread::spawn(move || {
        let (s, _) = collector.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        BufReader::new(s)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    // Global: 1 in 2; stdout: its own 1 in 6 on top (nested: 1 in 6 overall); forward:
    // only the global one. Nothing saved by rcode, so the subsets nest exactly.
    let conf = dir.write(
        "conf.yaml",
        &format!(
            "transforms:\n  filtering:\n    downsample: 2\n    downsample-keep-rcodes: []\n\
             outputs:\n  - stdout:\n      format: json-full\n      transforms:\n        filtering:\n          downsample: 6\n          downsample-keep-rcodes: []\n\
             \x20 - forward:\n      remote-address: 127.0.0.1\n      remote-port: {cport}\n      format: json-full\n"
        ),
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
    d.wait_log("listening on tcp ");
    let (maddr, iaddr) = (d.metrics_addr(), d.input_addr());
    let bytes = std::fs::read(&cap).unwrap();
    let mut s = TcpStream::connect(&iaddr).unwrap();
    s.write_all(&bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.read_to_end(&mut Vec::new());
    let n = refs.len() as u64;
    let t0 = Instant::now();
    let m = loop {
        let m = scrape(&maddr);
        let settled = get(&m, "frames_received_total") == n
            && get(&m, "queue_depth") == 0
            && get(&m, "messages_written_total")
                + get(&m, "records_filtered_total{reason=\"sampled\"}")
                == n;
        if settled {
            break m;
        }
        assert!(t0.elapsed() < DEADLINE, "not settled: {m:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = d.stop();
    let got_forward = received.join().unwrap();
    let got_stdout: Vec<&str> = std::str::from_utf8(&stdout).unwrap().lines().collect();
    assert!(got_stdout
        .iter()
        .all(|l| l.contains(",\"filtering\":{\"sample-rate\":6},")));
    assert!(got_forward
        .iter()
        .all(|l| l.contains(",\"filtering\":{\"sample-rate\":2},")));
    let forward: std::collections::HashSet<String> =
        got_forward.iter().map(|l| unsampled(l, 2)).collect();
    let all: std::collections::HashSet<&str> = refs.iter().map(|r| r.line.as_str()).collect();
    for l in &got_stdout {
        let l = unsampled(l, 6);
        assert!(all.contains(l.as_str()), "not in the reference: {l}");
        assert!(
            forward.contains(&l),
            "stdout's sample is not inside forward's: {l}"
        );
    }
    let written = get(&m, "messages_written_total");
    assert_eq!(written, got_forward.len() as u64);
    // About 1 in 2 and 1 in 6 (pairs go together, so the spread is wider than for single
    // records; a loose bound: the exact rate is checked on a million messages above).
    assert!(
        written * 10 > n * 4 && written * 10 < n * 6,
        "{written} of {n}"
    );
    let to_stdout = got_stdout.len() as u64;
    assert!(
        to_stdout * 100 > n * 12 && to_stdout * 100 < n * 22,
        "{to_stdout} of {n}"
    );
    assert_eq!(
        get(
            &m,
            "output_records_filtered_total{output=\"stdout\",reason=\"sampled\"}"
        ),
        written - to_stdout
    );
}

#[test]
fn several_writers_run_the_same_chains_in_order() {
    let Some(cap) = capture() else { return };
    let refs = reference(&cap);
    // One writer (its chains run per record) and two (the ordered writers, formatting
    // whole batches in parallel): the same records, in order.
    for writers in [1, 2] {
        same_chains_in_order(&cap, &refs, writers);
    }
}

fn same_chains_in_order(cap: &Path, refs: &[Rec], writers: usize) {
    let dir = TempDir::new("ordered");
    // Global: A and AAAA only, none under lab.test; stdout (the only output): not NOERROR.
    let bad = dir.write("bad.txt", "# dropped\nLAB.test\n");
    let conf = dir.write(
        "conf.yaml",
        &format!(
            "transforms:\n  filtering:\n    keep-qtypes: [A, AAAA]\n    drop-domain-file: {}\n\
             outputs:\n  - stdout:\n      format: json-full\n      transforms:\n        filtering:\n          drop-rcodes: [NOERROR]\n",
            bad.display()
        ),
    );
    let w = writers.to_string();
    let d = Daemon::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        "0",
        "--writers",
        &w,
        "--metrics",
        "127.0.0.1:0",
        "-c",
        conf.to_str().unwrap(),
    ]);
    d.wait_log("listening on tcp ");
    assert!(
        d.log().contains(&format!("{writers} writer thread(s)")),
        "{}",
        d.log()
    );
    let (maddr, iaddr) = (d.metrics_addr(), d.input_addr());
    let bytes = std::fs::read(cap).unwrap();
    let mut s = TcpStream::connect(&iaddr).unwrap();
    s.write_all(&bytes).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = s.read_to_end(&mut Vec::new());

    let a_or_aaaa: Vec<&Rec> = refs
        .iter()
        .filter(|r| qtype_is(r, &["A", "AAAA"]) == Some(true))
        .collect();
    let passed: Vec<&Rec> = a_or_aaaa
        .iter()
        .copied()
        .filter(|r| !qname(r).is_some_and(|n| in_domain(n, "lab.test")))
        .collect();
    let under_lab = a_or_aaaa.len() - passed.len();
    assert!(under_lab > 0 && !passed.is_empty(), "the capture has both");
    let want: Vec<&str> = passed
        .iter()
        .filter(|r| rcode_is(r, &["NOERROR"]) != Some(true))
        .map(|r| r.line.as_str())
        .collect();
    let n = refs.len() as u64;
    let t0 = Instant::now();
    let m = loop {
        let m = scrape(&maddr);
        let settled = get(&m, "frames_received_total") == n
            && get(&m, "queue_depth") == 0
            && get(&m, "messages_written_total")
                + get(&m, "records_filtered_total{reason=\"qtype\"}")
                + get(&m, "records_filtered_total{reason=\"domain\"}")
                == n;
        if settled {
            break m;
        }
        assert!(t0.elapsed() < DEADLINE, "not settled: {m:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = d.stop();
    let got: Vec<&str> = std::str::from_utf8(&stdout).unwrap().lines().collect();
    assert_eq!(
        got, want,
        "{writers} writer(s), stdout: A/AAAA records outside lab.test that are not NOERROR, \
         in order"
    );
    assert_eq!(get(&m, "messages_written_total"), passed.len() as u64);
    assert_eq!(
        get(&m, "records_filtered_total{reason=\"qtype\"}"),
        n - a_or_aaaa.len() as u64
    );
    assert_eq!(
        get(&m, "records_filtered_total{reason=\"domain\"}"),
        under_lab as u64
    );
    assert_eq!(
        get(
            &m,
            "output_records_filtered_total{output=\"stdout\",reason=\"rcode\"}"
        ),
        (passed.len() - want.len()) as u64
    );
    assert_eq!(
        get(&m, "output_records_total{output=\"stdout\"}"),
        want.len() as u64
    );
}
