//! Configuration: the YAML file as written ([`FileConfig`], the seed's keys plus ours), merged
//! with the command line ([`crate::cli::LowArgs`]) into one validated, compiled [`Settings`]
//! before anything starts. Flags win over the file; the file wins over defaults.
//!
//! Every error names the file, the key (`input-mode.local-port`) and the reason. This file
//! knows nothing of sockets or threads: it only says what to listen on and how.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{FormatChoice, IoChoice, LowArgs, QueuePolicy};
use crate::filter::{Filter, FilterSpec};
use crate::format::{FormatKind, Formatter};
use crate::framestream::{DecoderConfig, DATA_FRAME_MAX_LIMIT, DEFAULT_DATA_FRAME_MAX};
use crate::input::security::{
    resolve_security, InputSecurity, NumOrName, SecurityFileKeys, SecuritySpec,
};
use crate::input::tls::{SeedTls, TlsFileSpec};

pub const DEFAULT_ADDRESS: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 6000;
/// Batches the reader→writer queue holds (`queue.capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;
/// Size of one pooled receive buffer (`buffer-size`).
pub const DEFAULT_BUFFER_SIZE: usize = 128 << 10;
pub const MIN_BUFFER_SIZE: usize = 1 << 10;
pub const MAX_BUFFER_SIZE: usize = 16 << 20;
pub const MAX_THREADS: usize = 256;
/// Upper bound of `writers`.
pub const MAX_WRITERS: usize = 64;
/// Writer threads when `writers` is not set, stdout is the only output and there are at
/// least two CPUs (docs/performance.md: a second writer is what lets JSON keep up with the
/// readers on two cores).
pub const DEFAULT_WRITERS: usize = 2;

/// CPUs this process may run on (1 when unknown).
fn threads_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
pub const MAX_QUEUE_CAPACITY: usize = 1 << 16;

// ---------------------------------------------------------------------------------------------
// The file as written.

/// The whole config file. Every section is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub verbose: Option<bool>,
    pub input_mode: Option<InputModeSpec>,
    pub filter: Option<FilterFileSpec>,
    pub output_format: Option<OutputFormatSpec>,
    pub forward_to: Option<ForwardSpec>,
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
    pub metrics: Option<crate::metrics::MetricsSpec>,
    /// Beyond the seed: several outputs at once (`- stdout: {...}`, `- forward: {...}`).
    pub outputs: Option<Vec<crate::sink::outputs::OutputEntry>>,
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
}

/// `filter` (seed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterFileSpec {
    pub qname_regex: Option<String>,
    pub dnstap_identities: Option<String>,
}

/// `output-format` (seed: text/yaml/json; ours: json-full/yaml-full).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputFormatSpec {
    pub text: Option<bool>,
    pub yaml: Option<bool>,
    pub json: Option<bool>,
    pub json_full: Option<bool>,
    pub yaml_full: Option<bool>,
}

/// `forward-to` (seed keys plus ours; defined with the forward output).
pub use crate::sink::outputs::ForwardToSpec as ForwardSpec;

/// One entry of `inputs`: `- tcp: 127.0.0.1:6000` or `- unix: /run/dnstap.sock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum InputEntry {
    Tcp(String),
    Unix(PathBuf),
    /// `- tls: 127.0.0.1:6001`: TCP with TLS (certificate: `tls` / `input-mode.tls-*`).
    Tls(String),
}

/// `queue`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QueueSpec {
    pub capacity: Option<usize>,
    pub policy: Option<QueuePolicy>,
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// A start-up error: which file (if any), which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    /// Dotted key path (`input-mode.local-port`), or a flag (`-p`), or empty when unknown.
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(file: Option<&Path>, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.map(Path::to_path_buf),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "config file {}: ", file.display())?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}
impl std::error::Error for ConfigError {}

impl FileConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(Some(path), "", format!("cannot read: {e}")))?;
        FileConfig::parse(&text).map_err(|mut e| {
            e.file = Some(path.to_path_buf());
            e
        })
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
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            let key = key_path_at_line(text, line as usize);
            let reason = first_line(&e.without_snippet().to_string());
            ConfigError {
                file: None,
                key,
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

// ---------------------------------------------------------------------------------------------
// The merged, validated form.

/// One listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// TCP with TLS.
    Tls(SocketAddr),
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Tcp(a) => write!(f, "tcp {a}"),
            InputSpec::Unix(p) => write!(f, "unix {}", p.display()),
            InputSpec::Tls(a) => write!(f, "tls {a}"),
        }
    }
}

/// Everything merged and validated, before compiling filters and formats (pure; testable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub verbose: bool,
    pub inputs: Vec<InputSpec>,
    pub io: IoChoice,
    /// Input threads (≥ 1).
    pub threads: usize,
    /// Writer threads (≥ 1; more than one only with stdout as the only output).
    pub writers: usize,
    pub queue_capacity: usize,
    pub policy: QueuePolicy,
    pub buffer_size: usize,
    pub max_frame_size: usize,
    pub filter: FilterSpec,
    pub format: FormatKind,
    pub offline: Option<PathBuf>,
    /// TLS, allow-from, unix socket permissions, handshake timeout.
    pub security: SecuritySpec,
    /// The metrics endpoint; `None` (the default) serves none.
    pub metrics: Option<crate::metrics::MetricsConfig>,
    /// Where records go (stdout, forward...); see `crate::sink::outputs`.
    pub outputs: Vec<crate::sink::outputs::OutputConf>,
}

/// The compiled settings the daemon runs with; read-only after start-up.
#[derive(Debug)]
pub struct Settings {
    pub resolved: Resolved,
    pub filter: Filter,
    pub formatter: Formatter,
    pub decoder: DecoderConfig,
    /// TLS server config loaded, user and group names looked up.
    pub security: InputSecurity,
}

impl Settings {
    /// Loads the config file named by `-c` (if any), merges the flags, validates, compiles.
    pub fn build(args: &LowArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => Some(FileConfig::load(path)?),
            None => None,
        };
        let resolved = resolve(args, file.as_ref(), args.config.as_deref())?;
        Settings::compile(resolved, args.config.as_deref())
    }

    /// Compiles the filters and the format of already validated settings.
    pub fn compile(resolved: Resolved, file: Option<&Path>) -> Result<Settings, ConfigError> {
        let filter = Filter::compile(&resolved.filter)
            .map_err(|e| ConfigError::new(file, e.key, e.to_string()))?;
        let formatter = Formatter::new(resolved.format);
        let decoder = DecoderConfig {
            max_data_frame: resolved.max_frame_size,
        };
        let security = if resolved.offline.is_some() {
            InputSecurity::default()
        } else {
            InputSecurity::compile(&resolved.security)
                .map_err(|(key, reason)| ConfigError::new(file, key, reason))?
        };
        Ok(Settings {
            resolved,
            filter,
            formatter,
            decoder,
            security,
        })
    }
}

/// Merges flags over the file over defaults, and checks every value.
pub fn resolve(
    args: &LowArgs,
    file: Option<&FileConfig>,
    path: Option<&Path>,
) -> Result<Resolved, ConfigError> {
    let empty = FileConfig::default();
    let fc = file.unwrap_or(&empty);
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
    let want_primary = flags_name_input || fc.input_mode.is_some() || fc.inputs.is_none();
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
        if let InputSpec::Tls(t) = a {
            if inputs.contains(&InputSpec::Tcp(*t)) {
                return Err(err("inputs", format!("{t} is listed as both tcp and tls")));
            }
        }
    }
    let tls_needed = inputs.iter().any(|i| matches!(i, InputSpec::Tls(_)));
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

    let io = args.io.or(fc.io).unwrap_or(IoChoice::Auto);

    let threads = match args.threads.or(fc.threads) {
        None | Some(0) => threads_available(),
        Some(n) if n > MAX_THREADS => {
            let key = if args.threads.is_some() {
                "--threads"
            } else {
                "threads"
            };
            return Err(err(key, format!("{n} is more than {MAX_THREADS}")));
        }
        Some(n) => n,
    };

    let queue = fc.queue.as_ref();
    let queue_capacity = queue
        .and_then(|q| q.capacity)
        .unwrap_or(DEFAULT_QUEUE_CAPACITY);
    if queue_capacity == 0 || queue_capacity > MAX_QUEUE_CAPACITY {
        return Err(err(
            "queue.capacity",
            format!("{queue_capacity} is not in 1..={MAX_QUEUE_CAPACITY}"),
        ));
    }
    let policy = args
        .queue_policy
        .or(queue.and_then(|q| q.policy))
        .unwrap_or(QueuePolicy::Block);

    let max_frame_size = fc.max_frame_size.unwrap_or(DEFAULT_DATA_FRAME_MAX);
    if max_frame_size == 0 || max_frame_size > DATA_FRAME_MAX_LIMIT {
        return Err(err(
            "max-frame-size",
            format!("{max_frame_size} is not in 1..={DATA_FRAME_MAX_LIMIT}"),
        ));
    }
    let buffer_size = fc.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE);
    if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&buffer_size) {
        return Err(err(
            "buffer-size",
            format!("{buffer_size} is not in {MIN_BUFFER_SIZE}..={MAX_BUFFER_SIZE}"),
        ));
    }

    let ff = fc.filter.as_ref();
    let filter = FilterSpec {
        qname_regex: ff.and_then(|f| f.qname_regex.clone()),
        identities: ff.and_then(|f| f.dnstap_identities.clone()),
    };

    let format = match args.format {
        Some(choice) => format_kind(choice),
        None => file_format(fc.output_format.as_ref()),
    };
    let outputs = crate::sink::outputs::resolve_outputs(
        crate::sink::outputs::OutputFlags {
            forward: args.forward.as_deref(),
            format: args.format.map(format_kind),
            policy: args.forward_policy,
        },
        fc.forward_to.as_ref(),
        fc.outputs.as_deref(),
        format,
        path,
    )?;

    let writers_key = if args.writers.is_some() {
        "--writers"
    } else {
        "writers"
    };
    let stdout_only = matches!(
        outputs.as_slice(),
        [crate::sink::outputs::OutputConf::Stdout(_)]
    );
    let writers = match args.writers.or(fc.writers) {
        // Two when they can run side by side and the output allows it (its bytes are the
        // same either way); one otherwise.
        None if stdout_only && threads_available() >= 2 => DEFAULT_WRITERS,
        None => 1,
        Some(n) if n == 0 || n > MAX_WRITERS => {
            return Err(err(writers_key, format!("{n} is not in 1..={MAX_WRITERS}")));
        }
        Some(n) => n,
    };
    if writers > 1 && !stdout_only {
        return Err(err(
            writers_key,
            format!(
                "{writers} writers need stdout as the only output (forward and kafka \
                 outputs keep one writer)"
            ),
        ));
    }

    Ok(Resolved {
        verbose: args.verbose || fc.verbose.unwrap_or(false),
        inputs,
        io,
        threads,
        writers,
        queue_capacity,
        policy,
        buffer_size,
        max_frame_size,
        filter,
        format,
        offline: args.read_file.clone(),
        security,
        metrics: crate::metrics::resolve(args.metrics.as_deref(), fc.metrics.as_ref(), path)?,
        outputs,
    })
}

pub fn format_kind(choice: FormatChoice) -> FormatKind {
    match choice {
        FormatChoice::Text => FormatKind::Text,
        FormatChoice::Json => FormatKind::Json,
        FormatChoice::Yaml => FormatKind::Yaml,
        FormatChoice::JsonFull => FormatKind::JsonFull,
        FormatChoice::YamlFull => FormatKind::YamlFull,
    }
}

/// The seed chose the format with `if text / if json / if yaml` in that order, so the last
/// true one wins: yaml over json over text. Ours (json-full, yaml-full) come after. Nothing
/// true means text.
fn file_format(spec: Option<&OutputFormatSpec>) -> FormatKind {
    let Some(s) = spec else {
        return FormatKind::Text;
    };
    let on = |b: Option<bool>| b == Some(true);
    if on(s.yaml_full) {
        FormatKind::YamlFull
    } else if on(s.json_full) {
        FormatKind::JsonFull
    } else if on(s.yaml) {
        FormatKind::Yaml
    } else if on(s.json) {
        FormatKind::Json
    } else {
        FormatKind::Text
    }
}

fn resolve_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host:?} has no address"))
}

/// `HOST:PORT` or `[V6]:PORT`.
pub fn parse_host_port(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: bad port {port:?}"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    resolve_addr(host.trim_start_matches('[').trim_end_matches(']'), port)
}

fn check_unix_path(p: &Path) -> Result<(), String> {
    // sun_path is 108 bytes including the terminating NUL.
    let len = p.as_os_str().len();
    if len == 0 {
        return Err("empty unix socket path".into());
    }
    if len > 107 {
        return Err(format!("unix socket path is {len} bytes; the limit is 107"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const SEED: &str = "\
verbose: false
input-mode:
  local-address: 0.0.0.0
  local-port: 6000
  tls-support: false
  tls-server-cert: null
  tls-server-key: null
  unix-socket: null
filter:
  qname-regex: null
  dnstap-identities: null
output-format:
  text: true
  yaml: false
  json: false
forward-to:
  enable: false
  remote-address: 10.0.0.2
  remote-port: 8192
";

    fn args(a: &[&str]) -> LowArgs {
        let mut v = vec!["dnstap_receiver"];
        v.extend_from_slice(a);
        LowArgs::try_parse_from(v).unwrap()
    }

    fn res(a: &[&str], yaml: Option<&str>) -> Result<Resolved, ConfigError> {
        let fc = yaml.map(FileConfig::parse).transpose()?;
        resolve(&args(a), fc.as_ref(), Some(Path::new("t.yaml")))
    }

    #[test]
    fn no_args_listen_tcp_6000_text() {
        let r = res(&[], None).unwrap();
        assert_eq!(
            r.inputs,
            vec![InputSpec::Tcp("0.0.0.0:6000".parse().unwrap())]
        );
        assert_eq!(r.format, FormatKind::Text);
        assert_eq!(r.io, IoChoice::Auto);
        assert_eq!(r.policy, QueuePolicy::Block);
        assert!(r.threads >= 1);
    }

    #[test]
    fn seed_example_config_loads_unchanged() {
        let r = res(&[], Some(SEED)).unwrap();
        assert_eq!(
            r.inputs,
            vec![InputSpec::Tcp("0.0.0.0:6000".parse().unwrap())]
        );
        assert_eq!(r.format, FormatKind::Text);
        assert!(!r.verbose);
        assert_eq!(r.filter, FilterSpec::default());
    }

    #[test]
    fn seed_unix_socket_replaces_tcp() {
        let y = SEED.replace("unix-socket: null", "unix-socket: /tmp/x.sock");
        let r = res(&[], Some(&y)).unwrap();
        assert_eq!(r.inputs, vec![InputSpec::Unix("/tmp/x.sock".into())]);
    }

    #[test]
    fn seed_format_precedence_last_true_wins() {
        let y = SEED.replace("json: false", "json: true");
        assert_eq!(res(&[], Some(&y)).unwrap().format, FormatKind::Json);
        let y = y.replace("yaml: false", "yaml: true");
        assert_eq!(res(&[], Some(&y)).unwrap().format, FormatKind::Yaml);
    }

    #[test]
    fn flags_override_file() {
        let y = SEED.replace("local-port: 6000", "local-port: 7000");
        let r = res(
            &["-p", "7100", "-l", "127.0.0.1", "--format", "json"],
            Some(&y),
        )
        .unwrap();
        assert_eq!(
            r.inputs,
            vec![InputSpec::Tcp("127.0.0.1:7100".parse().unwrap())]
        );
        assert_eq!(r.format, FormatKind::Json);
        let r = res(&["-u", "/tmp/y.sock"], Some(&y)).unwrap();
        assert_eq!(r.inputs, vec![InputSpec::Unix("/tmp/y.sock".into())]);
        let r = res(&["-v"], Some(SEED)).unwrap();
        assert!(r.verbose);
    }

    #[test]
    fn filter_keys_reach_the_spec() {
        let y = SEED
            .replace("qname-regex: null", "qname-regex: \"^www\"")
            .replace("dnstap-identities: null", "dnstap-identities: lab-.*");
        let r = res(&[], Some(&y)).unwrap();
        assert_eq!(r.filter.qname_regex.as_deref(), Some("^www"));
        assert_eq!(r.filter.identities.as_deref(), Some("lab-.*"));
    }

    #[test]
    fn inputs_list_and_extensions() {
        let y = "\
inputs:
  - tcp: 127.0.0.1:6001
  - unix: /tmp/a.sock
io: epoll
threads: 3
queue:
  capacity: 8
  policy: drop
max-frame-size: 65536
buffer-size: 65536
";
        let r = res(&[], Some(y)).unwrap();
        assert_eq!(
            r.inputs,
            vec![
                InputSpec::Tcp("127.0.0.1:6001".parse().unwrap()),
                InputSpec::Unix("/tmp/a.sock".into())
            ]
        );
        assert_eq!(r.io, IoChoice::Epoll);
        assert_eq!(r.threads, 3);
        assert_eq!(r.queue_capacity, 8);
        assert_eq!(r.policy, QueuePolicy::Drop);
        assert_eq!(r.max_frame_size, 65536);
        // With input-mode present too, the seed input is kept in addition.
        let y2 = format!("{y}input-mode:\n  local-port: 6002\n");
        let r = res(&[], Some(&y2)).unwrap();
        assert_eq!(r.inputs.len(), 3);
        assert_eq!(r.inputs[0], InputSpec::Tcp("0.0.0.0:6002".parse().unwrap()));
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let y = SEED.replace("  local-port: 6000", "  local-port: 6000\n  local-prot: 1");
        let e = res(&[], Some(&y)).unwrap_err();
        assert_eq!(e.key, "input-mode.local-prot", "{e}");
        assert!(e.reason.contains("local-prot"), "{e}");
        let e = res(&[], Some("bogus: 1\n")).unwrap_err();
        assert_eq!(e.key, "bogus", "{e}");
    }

    #[test]
    fn bad_value_is_named_with_its_path() {
        let y = SEED.replace("local-port: 6000", "local-port: 70000");
        let e = res(&[], Some(&y)).unwrap_err();
        assert_eq!(e.key, "input-mode.local-port", "{e}");
        let y = SEED.replace("local-port: 6000", "local-port: six");
        let e = res(&[], Some(&y)).unwrap_err();
        assert_eq!(e.key, "input-mode.local-port", "{e}");
        let e = res(&[], Some("queue:\n  policy: maybe\n")).unwrap_err();
        assert_eq!(e.key, "queue.policy", "{e}");
        let e = res(&[], Some("queue:\n  capacity: 0\n")).unwrap_err();
        assert_eq!(e.key, "queue.capacity", "{e}");
        assert!(
            e.to_string()
                .starts_with("config file t.yaml: queue.capacity: "),
            "{e}"
        );
    }

    #[test]
    fn tls_needs_a_certificate_and_forward_is_validated() {
        let y = SEED.replace("tls-support: false", "tls-support: true");
        let e = res(&[], Some(&y)).unwrap_err();
        assert_eq!(e.key, "input-mode.tls-server-cert", "{e}");
        assert!(e.reason.contains("needs a certificate"), "{e}");
        let y = SEED.replace("enable: false", "enable: true");
        assert_eq!(res(&[], Some(&y)).unwrap().outputs.len(), 1);
        assert!(res(&["-f", "10.0.0.2:8192"], None).is_ok());
        let e = res(&["-f", "nonsense"], None).unwrap_err();
        assert!(e.reason.contains("HOST:PORT"), "{e}");
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(
            res(&[], Some("# nothing\n")).unwrap(),
            res(&[], None).unwrap()
        );
    }

    #[test]
    fn key_path_follows_indentation() {
        let t = "a:\n  b:\n    c: 1\n  d: 2\ne:\n  - f: 1\n";
        assert_eq!(key_path_at_line(t, 3), "a.b.c");
        assert_eq!(key_path_at_line(t, 4), "a.d");
        assert_eq!(key_path_at_line(t, 6), "e.f");
        assert_eq!(key_path_at_line(t, 0), "");
    }

    #[test]
    fn tls_inputs_and_security_keys() {
        let y = SEED
            .replace("tls-support: false", "tls-support: true")
            .replace("tls-server-cert: null", "tls-server-cert: /etc/s.pem")
            .replace("tls-server-key: null", "tls-server-key: /etc/s.key");
        let y = format!(
            "{y}inputs:\n  - tls: 127.0.0.1:6001\nallow-from: [127.0.0.1/32, \"::1\"]\n\
             unix-socket-mode: \"0660\"\nunix-socket-group: 0\nhandshake-timeout: 2.5\n"
        );
        let r = res(&[], Some(&y)).unwrap();
        assert_eq!(
            r.inputs,
            vec![
                InputSpec::Tls("0.0.0.0:6000".parse().unwrap()),
                InputSpec::Tls("127.0.0.1:6001".parse().unwrap())
            ]
        );
        let tls = r.security.tls.as_ref().unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/s.pem"));
        assert_eq!(tls.client_ca, None);
        assert_eq!(r.security.allow_from.networks().len(), 2);
        assert_eq!(r.security.unix_mode, Some(0o660));
        assert_eq!(r.security.handshake_timeout.as_millis(), 2500);
        // -l/-p keep TLS on the seed's input; a unix socket is never TLS.
        let r = res(&["-p", "7001"], Some(&y)).unwrap();
        assert_eq!(r.inputs[0], InputSpec::Tls("0.0.0.0:7001".parse().unwrap()));
        let r = res(&["-u", "/tmp/t.sock"], Some(&y)).unwrap();
        assert_eq!(r.inputs[0], InputSpec::Unix("/tmp/t.sock".into()));
        let e = res(&[], Some("inputs:\n  - tls: 127.0.0.1:6001\n")).unwrap_err();
        assert_eq!(e.key, "input-mode.tls-server-cert", "{e}");
        let e = res(&[], Some("allow-from: [10.0.0.0/33]\n")).unwrap_err();
        assert_eq!(e.key, "allow-from[0]", "{e}");
        let e = res(&[], Some("tls:\n  server-crt: x\n")).unwrap_err();
        assert_eq!(e.key, "tls.server-crt", "{e}");
    }

    #[test]
    fn writers_from_the_flag_or_the_key_and_only_for_stdout() {
        let auto = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
            DEFAULT_WRITERS
        } else {
            1
        };
        assert_eq!(res(&[], None).unwrap().writers, auto);
        assert_eq!(res(&["-f", "127.0.0.1:9"], None).unwrap().writers, 1);
        assert_eq!(res(&["--writers", "3"], None).unwrap().writers, 3);
        assert_eq!(res(&[], Some("writers: 2\n")).unwrap().writers, 2);
        assert_eq!(res(&["--writers", "0"], None).unwrap_err().key, "--writers");
        assert_eq!(res(&[], Some("writers: 65\n")).unwrap_err().key, "writers");
        let e = res(&["--writers", "2", "-f", "127.0.0.1:9"], None).unwrap_err();
        assert_eq!(e.key, "--writers", "{e}");
        assert!(e.reason.contains("stdout as the only output"), "{e}");
    }

    #[test]
    fn reuse_port_from_the_flag_or_the_key() {
        assert!(!res(&[], None).unwrap().security.reuse_port);
        assert!(res(&["--reuse-port"], None).unwrap().security.reuse_port);
        assert!(
            res(&[], Some("reuse-port: true\n"))
                .unwrap()
                .security
                .reuse_port
        );
        assert!(
            !res(&[], Some("reuse-port: false\n"))
                .unwrap()
                .security
                .reuse_port
        );
        let e = res(&[], Some("reuse-port: often\n")).unwrap_err();
        assert_eq!(e.key, "reuse-port", "{e}");
    }
}
