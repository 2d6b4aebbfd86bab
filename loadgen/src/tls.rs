//! TLS for the sender (`--tls`): the client configuration built once from the command line
//! (CA bundle to verify the receiver, optional client certificate for mutual TLS, optional
//! protocol version), and the connection wrapper the sender writes through.
//!
//! rustls with the ring provider, as the receiver. Nothing here knows about Frame Streams.
#![forbid(unsafe_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// `--tls-*` as given.
#[derive(Clone, Debug, Default)]
pub struct TlsArgs {
    /// PEM CA bundle the receiver's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate chain and key (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name to verify the receiver's certificate against (default: the target's host).
    pub server_name: Option<String>,
    /// `1.2` or `1.3` only (default: both, 1.3 preferred).
    pub version: Option<String>,
}

/// The compiled client side: one config shared by every connection.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

/// A TLS connection over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

impl TlsClient {
    /// Reads the files and builds the configuration; `host` is the target's host, the
    /// default server name.
    pub fn new(args: &TlsArgs, host: &str) -> Result<TlsClient, String> {
        let ca = args
            .ca
            .as_ref()
            .ok_or("--tls needs --tls-ca FILE (the CA that signed the receiver's certificate)")?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(read_certs(ca)?);
        if added == 0 {
            return Err(format!("{}: no usable CA certificate", ca.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider);
        let builder = match args.version.as_deref() {
            None => builder.with_safe_default_protocol_versions(),
            Some("1.2") => builder.with_protocol_versions(&[&rustls::version::TLS12]),
            Some("1.3") => builder.with_protocol_versions(&[&rustls::version::TLS13]),
            Some(v) => return Err(format!("--tls-version: {v:?} is not 1.2 or 1.3")),
        }
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        let config = match (&args.cert, &args.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(c), Some(k)) => {
                let key_bytes = std::fs::read(k).map_err(|e| format!("{}: {e}", k.display()))?;
                let key = PrivateKeyDer::from_pem_slice(&key_bytes)
                    .map_err(|e| format!("{}: no PEM private key: {e}", k.display()))?;
                builder
                    .with_client_auth_cert(read_certs(c)?, key)
                    .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?
            }
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let name = args.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("server name {name:?}: {e}"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Wraps a connected socket; the handshake runs with the first write.
    pub fn wrap(&self, tcp: TcpStream) -> std::io::Result<TlsStream> {
        let conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(std::io::Error::other)?;
        Ok(StreamOwned::new(conn, tcp))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The host part of `host:port` or `[v6]:port`.
pub fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("127.0.0.1:6000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6000"), "::1");
        assert_eq!(host_of("dnstap.test:6001"), "dnstap.test");
    }

    #[test]
    fn missing_ca_and_half_a_client_pair_are_refused() {
        let e = TlsClient::new(&TlsArgs::default(), "x").unwrap_err();
        assert!(e.contains("--tls-ca"), "{e}");
        let args = TlsArgs {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsArgs::default()
        };
        assert!(TlsClient::new(&args, "x")
            .unwrap_err()
            .contains("/nonexistent"));
    }
}
