//! The syslog output against a real syslog-ng (`support::syslog::SyslogSource`): its
//! `syslog()` source over TCP (octet counting) and UDP, and unix datagram sources standing in
//! for `/dev/log` (RFC 5424 and the classic RFC 3164). Checks the fields syslog-ng parsed
//! out of every message (hostname, app-name, pid, msgid, facility, severity) and that the
//! MSG is exactly the line `-r` prints in the chosen format; counts exact over TCP and the
//! local socket (a full receive queue blocks the sender, nothing is lost), every UDP
//! datagram that arrives is one of the records. Also TCP with the collector down at the
//! start (records wait in the buffer, then all arrive) and `drop-newest` with no collector
//! at all (every record counted dropped); TLS (RFC 5425) to its `syslog()` source; bad values
//! rejected at start-up with file, line and key; UDP to a closed port counts the refusals and
//! keeps its pace.
//!
//! syslog-ng's `syslog()` driver listens on network transports only (`transport("unix-dgram")`
//! is refused: "no such LogProto plugin"); on a local socket its RFC 5424 parser is
//! `unix-dgram(... flags(syslog-protocol))`, which is what a `/dev/log` source uses.
//!
//! Without syslog-ng in `PATH` the tests skip with a NOTICE, or fail under `CI=true`
//! (`support::skip`).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::lab::{capture, capture_payloads};
use support::receiver::{
    free_port, offline_lines, run_to_exit, send_bidi, Ending, Receiver, Target, TempDir,
};
use support::syslog::{have_syslog_ng, SyslogSource};
use support::tls::{Ca, SERVER_NAME};

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("receiver.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

/// The counters of the output named `name` in the receiver's final `-v` lines.
fn counters(stderr: &str, name: &str) -> HashMap<String, u64> {
    let needle = format!("output-counters: {name:?}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {needle} line in: {stderr}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn json(l: &str) -> serde_json::Value {
    serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
}

/// The fields syslog-ng parsed, as strings.
struct Parsed {
    host: String,
    program: String,
    pid: String,
    msgid: String,
    facility: String,
    level: String,
    msg: String,
}

fn parsed(l: &str) -> Parsed {
    let v = json(l);
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    Parsed {
        host: s("host"),
        program: s("program"),
        pid: s("pid"),
        msgid: s("msgid"),
        facility: s("facility"),
        level: s("level"),
        msg: s("msg"),
    }
}

#[test]
fn syslog_ng_parses_every_field_over_tcp_udp_and_the_local_socket() {
    if !have_syslog_ng("syslog_ng_parses_every_field_over_tcp_udp_and_the_local_socket") {
        return;
    }
    let tmp = TempDir::new("syslog-out");
    let port = free_port();
    let mut ng = SyslogSource::start(&tmp.0, port);
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n\
             \x20 - syslog: {{transport: tcp, remote: '127.0.0.1:{port}', format: json, \
             facility: local3, severity: notice, app-name: dnstap-tcp, hostname: ns-tcp.example}}\n\
             \x20 - syslog: {{transport: udp, remote: '127.0.0.1:{port}', format: json, \
             app-name: dnstap-udp, hostname: ns-udp.example}}\n\
             \x20 - syslog: {{transport: unix, path: '{}', format: json, facility: local7, \
             severity: debug, app-name: dnstap-unix, hostname: ns-unix.example}}\n\
             \x20 - syslog: {{transport: unix, path: '{}', format: json, rfc: 3164, \
             facility: user, severity: warning, app-name: dnstap-3164}}\n",
            ng.unix_socket(5424).display(),
            ng.unix_socket(3164).display(),
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let pid = rx.pid().to_string();
    let path = capture("bind-unix.fstrm");
    let want = offline_lines(&path, &["--format", "json"]);
    let n = want.len();
    assert!(n > 0, "no records in {}", path.display());
    send_bidi(&Target::Tcp(rp), &capture_payloads(&path), Ending::Stop);
    for f in ["tcp.log", "unix5424.log", "unix3164.log"] {
        ng.wait_count(f, n, Duration::from_secs(120));
    }
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    ng.drain();

    // TCP and the local socket: every record, in order, each field as configured.
    for (file, host, program, facility, level) in [
        (
            "tcp.log",
            "ns-tcp.example",
            "dnstap-tcp",
            "local3",
            "notice",
        ),
        (
            "unix5424.log",
            "ns-unix.example",
            "dnstap-unix",
            "local7",
            "debug",
        ),
    ] {
        let got = ng.messages(file);
        assert_eq!(got.len(), n, "{file}: message count");
        for (g, w) in got.iter().zip(&want) {
            let p = parsed(g);
            assert_eq!(p.msg, *w, "{file}: MSG is the json line");
            assert_eq!(
                (p.host.as_str(), p.program.as_str(), p.pid.as_str()),
                (host, program, pid.as_str()),
                "{file}: {g}"
            );
            assert_eq!(
                (p.facility.as_str(), p.level.as_str()),
                (facility, level),
                "{file}: {g}"
            );
            assert_eq!(p.msgid, json(w)["message"].as_str().unwrap(), "{file}: {g}");
        }
    }
    // RFC 3164 on the local socket: no HOSTNAME (syslog-ng puts its own), no MSGID.
    let got = ng.messages("unix3164.log");
    assert_eq!(got.len(), n, "unix3164.log: message count");
    for (g, w) in got.iter().zip(&want) {
        let p = parsed(g);
        assert_eq!(p.msg, *w, "unix3164.log");
        assert_eq!(
            (
                p.program.as_str(),
                p.pid.as_str(),
                p.facility.as_str(),
                p.level.as_str()
            ),
            ("dnstap-3164", pid.as_str(), "user", "warning"),
            "{g}"
        );
    }
    // UDP: no acknowledgement, so a datagram may be lost in a full socket buffer; every one
    // that arrived is one of the records, with its fields.
    let want_set: HashSet<&String> = want.iter().collect();
    let got = ng.messages("udp.log");
    assert!(
        !got.is_empty() && got.len() <= n,
        "udp: {} of {n}",
        got.len()
    );
    for g in &got {
        let p = parsed(g);
        assert!(want_set.contains(&p.msg), "udp: unknown MSG {}", p.msg);
        assert_eq!(
            (
                p.host.as_str(),
                p.program.as_str(),
                p.facility.as_str(),
                p.level.as_str()
            ),
            ("ns-udp.example", "dnstap-udp", "daemon", "info"),
            "{g}"
        );
    }
    if got.len() < n {
        eprintln!("NOTICE: udp: {} of {n} datagrams arrived", got.len());
    }

    let u = n as u64;
    for name in [
        format!("syslog tcp 127.0.0.1:{port}"),
        format!("syslog udp 127.0.0.1:{port}"),
        format!("syslog unix:{}", ng.unix_socket(5424).display()),
        format!("syslog unix:{}", ng.unix_socket(3164).display()),
    ] {
        let c = counters(&fin.stderr, &name);
        assert_eq!(
            (c["records"], c["delivered"], c["dropped"]),
            (u, u, 0),
            "{name}"
        );
    }
}

#[test]
fn tcp_collector_down_at_start_gets_every_record_once_it_is_up() {
    if !have_syslog_ng("tcp_collector_down_at_start_gets_every_record_once_it_is_up") {
        return;
    }
    let tmp = TempDir::new("syslog-late");
    let port = free_port();
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n  - syslog: {{transport: tcp, remote: '127.0.0.1:{port}', \
             format: text, backoff-init: 0.2, reconnect-max: 0.5, hostname: late.example}}\n"
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let path = capture("nsd-unix.fstrm");
    let want = offline_lines(&path, &["--format", "text"]);
    send_bidi(&Target::Tcp(rp), &capture_payloads(&path), Ending::Stop);
    // The output has tried and failed at least once: records wait in its buffer.
    rx.wait_log("cannot connect");
    let mut ng = SyslogSource::start(&tmp.0, port);
    ng.wait_count("tcp.log", want.len(), Duration::from_secs(120));
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    ng.drain();
    let got: Vec<String> = ng
        .messages("tcp.log")
        .iter()
        .map(|l| parsed(l).msg)
        .collect();
    assert_eq!(got, want, "every text line once, in order");
    let c = counters(&fin.stderr, &format!("syslog tcp 127.0.0.1:{port}"));
    let u = want.len() as u64;
    assert_eq!((c["delivered"], c["dropped"], c["resent"]), (u, 0, 0));
    assert!(c["write-errors"] >= 1);
}

#[test]
fn drop_newest_without_a_collector_counts_every_record_dropped() {
    let tmp = TempDir::new("syslog-drop");
    let port = free_port();
    let sock = tmp.path("nobody.sock");
    // With `block` (the default) the records wait for the socket until shutdown gives up
    // on them: dropped then, and said so.
    let blocked = tmp.path("nobody-either.sock");
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n  - syslog: {{transport: tcp, remote: '127.0.0.1:{port}', \
             overflow: drop-newest, buffer-size: 65536, chunk-size: 4096, \
             shutdown-timeout: 1}}\n  - syslog: {{path: '{}', overflow: drop-newest, \
             buffer-size: 65536, chunk-size: 4096, shutdown-timeout: 1}}\n  - syslog: \
             {{path: '{}', shutdown-timeout: 1}}\n",
            sock.display(),
            blocked.display()
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let path = capture("nsd-unix.fstrm");
    let n = offline_lines(&path, &["--format", "json"]).len() as u64;
    send_bidi(&Target::Tcp(rp), &capture_payloads(&path), Ending::Stop);
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    for name in [
        format!("syslog tcp 127.0.0.1:{port}"),
        format!("syslog unix:{}", sock.display()),
        format!("syslog unix:{}", blocked.display()),
    ] {
        let c = counters(&fin.stderr, &name);
        assert_eq!(
            (c["records"], c["delivered"], c["dropped"]),
            (n, 0, n),
            "{name}"
        );
        assert!(c["write-errors"] >= 1, "{name}");
    }
    let lost = format!(
        "output syslog unix:{}: {n} records not delivered at shutdown",
        blocked.display()
    );
    assert!(fin.stderr.contains(&lost), "no {lost:?} in {}", fin.stderr);
}

/// A bad value is a start-up error naming the file, the line and the key; nothing starts.
#[test]
fn bad_values_are_config_errors_naming_line_and_key() {
    let tmp = TempDir::new("syslog-bad");
    for (body, line, key) in [
        (
            "outputs:\n  - stdout: {}\n  - syslog:\n      transport: carrier-pigeon\n",
            4,
            "outputs[1].syslog.transport",
        ),
        (
            "outputs:\n  - syslog:\n      transport: udp\n      remote: 127.0.0.1:514\n      \
             facility: local9\n",
            5,
            "outputs[0].syslog.facility",
        ),
        (
            "outputs:\n  - syslog:\n      severity: loud\n",
            3,
            "outputs[0].syslog.severity",
        ),
        (
            "outputs:\n  - syslog:\n      rfc: 1\n",
            3,
            "outputs[0].syslog.rfc",
        ),
        (
            "outputs:\n  - syslog:\n      app-name: two words\n",
            3,
            "outputs[0].syslog.app-name",
        ),
        (
            "outputs:\n  - syslog:\n      transport: tcp\n      path: /dev/log\n      \
             remote: 127.0.0.1:601\n",
            4,
            "outputs[0].syslog.path",
        ),
    ] {
        let conf = write_config(&tmp.0, body);
        let fin = run_to_exit(&["--check-config", conf.to_str().unwrap()]);
        assert_eq!(fin.code, Some(1), "{body}: {}", fin.stderr);
        let want = format!("{}:{line}: {key}: ", conf.display());
        assert!(
            fin.stderr.contains(&want),
            "{body}: no {want:?} in {}",
            fin.stderr
        );
    }
}

/// TLS (RFC 5425): the certificate checked against the CA the test made, every record once,
/// the fields as configured.
#[test]
fn syslog_ng_receives_every_record_over_tls() {
    if !have_syslog_ng("syslog_ng_receives_every_record_over_tls") {
        return;
    }
    let tmp = TempDir::new("syslog-tls");
    let ca = Ca::new("syslog test CA");
    let ca_path = tmp.path("ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&tmp.0, "server");
    let port = free_port();
    let mut ng = SyslogSource::start_tls(&tmp.0, port, &cert, &key);
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n  - syslog:\n      transport: tls\n      remote: '127.0.0.1:{port}'\n      \
             tls-ca: '{}'\n      tls-server-name: {SERVER_NAME}\n      format: text\n      \
             facility: local5\n      app-name: dnstap-tls\n      hostname: ns-tls.example\n",
            ca_path.display()
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let path = capture("unbound-tcp.fstrm");
    let want = offline_lines(&path, &["--format", "text"]);
    assert!(!want.is_empty(), "no records in {}", path.display());
    send_bidi(&Target::Tcp(rp), &capture_payloads(&path), Ending::Stop);
    ng.wait_count("tls.log", want.len(), Duration::from_secs(120));
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    ng.drain();
    let got = ng.messages("tls.log");
    assert_eq!(got.len(), want.len(), "tls.log: message count");
    for (g, w) in got.iter().zip(&want) {
        let p = parsed(g);
        assert_eq!(p.msg, *w, "tls.log: MSG is the text line");
        assert_eq!(
            (
                p.host.as_str(),
                p.program.as_str(),
                p.facility.as_str(),
                p.level.as_str()
            ),
            ("ns-tls.example", "dnstap-tls", "local5", "info"),
            "{g}"
        );
    }
    let c = counters(&fin.stderr, &format!("syslog tls 127.0.0.1:{port}"));
    let u = want.len() as u64;
    assert_eq!((c["records"], c["delivered"], c["dropped"]), (u, u, 0));
}

/// UDP to a port nobody listens on: the kernel reports the ICMP "port unreachable" of an
/// earlier datagram as `ECONNREFUSED` on a later send. Each report is counted in
/// `write-errors`, and the output goes on at full rate (no backoff per datagram, which
/// would stall the pipeline under `block`): every record is handed to the kernel, so
/// `delivered`, nothing `dropped`.
#[test]
fn udp_to_a_closed_port_counts_the_refusals_and_does_not_stall() {
    let tmp = TempDir::new("syslog-udp-closed");
    // A port bound then released: nothing listens on it during the run.
    let port = free_port();
    let conf = write_config(
        &tmp.0,
        &format!(
            "outputs:\n  - syslog: {{transport: udp, remote: '127.0.0.1:{port}', \
             shutdown-timeout: 30}}\n"
        ),
    );
    let rp = free_port();
    let rps = rp.to_string();
    let rx = Receiver::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &rps,
        "--io",
        "epoll",
        "-c",
        conf.to_str().unwrap(),
    ]);
    let path = capture("unbound-tcp.fstrm");
    let n = offline_lines(&path, &["--format", "json"]).len() as u64;
    send_bidi(&Target::Tcp(rp), &capture_payloads(&path), Ending::Stop);
    let fin = rx.stop();
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    let c = counters(&fin.stderr, &format!("syslog udp 127.0.0.1:{port}"));
    assert_eq!(
        (c["records"], c["delivered"], c["dropped"]),
        (n, n, 0),
        "{}",
        fin.stderr
    );
    assert!(c["write-errors"] >= 1, "no refusal counted: {c:?}");
}
