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

use std::sync::OnceLock;

use crate::dns::Name;
use crate::format::escape;
use crate::format::fragments::{SeedTables, Tails};
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
    /// Names are already in dnspython's escaped form: written as they are.
    #[inline]
    fn name(name: &Name<'_>, out: &mut Vec<u8>) {
        name.write_presentation(out);
    }
}

/// Appends one line (with its newline).
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    // PERF: the enumerated values and the space after each come from tables as one
    // fixed-size copy each (see `json::write_record`; benches/format.rs, format_real text
    // against text_general).
    let t = tables();
    seed::timestamp::<TextEmit>(rec, out);
    out.push(b' ');
    seed::identity::<TextEmit>(rec, out);
    out.push(b' ');
    match t.message(rec) {
        Some(f) => f.append(out),
        None => {
            seed::message::<TextEmit>(rec, out);
            out.push(b' ');
        }
    }
    match t.rcode(rec) {
        Some(f) => f.append(out),
        None => {
            seed::rcode::<TextEmit>(rec, out);
            out.push(b' ');
        }
    }
    seed::source_ip::<TextEmit>(rec, out);
    out.push(b' ');
    seed::source_port::<TextEmit>(rec, out);
    out.push(b' ');
    match t.family(rec) {
        Some(f) => f.append(out),
        None => {
            seed::family::<TextEmit>(rec, out);
            out.push(b' ');
        }
    }
    match t.transport(rec) {
        Some(f) => f.append(out),
        None => {
            seed::transport::<TextEmit>(rec, out);
            out.push(b' ');
        }
    }
    match seed::dns_bytes(rec) {
        Some(m) => {
            TextEmit::number(m.len() as u64, out);
            out.extend_from_slice(b"b ");
        }
        None => out.extend_from_slice(b"- "),
    }
    seed::qname::<TextEmit>(rec, out);
    out.push(b' ');
    match t.qtype(rec) {
        Some(f) => f.append(out),
        None => {
            seed::qtype::<TextEmit>(rec, out);
            out.push(b'\n');
        }
    }
}

/// The text line's tables: each value, then a space (the line's end after the qtype).
fn tables() -> &'static SeedTables {
    static TABLES: OnceLock<SeedTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        SeedTables::new::<TextEmit>(&Tails {
            qtype: b"\n",
            message: b" ",
            family: b" ",
            transport: b" ",
            rcode: b" ",
        })
    })
}

/// [`write_record`] through the general path alone, every field by `seed`: what it wrote
/// before its tables, kept as their reference (tests) and as the bench's "before"
/// (benches/format.rs, `text_general`).
pub fn write_record_general(rec: &Record<'_>, out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::{write_record, write_record_general};
    use crate::format::seed::fixtures;
    use crate::record::Record;

    /// The table path writes what the general path writes, on every table entry and its
    /// neighbours (numbers, `-`, broken questions, timeouts).
    #[test]
    fn tables_write_what_the_general_path_writes() {
        crate::format::fragments::for_each_table_record(|rec| {
            let mut fast = b"prefix ".to_vec();
            write_record(rec, &mut fast);
            let mut want = b"prefix ".to_vec();
            write_record_general(rec, &mut want);
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&want)
            );
        });
    }

    fn line(rec: &Record<'_>) -> String {
        let mut v = Vec::new();
        write_record(rec, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn seed_example_line() {
        let msg = fixtures::google_query();
        assert_eq!(msg.len(), 43);
        assert_eq!(
            line(&fixtures::seed_query(&msg)),
            "2020-09-16T18:51:53.547352+00:00 dev-centos8 RESOLVER_QUERY NOERROR - - IP4 UDP \
             43b ns2.google.com. A\n"
        );
    }

    #[test]
    fn response_over_v6_shows_response_time() {
        let msg = fixtures::nxdomain_aaaa();
        assert_eq!(
            line(&fixtures::v6_response(&msg)),
            "2023-11-14T22:13:21.123456+00:00 lab-unbound CLIENT_RESPONSE NXDOMAIN 2001:db8::1 \
             53000 IP6 TCP 35b nope.example.test. AAAA\n"
        );
    }

    #[test]
    fn unknown_numbers_mapped_address_and_escapes() {
        let msg = fixtures::odd_msg();
        assert_eq!(
            line(&fixtures::odd(&msg)),
            "1970-01-01T00:00:00.000000+00:00 my\\x20\"lab\"\\x0a 99 13 192.0.2.1 - 7 42 \
             27b a\\\"b.c\\\\d\\032e. TYPE65280\n"
        );
    }

    #[test]
    fn missing_fields_are_dashes() {
        assert_eq!(line(&Record::default()), "- - - - - - - - - - -\n");
        let rec = Record {
            identity: Some(b""),
            query_message: Some(b"\x00"),
            ..Record::default()
        };
        assert_eq!(line(&rec), "- - - - - - - - 1b - -\n");
    }
}
