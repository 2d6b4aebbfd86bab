//! Compiles a [`TlsConf`] into the rustls client configuration once, at start-up: reads the
//! CA bundle and the optional client certificate and key, and checks the server name.
//! Knows nothing of connections (the handshake itself is in `collector.rs`).
#![forbid(unsafe_code)]

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::conf::TlsConf;

/// Builds the rustls client configuration: reads the CA bundle and the client certificate
/// and key. Errors name the file and what is wrong with it.
pub fn tls_client_config(t: &TlsConf) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let iter =
        CertificateDer::pem_file_iter(&t.ca).map_err(|e| format!("{}: {e}", t.ca.display()))?;
    for c in iter {
        let c = c.map_err(|e| format!("{}: {e}", t.ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", t.ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate in the file", t.ca.display()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            if chain.is_empty() {
                return Err(format!("{}: no certificate in the file", cert.display()));
            }
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs both tls-cert and tls-key".into()),
    };
    if let Some(sn) = &t.server_name {
        ServerName::try_from(sn.clone())
            .map_err(|_| format!("{sn:?} is not a valid server name"))?;
    }
    Ok(Arc::new(config))
}
