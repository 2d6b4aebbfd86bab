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
use crate::format::tree::Tree;
use crate::record::{Policy, Record, Timestamp};

/// One JSON object and a newline.
pub fn write_json(rec: &Record<'_>, out: &mut Vec<u8>) {
    write(rec, Tree::open(out, false));
}

/// One YAML document (`---` first).
pub fn write_yaml(rec: &Record<'_>, out: &mut Vec<u8>) {
    write(rec, Tree::open(out, true));
}

fn write(rec: &Record<'_>, mut t: Tree<'_>) {
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
        let view = parsed_by_record.unwrap_or_else(|| MessageView::parse(bytes));
        write_dns(t, bytes, view);
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
fn write_dns(t: &mut Tree<'_>, bytes: &[u8], view: Result<MessageView<'_>, dns::DnsError>) {
    t.kv_num("length", bytes.len() as u64);
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            // Whatever was readable: the header, if the message is long enough for one.
            if let Ok(h) = Header::parse(bytes) {
                write_header(t, &h, u16::from(h.rcode()));
            }
            write_malformed(t, e);
            return;
        }
    };
    write_header(t, &view.header, view.rcode());
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

fn write_header(t: &mut Tree<'_>, h: &Header, rcode: u16) {
    t.key("header");
    t.begin_map();
    t.kv_num("id", h.id.into());
    t.kv_ascii("opcode", |o| dns::types::write_opcode(h.opcode(), o));
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
    t.kv_ascii("rcode", |o| dns::types::write_rcode(rcode, o));
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
