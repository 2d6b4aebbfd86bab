//! DNS wire format (RFC 1035 and friends), sans-io: message views over borrowed bytes,
//! names, presentation-format rdata and EDNS. Knows nothing of dnstap or sockets.
//!
//! CONTRACT STUB: the dns helper replaces the bodies; the public names are the contract.
#![forbid(unsafe_code)]

pub mod name;
pub mod types;

pub use name::Name;

use std::ops::Range;

/// A parse error: small, `Copy`, allocation-free. `offset` is where in the message it occurred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsError {
    pub kind: DnsErrorKind,
    pub offset: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsErrorKind {
    /// The message ends before the field does.
    Truncated,
    /// A label longer than 63 bytes, or a reserved label type (0x40, 0x80).
    BadLabel,
    /// A name longer than 255 bytes in wire form.
    NameTooLong,
    /// A compression pointer that does not point strictly backwards.
    BadPointer,
    /// Rdata that does not match its type's layout.
    BadRdata,
}

/// RFC 1035 §4.1.1 header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub const LEN: usize = 12;
    pub fn parse(_msg: &[u8]) -> Result<Header, DnsError> {
        todo!("dns helper")
    }
    /// The 4-bit header rcode.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
}

/// The question: name, type, class.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// Which section a resource record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// One resource record; `rdata` is a range into the message.
#[derive(Clone, Debug)]
pub struct Rr<'a> {
    pub name: Name<'a>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Range<usize>,
}

/// Lazy view over one DNS message: the header and the first question are parsed when the
/// view is made; records are walked on demand.
#[derive(Clone, Debug)]
pub struct MessageView<'a> {
    pub msg: &'a [u8],
    pub header: Header,
    pub question: Option<Question<'a>>,
    /// Offset of the first byte after the question section (0 when it could not be read).
    pub after_question: usize,
}

impl<'a> MessageView<'a> {
    /// Parses the header and the first question (if qdcount > 0).
    pub fn parse(_msg: &'a [u8]) -> Result<MessageView<'a>, DnsError> {
        todo!("dns helper")
    }
}
