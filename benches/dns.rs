//! Benchmarks for `src/dns` on real captured messages (the lab's unbound capture, queries
//! and responses mixed as the server sent them): the per-message hot path (view + qname)
//! and the full record walk with rdata presentation. Reported per message (throughput in
//! elements = messages).

#[path = "../tests/support/mod.rs"]
mod support;

use support::dns as dns_helper;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnstap_receiver::dns::{rdata, MessageView};
use std::hint::black_box;

fn messages() -> Vec<Vec<u8>> {
    let path = support::lab::lab_dir().join("captures/unbound-unix.fstrm");
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for frame in dns_helper::data_frames(&file) {
        out.extend(
            dns_helper::dns_messages(frame)
                .into_iter()
                .map(<[u8]>::to_vec),
        );
    }
    out.truncate(4096);
    out
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let mut g = c.benchmark_group("dns");
    g.throughput(Throughput::Elements(msgs.len() as u64));

    g.bench_function("parse+qname_labels", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for m in &msgs {
                if let Ok(v) = MessageView::parse(black_box(m)) {
                    if let Some(q) = v.question {
                        q.name.for_each_label(|l| total += l.len());
                        total += q.qtype as usize;
                    }
                }
            }
            total
        })
    });

    let mut out = Vec::with_capacity(1 << 16);
    g.bench_function("parse+qname_text", |b| {
        b.iter(|| {
            out.clear();
            for m in &msgs {
                if let Ok(v) = MessageView::parse(black_box(m)) {
                    if let Some(q) = v.question {
                        q.name.write_presentation(&mut out);
                    }
                }
            }
            out.len()
        })
    });

    g.bench_function("parse+full_rcode", |b| {
        b.iter(|| {
            let mut total = 0u32;
            for m in &msgs {
                if let Ok(v) = MessageView::parse(black_box(m)) {
                    total += v.rcode() as u32;
                }
            }
            total
        })
    });

    let mut out = Vec::with_capacity(1 << 20);
    g.bench_function("parse+records+rdata_text", |b| {
        b.iter(|| {
            out.clear();
            for m in &msgs {
                let Ok(v) = MessageView::parse(black_box(m)) else {
                    continue;
                };
                for (_, rr) in v.records().flatten() {
                    rr.name.write_presentation(&mut out);
                    let _ = rdata::write_presentation(m, rr.rtype, rr.rdata, &mut out);
                }
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
