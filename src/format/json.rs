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

use std::sync::OnceLock;

use crate::format::escape;
use crate::format::fragments::{SeedTables, Tails};
use crate::format::seed::{self, Emit};
use crate::record::Record;

/// JSON values: strings quoted and escaped, numbers bare.
pub struct JsonEmit;

impl Emit for JsonEmit {
    #[inline]
    fn bytes(v: &[u8], out: &mut Vec<u8>) {
        escape::write_json_str(v, out);
    }
}

/// Appends one JSON object and a newline.
pub fn write_record(rec: &Record<'_>, out: &mut Vec<u8>) {
    // PERF: the enumerated values (qtype, message type, family, protocol, rcode) and the
    // key after each come from tables as one fixed-size copy each, instead of a key, two
    // quotes and a variable-length name (a memmove call) per field; the records of real
    // DNS servers are small, so these pieces were a large share of the line
    // (benches/format.rs, format_real json against json_general).
    let t = tables();
    out.extend_from_slice(b"{\"identity\": ");
    seed::identity::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"query-name\": ");
    seed::qname::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"query-type\": ");
    match t.qtype(rec) {
        Some(f) => f.append(out),
        None => {
            seed::qtype::<JsonEmit>(rec, out);
            out.extend_from_slice(b", \"source-ip\": ");
        }
    }
    seed::source_ip::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"message\": ");
    match t.message(rec) {
        Some(f) => f.append(out),
        None => {
            seed::message::<JsonEmit>(rec, out);
            out.extend_from_slice(b", \"protocol\": ");
        }
    }
    match t.family(rec) {
        Some(f) => f.append(out),
        None => {
            seed::family::<JsonEmit>(rec, out);
            out.extend_from_slice(b", \"transport\": ");
        }
    }
    match t.transport(rec) {
        Some(f) => f.append(out),
        None => {
            seed::transport::<JsonEmit>(rec, out);
            out.extend_from_slice(b", \"source-port\": ");
        }
    }
    seed::source_port::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"length\": ");
    seed::length::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"timestamp\": ");
    seed::timestamp::<JsonEmit>(rec, out);
    out.extend_from_slice(b", \"code\": ");
    match t.rcode(rec) {
        Some(f) => f.append(out),
        None => {
            seed::rcode::<JsonEmit>(rec, out);
            out.extend_from_slice(b"}\n");
        }
    }
}

/// [`write_record`] through the general path alone, every field by `seed`: what it wrote
/// before its tables, kept as their reference (tests) and as the bench's "before"
/// (benches/format.rs, `json_general`).
pub fn write_record_general(rec: &Record<'_>, out: &mut Vec<u8>) {
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

/// The JSON line's tables: each value quoted, then the next key (or the line's end).
fn tables() -> &'static SeedTables {
    static TABLES: OnceLock<SeedTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        SeedTables::new::<JsonEmit>(&Tails {
            qtype: b", \"source-ip\": ",
            message: b", \"protocol\": ",
            family: b", \"transport\": ",
            transport: b", \"source-port\": ",
            rcode: b"}\n",
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{write_record, write_record_general};
    use crate::format::seed::fixtures;
    use crate::record::Record;

    fn same_as_general(rec: &Record<'_>) {
        let mut fast = b"prefix ".to_vec();
        write_record(rec, &mut fast);
        let mut want = b"prefix ".to_vec();
        write_record_general(rec, &mut want);
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&want)
        );
    }

    /// Every value the tables hold, their neighbours outside them (numbers, `-`), broken
    /// questions, timeouts: the table path writes what the general path writes.
    #[test]
    fn tables_write_what_the_general_path_writes() {
        crate::format::fragments::for_each_table_record(same_as_general);
    }

    fn obj(rec: &Record<'_>) -> (String, serde_json::Map<String, serde_json::Value>) {
        let mut v = Vec::new();
        write_record(rec, &mut v);
        let s = String::from_utf8(v).unwrap();
        assert!(s.ends_with("}\n") && s.matches('\n').count() == 1, "{s}");
        let m = serde_json::from_str(&s).unwrap();
        (s, m)
    }

    const KEYS: [&str; 11] = [
        "identity",
        "query-name",
        "query-type",
        "source-ip",
        "message",
        "protocol",
        "transport",
        "source-port",
        "length",
        "timestamp",
        "code",
    ];

    #[test]
    fn seed_example_object() {
        let msg = fixtures::google_query();
        let (s, _) = obj(&fixtures::seed_query(&msg));
        assert_eq!(
            s,
            "{\"identity\": \"dev-centos8\", \"query-name\": \"ns2.google.com.\", \
             \"query-type\": \"A\", \"source-ip\": \"-\", \"message\": \"RESOLVER_QUERY\", \
             \"protocol\": \"IP4\", \"transport\": \"UDP\", \"source-port\": \"-\", \
             \"length\": 43, \"timestamp\": \"2020-09-16T18:51:53.547352+00:00\", \
             \"code\": \"NOERROR\"}\n"
        );
    }

    #[test]
    fn keys_in_order_and_values_escaped() {
        let msg = fixtures::odd_msg();
        let (s, m) = obj(&fixtures::odd(&msg));
        let mut at = 0;
        for k in KEYS {
            let pos = s
                .find(&format!("\"{k}\": "))
                .unwrap_or_else(|| panic!("{k} in {s}"));
            assert!(pos >= at, "{k} out of order in {s}");
            at = pos;
        }
        assert_eq!(m.len(), 11);
        assert_eq!(m["identity"], "my \"lab\"\n");
        assert_eq!(m["query-name"], "a\\\"b.c\\\\d\\032e.");
        assert_eq!(m["query-type"], "TYPE65280");
        assert_eq!(m["source-ip"], "192.0.2.1");
        assert_eq!(m["message"], "99");
        assert_eq!(m["protocol"], "7");
        assert_eq!(m["transport"], "42");
        assert_eq!(m["source-port"], "-");
        assert_eq!(m["length"], 27);
        assert_eq!(m["code"], "13");

        let msg = fixtures::nxdomain_aaaa();
        let (_, m) = obj(&fixtures::v6_response(&msg));
        assert_eq!(m["source-port"], 53000);
        assert_eq!(m["source-ip"], "2001:db8::1");
        assert_eq!(m["code"], "NXDOMAIN");

        let (_, m) = obj(&Record::default());
        for k in KEYS {
            assert_eq!(m[k], "-", "{k}");
        }
    }
}
