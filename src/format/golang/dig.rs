//! A DNS message as the `dnstap` CLI prints it: miekg/dns's `Msg.Unpack` rules (what
//! fails a message, and with which error text) and `Msg.String()` (the dig-like text),
//! written from the wire into a caller's buffer, no allocation.
//!
//! ```text
//! ;; opcode: QUERY, status: NOERROR, id: 18144
//! ;; flags: rd ad; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1
//!
//! ;; OPT PSEUDOSECTION:
//! ; EDNS: version 0; flags: ; udp: 1232
//! ; COOKIE: 8b3c54fc7950ed5c
//!
//! ;; QUESTION SECTION:
//! ;example.test.<TAB>IN<TAB> SOA
//! ```
//! (`<TAB>`: a tab.)
//!
//! [`write_message`] reads the message in wire order as miekg's unpacking does, so the
//! first error it meets is the one miekg reports, and writes as it reads.
#![forbid(unsafe_code)]

use crate::dns::write_u64;

use super::edns::write_edns_options;
use super::gofmt::write_hex_lower;
use super::rdata::{header_prefix, miekg_knows, write_rdata};
use super::tables::{opcode_name, rcode_name, write_class, write_rtype};
use super::wire::{parse_name, write_name, Fail, WireName, ERR_BUF, ERR_U16, ERR_U32};

/// One record's header, as miekg's `unpackHeader` reads it.
struct RrHead {
    name: WireName,
    rtype: u16,
    class: u16,
    ttl: u32,
    /// The rdata: `rdata_start..rdata_end`, inside the message.
    rdata_start: usize,
    rdata_end: usize,
}

impl RrHead {
    /// Where the next record starts.
    fn next(&self) -> usize {
        self.rdata_end
    }
    fn no_rdata(&self) -> bool {
        self.rdata_start == self.rdata_end
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, Fail> {
    match msg.get(pos..pos + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(ERR_U16),
    }
}

/// The record starting at `pos`; `None` when the message ends exactly there (miekg
/// then stops the section without error, whatever the header's count said).
fn read_rr(msg: &[u8], pos: usize) -> Result<Option<RrHead>, Fail> {
    if pos == msg.len() {
        return Ok(None);
    }
    let (name, pos) = parse_name(msg, pos)?;
    let rtype = u16_at(msg, pos)?;
    let class = u16_at(msg, pos + 2)?;
    let ttl = match msg.get(pos + 4..pos + 8) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => return Err(ERR_U32),
    };
    let rdlength = u16_at(msg, pos + 8)? as usize;
    let rdata_start = pos + 10;
    let rdata_end = rdata_start + rdlength;
    if rdata_end > msg.len() {
        return Err(Fail::new("dns: overflowing header size"));
    }
    Ok(Some(RrHead {
        name,
        rtype,
        class,
        ttl,
        rdata_start,
        rdata_end,
    }))
}

/// A question as miekg's `unpackQuestion` reads it: the type and class may be cut off by
/// the end of the message (they read as 0). Returns `(name, type, class, next)`.
fn read_question(msg: &[u8], pos: usize) -> Result<(WireName, u16, u16, usize), Fail> {
    let (name, pos) = parse_name(msg, pos)?;
    if pos == msg.len() {
        return Ok((name, 0, 0, pos));
    }
    let qtype = u16_at(msg, pos)?;
    let pos = pos + 2;
    if pos == msg.len() {
        return Ok((name, qtype, 0, pos));
    }
    // A class cut in half reads as 0 and ends the message without error.
    match u16_at(msg, pos) {
        Ok(c) => Ok((name, qtype, c, pos + 2)),
        Err(_) => Ok((name, qtype, 0, msg.len())),
    }
}

/// The last OPT record of the additional section: its TTL field (extended rcode, version,
/// flags), class (UDP size) and rdata range.
type OptAt = (u32, u16, usize, usize);

/// The records miekg keeps per section (question, answer, authority, additional).
pub(super) type Counts = [usize; 4];

const SECTIONS: [&[u8]; 3] = [
    b"\n;; ANSWER SECTION:\n",
    b"\n;; AUTHORITY SECTION:\n",
    b"\n;; ADDITIONAL SECTION:\n",
];

/// Appends `Msg.String()` of `msg` to `out`, or fails with the error miekg's `Msg.Unpack`
/// reports first (and leaves `out` as it was).
///
/// miekg unpacks in wire order and prints the OPT pseudosection, found in the additional
/// section, before the question: the sections are written first, in the order they are
/// read (so the first error found is miekg's), then the header lines and the
/// pseudosection are appended and rotated in front of them.
pub(super) fn write_message(msg: &[u8], out: &mut Vec<u8>) -> Result<Counts, Fail> {
    let mark = out.len();
    let (counts, opt) = match write_sections(msg, out) {
        Ok(found) => found,
        Err(e) => {
            out.truncate(mark);
            return Err(e);
        }
    };
    let body = out.len() - mark;
    write_head(msg, &counts, opt, out);
    let head = out.len() - mark - body;
    // PERF: a rotation in place, instead of rendering the sections twice (once to find
    // the OPT record and the first error, once in order) or through a second buffer.
    out[mark..].rotate_right(head);
    Ok(counts)
}

/// The header lines and the OPT pseudosection.
fn write_head(msg: &[u8], counts: &Counts, opt: Option<OptAt>, out: &mut Vec<u8>) {
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let mut rcode = flags & 15;
    if let Some((ttl, ..)) = opt {
        rcode |= ((ttl >> 24) as u16) << 4;
    }
    out.extend_from_slice(b";; opcode: ");
    out.extend_from_slice(opcode_name((flags >> 11 & 15) as u8).as_bytes());
    out.extend_from_slice(b", status: ");
    out.extend_from_slice(rcode_name(rcode).as_bytes());
    out.extend_from_slice(b", id: ");
    write_u64(u16::from_be_bytes([msg[0], msg[1]]).into(), out);
    out.extend_from_slice(b"\n;; flags:");
    for (bit, name) in [
        (0x8000, " qr"),
        (0x0400, " aa"),
        (0x0200, " tc"),
        (0x0100, " rd"),
        (0x0080, " ra"),
        (0x0040, " z"),
        (0x0020, " ad"),
        (0x0010, " cd"),
    ] {
        if flags & bit != 0 {
            out.extend_from_slice(name.as_bytes());
        }
    }
    for (i, label) in ["; QUERY: ", ", ANSWER: ", ", AUTHORITY: ", ", ADDITIONAL: "]
        .iter()
        .enumerate()
    {
        out.extend_from_slice(label.as_bytes());
        write_u64(counts[i] as u64, out);
    }
    out.push(b'\n');
    if let Some((ttl, class, start, end)) = opt {
        // Its options were unpacked in order already: this cannot fail.
        let _ = write_opt(msg, ttl, class, start, end, out);
        out.push(b'\n');
    }
}

/// The question and record sections, in wire order, as miekg unpacks them.
fn write_sections(msg: &[u8], out: &mut Vec<u8>) -> Result<(Counts, Option<OptAt>), Fail> {
    if msg.len() < 12 {
        return Err(ERR_U16);
    }
    let mut counts = [0; 4];
    let mut opt = None;
    // A bare header: no sections at all, whatever its counts say.
    if msg.len() == 12 {
        return Ok((counts, opt));
    }
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]) as usize;
    let mut pos = 12;
    for _ in 0..count(0) {
        let (name, qtype, qclass, next) = read_question(msg, pos)?;
        if counts[0] == 0 {
            out.extend_from_slice(b"\n;; QUESTION SECTION:\n");
        }
        out.push(b';');
        write_name(msg, name, out);
        out.push(b'\t');
        write_class(qclass, out);
        out.extend_from_slice(b"\t ");
        write_rtype(qtype, out);
        out.push(b'\n');
        counts[0] += 1;
        pos = next;
    }
    for section in 1..4 {
        let mut titled = false;
        for _ in 0..count(section) {
            let Some(rr) = read_rr(msg, pos)? else {
                break;
            };
            pos = rr.next();
            counts[section] += 1;
            if rr.rtype == 41 && section == 3 {
                // Printed as the pseudosection (the last one); its options unpacked now.
                if !rr.no_rdata() {
                    let mark = out.len();
                    write_edns_options(&msg[..rr.rdata_end], rr.rdata_start, out)?;
                    out.truncate(mark);
                }
                opt = Some((rr.ttl, rr.class, rr.rdata_start, rr.rdata_end));
                continue;
            }
            if !titled {
                out.extend_from_slice(SECTIONS[section - 1]);
                titled = true;
            }
            if rr.rtype == 41 {
                write_opt(msg, rr.ttl, rr.class, rr.rdata_start, rr.rdata_end, out)?;
            } else {
                write_rr(msg, &rr, out)?;
            }
            out.push(b'\n');
        }
        // miekg titles the additional section when it holds more than the one OPT record
        // it prints as the pseudosection, even if all of them are OPT records.
        if section == 3 && !titled && counts[3] > 1 {
            out.extend_from_slice(SECTIONS[2]);
        }
    }
    Ok((counts, opt))
}

/// The first question of a message [`write_message`] accepted: name, type, class.
pub(super) fn first_question(msg: &[u8], counts: &Counts) -> Option<(WireName, u16, u16)> {
    if counts[0] == 0 {
        return None;
    }
    read_question(msg, 12).ok().map(|(n, t, c, _)| (n, t, c))
}

/// One record's `String()`: the header (`name TTL class type`, tab-separated) and rdata.
fn write_rr(msg: &[u8], rr: &RrHead, out: &mut Vec<u8>) -> Result<(), Fail> {
    out.extend_from_slice(header_prefix(rr.rtype));
    write_name(msg, rr.name, out);
    out.push(b'\t');
    write_u64(rr.ttl.into(), out);
    out.push(b'\t');
    if !miekg_knows(rr.rtype) {
        // RFC 3597 record: numeric class and type, the rdata in lower-case hex.
        out.extend_from_slice(b"CLASS");
        write_u64(rr.class.into(), out);
        out.extend_from_slice(b"\tTYPE");
        write_u64(rr.rtype.into(), out);
        out.push(b'\t');
        let data = if rr.no_rdata() {
            &[][..]
        } else {
            &msg[rr.rdata_start..rr.rdata_end]
        };
        out.extend_from_slice(b"\\# ");
        write_u64(data.len() as u64, out);
        out.push(b' ');
        write_hex_lower(data, out);
        return Ok(());
    }
    write_class(rr.class, out);
    out.push(b'\t');
    write_rtype(rr.rtype, out);
    out.push(b'\t');
    if rr.no_rdata() {
        write_empty_rdata(rr.rtype, out);
        Ok(())
    } else {
        write_rdata(&msg[..rr.rdata_end], rr.rdata_start, rr.rtype, out)
    }
}

/// A record without rdata: the type's `String()` of its zero value.
fn write_empty_rdata(rtype: u16, out: &mut Vec<u8>) {
    // Every field reads as zero or empty; decoding "nothing" gives exactly that.
    let _ = write_rdata(&[], 0, rtype, out);
}

/// The OPT pseudosection (miekg's `OPT.String()`), starting with its blank line.
fn write_opt(
    msg: &[u8],
    ttl: u32,
    class: u16,
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
) -> Result<(), Fail> {
    out.extend_from_slice(b"\n;; OPT PSEUDOSECTION:\n; EDNS: version ");
    write_u64((ttl >> 16 & 0xff).into(), out);
    out.extend_from_slice(if ttl & 0x8000 != 0 {
        b"; flags: do; ".as_slice()
    } else {
        b"; flags: ; "
    });
    out.extend_from_slice(b"udp: ");
    write_u64(class.into(), out);
    write_edns_options(&msg[..end], start, out)
}

/// `UnpackDomainName(zone, 0)` as the CLI prints `query_zone`; `Err` is miekg's error.
pub(super) fn write_zone(zone: &[u8], out: &mut Vec<u8>) -> Result<(), Fail> {
    if zone.is_empty() {
        return Err(ERR_BUF);
    }
    let (name, _) = parse_name(zone, 0)?;
    write_name(zone, name, out);
    Ok(())
}
