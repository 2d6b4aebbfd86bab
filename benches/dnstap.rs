//! dnstap decoding on real frames (the lab's unbound capture, all message types unbound
//! sends): the lazy view (prefilter path), the view plus the question name (what a qname
//! prefilter needs), and the two ways to build a `Record`, with and without the DNS parse.
//! Each iteration handles every frame of the capture once, and every value built goes
//! through `black_box` (so inlining cannot skip fields nobody reads); throughput is in messages
//! (`elements`) or payload bytes. ns/msg = time per iteration / number of frames.
//!
//! The capture is the repository's fixture `lab/captures/unbound-unix.fstrm`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnstap_receiver::dns;
use dnstap_receiver::dnstap::DnstapView;
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};
use dnstap_receiver::record::Record;

const CAPTURE: &str = "unbound-unix.fstrm";

fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab")
}

/// Data frame payloads of the capture, read with the crate's Frame Streams decoder and
/// copied out so each bench walks a plain list.
fn frames() -> Vec<Vec<u8>> {
    let path = lab_dir().join("captures").join(CAPTURE);
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &file[pos..];
        let step = decoder.decode(rest, &mut reply).expect("valid capture");
        pos += step.consumed;
        match step.event {
            Event::Data { payload } => out.push(rest[payload].to_vec()),
            Event::Control => {}
            Event::Finished | Event::NeedMore => break,
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();

    for (unit, throughput) in [
        ("msgs", Throughput::Elements(frames.len() as u64)),
        ("bytes", Throughput::Bytes(bytes)),
    ] {
        let mut g = c.benchmark_group(format!("dnstap/{unit}"));
        g.throughput(throughput);

        g.bench_function("view", |b| {
            b.iter(|| {
                let mut n = 0u32;
                for f in &frames {
                    let v = DnstapView::parse(black_box(f)).unwrap();
                    let m = v.message().unwrap().unwrap();
                    black_box(&m);
                    n = n.wrapping_add(m.message_type.unwrap_or(0));
                }
                n
            })
        });

        g.bench_function("view + qname", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for f in &frames {
                    let v = DnstapView::parse(black_box(f)).unwrap();
                    let m = v.message().unwrap().unwrap();
                    black_box(&m);
                    if let Some(Ok(msg)) = m.dns_message().map(dns::MessageView::parse) {
                        n += msg.question.map_or(0, |q| q.name.wire_len());
                    }
                }
                n
            })
        });

        g.bench_function("decode (quick-protobuf, with dns)", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for f in &frames {
                    let r = Record::decode(black_box(f)).unwrap();
                    black_box(&r);
                    n = n.wrapping_add(r.dns.map_or(0, |d| d.map_or(0, |d| d.header.id as usize)));
                }
                n
            })
        });

        g.bench_function("from_views (with dns)", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for f in &frames {
                    let v = DnstapView::parse(black_box(f)).unwrap();
                    let m = v.message().unwrap().unwrap();
                    black_box(&m);
                    let r = Record::from_views(&v, Some(&m)).unwrap();
                    black_box(&r);
                    n = n.wrapping_add(r.dns.map_or(0, |d| d.map_or(0, |d| d.header.id as usize)));
                }
                n
            })
        });

        g.bench_function("decode_fields (quick-protobuf)", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for f in &frames {
                    let r = Record::decode_fields(black_box(f)).unwrap();
                    black_box(&r);
                    n = n.wrapping_add(r.query_port.unwrap_or(0) as usize);
                }
                n
            })
        });

        g.bench_function("fields_from_views", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for f in &frames {
                    let v = DnstapView::parse(black_box(f)).unwrap();
                    let m = v.message().unwrap().unwrap();
                    black_box(&m);
                    let r = Record::fields_from_views(&v, Some(&m)).unwrap();
                    black_box(&r);
                    n = n.wrapping_add(r.query_port.unwrap_or(0) as usize);
                }
                n
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
