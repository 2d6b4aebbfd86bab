//! The daemon end to end, on both I/O back-ends: captures replayed over unix and TCP must
//! print exactly what `dnstap_receiver -r FILE` prints for the same file (as multisets: order
//! across connections is free), whatever the way the stream ends.

mod support;

use std::io::Read;
use std::time::Duration;

use support::lab::{capture, capture_payloads, captures};
use support::receiver::{
    backends, free_port, lines, offline_lines, send_bidi, send_raw, sorted, Ending, Receiver,
    Target, TempDir,
};

fn expected(files: &[std::path::PathBuf], extra: &[&str]) -> Vec<String> {
    sorted(files.iter().flat_map(|f| offline_lines(f, extra)).collect())
}

/// Every capture, one connection after another, bidirectional handshake with STOP/FINISH.
fn replay_all(io: &str, unix: bool) {
    let dir = TempDir::new("replay");
    let sock = dir.path("r.sock");
    let port = free_port();
    let port_s = port.to_string();
    let (args, target) = if unix {
        (
            vec!["--io", io, "-u", sock.to_str().unwrap()],
            Target::Unix(sock.clone()),
        )
    } else {
        (
            vec!["--io", io, "-l", "127.0.0.1", "-p", &port_s],
            Target::Tcp(port),
        )
    };
    let files: Vec<_> = captures()
        .into_iter()
        .filter(|f| !f.to_string_lossy().contains("unidir"))
        .collect();
    let r = Receiver::start(&args);
    for f in &files {
        send_bidi(&target, &capture_payloads(f), Ending::Stop);
    }
    r.wait_closed(files.len());
    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let got = sorted(lines(&done.stdout));
    let want = expected(&files, &[]);
    assert_eq!(got.len(), want.len(), "record count ({io}, unix={unix})");
    assert!(got == want, "records differ ({io}, unix={unix})");
    assert!(
        !done.stderr.contains("WARN"),
        "unexpected warnings: {}",
        done.stderr
    );
}

#[test]
fn replay_every_capture_over_unix() {
    for io in backends("replay_every_capture_over_unix") {
        replay_all(io, true);
    }
}

#[test]
fn replay_every_capture_over_tcp() {
    for io in backends("replay_every_capture_over_tcp") {
        replay_all(io, false);
    }
}

#[test]
fn concurrent_connections_lose_nothing() {
    let files: Vec<_> = captures()
        .into_iter()
        .filter(|f| !f.to_string_lossy().contains("unidir"))
        .collect();
    for io in backends("concurrent_connections_lose_nothing") {
        let port = free_port();
        let ps = port.to_string();
        // More reader threads than CPUs: connections spread over several rings/epolls.
        let r = Receiver::start(&["--io", io, "--threads", "3", "-l", "127.0.0.1", "-p", &ps]);
        std::thread::scope(|s| {
            for f in &files {
                let t = Target::Tcp(port);
                s.spawn(move || send_bidi(&t, &capture_payloads(f), Ending::Stop));
            }
        });
        r.wait_closed(files.len());
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        let got = sorted(lines(&done.stdout));
        assert!(got == expected(&files, &[]), "{io}: records differ");
    }
}

#[test]
fn garbage_closes_only_that_connection() {
    let good = capture("nsd-unix.fstrm");
    for io in backends("garbage_closes_only_that_connection") {
        let dir = TempDir::new("garbage");
        let sock = dir.path("g.sock");
        let r = Receiver::start(&["--io", io, "-u", sock.to_str().unwrap()]);
        let t = Target::Unix(sock.clone());
        // An open good stream, then a garbage one, then the good one carries on.
        let payloads = capture_payloads(&good);
        let (first, rest) = payloads.split_at(payloads.len() / 2);
        let mut keep = send_bidi(&t, first, Ending::Open).unwrap();
        let mut bad = support::receiver::connect(&t);
        std::io::Write::write_all(&mut bad, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        // The receiver must close the garbage connection (EOF or reset; bounded by timeout).
        let _ = bad.read_to_end(&mut sink);
        r.wait_log("connection closed:");
        let mut out = Vec::new();
        for p in rest {
            dnstap_receiver::framestream::write_data_frame(p, &mut out);
        }
        dnstap_receiver::framestream::write_control_frame(
            dnstap_receiver::framestream::ControlType::Stop,
            None,
            &mut out,
        );
        std::io::Write::write_all(&mut keep, &out).unwrap();
        assert_eq!(support::receiver::read_control(&mut *keep), 5, "FINISH");
        drop(keep);
        r.wait_closed(2);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        let warns: Vec<_> = done.stderr.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warns.len(), 1, "one line for the bad peer: {}", done.stderr);
        assert!(
            warns[0].contains("unix ") && warns[0].contains("connection closed"),
            "{warns:?}"
        );
        assert!(
            sorted(lines(&done.stdout)) == expected(std::slice::from_ref(&good), &[]),
            "{io}"
        );
    }
}

#[test]
fn unidirectional_sender_is_accepted() {
    for io in backends("unidirectional_sender_is_accepted") {
        let dir = TempDir::new("unidir");
        let sock = dir.path("u.sock");
        let port = free_port();
        let ps = port.to_string();
        let r = Receiver::start(&["--io", io, "-u", sock.to_str().unwrap()]);
        let r2 = Receiver::start(&["--io", io, "-l", "127.0.0.1", "-p", &ps]);
        let fu = capture("unbound-unidir-unix.fstrm");
        let ft = capture("unbound-unidir-tcp.fstrm");
        // These captures are the raw byte stream: START, data..., STOP, no handshake.
        send_raw(&Target::Unix(sock.clone()), &std::fs::read(&fu).unwrap());
        send_raw(&Target::Tcp(port), &std::fs::read(&ft).unwrap());
        r.wait_closed(1);
        r2.wait_closed(1);
        for (rx, f) in [(r, fu), (r2, ft)] {
            let done = rx.stop();
            assert_eq!(done.code, Some(0));
            assert!(!done.stderr.contains("WARN"), "{}", done.stderr);
            assert!(sorted(lines(&done.stdout)) == expected(&[f], &[]), "{io}");
        }
    }
}

#[test]
fn eof_without_stop_is_clean_end() {
    let f = capture("dnsdist-tcp.fstrm");
    for io in backends("eof_without_stop_is_clean_end") {
        let port = free_port();
        let ps = port.to_string();
        let r = Receiver::start(&["--io", io, "-l", "127.0.0.1", "-p", &ps]);
        // dnsdist and pdns-recursor close without STOP.
        send_bidi(&Target::Tcp(port), &capture_payloads(&f), Ending::Eof);
        r.wait_closed(1);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        assert!(
            !done.stderr.contains("WARN"),
            "EOF after START is not an error: {}",
            done.stderr
        );
        assert!(
            sorted(lines(&done.stdout)) == expected(std::slice::from_ref(&f), &[]),
            "{io}"
        );
    }
}

#[test]
fn sigterm_flushes_everything() {
    let f = capture("bind-unix.fstrm");
    for io in backends("sigterm_flushes_everything") {
        let dir = TempDir::new("term");
        let sock = dir.path("t.sock");
        let r = Receiver::start(&["--io", io, "-u", sock.to_str().unwrap()]);
        // The stream stays open: the frames are in the receiver or its socket buffer when
        // SIGTERM arrives, and all of them must be printed.
        let open = send_bidi(
            &Target::Unix(sock.clone()),
            &capture_payloads(&f),
            Ending::Open,
        );
        let done = r.stop();
        drop(open);
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        let got = sorted(lines(&done.stdout));
        let want = expected(std::slice::from_ref(&f), &[]);
        assert_eq!(got.len(), want.len(), "{io}: records lost at shutdown");
        assert!(got == want, "{io}");
        assert!(!sock.exists(), "socket file removed at exit");
    }
}

#[test]
fn several_inputs_from_config_and_formats() {
    let f = capture("unbound-tcp.fstrm");
    for io in backends("several_inputs_from_config_and_formats") {
        let dir = TempDir::new("multi");
        let sock = dir.path("m.sock");
        let port = free_port();
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            format!(
                "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\nqueue:\n  capacity: 4\n",
                sock.display()
            ),
        )
        .unwrap();
        let r = Receiver::start(&["--io", io, "-c", cfg.to_str().unwrap(), "--format", "json"]);
        let p = capture_payloads(&f);
        send_bidi(&Target::Tcp(port), &p, Ending::Stop);
        send_bidi(&Target::Unix(sock.clone()), &p, Ending::Stop);
        r.wait_closed(2);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        let mut want = offline_lines(&f, &["--format", "json"]);
        want.extend(want.clone());
        assert!(sorted(lines(&done.stdout)) == sorted(want), "{io}");
    }
}

#[test]
fn fstrm_replay_as_a_real_peer() {
    let Some(fstrm_replay) =
        support::skip::need_program("fstrm_replay_as_a_real_peer", "fstrm_replay")
    else {
        return;
    };
    let f = capture("nsd-unix.fstrm");
    for io in backends("fstrm_replay_as_a_real_peer") {
        let dir = TempDir::new("fstrm");
        let sock = dir.path("f.sock");
        let r = Receiver::start(&["--io", io, "-u", sock.to_str().unwrap()]);
        let mut child = std::process::Command::new(&fstrm_replay)
            .args(["-t", "protobuf:dnstap.Dnstap", "-r"])
            .arg(&f)
            .arg("-u")
            .arg(&sock)
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(t0.elapsed() < Duration::from_secs(30), "fstrm_replay hung");
            // A poll step; the loop has a deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
        r.wait_closed(1);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        assert!(
            sorted(lines(&done.stdout)) == expected(std::slice::from_ref(&f), &[]),
            "{io}"
        );
    }
}

#[test]
fn tiny_buffers_exercise_straddling_and_oversize_frames() {
    // 1 KiB buffers: most frames straddle two receives, and the larger ones (big TXT
    // answers) do not fit a buffer at all and take the oversize path.
    let files = [capture("unbound-unix.fstrm"), capture("bind-unix.fstrm")];
    for io in backends("tiny_buffers") {
        let dir = TempDir::new("tiny");
        let sock = dir.path("t.sock");
        let cfg = dir.path("c.yaml");
        std::fs::write(&cfg, "buffer-size: 1024\nqueue:\n  capacity: 2\n").unwrap();
        let r = Receiver::start(&[
            "--io",
            io,
            "-c",
            cfg.to_str().unwrap(),
            "-u",
            sock.to_str().unwrap(),
        ]);
        std::thread::scope(|s| {
            for f in &files {
                let t = Target::Unix(sock.clone());
                s.spawn(move || send_bidi(&t, &capture_payloads(f), Ending::Stop));
            }
        });
        r.wait_closed(files.len());
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        assert!(sorted(lines(&done.stdout)) == expected(&files, &[]), "{io}");
    }
}

#[test]
fn stalled_output_blocks_without_loss() {
    let f = capture("unbound-unix.fstrm");
    for io in backends("stalled_output_blocks_without_loss") {
        let dir = TempDir::new("block");
        let sock = dir.path("b.sock");
        let cfg = dir.path("c.yaml");
        std::fs::write(&cfg, "buffer-size: 8192\nqueue:\n  capacity: 1\n").unwrap();
        let r = Receiver::start_paused(
            &[
                "--io",
                io,
                "-c",
                cfg.to_str().unwrap(),
                "-u",
                sock.to_str().unwrap(),
            ],
            Duration::from_millis(1500),
        );
        send_bidi(
            &Target::Unix(sock.clone()),
            &capture_payloads(&f),
            Ending::Stop,
        );
        r.wait_closed(1);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        assert_eq!(support::receiver::last_stat(&done.stderr, "dropped"), 0);
        assert!(
            sorted(lines(&done.stdout)) == expected(std::slice::from_ref(&f), &[]),
            "{io}"
        );
    }
}

#[test]
fn stalled_output_with_drop_policy_counts_every_drop() {
    let f = capture("unbound-unix.fstrm");
    let total = capture_payloads(&f).len() as u64;
    for io in backends("stalled_output_with_drop_policy") {
        let dir = TempDir::new("drop");
        let sock = dir.path("d.sock");
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            "buffer-size: 8192\nqueue:\n  capacity: 1\n  policy: drop\n",
        )
        .unwrap();
        let r = Receiver::start_paused(
            &[
                "--io",
                io,
                "-c",
                cfg.to_str().unwrap(),
                "-u",
                sock.to_str().unwrap(),
            ],
            Duration::from_millis(1500),
        );
        send_bidi(
            &Target::Unix(sock.clone()),
            &capture_payloads(&f),
            Ending::Stop,
        );
        r.wait_closed(1);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        let printed = lines(&done.stdout).len() as u64;
        let dropped = support::receiver::last_stat(&done.stderr, "dropped");
        let written = support::receiver::last_stat(&done.stderr, "written");
        assert_eq!(support::receiver::last_stat(&done.stderr, "frames"), total);
        assert!(
            dropped > 0,
            "{io}: a stalled output must drop with this policy"
        );
        assert_eq!(
            written + dropped,
            total,
            "{io}: every frame written or counted as dropped"
        );
        // Text records are one line each.
        assert_eq!(printed, written, "{io}");
    }
}

#[test]
fn a_hundred_concurrent_senders() {
    let f = support::lab::lab_dir().join("captures/wire/nsd-wire.fstrm");
    let payloads = capture_payloads(&f);
    let one = offline_lines(&f, &[]);
    for io in backends("a_hundred_concurrent_senders") {
        let dir = TempDir::new("hundred");
        let sock = dir.path("h.sock");
        let port = free_port();
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            format!(
                "inputs:\n  - tcp: 127.0.0.1:{port}\n  - unix: {}\n",
                sock.display()
            ),
        )
        .unwrap();
        let r = Receiver::start(&["--io", io, "-c", cfg.to_str().unwrap()]);
        std::thread::scope(|s| {
            for i in 0..100 {
                let t = if i % 2 == 0 {
                    Target::Tcp(port)
                } else {
                    Target::Unix(sock.clone())
                };
                let p = &payloads;
                let ending = if i % 3 == 0 {
                    Ending::Eof
                } else {
                    Ending::Stop
                };
                s.spawn(move || send_bidi(&t, p, ending));
            }
        });
        r.wait_closed(100);
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        assert!(!done.stderr.contains("WARN"), "{}", done.stderr);
        let mut want = Vec::new();
        for _ in 0..100 {
            want.extend(one.iter().cloned());
        }
        let got = sorted(lines(&done.stdout));
        assert_eq!(got.len(), want.len(), "{io}");
        assert!(got == sorted(want), "{io}");
    }
}

#[test]
fn filters_run_before_decode_and_match_offline() {
    let files = [capture("nsd-unix.fstrm"), capture("unbound-tcp.fstrm")];
    let dir = TempDir::new("filter");
    let cfg = dir.path("f.yaml");
    // Prefix semantics (Python re.match): "lab-n" keeps lab-nsd only; the qname filter keeps
    // names starting with "host" or "www".
    std::fs::write(
        &cfg,
        "filter:\n  dnstap-identities: lab-n\n  qname-regex: \"(host|www)\"\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let want = sorted(
        files
            .iter()
            .flat_map(|f| offline_lines(f, &["-c", c]))
            .collect(),
    );
    let all: usize = files.iter().map(|f| capture_payloads(f).len()).sum();
    assert!(
        !want.is_empty() && want.len() < all,
        "the filter keeps some, not all"
    );
    for io in backends("filters_run_before_decode_and_match_offline") {
        let port = free_port();
        let ps = port.to_string();
        let r = Receiver::start(&["--io", io, "-c", c, "-l", "127.0.0.1", "-p", &ps]);
        for f in &files {
            send_bidi(&Target::Tcp(port), &capture_payloads(f), Ending::Stop);
        }
        r.wait_closed(files.len());
        let done = r.stop();
        assert_eq!(done.code, Some(0));
        assert!(sorted(lines(&done.stdout)) == want, "{io}");
        let filtered = support::receiver::last_stat(&done.stderr, "filtered");
        assert_eq!(
            filtered as usize,
            all - want.len(),
            "{io}: rejected frames are counted"
        );
        assert_eq!(
            support::receiver::last_stat(&done.stderr, "written") as usize,
            want.len()
        );
    }
}

/// `--reuse-port`: two receivers listen on one TCP port and the kernel spreads the senders
/// between them; together they print every record once. Without the flag the second one
/// fails to start, naming its address.
#[test]
fn reuse_port_lets_two_receivers_share_a_port() {
    let cap = capture("unbound-tcp.fstrm");
    let payloads = capture_payloads(&cap);
    const SENDERS: usize = 32;
    for io in backends("reuse_port_lets_two_receivers_share_a_port") {
        let port = free_port();
        let ps = port.to_string();
        let args = ["--io", io, "-l", "127.0.0.1", "-p", &ps, "--format", "json"];
        let first = Receiver::start(&args);
        let refused = support::receiver::run_to_exit(&args);
        assert_ne!(
            refused.code,
            Some(0),
            "{io}: a second listener without the flag"
        );
        assert!(
            refused.stderr.contains(&format!("tcp 127.0.0.1:{port}")),
            "{io}: {}",
            refused.stderr
        );
        first.stop();

        let with = [&args[..], &["--reuse-port"]].concat();
        let a = Receiver::start(&with);
        let b = Receiver::start(&with);
        std::thread::scope(|s| {
            for _ in 0..SENDERS {
                let payloads = &payloads;
                s.spawn(move || send_bidi(&Target::Tcp(port), payloads, Ending::Stop));
            }
        });
        let closed = |r: &Receiver| {
            let s = r.stderr();
            s.matches(": closed").count() + s.matches("connection closed:").count()
        };
        let t0 = std::time::Instant::now();
        while closed(&a) + closed(&b) < SENDERS {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{io}: senders not all closed"
            );
            // A poll step; the loop has a deadline.
            std::thread::sleep(Duration::from_millis(20));
        }
        let (a, b) = (a.stop(), b.stop());
        assert_eq!(
            (a.code, b.code),
            (Some(0), Some(0)),
            "{io}: {}{}",
            a.stderr,
            b.stderr
        );
        let (na, nb) = (lines(&a.stdout).len(), lines(&b.stdout).len());
        assert_eq!(
            na + nb,
            SENDERS * payloads.len(),
            "{io}: records lost or doubled"
        );
        // 32 connections hashed over two sockets: all on one has odds of 2^-31.
        assert!(
            na > 0 && nb > 0,
            "{io}: one receiver got every connection ({na}, {nb})"
        );
    }
}

/// `--writers 3`: three threads decode and format in parallel, and stdout is still exactly
/// what one writer prints, in the same order: one connection after another through one
/// reader thread, compared line by line (not as multisets) with the offline output. Small
/// buffers make many batches, so the writers take turns many times.
#[test]
fn several_writers_keep_the_output_in_order() {
    let files: Vec<_> = captures()
        .into_iter()
        .filter(|f| !f.to_string_lossy().contains("unidir"))
        .collect();
    let want: Vec<String> = files.iter().flat_map(|f| offline_lines(f, &[])).collect();
    for io in backends("several_writers_keep_the_output_in_order") {
        let dir = TempDir::new("writers");
        let sock = dir.path("w.sock");
        let cfg = dir.path("c.yaml");
        std::fs::write(
            &cfg,
            "buffer-size: 4096\nqueue:\n  capacity: 4\nwriters: 3\n",
        )
        .unwrap();
        let r = Receiver::start(&[
            "--io",
            io,
            "--threads",
            "1",
            "-c",
            cfg.to_str().unwrap(),
            "-u",
            sock.to_str().unwrap(),
        ]);
        assert!(r.stderr().contains("3 writer thread(s)"), "{}", r.stderr());
        for f in &files {
            send_bidi(
                &Target::Unix(sock.clone()),
                &capture_payloads(f),
                Ending::Stop,
            );
        }
        r.wait_closed(files.len());
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        let got = lines(&done.stdout);
        assert_eq!(got.len(), want.len(), "{io}: records lost or doubled");
        let first_diff = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first_diff, None, "{io}: output out of order");
        assert_eq!(
            support::receiver::last_stat(&done.stderr, "written") as usize,
            want.len()
        );
    }
}
