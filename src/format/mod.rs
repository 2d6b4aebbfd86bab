//! Output formats: one record in, bytes appended to a caller's buffer. The format is chosen
//! once at start-up; nothing here allocates per record (numbers via itoa, strings escaped
//! straight into the buffer). Knows records, the DNS and dnstap name tables, and nothing of
//! sockets, queues or configuration files. Every field is described in `docs/formats.md`.
//!
//! - [`text`]: the seed's line, fields separated by one space.
//! - [`json`], [`yaml`]: the seed's eleven keys.
//! - [`full`]: every decoded field, nested, as JSON or YAML.
//! - [`dnscollector`], [`dnscollector_flat`]: DNS-collector's JSON record, nested and flat.
//! - [`directives`]: `text-format`, a line built from DNS-collector's text directives.
//! - [`dr4`]: python dnstap_receiver 4.7's JSON line.
//! - [`golang`]: what the golang `dnstap` CLI prints (`-q`, `-y`, `-j`), byte for byte.
//!
//! The seed formats share one field extraction ([`seed`]) written through a small
//! [`seed::Emit`] trait, monomorphised per format so no per-field branch is taken at run time.
#![forbid(unsafe_code)]

pub mod directives;
pub mod dnscollector;
pub mod dnscollector_flat;
pub mod dr4;
pub mod escape;
pub mod fragments;
pub mod full;
pub mod golang;
pub mod json;
pub mod seed;
pub mod text;
pub mod tree;
pub mod yaml;

use crate::record::Record;

/// The output formats (`output-format` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatKind {
    /// One line per record, as the seed prints it.
    Text,
    /// One JSON object per line with the seed's keys.
    Json,
    /// One YAML document per record with the seed's keys.
    Yaml,
    /// Every decoded field, nested, one JSON object per line.
    JsonFull,
    /// Every decoded field, nested, one YAML document per record.
    YamlFull,
    /// DNS-collector's nested JSON record (`dnscollector-json`).
    DnsCollectorJson,
    /// DNS-collector's flat JSON record (`dnscollector-flat-json`).
    DnsCollectorFlatJson,
    /// python dnstap_receiver 4.7's JSON line (`dr4-json`).
    Dr4Json,
    /// A `text-format` line. The compiled directives live for the rest of the process
    /// (config leaks each compiled format once, at start-up or reload), which keeps this
    /// enum `Copy` for the config and output code that passes it around.
    Directives(&'static directives::TextFormat),
    /// The golang `dnstap` CLI's quiet text (`dnstap -q`).
    GolangText,
    /// The golang `dnstap` CLI's YAML (`dnstap -y`).
    GolangYaml,
    /// The golang `dnstap` CLI's JSON (`dnstap -j`).
    GolangJson,
}

/// A compiled output format.
#[derive(Clone, Debug)]
pub struct Formatter {
    pub kind: FormatKind,
    /// 1 in how many records the transforms before this output keep by sampling (1: not
    /// sampled). The full formats show it as `filtering.sample-rate`; the seed formats have
    /// no place for it.
    pub sample_rate: u32,
}

impl Formatter {
    pub fn new(kind: FormatKind) -> Formatter {
        Formatter {
            kind,
            sample_rate: 1,
        }
    }

    /// The same format, for an output whose records are sampled 1 in `rate`.
    pub fn with_sample_rate(mut self, rate: u32) -> Formatter {
        self.sample_rate = rate.max(1);
        self
    }

    /// Appends one record (with its trailing newline) to `out`.
    #[inline]
    pub fn write(&self, rec: &Record<'_>, out: &mut Vec<u8>) {
        let extras = || dnscollector::Extras {
            sample_rate: self.sample_rate,
            latency_ns: rec.enrich.and_then(|e| e.latency_ns),
            timeout: rec.enrich.is_some_and(|e| e.timeout),
        };
        match self.kind {
            FormatKind::Text => text::write_record(rec, out),
            FormatKind::Json => json::write_record(rec, out),
            FormatKind::Yaml => yaml::write_record(rec, out),
            FormatKind::JsonFull => full::write_json(rec, self.sample_rate, out),
            FormatKind::YamlFull => full::write_yaml(rec, self.sample_rate, out),
            FormatKind::DnsCollectorJson => dnscollector::write_json(rec, &extras(), out),
            FormatKind::DnsCollectorFlatJson => {
                dnscollector_flat::write_flat_json(rec, &extras(), out)
            }
            FormatKind::Dr4Json => dr4::write_record(rec, &extras(), out),
            FormatKind::Directives(t) => t.write(rec, &extras(), out),
            FormatKind::GolangText => golang::write_text(rec, out),
            FormatKind::GolangYaml => golang::write_yaml(rec, out),
            FormatKind::GolangJson => golang::write_json(rec, out),
        }
    }
}
