//! Frame Streams decoder throughput on a real capture held in memory.
//!
//! `decode/*`: the whole of `captures/unbound-unix.fstrm` (START, ~13k data frames, STOP)
//! decoded frame by frame, as the receiver's per-connection loop does once bytes are in its
//! buffer. Reported twice: bytes/s (`Throughput::Bytes`) and frames/s (`Elements`, from
//! which ns/frame = 1e9 / frames per second).
//! `decode_reads/*`: the same bytes arriving in 64 KiB reads, with the straddling frame moved
//! to the front of the buffer before each read (the copy the I/O layer makes).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnstap_receiver::framestream::{Decoder, DecoderConfig, Event};

fn capture(name: &str) -> Vec<u8> {
    // The repository's lab (lab/captures: fixtures recorded by lab/capture.sh).
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lab/captures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes `buf` completely; returns (data frames, payload bytes) so nothing is optimised out.
fn decode_all(buf: &[u8], reply: &mut Vec<u8>) -> (u64, u64) {
    let mut dec = Decoder::new(DecoderConfig::default());
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut at = 0;
    while let Ok(step) = dec.decode(&buf[at..], reply) {
        match step.event {
            Event::Data { payload } => {
                frames += 1;
                bytes += payload.len() as u64;
            }
            Event::NeedMore | Event::Finished => break,
            Event::Control => {}
        }
        at += step.consumed;
    }
    (frames, bytes)
}

/// The same stream in `read_size` reads through a fixed buffer, moving the partial frame to
/// the front before each read.
fn decode_in_reads(stream: &[u8], read_size: usize, buf: &mut Vec<u8>) -> u64 {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut reply = Vec::new();
    let mut frames = 0u64;
    let (mut start, mut end) = (0, 0);
    for chunk in stream.chunks(read_size) {
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        let need = end + chunk.len();
        if buf.len() < need {
            buf.resize(need, 0);
        }
        buf[end..need].copy_from_slice(chunk);
        end = need;
        while let Ok(step) = dec.decode(&buf[start..end], &mut reply) {
            match step.event {
                Event::NeedMore | Event::Finished => break,
                Event::Data { .. } => frames += 1,
                Event::Control => {}
            }
            start += step.consumed;
        }
    }
    frames
}

fn bench_decode(c: &mut Criterion) {
    let file = capture("unbound-unix.fstrm");
    let mut reply = Vec::new();
    let (frames, _) = decode_all(&file, &mut reply);
    assert!(frames > 10_000, "capture has {frames} frames");

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("unbound-unix/bytes", |b| {
        b.iter(|| decode_all(black_box(&file), &mut reply))
    });
    g.throughput(Throughput::Elements(frames));
    g.bench_function("unbound-unix/frames", |b| {
        b.iter(|| decode_all(black_box(&file), &mut reply))
    });
    g.finish();

    let mut g = c.benchmark_group("decode_reads");
    let mut buf = Vec::new();
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("unbound-unix/64KiB", |b| {
        b.iter(|| decode_in_reads(black_box(&file), 64 << 10, &mut buf))
    });
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
