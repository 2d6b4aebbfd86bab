//! Lazy, borrowed view over one dnstap payload: a hand-rolled protobuf scan that finds the
//! fields the prefilters and the seed formats need, in one pass, without allocating.
#![forbid(unsafe_code)]

/// Malformed protobuf: small and `Copy`; `offset` is where in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewError {
    pub what: &'static str,
    pub offset: usize,
}

/// Top level of a `Dnstap` message.
#[derive(Clone, Copy, Debug, Default)]
pub struct DnstapView<'a> {
    pub identity: Option<&'a [u8]>,
    pub version: Option<&'a [u8]>,
    pub extra: Option<&'a [u8]>,
    /// `Dnstap.type` (1 = MESSAGE).
    pub kind: Option<u32>,
    /// Raw bytes of the embedded `Message`, decoded by [`DnstapView::message`].
    pub message: Option<&'a [u8]>,
}

impl<'a> DnstapView<'a> {
    pub fn parse(_payload: &'a [u8]) -> Result<DnstapView<'a>, ViewError> {
        todo!("dnstap helper")
    }

    pub fn message(&self) -> Option<Result<MessageView<'a>, ViewError>> {
        self.message.map(MessageView::parse)
    }
}

/// The scalar and bytes fields of a `Message`, scanned in one pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageView<'a> {
    pub message_type: Option<u32>,
    pub socket_family: Option<u32>,
    pub socket_protocol: Option<u32>,
    pub query_address: Option<&'a [u8]>,
    pub response_address: Option<&'a [u8]>,
    pub query_port: Option<u32>,
    pub response_port: Option<u32>,
    pub query_time_sec: Option<u64>,
    pub query_time_nsec: Option<u32>,
    pub query_message: Option<&'a [u8]>,
    pub query_zone: Option<&'a [u8]>,
    pub response_time_sec: Option<u64>,
    pub response_time_nsec: Option<u32>,
    pub response_message: Option<&'a [u8]>,
    pub policy: Option<&'a [u8]>,
    pub http_protocol: Option<u32>,
}

impl<'a> MessageView<'a> {
    pub fn parse(_buf: &'a [u8]) -> Result<MessageView<'a>, ViewError> {
        todo!("dnstap helper")
    }

    /// The DNS message this dnstap message is about: `query_message` for query types,
    /// `response_message` for responses (falling back to the other when absent).
    pub fn dns_message(&self) -> Option<&'a [u8]> {
        let query = self.message_type.map(super::is_query_type).unwrap_or(true);
        if query {
            self.query_message.or(self.response_message)
        } else {
            self.response_message.or(self.query_message)
        }
    }
}
