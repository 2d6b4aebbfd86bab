//! One resource record (RFC 1035 §4.1.3): its fixed fields parsed from the wire, its rdata
//! left as a range into the message, and its zone-file presentation. The small shared type
//! of this folder: the message view walks records with it and EDNS reads the OPT record
//! from it, so it imports neither (imports go rr <- edns <- message). Knows nothing of
//! sections, counts or dnstap.
#![forbid(unsafe_code)]

use super::name::Name;
use super::{types, DnsError, DnsErrorKind};
use std::ops::Range;

/// RFC 2136 §1.1: the classes an UPDATE uses for deletions and prerequisites.
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;

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
    ///
    /// A record of class ANY or NONE with no rdata is an UPDATE's deletion or prerequisite
    /// (RFC 2136 §2.4, §2.5: "delete an RRset" is class ANY, TTL 0, RDLENGTH 0, whatever the
    /// type): its presentation is empty, as dig prints it, not an error.
    pub fn write_rdata(&self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), DnsError> {
        if self.rdata.is_empty() && matches!(self.class, CLASS_NONE | CLASS_ANY) {
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use super::Rr;

    /// A message holding one record at offset 0: root owner, then the fixed fields.
    fn record(rtype: u16, class: u16, rdata: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&class.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
        m
    }

    fn show(rtype: u16, class: u16, rdata: &[u8]) -> Result<String, super::DnsErrorKind> {
        let msg = record(rtype, class, rdata);
        let (rr, end) = Rr::parse(&msg, 0).unwrap();
        assert_eq!(end, msg.len());
        let mut out = Vec::new();
        rr.write_presentation(&msg, &mut out).map_err(|e| e.kind)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn update_deletions_have_empty_rdata() {
        // delete an RRset (class ANY) and delete one RR's worth of prerequisite (NONE): no
        // rdata whatever the type
        assert_eq!(show(16, 255, b"").unwrap(), ". 0 ANY TXT ");
        assert_eq!(show(1, 254, b"").unwrap(), ". 0 NONE A ");
        assert_eq!(show(255, 255, b"").unwrap(), ". 0 ANY ANY ");
        // in class IN the same empty rdata is still malformed
        assert!(show(16, 1, b"").is_err());
        assert!(show(1, 1, b"").is_err());
        // and a deletion of one RR (class NONE with rdata) is written as usual
        assert_eq!(
            show(1, 254, &[192, 0, 2, 1]).unwrap(),
            ". 0 NONE A 192.0.2.1"
        );
    }
}
