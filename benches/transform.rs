//! The transform stage per message: the domain-list verdict with 10 k and 1 M listed names
//! (the list's size must not change the cost), on the records of a lab capture. Also
//! prints how long loading the 1 M-name list took and the memory it holds.
//!
//! The listed names are synthetic (`nNNN.zoneMMM.example`, plus the capture's own zones so
//! some messages match); the query names are the capture's.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use dnstap_receiver::record::Record;
use dnstap_receiver::transform::domains::{DomainSet, Match};
use dnstap_receiver::transform::{Filtering, FilteringSpec, Verdict};

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
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(records.len() as u64));
    for (label, n) in [("10k", 10_000), ("1M", 1_000_000)] {
        let text = list(n);
        let start = std::time::Instant::now();
        let set = DomainSet::parse(Match::Subdomains, &text).expect("valid list");
        println!(
            "domain list {label}: {} names loaded in {:.2} s ({:?})",
            set.len(),
            start.elapsed().as_secs_f64(),
            set
        );
        let f = Filtering::new(&FilteringSpec {
            drop_domains: vec![set],
            ..FilteringSpec::default()
        });
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
        common::print_cpu_ns_per_msg(
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
    }
    let rcodes = Filtering::new(&FilteringSpec {
        keep_rcodes: Some(vec![0, 3]),
        drop_qtypes: vec![28],
        ..FilteringSpec::default()
    });
    g.bench_function("rcode_qtype", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| rcodes.check(r) == Verdict::Keep)
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, domain_lists);
criterion_main!(benches);
