//! Output formats on real records (unbound capture: clients, resolver and forwarder
//! messages): ns per record for each format, written into a reused buffer.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use dnstap_receiver::format::directives::TextFormat;
use dnstap_receiver::format::{json, text};
use dnstap_receiver::format::{FormatKind, Formatter};
use dnstap_receiver::record::Record;

mod common;

fn formats(c: &mut Criterion) {
    let (bytes, frames) = common::capture("unbound-unix.fstrm");
    // The first 1024 records of the capture, so records and the frames they borrow stay in
    // cache as they do in the pipeline (a record is formatted right after it is decoded);
    // over the whole capture the bench measured cache misses on the record array instead.
    let records: Vec<Record<'_>> = frames
        .iter()
        .take(1024)
        .map(|r| Record::decode(&bytes[r.clone()]).expect("record"))
        .collect();
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(records.len() as u64));
    for (name, kind) in [
        ("text", FormatKind::Text),
        ("json", FormatKind::Json),
        ("yaml", FormatKind::Yaml),
        ("json_full", FormatKind::JsonFull),
        ("yaml_full", FormatKind::YamlFull),
        ("dnscollector_json", FormatKind::DnsCollectorJson),
        ("dnscollector_flat_json", FormatKind::DnsCollectorFlatJson),
        ("dr4_json", FormatKind::Dr4Json),
        (
            "text_format",
            FormatKind::Directives(Box::leak(Box::new(
                TextFormat::compile(
                    "timestamp-rfc3339ns identity operation rcode queryip queryport family \
                     protocol length-unit qname qtype latency",
                    " ",
                )
                .expect("directives"),
            ))),
        ),
        ("golang_text", FormatKind::GolangText),
        ("golang_yaml", FormatKind::GolangYaml),
        ("golang_json", FormatKind::GolangJson),
    ] {
        let f = Formatter::new(kind);
        let mut out = Vec::with_capacity(4 << 20);
        common::print_cpu_ns_per_msg(&format!("format/{name}"), records.len(), || {
            out.clear();
            for rec in &records {
                f.write(rec, &mut out);
            }
            std::hint::black_box(out.len());
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for rec in &records {
                    f.write(rec, &mut out);
                    if out.len() > (3 << 20) {
                        out.clear();
                    }
                }
                std::hint::black_box(out.len())
            })
        });
    }
    g.finish();
}

/// The seven servers' records (the real corpus of scripts/perf.sh): 147 from each lab
/// capture, mixed as they come; JSON and text against their general paths (every field
/// through `seed`, what they were before the tables), in the same run.
fn formats_real(c: &mut Criterion) {
    const SERVERS: [&str; 7] = [
        "unbound-unix.fstrm",
        "bind-unix.fstrm",
        "dnsdist-unix.fstrm",
        "nsd-unix.fstrm",
        "knot-unix.fstrm",
        "kresd-unix.fstrm",
        "pdns-recursor-unix.fstrm",
    ];
    let captures: Vec<_> = SERVERS
        .iter()
        .map(|name| {
            let path = common::lab_dir().join("captures").join(name);
            common::capture_file(&path)
        })
        .collect();
    let mut records: Vec<Record<'_>> = Vec::new();
    for (bytes, frames) in &captures {
        records.extend(
            frames
                .iter()
                .take(147)
                .map(|r| Record::parse(&bytes[r.clone()]).expect("record")),
        );
    }
    let mut g = c.benchmark_group("format_real");
    g.throughput(Throughput::Elements(records.len() as u64));
    type Writer = fn(&Record<'_>, &mut Vec<u8>);
    let writers: [(&str, Writer); 4] = [
        ("json", json::write_record),
        ("json_general", json::write_record_general),
        ("text", text::write_record),
        ("text_general", text::write_record_general),
    ];
    for (name, write) in writers {
        let mut out = Vec::with_capacity(4 << 20);
        common::print_cpu_ns_per_msg(&format!("format_real/{name}"), records.len(), || {
            out.clear();
            for rec in &records {
                write(rec, &mut out);
            }
            std::hint::black_box(out.len());
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for rec in &records {
                    write(rec, &mut out);
                }
                std::hint::black_box(out.len())
            })
        });
    }
    g.finish();
}

/// The writer thread's work per message with `--format json`: decode the payload into a
/// `Record`, then write its JSON line (pipeline.rs `decode_batch` feeding the JSON output).
/// On the first 4096 frames of the capture (`BENCH_CAPTURE=synth.fstrm` for the synthetic
/// corpus of scripts/perf.sh), each frame decoded afresh, as the writer does.
fn writer(c: &mut Criterion) {
    let (bytes, frames) = common::capture("unbound-unix.fstrm");
    let payloads: Vec<&[u8]> = frames.iter().take(4096).map(|r| &bytes[r.clone()]).collect();
    let mut g = c.benchmark_group("writer");
    g.throughput(Throughput::Elements(payloads.len() as u64));
    let mut out = Vec::with_capacity(4 << 20);
    let pass = |out: &mut Vec<u8>| {
        out.clear();
        let mut rec = Record::default();
        for p in &payloads {
            if rec.parse_in_place(std::hint::black_box(p)).is_ok() {
                json::write_record(&rec, out);
            }
        }
        std::hint::black_box(out.len());
    };
    common::print_cpu_ns_per_msg("writer/parse_json", payloads.len(), || pass(&mut out));
    g.bench_function("parse_json", |b| b.iter(|| pass(&mut out)));
    g.finish();
}

criterion_group!(benches, formats, formats_real, writer);
criterion_main!(benches);
