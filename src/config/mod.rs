//! Configuration: everything a user writes. The YAML file as written ([`FileConfig`], the
//! seed's keys plus ours, in `file.rs`), merged with the command line ([`LowArgs`], in
//! `args.rs`) into one validated, compiled [`Settings`] before anything starts. Flags win
//! over the file; the file wins over defaults. (ripgrep's LowArgs → HiArgs.)
//!
//! ```text
//!  LowArgs ──┐
//!            ├─► resolve() ─► Resolved ─► Settings::compile() ─► Settings
//!  FileConfig┘   input.rs outputs.rs kafka.rs metrics.rs        (filters, formatter, TLS)
//! ```
//!
//! `config` sits on top: it imports the floors below for the compiled types they own
//! ([`InputSpec`], `SecuritySpec`, `OutputConf`, `KafkaSettings`, `MetricsConfig`,
//! `QueuePolicy`, ...) and hands them down; no module below imports `config` or sees clap
//! and serde for its sake. Every error names the file, the key (`input-mode.local-port`)
//! and the reason ([`ConfigError`]).
//!
//! [`Settings::build`] is the one entry, and has no side effect a reload could regret: it
//! reads files (the config file, TLS certificates and keys, password files), looks up host
//! names, users and groups, but binds no socket and creates no file or directory.
#![forbid(unsafe_code)]

pub mod addr;
pub mod args;
pub mod assets;
pub mod error;
pub mod file;
pub mod input;
pub mod kafka;
pub mod latency;
pub mod metrics;
pub mod output_file;
pub mod output_relay;
pub mod output_syslog;
pub mod outputs;
pub mod privacy;
pub mod reducer;
pub mod reload;
pub mod transforms;

use std::path::{Path, PathBuf};

use crate::filter::{Filter, FilterSpec};
use crate::format::{FormatKind, Formatter};
use crate::framestream::{DecoderConfig, DATA_FRAME_MAX_LIMIT, DEFAULT_DATA_FRAME_MAX};
use crate::input::security::{InputSecurity, SecuritySpec};
use crate::input::InputSpec;
use crate::metrics::MetricsConfig;
use crate::pipeline::QueuePolicy;
use crate::sink::outputs::OutputConf;
use crate::transform::Chains;

pub use self::addr::parse_host_port;
pub use self::args::{FormatChoice, IoChoice, LowArgs, OverflowChoice, QueueChoice};
pub use self::error::ConfigError;
pub use self::file::{FileConfig, InputEntry, OutputFormatSpec};

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
pub const MAX_QUEUE_CAPACITY: usize = 1 << 16;

/// CPUs this process may run on (1 when unknown).
fn threads_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// The merged, validated form.

/// Everything merged and validated, before compiling filters and formats (no file read but
/// the ones outputs name; host names looked up; testable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub verbose: bool,
    pub inputs: Vec<InputSpec>,
    pub io: IoChoice,
    /// Input threads (≥ 1).
    pub threads: usize,
    /// Writer threads (≥ 1; more than one only with one stdout, forward or Kafka output).
    pub writers: usize,
    /// Whether `writers` was given (flag or key) rather than chosen.
    pub writers_set: bool,
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
    pub metrics: Option<MetricsConfig>,
    /// Where records go (stdout, forward...); see `crate::sink::outputs`.
    pub outputs: Vec<OutputConf>,
    /// The `transforms:` sections, checked: the global one and one per output (aligned
    /// with `outputs`).
    pub transforms: transforms::TransformsConf,
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
    /// The transform chains, list files read (shared by every writer thread).
    pub transforms: Chains,
}

impl Settings {
    /// Loads the config file named by `-c` (if any), merges the flags, validates, compiles.
    /// The first error found; [`Settings::build_all`] reports every one.
    pub fn build(args: &LowArgs) -> Result<Settings, ConfigError> {
        Settings::build_all(args).map_err(first)
    }

    /// [`Settings::build`] reporting every error it finds (at least one), each with its
    /// file, line and key: a file that does not parse reports that alone; otherwise each
    /// section is checked on its own. What a reload and `--check-config` print.
    pub fn build_all(args: &LowArgs) -> Result<Settings, Vec<ConfigError>> {
        let (file, text) = match &args.config {
            Some(path) => {
                let (fc, text) = FileConfig::load_with_text(path).map_err(|e| vec![e])?;
                (Some(fc), text)
            }
            None => (None, String::new()),
        };
        let path = args.config.as_deref();
        resolve_all(args, file.as_ref(), path)
            .and_then(|resolved| Settings::compile_all(resolved, path))
            .map_err(|errors| {
                errors
                    .into_iter()
                    .map(|mut e| {
                        // A key of the file (not a flag): point at its line.
                        if e.line.is_none() && e.file.is_some() && e.file.as_deref() == path {
                            e.line = file::line_of_key(&text, &e.key);
                        }
                        e
                    })
                    .collect()
            })
    }

    /// Compiles the filters and the format of already validated settings.
    pub fn compile(resolved: Resolved, file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::compile_all(resolved, file).map_err(first)
    }

    /// [`Settings::compile`] reporting every error (the filters, the transforms and the
    /// input security are compiled each on its own).
    pub fn compile_all(
        resolved: Resolved,
        file: Option<&Path>,
    ) -> Result<Settings, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let filter = Filter::compile(&resolved.filter)
            .map_err(|e| ConfigError::new(file, e.key, e.to_string()));
        let filter = keep(&mut errors, filter);
        let formatter = Formatter::new(resolved.format);
        let decoder = DecoderConfig {
            max_data_frame: resolved.max_frame_size,
        };
        let transforms = keep(&mut errors, transforms::compile(&resolved.transforms, file));
        let mut resolved = resolved;
        if transforms.as_ref().is_some_and(|t| t.is_stateful()) && resolved.writers > 1 {
            // A stateful transform (reducer, latency matching) sees every record in one
            // place: one writer runs it.
            if resolved.writers_set {
                errors.push(ConfigError::new(
                    file,
                    "writers",
                    format!(
                        "{} writers cannot run the stateful transforms (reducer, latency \
                         matching): they need one writer",
                        resolved.writers
                    ),
                ));
            }
            resolved.writers = 1;
        }
        let security = if resolved.offline.is_some() {
            Ok(InputSecurity::default())
        } else {
            InputSecurity::compile(&resolved.security)
                .map_err(|(key, reason)| ConfigError::new(file, key, reason))
        };
        let security = keep(&mut errors, security);
        match (filter, transforms, security) {
            (Some(filter), Some(transforms), Some(security)) if errors.is_empty() => Ok(Settings {
                resolved,
                filter,
                formatter,
                decoder,
                security,
                transforms,
            }),
            _ => Err(errors),
        }
    }
}

/// The first of a list of errors (never empty).
fn first(mut errors: Vec<ConfigError>) -> ConfigError {
    if errors.is_empty() {
        return ConfigError::new(None, "", "invalid configuration".to_string());
    }
    errors.swap_remove(0)
}

/// The value, or `None` with its error added to `errors`.
fn keep<T>(errors: &mut Vec<ConfigError>, r: Result<T, ConfigError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// Merges flags over the file over defaults, and checks every value; the first error.
pub fn resolve(
    args: &LowArgs,
    file: Option<&FileConfig>,
    path: Option<&Path>,
) -> Result<Resolved, ConfigError> {
    resolve_all(args, file, path).map_err(first)
}

/// [`resolve`] reporting every error: each section is checked on its own (a value that
/// depends on a failed one is not checked again).
pub fn resolve_all(
    args: &LowArgs,
    file: Option<&FileConfig>,
    path: Option<&Path>,
) -> Result<Resolved, Vec<ConfigError>> {
    let empty = FileConfig::default();
    let fc = file.unwrap_or(&empty);
    let err = |key: &str, reason: String| ConfigError::new(path, key, reason);
    let mut errors = Vec::new();

    let inputs = keep(&mut errors, input::resolve_inputs(args, fc, path));

    let io = args.io.or(fc.io).unwrap_or(IoChoice::Auto);

    let threads = match args.threads.or(fc.threads) {
        None | Some(0) => threads_available(),
        Some(n) if n > MAX_THREADS => {
            let key = if args.threads.is_some() {
                "--threads"
            } else {
                "threads"
            };
            errors.push(err(key, format!("{n} is more than {MAX_THREADS}")));
            1
        }
        Some(n) => n,
    };

    let queue = fc.queue.as_ref();
    let queue_capacity = queue
        .and_then(|q| q.capacity)
        .unwrap_or(DEFAULT_QUEUE_CAPACITY);
    if queue_capacity == 0 || queue_capacity > MAX_QUEUE_CAPACITY {
        errors.push(err(
            "queue.capacity",
            format!("{queue_capacity} is not in 1..={MAX_QUEUE_CAPACITY}"),
        ));
    }
    let policy = args
        .queue_policy
        .or(queue.and_then(|q| q.policy))
        .map_or(QueuePolicy::Block, QueueChoice::policy);

    let max_frame_size = fc.max_frame_size.unwrap_or(DEFAULT_DATA_FRAME_MAX);
    if max_frame_size == 0 || max_frame_size > DATA_FRAME_MAX_LIMIT {
        errors.push(err(
            "max-frame-size",
            format!("{max_frame_size} is not in 1..={DATA_FRAME_MAX_LIMIT}"),
        ));
    }
    let buffer_size = fc.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE);
    if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&buffer_size) {
        errors.push(err(
            "buffer-size",
            format!("{buffer_size} is not in {MIN_BUFFER_SIZE}..={MAX_BUFFER_SIZE}"),
        ));
    }

    let ff = fc.filter.as_ref();
    let filter = FilterSpec {
        qname_regex: ff.and_then(|f| f.qname_regex.clone()),
        identities: ff.and_then(|f| f.dnstap_identities.clone()),
    };

    // Flags over the file; in each, `text-format` over the named formats. The outputs
    // depend on the format: a bad one ends the checks here.
    let flag_text = match outputs::text_format(
        args.text_format.as_deref(),
        args.text_format_delimiter.as_deref(),
        "--text-format",
        None,
    ) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    let format = match (flag_text, args.format) {
        (Some(t), _) => t,
        (None, Some(choice)) => choice.kind(),
        (None, None) => match outputs::text_format(
            fc.text_format.as_deref(),
            fc.text_format_delimiter.as_deref(),
            "text-format",
            path,
        ) {
            Ok(t) => t.unwrap_or_else(|| file_format(fc.output_format.as_ref())),
            Err(e) => {
                errors.push(e);
                return Err(errors);
            }
        },
    };
    let outputs = keep(
        &mut errors,
        outputs::resolve_outputs_with_transforms(
            outputs::OutputFlags {
                forward: args.forward.as_deref(),
                format: args.format.map(FormatChoice::kind),
                policy: args.forward_policy.map(OverflowChoice::policy),
            },
            fc.forward_to.as_ref(),
            fc.outputs.as_deref(),
            format,
            path,
        ),
    );

    let writers_key = if args.writers.is_some() {
        "--writers"
    } else {
        "writers"
    };
    let listed = outputs.as_ref().map(|(o, _)| o.as_slice());
    let stdout_only = matches!(listed, Some([OutputConf::Stdout(_)]));
    // Several writers feed one output in queue order (pipeline::ordered): stdout, a
    // forward output or a Kafka output.
    let orderable = matches!(
        listed,
        Some([OutputConf::Stdout(_) | OutputConf::Forward(_) | OutputConf::Kafka(_)])
    );
    let writers = match args.writers.or(fc.writers) {
        // Two when they can run side by side and the output is stdout (its bytes are the
        // same either way); one otherwise: a forward or Kafka output runs several only
        // when asked, since a reload can then no longer replace outputs in place
        // (docs/performance.md, "Parallel writers for forward and Kafka").
        None if stdout_only && threads_available() >= 2 => DEFAULT_WRITERS,
        None => 1,
        Some(n) if n == 0 || n > MAX_WRITERS => {
            errors.push(err(writers_key, format!("{n} is not in 1..={MAX_WRITERS}")));
            1
        }
        Some(n) => n,
    };
    // Only checked against outputs that resolved.
    if writers > 1 && !orderable && outputs.is_some() {
        errors.push(err(
            writers_key,
            format!(
                "{writers} writers need exactly one output, and one of stdout, forward or \
                 kafka (a list of several outputs, or a file, syslog or relay output, keeps \
                 one writer)"
            ),
        ));
    }
    let metrics = keep(
        &mut errors,
        metrics::resolve(args.metrics.as_deref(), fc.metrics.as_ref(), path),
    );
    let global = keep(
        &mut errors,
        transforms::resolve(fc.transforms.as_ref(), "transforms", path),
    );
    // A raw Kafka value behind user-privacy would send the original addresses.
    if let (Some((outputs, output_transforms)), Some(global)) = (&outputs, &global) {
        let enrich: Vec<_> = output_transforms
            .iter()
            .map(|c| c.as_ref().and_then(|c| c.enrich.as_ref()))
            .collect();
        let global_enrich = global.as_ref().and_then(|c| c.enrich.as_ref());
        if let Err(e) = privacy::refuse_raw_values(outputs, global_enrich, &enrich, path) {
            errors.push(e);
        }
    }

    match (inputs, outputs, metrics, global) {
        (
            Some((inputs, security)),
            Some((outputs, output_transforms)),
            Some(metrics),
            Some(global),
        ) if errors.is_empty() => Ok(Resolved {
            verbose: args.verbose || fc.verbose.unwrap_or(false),
            inputs,
            io,
            threads,
            writers,
            writers_set: args.writers.or(fc.writers).is_some(),
            queue_capacity,
            policy,
            buffer_size,
            max_frame_size,
            filter,
            format,
            offline: args.read_file.clone(),
            security,
            metrics,
            outputs,
            transforms: transforms::TransformsConf {
                global,
                outputs: output_transforms,
            },
        }),
        _ => Err(errors),
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
    // The first name switched on, in this order (the seed's three last, as it read them).
    let ours = [
        (s.dnscollector_json, FormatKind::DnsCollectorJson),
        (s.dnscollector_flat_json, FormatKind::DnsCollectorFlatJson),
        (s.dr4_json, FormatKind::Dr4Json),
        (s.golang_text, FormatKind::GolangText),
        (s.golang_yaml, FormatKind::GolangYaml),
        (s.golang_json, FormatKind::GolangJson),
    ];
    if let Some((_, kind)) = ours.into_iter().find(|(b, _)| on(*b)) {
        kind
    } else if on(s.yaml_full) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn output_format_takes_every_format_name() {
        for (name, kind) in [
            ("dnscollector-json", FormatKind::DnsCollectorJson),
            ("dnscollector-flat-json", FormatKind::DnsCollectorFlatJson),
            ("dr4-json", FormatKind::Dr4Json),
            ("golang-text", FormatKind::GolangText),
            ("golang-yaml", FormatKind::GolangYaml),
            ("golang-json", FormatKind::GolangJson),
            ("json-full", FormatKind::JsonFull),
            ("json", FormatKind::Json),
        ] {
            let yaml = format!("output-format:\n  text: false\n  {name}: true\n");
            let fc = file::FileConfig::parse(&yaml).unwrap();
            assert_eq!(file_format(fc.output_format.as_ref()), kind, "{name}");
        }
    }

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
    fn powerdns_inputs_from_input_mode_and_the_inputs_list() {
        // `input-mode: {powerdns: ...}` alone: only the PowerDNS listener, on 6001 by default.
        let r = res(&[], Some("input-mode:\n  powerdns: {}\n")).unwrap();
        assert_eq!(
            r.inputs,
            vec![InputSpec::PowerDns("0.0.0.0:6001".parse().unwrap())]
        );
        // Beside the seed's TCP input, with TLS, and in the list.
        let y = "input-mode:\n  local-port: 6000\n  tls-server-cert: /etc/s.pem\n  \
                 tls-server-key: /etc/s.key\n  \
                 powerdns: {local-address: 127.0.0.1, local-port: 7001, tls: true}\n\
                 inputs:\n  - powerdns: 127.0.0.1:7002\n  - powerdns-tls: 127.0.0.1:7003\n";
        let r = res(&[], Some(y)).unwrap();
        assert_eq!(
            r.inputs,
            vec![
                InputSpec::Tcp("0.0.0.0:6000".parse().unwrap()),
                InputSpec::PowerDnsTls("127.0.0.1:7001".parse().unwrap()),
                InputSpec::PowerDns("127.0.0.1:7002".parse().unwrap()),
                InputSpec::PowerDnsTls("127.0.0.1:7003".parse().unwrap()),
            ]
        );
        assert!(r.security.tls.is_some());
        // TLS without a certificate, and one port under two protocols, are refused.
        let e = res(&[], Some("inputs:\n  - powerdns-tls: 127.0.0.1:7003\n")).unwrap_err();
        assert!(e.to_string().contains("cert"), "{e}");
        let e = res(
            &[],
            Some("inputs:\n  - tcp: 127.0.0.1:7002\n  - powerdns: 127.0.0.1:7002\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("two protocols"), "{e}");
        // A reload compares the PowerDNS listeners like any other: a change needs a restart.
        let a = res(&[], Some("input-mode:\n  powerdns: {local-port: 7001}\n")).unwrap();
        let b = res(&[], Some("input-mode:\n  powerdns: {local-port: 7004}\n")).unwrap();
        let keys: Vec<&str> = reload::restart_only(&a, &b).iter().map(|r| r.key).collect();
        assert_eq!(keys, ["inputs"]);
        assert_eq!(reload::restart_only(&a, &a), vec![]);
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
    fn every_error_is_reported_with_its_key() {
        let fc = FileConfig::parse(
            "threads: 100000\nqueue:\n  capacity: 0\nmetrics:\n  listen: nowhere\n\
             transforms:\n  filtering:\n    drop-qtypes: [NOPE]\n",
        )
        .unwrap();
        let errors = resolve_all(&args(&[]), Some(&fc), Some(Path::new("t.yaml"))).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "threads",
                "queue.capacity",
                "metrics.listen",
                "transforms.filtering.drop-qtypes"
            ],
            "{errors:?}"
        );
        // The first one is what `resolve` reports.
        let e = resolve(&args(&[]), Some(&fc), Some(Path::new("t.yaml"))).unwrap_err();
        assert_eq!(e.key, "threads");
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(
            res(&[], Some("# nothing\n")).unwrap(),
            res(&[], None).unwrap()
        );
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
        // One forward output: several writers when asked.
        let r = res(&["--writers", "2", "-f", "127.0.0.1:9"], None).unwrap();
        assert_eq!(r.writers, 2);
        // Several outputs keep one writer.
        let two = "outputs:\n  - stdout:\n      format: json\n  - forward:\n      \
                   remote-address: 127.0.0.1\n      remote-port: 9\n";
        let e = res(&["--writers", "2"], Some(two)).unwrap_err();
        assert_eq!(e.key, "--writers", "{e}");
        assert!(e.reason.contains("exactly one output"), "{e}");
        let e = res(&[], Some(&format!("writers: 2\n{two}"))).unwrap_err();
        assert_eq!(e.key, "writers", "{e}");
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
