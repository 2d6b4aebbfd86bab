//! Lazy, borrowed views over one dnstap payload: [`DnstapView`], [`MessageView`] and
//! [`PolicyView`] find the fields the prefilters and the seed formats need, in one pass,
//! without allocating.
//!
//! This is the prefilter path (`benches/dnstap.rs`, "view"): [`DnstapView::parse`] walks the
//! top-level `Dnstap` once and only remembers where the embedded `Message` is;
//! [`DnstapView::message`] walks that `Message` once when a filter or formatter needs it.
//! This file owns the field numbers of proto/dnstap.proto and the scans over them; the
//! protobuf wire reading (varints, lengths, skipping) is `wire.rs`, and the qname
//! prefilter's narrower scan of a `Message` is `prefilter.rs`. It knows nothing else: no
//! Frame Streams, no DNS, no output format. A malformed payload is a [`ViewError`], never a
//! panic.
//!
//! Decoding rules shared with `Record::decode` (quick-protobuf, src/dnstap/pb.rs), so the two
//! always agree: fields may come in any order; a repeated field keeps its last value (also
//! for the embedded `Message`, which is not merged); a known field number sent with another
//! wire type is skipped like an unknown field; `uint32` and enum fields keep the low 32 bits
//! of the varint; enum values are plain numbers (unknown values are kept, never an error).
#![forbid(unsafe_code)]

pub use super::wire::ViewError;
use super::wire::{Bad, Reader, I32, LEN, VARINT};

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

// Keys (field_number << 3 | wire_type) of the fields we read, from proto/dnstap.proto.
// Dnstap:
pub(super) const DNSTAP_IDENTITY: u64 = 1 << 3 | LEN;
pub(super) const DNSTAP_VERSION: u64 = 2 << 3 | LEN;
pub(super) const DNSTAP_EXTRA: u64 = 3 << 3 | LEN;
pub(super) const DNSTAP_MESSAGE: u64 = 14 << 3 | LEN;
pub(super) const DNSTAP_TYPE: u64 = 15 << 3 | VARINT;
// Message:
pub(super) const MSG_TYPE: u64 = 1 << 3 | VARINT;
pub(super) const MSG_SOCKET_FAMILY: u64 = 2 << 3 | VARINT;
pub(super) const MSG_SOCKET_PROTOCOL: u64 = 3 << 3 | VARINT;
pub(super) const MSG_QUERY_ADDRESS: u64 = 4 << 3 | LEN;
pub(super) const MSG_RESPONSE_ADDRESS: u64 = 5 << 3 | LEN;
pub(super) const MSG_QUERY_PORT: u64 = 6 << 3 | VARINT;
pub(super) const MSG_RESPONSE_PORT: u64 = 7 << 3 | VARINT;
pub(super) const MSG_QUERY_TIME_SEC: u64 = 8 << 3 | VARINT;
pub(super) const MSG_QUERY_TIME_NSEC: u64 = 9 << 3 | I32;
pub(super) const MSG_QUERY_MESSAGE: u64 = 10 << 3 | LEN;
pub(super) const MSG_QUERY_ZONE: u64 = 11 << 3 | LEN;
pub(super) const MSG_RESPONSE_TIME_SEC: u64 = 12 << 3 | VARINT;
pub(super) const MSG_RESPONSE_TIME_NSEC: u64 = 13 << 3 | I32;
pub(super) const MSG_RESPONSE_MESSAGE: u64 = 14 << 3 | LEN;
pub(super) const MSG_POLICY: u64 = 15 << 3 | LEN;
pub(super) const MSG_HTTP_PROTOCOL: u64 = 16 << 3 | VARINT;
// Policy:
const POLICY_TYPE: u64 = 1 << 3 | LEN;
const POLICY_RULE: u64 = 2 << 3 | LEN;
const POLICY_ACTION: u64 = 3 << 3 | VARINT;
const POLICY_MATCH: u64 = 4 << 3 | VARINT;
const POLICY_VALUE: u64 = 5 << 3 | LEN;

impl<'a> DnstapView<'a> {
    /// Scans the top-level `Dnstap` once. The embedded `Message` is only located here; its
    /// fields are read by [`DnstapView::message`].
    pub fn parse(payload: &'a [u8]) -> Result<DnstapView<'a>, ViewError> {
        let mut view = DnstapView::default();
        view.message = DnstapView::scan_into(payload, &mut view)?;
        Ok(view)
    }

    /// The scan of [`DnstapView::parse`], handing each top-level field to `sink` instead of
    /// keeping it; returns the embedded `Message`'s bytes, if any.
    #[inline]
    pub fn scan_into<S: DnstapSink<'a>>(
        payload: &'a [u8],
        sink: &mut S,
    ) -> Result<Option<&'a [u8]>, ViewError> {
        let mut r = Reader::new(payload);
        let mut message = None;
        let scanned = (|| -> Result<(), Bad> {
            while !r.at_end() {
                let at = r.pos;
                let key = r.varint()?;
                match key {
                    // A second `message` is refused rather than merged: quick-protobuf would
                    // decode every occurrence while the view reads one, and no sender
                    // repeats it (tests/fuzz_regressions.rs).
                    DNSTAP_MESSAGE if message.is_some() => return Err(Bad::Repeated),
                    DNSTAP_MESSAGE => message = Some(r.bytes()?),
                    DNSTAP_TYPE => sink.kind(r.varint()? as u32),
                    DNSTAP_IDENTITY => sink.identity(r.bytes()?),
                    DNSTAP_VERSION => sink.version(r.bytes()?),
                    DNSTAP_EXTRA => sink.extra(r.bytes()?),
                    _ => r.skip(at, key)?,
                }
            }
            Ok(())
        })();
        scanned.map_err(|bad| r.error(bad))?;
        Ok(message)
    }

    /// Scans the embedded `Message`; `None` when the payload has none. Each call scans
    /// again: keep the result.
    #[inline]
    pub fn message(&self) -> Option<Result<MessageView<'a>, ViewError>> {
        self.message.map(MessageView::parse)
    }
}

/// Where a scan of the top-level `Dnstap` puts the fields it reads: a [`DnstapView`], or
/// a caller's own value (`Record::parse_in_place` fills its record with them). A field
/// sent twice is given twice; the last one is the value.
pub trait DnstapSink<'a> {
    fn identity(&mut self, v: &'a [u8]);
    fn version(&mut self, v: &'a [u8]);
    fn extra(&mut self, v: &'a [u8]);
    /// `Dnstap.type`.
    fn kind(&mut self, v: u32);
}

impl<'a> DnstapSink<'a> for DnstapView<'a> {
    #[inline(always)]
    fn identity(&mut self, v: &'a [u8]) {
        self.identity = Some(v);
    }
    #[inline(always)]
    fn version(&mut self, v: &'a [u8]) {
        self.version = Some(v);
    }
    #[inline(always)]
    fn extra(&mut self, v: &'a [u8]) {
        self.extra = Some(v);
    }
    #[inline(always)]
    fn kind(&mut self, v: u32) {
        self.kind = Some(v);
    }
}

/// Where a scan of a `Message` puts the fields it reads: a [`MessageView`], or a caller's
/// own value (`Record::parse_in_place` fills its record with them, so a field goes
/// straight to where it is kept). A field sent twice is given twice; the last one is the
/// value. `policy` is refused when repeated, as `Dnstap.message` is.
pub trait MessageSink<'a> {
    fn message_type(&mut self, v: u32);
    fn socket_family(&mut self, v: u32);
    fn socket_protocol(&mut self, v: u32);
    fn query_address(&mut self, v: &'a [u8]);
    fn response_address(&mut self, v: &'a [u8]);
    fn query_port(&mut self, v: u32);
    fn response_port(&mut self, v: u32);
    fn query_time_sec(&mut self, v: u64);
    fn query_time_nsec(&mut self, v: u32);
    fn query_message(&mut self, v: &'a [u8]);
    fn query_zone(&mut self, v: &'a [u8]);
    fn response_time_sec(&mut self, v: u64);
    fn response_time_nsec(&mut self, v: u32);
    fn response_message(&mut self, v: &'a [u8]);
    /// The bytes of `Message.policy`.
    fn policy(&mut self, v: &'a [u8]);
    /// Whether a `policy` was given already.
    fn has_policy(&self) -> bool;
    fn http_protocol(&mut self, v: u32);
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
    /// Scans a `Message` (the bytes of `Dnstap.message`) once.
    // PERF: inline, with the scan itself out of line, so the 192-byte view is built in the
    // caller's frame instead of being copied out through `Result` and `Option` (memcpy was a
    // quarter of the profile; benches/dnstap.rs "view": 45 -> 39 ns/msg).
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<MessageView<'a>, ViewError> {
        let mut m = MessageView::default();
        MessageView::scan_into(buf, &mut m)?;
        Ok(m)
    }

    /// The scan of [`MessageView::parse`], handing each field to `sink` instead of keeping
    /// it.
    #[inline]
    pub fn scan_into<S: MessageSink<'a>>(buf: &'a [u8], sink: &mut S) -> Result<(), ViewError> {
        let mut r = Reader::new(buf);
        match scan(sink, &mut r) {
            Ok(()) => Ok(()),
            Err(bad) => Err(r.error(bad)),
        }
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

    /// Decodes the embedded `Policy`, if any.
    pub fn policy(&self) -> Option<Result<PolicyView<'a>, ViewError>> {
        self.policy.map(PolicyView::parse)
    }
}

impl<'a> MessageSink<'a> for MessageView<'a> {
    #[inline(always)]
    fn message_type(&mut self, v: u32) {
        self.message_type = Some(v);
    }
    #[inline(always)]
    fn socket_family(&mut self, v: u32) {
        self.socket_family = Some(v);
    }
    #[inline(always)]
    fn socket_protocol(&mut self, v: u32) {
        self.socket_protocol = Some(v);
    }
    #[inline(always)]
    fn query_address(&mut self, v: &'a [u8]) {
        self.query_address = Some(v);
    }
    #[inline(always)]
    fn response_address(&mut self, v: &'a [u8]) {
        self.response_address = Some(v);
    }
    #[inline(always)]
    fn query_port(&mut self, v: u32) {
        self.query_port = Some(v);
    }
    #[inline(always)]
    fn response_port(&mut self, v: u32) {
        self.response_port = Some(v);
    }
    #[inline(always)]
    fn query_time_sec(&mut self, v: u64) {
        self.query_time_sec = Some(v);
    }
    #[inline(always)]
    fn query_time_nsec(&mut self, v: u32) {
        self.query_time_nsec = Some(v);
    }
    #[inline(always)]
    fn query_message(&mut self, v: &'a [u8]) {
        self.query_message = Some(v);
    }
    #[inline(always)]
    fn query_zone(&mut self, v: &'a [u8]) {
        self.query_zone = Some(v);
    }
    #[inline(always)]
    fn response_time_sec(&mut self, v: u64) {
        self.response_time_sec = Some(v);
    }
    #[inline(always)]
    fn response_time_nsec(&mut self, v: u32) {
        self.response_time_nsec = Some(v);
    }
    #[inline(always)]
    fn response_message(&mut self, v: &'a [u8]) {
        self.response_message = Some(v);
    }
    #[inline(always)]
    fn policy(&mut self, v: &'a [u8]) {
        self.policy = Some(v);
    }
    #[inline(always)]
    fn has_policy(&self) -> bool {
        self.policy.is_some()
    }
    #[inline(always)]
    fn http_protocol(&mut self, v: u32) {
        self.http_protocol = Some(v);
    }
}

/// The `Message` scan of [`MessageView::scan_into`].
#[inline(never)]
fn scan<'a, S: MessageSink<'a>>(sink: &mut S, r: &mut Reader<'a>) -> Result<(), Bad> {
    // PERF: senders write the fields in field-number order (all the lab's servers do), so
    // expect each key in turn: a row of well-predicted compares instead of one indirect
    // jump per field (benches/dnstap.rs "view"). Whatever does not fit (a field out of
    // order, repeated, or unknown) goes to the general loop below, which gives the same
    // result in any order. Measured: view 51 -> 48.5 ns/msg.
    //
    // PERF: senders start a Message with type, socket_family and socket_protocol, three
    // one-byte keys with one-byte values: all six bytes checked with one load instead of
    // three dependent steps, as the prefilter's scan does (prefilter.rs). Writer bench
    // (benches/format.rs "writer", synthetic corpus): 187 -> 181 CPU ns/msg.
    if let Some(word) = r.buf.first_chunk::<8>() {
        let word = u64::from_le_bytes(*word);
        const MASK: u64 = 0x80ff_80ff_80ff;
        const KEYS: u64 = MSG_SOCKET_PROTOCOL << 32 | MSG_SOCKET_FAMILY << 16 | MSG_TYPE;
        if r.pos == 0 && word & MASK == KEYS {
            sink.message_type(u32::from((word >> 8) as u8));
            sink.socket_family(u32::from((word >> 24) as u8));
            sink.socket_protocol(u32::from((word >> 40) as u8));
            r.pos = 6;
        }
    }
    let (mut at, mut key) = r.next_key()?;
    macro_rules! in_order {
        ($key:ident, $field:ident, $read:expr) => {
            if key == $key {
                sink.$field($read);
                (at, key) = r.next_key()?;
            }
        };
    }
    in_order!(MSG_TYPE, message_type, r.varint()? as u32);
    in_order!(MSG_SOCKET_FAMILY, socket_family, r.varint()? as u32);
    in_order!(MSG_SOCKET_PROTOCOL, socket_protocol, r.varint()? as u32);
    in_order!(MSG_QUERY_ADDRESS, query_address, r.bytes()?);
    in_order!(MSG_RESPONSE_ADDRESS, response_address, r.bytes()?);
    in_order!(MSG_QUERY_PORT, query_port, r.varint()? as u32);
    in_order!(MSG_RESPONSE_PORT, response_port, r.varint()? as u32);
    in_order!(MSG_QUERY_TIME_SEC, query_time_sec, r.varint()?);
    in_order!(MSG_QUERY_TIME_NSEC, query_time_nsec, r.fixed32()?);
    in_order!(MSG_QUERY_MESSAGE, query_message, r.bytes()?);
    in_order!(MSG_QUERY_ZONE, query_zone, r.bytes()?);
    in_order!(MSG_RESPONSE_TIME_SEC, response_time_sec, r.varint()?);
    in_order!(MSG_RESPONSE_TIME_NSEC, response_time_nsec, r.fixed32()?);
    in_order!(MSG_RESPONSE_MESSAGE, response_message, r.bytes()?);
    in_order!(MSG_POLICY, policy, r.bytes()?);
    in_order!(MSG_HTTP_PROTOCOL, http_protocol, r.varint()? as u32);
    while at < r.buf.len() {
        field(sink, r, at, key)?;
        (at, key) = r.next_key()?;
    }
    Ok(())
}

/// One field of any key, in any order.
#[inline(never)]
fn field<'a, S: MessageSink<'a>>(
    sink: &mut S,
    r: &mut Reader<'a>,
    at: usize,
    key: u64,
) -> Result<(), Bad> {
    match key {
        MSG_TYPE => sink.message_type(r.varint()? as u32),
        MSG_SOCKET_FAMILY => sink.socket_family(r.varint()? as u32),
        MSG_SOCKET_PROTOCOL => sink.socket_protocol(r.varint()? as u32),
        MSG_QUERY_ADDRESS => sink.query_address(r.bytes()?),
        MSG_RESPONSE_ADDRESS => sink.response_address(r.bytes()?),
        MSG_QUERY_PORT => sink.query_port(r.varint()? as u32),
        MSG_RESPONSE_PORT => sink.response_port(r.varint()? as u32),
        MSG_QUERY_TIME_SEC => sink.query_time_sec(r.varint()?),
        MSG_QUERY_TIME_NSEC => sink.query_time_nsec(r.fixed32()?),
        MSG_QUERY_MESSAGE => sink.query_message(r.bytes()?),
        MSG_QUERY_ZONE => sink.query_zone(r.bytes()?),
        MSG_RESPONSE_TIME_SEC => sink.response_time_sec(r.varint()?),
        MSG_RESPONSE_TIME_NSEC => sink.response_time_nsec(r.fixed32()?),
        MSG_RESPONSE_MESSAGE => sink.response_message(r.bytes()?),
        // Refused when repeated, as `Dnstap.message` is (see `DnstapView::parse`).
        MSG_POLICY if sink.has_policy() => return Err(Bad::Repeated),
        MSG_POLICY => sink.policy(r.bytes()?),
        MSG_HTTP_PROTOCOL => sink.http_protocol(r.varint()? as u32),
        _ => r.skip(at, key)?,
    }
    Ok(())
}

/// The fields of a `Message.policy` (RPZ and similar). Enum fields are plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyView<'a> {
    /// `Policy.type` ("RPZ"); a `string` in the schema, kept as bytes so that invalid UTF-8
    /// does not fail the message.
    pub kind: Option<&'a [u8]>,
    pub rule: Option<&'a [u8]>,
    pub action: Option<u32>,
    pub matched: Option<u32>,
    pub value: Option<&'a [u8]>,
}

impl<'a> PolicyView<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<PolicyView<'a>, ViewError> {
        let mut r = Reader::new(buf);
        let mut p = PolicyView::default();
        let scanned = (|| -> Result<(), Bad> {
            while !r.at_end() {
                let at = r.pos;
                let key = r.varint()?;
                match key {
                    POLICY_TYPE => p.kind = Some(r.bytes()?),
                    POLICY_RULE => p.rule = Some(r.bytes()?),
                    POLICY_ACTION => p.action = Some(r.varint()? as u32),
                    POLICY_MATCH => p.matched = Some(r.varint()? as u32),
                    POLICY_VALUE => p.value = Some(r.bytes()?),
                    _ => r.skip(at, key)?,
                }
            }
            Ok(())
        })();
        scanned.map_err(|bad| r.error(bad))?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        f_bytes, f_fixed32, f_fixed64, f_varint, full_message, full_message_fields, key, varint,
        XorShift,
    };
    use super::{DnstapView, MessageView, PolicyView, ViewError};

    #[test]
    fn field_order_and_subsets_do_not_matter() {
        let fields = full_message_fields();
        let mut rng = XorShift(7);
        for _ in 0..2000 {
            // A random subset, in order (the fast path) and shuffled (the general loop).
            let subset: Vec<&Vec<u8>> = fields.iter().filter(|_| rng.next() % 3 != 0).collect();
            let mut shuffled = subset.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            let in_order: Vec<u8> = subset.into_iter().flatten().copied().collect();
            let any_order: Vec<u8> = shuffled.into_iter().flatten().copied().collect();
            let a = MessageView::parse(&in_order).unwrap();
            let b = MessageView::parse(&any_order).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }

    #[test]
    fn every_field_is_read() {
        let msg = full_message();
        let mut d = Vec::new();
        f_bytes(1, b"ns1", &mut d);
        f_bytes(2, b"v1.2", &mut d);
        f_bytes(3, b"extra", &mut d);
        f_bytes(14, &msg, &mut d);
        f_varint(15, 1, &mut d);

        let v = DnstapView::parse(&d).unwrap();
        assert_eq!(v.identity, Some(&b"ns1"[..]));
        assert_eq!(v.version, Some(&b"v1.2"[..]));
        assert_eq!(v.extra, Some(&b"extra"[..]));
        assert_eq!(v.kind, Some(1));
        assert_eq!(v.message, Some(&msg[..]));

        let m = v.message().unwrap().unwrap();
        assert_eq!(m.message_type, Some(6));
        assert_eq!(m.socket_family, Some(2));
        assert_eq!(m.socket_protocol, Some(4));
        assert_eq!(m.query_address, Some(&[0u8; 16][..]));
        assert_eq!(m.response_address, Some(&[1u8; 16][..]));
        assert_eq!(m.query_port, Some(53000));
        assert_eq!(m.response_port, Some(443));
        assert_eq!(m.query_time_sec, Some(1_700_000_000));
        assert_eq!(m.query_time_nsec, Some(123_456_789));
        assert_eq!(m.query_message, Some(&b"query"[..]));
        assert_eq!(m.query_zone, Some(&b"\x07example\x00"[..]));
        assert_eq!(m.response_time_sec, Some(1_700_000_001));
        assert_eq!(m.response_time_nsec, Some(987_654_321));
        assert_eq!(m.response_message, Some(&b"response"[..]));
        assert_eq!(m.http_protocol, Some(2));
        assert_eq!(m.dns_message(), Some(&b"response"[..]));

        let p = m.policy().unwrap().unwrap();
        assert_eq!(
            p,
            PolicyView {
                kind: Some(b"RPZ"),
                rule: Some(b"\x03bad\x07example\x00"),
                action: Some(1),
                matched: Some(2),
                value: Some(&[10, 0, 0, 1]),
            }
        );
    }

    #[test]
    fn empty_payload_is_an_empty_view() {
        let v = DnstapView::parse(&[]).unwrap();
        assert!(v.identity.is_none() && v.kind.is_none() && v.message.is_none());
        assert!(v.message().is_none());
        let m = MessageView::parse(&[]).unwrap();
        assert!(m.message_type.is_none());
        assert_eq!(m.dns_message(), None);
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut m = Vec::new();
        f_varint(100, u64::MAX, &mut m); // 10-byte varint
        f_fixed64(101, 0x0102_0304_0506_0708, &mut m);
        f_bytes(102, b"ignored", &mut m);
        f_fixed32(103, 7, &mut m);
        f_varint(1, 5, &mut m);
        f_varint(MAX_FIELD, 1, &mut m);
        // A known field number with another wire type is skipped too.
        f_fixed32(2, 99, &mut m);
        f_bytes(3, b"x", &mut m);
        f_bytes(10, b"q", &mut m);
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.message_type, Some(5));
        assert_eq!(v.socket_family, None);
        assert_eq!(v.socket_protocol, None);
        assert_eq!(v.query_message, Some(&b"q"[..]));

        let mut d = Vec::new();
        f_fixed64(4, 1, &mut d);
        f_fixed32(5, 1, &mut d);
        f_varint(6, 300, &mut d);
        f_bytes(7, b"zz", &mut d);
        f_bytes(14, &m, &mut d);
        f_varint(15, 1, &mut d);
        let v = DnstapView::parse(&d).unwrap();
        assert_eq!(v.kind, Some(1));
        assert_eq!(v.message, Some(&m[..]));
    }
    const MAX_FIELD: u64 = (1 << 29) - 1;

    #[test]
    fn unknown_enum_values_are_kept() {
        let mut m = Vec::new();
        f_varint(1, 99, &mut m);
        f_varint(2, 7, &mut m);
        f_varint(3, 200, &mut m);
        f_varint(16, 1 << 40 | 9, &mut m); // uint32 keeps the low 32 bits
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.message_type, Some(99));
        assert_eq!(v.socket_family, Some(7));
        assert_eq!(v.socket_protocol, Some(200));
        assert_eq!(v.http_protocol, Some(9));
        let mut d = Vec::new();
        f_varint(15, 42, &mut d);
        assert_eq!(DnstapView::parse(&d).unwrap().kind, Some(42));
    }

    #[test]
    fn last_occurrence_wins() {
        let mut m = Vec::new();
        f_varint(1, 1, &mut m);
        f_bytes(10, b"first", &mut m);
        f_varint(1, 2, &mut m);
        f_bytes(10, b"second", &mut m);
        let v = MessageView::parse(&m).unwrap();
        assert_eq!(v.message_type, Some(2));
        assert_eq!(v.query_message, Some(&b"second"[..]));
    }

    fn err(buf: &[u8]) -> ViewError {
        match MessageView::parse(buf) {
            Ok(v) => panic!("accepted {buf:02x?}: {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn malformed_input_is_an_error_with_offset() {
        assert_eq!(
            err(&[0x08]),
            ViewError {
                what: "truncated varint",
                offset: 1
            }
        );
        assert_eq!(
            err(&[0x08, 0x80]),
            ViewError {
                what: "truncated varint",
                offset: 1
            }
        );
        assert_eq!(
            err(&[0x80]),
            ViewError {
                what: "truncated varint",
                offset: 0
            }
        );
        let mut long = vec![0x08];
        long.extend_from_slice(&[0xff; 10]);
        long.push(0x01);
        assert_eq!(err(&long).what, "varint longer than 10 bytes");
        assert_eq!(
            err(&[0x52, 0x05, 1, 2]),
            ViewError {
                what: "length past end of message",
                offset: 1
            }
        );
        // A length near u64::MAX must not overflow.
        let mut huge = vec![0x52];
        varint(u64::MAX, &mut huge);
        assert_eq!(err(&huge).what, "length past end of message");
        assert_eq!(
            err(&[0x4d, 1, 2, 3]),
            ViewError {
                what: "truncated fixed32",
                offset: 1
            }
        );
        assert_eq!(err(&[0x09, 1, 2, 3, 4, 5, 6, 7]).what, "truncated fixed64");
        assert_eq!(err(&[0x1d, 1]).what, "truncated fixed32"); // unknown field 3 as I32
        assert_eq!(err(&[0x0b]).what, "group wire type (deprecated)");
        assert_eq!(err(&[0x0c]).what, "group wire type (deprecated)");
        assert_eq!(err(&[0x0e]).what, "invalid wire type");
        assert_eq!(err(&[0x0f]).what, "invalid wire type");
        assert_eq!(
            err(&[0x00, 0x00]),
            ViewError {
                what: "invalid field number",
                offset: 0
            }
        );
        let mut big_field = Vec::new();
        key(1 << 29, 0, &mut big_field);
        big_field.push(0);
        assert_eq!(err(&big_field).what, "invalid field number");
        // The top level reports its own errors; the message's are reported when asked.
        assert_eq!(
            DnstapView::parse(&[0x72, 0x03, 0x08]).unwrap_err().offset,
            1
        );
        let v = DnstapView::parse(&[0x72, 0x01, 0x08]).unwrap();
        assert_eq!(v.message().unwrap().unwrap_err().what, "truncated varint");
        assert_eq!(
            PolicyView::parse(&[0x0a, 0x02, b'x']).unwrap_err().offset,
            1
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_errors_or_parses_without_panic() {
        let msg = full_message();
        for end in 0..msg.len() {
            let _ = MessageView::parse(&msg[..end]);
        }
        // Cutting inside the last field (http_protocol, 3 bytes) always errors.
        for end in msg.len() - 2..msg.len() {
            assert!(MessageView::parse(&msg[..end]).is_err(), "cut at {end}");
        }
    }

    #[test]
    fn random_and_mutated_payloads_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let msg = full_message();
        let mut d = Vec::new();
        f_bytes(1, b"ns1", &mut d);
        f_bytes(14, &msg, &mut d);
        f_varint(15, 1, &mut d);
        let mut parsed = 0;
        for round in 0..20_000 {
            let mut buf = if round % 2 == 0 {
                d.clone()
            } else {
                let n = (rng.next() % 64) as usize;
                (0..n).map(|_| rng.next() as u8).collect()
            };
            for _ in 0..(rng.next() % 4) {
                if buf.is_empty() {
                    break;
                }
                let i = (rng.next() % buf.len() as u64) as usize;
                buf[i] = rng.next() as u8;
            }
            if let Ok(v) = DnstapView::parse(&buf) {
                parsed += 1;
                if let Some(Ok(m)) = v.message() {
                    let _ = m.policy();
                    let _ = m.dns_message();
                }
            }
            let _ = MessageView::parse(&buf);
            let _ = PolicyView::parse(&buf);
        }
        assert!(
            parsed > 1000,
            "mutations should leave many payloads parseable: {parsed}"
        );
    }
}
