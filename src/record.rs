//! The fully decoded form of one accepted dnstap message, still borrowing the frame bytes.
//! Built by quick-protobuf (`Record::decode`) or from the lazy views (`Record::from_views`);
//! both give the same value. Also the address writer the formats share. Knows nothing of
//! output formats, sockets or Frame Streams.
//!
//! Two builders, one result:
//! - [`Record::decode`] is the reference: the pb-rs types of src/dnstap/pb.rs read by
//!   quick-protobuf, after the lazy view has checked the payload's framing (see
//!   [`Record::decode_fields`] for why).
//! - [`Record::from_views`] reuses the [`DnstapView`] / [`MessageView`] the prefilters
//!   already made, so an accepted message is not scanned twice (the fast path).
//!
//! The tests at the bottom and tests/dnstap_captures.rs hold the two to each other and to
//! the `dnstap` CLI.
#![forbid(unsafe_code)]

mod enrich;

pub use enrich::{Addr, Enrichment, Reduced};

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use quick_protobuf::{BytesReader, MessageRead};

use crate::dns;
use crate::dnstap::pb;
use crate::dnstap::{DnstapSink, DnstapView, MessageSink, MessageView, PolicyView, ViewError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub sec: u64,
    pub nsec: u32,
}

impl Timestamp {
    /// `sec` with the optional nanoseconds field (0 when absent); `None` without `sec`.
    pub fn from_fields(sec: Option<u64>, nsec: Option<u32>) -> Option<Timestamp> {
        sec.map(|sec| Timestamp {
            sec,
            nsec: nsec.unwrap_or(0),
        })
    }
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

impl<'a> From<PolicyView<'a>> for Policy<'a> {
    fn from(p: PolicyView<'a>) -> Self {
        Policy {
            kind: p.kind,
            rule: p.rule,
            action: p.action,
            matched: p.matched,
            value: p.value,
        }
    }
}

/// Why a payload could not be decoded at all (its protobuf is broken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub what: &'static str,
}

impl From<ViewError> for DecodeError {
    fn from(e: ViewError) -> Self {
        DecodeError { what: e.what }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "undecodable dnstap payload: {}", self.what)
    }
}

impl std::error::Error for DecodeError {}

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
    /// What the transforms added or changed ([`Enrichment`]); `None` for a record as
    /// decoded. Set only on the overlaid record a transform chain hands to the outputs
    /// ([`Record::overlaid`]): the fields above already carry the changed values.
    pub enrich: Option<&'a Enrichment>,
}

impl<'a> Record<'a> {
    /// The decode the receiver runs per message (the writer through
    /// [`Record::parse_in_place`]): the lazy views, as [`Record::from_views`], which give
    /// the same record as [`Record::decode`] at a third of its cost (`benches/dnstap.rs`:
    /// ~97 ns against ~300 ns; equality is checked on every capture message in
    /// `tests/dnstap_captures.rs`).
    #[inline]
    pub fn parse(payload: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let mut record = Record::default();
        record.parse_in_place(payload)?;
        Ok(record)
    }

    /// [`Record::parse`] into an existing record, every field overwritten: the writer
    /// keeps one record per batch and refills it for each message. On error `self` holds
    /// some mix of the fields read before the error and absent ones (it is not to be used).
    // PERF: the record (376 bytes) is written where it lives. Returned through `Result`
    // it was built on the stack and copied out twice (into the `Result`, then into the
    // caller's local), two memcpy calls that were 7 % of the writer thread (scripts/perf.sh,
    // synthetic corpus, JSON; benches/format.rs "writer"). The scans of the views hand
    // each field straight to the record ([`RecordSink`]) rather than filling views that
    // are then copied: those copies' wide loads waited on the scans' narrow stores.
    #[inline]
    pub fn parse_in_place(&mut self, payload: &'a [u8]) -> Result<(), DecodeError> {
        *self = Record::default();
        let mut sink = RecordSink {
            rec: self,
            query_time_nsec: None,
            response_time_nsec: None,
            policy: None,
        };
        if let Some(message) = DnstapView::scan_into(payload, &mut sink)? {
            MessageView::scan_into(message, &mut sink)?;
        }
        sink.finish()?;
        self.parse_dns();
        Ok(())
    }

    /// Full decode with quick-protobuf, then the DNS header and question
    /// ([`Record::parse_dns`]). A malformed DNS message does not fail the record.
    pub fn decode(payload: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let mut record = Record::decode_fields(payload)?;
        record.parse_dns();
        Ok(record)
    }

    /// Every field of [`Record::decode`] except `dns` (left `None`).
    ///
    /// The payload's framing is checked by the lazy view first: quick-protobuf 0.8 does not
    /// bound a nested message's length by its parent's (a `Message` claiming more bytes than
    /// the `Dnstap` holds is read on into whatever follows, and skipping a field past the end
    /// of such a range underflows). Once every key, varint and length is known to be sound,
    /// quick-protobuf decodes the values; on such input both readers take the same path.
    pub fn decode_fields(payload: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        let top = DnstapView::parse(payload)?;
        if let Some(message) = top.message() {
            if let Some(policy) = message?.policy() {
                policy?;
            }
        }

        let mut reader = BytesReader::from_bytes(payload);
        let d = pb::Dnstap::from_reader(&mut reader, payload).map_err(|_| DecodeError {
            what: "quick-protobuf rejected the payload",
        })?;
        let mut r = Record {
            identity: borrowed(d.identity)?,
            version: borrowed(d.version)?,
            extra: borrowed(d.extra)?,
            kind: d.type_pb,
            ..Record::default()
        };
        if let Some(m) = d.message {
            r.message_type = m.type_pb;
            r.socket_family = m.socket_family;
            r.socket_protocol = m.socket_protocol;
            r.query_address = borrowed(m.query_address)?;
            r.response_address = borrowed(m.response_address)?;
            r.query_port = m.query_port;
            r.response_port = m.response_port;
            r.query_time = Timestamp::from_fields(m.query_time_sec, m.query_time_nsec);
            r.response_time = Timestamp::from_fields(m.response_time_sec, m.response_time_nsec);
            r.query_message = borrowed(m.query_message)?;
            r.response_message = borrowed(m.response_message)?;
            r.query_zone = borrowed(m.query_zone)?;
            r.http_protocol = m.http_protocol;
            if let Some(p) = m.policy {
                r.policy = Some(Policy {
                    kind: borrowed(p.type_pb)?,
                    rule: borrowed(p.rule)?,
                    action: p.action,
                    matched: p.match_pb,
                    value: borrowed(p.value)?,
                });
            }
        }
        Ok(r)
    }

    /// The same record built from the lazy views the prefilters already made, then
    /// [`Record::parse_dns`]. `message` is `view.message()` if the caller has it; with `None`
    /// the message (if any) is scanned here.
    #[inline]
    pub fn from_views(
        view: &DnstapView<'a>,
        message: Option<&MessageView<'a>>,
    ) -> Result<Record<'a>, DecodeError> {
        let mut record = Record::fields_from_views(view, message)?;
        record.parse_dns();
        Ok(record)
    }

    /// Every field of [`Record::from_views`] except `dns` (left `None`).
    // PERF: inline, so the 376-byte record is built where the caller keeps it rather than
    // copied out through `Result` (benches/dnstap.rs "fields_from_views").
    #[inline]
    pub fn fields_from_views(
        view: &DnstapView<'a>,
        message: Option<&MessageView<'a>>,
    ) -> Result<Record<'a>, DecodeError> {
        // Borrow the caller's message view rather than copy its 192 bytes.
        let parsed;
        let m: &MessageView<'a> = match message {
            Some(m) => m,
            None => {
                parsed = view.message().transpose()?.unwrap_or_default();
                &parsed
            }
        };
        let mut record = Record::default();
        record.set_fields_from_views(view, m)?;
        Ok(record)
    }

    /// Overwrites every field with those of `view` and `m` (`dns` and `enrich` become
    /// `None`); on error (a broken `Policy`) `self` is left as it was.
    #[inline]
    fn set_fields_from_views(
        &mut self,
        view: &DnstapView<'a>,
        m: &MessageView<'a>,
    ) -> Result<(), DecodeError> {
        let policy = match m.policy() {
            Some(p) => Some(Policy::from(p?)),
            None => None,
        };
        *self = Record {
            identity: view.identity,
            version: view.version,
            extra: view.extra,
            kind: view.kind,
            message_type: m.message_type,
            socket_family: m.socket_family,
            socket_protocol: m.socket_protocol,
            query_address: m.query_address,
            response_address: m.response_address,
            query_port: m.query_port,
            response_port: m.response_port,
            query_time: Timestamp::from_fields(m.query_time_sec, m.query_time_nsec),
            response_time: Timestamp::from_fields(m.response_time_sec, m.response_time_nsec),
            query_message: m.query_message,
            response_message: m.response_message,
            query_zone: m.query_zone,
            policy,
            http_protocol: m.http_protocol,
            dns: None,
            enrich: None,
        };
        Ok(())
    }

    /// The DNS message the record is about: `query_message` for query types,
    /// `response_message` for responses (falling back to the other when absent), as
    /// [`MessageView::dns_message`].
    pub fn dns_message(&self) -> Option<&'a [u8]> {
        let query = self
            .message_type
            .map(crate::dnstap::is_query_type)
            .unwrap_or(true);
        if query {
            self.query_message.or(self.response_message)
        } else {
            self.response_message.or(self.query_message)
        }
    }

    /// Fills `dns` from [`Record::dns_message`]: header and first question, or the error.
    pub fn parse_dns(&mut self) {
        self.dns = self.dns_message().map(dns::MessageView::parse_inlined);
    }

    /// The timestamp the seed formats show: query time for queries, response time for
    /// responses (falling back to the other).
    pub fn timestamp(&self) -> Option<Timestamp> {
        let query = self
            .message_type
            .map(crate::dnstap::is_query_type)
            .unwrap_or(true);
        if query {
            self.query_time.or(self.response_time)
        } else {
            self.response_time.or(self.query_time)
        }
    }
}

/// The scans' sink for [`Record::parse_in_place`]: each field goes into the record as it
/// is read; the parts a record keeps in another shape (a time's nanoseconds, the policy)
/// wait here until the scan ends ([`RecordSink::finish`]), as in
/// [`Record::fields_from_views`].
struct RecordSink<'r, 'a> {
    rec: &'r mut Record<'a>,
    query_time_nsec: Option<u32>,
    response_time_nsec: Option<u32>,
    policy: Option<&'a [u8]>,
}

impl RecordSink<'_, '_> {
    /// The nanoseconds into the times ([`Timestamp::from_fields`]: none without seconds,
    /// 0 when absent), and the policy decoded.
    #[inline(always)]
    fn finish(self) -> Result<(), DecodeError> {
        if let Some(t) = &mut self.rec.query_time {
            t.nsec = self.query_time_nsec.unwrap_or(0);
        }
        if let Some(t) = &mut self.rec.response_time {
            t.nsec = self.response_time_nsec.unwrap_or(0);
        }
        if let Some(p) = self.policy {
            self.rec.policy = Some(Policy::from(PolicyView::parse(p)?));
        }
        Ok(())
    }
}

impl<'a> DnstapSink<'a> for RecordSink<'_, 'a> {
    #[inline(always)]
    fn identity(&mut self, v: &'a [u8]) {
        self.rec.identity = Some(v);
    }
    #[inline(always)]
    fn version(&mut self, v: &'a [u8]) {
        self.rec.version = Some(v);
    }
    #[inline(always)]
    fn extra(&mut self, v: &'a [u8]) {
        self.rec.extra = Some(v);
    }
    #[inline(always)]
    fn kind(&mut self, v: u32) {
        self.rec.kind = Some(v);
    }
}

impl<'a> MessageSink<'a> for RecordSink<'_, 'a> {
    #[inline(always)]
    fn message_type(&mut self, v: u32) {
        self.rec.message_type = Some(v);
    }
    #[inline(always)]
    fn socket_family(&mut self, v: u32) {
        self.rec.socket_family = Some(v);
    }
    #[inline(always)]
    fn socket_protocol(&mut self, v: u32) {
        self.rec.socket_protocol = Some(v);
    }
    #[inline(always)]
    fn query_address(&mut self, v: &'a [u8]) {
        self.rec.query_address = Some(v);
    }
    #[inline(always)]
    fn response_address(&mut self, v: &'a [u8]) {
        self.rec.response_address = Some(v);
    }
    #[inline(always)]
    fn query_port(&mut self, v: u32) {
        self.rec.query_port = Some(v);
    }
    #[inline(always)]
    fn response_port(&mut self, v: u32) {
        self.rec.response_port = Some(v);
    }
    #[inline(always)]
    fn query_time_sec(&mut self, v: u64) {
        self.rec.query_time = Some(Timestamp { sec: v, nsec: 0 });
    }
    #[inline(always)]
    fn query_time_nsec(&mut self, v: u32) {
        self.query_time_nsec = Some(v);
    }
    #[inline(always)]
    fn query_message(&mut self, v: &'a [u8]) {
        self.rec.query_message = Some(v);
    }
    #[inline(always)]
    fn query_zone(&mut self, v: &'a [u8]) {
        self.rec.query_zone = Some(v);
    }
    #[inline(always)]
    fn response_time_sec(&mut self, v: u64) {
        self.rec.response_time = Some(Timestamp { sec: v, nsec: 0 });
    }
    #[inline(always)]
    fn response_time_nsec(&mut self, v: u32) {
        self.response_time_nsec = Some(v);
    }
    #[inline(always)]
    fn response_message(&mut self, v: &'a [u8]) {
        self.rec.response_message = Some(v);
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
        self.rec.http_protocol = Some(v);
    }
}

/// A bytes field of the generated types, as the payload borrow it is. quick-protobuf's
/// reader only ever makes `Cow::Borrowed`; an owned value would mean the generated code
/// changed under us, which is reported rather than copied.
fn borrowed<'a>(field: Option<Cow<'a, [u8]>>) -> Result<Option<&'a [u8]>, DecodeError> {
    match field {
        None => Ok(None),
        Some(Cow::Borrowed(b)) => Ok(Some(b)),
        Some(Cow::Owned(_)) => Err(DecodeError {
            what: "generated decoder copied a field",
        }),
    }
}

/// The address in a `query_address` / `response_address` field: 4 bytes are IPv4; 16 bytes
/// are IPv6, except an IPv4-mapped address (`::ffff:a.b.c.d`, what dual-stack sockets
/// report for IPv4 peers) which is given as the IPv4 address. Other lengths: `None`.
pub fn ip_addr(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Appends the text form of an address field to `out`, without allocating:
/// - 4 bytes: dotted quad (`192.0.2.1`);
/// - 16 bytes: RFC 5952 IPv6 (lowercase, longest run of two or more zero groups as `::`,
///   the first on a tie), or a dotted quad for IPv4-mapped `::ffff:a.b.c.d` as in [`ip_addr`];
/// - empty: `-`;
/// - any other length (a broken sender): the bytes in lowercase hex, so nothing is hidden.
pub fn write_ip(bytes: &[u8], out: &mut Vec<u8>) {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        dns::write_ipv4(v4, out);
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        match v6 {
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d] => {
                dns::write_ipv4([a, b, c, d], out)
            }
            _ => dns::write_ipv6(v6, out),
        }
    } else if bytes.is_empty() {
        out.push(b'-');
    } else {
        for &b in bytes {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use quick_protobuf::{MessageRead, MessageWrite, Writer};

    use super::{ip_addr, write_ip, DecodeError, Policy, Record, Timestamp};
    use crate::dnstap::pb;
    use crate::dnstap::{DnstapView, MessageView};
    use std::borrow::Cow;

    /// xorshift64*: deterministic noise without a dependency.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn maybe(&mut self) -> bool {
            self.next() % 3 != 0
        }
        fn bytes(&mut self, max: u64) -> Vec<u8> {
            let n = self.next() % (max + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn small(&mut self) -> u32 {
            // Mostly schema values, sometimes unknown or multi-byte ones.
            match self.next() % 4 {
                0 => self.next() as u32,
                _ => (self.next() % 16) as u32,
            }
        }
    }

    fn opt<T>(rng: &mut XorShift, f: impl FnOnce(&mut XorShift) -> T) -> Option<T> {
        if rng.maybe() {
            Some(f(rng))
        } else {
            None
        }
    }

    /// A random, valid `Dnstap`, encoded by the generated writer (an encoder independent of
    /// the lazy view).
    fn random_payload(rng: &mut XorShift) -> Vec<u8> {
        let cow = |v: Vec<u8>| Cow::Owned(v);
        let policy = opt(rng, |rng| pb::Policy {
            type_pb: opt(rng, |r| cow(r.bytes(8))),
            rule: opt(rng, |r| cow(r.bytes(20))),
            action: opt(rng, XorShift::small),
            match_pb: opt(rng, XorShift::small),
            value: opt(rng, |r| cow(r.bytes(16))),
        });
        let message = opt(rng, |rng| pb::Message {
            type_pb: opt(rng, XorShift::small),
            socket_family: opt(rng, XorShift::small),
            socket_protocol: opt(rng, XorShift::small),
            query_address: opt(rng, |r| cow(r.bytes(16))),
            response_address: opt(rng, |r| cow(r.bytes(16))),
            query_port: opt(rng, |r| r.next() as u32),
            response_port: opt(rng, |r| (r.next() % 65536) as u32),
            query_time_sec: opt(rng, XorShift::next),
            query_time_nsec: opt(rng, |r| r.next() as u32),
            query_message: opt(rng, |r| cow(r.bytes(300))),
            query_zone: opt(rng, |r| cow(r.bytes(30))),
            response_time_sec: opt(rng, |r| r.next() >> 20),
            response_time_nsec: opt(rng, |r| r.next() as u32),
            response_message: opt(rng, |r| cow(r.bytes(300))),
            policy,
            http_protocol: opt(rng, XorShift::small),
        });
        let d = pb::Dnstap {
            identity: opt(rng, |r| cow(r.bytes(20))),
            version: opt(rng, |r| cow(r.bytes(20))),
            extra: opt(rng, |r| cow(r.bytes(20))),
            type_pb: opt(rng, XorShift::small),
            message,
        };
        let mut out = Vec::new();
        d.write_message(&mut Writer::new(&mut out)).unwrap();
        out
    }

    /// Field-by-field comparison (Record's `dns` is not `PartialEq`).
    pub(crate) fn assert_same(a: &Record<'_>, b: &Record<'_>) {
        assert_eq!(a.identity, b.identity);
        assert_eq!(a.version, b.version);
        assert_eq!(a.extra, b.extra);
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.message_type, b.message_type);
        assert_eq!(a.socket_family, b.socket_family);
        assert_eq!(a.socket_protocol, b.socket_protocol);
        assert_eq!(a.query_address, b.query_address);
        assert_eq!(a.response_address, b.response_address);
        assert_eq!(a.query_port, b.query_port);
        assert_eq!(a.response_port, b.response_port);
        assert_eq!(a.query_time, b.query_time);
        assert_eq!(a.response_time, b.response_time);
        assert_eq!(a.query_message, b.query_message);
        assert_eq!(a.response_message, b.response_message);
        assert_eq!(a.query_zone, b.query_zone);
        assert_eq!(a.policy, b.policy);
        assert_eq!(a.http_protocol, b.http_protocol);
        assert_eq!(format!("{:?}", a.dns), format!("{:?}", b.dns));
    }

    fn both(
        payload: &[u8],
    ) -> (
        Result<Record<'_>, DecodeError>,
        Result<Record<'_>, DecodeError>,
    ) {
        let decoded = Record::decode(payload);
        let viewed = DnstapView::parse(payload)
            .map_err(DecodeError::from)
            .and_then(|v| Record::from_views(&v, None));
        (decoded, viewed)
    }

    #[test]
    fn view_and_decode_agree_on_random_valid_messages() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for _ in 0..3000 {
            let payload = random_payload(&mut rng);
            let d = pb::Dnstap::from_reader(
                &mut quick_protobuf::BytesReader::from_bytes(&payload),
                &payload,
            )
            .unwrap();
            let (decoded, viewed) = both(&payload);
            let (decoded, viewed) = (decoded.unwrap(), viewed.unwrap());
            assert_same(&decoded, &viewed);
            // And both say what the encoder was given.
            assert_eq!(decoded.identity, d.identity.as_deref());
            assert_eq!(decoded.kind, d.type_pb);
            let m = d.message.unwrap_or_default();
            assert_eq!(decoded.message_type, m.type_pb);
            assert_eq!(decoded.query_port, m.query_port);
            assert_eq!(
                decoded.response_time,
                m.response_time_sec.map(|sec| Timestamp {
                    sec,
                    nsec: m.response_time_nsec.unwrap_or(0)
                })
            );
            assert_eq!(decoded.query_message, m.query_message.as_deref());
            assert_eq!(
                decoded.policy.and_then(|p| p.value),
                m.policy.and_then(|p| p.value).as_deref()
            );
            // The message view given by the caller gives the same record.
            let v = DnstapView::parse(&payload).unwrap();
            if let Some(Ok(mv)) = v.message() {
                assert_same(&decoded, &Record::from_views(&v, Some(&mv)).unwrap());
            }
        }
    }

    #[test]
    fn mutated_payloads_never_panic_and_readers_agree_on_acceptance() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let mut payload = random_payload(&mut rng);
            for _ in 0..=(rng.next() % 3) {
                if payload.is_empty() {
                    break;
                }
                let i = (rng.next() % payload.len() as u64) as usize;
                match rng.next() % 3 {
                    0 => payload[i] = rng.next() as u8,
                    1 => payload.truncate(i),
                    _ => payload.insert(i, rng.next() as u8),
                }
            }
            match both(&payload) {
                (Ok(a), Ok(b)) => {
                    assert_same(&a, &b);
                    ok += 1;
                }
                (Err(_), Err(_)) => bad += 1,
                (a, b) => panic!("readers disagree on {payload:02x?}: {a:?} / {b:?}"),
            }
        }
        assert!(ok > 1000 && bad > 1000, "ok {ok}, bad {bad}");
    }

    /// The writer's reused record: refilled message after message (valid, mutated, broken),
    /// it reads as a fresh decode of each payload, with nothing left over from the one
    /// before (a broken one included); it fails exactly where the decode fails.
    #[test]
    fn a_record_refilled_in_place_equals_a_fresh_decode() {
        let mut rng = XorShift(0x0bad_5eed_1234_9876);
        let payloads: Vec<Vec<u8>> = (0..5000)
            .map(|i| {
                let mut p = random_payload(&mut rng);
                if i % 4 == 3 && !p.is_empty() {
                    let at = (rng.next() % p.len() as u64) as usize;
                    p[at] = rng.next() as u8;
                }
                p
            })
            .collect();
        let enrich = super::Enrichment::default();
        let mut slot = Record {
            enrich: Some(&enrich),
            ..Record::default()
        };
        let (mut ok, mut bad) = (0, 0);
        for payload in &payloads {
            match (slot.parse_in_place(payload), Record::decode(payload)) {
                (Ok(()), Ok(fresh)) => {
                    assert_same(&fresh, &slot);
                    assert!(slot.enrich.is_none());
                    ok += 1;
                }
                (Err(_), Err(_)) => bad += 1,
                (a, b) => panic!("readers disagree on {payload:02x?}: {a:?} / {b:?}"),
            }
        }
        assert!(ok > 1000 && bad > 100, "ok {ok}, bad {bad}");
    }

    /// The refill's sink on fields in any order, sent more than once (the last one counts),
    /// nanoseconds before or without their seconds: the same record as the reference decode.
    #[test]
    fn a_record_refilled_in_place_reads_fields_in_any_order() {
        fn varint(mut v: u64, out: &mut Vec<u8>) {
            while v >= 0x80 {
                out.push(v as u8 | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        fn field(number: u64, wire: u64, value: &[u8], out: &mut Vec<u8>) {
            varint(number << 3 | wire, out);
            if wire == 2 {
                varint(value.len() as u64, out);
            }
            out.extend_from_slice(value);
        }
        let mut rng = XorShift(0x5eed_0f0d_d0de_0005);
        let mut payloads = Vec::new();
        for _ in 0..3000 {
            // Message fields 1..=16 but the policy (15): (number, wire type, value bytes).
            let mut fields: Vec<(u64, u64, Vec<u8>)> = Vec::new();
            for number in (1..=16u64).filter(|&n| n != 15) {
                for _ in 0..rng.next() % 3 {
                    let (wire, value) = match number {
                        9 | 13 => (5, (rng.next() as u32).to_le_bytes().to_vec()),
                        4 | 5 | 10 | 11 | 14 => (2, rng.bytes(20)),
                        _ => {
                            let mut v = Vec::new();
                            varint(rng.next() >> (rng.next() % 64), &mut v);
                            (0, v)
                        }
                    };
                    fields.push((number, wire, value));
                }
            }
            for i in (1..fields.len()).rev() {
                fields.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            let mut message = Vec::new();
            for (number, wire, value) in &fields {
                field(*number, *wire, value, &mut message);
            }
            let mut payload = Vec::new();
            field(1, 2, b"id", &mut payload);
            field(14, 2, &message, &mut payload);
            field(15, 0, &[1], &mut payload);
            payloads.push(payload);
        }
        let mut slot = Record::default();
        for payload in &payloads {
            let fresh = Record::decode(payload).unwrap();
            slot.parse_in_place(payload).unwrap();
            assert_same(&fresh, &slot);
        }
    }

    #[test]
    fn message_fields_map_into_the_record() {
        let msg = pb::Message {
            type_pb: Some(5),
            socket_family: Some(1),
            socket_protocol: Some(1),
            query_address: Some(Cow::Borrowed(&[192, 0, 2, 1])),
            query_port: Some(5353),
            query_time_sec: Some(1_700_000_000),
            query_message: Some(Cow::Borrowed(b"not dns")),
            response_time_nsec: Some(5), // without sec: no response time
            policy: Some(pb::Policy {
                type_pb: Some(Cow::Borrowed(b"RPZ\xff")),
                match_pb: Some(9),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = pb::Dnstap {
            identity: Some(Cow::Borrowed(b"ns")),
            type_pb: Some(1),
            message: Some(msg),
            ..Default::default()
        };
        let mut payload = Vec::new();
        d.write_message(&mut Writer::new(&mut payload)).unwrap();
        let r = Record::decode_fields(&payload).unwrap();
        assert_eq!(r.identity, Some(&b"ns"[..]));
        assert_eq!(r.kind, Some(1));
        assert_eq!(r.message_type, Some(5));
        assert_eq!(
            r.query_time,
            Some(Timestamp {
                sec: 1_700_000_000,
                nsec: 0
            })
        );
        assert_eq!(r.response_time, None);
        assert_eq!(r.timestamp(), r.query_time);
        // A response shows its response time, and falls back to the query time.
        let mut response = r.clone();
        response.message_type = Some(6);
        assert_eq!(response.timestamp(), r.query_time);
        response.response_time = Some(Timestamp { sec: 7, nsec: 8 });
        assert_eq!(response.timestamp(), response.response_time);
        assert_eq!(Timestamp::from_fields(None, Some(1)), None);
        assert_eq!(r.dns_message(), Some(&b"not dns"[..]));
        assert_eq!(
            r.policy,
            Some(Policy {
                kind: Some(b"RPZ\xff"),
                matched: Some(9),
                ..Policy::default()
            })
        );
        let v = DnstapView::parse(&payload).unwrap();
        let m: MessageView<'_> = v.message().unwrap().unwrap();
        assert_same(&r, &Record::fields_from_views(&v, Some(&m)).unwrap());
    }

    #[test]
    fn from_views_uses_the_message_view_it_is_given() {
        // Dnstap { message: Message { type: CLIENT_QUERY } }
        let payload = [0x72, 0x02, 0x08, 0x05];
        let v = DnstapView::parse(&payload).unwrap();
        let given = MessageView {
            message_type: Some(6),
            query_port: Some(53),
            ..Default::default()
        };
        let r = Record::fields_from_views(&v, Some(&given)).unwrap();
        assert_eq!((r.message_type, r.query_port), (Some(6), Some(53)));
        let r = Record::fields_from_views(&v, None).unwrap();
        assert_eq!((r.message_type, r.query_port), (Some(5), None));
        // No message at all: only the top level.
        let r =
            Record::fields_from_views(&DnstapView::parse(&[0x78, 0x01]).unwrap(), None).unwrap();
        assert_eq!((r.kind, r.message_type), (Some(1), None));
    }

    #[test]
    fn malformed_dns_does_not_fail_the_record() {
        // RFC 1035 query for "example." A IN, id 0x1234, RD.
        let query: &[u8] =
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x00\x00\x01\x00\x01";
        let encode = |query_message: &'static [u8], response_message: &'static [u8]| {
            let d = pb::Dnstap {
                type_pb: Some(1),
                message: Some(pb::Message {
                    type_pb: Some(6),
                    query_message: Some(Cow::Borrowed(query_message)),
                    response_message: Some(Cow::Borrowed(response_message)),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mut out = Vec::new();
            d.write_message(&mut Writer::new(&mut out)).unwrap();
            out
        };
        // A response type: the response is the DNS message, broken here; the query is fine.
        let payload = encode(query, b"\x12\x34\x81");
        let (decoded, viewed) = both(&payload);
        let (decoded, viewed) = (decoded.unwrap(), viewed.unwrap());
        assert_same(&decoded, &viewed);
        assert!(matches!(decoded.dns, Some(Err(_))), "{:?}", decoded.dns);
        // The same with a good response: header and question parsed.
        let payload = encode(b"junk", query);
        let decoded = Record::decode(&payload).unwrap();
        let dns = decoded.dns.clone().unwrap().unwrap();
        assert_eq!(dns.header.id, 0x1234);
        let mut name = Vec::new();
        dns.question.unwrap().name.write_presentation(&mut name);
        assert_eq!(name, b"example.");
        let view = DnstapView::parse(&payload).unwrap();
        assert_same(&decoded, &Record::from_views(&view, None).unwrap());
        // No DNS message at all: no dns.
        let r = Record::decode(&[0x72, 0x02, 0x08, 0x05]).unwrap();
        assert!(r.dns.is_none());
    }

    #[test]
    fn odd_varints_read_the_same_both_ways() {
        // Message { type: 5 with a 6-byte (non-minimal) key, query_time_sec: 10-byte varint
        // whose last byte carries bits past 64, query_port: 2^32 + 53 (uint32 keeps 53) }
        let msg = [
            0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05, // key 8 (type), padded
            0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, // sec
            0x30, 0xb5, 0x80, 0x80, 0x80, 0x10, // port
        ];
        let mut payload = vec![0x72, msg.len() as u8];
        payload.extend_from_slice(&msg);
        let (decoded, viewed) = both(&payload);
        let (decoded, viewed) = (decoded.unwrap(), viewed.unwrap());
        assert_same(&decoded, &viewed);
        assert_eq!(decoded.message_type, Some(5));
        assert_eq!(
            decoded.query_time,
            Some(Timestamp {
                sec: u64::MAX,
                nsec: 0
            })
        );
        assert_eq!(decoded.query_port, Some(53));
    }

    #[test]
    fn broken_policy_fails_both_readers() {
        // Message { type: 1, policy: <field 1, length 5, 1 byte> }
        let msg = [0x08, 0x01, 0x7a, 0x03, 0x0a, 0x05, b'x'];
        let mut payload = vec![0x72, msg.len() as u8];
        payload.extend_from_slice(&msg);
        let (a, b) = both(&payload);
        assert_eq!(a.unwrap_err().what, "length past end of message");
        assert_eq!(b.unwrap_err().what, "length past end of message");
    }

    #[test]
    fn nested_length_past_parent_is_rejected() {
        // Dnstap { message (2 bytes): Message { query_message: length 4 } } + 4 more bytes:
        // quick-protobuf alone would read the query past the end of the Message.
        let payload = [0x72, 0x02, 0x52, 0x04, 0x0a, 0x01, b'a', 0x00];
        assert!(Record::decode_fields(&payload).is_err());
        // Here the overrun ends on a fixed64 key (0x01): quick-protobuf alone computes
        // `end - start` with start > end there, which panics in debug builds.
        let payload = [0x72, 0x02, 0x52, 0x04, 0x0a, 0x01, b'a', 0x78, 0x01];
        assert_eq!(
            Record::decode(&payload).unwrap_err().what,
            "length past end of message"
        );
    }

    #[test]
    fn quick_protobuf_alone_is_not_safe_on_overlong_nested_lengths() {
        // Why `decode_fields` checks framing first: the same payload, straight into the
        // generated reader, either panics or fails, depending on the build.
        let payload = [0x72, 0x02, 0x52, 0x04, 0x0a, 0x01, b'a', 0x78, 0x01];
        let outcome = std::panic::catch_unwind(|| {
            let mut reader = quick_protobuf::BytesReader::from_bytes(&payload);
            pb::Dnstap::from_reader(&mut reader, &payload).is_ok()
        });
        assert!(
            !matches!(outcome, Ok(true)),
            "quick-protobuf accepted an overrun"
        );
    }

    fn ip_text(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_ip(bytes, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn addresses_are_written_like_std_but_v4_mapped_as_v4() {
        assert_eq!(ip_text(&[192, 0, 2, 255]), "192.0.2.255");
        assert_eq!(ip_text(&[0, 0, 0, 0]), "0.0.0.0");
        let mapped = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().octets();
        assert_eq!(ip_text(&mapped), "10.1.2.3");
        assert_eq!(
            ip_addr(&mapped),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
        assert_eq!(ip_text(&Ipv6Addr::LOCALHOST.octets()), "::1");
        assert_eq!(ip_text(&[0; 16]), "::");
        assert_eq!(ip_text(&[]), "-");
        assert_eq!(ip_text(&[1, 0xab, 3]), "01ab03");
        assert_eq!(ip_addr(&[1, 2, 3]), None);
        // std's Display is RFC 5952 too: it is the oracle for every other address.
        let mut rng = XorShift(42);
        for i in 0..20_000 {
            let mut a = [0u8; 16];
            for pair in a.chunks_mut(2) {
                // Many zero groups, to exercise the `::` choice.
                if rng.next() % 2 == 0 {
                    pair[0] = if i % 5 == 0 { 0 } else { rng.next() as u8 };
                    pair[1] = rng.next() as u8 & 0x1f;
                }
            }
            let v6 = Ipv6Addr::from(a);
            let want = match ip_addr(&a) {
                Some(IpAddr::V4(v4)) => v4.to_string(),
                _ => v6.to_string(),
            };
            assert_eq!(ip_text(&a), want, "{a:02x?}");
            assert_eq!(ip_addr(&a).map(|ip| ip.to_string()), Some(want));
        }
    }
}
