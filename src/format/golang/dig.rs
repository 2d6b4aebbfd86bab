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
//! ;example.test.	IN	 SOA
//! ```
//!
//! Two passes: [`scan`] walks the message structure as miekg's unpacking does (header,
//! questions, record headers and lengths) to learn the section counts it will print and
//! where the last OPT record is (printed before the question); [`write_message`] then
//! writes, decoding rdata, which can still fail the message.
#![forbid(unsafe_code)]

use crate::dns::write_u64;

use super::gofmt::write_hex_lower;
use super::rdata::{
    header_prefix, miekg_knows, parse_name, write_edns_options, write_name, write_rdata, Fail,
    WireName, ERR_BUF, ERR_U16, ERR_U32,
};
use super::tables::{opcode_name, rcode_name, write_class, write_rtype};

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

/// What [`scan`] learns: the records miekg keeps per section and the last OPT record.
#[derive(Default)]
pub(super) struct Scan {
    pub counts: [usize; 4],
    /// Offsets of the last OPT record of the additional section: its TTL field (extended
    /// rcode, version, flags), class (UDP size) and rdata.
    opt: Option<(u32, u16, usize, usize)>,
    /// Where the first question starts (12) and where the answer section starts.
    answers_at: usize,
}

impl Scan {
    /// The first question's name, type and class (the quiet text's question).
    pub fn first_question(&self, msg: &[u8]) -> Option<(WireName, u16, u16)> {
        if self.counts[0] == 0 {
            return None;
        }
        read_question(msg, 12).ok().map(|(n, t, c, _)| (n, t, c))
    }
}

/// miekg's `Msg.Unpack` structure: `Err` with its error text when it fails the message.
pub(super) fn scan(msg: &[u8]) -> Result<Scan, Fail> {
    if msg.len() < 12 {
        return Err(ERR_U16);
    }
    let mut s = Scan::default();
    if msg.len() == 12 {
        s.answers_at = 12;
        return Ok(s);
    }
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]) as usize;
    let mut pos = 12;
    for _ in 0..count(0) {
        pos = read_question(msg, pos)?.3;
        s.counts[0] += 1;
    }
    s.answers_at = pos;
    for section in 1..4 {
        for _ in 0..count(section) {
            let Some(rr) = read_rr(msg, pos)? else {
                break;
            };
            if section == 3 && rr.rtype == 41 {
                s.opt = Some((rr.ttl, rr.class, rr.rdata_start, rr.rdata_end));
            }
            pos = rr.next();
            s.counts[section] += 1;
        }
    }
    Ok(s)
}

const SECTIONS: [&[u8]; 3] = [
    b"\n;; ANSWER SECTION:\n",
    b"\n;; AUTHORITY SECTION:\n",
    b"\n;; ADDITIONAL SECTION:\n",
];

/// Writes `Msg.String()` of a message that [`scan`] accepted. On `Err` (rdata miekg
/// cannot unpack) `out` holds a partial write the caller drops.
pub(super) fn write_message(msg: &[u8], s: &Scan, out: &mut Vec<u8>) -> Result<(), Fail> {
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let mut rcode = flags & 15;
    if let Some((ttl, ..)) = s.opt {
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
        write_u64(s.counts[i] as u64, out);
    }
    out.push(b'\n');
    if let Some((ttl, class, start, end)) = s.opt {
        write_opt(msg, ttl, class, start, end, out)?;
        out.push(b'\n');
    }
    if s.counts[0] > 0 {
        out.extend_from_slice(b"\n;; QUESTION SECTION:\n");
        let mut pos = 12;
        for _ in 0..s.counts[0] {
            let (name, qtype, qclass, next) = read_question(msg, pos)?;
            out.push(b';');
            write_name(msg, name, out);
            out.push(b'\t');
            write_class(qclass, out);
            out.extend_from_slice(b"\t ");
            write_rtype(qtype, out);
            out.push(b'\n');
            pos = next;
        }
    }
    let mut pos = s.answers_at;
    for section in 1..4 {
        let n = s.counts[section];
        let additional = section == 3;
        if n > 0 && (!additional || s.opt.is_none() || n > 1) {
            out.extend_from_slice(SECTIONS[section - 1]);
        }
        for _ in 0..n {
            let Some(rr) = read_rr(msg, pos)? else {
                break;
            };
            pos = rr.next();
            if rr.rtype == 41 {
                if !additional {
                    write_opt(msg, rr.ttl, rr.class, rr.rdata_start, rr.rdata_end, out)?;
                    out.push(b'\n');
                } else if !rr.no_rdata() {
                    // Options of an OPT record that is not printed are still unpacked.
                    let mark = out.len();
                    write_edns_options(&msg[..rr.rdata_end], rr.rdata_start, out)?;
                    out.truncate(mark);
                }
                continue;
            }
            write_rr(msg, &rr, out)?;
            out.push(b'\n');
        }
    }
    Ok(())
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
