//! The inputs and their security, resolved: the seed's single input (`input-mode`, `-l`,
//! `-p`, `-u`), the `inputs:` list, and the keys that guard them (`tls`, the seed's
//! `input-mode.tls-*`, `allow-from`, `unix-socket-*`, `handshake-timeout`, `reuse-port`),
//! into the input floor's [`InputSpec`]s and [`SecuritySpec`]. Pure except for looking up
//! host names: no TLS file is read, no user or group looked up (that is
//! [`crate::input::security::InputSecurity::compile`]), nothing bound.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::addr::{check_unix_path, parse_host_port, resolve_addr};
use super::args::LowArgs;
use super::error::ConfigError;
use super::file::{FileConfig, InputEntry, NumOrName, TlsFileSpec};
use super::{DEFAULT_ADDRESS, DEFAULT_PORT};
use crate::input::acl::AllowList;
use crate::input::security::{Principal, SecuritySpec, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::input::tls::{TlsKeys, TlsSpec};
use crate::input::InputSpec;

/// Longest `handshake-timeout` accepted (one hour).
pub const MAX_HANDSHAKE_TIMEOUT_SECS: f64 = 3600.0;

/// The listeners and their security settings, flags over the file over defaults.
pub fn resolve_inputs(
    args: &LowArgs,
    fc: &FileConfig,
    path: Option<&Path>,
) -> Result<(Vec<InputSpec>, SecuritySpec), ConfigError> {
    let err = |key: &str, reason: String| ConfigError::new(path, key, reason);
    let flag_err = |key: &str, reason: String| ConfigError::new(None, key, reason);

    let im = fc.input_mode.as_ref();
    // The seed's TCP input speaks TLS with `tls-support: true` (a unix socket never does).
    let seed_tls = im.and_then(|m| m.tls_support) == Some(true);

    // The seed's single input: unix socket if set, else TCP address:port.
    let unix = args
        .unix_socket
        .clone()
        .or_else(|| im.and_then(|m| m.unix_socket.clone()));
    let mut inputs = Vec::new();
    let flags_name_input =
        args.unix_socket.is_some() || args.listen_address.is_some() || args.port.is_some();
    // `input-mode: {powerdns: ...}` alone asks for the PowerDNS listener only.
    let powerdns_only = im.is_some_and(|m| {
        m.powerdns.is_some()
            && m.local_address.is_none()
            && m.local_port.is_none()
            && m.unix_socket.is_none()
    });
    let want_primary =
        flags_name_input || (!powerdns_only && (fc.input_mode.is_some() || fc.inputs.is_none()));
    if want_primary {
        if let Some(path) = unix {
            let key = if args.unix_socket.is_some() {
                "-u"
            } else {
                "input-mode.unix-socket"
            };
            check_unix_path(&path).map_err(|r| {
                if args.unix_socket.is_some() {
                    flag_err(key, r)
                } else {
                    err(key, r)
                }
            })?;
            inputs.push(InputSpec::Unix(path));
        } else {
            let (host, host_key) = match (
                &args.listen_address,
                im.and_then(|m| m.local_address.as_ref()),
            ) {
                (Some(a), _) => (a.as_str(), "-l"),
                (None, Some(a)) => (a.as_str(), "input-mode.local-address"),
                (None, None) => (DEFAULT_ADDRESS, "-l"),
            };
            let port = args
                .port
                .or(im.and_then(|m| m.local_port))
                .unwrap_or(DEFAULT_PORT);
            let addr = resolve_addr(host, port).map_err(|r| {
                if host_key.starts_with('-') {
                    flag_err(host_key, r)
                } else {
                    err(host_key, r)
                }
            })?;
            inputs.push(if seed_tls {
                InputSpec::Tls(addr)
            } else {
                InputSpec::Tcp(addr)
            });
        }
    }
    if let Some(p) = im.and_then(|m| m.powerdns.as_ref()) {
        let host = p.local_address.as_deref().unwrap_or(DEFAULT_ADDRESS);
        let port = p.local_port.unwrap_or(crate::powerdns::DEFAULT_PORT);
        let addr = resolve_addr(host, port).map_err(|r| err("input-mode.powerdns", r))?;
        inputs.push(if p.tls == Some(true) {
            InputSpec::PowerDnsTls(addr)
        } else {
            InputSpec::PowerDns(addr)
        });
    }
    if let Some(list) = &fc.inputs {
        for (i, entry) in list.iter().enumerate() {
            let key = format!("inputs[{i}]");
            match entry {
                InputEntry::Tcp(s) => {
                    let addr = parse_host_port(s).map_err(|r| err(&key, r))?;
                    inputs.push(InputSpec::Tcp(addr));
                }
                InputEntry::Unix(p) => {
                    check_unix_path(p).map_err(|r| err(&key, r))?;
                    inputs.push(InputSpec::Unix(p.clone()));
                }
                InputEntry::Tls(s) => {
                    let addr = parse_host_port(s).map_err(|r| err(&key, r))?;
                    inputs.push(InputSpec::Tls(addr));
                }
                InputEntry::Powerdns(s) => {
                    let addr = parse_host_port(s).map_err(|r| err(&key, r))?;
                    inputs.push(InputSpec::PowerDns(addr));
                }
                InputEntry::PowerdnsTls(s) => {
                    let addr = parse_host_port(s).map_err(|r| err(&key, r))?;
                    inputs.push(InputSpec::PowerDnsTls(addr));
                }
            }
        }
    }
    if inputs.is_empty() {
        return Err(err("inputs", "no input configured".into()));
    }
    for (i, a) in inputs.iter().enumerate() {
        if inputs[..i].contains(a) {
            return Err(err("inputs", format!("{a} is listed twice")));
        }
        if let InputSpec::Tls(t) | InputSpec::PowerDns(t) | InputSpec::PowerDnsTls(t) = a {
            let others = [
                InputSpec::Tcp(*t),
                InputSpec::Tls(*t),
                InputSpec::PowerDns(*t),
                InputSpec::PowerDnsTls(*t),
            ];
            if others.iter().any(|o| o != a && inputs.contains(o)) {
                return Err(err("inputs", format!("{t} is listed under two protocols")));
            }
        }
    }
    let tls_needed = inputs
        .iter()
        .any(|i| matches!(i, InputSpec::Tls(_) | InputSpec::PowerDnsTls(_)));
    let security = resolve_security(
        &SecurityFileKeys {
            seed: SeedTls {
                cert: im.and_then(|m| m.tls_server_cert.as_deref()),
                key: im.and_then(|m| m.tls_server_key.as_deref()),
                client_ca: im.and_then(|m| m.tls_client_ca.as_deref()),
            },
            tls: fc.tls.as_ref(),
            allow_from: fc.allow_from.as_deref(),
            unix_socket_mode: fc.unix_socket_mode.as_ref(),
            unix_socket_owner: fc.unix_socket_owner.as_ref(),
            unix_socket_group: fc.unix_socket_group.as_ref(),
            handshake_timeout: fc.handshake_timeout,
            reuse_port: args.reuse_port || fc.reuse_port == Some(true),
        },
        tls_needed,
    )
    .map_err(|(key, reason)| err(&key, reason))?;
    Ok((inputs, security))
}

/// The security keys of the config file, as written (each is one top-level key, see
/// docs/receiver.md).
#[derive(Clone, Copy, Debug, Default)]
pub struct SecurityFileKeys<'a> {
    pub seed: SeedTls<'a>,
    pub tls: Option<&'a TlsFileSpec>,
    pub allow_from: Option<&'a [String]>,
    pub unix_socket_mode: Option<&'a NumOrName>,
    pub unix_socket_owner: Option<&'a NumOrName>,
    pub unix_socket_group: Option<&'a NumOrName>,
    pub handshake_timeout: Option<f64>,
    /// `--reuse-port` or `reuse-port: true`.
    pub reuse_port: bool,
}

/// Checks the security keys. `tls_needed`: some input is TLS. Errors are `(key, reason)`.
pub fn resolve_security(
    k: &SecurityFileKeys<'_>,
    tls_needed: bool,
) -> Result<SecuritySpec, (String, String)> {
    let tls = resolve_tls(k.seed, k.tls, tls_needed)?;
    let allow_from = match k.allow_from {
        None => AllowList::default(),
        Some([]) => {
            return Err((
                "allow-from".into(),
                "an empty list would refuse every peer; remove the key to allow all".into(),
            ))
        }
        Some(list) => AllowList::parse(list).map_err(|(i, r)| (format!("allow-from[{i}]"), r))?,
    };
    let unix_mode = k
        .unix_socket_mode
        .map(parse_mode)
        .transpose()
        .map_err(|r| ("unix-socket-mode".to_string(), r))?;
    let unix_owner = k
        .unix_socket_owner
        .map(principal)
        .transpose()
        .map_err(|r| ("unix-socket-owner".to_string(), r))?;
    let unix_group = k
        .unix_socket_group
        .map(principal)
        .transpose()
        .map_err(|r| ("unix-socket-group".to_string(), r))?;
    let handshake_timeout = match k.handshake_timeout {
        None => DEFAULT_HANDSHAKE_TIMEOUT,
        Some(s) if s > 0.0 && s <= MAX_HANDSHAKE_TIMEOUT_SECS => Duration::from_secs_f64(s),
        Some(s) => {
            return Err((
                "handshake-timeout".into(),
                format!("{s} is not in (0, {MAX_HANDSHAKE_TIMEOUT_SECS}] seconds"),
            ))
        }
    };
    Ok(SecuritySpec {
        tls,
        allow_from,
        unix_mode,
        unix_owner,
        unix_group,
        handshake_timeout,
        reuse_port: k.reuse_port,
    })
}

/// `"0660"`, `"660"`, `"0o660"`, or a YAML number whose decimal digits are the octal mode
/// (`0660` and `660` read as the number 660 in YAML 1.2: its digits are taken as octal).
fn parse_mode(v: &NumOrName) -> Result<u32, String> {
    let digits = match v {
        NumOrName::Num(n) => n.to_string(),
        NumOrName::Name(s) => s.trim().trim_start_matches("0o").to_string(),
    };
    match u32::from_str_radix(&digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "{v:?} is not an octal file mode such as \"0660\" (quote it)"
        )),
    }
}

fn principal(v: &NumOrName) -> Result<Principal, String> {
    match v {
        NumOrName::Num(n) => u32::try_from(*n)
            .map(Principal::Id)
            .map_err(|_| format!("{n} is not a valid id")),
        NumOrName::Name(s) if s.is_empty() => Err("empty name".into()),
        NumOrName::Name(s) => Ok(match s.parse::<u32>() {
            Ok(id) => Principal::Id(id),
            Err(_) => Principal::Name(s.clone()),
        }),
    }
}

/// The seed's `input-mode` TLS keys, as written.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeedTls<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub client_ca: Option<&'a Path>,
}

/// Merges the seed's `input-mode.tls-*` keys with the `tls:` section. Either spelling may
/// give each file; both giving different files is an error. `needed` says whether a TLS
/// input exists: then the certificate and key are required. Without a TLS input the files
/// are not checked (the seed's config carries `tls-server-cert: null` with TLS off).
/// Errors are `(key, reason)`.
pub fn resolve_tls(
    seed: SeedTls<'_>,
    section: Option<&TlsFileSpec>,
    needed: bool,
) -> Result<Option<TlsSpec>, (String, String)> {
    fn pick(
        seed: Option<&Path>,
        seed_key: &'static str,
        sec: Option<&PathBuf>,
        sec_key: &'static str,
    ) -> Result<Option<(PathBuf, &'static str)>, (String, String)> {
        match (seed, sec) {
            (Some(a), Some(b)) if a != b.as_path() => Err((
                sec_key.to_string(),
                format!(
                    "{} differs from {seed_key} ({}); give it once",
                    b.display(),
                    a.display()
                ),
            )),
            (Some(a), _) => Ok(Some((a.to_path_buf(), seed_key))),
            (None, Some(b)) => Ok(Some((b.clone(), sec_key))),
            (None, None) => Ok(None),
        }
    }
    let cert = pick(
        seed.cert,
        "input-mode.tls-server-cert",
        section.and_then(|s| s.server_cert.as_ref()),
        "tls.server-cert",
    )?;
    let key = pick(
        seed.key,
        "input-mode.tls-server-key",
        section.and_then(|s| s.server_key.as_ref()),
        "tls.server-key",
    )?;
    let ca = pick(
        seed.client_ca,
        "input-mode.tls-client-ca",
        section.and_then(|s| s.client_ca.as_ref()),
        "tls.client-ca",
    )?;
    if !needed {
        return Ok(None);
    }
    let Some((cert, cert_key)) = cert else {
        return Err((
            "input-mode.tls-server-cert".into(),
            "a TLS input needs a certificate (input-mode.tls-server-cert or tls.server-cert)"
                .into(),
        ));
    };
    let Some((key, key_key)) = key else {
        return Err((
            "input-mode.tls-server-key".into(),
            "a TLS input needs a private key (input-mode.tls-server-key or tls.server-key)".into(),
        ));
    };
    let (client_ca, ca_key) = match ca {
        Some((p, k)) => (Some(p), k),
        None => (None, "tls.client-ca"),
    };
    Ok(Some(TlsSpec {
        cert,
        key,
        client_ca,
        keys: TlsKeys {
            cert: cert_key,
            key: key_key,
            client_ca: ca_key,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SecurityFileKeys<'static> {
        SecurityFileKeys::default()
    }

    #[test]
    fn defaults_allow_everyone_with_a_ten_second_handshake() {
        let s = resolve_security(&keys(), false).unwrap();
        assert_eq!(s, SecuritySpec::default());
        assert!(s.allow_from.is_open());
        assert_eq!(s.handshake_timeout, Duration::from_secs(10));
    }

    #[test]
    fn modes_read_as_octal_whatever_the_spelling() {
        for (v, want) in [
            (NumOrName::Name("0660".into()), 0o660),
            (NumOrName::Name("660".into()), 0o660),
            (NumOrName::Name("0o600".into()), 0o600),
            (NumOrName::Num(660), 0o660),
            (NumOrName::Num(2770), 0o2770),
        ] {
            assert_eq!(parse_mode(&v).unwrap(), want, "{v:?}");
        }
        for bad in [
            NumOrName::Name("rw-rw----".into()),
            NumOrName::Num(689),
            NumOrName::Num(17777),
        ] {
            assert!(parse_mode(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let list = ["127.0.0.1".to_string(), "nonsense".to_string()];
        let k = SecurityFileKeys {
            allow_from: Some(&list),
            ..keys()
        };
        assert_eq!(resolve_security(&k, false).unwrap_err().0, "allow-from[1]");
        let k = SecurityFileKeys {
            allow_from: Some(&[]),
            ..keys()
        };
        assert_eq!(resolve_security(&k, false).unwrap_err().0, "allow-from");
        let k = SecurityFileKeys {
            handshake_timeout: Some(0.0),
            ..keys()
        };
        assert_eq!(
            resolve_security(&k, false).unwrap_err().0,
            "handshake-timeout"
        );
        let big = NumOrName::Num(u64::MAX);
        let k = SecurityFileKeys {
            unix_socket_owner: Some(&big),
            ..keys()
        };
        assert_eq!(
            resolve_security(&k, false).unwrap_err().0,
            "unix-socket-owner"
        );
    }

    #[test]
    fn seed_and_section_spellings_merge() {
        let sec = TlsFileSpec {
            server_cert: Some("/a.pem".into()),
            server_key: Some("/a.key".into()),
            client_ca: None,
        };
        let s = resolve_tls(SeedTls::default(), Some(&sec), true)
            .unwrap()
            .unwrap();
        assert_eq!(s.keys.cert, "tls.server-cert");
        let seed = SeedTls {
            cert: Some(Path::new("/a.pem")),
            ..SeedTls::default()
        };
        let s = resolve_tls(seed, Some(&sec), true).unwrap().unwrap();
        assert_eq!(s.keys.cert, "input-mode.tls-server-cert");
        let seed = SeedTls {
            cert: Some(Path::new("/b.pem")),
            ..SeedTls::default()
        };
        assert_eq!(
            resolve_tls(seed, Some(&sec), true).unwrap_err().0,
            "tls.server-cert"
        );
        assert_eq!(
            resolve_tls(SeedTls::default(), None, true).unwrap_err().0,
            "input-mode.tls-server-cert"
        );
        assert_eq!(resolve_tls(SeedTls::default(), None, false).unwrap(), None);
    }
}
