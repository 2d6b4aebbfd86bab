//! `loadgen`: sends dnstap over Frame Streams to a receiver, for load tests.
//!
//! The corpus is either every data frame of the given `.fstrm` files (in order) or
//! synthetic traffic (`--synth`, seedable); it is encoded once into one large buffer and
//! written with large writes over one or more connections, as fast as possible or paced
//! (`--rate`). The pieces: `corpus` (payloads), `synth` (the generator), `wire` (encoding
//! ahead of time), `sender` (one connection loop), `progress` (the live line), `discard`
//! (an in-process receiver that throws frames away), `report` (totals).
#![forbid(unsafe_code)]

mod corpus;
mod discard;
mod progress;
mod report;
mod sender;
mod synth;
mod tls;
mod verify;
mod verify_output;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

use crate::corpus::Corpus;
use crate::report::Report;
use crate::sender::{Budget, ConnStats, Mode, Target};
use crate::synth::SynthSpec;
use crate::wire::Block;

/// Sends dnstap to a receiver: replays Frame Streams capture files, or synthetic traffic.
///
/// Each connection sends the whole corpus once by default. `--count N` sets the total
/// number of messages, split evenly over the connections (each one loops the corpus from
/// its start as often as needed). `--duration SECS` stops every connection after that
/// time; alone it loops the corpus until then. `--rate R` paces the total to R msg/s.
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
    /// Send synthetic traffic (seedable; see --seed, --synth-*) instead of replaying files.
    #[arg(long, conflicts_with_all = ["files", "read"])]
    synth: bool,
    /// Seed of the synthetic traffic: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1, requires = "synth")]
    seed: u64,
    /// Distinct synthetic messages generated (the corpus that is then looped).
    #[arg(long, value_name = "N", default_value_t = SynthSpec::default().messages as u64,
          value_parser = clap::value_parser!(u64).range(1..=50_000_000), requires = "synth")]
    synth_messages: u64,
    /// Distinct query names in the synthetic traffic (Zipf-distributed).
    #[arg(long, value_name = "N", default_value_t = SynthSpec::default().names as u64,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000), requires = "synth")]
    synth_names: u64,
    /// Distinct dnstap identities (servers) in the synthetic traffic.
    #[arg(long, value_name = "N", default_value_t = SynthSpec::default().identities as u64,
          value_parser = clap::value_parser!(u64).range(1..=100_000), requires = "synth")]
    synth_identities: u64,
    /// Write the corpus to this Frame Streams file (what fstrm_capture writes) and exit,
    /// without connecting anywhere.
    #[arg(long, value_name = "FILE")]
    write_fstrm: Option<PathBuf>,
    /// Total messages per second over all connections, paced smoothly (about one write
    /// per millisecond); default: as fast as the receiver takes them.
    #[arg(long, value_name = "MSGS_PER_SEC")]
    rate: Option<f64>,
    /// Serve the target address in this process with a receiver that discards every frame
    /// (measures the sender alone, and counts what arrived).
    #[arg(long)]
    discard: bool,
    /// After the run, count the lines of the receiver's output FILE (one per message in its
    /// text and JSON formats) until they stop growing, and report any shortfall.
    #[arg(long, value_name = "FILE", conflicts_with = "discard")]
    verify_output: Option<PathBuf>,
    /// Longest wait for the receiver's output to catch up (with --verify-output).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    verify_timeout: f64,
    /// No progress line on stderr.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Write the man page and shell completions under DIR and exit (packaging).
    #[arg(long = "generate-assets", value_name = "DIR", hide = true)]
    generate_assets: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.generate_assets {
        use clap::CommandFactory;
        return match dnstap_receiver::config::assets::write_assets(Args::command(), dir) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen: --generate-assets {}: {e}", dir.display());
                ExitCode::from(1)
            }
        };
    }
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
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(report)) => {
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
            if report.failed_connections == 0 && report.shortfall() == 0 {
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

/// The corpus: synthetic, or the data frames of the files named.
fn build_corpus(args: &Args) -> Result<Corpus, String> {
    let mut corpus = Corpus::new();
    if args.synth {
        let spec = SynthSpec {
            seed: args.seed,
            messages: args.synth_messages as usize,
            names: args.synth_names as usize,
            identities: args.synth_identities as usize,
            ..SynthSpec::default()
        };
        synth::generate(&spec, &mut corpus);
        return Ok(corpus);
    }
    let files: Vec<&PathBuf> = args.files.iter().chain(&args.read).collect();
    if files.is_empty() {
        return Err("give .fstrm files to replay, or --synth".into());
    }
    for f in files {
        corpus.read_fstrm_file(f).map_err(|e| e.to_string())?;
    }
    if corpus.is_empty() {
        return Err("the files hold no data frames".into());
    }
    Ok(corpus)
}

/// Writes the corpus as a unidirectional Frame Streams file: START, data frames, STOP.
fn write_fstrm(corpus: &Corpus, path: &std::path::Path) -> Result<(), String> {
    use dnstap_receiver::framestream::{
        write_control_frame, write_data_frame, ControlType, DNSTAP_CONTENT_TYPE,
    };
    let mut out = Vec::with_capacity(corpus.payload_bytes() + 4 * corpus.len() + 64);
    write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), &mut out);
    for p in corpus.iter() {
        write_data_frame(p, &mut out);
    }
    write_control_frame(ControlType::Stop, None, &mut out);
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(args: &Args) -> Result<Option<Report>, String> {
    let corpus = build_corpus(args)?;
    if let Some(path) = &args.write_fstrm {
        write_fstrm(&corpus, path)?;
        eprintln!(
            "loadgen: wrote {} messages ({} payload bytes) to {}",
            corpus.len(),
            corpus.payload_bytes(),
            path.display()
        );
        return Ok(None);
    }
    let target = match (&args.unix, &args.address, args.port, &args.tcp) {
        (Some(path), _, _, _) => Target::Unix(path.clone()),
        (None, Some(host), Some(port), None) => Target::Tcp(format!("{host}:{port}")),
        (None, None, None, Some(hp)) => Target::Tcp(hp.clone()),
        _ => return Err("give a receiver: -u PATH, -a HOST -p PORT or --tcp HOST:PORT".into()),
    };
    let target = match (args.tls, target) {
        (false, t) => t,
        (true, _) if args.discard => return Err("--discard does not serve TLS".into()),
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
    let rate = match args.rate {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            return Err(format!("--rate: not a positive number of messages/s: {r}"))
        }
        r => r,
    };
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
    let discard = if args.discard {
        let l = discard::Listener::bind(&target)
            .map_err(|e| format!("--discard: cannot listen on {target:?}: {e}"))?;
        Some(std::thread::spawn(move || l.serve(conns)))
    } else {
        None
    };
    let per_conn = |i: u64| match (args.count, duration) {
        (Some(n), _) => n / conns + u64::from(i < n % conns),
        (None, Some(_)) => u64::MAX,
        (None, None) => corpus.len() as u64,
    };

    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let done = AtomicBool::new(false);
    let results: Vec<std::io::Result<ConnStats>> = std::thread::scope(|scope| {
        if !args.quiet {
            scope.spawn(|| progress::run_printer(started, &done));
        }
        let handles: Vec<_> = (0..conns)
            .map(|i| {
                let budget = Budget {
                    messages: per_conn(i),
                    deadline,
                    reply_timeout,
                    rate: rate.map(|r| r / conns as f64),
                };
                let (target, block) = (&target, &block);
                scope.spawn(move || sender::run_connection(target, mode, block, budget))
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("sender panicked")))
            })
            .collect();
        done.store(true, Ordering::Relaxed);
        results
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
        source: if args.synth { "synth" } else { "replay" },
        rate_target: rate,
        received: None,
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
    if let Some(server) = discard {
        // A sender that failed to connect leaves the server waiting for it: poke it with
        // empty connections so that it returns (they count as errors, not frames).
        for _ in 0..report.failed_connections {
            let _ = match &target {
                Target::Unix(p) => std::os::unix::net::UnixStream::connect(p).map(drop),
                Target::Tcp(a) | Target::Tls(a, _) => {
                    std::net::TcpStream::connect(a.as_str()).map(drop)
                }
            };
        }
        let got = server.join().map_err(|_| "discard receiver panicked")?;
        report.received = Some(got.frames);
        if let Target::Unix(p) = &target {
            let _ = std::fs::remove_file(p);
        }
    }
    // --verify (verify.rs) checks the receiver's counters against `report` in main().
    if let Some(path) = &args.verify_output {
        let timeout = Duration::try_from_secs_f64(args.verify_timeout).map_err(|_| {
            format!(
                "--verify-timeout: not a number of seconds: {}",
                args.verify_timeout
            )
        })?;
        let lines = verify_output::count_settled_lines(path, report.messages, timeout)
            .map_err(|e| format!("--verify-output {}: {e}", path.display()))?;
        report.received = Some(lines);
    }
    Ok(Some(report))
}

fn seconds(v: Option<f64>, flag: &str) -> Result<Option<Duration>, String> {
    match v {
        None => Ok(None),
        Some(s) => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| format!("{flag}: not a number of seconds: {s}")),
    }
}
