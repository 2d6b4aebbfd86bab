//! What the transforms add to a record or change in it, held in storage the writer owns and
//! reuses (no allocation per message once the buffers have grown).
//!
//! The decoded [`Record`] borrows the frame; a transform never writes into the frame.
//! Instead it writes here, and [`Record::overlaid`] makes the record the outputs see: the
//! same borrowed fields, with the changed ones (addresses, DNS message) pointing into this
//! value, and `enrich` set so the formats can print what was added (latency, public suffix,
//! reducer counts). Every format, Kafka key and forwarded line therefore sees the
//! transformed values: nothing downstream reads the original ones.
#![forbid(unsafe_code)]

use std::ops::Range;

use super::Record;
use crate::dns;

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order, inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Addr {
    len: u8,
    bytes: [u8; 16],
}

impl Addr {
    /// The address of a 4- or 16-byte slice; `None` for any other length.
    pub fn from_slice(b: &[u8]) -> Option<Addr> {
        // PERF: copies of a known length (moves), not of the slice's (a memcpy call).
        let bytes = match <[u8; 4]>::try_from(b) {
            Ok(v4) => {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&v4);
                bytes
            }
            Err(_) => <[u8; 16]>::try_from(b).ok()?,
        };
        Some(Addr {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The bytes, to change in place (the length stays).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len as usize]
    }
}

/// The reducer's summary of the records it folded into one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reduced {
    /// Records folded into this one (itself included).
    pub occurrences: u64,
    /// Sum of their DNS message lengths, in bytes (DNS-collector's `cumulative-length`).
    pub cumulative_length: u64,
}

/// Everything a transform chain added to or changed in one record. Reset (not freed)
/// between records; a step that sets nothing costs nothing downstream
/// ([`Enrichment::is_clear`]).
#[derive(Clone, Debug, Default)]
pub struct Enrichment {
    /// Response time minus query time, in nanoseconds (the latency transform).
    pub latency_ns: Option<u64>,
    /// A query the latency transform saw no response to in time: the formats show rcode
    /// `TIMEOUT`.
    pub timeout: bool,
    /// Set on the record a reducer emits for the records it folded.
    pub reducer: Option<Reduced>,
    /// Replaces `query_address` (privacy transforms).
    pub query_address: Option<Addr>,
    /// Replaces `response_address` (privacy transforms).
    pub response_address: Option<Addr>,
    /// When set, `message` replaces the DNS message the record is about (a rewritten copy:
    /// lowercased or minimized qname, masked EDNS Client Subnet).
    pub message_set: bool,
    pub message: Vec<u8>,
    /// When set, `other_message` replaces the other DNS message a record carries (knot's
    /// responses carry the query too): the same rewrites, as the full formats print both.
    pub other_message_set: bool,
    pub other_message: Vec<u8>,
    /// Replaces `policy.value` when it is a client address (`match: CLIENT_IP`; privacy
    /// transforms).
    pub policy_address: Option<Addr>,
    /// Text the public suffix fields point into (presentation form, lowercase, no
    /// trailing dot).
    pub text: Vec<u8>,
    /// The public suffix (`tld`) of the qname, as a range of `text`.
    pub tld: Option<Range<u16>>,
    /// The registered domain (eTLD+1) of the qname, as a range of `text`.
    pub etld1: Option<Range<u16>>,
}

impl Enrichment {
    /// Back to "nothing changed", keeping the buffers' capacity.
    pub fn reset(&mut self) {
        self.latency_ns = None;
        self.timeout = false;
        self.reducer = None;
        self.query_address = None;
        self.response_address = None;
        self.message_set = false;
        self.message.clear();
        self.other_message_set = false;
        self.other_message.clear();
        self.policy_address = None;
        self.text.clear();
        self.tld = None;
        self.etld1 = None;
    }

    /// Whether no transform set anything (the outputs then get the decoded record as is).
    pub fn is_clear(&self) -> bool {
        self.latency_ns.is_none()
            && !self.timeout
            && self.reducer.is_none()
            && self.query_address.is_none()
            && self.response_address.is_none()
            && !self.message_set
            && !self.other_message_set
            && self.policy_address.is_none()
            && self.tld.is_none()
            && self.etld1.is_none()
    }

    /// Replaces the DNS message with a copy of `m`, to be changed through
    /// [`Enrichment::message_mut`].
    pub fn set_message(&mut self, m: &[u8]) {
        self.message.clear();
        self.message.extend_from_slice(m);
        self.message_set = true;
    }

    /// Replaces the other DNS message (see `other_message`) with a copy of `m`.
    pub fn set_other_message(&mut self, m: &[u8]) {
        self.other_message.clear();
        self.other_message.extend_from_slice(m);
        self.other_message_set = true;
    }

    pub fn message_mut(&mut self) -> &mut Vec<u8> {
        &mut self.message
    }

    /// The public suffix of the qname, when a transform found it.
    pub fn tld(&self) -> Option<&[u8]> {
        let r = self.tld.clone()?;
        self.text.get(r.start as usize..r.end as usize)
    }

    /// The registered domain (eTLD+1) of the qname, when there is one.
    pub fn etld1(&self) -> Option<&[u8]> {
        let r = self.etld1.clone()?;
        self.text.get(r.start as usize..r.end as usize)
    }

    /// Appends `s` to `text` and returns its range (for `tld` / `etld1`); `None` when
    /// `text` would outgrow the range type.
    pub fn push_text(&mut self, s: &[u8]) -> Option<Range<u16>> {
        let start = u16::try_from(self.text.len()).ok()?;
        let end = u16::try_from(self.text.len() + s.len()).ok()?;
        self.text.extend_from_slice(s);
        Some(start..end)
    }
}

impl<'a> Record<'a> {
    /// The record the outputs see once `en` is applied: changed addresses and DNS message
    /// point into `en` (the DNS view is parsed again from the new message), and `enrich`
    /// is set. `en` must outlive the result, which therefore borrows both.
    pub fn overlaid<'s>(&self, en: &'s Enrichment) -> Record<'s>
    where
        'a: 's,
    {
        let mut r: Record<'s> = self.clone();
        if let Some(a) = &en.query_address {
            r.query_address = Some(a.as_slice());
        }
        if let Some(a) = &en.response_address {
            r.response_address = Some(a.as_slice());
        }
        let query = r
            .message_type
            .map(crate::dnstap::is_query_type)
            .unwrap_or(true);
        let main_is_query = query && r.query_message.is_some() || r.response_message.is_none();
        if en.other_message_set {
            let m: &'s [u8] = &en.other_message;
            if main_is_query {
                r.response_message = Some(m);
            } else {
                r.query_message = Some(m);
            }
        }
        if en.message_set {
            let m: &'s [u8] = &en.message;
            if main_is_query {
                r.query_message = Some(m);
            } else {
                r.response_message = Some(m);
            }
            r.dns = Some(dns::MessageView::parse(m));
        }
        if let (Some(a), Some(p)) = (&en.policy_address, r.policy.as_mut()) {
            p.value = Some(a.as_slice());
        }
        r.enrich = Some(en);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_replaces_only_what_was_set() {
        let q: &[u8] = &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
        let base = Record {
            message_type: Some(5),
            query_address: Some(&[192, 0, 2, 7]),
            response_address: Some(&[192, 0, 2, 1]),
            query_message: Some(q),
            ..Record::default()
        };
        let mut en = Enrichment::default();
        assert!(en.is_clear());
        en.query_address = Addr::from_slice(&[192, 0, 2, 0]);
        en.latency_ns = Some(1500);
        assert!(!en.is_clear());
        let r = base.overlaid(&en);
        assert_eq!(r.query_address, Some(&[192u8, 0, 2, 0][..]));
        assert_eq!(r.response_address, base.response_address);
        assert_eq!(r.query_message, Some(q));
        assert_eq!(r.enrich.and_then(|e| e.latency_ns), Some(1500));

        let mut rewritten = q.to_vec();
        rewritten[1] = 9;
        en.set_message(&rewritten);
        let r = base.overlaid(&en);
        assert_eq!(r.query_message, Some(&rewritten[..]));
        assert!(matches!(r.dns, Some(Ok(ref v)) if v.header.id == 9));

        en.reset();
        assert!(en.is_clear());
        assert_eq!(en.push_text(b"uk"), Some(0..2));
        assert_eq!(en.push_text(b"example.co.uk"), Some(2..15));
    }

    #[test]
    fn addresses_are_four_or_sixteen_bytes() {
        assert!(Addr::from_slice(&[1, 2, 3]).is_none());
        assert_eq!(Addr::from_slice(&[1; 16]).unwrap().as_slice(), &[1; 16]);
        let mut a = Addr::from_slice(&[10, 1, 2, 3]).unwrap();
        a.as_mut_slice()[3] = 0;
        assert_eq!(a.as_slice(), &[10, 1, 2, 0]);
    }
}
