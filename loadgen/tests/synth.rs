//! loadgen's synthetic traffic, checked by independent readers, and its run modes end to end:
//! - the golang `dnstap` CLI (Debian golang-github-dnstap-golang-dnstap-cli) must read every
//!   synthetic message and parse every DNS message in it (its YAML shows a question section
//!   for each one), with the same query names as the receiver's own parser finds;
//! - the same seed gives the same bytes; another seed does not;
//! - `--discard` receives exactly what was sent; `--rate` sends the whole count.
//!
//! The golang test skips with a printed reason when `dnstap` is missing, except with
//! `CI=true`, where it fails.

#[path = "../../tests/support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;

use dnstap_receiver::dns::MessageView as DnsView;
use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-synth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_synth(path: &Path, seed: u64, messages: u64) {
    let out = Command::new(LOADGEN)
        .args(["--synth", "--seed", &seed.to_string()])
        .args(["--synth-messages", &messages.to_string()])
        .arg("--write-fstrm")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The data frames of a Frame Streams file, read with the receiver's decoder.
fn payloads(file: &[u8]) -> Vec<&[u8]> {
    let mut dec = Decoder::new(DecoderConfig::default());
    let (mut off, mut out, mut reply) = (0, Vec::new(), Vec::new());
    loop {
        let step = dec.decode(&file[off..], &mut reply).unwrap();
        match step.event {
            Event::Data { payload } => out.push(&file[off..][payload]),
            Event::Control => {}
            Event::NeedMore | Event::Finished => return out,
        }
        off += step.consumed;
    }
}

/// Query names in presentation form, as the receiver's DNS parser reads them, for every
/// DNS message (query and response) of every payload, in order.
fn our_qnames(file: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for p in payloads(file) {
        let m = DnstapView::parse(p).unwrap().message().unwrap().unwrap();
        for dns in [m.query_message, m.response_message].into_iter().flatten() {
            let view = DnsView::parse(dns).unwrap();
            let q = view.questions().next().unwrap().unwrap();
            let mut text = Vec::new();
            q.name.write_presentation(&mut text);
            names.push(String::from_utf8(text).unwrap());
        }
    }
    names
}

fn have_golang_dnstap() -> bool {
    let ok = Command::new("dnstap").arg("-h").output().is_ok();
    skip::require(ok, "golang_dnstap_reads_every_synthetic_message", || {
        "dnstap not found in PATH (the golang CLI, golang-github-dnstap-golang-dnstap-cli)".into()
    })
}

#[test]
fn golang_dnstap_reads_every_synthetic_message_and_question() {
    if !have_golang_dnstap() {
        return;
    }
    let dir = temp_dir("golang");
    let file = dir.join("synth.fstrm");
    write_synth(&file, 5, 4000);
    let out = Command::new("dnstap")
        .arg("-r")
        .arg(&file)
        .arg("-y")
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout);
    let bytes = std::fs::read(&file).unwrap();
    let ours = our_qnames(&bytes);
    assert_eq!(
        yaml.matches("\ntype: MESSAGE\n").count() + 1,
        4000,
        "one document each"
    );
    if let Some(at) = yaml.find("parse failed") {
        panic!(
            "golang dnstap could not parse: {}",
            &yaml[at.saturating_sub(800)..at + 100]
        );
    }
    // Each DNS message golang could unpack is printed dig-style with a question section.
    let questions: Vec<&str> = yaml
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].trim() == ";; QUESTION SECTION:")
        .map(|w| w[1].trim().trim_start_matches(';'))
        .collect();
    assert_eq!(questions.len(), ours.len(), "every DNS message unpacked");
    // Same names, where both print a name the same way (escaping rules differ a little for
    // odd bytes; the names made of letters, digits, '-', '_' and '*' are the vast majority).
    let mut compared = 0;
    for (theirs, ours) in questions.iter().zip(&ours) {
        let theirs = theirs.split('\t').next().unwrap();
        if ours
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_*.".contains(&b))
        {
            assert_eq!(&theirs.to_ascii_lowercase(), &ours.to_ascii_lowercase());
            compared += 1;
        }
    }
    assert!(
        compared * 100 > ours.len() * 95,
        "{compared} of {}",
        ours.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_same_file() {
    let dir = temp_dir("seed");
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    write_synth(&a, 9, 3000);
    write_synth(&b, 9, 3000);
    write_synth(&c, 10, 3000);
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(payloads(&a).len(), 3000);
    let _ = std::fs::remove_dir_all(&dir);
}

fn json_field(json: &str, key: &str) -> String {
    let at = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    json[at..]
        .split([',', '}'])
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn run_json(args: &[&str]) -> String {
    let out = Command::new(LOADGEN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn discard_receives_exactly_what_was_sent() {
    let dir = temp_dir("discard");
    let sock = dir.join("d.sock");
    let json = run_json(&[
        "--synth",
        "--synth-messages",
        "1000",
        "--count",
        "123457",
        "-n",
        "3",
        "-u",
        sock.to_str().unwrap(),
        "--discard",
        "--json",
        "-q",
    ]);
    assert_eq!(json_field(&json, "messages"), "123457");
    assert_eq!(json_field(&json, "received"), "123457");
    assert_eq!(json_field(&json, "missing"), "0");
    assert_eq!(json_field(&json, "source"), "synth");
    assert!(!sock.exists(), "the socket file is removed at the end");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paced_run_sends_the_count_over_tcp() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let json = run_json(&[
        "--synth",
        "--synth-messages",
        "500",
        "--count",
        "3000",
        "--rate",
        "30000",
        "-n",
        "2",
        "--tcp",
        &addr,
        "--discard",
        "--json",
        "-q",
    ]);
    assert_eq!(json_field(&json, "received"), "3000");
    assert_eq!(json_field(&json, "rate_target"), "30000.0");
    // 3,000 messages at 30,000/s take at least ~0.1 s (a lower bound: never faster).
    let secs: f64 = json_field(&json, "seconds").parse().unwrap();
    assert!(secs >= 0.09, "{secs}");
}
