//! The command line as the user typed it ([`LowArgs`]), parsed by clap and nothing more, and
//! the written names of the choices it shares with the config file ([`IoChoice`],
//! [`FormatChoice`], [`QueueChoice`], [`OverflowChoice`]), each mapped here onto the plain
//! enum of the floor that uses it.
//!
//! Every option is an `Option` so that [`super::Settings::build`] can tell "not given" (the
//! config file or the default applies) from "given" (the flag wins over the file). Defaults
//! are written in the help text and applied in `config`, in one place. This file knows
//! nothing of sockets or threads; no module below `config` sees clap.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::format::FormatKind;
use crate::pipeline::QueuePolicy;
use crate::sink::buffer::OverflowPolicy;

/// Which I/O back-end the input threads use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoChoice {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    /// io_uring only: start-up fails if the kernel refuses it.
    Uring,
    /// epoll only.
    Epoll,
}

/// Output format names on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FormatChoice {
    Text,
    Json,
    Yaml,
    JsonFull,
    YamlFull,
    /// DNS-collector's JSON record.
    #[value(name = "dnscollector-json")]
    #[serde(rename = "dnscollector-json")]
    DnscollectorJson,
    /// DNS-collector's flat JSON record.
    #[value(name = "dnscollector-flat-json")]
    #[serde(rename = "dnscollector-flat-json")]
    DnscollectorFlatJson,
    /// python dnstap_receiver 4.7's JSON line.
    #[value(name = "dr4-json")]
    #[serde(rename = "dr4-json")]
    Dr4Json,
    GolangText,
    GolangYaml,
    GolangJson,
}

impl FormatChoice {
    /// The format this name chooses.
    pub fn kind(self) -> FormatKind {
        match self {
            FormatChoice::Text => FormatKind::Text,
            FormatChoice::Json => FormatKind::Json,
            FormatChoice::Yaml => FormatKind::Yaml,
            FormatChoice::JsonFull => FormatKind::JsonFull,
            FormatChoice::YamlFull => FormatKind::YamlFull,
            FormatChoice::DnscollectorJson => FormatKind::DnsCollectorJson,
            FormatChoice::DnscollectorFlatJson => FormatKind::DnsCollectorFlatJson,
            FormatChoice::Dr4Json => FormatKind::Dr4Json,
            FormatChoice::GolangText => FormatKind::GolangText,
            FormatChoice::GolangYaml => FormatKind::GolangYaml,
            FormatChoice::GolangJson => FormatKind::GolangJson,
        }
    }
}

/// What readers do when the writer falls behind (`--queue-policy`, `queue.policy`); see
/// [`QueuePolicy`]. (Named `QueuePolicy` to serde, so parse errors read as before.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename = "QueuePolicy", rename_all = "lowercase")]
pub enum QueueChoice {
    /// Readers stop reading; back-pressure reaches the senders' sockets.
    Block,
    /// The batch is dropped and counted.
    Drop,
}

impl QueueChoice {
    pub fn policy(self) -> QueuePolicy {
        match self {
            QueueChoice::Block => QueuePolicy::Block,
            QueueChoice::Drop => QueuePolicy::Drop,
        }
    }
}

/// What happens when an output's memory buffer is full (`--forward-policy`, `overflow:`);
/// see [`OverflowPolicy`]. (Named `OverflowPolicy` to serde, so parse errors read as
/// before.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename = "OverflowPolicy", rename_all = "kebab-case")]
pub enum OverflowChoice {
    /// The producer waits: the writer thread stalls, the pipeline queue fills, the readers
    /// stop reading and the DNS servers see TCP back-pressure. Nothing is lost.
    Block,
    /// The chunk being pushed (the newest records) is dropped and counted.
    DropNewest,
    /// The oldest queued chunks are dropped and counted to make room. Chunks queued again
    /// for a resend are kept (they may have reached the peer already, so they are neither
    /// lost nor droppable); when only those are left, the new chunk is dropped.
    DropOldest,
    /// Full memory goes to a bounded on-disk queue, replayed in order.
    Spill,
}

impl OverflowChoice {
    pub fn policy(self) -> OverflowPolicy {
        match self {
            OverflowChoice::Block => OverflowPolicy::Block,
            OverflowChoice::DropNewest => OverflowPolicy::DropNewest,
            OverflowChoice::DropOldest => OverflowPolicy::DropOldest,
            OverflowChoice::Spill => OverflowPolicy::Spill,
        }
    }
}

/// dnstap receiver: accepts dnstap over Frame Streams (TCP, TLS or unix socket) and prints
/// one record per message on stdout, or forwards them (-f).
///
/// With no arguments it listens on TCP 0.0.0.0:6000 and prints the text format. Flags given
/// here override the same settings of the config file (-c), which also sets up TLS inputs,
/// allow-from, several outputs (stdout, forward, kafka) and metrics: see docs/receiver.md.
#[derive(Debug, Default, Parser)]
#[command(name = "dnstap_receiver", version)]
pub struct LowArgs {
    /// IP address to listen on for TCP senders [default: 0.0.0.0]
    #[arg(short = 'l', value_name = "ADDR")]
    pub listen_address: Option<String>,

    /// TCP port to listen on [default: 6000]
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<u16>,

    /// Listen on this unix socket instead of TCP (a stale socket file is replaced)
    #[arg(short = 'u', value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,

    /// YAML config file (keys: see docs/receiver.md); flags override its values
    #[arg(short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the configuration and exit: load and compile it (config file, flags, TLS files,
    /// lists), print what would run, exit 0 when it is valid and 1 with the error otherwise.
    /// FILE is the config file (the same as -c FILE). Nothing is bound or started.
    #[arg(
        short = 't',
        long = "check-config",
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = false
    )]
    pub check_config: Option<Option<PathBuf>>,

    /// Verbose: start-up details and a statistics line every 10 s on stderr
    #[arg(short = 'v')]
    pub verbose: bool,

    /// Offline: read a Frame Streams capture file, print its records and exit
    #[arg(short = 'r', value_name = "FILE")]
    pub read_file: Option<PathBuf>,

    /// Forward records to HOST:PORT over TCP, one JSON object per line, instead of stdout;
    /// several collectors comma-separated (HOST:PORT,HOST:PORT: failover by default, more
    /// keys under forward-to in the config file)
    #[arg(short = 'f', value_name = "HOST:PORT[,...]")]
    pub forward: Option<String>,

    /// I/O back-end for the inputs [default: auto]
    #[arg(long = "io", value_enum, value_name = "BACKEND")]
    pub io: Option<IoChoice>,

    /// Output format [default: text]
    #[arg(long = "format", value_enum, value_name = "FORMAT")]
    pub format: Option<FormatChoice>,

    /// A line of DNS-collector text directives instead of --format, e.g. "timestamp-rfc3339ns
    /// identity operation rcode queryip qname qtype" (docs/formats.md lists them)
    #[arg(long = "text-format", value_name = "DIRECTIVES")]
    pub text_format: Option<String>,

    /// Between the fields of --text-format [default: one space]
    #[arg(long = "text-format-delimiter", value_name = "TEXT")]
    pub text_format_delimiter: Option<String>,

    /// When output is slower than input: block the readers, or drop batches and count them
    /// [default: block]
    #[arg(long = "queue-policy", value_enum, value_name = "POLICY")]
    pub queue_policy: Option<QueueChoice>,

    /// Input threads, each with its own event loop [default: number of CPUs]
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<usize>,

    /// Writer threads that decode and format in parallel, output kept in order; one
    /// stdout, forward or kafka output only (config: `writers`) [default: 2 when stdout is
    /// the only output and there are 2+ CPUs, else 1]
    #[arg(long = "writers", value_name = "N")]
    pub writers: Option<usize>,

    /// Set SO_REUSEPORT on TCP/TLS inputs, so that several receiver processes can listen on
    /// one port and the kernel spreads the connections among them (config: `reuse-port`)
    #[arg(long = "reuse-port")]
    pub reuse_port: bool,

    /// Serve Prometheus metrics on http://ADDR:PORT/metrics (config: `metrics:`) [default: off]
    #[arg(long = "metrics", value_name = "ADDR:PORT")]
    pub metrics: Option<String>,

    /// When the collector is slower than input or away (-f / forward-to) [default: block]
    #[arg(long = "forward-policy", value_enum, value_name = "POLICY")]
    pub forward_policy: Option<OverflowChoice>,

    /// Write the man page and shell completions generated from these flags under DIR and
    /// exit (packaging; docs/operations.md)
    #[arg(long = "generate-assets", value_name = "DIR", hide = true)]
    pub generate_assets: Option<PathBuf>,
}

impl LowArgs {
    /// Parses `std::env::args`; on error clap prints usage and exits 2.
    pub fn parse_env() -> LowArgs {
        LowArgs::parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        LowArgs::command().debug_assert();
    }

    #[test]
    fn seed_flags_parse() {
        let a = LowArgs::try_parse_from([
            "dnstap_receiver",
            "-l",
            "127.0.0.1",
            "-p",
            "7000",
            "-v",
            "--io",
            "epoll",
            "--format",
            "json-full",
            "--queue-policy",
            "drop",
        ])
        .unwrap();
        assert_eq!(a.listen_address.as_deref(), Some("127.0.0.1"));
        assert_eq!(a.port, Some(7000));
        assert!(a.verbose);
        assert_eq!(a.io, Some(IoChoice::Epoll));
        assert_eq!(a.format, Some(FormatChoice::JsonFull));
        assert_eq!(a.queue_policy, Some(QueueChoice::Drop));
    }

    #[test]
    fn no_args_means_all_defaults() {
        let a = LowArgs::try_parse_from(["dnstap_receiver"]).unwrap();
        assert!(a.listen_address.is_none() && a.port.is_none() && a.unix_socket.is_none());
        assert!(a.config.is_none() && a.io.is_none() && a.format.is_none());
    }

    #[test]
    fn bad_port_is_rejected() {
        assert!(LowArgs::try_parse_from(["dnstap_receiver", "-p", "70000"]).is_err());
        assert!(LowArgs::try_parse_from(["dnstap_receiver", "--io", "kqueue"]).is_err());
    }
}
