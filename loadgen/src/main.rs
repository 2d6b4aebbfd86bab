//! `loadgen`: sends dnstap over Frame Streams to a receiver, for load tests.
//!
//! Today it replays capture files: every data frame of the given `.fstrm` files (in order)
//! forms the corpus, which is encoded once into one large buffer and written with large
//! writes over one or more connections. The pieces are kept apart so a synthetic generator
//! can slot in: `corpus` (where payloads come from), `wire` (encoding ahead of time),
//! `sender` (one connection loop), `report` (totals).
#![forbid(unsafe_code)]

mod corpus;
mod report;
mod sender;
mod tls;
mod verify;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::corpus::Corpus;
use crate::report::Report;
use crate::sender::{Budget, ConnStats, Mode, Target};
use crate::wire::Block;

/// Replays Frame Streams capture files to a dnstap receiver.
///
/// Each connection sends the whole corpus once by default. `--count N` sets the total
/// number of messages, split evenly over the connections (each one loops the corpus from
/// its start as often as needed). `--duration SECS` stops every connection after that
/// time; alone it loops the corpus until then.
#[derive(Parser, Debug)]
#[command(name = "loadgen", version)]
struct Args {
    /// Frame Streams files to replay (concatenated in the order given).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// More files to replay (same as positional FILEs; fstrm_replay's spelling).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<PathBuf>,
    /// Connect to this unix socket.
    #[arg(short = 'u', long = "unix", value_name = "PATH", conflicts_with_all = ["address", "tcp"])]
    unix: Option<PathBuf>,
    /// Connect over TCP to this host (with -p).
    #[arg(short = 'a', long = "address", value_name = "HOST", requires = "port")]
    address: Option<String>,
    /// TCP port (with -a).
    #[arg(short = 'p', long = "port", value_name = "PORT", requires = "address")]
    port: Option<u16>,
    /// Connect over TCP to HOST:PORT.
    #[arg(long = "tcp", value_name = "HOST:PORT", conflicts_with = "address")]
    tcp: Option<String>,
    /// Unidirectional Frame Streams: START, data, STOP; no READY/ACCEPT, no FINISH.
    #[arg(long)]
    unidirectional: bool,
    /// Parallel connections, each on its own thread.
    #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,
    /// Total messages to send over all connections (the corpus is looped).
    #[arg(long)]
    count: Option<u64>,
    /// Stop every connection after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Longest wait for ACCEPT and FINISH, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    reply_timeout: f64,
    /// Print the final report as one JSON object.
    #[arg(long)]
    json: bool,
    /// TLS over the TCP target (needs --tls-ca).
    #[arg(long)]
    tls: bool,
    /// PEM CA bundle that signed the receiver's certificate.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate chain (mutual TLS; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_key: Option<PathBuf>,
    /// Name the receiver's certificate must carry [default: the target's host].
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_server_name: Option<String>,
    /// Only this TLS version: 1.2 or 1.3 [default: either, 1.3 preferred].
    #[arg(long, value_name = "VERSION", requires = "tls")]
    tls_version: Option<String>,
    /// After the run, check the receiver's Prometheus counters at this URL
    /// (http://[user:pass@]host:port/metrics): every message sent was received, and every
    /// received one written, filtered or counted as lost. Exit 1 on a mismatch.
    #[arg(long, value_name = "URL")]
    verify: Option<String>,
    /// Longest wait, in seconds, for the receiver's counters to settle (with --verify).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    verify_wait: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The baseline scrape comes before anything is sent.
    let verify = match args.verify.as_deref().map(verify::Endpoint::parse) {
        None => None,
        Some(Err(e)) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
        Some(Ok(ep)) => match ep.counters() {
            Ok(base) => Some((ep, base)),
            Err(e) => {
                eprintln!("loadgen: --verify: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                println!("{}", report.to_text());
            }
            if let Some((ep, base)) = &verify {
                let wait = Duration::try_from_secs_f64(args.verify_wait).unwrap_or_default();
                let v = verify::check(ep, base, report.messages, wait);
                for l in &v.lines {
                    eprintln!("loadgen: {l}");
                }
                if !v.ok {
                    return ExitCode::FAILURE;
                }
            }
            if report.failed_connections == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<Report, String> {
    let target = match (&args.unix, &args.address, args.port, &args.tcp) {
        (Some(path), _, _, _) => Target::Unix(path.clone()),
        (None, Some(host), Some(port), None) => Target::Tcp(format!("{host}:{port}")),
        (None, None, None, Some(hp)) => Target::Tcp(hp.clone()),
        _ => return Err("give a receiver: -u PATH, -a HOST -p PORT or --tcp HOST:PORT".into()),
    };
    let target = match (args.tls, target) {
        (false, t) => t,
        (true, Target::Tcp(addr)) => {
            let tls_args = tls::TlsArgs {
                ca: args.tls_ca.clone(),
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                server_name: args.tls_server_name.clone(),
                version: args.tls_version.clone(),
            };
            let client = tls::TlsClient::new(&tls_args, tls::host_of(&addr))?;
            Target::Tls(addr, client)
        }
        (true, _) => return Err("--tls needs a TCP receiver (-a/-p or --tcp)".into()),
    };
    let files: Vec<&PathBuf> = args.files.iter().chain(&args.read).collect();
    if files.is_empty() {
        return Err("give at least one .fstrm file to replay".into());
    }
    let mut corpus = Corpus::new();
    for f in files {
        corpus.read_fstrm_file(f).map_err(|e| e.to_string())?;
    }
    if corpus.is_empty() {
        return Err("the files hold no data frames".into());
    }
    let duration = seconds(args.duration, "--duration")?;
    let reply_timeout =
        seconds(Some(args.reply_timeout), "--reply-timeout")?.unwrap_or(Duration::from_secs(10));
    let block = Block::encode(&corpus);
    let mode = if args.unidirectional {
        Mode::Unidirectional
    } else {
        Mode::Bidirectional
    };
    let conns = args.connections as u64;
    let per_conn = |i: u64| match (args.count, duration) {
        (Some(n), _) => n / conns + u64::from(i < n % conns),
        (None, Some(_)) => u64::MAX,
        (None, None) => corpus.len() as u64,
    };

    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let results: Vec<std::io::Result<ConnStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|i| {
                let budget = Budget {
                    messages: per_conn(i),
                    deadline,
                    reply_timeout,
                };
                let (target, block) = (&target, &block);
                scope.spawn(move || sender::run_connection(target, mode, block, budget))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("sender panicked")))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();

    let mut report = Report {
        transport: target.transport(),
        bidirectional: mode == Mode::Bidirectional,
        connections: results.len(),
        failed_connections: 0,
        messages: 0,
        bytes: 0,
        seconds,
    };
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(s) => {
                report.messages += s.messages;
                report.bytes += s.bytes;
            }
            Err(e) => {
                eprintln!("loadgen: connection {i}: {e}");
                report.failed_connections += 1;
            }
        }
    }
    Ok(report)
}

fn seconds(v: Option<f64>, flag: &str) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(s) => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| format!("{flag}: not a number of seconds: {s}")),
    }
}
