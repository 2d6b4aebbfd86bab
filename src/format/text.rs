//! The seed's text line, one per record, fields separated by one space:
//!
//! ```text
//! 2020-09-16T18:51:53.547352+00:00 dev-centos8 RESOLVER_QUERY NOERROR - - IP4 UDP 43b ns2.google.com. A
//! timestamp                        identity    message        code    ip port family transport length qname qtype
//! ```
//!
//! Every field is one token: the identity is escaped by [`escape::write_text_token`], the
//! qname is already in dnspython's escaped form, the rest are names and numbers.
#![forbid(unsafe_code)]

use crate::format::escape;
use crate::format::seed::{self, Emit};
use crate::record::Record;

/// Text tokens: names and numbers as they are, arbitrary bytes escaped into one token.
pub struct TextEmit;

impl Emit for TextEmit {
    #[inline]
    fn bytes(v: &[u8], out: &mut Vec<u8>) {
        escape::write_text_token(v, out);
    }
    #[inline]
    fn ascii(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
        f(out);
    }
    #[inline]
    fn number(v: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// Appends one line (with its newline).
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    seed::timestamp::<TextEmit>(rec, out);
    out.push(b' ');
    seed::identity::<TextEmit>(rec, out);
    out.push(b' ');
    seed::message::<TextEmit>(rec, out);
    out.push(b' ');
    seed::rcode::<TextEmit>(rec, out);
    out.push(b' ');
    seed::source_ip::<TextEmit>(rec, out);
    out.push(b' ');
    seed::source_port::<TextEmit>(rec, out);
    out.push(b' ');
    seed::family::<TextEmit>(rec, out);
    out.push(b' ');
    seed::transport::<TextEmit>(rec, out);
    out.push(b' ');
    match seed::dns_bytes(rec) {
        Some(m) => {
            TextEmit::number(m.len() as u64, out);
            out.push(b'b');
        }
        None => out.extend_from_slice(seed::ABSENT),
    }
    out.push(b' ');
    seed::qname::<TextEmit>(rec, out);
    out.push(b' ');
    seed::qtype::<TextEmit>(rec, out);
    out.push(b'\n');
}
