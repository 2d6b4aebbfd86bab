//! The receive path of one connection, without sockets, on a real capture held in memory:
//! bytes copied into pooled buffers as `recv` would, `Connection::on_recv` (decode + filter in
//! place, carry the straddling tail), then `Shipper::route` (zero-copy push or copy into the
//! batch buffer), and a consumer that returns buffers to the pool.
//!
//! `conn/recv_128k` uses the default 128 KiB buffers (bulk: batches shipped whole);
//! `conn/recv_4k` uses 4 KiB receives (the copy path). Throughput is reported in bytes/s and
//! frames/s. These back the `// PERF:` notes in `pipeline.rs`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnstap_receiver::filter::{Filter, FilterSpec};
use dnstap_receiver::framestream::DecoderConfig;
use dnstap_receiver::input::conn::Connection;
use dnstap_receiver::pipeline::{Pipeline, Pool, QueuePolicy, Shipper};
use dnstap_receiver::stats::ThreadStats;

fn capture(name: &str) -> Vec<u8> {
    // The repository's lab (lab/captures: fixtures recorded by lab/capture.sh).
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lab/captures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Feeds the whole stream through one connection in receives of `chunk` bytes.
fn run(p: &Pipeline, bytes: &[u8], chunk: usize, filter: &Filter) -> u64 {
    let buffer = p.pool.buffer_size();
    let stats = ThreadStats::default();
    let mut sh = Shipper::new(p);
    let mut conn = Connection::new("bench".into(), DecoderConfig::default(), buffer);
    let mut at = 0;
    let mut frames = 0u64;
    while at < bytes.len() {
        let Some(mut b) = p.pool.take() else { break };
        let off = conn.load_carry(&mut b);
        let n = (b.data.len() - off).min(chunk).min(bytes.len() - at);
        b.data[off..off + n].copy_from_slice(&bytes[at..at + n]);
        at += n;
        if conn.on_recv(&mut b, off + n, filter, &stats).is_err() {
            break;
        }
        frames += b.frames.len() as u64;
        sh.route(b, &stats);
        sh.flush(&stats);
        // The writer's side: take batches back.
        while let Some(b) = p.pop_for_bench() {
            p.pool.give(b);
        }
    }
    frames
}

fn bench(c: &mut Criterion) {
    let bytes = capture("unbound-unix.fstrm");
    let filter = Filter::compile(&FilterSpec::default()).expect("no filter");
    // Pools are built once: their buffers are allocated at start-up in the daemon too.
    let big = Pipeline::new(Pool::new(16, 128 << 10), 8, QueuePolicy::Drop, 1);
    let small = Pipeline::new(Pool::new(16, 8192), 8, QueuePolicy::Drop, 1);
    let frames = run(&big, &bytes, usize::MAX, &filter);
    assert_eq!(
        frames,
        run(&small, &bytes, 4096, &filter),
        "both paths see every frame"
    );
    let mut g = c.benchmark_group("conn");
    for (name, chunk, p) in [("recv_128k", usize::MAX, &big), ("recv_4k", 4096, &small)] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("{name}/bytes"), |b| {
            b.iter(|| black_box(run(p, &bytes, chunk, &filter)))
        });
        g.throughput(Throughput::Elements(frames));
        g.bench_function(format!("{name}/frames"), |b| {
            b.iter(|| black_box(run(p, &bytes, chunk, &filter)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
