//! Input security, end to end through the binary on both I/O back-ends: `allow-from`
//! (IPv4 and IPv6 peers, TCP and TLS listeners; refusals counted and logged without
//! flooding), unix socket mode/owner/group and the stale-socket rule, and the handshake
//! timeout at each stage (before TLS, inside Frame Streams, after TLS before READY) while a
//! started connection may stay idle as long as it likes.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{write_control_frame, ControlType, DNSTAP_CONTENT_TYPE};
use support::lab::{capture, capture_payloads};
use support::receiver::{
    backends, connect_from, free_port, last_stat, lines, run_to_exit, send_bidi, Ending, Receiver,
    Target, TempDir,
};
use support::tls::{client_config, ready_accept, tls_connect, write_config, Ca};

fn ready_bytes() -> Vec<u8> {
    let mut v = Vec::new();
    write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), &mut v);
    v
}

/// True when the receiver closed the connection without a reply (refused).
fn closed_without_reply(mut s: TcpStream) -> bool {
    let _ = s.write_all(&ready_bytes());
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// allow-from 127.0.0.1 on a dual-stack `[::]` listener: 127.0.0.1 gets through (mapped to
/// IPv4), 127.0.0.2 and ::1 are refused and counted; 40 refusals log one line per address
/// plus at most one summary, never 40 lines.
#[test]
fn allow_from_admits_listed_peers_and_refuses_the_rest_quietly() {
    let cap = capture("dnsdist-tcp.fstrm");
    let payloads = capture_payloads(&cap);
    let v6 = support::skip::need_ipv6_loopback("allow_from_admits_listed_peers (the ::1 part)");
    let dir = TempDir::new("acl");
    for io in backends("allow-from") {
        let port = free_port();
        let cfg = write_config(
            &dir.0,
            &format!("inputs:\n  - tcp: \"[::]:{port}\"\nallow-from: [127.0.0.1/32]\n"),
        );
        let r = Receiver::start(&["-c", &cfg, "--io", io, "--format", "json"]);
        let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut refused = 0;
        for _ in 0..20 {
            let s = connect_from("127.0.0.2".parse().unwrap(), dst).unwrap();
            assert!(closed_without_reply(s), "{io}: 127.0.0.2 got a reply");
            refused += 1;
            if v6 {
                let d6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
                let s = connect_from("::1".parse().unwrap(), d6).unwrap();
                assert!(closed_without_reply(s), "{io}: ::1 got a reply");
                refused += 1;
            }
        }
        // The allowed peer, after and despite the refusals.
        send_bidi(&Target::Tcp(port), &payloads, Ending::Stop);
        r.wait_closed(1);
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert_eq!(lines(&done.stdout).len(), payloads.len(), "{io}");
        assert_eq!(last_stat(&done.stderr, "refused-acl"), refused, "{io}");
        assert_eq!(
            last_stat(&done.stderr, "accepted"),
            1,
            "{io}: refused peers are not accepted"
        );
        let firsts = done.stderr.matches("is not in allow-from").count();
        assert_eq!(firsts, if v6 { 2 } else { 1 }, "{io}: {}", done.stderr);
        let summaries = done.stderr.matches("allow-from: refused").count();
        assert!(
            summaries <= 1,
            "{io}: {summaries} summary lines: {}",
            done.stderr
        );
    }
}

/// A TLS listener applies the list before any TLS work: a refused peer sees the socket
/// close, not a handshake.
#[test]
fn allow_from_applies_to_tls_inputs() {
    let dir = TempDir::new("acl-tls");
    let ca = Ca::new("test-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "srv");
    for io in backends("allow-from tls") {
        let port = free_port();
        let cfg = write_config(
            &dir.0,
            &format!(
                "inputs:\n  - tls: 127.0.0.1:{port}\ntls:\n  server-cert: {}\n  server-key: {}\n\
                 allow-from: [\"127.0.0.2\"]\n",
                cert.display(),
                key.display()
            ),
        );
        let r = Receiver::start(&["-c", &cfg, "--io", io]);
        let mut c = tls_connect(port, &client_config(&ca.cert_pem, None, &[]));
        assert!(
            ready_accept(&mut c).is_err(),
            "{io}: 127.0.0.1 is not listed"
        );
        let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut ok = connect_from("127.0.0.2".parse().unwrap(), dst).unwrap();
        // A ClientHello from the listed peer gets a ServerHello (a handshake record, 22).
        let cfg = client_config(&ca.cert_pem, None, &[]);
        let mut conn = rustls::ClientConnection::new(
            cfg,
            rustls::pki_types::ServerName::try_from(support::tls::SERVER_NAME).unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        ok.write_all(&hello).unwrap();
        let mut b = [0u8; 1];
        ok.read_exact(&mut b).unwrap();
        assert_eq!(b[0], 22, "{io}: handshake record expected");
        drop(ok);
        let done = r.stop();
        assert_eq!(last_stat(&done.stderr, "refused-acl"), 1, "{io}");
        assert_eq!(last_stat(&done.stderr, "tls-failed"), 0, "{io}");
    }
}

/// Mode, owner and group of the socket file are set before anything connects; a bad group
/// name stops start-up naming the key.
#[test]
fn unix_socket_mode_owner_and_group() {
    let dir = TempDir::new("uperm");
    let sock = dir.path("r.sock");
    // As root, hand the socket to nobody:nogroup (65534); otherwise keep our own ids.
    let me = std::fs::metadata(&dir.0).unwrap();
    let root = support::skip::need_root(
        "unix_socket_mode_owner_and_group (handing the socket to another user)",
    );
    let (owner, group) = if root {
        ("65534".to_string(), "65534".to_string())
    } else {
        (me.uid().to_string(), me.gid().to_string())
    };
    for (mode_text, mode) in [("\"0660\"", 0o660), ("600", 0o600)] {
        let cfg = write_config(
            &dir.0,
            &format!(
                "input-mode:\n  unix-socket: {}\nunix-socket-mode: {mode_text}\n\
                 unix-socket-owner: {owner}\nunix-socket-group: {group}\n",
                sock.display()
            ),
        );
        let r = Receiver::start(&["-c", &cfg]);
        let m = std::fs::metadata(&sock).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{mode_text}");
        assert_eq!(m.uid().to_string(), owner);
        assert_eq!(m.gid().to_string(), group);
        // Root still connects; the kernel enforces the mode for others.
        send_bidi(&Target::Unix(sock.clone()), &[b"x".to_vec()], Ending::Stop);
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert!(!sock.exists(), "socket file removed at exit");
    }
    let cfg = write_config(
        &dir.0,
        &format!(
            "input-mode:\n  unix-socket: {}\nunix-socket-group: no-such-group-dnstap-test\n",
            sock.display()
        ),
    );
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("unix-socket-group") && done.stderr.contains("no such group"),
        "{}",
        done.stderr
    );
    let cfg = write_config(
        &dir.0,
        &format!(
            "input-mode:\n  unix-socket: {}\nunix-socket-mode: rw-rw----\n",
            sock.display()
        ),
    );
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(done.stderr.contains("unix-socket-mode"), "{}", done.stderr);
}

/// A socket file nobody listens on is replaced; one with a live listener is not stolen.
#[test]
fn stale_socket_is_replaced_but_a_live_one_is_not_stolen() {
    let dir = TempDir::new("ustale");
    let sock = dir.path("r.sock");
    drop(UnixListener::bind(&sock).unwrap()); // leaves the file behind, nobody listening
    assert!(sock.exists());
    let r = Receiver::start(&["-u", sock.to_str().unwrap()]);
    send_bidi(&Target::Unix(sock.clone()), &[b"y".to_vec()], Ending::Stop);
    assert_eq!(r.stop().code, Some(0));

    let live = UnixListener::bind(&sock).unwrap();
    let done = run_to_exit(&["-u", sock.to_str().unwrap()]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("another process is listening"),
        "{}",
        done.stderr
    );
    // The other process keeps its socket.
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok());
    assert!(live.accept().is_ok());
}

/// How long the receiver took to close `s` (it must, within `limit`).
fn time_to_close(s: &mut impl Read, since: Instant, limit: Duration) -> Duration {
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            // A signal to the test process (another test's child exiting) interrupts the
            // read; that is not the receiver closing the connection.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) => return since.elapsed(),
            Err(e) => {
                let d = since.elapsed();
                // The close the receiver makes is an EOF or a reset; a read timeout means it
                // never closed.
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "still open after {d:?} ({e})"
                );
                eprintln!("closed with {e} after {d:?}");
                return d;
            }
            Ok(_) => assert!(since.elapsed() < limit, "still open after {limit:?}"),
        }
    }
}

/// handshake-timeout 1 s: a client silent before TLS, one stuck inside Frame Streams (READY
/// but no START, over TCP and over TLS), one silent after TLS, are each cut off after about
/// a second and counted; a started connection idle for longer is left alone.
#[test]
fn slow_handshakes_are_cut_off_on_time() {
    let dir = TempDir::new("slow");
    let ca = Ca::new("test-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "srv");
    let tls_cfg = client_config(&ca.cert_pem, None, &[]);
    let limit = Duration::from_secs(8);
    // The receiver's log goes into the message: an early close names its reason there.
    let window = |r: &Receiver, io: &str, what: &str, d: Duration| {
        assert!(
            d >= Duration::from_millis(900) && d < Duration::from_secs(5),
            "{io}: {what}: closed after {d:?}, want about 1 s; receiver log:\n{}",
            r.stderr()
        );
    };
    for io in backends("handshake timeout") {
        let (plain, secure) = (free_port(), free_port());
        let cfg = write_config(
            &dir.0,
            &format!(
                "inputs:\n  - tcp: 127.0.0.1:{plain}\n  - tls: 127.0.0.1:{secure}\n\
                 tls:\n  server-cert: {}\n  server-key: {}\nhandshake-timeout: 1\n",
                cert.display(),
                key.display()
            ),
        );
        // One reader thread: its deadlines are checked in accept order (see below).
        let r = Receiver::start(&["-c", &cfg, "--io", io, "--format", "json", "--threads", "1"]);

        // A started stream that idles past the timeout, checked last.
        let mut started = TcpStream::connect(("127.0.0.1", plain)).unwrap();
        started.set_read_timeout(Some(limit)).unwrap();
        ready_accept(&mut started).unwrap();
        let mut start = Vec::new();
        write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut start);
        started.write_all(&start).unwrap();

        // Stage 1: TCP connected, nothing sent (before TLS / before READY).
        let t0 = Instant::now();
        let mut silent = TcpStream::connect(("127.0.0.1", secure)).unwrap();
        silent.set_read_timeout(Some(limit)).unwrap();
        let t0p = Instant::now();
        let mut silent_plain = TcpStream::connect(("127.0.0.1", plain)).unwrap();
        silent_plain.set_read_timeout(Some(limit)).unwrap();
        // Stage 2: READY/ACCEPT done, no START (plain and over TLS).
        let t1 = Instant::now();
        let mut no_start = TcpStream::connect(("127.0.0.1", plain)).unwrap();
        no_start.set_read_timeout(Some(limit)).unwrap();
        ready_accept(&mut no_start).unwrap();
        let t2 = Instant::now();
        let mut tls_no_start = tls_connect(secure, &tls_cfg);
        ready_accept(&mut tls_no_start).unwrap();
        // Stage 3: TLS handshake complete, no Frame Streams byte.
        let t3 = Instant::now();
        let mut tls_silent = tls_connect(secure, &tls_cfg);
        while tls_silent.conn.is_handshaking() {
            tls_silent.conn.complete_io(&mut tls_silent.sock).unwrap();
        }

        let d = time_to_close(&mut silent, t0, limit);
        window(&r, io, "silent before TLS", d);
        let d = time_to_close(&mut silent_plain, t0p, limit);
        window(&r, io, "silent plain", d);
        let d = time_to_close(&mut no_start, t1, limit);
        window(&r, io, "READY without START", d);
        let d = time_to_close(&mut tls_no_start, t2, limit);
        window(&r, io, "READY without START over TLS", d);
        let d = time_to_close(&mut tls_silent, t3, limit);
        window(&r, io, "silent after TLS", d);

        // Past the timeout: the started stream still works. One reader thread checks the
        // deadlines in accept order, so the later connections' timeouts above mean the
        // started stream's deadline was checked (and passed over) before them.
        send_data_after_start(&mut started);
        r.wait_closed(6);
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{io}: {}", done.stderr);
        assert_eq!(lines(&done.stdout).len(), 2, "{io}");
        assert_eq!(
            last_stat(&done.stderr, "handshake-timeouts"),
            5,
            "{io}: {}",
            done.stderr
        );
        assert_eq!(
            done.stderr
                .matches("handshake not complete after 1.0 s")
                .count(),
            5,
            "{io}: {}",
            done.stderr
        );
    }
}

/// Two data frames of a real capture then STOP on a stream already past START.
fn send_data_after_start(s: &mut TcpStream) {
    let payloads = capture_payloads(&capture("dnsdist-tcp.fstrm"));
    let mut out = Vec::new();
    for p in &payloads[..2] {
        dnstap_receiver::framestream::write_data_frame(p, &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    s.write_all(&out).unwrap();
    assert_eq!(
        support::tls::try_read_control(s).expect("FINISH"),
        ControlType::Finish as u32
    );
}
