//! dnstap protobuf (proto/dnstap.proto): a lazy borrowed view for the prefilters, and the
//! names of its enum values. Knows nothing of Frame Streams or sockets.
//!
//! CONTRACT STUB: the dnstap helper replaces the bodies; the public names are the contract.
#![forbid(unsafe_code)]

pub mod view;

pub use view::{DnstapView, MessageView, ViewError};

/// Name of a `Message.Type` value ("CLIENT_QUERY"), if known.
pub fn message_type_name(_t: u32) -> Option<&'static str> {
    todo!("dnstap helper")
}

/// Seed text label of a `SocketFamily` value: "IP4" / "IP6".
pub fn family_label(_f: u32) -> Option<&'static str> {
    todo!("dnstap helper")
}

/// Seed text label of a `SocketProtocol` value: UDP, TCP, DOT, DOH, DNSCryptUDP, DNSCryptTCP, DOQ.
pub fn protocol_label(_p: u32) -> Option<&'static str> {
    todo!("dnstap helper")
}

/// True for the query half of a `Message.Type` (odd values), whose DNS message is
/// `query_message`; responses (even values) carry `response_message`.
pub fn is_query_type(t: u32) -> bool {
    t % 2 == 1
}
