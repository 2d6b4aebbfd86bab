//! Full formats: every decoded field of a record, nested, as one JSON line or one YAML
//! document. Work in progress.
#![forbid(unsafe_code)]

use crate::record::Record;

pub fn write_json(rec: &Record<'_>, out: &mut Vec<u8>) {
    crate::format::json::write_record(rec, out)
}

pub fn write_yaml(rec: &Record<'_>, out: &mut Vec<u8>) {
    crate::format::yaml::write_record(rec, out)
}
