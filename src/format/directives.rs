//! `text-format`: a one-line text format built from DNS-collector's text directives
//! (`timestamp-rfc3339ns identity operation rcode queryip queryport family protocol length
//! qname qtype latency ...`, `{literal text}`), separated by `text-format-delimiter` (one
//! space by default). The directive string is compiled once, at start-up, into a list of
//! [`Field`]s; writing a record walks that list, never the string. An unknown directive is
//! a compile error naming it and the closest valid one.
//!
//! Values are DNS-collector's (see [`super::dnscollector`]): a string value holding the
//! delimiter is wrapped in double quotes, as the tool's `QuoteStringAndWrite` does.
#![forbid(unsafe_code)]

use std::fmt;

use crate::dns::{self, Header};
use crate::format::dnscollector::{
    self as dc, rdatatype_name, write_addr, write_family, write_opt_bytes, write_policy_field,
    write_port, write_protocol, write_query_zone, write_rdata, DcView, Extras, PolicyField, Put,
    Raw,
};
use crate::record::Record;

/// One compiled directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    TimestampRfc3339ns,
    TimestampUnixMs,
    TimestampUnixUs,
    TimestampUnixNs,
    LocalTime,
    Qname,
    Identity,
    PeerName,
    Version,
    Extra,
    Policy(PolicyField),
    QueryZone,
    HttpProtocol,
    Operation,
    Rcode,
    Id,
    QueryIp,
    QueryPort,
    ResponseIp,
    ResponsePort,
    Family,
    Protocol,
    LengthUnit,
    Length,
    Qtype,
    Qclass,
    Latency,
    LatencyMs,
    Malformed,
    Qr,
    Opcode,
    TcpReassembled,
    IpDefragmented,
    Flag(u16, &'static str),
    Ttl,
    Answer,
    AnswerA,
    AnswerAaaa,
    AnswerIp,
    AnswerIps,
    Rdatatype,
    Rdatatypes,
    Qdcount,
    Ancount,
    Nscount,
    Arcount,
    EdnsCsubnet,
    SampleRate,
    /// `{text}`: the text between the braces, as it is.
    Literal(Box<[u8]>),
}

/// Every directive name and what it compiles to.
const DIRECTIVES: &[(&str, Field)] = &[
    ("timestamp-rfc3339ns", Field::TimestampRfc3339ns),
    ("timestamp", Field::TimestampRfc3339ns),
    ("timestamp-unixms", Field::TimestampUnixMs),
    ("timestamp-unixus", Field::TimestampUnixUs),
    ("timestamp-unixns", Field::TimestampUnixNs),
    ("localtime", Field::LocalTime),
    ("qname", Field::Qname),
    ("identity", Field::Identity),
    ("peer-name", Field::PeerName),
    ("version", Field::Version),
    ("extra", Field::Extra),
    ("policy-rule", Field::Policy(PolicyField::Rule)),
    ("policy-type", Field::Policy(PolicyField::Type)),
    ("policy-action", Field::Policy(PolicyField::Action)),
    ("policy-match", Field::Policy(PolicyField::Match)),
    ("policy-value", Field::Policy(PolicyField::Value)),
    ("query-zone", Field::QueryZone),
    ("http-protocol", Field::HttpProtocol),
    ("operation", Field::Operation),
    ("rcode", Field::Rcode),
    ("id", Field::Id),
    ("queryip", Field::QueryIp),
    ("queryport", Field::QueryPort),
    ("responseip", Field::ResponseIp),
    ("responseport", Field::ResponsePort),
    ("family", Field::Family),
    ("protocol", Field::Protocol),
    ("length-unit", Field::LengthUnit),
    ("length", Field::Length),
    ("qtype", Field::Qtype),
    ("qclass", Field::Qclass),
    ("latency", Field::Latency),
    ("latency_ms", Field::LatencyMs),
    ("malformed", Field::Malformed),
    ("qr", Field::Qr),
    ("opcode", Field::Opcode),
    ("tr", Field::TcpReassembled),
    ("df", Field::IpDefragmented),
    ("tc", Field::Flag(Header::TC, "TC")),
    ("aa", Field::Flag(Header::AA, "AA")),
    ("ra", Field::Flag(Header::RA, "RA")),
    ("ad", Field::Flag(Header::AD, "AD")),
    ("rd", Field::Flag(Header::RD, "RD")),
    ("ttl", Field::Ttl),
    ("answer", Field::Answer),
    ("answer-a", Field::AnswerA),
    ("answer-aaaa", Field::AnswerAaaa),
    ("answer-ip", Field::AnswerIp),
    ("answer-ips", Field::AnswerIps),
    ("rdatatype", Field::Rdatatype),
    ("rdatatypes", Field::Rdatatypes),
    ("questionscount", Field::Qdcount),
    ("qdcount", Field::Qdcount),
    ("answercount", Field::Ancount),
    ("ancount", Field::Ancount),
    ("nscount", Field::Nscount),
    ("arcount", Field::Arcount),
    ("edns-csubnet", Field::EdnsCsubnet),
    ("filtering-sample-rate", Field::SampleRate),
];

/// The names `text-format` accepts, in the order of DNS-collector's documentation.
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    DIRECTIVES.iter().map(|(n, _)| *n)
}

/// An unknown directive, with the closest valid name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveError {
    pub directive: String,
    pub closest: Option<&'static str>,
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.directive.is_empty() {
            return f.write_str("no directive");
        }
        write!(f, "unknown directive {:?}", self.directive)?;
        match self.closest {
            Some(c) => write!(f, " (closest valid: {c:?})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for DirectiveError {}

/// Edit distance (insertions, deletions, substitutions), for the suggestion.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn closest(word: &str) -> Option<&'static str> {
    directive_names()
        .map(|n| (distance(word, n), n))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, n)| *d <= n.len().max(word.len()) / 2 + 1)
        .map(|(_, n)| n)
}

/// A compiled `text-format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFormat {
    pub fields: Vec<Field>,
    pub delimiter: Box<[u8]>,
}

impl TextFormat {
    /// Compiles `spec` (directives separated by white space; `{...}` is literal text and
    /// may hold spaces) with `delimiter` between fields.
    pub fn compile(spec: &str, delimiter: &str) -> Result<TextFormat, DirectiveError> {
        let mut fields = Vec::new();
        let mut words = spec.split_whitespace();
        while let Some(w) = words.next() {
            if w.starts_with('{') {
                let mut lit = w.to_string();
                while !lit.ends_with('}') {
                    match words.next() {
                        Some(more) => {
                            lit.push(' ');
                            lit.push_str(more);
                        }
                        None => break,
                    }
                }
                let text: String = lit.chars().filter(|&c| c != '{' && c != '}').collect();
                fields.push(Field::Literal(text.into_bytes().into_boxed_slice()));
                continue;
            }
            match DIRECTIVES.iter().find(|(n, _)| *n == w) {
                Some((_, f)) => fields.push(f.clone()),
                None => {
                    return Err(DirectiveError {
                        directive: w.to_string(),
                        closest: closest(w),
                    })
                }
            }
        }
        if fields.is_empty() {
            return Err(DirectiveError {
                directive: String::new(),
                closest: None,
            });
        }
        Ok(TextFormat {
            fields,
            delimiter: delimiter.as_bytes().into(),
        })
    }

    /// Appends one line (with its newline).
    pub fn write(&self, rec: &Record<'_>, ex: &Extras, out: &mut Vec<u8>) {
        let v = DcView::new(rec, out);
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(&self.delimiter);
            }
            self.write_field(f, &v, ex, out);
        }
        out.push(b'\n');
    }

    /// A string value, in double quotes when it holds the delimiter.
    fn quoted(&self, out: &mut Vec<u8>, f: impl FnOnce(&mut Raw<'_>)) {
        let start = out.len();
        f(&mut Raw(out));
        let d = &self.delimiter;
        if d.is_empty() || !out[start..].windows(d.len()).any(|w| w == &d[..]) {
            return;
        }
        // PERF: rare (a delimiter inside a name); shifting in place keeps it allocation-free.
        let escapes = out[start..].iter().filter(|&&c| c == b'"').count();
        let len = out.len() - start;
        out.resize(out.len() + escapes + 2, 0);
        let mut w = start + len + escapes + 2;
        w -= 1;
        out[w] = b'"';
        for r in (start..start + len).rev() {
            let c = out[r];
            w -= 1;
            out[w] = c;
            if c == b'"' {
                w -= 1;
                out[w] = b'\\';
            }
        }
        out[start] = b'"';
    }

    fn write_field(&self, f: &Field, v: &DcView<'_, '_>, ex: &Extras, out: &mut Vec<u8>) {
        let rec = v.rec;
        let h = v.header.unwrap_or_default();
        let query = rec.message_type.is_none_or(crate::dnstap::is_query_type);
        let ns = || {
            let t = v.time();
            t.sec
                .saturating_mul(1_000_000_000)
                .saturating_add(t.nsec.into())
        };
        match f {
            Field::TimestampRfc3339ns => v.write_timestamp(out),
            Field::TimestampUnixMs => dns::write_u64(ns() / 1_000_000, out),
            Field::TimestampUnixUs => dns::write_u64(ns() / 1_000, out),
            Field::TimestampUnixNs => dns::write_u64(ns(), out),
            Field::LocalTime => {
                // The receiver has no time zone: UTC, in Go's "2006-01-02 15:04:05.999999999".
                let start = out.len();
                dc::write_rfc3339nano(v.time(), out);
                out.pop();
                if let Some(t) = out.get_mut(start + 10) {
                    *t = b' ';
                }
            }
            Field::Qname => match &v.question {
                Some(q) if q.name.is_root() => out.push(b'.'),
                _ => self.quoted(out, |p| v.write_qname(p)),
            },
            Field::Identity => self.quoted(out, |p| write_opt_bytes(rec.identity, p)),
            Field::PeerName => out.push(b'-'),
            Field::Version => self.quoted(out, |p| write_opt_bytes(rec.version, p)),
            Field::Extra => write_opt_bytes(rec.extra, &mut Raw(out)),
            Field::Policy(pf) => write_policy_field(rec, *pf, &mut Raw(out)),
            Field::QueryZone => write_query_zone(rec, &mut Raw(out)),
            Field::HttpProtocol => dc::write_http_protocol(rec, &mut Raw(out)),
            Field::Operation => v.write_operation(&mut Raw(out)),
            Field::Rcode => dc::write_rcode_of(v, ex, &mut Raw(out)),
            Field::Id => dns::write_u64(h.id.into(), out),
            Field::QueryIp => write_addr(rec.query_address, &mut Raw(out)),
            Field::QueryPort => write_port(rec.query_port, &mut Raw(out)),
            Field::ResponseIp => write_addr(rec.response_address, &mut Raw(out)),
            Field::ResponsePort => write_port(rec.response_port, &mut Raw(out)),
            Field::Family => write_family(rec, &mut Raw(out)),
            Field::Protocol => write_protocol(rec, &mut Raw(out)),
            Field::LengthUnit => {
                dns::write_u64(v.msg.len() as u64, out);
                out.push(b'b');
            }
            Field::Length => dns::write_u64(v.msg.len() as u64, out),
            Field::Qtype => v.write_qtype(&mut Raw(out)),
            Field::Qclass => v.write_qclass(&mut Raw(out)),
            Field::Latency if query => out.push(b'-'),
            Field::Latency => {
                let ns = ex.latency_ns.unwrap_or(0);
                // Go's 'f' with 9 digits: whole nanoseconds, exactly.
                dns::write_u64(ns / 1_000_000_000, out);
                out.push(b'.');
                let frac = ns % 1_000_000_000;
                let mut digits = [b'0'; 9];
                let mut x = frac;
                for d in digits.iter_mut().rev() {
                    *d = b'0' + (x % 10) as u8;
                    x /= 10;
                }
                out.extend_from_slice(&digits);
            }
            Field::LatencyMs if query => out.push(b'-'),
            Field::LatencyMs => dns::write_u64(dc::latency_ms(ex), out),
            Field::Malformed => out.extend_from_slice(if v.malformed { b"PKTERR" } else { b"-" }),
            Field::Qr => out.extend_from_slice(if query { b"QUERY" } else { b"REPLY" }),
            Field::Opcode => dns::write_u64(h.opcode().into(), out),
            Field::TcpReassembled | Field::IpDefragmented => out.push(b'-'),
            Field::Flag(bit, name) => {
                if h.flags & bit != 0 {
                    out.extend_from_slice(name.as_bytes());
                } else {
                    out.push(b'-');
                }
            }
            Field::Ttl => first_answer(v, out, |rr, o| dns::write_u64(rr.ttl.into(), o)),
            Field::Answer => first_answer(v, out, |rr, o| {
                let _ = write_rdata(rr, v.msg, &mut Raw(o));
            }),
            Field::AnswerA => first_of_types(v, out, &[1]),
            Field::AnswerAaaa => first_of_types(v, out, &[28]),
            Field::AnswerIp => first_of_types(v, out, &[1, 28]),
            Field::AnswerIps => {
                let start = out.len();
                self.quoted(out, |p| {
                    let mut first = true;
                    v.each_rr(0, |rr| {
                        if rr.rtype == 1 || rr.rtype == 28 {
                            if !first {
                                p.put(b";");
                            }
                            first = false;
                            let _ = write_rdata(rr, v.msg, p);
                        }
                    });
                });
                if out.len() == start {
                    out.push(b'-');
                }
            }
            Field::Rdatatype => first_answer(v, out, |rr, o| {
                o.extend_from_slice(rdatatype_name(rr.rtype).as_bytes())
            }),
            Field::Rdatatypes => {
                let start = out.len();
                v.each_rr(0, |rr| {
                    if out.len() > start {
                        out.push(b';');
                    }
                    out.extend_from_slice(rdatatype_name(rr.rtype).as_bytes());
                });
                if out.len() == start {
                    out.push(b'-');
                }
            }
            Field::Qdcount => dns::write_u64(h.qdcount.into(), out),
            Field::Ancount => dns::write_u64(h.ancount.into(), out),
            Field::Nscount => dns::write_u64(h.nscount.into(), out),
            Field::Arcount => dns::write_u64(h.arcount.into(), out),
            Field::EdnsCsubnet => {
                let opt = v
                    .edns
                    .and_then(|e| e.options().flatten().find(|o| o.code == 8));
                match opt {
                    Some(o) => dc::write_option_data(o.code, o.data, &mut Raw(out)),
                    None => out.push(b'-'),
                }
            }
            Field::SampleRate => dns::write_u64(ex.sample_rate.max(1).into(), out),
            Field::Literal(text) => out.extend_from_slice(text),
        }
    }
}

/// `f` on the first answer record, `-` without one.
fn first_answer(v: &DcView<'_, '_>, out: &mut Vec<u8>, f: impl FnOnce(&dns::Rr<'_>, &mut Vec<u8>)) {
    let mut f = Some(f);
    v.each_rr(0, |rr| {
        if let Some(f) = f.take() {
            f(rr, out);
        }
    });
    if f.is_some() {
        out.push(b'-');
    }
}

/// The rdata of the first answer of one of `types`, `-` without one.
fn first_of_types(v: &DcView<'_, '_>, out: &mut Vec<u8>, types: &[u16]) {
    let mut done = false;
    v.each_rr(0, |rr| {
        if !done && types.contains(&rr.rtype) {
            done = true;
            let _ = write_rdata(rr, v.msg, &mut Raw(out));
        }
    });
    if !done {
        out.push(b'-');
    }
}
