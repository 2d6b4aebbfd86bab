//! The seed's JSON line: one object per record, the seed's keys in the seed's order, with
//! the separators of Python's `json.dumps` (`", "` and `": "`), so existing consumers keep
//! working:
//!
//! ```text
//! {"identity": "lab-nsd", "query-name": "example.test.", "query-type": "SOA", "source-ip": "127.0.0.1", "message": "AUTH_QUERY", "protocol": "IP4", "transport": "UDP", "source-port": 59351, "length": 41, "timestamp": "2026-11-25T17:40:25.684636+00:00", "code": "NOERROR"}
//! ```
//!
//! `source-port` and `length` are numbers, or the string `"-"` when absent, as the seed
//! produced them.
#![forbid(unsafe_code)]

use crate::format::escape;
use crate::format::seed::{self, Emit};
use crate::record::Record;

/// JSON values: strings quoted and escaped, numbers bare.
pub struct JsonEmit;

impl Emit for JsonEmit {
    #[inline]
    fn bytes(v: &[u8], out: &mut Vec<u8>) {
        escape::write_json_str(v, out);
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

/// Appends one JSON object and a newline.
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"identity\": ");
    seed::identity::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"query-name\": ");
    seed::qname::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"query-type\": ");
    seed::qtype::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"source-ip\": ");
    seed::source_ip::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"message\": ");
    seed::message::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"protocol\": ");
    seed::family::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"transport\": ");
    seed::transport::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"source-port\": ");
    seed::source_port::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"length\": ");
    seed::length::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"timestamp\": ");
    seed::timestamp::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"code\": ");
    seed::rcode::<JsonEmit>(rec, out);
    out.extend_from_slice(b"}\n");
}
