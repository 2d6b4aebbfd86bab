//! Which outputs run: the `forward-to` section (the seed's three keys plus ours), the
//! `outputs:` list, and `-f HOST:PORT`, resolved into the list of [`OutputConf`] the sink
//! floor builds. Every error names the file, the key and the reason (as [`ConfigError`]).
//! Reads the TLS files a forward output names (to check them); opens no socket and creates
//! no file or directory (spill directories are made when the output starts).
//!
//! Seed behaviour kept: with forwarding on, records go to the collector **instead of**
//! stdout (the seed printed only when it had no remote connection). An `outputs:` list
//! says exactly which outputs run, stdout included.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::addr::{parse_host_port, split_host_port};
use super::args::{FormatChoice, OverflowChoice};
use super::error::ConfigError;
use super::file::{ForwardToSpec, HashKeyChoice, LoadBalanceChoice, OutputEntry};
use super::transforms::{self, FilteringConf};
use crate::format::FormatKind;
use crate::sink::buffer::{BufferSpec, OverflowPolicy};
use crate::sink::forward::{
    tls_client_config, CollectorAddr, ForwardConf, HashKey, LoadBalance, TlsConf,
};
use crate::sink::outputs::OutputConf;
use crate::sink::spill::{SpillSpec, DEFAULT_SEGMENT_BYTES};

pub const DEFAULT_CHUNK_BYTES: usize = 256 << 10;
pub const DEFAULT_FORWARD_BUFFER: usize = 64 << 20;
pub const DEFAULT_REPLAY_WINDOW: u64 = 8 << 20;
pub const DEFAULT_SPILL_MAX: u64 = 1 << 30;
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 5.0;
/// Longest reconnect wait, seconds (`reconnect-max` / `backoff-max`): Filebeat's `backoff.max`.
pub const DEFAULT_RECONNECT_MAX: f64 = 60.0;
/// First reconnect wait, seconds (`backoff-init`): Filebeat's `backoff.init`.
pub const DEFAULT_BACKOFF_INIT: f64 = 1.0;
pub const DEFAULT_SHUTDOWN_TIMEOUT: f64 = 10.0;
pub const DEFAULT_KEEPALIVE: f64 = 30.0;
/// The CA bundle used when `tls-ca` is not given (Debian, Ubuntu, Alpine, Arch).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The command-line pieces that concern outputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutputFlags<'a> {
    /// `-f HOST:PORT`
    pub forward: Option<&'a str>,
    /// `--format`
    pub format: Option<FormatKind>,
    /// `--forward-policy`
    pub policy: Option<OverflowPolicy>,
}

/// Compiles a `text-format` (DNS-collector's directives, `delimiter` between fields, one
/// space by default) into its format; `None` without one. The compiled directives live for
/// the rest of the process (see [`FormatKind::Directives`]): one small leak per start-up
/// or reload, never per record. `key` names the setting in the error.
pub fn text_format(
    spec: Option<&str>,
    delimiter: Option<&str>,
    key: &str,
    file: Option<&Path>,
) -> Result<Option<FormatKind>, ConfigError> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let compiled = crate::format::directives::TextFormat::compile(spec, delimiter.unwrap_or(" "))
        .map_err(|e| err(file, key, e.to_string()))?;
    Ok(Some(FormatKind::Directives(Box::leak(Box::new(compiled)))))
}

/// Resolves the outputs. `stdout_format` is the already merged stdout format (`--format`,
/// else `output-format`).
pub fn resolve_outputs(
    flags: OutputFlags<'_>,
    forward_to: Option<&ForwardToSpec>,
    outputs: Option<&[OutputEntry]>,
    stdout_format: FormatKind,
    file: Option<&Path>,
) -> Result<Vec<OutputConf>, ConfigError> {
    resolve_outputs_with_transforms(flags, forward_to, outputs, stdout_format, file)
        .map(|(list, _)| list)
}

/// [`resolve_outputs`], and each output's own `transforms:` section, checked (index-aligned
/// with the outputs).
pub fn resolve_outputs_with_transforms(
    flags: OutputFlags<'_>,
    forward_to: Option<&ForwardToSpec>,
    outputs: Option<&[OutputEntry]>,
    stdout_format: FormatKind,
    file: Option<&Path>,
) -> Result<(Vec<OutputConf>, Vec<Option<FilteringConf>>), ConfigError> {
    let mut list = Vec::new();
    let mut chains: Vec<Option<FilteringConf>> = Vec::new();
    // The seed's forward: `-f` (address from the flag) or `forward-to.enable: true`.
    let empty = ForwardToSpec::default();
    let fwd_on = flags.forward.is_some() || forward_to.is_some_and(|f| f.enable == Some(true));
    if fwd_on {
        let spec = forward_to.unwrap_or(&empty);
        let collectors = match flags.forward {
            Some(target) => flag_collectors(target)?,
            None => spec_collectors(spec, "forward-to", file, " (forwarding is enabled)")?,
        };
        let fmt = spec
            .format
            .map(FormatChoice::kind)
            .or(flags.format)
            .unwrap_or(FormatKind::Json);
        let mut c = forward_conf(spec, "forward-to", collectors, fmt, file)?;
        if let Some(p) = flags.policy {
            c.buffer.policy = p;
            check_spill(&c, "--forward-policy", None)?;
        }
        list.push(OutputConf::Forward(Box::new(c)));
        chains.push(transforms::resolve(
            spec.transforms.as_ref(),
            "forward-to.transforms",
            file,
        )?);
    }
    match outputs {
        Some(entries) => {
            if entries.is_empty() && list.is_empty() {
                return Err(err(file, "outputs", "the list is empty"));
            }
            for (i, e) in entries.iter().enumerate() {
                let key = format!("outputs[{i}]");
                match e {
                    OutputEntry::Stdout(s) => {
                        let tf = text_format(
                            s.text_format.as_deref(),
                            s.text_format_delimiter.as_deref(),
                            &format!("{key}.stdout.text-format"),
                            file,
                        )?;
                        let fmt = tf
                            .or(s.format.map(FormatChoice::kind))
                            .unwrap_or(stdout_format);
                        list.push(OutputConf::Stdout(fmt));
                        let k = format!("{key}.stdout.transforms");
                        chains.push(transforms::resolve(s.transforms.as_ref(), &k, file)?);
                    }
                    OutputEntry::Forward(f) => {
                        let fk = format!("{key}.forward");
                        let cs = spec_collectors(f, &fk, file, "")?;
                        let fmt = f.format.map(FormatChoice::kind).unwrap_or(FormatKind::Json);
                        let c = forward_conf(f, &fk, cs, fmt, file)?;
                        list.push(OutputConf::Forward(Box::new(c)));
                        let k = format!("{fk}.transforms");
                        chains.push(transforms::resolve(f.transforms.as_ref(), &k, file)?);
                    }
                    OutputEntry::File(f) => {
                        let fk = format!("{key}.file");
                        let c = super::output_file::resolve(f, &fk, file)?;
                        list.push(OutputConf::File(Box::new(c)));
                        let k = format!("{fk}.transforms");
                        chains.push(transforms::resolve(f.transforms.as_ref(), &k, file)?);
                    }
                    OutputEntry::Dnstap(r) => {
                        let rk = format!("{key}.dnstap");
                        let c = super::output_relay::resolve(r, &rk, file)?;
                        list.push(OutputConf::Relay(Box::new(c)));
                        let k = format!("{rk}.transforms");
                        chains.push(transforms::resolve(r.transforms.as_ref(), &k, file)?);
                    }
                    OutputEntry::Kafka(k) => {
                        let base = file.and_then(Path::parent);
                        match super::kafka::resolve(k, base) {
                            Ok(Some(s)) => {
                                list.push(OutputConf::Kafka(Box::new(s)));
                                let tk = format!("{key}.kafka.transforms");
                                chains.push(transforms::resolve(k.transforms.as_ref(), &tk, file)?);
                            }
                            Ok(None) => {}
                            Err(e) => return Err(err(file, &format!("{key}.{}", e.key), e.reason)),
                        }
                    }
                }
            }
        }
        None if list.is_empty() => {
            list.push(OutputConf::Stdout(stdout_format));
            chains.push(None);
        }
        None => {}
    }
    // Two outputs cannot share a spill directory.
    let dirs: Vec<&PathBuf> = list
        .iter()
        .filter_map(|o| match o {
            OutputConf::Forward(c) => c.buffer.spill.as_ref().map(|s| &s.dir),
            OutputConf::Kafka(k) => k.spill.as_ref().map(|s| &s.dir),
            OutputConf::Stdout(_) | OutputConf::File(_) | OutputConf::Relay(_) => None,
        })
        .collect();
    for (i, d) in dirs.iter().enumerate() {
        if dirs[..i].contains(d) {
            return Err(err(
                file,
                "outputs",
                format!("two outputs use the spill directory {}", d.display()),
            ));
        }
    }
    // Two file outputs cannot write the same file.
    let paths: Vec<&PathBuf> = list
        .iter()
        .filter_map(|o| match o {
            OutputConf::File(c) => Some(&c.path),
            _ => None,
        })
        .collect();
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            return Err(err(
                file,
                "outputs",
                format!("two file outputs write {}", p.display()),
            ));
        }
    }
    if list
        .iter()
        .filter(|o| matches!(o, OutputConf::Stdout(_)))
        .count()
        > 1
    {
        return Err(err(file, "outputs", "stdout is listed twice"));
    }
    debug_assert_eq!(list.len(), chains.len());
    Ok((list, chains))
}

fn err(file: Option<&Path>, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.map(Path::to_path_buf),
        key: key.to_string(),
        line: None,
        reason: reason.into(),
    }
}

fn seconds(
    v: Option<f64>,
    default: f64,
    key: &str,
    file: Option<&Path>,
) -> Result<Duration, ConfigError> {
    let s = v.unwrap_or(default);
    if !(s.is_finite() && s > 0.0 && s <= 86_400.0) {
        return Err(err(
            file,
            key,
            format!("{s} is not a number of seconds in (0, 86400]"),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// `-f HOST:PORT[,HOST:PORT...]`: the collectors, each resolved now.
fn flag_collectors(target: &str) -> Result<Vec<CollectorAddr>, ConfigError> {
    let mut list = Vec::new();
    for t in target.split(',').map(str::trim) {
        let (host, port) =
            split_host_port(t).map_err(|r| err(None, "-f", format!("collector {t:?}: {r}")))?;
        parse_host_port(t).map_err(|r| err(None, "-f", format!("collector {t:?}: {r}")))?;
        list.push(CollectorAddr { host, port });
    }
    Ok(list)
}

/// The collectors of a forward section: `remote: [HOST:PORT, ...]`, or the seed's
/// `remote-address` + `remote-port` (a list of one). Each must resolve now (a typo should
/// stop start-up); it is resolved again at every connection.
fn spec_collectors(
    f: &ForwardToSpec,
    prefix: &str,
    file: Option<&Path>,
    why: &str,
) -> Result<Vec<CollectorAddr>, ConfigError> {
    let k = |name: &str| format!("{prefix}.{name}");
    if let Some(list) = &f.remote {
        for (set, name) in [
            (f.remote_address.is_some(), "remote-address"),
            (f.remote_port.is_some(), "remote-port"),
        ] {
            if set {
                return Err(err(
                    file,
                    &k(name),
                    "set together with remote (use one or the other)",
                ));
            }
        }
        if list.is_empty() {
            return Err(err(file, &k("remote"), "the list is empty"));
        }
        let mut out = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let key = format!("{}[{i}]", k("remote"));
            let (host, port) = split_host_port(t).map_err(|r| err(file, &key, r))?;
            parse_host_port(t).map_err(|r| err(file, &key, r))?;
            out.push(CollectorAddr { host, port });
        }
        return Ok(out);
    }
    let host = f
        .remote_address
        .clone()
        .ok_or_else(|| err(file, &k("remote-address"), format!("missing{why}")))?;
    let port = f
        .remote_port
        .ok_or_else(|| err(file, &k("remote-port"), format!("missing{why}")))?;
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    parse_host_port(&target).map_err(|r| err(file, &k("remote-address"), r))?;
    Ok(vec![CollectorAddr { host, port }])
}

/// One forward output's settings; `prefix` is the key path of its section.
fn forward_conf(
    f: &ForwardToSpec,
    prefix: &str,
    collectors: Vec<CollectorAddr>,
    format: FormatKind,
    file: Option<&Path>,
) -> Result<ForwardConf, ConfigError> {
    let k = |name: &str| format!("{prefix}.{name}");
    let chunk_bytes = f.chunk_size.unwrap_or(DEFAULT_CHUNK_BYTES);
    if !(4096..=(16 << 20)).contains(&chunk_bytes) {
        return Err(err(
            file,
            &k("chunk-size"),
            format!("{chunk_bytes} is not in 4096..=16777216"),
        ));
    }
    let max_bytes = f.buffer_size.unwrap_or(DEFAULT_FORWARD_BUFFER);
    if max_bytes < chunk_bytes {
        return Err(err(
            file,
            &k("buffer-size"),
            format!("{max_bytes} is smaller than one chunk ({chunk_bytes})"),
        ));
    }
    let policy = f
        .overflow
        .map_or(OverflowPolicy::Block, OverflowChoice::policy);
    let spill = match &f.spill_dir {
        Some(dir) => {
            let max = f.spill_max_bytes.unwrap_or(DEFAULT_SPILL_MAX);
            if max < 4 * chunk_bytes as u64 {
                return Err(err(
                    file,
                    &k("spill-max-bytes"),
                    format!("{max} is less than four chunks ({})", 4 * chunk_bytes),
                ));
            }
            Some(SpillSpec {
                dir: dir.clone(),
                max_bytes: max,
                segment_bytes: DEFAULT_SEGMENT_BYTES.max(2 * chunk_bytes as u64),
            })
        }
        None => None,
    };
    let tls_on = f.tls == Some(true);
    let tls = if tls_on {
        let ca = f
            .tls_ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let client = tls_client_config(
            &ca,
            f.tls_cert.as_deref(),
            f.tls_key.as_deref(),
            f.tls_server_name.as_deref(),
        )
        .map_err(|r| err(file, &k("tls"), r))?;
        let t = TlsConf {
            ca,
            cert: f.tls_cert.clone(),
            key: f.tls_key.clone(),
            server_name: f.tls_server_name.clone(),
            client,
        };
        if t.server_name.is_none() {
            for c in &collectors {
                rustls::pki_types::ServerName::try_from(c.host.clone()).map_err(|_| {
                    err(
                        file,
                        &k("tls-server-name"),
                        format!(
                            "{:?} is not a valid server name (set tls-server-name)",
                            c.host
                        ),
                    )
                })?;
            }
        }
        Some(t)
    } else {
        for (set, name) in [
            (f.tls_ca.is_some(), "tls-ca"),
            (f.tls_cert.is_some(), "tls-cert"),
            (f.tls_key.is_some(), "tls-key"),
            (f.tls_server_name.is_some(), "tls-server-name"),
        ] {
            if set {
                return Err(err(file, &k(name), "set, but tls is not true"));
            }
        }
        None
    };
    let c = ForwardConf {
        collectors,
        loadbalance: loadbalance(f, prefix, file)?,
        connections_per_host: match f.connections_per_host {
            None => 1,
            Some(n @ 1..=16) => n,
            Some(n) => {
                return Err(err(
                    file,
                    &k("connections-per-host"),
                    format!("{n} is not in 1..=16"),
                ))
            }
        },
        format,
        tls,
        backoff_init: seconds(
            f.backoff_init,
            DEFAULT_BACKOFF_INIT,
            &k("backoff-init"),
            file,
        )?,
        connect_timeout: seconds(
            f.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
            &k("connect-timeout"),
            file,
        )?,
        reconnect_max: seconds(
            f.reconnect_max,
            DEFAULT_RECONNECT_MAX,
            &k("reconnect-max"),
            file,
        )?,
        ttl: match f.ttl {
            Some(t) if t != 0.0 => Some(seconds(f.ttl, t, &k("ttl"), file)?),
            _ => None,
        },
        shutdown_timeout: seconds(
            f.shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
            &k("shutdown-timeout"),
            file,
        )?,
        keepalive: seconds(f.keepalive, DEFAULT_KEEPALIVE, &k("keepalive"), file)?,
        chunk_bytes,
        buffer: BufferSpec {
            max_bytes,
            policy,
            spill,
        },
        replay_window: f.replay_window.unwrap_or(DEFAULT_REPLAY_WINDOW),
    };
    check_spill(&c, &k("overflow"), file)?;
    Ok(c)
}

/// `loadbalance`, and with `hash` its key (`hash-key`, `hash-prefix-v4`, `hash-prefix-v6`).
fn loadbalance(
    f: &ForwardToSpec,
    prefix: &str,
    file: Option<&Path>,
) -> Result<LoadBalance, ConfigError> {
    let k = |name: &str| format!("{prefix}.{name}");
    let is_hash = f.loadbalance == Some(LoadBalanceChoice::Hash);
    let is_prefix = is_hash && f.hash_key == Some(HashKeyChoice::ClientPrefix);
    for (set, name, needs) in [
        (
            f.hash_key.is_some() && !is_hash,
            "hash-key",
            "loadbalance: hash",
        ),
        (
            f.hash_prefix_v4.is_some() && !is_prefix,
            "hash-prefix-v4",
            "hash-key: client-prefix",
        ),
        (
            f.hash_prefix_v6.is_some() && !is_prefix,
            "hash-prefix-v6",
            "hash-key: client-prefix",
        ),
    ] {
        if set {
            return Err(err(
                file,
                &k(name),
                format!("set, but only used with {needs}"),
            ));
        }
    }
    let v4 = f.hash_prefix_v4.unwrap_or(24);
    if v4 > 32 {
        return Err(err(
            file,
            &k("hash-prefix-v4"),
            format!("{v4} is not in 0..=32"),
        ));
    }
    let v6 = f.hash_prefix_v6.unwrap_or(56);
    if v6 > 128 {
        return Err(err(
            file,
            &k("hash-prefix-v6"),
            format!("{v6} is not in 0..=128"),
        ));
    }
    Ok(match f.loadbalance {
        None | Some(LoadBalanceChoice::Failover) => LoadBalance::Failover,
        Some(LoadBalanceChoice::RoundRobin) => LoadBalance::RoundRobin,
        Some(LoadBalanceChoice::Hash) => LoadBalance::Hash(match f.hash_key {
            None | Some(HashKeyChoice::ClientIp) => HashKey::ClientIp,
            Some(HashKeyChoice::ClientPrefix) => HashKey::ClientPrefix { v4, v6 },
            Some(HashKeyChoice::Identity) => HashKey::Identity,
            Some(HashKeyChoice::Qname) => HashKey::Qname,
        }),
    })
}

fn check_spill(c: &ForwardConf, key: &str, file: Option<&Path>) -> Result<(), ConfigError> {
    if c.buffer.policy == OverflowPolicy::Spill && c.buffer.spill.is_none() {
        return Err(err(file, key, "the spill policy needs spill-dir"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::FileConfig;

    fn res(flags: OutputFlags<'_>, yaml: &str) -> Result<Vec<OutputConf>, ConfigError> {
        let fc = FileConfig::parse(yaml)?;
        resolve_outputs(
            flags,
            fc.forward_to.as_ref(),
            fc.outputs.as_deref(),
            FormatKind::Text,
            Some(Path::new("t.yaml")),
        )
    }

    fn fwd(o: &OutputConf) -> &ForwardConf {
        match o {
            OutputConf::Forward(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_forward_means_stdout_only() {
        let l = res(OutputFlags::default(), "").unwrap();
        assert_eq!(l, vec![OutputConf::Stdout(FormatKind::Text)]);
        let seed =
            "forward-to:\n  enable: false\n  remote-address: 10.0.0.2\n  remote-port: 8192\n";
        assert_eq!(res(OutputFlags::default(), seed).unwrap().len(), 1);
    }

    #[test]
    fn seed_forward_replaces_stdout_and_sends_json() {
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 8192\n";
        let l = res(OutputFlags::default(), y).unwrap();
        assert_eq!(l.len(), 1, "no stdout while forwarding (seed)");
        let c = fwd(&l[0]);
        assert_eq!(
            (c.collectors[0].host.as_str(), c.collectors[0].port),
            ("127.0.0.1", 8192)
        );
        assert_eq!(c.format, FormatKind::Json);
        assert_eq!(c.buffer.policy, OverflowPolicy::Block);
        assert_eq!(c.name(), "forward 127.0.0.1:8192");
    }

    #[test]
    fn dash_f_overrides_the_address_and_keeps_the_section() {
        let y = "forward-to:\n  remote-address: 10.9.9.9\n  remote-port: 1\n  overflow: drop-oldest\n  format: json-full\n";
        let flags = OutputFlags {
            forward: Some("127.0.0.1:5140"),
            ..OutputFlags::default()
        };
        let l = res(flags, y).unwrap();
        let c = fwd(&l[0]);
        assert_eq!(
            (c.collectors[0].host.as_str(), c.collectors[0].port),
            ("127.0.0.1", 5140)
        );
        assert_eq!(c.buffer.policy, OverflowPolicy::DropOldest);
        assert_eq!(c.format, FormatKind::JsonFull);
        // --format applies when the section does not choose.
        let flags = OutputFlags {
            forward: Some("[::1]:5140"),
            format: Some(FormatKind::Yaml),
            policy: Some(OverflowPolicy::DropNewest),
        };
        let c = res(flags, "").unwrap().remove(0);
        let c = fwd(&c);
        assert_eq!(c.collectors[0].host, "::1");
        assert_eq!(c.format, FormatKind::Yaml);
        assert_eq!(c.buffer.policy, OverflowPolicy::DropNewest);
    }

    #[test]
    fn outputs_list_runs_several_with_their_own_formats() {
        let y = "\
outputs:
  - stdout:
      format: yaml
  - forward:
      remote-address: 127.0.0.1
      remote-port: 5140
      overflow: spill
      spill-dir: /tmp/x-spill
      buffer-size: 1048576
  - forward:
      remote-address: 127.0.0.1
      remote-port: 5141
      format: text
";
        let l = res(OutputFlags::default(), y).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], OutputConf::Stdout(FormatKind::Yaml));
        assert_eq!(fwd(&l[1]).buffer.policy, OverflowPolicy::Spill);
        assert_eq!(fwd(&l[1]).buffer.max_bytes, 1 << 20);
        assert_eq!(fwd(&l[2]).format, FormatKind::Text);
    }

    #[test]
    fn errors_name_the_key() {
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.remote-port", "{e}");
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 1\n  overflow: spill\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.overflow", "{e}");
        assert!(e.reason.contains("spill-dir"), "{e}");
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 1\n  overflow: sometimes\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.overflow", "{e}");
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 1\n  tls: true\n  tls-ca: /nonexistent/ca.pem\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.tls", "{e}");
        assert!(e.reason.contains("/nonexistent/ca.pem"), "{e}");
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 1\n  tls-ca: /x\n";
        assert_eq!(
            res(OutputFlags::default(), y).unwrap_err().key,
            "forward-to.tls-ca"
        );
        let y = "forward-to:\n  enable: true\n  remote-address: 127.0.0.1\n  remote-port: 1\n  connect-timeout: -1\n";
        assert_eq!(
            res(OutputFlags::default(), y).unwrap_err().key,
            "forward-to.connect-timeout"
        );
        let y = "outputs:\n  - forward:\n      remote-port: 1\n";
        assert_eq!(
            res(OutputFlags::default(), y).unwrap_err().key,
            "outputs[0].forward.remote-address"
        );
        let flags = OutputFlags {
            forward: Some("nonsense"),
            ..OutputFlags::default()
        };
        let e = res(flags, "").unwrap_err();
        assert_eq!(e.key, "-f");
        assert!(e.reason.contains("HOST:PORT"), "{e}");
        let y = "outputs:\n  - forward:\n      remote-address: 127.0.0.1\n      remote-port: 1\n      overflow: spill\n      spill-dir: /tmp/same\n  - forward:\n      remote-address: 127.0.0.1\n      remote-port: 2\n      overflow: spill\n      spill-dir: /tmp/same\n";
        assert_eq!(res(OutputFlags::default(), y).unwrap_err().key, "outputs");
    }

    #[test]
    fn several_collectors_from_remote_and_from_f() {
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:5140, '[::1]:5141']\n  loadbalance: round-robin\n  backoff-init: 1\n  backoff-max: 60\n";
        let l = res(OutputFlags::default(), y).unwrap();
        let c = fwd(&l[0]);
        assert_eq!(c.collectors.len(), 2);
        assert_eq!(c.collectors[1].host, "::1");
        assert_eq!(c.collectors[1].port, 5141);
        assert_eq!(c.loadbalance, LoadBalance::RoundRobin);
        assert_eq!(c.backoff_init, Duration::from_secs(1));
        assert_eq!(c.reconnect_max, Duration::from_secs(60));
        assert_eq!(c.name(), "forward 127.0.0.1:5140,[::1]:5141");
        assert_eq!(c.ttl, None);
        let y = "outputs:\n  - forward:\n      remote: [127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3]\n";
        let c = res(OutputFlags::default(), y).unwrap();
        assert_eq!(fwd(&c[0]).collectors.len(), 3);
        assert_eq!(fwd(&c[0]).loadbalance, LoadBalance::Failover);
        // Filebeat's backoff defaults: 1 s, doubling up to 60 s.
        assert_eq!(fwd(&c[0]).backoff_init, Duration::from_secs(1));
        assert_eq!(fwd(&c[0]).reconnect_max, Duration::from_secs(60));
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  backoff-init: 0.1\n  backoff-max: 2\n";
        let c = fwd(&res(OutputFlags::default(), y).unwrap()[0]).clone();
        assert_eq!(c.backoff_init, Duration::from_millis(100));
        assert_eq!(c.reconnect_max, Duration::from_secs(2));
        let flags = OutputFlags {
            forward: Some("127.0.0.1:1, 127.0.0.1:2"),
            ..OutputFlags::default()
        };
        let l = res(flags, "").unwrap();
        assert_eq!(fwd(&l[0]).collectors[1].port, 2);
    }

    #[test]
    fn a_bad_collector_is_named_with_its_key() {
        let y = "outputs:\n  - forward:\n      remote: [127.0.0.1:1, 127.0.0.1:nope]\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "outputs[0].forward.remote[1]", "{e}");
        assert!(e.reason.contains("nope"), "{e}");
        let y = "forward-to:\n  enable: true\n  remote: []\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.remote", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  remote-port: 2\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.remote-port", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  loadbalance: sometimes\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.loadbalance", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  connections-per-host: 0\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.connections-per-host", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  ttl: -1\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.ttl", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  hash-key: qname\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.hash-key", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1]\n  loadbalance: hash\n  hash-key: client-prefix\n  hash-prefix-v4: 33\n";
        let e = res(OutputFlags::default(), y).unwrap_err();
        assert_eq!(e.key, "forward-to.hash-prefix-v4", "{e}");
        let y = "forward-to:\n  enable: true\n  remote: [127.0.0.1:1, 127.0.0.1:2]\n  loadbalance: hash\n  hash-key: client-prefix\n  hash-prefix-v6: 48\n";
        let l = res(OutputFlags::default(), y).unwrap();
        assert_eq!(
            fwd(&l[0]).loadbalance,
            LoadBalance::Hash(HashKey::ClientPrefix { v4: 24, v6: 48 })
        );
        let flags = OutputFlags {
            forward: Some("127.0.0.1:1,bad"),
            ..OutputFlags::default()
        };
        let e = res(flags, "").unwrap_err();
        assert_eq!(e.key, "-f");
        assert!(e.reason.contains("\"bad\""), "{e}");
    }
}
