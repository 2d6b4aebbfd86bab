//! `outputs: - dnstap:`: the relay section ([`RelaySpec`]) checked and resolved into the
//! sink's [`RelayConf`]: the remotes (`unix:/path` or `host:port`, each TCP name resolved
//! once now to catch typos), the mode, TLS (files read and checked), buffer and timings
//! with the forward output's defaults. Opens no socket.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::addr::{parse_host_port, split_host_port};
use super::args::OverflowChoice;
use super::error::ConfigError;
use super::file::{HashKeyChoice, RelaySpec};
use super::outputs::{
    DEFAULT_BACKOFF_INIT, DEFAULT_CHUNK_BYTES, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FORWARD_BUFFER,
    DEFAULT_RECONNECT_MAX, DEFAULT_REPLAY_WINDOW, DEFAULT_SHUTDOWN_TIMEOUT, SYSTEM_CA_BUNDLE,
};
use crate::sink::buffer::{BufferSpec, OverflowPolicy};
use crate::sink::forward::{tls_client_config, HashKey, TlsConf};
use crate::sink::relay::{RelayAddr, RelayConf, RelayMode};

/// Resolves one relay output; `prefix` is its key path (`outputs[1].dnstap`).
pub fn resolve(r: &RelaySpec, prefix: &str, file: Option<&Path>) -> Result<RelayConf, ConfigError> {
    let err = |name: &str, reason: String| ConfigError {
        file: file.map(Path::to_path_buf),
        key: format!("{prefix}.{name}"),
        line: None,
        reason,
    };
    let list = r
        .remote
        .as_ref()
        .ok_or_else(|| err("remote", "missing".into()))?;
    if list.is_empty() {
        return Err(err("remote", "the list is empty".into()));
    }
    let mut remotes = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let key = format!("remote[{i}]");
        match t.strip_prefix("unix:") {
            Some(p) if !p.is_empty() => remotes.push(RelayAddr::Unix(PathBuf::from(p))),
            Some(_) => return Err(err(&key, "unix: needs a path".into())),
            None => {
                let (host, port) = split_host_port(t).map_err(|e| err(&key, e))?;
                parse_host_port(t).map_err(|e| err(&key, e))?;
                remotes.push(RelayAddr::Tcp { host, port });
            }
        }
    }
    let mode = match r.mode.as_deref() {
        None | Some("duplicate") => {
            if r.split_key.is_some() {
                return Err(err(
                    "split-key",
                    "set, but only used with mode: split".into(),
                ));
            }
            RelayMode::Duplicate
        }
        Some("split") => RelayMode::Split(match r.split_key {
            None | Some(HashKeyChoice::ClientIp) => HashKey::ClientIp,
            Some(HashKeyChoice::ClientPrefix) => HashKey::ClientPrefix { v4: 24, v6: 56 },
            Some(HashKeyChoice::Identity) => HashKey::Identity,
            Some(HashKeyChoice::Qname) => HashKey::Qname,
        }),
        Some(o) => return Err(err("mode", format!("{o:?} is not duplicate or split"))),
    };
    let tls = if r.tls == Some(true) {
        let ca = r
            .tls_ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let client = tls_client_config(
            &ca,
            r.tls_cert.as_deref(),
            r.tls_key.as_deref(),
            r.tls_server_name.as_deref(),
        )
        .map_err(|e| err("tls", e))?;
        let t = TlsConf {
            ca,
            cert: r.tls_cert.clone(),
            key: r.tls_key.clone(),
            server_name: r.tls_server_name.clone(),
            client,
        };
        Some(t)
    } else {
        for (set, name) in [
            (r.tls_ca.is_some(), "tls-ca"),
            (r.tls_cert.is_some(), "tls-cert"),
            (r.tls_key.is_some(), "tls-key"),
            (r.tls_server_name.is_some(), "tls-server-name"),
        ] {
            if set {
                return Err(err(name, "set, but tls is not true".into()));
            }
        }
        None
    };
    let secs = |v: Option<f64>, d: f64, name: &str| -> Result<Duration, ConfigError> {
        let s = v.unwrap_or(d);
        if !(s.is_finite() && s > 0.0 && s <= 86_400.0) {
            return Err(err(
                name,
                format!("{s} is not a number of seconds in (0, 86400]"),
            ));
        }
        Ok(Duration::from_secs_f64(s))
    };
    let chunk_bytes = r.chunk_size.unwrap_or(DEFAULT_CHUNK_BYTES);
    if !(4096..=(16 << 20)).contains(&chunk_bytes) {
        return Err(err(
            "chunk-size",
            format!("{chunk_bytes} is not in 4096..=16777216"),
        ));
    }
    let max_bytes = r.buffer_size.unwrap_or(DEFAULT_FORWARD_BUFFER);
    if max_bytes < chunk_bytes {
        return Err(err(
            "buffer-size",
            format!("{max_bytes} is smaller than one chunk ({chunk_bytes})"),
        ));
    }
    let policy = r
        .overflow
        .map_or(OverflowPolicy::Block, OverflowChoice::policy);
    if policy == OverflowPolicy::Spill {
        return Err(err(
            "overflow",
            "spill is not offered by the dnstap relay (block, drop-newest or drop-oldest)".into(),
        ));
    }
    Ok(RelayConf {
        remotes,
        mode,
        tls,
        buffer: BufferSpec {
            max_bytes,
            policy,
            spill: None,
        },
        chunk_bytes,
        connect_timeout: secs(
            r.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
            "connect-timeout",
        )?,
        backoff_init: secs(r.backoff_init, DEFAULT_BACKOFF_INIT, "backoff-init")?,
        reconnect_max: secs(r.reconnect_max, DEFAULT_RECONNECT_MAX, "reconnect-max")?,
        shutdown_timeout: secs(
            r.shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
            "shutdown-timeout",
        )?,
        replay_window: r.replay_window.unwrap_or(DEFAULT_REPLAY_WINDOW),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{FileConfig, OutputEntry};

    fn res(yaml: &str) -> Result<RelayConf, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        let Some(OutputEntry::Dnstap(r)) = fc.outputs.as_deref().and_then(|o| o.first()) else {
            panic!("no dnstap output in {yaml}");
        };
        resolve(r, "outputs[0].dnstap", None)
    }

    #[test]
    fn remotes_and_modes_resolve() {
        let c = res("outputs:\n  - dnstap: {remote: ['unix:/run/t/d.sock', '127.0.0.1:6000', '[::1]:6001'], mode: split, split-key: identity}\n").unwrap();
        assert_eq!(
            c.remotes[0],
            RelayAddr::Unix(PathBuf::from("/run/t/d.sock"))
        );
        assert_eq!(c.remotes[2].to_string(), "[::1]:6001");
        assert_eq!(c.mode, RelayMode::Split(HashKey::Identity));
        assert_eq!(
            c.name(),
            "dnstap unix:/run/t/d.sock,127.0.0.1:6000,[::1]:6001"
        );
        let c = res("outputs:\n  - dnstap: {remote: ['127.0.0.1:6000']}\n").unwrap();
        assert_eq!(c.mode, RelayMode::Duplicate);
        assert_eq!(c.buffer.policy, OverflowPolicy::Block);
    }

    #[test]
    fn errors_name_the_key() {
        for (y, key) in [
            ("{mode: split}", "remote"),
            ("{remote: []}", "remote"),
            ("{remote: ['unix:']}", "remote[0]"),
            ("{remote: ['127.0.0.1:1', 'nope']}", "remote[1]"),
            ("{remote: ['127.0.0.1:1'], mode: spread}", "mode"),
            ("{remote: ['127.0.0.1:1'], split-key: qname}", "split-key"),
            ("{remote: ['127.0.0.1:1'], tls-ca: /x}", "tls-ca"),
            ("{remote: ['127.0.0.1:1'], overflow: spill}", "overflow"),
        ] {
            let e = res(&format!("outputs:\n  - dnstap: {y}\n")).unwrap_err();
            assert_eq!(e.key, format!("outputs[0].dnstap.{key}"), "{y}: {e}");
        }
    }
}
