//! One resource record (RFC 1035 §4.1.3): its fixed fields parsed from the wire, its rdata
//! left as a range into the message, and its zone-file presentation. The small shared type
//! of this folder: the message view walks records with it and EDNS reads the OPT record
//! from it, so it imports neither (imports go rr <- edns <- message). Knows nothing of
//! sections, counts or dnstap.
#![forbid(unsafe_code)]

use super::name::Name;
use super::{types, DnsError, DnsErrorKind};
use std::ops::Range;

/// One resource record; `rdata` is a range into the message.
///
/// ```text
/// | NAME (variable) | TYPE (16) | CLASS (16) | TTL (32) | RDLENGTH (16) | RDATA |
/// ```
/// Invariant: `rdata.start <= rdata.end <= msg.len()` for the message it was parsed from.
#[derive(Clone, Debug)]
pub struct Rr<'a> {
    pub name: Name<'a>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Range<usize>,
}

impl<'a> Rr<'a> {
    /// Parses one record at `pos`; returns it and the offset after its rdata.
    pub fn parse(msg: &'a [u8], pos: usize) -> Result<(Rr<'a>, usize), DnsError> {
        let (name, pos) = Name::parse(msg, pos)?;
        let Some(f) = msg.get(pos..).and_then(<[u8]>::first_chunk::<10>) else {
            return Err(DnsError::new(DnsErrorKind::Truncated, pos));
        };
        let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
        let start = pos + 10;
        let end = start + rdlen;
        if end > msg.len() {
            return Err(DnsError::new(DnsErrorKind::Truncated, pos + 8));
        }
        let rr = Rr {
            name,
            rtype: u16::from_be_bytes([f[0], f[1]]),
            class: u16::from_be_bytes([f[2], f[3]]),
            ttl: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
            rdata: start..end,
        };
        Ok((rr, end))
    }

    /// Writes the rdata in presentation format (see [`super::rdata::write_presentation`]).
    pub fn write_rdata(&self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), DnsError> {
        super::rdata::write_presentation(msg, self.rtype, self.rdata.clone(), out)
    }

    /// Writes the whole record as one zone-file line without a newline,
    /// `owner ttl class type rdata`, fields separated by one space. On error (malformed
    /// rdata) nothing is written.
    pub fn write_presentation(&self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), DnsError> {
        let mark = out.len();
        self.name.write_presentation(out);
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(self.ttl).as_bytes());
        out.push(b' ');
        types::write_class(self.class, out);
        out.push(b' ');
        types::write_rtype(self.rtype, out);
        out.push(b' ');
        self.write_rdata(msg, out)
            .inspect_err(|_| out.truncate(mark))
    }
}
