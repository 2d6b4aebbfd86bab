//! The `metrics:` section and `--metrics` merged and checked into the endpoint's
//! [`MetricsConfig`]. No file is read and nothing is bound here (a host name in `listen` is
//! looked up): the password file and the certificate are read, and the address bound, when
//! the endpoint starts (`metrics::http::MetricsServer::bind`).
#![forbid(unsafe_code)]

use std::path::Path;

use super::addr::parse_host_port;
use super::error::ConfigError;
use super::file::MetricsSpec;
use crate::metrics::{MetricsConfig, Password};

/// Merges `--metrics` over the file's `metrics:` section. `None`: no endpoint (the default).
pub fn resolve(
    flag: Option<&str>,
    spec: Option<&MetricsSpec>,
    file: Option<&Path>,
) -> Result<Option<MetricsConfig>, ConfigError> {
    let err = |key: &str, reason: String| ConfigError {
        file: if key.starts_with('-') {
            None
        } else {
            file.map(Path::to_path_buf)
        },
        key: key.to_string(),
        line: None,
        reason,
    };
    let listen = match (flag, spec.and_then(|s| s.listen.as_deref())) {
        (Some(f), _) => parse_host_port(f).map_err(|r| err("--metrics", r))?,
        (None, Some(l)) => parse_host_port(l).map_err(|r| err("metrics.listen", r))?,
        (None, None) if spec.is_some() => {
            return Err(err(
                "metrics.listen",
                "missing (ADDR:PORT of the metrics endpoint)".into(),
            ))
        }
        (None, None) => return Ok(None),
    };
    let mut cfg = MetricsConfig {
        listen,
        basic_auth: None,
        tls: None,
    };
    let Some(spec) = spec else {
        return Ok(Some(cfg));
    };
    if let Some(a) = &spec.basic_auth {
        let user = match &a.user {
            Some(u) if !u.is_empty() && !u.contains(':') => u.clone(),
            Some(_) => {
                return Err(err(
                    "metrics.basic-auth.user",
                    "must be non-empty and contain no ':'".into(),
                ))
            }
            None => return Err(err("metrics.basic-auth.user", "missing".into())),
        };
        let password = match (&a.password, &a.password_file) {
            (Some(p), None) if !p.is_empty() => Password::Inline(p.clone()),
            (None, Some(f)) => Password::File(f.clone()),
            (Some(_), None) => {
                return Err(err("metrics.basic-auth.password", "is empty".into()));
            }
            _ => {
                return Err(err(
                    "metrics.basic-auth",
                    "give exactly one of password and password-file".into(),
                ))
            }
        };
        cfg.basic_auth = Some((user, password));
    }
    cfg.tls = match (&spec.tls_cert, &spec.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(err("metrics.tls-key", "missing (tls-cert is set)".into())),
        (None, Some(_)) => return Err(err("metrics.tls-cert", "missing (tls-key is set)".into())),
    };
    Ok(Some(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MetricsSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn resolve_flag_file_and_errors() {
        assert_eq!(resolve(None, None, None).unwrap(), None);
        let c = resolve(Some("127.0.0.1:9100"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9100".parse().unwrap());
        let s = spec("listen: 127.0.0.1:1\nbasic-auth: {user: u, password: p}\n");
        let c = resolve(Some("127.0.0.1:2"), Some(&s), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.listen.port(), 2, "the flag wins");
        assert_eq!(
            c.basic_auth,
            Some(("u".into(), Password::Inline("p".into())))
        );
        assert!(
            !format!("{c:?}").contains("\"p\""),
            "Debug hides the password"
        );
        let f = Some(Path::new("c.yaml"));
        let e = |y: &str| resolve(None, Some(&spec(y)), f).unwrap_err().key;
        assert_eq!(e("tls-cert: /x\n"), "metrics.listen");
        assert_eq!(e("listen: nope\n"), "metrics.listen");
        assert_eq!(e("listen: 127.0.0.1:1\ntls-cert: /x\n"), "metrics.tls-key");
        assert_eq!(
            e("listen: 127.0.0.1:1\nbasic-auth: {user: u, password: p, password-file: /f}\n"),
            "metrics.basic-auth"
        );
        assert_eq!(
            e("listen: 127.0.0.1:1\nbasic-auth: {user: 'a:b', password: p}\n"),
            "metrics.basic-auth.user"
        );
        let err = resolve(Some("x"), None, f).unwrap_err();
        assert_eq!((err.key.as_str(), err.file), ("--metrics", None));
    }
}
