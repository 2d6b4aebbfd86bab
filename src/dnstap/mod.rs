//! dnstap protobuf (proto/dnstap.proto): a lazy borrowed view for the prefilters
//! ([`view`], over the protobuf wire cursor in `wire.rs`, with the qname prefilter's
//! narrower `Message` scan in `prefilter.rs`), the generated quick-protobuf types for the
//! full decode ([`pb`]), and the names of its enum values. Knows nothing of Frame Streams,
//! sockets or output formats.
//!
//! Enum values travel as numbers everywhere in this crate; these functions give their names
//! as `&'static str` and return `None` for a value the schema does not define (callers then
//! print the number: an unknown value is never a reason to drop a message).
#![forbid(unsafe_code)]
// Wire bytes are read with `get`, `first_chunk` and patterns; a justified index carries an
// `#[allow]` with the reason it is in range.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod pb;
mod prefilter;
#[cfg(test)]
mod testkit;
pub mod view;
mod wire;

pub use prefilter::FilterFields;
pub use view::{DnstapSink, DnstapView, MessageSink, MessageView, PolicyView, ViewError};

/// `Dnstap.type` MESSAGE: the only payload type defined.
pub const DNSTAP_TYPE_MESSAGE: u32 = 1;

/// Schema names of `Message.Type` values 1..=14, by value − 1 (the one list: the output
/// formats and the metrics labels both read it).
pub const MESSAGE_TYPE_NAMES: [&str; 14] = [
    "AUTH_QUERY",
    "AUTH_RESPONSE",
    "RESOLVER_QUERY",
    "RESOLVER_RESPONSE",
    "CLIENT_QUERY",
    "CLIENT_RESPONSE",
    "FORWARDER_QUERY",
    "FORWARDER_RESPONSE",
    "STUB_QUERY",
    "STUB_RESPONSE",
    "TOOL_QUERY",
    "TOOL_RESPONSE",
    "UPDATE_QUERY",
    "UPDATE_RESPONSE",
];

/// Schema names of `SocketProtocol` values 1..=7, by value − 1.
pub const PROTOCOL_NAMES: [&str; 7] = [
    "UDP",
    "TCP",
    "DOT",
    "DOH",
    "DNSCryptUDP",
    "DNSCryptTCP",
    "DOQ",
];

/// Schema names of `SocketFamily` values 1..=2, by value − 1.
pub const FAMILY_NAMES: [&str; 2] = ["INET", "INET6"];

/// `names[v - 1]`, for the 1-based enums above.
#[inline]
fn by_value(names: &'static [&'static str], v: u32) -> Option<&'static str> {
    let i = usize::try_from(v).ok()?.checked_sub(1)?;
    names.get(i).copied()
}

/// Name of a `Message.Type` value ("CLIENT_QUERY"), if known.
pub fn message_type_name(t: u32) -> Option<&'static str> {
    by_value(&MESSAGE_TYPE_NAMES, t)
}

/// Seed text label of a `SocketFamily` value: "IP4" / "IP6".
pub fn family_label(f: u32) -> Option<&'static str> {
    match f {
        1 => Some("IP4"),
        2 => Some("IP6"),
        _ => None,
    }
}

/// Schema name of a `SocketFamily` value: "INET" / "INET6" (full JSON/YAML output).
pub fn family_name(f: u32) -> Option<&'static str> {
    by_value(&FAMILY_NAMES, f)
}

/// Seed text label of a `SocketProtocol` value: UDP, TCP, DOT, DOH, DNSCryptUDP, DNSCryptTCP, DOQ.
pub fn protocol_label(p: u32) -> Option<&'static str> {
    protocol_name(p)
}

/// Schema name of a `SocketProtocol` value. The seed labels are the schema names, so this
/// is [`protocol_label`] under the name the full output uses.
pub fn protocol_name(p: u32) -> Option<&'static str> {
    by_value(&PROTOCOL_NAMES, p)
}

/// Schema name of an `HttpProtocol` value: HTTP1, HTTP2, HTTP3.
pub fn http_protocol_name(h: u32) -> Option<&'static str> {
    match h {
        1 => Some("HTTP1"),
        2 => Some("HTTP2"),
        3 => Some("HTTP3"),
        _ => None,
    }
}

/// Schema name of a `Dnstap.Type` value: MESSAGE.
pub fn dnstap_type_name(t: u32) -> Option<&'static str> {
    match t {
        DNSTAP_TYPE_MESSAGE => Some("MESSAGE"),
        _ => None,
    }
}

/// Schema name of a `Policy.Match` value: QNAME, CLIENT_IP, RESPONSE_IP, NS_NAME, NS_IP.
pub fn policy_match_name(m: u32) -> Option<&'static str> {
    Some(match m {
        1 => "QNAME",
        2 => "CLIENT_IP",
        3 => "RESPONSE_IP",
        4 => "NS_NAME",
        5 => "NS_IP",
        _ => return None,
    })
}

/// Schema name of a `Policy.Action` value: NXDOMAIN, NODATA, PASS, DROP, TRUNCATE, LOCAL_DATA.
pub fn policy_action_name(a: u32) -> Option<&'static str> {
    Some(match a {
        1 => "NXDOMAIN",
        2 => "NODATA",
        3 => "PASS",
        4 => "DROP",
        5 => "TRUNCATE",
        6 => "LOCAL_DATA",
        _ => return None,
    })
}

/// True for the query half of a `Message.Type` (odd values), whose DNS message is
/// `query_message`; responses (even values) carry `response_message`.
pub fn is_query_type(t: u32) -> bool {
    t % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::{
        family_label, family_name, http_protocol_name, is_query_type, message_type_name,
        policy_action_name, policy_match_name, protocol_label,
    };

    #[test]
    fn names_follow_the_schema() {
        let types: Vec<_> = (0..=15).map(message_type_name).collect();
        assert_eq!(types[0], None);
        assert_eq!(types[1], Some("AUTH_QUERY"));
        assert_eq!(types[6], Some("CLIENT_RESPONSE"));
        assert_eq!(types[12], Some("TOOL_RESPONSE"));
        assert_eq!(types[14], Some("UPDATE_RESPONSE"));
        assert_eq!(types[15], None);
        // Every defined query type is odd, every response even, and names agree.
        for t in 1..=14 {
            let name = message_type_name(t).unwrap();
            assert_eq!(is_query_type(t), name.ends_with("_QUERY"), "{name}");
        }
        assert_eq!(
            (family_label(1), family_label(2), family_label(3)),
            (Some("IP4"), Some("IP6"), None)
        );
        assert_eq!(
            (family_name(1), family_name(2), family_name(0)),
            (Some("INET"), Some("INET6"), None)
        );
        let protos: Vec<_> = (1..=7).map(|p| protocol_label(p).unwrap()).collect();
        assert_eq!(
            protos,
            [
                "UDP",
                "TCP",
                "DOT",
                "DOH",
                "DNSCryptUDP",
                "DNSCryptTCP",
                "DOQ"
            ]
        );
        assert_eq!(protocol_label(8), None);
        assert_eq!(http_protocol_name(3), Some("HTTP3"));
        assert_eq!(http_protocol_name(4), None);
        assert_eq!(policy_match_name(5), Some("NS_IP"));
        assert_eq!(policy_match_name(6), None);
        assert_eq!(policy_action_name(6), Some("LOCAL_DATA"));
        assert_eq!(policy_action_name(7), None);
    }
}
