//! `outputs: - syslog:` as written ([`SyslogSpec`]) and its resolution into the sink's
//! [`SyslogConf`]: transport and destination, the message's header fields (facility and
//! severity by name or number, app-name, hostname: the machine's name when unset, rfc),
//! and the network part, which is a forward output's (`remote`, TLS, timeouts, buffer,
//! overflow policy) checked by the same code (`outputs::forward_conf`). Reads the TLS files
//! and `/proc/sys/kernel/hostname`; opens no socket.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::addr::{parse_host_port, split_host_port};
use super::args::{FormatChoice, OverflowChoice};
use super::error::ConfigError;
use super::file::{ForwardToSpec, NumOrName, TransformsSpec};
use super::outputs::{forward_conf, text_format};
use crate::format::FormatKind;
use crate::sink::forward::CollectorAddr;
use crate::sink::syslog::{MessageConf, Rfc, SyslogConf, Transport};

/// `/dev/log`: where the local syslog daemon (journald, rsyslog, syslog-ng) reads.
pub const DEFAULT_SYSLOG_PATH: &str = "/dev/log";
/// Default `max-message-size`: under the largest UDP payload (65507 bytes over IPv4).
pub const DEFAULT_MAX_MESSAGE: usize = 65_000;
/// Default `chunk-size` (bytes of framed messages per buffer entry).
pub const DEFAULT_SYSLOG_CHUNK: usize = 64 << 10;

/// `- syslog: {...}` in `outputs`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyslogSpec {
    /// `unix` (default), `udp`, `tcp`, `tls`.
    pub transport: Option<String>,
    /// `unix`: the socket [default: /dev/log].
    pub path: Option<PathBuf>,
    /// `udp`, `tcp`, `tls`: `HOST:PORT`.
    pub remote: Option<String>,
    /// The MSG's format [default: json].
    pub format: Option<FormatChoice>,
    /// DNS-collector text directives; wins over `format`.
    pub text_format: Option<String>,
    pub text_format_delimiter: Option<String>,
    /// A name (`daemon`, `local0`...) or 0..=23 [default: daemon].
    pub facility: Option<NumOrName>,
    /// A name (`info`, `notice`...) or 0..=7 [default: info].
    pub severity: Option<NumOrName>,
    /// [default: dnstap-receiver].
    pub app_name: Option<String>,
    /// [default: this machine's name].
    pub hostname: Option<String>,
    /// 5424 (default) or 3164.
    pub rfc: Option<u32>,
    /// Longest message in bytes, header included; longer ones are cut.
    pub max_message_size: Option<usize>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub connect_timeout: Option<f64>,
    pub backoff_init: Option<f64>,
    #[serde(alias = "backoff-max")]
    pub reconnect_max: Option<f64>,
    pub shutdown_timeout: Option<f64>,
    pub keepalive: Option<f64>,
    pub buffer_size: Option<usize>,
    pub chunk_size: Option<usize>,
    pub overflow: Option<OverflowChoice>,
    pub spill_dir: Option<PathBuf>,
    pub spill_max_bytes: Option<u64>,
    pub replay_window: Option<u64>,
    /// This output's own transforms.
    pub transforms: Option<TransformsSpec>,
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

fn err(file: Option<&Path>, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.map(Path::to_path_buf),
        key: key.to_string(),
        line: None,
        reason: reason.into(),
    }
}

/// A name from `names` (or one of `aliases`), or a number below `names.len()`.
fn code(
    v: Option<&NumOrName>,
    default: u8,
    names: &[&str],
    aliases: &[(&str, u8)],
    key: &str,
    file: Option<&Path>,
) -> Result<u8, ConfigError> {
    let bad = |what: String| {
        err(
            file,
            key,
            format!(
                "{what} is not one of {} or 0..={}",
                names.join(", "),
                names.len() - 1
            ),
        )
    };
    match v {
        None => Ok(default),
        Some(NumOrName::Num(n)) if (*n as usize) < names.len() => Ok(*n as u8),
        Some(NumOrName::Num(n)) => Err(bad(n.to_string())),
        Some(NumOrName::Name(s)) => {
            let l = s.to_ascii_lowercase();
            names
                .iter()
                .position(|n| *n == l)
                .map(|i| i as u8)
                .or_else(|| aliases.iter().find(|(a, _)| *a == l).map(|(_, c)| *c))
                .ok_or_else(|| bad(format!("{s:?}")))
        }
    }
}

/// Printable ASCII without spaces, 1..=`max` bytes (RFC 5424 §6.2.4, §6.2.5).
fn header_field(v: &str, max: usize, key: &str, file: Option<&Path>) -> Result<(), ConfigError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(err(
            file,
            key,
            format!("{v:?} is not 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// This machine's name, as the kernel has it; `localhost` when it cannot be read.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "localhost".into())
}

/// Resolves one `- syslog:` entry; `prefix` is its key path (`outputs[2].syslog`).
pub fn resolve(
    s: &SyslogSpec,
    prefix: &str,
    file: Option<&Path>,
) -> Result<SyslogConf, ConfigError> {
    let k = |name: &str| format!("{prefix}.{name}");
    let transport = match s.transport.as_deref().unwrap_or("unix") {
        "unix" => Transport::Unix(
            s.path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSLOG_PATH)),
        ),
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        t => {
            return Err(err(
                file,
                &k("transport"),
                format!("{t:?} is not unix, udp, tcp or tls"),
            ))
        }
    };
    let is_unix = matches!(transport, Transport::Unix(_));
    let is_tls = transport == Transport::Tls;
    let collectors = match (&transport, &s.remote) {
        (Transport::Unix(_), Some(_)) => {
            return Err(err(
                file,
                &k("remote"),
                "set, but transport is unix (use path)",
            ))
        }
        (Transport::Unix(_), None) => Vec::new(),
        (_, None) => {
            return Err(err(
                file,
                &k("remote"),
                format!("missing (HOST:PORT, for transport {})", transport.name()),
            ))
        }
        (_, Some(r)) => {
            let (host, port) = split_host_port(r).map_err(|e| err(file, &k("remote"), e))?;
            parse_host_port(r).map_err(|e| err(file, &k("remote"), e))?;
            vec![CollectorAddr { host, port }]
        }
    };
    if s.path.is_some() && !is_unix {
        return Err(err(file, &k("path"), "set, but transport is not unix"));
    }
    for (set, name) in [
        (s.tls_ca.is_some(), "tls-ca"),
        (s.tls_cert.is_some(), "tls-cert"),
        (s.tls_key.is_some(), "tls-key"),
        (s.tls_server_name.is_some(), "tls-server-name"),
    ] {
        if set && !is_tls {
            return Err(err(file, &k(name), "set, but transport is not tls"));
        }
    }
    let rfc = match s.rfc {
        None | Some(5424) => Rfc::Rfc5424,
        Some(3164) => Rfc::Rfc3164,
        Some(n) => return Err(err(file, &k("rfc"), format!("{n} is not 5424 or 3164"))),
    };
    let facility = code(
        s.facility.as_ref(),
        3,
        &FACILITIES,
        &[],
        &k("facility"),
        file,
    )?;
    let severity = code(
        s.severity.as_ref(),
        6,
        &SEVERITIES,
        &[
            ("emergency", 0),
            ("critical", 2),
            ("error", 3),
            ("warn", 4),
            ("informational", 6),
        ],
        &k("severity"),
        file,
    )?;
    let app_name = s
        .app_name
        .clone()
        .unwrap_or_else(|| "dnstap-receiver".into());
    header_field(&app_name, 48, &k("app-name"), file)?;
    let hostname = match &s.hostname {
        Some(h) => {
            header_field(h, 255, &k("hostname"), file)?;
            h.clone()
        }
        None => machine_hostname(),
    };
    let max_message = s.max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE);
    let limit = if is_unix || transport == Transport::Udp {
        65_000
    } else {
        16 << 20
    };
    if !(480..=limit).contains(&max_message) {
        return Err(err(
            file,
            &k("max-message-size"),
            format!("{max_message} is not in 480..={limit}"),
        ));
    }
    let format = text_format(
        s.text_format.as_deref(),
        s.text_format_delimiter.as_deref(),
        &k("text-format"),
        file,
    )?
    .or(s.format.map(FormatChoice::kind))
    .unwrap_or(FormatKind::Json);
    // The network part is a forward output's, checked by the same code.
    let fwd = ForwardToSpec {
        tls: Some(is_tls),
        tls_ca: s.tls_ca.clone(),
        tls_cert: s.tls_cert.clone(),
        tls_key: s.tls_key.clone(),
        tls_server_name: s.tls_server_name.clone(),
        connect_timeout: s.connect_timeout,
        backoff_init: s.backoff_init,
        reconnect_max: s.reconnect_max,
        shutdown_timeout: s.shutdown_timeout,
        keepalive: s.keepalive,
        buffer_size: s.buffer_size,
        chunk_size: Some(s.chunk_size.unwrap_or(DEFAULT_SYSLOG_CHUNK)),
        overflow: s.overflow,
        spill_dir: s.spill_dir.clone(),
        spill_max_bytes: s.spill_max_bytes,
        replay_window: s.replay_window,
        ..ForwardToSpec::default()
    };
    let net = forward_conf(&fwd, prefix, collectors, format, file)?;
    Ok(SyslogConf {
        transport,
        format,
        message: MessageConf {
            rfc,
            facility,
            severity,
            hostname,
            app_name,
            max_message,
            local: is_unix,
        },
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::{FileConfig, OutputEntry};
    use crate::sink::buffer::OverflowPolicy;

    fn res(yaml: &str) -> Result<SyslogConf, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        let list = fc.outputs.expect("outputs");
        match &list[0] {
            OutputEntry::Syslog(s) => resolve(s, "outputs[0].syslog", None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_local_socket_rfc5424_daemon_info_json() {
        let c = res("outputs:\n  - syslog: {}\n").unwrap();
        assert_eq!(c.transport, Transport::Unix(PathBuf::from("/dev/log")));
        assert_eq!(c.format, FormatKind::Json);
        assert_eq!(c.message.rfc, Rfc::Rfc5424);
        assert_eq!((c.message.facility, c.message.severity), (3, 6));
        assert_eq!(c.message.app_name, "dnstap-receiver");
        assert!(!c.message.hostname.is_empty());
        assert_eq!(c.net.buffer.policy, OverflowPolicy::Block);
        assert_eq!(c.name(), "syslog unix:/dev/log");
    }

    #[test]
    fn every_key_is_read() {
        let y = "outputs:\n  - syslog:\n      transport: tcp\n      remote: 127.0.0.1:601\n      \
                 format: text\n      facility: local3\n      severity: 5\n      app-name: dns\n      \
                 hostname: ns1.example\n      rfc: 3164\n      overflow: drop-newest\n      \
                 buffer-size: 1048576\n";
        let c = res(y).unwrap();
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.format, FormatKind::Text);
        assert_eq!((c.message.facility, c.message.severity), (19, 5));
        assert_eq!(c.message.rfc, Rfc::Rfc3164);
        assert_eq!(c.message.hostname, "ns1.example");
        assert_eq!(c.net.buffer.policy, OverflowPolicy::DropNewest);
        assert_eq!(c.net.buffer.max_bytes, 1 << 20);
        assert!(c.net.tls.is_none());
        assert_eq!(c.name(), "syslog tcp 127.0.0.1:601");
        let c =
            res("outputs:\n  - syslog: {transport: udp, remote: '[::1]:514', severity: warn}\n")
                .unwrap();
        assert_eq!(c.message.severity, 4);
        assert_eq!(c.name(), "syslog udp [::1]:514");
    }

    #[test]
    fn errors_name_the_key() {
        for (y, key) in [
            ("{transport: carrier-pigeon}", "transport"),
            ("{transport: udp}", "remote"),
            ("{remote: 127.0.0.1:514}", "remote"),
            ("{transport: tcp, remote: 127.0.0.1:1, path: /x}", "path"),
            ("{facility: local9}", "facility"),
            ("{facility: 24}", "facility"),
            ("{severity: loud}", "severity"),
            ("{app-name: 'two words'}", "app-name"),
            ("{hostname: ''}", "hostname"),
            ("{rfc: 1}", "rfc"),
            ("{max-message-size: 100000}", "max-message-size"),
            ("{tls-ca: /x}", "tls-ca"),
            ("{overflow: spill}", "overflow"),
            (
                "{transport: tls, remote: 127.0.0.1:1, tls-ca: /nonexistent}",
                "tls",
            ),
        ] {
            let e = res(&format!("outputs:\n  - syslog: {y}\n")).unwrap_err();
            assert_eq!(e.key, format!("outputs[0].syslog.{key}"), "{y}: {e}");
        }
    }
}
