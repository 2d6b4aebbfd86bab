//! The transform stage per message: the domain-list verdict with 10 k and 1 M listed names
//! (the list's size must not change the cost), on the records of a lab capture and on
//! synthetic queries (names under listed domains at several depths, listed names, and
//! misses with random labels; a third of them in mixed case). Also prints how long loading
//! the 1 M-name list took, the memory the set holds and the process's RSS growth.
//!
//! The listed names are synthetic (`nNNN.zoneMMM.example`, plus the capture's own zones so
//! some messages match); the query names are the capture's, or the synthetic ones. Beside
//! each domain-list case: the matcher alone on the names copied out (`_names`), the check
//! on records decoded just before it as the writer does (`_after_decode`), and decode +
//! check against the decode alone (`_decoded`, `decode_only`). `BENCH_CPU_ONLY=TEXT` prints
//! the CPU figures of the cases whose name holds TEXT only (with a criterion filter that
//! matches nothing, e.g. `-- NONE`, a quick run of just those).
//!
//! The reducer per message (default `unique-fields`, drained every 256 records as the
//! writer drains per batch, the window released at the end of each pass).
//!
//! The query-ip verdict with 10 k and 1 M networks (random IPv4 /16../32 and IPv6
//! /32../128), on the same records given client addresses drawn half from the listed
//! networks, half at random (the lab's captures have only 127.0.0.1 and ::1); and the
//! sampling decision (`downsample: 10`) per record.
//!
//! The enrichment steps (`normalize`, `user-privacy`: lowercase, tld + etld+1, truncation,
//! Crypto-PAn, HMAC-SHA256, minimized qname, and all together) per record; tld + etld+1
//! also on synthetic queries for names under the Public Suffix List's rules
//! (`list-names`: the capture's names are all under `test`, which the list lacks).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use dnstap_receiver::record::Enrichment;
use dnstap_receiver::record::Record;
use dnstap_receiver::transform::cryptopan::CryptoPan;
use dnstap_receiver::transform::domains::{DomainSet, Match};
use dnstap_receiver::transform::ipset::{Cidr, IpSet};
use dnstap_receiver::transform::normalize::{Normalize, SuffixList, BUILTIN_LIST};
use dnstap_receiver::transform::privacy::{Pseudonym, UserPrivacy};
use dnstap_receiver::transform::{Chain, Step};
use dnstap_receiver::transform::{Filtering, FilteringSpec, Reducer, ReducerSpec, Verdict};
use std::sync::Arc;
use std::time::Instant;

mod common;

fn list(n: usize) -> String {
    let mut s = String::with_capacity(n * 24);
    for i in 0..n {
        s.push_str(&format!("n{i}.zone{}.example\n", i % 997));
    }
    // names of the lab's zones, so the verdict is sometimes "drop"
    s.push_str("lab.test\nbind.test\n");
    s
}

fn domain_lists(c: &mut Criterion) {
    let (bytes, frames) = common::capture("unbound-unix.fstrm");
    let records: Vec<Record<'_>> = frames
        .iter()
        .filter_map(|r| Record::parse(&bytes[r.clone()]).ok())
        .collect();
    let mut rng = Rng(0xd0_3a1e);
    let synth_msgs = synthetic_queries(&mut rng, 20_000);
    let synth: Vec<Record<'_>> = synth_msgs.iter().map(|m| query_record(m)).collect();
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(records.len() as u64));
    for (label, n) in [("10k", 10_000), ("1M", 1_000_000)] {
        let rss0 = rss_kib();
        let text = list(n);
        let start = Instant::now();
        let set = DomainSet::parse(Match::Subdomains, &text).expect("valid list");
        let took = start.elapsed().as_secs_f64();
        let peak = rss_kib().saturating_sub(rss0);
        let text_bytes = text.len();
        drop(text);
        println!(
            "domain list {label}: {} names parsed in {took:.2} s; set {:.1} MiB; \
             RSS +{:.1} MiB with the list text ({:.1} MiB), +{:.1} MiB after it is freed ({:?})",
            set.len(),
            set.heap_bytes() as f64 / (1 << 20) as f64,
            peak as f64 / 1024.0,
            text_bytes as f64 / (1 << 20) as f64,
            rss_kib().saturating_sub(rss0) as f64 / 1024.0,
            set
        );
        let spec = FilteringSpec {
            drop_domains: vec![set],
            ..FilteringSpec::default()
        };
        let f = Filtering::new(&spec);
        let dropped = records
            .iter()
            .filter(|r| f.check(r) != Verdict::Keep)
            .count();
        println!(
            "domain list {label}: {dropped} of {} records dropped",
            records.len()
        );
        g.bench_function(format!("drop_domain_{label}"), |b| {
            b.iter(|| {
                records
                    .iter()
                    .filter(|r| f.check(r) == Verdict::Keep)
                    .count()
            })
        });
        print_cpu(
            &format!("transform/drop_domain_{label}"),
            records.len(),
            || {
                std::hint::black_box(
                    records
                        .iter()
                        .filter(|r| f.check(r) == Verdict::Keep)
                        .count(),
                );
            },
        );
        after_decode(
            &mut g,
            &format!("transform/drop_domain_{label}_after_decode"),
            frames.len(),
            &f,
            |range, out| {
                out.extend(
                    frames[range]
                        .iter()
                        .filter_map(|r| Record::parse(&bytes[r.clone()]).ok()),
                );
            },
        );
        after_decode(
            &mut g,
            &format!("transform/drop_domain_{label}_synthetic_after_decode"),
            synth_msgs.len(),
            &f,
            |range, out| {
                out.extend(synth_msgs[range].iter().map(|m| query_record(m)));
            },
        );
        where_the_time_goes(
            &mut g,
            label,
            &f,
            &spec.drop_domains[0],
            &bytes,
            &frames,
            &records,
            &synth_msgs,
            &synth,
        );
        let dropped = synth.iter().filter(|r| f.check(r) != Verdict::Keep).count();
        println!(
            "domain list {label}: {dropped} of {} synthetic queries dropped",
            synth.len()
        );
        g.bench_function(format!("drop_domain_{label}_synthetic"), |b| {
            b.iter(|| synth.iter().filter(|r| f.check(r) == Verdict::Keep).count())
        });
        print_cpu(
            &format!("transform/drop_domain_{label}_synthetic"),
            synth.len(),
            || {
                std::hint::black_box(synth.iter().filter(|r| f.check(r) == Verdict::Keep).count());
            },
        );
    }
    reducer(&mut g, "lab", &records);
    reducer(&mut g, "synthetic", &synth);
    let rcodes = Filtering::new(&FilteringSpec {
        keep_rcodes: Some(vec![0, 3]),
        drop_qtypes: vec![28],
        ..FilteringSpec::default()
    });
    query_ip(&mut g, &records);
    let sampled = Filtering::new(&FilteringSpec {
        downsample: 10,
        ..FilteringSpec::default()
    });
    let kept = records
        .iter()
        .filter(|r| sampled.check(r) == Verdict::Keep)
        .count();
    println!("downsample 10: {kept} of {} records kept", records.len());
    g.bench_function("downsample_10", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| sampled.check(r) == Verdict::Keep)
                .count()
        })
    });
    print_cpu("transform/downsample_10", records.len(), || {
        std::hint::black_box(
            records
                .iter()
                .filter(|r| sampled.check(r) == Verdict::Keep)
                .count(),
        );
    });
    g.bench_function("rcode_qtype", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| rcodes.check(r) == Verdict::Keep)
                .count()
        })
    });
    print_cpu("transform/rcode_qtype", records.len(), || {
        std::hint::black_box(
            records
                .iter()
                .filter(|r| rcodes.check(r) == Verdict::Keep)
                .count(),
        );
    });
    g.finish();
}

/// Records the writer decodes before it checks them: it decodes a batch's frames one by one
/// and runs the chains on each record at once, while the record and its payload are in the
/// caches. The plain `drop_domain_*` benches check records decoded long before (4.7 MB of
/// them for the lab, 7.5 MB synthetic, streamed from memory on every pass): a cost the
/// writer does not pay.
const DECODE_BATCH: usize = 256;

/// The check alone, on records decoded just before it, [`DECODE_BATCH`] at a time (the
/// decode not timed): the time of each batch's checks is taken with the thread's CPU clock
/// (two clock reads per batch, ~1-2 ns a record, counted in the figure).
fn after_decode<'a>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    total: usize,
    f: &Filtering,
    mut decode: impl FnMut(std::ops::Range<usize>, &mut Vec<Record<'a>>),
) {
    let mut recs: Vec<Record<'a>> = Vec::with_capacity(DECODE_BATCH);
    // One pass over the corpus; `clock` reads a clock, the checks' time is added to `spent`.
    let mut pass = |clock: &dyn Fn() -> u64, spent: &mut u64| -> usize {
        let mut kept = 0;
        for start in (0..total).step_by(DECODE_BATCH) {
            recs.clear();
            decode(start..(start + DECODE_BATCH).min(total), &mut recs);
            let t0 = clock();
            kept += recs.iter().filter(|r| f.check(r) == Verdict::Keep).count();
            *spent += clock() - t0;
        }
        kept
    };
    let wall_start = Instant::now();
    let wall = || wall_start.elapsed().as_nanos() as u64;
    g.bench_function(&name["transform/".len()..], |b| {
        b.iter_custom(|iters| {
            let mut spent = 0;
            for _ in 0..iters {
                std::hint::black_box(pass(&wall, &mut spent));
            }
            std::time::Duration::from_nanos(spent)
        })
    });
    if std::env::var("BENCH_CPU_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let cpu = common::thread_cpu_ns;
    let mut spent = 0;
    for _ in 0..3 {
        std::hint::black_box(pass(&cpu, &mut spent)); // warm-up
    }
    let mut slices = Vec::new();
    for _ in 0..10 {
        let (mut spent, mut n) = (0, 0u64);
        while spent < 200_000_000 {
            std::hint::black_box(pass(&cpu, &mut spent));
            n += total as u64;
        }
        slices.push(spent as f64 / n as f64);
    }
    slices.sort_by(|a, b| a.total_cmp(b));
    println!("{name}: {:.0} CPU ns/msg (median of 10 slices)", slices[5]);
}

/// The domain-list verdict taken apart, to see where a record's time goes:
/// - `_names`: the matcher alone, on the query names copied out beforehand (uncompressed,
///   back to back in one buffer: nothing of the record is read);
/// - `_decoded`: as the writer runs it, each record decoded (`Record::parse` of the
///   payload; for the synthetic queries, the record built around the message and its DNS
///   header and question parsed) and checked at once, while it is in the caches, against
///   `_decode_only`, the same loop without the check: the difference is what the check
///   costs the writer.
#[allow(clippy::too_many_arguments)]
fn where_the_time_goes(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    f: &Filtering,
    set: &DomainSet,
    bytes: &[u8],
    frames: &[std::ops::Range<usize>],
    records: &[Record<'_>],
    synth_msgs: &[Vec<u8>],
    synth: &[Record<'_>],
) {
    for (corpus, recs) in [("", records), ("_synthetic", synth)] {
        let names = FlatNames::of(recs);
        let name = format!("transform/drop_domain_{label}{corpus}_names");
        let pass = || names.iter().filter(|n| !set.matches(n.labels())).count();
        g.bench_function(&name["transform/".len()..], |b| b.iter(pass));
        print_cpu(&name, names.len(), || {
            std::hint::black_box(pass());
        });
    }
    // Without the check, the record still goes to memory (the writer hands it on by
    // reference), so that the decode is not optimised away.
    let kept = |check: bool, r: &Record<'_>| {
        if check {
            f.check(r) == Verdict::Keep
        } else {
            std::hint::black_box(r);
            true
        }
    };
    let lab = |check: bool| {
        frames
            .iter()
            .filter_map(|r| Record::parse(&bytes[r.clone()]).ok())
            .filter(|r| kept(check, r))
            .count()
    };
    let synthetic = |check: bool| {
        synth_msgs
            .iter()
            .map(|m| query_record(m))
            .filter(|r| kept(check, r))
            .count()
    };
    for (corpus, n, pass) in [
        ("", frames.len(), &lab as &dyn Fn(bool) -> usize),
        ("_synthetic", synth_msgs.len(), &synthetic),
    ] {
        for (what, check) in [("decode_only", false), ("decoded", true)] {
            let name = if check {
                format!("transform/drop_domain_{label}{corpus}_{what}")
            } else {
                format!("transform/{what}{corpus} (for drop_domain_{label}{corpus}_decoded)")
            };
            g.bench_function(&name["transform/".len()..], |b| b.iter(|| pass(check)));
            print_cpu(&name, n, || {
                std::hint::black_box(pass(check));
            });
        }
    }
}

/// Query names in uncompressed wire form, back to back (root label included).
struct FlatNames {
    bytes: Vec<u8>,
    /// Where each name starts in `bytes`.
    starts: Vec<usize>,
}

impl FlatNames {
    fn of(records: &[Record<'_>]) -> FlatNames {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for r in records {
            let Some(Ok(q)) = r
                .dns
                .as_ref()
                .map(|d| d.as_ref().map(|v| v.question.as_ref()))
            else {
                continue;
            };
            let Some(q) = q else { continue };
            starts.push(bytes.len());
            for l in q.name.labels() {
                bytes.push(l.len() as u8);
                bytes.extend_from_slice(l);
            }
            bytes.push(0);
        }
        FlatNames { bytes, starts }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn iter(&self) -> impl Iterator<Item = FlatName<'_>> {
        self.starts.iter().map(|&s| FlatName(&self.bytes[s..]))
    }
}

#[derive(Clone, Copy)]
struct FlatName<'a>(&'a [u8]);

impl<'a> FlatName<'a> {
    fn labels(self) -> impl Iterator<Item = &'a [u8]> + Clone {
        let mut at = 0;
        let b = self.0;
        std::iter::from_fn(move || {
            let len = usize::from(*b.get(at)?);
            let label = b.get(at + 1..at + 1 + len).filter(|_| len > 0)?;
            at += 1 + len;
            Some(label)
        })
    }
}

/// The reducer on `records` in passes: apply each record, drain every 256 (nothing due:
/// the window is 5 s), release everything at the end of the pass.
fn reducer(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    records: &[Record<'_>],
) {
    let r = Reducer::new(&ReducerSpec::default());
    let mut en = Enrichment::default();
    let mut pass = || {
        let now = Instant::now();
        let mut out = 0u64;
        for batch in records.chunks(256) {
            for rec in batch {
                en.reset();
                if r.apply(rec, &mut en, now) == Verdict::Keep {
                    out += 1;
                }
            }
            r.drain(now, false, &mut |_, _, _, _| out += 1);
        }
        r.drain(now, true, &mut |_, _, _, _| out += 1);
        out
    };
    println!(
        "reducer {label}: {} records out of {}",
        pass(),
        records.len()
    );
    g.bench_function(format!("reducer_{label}"), |b| b.iter(&mut pass));
    print_cpu(&format!("transform/reducer_{label}"), records.len(), || {
        std::hint::black_box(pass());
    });
}

/// VmRSS of this process, in KiB (0 when unknown).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// `n` DNS queries (wire form): 1 in 4 under a listed domain (one to three labels to its
/// left), 1 in 8 a listed name itself, 1 in 16 under a lab zone, the rest misses (two to
/// five random labels under com/net/org/example); a third in mixed case.
fn synthetic_queries(r: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    const TLDS: [&str; 4] = ["com", "net", "org", "example"];
    let word = |r: &mut Rng| -> String {
        let len = 3 + (r.next() % 12) as usize;
        (0..len)
            .map(|_| (b'a' + (r.next() % 26) as u8) as char)
            .collect()
    };
    (0..n)
        .map(|i| {
            let x = r.next();
            let listed = |r: &mut Rng| {
                let k = r.next() % 10_000;
                format!("n{k}.zone{}.example", k % 997)
            };
            let mut name = match x % 16 {
                0..=3 => {
                    let mut s = listed(r);
                    for _ in 0..1 + r.next() % 3 {
                        s = format!("{}.{s}", word(r));
                    }
                    s
                }
                4 | 5 => listed(r),
                6 => format!("{}.lab.test", word(r)),
                _ => {
                    let mut s = TLDS[(r.next() % 4) as usize].to_string();
                    for _ in 0..2 + r.next() % 4 {
                        s = format!("{}.{s}", word(r));
                    }
                    s
                }
            };
            if x % 3 == 0 {
                name = name
                    .chars()
                    .enumerate()
                    .map(|(j, c)| {
                        if j % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
            }
            let mut m = (i as u16).to_be_bytes().to_vec();
            m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
            for l in name.split('.') {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            m
        })
        .collect()
}

/// A client query record around a DNS message.
fn query_record(m: &[u8]) -> Record<'_> {
    let mut r = Record {
        identity: Some(b"synth"),
        message_type: Some(5),
        query_address: Some(&[192, 0, 2, 1]),
        query_port: Some(4242),
        query_message: Some(m),
        ..Record::default()
    };
    r.parse_dns();
    r
}

/// `n` queries for names under the built-in Public Suffix List's rules: half under common
/// suffixes (`com`, `co.uk`, `github.io`, ...), half under a rule of the list drawn at
/// random (two labels under a wildcard's base, one under an exception); a third of them in
/// mixed case.
fn list_queries(r: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    const COMMON: [&str; 8] = [
        "com",
        "net",
        "org",
        "de",
        "co.uk",
        "com.br",
        "github.io",
        "jp",
    ];
    let rules: Vec<String> = BUILTIN_LIST
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|l| !l.starts_with("//") && l.is_ascii())
        .map(|l| {
            if let Some(base) = l.strip_prefix("*.") {
                format!("w.{base}")
            } else {
                l.trim_start_matches('!').to_string()
            }
        })
        .collect();
    let word = |r: &mut Rng| -> String {
        let len = 3 + (r.next() % 10) as usize;
        (0..len)
            .map(|_| (b'a' + (r.next() % 26) as u8) as char)
            .collect()
    };
    (0..n)
        .map(|_| {
            let x = r.next();
            let suffix = if x % 2 == 0 {
                COMMON[(r.next() % COMMON.len() as u64) as usize]
            } else {
                rules[(r.next() % rules.len() as u64) as usize].as_str()
            };
            let mut name = format!("{}.{}.{suffix}", word(r), word(r));
            if x % 3 == 0 {
                name = name
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
            }
            let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for l in name.split('.') {
                m.push(l.len() as u8);
                m.extend_from_slice(l.as_bytes());
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            m
        })
        .collect()
}

/// xorshift64*: the networks and addresses are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `n` random networks: 3 in 4 IPv4 (/16../32), the rest IPv6 (/32../128).
fn networks(r: &mut Rng, n: usize) -> Vec<Cidr> {
    (0..n)
        .map(|_| {
            let x = r.next();
            let text = if x % 4 != 0 {
                let a = std::net::Ipv4Addr::from((x >> 16) as u32);
                format!("{a}/{}", 16 + (x >> 8) % 17)
            } else {
                let a = std::net::Ipv6Addr::from(u128::from(r.next()) << 64 | u128::from(x));
                format!("{a}/{}", 32 + (x >> 8) % 97)
            };
            Cidr::parse(&text).expect("valid network")
        })
        .collect()
}

/// The address bytes of a host inside `net` (its network address with random host bits).
fn host_in(r: &mut Rng, net: &Cidr) -> Vec<u8> {
    match net.net() {
        std::net::IpAddr::V4(a) => {
            let host = (r.next() as u32)
                .checked_shr(u32::from(net.prefix()))
                .unwrap_or(0);
            (u32::from(a) | host).to_be_bytes().to_vec()
        }
        std::net::IpAddr::V6(a) => {
            let bits = u128::from(r.next()) << 64 | u128::from(r.next());
            let host = bits.checked_shr(u32::from(net.prefix())).unwrap_or(0);
            (u128::from(a) | host).to_be_bytes().to_vec()
        }
    }
}

fn query_ip(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    records: &[Record<'_>],
) {
    for (label, n) in [("10k", 10_000), ("1M", 1_000_000)] {
        let mut r = Rng(0x5151_2024 + n as u64);
        let nets = networks(&mut r, n);
        // Client addresses: half inside a listed network, half random (v4 and v6 alike).
        let addrs: Vec<Vec<u8>> = (0..records.len())
            .map(|i| {
                if i % 2 == 0 {
                    let k = (r.next() % n as u64) as usize;
                    host_in(&mut r, &nets[k])
                } else if i % 4 == 1 {
                    (r.next() as u32).to_be_bytes().to_vec()
                } else {
                    (u128::from(r.next()) << 64 | u128::from(r.next()))
                        .to_be_bytes()
                        .to_vec()
                }
            })
            .collect();
        let recs: Vec<Record<'_>> = records
            .iter()
            .zip(&addrs)
            .map(|(rec, a)| {
                let mut rec = rec.clone();
                rec.query_address = Some(a);
                rec
            })
            .collect();
        let start = std::time::Instant::now();
        let set = IpSet::new(nets);
        println!(
            "query-ip {label}: compiled in {:.2} s ({set:?})",
            start.elapsed().as_secs_f64()
        );
        let f = Filtering::new(&FilteringSpec {
            drop_queryip: Some(set),
            ..FilteringSpec::default()
        });
        let dropped = recs.iter().filter(|r| f.check(r) != Verdict::Keep).count();
        println!(
            "query-ip {label}: {dropped} of {} records dropped",
            recs.len()
        );
        g.bench_function(format!("drop_queryip_{label}"), |b| {
            b.iter(|| recs.iter().filter(|r| f.check(r) == Verdict::Keep).count())
        });
        print_cpu(
            &format!("transform/drop_queryip_{label}"),
            recs.len(),
            || {
                std::hint::black_box(recs.iter().filter(|r| f.check(r) == Verdict::Keep).count());
            },
        );
    }
}

/// The latency transform per message (queries and responses alike), its table kept across
/// passes: unbound's records (responses carry both times; its client queries are paired
/// and taken out, its upstream ones not kept), knot's (every response paired with its
/// query), and knot's with `unanswered-queries` (each query's record kept in the arena).
fn latency(c: &mut Criterion) {
    use dnstap_receiver::record::Enrichment;
    use dnstap_receiver::transform::latency::key::Seeds;
    use dnstap_receiver::transform::{Latency, LatencySpec};

    let mut g = c.benchmark_group("transform");
    for (label, capture, unanswered) in [
        ("latency_in_message", "unbound-unix.fstrm", false),
        ("latency_matched", "knot-unix.fstrm", false),
        ("latency_unanswered", "knot-unix.fstrm", true),
    ] {
        let (bytes, frames) = common::capture(capture);
        let records: Vec<Record<'_>> = frames
            .iter()
            .filter_map(|r| Record::parse(&bytes[r.clone()]).ok())
            .collect();
        g.throughput(Throughput::Elements(records.len() as u64));
        let l = Latency::with_seeds(
            LatencySpec {
                unanswered,
                ..LatencySpec::default()
            },
            Seeds::fixed(1, 2),
        );
        let now = std::time::Instant::now();
        let mut en = Enrichment::default();
        let mut pass = || {
            let mut n = 0u64;
            for r in &records {
                en.reset();
                l.apply(r, &mut en, now);
                n += en.latency_ns.unwrap_or(0);
            }
            l.drain(now, false, &mut |_, _, _, _| {});
            n
        };
        pass();
        println!("{label}: {}", l.snapshot().summary());
        g.bench_function(label, |b| b.iter(&mut pass));
        print_cpu(&format!("transform/{label}"), records.len(), || {
            std::hint::black_box(pass());
        });
    }
    g.finish();
}

/// The enrichment steps per record (`normalize`, `user-privacy`), each alone and all
/// together, through a [`Chain`] as the writer runs them (the enrichment reset per record),
/// on the records of a lab capture. Crypto-PAn costs the same for every address of a
/// family, so the capture's loopback addresses are representative.
fn enrichment(c: &mut Criterion) {
    let (bytes, frames) = common::capture("unbound-unix.fstrm");
    let records: Vec<Record<'_>> = frames
        .iter()
        .filter_map(|r| Record::parse(&bytes[r.clone()]).ok())
        .collect();
    let list = Arc::new(SuffixList::parse(BUILTIN_LIST, false).expect("the built-in list"));
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let normalize = |lowercase, psl| {
        Step::Normalize(Normalize {
            lowercase,
            add_tld: psl,
            add_etld1: psl,
            list: psl.then(|| list.clone()),
        })
    };
    let privacy = |truncate: bool, pseudonym: Option<Pseudonym>, minimize: bool| {
        Step::UserPrivacy(UserPrivacy {
            truncate: truncate.then_some((24, 56)),
            pseudonym,
            minimize: minimize.then(|| list.clone()),
            cache: Default::default(),
        })
    };
    let pan = || Some(Pseudonym::CryptoPan(Box::new(CryptoPan::new(&key))));
    let rows: Vec<(&str, Chain)> = vec![
        (
            "normalize/qname-lowercase",
            Chain::new(vec![normalize(true, false)]),
        ),
        (
            "normalize/tld+etld1",
            Chain::new(vec![normalize(false, true)]),
        ),
        (
            "privacy/anonymize-ip",
            Chain::new(vec![privacy(true, None, false)]),
        ),
        (
            "privacy/crypto-pan",
            Chain::new(vec![privacy(false, pan(), false)]),
        ),
        (
            "privacy/hmac-sha256",
            Chain::new(vec![privacy(
                false,
                Some(Pseudonym::hmac_sha256(&key)),
                false,
            )]),
        ),
        (
            "privacy/minimize-qname",
            Chain::new(vec![privacy(false, None, true)]),
        ),
        (
            "enrich/all",
            Chain::new(vec![normalize(true, true), privacy(true, pan(), true)]),
        ),
    ];
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(records.len() as u64));
    let mut en = Enrichment::default();
    for (name, chain) in &rows {
        let pass = |en: &mut Enrichment| {
            let now = Instant::now();
            let mut kept = 0usize;
            for r in &records {
                en.reset();
                if chain.apply(r, en, now) == Verdict::Keep {
                    kept += 1;
                }
            }
            kept
        };
        g.bench_function(*name, |b| b.iter(|| pass(&mut en)));
        print_cpu(&format!("transform/{name}"), records.len(), || {
            std::hint::black_box(pass(&mut en));
        });
    }
    // The capture's names are all under `test`, which the list does not name (one probe
    // per name): the look-up again on names under the list's rules.
    let mut rng = Rng(0x5f1c_5001);
    let psl_msgs = list_queries(&mut rng, 20_000);
    let psl_records: Vec<Record<'_>> = psl_msgs.iter().map(|m| query_record(m)).collect();
    let chain = Chain::new(vec![normalize(false, true)]);
    let pass = |en: &mut Enrichment| {
        let now = Instant::now();
        let mut kept = 0usize;
        for r in &psl_records {
            en.reset();
            if chain.apply(r, en, now) == Verdict::Keep {
                kept += 1;
            }
        }
        kept
    };
    g.throughput(Throughput::Elements(psl_records.len() as u64));
    g.bench_function("normalize/tld+etld1/list-names", |b| {
        b.iter(|| pass(&mut en))
    });
    print_cpu(
        "transform/normalize/tld+etld1/list-names",
        psl_records.len(),
        || {
            std::hint::black_box(pass(&mut en));
        },
    );
    // The pseudonym functions alone, on addresses that never repeat (what a cache miss
    // costs): per address.
    let pan = CryptoPan::new(&key);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut addrs: Vec<(u32, u128)> = Vec::with_capacity(4096);
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        addrs.push((
            x as u32,
            u128::from(x) << 64 | u128::from(x.rotate_left(17)),
        ));
    }
    g.throughput(Throughput::Elements(addrs.len() as u64));
    g.bench_function("crypto-pan-uncached/ipv4", |b| {
        b.iter(|| {
            addrs
                .iter()
                .map(|a| pan.ipv4(a.0.to_be_bytes())[3])
                .fold(0u8, u8::wrapping_add)
        })
    });
    print_cpu(
        "transform/crypto-pan-uncached/ipv4 (per address)",
        addrs.len(),
        || {
            std::hint::black_box(
                addrs
                    .iter()
                    .map(|a| pan.ipv4(a.0.to_be_bytes())[3])
                    .fold(0u8, u8::wrapping_add),
            );
        },
    );
    print_cpu(
        "transform/crypto-pan-uncached/ipv6 (per address)",
        addrs.len(),
        || {
            std::hint::black_box(
                addrs
                    .iter()
                    .map(|a| pan.ipv6(a.1.to_be_bytes())[15])
                    .fold(0u8, u8::wrapping_add),
            );
        },
    );
    let hmac = Pseudonym::hmac_sha256(&key);
    print_cpu(
        "transform/hmac-sha256-uncached/ipv4 (per address)",
        addrs.len(),
        || {
            std::hint::black_box(
                addrs
                    .iter()
                    .map(|a| {
                        let mut b = a.0.to_be_bytes();
                        hmac.apply(&mut b);
                        b[3]
                    })
                    .fold(0u8, u8::wrapping_add),
            );
        },
    );
    g.finish();
}

criterion_group!(benches, domain_lists, latency, enrichment);
criterion_main!(benches);

/// [`common::print_cpu_ns_per_msg`], skipped when `BENCH_CPU_ONLY` is set and not part of
/// `name` (`BENCH_CPU_ONLY=drop_domain_1M_synthetic` with a criterion filter runs one case,
/// e.g. under `perf record`).
fn print_cpu(name: &str, per_pass: usize, pass: impl FnMut()) {
    if std::env::var("BENCH_CPU_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    common::print_cpu_ns_per_msg(name, per_pass, pass);
}
