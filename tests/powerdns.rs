//! The `powerdns` input against real PowerDNS servers: dnsdist (`newRemoteLogger`) and
//! pdns-recursor (`protobufServer`, `outgoingProtobufServer`), configured here on loopback,
//! send their protobuf logging to the receiver while the same servers send dnstap for the
//! same queries; the records of both must agree. Plus a hand-made peer that sends malformed
//! and truncated messages: only its own connection is closed.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::receiver::{free_port, Receiver, TempDir, DEADLINE, POLL};
use support::skip::{find_program, require};
use support::tls::{client_config, tls_connect, write_config, Ca};

/// A server process this test started: killed and reaped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(name: &str, test: &str) -> Option<std::path::PathBuf> {
    let p = find_program(name, &["/usr/sbin".into(), "/usr/bin".into()]);
    require(p.is_some(), test, || format!("{name} not found in PATH")).then_some(p?)
}

/// A receiver with one `powerdns` input (config file key `input-mode.powerdns`).
fn powerdns_receiver(dir: &TempDir, port: u16) -> Receiver {
    powerdns_receiver_as(dir, port, "json")
}

/// [`powerdns_receiver`] printing `format`.
fn powerdns_receiver_as(dir: &TempDir, port: u16, format: &str) -> Receiver {
    let cfg = dir.path("rx.yaml");
    std::fs::write(
        &cfg,
        format!("input-mode:\n  powerdns: {{local-address: 127.0.0.1, local-port: {port}}}\n"),
    )
    .unwrap();
    let rx = Receiver::start(&["-c", cfg.to_str().unwrap(), "--format", format]);
    rx.wait_log(&format!("powerdns 127.0.0.1:{port}"));
    rx
}

/// A receiver with one dnstap TCP input.
fn dnstap_receiver(port: u16) -> Receiver {
    dnstap_receiver_as(port, "json")
}

/// [`dnstap_receiver`] printing `format`.
fn dnstap_receiver_as(port: u16, format: &str) -> Receiver {
    let p = port.to_string();
    let rx = Receiver::start(&["-l", "127.0.0.1", "-p", &p, "--format", format]);
    rx.wait_log(&format!("tcp 127.0.0.1:{port}"));
    rx
}

/// One DNS query with dig; returns its status line's rcode name (`NOERROR`, ...).
fn dig(port: u16, name: &str, qtype: &str, tcp: bool) -> String {
    let mut c = Command::new("dig");
    c.args([
        "+tries=1",
        "+time=5",
        "-p",
        &port.to_string(),
        "@127.0.0.1",
        name,
        qtype,
    ]);
    if tcp {
        c.arg("+tcp");
    }
    let out = c.output().expect("run dig");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no answer from 127.0.0.1:{port}: {text}"))
        .to_owned()
}

/// Waits until `port` answers a query (a server starting up), bounded.
fn wait_answers(port: u16, what: &str) {
    let t0 = Instant::now();
    loop {
        let out = Command::new("dig")
            .args([
                "+tries=1",
                "+time=1",
                "-p",
                &port.to_string(),
                "@127.0.0.1",
                "ready.example.test",
                "A",
            ])
            .output()
            .expect("run dig");
        if String::from_utf8_lossy(&out.stdout).contains("status: ") {
            return;
        }
        assert!(t0.elapsed() < DEADLINE, "{what} does not answer on {port}");
        std::thread::sleep(POLL * 5);
    }
}

/// The fields compared between the protobuf and the dnstap records of one server.
const KEYS: [&str; 7] = [
    "message",
    "query-name",
    "query-type",
    "code",
    "source-ip",
    "protocol",
    "transport",
];

/// The JSON records of a receiver's stdout: each as the values of [`KEYS`] (plus the
/// identity, separately), counted.
fn records(stdout: &[u8], with_port: bool) -> (BTreeMap<Vec<String>, usize>, Vec<String>) {
    let mut m = BTreeMap::new();
    let mut ids = Vec::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let mut key: Vec<String> = KEYS
            .iter()
            .map(|k| v.get(*k).map(|x| x.to_string()).unwrap_or_default())
            .collect();
        if with_port {
            key.push(
                v.get("source-port")
                    .map(|x| x.to_string())
                    .unwrap_or_default(),
            );
        }
        ids.push(v["identity"].as_str().unwrap_or_default().to_owned());
        *m.entry(key).or_insert(0) += 1;
    }
    (m, ids)
}

fn count_of(m: &BTreeMap<Vec<String>, usize>, message: &str) -> usize {
    m.iter()
        .filter(|(k, _)| k[0] == format!("\"{message}\""))
        .map(|(_, n)| n)
        .sum()
}

/// (name, type, over TCP, expected rcode) — dnsdist answers them itself (see its config).
const QUERIES: [(&str, &str, bool, &str); 6] = [
    ("www.example.test", "A", false, "NOERROR"),
    ("www.example.test", "AAAA", false, "NOERROR"),
    ("nx.example.test", "A", false, "NXDOMAIN"),
    ("tcp.example.test", "A", true, "NOERROR"),
    ("mail.example.test", "MX", false, "NOERROR"),
    ("refused.example.test", "TXT", false, "REFUSED"),
];

/// dnsdist answering every query itself (no backend), logging protobuf to `pb_port` (when
/// set) and dnstap to `tap_port` (when set).
fn dnsdist_conf(dns_port: u16, pb_port: Option<u16>, tap_port: Option<u16>) -> String {
    let mut c = format!(
        "setSecurityPollSuffix('')\nsetLocal('127.0.0.1:{dns_port}')\nsetACL({{'127.0.0.0/8'}})\n"
    );
    if let Some(p) = pb_port {
        c += &format!(
            "rl = newRemoteLogger('127.0.0.1:{p}')\n\
             addAction(AllRule(), RemoteLogAction(rl, nil, {{serverID='pb-dnsdist'}}))\n\
             addSelfAnsweredResponseAction(AllRule(), RemoteLogResponseAction(rl, nil, false, {{serverID='pb-dnsdist'}}))\n"
        );
    }
    if let Some(p) = tap_port {
        c += &format!(
            "tap = newFrameStreamTcpLogger('127.0.0.1:{p}', {{bufferHint=0, flushTimeout=1}})\n\
             addAction(AllRule(), DnstapLogAction('tap-dnsdist', tap))\n\
             addSelfAnsweredResponseAction(AllRule(), DnstapLogResponseAction('tap-dnsdist', tap))\n"
        );
    }
    c += "addAction(QNameRule('nx.example.test.'), RCodeAction(DNSRCode.NXDOMAIN))\n\
          addAction(QNameRule('refused.example.test.'), RCodeAction(DNSRCode.REFUSED))\n\
          addAction(QTypeRule(DNSQType.MX), SpoofRawAction('\\000\\010\\004mail\\007example\\004test\\000'))\n\
          addAction(AllRule(), SpoofAction({'192.0.2.1', '2001:db8::1'}))\n";
    c
}

fn start_dnsdist(bin: &Path, dir: &TempDir, conf: &str, port: u16) -> Server {
    let path = dir.path("dnsdist.conf");
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.path("dnsdist.log")).unwrap();
    let child = Command::new(bin)
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start dnsdist");
    let s = Server(child);
    wait_answers(port, "dnsdist");
    s
}

#[test]
fn dnsdist_protobuf_matches_its_dnstap() {
    const T: &str = "powerdns::dnsdist_protobuf_matches_its_dnstap";
    let (Some(dnsdist), Some(_)) = (program("dnsdist", T), program("dig", T)) else {
        return;
    };
    let dir = TempDir::new("pdns-dnsdist");
    let (dns, pb, tap) = (free_port(), free_port(), free_port());
    let pb_rx = powerdns_receiver(&dir, pb);
    let tap_rx = dnstap_receiver(tap);
    let server = start_dnsdist(&dnsdist, &dir, &dnsdist_conf(dns, Some(pb), Some(tap)), dns);
    // The readiness probe was logged too: a query and a response on each side.
    let mut sent = 1;
    pb_rx.wait_lines(2, DEADLINE);
    tap_rx.wait_lines(2, DEADLINE);
    for (name, qtype, tcp, rcode) in QUERIES {
        assert_eq!(dig(dns, name, qtype, tcp), rcode, "{name} {qtype}");
        sent += 1;
    }
    pb_rx.wait_lines(2 * sent, DEADLINE);
    tap_rx.wait_lines(2 * sent, DEADLINE);
    drop(server);
    let (pb_out, tap_out) = (pb_rx.stop(), tap_rx.stop());
    let (pb_recs, pb_ids) = records(&pb_out.stdout, true);
    let (tap_recs, _) = records(&tap_out.stdout, true);
    assert!(pb_ids.iter().all(|i| i == "pb-dnsdist"), "{pb_ids:?}");
    assert_eq!(count_of(&pb_recs, "CLIENT_QUERY"), sent as usize);
    assert_eq!(count_of(&pb_recs, "CLIENT_RESPONSE"), sent as usize);
    assert_eq!(
        pb_recs, tap_recs,
        "protobuf and dnstap records of the same queries differ"
    );
    for (name, qtype, _, rcode) in QUERIES {
        let want = [
            "\"CLIENT_RESPONSE\"".to_string(),
            format!("\"{name}.\""),
            format!("\"{qtype}\""),
            format!("\"{rcode}\""),
        ];
        assert!(
            pb_recs.keys().any(|k| k[..4] == want),
            "no response record {want:?} in {pb_recs:?}"
        );
    }
    assert_eq!(pb_out.stat("errors"), 0, "{}", pb_out.stderr);
}

/// pdns-recursor forwarding `example.test` to `upstream`, logging its clients' queries and
/// responses (`protobufServer`) and its upstream queries and responses
/// (`outgoingProtobufServer`) to `pb_port`, and dnstap (which 4.8 sends for upstream
/// traffic only) to `tap_port`.
fn start_recursor(
    bin: &Path,
    dir: &TempDir,
    port: u16,
    upstream: u16,
    pb: u16,
    tap: u16,
) -> Server {
    let d = dir.0.display();
    std::fs::write(
        dir.path("root.hints"),
        ".  3600000 IN NS lab-root.\nlab-root. 3600000 IN A 127.0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path("recursor.lua"),
        format!(
            "protobufServer({{'127.0.0.1:{pb}'}}, {{logQueries=true, logResponses=true}})\n\
             outgoingProtobufServer({{'127.0.0.1:{pb}'}})\n\
             dnstapFrameStreamServer({{'127.0.0.1:{tap}'}}, {{logQueries=true, logResponses=true}})\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path("recursor.conf"),
        format!(
            "config-dir={d}\nsocket-dir={d}\nlua-config-file={d}/recursor.lua\n\
             local-address=127.0.0.1\nlocal-port={port}\nquery-local-address=127.0.0.1\n\
             allow-from=127.0.0.0/8\ndaemon=no\nwrite-pid=no\ndisable-syslog=yes\nthreads=1\n\
             security-poll-suffix=\ndnssec=off\nhint-file={d}/root.hints\n\
             forward-zones=example.test=127.0.0.1:{upstream}\nserver-id=pb-recursor\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path("recursor.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config-dir={d}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start pdns_recursor");
    let s = Server(child);
    wait_answers(port, "pdns_recursor");
    s
}

/// The `dr4-json` keys compared between the recursor's outgoing protobuf and its dnstap:
/// everything but the local address and port (`query-ip`, `query-port`), which the
/// recursor's outgoing PBDNSMessages do not carry (only `to` and `toPort`).
const UPSTREAM_KEYS: [&str; 9] = [
    "message",
    "qname",
    "rrtype",
    "rcode",
    "response-ip",
    "response-port",
    "protocol",
    "family",
    "id",
];

/// The `dr4-json` lines of a receiver's stdout whose `message` starts with `prefix`, each
/// as the values of `keys`, counted; and the identities seen.
fn dr4_records(
    stdout: &[u8],
    prefix: &str,
    keys: &[&str],
) -> (BTreeMap<Vec<String>, usize>, Vec<String>) {
    let mut m = BTreeMap::new();
    let mut ids = Vec::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if !v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with(prefix)
        {
            continue;
        }
        let key: Vec<String> = keys.iter().map(|k| v[*k].to_string()).collect();
        ids.push(v["identity"].as_str().unwrap_or_default().to_owned());
        *m.entry(key).or_insert(0) += 1;
    }
    (m, ids)
}

#[test]
fn recursor_protobuf_matches_its_dnstap_and_the_queries_sent() {
    const T: &str = "powerdns::recursor_protobuf_matches_its_dnstap_and_the_queries_sent";
    let (Some(dnsdist), Some(recursor), Some(_)) = (
        program("dnsdist", T),
        program("pdns_recursor", T),
        program("dig", T),
    ) else {
        return;
    };
    let (up_dir, dir) = (TempDir::new("pdns-up"), TempDir::new("pdns-rec"));
    let (up, rec, pb, tap) = (free_port(), free_port(), free_port(), free_port());
    // The upstream: dnsdist answering by itself, logging nothing.
    let _up = start_dnsdist(&dnsdist, &up_dir, &dnsdist_conf(up, None, None), up);
    let pb_rx = powerdns_receiver_as(&dir, pb, "dr4-json");
    let tap_rx = dnstap_receiver_as(tap, "dr4-json");
    let server = start_recursor(&recursor, &dir, rec, up, pb, tap);
    // The recursor answers what the upstream refuses with SERVFAIL.
    let client_rcode = |r: &'static str| if r == "REFUSED" { "SERVFAIL" } else { r };
    let mut sent = vec![("ready.example.test", "A", "NOERROR")];
    for (name, qtype, tcp, rcode) in QUERIES {
        assert_eq!(
            dig(rec, name, qtype, tcp),
            client_rcode(rcode),
            "{name} {qtype}"
        );
        sent.push((name, qtype, client_rcode(rcode)));
    }
    // Each query was a cache miss: at least one upstream exchange each, on both sides.
    let n = sent.len() as u64;
    tap_rx.wait_lines(2 * n, DEADLINE);
    pb_rx.wait_lines(4 * n, DEADLINE);
    // Then both sides hold the same number of upstream records (retries included).
    support::receiver::wait_until(
        DEADLINE,
        || pb_rx.lines_so_far() == 2 * n + tap_rx.lines_so_far(),
        || {
            format!(
                "protobuf {} lines, dnstap {} (+{} client)",
                pb_rx.lines_so_far(),
                tap_rx.lines_so_far(),
                2 * n
            )
        },
    );
    drop(server);
    let (pb_out, tap_out) = (pb_rx.stop(), tap_rx.stop());
    let (pb_up, pb_up_ids) = dr4_records(&pb_out.stdout, "RESOLVER", &UPSTREAM_KEYS);
    let (tap_up, _) = dr4_records(&tap_out.stdout, "RESOLVER", &UPSTREAM_KEYS);
    assert!(
        pb_up_ids.iter().all(|i| i == "pb-recursor"),
        "{pb_up_ids:?}"
    );
    for kind in ["RESOLVER_QUERY", "RESOLVER_RESPONSE"] {
        assert!(
            pb_up.keys().any(|k| k[0] == format!("\"{kind}\"")),
            "no {kind} in {pb_up:?}"
        );
    }
    assert_eq!(
        pb_up, tap_up,
        "the recursor's outgoing protobuf and its dnstap differ"
    );
    // Every upstream exchange went to the forwarder.
    let up_port = up.to_string();
    assert!(
        pb_up
            .keys()
            .all(|k| k[4] == "\"127.0.0.1\"" && k[5] == up_port),
        "{pb_up:?}"
    );
    // The client side against what this test sent: each name and type once each way, from
    // 127.0.0.1 to the recursor's port, the response with the rcode dig saw.
    let client_keys = [
        "message",
        "qname",
        "rrtype",
        "rcode",
        "query-ip",
        "response-ip",
        "response-port",
    ];
    let (pb_client, ids) = dr4_records(&pb_out.stdout, "CLIENT", &client_keys);
    assert!(ids.iter().all(|i| i == "pb-recursor"), "{ids:?}");
    let mut want = BTreeMap::new();
    for (name, qtype, rcode) in &sent {
        for (kind, rcode) in [("CLIENT_QUERY", "NOERROR"), ("CLIENT_RESPONSE", *rcode)] {
            let key = [
                kind,
                &format!("{name}."),
                qtype,
                rcode,
                "127.0.0.1",
                "127.0.0.1",
            ]
            .iter()
            .map(|s| format!("\"{s}\""))
            .chain([rec.to_string()])
            .collect::<Vec<String>>();
            want.insert(key, 1usize);
        }
    }
    assert_eq!(pb_client, want, "client records against the queries sent");
    assert_eq!(pb_out.stat("errors"), 0, "{}", pb_out.stderr);
}

/// Protobuf by hand: a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, n: u64, v: u64) {
    varint(out, n << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, n: u64, b: &[u8]) {
    varint(out, (n << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A DNSQueryType PBDNSMessage for `qname` A from 127.0.0.1, with its 2-byte prefix.
fn framed_query(identity: &str, qname: &str) -> Vec<u8> {
    let mut q = Vec::new();
    field_bytes(&mut q, 1, qname.as_bytes());
    field_varint(&mut q, 2, 1);
    field_varint(&mut q, 3, 1);
    let mut m = Vec::new();
    field_varint(&mut m, 1, 1);
    field_bytes(&mut m, 3, identity.as_bytes());
    field_varint(&mut m, 4, 1);
    field_varint(&mut m, 5, 1);
    field_bytes(&mut m, 6, &[127, 0, 0, 1]);
    field_varint(&mut m, 9, 1_700_000_000);
    field_varint(&mut m, 11, 4660);
    field_bytes(&mut m, 12, &q);
    field_varint(&mut m, 20, 5353);
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    framed
}

#[test]
fn malformed_and_truncated_messages_close_only_their_connection() {
    let dir = TempDir::new("pdns-bad");
    let port = free_port();
    let rx = powerdns_receiver(&dir, port);
    let addr = format!("127.0.0.1:{port}");
    let mut good = TcpStream::connect(&addr).unwrap();
    good.write_all(&framed_query("good", "one.example."))
        .unwrap();
    rx.wait_lines(1, DEADLINE);
    // Wire type 7 in the first key, behind a valid message on the same connection.
    let mut bad = TcpStream::connect(&addr).unwrap();
    let mut bytes = framed_query("bad", "before.example.");
    bytes.extend_from_slice(&[0, 2, 0x0f, 0xff]);
    bad.write_all(&bytes).unwrap();
    // A length past the end of the message's own bytes (a LEN field claiming 100 bytes).
    let mut inner = Vec::new();
    field_varint(&mut inner, 1, 1);
    inner.extend_from_slice(&[(3 << 3) | 2, 100, b'x']);
    let mut bad_len = TcpStream::connect(&addr).unwrap();
    let mut framed = (inner.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&inner);
    bad_len.write_all(&framed).unwrap();
    // A message cut short: the prefix says 50 bytes, 10 come, then the peer closes.
    let mut cut = TcpStream::connect(&addr).unwrap();
    cut.write_all(&[0, 50]).unwrap();
    cut.write_all(&[0x08; 10]).unwrap();
    cut.shutdown(std::net::Shutdown::Write).unwrap();
    rx.wait_log_count("malformed PowerDNS protobuf", 3);
    // The receiver closed the bad connections: each reads EOF (bounded by a timeout).
    for (name, s) in [
        ("bad", &mut bad),
        ("bad_len", &mut bad_len),
        ("cut", &mut cut),
    ] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 16];
        assert!(
            matches!(s.read(&mut b), Ok(0) | Err(_)),
            "{name} still open"
        );
    }
    // The good connection still flows.
    good.write_all(&framed_query("good", "two.example."))
        .unwrap();
    rx.wait_lines(3, DEADLINE);
    drop(good);
    let out = rx.stop();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let names: Vec<&str> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["identity"] == "good" || v["identity"] == "bad" {
                "ok"
            } else {
                "?"
            }
        })
        .collect();
    assert_eq!(names, ["ok", "ok", "ok"], "{text}");
    for q in ["one.example.", "before.example.", "two.example."] {
        assert!(text.contains(q), "{q} missing: {text}");
    }
    assert_eq!(out.stat("errors"), 3, "{}", out.stderr);
}

#[test]
fn powerdns_over_tls_and_plain_side_by_side() {
    let dir = TempDir::new("pdns-tls");
    let ca = Ca::new("pdns-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "rx");
    for io in support::receiver::backends("powerdns::powerdns_over_tls_and_plain_side_by_side") {
        let (tls_port, plain_port) = (free_port(), free_port());
        let cfg = write_config(
            &dir.0,
            &format!(
                "input-mode:\n  tls-server-cert: {}\n  tls-server-key: {}\n  \
                 powerdns: {{local-address: 127.0.0.1, local-port: {tls_port}, tls: true}}\n\
                 inputs:\n  - powerdns: 127.0.0.1:{plain_port}\n",
                cert.display(),
                key.display()
            ),
        );
        let rx = Receiver::start(&["-c", &cfg, "--io", io, "--format", "json"]);
        rx.wait_log(&format!("powerdns-tls 127.0.0.1:{tls_port}"));
        let client = client_config(&ca.cert_pem, None, &[]);
        let mut tls = tls_connect(tls_port, &client);
        let mut plain = TcpStream::connect(("127.0.0.1", plain_port)).unwrap();
        for i in 0..50 {
            tls.write_all(&framed_query("over-tls", &format!("t{i}.example.")))
                .unwrap();
            plain
                .write_all(&framed_query("plain", &format!("p{i}.example.")))
                .unwrap();
        }
        tls.flush().unwrap();
        rx.wait_lines(100, DEADLINE);
        // A clean end: close_notify, then read to the receiver's close, so that nothing
        // unread (TLS 1.3 session tickets) makes the kernel reset the connection.
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut sink = [0u8; 256];
        while matches!(tls.read(&mut sink), Ok(n) if n > 0) {}
        plain.shutdown(std::net::Shutdown::Write).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        while matches!(plain.read(&mut sink), Ok(n) if n > 0) {}
        drop((tls, plain));
        rx.wait_closed(2);
        let out = rx.stop();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for i in 0..50 {
            assert!(
                text.contains(&format!("\"t{i}.example.\"")),
                "{io}: t{i}: {text}"
            );
            assert!(
                text.contains(&format!("\"p{i}.example.\"")),
                "{io}: p{i}: {text}"
            );
        }
        assert_eq!(text.matches("\"over-tls\"").count(), 50, "{io}");
        assert_eq!(out.stat("errors"), 0, "{io}: {}", out.stderr);
    }
}

/// The receiver's user + system CPU time so far (from /proc/PID/stat, in clock ticks of
/// 1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which ends at the last ')'): utime is the 12th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The figure in docs/performance.md: one connection sends 2,000,000 PBDNSMessages (a
/// client query, then a response with a 2-record answer, alternating) as fast as the
/// receiver takes them; JSON lines to a pipe the test reads. Prints messages/s (wall, from
/// the first line to the last) and the receiver's CPU µs per message. In the suite it runs
/// 20,000 messages (every one must arrive, no error); for the figure, in release:
/// `DNSTAP_PDNS_RATE_N=2000000 cargo test --release --test powerdns -- --nocapture powerdns_input_rate`.
#[test]
fn powerdns_input_rate() {
    let n: u64 = std::env::var("DNSTAP_PDNS_RATE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        .max(1000)
        / 1000
        * 1000;
    let port = free_port();
    let dir = TempDir::new("pdns-rate");
    let cfg = dir.path("rx.yaml");
    std::fs::write(
        &cfg,
        format!("input-mode:\n  powerdns: {{local-address: 127.0.0.1, local-port: {port}}}\n"),
    )
    .unwrap();
    let rx = support::receiver::Launch::new(&["-c", cfg.to_str().unwrap(), "--format", "json"])
        .keep_stdout(false)
        .start();
    // One block of 1,000 messages, sent n / 1,000 times.
    let mut block = Vec::new();
    for i in 0..500 {
        block.extend_from_slice(&framed_query("rate", &format!("host{i}.lab.test.")));
        block.extend_from_slice(&framed_response("rate", &format!("host{i}.lab.test.")));
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (cpu0, t0) = (cpu_ticks(rx.pid()), Instant::now());
    let sender = std::thread::spawn(move || {
        for _ in 0..n / 1000 {
            s.write_all(&block).unwrap();
        }
        s
    });
    rx.wait_lines(n, Duration::from_secs(600));
    let (cpu, wall) = (cpu_ticks(rx.pid()) - cpu0, t0.elapsed());
    drop(sender.join().unwrap());
    let out = rx.stop();
    assert_eq!(out.stat("errors"), 0, "{}", out.stderr);
    println!(
        "powerdns input: {n} messages in {:.2} s = {:.2} M msgs/s; receiver CPU {:.3} µs/msg",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64() / 1e6,
        cpu as f64 * 10_000.0 / n as f64
    );
}

/// A DNSResponseType PBDNSMessage for `qname` A: rcode 0, two A records, with its prefix.
fn framed_response(identity: &str, qname: &str) -> Vec<u8> {
    let mut q = Vec::new();
    field_bytes(&mut q, 1, qname.as_bytes());
    field_varint(&mut q, 2, 1);
    field_varint(&mut q, 3, 1);
    let mut r = Vec::new();
    field_varint(&mut r, 1, 0);
    for a in [[192, 0, 2, 1], [192, 0, 2, 2]] {
        let mut rr = Vec::new();
        field_bytes(&mut rr, 1, qname.as_bytes());
        field_varint(&mut rr, 2, 1);
        field_varint(&mut rr, 3, 1);
        field_varint(&mut rr, 4, 300);
        field_bytes(&mut rr, 5, &a);
        field_bytes(&mut r, 2, &rr);
    }
    field_varint(&mut r, 5, 1_700_000_000);
    field_varint(&mut r, 6, 1000);
    let mut m = Vec::new();
    field_varint(&mut m, 1, 2);
    field_bytes(&mut m, 3, identity.as_bytes());
    field_varint(&mut m, 4, 1);
    field_varint(&mut m, 5, 1);
    field_bytes(&mut m, 6, &[127, 0, 0, 1]);
    field_bytes(&mut m, 7, &[127, 0, 0, 2]);
    field_varint(&mut m, 9, 1_700_000_000);
    field_varint(&mut m, 10, 2000);
    field_varint(&mut m, 11, 4660);
    field_bytes(&mut m, 12, &q);
    field_bytes(&mut m, 13, &r);
    field_varint(&mut m, 20, 5353);
    field_varint(&mut m, 21, 53);
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    framed
}
