//! Several writer threads feeding one forward output (`--writers 2`, issue 21): the bytes
//! every collector receives are byte for byte those one writer sends, with one collector
//! and with `loadbalance: hash` over two (each collector's own stream compared). The input
//! is real DNS servers' frames (the lab captures), over one connection, in receive buffers
//! small enough that the writers take hundreds of batches in turn. The collectors are
//! plain TCP listeners on loopback that keep every byte, so no peer is needed; `-r` on the
//! same frames is the independent oracle of the single stream.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE;
use dnstap_receiver::framestream::{write_control_frame, write_data_frame, ControlType};
use support::lab::{capture, capture_payloads};
use support::receiver::{
    free_port, offline_lines, send_bidi, signal, Ending, Receiver, Target, TempDir,
};

/// Real frames of several servers (JSON lines of ~150..400 bytes each).
fn lab_payloads() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for name in [
        "knot-unix.fstrm",
        "kresd-unix.fstrm",
        "pdns-recursor-unix.fstrm",
        "bind-unix.fstrm",
        "unbound-tcp.fstrm",
    ] {
        v.extend(capture_payloads(&capture(name)));
    }
    v
}

/// A collector: accepts one connection and keeps every byte until the peer closes it.
struct Sink {
    port: u16,
    got: JoinHandle<Vec<u8>>,
}

impl Sink {
    fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // Bounds the wait for the receiver's close.
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).expect("collector read");
            all
        });
        Sink { port, got }
    }
}

/// Runs a receiver with `writers` writer threads forwarding (`json`, loadbalance `lb`) to
/// `sinks.len()` fresh collectors, sends `payloads` over one connection, stops the
/// receiver, and returns each collector's bytes.
fn forward_run(
    tag: &str,
    writers: usize,
    lb: &str,
    collectors: usize,
    payloads: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    let tmp = TempDir::new(tag);
    let sinks: Vec<Sink> = (0..collectors).map(|_| Sink::start()).collect();
    let remote: Vec<String> = sinks
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let conf = tmp.path("receiver.yaml");
    // 4 KiB receive buffers: a batch holds a few dozen frames, so the writers take
    // hundreds of them in turn.
    std::fs::write(
        &conf,
        format!(
            "threads: 1\nwriters: {writers}\nbuffer-size: 4096\n\
             forward-to:\n  enable: true\n  remote: [{}]\n  loadbalance: {lb}\n  \
             format: json\n  chunk-size: 16384\n  shutdown-timeout: 20\n",
            remote.join(", ")
        ),
    )
    .unwrap();
    let rport = free_port();
    let rp = rport.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rp,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    assert!(
        rx.stderr().contains(&format!("{writers} writer thread(s)")),
        "{}",
        rx.stderr()
    );
    // FINISH: the reader has every frame; the stop drains the queue, the output delivers
    // and closes its connections.
    send_bidi(&Target::Tcp(rport), payloads, Ending::Stop);
    let done = rx.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stat("dropped"), 0, "{}", done.counters());
    sinks.into_iter().map(|s| s.got.join().unwrap()).collect()
}

fn write_capture(path: &Path, payloads: &[Vec<u8>]) {
    let mut out = Vec::new();
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for p in payloads {
        write_data_frame(p, &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    std::fs::write(path, out).unwrap();
}

fn line_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

#[test]
fn two_writers_forward_the_bytes_of_one() {
    let payloads = lab_payloads();
    let one = forward_run("fw-writers-1", 1, "failover", 1, &payloads);
    let two = forward_run("fw-writers-2", 2, "failover", 1, &payloads);
    assert_eq!(line_count(&one[0]), payloads.len());
    // The oracle: what `-r` prints for the same frames.
    let tmp = TempDir::new("fw-writers-oracle");
    let file = tmp.path("all.fstrm");
    write_capture(&file, &payloads);
    let oracle = offline_lines(&file, &["--format", "json"]);
    let got: Vec<&str> = std::str::from_utf8(&one[0]).unwrap().lines().collect();
    assert_eq!(got.len(), oracle.len());
    assert!(
        got.iter().zip(&oracle).all(|(a, b)| a == b),
        "1 writer differs from -r"
    );
    assert_eq!(two[0].len(), one[0].len(), "2 writers: not the same length");
    assert!(two[0] == one[0], "2 writers: not the bytes of 1 writer");
}

#[test]
fn two_writers_keep_each_hash_collectors_bytes() {
    let payloads = lab_payloads();
    let lb = "hash\n  hash-key: qname";
    let one = forward_run("fw-writers-hash-1", 1, lb, 2, &payloads);
    let two = forward_run("fw-writers-hash-2", 2, lb, 2, &payloads);
    let counts: Vec<usize> = one.iter().map(|b| line_count(b)).collect();
    assert_eq!(counts.iter().sum::<usize>(), payloads.len());
    // Both collectors get a share (the captures ask for many names; their clients are few).
    assert!(
        counts.iter().all(|&n| n > payloads.len() / 20),
        "{counts:?}"
    );
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        assert_eq!(a.len(), b.len(), "collector {i}: not the same length");
        assert!(
            a == b,
            "collector {i}: 2 writers did not send the bytes of 1"
        );
    }
}

/// A reload under two writers: new transforms take over at one batch while the forward
/// output keeps its connection; a reload that would change the output is refused (a
/// restart applies it) and the running configuration stays.
#[test]
fn two_writers_reload_transforms_and_refuse_a_new_output() {
    let payloads = lab_payloads();
    let (before, after) = payloads.split_at(payloads.len() / 2);
    let tmp = TempDir::new("fw-writers-reload");
    let sink = Sink::start();
    let conf = tmp.path("receiver.yaml");
    let base = format!(
        "threads: 1\nwriters: 2\nbuffer-size: 4096\n\
         forward-to:\n  enable: true\n  remote: [127.0.0.1:{}]\n  format: json\n",
        sink.port
    );
    std::fs::write(&conf, &base).unwrap();
    let rport = free_port();
    let rp = rport.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rp,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    send_bidi(&Target::Tcp(rport), before, Ending::Stop);
    std::fs::write(
        &conf,
        format!("{base}transforms:\n  filtering:\n    drop-qtypes: [AAAA]\n"),
    )
    .unwrap();
    signal(rx.pid(), "HUP");
    rx.wait_log("reload: configuration generation 1 applied");
    send_bidi(&Target::Tcp(rport), after, Ending::Stop);
    // Another collector: refused, the running output and chains stay.
    std::fs::write(
        &conf,
        base.replace(&sink.port.to_string(), &free_port().to_string()),
    )
    .unwrap();
    signal(rx.pid(), "HUP");
    rx.wait_log("reload refused");
    assert!(
        rx.stderr().contains("writer threads run forward"),
        "{}",
        rx.stderr()
    );
    let done = rx.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let got = sink.got.join().unwrap();
    let removed = done.stat("transform-filtered");
    assert!(
        removed > 0,
        "no AAAA in the second half? {}",
        done.counters()
    );
    assert_eq!(line_count(&got) as u64 + removed, payloads.len() as u64);
    assert_eq!(done.stat("dropped"), 0, "{}", done.counters());
}
