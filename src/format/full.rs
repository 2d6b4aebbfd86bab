//! Full formats: every decoded field of a record, nested like dnstap.proto, as one JSON line
//! or one YAML document (the same description written through [`Tree`]). Absent protobuf
//! fields are left out; unknown enum values are numbers. Both DNS messages are shown when
//! the record carries both (knot puts the query into its responses). A broken DNS message
//! shows what could be read, then `malformed: true` and the error. Every key is listed in
//! `docs/formats.md`.
#![forbid(unsafe_code)]

use crate::dns::edns::{Edns, OptionValue};
use crate::dns::{self, Header, MessageView, Name, Rr, Section};
use crate::dnstap;
use crate::format::escape;
use crate::format::seed;
use crate::format::tree::Tree;
use crate::record::{Policy, Record, Timestamp};

/// One JSON object and a newline. `sample_rate` above 1 adds `filtering.sample-rate` (the
/// record's stream was sampled 1 in that many).
pub fn write_json(rec: &Record<'_>, sample_rate: u32, out: &mut Vec<u8>) {
    write(rec, sample_rate, Tree::open(out, false));
}

/// One YAML document (`---` first).
pub fn write_yaml(rec: &Record<'_>, sample_rate: u32, out: &mut Vec<u8>) {
    write(rec, sample_rate, Tree::open(out, true));
}

fn write(rec: &Record<'_>, sample_rate: u32, mut t: Tree<'_>) {
    if let Some(v) = rec.identity {
        t.kv_bytes("identity", v);
    }
    if let Some(v) = rec.version {
        t.kv_bytes("version", v);
    }
    if let Some(v) = rec.extra {
        t.kv_bytes("extra", v);
    }
    if let Some(k) = rec.kind {
        t.kv_name_or_num("type", dnstap::dnstap_type_name(k), k.into());
    }
    if sample_rate > 1 {
        t.key("filtering");
        t.begin_map();
        t.kv_num("sample-rate", sample_rate.into());
        t.end_map();
    }
    if let Some(ns) = rec.enrich.and_then(|e| e.latency_ns) {
        t.kv_seconds_micros("latency", ns);
    }
    if let Some(r) = rec.enrich.and_then(|e| e.reducer) {
        t.key("reducer");
        t.begin_map();
        t.kv_num("occurrences", r.occurrences);
        t.kv_num("cumulative-length", r.cumulative_length);
        t.end_map();
    }
    // The normalize transform's public suffix of the qname and its registered domain.
    if let Some(en) = rec.enrich.filter(|e| e.tld.is_some() || e.etld1.is_some()) {
        t.key("publicsuffix");
        t.begin_map();
        if let Some(v) = en.tld() {
            t.kv_bytes("tld", v);
        }
        if let Some(v) = en.etld1() {
            t.kv_bytes("etld+1", v);
        }
        t.end_map();
    }
    t.key("message");
    t.begin_map();
    write_message(rec, &mut t);
    t.end_map();
    t.close();
}

fn write_message(rec: &Record<'_>, t: &mut Tree<'_>) {
    if let Some(v) = rec.message_type {
        t.kv_name_or_num("type", dnstap::message_type_name(v), v.into());
    }
    if let Some(v) = rec.socket_family {
        t.kv_name_or_num("socket_family", dnstap::family_name(v), v.into());
    }
    if let Some(v) = rec.socket_protocol {
        t.kv_name_or_num("socket_protocol", dnstap::protocol_name(v), v.into());
    }
    if let Some(a) = rec.query_address {
        t.kv_ascii("query_address", |o| escape::write_ip(a, false, o));
    }
    if let Some(p) = rec.query_port {
        t.kv_num("query_port", p.into());
    }
    if let Some(a) = rec.response_address {
        t.kv_ascii("response_address", |o| escape::write_ip(a, false, o));
    }
    if let Some(p) = rec.response_port {
        t.kv_num("response_port", p.into());
    }
    if let Some(ts) = rec.query_time {
        write_time(t, "query_time", ts);
    }
    if let Some(ts) = rec.response_time {
        write_time(t, "response_time", ts);
    }
    if let Some(z) = rec.query_zone {
        t.key("query_zone");
        write_wire_name(t, z);
    }
    if let Some(p) = &rec.policy {
        write_policy(t, p);
    }
    if let Some(h) = rec.http_protocol {
        t.kv_name_or_num("http_protocol", dnstap::http_protocol_name(h), h.into());
    }
    // The record parsed the DNS message it is about; the other one, if present, is
    // parsed here (only knot's responses carry both).
    for (key, bytes) in [
        ("query_message", rec.query_message),
        ("response_message", rec.response_message),
    ] {
        let Some(bytes) = bytes else { continue };
        t.key(key);
        t.begin_map();
        let parsed_by_record = match (&rec.dns, rec.dns_message()) {
            (Some(r), Some(m)) if std::ptr::eq(m, bytes) => Some(r.clone()),
            _ => None,
        };
        // A query the latency transform saw go unanswered: its rcode shows as TIMEOUT.
        let timeout = parsed_by_record.is_some() && rec.enrich.is_some_and(|e| e.timeout);
        let view = parsed_by_record.unwrap_or_else(|| MessageView::parse(bytes));
        write_dns(t, bytes, view, timeout);
        t.end_map();
    }
}

fn write_time(t: &mut Tree<'_>, key: &str, ts: Timestamp) {
    t.key(key);
    t.begin_map();
    t.kv_ascii("iso", |o| escape::write_timestamp_nanos(ts, o));
    t.kv_num("sec", ts.sec);
    t.kv_num("nsec", ts.nsec.into());
    t.end_map();
}

/// A wire-format name (query_zone, policy values): presentation form, or the raw bytes as
/// `0x` hex when they are not a valid name.
fn write_wire_name(t: &mut Tree<'_>, wire: &[u8]) {
    match Name::parse(wire, 0) {
        Ok((name, end)) if end == wire.len() => t.ascii(|o| name.write_presentation(o)),
        _ => t.ascii(|o| write_hex(wire, o)),
    }
}

fn write_hex(v: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"0x");
    for &b in v {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn write_policy(t: &mut Tree<'_>, p: &Policy<'_>) {
    t.key("policy");
    t.begin_map();
    if let Some(v) = p.kind {
        t.kv_bytes("type", v);
    }
    if let Some(v) = p.rule {
        t.kv_bytes("rule", v);
    }
    if let Some(v) = p.action {
        t.kv_name_or_num("action", dnstap::policy_action_name(v), v.into());
    }
    if let Some(v) = p.matched {
        t.kv_name_or_num("match", dnstap::policy_match_name(v), v.into());
    }
    if let Some(v) = p.value {
        t.key("value");
        match p.matched {
            // QNAME and NS_NAME carry a name; the IP matches an address.
            Some(1) | Some(4) => write_wire_name(t, v),
            Some(2) | Some(3) | Some(5) if v.len() == 4 || v.len() == 16 => {
                t.ascii(|o| escape::write_ip(v, false, o))
            }
            _ => t.ascii(|o| write_hex(v, o)),
        }
    }
    t.end_map();
}

/// The DNS message object: length, header, question, the three sections, EDNS, and the
/// malformed marker.
fn write_dns(
    t: &mut Tree<'_>,
    bytes: &[u8],
    view: Result<MessageView<'_>, dns::DnsError>,
    timeout: bool,
) {
    t.kv_num("length", bytes.len() as u64);
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            // Whatever was readable: the header, if the message is long enough for one.
            if let Ok(h) = Header::parse(bytes) {
                write_header(t, &h, u16::from(h.rcode()), timeout);
            }
            write_malformed(t, e);
            return;
        }
    };
    write_header(t, &view.header, view.rcode(), timeout);
    let mut error = None;

    t.key("question");
    t.begin_list();
    for q in view.questions() {
        match q {
            Ok(q) => {
                t.item();
                t.begin_map();
                t.kv_ascii("name", |o| q.name.write_presentation(o));
                t.kv_ascii("type", |o| dns::types::write_rtype(q.qtype, o));
                t.kv_ascii("class", |o| dns::types::write_class(q.qclass, o));
                t.end_map();
            }
            Err(e) => error = Some(e),
        }
    }
    t.end_list();

    // Sections come in order; open each list when the walk reaches it, so a message cut
    // short still shows its earlier records, and every section appears (maybe empty).
    let sections = [
        ("answer", Section::Answer),
        ("authority", Section::Authority),
        ("additional", Section::Additional),
    ];
    let mut open: Option<usize> = None;
    let mut opt: Option<Rr<'_>> = None;
    let open_up_to = |t: &mut Tree<'_>, open: &mut Option<usize>, upto: usize| {
        let next = open.map_or(0, |i| i + 1);
        for (i, (name, _)) in sections.iter().enumerate().take(upto + 1).skip(next) {
            if open.is_some() {
                t.end_list();
            }
            t.key(name);
            t.begin_list();
            *open = Some(i);
        }
    };
    if error.is_none() {
        for r in view.records() {
            match r {
                Ok((section, rr)) => {
                    let idx = sections
                        .iter()
                        .position(|(_, s)| *s == section)
                        .unwrap_or(2);
                    open_up_to(t, &mut open, idx);
                    if rr.rtype == dns::types::OPT
                        && section == Section::Additional
                        && opt.is_none()
                    {
                        opt = Some(rr);
                        continue;
                    }
                    write_rr(t, view.msg, &rr);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
    }
    open_up_to(t, &mut open, 2);
    t.end_list();

    if let Some(rr) = opt {
        match Edns::from_rr(view.msg, &rr) {
            Ok(e) => write_edns(t, &e),
            Err(e) => error = error.or(Some(e)),
        }
    }
    if let Some(e) = error {
        write_malformed(t, e);
    }
}

/// `timeout`: the rcode is shown as `TIMEOUT` (an unanswered query, see
/// `transform::latency`).
fn write_header(t: &mut Tree<'_>, h: &Header, rcode: u16, timeout: bool) {
    t.key("header");
    t.begin_map();
    t.kv_num("id", h.id.into());
    t.kv_name_or_num(
        "opcode",
        dns::types::opcode_name(h.opcode()),
        h.opcode().into(),
    );
    for (name, bit) in [
        ("qr", Header::QR),
        ("aa", Header::AA),
        ("tc", Header::TC),
        ("rd", Header::RD),
        ("ra", Header::RA),
        ("z", Header::Z),
        ("ad", Header::AD),
        ("cd", Header::CD),
    ] {
        t.kv_bool(name, h.flags & bit != 0);
    }
    if timeout {
        t.kv_ascii("rcode", |o| o.extend_from_slice(seed::TIMEOUT));
    } else {
        t.kv_name_or_num("rcode", dns::types::rcode_name(rcode), rcode.into());
    }
    t.kv_num("qdcount", h.qdcount.into());
    t.kv_num("ancount", h.ancount.into());
    t.kv_num("nscount", h.nscount.into());
    t.kv_num("arcount", h.arcount.into());
    t.end_map();
}

fn write_rr(t: &mut Tree<'_>, msg: &[u8], rr: &Rr<'_>) {
    t.item();
    t.begin_map();
    t.kv_ascii("name", |o| rr.name.write_presentation(o));
    t.kv_ascii("type", |o| dns::types::write_rtype(rr.rtype, o));
    t.kv_ascii("class", |o| dns::types::write_class(rr.class, o));
    t.kv_num("ttl", rr.ttl.into());
    let mut bad = None;
    t.key("rdata");
    // Presentation rdata is printable ASCII with `"` and `\` escaped by us.
    t.ascii(|o| {
        // Empty rdata is legitimate in UPDATE (RFC 2136 §2.5.2: delete an RRset) and
        // written as nothing, like the reference decoder does.
        if rr.rdata.is_empty() {
            return;
        }
        if let Err(e) = rr.write_rdata(msg, o) {
            bad = Some(e);
            dns::rdata::write_generic(msg.get(rr.rdata.clone()).unwrap_or(&[]), o);
        }
    });
    if let Some(e) = bad {
        t.kv_ascii("rdata_error", |o| write_error(e, o));
    }
    t.end_map();
}

fn write_edns(t: &mut Tree<'_>, e: &Edns<'_>) {
    t.key("edns");
    t.begin_map();
    t.kv_num("udp_size", e.udp_size.into());
    t.kv_num("version", e.version.into());
    t.kv_bool("do", e.dnssec_ok());
    t.kv_num("extended_rcode", e.ext_rcode.into());
    t.kv_num("flags", e.flags.into());
    t.key("options");
    t.begin_list();
    let mut error = None;
    for o in e.options() {
        let o = match o {
            Ok(o) => o,
            Err(err) => {
                error = Some(err);
                break;
            }
        };
        t.item();
        t.begin_map();
        t.kv_num("code", o.code.into());
        t.kv_ascii("name", |out| o.write_name(out));
        match o.value() {
            Ok(OptionValue::Ecs(ecs)) => {
                t.kv_num("family", ecs.family.into());
                t.kv_num("source_prefix", ecs.source_prefix.into());
                t.kv_num("scope_prefix", ecs.scope_prefix.into());
                t.kv_ascii("address", |out| ecs.write_address(out));
            }
            Ok(OptionValue::Ede {
                info_code,
                extra_text,
            }) => {
                t.kv_num("info_code", info_code.into());
                if let Some(n) = dns::types::ede_name(info_code) {
                    t.kv_ascii("info", |out| out.extend_from_slice(n.as_bytes()));
                }
                t.kv_bytes("extra_text", extra_text);
            }
            Ok(OptionValue::Cookie { client, server }) => {
                t.kv_ascii("client", |out| write_hex_plain(client, out));
                t.kv_ascii("server", |out| write_hex_plain(server, out));
            }
            Ok(OptionValue::Nsid(d)) => {
                t.kv_ascii("hex", |out| write_hex_plain(d, out));
                t.kv_bytes("text", d);
            }
            Ok(OptionValue::Other(d)) => t.kv_ascii("data", |out| write_hex_plain(d, out)),
            Err(err) => {
                t.kv_ascii("data", |out| write_hex_plain(o.data, out));
                t.kv_ascii("error", |out| write_error(err, out));
            }
        }
        t.end_map();
    }
    t.end_list();
    if let Some(err) = error {
        t.kv_ascii("options_error", |out| write_error(err, out));
    }
    t.end_map();
}

fn write_hex_plain(v: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in v {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// `truncated at offset 33`, without going through `fmt` (no allocation either way, but
/// this stays on the buffer).
fn write_error(e: dns::DnsError, out: &mut Vec<u8>) {
    out.extend_from_slice(e.kind.as_str().as_bytes());
    out.extend_from_slice(b" at offset ");
    out.extend_from_slice(itoa::Buffer::new().format(e.offset).as_bytes());
}

fn write_malformed(t: &mut Tree<'_>, e: dns::DnsError) {
    t.kv_bool("malformed", true);
    t.kv_ascii("error", |o| write_error(e, o));
}

#[cfg(test)]
mod tests {
    use super::{write_json, write_yaml};
    use crate::dns::MessageView;
    use crate::format::seed::fixtures;
    use crate::record::{Policy, Record};
    use serde_json::{json, Value};

    fn both(rec: &Record<'_>) -> Value {
        let mut j = Vec::new();
        write_json(rec, 1, &mut j);
        let mut y = Vec::new();
        write_yaml(rec, 1, &mut y);
        let j: Value = serde_json::from_slice(&j).unwrap();
        let y: Value = serde_saphyr::from_slice(&y).unwrap();
        assert_eq!(j, y);
        j
    }

    #[test]
    fn sample_rate_beside_identity_only_when_sampled() {
        let rec = Record {
            identity: Some(b"ns1"),
            message_type: Some(5),
            ..Record::default()
        };
        assert!(both(&rec).get("filtering").is_none());
        for yaml in [false, true] {
            let mut out = Vec::new();
            if yaml {
                write_yaml(&rec, 20, &mut out);
            } else {
                write_json(&rec, 20, &mut out);
            }
            let v: Value = if yaml {
                serde_saphyr::from_slice(&out).unwrap()
            } else {
                serde_json::from_slice(&out).unwrap()
            };
            assert_eq!(v["filtering"], json!({"sample-rate": 20}), "yaml {yaml}");
            assert_eq!(v["identity"], json!("ns1"));
        }
    }

    #[test]
    fn message_cut_inside_a_record_shows_what_was_read() {
        // Header says one answer; the answer's owner is there but its fixed part is cut.
        let mut msg = fixtures::dns_msg(0x8180, &[b"www", b"example", b"test"], 1, false);
        msg[7] = 1; // ancount
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0]);
        let mut rec = fixtures::v6_response(&msg);
        rec.dns = Some(MessageView::parse(&msg));
        let v = both(&rec);
        let m = &v["message"]["response_message"];
        assert_eq!(m["length"], msg.len());
        assert_eq!(m["header"]["ancount"], 1);
        assert_eq!(m["question"][0]["name"], "www.example.test.");
        assert_eq!(m["answer"], json!([]));
        assert_eq!(m["authority"], json!([]));
        assert_eq!(m["malformed"], true);
        assert_eq!(m["error"], "truncated at offset 36");
    }

    #[test]
    fn message_without_a_header_is_malformed() {
        let msg = [0u8, 1, 2, 3, 4];
        let rec = Record {
            message_type: Some(1),
            query_message: Some(&msg),
            dns: Some(MessageView::parse(&msg)),
            ..Record::default()
        };
        let v = both(&rec);
        let m = &v["message"]["query_message"];
        assert_eq!(m["length"], 5);
        assert!(m.get("header").is_none());
        assert_eq!(m["malformed"], true);
        assert!(m["error"].as_str().unwrap().starts_with("truncated"));
    }

    #[test]
    fn every_dnstap_field_and_unknown_numbers() {
        let msg = fixtures::odd_msg();
        let mut rec = fixtures::odd(&msg);
        rec.version = Some(b"v1");
        rec.extra = Some(b"rtt=12\n");
        rec.kind = Some(9);
        rec.query_zone = Some(b"\x04test\x00");
        rec.http_protocol = Some(2);
        rec.response_port = Some(53);
        rec.policy = Some(Policy {
            kind: Some(b"RPZ"),
            rule: Some(b"rule one"),
            action: Some(1),
            matched: Some(1),
            value: Some(b"\x03bad\x04test\x00"),
        });
        let v = both(&rec);
        assert_eq!(v["identity"], "my \"lab\"\n");
        assert_eq!(v["version"], "v1");
        assert_eq!(v["extra"], "rtt=12\n");
        assert_eq!(v["type"], 9);
        let m = &v["message"];
        assert_eq!(m["type"], 99);
        assert_eq!(m["socket_family"], 7);
        assert_eq!(m["socket_protocol"], 42);
        assert_eq!(
            m["query_address"], "::ffff:192.0.2.1",
            "full formats keep the mapped form"
        );
        assert_eq!(m["query_port"], 0);
        assert_eq!(m["response_port"], 53);
        assert_eq!(
            m["query_time"],
            json!({"iso": "1970-01-01T00:00:00.000000000+00:00", "sec": 0, "nsec": 0})
        );
        assert_eq!(m["query_zone"], "test.");
        assert_eq!(m["http_protocol"], "HTTP2");
        assert_eq!(
            m["policy"],
            json!({"type": "RPZ", "rule": "rule one", "action": "NXDOMAIN", "match": "QNAME", "value": "bad.test."})
        );
        let d = &m["query_message"];
        assert_eq!(d["header"]["rcode"], 13, "unknown rcode as a number");
        assert_eq!(d["question"][0]["type"], "TYPE65280");
        assert_eq!(d["question"][0]["name"], "a\\\"b.c\\\\d\\032e.");
        assert!(d.get("malformed").is_none());
        assert!(m.get("response_message").is_none());
    }

    #[test]
    fn edns_options_are_decoded() {
        let mut msg = fixtures::dns_msg(0x8100, &[b"example", b"test"], 1, false);
        msg[11] = 1; // arcount
        let mut opts = Vec::new();
        opts.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2]); // ECS 192.0.2.0/24
        opts.extend_from_slice(&[0, 15, 0, 4, 0, 18, b'n', b'o']); // EDE 18 "no"
        opts.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]); // COOKIE
        opts.extend_from_slice(&[0, 3, 0, 2, b'n', b's']); // NSID
        msg.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 1, 0, 0x80, 0]);
        msg.extend_from_slice(&(opts.len() as u16).to_be_bytes());
        msg.extend_from_slice(&opts);
        let rec = fixtures::seed_query(&msg);
        let v = both(&rec);
        let d = &v["message"]["query_message"];
        assert_eq!(d["header"]["rcode"], "BADVERS", "extended rcode 1 << 4 | 0");
        assert_eq!(d["additional"], json!([]), "OPT is shown under edns only");
        let e = &d["edns"];
        assert_eq!(e["udp_size"], 1232);
        assert_eq!(e["do"], true);
        assert_eq!(e["extended_rcode"], 1);
        let o = &e["options"];
        assert_eq!(o[0]["name"], "ECS");
        assert_eq!(o[0]["address"], "192.0.2.0/24");
        assert_eq!(o[1]["info_code"], 18);
        assert_eq!(o[1]["extra_text"], "no");
        assert_eq!(o[2]["client"], "0102030405060708");
        assert_eq!(o[3]["text"], "ns");
        assert_eq!(o[3]["hex"], "6e73");
    }
}
