//! The fully decoded form of one accepted dnstap message, still borrowing the frame bytes.
//! Built by quick-protobuf (`Record::decode`) or from the lazy views (`Record::from_views`);
//! both give the same value. Knows nothing of output formats.
//!
//! CONTRACT STUB: the dnstap helper replaces the bodies.
#![forbid(unsafe_code)]

use crate::dns;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: u64,
    pub nsec: u32,
}

/// `Policy` (RPZ and similar) as sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy<'a> {
    pub kind: Option<&'a [u8]>,
    pub rule: Option<&'a [u8]>,
    pub action: Option<u32>,
    pub matched: Option<u32>,
    pub value: Option<&'a [u8]>,
}

/// Why a payload could not be decoded at all (its protobuf is broken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub what: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct Record<'a> {
    pub identity: Option<&'a [u8]>,
    pub version: Option<&'a [u8]>,
    pub extra: Option<&'a [u8]>,
    /// `Dnstap.type`
    pub kind: Option<u32>,
    pub message_type: Option<u32>,
    pub socket_family: Option<u32>,
    pub socket_protocol: Option<u32>,
    pub query_address: Option<&'a [u8]>,
    pub response_address: Option<&'a [u8]>,
    pub query_port: Option<u32>,
    pub response_port: Option<u32>,
    pub query_time: Option<Timestamp>,
    pub response_time: Option<Timestamp>,
    pub query_message: Option<&'a [u8]>,
    pub response_message: Option<&'a [u8]>,
    pub query_zone: Option<&'a [u8]>,
    pub policy: Option<Policy<'a>>,
    pub http_protocol: Option<u32>,
    /// The DNS message the record is about (query for query types, response otherwise),
    /// with its header and question parsed; `Err` when it is malformed.
    pub dns: Option<Result<dns::MessageView<'a>, dns::DnsError>>,
}

impl<'a> Record<'a> {
    /// Full decode with quick-protobuf.
    pub fn decode(_payload: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        todo!("dnstap helper")
    }

    /// The timestamp the seed formats show: query time for queries, response time for
    /// responses (falling back to the other).
    pub fn timestamp(&self) -> Option<Timestamp> {
        let query = self.message_type.map(crate::dnstap::is_query_type).unwrap_or(true);
        if query {
            self.query_time.or(self.response_time)
        } else {
            self.response_time.or(self.query_time)
        }
    }
}
