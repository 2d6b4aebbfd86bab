//! The qname prefilter's scan of a dnstap `Message`: [`MessageView::parse_dns_message`]
//! finds only the DNS message a filter needs (the type picks `query_message` or
//! `response_message`), checking and skipping every other field instead of storing it. It
//! owns that one narrow scan and must agree with [`MessageView::parse`] followed by
//! [`MessageView::dns_message`] on every buffer, errors included (the test at the bottom).
//! Field numbers come from `view.rs`, wire reading from `wire.rs`; it knows nothing of
//! filters, Frame Streams or DNS.
#![forbid(unsafe_code)]

use super::view::{
    MessageView, ViewError, MSG_POLICY, MSG_QUERY_MESSAGE, MSG_RESPONSE_MESSAGE, MSG_SOCKET_FAMILY,
    MSG_SOCKET_PROTOCOL, MSG_TYPE,
};
use super::wire::{Bad, Reader};

impl<'a> MessageView<'a> {
    /// What [`MessageView::parse`] followed by [`MessageView::dns_message`] gives, without
    /// keeping the other fields: the prefilter's scan of the `Message`. It reads the same
    /// bytes under the same rules, so it accepts and refuses exactly the buffers `parse`
    /// does, with the same error (tests: `dns_message_scan_agrees_with_parse`).
    // PERF: the qname prefilter needs the type and the two DNS messages only; skipping the
    // other fields instead of storing them, and varints (the times) by one 8-byte load,
    // was 18.5 % + 4 % (varint_slow) of the filter-reject path's profile over TCP.
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
            Err(bad) => Err(r.error(bad)),
        }
    }
}

/// The `Message` scan of [`MessageView::parse_dns_message`]: the type and the two DNS
/// messages (last occurrence wins, as in `MessageView::field`), every other field checked
/// and skipped, a repeated `policy` refused.
#[inline(never)]
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
    while !r.at_end() {
        let at = r.pos;
        let key = r.varint()?;
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
    }
    Ok((kind, query, response))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{
        f_bytes, f_fixed32, f_fixed64, f_varint, full_message_fields, XorShift,
    };
    use super::MessageView;

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
                for i in (1..picked.len()).rev() {
                    picked.swap(i, (rng.next() % (i as u64 + 1)) as usize);
                }
            }
            if round % 5 == 0 {
                // Repeats: the last one wins, a second policy is refused.
                picked.push(&fields[(rng.next() % fields.len() as u64) as usize]);
            }
            if round % 11 == 0 {
                picked.extend([policy, policy]);
            }
            let mut buf: Vec<u8> = picked.into_iter().flatten().copied().collect();
            if round % 3 == 0 && !buf.is_empty() {
                let i = (rng.next() % buf.len() as u64) as usize;
                buf[i] = rng.next() as u8;
            }
            if round % 7 == 0 {
                buf.truncate((rng.next() % (buf.len() as u64 + 1)) as usize);
            }
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
}
