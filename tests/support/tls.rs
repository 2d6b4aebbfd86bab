//! Test-only TLS material and a TLS sender for the receiver's integration tests.
//!
//! Certificates and keys are made at test time (rcgen for ECDSA and Ed25519; the `openssl`
//! command for RSA and for the older PEM key encodings, PKCS#1 and SEC1), written to a temp
//! dir, and thrown away with it. Nothing here is a fixture: no private key is committed.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnstap_receiver::framestream::{
    write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SignatureAlgorithm,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The name the test server certificates carry (and clients ask for).
pub const SERVER_NAME: &str = "dnstap.test";

/// A CA that can sign server and client certificates.
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `SERVER_NAME` (server) or a client, with a fresh key of `alg`.
    pub fn leaf(&self, alg: &'static SignatureAlgorithm, client: bool) -> Leaf {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = leaf_params(client).signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn leaf_params(client: bool) -> CertificateParams {
    let names = if client {
        vec!["sender.test".to_string()]
    } else {
        vec![SERVER_NAME.to_string(), "127.0.0.1".to_string()]
    };
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(
        DnType::CommonName,
        if client { "sender.test" } else { SERVER_NAME },
    );
    p.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    p
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    /// A self-signed client certificate (no CA behind it).
    pub fn self_signed_client() -> Leaf {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = leaf_params(true).self_signed(&key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes `NAME.pem` and `NAME.key` in `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{name}.pem"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// True when the `openssl` command runs; otherwise [`super::skip::missing`] (the RSA,
/// PKCS#1 and SEC1 cases of `what` are skipped, or fail under `CI=true`).
pub fn openssl_usable(what: &str) -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    super::skip::require(ok, &format!("{what} (RSA/PKCS#1/SEC1 cases)"), || {
        "openssl not found in PATH (or `openssl version` fails)".into()
    })
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RSA 2048 server leaf signed by `ca`, made by the openssl command as the lab makes its
/// own (PKCS#8 key); with `pkcs1`, the key is rewritten in the older "RSA PRIVATE KEY" form.
pub fn openssl_rsa_leaf(ca: &Ca, dir: &Path, pkcs1: bool) -> Leaf {
    std::fs::write(dir.join("ca-for-rsa.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.join("ca-for-rsa.key"), &ca.key_pem).unwrap();
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    let subj = format!("/CN={SERVER_NAME}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", "rsa.key", "-out",
            "rsa.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "rsa.csr",
            "-CA",
            "ca-for-rsa.pem",
            "-CAkey",
            "ca-for-rsa.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "rsa.pem",
        ],
    );
    if pkcs1 {
        openssl(
            dir,
            &["rsa", "-in", "rsa.key", "-traditional", "-out", "rsa1.key"],
        );
        std::fs::rename(dir.join("rsa1.key"), dir.join("rsa.key")).unwrap();
    }
    Leaf {
        cert_pem: std::fs::read_to_string(dir.join("rsa.pem")).unwrap(),
        key_pem: std::fs::read_to_string(dir.join("rsa.key")).unwrap(),
    }
}

/// The same ECDSA leaf with its key rewritten as SEC1 ("EC PRIVATE KEY").
pub fn openssl_sec1(leaf: &Leaf, dir: &Path) -> Leaf {
    std::fs::write(dir.join("p8.key"), &leaf.key_pem).unwrap();
    openssl(dir, &["ec", "-in", "p8.key", "-out", "sec1.key"]);
    let key_pem = std::fs::read_to_string(dir.join("sec1.key")).unwrap();
    assert!(key_pem.contains("BEGIN EC PRIVATE KEY"), "{key_pem}");
    Leaf {
        cert_pem: leaf.cert_pem.clone(),
        key_pem,
    }
}

/// A client configuration trusting `ca_pem`, with an optional client certificate, limited
/// to `versions` (empty = both).
pub fn client_config(
    ca_pem: &str,
    client: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = if versions.is_empty() {
        builder.with_safe_default_protocol_versions().unwrap()
    } else {
        builder.with_protocol_versions(versions).unwrap()
    }
    .with_root_certificates(roots);
    let cfg = match client {
        None => builder.with_no_client_auth(),
        Some(l) => {
            let chain = CertificateDer::pem_slice_iter(l.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(l.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(cfg)
}

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects over TCP (retrying while the receiver starts) and wraps the socket in TLS; the
/// handshake runs on the first read or write.
pub fn tls_connect(port: u16, cfg: &Arc<ClientConfig>) -> TlsStream {
    let t0 = Instant::now();
    let tcp = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "connect {port}: {e}"
                );
                // A poll step; the loop has a deadline.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn =
        ClientConnection::new(Arc::clone(cfg), ServerName::try_from(SERVER_NAME).unwrap()).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Reads one control frame and returns its type, or the error that stopped it.
pub fn try_read_control(c: &mut impl Read) -> std::io::Result<u32> {
    let mut h = [0u8; 8];
    c.read_exact(&mut h)?;
    if h[..4] != [0, 0, 0, 0] {
        return Err(std::io::Error::other("not a control frame"));
    }
    let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if !(4..=512).contains(&n) {
        return Err(std::io::Error::other(format!("control frame length {n}")));
    }
    let mut body = vec![0u8; n];
    c.read_exact(&mut body)?;
    Ok(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// READY, then waits for ACCEPT: the handshake a refused client never gets through.
pub fn ready_accept(c: &mut (impl Read + Write)) -> std::io::Result<()> {
    let mut out = Vec::new();
    write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), &mut out);
    c.write_all(&out)?;
    c.flush()?;
    match try_read_control(c)? {
        t if t == ControlType::Accept as u32 => Ok(()),
        t => Err(std::io::Error::other(format!(
            "control type {t} instead of ACCEPT"
        ))),
    }
}

/// START (when `start`), the payloads (in writes of about 64 KiB), then STOP and FINISH
/// when `stop`.
pub fn send_data(
    c: &mut (impl Read + Write),
    start: bool,
    payloads: &[Vec<u8>],
    stop: bool,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    if start {
        write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    }
    for p in payloads {
        write_data_frame(p, &mut out);
        if out.len() >= 65_000 {
            c.write_all(&out)?;
            out.clear();
        }
    }
    if stop {
        write_control_frame(ControlType::Stop, None, &mut out);
    }
    c.write_all(&out)?;
    c.flush()?;
    if stop {
        let t = try_read_control(c)?;
        if t != ControlType::Finish as u32 {
            return Err(std::io::Error::other(format!(
                "control type {t}, not FINISH"
            )));
        }
    }
    Ok(())
}

/// A whole bidirectional stream over TLS: handshake, payloads, STOP, FINISH.
pub fn tls_send_bidi(port: u16, cfg: &Arc<ClientConfig>, payloads: &[Vec<u8>]) {
    let mut c = tls_connect(port, cfg);
    ready_accept(&mut c).expect("READY/ACCEPT over TLS");
    send_data(&mut c, true, payloads, true).expect("data, STOP, FINISH over TLS");
    c.conn.send_close_notify();
    let _ = c.flush();
}

/// Writes a config file with `text` in `dir`; returns its path.
pub fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("receiver.yaml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}
