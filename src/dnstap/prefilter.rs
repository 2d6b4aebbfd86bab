//! The prefilters' scans of a dnstap payload: [`DnstapView::parse_filter_fields`] finds
//! only the top-level `identity` and `message`, and [`MessageView::parse_dns_message`] only
//! the DNS message a qname filter needs (the type picks `query_message` or
//! `response_message`), each checking and skipping every other field instead of storing
//! it. It owns these two narrow scans, which must agree with [`DnstapView::parse`] and with
//! [`MessageView::parse`] followed by [`MessageView::dns_message`] on every buffer, errors
//! included (the tests at the bottom). Field numbers come from `view.rs`, wire reading from
//! `wire.rs`; it knows nothing of filters, Frame Streams or DNS.
#![forbid(unsafe_code)]

use super::view::{
    DnstapView, MessageView, ViewError, DNSTAP_EXTRA, DNSTAP_IDENTITY, DNSTAP_MESSAGE, DNSTAP_TYPE,
    DNSTAP_VERSION, MSG_HTTP_PROTOCOL, MSG_POLICY, MSG_QUERY_ADDRESS, MSG_QUERY_MESSAGE,
    MSG_QUERY_PORT, MSG_QUERY_TIME_NSEC, MSG_QUERY_TIME_SEC, MSG_QUERY_ZONE, MSG_RESPONSE_ADDRESS,
    MSG_RESPONSE_MESSAGE, MSG_RESPONSE_PORT, MSG_RESPONSE_TIME_NSEC, MSG_RESPONSE_TIME_SEC,
    MSG_SOCKET_FAMILY, MSG_SOCKET_PROTOCOL, MSG_TYPE,
};
use super::wire::{Bad, Reader};

/// What the prefilters read of a top-level `Dnstap`: its `identity` and the bytes of its
/// `message`, as [`DnstapView::parse`] gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterFields<'a> {
    pub identity: Option<&'a [u8]>,
    pub message: Option<&'a [u8]>,
}

impl<'a> DnstapView<'a> {
    /// [`DnstapView::parse`] for the prefilters: the same scan under the same rules,
    /// accepting and refusing exactly the buffers `parse` does with the same error, but
    /// keeping only `identity` and `message` (tests: `filter_fields_scan_agrees_with_parse`).
    // PERF: senders write the fields in field-number order, so each expected key is one
    // well-predicted compare and each skipped field is read by its known wire type, instead
    // of a jump on the key and another on the wire type; DnstapView::parse was 12 % of the
    // filter-reject path's profile (scripts/perf.sh, synthetic corpus, unix).
    //
    // PERF: out of line with its reader local (the scan inlined, the error built from the
    // position, not from the reader), so the position stays in a register instead of being
    // stored through a pointer at every field.
    #[inline(never)]
    pub fn parse_filter_fields(payload: &'a [u8]) -> Result<FilterFields<'a>, ViewError> {
        let mut r = Reader::new(payload);
        match scan_filter_fields(&mut r) {
            Ok(f) => Ok(f),
            Err(bad) => Err(bad.at(r.pos)),
        }
    }
}

impl<'a> MessageView<'a> {
    /// What [`MessageView::parse`] followed by [`MessageView::dns_message`] gives, without
    /// keeping the other fields: the prefilter's scan of the `Message`. It reads the same
    /// bytes under the same rules, so it accepts and refuses exactly the buffers `parse`
    /// does, with the same error (tests: `dns_message_scan_agrees_with_parse`).
    // PERF: the qname prefilter needs the type and the two DNS messages only; skipping the
    // other fields instead of storing them, and varints (the times) by one 8-byte load,
    // was 18.5 % + 4 % (varint_slow) of the filter-reject path's profile over TCP.
    // PERF: out of line with its reader local, as `DnstapView::parse_filter_fields`.
    #[inline(never)]
    pub fn parse_dns_message(buf: &'a [u8]) -> Result<Option<&'a [u8]>, ViewError> {
        let mut r = Reader::new(buf);
        match scan_dns_message(&mut r) {
            Ok((kind, query, response)) => {
                let query_first = kind.map(super::is_query_type).unwrap_or(true);
                Ok(if query_first {
                    query.or(response)
                } else {
                    response.or(query)
                })
            }
            Err(bad) => Err(bad.at(r.pos)),
        }
    }
}

/// One step of an in-order scan over reader `$r` whose current field starts at `$at` with
/// key `$key`: reads the field under `$want` with `$read` if it is the one at hand, then
/// the next key (`(buf.len(), 0)` past the end). Each scan wraps it in a local `expect!`.
macro_rules! in_order_step {
    ($r:ident, $at:ident, $key:ident, $want:expr, $read:expr) => {
        if $key == $want {
            $read;
            ($at, $key) = $r.next_key()?;
        }
    };
}

/// The top-level scan of [`DnstapView::parse_filter_fields`]: the fields in field-number
/// order first, then anything else in any order, as `DnstapView::scan_into` reads it (last
/// occurrence wins, a second `message` refused).
#[inline(always)]
fn scan_filter_fields<'a>(r: &mut Reader<'a>) -> Result<FilterFields<'a>, Bad> {
    let mut f = FilterFields::default();
    let (mut at, mut key) = r.next_key()?;
    macro_rules! expect {
        ($want:expr, $read:expr) => {
            in_order_step!(r, at, key, $want, $read)
        };
    }
    expect!(DNSTAP_IDENTITY, f.identity = Some(r.bytes()?));
    expect!(DNSTAP_VERSION, r.bytes()?);
    expect!(DNSTAP_EXTRA, r.bytes()?);
    expect!(DNSTAP_MESSAGE, f.message = Some(r.bytes()?));
    expect!(DNSTAP_TYPE, r.skip_varint()?);
    while at < r.buf.len() {
        match key {
            DNSTAP_MESSAGE if f.message.is_some() => return Err(Bad::Repeated),
            DNSTAP_MESSAGE => f.message = Some(r.bytes()?),
            DNSTAP_IDENTITY => f.identity = Some(r.bytes()?),
            DNSTAP_VERSION | DNSTAP_EXTRA => _ = r.bytes()?,
            DNSTAP_TYPE => r.skip_varint()?,
            _ => r.skip(at, key)?,
        }
        (at, key) = r.next_key()?;
    }
    Ok(f)
}

/// The `Message` scan of [`MessageView::parse_dns_message`]: the type and the two DNS
/// messages (last occurrence wins, as in `MessageView::field`), every other field checked
/// and skipped, a repeated `policy` refused.
// PERF: as in the top-level scan, the fields in field-number order first, each skipped by
// its known wire type: the jump on the skipped field's wire type was the hottest
// instruction of this scan (a quarter of its samples; scripts/perf.sh, synthetic corpus).
#[inline(always)]
#[allow(clippy::type_complexity)]
fn scan_dns_message<'a>(
    r: &mut Reader<'a>,
) -> Result<(Option<u32>, Option<&'a [u8]>, Option<&'a [u8]>), Bad> {
    let (mut kind, mut query, mut response, mut policy) = (None, None, None, false);
    // PERF: senders start a Message with type, socket_family and socket_protocol, three
    // one-byte keys with one-byte values: check all six bytes with one load instead of
    // three dependent steps (the scan is a chain of dependent loads, each field's position
    // read from the one before).
    if let Some(word) = r.buf.first_chunk::<8>() {
        let word = u64::from_le_bytes(*word);
        const MASK: u64 = 0x80ff_80ff_80ff;
        const KEYS: u64 = MSG_SOCKET_PROTOCOL << 32 | MSG_SOCKET_FAMILY << 16 | MSG_TYPE;
        if word & MASK == KEYS {
            kind = Some(u32::from((word >> 8) as u8));
            r.pos = 6;
        }
    }
    let (mut at, mut key) = r.next_key()?;
    macro_rules! expect {
        ($want:expr, $read:expr) => {
            in_order_step!(r, at, key, $want, $read)
        };
    }
    expect!(MSG_TYPE, kind = Some(r.varint()? as u32));
    expect!(MSG_SOCKET_FAMILY, r.skip_varint()?);
    expect!(MSG_SOCKET_PROTOCOL, r.skip_varint()?);
    expect!(MSG_QUERY_ADDRESS, r.bytes()?);
    expect!(MSG_RESPONSE_ADDRESS, r.bytes()?);
    expect!(MSG_QUERY_PORT, r.skip_varint()?);
    expect!(MSG_RESPONSE_PORT, r.skip_varint()?);
    expect!(MSG_QUERY_TIME_SEC, r.skip_varint()?);
    expect!(MSG_QUERY_TIME_NSEC, r.fixed32()?);
    expect!(MSG_QUERY_MESSAGE, query = Some(r.bytes()?));
    expect!(MSG_QUERY_ZONE, r.bytes()?);
    expect!(MSG_RESPONSE_TIME_SEC, r.skip_varint()?);
    expect!(MSG_RESPONSE_TIME_NSEC, r.fixed32()?);
    expect!(MSG_RESPONSE_MESSAGE, response = Some(r.bytes()?));
    expect!(MSG_POLICY, {
        r.bytes()?;
        policy = true;
    });
    expect!(MSG_HTTP_PROTOCOL, r.skip_varint()?);
    while at < r.buf.len() {
        match key {
            MSG_TYPE => kind = Some(r.varint()? as u32),
            MSG_QUERY_MESSAGE => query = Some(r.bytes()?),
            MSG_RESPONSE_MESSAGE => response = Some(r.bytes()?),
            MSG_POLICY if policy => return Err(Bad::Repeated),
            MSG_POLICY => {
                r.bytes()?;
                policy = true;
            }
            _ => r.skip(at, key)?,
        }
        (at, key) = r.next_key()?;
    }
    Ok((kind, query, response))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        f_bytes, f_fixed32, f_fixed64, f_varint, full_message_fields, XorShift,
    };
    use super::{DnstapView, FilterFields, MessageView};

    /// `parse_dns_message` keeps three fields and skips the rest its own way; it must give
    /// what `parse` + `dns_message` give, errors included, whatever the order, repeats,
    /// unknown fields (every wire type, varints of 1 to 11 bytes, field number 0) and damage.
    #[test]
    fn dns_message_scan_agrees_with_parse() {
        let mut extra = vec![Vec::new(); 9];
        f_varint(99, 1, &mut extra[0]);
        f_varint(99, u64::MAX, &mut extra[1]); // ten bytes
        extra[2].extend_from_slice(&[99 << 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        extra[3].extend_from_slice(&[
            99 << 3,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x01,
        ]);
        f_fixed64(98, 7, &mut extra[4]);
        f_fixed32(97, 7, &mut extra[5]);
        f_bytes(96, b"unknown", &mut extra[6]);
        f_varint(0, 1, &mut extra[7]); // field number 0
        f_varint(1, 300, &mut extra[8]); // a type that needs two bytes
        let mut fields = full_message_fields();
        fields.extend(extra);
        let policy = &full_message_fields()[14];
        assert_eq!(u64::from(policy[0]), 15 << 3 | 2, "the policy field");
        let (mut rng, mut repeated_policy, mut ok) = (XorShift(11), 0, 0);
        for round in 0..20_000 {
            let mut picked: Vec<&Vec<u8>> = fields.iter().filter(|_| rng.next() % 3 == 0).collect();
            if round % 2 == 1 {
                rng.shuffle(&mut picked);
            }
            if round % 5 == 0 {
                // Repeats: the last one wins, a second policy is refused.
                picked.push(&fields[(rng.next() % fields.len() as u64) as usize]);
            }
            if round % 11 == 0 {
                picked.extend([policy, policy]);
            }
            let buf = rng.damaged(picked, round);
            let full = MessageView::parse(&buf).map(|m| m.dns_message());
            assert_eq!(MessageView::parse_dns_message(&buf), full, "{buf:02x?}");
            ok += usize::from(full.is_ok());
            repeated_policy += usize::from(full.is_err_and(|e| e.what.contains("repeated")));
        }
        assert!(
            ok > 5_000 && repeated_policy > 50,
            "{ok} parsed, {repeated_policy} repeated"
        );
    }

    /// `parse_filter_fields` keeps two top-level fields and skips the rest its own way; it
    /// must give what `parse` gives of them, errors included, whatever the order, repeats,
    /// unknown fields (every wire type, long varints, field number 0) and damage.
    #[test]
    fn filter_fields_scan_agrees_with_parse() {
        let mut fields = vec![Vec::new(); 14];
        f_bytes(1, b"lab-unbound", &mut fields[0]);
        f_bytes(2, b"unbound 1.19", &mut fields[1]);
        f_bytes(3, b"extra", &mut fields[2]);
        f_bytes(14, &full_message_fields().concat(), &mut fields[3]);
        f_varint(15, 1, &mut fields[4]);
        f_varint(15, u64::MAX, &mut fields[5]); // ten bytes
        f_bytes(1, b"", &mut fields[6]);
        f_varint(99, 1, &mut fields[7]);
        f_fixed64(98, 7, &mut fields[8]);
        f_fixed32(97, 7, &mut fields[9]);
        f_bytes(96, b"unknown", &mut fields[10]);
        f_varint(0, 1, &mut fields[11]); // field number 0
        f_varint(1, 5, &mut fields[12]); // identity's number with the varint wire type
        fields[13].extend_from_slice(&[15 << 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let message = fields[3].clone();
        let (mut rng, mut repeated, mut ok, mut identities) = (XorShift(23), 0, 0, 0);
        for round in 0..20_000 {
            // In field-number order (the senders' order) half the time: the scan's fast path.
            let mut picked: Vec<&Vec<u8>> = if round % 2 == 0 {
                fields[..5].iter().filter(|_| rng.next() % 4 != 0).collect()
            } else {
                fields.iter().filter(|_| rng.next() % 3 == 0).collect()
            };
            if round % 4 == 1 {
                rng.shuffle(&mut picked);
            }
            if round % 5 == 0 {
                picked.push(&fields[(rng.next() % fields.len() as u64) as usize]);
            }
            if round % 13 == 0 {
                picked.push(&message);
            }
            let buf = rng.damaged(picked, round);
            let full = DnstapView::parse(&buf).map(|v| FilterFields {
                identity: v.identity,
                message: v.message,
            });
            assert_eq!(DnstapView::parse_filter_fields(&buf), full, "{buf:02x?}");
            ok += usize::from(full.is_ok());
            identities += usize::from(full.is_ok_and(|f| f.identity.is_some()));
            repeated += usize::from(full.is_err_and(|e| e.what.contains("repeated")));
        }
        assert!(
            ok > 5_000 && identities > 2_000 && repeated > 100,
            "{ok} parsed, {identities} with an identity, {repeated} repeated"
        );
    }
}
