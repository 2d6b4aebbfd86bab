//! Latency (`transforms.latency`): how long each response took, and which queries were
//! never answered.
//!
//! - A response that carries both `query_time` and `response_time` (dnsdist,
//!   pdns-recursor; bind's and unbound's upstream responses) gets `response_time -
//!   query_time`; nothing is remembered for it.
//! - Otherwise (knot, knot-resolver, nsd; bind's and unbound's client responses) each
//!   query waits in a bounded [`table::Table`]
//!   keyed by identity, message-type pair, client address and port, DNS id, qname and
//!   qtype ([`key`]); its response takes it out and gets `response_time` minus the
//!   query's `query_time`. A query leaves the table unanswered when `queries-timeout`
//!   passes (by the receiver's clock, the `now` the writer passes) or when `max-pending`
//!   later queries have arrived (evicted, counted).
//! - With `unanswered-queries`, each query that times out comes back out of
//!   [`Latency::drain`] as a new record (`Origin::Generated`) with rcode `TIMEOUT`; the
//!   table keeps its record for that ([`encode`]).
//!
//! Every response also takes its query out of the table when it carries both times, so a
//! query answered that way never times out. And once a sender (identity and message-type
//! pair, e.g. unbound's FORWARDER messages) has sent a response with both times, its
//! later queries are not put in the table at all, and those already there leave it
//! unreported at their timeout (counted as `self-timed`): such a sender's responses do
//! not always carry their query's client port (unbound logs its upstream queries with
//! another port than their responses), so pairing them would report answered queries as
//! unanswered. The latency of each response is counted in a
//! histogram per identity (the first [`IDENTITY_CAP`] identities, then `other`), read by the
//! metrics page through [`Latency::snapshot`].
//!
//! State lives behind one mutex: a chain with this step runs on one writer thread, so the
//! lock is uncontended except for a metrics scrape copying the counters.
#![forbid(unsafe_code)]

pub mod encode;
pub mod key;
pub mod table;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::record::{Enrichment, Record, Timestamp};

use self::key::{Key, Seeds};
use self::table::{Entry, Table};
use super::{Origin, StepEmit, Verdict};

/// `transforms.latency`, compiled form of the user's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySpec {
    /// Put `latency` on responses (`measure-latency`).
    pub measure: bool,
    /// Emit a `TIMEOUT` record for each query that times out (`unanswered-queries`).
    pub unanswered: bool,
    /// How long a query waits for its response (`queries-timeout`).
    pub timeout: Duration,
    /// Queries the table holds at most (`max-pending`).
    pub max_pending: usize,
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            measure: true,
            unanswered: false,
            timeout: Duration::from_secs(2),
            max_pending: 1_000_000,
        }
    }
}

/// Arena bytes per `max-pending` slot when records are kept (`unanswered-queries`): the
/// lab's query records are 90 to 200 bytes; larger ones evict earlier.
pub const ARENA_BYTES_PER_QUERY: usize = 192;

/// Upper bounds of the histogram buckets, in ns (100 µs .. 10 s); `+Inf` follows.
pub const BOUNDS_NS: [u64; 16] = [
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
/// Buckets per histogram (the bounds and `+Inf`).
pub const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// Identities with their own histogram; later ones share the `other` one.
pub const IDENTITY_CAP: usize = 64;

/// What the step counted since start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyCounts {
    /// Responses whose latency came from their own two times.
    pub in_message: u64,
    /// Responses matched with a pending query.
    pub matched: u64,
    /// Responses with neither: no times, no pending query (or no question to match on).
    pub unmatched: u64,
    /// Responses whose latency came out negative (response time before query time): no
    /// `latency`, not in the histogram.
    pub negative: u64,
    /// Queries whose key was already pending (a retransmission): the newer one replaces it.
    pub duplicate: u64,
    /// Pending queries pushed out by `max-pending` (or the record arena) before their
    /// timeout.
    pub evicted: u64,
    /// Pending queries that reached `queries-timeout` unanswered.
    pub timed_out: u64,
    /// `TIMEOUT` records emitted for them (`unanswered-queries`).
    pub reported: u64,
    /// Pending queries taken out at their timeout without a report, because their sender
    /// turned out to put both times in its responses.
    pub self_timed: u64,
}

/// The latency histogram of one identity (`identity: None` is `other`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityHistogram {
    pub identity: Option<Vec<u8>>,
    /// Per bucket (not cumulative), indexed like [`BOUNDS_NS`] then `+Inf`.
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
    pub count: u64,
}

/// A copy of the step's counters at one moment (for the metrics page and `-v`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    pub counts: LatencyCounts,
    /// Queries waiting for a response now.
    pub pending: u64,
    /// Memory the table may hold at most (reserved at start-up; pages are used as needed).
    pub bound_bytes: u64,
    /// One per identity seen (the first [`IDENTITY_CAP`]), then `other` when used.
    pub histograms: Vec<IdentityHistogram>,
}

/// The compiled step.
#[derive(Debug)]
pub struct Latency {
    spec: LatencySpec,
    seeds: Seeds,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The table's clock starts here (deadlines are ns since `base`).
    base: Instant,
    table: Table,
    counts: LatencyCounts,
    hist: Histograms,
    /// Where a query's record is encoded before it goes into the arena.
    scratch: Vec<u8>,
    /// What a `TIMEOUT` record carries.
    en: Enrichment,
    /// Per identity slot ([`Histograms::slot`], except `other`), the message-type pairs
    /// (bit `pair`) whose responses carried both times.
    self_timed: [u8; IDENTITY_CAP + 1],
}

/// Histograms by identity slot: slot 0 is `other`, slot `i + 1` is `ids[i]`.
#[derive(Debug)]
struct Histograms {
    ids: Vec<Box<[u8]>>,
    last: usize,
    buckets: Vec<[u64; BUCKETS]>,
    sum_ns: Vec<u64>,
}

impl Histograms {
    fn new() -> Histograms {
        Histograms {
            ids: Vec::with_capacity(IDENTITY_CAP),
            last: 0,
            buckets: vec![[0; BUCKETS]; IDENTITY_CAP + 1],
            sum_ns: vec![0; IDENTITY_CAP + 1],
        }
    }

    #[inline]
    fn slot(&mut self, id: &[u8]) -> usize {
        if self.last > 0 && self.ids.get(self.last - 1).is_some_and(|x| **x == *id) {
            return self.last;
        }
        let slot = match self.ids.iter().position(|x| **x == *id) {
            Some(i) => i + 1,
            // An identity named `other` would share its label with slot 0.
            None if id == b"other" => 0,
            None if self.ids.len() < IDENTITY_CAP => {
                // At most IDENTITY_CAP times in the life of the step.
                self.ids.push(id.into());
                self.ids.len()
            }
            None => 0,
        };
        self.last = slot;
        slot
    }

    #[inline]
    fn observe_slot(&mut self, s: usize, ns: u64) {
        let b = BOUNDS_NS
            .iter()
            .position(|&le| ns <= le)
            .unwrap_or(BOUNDS_NS.len());
        if let (Some(h), Some(sum)) = (self.buckets.get_mut(s), self.sum_ns.get_mut(s)) {
            h[b] += 1;
            *sum = sum.wrapping_add(ns);
        }
    }

    fn snapshot(&self) -> Vec<IdentityHistogram> {
        let one = |s: usize, identity: Option<Vec<u8>>| {
            let buckets = self.buckets.get(s).copied().unwrap_or_default();
            IdentityHistogram {
                identity,
                buckets,
                sum_ns: self.sum_ns.get(s).copied().unwrap_or(0),
                count: buckets.iter().sum(),
            }
        };
        let mut v: Vec<IdentityHistogram> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| one(i + 1, Some(id.to_vec())))
            .collect();
        let other = one(0, None);
        if other.count > 0 {
            v.push(other);
        }
        v
    }
}

/// `t` in ns since the epoch; `None` past u64 (year 2554).
fn ns_of(t: Timestamp) -> Option<u64> {
    t.sec
        .checked_mul(1_000_000_000)?
        .checked_add(u64::from(t.nsec))
}

/// `r - q` in ns: `Ok` when not negative, `Err(())` when negative.
fn diff_ns(q: Timestamp, r: Timestamp) -> Result<u64, ()> {
    // i128: seconds come from the wire and may be anything up to u64::MAX.
    let d = (i128::from(r.sec) - i128::from(q.sec)) * 1_000_000_000 + i128::from(r.nsec)
        - i128::from(q.nsec);
    if d < 0 {
        return Err(());
    }
    Ok(u64::try_from(d).unwrap_or(u64::MAX))
}

impl Latency {
    pub fn new(spec: LatencySpec) -> Latency {
        Latency::with_seeds(spec, Seeds::random())
    }

    /// With fixed hash seeds (tests and benchmarks).
    pub fn with_seeds(spec: LatencySpec, seeds: Seeds) -> Latency {
        let max = spec.max_pending.max(1);
        let arena = if spec.unanswered {
            max.saturating_mul(ARENA_BYTES_PER_QUERY).max(64 << 10)
        } else {
            0
        };
        let state = State {
            base: Instant::now(),
            table: Table::new(max, arena),
            counts: LatencyCounts::default(),
            hist: Histograms::new(),
            scratch: Vec::with_capacity(1024),
            en: Enrichment::default(),
            self_timed: [0; IDENTITY_CAP + 1],
        };
        Latency {
            spec,
            seeds,
            state: Mutex::new(state),
        }
    }

    pub fn spec(&self) -> &LatencySpec {
        &self.spec
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves plain numbers behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the step on one record: a query goes into the table, a response gets its
    /// latency (in `en.latency_ns` with `measure-latency`). Never drops or holds a record.
    #[inline]
    pub fn apply(&self, rec: &Record<'_>, en: &mut Enrichment, now: Instant) -> Verdict {
        if en.timeout {
            // A TIMEOUT record an earlier chain made: not a query to wait for.
            return Verdict::Keep;
        }
        let Some((query, pair)) = key::kind(rec.message_type) else {
            return Verdict::Keep;
        };
        let key = key::of(rec, pair, self.seeds);
        let mut st = self.lock();
        let now_ns = now.saturating_duration_since(st.base).as_nanos() as u64;
        let slot = st.hist.slot(rec.identity.unwrap_or_default());
        // The sender class: identity slot and pair (slot 0, `other`, is never marked).
        let class = (slot as u16) << 3 | u16::from(pair);
        let marked = |st: &State| st.self_timed.get(slot).is_some_and(|m| m & 1 << pair != 0);
        if query {
            if let Some(key) = key {
                if !marked(&st) {
                    self.on_query(&mut st, rec, key, class, now_ns);
                }
            }
            return Verdict::Keep;
        }
        let pending = key.and_then(|k| st.table.take(&k, now_ns));
        let latency = match (rec.query_time, rec.response_time) {
            (Some(q), Some(r)) => {
                if slot != 0 {
                    if let Some(m) = st.self_timed.get_mut(slot) {
                        *m |= 1 << pair;
                    }
                }
                Some((diff_ns(q, r), true))
            }
            (_, Some(r)) => match pending {
                Some(Entry { query_ns, .. }) if query_ns != u64::MAX => {
                    let d = ns_of(r).and_then(|r| r.checked_sub(query_ns)).ok_or(());
                    Some((d, false))
                }
                _ => None,
            },
            _ => None,
        };
        match latency {
            Some((Ok(ns), own)) => {
                if own {
                    st.counts.in_message += 1;
                } else {
                    st.counts.matched += 1;
                }
                st.hist.observe_slot(slot, ns);
                if self.spec.measure {
                    en.latency_ns = Some(ns);
                }
            }
            Some((Err(()), _)) => st.counts.negative += 1,
            None => st.counts.unmatched += 1,
        }
        Verdict::Keep
    }

    fn on_query(&self, st: &mut State, rec: &Record<'_>, key: Key, class: u16, now_ns: u64) {
        let State {
            table,
            counts,
            scratch,
            ..
        } = st;
        if table.take(&key, now_ns).is_some() {
            counts.duplicate += 1;
        }
        let query_ns = rec.query_time.and_then(ns_of).unwrap_or(u64::MAX);
        let deadline = now_ns.saturating_add(self.spec.timeout.as_nanos() as u64);
        scratch.clear();
        if table.stores_records() {
            encode::write(rec, scratch);
        }
        table.insert(key, class, query_ns, deadline, scratch, &mut |_| {
            counts.evicted += 1
        });
    }

    /// Takes out the queries whose timeout has passed at `now` (every pending one when
    /// `all`, at the end of the stream) and, with `unanswered-queries`, emits each one's
    /// record with rcode `TIMEOUT`.
    pub fn drain(&self, now: Instant, all: bool, emit: &mut StepEmit<'_>) {
        let mut st = self.lock();
        let now_ns = now.saturating_duration_since(st.base).as_nanos() as u64;
        let State {
            table,
            counts,
            en,
            self_timed,
            ..
        } = &mut *st;
        while let Some(e) = table.oldest() {
            if e.is_alive() && e.deadline > now_ns && !all {
                break;
            }
            let Some(e) = table.pop_oldest() else {
                continue;
            };
            let (slot, pair) = (usize::from(e.class >> 3), e.class & 7);
            if self_timed.get(slot).is_some_and(|m| m & 1 << pair != 0) {
                counts.self_timed += 1;
                continue;
            }
            counts.timed_out += 1;
            if !self.spec.unanswered {
                continue;
            }
            let Some(payload) = table.stored(&e) else {
                continue;
            };
            let Ok(rec) = Record::parse(payload) else {
                continue;
            };
            en.reset();
            en.timeout = true;
            counts.reported += 1;
            emit(&rec, payload, en, Origin::Generated);
        }
    }

    /// The counters and histograms now.
    pub fn snapshot(&self) -> LatencySnapshot {
        let st = self.lock();
        LatencySnapshot {
            counts: st.counts,
            pending: st.table.live() as u64,
            bound_bytes: st.table.bound_bytes() as u64,
            histograms: st.hist.snapshot(),
        }
    }
}

impl LatencySnapshot {
    /// The `-v` line's counters: `matched=.. in-message=.. unmatched=.. ...`.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "in-message={} matched={} unmatched={} negative={} duplicate={} evicted={} \
             timed-out={} reported={} self-timed={} pending={}",
            c.in_message,
            c.matched,
            c.unmatched,
            c.negative,
            c.duplicate,
            c.evicted,
            c.timed_out,
            c.reported,
            c.self_timed,
            self.pending
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dnstap record of message type `mt` for a DNS message with id `id` asking `a.` A.
    fn rec<'a>(mt: u32, msg: &'a [u8], port: u32, q: Option<u64>, r: Option<u64>) -> Record<'a> {
        let ts = |ns: u64| Timestamp {
            sec: ns / 1_000_000_000,
            nsec: (ns % 1_000_000_000) as u32,
        };
        let mut rec = Record {
            identity: Some(b"ns1"),
            kind: Some(1),
            message_type: Some(mt),
            query_address: Some(&[192, 0, 2, 9]),
            query_port: Some(port),
            query_time: q.map(ts),
            response_time: r.map(ts),
            ..Record::default()
        };
        if mt % 2 == 1 {
            rec.query_message = Some(msg);
        } else {
            rec.response_message = Some(msg);
        }
        rec.parse_dns();
        rec
    }

    fn msg(id: u16) -> Vec<u8> {
        let mut m = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m
    }

    fn spec(unanswered: bool, max: usize) -> LatencySpec {
        LatencySpec {
            unanswered,
            max_pending: max,
            ..LatencySpec::default()
        }
    }

    #[test]
    fn in_message_times_or_a_matched_query() {
        let l = Latency::new(spec(false, 100));
        let now = Instant::now();
        let m = msg(1);
        let mut en = Enrichment::default();
        // Both times on the response: no state needed.
        l.apply(&rec(6, &m, 1000, Some(5_000), Some(7_500)), &mut en, now);
        assert_eq!(en.latency_ns, Some(2_500));
        // A query, then its response with only its own time.
        en.reset();
        l.apply(&rec(1, &m, 2000, Some(1_000_000_000), None), &mut en, now);
        assert_eq!(en.latency_ns, None);
        l.apply(&rec(2, &m, 2000, None, Some(1_000_020_608)), &mut en, now);
        assert_eq!(en.latency_ns, Some(20_608));
        // Again: nothing pending any more.
        en.reset();
        l.apply(&rec(2, &m, 2000, None, Some(1_000_020_608)), &mut en, now);
        assert_eq!(en.latency_ns, None);
        // Another port, another message type pair: no match.
        l.apply(&rec(1, &m, 3000, Some(0), None), &mut en, now);
        l.apply(&rec(6, &m, 3000, None, Some(10)), &mut en, now);
        l.apply(&rec(2, &m, 3001, None, Some(10)), &mut en, now);
        assert_eq!(en.latency_ns, None);
        let s = l.snapshot();
        assert_eq!(
            (s.counts.in_message, s.counts.matched, s.counts.unmatched),
            (1, 1, 3)
        );
        assert_eq!(s.pending, 1);
        assert_eq!(s.histograms.len(), 1);
        assert_eq!(s.histograms[0].identity.as_deref(), Some(&b"ns1"[..]));
        assert_eq!(s.histograms[0].count, 2);
        assert_eq!(s.histograms[0].buckets[0], 2);
        assert_eq!(s.histograms[0].sum_ns, 2_500 + 20_608);
    }

    #[test]
    fn unanswered_queries_come_back_as_timeouts_once_due() {
        let l = Latency::new(spec(true, 100));
        let t0 = Instant::now();
        let (a, b, c) = (msg(1), msg(2), msg(3));
        let mut en = Enrichment::default();
        l.apply(&rec(5, &a, 1, Some(1), None), &mut en, t0);
        l.apply(&rec(5, &b, 1, Some(2), None), &mut en, t0);
        l.apply(
            &rec(5, &c, 1, Some(3), None),
            &mut en,
            t0 + Duration::from_secs(1),
        );
        l.apply(&rec(6, &b, 1, None, Some(9)), &mut en, t0);
        let drained = |at: Instant, all: bool| {
            let mut got = Vec::new();
            l.drain(at, all, &mut |r, p, en, o| {
                assert!(en.timeout && o == Origin::Generated);
                assert_eq!(Record::parse(p).unwrap().query_port, r.query_port);
                got.push(r.dns.as_ref().unwrap().as_ref().unwrap().header.id);
            });
            got
        };
        assert!(drained(t0 + Duration::from_millis(1999), false).is_empty());
        assert_eq!(drained(t0 + Duration::from_secs(2), false), vec![1]);
        assert_eq!(drained(t0 + Duration::from_secs(2), true), vec![3]);
        let s = l.snapshot();
        assert_eq!(
            (s.counts.timed_out, s.counts.reported, s.pending),
            (2, 2, 0)
        );
        // A TIMEOUT record met again (by an output's own chain) is left alone.
        en.reset();
        en.timeout = true;
        l.apply(&rec(5, &a, 1, Some(1), None), &mut en, t0);
        assert_eq!(l.snapshot().pending, 0);
    }

    #[test]
    fn a_late_response_is_unmatched_and_the_query_times_out() {
        let l = Latency::new(spec(false, 100));
        let t0 = Instant::now();
        let m = msg(4);
        let mut en = Enrichment::default();
        l.apply(&rec(1, &m, 1, Some(1), None), &mut en, t0);
        l.apply(
            &rec(2, &m, 1, None, Some(5)),
            &mut en,
            t0 + Duration::from_secs(3),
        );
        assert_eq!(en.latency_ns, None);
        let mut n = 0;
        l.drain(t0 + Duration::from_secs(3), false, &mut |_, _, _, _| n += 1);
        assert_eq!(n, 0, "not reported without unanswered-queries");
        let c = l.snapshot().counts;
        assert_eq!((c.unmatched, c.timed_out), (1, 1));
    }

    #[test]
    fn duplicates_replace_and_a_full_table_evicts_the_oldest() {
        let l = Latency::new(spec(false, 2));
        let t0 = Instant::now();
        let (a, b, c) = (msg(1), msg(2), msg(3));
        let mut en = Enrichment::default();
        l.apply(&rec(1, &a, 1, Some(100), None), &mut en, t0);
        l.apply(&rec(1, &a, 1, Some(200), None), &mut en, t0);
        l.apply(&rec(2, &a, 1, None, Some(250)), &mut en, t0);
        assert_eq!(
            en.latency_ns,
            Some(50),
            "the retransmission is the one answered"
        );
        l.apply(&rec(1, &b, 1, Some(1), None), &mut en, t0);
        l.apply(&rec(1, &c, 1, Some(1), None), &mut en, t0);
        let c1 = l.snapshot().counts;
        assert_eq!((c1.duplicate, c1.evicted), (1, 0), "dead slots go first");
        l.apply(&rec(1, &a, 1, Some(1), None), &mut en, t0);
        let c1 = l.snapshot().counts;
        assert_eq!(c1.evicted, 1);
        en.reset();
        l.apply(&rec(2, &b, 1, None, Some(5)), &mut en, t0);
        assert_eq!(en.latency_ns, None, "b was evicted");
    }

    #[test]
    fn a_sender_that_times_its_responses_is_not_reported_as_unanswered() {
        // unbound's upstream queries: logged with one port, answered with another.
        let l = Latency::new(spec(true, 100));
        let t0 = Instant::now();
        let m = msg(9);
        let mut en = Enrichment::default();
        l.apply(&rec(3, &m, 1111, Some(1), None), &mut en, t0);
        l.apply(&rec(4, &m, 2222, Some(1), Some(8)), &mut en, t0);
        assert_eq!(en.latency_ns, Some(7));
        assert_eq!(
            l.snapshot().pending,
            1,
            "the first query was already waiting"
        );
        l.apply(&rec(3, &m, 3333, Some(1), None), &mut en, t0);
        assert_eq!(l.snapshot().pending, 1, "later ones are not kept");
        // Another pair of the same sender is still matched.
        l.apply(&rec(5, &m, 1, Some(1), None), &mut en, t0);
        assert_eq!(l.snapshot().pending, 2);
        let mut reported = Vec::new();
        l.drain(t0, true, &mut |r, _, _, _| reported.push(r.message_type));
        assert_eq!(reported, vec![Some(5)]);
        let c = l.snapshot().counts;
        assert_eq!((c.self_timed, c.timed_out, c.reported), (1, 1, 1));
    }

    #[test]
    fn negative_latency_is_counted_not_shown_and_identities_are_capped() {
        let l = Latency::new(spec(false, 10));
        let m = msg(1);
        let mut en = Enrichment::default();
        l.apply(&rec(6, &m, 1, Some(9), Some(5)), &mut en, Instant::now());
        assert_eq!(en.latency_ns, None);
        assert_eq!(l.snapshot().counts.negative, 1);
        let names: Vec<Vec<u8>> = (0..IDENTITY_CAP + 5)
            .map(|i| format!("id{i}").into_bytes())
            .collect();
        for n in &names {
            let mut r = rec(6, &m, 1, Some(1), Some(2));
            r.identity = Some(n);
            l.apply(&r, &mut en, Instant::now());
        }
        // ns1 took the first slot (with no latency in it): 63 more, then `other`.
        let h = l.snapshot().histograms;
        assert_eq!(h.len(), IDENTITY_CAP + 1);
        assert_eq!(
            (h[0].identity.as_deref(), h[0].count),
            (Some(&b"ns1"[..]), 0)
        );
        assert_eq!(h.last().unwrap().identity, None);
        assert_eq!(h.last().unwrap().count, 6);
    }
}
