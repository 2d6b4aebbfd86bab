//! TLS input, end to end through the binary, on both I/O back-ends: a capture sent over TLS
//! 1.2 and 1.3 prints exactly what the offline decode of the same capture prints (the
//! oracle), for every key type and PEM key encoding; mutual TLS lets the right client
//! through and refuses (and counts) the others while the good one keeps flowing; bad
//! certificate files stop start-up with a message naming the key.

mod support;

use std::path::Path;

use support::lab::{capture, capture_payloads};
use support::receiver::{
    backends, free_port, last_stat, lines, offline_lines, run_to_exit, send_bidi, sorted, Ending,
    Receiver, Target, TempDir,
};
use support::tls::{
    client_config, openssl_rsa_leaf, openssl_sec1, openssl_usable, ready_accept, send_data,
    tls_connect, tls_send_bidi, write_config, Ca, Leaf,
};

const CAPTURE: &str = "unbound-tcp.fstrm";

/// The seed's keys, with TLS on.
fn seed_tls_config(port: u16, cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut t = format!(
        "input-mode:\n  local-address: 127.0.0.1\n  local-port: {port}\n  tls-support: true\n  \
         tls-server-cert: {}\n  tls-server-key: {}\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        t.push_str(&format!("  tls-client-ca: {}\n", ca.display()));
    }
    t
}

fn start(dir: &TempDir, cfg_text: &str, io: &str) -> Receiver {
    let cfg = write_config(&dir.0, cfg_text);
    Receiver::start(&["-c", &cfg, "--io", io, "--format", "json"])
}

/// Every key type and PEM encoding, over TLS 1.2 and 1.3: the printed lines are the offline
/// decode of the capture, once per connection.
#[test]
fn capture_over_tls_prints_what_offline_prints_for_every_key_type() {
    let cap = capture(CAPTURE);
    let payloads = capture_payloads(&cap);
    let want_one = offline_lines(&cap, &["--format", "json"]);
    assert_eq!(want_one.len(), payloads.len());
    let dir = TempDir::new("tls-keys");
    let ca = Ca::new("test-ca");
    std::fs::write(dir.path("ca.pem"), &ca.cert_pem).unwrap();
    let mut leaves: Vec<(&str, Leaf)> = vec![
        (
            "ecdsa-p256-pkcs8",
            ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false),
        ),
        (
            "ecdsa-p384-pkcs8",
            ca.leaf(&rcgen::PKCS_ECDSA_P384_SHA384, false),
        ),
        ("ed25519-pkcs8", ca.leaf(&rcgen::PKCS_ED25519, false)),
    ];
    if openssl_usable("tls key types") {
        leaves.push(("rsa-pkcs8", openssl_rsa_leaf(&ca, &dir.0, false)));
        leaves.push(("rsa-pkcs1", openssl_rsa_leaf(&ca, &dir.0, true)));
        let sec1 = openssl_sec1(&leaves[0].1, &dir.0);
        leaves.push(("ecdsa-sec1", sec1));
    }
    let versions: [&[&'static rustls::SupportedProtocolVersion]; 2] =
        [&[&rustls::version::TLS12], &[&rustls::version::TLS13]];
    for io in backends("tls key types") {
        for (name, leaf) in &leaves {
            let (cert, key) = leaf.write(&dir.0, name);
            let port = free_port();
            let r = start(&dir, &seed_tls_config(port, &cert, &key, None), io);
            for v in versions {
                let cfg = client_config(&ca.cert_pem, None, v);
                tls_send_bidi(port, &cfg, &payloads);
            }
            r.wait_closed(2);
            let done = r.stop();
            assert_eq!(done.code, Some(0), "{io} {name}: {}", done.stderr);
            let got = lines(&done.stdout);
            let mut want = want_one.clone();
            want.extend(want_one.iter().cloned());
            assert!(
                sorted(got.clone()) == sorted(want),
                "{io} {name}: {} lines printed, {} expected; log: {}",
                got.len(),
                2 * want_one.len(),
                done.stderr
            );
            assert_eq!(last_stat(&done.stderr, "tls-failed"), 0, "{io} {name}");
            for v in ["TLS handshake done: TLSv1_2", "TLS handshake done: TLSv1_3"] {
                assert!(done.stderr.contains(v), "{io} {name}: no {v:?}");
            }
            assert_eq!(last_stat(&done.stderr, "errors"), 0, "{io} {name}");
        }
    }
}

/// A client certificate from the CA gets through; none, a self-signed one, and one from
/// another CA are refused (no ACCEPT) and counted, while the good connection keeps sending.
#[test]
fn mutual_tls_refuses_bad_clients_while_the_good_one_keeps_flowing() {
    let cap = capture(CAPTURE);
    let payloads = capture_payloads(&cap);
    let want = offline_lines(&cap, &["--format", "json"]);
    let (first, rest) = payloads.split_at(payloads.len() / 2);
    let dir = TempDir::new("tls-mtls");
    let ca = Ca::new("client-ca");
    let other_ca = Ca::new("other-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "srv");
    let ca_path = dir.path("client-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let good = ca.leaf(&rcgen::PKCS_ED25519, true);
    let self_signed = Leaf::self_signed_client();
    let foreign = other_ca.leaf(&rcgen::PKCS_ECDSA_P256_SHA256, true);
    let tls12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let bad: Vec<(
        &str,
        Option<&Leaf>,
        &[&'static rustls::SupportedProtocolVersion],
    )> = vec![
        ("no certificate, TLS 1.3", None, tls13),
        ("no certificate, TLS 1.2", None, tls12),
        ("self-signed, TLS 1.3", Some(&self_signed), tls13),
        ("other CA, TLS 1.3", Some(&foreign), tls13),
        ("other CA, TLS 1.2", Some(&foreign), tls12),
    ];
    for io in backends("mtls") {
        let port = free_port();
        let r = start(
            &dir,
            &seed_tls_config(port, &cert, &key, Some(&ca_path)),
            io,
        );
        let good_cfg = client_config(&ca.cert_pem, Some(&good), &[]);
        let mut g = tls_connect(port, &good_cfg);
        ready_accept(&mut g).expect("the good client gets ACCEPT");
        send_data(&mut g, true, first, false)
            .unwrap_or_else(|e| panic!("{io}: {e}: {}", r.stderr()));
        for (what, leaf, versions) in &bad {
            let cfg = client_config(&ca.cert_pem, *leaf, versions);
            let mut c = tls_connect(port, &cfg);
            let r = ready_accept(&mut c);
            assert!(r.is_err(), "{io}: {what}: got through");
        }
        send_data(&mut g, false, rest, true)
            .unwrap_or_else(|e| panic!("{io}: {e}: {}", r.stderr()));
        drop(g);
        r.wait_closed(1 + bad.len());
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{io}: {}", done.stderr);
        let got = lines(&done.stdout);
        assert!(
            got == want,
            "{io}: {} lines of {}: {}",
            got.len(),
            want.len(),
            done.stderr
        );
        assert_eq!(
            last_stat(&done.stderr, "refused-cert"),
            bad.len() as u64,
            "{io}: {}",
            done.stderr
        );
        assert_eq!(
            last_stat(&done.stderr, "tls-failed"),
            bad.len() as u64,
            "{io}"
        );
        assert_eq!(
            done.stderr.matches("client certificate verified").count(),
            1,
            "{io}: only the good client completes the handshake"
        );
        assert_eq!(
            done.stderr.matches("client certificate refused").count(),
            bad.len(),
            "{io}: {}",
            done.stderr
        );
    }
}

/// `inputs:` may list TLS listeners beside plain ones; the certificate then comes from the
/// `tls:` section.
#[test]
fn tls_and_tcp_inputs_side_by_side() {
    let cap = capture("dnsdist-tcp.fstrm");
    let payloads = capture_payloads(&cap);
    let want_one = offline_lines(&cap, &["--format", "json"]);
    let dir = TempDir::new("tls-inputs");
    let ca = Ca::new("test-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "srv");
    for io in backends("tls inputs") {
        let (plain, secure) = (free_port(), free_port());
        let text = format!(
            "inputs:\n  - tcp: 127.0.0.1:{plain}\n  - tls: 127.0.0.1:{secure}\n\
             tls:\n  server-cert: {}\n  server-key: {}\n",
            cert.display(),
            key.display()
        );
        let r = start(&dir, &text, io);
        send_bidi(&Target::Tcp(plain), &payloads, Ending::Stop);
        tls_send_bidi(secure, &client_config(&ca.cert_pem, None, &[]), &payloads);
        // Plain Frame Streams on the TLS port is not a TLS handshake: refused, counted.
        let mut c = support::receiver::connect(&Target::Tcp(secure));
        let mut ready = Vec::new();
        dnstap_receiver::framestream::write_control_frame(
            dnstap_receiver::framestream::ControlType::Ready,
            Some(dnstap_receiver::framestream::DNSTAP_CONTENT_TYPE),
            &mut ready,
        );
        use std::io::{Read, Write};
        c.write_all(&ready).unwrap();
        let mut b = [0u8; 64];
        let n = c.read(&mut b).unwrap_or(0);
        assert!(
            n == 0 || b[0] == 21,
            "{io}: a TLS alert or nothing, got {:?}",
            &b[..n]
        );
        r.wait_closed(3);
        let done = r.stop();
        assert_eq!(done.code, Some(0), "{io}: {}", done.stderr);
        let mut want = want_one.clone();
        want.extend(want_one.iter().cloned());
        assert!(
            sorted(lines(&done.stdout)) == sorted(want),
            "{io}: {}",
            done.stderr
        );
        assert_eq!(last_stat(&done.stderr, "tls-failed"), 1, "{io}");
        assert!(
            done.stderr.contains("TLS handshake failed"),
            "{}",
            done.stderr
        );
    }
}

/// A missing file, a file without a key, or a key that does not belong to the certificate
/// stops start-up with the key and the file named, before anything listens.
#[test]
fn bad_certificate_files_stop_startup_with_a_clear_message() {
    let dir = TempDir::new("tls-bad");
    let ca = Ca::new("test-ca");
    let (cert, key) = ca
        .leaf(&rcgen::PKCS_ECDSA_P256_SHA256, false)
        .write(&dir.0, "a");
    let (_, other_key) = ca.leaf(&rcgen::PKCS_ED25519, false).write(&dir.0, "b");
    let port = free_port();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            seed_tls_config(port, &dir.path("missing.pem"), &key, None),
            "input-mode.tls-server-cert",
            "missing.pem",
        ),
        (
            seed_tls_config(port, &cert, &dir.path("missing.key"), None),
            "input-mode.tls-server-key",
            "missing.key",
        ),
        (
            seed_tls_config(port, &cert, &cert, None),
            "input-mode.tls-server-key",
            "no usable PEM private key",
        ),
        (
            seed_tls_config(port, &cert, &other_key, None),
            "input-mode.tls-server-key",
            "does not match the certificate",
        ),
        (
            seed_tls_config(port, &cert, &key, Some(&dir.path("nope-ca.pem"))),
            "input-mode.tls-client-ca",
            "nope-ca.pem",
        ),
        (
            format!("input-mode:\n  local-port: {port}\n  tls-support: true\n"),
            "input-mode.tls-server-cert",
            "needs a certificate",
        ),
    ];
    for (text, key_name, why) in cases {
        let cfg = write_config(&dir.0, &text);
        let done = run_to_exit(&["-c", &cfg]);
        assert_eq!(done.code, Some(1), "{text}: {}", done.stderr);
        assert!(
            done.stderr.contains(key_name) && done.stderr.contains(why),
            "{key_name} / {why}: {}",
            done.stderr
        );
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "nothing may listen after a failed start"
        );
    }
}
