//! Start-up tables of the seed formats' enumerated values (qtype, message type, socket
//! family and protocol, rcode), each already written the way one format writes it and
//! followed by what comes after it in that format's line, so that a writer appends the
//! value and the next key or separator with one fixed-size copy ([`Padded`]).
//!
//! Every entry is made by the general path itself ([`seed`]'s writers on a record that
//! holds just that value), so a table and the general path cannot disagree; the values a
//! table does not hold (numbers, `-`, a header read apart from a broken question, an
//! unanswered query) are left to the general path by the lookups.
#![forbid(unsafe_code)]

use crate::dns;
use crate::format::escape::Padded;
use crate::format::seed::{self, Emit};
use crate::record::Record;

/// What follows each value in the format's line.
pub struct Tails {
    pub qtype: &'static [u8],
    pub message: &'static [u8],
    pub family: &'static [u8],
    pub transport: &'static [u8],
    pub rcode: &'static [u8],
}

/// One format's tables; `None` where the general path writes a number or `-`.
#[derive(Debug)]
pub struct SeedTables {
    /// By qtype, below 256.
    qtype: Vec<Option<Padded>>,
    /// By `Message.type`.
    message: Vec<Option<Padded>>,
    /// By `Message.socket_family`.
    family: Vec<Option<Padded>>,
    /// By `Message.socket_protocol`.
    transport: Vec<Option<Padded>>,
    /// By the DNS header's 4-bit rcode.
    rcode: Vec<Option<Padded>>,
}

/// What a general-path writer prints for `rec`, then `tail`.
fn fragment(rec: &Record<'_>, write: fn(&Record<'_>, &mut Vec<u8>), tail: &[u8]) -> Option<Padded> {
    let mut v = Vec::new();
    write(rec, &mut v);
    Padded::new(&[&v, tail])
}

/// The entries `0..n` of a field that holds a name when `name` has one.
fn enumerated(
    n: u32,
    name: fn(u32) -> Option<&'static str>,
    set: fn(u32) -> Record<'static>,
    write: fn(&Record<'_>, &mut Vec<u8>),
    tail: &[u8],
) -> Vec<Option<Padded>> {
    (0..n)
        .map(|v| name(v).and_then(|_| fragment(&set(v), write, tail)))
        .collect()
}

impl SeedTables {
    /// The tables of the format `E` writes, with `tails` after each value.
    pub fn new<E: Emit>(tails: &Tails) -> SeedTables {
        let qtype = (0..256u16)
            .map(|v| {
                // A response header with one question: the root name, type `v`, class IN.
                let [hi, lo] = v.to_be_bytes();
                let msg = [0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, hi, lo, 0, 1];
                let rec = Record {
                    dns: Some(dns::MessageView::parse(&msg)),
                    ..Record::default()
                };
                let parsed = matches!(&rec.dns, Some(Ok(m)) if m.question.is_some());
                fragment(&rec, seed::qtype::<E>, tails.qtype).filter(|_| parsed)
            })
            .collect();
        let rcode = (0..16u8)
            .map(|v| {
                let msg = [0, 0, 0x80, v, 0, 0, 0, 0, 0, 0, 0, 0];
                let rec = Record {
                    dns: Some(dns::MessageView::parse(&msg)),
                    ..Record::default()
                };
                let parsed = matches!(&rec.dns, Some(Ok(m)) if m.header.rcode() == v);
                fragment(&rec, seed::rcode::<E>, tails.rcode).filter(|_| parsed)
            })
            .collect();
        SeedTables {
            qtype,
            message: enumerated(
                16,
                crate::dnstap::message_type_name,
                |v| Record {
                    message_type: Some(v),
                    ..Record::default()
                },
                seed::message::<E>,
                tails.message,
            ),
            family: enumerated(
                4,
                crate::dnstap::family_label,
                |v| Record {
                    socket_family: Some(v),
                    ..Record::default()
                },
                seed::family::<E>,
                tails.family,
            ),
            transport: enumerated(
                16,
                crate::dnstap::protocol_label,
                |v| Record {
                    socket_protocol: Some(v),
                    ..Record::default()
                },
                seed::transport::<E>,
                tails.transport,
            ),
            rcode,
        }
    }

    /// The first question's type and its tail, when the question parsed.
    #[inline]
    pub fn qtype(&self, rec: &Record<'_>) -> Option<&Padded> {
        match &rec.dns {
            Some(Ok(m)) => self
                .qtype
                .get(usize::from(m.question.as_ref()?.qtype))?
                .as_ref(),
            _ => None,
        }
    }

    /// The message type's name and its tail.
    #[inline]
    pub fn message(&self, rec: &Record<'_>) -> Option<&Padded> {
        self.message.get(rec.message_type? as usize)?.as_ref()
    }

    /// The socket family's label and its tail.
    #[inline]
    pub fn family(&self, rec: &Record<'_>) -> Option<&Padded> {
        self.family.get(rec.socket_family? as usize)?.as_ref()
    }

    /// The socket protocol's label and its tail.
    #[inline]
    pub fn transport(&self, rec: &Record<'_>) -> Option<&Padded> {
        self.transport.get(rec.socket_protocol? as usize)?.as_ref()
    }

    /// The rcode's name and its tail, from a parsed header of an answered record.
    #[inline]
    pub fn rcode(&self, rec: &Record<'_>) -> Option<&Padded> {
        if rec.enrich.is_some_and(|e| e.timeout) {
            return None;
        }
        match &rec.dns {
            Some(Ok(m)) => self.rcode.get(usize::from(m.header.rcode()))?.as_ref(),
            _ => None,
        }
    }
}

/// Records that reach every table entry and its neighbours outside the tables (numbers,
/// `-`, broken questions, unanswered queries), for the tests of the formats that use them.
#[cfg(test)]
pub fn for_each_table_record(mut check: impl FnMut(&Record<'_>)) {
    use crate::format::seed::fixtures;
    use crate::record::Enrichment;
    let timeout = Enrichment {
        timeout: true,
        ..Enrichment::default()
    };
    for qtype in (0..300u16).chain([65280, 65535]) {
        for rcode in 0..16u16 {
            let flags = 0x8000 | rcode;
            let msg = fixtures::dns_msg(flags, &[b"www", b"example"], qtype, rcode % 3 == 0);
            let mut rec = fixtures::v6_response(&msg);
            check(&rec);
            rec.enrich = Some(&timeout);
            check(&rec);
            // A broken question: the header is read on its own.
            let cut = &msg[..14];
            let mut rec = fixtures::v6_response(cut);
            rec.dns = Some(dns::MessageView::parse(cut));
            check(&rec);
        }
    }
    let msg = fixtures::google_query();
    for v in 0..40u32 {
        for absent in [false, true] {
            let mut rec = fixtures::seed_query(&msg);
            let value = (!absent).then_some(v);
            rec.message_type = value;
            check(&rec);
            rec.socket_family = value;
            check(&rec);
            rec.socket_protocol = value;
            check(&rec);
            rec.dns = None;
            check(&rec);
        }
    }
    let odd = fixtures::odd_msg();
    check(&fixtures::odd(&odd));
    check(&Record::default());
}
