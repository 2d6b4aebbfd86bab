//! TLS on the dnstap input: the server configuration compiled at start-up ([`TlsSpec`], from
//! `config`, → [`load_server_config`]) and one connection's TLS layer without I/O
//! ([`TlsSession`]).
//!
//! ```text
//!  socket ──ciphertext──► TlsSession.inbound ──read_tls/process_new_packets──► rustls
//!                                                         plaintext ──copy──► pooled buffer
//!                                                                  ──► conn::Connection
//!  Connection replies (ACCEPT, FINISH) ──writer()──► rustls ──write_tls──► send buffer ──► socket
//! ```
//!
//! The back-ends (epoll, io_uring) receive ciphertext into [`TlsSession::recv_space`] and
//! call [`TlsSession::on_received`]; [`TlsSession::read_plaintext`] then fills a pooled
//! buffer with decrypted Frame Streams bytes, which go through the same
//! [`super::conn::Connection`] path as plain TCP. The plaintext copy into the pooled buffer
//! is the price of TLS (rustls decrypts into its own buffer); the plain TCP path does not
//! go through here and is unchanged.
//!
//! Crypto is rustls with the ring provider only; TLS 1.2 and 1.3; certificates and keys in
//! PEM (RSA, ECDSA or Ed25519 keys; PKCS#1, SEC1 or PKCS#8). With a client CA bundle, every
//! client must present a certificate that chains to it (mutual TLS). Knows nothing of
//! sockets, threads or counters.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

/// Which config key each path came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsKeys {
    pub cert: &'static str,
    pub key: &'static str,
    pub client_ca: &'static str,
}

/// The TLS files as configured (validated for presence, not yet read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSpec {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate that chains to it.
    pub client_ca: Option<PathBuf>,
    pub keys: TlsKeys,
}

/// The crypto provider: ring, and nothing else.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the PEM files and builds the server configuration (TLS 1.2 and 1.3). Errors are
/// `(key, reason)`: a missing or unreadable file, no certificate or key in it, a key that
/// does not match the certificate, an empty or unusable CA bundle.
pub fn load_server_config(spec: &TlsSpec) -> Result<Arc<ServerConfig>, (String, String)> {
    let k = &spec.keys;
    let fail = |key: &str, reason: String| (key.to_string(), reason);
    let certs = read_certs(&spec.cert).map_err(|r| fail(k.cert, r))?;
    let key_bytes = read_file(&spec.key).map_err(|r| fail(k.key, r))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        fail(
            k.key,
            format!("{}: no usable PEM private key: {e}", spec.key.display()),
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(k.cert, format!("TLS set-up: {e}")))?;
    let builder = match &spec.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = read_certs(ca).map_err(|r| fail(k.client_ca, r))?;
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(roots);
            if added == 0 {
                return Err(fail(
                    k.client_ca,
                    format!("{}: no usable CA certificate", ca.display()),
                ));
            }
            if ignored > 0 {
                crate::log_warn!("{}: {ignored} certificate(s) ignored", ca.display());
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(store.into(), provider())
                .build()
                .map_err(|e| fail(k.client_ca, format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "{} does not match the certificate in {}",
                spec.key.display(),
                spec.cert.display()
            ),
            other => format!("{}: {other}", spec.key.display()),
        };
        fail(k.key, why)
    })?;
    Ok(Arc::new(config))
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Ciphertext received per socket read: a few TLS records (16 KiB + overhead each).
pub const INBOUND_SIZE: usize = 64 << 10;

/// Why a TLS connection failed, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The handshake failed for a reason other than the client certificate.
    Handshake,
    /// Mutual TLS: the client presented no certificate, or one that does not verify.
    ClientCert,
    /// After the handshake (a bad record, an alert from the peer).
    Session,
}

/// A TLS failure carried inside an `io::Error` (kind `InvalidData`) through the byte-source
/// interface the back-ends share with plain sockets.
#[derive(Debug)]
pub struct TlsFailure {
    pub kind: FailureKind,
    pub error: rustls::Error,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FailureKind::Handshake => write!(f, "TLS handshake failed: {}", self.error),
            FailureKind::ClientCert => write!(f, "client certificate refused: {}", self.error),
            FailureKind::Session => write!(f, "TLS error: {}", self.error),
        }
    }
}

impl std::error::Error for TlsFailure {}

/// The TLS failure inside an `io::Error` made by [`TlsSession::read_plaintext`], if any.
pub fn tls_failure(e: &io::Error) -> Option<&TlsFailure> {
    e.get_ref().and_then(|x| x.downcast_ref::<TlsFailure>())
}

/// One connection's TLS layer, without I/O.
///
/// Invariants: `0 <= start <= end <= inbound.len()`; `inbound[start..end]` is ciphertext
/// received and not yet given to rustls; `inbound[end..]` is where the next receive goes.
pub struct TlsSession {
    conn: ServerConnection,
    inbound: Box<[u8]>,
    start: usize,
    end: usize,
    /// The socket reported end of stream.
    eof: bool,
    /// rustls was told about the end of stream (a `read_tls` of nothing).
    eof_fed: bool,
    /// rustls may hold plaintext not yet read (the last read filled its destination).
    plain_pending: bool,
    failed: Option<FailureKind>,
    /// The completed handshake was reported (see [`TlsSession::handshake_report`]).
    reported: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("buffered", &(self.end - self.start))
            .field("eof", &self.eof)
            .finish()
    }
}

impl TlsSession {
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: ServerConnection::new(config)?,
            inbound: vec![0; INBOUND_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            eof_fed: false,
            plain_pending: false,
            failed: None,
            reported: false,
        })
    }

    /// True until the TLS handshake is complete.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Once, right after the handshake completed: the version and cipher suite agreed
    /// (`TLSv1_3 TLS13_AES_256_GCM_SHA384`), and whether a client certificate was verified.
    pub fn handshake_report(&mut self) -> Option<String> {
        if self.reported || self.conn.is_handshaking() {
            return None;
        }
        self.reported = true;
        let version = self
            .conn
            .protocol_version()
            .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()));
        let client = if self.conn.peer_certificates().is_some() {
            ", client certificate verified"
        } else {
            ""
        };
        Some(format!("{version} {suite}{client}"))
    }

    /// Why the session failed, once it has.
    pub fn failure(&self) -> Option<FailureKind> {
        self.failed
    }

    /// True when bytes are waiting here (ciphertext not yet decrypted, plaintext not yet
    /// read, or an end of stream not yet reported): call [`TlsSession::read_plaintext`]
    /// before receiving more.
    pub fn has_input(&self) -> bool {
        self.start < self.end || self.plain_pending || (self.eof && !self.eof_fed)
    }

    /// Where the next receive of ciphertext goes (moves unread bytes to the front first).
    /// Empty only while rustls holds back (its plaintext buffer full): read plaintext first.
    pub fn recv_space(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.inbound.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.inbound[self.end..]
    }

    /// `n` bytes were received into [`TlsSession::recv_space`].
    pub fn on_received(&mut self, n: usize) {
        self.end = (self.end + n).min(self.inbound.len());
    }

    /// The socket reported end of stream.
    pub fn on_eof(&mut self) {
        self.eof = true;
    }

    /// Decrypts into `dst`, feeding rustls the ciphertext received so far, until `dst` is
    /// full or nothing more can be decrypted. Returns the bytes written; `Ok(0)` at the end
    /// of the stream (close_notify, or the socket's end of stream once every complete
    /// record is read); `WouldBlock` when more ciphertext is needed; `InvalidData` carrying
    /// a [`TlsFailure`] when the peer broke TLS (the alert to send is then queued: see
    /// [`TlsSession::take_outgoing`]).
    pub fn read_plaintext(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(kind) = self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS session already failed ({kind:?})"),
            ));
        }
        let mut filled = 0;
        loop {
            match self.conn.reader().read(&mut dst[filled..]) {
                Ok(0) => {
                    // close_notify received and everything before it read.
                    self.plain_pending = false;
                    return Ok(filled);
                }
                Ok(n) => {
                    filled += n;
                    if filled == dst.len() {
                        self.plain_pending = true;
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without close_notify: the Frame Streams layer decides
                // whether the stream was complete (a partial frame is an error there).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.plain_pending = false;
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            self.plain_pending = false;
            // rustls has no plaintext: give it more ciphertext.
            if self.start < self.end {
                let mut rd = &self.inbound[self.start..self.end];
                match self.conn.read_tls(&mut rd) {
                    Ok(n) => self.start += n,
                    // "received plaintext buffer full": cannot happen, plaintext was drained.
                    Err(_) => return self.would_block_unless(filled),
                }
            } else if self.eof && !self.eof_fed {
                self.eof_fed = true;
                let _ = self.conn.read_tls(&mut io::empty());
            } else {
                return self.would_block_unless(filled);
            }
            if let Err(e) = self.conn.process_new_packets() {
                let kind = classify(&e, self.conn.is_handshaking());
                self.failed = Some(kind);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TlsFailure { kind, error: e },
                ));
            }
        }
    }

    fn would_block_unless(&self, filled: usize) -> io::Result<usize> {
        if filled > 0 {
            Ok(filled)
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    /// Encrypts plaintext to send (Frame Streams replies); rustls holds it until the
    /// handshake is done.
    pub fn write_plaintext(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            // Only fails past rustls' outgoing limit (64 KiB); replies are a few bytes.
            let _ = self.conn.writer().write_all(bytes);
        }
    }

    /// Queues close_notify (sent with the next [`TlsSession::take_outgoing`]).
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// True when TLS records wait to be sent.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Appends every TLS record waiting to be sent (handshake, replies, alerts) to `out`.
    pub fn take_outgoing(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// Sorts a rustls error into what the counters distinguish.
fn classify(e: &rustls::Error, handshaking: bool) -> FailureKind {
    match e {
        rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_) => {
            FailureKind::ClientCert
        }
        _ if handshaking => FailureKind::Handshake,
        _ => FailureKind::Session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection};

    /// A throw-away CA and a leaf signed by it, made with rcgen (test-only keys).
    struct TestPki {
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
    }

    fn pki(alg: &'static rcgen::SignatureAlgorithm) -> TestPki {
        let ca_key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = rcgen::Issuer::new(ca_params, ca_key);

        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["dnstap.test".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn server_config(p: &TestPki) -> Arc<ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(p.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(p.key_pem.as_bytes()).unwrap();
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    }

    fn client(
        p: &TestPki,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(p.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientConnection::new(Arc::new(cfg), ServerName::try_from("dnstap.test").unwrap()).unwrap()
    }

    /// Moves bytes between a rustls client and our session, in chunks of `chunk` bytes, and
    /// returns every plaintext byte the session gave, read into destinations of `dst` bytes.
    fn pump(
        c: &mut ClientConnection,
        s: &mut TlsSession,
        payload: &[u8],
        chunk: usize,
        dst: usize,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let mut wire = Vec::new();
        let mut buf = vec![0u8; dst];
        let mut off = 0;
        for _ in 0..1_000_000 {
            // rustls takes a bounded amount of plaintext at a time.
            if off < payload.len() {
                off += c.writer().write(&payload[off..]).unwrap();
                if off == payload.len() {
                    c.send_close_notify();
                }
            }
            while c.wants_write() {
                c.write_tls(&mut wire).unwrap();
            }
            let mut moved = false;
            if !wire.is_empty() {
                let space = s.recv_space();
                let n = space.len().min(chunk).min(wire.len());
                space[..n].copy_from_slice(&wire[..n]);
                s.on_received(n);
                wire.drain(..n);
                moved = n > 0;
            }
            loop {
                match s.read_plaintext(&mut buf) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let mut back = Vec::new();
            s.take_outgoing(&mut back);
            if !back.is_empty() {
                moved = true;
                let mut rd = &back[..];
                while !rd.is_empty() {
                    c.read_tls(&mut rd).unwrap();
                    c.process_new_packets().unwrap();
                }
            }
            if !moved && wire.is_empty() && !c.wants_write() && off == payload.len() {
                s.on_eof();
            }
        }
        panic!("no progress");
    }

    #[test]
    fn plaintext_arrives_whole_for_every_chunking_and_version() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
            let p = pki(alg);
            let cfg = server_config(&p);
            for versions in [
                &[&rustls::version::TLS12][..],
                &[&rustls::version::TLS13][..],
            ] {
                for (chunk, dst) in [
                    (1 << 20, 128 << 10),
                    (1, 4096),
                    (1000, 7),
                    (17_000, 100_000),
                ] {
                    let mut c = client(&p, versions);
                    let mut s = TlsSession::new(Arc::clone(&cfg)).unwrap();
                    let got = pump(&mut c, &mut s, &payload, chunk, dst);
                    assert!(got == payload, "chunk {chunk} dst {dst} {versions:?}");
                    assert!(!s.is_handshaking());
                }
            }
        }
    }

    #[test]
    fn eof_without_close_notify_ends_the_plaintext() {
        let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut c = client(&p, &[&rustls::version::TLS13]);
        let mut s = TlsSession::new(server_config(&p)).unwrap();
        // Handshake, then one record, then the socket ends with no close_notify.
        let mut wire = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..10 {
            while c.wants_write() {
                c.write_tls(&mut wire).unwrap();
            }
            let space = s.recv_space();
            space[..wire.len()].copy_from_slice(&wire);
            s.on_received(wire.len());
            wire.clear();
            let _ = s.read_plaintext(&mut buf);
            let mut back = Vec::new();
            s.take_outgoing(&mut back);
            let mut rd = &back[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets().unwrap();
        }
        assert!(!s.is_handshaking());
        c.writer().write_all(b"hello").unwrap();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let space = s.recv_space();
        space[..wire.len()].copy_from_slice(&wire);
        s.on_received(wire.len());
        assert_eq!(s.read_plaintext(&mut buf).unwrap(), 5);
        assert_eq!(
            s.read_plaintext(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        s.on_eof();
        assert!(s.has_input());
        assert_eq!(s.read_plaintext(&mut buf).unwrap(), 0);
    }

    #[test]
    fn garbage_is_a_handshake_failure() {
        let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut s = TlsSession::new(server_config(&p)).unwrap();
        let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        s.recv_space()[..junk.len()].copy_from_slice(junk);
        s.on_received(junk.len());
        let e = s.read_plaintext(&mut [0u8; 100]).unwrap_err();
        assert_eq!(
            tls_failure(&e).map(|f| f.kind),
            Some(FailureKind::Handshake)
        );
        assert_eq!(s.failure(), Some(FailureKind::Handshake));
        let mut alert = Vec::new();
        s.take_outgoing(&mut alert);
        assert_eq!(alert.first(), Some(&21), "an alert record is queued");
    }

    fn write_files(dir: &Path, p: &TestPki) -> TlsSpec {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("cert.pem"), &p.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &p.key_pem).unwrap();
        std::fs::write(dir.join("ca.pem"), &p.ca_pem).unwrap();
        TlsSpec {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
            keys: TlsKeys {
                cert: "input-mode.tls-server-cert",
                key: "input-mode.tls-server-key",
                client_ca: "tls.client-ca",
            },
        }
    }

    fn tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dr-tls-unit-{tag}-{}", std::process::id()))
    }

    #[test]
    fn load_errors_name_the_key_and_the_file() {
        let dir = tmp("load");
        let p = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let spec = write_files(&dir, &p);
        assert!(load_server_config(&spec).is_ok());

        let missing = TlsSpec {
            cert: dir.join("nope.pem"),
            ..spec.clone()
        };
        let (k, r) = load_server_config(&missing).unwrap_err();
        assert_eq!(k, "input-mode.tls-server-cert");
        assert!(r.contains("nope.pem") && r.contains("cannot read"), "{r}");

        let no_key = TlsSpec {
            key: dir.join("cert.pem"),
            ..spec.clone()
        };
        let (k, r) = load_server_config(&no_key).unwrap_err();
        assert_eq!(k, "input-mode.tls-server-key");
        assert!(r.contains("no usable PEM private key"), "{r}");

        // A key from another pair: refused before any socket is opened.
        let other = pki(&rcgen::PKCS_ECDSA_P256_SHA256);
        std::fs::write(dir.join("other.key"), &other.key_pem).unwrap();
        let wrong = TlsSpec {
            key: dir.join("other.key"),
            ..spec.clone()
        };
        let (k, r) = load_server_config(&wrong).unwrap_err();
        assert_eq!(k, "input-mode.tls-server-key");
        assert!(r.contains("does not match"), "{r}");

        let bad_ca = TlsSpec {
            client_ca: Some(dir.join("key.pem")),
            ..spec.clone()
        };
        let (k, r) = load_server_config(&bad_ca).unwrap_err();
        assert_eq!(k, "tls.client-ca");
        assert!(r.contains("no PEM certificate"), "{r}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
