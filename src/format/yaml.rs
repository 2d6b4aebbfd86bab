//! The seed's YAML: one document per record, starting with `---`, the same keys in the same
//! order as the JSON line. Every string is double-quoted (so `NO`, `on`, `~`, `-`, `1e3` or
//! `a: b` can never be read as anything but a string by a YAML 1.1 or 1.2 parser); numbers
//! are bare.
//!
//! ```text
//! ---
//! identity: "lab-nsd"
//! query-name: "example.test."
//! ...
//! ```
#![forbid(unsafe_code)]

use crate::format::escape;
use crate::format::seed::{self, Emit};
use crate::record::Record;

/// YAML values: double-quoted scalars, bare numbers.
pub struct YamlEmit;

impl Emit for YamlEmit {
    #[inline]
    fn bytes(v: &[u8], out: &mut Vec<u8>) {
        escape::write_yaml_str(v, out);
    }
    #[inline]
    fn ascii(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
        out.push(b'"');
        let start = out.len();
        f(out);
        escape::escape_quotes_since(out, start);
        out.push(b'"');
    }
    #[inline]
    fn number(v: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// Appends one YAML document.
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"---\nidentity: ");
    seed::identity::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nquery-name: ");
    seed::qname::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nquery-type: ");
    seed::qtype::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nsource-ip: ");
    seed::source_ip::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nmessage: ");
    seed::message::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nprotocol: ");
    seed::family::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\ntransport: ");
    seed::transport::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nsource-port: ");
    seed::source_port::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\nlength: ");
    seed::length::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\ntimestamp: ");
    seed::timestamp::<YamlEmit>(rec, out);
    out.extend_from_slice(b"\ncode: ");
    seed::rcode::<YamlEmit>(rec, out);
    out.push(b'\n');
}
