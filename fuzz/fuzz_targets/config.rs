//! The config loader on arbitrary files: `FileConfig::parse` (YAML), `config::resolve`
//! (merge with the flags, validate) and `Settings::compile` (filters into DFAs).
//!
//! Input layout: the first byte picks one of the command lines of [`args`] (the command line the file is merged
//! with), the rest is the file's text (inputs that are not UTF-8 are what `load` refuses
//! before parsing, so they stop here).
//!
//! Properties: no panic; every error names a reason; parsing is deterministic; a resolved
//! config obeys every documented bound (at least one input, no input twice, threads in
//! 1..=MAX_THREADS, queue, frame and buffer sizes in range, unix paths at most 107 bytes,
//! one transform section per output, header rcodes in 0..=15, message types in 1..=63);
//! a flag given on the command line wins over the file.
//!
//! Host names are replaced by `localhost` before resolving (see [`offline_hosts`]) so that
//! the fuzzer never sends DNS queries; the name-resolving branch is still taken.
#![no_main]

use dnstap_receiver::config::{
    resolve, FileConfig, FormatChoice, InputEntry, IoChoice, LowArgs, QueueChoice, Settings,
    MAX_BUFFER_SIZE, MAX_QUEUE_CAPACITY, MAX_THREADS, MAX_WRITERS, MIN_BUFFER_SIZE,
};
use dnstap_receiver::input::InputSpec;
use dnstap_receiver::pipeline::QueuePolicy;
use dnstap_receiver::sink::outputs::OutputConf;
use dnstap_receiver::framestream::DATA_FRAME_MAX_LIMIT;
use libfuzzer_sys::fuzz_target;

/// Command lines merged with the file, as clap would have parsed them.
fn args(pick: u8) -> LowArgs {
    match pick % 8 {
        1 => LowArgs {
            listen_address: Some("127.0.0.1".into()),
            port: Some(7000),
            ..LowArgs::default()
        },
        2 => LowArgs {
            unix_socket: Some("/tmp/fuzz-config.sock".into()),
            ..LowArgs::default()
        },
        3 => LowArgs {
            threads: Some(3),
            queue_policy: Some(QueueChoice::Drop),
            format: Some(FormatChoice::Json),
            io: Some(IoChoice::Epoll),
            ..LowArgs::default()
        },
        4 => LowArgs {
            verbose: true,
            port: Some(0),
            ..LowArgs::default()
        },
        5 => LowArgs {
            forward: Some("127.0.0.1:9".into()),
            ..LowArgs::default()
        },
        6 => LowArgs {
            read_file: Some("/nonexistent.fstrm".into()),
            format: Some(FormatChoice::YamlFull),
            ..LowArgs::default()
        },
        7 => LowArgs {
            listen_address: Some("::1".into()),
            ..LowArgs::default()
        },
        _ => LowArgs::default(),
    }
}

/// Longest filter pattern compiled: the regex compiler's own speed is not under test. (A
/// 180-byte pattern of the first long run took over 15 s under ASan to reach the DFA size
/// limit and be refused; `tests/fuzz_regressions.rs` keeps it.)
const MAX_PATTERN: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let args = args(pick);

    let parsed = FileConfig::parse(text);
    let again = FileConfig::parse(text);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{again:?}"),
        "parse is not deterministic"
    );
    let mut file = match parsed {
        Ok(file) => file,
        Err(e) => {
            assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
            let _ = e.to_string();
            return;
        }
    };
    offline_hosts(&mut file);

    let mut resolved = match resolve(&args, Some(&file), None) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
            let _ = e.to_string();
            return;
        }
    };
    assert!(!resolved.inputs.is_empty(), "resolved with no input");
    for (i, input) in resolved.inputs.iter().enumerate() {
        assert!(!resolved.inputs[..i].contains(input), "{input} twice");
        if let InputSpec::Unix(p) = input {
            let len = p.as_os_str().len();
            assert!((1..=107).contains(&len), "unix path of {len} bytes");
        }
    }
    assert!((1..=MAX_THREADS).contains(&resolved.threads));
    assert!((1..=MAX_WRITERS).contains(&resolved.writers));
    if resolved.writers > 1 {
        assert!(
            matches!(
                resolved.outputs.as_slice(),
                [OutputConf::Stdout(_) | OutputConf::Forward(_) | OutputConf::Kafka(_)]
            ),
            "several writers with outputs {:?}",
            resolved.outputs.len()
        );
    }
    assert!((1..=MAX_QUEUE_CAPACITY).contains(&resolved.queue_capacity));
    assert!((1..=DATA_FRAME_MAX_LIMIT).contains(&resolved.max_frame_size));
    assert!((MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&resolved.buffer_size));
    // Flags win over the file.
    if let Some(n) = args.threads {
        assert_eq!(resolved.threads, n);
    }
    if let Some(q) = args.queue_policy {
        assert_eq!(resolved.policy, q.policy());
    }
    if args.verbose {
        assert!(resolved.verbose);
    }
    if let Some(path) = &args.unix_socket {
        assert!(resolved.inputs.contains(&InputSpec::Unix(path.clone())));
    }
    // `-p` chooses the TCP port of the seed's single input, which is TCP only when no unix
    // socket is configured (the file's `input-mode.unix-socket` wins, as in the seed; found
    // by the second long run).
    let file_unix = file
        .input_mode
        .as_ref()
        .is_some_and(|m| m.unix_socket.is_some());
    // With the seed's `tls-support: true` that input is TLS (found by the CI smoke pass
    // once the TLS input existed).
    if args.port == Some(7000) && !file_unix {
        let primary = resolved
            .inputs
            .iter()
            .any(|i| matches!(i, InputSpec::Tcp(a) | InputSpec::Tls(a) if a.port() == 7000));
        assert!(primary, "-p 7000 lost: {:?}", resolved.inputs);
    }
    // Transforms: one section per output; values in the ranges the filters hold.
    assert_eq!(resolved.transforms.outputs.len(), resolved.outputs.len());
    let sections = std::iter::once(&resolved.transforms.global)
        .chain(resolved.transforms.outputs.iter())
        .flatten();
    for f in sections {
        let rcodes = f.drop_rcodes.iter().chain(f.keep_rcodes.iter().flatten());
        for &r in rcodes {
            assert!(r <= 15, "{}: rcode {r}", f.key);
        }
        for &t in f.message_types.iter().flatten() {
            assert!((1..=63).contains(&t), "{}: message type {t}", f.key);
        }
        for &r in f.downsample_keep_rcodes.iter().flatten() {
            assert!(r <= 15, "{}: downsample-keep-rcodes {r}", f.key);
        }
        for c in f.drop_queryip.iter().chain(f.keep_queryip.iter().flatten()) {
            let max = if c.net().is_ipv4() { 32 } else { 128 };
            assert!(c.prefix() <= max, "{}: network {c}", f.key);
        }
    }
    if resolved.policy == QueuePolicy::Drop {
        assert!(args.queue_policy.is_some() || file.queue.is_some());
    }

    // Compiling reads the list files a transform names: never let the fuzzer pick a file
    // (`/dev/zero` never ends); the read-error path is still taken.
    let global = resolved.transforms.global.iter_mut();
    for f in global.chain(resolved.transforms.outputs.iter_mut().flatten()) {
        for (_, path) in f.lists.iter_mut() {
            *path = "/nonexistent/fuzz-list.txt".into();
        }
    }
    let short = |p: &Option<String>| p.as_ref().is_none_or(|p| p.len() <= MAX_PATTERN);
    if short(&resolved.filter.qname_regex) && short(&resolved.filter.identities) {
        if let Err(e) = Settings::compile(resolved, None) {
            assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
            let _ = e.to_string();
        }
    }
});

/// Replaces every host that is not an IP literal with `localhost` (resolved from the hosts
/// file), keeping the port text, so that resolving never queries DNS.
fn offline_hosts(file: &mut FileConfig) {
    if let Some(m) = file.input_mode.as_mut() {
        if let Some(a) = m.local_address.as_mut() {
            if a.parse::<std::net::IpAddr>().is_err() {
                *a = "localhost".to_string();
            }
        }
    }
    if let Some(list) = file.inputs.as_mut() {
        for entry in list.iter_mut() {
            let InputEntry::Tcp(s) = entry else {
                continue;
            };
            if s.parse::<std::net::SocketAddr>().is_ok() {
                continue;
            }
            if let Some((host, port)) = s.rsplit_once(':') {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                if !host.is_empty() && bare.parse::<std::net::IpAddr>().is_err() {
                    *s = format!("localhost:{port}");
                }
            }
        }
    }
}
