//! The reducer (`transforms.reducer`, DNS-collector's "repetitive traffic detector"): within
//! a window of `watch-interval` seconds, the records equal on the `unique-fields` become one
//! record, the first of them, carrying how many there were (`occurrences`) and the sum of
//! their DNS message lengths (`cumulative-length`).
//!
//! ```text
//!  apply: first record of a key ──► Held (copied into the window)
//!         a later one            ──► Drop(Reduced) (its count and length added)
//!  drain: window due (or full)   ──► each key's first record, Enrichment.reducer set
//! ```
//!
//! Windows are tumbling: one opens with the first record held after a release and is
//! released whole once `watch-interval` has passed (checked at every drain, which the
//! writer runs at least every 50 ms). The table is bounded: when it holds `max-entries`
//! keys (or [`ARENA_MAX`] bytes), the window closes early and is released at the next
//! drain while a fresh one takes the records; nothing is ever dropped uncounted (should
//! both be full before a drain, a new key passes through as a record of one occurrence).
//!
//! Storage is reused across windows: the held records (re-encoded as dnstap payloads), the
//! keys and the entries live in buffers that are cleared, not freed, at each release, so
//! past the first windows the reducer allocates nothing per record. What earlier steps
//! changed in a held record (its [`Enrichment`]) is kept in a pool of enrichments, copied
//! with `clone_from` (which reuses their buffers).
//!
//! Knows records and their fields; nothing of threads, clocks (the caller passes `now`),
//! counters or configuration files.
#![forbid(unsafe_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use quick_protobuf::{MessageWrite, Writer};

use super::{DropReason, Origin, StepEmit, Verdict};
use crate::dnstap::pb;
use crate::record::{Enrichment, Record, Reduced};

/// `watch-interval` when not given: DNS-collector's 5 seconds.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// `max-entries` when not given.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Bytes of held records and keys one window may hold before it closes early (a bound on
/// memory whatever the record sizes: two windows at most, so twice this).
pub const ARENA_MAX: usize = 64 << 20;

/// A field records must share to be folded together (`unique-fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Identity,
    Version,
    MessageType,
    Family,
    Protocol,
    QueryIp,
    QueryPort,
    ResponseIp,
    ResponsePort,
    QueryZone,
    Qname,
    Qtype,
    Qclass,
    Rcode,
    Opcode,
    Id,
}

impl Field {
    /// Every field, in the order of docs/transforms.md.
    pub const ALL: [Field; 16] = [
        Field::Identity,
        Field::Version,
        Field::MessageType,
        Field::Family,
        Field::Protocol,
        Field::QueryIp,
        Field::QueryPort,
        Field::ResponseIp,
        Field::ResponsePort,
        Field::QueryZone,
        Field::Qname,
        Field::Qtype,
        Field::Qclass,
        Field::Rcode,
        Field::Opcode,
        Field::Id,
    ];

    /// `unique-fields` when not given: identity, message type, client address, qname,
    /// qtype, rcode.
    pub const DEFAULT: [Field; 6] = [
        Field::Identity,
        Field::MessageType,
        Field::QueryIp,
        Field::Qname,
        Field::Qtype,
        Field::Rcode,
    ];

    /// The names a configuration may use for the field: ours first, then DNS-collector's
    /// (the paths of its JSON, `dnstap.identity`, `network.query-ip`, `dns.qname`, ...).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Field::Identity => &["identity", "dnstap.identity"],
            Field::Version => &["version", "dnstap.version"],
            Field::MessageType => &["message-type", "operation", "dnstap.operation"],
            Field::Family => &["family", "network.family"],
            Field::Protocol => &["protocol", "network.protocol"],
            Field::QueryIp => &["query-ip", "query-address", "network.query-ip"],
            Field::QueryPort => &["query-port", "network.query-port"],
            Field::ResponseIp => &["response-ip", "response-address", "network.response-ip"],
            Field::ResponsePort => &["response-port", "network.response-port"],
            Field::QueryZone => &["query-zone", "dnstap.query-zone"],
            Field::Qname => &["qname", "dns.qname"],
            Field::Qtype => &["qtype", "dns.qtype"],
            Field::Qclass => &["qclass", "dns.qclass"],
            Field::Rcode => &["rcode", "dns.rcode"],
            Field::Opcode => &["opcode", "dns.opcode"],
            Field::Id => &["id", "dns.id"],
        }
    }

    /// The field a configured name stands for (case-insensitive).
    pub fn from_name(s: &str) -> Option<Field> {
        let s = s.trim();
        Field::ALL
            .into_iter()
            .find(|f| f.names().iter().any(|n| n.eq_ignore_ascii_case(s)))
    }
}

/// The reducer as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducerSpec {
    pub watch_interval: Duration,
    /// Keys one window holds before it closes early (at least 1).
    pub max_entries: usize,
    /// The fields a key is made of (at least one; duplicates are harmless).
    pub unique_fields: Vec<Field>,
}

impl Default for ReducerSpec {
    fn default() -> Self {
        ReducerSpec {
            watch_interval: DEFAULT_WATCH_INTERVAL,
            max_entries: DEFAULT_MAX_ENTRIES,
            unique_fields: Field::DEFAULT.to_vec(),
        }
    }
}

/// The compiled reducer. Its windows are behind a mutex: a chain is shared by the writer
/// threads, but a stateful chain runs on one writer, so the lock is never contended.
pub struct Reducer {
    fields: Box<[Field]>,
    interval: Duration,
    max_entries: usize,
    /// Boxed: two windows' buffers and enrichments make it larger than the other steps.
    state: Box<Mutex<State>>,
}

impl std::fmt::Debug for Reducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reducer")
            .field("fields", &self.fields)
            .field("interval", &self.interval)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The window taking records.
    open: Window,
    /// A window closed early (full), released at the next drain.
    closed: Window,
    /// The current record's key, built here to look it up.
    key: Vec<u8>,
}

/// One window: its keys and held records, in the order they came.
#[derive(Default)]
struct Window {
    /// When its first record was held; `None` while empty.
    start: Option<Instant>,
    /// Each entry's key then its record (a dnstap payload), back to back.
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Open-addressing hash table over `entries`: 0 is free, else entry index + 1. Its
    /// length is a power of two at least twice the number of entries.
    slots: Vec<u32>,
    /// What earlier steps changed in held records ([`Entry::overlay`]); the first
    /// `overlays_used` are this window's, the rest spare (kept for their buffers).
    overlays: Vec<Enrichment>,
    overlays_used: usize,
    /// The enrichment of a released record that had none of its own.
    scratch: Enrichment,
}

struct Entry {
    hash: u64,
    /// `bytes[key_at..payload_at]` is the key, `bytes[payload_at..end]` the record.
    key_at: usize,
    payload_at: usize,
    end: usize,
    /// Index in `overlays`, or [`NO_OVERLAY`].
    overlay: u32,
    reduced: Reduced,
}

const NO_OVERLAY: u32 = u32::MAX;
/// Slots of a window's first table.
const FIRST_SLOTS: usize = 1024;

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic in another writer while it held the lock leaves counts, not broken
    // invariants: carry on with them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Reducer {
    pub fn new(spec: &ReducerSpec) -> Reducer {
        let mut fields: Vec<Field> = Vec::new();
        for f in &spec.unique_fields {
            if !fields.contains(f) {
                fields.push(*f);
            }
        }
        Reducer {
            fields: fields.into_boxed_slice(),
            interval: spec.watch_interval,
            max_entries: spec.max_entries.max(1),
            state: Box::new(Mutex::new(State::default())),
        }
    }

    /// Takes the record: `Held` for the first of its key in the window, `Drop(Reduced)`
    /// for the others (counted into the first). `en` is what the steps before changed;
    /// the key is made of the values the outputs would see.
    pub fn apply(&self, rec: &Record<'_>, en: &mut Enrichment, now: Instant) -> Verdict {
        let overlaid;
        let seen: &Record<'_> = if en.is_clear() {
            rec
        } else {
            overlaid = rec.overlaid(en);
            &overlaid
        };
        let length = seen.dns_message().map_or(0, |m| m.len() as u64);
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        st.key.clear();
        write_key(&self.fields, seen, &mut st.key);
        let hash = hash_bytes(&st.key);
        if let Some(e) = st.open.find(hash, &st.key) {
            e.reduced.occurrences += 1;
            e.reduced.cumulative_length += length;
            return Verdict::Drop(DropReason::Reduced);
        }
        if st.open.entries.len() >= self.max_entries || st.open.bytes.len() >= ARENA_MAX {
            if !st.closed.entries.is_empty() {
                // Both windows full between two drains: pass the record on as its own
                // summary rather than lose it.
                en.reducer = Some(Reduced {
                    occurrences: 1,
                    cumulative_length: length,
                });
                return Verdict::Keep;
            }
            std::mem::swap(&mut st.open, &mut st.closed);
        }
        st.open.insert(hash, &st.key, rec, en, length, now);
        Verdict::Held
    }

    /// Releases the window closed early, and the open one when `watch-interval` has
    /// passed since its first record (or `all`): each key's first record with
    /// `Enrichment.reducer` set, in the order the keys came.
    pub fn drain(&self, now: Instant, all: bool, emit: &mut StepEmit<'_>) {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if !st.closed.entries.is_empty() {
            st.closed.release(emit);
        }
        let due = st
            .open
            .start
            .is_some_and(|s| all || now.saturating_duration_since(s) >= self.interval);
        if due {
            st.open.release(emit);
        }
    }

    /// Records held now (keys in the windows), for tests.
    pub fn holding(&self) -> usize {
        let st = lock(&self.state);
        st.open.entries.len() + st.closed.entries.len()
    }
}

impl Window {
    /// The entry whose key is `key`.
    #[inline]
    fn find(&mut self, hash: u64, key: &[u8]) -> Option<&mut Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            let at = s as usize - 1;
            let e = &self.entries[at];
            if e.hash == hash && &self.bytes[e.key_at..e.payload_at] == key {
                return Some(&mut self.entries[at]);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds the first record of a key.
    fn insert(
        &mut self,
        hash: u64,
        key: &[u8],
        rec: &Record<'_>,
        en: &Enrichment,
        length: u64,
        now: Instant,
    ) {
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key_at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let payload_at = self.bytes.len();
        encode(rec, &mut self.bytes);
        let end = self.bytes.len();
        let overlay = if en.is_clear() {
            NO_OVERLAY
        } else {
            if self.overlays_used == self.overlays.len() {
                self.overlays.push(Enrichment::default());
            }
            self.overlays[self.overlays_used].clone_from(en);
            self.overlays_used += 1;
            (self.overlays_used - 1) as u32
        };
        let at = self.entries.len();
        self.entries.push(Entry {
            hash,
            key_at,
            payload_at,
            end,
            overlay,
            reduced: Reduced {
                occurrences: 1,
                cumulative_length: length,
            },
        });
        self.place(hash, at);
        self.start.get_or_insert(now);
    }

    fn place(&mut self, hash: u64, at: usize) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = at as u32 + 1;
    }

    /// Doubles the table (or makes the first one) and places every entry again.
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(FIRST_SLOTS);
        self.slots.clear();
        self.slots.resize(n, 0);
        for at in 0..self.entries.len() {
            let h = self.entries[at].hash;
            self.place(h, at);
        }
    }

    /// Emits every entry, then empties the window (keeping its buffers).
    fn release(&mut self, emit: &mut StepEmit<'_>) {
        let Window {
            bytes,
            entries,
            overlays,
            scratch,
            ..
        } = self;
        for e in entries.iter() {
            let payload = &bytes[e.payload_at..e.end];
            // The payload was encoded from a record: it parses (a default record, still
            // counted, should that ever change).
            let rec = Record::parse(payload).unwrap_or_default();
            let en = match overlays.get_mut(e.overlay as usize) {
                Some(en) => en,
                None => {
                    scratch.reset();
                    &mut *scratch
                }
            };
            en.reducer = Some(e.reduced);
            emit(&rec, payload, en, Origin::Released);
        }
        self.entries.clear();
        self.bytes.clear();
        self.overlays_used = 0;
        self.slots.fill(0);
        self.start = None;
    }
}

/// Appends the key of `rec` on `fields`: each field as a presence byte then its value
/// (lengths before variable values), so two different keys never write the same bytes.
fn write_key(fields: &[Field], rec: &Record<'_>, out: &mut Vec<u8>) {
    let view = match &rec.dns {
        Some(Ok(v)) => Some(v),
        _ => None,
    };
    for f in fields {
        match f {
            Field::Identity => bytes(rec.identity, out),
            Field::Version => bytes(rec.version, out),
            Field::MessageType => num(rec.message_type, out),
            Field::Family => num(rec.socket_family, out),
            Field::Protocol => num(rec.socket_protocol, out),
            Field::QueryIp => bytes(rec.query_address, out),
            Field::QueryPort => num(rec.query_port, out),
            Field::ResponseIp => bytes(rec.response_address, out),
            Field::ResponsePort => num(rec.response_port, out),
            Field::QueryZone => bytes(rec.query_zone, out),
            Field::Qname => match view.and_then(|v| v.question.as_ref()) {
                // Lowercased: DNS names are case-insensitive, and resolvers that randomise
                // the case of their queries (0x20) would otherwise defeat the reducer.
                Some(q) => {
                    out.push(1);
                    q.name.for_each_label(|l| {
                        out.push(l.len() as u8);
                        out.extend(l.iter().map(u8::to_ascii_lowercase));
                    });
                    out.push(0);
                }
                None => out.push(0),
            },
            Field::Qtype => num(view.and_then(|v| v.question).map(|q| q.qtype), out),
            Field::Qclass => num(view.and_then(|v| v.question).map(|q| q.qclass), out),
            // A record the latency transform marked TIMEOUT is apart from its rcode.
            Field::Rcode => {
                let timeout = rec.enrich.is_some_and(|e| e.timeout);
                let rcode = view.map(|v| u16::from(v.header.rcode()));
                num(if timeout { Some(0x100) } else { rcode }, out)
            }
            Field::Opcode => num(view.map(|v| v.header.opcode()), out),
            Field::Id => num(view.map(|v| v.header.id), out),
        }
    }
}

fn bytes(v: Option<&[u8]>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn num(v: Option<impl Into<u64>>, out: &mut Vec<u8>) {
    match v {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            out.extend_from_slice(&n.into().to_le_bytes());
        }
    }
}

/// The 64-bit finaliser of splitmix64.
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of a key, 8 bytes at a time (keys are short: a few dozen bytes).
#[inline]
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    // The last 1..=7 bytes without a copy into a zeroed word (the length is hashed already).
    if !rest.is_empty() {
        h = mix(h ^ crate::dns::name::tail_word(rest));
    }
    h
}

/// Appends `rec` as a dnstap payload (the generated writer over borrowed fields: no
/// allocation). The record is the one decoded: what a held record becomes when
/// [`Record::parse`] reads it back, every field the formats show included.
fn encode<'a>(rec: &Record<'a>, out: &mut Vec<u8>) {
    use std::borrow::Cow::{self, Borrowed};
    fn b<'a>(v: Option<&'a [u8]>) -> Option<Cow<'a, [u8]>> {
        v.map(Borrowed)
    }
    let policy = rec.policy.map(|p| pb::Policy {
        type_pb: b(p.kind),
        rule: b(p.rule),
        action: p.action,
        match_pb: p.matched,
        value: b(p.value),
    });
    let has_message = rec.message_type.is_some()
        || rec.query_message.is_some()
        || rec.response_message.is_some()
        || rec.query_address.is_some()
        || rec.query_time.is_some()
        || rec.response_time.is_some();
    let message = has_message.then(|| pb::Message {
        type_pb: rec.message_type,
        socket_family: rec.socket_family,
        socket_protocol: rec.socket_protocol,
        query_address: b(rec.query_address),
        response_address: b(rec.response_address),
        query_port: rec.query_port,
        response_port: rec.response_port,
        query_time_sec: rec.query_time.map(|t| t.sec),
        query_time_nsec: rec.query_time.map(|t| t.nsec),
        query_message: b(rec.query_message),
        query_zone: b(rec.query_zone),
        response_time_sec: rec.response_time.map(|t| t.sec),
        response_time_nsec: rec.response_time.map(|t| t.nsec),
        response_message: b(rec.response_message),
        policy,
        http_protocol: rec.http_protocol,
    });
    let d = pb::Dnstap {
        identity: b(rec.identity),
        version: b(rec.version),
        extra: b(rec.extra),
        type_pb: rec.kind,
        message,
    };
    // Writing into a Vec cannot fail.
    let _ = d.write_message(&mut Writer::new(out));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(id: u16, name: &[&[u8]], qtype: u16, rcode: u8, response: bool) -> Vec<u8> {
        let flags: u16 = if response { 0x8000 } else { 0 } | u16::from(rcode);
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name {
            m.push(l.len() as u8);
            m.extend_from_slice(l);
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    fn record<'a>(msg: &'a [u8], addr: &'a [u8], response: bool) -> Record<'a> {
        let mut r = Record {
            identity: Some(b"ns1"),
            kind: Some(1),
            message_type: Some(if response { 6 } else { 5 }),
            query_address: Some(addr),
            query_port: Some(4000),
            ..Record::default()
        };
        if response {
            r.response_message = Some(msg);
        } else {
            r.query_message = Some(msg);
        }
        r.parse_dns();
        r
    }

    /// Everything a drain emits: (qname's first label, occurrences, length).
    fn drain(r: &Reducer, now: Instant, all: bool) -> Vec<(Vec<u8>, Reduced)> {
        let mut got = Vec::new();
        r.drain(now, all, &mut |rec, payload, en, origin| {
            assert_eq!(origin, Origin::Released);
            assert!(Record::parse(payload).is_ok());
            let q = match &rec.dns {
                Some(Ok(v)) => v.question.unwrap().name.labels().next().unwrap().to_vec(),
                _ => Vec::new(),
            };
            got.push((q, en.reducer.unwrap()));
        });
        got
    }

    #[test]
    fn records_equal_on_the_key_fold_into_the_first() {
        let r = Reducer::new(&ReducerSpec::default());
        let t0 = Instant::now();
        let a = dns(1, &[b"www", b"example", b"test"], 1, 0, false);
        let a_upper = dns(2, &[b"WWW", b"Example", b"test"], 1, 0, false);
        let b = dns(3, &[b"mail", b"example", b"test"], 1, 0, false);
        let mut en = Enrichment::default();
        let mut v = |m: &[u8], addr: &[u8]| r.apply(&record(m, addr, false), &mut en, t0);
        assert_eq!(v(&a, &[192, 0, 2, 1]), Verdict::Held);
        assert_eq!(
            v(&a_upper, &[192, 0, 2, 1]),
            Verdict::Drop(DropReason::Reduced)
        );
        assert_eq!(v(&b, &[192, 0, 2, 1]), Verdict::Held);
        assert_eq!(v(&a, &[192, 0, 2, 2]), Verdict::Held, "another client");
        assert_eq!(v(&a, &[192, 0, 2, 1]), Verdict::Drop(DropReason::Reduced));
        assert_eq!(r.holding(), 3);
        assert!(drain(&r, t0 + Duration::from_secs(4), false).is_empty());
        let got = drain(&r, t0 + DEFAULT_WATCH_INTERVAL, false);
        let n = a.len() as u64;
        assert_eq!(
            got,
            vec![
                (
                    b"www".to_vec(),
                    Reduced {
                        occurrences: 3,
                        cumulative_length: 3 * n
                    }
                ),
                (
                    b"mail".to_vec(),
                    Reduced {
                        occurrences: 1,
                        cumulative_length: b.len() as u64
                    }
                ),
                (
                    b"www".to_vec(),
                    Reduced {
                        occurrences: 1,
                        cumulative_length: n
                    }
                ),
            ]
        );
        assert_eq!(r.holding(), 0);
        // The next window starts afresh.
        assert_eq!(v(&a, &[192, 0, 2, 1]), Verdict::Held);
        assert_eq!(drain(&r, t0, true).len(), 1);
    }

    #[test]
    fn a_full_table_closes_the_window_early_and_loses_nothing() {
        let spec = ReducerSpec {
            max_entries: 4,
            ..ReducerSpec::default()
        };
        let r = Reducer::new(&spec);
        let t0 = Instant::now();
        let mut en = Enrichment::default();
        let msgs: Vec<Vec<u8>> = (0..20u8)
            .map(|i| dns(u16::from(i), &[&[b'a' + i], b"test"], 1, 0, false))
            .collect();
        let mut total = 0u64;
        // 6 keys between drains: the first 4 fill the window, which closes; 2 go to the next.
        for m in &msgs[..6] {
            assert_eq!(
                r.apply(&record(m, &[10, 0, 0, 1], false), &mut en, t0),
                Verdict::Held
            );
        }
        let first = drain(&r, t0, false);
        assert_eq!(first.len(), 4, "the full window, before its time");
        total += first.iter().map(|(_, x)| x.occurrences).sum::<u64>();
        // 12 new keys between drains: 2 fill the open window (2 left from before), which
        // closes; 4 fill the next; the other 6 pass on as single records.
        let mut kept = 0;
        for m in &msgs[6..18] {
            match r.apply(&record(m, &[10, 0, 0, 1], false), &mut en, t0) {
                Verdict::Keep => {
                    assert_eq!(en.reducer.map(|x| x.occurrences), Some(1));
                    kept += 1;
                }
                Verdict::Held => {}
                v => panic!("{v:?}"),
            }
            en.reset();
        }
        assert_eq!(kept, 6);
        total += kept;
        total += drain(&r, t0, true)
            .iter()
            .map(|(_, x)| x.occurrences)
            .sum::<u64>();
        assert_eq!(total, 18);
    }

    #[test]
    fn earlier_steps_changes_come_back_with_the_record() {
        let r = Reducer::new(&ReducerSpec::default());
        let t0 = Instant::now();
        let m = dns(9, &[b"x", b"test"], 28, 3, true);
        let rec = record(&m, &[192, 0, 2, 77], true);
        let mut en = Enrichment {
            query_address: crate::record::Addr::from_slice(&[192, 0, 2, 0]),
            latency_ns: Some(1234),
            ..Enrichment::default()
        };
        assert_eq!(r.apply(&rec, &mut en, t0), Verdict::Held);
        // Another client of the same /24, masked the same way: the same key.
        let rec2 = record(&m, &[192, 0, 2, 78], true);
        assert_eq!(
            r.apply(&rec2, &mut en, t0),
            Verdict::Drop(DropReason::Reduced)
        );
        let mut n = 0;
        r.drain(t0, true, &mut |rec, _, en, _| {
            n += 1;
            assert_eq!(
                rec.query_address,
                Some(&[192u8, 0, 2, 77][..]),
                "as decoded"
            );
            assert_eq!(rec.overlaid(en).query_address, Some(&[192u8, 0, 2, 0][..]));
            assert_eq!(en.latency_ns, Some(1234));
            assert_eq!(en.reducer.unwrap().occurrences, 2);
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn held_records_come_back_as_decoded() {
        let m = dns(7, &[b"www", b"example", b"test"], 1, 0, true);
        let q = dns(7, &[b"www", b"example", b"test"], 1, 0, false);
        let mut rec = record(
            &m,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            true,
        );
        rec.query_message = Some(&q);
        rec.version = Some(b"v1");
        rec.response_port = Some(53);
        rec.query_time = Some(crate::record::Timestamp { sec: 17, nsec: 5 });
        rec.response_time = Some(crate::record::Timestamp { sec: 18, nsec: 0 });
        rec.policy = Some(crate::record::Policy {
            kind: Some(b"rpz"),
            action: Some(2),
            ..Default::default()
        });
        let mut out = Vec::new();
        encode(&rec, &mut out);
        let back = Record::parse(&out).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rec:?}"));
    }

    #[test]
    fn field_names_are_ours_and_dns_collectors() {
        assert_eq!(Field::from_name("dns.qname"), Some(Field::Qname));
        assert_eq!(Field::from_name("Query-IP"), Some(Field::QueryIp));
        assert_eq!(Field::from_name("network.query-ip"), Some(Field::QueryIp));
        assert_eq!(
            Field::from_name("dnstap.operation"),
            Some(Field::MessageType)
        );
        assert_eq!(Field::from_name("qnam"), None);
        for f in Field::ALL {
            for n in f.names() {
                assert_eq!(Field::from_name(n), Some(f), "{n}");
            }
        }
    }
}
