//! Prefilter verdicts on real payloads (unbound capture): ns per message for a filter
//! that rejects on the identity, one that rejects on the qname after walking it, one that
//! rejects on the qname's first label (scripts/perf.sh's filter), and one that accepts
//! every message.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use dnstap_receiver::filter::{Filter, FilterSpec, Verdict};

mod common;

fn verdicts(c: &mut Criterion) {
    let (bytes, frames) = common::capture("unbound-unix.fstrm");
    let mut g = c.benchmark_group("filter");
    g.throughput(Throughput::Elements(frames.len() as u64));
    let cases = [
        (
            "identity_reject",
            Some("lab-nsd"),
            None,
            Verdict::RejectIdentity,
        ),
        (
            "qname_reject",
            None,
            Some(r".*\.nowhere\.$"),
            Verdict::RejectQname,
        ),
        (
            // scripts/perf.sh's filter: decided at the first label of nearly every name.
            "qname_reject_early",
            None,
            Some(r"(?i)www\.ka[a-z]*\."),
            Verdict::RejectQname,
        ),
        (
            "accept",
            Some("lab-"),
            Some(r"(?i).*\.?test\.$|.*"),
            Verdict::Accept,
        ),
    ];
    for (name, identities, qname, expect) in cases {
        let f = Filter::compile(&FilterSpec {
            identities: identities.map(String::from),
            qname_regex: qname.map(String::from),
        })
        .expect("pattern");
        let hits = frames
            .iter()
            .filter(|r| f.check(&bytes[(*r).clone()]) == expect)
            .count();
        // The cases are written for the lab capture; another corpus (`BENCH_CAPTURE`, e.g.
        // the synthetic one) only reports how many messages got the expected verdict.
        if std::env::var_os("BENCH_CAPTURE").is_some() {
            println!("filter/{name}: {hits} of {} {expect:?}", frames.len());
        } else {
            assert!(
                hits * 10 >= frames.len() * 9,
                "{name}: {hits} of {}",
                frames.len()
            );
        }
        common::print_cpu_ns_per_msg(&format!("filter/{name}"), frames.len(), || {
            let mut n = 0usize;
            for r in &frames {
                n += usize::from(f.check(&bytes[r.clone()]) == expect);
            }
            std::hint::black_box(n);
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for r in &frames {
                    n += usize::from(f.check(&bytes[r.clone()]) == expect);
                }
                std::hint::black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, verdicts);
criterion_main!(benches);
