//! DNS-collector's flat record (`dnscollector-flat-json`): one level of `a.b.c` keys in the
//! order its flat writer emits them (sorted), every list folded into one string per
//! attribute with `|` between items (`dns.resource-records.an.names`, `edns.options.codes`,
//! ...), `-` for an empty list. Values come from the same [`DcView`] as the nested record.
#![forbid(unsafe_code)]

use crate::dns::{self, Header, Rr};
use crate::format::dnscollector::{
    class_name, json_value, latency_ms, option_name, rdatatype_name, write_addr, write_family,
    write_latency_secs, write_name, write_opt_bytes, write_option_data, write_policy_field,
    write_port, write_protocol, write_query_zone, write_rcode_of, write_rdata, DcView, Extras,
    GoJson, PolicyField, Put,
};
use crate::record::Record;

const AN_KEYS: [&str; 5] = [
    "dns.resource-records.an.classes",
    "dns.resource-records.an.names",
    "dns.resource-records.an.rdatas",
    "dns.resource-records.an.rdatatypes",
    "dns.resource-records.an.ttls",
];
const AR_KEYS: [&str; 5] = [
    "dns.resource-records.ar.classes",
    "dns.resource-records.ar.names",
    "dns.resource-records.ar.rdatas",
    "dns.resource-records.ar.rdatatypes",
    "dns.resource-records.ar.ttls",
];
const NS_KEYS: [&str; 5] = [
    "dns.resource-records.ns.classes",
    "dns.resource-records.ns.names",
    "dns.resource-records.ns.rdatas",
    "dns.resource-records.ns.rdatatypes",
    "dns.resource-records.ns.ttls",
];

fn key(k: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn num(k: &str, v: u64, out: &mut Vec<u8>) {
    key(k, out);
    dns::write_u64(v, out);
}

fn boolean(k: &str, v: bool, out: &mut Vec<u8>) {
    key(k, out);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

fn string(k: &str, out: &mut Vec<u8>, f: impl FnOnce(&mut GoJson<'_>)) {
    key(k, out);
    json_value(out, f);
}

/// One attribute of every record of a section, `|`-joined, `-` when the section is empty.
fn rr_list(
    v: &DcView<'_, '_>,
    section: usize,
    k: &str,
    out: &mut Vec<u8>,
    each: impl Fn(&Rr<'_>, &mut GoJson<'_>),
) {
    key(k, out);
    out.push(b'"');
    let mut first = true;
    v.each_rr(section, |rr| {
        if !first {
            out.push(b'|');
        }
        first = false;
        each(rr, &mut GoJson(out));
    });
    if first {
        out.push(b'-');
    }
    out.push(b'"');
}

/// Appends the flat record and a newline.
pub fn write_flat_json(rec: &Record<'_>, ex: &Extras, out: &mut Vec<u8>) {
    let v = DcView::new(rec, out);
    let h = v.header.unwrap_or_default();
    // Sorted keys, as the tool writes them: answer, additional, then authority lists.
    let flag = |bit| h.flags & bit != 0;

    out.extend_from_slice(b"{\"dns.flags.aa\":");
    out.extend_from_slice(if flag(Header::AA) { b"true" } else { b"false" });
    boolean("dns.flags.ad", flag(Header::AD), out);
    boolean("dns.flags.cd", flag(Header::CD), out);
    boolean("dns.flags.qr", flag(Header::QR), out);
    boolean("dns.flags.ra", flag(Header::RA), out);
    boolean("dns.flags.rd", flag(Header::RD), out);
    boolean("dns.flags.tc", flag(Header::TC), out);
    num("dns.ancount", h.ancount.into(), out);
    num("dns.arcount", h.arcount.into(), out);
    num("dns.id", h.id.into(), out);
    num("dns.length", v.msg.len() as u64, out);
    boolean("dns.malformed-packet", v.malformed, out);
    num("dns.nscount", h.nscount.into(), out);
    num("dns.opcode", h.opcode().into(), out);
    string("dns.qclass", out, |p| v.write_qclass(p));
    num("dns.qdcount", h.qdcount.into(), out);
    string("dns.qname", out, |p| v.write_qname(p));
    string("dns.qtype", out, |p| v.write_qtype(p));
    string("dns.rcode", out, |p| write_rcode_of(&v, ex, p));

    for (section, s) in [(0, "an"), (2, "ar"), (1, "ns")] {
        let keys = match s {
            "an" => AN_KEYS,
            "ar" => AR_KEYS,
            _ => NS_KEYS,
        };
        rr_list(&v, section, keys[0], out, |rr, p| {
            p.put(class_name(rr.class).as_bytes())
        });
        rr_list(&v, section, keys[1], out, |rr, p| write_name(&rr.name, p));
        rr_list(&v, section, keys[2], out, |rr, p| {
            let _ = write_rdata(rr, v.msg, p);
        });
        rr_list(&v, section, keys[3], out, |rr, p| {
            p.put(rdatatype_name(rr.rtype).as_bytes())
        });
        rr_list(&v, section, keys[4], out, |rr, p| {
            dns::write_u64(rr.ttl.into(), p.vec())
        });
    }

    string("dnstap.extra", out, |p| write_opt_bytes(rec.extra, p));
    string("dnstap.identity", out, |p| write_opt_bytes(rec.identity, p));
    key("dnstap.latency", out);
    write_latency_secs(ex, out);
    num("dnstap.latency_ms", latency_ms(ex), out);
    string("dnstap.operation", out, |p| v.write_operation(p));
    string("dnstap.peer-name", out, |p| p.put(b"-"));
    string("dnstap.policy-action", out, |p| {
        write_policy_field(rec, PolicyField::Action, p)
    });
    string("dnstap.policy-match", out, |p| {
        write_policy_field(rec, PolicyField::Match, p)
    });
    string("dnstap.policy-rule", out, |p| {
        write_policy_field(rec, PolicyField::Rule, p)
    });
    string("dnstap.policy-type", out, |p| {
        write_policy_field(rec, PolicyField::Type, p)
    });
    string("dnstap.policy-value", out, |p| {
        write_policy_field(rec, PolicyField::Value, p)
    });
    string("dnstap.query-zone", out, |p| write_query_zone(rec, p));
    key("dnstap.timestamp-rfc3339ns", out);
    out.push(b'"');
    v.write_timestamp(out);
    out.push(b'"');
    string("dnstap.version", out, |p| write_opt_bytes(rec.version, p));

    let e = v.edns.as_ref();
    num("edns.dnssec-ok", e.map_or(0, |e| e.dnssec_ok().into()), out);
    let mut count = 0u64;
    for (k, part) in [
        ("edns.options.codes", 0),
        ("edns.options.datas", 1),
        ("edns.options.names", 2),
    ] {
        key(k, out);
        out.push(b'"');
        let mut n = 0u64;
        if let Some(e) = e {
            for o in e.options().flatten() {
                if n > 0 {
                    out.push(b'|');
                }
                n += 1;
                match part {
                    0 => dns::write_u64(o.code.into(), out),
                    1 => write_option_data(o.code, o.data, &mut GoJson(out)),
                    _ => out.extend_from_slice(option_name(o.code).as_bytes()),
                }
            }
        }
        if n == 0 {
            out.push(b'-');
        }
        out.push(b'"');
        count = n;
    }
    num("edns.optionscount", count, out);
    num(
        "edns.rcode",
        e.map_or(0, |e| u64::from(e.ext_rcode) << 4),
        out,
    );
    num("edns.udp-size", e.map_or(0, |e| e.udp_size.into()), out);
    num("edns.version", e.map_or(0, |e| e.version.into()), out);

    string("network.family", out, |p| write_family(rec, p));
    boolean("network.ip-defragmented", false, out);
    string("network.protocol", out, |p| write_protocol(rec, p));
    string("network.query-ip", out, |p| {
        write_addr(rec.query_address, p)
    });
    string("network.query-port", out, |p| write_port(rec.query_port, p));
    string("network.response-ip", out, |p| {
        write_addr(rec.response_address, p)
    });
    string("network.response-port", out, |p| {
        write_port(rec.response_port, p)
    });
    boolean("network.tcp-reassembled", false, out);
    // Transform keys after the network ones, in the tool's order: publicsuffix.* and
    // reducer.* go before filtering.* when those transforms land.
    if ex.sample_rate > 1 {
        num("filtering.sample-rate", ex.sample_rate.into(), out);
    }
    out.extend_from_slice(b"}\n");
}
