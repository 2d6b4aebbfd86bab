//! The `dnstap_receiver` binary: parse the command line, build the settings, then either run
//! offline (`-r FILE`) or start the daemon: listeners, reader threads (io_uring or epoll), the
//! writer thread, and the main thread waiting for SIGINT/SIGTERM and printing statistics.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnstap_receiver::config::{IoChoice, LowArgs, Settings};
use dnstap_receiver::format::Formatter;
use dnstap_receiver::input::signals::{self, Signals};
use dnstap_receiver::input::{self, Backend, Listener, ReaderCtx};
use dnstap_receiver::metrics::http::MetricsServer;
use dnstap_receiver::metrics::traffic::TrafficCounter;
use dnstap_receiver::pipeline::ordered::{self, WriterSlot};
use dnstap_receiver::pipeline::{self, Pipeline, Pool, WriterTransforms};
use dnstap_receiver::sink::outputs::{self, BuiltOutputs, OutputConf};
use dnstap_receiver::sink::StdoutSink;
use dnstap_receiver::stats::{self, Snapshot, StatsRegistry};
use dnstap_receiver::transform::{Chain, DropReason};
use dnstap_receiver::{log_debug, log_error, log_warn, offline};

/// The body of the writer thread.
type WriterLoop = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// The periodic `-v` statistics line.
const STATS_EVERY: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let mut args = LowArgs::parse_env();
    if let Some(file) = args.check_config.take() {
        return check_config(args, file);
    }
    stats::set_verbose(args.verbose);
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            log_error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &LowArgs) -> Result<ExitCode, BoxError> {
    let settings = Settings::build(args)?;
    stats::set_verbose(settings.resolved.verbose);

    if let Some(path) = &settings.resolved.offline {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, StdoutSink::open()?);
        // Offline prints what the stdout output would get: the global chain, then the stdout
        // output's own chain when the configuration has one.
        let stdout_at = settings
            .resolved
            .outputs
            .iter()
            .position(|o| matches!(o, OutputConf::Stdout(_)));
        let chains = offline::OfflineChains {
            global: &settings.transforms.global,
            output: stdout_at.map_or(Chain::empty(), |i| settings.transforms.output(i)),
        };
        let st = offline::run_with(
            path,
            &settings.filter,
            chains,
            &settings.formatter,
            &mut out,
        )?;
        out.flush()?;
        log_debug!(
            "{}: frames={} written={} filtered={} undecodable={} transform-filtered={} \
             output-filtered={}",
            path.display(),
            st.frames,
            st.written,
            st.filtered,
            st.undecodable,
            reasons(&st.transform_filtered),
            reasons(&st.output_filtered)
        );
        return Ok(ExitCode::SUCCESS);
    }
    daemon(settings)
}

/// `N` or `N (rcode=a qtype=b)`: a total and its non-zero reasons, for the `-v` lines.
fn reasons(counts: &[u64]) -> String {
    let total: u64 = counts.iter().sum();
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(" "))
    }
}

/// What the settings would run, one line each (beyond the listeners and the I/O back-end,
/// which only exist once bound): the `-v` start-up lines and `--check-config`'s report.
fn summary(settings: &Settings) -> Vec<String> {
    let r = &settings.resolved;
    let mut out = Vec::new();
    out.push(format!(
        "filters: qname-regex={:?} dnstap-identities={:?}",
        r.filter.qname_regex, r.filter.identities
    ));
    if let Some(t) = &r.security.tls {
        out.push(format!(
            "tls: certificate {}, client certificates {}",
            t.cert.display(),
            match &t.client_ca {
                Some(ca) => format!("required (CA {})", ca.display()),
                None => "not asked for".into(),
            }
        ));
    }
    if !r.security.allow_from.is_open() {
        let nets: Vec<String> = r
            .security
            .allow_from
            .networks()
            .iter()
            .map(|n| n.to_string())
            .collect();
        out.push(format!("allow-from (tcp/tls): {}", nets.join(" ")));
    }
    out.push(format!(
        "handshake timeout: {:.1} s; SO_REUSEPORT on tcp/tls inputs: {}",
        r.security.handshake_timeout.as_secs_f64(),
        if r.security.reuse_port { "on" } else { "off" }
    ));
    for o in &r.outputs {
        out.push(format!("output: {}", outputs::describe(o)));
    }
    let buffers = pipeline::pool_size(r.queue_capacity, r.threads) + (r.writers - 1);
    out.push(format!(
        "queue: {} batches, policy {:?}; pool: {} buffers of {} bytes ({} MiB bound); \
         max-frame-size {}",
        r.queue_capacity,
        r.policy,
        buffers,
        r.buffer_size,
        pipeline::memory_bound(buffers, r.buffer_size) >> 20,
        r.max_frame_size
    ));
    if !settings.transforms.global.is_empty() {
        out.push("transforms: a global chain runs before every output".into());
    }
    for (i, o) in r.outputs.iter().enumerate() {
        if !settings.transforms.output(i).is_empty() {
            out.push(format!(
                "transforms: output {} has its own chain",
                outputs::describe(o)
            ));
        }
    }
    out
}

/// `--check-config [FILE]`: build the settings as a start would (files read, names looked
/// up, lists loaded; nothing bound), then say what would run, or why it would not.
fn check_config(mut args: LowArgs, file: Option<std::path::PathBuf>) -> ExitCode {
    if let Some(file) = file {
        match &args.config {
            Some(c) if *c != file => {
                log_error!(
                    "--check-config {} and -c {}: name the config file once",
                    file.display(),
                    c.display()
                );
                return ExitCode::from(1);
            }
            _ => args.config = Some(file),
        }
    }
    let settings = match Settings::build(&args) {
        Ok(s) => s,
        Err(e) => {
            log_error!("configuration invalid: {e}");
            return ExitCode::from(1);
        }
    };
    let r = &settings.resolved;
    let mut out = Vec::new();
    match &args.config {
        Some(c) => out.push(format!("configuration OK: {}", c.display())),
        None => out.push("configuration OK: defaults and flags (no -c file)".into()),
    }
    if let Some(path) = &r.offline {
        out.push(format!("offline: would read {}", path.display()));
    } else {
        for i in &r.inputs {
            out.push(format!("input: {i}"));
        }
        out.push(format!(
            "io back-end: {:?} (chosen at start), {} reader thread(s), {} writer thread(s)",
            r.io, r.threads, r.writers
        ));
    }
    out.extend(summary(&settings));
    if let Some(m) = &r.metrics {
        out.push(format!("metrics: {m:?}"));
    }
    let mut stdout = std::io::stdout().lock();
    for line in out {
        if writeln!(stdout, "{line}").is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

fn choose_backend(choice: IoChoice) -> Result<Backend, BoxError> {
    match choice {
        IoChoice::Epoll => Ok(Backend::Epoll),
        IoChoice::Uring => match input::uring_available() {
            Ok(()) => Ok(Backend::Uring),
            Err(e) => Err(format!("--io uring: io_uring is not available here: {e}").into()),
        },
        IoChoice::Auto => match input::uring_available() {
            Ok(()) => Ok(Backend::Uring),
            Err(e) => {
                log_warn!("io_uring is not available ({e}); using epoll");
                Ok(Backend::Epoll)
            }
        },
    }
}

fn daemon(settings: Settings) -> Result<ExitCode, BoxError> {
    // Before any thread exists, so that every thread inherits the mask.
    let signals = Signals::block()?;
    match input::raise_open_files_limit() {
        Ok((old, new)) if new > old => log_debug!("open files limit raised from {old} to {new}"),
        Ok(_) => {}
        Err(e) => log_warn!("cannot raise the open files limit: {e}"),
    }
    let r = &settings.resolved;
    let backend = choose_backend(r.io)?;

    let listeners = r
        .inputs
        .iter()
        .map(|i| Listener::bind_with(i, &settings.security))
        .collect::<Result<Vec<_>, _>>()?;
    let listeners = Arc::new(listeners);

    let readers = r.threads;
    let pool = Pool::new(
        // Each writer thread beyond the first holds one more batch at a time.
        pipeline::pool_size(r.queue_capacity, readers) + (r.writers - 1),
        r.buffer_size,
    );
    let pipeline = Arc::new(Pipeline::new(pool, r.queue_capacity, r.policy, readers));
    // Bound before any thread starts, so a bad address, password file or certificate stops
    // start-up.
    let metrics_server = match &r.metrics {
        Some(m) => Some(MetricsServer::bind(m)?),
        None => None,
    };

    log_debug!("dnstap_receiver {} starting", env!("CARGO_PKG_VERSION"));
    for l in listeners.iter() {
        log_debug!("listening on {}", l.describe());
    }
    log_debug!(
        "io back-end: {backend}, {readers} reader thread(s), {} writer thread(s)",
        r.writers
    );
    for line in summary(&settings) {
        log_debug!("{line}");
    }

    let Settings {
        resolved,
        filter,
        formatter: _,
        decoder,
        security,
        transforms,
    } = settings;
    let filter = Arc::new(filter);
    let security = Arc::new(security);
    let registry = Arc::new(StatsRegistry::default());
    let input_stats: Vec<_> = listeners
        .iter()
        .map(|l| registry.register_input(&l.describe()))
        .collect();
    let input_stats = Arc::new(input_stats);
    let stop = Arc::new(AtomicBool::new(false));

    let wpipe = Arc::clone(&pipeline);
    // Traffic is counted only when someone can see it: one counter per writer thread.
    let mut traffic_shared = Vec::new();
    let mut observer = || {
        metrics_server.is_some().then(|| {
            let (t, s) = TrafficCounter::new();
            traffic_shared.push(s);
            t
        })
    };
    // Several writers: stdout is then the only output (config checks it).
    let ordered_stdout = match resolved.outputs.as_slice() {
        [OutputConf::Stdout(kind)] if resolved.writers > 1 => Some(*kind),
        _ => None,
    };
    let (writer_loop, output_buffers): (WriterLoop, _) = match ordered_stdout {
        Some(kind) => {
            let slots: Vec<_> = (0..resolved.writers)
                .map(|_| WriterSlot {
                    stats: registry.register(),
                    observer: observer(),
                })
                .collect();
            let (sink, out_stats) = (StdoutSink::open()?, registry.register_output("stdout"));
            let chains = transforms.clone();
            let run = move || {
                ordered::run_ordered_writers_with(
                    &wpipe,
                    slots,
                    Formatter::new(kind),
                    sink,
                    out_stats,
                    chains,
                )
            };
            (Box::new(run), Vec::new())
        }
        None => {
            let BuiltOutputs {
                mut outputs,
                buffers,
            } = outputs::build_outputs(&resolved.outputs, &registry)?;
            // build_outputs registered one set of counters per output, in order.
            let out_stats: Vec<_> = registry.outputs().into_iter().map(|(_, s)| s).collect();
            let mut wt = WriterTransforms::new(transforms.clone(), out_stats);
            let (wstats, traffic) = (registry.register(), observer());
            let run = move || match traffic {
                Some(mut t) => {
                    pipeline::run_writer_with(&wpipe, &mut outputs, &mut wt, &wstats, &mut t)
                }
                None => pipeline::run_writer_with(&wpipe, &mut outputs, &mut wt, &wstats, &mut ()),
            };
            (Box::new(run), buffers)
        }
    };
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(writer_loop)?;
    if let Some(server) = metrics_server {
        let addr = server.local_addr()?;
        let scheme = server.scheme();
        let (reg, pipe) = (Arc::clone(&registry), Arc::clone(&pipeline));
        server.spawn(move || {
            dnstap_receiver::metrics::render(&dnstap_receiver::metrics::collect(
                &reg,
                &pipe,
                &traffic_shared,
            ))
        })?;
        log_debug!("metrics: {scheme}://{addr}/metrics");
    }

    let mut reader_threads = Vec::with_capacity(readers);
    for id in 0..readers {
        let ctx = ReaderCtx {
            id,
            listeners: Arc::clone(&listeners),
            pipeline: Arc::clone(&pipeline),
            filter: Arc::clone(&filter),
            decoder,
            stop: Arc::clone(&stop),
            stats: registry.register(),
            security: Arc::clone(&security),
            input_stats: Arc::clone(&input_stats),
        };
        let stop = Arc::clone(&stop);
        let t = std::thread::Builder::new()
            .name(format!("reader-{id}"))
            .spawn(move || {
                let pipeline = Arc::clone(&ctx.pipeline);
                let r = match backend {
                    Backend::Uring => input::uring::run(ctx),
                    Backend::Epoll => input::epoll::run(ctx),
                };
                if let Err(e) = &r {
                    log_error!("reader {id}: {e}");
                    stop.store(true, Ordering::Release);
                }
                pipeline.reader_done();
                r.is_ok()
            })?;
        reader_threads.push(t);
    }

    // The main thread: signals and statistics.
    let mut failed = false;
    let mut last = Instant::now();
    let mut prev = Snapshot::default();
    loop {
        if let Some(sig) = signals.wait(Duration::from_millis(200)) {
            if sig == libc::SIGUSR1 {
                log_debug!("SIGUSR1: file outputs reopen their files");
                dnstap_receiver::sink::file::request_reopen();
                continue;
            }
            log_debug!(
                "{}: stopping (finishing received frames)",
                signals::name(sig)
            );
            break;
        }
        if stop.load(Ordering::Acquire) {
            failed = true;
            break;
        }
        if writer.is_finished() {
            failed = true;
            break;
        }
        if stats::verbose() && last.elapsed() >= STATS_EVERY {
            let now = registry.snapshot();
            stats::log_line(
                "INFO",
                format_args!("{}", now.summary(&prev, last.elapsed().as_secs_f64())),
            );
            if !transforms.is_empty() {
                stats::log_line(
                    "INFO",
                    format_args!(
                        "transform-counters: global filtered={}",
                        reasons(&now.transform_filtered)
                    ),
                );
            }
            for (name, o) in registry.outputs() {
                stats::log_line("INFO", format_args!("{}", o.summary(&name)));
                for l in o.collector_summaries(&name) {
                    stats::log_line("INFO", format_args!("{l}"));
                }
                if !transforms.is_empty() {
                    let f: Vec<u64> = o
                        .filtered
                        .iter()
                        .map(|a| a.load(Ordering::Relaxed))
                        .collect();
                    stats::log_line(
                        "INFO",
                        format_args!("transform-counters: {name:?} filtered={}", reasons(&f)),
                    );
                }
            }
            prev = now;
            last = Instant::now();
        }
    }
    stop.store(true, Ordering::Release);
    // Outputs that wait for a collector get their shutdown budget from now on.
    for (b, grace) in &output_buffers {
        b.give_up_at(Instant::now() + *grace);
    }
    // Shutdown is bounded unless the output is stuck; a second signal ends it at once.
    while !(reader_threads.iter().all(|t| t.is_finished()) && writer.is_finished()) {
        if let Some(sig) = signals
            .wait(Duration::from_millis(100))
            .filter(|&s| s != libc::SIGUSR1)
        {
            log_error!(
                "{}: second signal during shutdown; exiting now",
                signals::name(sig)
            );
            return Ok(ExitCode::from(130));
        }
    }
    for t in reader_threads {
        match t.join() {
            Ok(true) => {}
            _ => failed = true,
        }
    }
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            log_error!("output: {e}");
            failed = true;
        }
        Err(_) => failed = true,
    }
    for l in listeners.iter() {
        l.cleanup();
    }
    let end = registry.snapshot();
    log_debug!("{}", end.summary(&prev, last.elapsed().as_secs_f64()));
    for (name, o) in registry.outputs() {
        log_debug!("{}", o.summary(&name));
        for l in o.collector_summaries(&name) {
            log_debug!("{l}");
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
