//! Compiles the forward output's TLS settings into the rustls client configuration, once,
//! when the configuration is built (at start-up and at each reload): reads the CA bundle and
//! the optional client certificate and key, and checks the server name. The output then
//! starts with that configuration; nothing reads the files again. Knows nothing of
//! connections (the handshake itself is in `collector.rs`).
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The compiled client configuration, and the bytes of the files it was built from. Two are
/// equal when those bytes are: a reload that finds the same files keeps the running output
/// (and its connections); a rotated certificate or key makes it a new one.
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    /// The CA bundle, client certificate and key files, as read.
    source: Vec<Vec<u8>>,
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for ClientTls {}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes: usize = self.source.iter().map(Vec::len).sum();
        write!(f, "ClientTls({bytes} bytes of PEM)")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds the rustls client configuration: reads the CA bundle and the client certificate
/// and key. Errors name the file and what is wrong with it.
pub fn tls_client_config(
    ca: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    server_name: Option<&str>,
) -> Result<ClientTls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut source = Vec::with_capacity(3);
    let ca_pem = read(ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca_pem) {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate in the file", ca.display()));
    }
    source.push(ca_pem);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let cert_pem = read(cert)?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate in the file", cert.display()));
            }
            let key_pem = read(key)?;
            let pk = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            source.push(cert_pem);
            source.push(key_pem);
            builder
                .with_client_auth_cert(chain, pk)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both tls-cert and tls-key".into()),
    };
    if let Some(sn) = server_name {
        ServerName::try_from(sn.to_string())
            .map_err(|_| format!("{sn:?} is not a valid server name"))?;
    }
    Ok(ClientTls {
        config: Arc::new(config),
        source,
    })
}
