//! Hostile peers over real sockets, on both I/O back-ends and both socket kinds.
//!
//! One receiver per (back-end, transport) runs every case in turn while a well-behaved sender
//! keeps a connection open on the same transport and sends a real capture in slices between
//! the cases. After each case:
//! - a peer that broke the Frame Streams protocol sees its connection closed (EOF or reset,
//!   never a read timeout), and the log gained exactly one WARN line, naming that peer (its
//!   TCP port) and saying what was wrong;
//! - a peer whose framing was sound but whose payload was not (garbage protobuf, DNS
//!   compression loops, over-long names) keeps its connection (STOP is answered with FINISH):
//!   garbage protobuf is counted in `decode-errors` and logged once; a malformed DNS message
//!   is still printed, marked `malformed` with the reason, and logged nowhere (a DNS server
//!   relays whatever its clients send, so a log line per message would let any client write
//!   to our log).
//!
//! At the end the good sender's records must all be there (the `-r` output of the same
//! capture is the oracle), the process must still be running until SIGTERM, exit 0, and
//! never have printed "panicked".

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use support::lab::{capture, capture_payloads};
use support::receiver::{
    backends, free_port, last_stat, lines, offline_lines, read_control, sorted, wait_until,
    Receiver, TempDir,
};

/// `max-frame-size` of the receivers here: small, so "over the limit" is cheap to send.
const MAX_FRAME: usize = 65_536;
/// Format of the receivers here: json-full shows the DNS error of a malformed message.
const FORMAT: &str = "json-full";
/// How long a case may take to be noticed (a closed socket, a log line).
const CASE_DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// A peer we control byte by byte.

#[derive(Clone, Debug)]
enum Transport {
    Tcp(u16),
    Unix(PathBuf),
}

enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Peer {
    fn dial(t: &Transport) -> Peer {
        let t0 = Instant::now();
        loop {
            let r = match t {
                Transport::Tcp(port) => TcpStream::connect(("127.0.0.1", *port)).map(Peer::Tcp),
                Transport::Unix(path) => UnixStream::connect(path).map(Peer::Unix),
            };
            match r {
                Ok(p) => {
                    let timeout = Some(CASE_DEADLINE);
                    match &p {
                        Peer::Tcp(s) => {
                            s.set_read_timeout(timeout).unwrap();
                            s.set_write_timeout(timeout).unwrap();
                        }
                        Peer::Unix(s) => {
                            s.set_read_timeout(timeout).unwrap();
                            s.set_write_timeout(timeout).unwrap();
                        }
                    }
                    return p;
                }
                Err(e) => {
                    assert!(t0.elapsed() < CASE_DEADLINE, "connect {t:?}: {e}");
                    // A poll step; the loop has a deadline.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// What the receiver's log calls this peer, as far as the peer can know it: the TCP
    /// source address, or the socket path.
    fn log_name(&self, t: &Transport) -> String {
        match (self, t) {
            (Peer::Tcp(s), _) => format!("tcp {}", s.local_addr().unwrap()),
            (Peer::Unix(_), Transport::Unix(p)) => format!("unix {}", p.display()),
            (Peer::Unix(_), Transport::Tcp(_)) => unreachable!(),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Peer::Tcp(s) => s.shutdown(Shutdown::Write),
            Peer::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Reads until the receiver closes. Panics when it does not within the deadline.
    fn expect_closed(&mut self, case: &str) {
        let mut sink = [0u8; 4096];
        let t0 = Instant::now();
        loop {
            assert!(
                t0.elapsed() < CASE_DEADLINE,
                "{case}: connection not closed"
            );
            match self.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) => match e.kind() {
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => return,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => panic!("{case}: the receiver did not close the connection: {e}"),
                },
            }
        }
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Peer::Tcp(s) => s.read(buf),
            Peer::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Peer::Tcp(s) => s.write(buf),
            Peer::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes: frames, dnstap payloads, DNS messages.

fn ctrl(t: ControlType, content_type: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::new();
    write_control_frame(t, content_type, &mut v);
    v
}

fn ready() -> Vec<u8> {
    ctrl(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE))
}

fn start() -> Vec<u8> {
    ctrl(ControlType::Start, Some(DNSTAP_CONTENT_TYPE))
}

fn stop() -> Vec<u8> {
    ctrl(ControlType::Stop, None)
}

fn data(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_data_frame(payload, &mut v);
    v
}

use support::pb::{field_bytes, field_varint};

/// A dnstap `Dnstap { identity, type: MESSAGE, message: Message { type: CLIENT_QUERY,
/// family INET, protocol UDP, query_time_sec, query_message: dns } }` (dnstap.proto field
/// numbers), encoded here by hand.
fn dnstap_payload(identity: &str, dns: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    field_varint(1, 5, &mut m); // Message.type = CLIENT_QUERY
    field_varint(2, 1, &mut m); // socket_family = INET
    field_varint(3, 1, &mut m); // socket_protocol = UDP
    field_varint(8, 1_700_000_000, &mut m); // query_time_sec
    field_bytes(10, dns, &mut m); // query_message
    let mut d = Vec::new();
    field_bytes(1, identity.as_bytes(), &mut d); // Dnstap.identity
    field_bytes(14, &m, &mut d); // Dnstap.message
    field_varint(15, 1, &mut d); // Dnstap.type = MESSAGE
    d
}

/// RFC 1035 §4.1.1 header of a query with one question.
fn dns_header() -> Vec<u8> {
    vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
}

fn dns_with_name(name: &[u8]) -> Vec<u8> {
    let mut m = dns_header();
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]); // A IN
    m
}

/// `www.example.test.` A IN: a sound query.
fn dns_good() -> Vec<u8> {
    dns_with_name(b"\x03www\x07example\x04test\x00")
}

/// The question name is a compression pointer to itself (offset 12).
fn dns_pointer_to_itself() -> Vec<u8> {
    dns_with_name(&[0xc0, 12])
}

/// Two pointers pointing at each other: 12 → 14 → 12.
fn dns_pointer_loop() -> Vec<u8> {
    dns_with_name(&[0xc0, 14, 0xc0, 12])
}

/// Five 63-byte labels: 321 bytes of name, over the 255-byte limit.
fn dns_name_too_long() -> Vec<u8> {
    let mut name = Vec::new();
    for _ in 0..5 {
        name.push(63);
        name.extend_from_slice(&[b'a'; 63]);
    }
    name.push(0);
    dns_with_name(&name)
}

/// A 64-byte label: its length byte 0x40 is a reserved label type.
fn dns_label_too_long() -> Vec<u8> {
    let mut name = vec![64];
    name.extend_from_slice(&[b'b'; 64]);
    name.push(0);
    dns_with_name(&name)
}

/// Every label sound and every pointer backwards, but the name they spell is 321 bytes:
/// the question at 12 is three 63-byte labels; an answer's owner name adds two more and
/// points back at it.
fn dns_too_long_through_pointers() -> Vec<u8> {
    let mut m = dns_header();
    m[7] = 1; // ancount = 1
    for _ in 0..3 {
        m.push(63);
        m.extend_from_slice(&[b'c'; 63]);
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    for _ in 0..2 {
        m.push(63);
        m.extend_from_slice(&[b'd'; 63]);
    }
    m.extend_from_slice(&[0xc0, 12]);
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    m
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// What a case sends and what must follow.
struct Case {
    name: &'static str,
    /// The bytes, sent in one write.
    bytes: Vec<u8>,
    /// Close our sending side after the bytes (an EOF where the receiver wants more).
    eof: bool,
    expect: Expect,
}

enum Expect {
    /// The receiver closes this connection and logs one WARN line containing the text.
    Closed(&'static str),
    /// The stream is sound (the bytes end with STOP): FINISH comes back, no WARN line.
    /// `record`: a printed record with this identity must contain this text.
    Printed {
        identity: &'static str,
        contains: &'static [&'static str],
    },
    /// Sound stream of undecodable payloads: FINISH comes back, one WARN line with the text.
    Undecodable(&'static str),
}

fn with_handshake(bidi: bool, rest: &[u8]) -> Vec<u8> {
    let mut v = if bidi { ready() } else { Vec::new() };
    v.extend(start());
    v.extend_from_slice(rest);
    v
}

fn closing(name: &'static str, bytes: Vec<u8>, eof: bool, log: &'static str) -> Case {
    Case {
        name,
        bytes,
        eof,
        expect: Expect::Closed(log),
    }
}

fn dns_case(
    name: &'static str,
    identity: &'static str,
    dns: Vec<u8>,
    contains: &'static [&'static str],
) -> Case {
    let mut rest = data(&dnstap_payload(identity, &dns));
    rest.extend(stop());
    Case {
        name,
        bytes: with_handshake(true, &rest),
        eof: false,
        expect: Expect::Printed { identity, contains },
    }
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();

    // The handshake.
    v.push(closing(
        "wrong content type in READY",
        ctrl(ControlType::Ready, Some(b"protobuf:other.Type")),
        false,
        "content type mismatch",
    ));
    v.push(closing(
        "wrong content type in START",
        ctrl(ControlType::Start, Some(b"protobuf:other.Type")),
        false,
        "content type mismatch",
    ));
    let big_type = vec![b'x'; 600];
    v.push(closing(
        "control frame over 512 bytes",
        ctrl(ControlType::Ready, Some(&big_type)),
        false,
        "control frame of 612 bytes exceeds the limit of 512",
    ));
    v.push(closing(
        "zero-length control frame",
        vec![0; 8],
        false,
        "control frame of 0 bytes is too short",
    ));
    v.push(closing(
        "unknown control type",
        vec![0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x99],
        false,
        "unknown control frame type 0x99",
    ));
    v.push(closing(
        "data frame before START",
        data(&dnstap_payload("hostile-early", &dns_good())),
        false,
        "before START",
    ));
    v.push(closing(
        "not Frame Streams at all",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        false,
        "data frame of 1195725856 bytes before START",
    ));

    // Frames after the handshake.
    let mut over = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    over.extend_from_slice(&[0; 100]);
    v.push(closing(
        "data frame over max-frame-size",
        with_handshake(true, &over),
        false,
        "data frame of 65537 bytes exceeds the limit of 65536 bytes",
    ));
    let mut huge = u32::MAX.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 10]);
    v.push(closing(
        "data frame announcing 4 GiB",
        with_handshake(false, &huge),
        false,
        "data frame of 4294967295 bytes exceeds the limit",
    ));
    let mut cut = data(&dnstap_payload("hostile-cut", &dns_good()));
    cut.truncate(cut.len() - 7);
    v.push(closing(
        "truncated data frame",
        with_handshake(true, &cut),
        true,
        "closed in the middle of a frame",
    ));
    let mut cut_ctl = start();
    cut_ctl.truncate(cut_ctl.len() - 3);
    v.push(closing(
        "truncated control frame",
        cut_ctl,
        true,
        "closed in the middle of a frame",
    ));
    v.push(closing(
        "only half a frame header",
        with_handshake(false, &[0, 0]),
        true,
        "closed in the middle of a frame",
    ));
    let mut after = data(&dnstap_payload("hostile-before-stop", &dns_good()));
    after.extend(stop());
    after.extend(data(&dnstap_payload("hostile-after-stop", &dns_good())));
    v.push(closing(
        "bytes after STOP",
        with_handshake(true, &after),
        false,
        "after STOP",
    ));

    // Sound frames, hostile payloads.
    let mut garbage = Vec::new();
    for g in [
        &[0xffu8; 40][..],
        b"\x0a\x05ab",
        b"\x72\x80\x80\x80\x80\x10",
    ] {
        garbage.extend(data(g));
    }
    garbage.extend(data(&dnstap_payload("hostile-after-garbage", &dns_good())));
    garbage.extend(stop());
    v.push(Case {
        name: "garbage protobuf",
        bytes: with_handshake(true, &garbage),
        eof: false,
        expect: Expect::Undecodable("undecodable dnstap message(s) skipped"),
    });
    v.push(dns_case(
        "DNS compression pointer to itself",
        "hostile-self-pointer",
        dns_pointer_to_itself(),
        &["\"malformed\":true", "bad compression pointer"],
    ));
    v.push(dns_case(
        "DNS compression loop",
        "hostile-pointer-loop",
        dns_pointer_loop(),
        &["\"malformed\":true", "bad compression pointer"],
    ));
    v.push(dns_case(
        "DNS name over 255 bytes",
        "hostile-long-name",
        dns_name_too_long(),
        &["\"malformed\":true", "name too long"],
    ));
    v.push(dns_case(
        "DNS label over 63 bytes",
        "hostile-long-label",
        dns_label_too_long(),
        &["\"malformed\":true", "bad label"],
    ));
    v.push(dns_case(
        "DNS name over 255 bytes through pointers",
        "hostile-long-via-pointers",
        dns_too_long_through_pointers(),
        &["\"malformed\":true", "name too long"],
    ));
    // A sound message on a fresh connection: the oracle that the above are the only
    // malformed ones.
    v.push(dns_case(
        "sound message",
        "hostile-control-sound",
        dns_good(),
        &["www.example.test."],
    ));
    v
}

fn warn_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" WARN "))
        .map(str::to_owned)
        .collect()
}

/// Connection ends in a log: one line each (`: closed`, `connection closed:`), written
/// after every other line about that connection.
fn closes(log: &str) -> usize {
    log.matches(": closed").count() + log.matches("connection closed:").count()
}

/// Waits until the log shows more than `closes_before` connection ends (so every line about
/// the connection of the case is written) and more than `before` WARN lines; returns the
/// new WARN lines.
fn new_warnings(r: &Receiver, before: usize, closes_before: usize, case: &str) -> Vec<String> {
    wait_until(
        CASE_DEADLINE,
        || {
            let log = r.stderr();
            closes(&log) > closes_before && warn_lines(&log).len() > before
        },
        || {
            format!(
                "{case}: no WARN line or no end of the connection: {}",
                r.stderr()
            )
        },
    );
    warn_lines(&r.stderr()).split_off(before)
}

/// Runs one case against the receiver; returns how many decode errors it caused.
fn run_case(r: &Receiver, t: &Transport, case: &Case, what: &str) -> u64 {
    let before = warn_lines(&r.stderr()).len();
    let closes_before = closes(&r.stderr());
    let mut peer = Peer::dial(t);
    let name = peer.log_name(t);
    // The receiver may close before it has read everything (that is the point of several
    // cases), so a failed write is not a failure here.
    let _ = peer.write_all(&case.bytes);
    if case.eof {
        peer.shutdown_write();
    }
    let what = format!("{what}: {}", case.name);
    match &case.expect {
        Expect::Closed(text) => {
            peer.expect_closed(&what);
            let new = new_warnings(r, before, closes_before, &what);
            assert_eq!(new.len(), 1, "{what}: one WARN line: {new:#?}");
            assert!(new[0].contains(text), "{what}: {:?} in {:?}", text, new[0]);
            assert!(
                new[0].contains(&format!("{name} #")),
                "{what}: the line names the peer {name}: {:?}",
                new[0]
            );
            0
        }
        Expect::Printed { .. } | Expect::Undecodable(_) => {
            assert_eq!(
                read_control(&mut peer),
                ControlType::Accept as u32,
                "{what}: ACCEPT"
            );
            assert_eq!(
                read_control(&mut peer),
                ControlType::Finish as u32,
                "{what}: FINISH: the connection outlived its hostile payload"
            );
            if let Expect::Undecodable(text) = &case.expect {
                let new = new_warnings(r, before, closes_before, &what);
                assert_eq!(new.len(), 1, "{what}: one WARN line: {new:#?}");
                assert!(new[0].contains(text), "{what}: {:?} in {:?}", text, new[0]);
                3
            } else {
                drop(peer);
                // The connection's end is logged after every other line about it.
                wait_until(
                    CASE_DEADLINE,
                    || closes(&r.stderr()) > closes_before,
                    || {
                        format!(
                            "{what}: the end of the connection is not logged: {}",
                            r.stderr()
                        )
                    },
                );
                let new = warn_lines(&r.stderr()).split_off(before);
                assert!(new.is_empty(), "{what}: no WARN line: {new:#?}");
                0
            }
        }
    }
}

/// Every case against one receiver on `io`, over TCP or a unix socket.
fn hostile_run(io: &str, unix: bool) {
    let what = format!("{io}/{}", if unix { "unix" } else { "tcp" });
    let dir = TempDir::new("hostile");
    let cfg = dir.path("c.yaml");
    // A qname filter that keeps everything: the reader threads then walk every hostile name
    // (the DFA on the wire form) before the writer formats it.
    std::fs::write(
        &cfg,
        format!("max-frame-size: {MAX_FRAME}\nfilter:\n  qname-regex: \"(?s).*\"\n"),
    )
    .unwrap();
    let sock = dir.path("h.sock");
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec!["--io", io, "--format", FORMAT, "-c", cfg.to_str().unwrap()];
    let t = if unix {
        args.extend(["-u", sock.to_str().unwrap()]);
        Transport::Unix(sock.clone())
    } else {
        args.extend(["-l", "127.0.0.1", "-p", &port_s]);
        Transport::Tcp(port)
    };
    let r = Receiver::start(&args);

    // The well-behaved sender: a real capture, in slices between the cases.
    let good_file = capture("unbound-tcp.fstrm");
    let good = capture_payloads(&good_file);
    let cases = cases();
    let mut keep = Peer::dial(&t);
    keep.write_all(&ready()).unwrap();
    assert_eq!(read_control(&mut keep), ControlType::Accept as u32);
    keep.write_all(&start()).unwrap();
    let slice = good.len().div_ceil(cases.len() + 1).max(1);
    let mut slices = good.chunks(slice);
    let mut send_slice = |keep: &mut Peer| {
        if let Some(s) = slices.next() {
            let mut out = Vec::new();
            for p in s {
                write_data_frame(p, &mut out);
            }
            keep.write_all(&out).unwrap();
        }
    };
    send_slice(&mut keep);

    let mut decode_errors = 0;
    for case in &cases {
        decode_errors += run_case(&r, &t, case, &what);
        send_slice(&mut keep);
    }
    // Whatever is left of the capture, then the clean end.
    let sent: usize = good
        .chunks(slice)
        .take(cases.len() + 1)
        .map(<[_]>::len)
        .sum();
    let mut out = Vec::new();
    for p in &good[sent..] {
        write_data_frame(p, &mut out);
    }
    out.extend(stop());
    keep.write_all(&out).unwrap();
    assert_eq!(
        read_control(&mut keep),
        ControlType::Finish as u32,
        "{what}: the good connection is served to its end"
    );
    drop(keep);

    let pid = r.pid();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "{what}: the receiver is still running"
    );
    let done = r.stop();
    assert!(
        !done.stderr.contains("panicked"),
        "{what}: a panic: {}",
        done.stderr
    );
    assert_eq!(done.code, Some(0), "{what}: {}", done.stderr);

    // The good sender's records, all of them, and nothing else but the hostile records.
    let all = lines(&done.stdout);
    let (hostile, rest): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|l| l.contains("hostile-"));
    let want = sorted(offline_lines(&good_file, &["--format", FORMAT]));
    assert_eq!(rest.len(), want.len(), "{what}: good records");
    assert!(sorted(rest) == want, "{what}: good records differ");

    for case in &cases {
        if let Expect::Printed { identity, contains } = &case.expect {
            let id = format!("\"{identity}\"");
            let got: Vec<_> = hostile.iter().filter(|l| l.contains(&id)).collect();
            assert_eq!(got.len(), 1, "{what}: {}: one record", case.name);
            for c in contains.iter() {
                assert!(
                    got[0].contains(c),
                    "{what}: {}: {c:?} in {}",
                    case.name,
                    got[0]
                );
            }
        }
    }
    // Frames before an error are kept; nothing after it is read.
    for (identity, n) in [
        ("hostile-before-stop", 1),
        ("hostile-after-stop", 0),
        ("hostile-after-garbage", 1),
        ("hostile-early", 0),
        ("hostile-cut", 0),
    ] {
        let id = format!("\"{identity}\"");
        let got = hostile.iter().filter(|l| l.contains(&id)).count();
        assert_eq!(got, n, "{what}: records of {identity}");
    }
    let closing = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Closed(_)))
        .count() as u64;
    assert_eq!(last_stat(&done.stderr, "errors"), closing, "{what}: errors");
    assert_eq!(
        last_stat(&done.stderr, "decode-errors"),
        decode_errors,
        "{what}: decode-errors"
    );
    assert_eq!(
        last_stat(&done.stderr, "filtered"),
        0,
        "{what}: the filter keeps all"
    );
}

#[test]
fn hostile_peers_over_tcp() {
    for io in backends("hostile_peers_over_tcp") {
        hostile_run(io, false);
    }
}

#[test]
fn hostile_peers_over_unix() {
    for io in backends("hostile_peers_over_unix") {
        hostile_run(io, true);
    }
}

// ---------------------------------------------------------------------------------------------
// Handshakes that never complete: they need the receiver to give up on them.

/// The config key and value (seconds) that bound a Frame Streams handshake.
const HANDSHAKE_TIMEOUT: &str = "handshake-timeout: 2\n";

/// A peer that connects and then `behave`s; the receiver must close it after the handshake
/// timeout with one WARN line, while a good sender on the same transport is served.
fn stalled_handshake(io: &str, unix: bool, case: &str, behave: &dyn Fn(&mut Peer)) {
    let what = format!("{io}/{}: {case}", if unix { "unix" } else { "tcp" });
    let dir = TempDir::new("handshake");
    let cfg = dir.path("c.yaml");
    std::fs::write(&cfg, HANDSHAKE_TIMEOUT).unwrap();
    let sock = dir.path("h.sock");
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec!["--io", io, "-c", cfg.to_str().unwrap()];
    let t = if unix {
        args.extend(["-u", sock.to_str().unwrap()]);
        Transport::Unix(sock.clone())
    } else {
        args.extend(["-l", "127.0.0.1", "-p", &port_s]);
        Transport::Tcp(port)
    };
    let r = Receiver::start(&args);
    let mut stuck = Peer::dial(&t);
    let name = stuck.log_name(&t);
    behave(&mut stuck);

    // Meanwhile a good sender comes and goes.
    let good_file = capture("nsd-unix.fstrm");
    let mut good = Peer::dial(&t);
    let mut out = ready();
    good.write_all(&out).unwrap();
    assert_eq!(read_control(&mut good), ControlType::Accept as u32);
    out = start();
    for p in capture_payloads(&good_file) {
        write_data_frame(&p, &mut out);
    }
    out.extend(stop());
    good.write_all(&out).unwrap();
    assert_eq!(read_control(&mut good), ControlType::Finish as u32);

    // Closed by the receiver: an EOF (or reset) within the timeout and some slack.
    stuck.expect_closed(&what);
    // Both connections ended (the good one and the stuck one): 1 end before the last.
    let new = new_warnings(&r, 0, 1, &what);
    assert_eq!(new.len(), 1, "{what}: one WARN line: {new:#?}");
    assert!(new[0].contains("handshake"), "{what}: {:?}", new[0]);
    assert!(
        new[0].contains(&format!("{name} #")),
        "{what}: {:?}",
        new[0]
    );

    let done = r.stop();
    assert!(!done.stderr.contains("panicked"), "{what}: {}", done.stderr);
    assert_eq!(done.code, Some(0), "{what}: {}", done.stderr);
    let want = sorted(offline_lines(&good_file, &[]));
    assert!(sorted(lines(&done.stdout)) == want, "{what}: good records");
}

fn never_completes(p: &mut Peer) {
    // Half a READY, then silence.
    let r = ready();
    p.write_all(&r[..r.len() / 2]).unwrap();
}

fn ready_never_reads_accept(p: &mut Peer) {
    // READY, then neither a read (the ACCEPT waits in our receive buffer) nor START.
    p.write_all(&ready()).unwrap();
}

#[test]
fn handshake_that_never_completes_is_closed() {
    for io in backends("handshake_that_never_completes_is_closed") {
        for unix in [false, true] {
            stalled_handshake(io, unix, "handshake never completes", &never_completes);
        }
    }
}

#[test]
fn ready_without_reading_accept_is_closed() {
    for io in backends("ready_without_reading_accept_is_closed") {
        for unix in [false, true] {
            stalled_handshake(
                io,
                unix,
                "READY, ACCEPT never read",
                &ready_never_reads_accept,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// More connections than descriptors.

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// With its descriptors used up, the receiver must neither spin nor flood the log on the
/// connections it cannot accept, and must serve senders again once descriptors are free.
/// (The epoll back-end once re-polled a level-triggered listener at once after EMFILE:
/// tens of thousands of log lines a second and a core at 100 %.)
#[test]
fn out_of_descriptors_neither_spins_nor_floods() {
    const LIMIT: u32 = 48;
    const EXTRA: usize = 80;
    const HOLD: Duration = Duration::from_secs(2);
    let good_file = capture("nsd-unix.fstrm");
    for io in backends("out_of_descriptors_neither_spins_nor_floods") {
        let dir = TempDir::new("emfile");
        let (out, err) = (dir.path("out"), dir.path("err"));
        let port = free_port();
        // `ulimit -n` lowers both limits, so the receiver cannot raise its soft limit past them.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
            .arg(support::receiver::BIN)
            .args(["-v", "--io", io, "--threads", "1", "-l", "127.0.0.1"])
            .args(["-p", &port.to_string()])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let log = || std::fs::read_to_string(&err).unwrap_or_default();
        let t0 = Instant::now();
        while !log().contains("io back-end:") {
            assert!(t0.elapsed() < CASE_DEADLINE, "{io}: no start: {}", log());
            // A poll step; the loop has a deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id();
        let t = Transport::Tcp(port);
        let held: Vec<Peer> = (0..EXTRA).map(|_| Peer::dial(&t)).collect();
        // The limit is reached: the first failed accept is logged.
        wait_until(
            CASE_DEADLINE,
            || log().contains("accept failed"),
            || format!("{io}: the limit was not reached: {}", log()),
        );
        let (cpu0, lines0) = (cpu_seconds(pid), log().matches("accept failed").count());
        // Deliberate: the measuring window for CPU time and log lines while out of descriptors.
        std::thread::sleep(HOLD);
        let cpu = cpu_seconds(pid) - cpu0;
        let failed = log().matches("accept failed").count() - lines0;
        assert!(failed > 0, "{io}: the limit was not reached: {}", log());
        assert!(
            failed <= 40,
            "{io}: {failed} 'accept failed' lines in {HOLD:?}: a log flood"
        );
        assert!(cpu < 1.0, "{io}: {cpu:.2} s of CPU in {HOLD:?}: spinning");
        drop(held);

        // Descriptors free again: a sender is served.
        let mut good = Peer::dial(&t);
        let mut bytes = ready();
        good.write_all(&bytes).unwrap();
        assert_eq!(read_control(&mut good), ControlType::Accept as u32, "{io}");
        bytes = start();
        for p in capture_payloads(&good_file) {
            write_data_frame(&p, &mut bytes);
        }
        bytes.extend(stop());
        good.write_all(&bytes).unwrap();
        assert_eq!(read_control(&mut good), ControlType::Finish as u32, "{io}");
        drop(good);

        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > CASE_DEADLINE {
                let _ = child.kill();
                panic!("{io}: no exit: {}", log());
            }
            // A poll step; the loop has a deadline.
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{io}: {}", log());
        assert!(!log().contains("panicked"), "{io}");
        let got = sorted(lines(&std::fs::read(&out).unwrap()));
        assert!(
            got == sorted(offline_lines(&good_file, &[])),
            "{io}: the sender after the flood is printed"
        );
    }
}
