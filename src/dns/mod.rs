//! DNS wire format (RFC 1035 and friends), sans-io: message views over borrowed bytes,
//! names, presentation-format rdata and EDNS. Knows nothing of dnstap or sockets.
//!
//! Nothing here allocates: views borrow the message, and every presentation writer
//! appends to a `Vec<u8>` the caller owns (it only grows). Start reading at
//! [`MessageView::parse`] (the per-message hot path: header and first question), then
//! [`MessageView::records`] (lazy record walk), [`rdata::write_presentation`] and
//! [`edns::Edns`].
#![forbid(unsafe_code)]
// Wire bytes are read with `get`, `first_chunk` and patterns; a justified index carries an
// `#[allow]` with the reason it is in range.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod edns;
mod message;
pub mod name;
pub mod rdata;
mod rr;
mod text;

/// Number and address text writers shared by the record and format layers (decimal, RFC 5952
/// IPv6, dotted IPv4), and the fixed-size appends they use for short pieces.
pub use text::{append_short, append_window, write_ipv4, write_ipv6, write_u64};
pub mod types;

pub use message::{Header, MessageView, Question, Questions, Records, Section};
pub use name::{Name, Visit};
pub use rr::Rr;

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
    /// A compression pointer that does not point strictly backwards (or a chain of more
    /// pointers than any name of legal length needs).
    BadPointer,
    /// Rdata that does not match its type's layout.
    BadRdata,
    /// An EDNS OPT record or option that does not match its layout.
    BadEdns,
}

impl DnsErrorKind {
    /// A short fixed description, for logs and malformed flags.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsErrorKind::Truncated => "truncated",
            DnsErrorKind::BadLabel => "bad label",
            DnsErrorKind::NameTooLong => "name too long",
            DnsErrorKind::BadPointer => "bad compression pointer",
            DnsErrorKind::BadRdata => "bad rdata",
            DnsErrorKind::BadEdns => "bad EDNS option",
        }
    }
}

impl DnsError {
    pub(crate) fn new(kind: DnsErrorKind, offset: usize) -> DnsError {
        DnsError { kind, offset }
    }
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.kind.as_str(), self.offset)
    }
}

impl std::error::Error for DnsError {}
