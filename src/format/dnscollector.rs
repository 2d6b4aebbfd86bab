//! DNS-collector's record (`dnscollector-json`, `dnscollector-flat-json`): the values of its
//! `DNSMessage` taken from a [`Record`], with its names, nesting and value formats
//! (`network.*`, `dns.*`, `edns.*`, `dnstap.*`, then the objects of its transforms). The
//! schema and its documented example are in DNS-collector's `docs/dnsjson.md` and
//! `docs/formats.md`; where each value comes from is in our `docs/formats.md`.
//!
//! [`DcView::new`] does the one walk per record that the tool's parser does (which records
//! it keeps when a section is broken, the EDNS option checks, the `malformed-packet` flag);
//! the writers then read the view. The nested writer is here, the flat one in
//! [`super::dnscollector_flat`], and the text directives ([`super::directives`]) read the
//! same view. Nothing allocates: names, rdata and option data are written straight into
//! the caller's buffer through [`Put`], escaped as DNS-collector's JSON writer escapes
//! (`"`, `\`, control bytes; invalid UTF-8 bytes become U+FFFD).
//!
//! What transforms add (sampling rate, latency, and later public suffix and reducer)
//! reaches these writers through [`Extras`], the one place for it.
#![forbid(unsafe_code)]

use crate::dns::edns::Edns;
use crate::dns::{self, Header, MessageView, Question, Rr};
use crate::dnstap;
use crate::format::escape;
use crate::record::{Record, Timestamp};

/// Rdata of a type DNS-collector decodes that it cannot read (the tool then drops the
/// section it is in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable;

/// The value DNS-collector prints for an absent string.
pub const ABSENT: &[u8] = b"-";

/// Values that transforms add to a record, as DNS-collector names them: latency
/// (`dnstap.latency`, `latency_ms`; 0 without the latency transform, as DNS-collector
/// does) and the `TIMEOUT` rcode; public suffix (`publicsuffix.*`) and reducer
/// (`reducer.*`) will be written from here once those transforms exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// 1 in how many records were kept by sampling; written as `filtering.sample-rate`
    /// when above 1.
    pub sample_rate: u32,
    /// Query to response time in nanoseconds, from the latency transform.
    pub latency_ns: Option<u64>,
    /// A query the latency transform reports unanswered: `dns.rcode` is `TIMEOUT`.
    pub timeout: bool,
}

/// `dns.rcode` ([`DcView::write_rcode`]), or `TIMEOUT` for a query the latency transform
/// reports unanswered (as DNS-collector's latency transform does).
pub fn write_rcode_of(v: &DcView<'_, '_>, ex: &Extras, p: &mut impl Put) {
    if ex.timeout {
        p.put(crate::format::seed::TIMEOUT);
    } else {
        v.write_rcode(p);
    }
}

/// Where the pieces of a string value go: escaped for JSON, or as they are for text.
pub trait Put {
    /// Bytes of arbitrary content (names, TXT strings, identities).
    fn put(&mut self, b: &[u8]);
    /// The buffer itself, for ASCII that needs no escaping (numbers, addresses).
    fn vec(&mut self) -> &mut Vec<u8>;
}

/// Text output: bytes as they are.
pub struct Raw<'o>(pub &'o mut Vec<u8>);

impl Put for Raw<'_> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    #[inline]
    fn vec(&mut self) -> &mut Vec<u8> {
        self.0
    }
}

/// The body of a JSON string, escaped as DNS-collector's `WriteJSONString` does.
pub struct GoJson<'o>(pub &'o mut Vec<u8>);

impl Put for GoJson<'_> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        write_go_json_body(b, self.0);
    }
    #[inline]
    fn vec(&mut self) -> &mut Vec<u8> {
        self.0
    }
}

/// Escapes `b` as DNS-collector's JSON writer: `"` and `\` with a backslash, `\n` `\r` `\t`,
/// other bytes below 0x20 as `\u00XX`, valid UTF-8 as it is, each byte of an invalid
/// sequence as `\ufffd`. (Unlike serde's writer, DEL and U+2028 stay raw.)
pub fn write_go_json_body(b: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // PERF: most values are plain ASCII names; one scan, one copy (benches/format.rs).
    if b.iter()
        .all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\')
    {
        out.extend_from_slice(b);
        return;
    }
    for chunk in b.utf8_chunks() {
        for &c in chunk.valid().as_bytes() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 15)]);
                }
                c => out.push(c),
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

/// A quoted JSON string of `b`.
#[inline]
pub fn json_str(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    write_go_json_body(b, out);
    out.push(b'"');
}

/// What DNS-collector's parser makes of one record's DNS message, computed once.
#[derive(Clone, Debug)]
pub struct DcView<'r, 'a> {
    pub rec: &'r Record<'a>,
    /// The DNS message (query for query types); empty when there is none.
    pub msg: &'a [u8],
    /// The header, when the message has 12 bytes.
    pub header: Option<Header>,
    /// The message view, when the question section parsed.
    pub view: Option<&'r MessageView<'a>>,
    /// The last question (DNS-collector keeps the last of several).
    pub question: Option<Question<'a>>,
    /// How many records (OPT aside) each section shows: answer, authority, additional.
    pub keep: [u16; 3],
    /// Offset of each section's first record (valid where `keep` is above 0).
    pub starts: [usize; 3],
    /// The OPT record, when the whole message and its options parsed.
    pub edns: Option<Edns<'a>>,
    pub malformed: bool,
}

impl<'r, 'a> DcView<'r, 'a> {
    pub fn new(rec: &'r Record<'a>, scratch: &mut Vec<u8>) -> DcView<'r, 'a> {
        let msg = rec.dns_message().unwrap_or(&[]);
        let mut v = DcView {
            rec,
            msg,
            header: None,
            view: None,
            question: None,
            keep: [0; 3],
            starts: [0; 3],
            edns: None,
            malformed: false,
        };
        if rec.dns_message().is_none() {
            return v;
        }
        v.header = dns::Header::parse(msg).ok();
        if v.header.is_none() {
            v.malformed = true;
            return v;
        }
        let view = match &rec.dns {
            Some(Ok(view)) => view,
            _ => {
                // The question is broken: the header's values stay, nothing after it.
                v.malformed = true;
                return v;
            }
        };
        v.view = Some(view);
        v.question = view.question;
        if view.header.qdcount > 1 {
            match view.questions().last() {
                Some(Ok(q)) => v.question = Some(q),
                _ => {
                    v.question = None;
                    v.malformed = true;
                    return v;
                }
            }
        }
        v.walk_records(view, scratch);
        v
    }

    /// Counts the records each section keeps, as DNS-collector's parser: a section with an
    /// unreadable record (name, length, or the rdata of a type it decodes) is dropped
    /// whole, unless the message is truncated (TC), where the records before it stay;
    /// nothing after it is read. Then the OPT record and its options.
    fn walk_records(&mut self, view: &'r MessageView<'a>, scratch: &mut Vec<u8>) {
        let h = view.header;
        let msg = view.msg;
        let counts = [h.ancount, h.nscount, h.arcount];
        let tc = h.flags & Header::TC != 0;
        let mut ok = [0u16; 3];
        let mut failed: Option<usize> = None;
        let mut opt: Option<Rr<'a>> = None;
        let mark = scratch.len();
        // PERF: one walk that notes where each section starts, so the writers read a
        // section without walking the ones before it again (benches/format.rs,
        // dnscollector_flat_json reads each section five times).
        let mut pos = view.after_question;
        'sections: for (s, &count) in counts.iter().enumerate() {
            self.starts[s] = pos;
            for _ in 0..count {
                let Ok((rr, next)) = Rr::parse(msg, pos) else {
                    failed = Some(s);
                    break 'sections;
                };
                pos = next;
                if rr.rtype == dns::types::OPT {
                    if s == 2 && opt.is_none() {
                        opt = Some(rr);
                    }
                    continue;
                }
                let good = write_rdata(&rr, msg, &mut Raw(scratch)).is_ok();
                scratch.truncate(mark);
                if !good {
                    failed = Some(s);
                    break 'sections;
                }
                ok[s] += 1;
            }
        }
        if let Some(s) = failed {
            self.malformed = true;
            for (i, k) in self.keep.iter_mut().enumerate() {
                *k = if i < s || (i == s && tc) { ok[i] } else { 0 };
            }
            return;
        }
        self.keep = ok;
        if let Some(rr) = opt {
            match Edns::from_rr(msg, &rr) {
                Ok(e) if options_ok(&e) => self.edns = Some(e),
                _ => self.malformed = true,
            }
        }
    }

    /// The records a section shows, in order (OPT left out).
    pub fn each_rr(&self, section: usize, mut f: impl FnMut(&Rr<'a>)) {
        let Some(view) = self.view else { return };
        let want = self.keep.get(section).copied().unwrap_or(0);
        let mut pos = self.starts.get(section).copied().unwrap_or(0);
        let mut n = 0;
        while n < want {
            let Ok((rr, next)) = Rr::parse(view.msg, pos) else {
                break;
            };
            pos = next;
            if rr.rtype == dns::types::OPT {
                continue;
            }
            f(&rr);
            n += 1;
        }
    }

    /// True for a response (header QR bit).
    pub fn is_response(&self) -> bool {
        self.header.is_some_and(|h| h.is_response())
    }

    /// `dns.rcode`: only responses have one; with EDNS, the full 12-bit rcode.
    pub fn write_rcode(&self, p: &mut impl Put) {
        match self.header {
            Some(h) if h.is_response() => {
                let ext = self.edns.map_or(0, |e| u16::from(e.ext_rcode) << 4);
                p.put(rcode_name(ext + u16::from(h.rcode())).as_bytes());
            }
            _ => p.put(ABSENT),
        }
    }

    /// `dns.qname`: labels joined by dots, no trailing dot (the root is empty), bytes as
    /// they are; `-` without a readable question.
    pub fn write_qname(&self, p: &mut impl Put) {
        match &self.question {
            Some(q) => write_name(&q.name, p),
            None => p.put(ABSENT),
        }
    }

    pub fn write_qtype(&self, p: &mut impl Put) {
        match &self.question {
            Some(q) => write_rdatatype(q.qtype, p),
            None => p.put(ABSENT),
        }
    }

    pub fn write_qclass(&self, p: &mut impl Put) {
        match &self.question {
            Some(q) => p.put(class_name(q.qclass).as_bytes()),
            None => p.put(ABSENT),
        }
    }

    /// `dnstap.operation`: the message type's name; DNS UPDATE messages (opcode 5) are
    /// `UPDATE_QUERY` / `UPDATE_RESPONSE` whatever the type, as DNS-collector renames them.
    pub fn write_operation(&self, p: &mut impl Put) {
        if let Some(h) = self.header.filter(|h| h.opcode() == 5) {
            let op: &[u8] = if h.is_response() {
                b"UPDATE_RESPONSE"
            } else {
                b"UPDATE_QUERY"
            };
            return p.put(op);
        }
        match self.rec.message_type {
            Some(t) => match dnstap::message_type_name(t) {
                Some(n) => p.put(n.as_bytes()),
                None => dns::write_u64(t.into(), p.vec()),
            },
            None => p.put(ABSENT),
        }
    }

    /// The time DNS-collector shows: the query time for query types, the response time
    /// otherwise (no fallback to the other one; absent is the epoch).
    pub fn time(&self) -> Timestamp {
        let query = self.rec.message_type.is_none_or(dnstap::is_query_type);
        let t = if query {
            self.rec.query_time
        } else {
            self.rec.response_time
        };
        t.unwrap_or(Timestamp { sec: 0, nsec: 0 })
    }

    /// `dnstap.timestamp-rfc3339ns`: Go's RFC 3339 with nanoseconds, trailing zeros of the
    /// fraction dropped (and the dot with them), `Z` for UTC.
    pub fn write_timestamp(&self, out: &mut Vec<u8>) {
        write_rfc3339nano(self.time(), out);
    }
}

/// Go's `time.RFC3339Nano` in UTC: `2021-12-27T14:33:44.559002118Z`, `…:44Z` on a whole
/// second.
pub fn write_rfc3339nano(ts: Timestamp, out: &mut Vec<u8>) {
    escape::write_timestamp_nanos(ts, out);
    out.truncate(out.len() - b"+00:00".len());
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
    out.push(b'Z');
}

/// Checks the options as DNS-collector's EDNS parser does: every option within the OPT
/// data, an extended error with its info code, a client subnet with a known family.
fn options_ok(e: &Edns<'_>) -> bool {
    e.options().all(|o| match o {
        Ok(o) if o.code == 15 => o.data.len() >= 2,
        Ok(o) if o.code == 8 => {
            o.data.len() >= 4 && matches!(u16::from_be_bytes([o.data[0], o.data[1]]), 1 | 2)
        }
        Ok(_) => true,
        Err(_) => false,
    })
}

/// A name as DNS-collector's label parser gives it: labels joined by `.`, no trailing dot.
pub fn write_name(name: &dns::Name<'_>, p: &mut impl Put) {
    for (i, label) in name.labels().enumerate() {
        if i > 0 {
            p.put(b".");
        }
        p.put(label);
    }
}

/// A name read at `pos` of `msg`, or `Err` when it is unreadable.
fn put_name_at(msg: &[u8], pos: usize, p: &mut impl Put) -> Result<usize, Unreadable> {
    let (name, end) = dns::Name::parse(msg, pos).map_err(|_| Unreadable)?;
    write_name(&name, p);
    Ok(end)
}

fn put_u64(v: u64, p: &mut impl Put) {
    dns::write_u64(v, p.vec());
}

fn be16(b: &[u8], at: usize) -> Result<u16, Unreadable> {
    let s = b.get(at..at + 2).ok_or(Unreadable)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Result<u32, Unreadable> {
    let s = b.get(at..at + 4).ok_or(Unreadable)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// An address as Go's `net.IP.String` prints it: IPv4 dotted, IPv6 per RFC 5952 with an
/// IPv4-mapped address as plain IPv4, any other length `?` and hex.
pub fn write_go_ip(addr: &[u8], out: &mut Vec<u8>) {
    match addr.len() {
        0 => out.extend_from_slice(ABSENT),
        4 | 16 => escape::write_ip(addr, true, out),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push(b'?');
            for &b in addr {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
    }
}

/// The rdata string of one record, as DNS-collector renders it: A, AAAA, CNAME, NS, PTR,
/// MX, SRV, TXT, SOA, SVCB and HTTPS decoded, `-` for every other type, empty for empty
/// rdata. `Err` when the rdata of a decoded type is unreadable (the tool then drops the
/// section).
pub fn write_rdata(rr: &Rr<'_>, msg: &[u8], p: &mut impl Put) -> Result<(), Unreadable> {
    let start = rr.rdata.start;
    let rd = msg.get(rr.rdata.clone()).ok_or(Unreadable)?;
    if rd.is_empty() {
        return Ok(());
    }
    match rr.rtype {
        1 => {
            let a = rd.first_chunk::<4>().ok_or(Unreadable)?;
            dns::write_ipv4(*a, p.vec());
        }
        28 => {
            let a = rd.first_chunk::<16>().ok_or(Unreadable)?;
            escape::write_ip(a, true, p.vec());
        }
        2 | 5 | 12 => {
            put_name_at(msg, start, p)?;
        }
        15 => {
            if msg.len() < start + 3 {
                return Err(Unreadable);
            }
            put_u64(be16(msg, start)?.into(), p);
            p.put(b" ");
            put_name_at(msg, start + 2, p)?;
        }
        33 => {
            if msg.len() < start + 7 {
                return Err(Unreadable);
            }
            for i in 0..3 {
                put_u64(be16(msg, start + 2 * i)?.into(), p);
                p.put(b" ");
            }
            put_name_at(msg, start + 6, p)?;
        }
        16 => {
            let mut at = 0;
            while at < rd.len() {
                let len = usize::from(rd[at]);
                let s = rd.get(at + 1..at + 1 + len).ok_or(Unreadable)?;
                p.put(s);
                at += 1 + len;
            }
        }
        6 => {
            let (mname, pos) = dns::Name::parse(msg, start).map_err(|_| Unreadable)?;
            let (rname, pos) = dns::Name::parse(msg, pos).map_err(|_| Unreadable)?;
            let f = msg.get(pos..pos + 20).ok_or(Unreadable)?;
            write_name(&mname, p);
            p.put(b" ");
            write_name(&rname, p);
            let serial = be32(f, 0)?;
            p.put(b" ");
            put_u64(serial.into(), p);
            for at in [4, 8, 12] {
                p.put(b" ");
                let v = be32(f, at)? as i32;
                if v < 0 {
                    p.put(b"-");
                }
                put_u64(u64::from(v.unsigned_abs()), p);
            }
            p.put(b" ");
            put_u64(be32(f, 16)?.into(), p);
        }
        64 | 65 => write_svcb(rd, p)?,
        _ => p.put(ABSENT),
    }
    Ok(())
}

/// SVCB / HTTPS: priority, target (`.` for the root; never compressed) and the parameters
/// as `key=value`, a value holding a backslash in double quotes.
fn write_svcb(rd: &[u8], p: &mut impl Put) -> Result<(), Unreadable> {
    if rd.len() < 3 {
        return Err(Unreadable);
    }
    put_u64(be16(rd, 0)?.into(), p);
    p.put(b" ");
    // The target: plain labels only (RFC 9460 forbids compression here).
    let mut at = 2;
    let mut first = true;
    loop {
        let len = usize::from(*rd.get(at).ok_or(Unreadable)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return Err(Unreadable);
        }
        let label = rd.get(at + 1..at + 1 + len).ok_or(Unreadable)?;
        if !first {
            p.put(b".");
        }
        p.put(label);
        first = false;
        at += 1 + len;
    }
    if first {
        p.put(b".");
    }
    if at == rd.len() {
        return Ok(());
    }
    p.put(b" ");
    let mut first = true;
    while at < rd.len() {
        let key = be16(rd, at)?;
        let len = usize::from(be16(rd, at + 2)?);
        let v = rd.get(at + 4..at + 4 + len).ok_or(Unreadable)?;
        at += 4 + len;
        if !first {
            p.put(b" ");
        }
        first = false;
        write_svc_key(key, p);
        p.put(b"=");
        write_svc_value(key, v, p)?;
    }
    Ok(())
}

fn write_svc_key(key: u16, p: &mut impl Put) {
    let name: &[u8] = match key {
        0 => b"mandatory",
        1 => b"alpn",
        2 => b"no-default-alpn",
        3 => b"port",
        4 => b"ipv4hint",
        5 => b"ech",
        6 => b"ipv6hint",
        _ => {
            p.put(b"key");
            return put_u64(key.into(), p);
        }
    };
    p.put(name);
}

/// True when [`write_svc_text`] would write a backslash.
fn svc_text_escapes(v: &[u8]) -> bool {
    v.iter()
        .any(|&c| !(b' '..=b'~').contains(&c) || matches!(c, b'"' | b';' | b' ' | b'\\'))
}

/// miekg/dns's presentation of SvcParam bytes: `"`, `;`, space and `\` get a backslash,
/// bytes outside printable ASCII are `\DDD`.
fn write_svc_text(v: &[u8], p: &mut impl Put) {
    for &c in v {
        if (b' '..=b'~').contains(&c) {
            if matches!(c, b'"' | b';' | b' ' | b'\\') {
                p.put(b"\\");
            }
            p.put(&[c]);
        } else {
            let d = [b'\\', b'0' + c / 100, b'0' + c / 10 % 10, b'0' + c % 10];
            p.put(&d);
        }
    }
}

fn write_svc_value(key: u16, v: &[u8], p: &mut impl Put) -> Result<(), Unreadable> {
    match key {
        0 => {
            if v.len() % 2 != 0 {
                return Err(Unreadable);
            }
            for (i, k) in v.chunks_exact(2).enumerate() {
                if i > 0 {
                    p.put(b",");
                }
                write_svc_key(u16::from_be_bytes([k[0], k[1]]), p);
            }
        }
        1 => {
            if v.is_empty() {
                return Err(Unreadable);
            }
            // Check the whole list first: a backslash anywhere quotes the value.
            let mut at = 0;
            let mut quote = false;
            while at < v.len() {
                let len = usize::from(v[at]);
                let s = v.get(at + 1..at + 1 + len).ok_or(Unreadable)?;
                quote |= svc_text_escapes(s);
                at += 1 + len;
            }
            if quote {
                p.put(b"\"");
            }
            let mut at = 0;
            while at < v.len() {
                let len = usize::from(v[at]);
                if at > 0 {
                    p.put(b",");
                }
                write_svc_text(&v[at + 1..at + 1 + len], p);
                at += 1 + len;
            }
            if quote {
                p.put(b"\"");
            }
        }
        2 => {
            if !v.is_empty() {
                return Err(Unreadable);
            }
        }
        3 => {
            if v.len() != 2 {
                return Err(Unreadable);
            }
            put_u64(be16(v, 0)?.into(), p);
        }
        4 | 6 => {
            let n = if key == 4 { 4 } else { 16 };
            if v.len() % n != 0 {
                return Err(Unreadable);
            }
            for (i, a) in v.chunks_exact(n).enumerate() {
                if i > 0 {
                    p.put(b",");
                }
                escape::write_ip(a, true, p.vec());
            }
        }
        _ => {
            let quote = svc_text_escapes(v);
            if quote {
                p.put(b"\"");
            }
            write_svc_text(v, p);
            if quote {
                p.put(b"\"");
            }
        }
    }
    Ok(())
}

/// DNS-collector's rcode names; `UNKNOWN` for the rest.
pub fn rcode_name(r: u16) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => "UNKNOWN",
    }
}

/// DNS-collector's class names; `UNKNOWN` for the rest.
pub fn class_name(c: u16) -> &'static str {
    match c {
        1 => "IN",
        2 => "CS",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        _ => "UNKNOWN",
    }
}

/// DNS-collector's type names (the IANA mnemonics it lists, `NSAP_PTR` with its
/// underscore); `UNKNOWN` for the rest.
pub fn rdatatype_name(t: u16) -> &'static str {
    match t {
        0 => "NONE",
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        103 => "UNSPEC",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "AMTRELAY",
        32768 => "TA",
        32769 => "DLV",
        _ => "UNKNOWN",
    }
}

fn write_rdatatype(t: u16, p: &mut impl Put) {
    p.put(rdatatype_name(t).as_bytes());
}

/// EDNS option names; `UNKNOWN` for the rest.
pub fn option_name(code: u16) -> &'static str {
    match code {
        3 => "NSID",
        8 => "CSUBNET",
        9 => "EXPIRE",
        10 => "COOKIE",
        11 => "KEEPALIVE",
        12 => "PADDING",
        15 => "ERRORS",
        _ => "UNKNOWN",
    }
}

/// An option's `data`: extended errors as `CODE NAME TEXT` (`-` for an unknown name or no
/// text), client subnets as `ADDRESS/SOURCE` (`[V6]/SOURCE`), `-` for the rest. Options
/// were checked by [`DcView::new`].
pub fn write_option_data(code: u16, data: &[u8], p: &mut impl Put) {
    match code {
        15 if data.len() >= 2 => {
            let info = u16::from_be_bytes([data[0], data[1]]);
            put_u64(info.into(), p);
            p.put(b" ");
            p.put(crate::dns::types::ede_name_rfc8914(info).map_or(ABSENT, str::as_bytes));
            p.put(b" ");
            match &data[2..] {
                [] => p.put(ABSENT),
                text => p.put(text),
            }
        }
        8 if data.len() >= 4 => {
            let family = u16::from_be_bytes([data[0], data[1]]);
            let source = data[2];
            let addr = &data[4..];
            let mut a = [0u8; 16];
            let n = if family == 1 { 4 } else { 16 };
            let take = addr.len().min(n);
            a[..take].copy_from_slice(&addr[..take]);
            if family == 2 {
                p.put(b"[");
            }
            escape::write_ip(&a[..n], true, p.vec());
            if family == 2 {
                p.put(b"]");
            }
            p.put(b"/");
            put_u64(source.into(), p);
        }
        _ => p.put(ABSENT),
    }
}

/// `network.family`: IPv4, IPv6, UNKNOWN for another number, `-` when absent.
pub fn write_family(rec: &Record<'_>, p: &mut impl Put) {
    p.put(match rec.socket_family {
        Some(1) => b"IPv4",
        Some(2) => b"IPv6",
        Some(_) => b"UNKNOWN",
        None => ABSENT,
    })
}

/// `network.protocol`: the `SocketProtocol` name, the number when unknown.
pub fn write_protocol(rec: &Record<'_>, p: &mut impl Put) {
    match rec.socket_protocol {
        Some(v) => match dnstap::protocol_name(v) {
            Some(n) => p.put(n.as_bytes()),
            None => put_u64(v.into(), p),
        },
        None => p.put(ABSENT),
    }
}

/// An address field (`query-ip`, `response-ip`): `-` when absent.
pub fn write_addr(a: Option<&[u8]>, p: &mut impl Put) {
    match a {
        Some(a) => write_go_ip(a, p.vec()),
        None => p.put(ABSENT),
    }
}

/// A port field, a string: `-` when absent or 0.
pub fn write_port(v: Option<u32>, p: &mut impl Put) {
    match v {
        Some(v) if v > 0 => put_u64(v.into(), p),
        _ => p.put(ABSENT),
    }
}

/// A string field of the dnstap payload (identity, version, extra): `-` when absent or
/// empty.
pub fn write_opt_bytes(v: Option<&[u8]>, p: &mut impl Put) {
    match v {
        Some(v) if !v.is_empty() => p.put(v),
        _ => p.put(ABSENT),
    }
}

/// The `dnstap.policy-*` and `query-zone` values, in the order the nested object has them.
pub fn write_policy_field(rec: &Record<'_>, field: PolicyField, p: &mut impl Put) {
    let pol = rec.policy.as_ref();
    match field {
        PolicyField::Rule => write_opt_bytes(pol.and_then(|x| x.rule), p),
        PolicyField::Type => write_opt_bytes(pol.and_then(|x| x.kind), p),
        PolicyField::Value => write_opt_bytes(pol.and_then(|x| x.value), p),
        PolicyField::Match => match pol.and_then(|x| x.matched) {
            Some(m) => match dnstap::policy_match_name(m) {
                Some(n) => p.put(n.as_bytes()),
                None => put_u64(m.into(), p),
            },
            None => p.put(ABSENT),
        },
        PolicyField::Action => match pol.and_then(|x| x.action) {
            Some(a) => match dnstap::policy_action_name(a) {
                Some(n) => p.put(n.as_bytes()),
                None => put_u64(a.into(), p),
            },
            None => p.put(ABSENT),
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyField {
    Rule,
    Type,
    Match,
    Action,
    Value,
}

/// `dnstap.query-zone`: the zone name without its trailing dot, empty when unreadable,
/// `-` when absent.
pub fn write_query_zone(rec: &Record<'_>, p: &mut impl Put) {
    match rec.query_zone {
        Some(z) if !z.is_empty() => {
            if let Ok((name, _)) = dns::Name::parse(z, 0) {
                write_name(&name, p);
            }
        }
        _ => p.put(ABSENT),
    }
}

/// `dnstap.http-protocol`: HTTP1, HTTP2, HTTP3, `-` when absent.
pub fn write_http_protocol(rec: &Record<'_>, p: &mut impl Put) {
    match rec.http_protocol {
        Some(h) => match dnstap::http_protocol_name(h) {
            Some(n) => p.put(n.as_bytes()),
            None => put_u64(h.into(), p),
        },
        None => p.put(ABSENT),
    }
}

/// `dnstap.latency` as DNS-collector's JSON writes a float (`0`, `0.014617`), and
/// `latency_ms`.
pub fn write_latency_secs(ex: &Extras, out: &mut Vec<u8>) {
    match ex.latency_ns {
        None | Some(0) => out.push(b'0'),
        Some(ns) => {
            use std::io::Write;
            // Shortest round-trip decimal, as Go's 'f', -1 formatting.
            let _ = write!(out, "{}", ns as f64 / 1e9);
        }
    }
}

pub fn latency_ms(ex: &Extras) -> u64 {
    ex.latency_ns.unwrap_or(0) / 1_000_000
}

/// A JSON string value written through `f` with DNS-collector's escaping.
#[inline]
pub fn json_value(out: &mut Vec<u8>, f: impl FnOnce(&mut GoJson<'_>)) {
    out.push(b'"');
    f(&mut GoJson(out));
    out.push(b'"');
}

fn json_bool(v: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// Appends the nested record (`dnscollector-json`) and a newline.
pub fn write_json(rec: &Record<'_>, ex: &Extras, out: &mut Vec<u8>) {
    let v = DcView::new(rec, out);
    let h = v.header.unwrap_or_default();

    out.extend_from_slice(b"{\"network\":{\"family\":");
    json_value(out, |p| write_family(rec, p));
    out.extend_from_slice(b",\"protocol\":");
    json_value(out, |p| write_protocol(rec, p));
    out.extend_from_slice(b",\"query-ip\":");
    json_value(out, |p| write_addr(rec.query_address, p));
    out.extend_from_slice(b",\"query-port\":");
    json_value(out, |p| write_port(rec.query_port, p));
    out.extend_from_slice(b",\"response-ip\":");
    json_value(out, |p| write_addr(rec.response_address, p));
    out.extend_from_slice(b",\"response-port\":");
    json_value(out, |p| write_port(rec.response_port, p));
    out.extend_from_slice(b",\"ip-defragmented\":false,\"tcp-reassembled\":false}");

    out.extend_from_slice(b",\"dns\":{\"length\":");
    dns::write_u64(v.msg.len() as u64, out);
    out.extend_from_slice(b",\"id\":");
    dns::write_u64(h.id.into(), out);
    out.extend_from_slice(b",\"opcode\":");
    dns::write_u64(h.opcode().into(), out);
    out.extend_from_slice(b",\"rcode\":");
    json_value(out, |p| write_rcode_of(&v, ex, p));
    out.extend_from_slice(b",\"qname\":");
    json_value(out, |p| v.write_qname(p));
    out.extend_from_slice(b",\"qclass\":");
    json_value(out, |p| v.write_qclass(p));
    for (k, n) in [
        (&b",\"qdcount\":"[..], h.qdcount),
        (b",\"ancount\":", h.ancount),
        (b",\"nscount\":", h.nscount),
        (b",\"arcount\":", h.arcount),
    ] {
        out.extend_from_slice(k);
        dns::write_u64(n.into(), out);
    }
    out.extend_from_slice(b",\"qtype\":");
    json_value(out, |p| v.write_qtype(p));
    out.extend_from_slice(b",\"flags\":{");
    for (i, (k, bit)) in [
        ("qr", Header::QR),
        ("tc", Header::TC),
        ("aa", Header::AA),
        ("ra", Header::RA),
        ("ad", Header::AD),
        ("rd", Header::RD),
        ("cd", Header::CD),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        json_bool(h.flags & bit != 0, out);
    }
    out.extend_from_slice(b"},\"resource-records\":{");
    for (i, key) in [&b"\"an\":["[..], b",\"ns\":[", b",\"ar\":["]
        .into_iter()
        .enumerate()
    {
        out.extend_from_slice(key);
        let mut first = true;
        v.each_rr(i, |rr| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(b"{\"name\":");
            json_value(out, |p| write_name(&rr.name, p));
            out.extend_from_slice(b",\"rdatatype\":");
            json_value(out, |p| write_rdatatype(rr.rtype, p));
            out.extend_from_slice(b",\"class\":");
            json_value(out, |p| p.put(class_name(rr.class).as_bytes()));
            out.extend_from_slice(b",\"ttl\":");
            dns::write_u64(rr.ttl.into(), out);
            out.extend_from_slice(b",\"rdata\":");
            json_value(out, |p| {
                let _ = write_rdata(rr, v.msg, p);
            });
            out.push(b'}');
        });
        out.push(b']');
    }
    out.extend_from_slice(b"},\"malformed-packet\":");
    json_bool(v.malformed, out);

    out.extend_from_slice(b"},\"edns\":{\"udp-size\":");
    let e = v.edns.as_ref();
    dns::write_u64(e.map_or(0, |e| e.udp_size.into()), out);
    out.extend_from_slice(b",\"rcode\":");
    dns::write_u64(e.map_or(0, |e| u64::from(e.ext_rcode) << 4), out);
    out.extend_from_slice(b",\"version\":");
    dns::write_u64(e.map_or(0, |e| e.version.into()), out);
    out.extend_from_slice(b",\"dnssec-ok\":");
    dns::write_u64(e.map_or(0, |e| e.dnssec_ok().into()), out);
    out.extend_from_slice(b",\"options\":[");
    if let Some(e) = e {
        for (i, o) in e.options().flatten().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"code\":");
            dns::write_u64(o.code.into(), out);
            out.extend_from_slice(b",\"name\":\"");
            out.extend_from_slice(option_name(o.code).as_bytes());
            out.extend_from_slice(b"\",\"data\":");
            json_value(out, |p| write_option_data(o.code, o.data, p));
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"]}");

    out.extend_from_slice(b",\"dnstap\":{\"operation\":");
    json_value(out, |p| v.write_operation(p));
    out.extend_from_slice(b",\"identity\":");
    json_value(out, |p| write_opt_bytes(rec.identity, p));
    out.extend_from_slice(b",\"version\":");
    json_value(out, |p| write_opt_bytes(rec.version, p));
    out.extend_from_slice(b",\"timestamp-rfc3339ns\":\"");
    v.write_timestamp(out);
    out.extend_from_slice(b"\",\"latency\":");
    write_latency_secs(ex, out);
    out.extend_from_slice(b",\"latency_ms\":");
    dns::write_u64(latency_ms(ex), out);
    out.extend_from_slice(b",\"extra\":");
    json_value(out, |p| write_opt_bytes(rec.extra, p));
    for (k, f) in [
        (&b",\"policy-rule\":"[..], PolicyField::Rule),
        (b",\"policy-type\":", PolicyField::Type),
        (b",\"policy-match\":", PolicyField::Match),
        (b",\"policy-action\":", PolicyField::Action),
        (b",\"policy-value\":", PolicyField::Value),
    ] {
        out.extend_from_slice(k);
        json_value(out, |p| write_policy_field(rec, f, p));
    }
    out.extend_from_slice(b",\"peer-name\":\"-\",\"query-zone\":");
    json_value(out, |p| write_query_zone(rec, p));
    out.extend_from_slice(b",\"http-protocol\":");
    json_value(out, |p| write_http_protocol(rec, p));
    out.push(b'}');
    // Transform objects in DNS-collector's order (geoip, suspicious, publicsuffix,
    // extracted, reducer, ml, filtering, atags): publicsuffix and reducer go here when
    // those transforms land.
    if ex.sample_rate > 1 {
        out.extend_from_slice(b",\"filtering\":{\"sample-rate\":");
        dns::write_u64(ex.sample_rate.into(), out);
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::{write_go_ip, write_go_json_body, write_rdata, write_rfc3339nano, Raw};
    use crate::dns::Rr;
    use crate::record::Timestamp;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn go_json_escaping() {
        let got = s(|o| write_go_json_body("é\u{7f}\"\\\n\u{1}".as_bytes(), o));
        assert_eq!(got, "é\u{7f}\\\"\\\\\\n\\u0001");
        assert_eq!(
            s(|o| write_go_json_body(b"a\xff\xfeb", o)),
            "a\\ufffd\\ufffdb"
        );
    }

    #[test]
    fn go_rfc3339nano_trims_the_fraction() {
        let t = |sec, nsec| s(|o| write_rfc3339nano(Timestamp { sec, nsec }, o));
        assert_eq!(
            t(1_640_615_624, 559_002_118),
            "2021-12-27T14:33:44.559002118Z"
        );
        assert_eq!(t(1_640_615_624, 500_000_000), "2021-12-27T14:33:44.5Z");
        assert_eq!(t(1_640_615_624, 0), "2021-12-27T14:33:44Z");
    }

    #[test]
    fn go_ip_strings() {
        assert_eq!(s(|o| write_go_ip(&[192, 0, 2, 1], o)), "192.0.2.1");
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
        assert_eq!(s(|o| write_go_ip(&mapped, o)), "192.0.2.1");
        assert_eq!(s(|o| write_go_ip(&[1, 2, 3], o)), "?010203");
    }

    /// One record `example. 60 IN <type> <rdata>` at offset 12 of a message.
    fn rdata_of(rtype: u16, rdata: &[u8]) -> String {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0]);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
        let (rr, _) = Rr::parse(&m, 12).unwrap();
        let mut out = Vec::new();
        match write_rdata(&rr, &m, &mut Raw(&mut out)) {
            Ok(()) => String::from_utf8(out).unwrap(),
            Err(_) => "ERR".into(),
        }
    }

    #[test]
    fn rdata_as_dns_collector_renders_it() {
        assert_eq!(rdata_of(1, &[192, 0, 2, 1]), "192.0.2.1");
        assert_eq!(rdata_of(1, &[192, 0]), "ERR");
        assert_eq!(rdata_of(5, &[0xc0, 12]), "example");
        assert_eq!(rdata_of(15, &[0, 10, 0xc0, 12]), "10 example");
        assert_eq!(rdata_of(33, &[0, 1, 0, 2, 0, 3, 0xc0, 12]), "1 2 3 example");
        assert_eq!(rdata_of(16, b"\x02hi\x03 yo"), "hi yo");
        let mut soa = vec![0xc0, 12, 0xc0, 12];
        for v in [2026u32, 7200, 0xffff_ffff, 1_209_600, 600] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            rdata_of(6, &soa),
            "example example 2026 7200 -1 1209600 600"
        );
        // HTTPS 1 . alpn=h2,h3 port=443
        let https = [
            0, 1, 0, 0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3', 0, 3, 0, 2, 1, 187,
        ];
        assert_eq!(rdata_of(65, &https), "1 . alpn=h2,h3 port=443");
        assert_eq!(rdata_of(99, b"\x01x"), "-");
        assert_eq!(rdata_of(99, b""), "");
    }
}
