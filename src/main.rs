//! The `dnstap_receiver` binary: parse the command line, build the settings, then either run
//! offline (`-r FILE`) or start the daemon: listeners, reader threads (io_uring or epoll), the
//! writer thread, and the main thread waiting for SIGINT/SIGTERM (stop) or SIGHUP (reload the
//! configuration: [`Reloader`]) and printing statistics.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnstap_receiver::config::{reload, IoChoice, LowArgs, Resolved, Settings};
use dnstap_receiver::format::Formatter;
use dnstap_receiver::input::signals::{self, Signals};
use dnstap_receiver::input::{self, Backend, Listener, ReaderConf, ReaderCtx};
use dnstap_receiver::metrics::http::MetricsServer;
use dnstap_receiver::metrics::latency as metrics_latency;
use dnstap_receiver::metrics::traffic::TrafficCounter;
use dnstap_receiver::metrics::ReloadStats;
use dnstap_receiver::pipeline::ordered::{self, OrderedGen, WriterSlot};
use dnstap_receiver::pipeline::reload::{Handoff, Published};
use dnstap_receiver::pipeline::{self, OutputSlot, Pipeline, Pool, WriterGen, WriterTransforms};
use dnstap_receiver::sink::buffer::ChunkBuffer;
use dnstap_receiver::sink::forward::ForwardOutput;
use dnstap_receiver::sink::outputs::{self, BuiltOutputs, OutputConf};
use dnstap_receiver::sink::staged::StagedOutput;
use dnstap_receiver::sink::{StdoutSink, WriteOutput};
use dnstap_receiver::stats::{self, OutputStats, Snapshot, StatsRegistry};
use dnstap_receiver::sys::activation;
use dnstap_receiver::sys::notify::Notifier;
use dnstap_receiver::transform::{Chain, DropReason};
use dnstap_receiver::{log_debug, log_error, log_warn, offline};

/// The body of the writer thread.
type WriterLoop = Box<dyn FnOnce() -> std::io::Result<()> + Send>;
/// Buffers whose give-up deadline shutdown sets, each with its output's shutdown timeout.
type OutputBuffers = Vec<(Arc<ChunkBuffer>, Duration)>;

/// The periodic `-v` statistics line.
const STATS_EVERY: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let mut args = LowArgs::parse_env();
    if let Some(dir) = args.generate_assets.take() {
        return generate_assets(&dir);
    }
    if let Some(file) = args.check_config.take() {
        return check_config(args, file);
    }
    stats::set_verbose(args.verbose);
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            log_error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `--generate-assets DIR` (hidden): the man page and completions, for the package.
fn generate_assets(dir: &std::path::Path) -> ExitCode {
    use clap::CommandFactory;
    match dnstap_receiver::config::assets::write_assets(LowArgs::command(), dir) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            log_error!("--generate-assets {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

fn run(args: LowArgs) -> Result<ExitCode, BoxError> {
    let settings = Settings::build(&args)?;
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
        let names: Vec<String> = settings
            .resolved
            .outputs
            .iter()
            .map(outputs::describe)
            .collect();
        for l in metrics_latency::summaries(&metrics_latency::collect(&settings.transforms, &names))
        {
            log_debug!("{l}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    daemon(settings, args)
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
    let settings = match Settings::build_all(&args) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                log_error!("configuration invalid: {e}");
            }
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

fn daemon(settings: Settings, args: LowArgs) -> Result<ExitCode, BoxError> {
    // Before any thread exists, so that every thread inherits the mask.
    let signals = Signals::block()?;
    match input::raise_open_files_limit() {
        Ok((old, new)) if new > old => log_debug!("open files limit raised from {old} to {new}"),
        Ok(_) => {}
        Err(e) => log_warn!("cannot raise the open files limit: {e}"),
    }
    let r = &settings.resolved;
    let backend = choose_backend(r.io)?;

    // Sockets a systemd .socket unit passed replace binding (docs/operations.md).
    let activated = activation::take_listen_fds()?;
    let notifier = Notifier::from_env()?;
    let opened = Listener::open_all(&r.inputs, &settings.security, activated)?;
    let passed: Vec<String> = opened
        .iter()
        .filter(|(_, passed)| *passed)
        .map(|(l, _)| l.describe())
        .collect();
    let listeners = Arc::new(opened.into_iter().map(|(l, _)| l).collect::<Vec<_>>());

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
        let from = if passed.contains(&l.describe()) {
            " (socket from the service manager)"
        } else {
            ""
        };
        log_debug!("listening on {}{from}", l.describe());
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
    // Generation 0 is what was read at start; each reload publishes the next one.
    let reader_conf = Arc::new(Published::new(
        0,
        Arc::new(ReaderConf {
            filter: Arc::clone(&filter),
            security: Arc::clone(&security),
        }),
    ));
    let refusals = input::refusal_log();
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
    // Several writers: one output, of a kind they can feed in order (config checks it).
    let ordered_output = match resolved.outputs.as_slice() {
        [o] if resolved.writers > 1 => staged_format(o).map(|f| (o.clone(), f)),
        _ => None,
    };
    let (writer_loop, output_buffers, writer_reload): (WriterLoop, _, _) = match ordered_output {
        Some((conf, formatter)) => {
            let slots: Vec<_> = (0..resolved.writers)
                .map(|_| WriterSlot {
                    stats: registry.register(),
                    observer: observer(),
                })
                .collect();
            let out_stats = registry.register_output(&outputs::output_name(&conf));
            let gen = Arc::new(OrderedGen {
                formatter,
                chains: transforms.clone(),
            });
            let published = Arc::new(Published::new(0, Arc::clone(&gen)));
            let reload = Arc::clone(&published);
            let (run, buffers) = ordered_writers(&conf, wpipe, slots, out_stats, gen, reload)?;
            (
                run,
                buffers,
                WriterReload::Ordered {
                    published,
                    running: conf,
                },
            )
        }
        None => {
            let BuiltOutputs {
                mut outputs,
                buffers,
            } = outputs::build_outputs(&resolved.outputs, &registry)?;
            // build_outputs registered one set of counters per output, in order.
            let out_stats: Vec<_> = registry.outputs().into_iter().map(|(_, s)| s).collect();
            let running = resolved
                .outputs
                .iter()
                .cloned()
                .zip(out_stats.clone())
                .collect();
            let mut wt = WriterTransforms::new(transforms.clone(), out_stats);
            let (wstats, traffic) = (registry.register(), observer());
            let handoff = Arc::new(Handoff::new(0));
            let h = Arc::clone(&handoff);
            let run = move || match traffic {
                Some(mut t) => pipeline::run_writer_reloading(
                    &wpipe,
                    &mut outputs,
                    &mut wt,
                    &wstats,
                    &mut t,
                    Some(&h),
                ),
                None => pipeline::run_writer_reloading(
                    &wpipe,
                    &mut outputs,
                    &mut wt,
                    &wstats,
                    &mut (),
                    Some(&h),
                ),
            };
            (
                Box::new(run),
                buffers,
                WriterReload::Single { handoff, running },
            )
        }
    };
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(writer_loop)?;
    let reload_stats = Arc::new(ReloadStats::default());
    // The chains running now (a reload replaces them): their latency steps' counters are
    // on the metrics page and the -v lines.
    let live_chains = Arc::new(Mutex::new(transforms.clone()));
    if let Some(server) = metrics_server {
        let addr = server.local_addr()?;
        let scheme = server.scheme();
        let (reg, pipe) = (Arc::clone(&registry), Arc::clone(&pipeline));
        let reloads = Arc::clone(&reload_stats);
        let chains = Arc::clone(&live_chains);
        server.spawn(move || {
            let mut scrape = dnstap_receiver::metrics::collect(&reg, &pipe, &traffic_shared);
            scrape.reloads = Some(reloads.counts());
            let names: Vec<String> = scrape.outputs.iter().map(|(n, _)| n.clone()).collect();
            if let Ok(c) = chains.lock() {
                scrape.latency = metrics_latency::collect(&c, &names);
            }
            dnstap_receiver::metrics::render(&scrape)
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
            refusals: Arc::clone(&refusals),
            live: Some(Arc::clone(&reader_conf)),
            generation: 0,
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

    let mut reloader = Reloader {
        args,
        running: resolved,
        generation: 0,
        readers: reader_conf,
        writer: writer_reload,
        buffers: output_buffers,
        stats: reload_stats,
        registry: Arc::clone(&registry),
        tls_listeners: listeners.iter().any(|l| l.is_tls()),
        transforms_on: !transforms.is_empty(),
        chains: Arc::clone(&live_chains),
    };

    if let Err(e) = notifier.ready(&format!("receiving on {} input(s)", listeners.len())) {
        log_warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
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
            if signals::is_reload(sig) {
                let _ = notifier.reloading();
                reloader.reload();
                // A reload also reopens the file outputs' files (logrotate's SIGHUP).
                dnstap_receiver::sink::file::request_reopen();
                let _ = notifier.ready(&format!(
                    "receiving on {} input(s), configuration generation {}",
                    listeners.len(),
                    reloader.generation
                ));
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
            if reloader.transforms_on {
                stats::log_line(
                    "INFO",
                    format_args!(
                        "transform-counters: global filtered={}",
                        reasons(&now.transform_filtered)
                    ),
                );
            }
            let names: Vec<String> = registry.outputs().into_iter().map(|(n, _)| n).collect();
            if let Ok(c) = live_chains.lock() {
                for l in metrics_latency::summaries(&metrics_latency::collect(&c, &names)) {
                    stats::log_line("INFO", format_args!("{l}"));
                }
            }
            for (name, o) in registry.outputs() {
                stats::log_line("INFO", format_args!("{}", o.summary(&name)));
                for l in o.collector_summaries(&name) {
                    stats::log_line("INFO", format_args!("{l}"));
                }
                if reloader.transforms_on {
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
    let _ = notifier.stopping("stopping: finishing received frames");
    // Outputs that wait for a collector get their shutdown budget from now on.
    for (b, grace) in &reloader.buffers {
        b.give_up_at(Instant::now() + *grace);
    }
    // Shutdown is bounded unless the output is stuck; a second signal ends it at once.
    while !(reader_threads.iter().all(|t| t.is_finished()) && writer.is_finished()) {
        if let Some(sig) = signals.wait(Duration::from_millis(100)) {
            if sig == libc::SIGUSR1 {
                continue;
            }
            if signals::is_reload(sig) {
                log_warn!("SIGHUP during shutdown: no reload");
                continue;
            }
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
    let names: Vec<String> = registry.outputs().into_iter().map(|(n, _)| n).collect();
    if let Ok(c) = live_chains.lock() {
        for l in metrics_latency::summaries(&metrics_latency::collect(&c, &names)) {
            log_debug!("{l}");
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How a reload reaches the writer thread(s).
enum WriterReload {
    /// The single writer: it takes new chains and outputs between batches. `running`: the
    /// outputs it runs (as configured) and their counters, in its order.
    Single {
        handoff: Arc<Handoff<WriterGen>>,
        running: Vec<(OutputConf, Arc<OutputStats>)>,
    },
    /// Several writers for one output: they take new chains (and stdout's format) at the
    /// next ticket. `running`: the output they feed, as configured.
    Ordered {
        published: Arc<Published<OrderedGen>>,
        running: OutputConf,
    },
}

/// SIGHUP: builds new settings from the config file exactly as a start would (nothing
/// happens unless every check passes), then hands what can change in place to the threads
/// that run it, in one step each: the readers' prefilters and input security (TLS
/// certificates and keys, `allow-from`), the writer's transform chains and outputs. What
/// only a restart applies is logged and keeps its running value (`config::reload`).
struct Reloader {
    /// The command line: its flags still win over the file.
    args: LowArgs,
    /// The settings in force, as resolved.
    running: Resolved,
    generation: u64,
    readers: Arc<Published<ReaderConf>>,
    writer: WriterReload,
    /// The forward outputs' buffers, whose give-up deadline shutdown sets (those of outputs
    /// a reload started included).
    buffers: Vec<(Arc<ChunkBuffer>, Duration)>,
    stats: Arc<ReloadStats>,
    registry: Arc<StatsRegistry>,
    /// Whether a TLS listener runs (it needs a certificate in every configuration).
    tls_listeners: bool,
    /// Whether a transform chain runs (the `-v` lines then show their counters).
    transforms_on: bool,
    /// The chains running now, for the latency counters (metrics page, `-v` lines).
    chains: Arc<Mutex<dnstap_receiver::transform::Chains>>,
}

impl Reloader {
    fn reload(&mut self) {
        // systemd's Type=notify: the caller sends RELOADING=1 before and READY=1 after.
        match self.try_reload() {
            Ok(()) => {
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .generation
                    .store(self.generation, Ordering::Relaxed);
            }
            Err(why) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                // One line per error, each with its file, line and key.
                for e in why {
                    log_error!("reload refused, the running configuration is kept: {e}");
                }
            }
        }
    }

    /// Every reason a reload is refused, one line each.
    fn try_reload(&mut self) -> Result<(), Vec<String>> {
        let settings = Settings::build_all(&self.args)
            .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
        self.apply(settings).map_err(|e| vec![e])
    }

    /// Hands built settings over (or says why not).
    fn apply(&mut self, mut settings: Settings) -> Result<(), String> {
        if self.tls_listeners && settings.security.tls.is_none() {
            return Err(
                "a TLS input runs and the new configuration has no certificate for it \
                 (input-mode.tls-server-cert)"
                    .into(),
            );
        }
        let wanted_writers = settings.resolved.writers;
        let mut restart = reload::restart_only(&self.running, &settings.resolved);
        if wanted_writers != self.running.writers {
            restart.push(reload::RestartOnly {
                key: "writers",
                running: self.running.writers.to_string(),
                wanted: wanted_writers.to_string(),
            });
        }
        // From here on the settings say what will run: what needs a restart keeps its
        // running value.
        settings.resolved = keep_restart_only(&self.running, settings.resolved);
        let new = &settings.resolved;
        let next = self.generation + 1;
        // The writer's side first: it is the part that can still refuse.
        match &mut self.writer {
            WriterReload::Single { handoff, running } => {
                if handoff.is_pending() {
                    return Err(format!(
                        "the writer has not yet taken generation {} (blocked on an output?); \
                         send SIGHUP again later",
                        self.generation
                    ));
                }
                let plan = plan_outputs(running, &new.outputs, &self.registry)?;
                let gen = WriterGen {
                    chains: settings.transforms.clone(),
                    outputs: plan.slots,
                    output_stats: plan.stats,
                };
                if handoff.offer(next, gen).is_err() {
                    return Err("another reload is being applied".into());
                }
                *running = plan.running;
                self.buffers.extend(plan.buffers);
            }
            WriterReload::Ordered { published, running } => {
                // The output keeps running: stdout may change its format, a forward or
                // Kafka output must stay as it is (its connections belong to it).
                let formatter = match new.outputs.as_slice() {
                    [o @ OutputConf::Stdout(_)] if matches!(running, OutputConf::Stdout(_)) => {
                        staged_format(o)
                    }
                    [o] if o == running => staged_format(o),
                    _ => None,
                };
                let formatter = match formatter {
                    Some(f) if wanted_writers > 1 => f,
                    _ => {
                        return Err(format!(
                            "{} writer threads run {}; the new outputs or transforms need \
                             one writer or a new output: restart to apply them",
                            self.running.writers,
                            outputs::output_name(running)
                        ))
                    }
                };
                published.publish(
                    next,
                    Arc::new(OrderedGen {
                        formatter,
                        chains: settings.transforms.clone(),
                    }),
                );
            }
        }
        let lines = summary(&settings);
        let Settings {
            resolved,
            filter,
            security,
            transforms,
            ..
        } = settings;
        // The readers: the new prefilters and input security, between two receives.
        self.readers.publish(
            next,
            Arc::new(ReaderConf {
                filter: Arc::new(filter),
                security: Arc::new(security),
            }),
        );
        stats::set_verbose(resolved.verbose);
        self.transforms_on = !transforms.is_empty();
        if let Ok(mut c) = self.chains.lock() {
            *c = transforms;
        }
        for r in &restart {
            log_warn!("reload: {r}");
        }
        self.running = resolved;
        self.generation = next;
        stats::log_line(
            "INFO",
            format_args!(
                "reload: configuration generation {next} applied from {}",
                self.args
                    .config
                    .as_deref()
                    .map_or("the command line".into(), |p| p.display().to_string())
            ),
        );
        for l in lines {
            log_debug!("reload: {l}");
        }
        Ok(())
    }
}

/// The new settings as they run: what only a restart applies keeps its running value, so
/// the next reload compares with what runs.
fn keep_restart_only(running: &Resolved, new: Resolved) -> Resolved {
    let r = running.clone();
    let mut security = new.security;
    security.unix_mode = r.security.unix_mode;
    security.unix_owner = r.security.unix_owner;
    security.unix_group = r.security.unix_group;
    security.reuse_port = r.security.reuse_port;
    Resolved {
        inputs: r.inputs,
        io: r.io,
        threads: r.threads,
        writers: r.writers,
        writers_set: r.writers_set,
        queue_capacity: r.queue_capacity,
        policy: r.policy,
        buffer_size: r.buffer_size,
        max_frame_size: r.max_frame_size,
        metrics: r.metrics,
        security,
        ..new
    }
}

/// The format the ordered writers run for `o`, when it is an output they can feed (stdout,
/// forward, Kafka; see `sink::staged`).
fn staged_format(o: &OutputConf) -> Option<Formatter> {
    use dnstap_receiver::format::FormatKind;
    use dnstap_receiver::sink::kafka::ValueKind;
    match o {
        OutputConf::Stdout(kind) => Some(Formatter::new(*kind)),
        OutputConf::Forward(c) => Some(Formatter::new(c.format)),
        // A raw value is not formatted; the stager ignores this one.
        OutputConf::Kafka(k) => Some(Formatter::new(match k.value {
            ValueKind::JsonFull => FormatKind::JsonFull,
            ValueKind::Json | ValueKind::Raw => FormatKind::Json,
        })),
        OutputConf::Syslog(_) | OutputConf::File(_) | OutputConf::Relay(_) => None,
    }
}

/// Starts the one output the ordered writers feed, and returns the writers' loop over it
/// and the buffers whose give-up deadline shutdown sets.
fn ordered_writers<O: pipeline::Observer + Send + 'static>(
    conf: &OutputConf,
    p: Arc<Pipeline>,
    slots: Vec<WriterSlot<O>>,
    stats: Arc<OutputStats>,
    gen: Arc<OrderedGen>,
    reload: Arc<Published<OrderedGen>>,
) -> Result<(WriterLoop, OutputBuffers), BoxError> {
    fn run<S: StagedOutput + 'static, O: pipeline::Observer + Send + 'static>(
        p: Arc<Pipeline>,
        slots: Vec<WriterSlot<O>>,
        out: S,
        stats: Arc<OutputStats>,
        gen: Arc<OrderedGen>,
        reload: Arc<Published<OrderedGen>>,
    ) -> WriterLoop {
        Box::new(move || {
            ordered::run_ordered_writers_reloading(&p, slots, out, stats, gen, Some(reload))
        })
    }
    match conf {
        OutputConf::Stdout(kind) => {
            let out = WriteOutput::new(
                "stdout",
                Formatter::new(*kind),
                StdoutSink::open()?,
                Arc::clone(&stats),
            );
            Ok((run(p, slots, out, stats, gen, reload), Vec::new()))
        }
        OutputConf::Forward(c) => {
            let out = ForwardOutput::start(c, Arc::clone(&stats))?;
            let buffers = out
                .buffers()
                .into_iter()
                .map(|b| (b, c.shutdown_timeout))
                .collect();
            Ok((run(p, slots, out, stats, gen, reload), buffers))
        }
        #[cfg(feature = "kafka")]
        OutputConf::Kafka(k) => {
            let out = dnstap_receiver::sink::kafka::KafkaOutput::new(k, Arc::clone(&stats))?;
            Ok((run(p, slots, out, stats, gen, reload), Vec::new()))
        }
        _ => Err(format!(
            "output {}: several writer threads cannot feed it",
            outputs::output_name(conf)
        )
        .into()),
    }
}

/// The spill directory of an output, if it has one.
fn spill_dir(o: &OutputConf) -> Option<&std::path::Path> {
    match o {
        OutputConf::Forward(c) => c.buffer.spill.as_ref().map(|s| s.dir.as_path()),
        OutputConf::Kafka(k) => k.spill.as_ref().map(|s| s.dir.as_path()),
        OutputConf::Syslog(c) => c.net.buffer.spill.as_ref().map(|s| s.dir.as_path()),
        OutputConf::Stdout(_) | OutputConf::File(_) | OutputConf::Relay(_) => None,
    }
}

/// The single writer's outputs after a reload.
struct OutputPlan {
    /// In the new order: a running output kept (same settings, same files' bytes), or a
    /// new one, started.
    slots: Vec<OutputSlot>,
    /// Their counters (a new output whose name ran before counts on from there).
    stats: Vec<Arc<OutputStats>>,
    /// What will run, as configured.
    running: Vec<(OutputConf, Arc<OutputStats>)>,
    /// The new forward outputs' buffers.
    buffers: Vec<(Arc<ChunkBuffer>, Duration)>,
}

/// Keeps every running output the new configuration still has unchanged, starts the others.
fn plan_outputs(
    running: &[(OutputConf, Arc<OutputStats>)],
    wanted: &[OutputConf],
    registry: &StatsRegistry,
) -> Result<OutputPlan, String> {
    // Which running output each wanted one is (same settings), if any.
    let mut taken = vec![false; running.len()];
    let same: Vec<Option<usize>> = wanted
        .iter()
        .map(|conf| {
            let j = (0..running.len()).find(|&j| !taken[j] && running[j].0 == *conf)?;
            taken[j] = true;
            Some(j)
        })
        .collect();
    // A spill directory has one owner: the output being removed still uses it until it
    // has finished, so a new output cannot open it in the same reload.
    for (conf, same) in wanted.iter().zip(&same) {
        let Some(dir) = same.is_none().then(|| spill_dir(conf)).flatten() else {
            continue;
        };
        let old = running
            .iter()
            .zip(&taken)
            .find(|((c, _), kept)| !**kept && spill_dir(c) == Some(dir));
        if let Some(((old, _), _)) = old {
            return Err(format!(
                "output {}: its spill directory {} is still used by {}, which this reload \
                 replaces: restart to apply, or give the new output another spill-dir",
                outputs::output_name(conf),
                dir.display(),
                outputs::output_name(old)
            ));
        }
    }
    let mut plan = OutputPlan {
        slots: Vec::with_capacity(wanted.len()),
        stats: Vec::with_capacity(wanted.len()),
        running: Vec::with_capacity(wanted.len()),
        buffers: Vec::new(),
    };
    for (conf, same) in wanted.iter().zip(same) {
        let stats = match same {
            Some(j) => {
                plan.slots.push(OutputSlot::Keep(j));
                Arc::clone(&running[j].1)
            }
            None => {
                let stats = registry.output_named(&outputs::output_name(conf));
                let mut built = BuiltOutputs {
                    outputs: Vec::new(),
                    buffers: Vec::new(),
                };
                outputs::build_output(conf, Arc::clone(&stats), &mut built)
                    .map_err(|e| format!("output {}: {e}", outputs::describe(conf)))?;
                plan.slots
                    .extend(built.outputs.into_iter().map(OutputSlot::New));
                plan.buffers.extend(built.buffers);
                log_debug!("reload: output {} starts", outputs::describe(conf));
                stats
            }
        };
        plan.stats.push(Arc::clone(&stats));
        plan.running.push((conf.clone(), stats));
    }
    for (j, (c, _)) in running.iter().enumerate() {
        if !taken[j] {
            log_debug!("reload: output {} stops", outputs::describe(c));
        }
    }
    Ok(plan)
}
