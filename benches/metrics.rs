//! The cost of traffic metrics per record, on real frames: `TrafficCounter::observe` alone
//! over decoded records (1024 records of each of four lab captures, interleaved in blocks so
//! identities change as they do with several senders), and `Record::parse` with and without
//! `observe` (what the writer pays per message with `--metrics` on and off). The batch
//! publish is included once per 256 records, as in the pipeline.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use dnstap_receiver::metrics::traffic::TrafficCounter;
use dnstap_receiver::record::Record;

mod common;

fn traffic(c: &mut Criterion) {
    let captures: Vec<_> = [
        "unbound-unix.fstrm",
        "bind-unix.fstrm",
        "dnsdist-unix.fstrm",
        "nsd-unix.fstrm",
    ]
    .iter()
    .map(|n| common::capture(n))
    .collect();
    // Blocks of 256 frames from each capture in turn.
    let mut payloads: Vec<&[u8]> = Vec::new();
    for block in 0..4 {
        for (bytes, frames) in &captures {
            for r in frames.iter().skip(block * 256).take(256) {
                payloads.push(&bytes[r.clone()]);
            }
        }
    }
    let records: Vec<Record<'_>> = payloads
        .iter()
        .map(|p| Record::parse(p).expect("record"))
        .collect();
    let n = records.len();
    let (mut t, _shared) = TrafficCounter::new();

    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(n as u64));

    common::print_cpu_ns_per_msg("metrics/observe", n, || {
        for (i, (rec, p)) in records.iter().zip(&payloads).enumerate() {
            t.observe(rec, p);
            if i % 256 == 255 {
                t.publish();
            }
        }
    });
    g.bench_function("observe", |b| {
        b.iter(|| {
            for (i, (rec, p)) in records.iter().zip(&payloads).enumerate() {
                t.observe(rec, p);
                if i % 256 == 255 {
                    t.publish();
                }
            }
        })
    });

    // Baseline measured in the same run: the decode the writer does anyway.
    common::print_cpu_ns_per_msg("metrics/parse", n, || {
        for p in &payloads {
            std::hint::black_box(Record::parse(p).ok());
        }
    });
    common::print_cpu_ns_per_msg("metrics/parse + observe", n, || {
        for (i, p) in payloads.iter().enumerate() {
            if let Ok(rec) = Record::parse(p) {
                t.observe(&rec, p);
            }
            if i % 256 == 255 {
                t.publish();
            }
        }
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            for p in &payloads {
                std::hint::black_box(Record::parse(p).ok());
            }
        })
    });
    g.bench_function("parse + observe", |b| {
        b.iter(|| {
            for (i, p) in payloads.iter().enumerate() {
                if let Ok(rec) = Record::parse(p) {
                    t.observe(&rec, p);
                }
                if i % 256 == 255 {
                    t.publish();
                }
            }
        })
    });
    g.finish();
    std::hint::black_box(t.counts().len());
}

criterion_group!(benches, traffic);
criterion_main!(benches);
