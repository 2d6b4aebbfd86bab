//! The migration formats against their sources:
//! - `dnscollector-json` / `dnscollector-flat-json`: every key DNS-collector documents
//!   (docs/dnsjson.md, docs/formats.md of its repository) present with the documented JSON
//!   type on every record of every lab capture, and the documentation's own example records
//!   reproduced from equivalent messages (the documented differences listed where they are
//!   applied);
//! - `dr4-json`: line for line against python `dnstap-receiver==4.7.0`, installed from PyPI
//!   into a venv made here, run as a receiver with lab captures replayed into it;
//! - `text-format`: compile errors name the closest directive; lines of the documented
//!   examples;
//! - a DNS message whose question is cut keeps its header values in every format;
//! - none of them allocates per record (counting allocator, as tests/no_alloc.rs).

#![recursion_limit = "512"]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dnstap_receiver::dns::MessageView;
use dnstap_receiver::format::directives::TextFormat;
use dnstap_receiver::format::dnscollector::Extras;
use dnstap_receiver::format::{dnscollector, dnscollector_flat, dr4, FormatKind, Formatter};
use dnstap_receiver::record::{Record, Timestamp};
use serde_json::{json, Value};
use support::lab::{capture, capture_payloads, top_captures};

// Only the measuring thread counts.
#[global_allocator]
static GLOBAL: support::alloc::Counting = support::alloc::Counting;

// ---- helpers ----

fn nested(rec: &Record<'_>) -> Value {
    let mut out = Vec::new();
    dnscollector::write_json(rec, &Extras::default(), &mut out);
    assert!(out.ends_with(b"}\n") && out.iter().filter(|&&b| b == b'\n').count() == 1);
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

fn flat(rec: &Record<'_>) -> Value {
    let mut out = Vec::new();
    dnscollector_flat::write_flat_json(rec, &Extras::default(), &mut out);
    assert!(out.ends_with(b"}\n"));
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

/// The JSON type name of a value, as the schema checks compare them.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every path of a nested value (`dns.flags.qr`, `dns.resource-records.an[].rdata`) with
/// its type.
fn paths(v: &Value, prefix: &str, out: &mut Vec<(String, &'static str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push((p.clone(), kind(x)));
                paths(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

// ---- DNS-collector: documented schema ----

/// The nested record of DNS-collector's docs/dnsjson.md, with its types. Three documented
/// values are what older releases printed, and the tool's `DNSMessage` (dnsutils) now
/// writes otherwise; the schema follows the tool and the test says so:
/// `dns.malformed-packet` is a bool (documented `0`), `dnstap.latency` a number
/// (documented `"0.014617"`), and `dns.questions-count` is gone (now `dns.qdcount`).
fn documented_nested() -> Value {
    json!({
      "network": {"family": "INET", "protocol": "UDP", "query-ip": "192.168.1.210",
        "query-port": "60981", "response-ip": "192.168.1.210", "response-port": "53"},
      "dns": {"length": 51, "rcode": "NOERROR", "qname": "eu.org", "qtype": "A", "id": 23455,
        "qclass": "IN", "questions-count": 0,
        "flags": {"qr": true, "tc": false, "aa": false, "ra": true, "ad": true, "rd": true,
          "cd": true},
        "resource-records": {"an": [{"name": "eu.org", "rdatatype": "A", "ttl": 2797,
          "rdata": "78.194.169.74", "class": "IN"}], "ns": [], "ar": []},
        "malformed-packet": 0},
      "edns": {"udp-size": 512, "rcode": 0, "version": 0, "dnssec-ok": 0, "options": [
        {"code": 15, "name": "ERRORS",
         "data": "49152 - Provided ECS includes 32 bits, but no more than 24 are allowed."},
        {"code": 8, "name": "CSUBNET", "data": "192.168.0.0/32"}]},
      "dnstap": {"operation": "CLIENT_RESPONSE", "identity": "dnsdist1",
        "peer-name": "172.16.0.2", "version": "-", "extra": "-",
        "timestamp-rfc3339ns": "2021-12-27T14:33:44.559002118Z", "latency": "0.014617",
        "policy-rule": "-", "policy-type": "-", "policy-action": "-", "policy-match": "-",
        "policy-value": "-", "query-zone": "-"}
    })
}

/// The documented differences, applied to the documented record (see
/// [`documented_nested`]); each one is listed in docs/formats.md.
fn as_the_tool_prints_it(mut doc: Value) -> Value {
    doc["dns"]["malformed-packet"] = json!(false);
    doc["dns"]
        .as_object_mut()
        .unwrap()
        .remove("questions-count");
    // Renamed from INET/INET6 when DNS-collector moved to IPv4/IPv6.
    doc["network"]["family"] = json!("IPv4");
    doc["dnstap"]["latency"] = json!(0);
    doc
}

/// The flat record of DNS-collector's docs/formats.md, with its types.
fn documented_flat() -> Value {
    json!({
      "dns.flags.aa": false, "dns.flags.ad": false, "dns.flags.qr": false,
      "dns.flags.ra": false, "dns.flags.tc": false, "dns.flags.rd": false,
      "dns.flags.cd": false, "dns.length": 0, "dns.malformed-packet": false, "dns.id": 0,
      "dns.opcode": 0, "dns.qname": "-", "dns.qtype": "-", "dns.rcode": "-",
      "dns.qclass": "-", "dns.qdcount": 0, "dns.ancount": 0, "dns.arcount": 0,
      "dns.nscount": 0,
      "dns.resource-records.an.names": "google.nl",
      "dns.resource-records.an.rdatas": "142.251.39.99",
      "dns.resource-records.an.rdatatypes": "A",
      "dns.resource-records.an.ttls": "300",
      "dns.resource-records.an.classes": "IN",
      "dns.resource-records.ar.names": "-", "dns.resource-records.ar.rdatas": "-",
      "dns.resource-records.ar.rdatatypes": "-", "dns.resource-records.ar.ttls": "-",
      "dns.resource-records.ar.classes": "-",
      "dns.resource-records.ns.names": "-", "dns.resource-records.ns.rdatas": "-",
      "dns.resource-records.ns.rdatatypes": "-", "dns.resource-records.ns.ttls": "-",
      "dns.resource-records.ns.classes": "-",
      "dnstap.identity": "-", "dnstap.latency": 0, "dnstap.latency_ms": 0,
      "dnstap.operation": "-", "dnstap.timestamp-rfc3339ns": "-", "dnstap.version": "-",
      "dnstap.extra": "-", "dnstap.policy-rule": "-", "dnstap.policy-type": "-",
      "dnstap.policy-action": "-", "dnstap.policy-match": "-", "dnstap.policy-value": "-",
      "dnstap.peer-name": "-", "dnstap.query-zone": "-",
      "edns.dnssec-ok": 0, "edns.optionscount": 1, "edns.options.codes": "10",
      "edns.options.datas": "aaaabbbbcccc", "edns.options.names": "COOKIE",
      "edns.rcode": 0, "edns.udp-size": 0, "edns.version": 0,
      "network.family": "-", "network.ip-defragmented": false, "network.protocol": "-",
      "network.query-ip": "-", "network.query-port": "-", "network.response-ip": "-",
      "network.response-port": "-", "network.tcp-reassembled": false
    })
}

fn check_schema(what: &str, doc: &[(String, &'static str)], got: &Value) {
    let mut have = Vec::new();
    paths(got, "", &mut have);
    for (path, ty) in doc {
        // A documented list may be empty in this record: its items are not there to check.
        if path.contains("[]") && !have.iter().any(|(p, _)| p == path) {
            continue;
        }
        let found = have.iter().find(|(p, _)| p == path);
        match found {
            Some((_, t)) => assert_eq!(t, ty, "{what}: {path} is a {t}, documented {ty}"),
            None => panic!("{what}: documented key {path} missing from {got}"),
        }
    }
}

#[test]
fn dnscollector_records_have_every_documented_key_and_type() {
    let mut nested_doc = Vec::new();
    paths(
        &as_the_tool_prints_it(documented_nested()),
        "",
        &mut nested_doc,
    );
    let mut flat_doc = Vec::new();
    paths(&documented_flat(), "", &mut flat_doc);
    let mut n = 0;
    // One capture per server (the other top-level captures repeat these over other
    // transports).
    for file in top_captures().into_iter().filter(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.ends_with("-unix.fstrm") && !name.contains("unidir")
    }) {
        for payload in capture_payloads(&file) {
            let rec = Record::parse(&payload).expect("record");
            let what = file.display().to_string();
            check_schema(&what, &nested_doc, &nested(&rec));
            let f = flat(&rec);
            check_schema(&what, &flat_doc, &f);
            // Flat: nothing nested, and the keys in the tool's (sorted) order.
            let obj = f.as_object().unwrap();
            assert!(obj.values().all(|v| !v.is_object() && !v.is_array()));
            n += 1;
        }
    }
    assert!(n > 10_000, "{n} records");
}

/// The order of DNS-collector's flat writer (`EncodeFlatJSON`): the flags, then the rest
/// of `dns.*` sorted, the lists, `dnstap.*`, `edns.*`, `network.*`.
const FLAT_ORDER: &[&str] = &[
    "dns.flags.aa",
    "dns.flags.ad",
    "dns.flags.cd",
    "dns.flags.qr",
    "dns.flags.ra",
    "dns.flags.rd",
    "dns.flags.tc",
    "dns.ancount",
    "dns.arcount",
    "dns.id",
    "dns.length",
    "dns.malformed-packet",
    "dns.nscount",
    "dns.opcode",
    "dns.qclass",
    "dns.qdcount",
    "dns.qname",
    "dns.qtype",
    "dns.rcode",
    "dns.resource-records.an.classes",
    "dns.resource-records.an.names",
    "dns.resource-records.an.rdatas",
    "dns.resource-records.an.rdatatypes",
    "dns.resource-records.an.ttls",
    "dns.resource-records.ar.classes",
    "dns.resource-records.ar.names",
    "dns.resource-records.ar.rdatas",
    "dns.resource-records.ar.rdatatypes",
    "dns.resource-records.ar.ttls",
    "dns.resource-records.ns.classes",
    "dns.resource-records.ns.names",
    "dns.resource-records.ns.rdatas",
    "dns.resource-records.ns.rdatatypes",
    "dns.resource-records.ns.ttls",
    "dnstap.extra",
    "dnstap.identity",
    "dnstap.latency",
    "dnstap.latency_ms",
    "dnstap.operation",
    "dnstap.peer-name",
    "dnstap.policy-action",
    "dnstap.policy-match",
    "dnstap.policy-rule",
    "dnstap.policy-type",
    "dnstap.policy-value",
    "dnstap.query-zone",
    "dnstap.timestamp-rfc3339ns",
    "dnstap.version",
    "edns.dnssec-ok",
    "edns.options.codes",
    "edns.options.datas",
    "edns.options.names",
    "edns.optionscount",
    "edns.rcode",
    "edns.udp-size",
    "edns.version",
    "network.family",
    "network.ip-defragmented",
    "network.protocol",
    "network.query-ip",
    "network.query-port",
    "network.response-ip",
    "network.response-port",
    "network.tcp-reassembled",
];

#[test]
fn flat_keys_come_in_the_tools_order() {
    let payload = &capture_payloads(&capture("unbound-unix.fstrm"))[2];
    let rec = Record::parse(payload).unwrap();
    let mut out = Vec::new();
    dnscollector_flat::write_flat_json(&rec, &Extras::default(), &mut out);
    let text = String::from_utf8(out).unwrap();
    let keys: Vec<&str> = text
        .split("\":")
        .filter_map(|s| s.rsplit_once(",\"").or_else(|| s.rsplit_once("{\"")))
        .map(|(_, k)| k)
        .collect();
    assert_eq!(keys, FLAT_ORDER);
    // The documented keys are the same set.
    let doc = documented_flat();
    let mut documented: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>();
    documented.sort();
    let mut ours = keys.clone();
    ours.sort();
    assert_eq!(ours, documented);
    // Sampled: `filtering.sample-rate` after the network keys.
    let mut out = Vec::new();
    let ex = Extras {
        sample_rate: 10,
        ..Extras::default()
    };
    dnscollector_flat::write_flat_json(&rec, &ex, &mut out);
    assert!(out.ends_with(b",\"network.tcp-reassembled\":false,\"filtering.sample-rate\":10}\n"));
}

// ---- DNS-collector: the documentation's example records ----

fn name(labels: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for l in labels {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// A response: header, one question, one A answer (name compressed), an OPT record with
/// `options`.
fn response(
    id: u16,
    flags: u16,
    qname: &[&str],
    a: [u8; 4],
    ttl: u32,
    udp: u16,
    options: &[u8],
) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1]);
    m.extend_from_slice(&name(qname));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    m.extend_from_slice(&ttl.to_be_bytes());
    m.extend_from_slice(&[0, 4]);
    m.extend_from_slice(&a);
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&udp.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&(options.len() as u16).to_be_bytes());
    m.extend_from_slice(options);
    m
}

fn option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn dnsjson_md_nested_example_is_reproduced() {
    let ede_text = b"Provided ECS includes 32 bits, but no more than 24 are allowed.";
    let mut ede = 49152u16.to_be_bytes().to_vec();
    ede.extend_from_slice(ede_text);
    let mut opts = option(15, &ede);
    opts.extend(option(8, &[0, 1, 32, 0, 192, 168, 0, 0]));
    // qr ra ad rd cd, NOERROR
    let flags = 0x8000 | 0x0080 | 0x0020 | 0x0100 | 0x0010;
    let msg = response(
        23455,
        flags,
        &["eu", "org"],
        [78, 194, 169, 74],
        2797,
        512,
        &opts,
    );
    let rec = Record {
        identity: Some(b"dnsdist1"),
        message_type: Some(6),
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(&[192, 168, 1, 210]),
        response_address: Some(&[192, 168, 1, 210]),
        query_port: Some(60981),
        response_port: Some(53),
        response_time: Some(Timestamp {
            sec: 1_640_615_624,
            nsec: 559_002_118,
        }),
        response_message: Some(&msg),
        dns: Some(MessageView::parse(&msg)),
        ..Record::default()
    };
    let got = nested(&rec);
    let mut want = as_the_tool_prints_it(documented_nested());
    // The documented length (51) cannot hold the two documented options: the length is
    // that of the equivalent message. The sender's address (peer-name) is not in a dnstap
    // record: `-`.
    want["dns"]["length"] = json!(msg.len());
    want["dnstap"]["peer-name"] = json!("-");
    let mut documented = Vec::new();
    paths(&want, "", &mut documented);
    for (path, _) in documented {
        let pick = |v: &Value| {
            path.split('.')
                .fold(v.clone(), |v, k| v.get(k).cloned().unwrap_or(Value::Null))
        };
        let w = pick(&want);
        if !path.contains("[]") && !w.is_object() && !w.is_array() {
            assert_eq!(pick(&got), w, "{path}");
        }
    }
    assert_eq!(
        got["dns"]["resource-records"],
        want["dns"]["resource-records"]
    );
    assert_eq!(got["edns"]["options"], want["edns"]["options"]);
}

#[test]
fn dnsjson_md_flat_example_is_reproduced() {
    // The flat example of docs/dnsjson.md (google.nl), in today's key names: the tool now
    // folds lists into `|`-joined strings (`an.0.name` -> `an.names`, `options.0.code` ->
    // `options.codes`), writes `latency` as a number and no longer has `questions-count`.
    let cookie = option(10, &[0xaa; 24]);
    let msg = response(
        34555,
        0x8080,
        &["google", "nl"],
        [142, 251, 39, 99],
        300,
        1232,
        &cookie,
    );
    assert_eq!(msg.len(), 82, "the documented dns.length");
    let rec = Record {
        identity: Some(b"foo"),
        version: Some(b"BIND 9.18.13-1+ubuntu20.04.1+isc+1-Ubuntu"),
        message_type: Some(6),
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(&[127, 0, 0, 1]),
        response_address: Some(&[127, 0, 0, 1]),
        query_port: Some(36232),
        response_port: Some(53),
        response_time: Some(Timestamp {
            sec: 1_680_257_686,
            nsec: 664_534_902,
        }),
        response_message: Some(&msg),
        dns: Some(MessageView::parse(&msg)),
        ..Record::default()
    };
    let want = json!({
      "dns.flags.aa": false, "dns.flags.ad": false, "dns.flags.qr": true,
      "dns.flags.ra": true, "dns.flags.tc": false, "dns.flags.rd": false,
      "dns.flags.cd": false, "dns.length": 82, "dns.malformed-packet": false,
      "dns.id": 34555, "dns.opcode": 0, "dns.qname": "google.nl", "dns.qtype": "A",
      "dns.rcode": "NOERROR", "dns.qclass": "IN",
      "dns.resource-records.an.names": "google.nl",
      "dns.resource-records.an.rdatas": "142.251.39.99",
      "dns.resource-records.an.rdatatypes": "A",
      "dns.resource-records.an.ttls": "300",
      "dns.resource-records.an.classes": "IN",
      "dns.resource-records.ar.names": "-", "dns.resource-records.ns.names": "-",
      "dnstap.identity": "foo", "dnstap.peer-name": "-", "dnstap.latency": 0,
      "dnstap.operation": "CLIENT_RESPONSE",
      "dnstap.timestamp-rfc3339ns": "2023-03-31T10:14:46.664534902Z",
      "dnstap.version": "BIND 9.18.13-1+ubuntu20.04.1+isc+1-Ubuntu",
      "dnstap.extra": "-", "dnstap.policy-rule": "-", "dnstap.policy-type": "-",
      "dnstap.policy-action": "-", "dnstap.policy-match": "-", "dnstap.policy-value": "-",
      "dnstap.query-zone": "-", "edns.dnssec-ok": 0, "edns.options.codes": "10",
      "edns.options.datas": "-", "edns.options.names": "COOKIE", "edns.rcode": 0,
      "edns.udp-size": 1232, "edns.version": 0, "network.family": "IPv4",
      "network.ip-defragmented": false, "network.protocol": "UDP",
      "network.query-ip": "127.0.0.1", "network.query-port": "36232",
      "network.response-ip": "127.0.0.1", "network.response-port": "53",
      "network.tcp-reassembled": false
    });
    let got = flat(&rec);
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "{k}");
    }
}

// ---- text-format ----

#[test]
fn text_format_unknown_directive_names_the_closest() {
    let e = TextFormat::compile("timestamp-rfc3339ns qnmae qtype", " ").unwrap_err();
    assert_eq!(e.directive, "qnmae");
    assert_eq!(e.closest, Some("qname"));
    assert_eq!(
        e.to_string(),
        "unknown directive \"qnmae\" (closest valid: \"qname\")"
    );
    let e = TextFormat::compile("operation latancy", " ").unwrap_err();
    assert_eq!(e.closest, Some("latency"));
    assert!(TextFormat::compile("   ", " ").is_err());
}

#[test]
fn text_format_documented_examples() {
    let msg = response(
        0x1234,
        0x8180,
        &["www", "example", "test"],
        [192, 0, 2, 1],
        60,
        1232,
        &[],
    );
    let rec = Record {
        identity: Some(b"dns1"),
        message_type: Some(6),
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(&[10, 0, 0, 7]),
        query_port: Some(5353),
        response_time: Some(Timestamp {
            sec: 1_700_000_000,
            nsec: 120_000_000,
        }),
        response_message: Some(&msg),
        dns: Some(MessageView::parse(&msg)),
        ..Record::default()
    };
    let line = |spec: &str, delim: &str| {
        let f = Formatter::new(FormatKind::Directives(Box::leak(Box::new(
            TextFormat::compile(spec, delim).unwrap(),
        ))));
        let mut out = Vec::new();
        f.write(&rec, &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        line(
            "timestamp-rfc3339ns identity operation rcode queryip queryport family protocol \
             length-unit qname qtype latency",
            " "
        ),
        "2023-11-14T22:13:20.12Z dns1 CLIENT_RESPONSE NOERROR 10.0.0.7 5353 IPv4 UDP 61b \
         www.example.test A 0.000000000\n"
    );
    assert_eq!(
        line(
            "timestamp-rfc3339ns identity operation rcode queryip qname qtype",
            ";"
        ),
        "2023-11-14T22:13:20.12Z;dns1;CLIENT_RESPONSE;NOERROR;10.0.0.7;www.example.test;A\n"
    );
    assert_eq!(
        line(
            "{TIME:} timestamp-rfc3339ns {CLIENT:} queryip {QUERY:} qname qtype answer ttl",
            " "
        ),
        "TIME: 2023-11-14T22:13:20.12Z CLIENT: 10.0.0.7 QUERY: www.example.test A 192.0.2.1 60\n"
    );
    // A value holding the delimiter is quoted.
    assert_eq!(line("identity qr id", "n"), "\"dns1\"nREPLYn4660\n");
}

// ---- a cut question keeps the header everywhere ----

#[test]
fn truncated_question_keeps_header_values_in_every_format() {
    // NXDOMAIN response, id 0x1234, question cut inside its name.
    let mut msg = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&[7, b'e', b'x']);
    let rec = Record {
        identity: Some(b"lab"),
        message_type: Some(6),
        socket_family: Some(1),
        socket_protocol: Some(1),
        response_time: Some(Timestamp { sec: 1, nsec: 0 }),
        response_message: Some(&msg),
        dns: Some(MessageView::parse(&msg)),
        ..Record::default()
    };
    assert!(matches!(rec.dns, Some(Err(_))));
    let run = |kind| {
        let mut out = Vec::new();
        Formatter::new(kind).write(&rec, &mut out);
        String::from_utf8(out).unwrap()
    };
    assert!(
        run(FormatKind::Text).contains(" NXDOMAIN "),
        "{}",
        run(FormatKind::Text)
    );
    for kind in [FormatKind::Json, FormatKind::Yaml] {
        assert!(run(kind).contains("NXDOMAIN"), "{}", run(kind));
    }
    let full: Value = serde_json::from_str(&run(FormatKind::JsonFull)).unwrap();
    let h = &full["message"]["response_message"]["header"];
    assert_eq!(
        (h["id"].as_u64(), h["rcode"].as_str()),
        (Some(0x1234), Some("NXDOMAIN"))
    );
    let n = nested(&rec);
    assert_eq!(n["dns"]["id"], 0x1234);
    assert_eq!(n["dns"]["rcode"], "NXDOMAIN");
    assert_eq!(n["dns"]["qdcount"], 1);
    assert_eq!(n["dns"]["flags"]["rd"], true);
    assert_eq!(n["dns"]["malformed-packet"], true);
    assert_eq!(n["dns"]["qname"], "-");
    let f = flat(&rec);
    assert_eq!(
        (f["dns.id"].as_u64(), f["dns.rcode"].as_str()),
        (Some(0x1234), Some("NXDOMAIN"))
    );
    let d: Value = serde_json::from_str(&run(FormatKind::Dr4Json)).unwrap();
    assert_eq!(
        (d["id"].as_u64(), d["rcode"].as_str()),
        (Some(0x1234), Some("NXDOMAIN"))
    );
}

// ---- no allocation per record ----

#[test]
fn migration_formats_do_not_allocate() {
    let text = Box::leak(Box::new(
        TextFormat::compile(
            "timestamp-rfc3339ns identity operation rcode queryip queryport family protocol \
             length qname qtype latency {|} answer-ips rdatatypes edns-csubnet malformed",
            " ",
        )
        .unwrap(),
    ));
    let formatters = [
        Formatter::new(FormatKind::DnsCollectorJson).with_sample_rate(4),
        Formatter::new(FormatKind::DnsCollectorFlatJson),
        Formatter::new(FormatKind::Dr4Json),
        Formatter::new(FormatKind::Directives(text)),
    ];
    for file in ["bind-unix.fstrm", "unbound-unix.fstrm", "knot-unix.fstrm"] {
        let payloads = capture_payloads(&capture(file));
        let records: Vec<Record<'_>> = payloads.iter().map(|p| Record::parse(p).unwrap()).collect();
        let mut out = Vec::with_capacity(1 << 20);
        let pass = |out: &mut Vec<u8>| {
            for rec in &records {
                for f in &formatters {
                    out.clear();
                    f.write(rec, out);
                }
            }
        };
        pass(&mut out);
        let ((), n) = support::alloc::allocations_in(|| pass(&mut out));
        assert_eq!(
            n,
            0,
            "{file}: {n} allocations over {} records",
            records.len()
        );
    }
}

// ---- dr4-json against dnstap-receiver 4.7.0 ----

/// A venv with `dnstap-receiver==4.7.0` from PyPI, made once per run under the target
/// directory; `None` (skip or fail, by `support::skip`) without python3, venv or network.
fn dr4_venv() -> Option<std::path::PathBuf> {
    const CHECK: &str = "dr4_json_matches_dnstap_receiver_4_7";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dr4-venv");
    let bin = dir.join("bin").join("dnstap_receiver");
    if bin.exists() {
        return Some(bin);
    }
    let python = support::skip::need_program(CHECK, "python3")?;
    let made = Command::new(&python)
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !support::skip::require(made, CHECK, || {
        "python3 -m venv failed (Debian: apt-get install python3-venv)".into()
    }) {
        return None;
    }
    let installed = Command::new(dir.join("bin").join("pip"))
        .args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "dnstap-receiver==4.7.0",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !support::skip::require(installed && bin.exists(), CHECK, || {
        "pip install dnstap-receiver==4.7.0 failed (no PyPI access?)".into()
    }) {
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    Some(bin)
}

/// What dnstap-receiver 4.7 prints for `file` replayed into it over TCP.
fn dr4_lines(bin: &Path, file: &Path, expect: usize) -> Vec<String> {
    let port = support::receiver::free_port();
    let tmp = support::receiver::TempDir::new("dr4");
    let conf = tmp.path("dr4.yml");
    std::fs::write(
        &conf,
        "trace:\n  verbose: false\nweb-api:\n  enable: false\ninput:\n  tcp-socket:\n    \
         enable: true\noutput:\n  stdout:\n    enable: true\n    format: json\n",
    )
    .unwrap();
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .args(["-l", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnstap_receiver");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "dnstap_receiver never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its stdout is read from the start: a full pipe would stop it reading the replay.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let replay =
        support::skip::need_program("dr4_json_matches_dnstap_receiver_4_7", "fstrm_replay")
            .expect("fstrm_replay (lab package fstrm-bin)");
    let ok = Command::new(replay)
        .args([
            "-t",
            "protobuf:dnstap.Dnstap",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-r",
        ])
        .arg(file)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "fstrm_replay {}", file.display());
    // Read until every record is out (4.7 drops some: fewer is fine) or the output stays
    // quiet for 5 s after the replay ended: the child is killed then, or at the deadline.
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines.len() < expect && Instant::now() < deadline {
        // The quiet period ends the wait only once 4.7 has stopped printing.
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(l) if l.starts_with('{') => lines.push(l),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Fields where 4.7 is wrong and we are right (docs/migrating.md lists them), or which
/// wait for a transform we do not have yet.
fn known_difference(key: &str, theirs: &Value, ours: &Value) -> Option<&'static str> {
    match (key, theirs.as_str(), ours.as_str()) {
        ("latency", _, _) => Some("latency (needs the latency transform)"),
        ("rcode", Some("NOIMP"), Some("NOTIMP")) => Some("rcode NOIMP"),
        ("rcode", Some("-"), Some(_)) => Some("rcode 12-15 unnamed"),
        ("rrtype", Some("TSLA"), Some("TLSA")) => Some("rrtype TSLA"),
        ("rrtype", Some("-"), Some(t)) if t.starts_with("TYPE") => Some("rrtype unknown type"),
        ("qname", Some(_), Some(q)) if q.contains('\\') => Some("qname escapes"),
        _ => None,
    }
}

#[test]
fn dr4_json_matches_dnstap_receiver_4_7() {
    let Some(bin) = dr4_venv() else { return };
    let mut compared = 0;
    let mut known: std::collections::BTreeMap<&str, usize> = Default::default();
    for name in [
        "unbound-unix.fstrm",
        "bind-unix.fstrm",
        "knot-unix.fstrm",
        "dnsdist-unix.fstrm",
    ] {
        let file = capture(name);
        let payloads = capture_payloads(&file);
        let ours: Vec<String> = payloads
            .iter()
            .map(|p| {
                let rec = Record::parse(p).unwrap();
                let mut out = Vec::new();
                dr4::write_record(&rec, &Extras::default(), &mut out);
                String::from_utf8(out).unwrap().trim_end().to_string()
            })
            .collect();
        let theirs = dr4_lines(&bin, &file, ours.len());
        assert!(
            theirs.len() * 10 >= ours.len() * 9,
            "{name}: 4.7 printed {} of {} records",
            theirs.len(),
            ours.len()
        );
        // 4.7 drops some records (it cannot decode them); walk ours to the next one it has.
        let mut j = 0;
        for t in &theirs {
            let tv: Value = serde_json::from_str(t).unwrap();
            let same_record = |o: &Value| o["timestamp"] == tv["timestamp"] && o["id"] == tv["id"];
            let mut ov: Value = serde_json::from_str(&ours[j]).unwrap();
            while !same_record(&ov) {
                j += 1;
                assert!(j < ours.len(), "{name}: no record of ours for {t}");
                ov = serde_json::from_str(&ours[j]).unwrap();
            }
            // Same keys in the same order (the raw lines), then value by value.
            let keys = |s: &str| -> Vec<String> {
                s.split("\": ")
                    .map(|k| k.rsplit('"').next().unwrap_or("").to_string())
                    .collect()
            };
            assert_eq!(keys(t), keys(&ours[j]), "{name}: key order");
            if *t != ours[j] {
                for (k, v) in tv.as_object().unwrap() {
                    if &ov[k] != v {
                        let why = known_difference(k, v, &ov[k]).unwrap_or_else(|| {
                            panic!("{name}: {k}: 4.7 {v}, ours {}\n{t}\n{}", ov[k], ours[j])
                        });
                        *known.entry(why).or_default() += 1;
                    }
                }
            }
            compared += 1;
            j += 1;
        }
    }
    eprintln!("dr4-json: {compared} records compared; known differences: {known:?}");
    assert!(compared > 30_000);
}

// ---- text-format in the configuration ----

/// An unknown directive stops the start-up with the config error style
/// (`config file PATH:LINE: KEY: reason`), naming the closest directive.
#[test]
fn unknown_directive_is_a_start_up_error_with_file_line_and_key() {
    let tmp = support::receiver::TempDir::new("textfmt");
    let conf = tmp.path("dnstap.yaml");
    for (yaml, line, key) in [
        (
            "verbose: false\ntext-format: \"timestamp qnmae\"\n",
            2,
            "text-format",
        ),
        (
            "outputs:\n  - stdout:\n      format: json\n  - stdout:\n      text-format: \"{x} oepration\"\n",
            5,
            "outputs[1].stdout.text-format",
        ),
    ] {
        std::fs::write(&conf, yaml).unwrap();
        let out = Command::new(support::receiver::BIN)
            .arg("--check-config")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let closest = if key == "text-format" { "qname" } else { "operation" };
        let bad = if key == "text-format" { "qnmae" } else { "oepration" };
        let want = format!(
            "config file {}:{line}: {key}: unknown directive \"{bad}\" (closest valid: \"{closest}\")",
            conf.display()
        );
        assert!(err.contains(&want), "{err}\nwanted: {want}");
    }
    // On the command line: the flag is the key.
    let out = Command::new(support::receiver::BIN)
        .args(["--check-config", "--text-format", "identity qtyp"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--text-format: unknown directive \"qtyp\" (closest valid: \"qtype\")"),
        "{err}"
    );
    // And a valid one runs offline, delimiter included.
    let out = Command::new(support::receiver::BIN)
        .arg("-r")
        .arg(capture("nsd-unix.fstrm"))
        .args([
            "--text-format",
            "operation {->} qname qtype",
            "--text-format-delimiter",
            "|",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first.split('|').count(), 4, "{first}");
    assert!(first.starts_with("AUTH_QUERY|->|"), "{first}");
}
