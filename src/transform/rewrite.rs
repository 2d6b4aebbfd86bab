//! Changes to the DNS messages a record carries, made in the copies [`Enrichment`] holds
//! (never in the frame): the qname lowercased, the message cut down to a minimized qname,
//! the EDNS Client Subnet address rewritten. Shared by the `normalize` and `user-privacy`
//! steps.
//!
//! A record carries one DNS message (the one it is about, [`Record::dns_message`]) and,
//! for knot's responses, the query as well: the "other" message. Both are rewritten, as
//! the full formats print both. A step reads what the steps before it left (the copy in
//! `en` when there is one, else the decoded message) and writes into the copy, made on
//! first change; offsets are taken from the bytes the copy is made of, so they hold in it.
//!
//! Knows DNS wire format and the enrichment; nothing of formats or configuration.
#![forbid(unsafe_code)]

use crate::dns::{types, Header, MessageView};
use crate::record::{Enrichment, Record};

/// EDNS option code of Client Subnet (RFC 7871).
const ECS: u16 = 8;

/// Which of the two slots the message a record is about sits in: `true` for
/// `query_message` (as [`Record::overlaid`] puts a rewritten message back).
fn main_is_query(rec: &Record<'_>) -> bool {
    let query = rec
        .message_type
        .map(crate::dnstap::is_query_type)
        .unwrap_or(true);
    query && rec.query_message.is_some() || rec.response_message.is_none()
}

/// The message the record is about, as the steps so far left it.
pub fn main_message<'x>(rec: &'x Record<'_>, en: &'x Enrichment) -> Option<&'x [u8]> {
    if en.message_set {
        return Some(&en.message);
    }
    rec.dns_message()
}

/// The other message (knot's responses carry the query too), as the steps so far left it.
pub fn other_message<'x>(rec: &'x Record<'_>, en: &'x Enrichment) -> Option<&'x [u8]> {
    if en.other_message_set {
        return Some(&en.other_message);
    }
    decoded_other(rec)
}

fn decoded_other<'x>(rec: &Record<'x>) -> Option<&'x [u8]> {
    if main_is_query(rec) {
        rec.response_message
    } else {
        rec.query_message
    }
}

/// The parsed view of message `w` as the steps so far left it: the record's own view
/// while nothing rewrote the main message (no second parse), else a parse of the copy.
pub fn view<'x>(rec: &'x Record<'_>, en: &'x Enrichment, w: Which) -> Option<MessageView<'x>> {
    if w == Which::Main && !en.message_set {
        if let Some(Ok(v)) = &rec.dns {
            return Some(v.clone());
        }
    }
    MessageView::parse(current(rec, en, w)?).ok()
}

/// Which message a change is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Main,
    Other,
}

pub const BOTH: [Which; 2] = [Which::Main, Which::Other];

fn current<'x>(rec: &'x Record<'_>, en: &'x Enrichment, w: Which) -> Option<&'x [u8]> {
    match w {
        Which::Main => main_message(rec, en),
        Which::Other => other_message(rec, en),
    }
}

/// The copy of message `w` in `en`, made from the current bytes if there is none yet.
fn copy_mut<'e>(rec: &Record<'_>, en: &'e mut Enrichment, w: Which) -> Option<&'e mut Vec<u8>> {
    match w {
        Which::Main => {
            if !en.message_set {
                en.set_message(rec.dns_message()?);
            }
            Some(en.message_mut())
        }
        Which::Other => {
            if !en.other_message_set {
                en.set_other_message(decoded_other(rec)?);
            }
            Some(&mut en.other_message)
        }
    }
}

/// Offsets of the question name's labels that sit in place (not behind a pointer):
/// `(first length byte, end)`; the walk stops at a pointer or the root.
fn qname_span(msg: &[u8]) -> Option<(usize, usize)> {
    let h = Header::parse(msg).ok()?;
    if h.qdcount == 0 {
        return None;
    }
    let mut pos = Header::LEN;
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 || len & 0xc0 != 0 || pos + 1 + len > msg.len() {
            return Some((Header::LEN, pos));
        }
        pos += 1 + len;
    }
}

/// Lowercases (ASCII) the first question's name in both messages, copying a message
/// only when its name has an uppercase letter.
pub fn lowercase_qnames(rec: &Record<'_>, en: &mut Enrichment) {
    for w in BOTH {
        let Some(msg) = current(rec, en, w) else {
            continue;
        };
        let Some((start, end)) = qname_span(msg) else {
            continue;
        };
        if !msg
            .get(start..end)
            .is_some_and(|s| s.iter().any(u8::is_ascii_uppercase))
        {
            continue;
        }
        let Some(m) = copy_mut(rec, en, w) else {
            continue;
        };
        // Length bytes are below 64, never an uppercase letter: the span lowercases as is.
        if let Some(s) = m.get_mut(start..end) {
            s.make_ascii_lowercase();
        }
    }
}

/// Where one Client Subnet option's fields are in a message.
#[derive(Clone, Copy, Default)]
pub struct EcsAt {
    /// Offset of the address bytes (`source_prefix` is the byte two before it).
    pub address: usize,
    pub len: usize,
    pub family: u16,
    pub source_prefix: u8,
}

/// The most Client Subnet options one message is searched for (a message has one; more
/// are malformed and left at this bound's worth).
const MAX_ECS: usize = 8;

fn find_ecs(view: &MessageView<'_>, out: &mut [EcsAt; MAX_ECS]) -> usize {
    let Some(Ok(edns)) = view.edns() else {
        return 0;
    };
    let mut n = 0;
    for o in edns.options() {
        let Ok(o) = o else { break };
        if o.code != ECS || o.data.len() < 4 {
            continue;
        }
        let Some(slot) = out.get_mut(n) else { break };
        *slot = EcsAt {
            address: o.offset + 8,
            len: o.data.len() - 4,
            family: u16::from_be_bytes([o.data[0], o.data[1]]),
            source_prefix: o.data[2],
        };
        n += 1;
    }
    n
}

/// Calls `f(family, source_prefix, address bytes)` on every Client Subnet address of both
/// messages, in copies; a message without one is not copied.
pub fn map_ecs(rec: &Record<'_>, en: &mut Enrichment, mut f: impl FnMut(u16, u8, &mut [u8])) {
    for w in BOTH {
        let mut at = [EcsAt::default(); MAX_ECS];
        let n = match view(rec, en, w) {
            Some(v) => find_ecs(&v, &mut at),
            None => 0,
        };
        if n == 0 {
            continue;
        }
        let Some(m) = copy_mut(rec, en, w) else {
            continue;
        };
        for e in at.iter().take(n) {
            if let Some(a) = m.get_mut(e.address..e.address + e.len) {
                f(e.family, e.source_prefix, a);
            }
        }
    }
}

/// Largest header + question + OPT header the minimized message starts with.
const PREFIX_MAX: usize = Header::LEN + 256 + 4 + 11;

/// Cuts both messages down to the header, the first question with its name replaced by
/// the labels `name(msg)` keeps (`from` = index of the first label kept, of
/// [`super::normalize::QName`]), and the OPT record: the answer, authority and other
/// additional records repeat the full name and are removed (their counts set to 0). A
/// message that cannot be read that far is cut to its header with zero counts: nothing in
/// it can show the name. A message whose name is already its registered domain (or a
/// public suffix) stays whole.
pub fn minimize(
    rec: &Record<'_>,
    en: &mut Enrichment,
    mut keep_from: impl FnMut(&super::normalize::QName) -> usize,
) {
    for w in BOTH {
        let Some(msg) = current(rec, en, w) else {
            continue;
        };
        let mut prefix = [0u8; PREFIX_MAX];
        // (prefix length, options range in msg)
        let plan = plan_minimized(msg, &mut prefix, &mut keep_from);
        if matches!(plan, Some(None)) {
            continue;
        }
        let Some(m) = copy_mut(rec, en, w) else {
            continue;
        };
        match plan {
            Some(None) => {}
            Some(Some((plen, opts))) => {
                let olen = opts.len();
                if plen > opts.start {
                    m.resize(m.len().max(plen + olen), 0);
                }
                m.copy_within(opts, plen);
                m.truncate(plen + olen);
                if let Some(d) = m.get_mut(..plen) {
                    d.copy_from_slice(prefix.get(..plen).unwrap_or_default());
                }
            }
            None => {
                m.truncate(Header::LEN);
                if let Some(counts) = m.get_mut(4..) {
                    counts.fill(0);
                }
            }
        }
    }
}

/// Writes into `prefix` the header, the minimized question and the OPT record's first 11
/// bytes; returns its length and where the OPT options are in `msg`. `Some(None)` when the
/// name is already as short as it gets (the message stays as it is); `None` when the
/// message cannot be read that far.
#[allow(clippy::type_complexity, reason = "the three outcomes of one walk")]
fn plan_minimized(
    msg: &[u8],
    prefix: &mut [u8; PREFIX_MAX],
    keep_from: &mut impl FnMut(&super::normalize::QName) -> usize,
) -> Option<Option<(usize, std::ops::Range<usize>)>> {
    let view = MessageView::parse(msg).ok()?;
    let q = view.question.as_ref()?;
    let name = super::normalize::QName::of_message(msg)?;
    let from = keep_from(&name).min(name.len());
    if from == 0 {
        return Some(None);
    }
    let edns = match view.edns() {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => return None,
    };
    let header = msg.get(..Header::LEN)?;
    prefix.get_mut(..Header::LEN)?.copy_from_slice(header);
    // qdcount 1, ancount 0, nscount 0, arcount 0 or 1.
    prefix
        .get_mut(4..12)?
        .copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    let mut at = Header::LEN;
    at += name.write_wire(from, prefix.get_mut(at..)?)?;
    let mut tail = [0u8; 4];
    tail[..2].copy_from_slice(&q.qtype.to_be_bytes());
    tail[2..].copy_from_slice(&q.qclass.to_be_bytes());
    prefix.get_mut(at..at + 4)?.copy_from_slice(&tail);
    at += 4;
    let Some(e) = edns else {
        return Some(Some((at, msg.len()..msg.len())));
    };
    // | root | TYPE=OPT | CLASS=udp size | TTL = ext rcode, version, flags | RDLENGTH |
    let ttl = (u32::from(e.ext_rcode) << 24) | (u32::from(e.version) << 16) | u32::from(e.flags);
    let rdlen = u16::try_from(e.options.len()).ok()?;
    let mut opt = [0u8; 11];
    opt[1..3].copy_from_slice(&types::OPT.to_be_bytes());
    opt[3..5].copy_from_slice(&e.udp_size.to_be_bytes());
    opt[5..9].copy_from_slice(&ttl.to_be_bytes());
    opt[9..11].copy_from_slice(&rdlen.to_be_bytes());
    prefix.get_mut(at..at + 11)?.copy_from_slice(&opt);
    at += 11;
    Some(Some((
        at,
        e.options_offset..e.options_offset + e.options.len(),
    )))
}
