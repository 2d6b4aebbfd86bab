//! Start-up of the binary: config errors name file, key and reason; unknown keys stop it;
//! flags override the file; unimplemented features fail loudly; unix socket files are
//! replaced only when stale.

mod support;

use std::os::unix::net::UnixListener;

use support::receiver::{free_port, run_to_exit, Receiver, TempDir};

fn write_cfg(dir: &TempDir, text: &str) -> String {
    let p = dir.path("cfg.yaml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn unknown_key_is_rejected_with_file_and_key() {
    let dir = TempDir::new("cfg-unknown");
    let cfg = write_cfg(
        &dir,
        "verbose: false\ninput-mode:\n  local-port: 6000\n  colour: blue\n",
    );
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains(&cfg),
        "names the file: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("input-mode.colour"),
        "names the key: {}",
        done.stderr
    );
    assert!(
        done.stderr.contains("unknown field"),
        "says why: {}",
        done.stderr
    );
}

#[test]
fn bad_value_names_key_and_reason() {
    let dir = TempDir::new("cfg-bad");
    let cfg = write_cfg(&dir, "input-mode:\n  local-port: 99999\n");
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(done.stderr.contains(&cfg), "{}", done.stderr);
    assert!(
        done.stderr.contains("input-mode.local-port"),
        "{}",
        done.stderr
    );

    let cfg = write_cfg(&dir, "queue:\n  capacity: 0\n");
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("queue.capacity") && done.stderr.contains("not in"),
        "{}",
        done.stderr
    );

    let done = run_to_exit(&["-c", "/nonexistent/dnstap.yaml"]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("/nonexistent/dnstap.yaml"),
        "{}",
        done.stderr
    );
}

#[test]
fn flags_override_config() {
    let dir = TempDir::new("cfg-override");
    let file_port = free_port();
    let flag_port = free_port();
    let cfg = write_cfg(
        &dir,
        &format!("input-mode:\n  local-address: 127.0.0.1\n  local-port: {file_port}\n"),
    );
    let r = Receiver::start(&["-c", &cfg, "-p", &flag_port.to_string(), "--io", "epoll"]);
    assert!(
        r.stderr()
            .contains(&format!("listening on tcp 127.0.0.1:{flag_port}")),
        "{}",
        r.stderr()
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err());
    let done = r.stop();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}

#[test]
fn seed_example_config_starts() {
    let dir = TempDir::new("cfg-seed");
    let port = free_port();
    let cfg = write_cfg(
        &dir,
        &format!(
            "verbose: false
input-mode:
  local-address: 127.0.0.1
  local-port: {port}
  tls-support: false
  tls-server-cert: null
  tls-server-key: null
  unix-socket: null
filter:
  qname-regex: null
  dnstap-identities: null
output-format:
  text: true
  yaml: false
  json: false
forward-to:
  enable: false
  remote-address: 10.0.0.2
  remote-port: 8192
"
        ),
    );
    let r = Receiver::start(&["-c", &cfg]);
    assert!(
        r.stderr().contains(&format!("tcp 127.0.0.1:{port}")),
        "{}",
        r.stderr()
    );
    let done = r.stop();
    assert_eq!(done.code, Some(0));
}

#[test]
fn tls_and_forwarding_fail_clearly() {
    let dir = TempDir::new("cfg-tls");
    let cfg = write_cfg(&dir, "input-mode:\n  tls-support: true\n");
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("input-mode.tls-server-cert")
            && done.stderr.contains("needs a certificate"),
        "{}",
        done.stderr
    );

    // Forwarding exists now (tests/forward.rs); its settings are checked at start-up.
    let cfg = write_cfg(
        &dir,
        "forward-to:\n  enable: true\n  remote-address: 10.0.0.2\n",
    );
    let done = run_to_exit(&["-c", &cfg]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains("forward-to.remote-port: missing"),
        "{}",
        done.stderr
    );
    let done = run_to_exit(&["-f", "no-port-here"]);
    assert_eq!(done.code, Some(1));
    assert!(done.stderr.contains("HOST:PORT"), "{}", done.stderr);
}

#[test]
fn help_lists_every_flag_with_defaults() {
    let done = run_to_exit(&["--help"]);
    assert_eq!(done.code, Some(0));
    let h = String::from_utf8_lossy(&done.stdout);
    for flag in [
        "-l",
        "-p",
        "-u",
        "-c",
        "-v",
        "-r",
        "-f",
        "--io",
        "--format",
        "--queue-policy",
        "--threads",
        "--writers",
        "--reuse-port",
        "--metrics",
        "--forward-policy",
        "--check-config",
    ] {
        assert!(h.contains(flag), "--help lacks {flag}: {h}");
    }
    for default in ["0.0.0.0", "6000", "auto", "text", "block"] {
        assert!(h.contains(default), "--help lacks default {default}: {h}");
    }
}

#[test]
fn stale_unix_socket_is_replaced_live_one_refused() {
    let dir = TempDir::new("stale");
    let sock = dir.path("s.sock");
    // A socket file nobody listens on (its listener was dropped).
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let r = Receiver::start(&["-u", sock.to_str().unwrap(), "--io", "epoll"]);
    // A second receiver on the same path must refuse to start.
    let second = run_to_exit(&["-u", sock.to_str().unwrap(), "--io", "epoll"]);
    assert_eq!(second.code, Some(1));
    assert!(
        second.stderr.contains("another process is listening"),
        "{}",
        second.stderr
    );
    let done = r.stop();
    assert_eq!(done.code, Some(0));

    // A regular file in the way is never removed.
    std::fs::write(&sock, b"not a socket").unwrap();
    let third = run_to_exit(&["-u", sock.to_str().unwrap(), "--io", "epoll"]);
    assert_eq!(third.code, Some(1));
    assert!(third.stderr.contains("not a socket"), "{}", third.stderr);
    assert!(sock.exists());
}

#[test]
fn busy_tcp_port_fails_with_the_address() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let done = run_to_exit(&["-l", "127.0.0.1", "-p", &port, "--io", "epoll"]);
    assert_eq!(done.code, Some(1));
    assert!(
        done.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        done.stderr
    );
}

#[test]
fn without_io_uring_auto_falls_back_and_uring_refuses() {
    // The variable makes the io_uring probe fail with ENOSYS, as on a kernel without it.
    let port = free_port().to_string();
    let env = [("DNSTAP_RECEIVER_NO_URING", "1")];
    let r = Receiver::start_env(&["-l", "127.0.0.1", "-p", &port], &env);
    let log = r.stderr();
    let done = r.stop();
    let refused = support::receiver::run_to_exit_env(
        &["-l", "127.0.0.1", "-p", &port, "--io", "uring"],
        &env,
    );
    assert!(log.contains("io_uring is not available"), "{log}");
    assert!(log.contains("io back-end: epoll"), "{log}");
    assert_eq!(done.code, Some(0));
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains("--io uring: io_uring is not available"),
        "{}",
        refused.stderr
    );
}

#[test]
fn check_config_reports_what_would_run_and_binds_nothing() {
    let dir = TempDir::new("cfg-check");
    let port = free_port();
    // The port is held here: a check that bound it would fail.
    let held = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let list = dir.path("drop.txt");
    std::fs::write(&list, "example.test\n").unwrap();
    let cfg = write_cfg(
        &dir,
        &format!(
            "inputs:\n  - tcp: 127.0.0.1:{port}\noutputs:\n  - stdout: {{format: json}}\n\
             transforms:\n  filtering:\n    drop-domain-file: {}\n",
            list.display()
        ),
    );
    for args in [
        vec!["--check-config", cfg.as_str()],
        vec!["-t", cfg.as_str()],
        vec!["-c", cfg.as_str(), "--check-config"],
    ] {
        let done = run_to_exit(&args);
        assert_eq!(done.code, Some(0), "{args:?}: {}", done.stderr);
        let stdout = String::from_utf8_lossy(&done.stdout);
        for want in [
            format!("configuration OK: {cfg}"),
            format!("input: tcp 127.0.0.1:{port}"),
            "output: stdout (Json)".to_string(),
            "transforms: a global chain runs before every output".to_string(),
            "MiB bound".to_string(),
        ] {
            assert!(
                stdout.contains(&want),
                "{args:?}: want {want:?} in:\n{stdout}"
            );
        }
    }
    drop(held);

    // Every kind of failure a start would meet: a bad key, a list file that is missing, two
    // different files named.
    let named = |name: &str, text: &str| {
        let p = dir.path(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let bad = named("bad.yaml", "queue:\n  capacity: 0\n");
    let done = run_to_exit(&["--check-config", &bad]);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains(&format!("{bad}:2")), "{}", done.stderr);
    assert!(done.stderr.contains("queue.capacity"), "{}", done.stderr);
    assert!(
        done.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );

    let missing = named(
        "missing.yaml",
        "transforms:\n  filtering:\n    drop-domain-file: /nonexistent/list.txt\n",
    );
    let done = run_to_exit(&["-t", &missing]);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("/nonexistent/list.txt"),
        "{}",
        done.stderr
    );

    let done = run_to_exit(&["-c", &cfg, "--check-config", &bad]);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr.contains("name the config file once"),
        "{}",
        done.stderr
    );
}
