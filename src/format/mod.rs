//! Output formats: one record in, bytes appended to a caller's buffer. The format is chosen
//! once at start-up; nothing here allocates per record (numbers via itoa, strings escaped
//! straight into the buffer).
//!
//! CONTRACT STUB: the format helper replaces the bodies.
#![forbid(unsafe_code)]

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
}

/// A compiled output format.
#[derive(Clone, Debug)]
pub struct Formatter {
    pub kind: FormatKind,
}

impl Formatter {
    pub fn new(kind: FormatKind) -> Formatter {
        Formatter { kind }
    }

    /// Appends one record (with its trailing newline) to `out`.
    pub fn write(&self, _rec: &Record<'_>, _out: &mut Vec<u8>) {
        todo!("format helper")
    }
}
