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

#[cfg(test)]
mod tests {
    use super::write_record;
    use crate::format::seed::fixtures;
    use crate::record::Record;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum V {
        N(u64),
        S(String),
    }

    fn doc(rec: &Record<'_>) -> (String, BTreeMap<String, V>) {
        let mut v = Vec::new();
        write_record(rec, &mut v);
        let s = String::from_utf8(v).unwrap();
        let m = serde_saphyr::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (s, m)
    }

    #[test]
    fn tricky_values_stay_strings() {
        let msg = fixtures::odd_msg();
        let (s, m) = doc(&fixtures::odd(&msg));
        assert!(s.starts_with("---\nidentity: "), "{s}");
        assert_eq!(m["identity"], V::S("my \"lab\"\n".into()));
        assert_eq!(m["query-name"], V::S("a\\\"b.c\\\\d\\032e.".into()));
        assert_eq!(
            m["message"],
            V::S("99".into()),
            "an unknown number stays a string"
        );
        assert_eq!(m["source-port"], V::S("-".into()));
        assert_eq!(m["length"], V::N(27));
        let (_, m) = doc(&Record {
            identity: Some(b"NO"),
            ..Record::default()
        });
        assert_eq!(m["identity"], V::S("NO".into()));
        assert_eq!(m["code"], V::S("-".into()));
    }

    #[test]
    fn seed_example_document() {
        let msg = fixtures::google_query();
        let (s, _) = doc(&fixtures::seed_query(&msg));
        assert_eq!(
            s,
            "---\nidentity: \"dev-centos8\"\nquery-name: \"ns2.google.com.\"\nquery-type: \"A\"\n\
             source-ip: \"-\"\nmessage: \"RESOLVER_QUERY\"\nprotocol: \"IP4\"\n\
             transport: \"UDP\"\nsource-port: \"-\"\nlength: 43\n\
             timestamp: \"2020-09-16T18:51:53.547352+00:00\"\ncode: \"NOERROR\"\n"
        );
    }
}
