//! DNS traffic statistics, counted in the writer thread on every decoded record: messages by
//! dnstap message type, socket protocol and family, DNS rcode and qtype, DNS parse errors,
//! per dnstap identity, and the query→response latency histogram.
//!
//! ```text
//!  writer thread                                  metrics HTTP thread
//!  TrafficCounter::observe(rec)  (plain u64 +=)
//!  TrafficCounter::publish()     (after a batch) ──► TrafficShared (atomics) ──► snapshot()
//! ```
//!
//! Every dimension is a fixed array indexed by a small slot number: known values have their
//! own slot and everything else folds into `other`, so label sets are bounded whatever the
//! senders send. Identities get a slot each for the first [`IDENTITY_SLOTS`] distinct ones,
//! then `other`. `observe` does not allocate (except once per new identity, at most
//! [`IDENTITY_SLOTS`] times) and takes no lock; `publish` is one relaxed store per counter.
//! Knows records and DNS headers; knows nothing of sockets, the queue or the text format.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::dns::DnsErrorKind;
use crate::dnstap;
use crate::pipeline::Observer;
use crate::record::{Record, Timestamp};

/// `names` behind an `other` label in slot 0: slot = the schema value (1-based enums).
/// `N` must be `names.len() + 1` (checked at compile time).
const fn with_other<const N: usize>(names: &[&'static str]) -> [&'static str; N] {
    assert!(N == names.len() + 1);
    let mut out = ["other"; N];
    let mut i = 0;
    while i < names.len() {
        out[i + 1] = names[i];
        i += 1;
    }
    out
}

/// `Message.Type` labels by slot: slot = the schema value 1..=14, slot 0 = other/absent.
pub const MESSAGE_TYPES: [&str; 15] = with_other(&dnstap::MESSAGE_TYPE_NAMES);

/// `SocketProtocol` labels by slot (schema value; 0 = other/absent).
pub const PROTOCOLS: [&str; 8] = with_other(&dnstap::PROTOCOL_NAMES);

/// `SocketFamily` labels by slot (schema value; 0 = other/absent).
pub const FAMILIES: [&str; 3] = with_other(&dnstap::FAMILY_NAMES);

/// The 4-bit header RCODE labels by value 0..=11; 12..=15 fold into `other` (slot 12).
pub const RCODES: [&str; 13] = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "DSOTYPENI",
    "other",
];

/// QTYPEs with their own label; the rest are `other`, a message without a readable
/// question is `none`.
const KNOWN_QTYPES: [(u16, &str); 28] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (13, "HINFO"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (44, "SSHFP"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (99, "SPF"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (257, "CAA"),
];

/// Slots of the qtype dimension: the known types, then `other`, then `none`.
pub const QTYPE_SLOTS: usize = KNOWN_QTYPES.len() + 2;
const QTYPE_OTHER: usize = KNOWN_QTYPES.len();
const QTYPE_NONE: usize = KNOWN_QTYPES.len() + 1;

/// Label of qtype slot `i`.
pub fn qtype_label(i: usize) -> &'static str {
    match KNOWN_QTYPES.get(i) {
        Some((_, name)) => name,
        None if i == QTYPE_OTHER => "other",
        None => "none",
    }
}

/// qtype < 256 → slot (QTYPE_OTHER when unlisted); built at compile time.
const QTYPE_LUT: [u8; 256] = {
    let mut t = [QTYPE_OTHER as u8; 256];
    let mut i = 0;
    while i < KNOWN_QTYPES.len() {
        let v = KNOWN_QTYPES[i].0;
        if v < 256 {
            t[v as usize] = i as u8;
        }
        i += 1;
    }
    t
};

#[inline]
fn qtype_slot(t: u16) -> usize {
    match QTYPE_LUT.get(t as usize) {
        Some(&s) => s as usize,
        None if t == 257 => KNOWN_QTYPES.len() - 1,
        None => QTYPE_OTHER,
    }
}

/// DNS parse error labels by slot (the kinds of [`DnsErrorKind`]).
pub const DNS_ERRORS: [&str; 6] = [
    "truncated",
    "bad_label",
    "name_too_long",
    "bad_pointer",
    "bad_rdata",
    "bad_edns",
];

fn dns_error_slot(k: DnsErrorKind) -> usize {
    match k {
        DnsErrorKind::Truncated => 0,
        DnsErrorKind::BadLabel => 1,
        DnsErrorKind::NameTooLong => 2,
        DnsErrorKind::BadPointer => 3,
        DnsErrorKind::BadRdata => 4,
        DnsErrorKind::BadEdns => 5,
    }
}

/// Upper bounds of the latency histogram buckets, in nanoseconds (100 µs .. 10 s); one more
/// bucket (+Inf) follows.
pub const LATENCY_BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

/// Distinct identities that get their own label; the rest are `other`.
pub const IDENTITY_SLOTS: usize = 64;
/// Identity slot 0: no identity, or an empty one (label `""`).
pub const IDENTITY_NONE: usize = 0;
/// Identity slot 1: identities past the first [`IDENTITY_SLOTS`] (and one named `other`).
pub const IDENTITY_OTHER: usize = 1;
const IDENTITY_TOTAL: usize = IDENTITY_SLOTS + 2;

// The flat counter layout shared by the writer's array and the atomics.
pub const OFF_TYPE: usize = 0;
pub const OFF_PROTO: usize = OFF_TYPE + MESSAGE_TYPES.len();
pub const OFF_FAMILY: usize = OFF_PROTO + PROTOCOLS.len();
pub const OFF_RCODE: usize = OFF_FAMILY + FAMILIES.len();
pub const OFF_QTYPE: usize = OFF_RCODE + RCODES.len();
pub const OFF_DNS_ERR: usize = OFF_QTYPE + QTYPE_SLOTS;
pub const OFF_LAT: usize = OFF_DNS_ERR + DNS_ERRORS.len();
pub const OFF_LAT_SUM_NS: usize = OFF_LAT + LATENCY_BUCKETS;
pub const OFF_LAT_COUNT: usize = OFF_LAT_SUM_NS + 1;
/// Responses carrying both times, the response time before the query time (not in the
/// histogram).
pub const OFF_LAT_NEGATIVE: usize = OFF_LAT_COUNT + 1;
pub const OFF_ID_MSGS: usize = OFF_LAT_NEGATIVE + 1;
pub const OFF_ID_BYTES: usize = OFF_ID_MSGS + IDENTITY_TOTAL;
/// Responses per identity and RCODE: `OFF_ID_RCODE + slot * RCODES.len() + rcode`.
pub const OFF_ID_RCODE: usize = OFF_ID_BYTES + IDENTITY_TOTAL;
/// Messages per identity and qtype slot: `OFF_ID_QTYPE + slot * QTYPE_SLOTS + qtype`.
pub const OFF_ID_QTYPE: usize = OFF_ID_RCODE + IDENTITY_TOTAL * RCODES.len();
pub const COUNTERS: usize = OFF_ID_QTYPE + IDENTITY_TOTAL * QTYPE_SLOTS;

/// The per-identity dimensions: (offset, counters per identity slot).
const PER_IDENTITY: [(usize, usize); 4] = [
    (OFF_ID_MSGS, 1),
    (OFF_ID_BYTES, 1),
    (OFF_ID_RCODE, RCODES.len()),
    (OFF_ID_QTYPE, QTYPE_SLOTS),
];

/// The published counters, read by the metrics endpoint.
#[derive(Debug)]
pub struct TrafficShared {
    counts: Box<[AtomicU64]>,
    /// Label of each identity slot, by slot; slots 0 and 1 are `""` and `other`.
    identities: Mutex<Vec<String>>,
}

/// A copy of the published counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    /// Indexed by the `OFF_*` layout; `COUNTERS` long.
    pub counts: Vec<u64>,
    /// Identity labels by slot (as many as are in use).
    pub identities: Vec<String>,
}

impl TrafficSnapshot {
    /// Several writers' counters as one: every dimension summed, identities matched by
    /// label (each writer numbers its identity slots in its own order of arrival). Past
    /// [`IDENTITY_SLOTS`] distinct labels, the rest count as `other`, as in one writer.
    pub fn merge(parts: &[TrafficSnapshot]) -> TrafficSnapshot {
        let mut out = TrafficSnapshot {
            counts: vec![0; COUNTERS],
            identities: vec![String::new(), "other".to_string()],
        };
        for p in parts {
            for (sum, v) in out.counts.iter_mut().zip(p.counts.iter()).take(OFF_ID_MSGS) {
                *sum += v;
            }
            for (slot, label) in p.identities.iter().enumerate() {
                let to = if slot <= IDENTITY_OTHER {
                    slot
                } else if let Some(j) = out.identities.iter().position(|l| l == label) {
                    j
                } else if out.identities.len() < IDENTITY_TOTAL {
                    out.identities.push(label.clone());
                    out.identities.len() - 1
                } else {
                    IDENTITY_OTHER
                };
                for (off, width) in PER_IDENTITY {
                    for k in 0..width {
                        if let Some(sum) = out.counts.get_mut(off + to * width + k) {
                            *sum += p.get(off + slot * width + k);
                        }
                    }
                }
            }
        }
        out
    }

    /// The counters of one dimension (`off..off + len`).
    pub fn slice(&self, off: usize, len: usize) -> &[u64] {
        self.counts.get(off..off + len).unwrap_or(&[])
    }

    pub fn get(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }
}

impl TrafficShared {
    pub fn snapshot(&self) -> TrafficSnapshot {
        // Names first: a slot's counter is only ever non-zero after its name was pushed.
        let identities = match self.identities.lock() {
            Ok(v) => v.clone(),
            Err(_) => Vec::new(),
        };
        TrafficSnapshot {
            counts: self
                .counts
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
            identities,
        }
    }
}

/// The writer thread's counters: plain integers, published after each batch.
#[derive(Debug)]
pub struct TrafficCounter {
    counts: Box<[u64; COUNTERS]>,
    shared: Arc<TrafficShared>,
    /// Identities with their own slot, by slot - 2.
    ids: Vec<Box<[u8]>>,
    /// Open-addressing table: identity hash → index into `ids` (+1; 0 = empty).
    table: [u8; ID_TABLE],
    /// Slot of the previous record's identity (a stream usually repeats one identity).
    last_id: usize,
}

/// Twice [`IDENTITY_SLOTS`], a power of two: probes stay short.
const ID_TABLE: usize = 128;

impl TrafficCounter {
    /// A counter for one writer and the shared view of it.
    pub fn new() -> (TrafficCounter, Arc<TrafficShared>) {
        let shared = Arc::new(TrafficShared {
            counts: (0..COUNTERS).map(|_| AtomicU64::new(0)).collect(),
            identities: Mutex::new(vec![String::new(), "other".to_string()]),
        });
        let c = TrafficCounter {
            counts: Box::new([0; COUNTERS]),
            shared: Arc::clone(&shared),
            ids: Vec::with_capacity(IDENTITY_SLOTS),
            table: [0; ID_TABLE],
            last_id: IDENTITY_NONE,
        };
        (c, shared)
    }

    /// Counts one record; `payload` is its dnstap protobuf (for bytes per identity).
    #[inline]
    pub fn observe(&mut self, rec: &Record<'_>, payload: &[u8]) {
        let mt = match rec.message_type {
            Some(t @ 1..=14) => t as usize,
            _ => 0,
        };
        let proto = match rec.socket_protocol {
            Some(p @ 1..=7) => p as usize,
            _ => 0,
        };
        let family = match rec.socket_family {
            Some(f @ 1..=2) => f as usize,
            _ => 0,
        };
        let c = &mut *self.counts;
        c[OFF_TYPE + mt] += 1;
        c[OFF_PROTO + proto] += 1;
        c[OFF_FAMILY + family] += 1;
        let mut rcode = None;
        let qslot = match &rec.dns {
            Some(Ok(m)) => {
                if m.header.is_response() {
                    let rc = (m.header.rcode() as usize).min(RCODES.len() - 1);
                    c[OFF_RCODE + rc] += 1;
                    rcode = Some(rc);
                }
                match &m.question {
                    Some(q) => qtype_slot(q.qtype),
                    None => QTYPE_NONE,
                }
            }
            Some(Err(e)) => {
                c[OFF_DNS_ERR + dns_error_slot(e.kind)] += 1;
                QTYPE_NONE
            }
            None => QTYPE_NONE,
        };
        c[OFF_QTYPE + qslot] += 1;
        // Response types are the even ones (AUTH_RESPONSE = 2 ... UPDATE_RESPONSE = 14).
        if mt != 0 && mt % 2 == 0 {
            if let (Some(q), Some(r)) = (rec.query_time, rec.response_time) {
                self.observe_latency(q, r);
            }
        }
        let id = self.identity_slot(rec.identity.unwrap_or_default());
        let c = &mut *self.counts;
        c[OFF_ID_MSGS + id] += 1;
        c[OFF_ID_BYTES + id] += payload.len() as u64;
        if let Some(rc) = rcode {
            c[OFF_ID_RCODE + id * RCODES.len() + rc] += 1;
        }
        c[OFF_ID_QTYPE + id * QTYPE_SLOTS + qslot] += 1;
    }

    #[inline]
    fn observe_latency(&mut self, q: Timestamp, r: Timestamp) {
        // i128: seconds come from the wire and may be anything up to u64::MAX.
        let ns =
            (r.sec as i128 - q.sec as i128) * 1_000_000_000 + (r.nsec as i128) - (q.nsec as i128);
        let c = &mut *self.counts;
        if ns < 0 {
            c[OFF_LAT_NEGATIVE] += 1;
            return;
        }
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        let b = LATENCY_BOUNDS_NS
            .iter()
            .position(|&le| ns <= le)
            .unwrap_or(LATENCY_BOUNDS_NS.len());
        c[OFF_LAT + b] += 1;
        c[OFF_LAT_SUM_NS] = c[OFF_LAT_SUM_NS].wrapping_add(ns);
        c[OFF_LAT_COUNT] += 1;
    }

    /// The slot of an identity: the previous record's when equal (the common case), else a
    /// table look-up, else a new slot while there are free ones, else `other`.
    #[inline]
    fn identity_slot(&mut self, id: &[u8]) -> usize {
        if id.is_empty() {
            return IDENTITY_NONE;
        }
        if self.last_id >= 2 && self.ids.get(self.last_id - 2).is_some_and(|x| **x == *id) {
            return self.last_id;
        }
        let slot = self.identity_lookup(id);
        self.last_id = slot;
        slot
    }

    #[cold]
    fn identity_lookup(&mut self, id: &[u8]) -> usize {
        let mut h = fnv1a(id) as usize;
        for _ in 0..ID_TABLE {
            h &= ID_TABLE - 1;
            match self.table[h] {
                0 => break,
                e => {
                    let i = e as usize - 1;
                    if self.ids.get(i).is_some_and(|x| **x == *id) {
                        return i + 2;
                    }
                }
            }
            h += 1;
        }
        // Not known. `h` is the empty cell the probe stopped at (the table is never full:
        // it holds at most IDENTITY_SLOTS of its ID_TABLE cells).
        if self.ids.len() >= IDENTITY_SLOTS || id == b"other" {
            return IDENTITY_OTHER;
        }
        let i = self.ids.len();
        self.ids.push(id.into());
        self.table[h & (ID_TABLE - 1)] = (i + 1) as u8;
        if let Ok(mut names) = self.shared.identities.lock() {
            names.push(identity_label(id));
        }
        i + 2
    }

    /// Makes the counts visible to [`TrafficShared::snapshot`].
    pub fn publish(&mut self) {
        // Everything before the per-identity rows, then only the rows of slots in use (the
        // others are still 0): a few hundred stores per batch, not the whole table.
        let used = self.ids.len() + 2;
        let store = |range: std::ops::Range<usize>| {
            let (Some(to), Some(from)) = (
                self.shared.counts.get(range.clone()),
                self.counts.get(range),
            ) else {
                return;
            };
            for (a, &v) in to.iter().zip(from) {
                a.store(v, Ordering::Relaxed);
            }
        };
        store(0..OFF_ID_MSGS);
        for (off, width) in PER_IDENTITY {
            store(off..off + used * width);
        }
    }

    /// The writer-local counts (tests and benchmarks).
    pub fn counts(&self) -> &[u64] {
        &self.counts[..]
    }
}

impl Observer for TrafficCounter {
    #[inline]
    fn observe(&mut self, rec: &Record<'_>, payload: &[u8]) {
        TrafficCounter::observe(self, rec, payload);
    }

    fn publish(&mut self) {
        TrafficCounter::publish(self);
    }
}

/// The label value of an identity: its text, with `\` doubled and each byte that is not
/// UTF-8 written as `\xNN`. One-to-one, so two identities never share a label (a duplicate
/// series would make Prometheus reject the whole scrape).
pub fn identity_label(id: &[u8]) -> String {
    let mut s = String::with_capacity(id.len());
    for chunk in id.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                s.push_str("\\\\");
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// FNV-1a over at most the first 64 bytes (identities are short; a long one still compares
/// in full after the look-up).
fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b.iter().take(64) {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ b.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnstap;

    fn rec(mt: u32, id: &'static [u8]) -> Record<'static> {
        Record {
            identity: Some(id),
            message_type: Some(mt),
            socket_family: Some(1),
            socket_protocol: Some(1),
            ..Record::default()
        }
    }

    #[test]
    fn labels_follow_the_schema_names() {
        for (i, name) in MESSAGE_TYPES.iter().enumerate().skip(1) {
            assert_eq!(dnstap::message_type_name(i as u32), Some(*name));
        }
        for (i, name) in PROTOCOLS.iter().enumerate().skip(1) {
            assert_eq!(dnstap::protocol_name(i as u32), Some(*name));
        }
        for (i, name) in FAMILIES.iter().enumerate().skip(1) {
            assert_eq!(dnstap::family_name(i as u32), Some(*name));
        }
        for (v, name) in KNOWN_QTYPES {
            assert_eq!(crate::dns::types::rtype_name(v), Some(name), "{v}");
            assert_eq!(qtype_label(qtype_slot(v)), name);
        }
        for (v, name) in RCODES.iter().enumerate().take(12) {
            assert_eq!(crate::dns::types::rcode_name(v as u16), Some(*name), "{v}");
        }
        assert_eq!(qtype_label(qtype_slot(999)), "other");
        assert_eq!(qtype_label(qtype_slot(256)), "other");
        assert_eq!(qtype_label(QTYPE_NONE), "none");
    }

    #[test]
    fn every_record_lands_once_in_each_dimension() {
        let (mut t, shared) = TrafficCounter::new();
        let mut odd = rec(99, b"ns1");
        odd.socket_family = None;
        odd.socket_protocol = Some(42);
        for r in [rec(5, b"ns1"), rec(6, b"ns2"), odd] {
            t.observe(&r, b"12345");
        }
        t.publish();
        let s = shared.snapshot();
        let sum = |off, len| s.slice(off, len).iter().sum::<u64>();
        assert_eq!(sum(OFF_TYPE, MESSAGE_TYPES.len()), 3);
        assert_eq!(sum(OFF_PROTO, PROTOCOLS.len()), 3);
        assert_eq!(sum(OFF_FAMILY, FAMILIES.len()), 3);
        assert_eq!(sum(OFF_QTYPE, QTYPE_SLOTS), 3);
        assert_eq!(s.get(OFF_TYPE), 1, "unknown type 99 is other");
        assert_eq!(s.get(OFF_PROTO), 1);
        assert_eq!(s.get(OFF_FAMILY), 1);
        assert_eq!(s.get(OFF_QTYPE + QTYPE_NONE), 3, "no DNS message");
        assert_eq!(s.identities, vec!["", "other", "ns1", "ns2"]);
        assert_eq!(s.get(OFF_ID_MSGS + 2), 2);
        assert_eq!(s.get(OFF_ID_BYTES + 2), 10);
        assert_eq!(s.get(OFF_ID_MSGS + 3), 1);
    }

    #[test]
    fn identities_past_the_limit_fold_into_other() {
        let (mut t, shared) = TrafficCounter::new();
        let names: Vec<Vec<u8>> = (0..IDENTITY_SLOTS + 10)
            .map(|i| format!("id{i}").into_bytes())
            .collect();
        for _ in 0..2 {
            for n in &names {
                let r = Record {
                    identity: Some(n),
                    ..Record::default()
                };
                t.observe(&r, b"");
            }
        }
        // An identity literally named "other" never gets its own (duplicate) label, nor does
        // the empty one.
        for id in [&b"other"[..], b""] {
            let r = Record {
                identity: Some(id),
                ..Record::default()
            };
            t.observe(&r, b"");
        }
        t.publish();
        let s = shared.snapshot();
        assert_eq!(s.identities.len(), IDENTITY_SLOTS + 2);
        for i in 0..IDENTITY_SLOTS {
            assert_eq!(s.identities[i + 2], format!("id{i}"));
            assert_eq!(s.get(OFF_ID_MSGS + i + 2), 2, "id{i}");
        }
        assert_eq!(s.get(OFF_ID_MSGS + IDENTITY_OTHER), 2 * 10 + 1);
        assert_eq!(s.get(OFF_ID_MSGS + IDENTITY_NONE), 1);
    }

    #[test]
    fn merged_writers_sum_every_dimension_and_match_identities_by_label() {
        let (mut a, sa) = TrafficCounter::new();
        let (mut b, sb) = TrafficCounter::new();
        // Each writer meets the identities in its own order.
        for r in [rec(5, b"ns1"), rec(6, b"ns2"), rec(5, b"")] {
            a.observe(&r, b"123");
        }
        for r in [rec(6, b"ns2"), rec(6, b"ns3"), rec(5, b"ns1")] {
            b.observe(&r, b"12345");
        }
        a.publish();
        b.publish();
        let m = TrafficSnapshot::merge(&[sa.snapshot(), sb.snapshot()]);
        assert_eq!(m.counts.len(), COUNTERS);
        assert_eq!(m.get(OFF_TYPE + 5), 3);
        assert_eq!(m.get(OFF_TYPE + 6), 3);
        assert_eq!(m.identities, vec!["", "other", "ns1", "ns2", "ns3"]);
        let id = |l: &str| m.identities.iter().position(|x| x == l).unwrap();
        assert_eq!(m.get(OFF_ID_MSGS + id("ns1")), 2);
        assert_eq!(m.get(OFF_ID_BYTES + id("ns1")), 3 + 5);
        assert_eq!(m.get(OFF_ID_MSGS + id("ns2")), 2);
        assert_eq!(m.get(OFF_ID_MSGS + id("ns3")), 1);
        assert_eq!(m.get(OFF_ID_MSGS + IDENTITY_NONE), 1);
        // Past the slots, new labels fold into other.
        let many: Vec<TrafficSnapshot> = (0..IDENTITY_SLOTS + 3)
            .map(|i| {
                let (mut t, s) = TrafficCounter::new();
                let name = format!("w{i}").into_bytes();
                t.observe(&rec(5, &*Box::leak(name.into_boxed_slice())), b"");
                t.publish();
                s.snapshot()
            })
            .collect();
        let m = TrafficSnapshot::merge(&many);
        assert_eq!(m.identities.len(), IDENTITY_SLOTS + 2);
        assert_eq!(m.get(OFF_ID_MSGS + IDENTITY_OTHER), 3);
    }

    #[test]
    fn identity_labels_are_one_to_one() {
        let ids: [&[u8]; 6] = [b"ns1", b"\xff", b"\xfe", b"\\xff", b"a\\b", "é".as_bytes()];
        let labels: Vec<String> = ids.iter().map(|i| identity_label(i)).collect();
        assert_eq!(labels, ["ns1", "\\xff", "\\xfe", "\\\\xff", "a\\\\b", "é"]);
        let distinct: std::collections::HashSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn latency_buckets_and_sum() {
        let (mut t, shared) = TrafficCounter::new();
        let ts = |sec, nsec| Some(Timestamp { sec, nsec });
        let cases = [
            (ts(10, 0), ts(10, 100_000)),     // exactly 100 µs: first bucket (le)
            (ts(10, 999_999_999), ts(11, 2)), // 3 ns across a second boundary
            (ts(10, 0), ts(12, 0)),           // 2 s
            (ts(10, 0), ts(100, 0)),          // 90 s: +Inf
            (ts(10, 5), ts(10, 4)),           // negative: not in the histogram
            (ts(u64::MAX, 0), ts(0, 0)),      // absurd: negative
            (ts(0, 0), ts(u64::MAX, 0)),      // absurd: +Inf, sum saturates per value
        ];
        for (q, r) in cases {
            let mut x = rec(6, b"x");
            x.query_time = q;
            x.response_time = r;
            t.observe(&x, b"");
        }
        // A query type never counts, even with both times.
        let mut x = rec(5, b"x");
        x.query_time = ts(1, 0);
        x.response_time = ts(2, 0);
        t.observe(&x, b"");
        t.publish();
        let s = shared.snapshot();
        let h = s.slice(OFF_LAT, LATENCY_BUCKETS);
        assert_eq!(h[0], 2);
        assert_eq!(h[13], 1, "2 s is in the 2.5 s bucket");
        assert_eq!(h[16], 2);
        assert_eq!(h.iter().sum::<u64>(), 5);
        assert_eq!(s.get(OFF_LAT_COUNT), 5);
        assert_eq!(s.get(OFF_LAT_NEGATIVE), 2);
        let expect_sum = 100_000u64 + 3 + 2_000_000_000 + 90_000_000_000;
        assert_eq!(s.get(OFF_LAT_SUM_NS), expect_sum.wrapping_add(u64::MAX));
    }

    #[test]
    fn rcode_counts_responses_only_and_qtype_from_the_question() {
        // A response header: id 0, QR + RD + RA, rcode NXDOMAIN (3); one question A IN.
        let mut resp = vec![0, 0, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        resp.extend_from_slice(b"\x07example\x00\x00\x1c\x00\x01"); // AAAA
        let mut query = resp.clone();
        query[2] = 0x01;
        query[3] = 0x00;
        let (mut t, shared) = TrafficCounter::new();
        for m in [&resp, &query] {
            let mut r = rec(6, b"x");
            r.dns = Some(crate::dns::MessageView::parse(m));
            t.observe(&r, b"");
        }
        let mut broken = rec(6, b"x");
        broken.dns = Some(crate::dns::MessageView::parse(&resp[..5]));
        t.observe(&broken, b"");
        t.publish();
        let s = shared.snapshot();
        assert_eq!(s.slice(OFF_RCODE, RCODES.len()).iter().sum::<u64>(), 1);
        assert_eq!(s.get(OFF_RCODE + 3), 1);
        assert_eq!(s.get(OFF_QTYPE + qtype_slot(28)), 2);
        assert_eq!(s.get(OFF_QTYPE + QTYPE_NONE), 1);
        assert_eq!(s.get(OFF_DNS_ERR), 1, "truncated");
    }

    #[test]
    fn rcode_and_qtype_per_identity_follow_the_identity_through_a_merge() {
        let mut resp = vec![0, 0, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]; // NXDOMAIN
        resp.extend_from_slice(b"\x07example\x00\x00\x1c\x00\x01"); // AAAA
        let mut ok = resp.clone();
        ok[3] = 0x80; // NOERROR
        let mut query = resp.clone();
        query[2] = 0x01;
        query[3] = 0x00;
        let (mut a, sa) = TrafficCounter::new();
        let (mut b, sb) = TrafficCounter::new();
        // Writer a meets ns1 first, writer b meets ns2 first: slots differ, labels match.
        for (writer, id, m) in [
            (0, &b"ns1"[..], &resp),
            (0, b"ns2", &ok),
            (0, b"ns2", &query),
            (1, b"ns2", &resp),
            (1, b"ns1", &resp),
            (1, b"ns1", &query),
        ] {
            let mut r = rec(6, id);
            r.dns = Some(crate::dns::MessageView::parse(m));
            if writer == 0 { &mut a } else { &mut b }.observe(&r, b"");
        }
        a.publish();
        b.publish();
        let m = TrafficSnapshot::merge(&[sa.snapshot(), sb.snapshot()]);
        let id = |l: &str| m.identities.iter().position(|x| x == l).unwrap();
        let rc = |l: &str, rcode: usize| m.get(OFF_ID_RCODE + id(l) * RCODES.len() + rcode);
        let qt = |l: &str, q: usize| m.get(OFF_ID_QTYPE + id(l) * QTYPE_SLOTS + q);
        assert_eq!((rc("ns1", 3), rc("ns1", 0)), (2, 0));
        assert_eq!((rc("ns2", 3), rc("ns2", 0)), (1, 1));
        assert_eq!(qt("ns1", qtype_slot(28)), 3, "queries and responses");
        assert_eq!(qt("ns2", qtype_slot(28)), 3);
        let all: u64 = m
            .slice(OFF_ID_RCODE, IDENTITY_TOTAL * RCODES.len())
            .iter()
            .sum();
        assert_eq!(all, m.slice(OFF_RCODE, RCODES.len()).iter().sum::<u64>());
    }
}
