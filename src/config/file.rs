//! The YAML config file as written: [`FileConfig`] and every section under it (the seed's
//! keys and ours), as serde reads them, plus the loader that turns a parse error's line
//! number into the key path the user wrote (`input-mode.local-port`). The Kafka section,
//! the largest, is in [`kafka`].
//!
//! Nothing here is validated beyond its YAML type: ranges, addresses and cross-key rules are
//! checked by the resolution files next to this one. Every struct denies unknown keys. Only
//! `config` sees these types; the floors below get compiled values.
#![forbid(unsafe_code)]

pub mod kafka;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::args::{FormatChoice, IoChoice, OverflowChoice, QueueChoice};
use super::error::ConfigError;

pub use self::kafka::KafkaSpec;

/// The whole config file. Every section is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub verbose: Option<bool>,
    pub input_mode: Option<InputModeSpec>,
    pub filter: Option<FilterFileSpec>,
    pub output_format: Option<OutputFormatSpec>,
    /// DNS-collector text directives for the stdout line (see `format::directives`).
    pub text_format: Option<String>,
    pub text_format_delimiter: Option<String>,
    pub forward_to: Option<ForwardToSpec>,
    /// Beyond the seed: several listeners at once.
    pub inputs: Option<Vec<InputEntry>>,
    pub io: Option<IoChoice>,
    /// Input threads; 0 = number of CPUs.
    pub threads: Option<usize>,
    /// Writer threads (decode + format), stdout only.
    pub writers: Option<usize>,
    pub queue: Option<QueueSpec>,
    pub max_frame_size: Option<usize>,
    pub buffer_size: Option<usize>,
    /// TLS certificate, key and client CA (also spelt `input-mode.tls-*`); see input::tls.
    pub tls: Option<TlsFileSpec>,
    /// CIDR networks that may connect to TCP and TLS inputs; see input::acl.
    pub allow_from: Option<Vec<String>>,
    pub unix_socket_mode: Option<NumOrName>,
    pub unix_socket_owner: Option<NumOrName>,
    pub unix_socket_group: Option<NumOrName>,
    /// Seconds from accept to the Frame Streams START (TLS handshake included).
    pub handshake_timeout: Option<f64>,
    /// SO_REUSEPORT on TCP and TLS inputs.
    pub reuse_port: Option<bool>,
    /// Prometheus endpoint (see `crate::metrics`).
    pub metrics: Option<MetricsSpec>,
    /// Beyond the seed: several outputs at once (`- stdout: {...}`, `- forward: {...}`).
    pub outputs: Option<Vec<OutputEntry>>,
    /// Transforms run on every decoded record before any output (see `transforms.rs`);
    /// each output may have its own under the same key.
    pub transforms: Option<TransformsSpec>,
}

/// `transforms:` (top level: before every output; in an output entry: that output only).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TransformsSpec {
    pub filtering: Option<Box<FilteringFileSpec>>,
    /// `latency` (see `config/latency.rs`).
    pub latency: Option<super::latency::LatencyFileSpec>,
    /// See `reducer.rs`.
    pub reducer: Option<super::reducer::ReducerFileSpec>,
    /// `normalize` and `user-privacy`: see `privacy.rs`.
    pub normalize: Option<super::privacy::NormalizeFileSpec>,
    pub user_privacy: Option<super::privacy::PrivacyFileSpec>,
}

/// `transforms.filtering`: the keys of DNS-collector's `filtering` transform that apply
/// here (docs/transforms.md).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilteringFileSpec {
    /// `false` drops the `*_QUERY` message types.
    pub log_queries: Option<bool>,
    /// `false` drops the `*_RESPONSE` message types.
    pub log_replies: Option<bool>,
    /// Keep only these dnstap message types (names as in dnstap.proto, or numbers).
    pub message_types: Option<Vec<NumOrName>>,
    /// Header rcodes (names or 0..=15).
    pub drop_rcodes: Option<Vec<NumOrName>>,
    pub keep_rcodes: Option<Vec<NumOrName>>,
    /// Question types (names or numbers).
    pub drop_qtypes: Option<Vec<NumOrName>>,
    pub keep_qtypes: Option<Vec<NumOrName>>,
    /// A list of domains: each one and every name under it.
    pub drop_domain_file: Option<PathBuf>,
    pub keep_domain_file: Option<PathBuf>,
    /// A list of exact names.
    pub drop_fqdn_file: Option<PathBuf>,
    pub keep_fqdn_file: Option<PathBuf>,
    /// Client addresses (`query_address`): a file of addresses and CIDR networks.
    pub drop_queryip_file: Option<PathBuf>,
    pub keep_queryip_file: Option<PathBuf>,
    /// The same, inline.
    pub drop_queryip: Option<Vec<String>>,
    pub keep_queryip: Option<Vec<String>>,
    /// Keep 1 record in N (0 or 1: off).
    pub downsample: Option<u32>,
    /// Rcodes never sampled out (default NXDOMAIN, SERVFAIL, REFUSED; `[]`: none).
    pub downsample_keep_rcodes: Option<Vec<NumOrName>>,
}

/// `input-mode` (seed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InputModeSpec {
    pub local_address: Option<String>,
    pub local_port: Option<u16>,
    pub tls_support: Option<bool>,
    pub tls_server_cert: Option<PathBuf>,
    pub tls_server_key: Option<PathBuf>,
    pub unix_socket: Option<PathBuf>,
    /// Ours: CA bundle for client certificates (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Ours: a PowerDNS protobuf logging listener (dnsdist, pdns-recursor).
    pub powerdns: Option<PowerDnsInputSpec>,
}

/// `input-mode.powerdns`: where dnsdist's `newRemoteLogger` and pdns-recursor's
/// `protobufServer` connect. Defaults: `0.0.0.0`, port 6001, no TLS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PowerDnsInputSpec {
    pub local_address: Option<String>,
    pub local_port: Option<u16>,
    /// `true`: connections speak TLS first (the certificate of the TLS inputs).
    pub tls: Option<bool>,
}

/// `filter` (seed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterFileSpec {
    pub qname_regex: Option<String>,
    pub dnstap_identities: Option<String>,
}

/// `output-format` (seed: text/yaml/json; ours: every other name of `--format`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputFormatSpec {
    pub text: Option<bool>,
    pub yaml: Option<bool>,
    pub json: Option<bool>,
    pub json_full: Option<bool>,
    pub yaml_full: Option<bool>,
    pub dnscollector_json: Option<bool>,
    pub dnscollector_flat_json: Option<bool>,
    pub dr4_json: Option<bool>,
    pub golang_text: Option<bool>,
    pub golang_yaml: Option<bool>,
    pub golang_json: Option<bool>,
}

/// One entry of `inputs`: `- tcp: 127.0.0.1:6000` or `- unix: /run/dnstap.sock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum InputEntry {
    Tcp(String),
    Unix(PathBuf),
    /// `- tls: 127.0.0.1:6001`: TCP with TLS (certificate: `tls` / `input-mode.tls-*`).
    Tls(String),
    /// `- powerdns: 127.0.0.1:6001`: PowerDNS protobuf logging over TCP.
    Powerdns(String),
    /// `- powerdns-tls: 127.0.0.1:6001`: the same inside TLS (certificate as for `tls`).
    #[serde(rename = "powerdns-tls")]
    PowerdnsTls(String),
}

/// `queue`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QueueSpec {
    pub capacity: Option<usize>,
    pub policy: Option<QueueChoice>,
}

/// The top-level `tls:` section (ours): the input's server certificate. The seed's
/// spelling, `input-mode.tls-server-cert` / `tls-server-key` (and our
/// `input-mode.tls-client-ca`), means the same.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFileSpec {
    pub server_cert: Option<PathBuf>,
    pub server_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

/// A number or a string in YAML (`unix-socket-mode: 0660` or `"0660"`; `unix-socket-owner:
/// 110` or `unbound`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NumOrName {
    Num(u64),
    Name(String),
}

/// `forward-to` in the config file, and each `- forward:` entry of `outputs`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ForwardToSpec {
    /// Seed: turns the `forward-to` section on (ignored in an `outputs` entry).
    pub enable: Option<bool>,
    /// Seed: the collector's name or address.
    pub remote_address: Option<String>,
    /// Seed: the collector's port.
    pub remote_port: Option<u16>,
    /// Several collectors, `HOST:PORT` each (instead of `remote-address` + `remote-port`).
    pub remote: Option<Vec<String>>,
    /// How records are spread over the collectors of `remote` [default: failover].
    pub loadbalance: Option<LoadBalanceChoice>,
    /// Connections to each collector [default: 1] (Filebeat's `worker`).
    pub connections_per_host: Option<usize>,
    /// With `loadbalance: hash`: what groups records [default: client-ip].
    pub hash_key: Option<HashKeyChoice>,
    /// With `hash-key: client-prefix`: prefix lengths [default: 24, 56].
    pub hash_prefix_v4: Option<u8>,
    pub hash_prefix_v6: Option<u8>,
    /// Line format sent [default: json].
    pub format: Option<FormatChoice>,
    pub tls: Option<bool>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    /// Seconds.
    pub connect_timeout: Option<f64>,
    /// First wait before reconnecting to a collector, seconds.
    pub backoff_init: Option<f64>,
    /// Seconds after which a connection is closed cleanly and opened again (0: never).
    pub ttl: Option<f64>,
    /// Longest wait between connection attempts, seconds (`backoff-max` is the same key
    /// under Filebeat's name).
    #[serde(alias = "backoff-max")]
    pub reconnect_max: Option<f64>,
    /// How long shutdown keeps trying to deliver, seconds.
    pub shutdown_timeout: Option<f64>,
    /// TCP keepalive idle time, seconds.
    pub keepalive: Option<f64>,
    /// Bytes of chunks held in memory.
    pub buffer_size: Option<usize>,
    /// Bytes per chunk (one write).
    pub chunk_size: Option<usize>,
    pub overflow: Option<OverflowChoice>,
    pub spill_dir: Option<PathBuf>,
    pub spill_max_bytes: Option<u64>,
    /// Acknowledged bytes kept for re-sending after a break.
    pub replay_window: Option<u64>,
    /// This output's own transforms.
    pub transforms: Option<TransformsSpec>,
}

/// `loadbalance:` of a forward output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalanceChoice {
    Failover,
    RoundRobin,
    Hash,
}

/// `hash-key:` of a forward output with `loadbalance: hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashKeyChoice {
    ClientIp,
    ClientPrefix,
    Identity,
    Qname,
}

/// `- stdout: {format: json}` in `outputs`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StdoutSpec {
    pub format: Option<FormatChoice>,
    /// DNS-collector text directives; wins over `format`.
    pub text_format: Option<String>,
    pub text_format_delimiter: Option<String>,
    /// This output's own transforms.
    pub transforms: Option<TransformsSpec>,
}

/// One entry of `outputs`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum OutputEntry {
    Stdout(Box<StdoutSpec>),
    Forward(Box<ForwardToSpec>),
    Kafka(Box<KafkaSpec>),
    /// `- syslog: {...}` (resolved in `output_syslog.rs`).
    Syslog(Box<super::output_syslog::SyslogSpec>),
    File(Box<FileOutputSpec>),
    Dnstap(Box<RelaySpec>),
}

/// `outputs: - dnstap:` (resolved in `output_relay.rs`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RelaySpec {
    /// `unix:/path`, `host:port`, `[v6]:port`.
    pub remote: Option<Vec<String>>,
    /// `duplicate` (default) or `split`.
    pub mode: Option<String>,
    /// With split: client-ip (default), client-prefix, identity, qname.
    pub split_key: Option<HashKeyChoice>,
    pub tls: Option<bool>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub connect_timeout: Option<f64>,
    pub backoff_init: Option<f64>,
    #[serde(alias = "backoff-max")]
    pub reconnect_max: Option<f64>,
    pub shutdown_timeout: Option<f64>,
    pub buffer_size: Option<usize>,
    pub chunk_size: Option<usize>,
    pub overflow: Option<OverflowChoice>,
    pub replay_window: Option<u64>,
    pub transforms: Option<TransformsSpec>,
}

/// `outputs: - file:` (resolved in `output_file.rs`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileOutputSpec {
    pub path: Option<PathBuf>,
    /// A format name or `raw`.
    pub format: Option<String>,
    pub max_size: Option<u64>,
    /// Seconds.
    pub rotate_interval: Option<f64>,
    pub max_files: Option<usize>,
    pub compress: Option<String>,
    pub postrotate_command: Option<String>,
    pub transforms: Option<TransformsSpec>,
}

/// `metrics:` as written in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsSpec {
    /// `ADDR:PORT` of the HTTP endpoint (`--metrics` overrides it).
    pub listen: Option<String>,
    pub basic_auth: Option<BasicAuthSpec>,
    /// PEM certificate chain; with `tls-key`, the endpoint speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `metrics.basic-auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BasicAuthSpec {
    pub user: Option<String>,
    pub password: Option<String>,
    /// A file whose first line is the password (read at start-up).
    pub password_file: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Loading.

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        FileConfig::load_with_text(path).map(|(fc, _)| fc)
    }

    /// Reads and parses `path`; also returns its text, to point later errors at their line
    /// ([`line_of_key`]).
    pub fn load_with_text(path: &Path) -> Result<(FileConfig, String), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(Some(path), "", format!("cannot read: {e}")))?;
        let fc = FileConfig::parse(&text).map_err(|mut e| {
            e.file = Some(path.to_path_buf());
            e
        })?;
        Ok((fc, text))
    }

    /// Parses YAML text. An empty document is an empty config.
    pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        if text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        }) {
            return Ok(FileConfig::default());
        }
        serde_saphyr::from_str::<FileConfig>(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line() as usize);
            let key = key_path_at_line(text, line);
            let reason = first_line(&e.without_snippet().to_string());
            ConfigError {
                file: None,
                key,
                line: (line > 0).then_some(line),
                reason,
            }
        })
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .to_string()
}

/// The dotted path of the mapping key on 1-based `line` of a block-style YAML document,
/// found from indentation (`input-mode:` then `  local-port: x` gives `input-mode.local-port`).
/// Flow style or odd layouts give what the indentation shows, or an empty string.
fn key_path_at_line(text: &str, line: usize) -> String {
    if line == 0 {
        return String::new();
    }
    // (indent, key) of the open mappings above the line.
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if i + 1 > line {
            break;
        }
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut body = trimmed;
        // A sequence item `- key: v`: the key sits two columns further in.
        if let Some(rest) = body.strip_prefix("- ") {
            indent += 2;
            body = rest.trim_start();
        }
        while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
            stack.pop();
        }
        if let Some(colon) = body.find(':') {
            let key = body[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
            if !key.is_empty() && !key.contains(' ') {
                stack.push((indent, key.to_string()));
            }
        }
    }
    stack
        .into_iter()
        .map(|(_, k)| k)
        .collect::<Vec<_>>()
        .join(".")
}

/// The 1-based line where the key `path` (as errors name it: `outputs[1].forward.tls-ca`)
/// is written in a block-style YAML document, the inverse of [`key_path_at_line`]. A key
/// naming a list element (`allow-from[0]`) falls back to the list's key. `None` when it is
/// not found (flow style, a flag, a key that is not written).
pub fn line_of_key(text: &str, path: &str) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    // (indent, segment, items seen under it) of the open mappings and sequence items.
    let mut stack: Vec<(usize, String, usize)> = Vec::new();
    let mut fallback = None;
    let list_key = path
        .strip_suffix(']')
        .and_then(|p| p.rsplit_once('['))
        .map(|(k, _)| k);
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let mut body = trimmed;
        let mut key_indent = indent;
        if let Some(rest) = body.strip_prefix("- ") {
            // A sequence item: close deeper entries and the previous item at this indent,
            // then open `[n]` under the parent.
            while stack.last().is_some_and(|(ind, seg, _)| {
                *ind > indent || (*ind == indent && seg.starts_with('['))
            }) {
                stack.pop();
            }
            let n = match stack.last_mut() {
                Some(parent) => {
                    parent.2 += 1;
                    parent.2 - 1
                }
                None => 0,
            };
            stack.push((indent, format!("[{n}]"), 0));
            key_indent = indent + 2;
            body = rest.trim_start();
        } else {
            while stack.last().is_some_and(|(ind, _, _)| *ind >= indent) {
                stack.pop();
            }
        }
        let Some(colon) = body.find(':') else {
            continue;
        };
        let key = body[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
        if key.is_empty() || key.contains(' ') {
            continue;
        }
        stack.push((key_indent, key.to_string(), 0));
        let mut here = String::new();
        for (_, seg, _) in &stack {
            if !here.is_empty() && !seg.starts_with('[') {
                here.push('.');
            }
            here.push_str(seg);
        }
        if here == path {
            return Some(i + 1);
        }
        if fallback.is_none() && list_key == Some(here.as_str()) {
            fallback = Some(i + 1);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_key_finds_nested_and_indexed_keys() {
        let t = "verbose: true\noutputs:\n  - stdout:\n      format: json\n  - forward:\n      remote-port: 1\n      transforms:\n        filtering:\n          keep-rcodes: [X]\ntransforms:\n  filtering:\n    drop-qtypes: [Y]\nallow-from: [a, b]\n";
        assert_eq!(line_of_key(t, "verbose"), Some(1));
        assert_eq!(line_of_key(t, "outputs[0].stdout.format"), Some(4));
        assert_eq!(line_of_key(t, "outputs[1].forward.remote-port"), Some(6));
        assert_eq!(
            line_of_key(t, "outputs[1].forward.transforms.filtering.keep-rcodes"),
            Some(9)
        );
        assert_eq!(line_of_key(t, "transforms.filtering.drop-qtypes"), Some(12));
        assert_eq!(line_of_key(t, "allow-from[1]"), Some(13));
        assert_eq!(line_of_key(t, "outputs[2].forward.remote-port"), None);
        assert_eq!(line_of_key(t, "-f"), None);
        // A sequence written at its parent's indent.
        let t = "outputs:\n- stdout:\n    format: json\n- forward:\n    remote-port: 1\n";
        assert_eq!(line_of_key(t, "outputs[1].forward.remote-port"), Some(5));
    }

    #[test]
    fn parse_errors_carry_the_line() {
        let e = FileConfig::parse("verbose: true\nqueue:\n  capacity: many\n").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("queue.capacity", Some(3)), "{e}");
        assert!(e.reason.contains("line 3"), "{e}");
    }

    #[test]
    fn key_path_follows_indentation() {
        let t = "a:\n  b:\n    c: 1\n  d: 2\ne:\n  - f: 1\n";
        assert_eq!(key_path_at_line(t, 3), "a.b.c");
        assert_eq!(key_path_at_line(t, 4), "a.d");
        assert_eq!(key_path_at_line(t, 6), "e.f");
        assert_eq!(key_path_at_line(t, 0), "");
    }
}
