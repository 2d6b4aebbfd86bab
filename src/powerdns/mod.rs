//! PowerDNS protobuf logging, sans-io: the stream framing and the conversion of one
//! `PBDNSMessage` (proto/dnsmessage.proto) into an equivalent dnstap protobuf payload, so
//! that everything downstream (filter, record, transforms, formats, outputs) sees dnstap.
//!
//! dnsdist (`newRemoteLogger`) and pdns-recursor (`protobufServer`,
//! `outgoingProtobufServer`) connect over TCP and write, with no handshake:
//!
//! ```text
//!  | length (u16 BE) | PBDNSMessage (length bytes) | length | PBDNSMessage | ...
//! ```
//!
//! The mapping (PBDNSMessage field → dnstap):
//!
//! ```text
//!  serverIdentity (3)            → Dnstap.identity
//!  response.tags (repeated)      → Dnstap.extra "tags=" + the tags joined by ","
//!  type (1) 1 DNSQueryType       → Message.type CLIENT_QUERY
//!           2 DNSResponseType    →              CLIENT_RESPONSE
//!           3 DNSOutgoingQuery   →              RESOLVER_QUERY
//!           4 DNSIncomingResp.   →              RESOLVER_RESPONSE   (other: message skipped)
//!  socketFamily (4), socketProtocol (5)  → socket_family, socket_protocol (same numbers)
//!  from (6), fromPort (20)       → query_address, query_port
//!  to (7), toPort (21)           → response_address, response_port
//!  timeSec/timeUsec (9, 10)      → query_time_* (queries) or response_time_* (responses)
//!  response.queryTimeSec/Usec    → query_time_* (responses)
//!  id (11), question (12), response.rcode, response.rrs (A, AAAA, CNAME, NS, PTR, DNAME)
//!                                → a synthesized DNS message: query_message for queries,
//!                                  response_message for responses (none when rcode > 15,
//!                                  PowerDNS's "network error")
//!  response.appliedPolicy, appliedPolicyType, appliedPolicyKind, appliedPolicyHit
//!                                → Message.policy rule, match, action, value
//! ```
//!
//! Not carried (dnstap has no field for them): messageId, inBytes, requestorId,
//! deviceId, deviceName, newlyObservedDomain, validationState, originalRequestorSubnet,
//! appliedPolicyTrigger, RRs of other types (PowerDNS sends their rdata as text). Unknown
//! fields are skipped; only malformed protobuf is an error. Knows no sockets, clocks or
//! threads; allocates nothing.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod wire;

use self::wire::{Reader, Value, Writer};

/// Default port of the `powerdns` input (dnsdist's and the recursor's examples use it).
pub const DEFAULT_PORT: u16 = 6001;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 2;

/// Largest PBDNSMessage the framing can carry.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// Total bytes (prefix included) of the message that starts `bytes`, once the prefix is there.
pub fn frame_len_hint(bytes: &[u8]) -> Option<usize> {
    let h: [u8; 2] = bytes.get(..2)?.try_into().ok()?;
    Some(HEADER_LEN + usize::from(u16::from_be_bytes(h)))
}

/// A malformed PBDNSMessage: what was wrong and where (offset in the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub what: &'static str,
    pub offset: usize,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed PowerDNS protobuf: {} at offset {}",
            self.what, self.offset
        )
    }
}

impl std::error::Error for Error {}

/// What [`convert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Converted {
    /// A dnstap payload of this many bytes is at the start of `out`.
    Written(usize),
    /// A message type dnstap has no equivalent for (or none given): nothing written.
    Skipped,
    /// `out` is too small for this message: retry with more room.
    NoRoom,
}

/// The fields of one PBDNSMessage that the conversion uses, borrowed.
#[derive(Default)]
struct Pb<'a> {
    kind: Option<u64>,
    identity: Option<&'a [u8]>,
    family: Option<u64>,
    protocol: Option<u64>,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    time_sec: Option<u64>,
    time_usec: Option<u64>,
    id: Option<u64>,
    qname: Option<&'a [u8]>,
    qtype: Option<u64>,
    qclass: Option<u64>,
    from_port: Option<u64>,
    to_port: Option<u64>,
    /// The DNSResponse sub-message (its RRs are read again while writing).
    response: Option<&'a [u8]>,
    rcode: Option<u64>,
    query_sec: Option<u64>,
    query_usec: Option<u64>,
    policy: Option<&'a [u8]>,
    policy_type: Option<u64>,
    policy_kind: Option<u64>,
    policy_hit: Option<&'a [u8]>,
}

fn err(what: &'static str, offset: usize) -> Error {
    Error { what, offset }
}

/// Scans a message with `f` called for each field; errors carry `base` + the offset.
fn scan<'a>(buf: &'a [u8], base: usize, mut f: impl FnMut(u32, Value<'a>)) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    loop {
        let at = r.offset();
        match r.next_field() {
            Ok(Some((n, v))) => f(n, v),
            Ok(None) => return Ok(()),
            Err(what) => return Err(err(what, base + at)),
        }
    }
}

fn parse(msg: &[u8]) -> Result<Pb<'_>, Error> {
    let mut pb = Pb::default();
    let (mut question, mut response) = (None, None);
    scan(msg, 0, |n, v| match (n, v) {
        (1, Value::Varint(x)) => pb.kind = Some(x),
        (3, Value::Bytes(b)) => pb.identity = Some(b),
        (4, Value::Varint(x)) => pb.family = Some(x),
        (5, Value::Varint(x)) => pb.protocol = Some(x),
        (6, Value::Bytes(b)) => pb.from = Some(b),
        (7, Value::Bytes(b)) => pb.to = Some(b),
        (9, Value::Varint(x)) => pb.time_sec = Some(x),
        (10, Value::Varint(x)) => pb.time_usec = Some(x),
        (11, Value::Varint(x)) => pb.id = Some(x),
        (12, Value::Bytes(b)) => question = Some(b),
        (13, Value::Bytes(b)) => response = Some(b),
        (20, Value::Varint(x)) => pb.from_port = Some(x),
        (21, Value::Varint(x)) => pb.to_port = Some(x),
        _ => {}
    })?;
    if let Some(q) = question {
        scan(q, 0, |n, v| match (n, v) {
            (1, Value::Bytes(b)) => pb.qname = Some(b),
            (2, Value::Varint(x)) => pb.qtype = Some(x),
            (3, Value::Varint(x)) => pb.qclass = Some(x),
            _ => {}
        })?;
    }
    if let Some(r) = response {
        pb.response = Some(r);
        scan(r, 0, |n, v| match (n, v) {
            (1, Value::Varint(x)) => pb.rcode = Some(x),
            (3, Value::Bytes(b)) => pb.policy = Some(b),
            (5, Value::Varint(x)) => pb.query_sec = Some(x),
            (6, Value::Varint(x)) => pb.query_usec = Some(x),
            (7, Value::Varint(x)) => pb.policy_type = Some(x),
            (9, Value::Bytes(b)) => pb.policy_hit = Some(b),
            (10, Value::Varint(x)) => pb.policy_kind = Some(x),
            _ => {}
        })?;
        // Check every RR now, so that writing them cannot meet an error.
        let mut bad = None;
        scan(r, 0, |n, v| {
            if let (2, Value::Bytes(rr), None) = (n, v, bad) {
                bad = scan(rr, 0, |_, _| {}).err();
            }
        })?;
        if let Some(e) = bad {
            return Err(e);
        }
    }
    Ok(pb)
}

// dnstap numbers (proto/dnstap.proto).
const CLIENT_QUERY: u64 = 5;
const CLIENT_RESPONSE: u64 = 6;
const RESOLVER_QUERY: u64 = 3;
const RESOLVER_RESPONSE: u64 = 4;

/// Converts one PBDNSMessage (without its length prefix) into a dnstap payload at the start
/// of `out`. Malformed protobuf is an error; unknown fields and values are skipped.
pub fn convert(msg: &[u8], out: &mut [u8]) -> Result<Converted, Error> {
    let pb = parse(msg)?;
    let (dt_type, is_response) = match pb.kind {
        Some(1) => (CLIENT_QUERY, false),
        Some(2) => (CLIENT_RESPONSE, true),
        Some(3) => (RESOLVER_QUERY, false),
        Some(4) => (RESOLVER_RESPONSE, true),
        _ => return Ok(Converted::Skipped),
    };
    let mut w = Writer::new(out);
    if let Some(id) = pb.identity {
        w.field_bytes(1, id);
    }
    if let Some(r) = pb.response {
        write_tags(&mut w, r);
    }
    w.field_varint(15, 1); // Dnstap.type = MESSAGE
    let m = w.begin_len(14);
    w.field_varint(1, dt_type);
    let family = pb.family.or(match pb.from.or(pb.to).map(<[u8]>::len) {
        Some(4) => Some(1),
        Some(16) => Some(2),
        _ => None,
    });
    if let Some(f @ 1..=2) = family {
        w.field_varint(2, f);
    }
    // PowerDNS and dnstap number UDP, TCP, DoT, DoH, DNSCrypt UDP/TCP and DoQ alike.
    if let Some(p @ 1..=7) = pb.protocol {
        w.field_varint(3, p);
    }
    if let Some(a) = pb.from.filter(|a| matches!(a.len(), 4 | 16)) {
        w.field_bytes(4, a);
    }
    if let Some(a) = pb.to.filter(|a| matches!(a.len(), 4 | 16)) {
        w.field_bytes(5, a);
    }
    if let Some(p) = pb.from_port.filter(|p| *p <= 0xffff) {
        w.field_varint(6, p);
    }
    if let Some(p) = pb.to_port.filter(|p| *p <= 0xffff) {
        w.field_varint(7, p);
    }
    let nsec = |usec: Option<u64>| (usec.unwrap_or(0).min(999_999) * 1000) as u32;
    let (query_time, response_time) = if is_response {
        (
            pb.query_sec.map(|s| (s, nsec(pb.query_usec))),
            pb.time_sec.map(|s| (s, nsec(pb.time_usec))),
        )
    } else {
        (pb.time_sec.map(|s| (s, nsec(pb.time_usec))), None)
    };
    if let Some((s, ns)) = query_time {
        w.field_varint(8, s);
        w.field_fixed32(9, ns);
    }
    if let Some((s, ns)) = response_time {
        w.field_varint(12, s);
        w.field_fixed32(13, ns);
    }
    let rcode = pb.rcode.unwrap_or(0);
    if !is_response || rcode <= 15 {
        let field = if is_response { 14 } else { 10 };
        let d = w.begin_len(field);
        write_dns(&mut w, &pb, is_response);
        w.end_len(d);
    }
    write_policy(&mut w, &pb);
    w.end_len(m);
    Ok(match w.finish() {
        Some(n) => Converted::Written(n),
        None => Converted::NoRoom,
    })
}

/// Dnstap.extra (3) = `tags=` and the response's tags joined by `,`, when it has any
/// (dnsdist puts a query's tags there too). Nothing when there are none.
fn write_tags(w: &mut Writer<'_>, response: &[u8]) {
    let before = w.pos();
    let mark = w.begin_len(3);
    w.bytes(b"tags=");
    let mut tags = 0usize;
    // Already checked by `parse`: the scan cannot fail.
    let _ = scan(response, 0, |n, v| {
        if let (4, Value::Bytes(t)) = (n, v) {
            if tags > 0 {
                w.byte(b',');
            }
            w.bytes(t);
            tags += 1;
        }
    });
    if tags == 0 {
        w.truncate(before);
    } else {
        w.end_len(mark);
    }
}

/// The DNS message PowerDNS described: header, the question, and for responses the RRs
/// whose rdata can be put back in wire form.
///
/// ```text
///  RFC 1035 §4.1.1 header: | ID | QR Opcode AA TC RD RA Z RCODE | QDCOUNT | ANCOUNT | NSCOUNT | ARCOUNT |
///                            16   1    4    1  1  1  1  3  4        16        16        16        16
/// ```
fn write_dns(w: &mut Writer<'_>, pb: &Pb<'_>, is_response: bool) {
    let hdr = w.pos();
    w.u16_be((pb.id.unwrap_or(0) & 0xffff) as u16);
    let flags = if is_response {
        0x8000 | (pb.rcode.unwrap_or(0) & 0xf) as u16
    } else {
        0
    };
    w.u16_be(flags);
    let mut name = [0u8; 255];
    let qname = pb.qname.and_then(|q| name_to_wire(q, &mut name));
    w.u16_be(u16::from(qname.is_some()));
    w.bytes(&[0; 6]); // ANCOUNT (patched below), NSCOUNT, ARCOUNT
    if let Some(n) = qname {
        w.bytes(name.get(..n).unwrap_or_default());
        w.u16_be((pb.qtype.unwrap_or(1) & 0xffff) as u16);
        w.u16_be((pb.qclass.unwrap_or(1) & 0xffff) as u16);
    }
    let Some(resp) = pb.response.filter(|_| is_response) else {
        return;
    };
    let mut count = 0u16;
    // Already checked by `parse`: the scans cannot fail.
    let _ = scan(resp, 0, |n, v| {
        if let (2, Value::Bytes(rr)) = (n, v) {
            if count < u16::MAX && write_rr(w, rr) {
                count += 1;
            }
        }
    });
    w.patch_u16_be(hdr + 6, count);
}

/// One DNSRR as a DNS resource record; false (nothing written) for types whose rdata
/// PowerDNS sends as text this converter does not parse, or a bad name.
fn write_rr(w: &mut Writer<'_>, rr: &[u8]) -> bool {
    let (mut name, mut rtype, mut class, mut ttl, mut rdata) = (None, None, 1u64, 0u64, None);
    let _ = scan(rr, 0, |n, v| match (n, v) {
        (1, Value::Bytes(b)) => name = Some(b),
        (2, Value::Varint(x)) => rtype = Some(x),
        (3, Value::Varint(x)) => class = x,
        (4, Value::Varint(x)) => ttl = x,
        (5, Value::Bytes(b)) => rdata = Some(b),
        _ => {}
    });
    let (Some(name), Some(rtype), Some(rdata)) = (name, rtype, rdata) else {
        return false;
    };
    let mut owner = [0u8; 255];
    let Some(on) = name_to_wire(name, &mut owner) else {
        return false;
    };
    let mut target = [0u8; 255];
    let rd: &[u8] = match rtype {
        1 if rdata.len() == 4 => rdata,
        28 if rdata.len() == 16 => rdata,
        // CNAME, NS, PTR, DNAME: PowerDNS sends the target name as text.
        5 | 2 | 12 | 39 => match name_to_wire(rdata, &mut target) {
            Some(n) => target.get(..n).unwrap_or_default(),
            None => return false,
        },
        _ => return false,
    };
    w.bytes(owner.get(..on).unwrap_or_default());
    w.u16_be((rtype & 0xffff) as u16);
    w.u16_be((class & 0xffff) as u16);
    w.bytes(&((ttl & 0xffff_ffff) as u32).to_be_bytes());
    w.u16_be(rd.len() as u16);
    w.bytes(rd);
    true
}

/// A presentation-format name (`www.example.com.`, trailing dot optional, `\.` and `\DDD`
/// escapes) in uncompressed wire form in `out`; its length, or None when it breaks RFC 1035
/// limits (label 1..=63 bytes, name at most 255).
pub fn name_to_wire(text: &[u8], out: &mut [u8; 255]) -> Option<usize> {
    if text == b"." || text.is_empty() {
        out[0] = 0;
        return Some(1);
    }
    let (mut len_at, mut pos, mut i) = (0usize, 1usize, 0usize);
    let put = |pos: &mut usize, b: u8, out: &mut [u8; 255]| -> Option<()> {
        *out.get_mut(*pos)? = b;
        *pos += 1;
        Some(())
    };
    while i < text.len() {
        let c = *text.get(i)?;
        i += 1;
        match c {
            b'.' => {
                let label = pos - len_at - 1;
                if label == 0 || label > 63 {
                    return None;
                }
                *out.get_mut(len_at)? = label as u8;
                len_at = pos;
                put(&mut pos, 0, out)?;
            }
            b'\\' => {
                let d = text
                    .get(i..i + 3)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                let b = match d {
                    Some(d) => {
                        i += 3;
                        let v = d.iter().fold(0u32, |a, x| a * 10 + u32::from(x - b'0'));
                        u8::try_from(v).ok()?
                    }
                    None => {
                        let b = *text.get(i)?;
                        i += 1;
                        b
                    }
                };
                put(&mut pos, b, out)?;
            }
            c => put(&mut pos, c, out)?,
        }
    }
    // Close the last label when the name did not end with a dot.
    let label = pos - len_at - 1;
    if label > 63 {
        return None;
    }
    if label > 0 {
        *out.get_mut(len_at)? = label as u8;
        put(&mut pos, 0, out)?;
    }
    Some(pos)
}

/// Message.policy (15) from the response's applied policy, when there is one.
///
/// ```text
///  PolicyType  QNAME 2, CLIENTIP 3, RESPONSEIP 4, NSDNAME 5, NSIP 6  → Policy.match 1..=5
///  PolicyKind  NoAction 1 → PASS 3, Drop 2 → DROP 4, NXDOMAIN 3 → NXDOMAIN 1,
///              NODATA 4 → NODATA 2, Truncate 5 → TRUNCATE 5, Custom 6 → LOCAL_DATA 6
/// ```
fn write_policy(w: &mut Writer<'_>, pb: &Pb<'_>) {
    let matched = pb
        .policy_type
        .filter(|t| (2..=6).contains(t))
        .map(|t| t - 1);
    let action = pb.policy_kind.and_then(|k| match k {
        1 => Some(3),
        2 => Some(4),
        3 => Some(1),
        4 => Some(2),
        5 => Some(5),
        6 => Some(6),
        _ => None,
    });
    let rule = pb.policy.filter(|p| !p.is_empty());
    if rule.is_none() && matched.is_none() && action.is_none() {
        return;
    }
    let p = w.begin_len(15);
    if let Some(r) = rule {
        w.field_bytes(2, r);
    }
    if let Some(a) = action {
        w.field_varint(3, a);
    }
    if let Some(m) = matched {
        w.field_varint(4, m);
    }
    if let Some(v) = pb.policy_hit {
        w.field_bytes(5, v);
    }
    w.end_len(p);
}

#[cfg(test)]
mod tests;
