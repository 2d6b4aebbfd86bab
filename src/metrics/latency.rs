//! The latency transform's counters and histograms on the metrics page and in the `-v`
//! lines: one copy per latency step (the global chain's, an output's own), read under the
//! step's lock at scrape time ([`collect`]), rendered by [`render`].
//!
//! The histogram is `dnstap_latency_seconds{identity}` (no `dnstap_receiver_` prefix: the
//! name dashboards use), one series per identity, summed over the steps; the first
//! [`IDENTITY_CAP`] identities of each step have their own series, later ones share
//! `identity="other"`, so the label set is bounded whatever the senders send. The counters
//! are `dnstap_receiver_latency_*{chain}`. Knows the transform's snapshot; nothing of
//! sockets or the configuration file.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use super::traffic::identity_label;
use super::{escape_label_value, seconds, Text};
use crate::transform::latency::{
    IdentityHistogram, LatencySnapshot, BOUNDS_NS, BUCKETS, IDENTITY_CAP,
};
use crate::transform::Chains;

/// One counter of a family: its label value and how to read it from a snapshot.
type Row = (&'static str, fn(&LatencySnapshot) -> u64);

/// The histogram's name (unprefixed).
pub const HISTOGRAM: &str = "dnstap_latency_seconds";

/// Every latency step's snapshot, named by its chain: `global`, or the output's name
/// (`outputs`: the outputs' names in the order of `chains.outputs`).
pub fn collect(chains: &Chains, outputs: &[String]) -> Vec<(String, LatencySnapshot)> {
    chains
        .latency_steps()
        .into_iter()
        .map(|(at, l)| {
            let name = match at {
                None => "global".to_string(),
                Some(i) => outputs
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("output {i}")),
            };
            (name, l.snapshot())
        })
        .collect()
}

/// The `-v` lines: `latency-counters: "global" in-message=.. matched=.. ...`.
pub fn summaries(steps: &[(String, LatencySnapshot)]) -> Vec<String> {
    steps
        .iter()
        .map(|(name, s)| format!("latency-counters: {name:?} {}", s.summary()))
        .collect()
}

/// The identities' histograms of every step, summed by label (first seen first; `other`
/// last).
fn merged(steps: &[(String, LatencySnapshot)]) -> Vec<(String, IdentityHistogram)> {
    let mut out: Vec<(String, IdentityHistogram)> = Vec::new();
    let mut other = IdentityHistogram::default();
    for (_, s) in steps {
        for h in &s.histograms {
            let into = match &h.identity {
                None => &mut other,
                Some(id) => {
                    let label = identity_label(id);
                    let i = match out.iter().position(|(l, _)| *l == label) {
                        Some(i) => i,
                        None => {
                            out.push((label, IdentityHistogram::default()));
                            out.len() - 1
                        }
                    };
                    match out.get_mut(i) {
                        Some(x) => &mut x.1,
                        None => continue,
                    }
                }
            };
            for (a, b) in into.buckets.iter_mut().zip(h.buckets.iter()) {
                *a += b;
            }
            into.sum_ns = into.sum_ns.wrapping_add(h.sum_ns);
            into.count += h.count;
        }
    }
    if other.count > 0 {
        out.push(("other".to_string(), other));
    }
    out
}

/// The latency families; nothing when no chain has a latency step.
pub(super) fn render(t: &mut Text, steps: &[(String, LatencySnapshot)]) {
    if steps.is_empty() {
        return;
    }
    let by_chain = |t: &mut Text, name: &str, kind: &str, help: &str, label: &str, rows: &[Row]| {
        t.family(name, kind, help);
        for (chain, s) in steps {
            for (v, get) in rows {
                if label.is_empty() {
                    t.sample(name, &[("chain", chain)], get(s));
                } else {
                    t.sample(name, &[("chain", chain), (label, v)], get(s));
                }
            }
        }
    };
    by_chain(
        t,
        "latency_responses_total",
        "counter",
        "Responses seen by the latency transform, by how their latency was found: in-message \
         (both times in the response), matched (with its pending query), unmatched (neither), \
         negative (response time before query time: no latency).",
        "result",
        &[
            ("in-message", |s| s.counts.in_message),
            ("matched", |s| s.counts.matched),
            ("unmatched", |s| s.counts.unmatched),
            ("negative", |s| s.counts.negative),
        ],
    );
    by_chain(
        t,
        "latency_queries_removed_total",
        "counter",
        "Pending queries that left the latency table other than by a matching response: \
         duplicate (replaced by a retransmission), evicted (max-pending reached), timed-out \
         (queries-timeout reached), self-timed (timed out, but their sender times its own \
         responses: not reported).",
        "reason",
        &[
            ("duplicate", |s| s.counts.duplicate),
            ("evicted", |s| s.counts.evicted),
            ("timed-out", |s| s.counts.timed_out),
            ("self-timed", |s| s.counts.self_timed),
        ],
    );
    by_chain(
        t,
        "latency_timeouts_reported_total",
        "counter",
        "TIMEOUT records emitted for unanswered queries (unanswered-queries: true).",
        "",
        &[("", |s| s.counts.reported)],
    );
    by_chain(
        t,
        "latency_pending_queries",
        "gauge",
        "Queries waiting for their response in the latency table.",
        "",
        &[("", |s| s.pending)],
    );
    by_chain(
        t,
        "latency_table_bound_bytes",
        "gauge",
        "Memory the latency table reserves at most (ring, index, record arena).",
        "",
        &[("", |s| s.bound_bytes)],
    );

    let _ = writeln!(
        t.out,
        "# HELP {HISTOGRAM} Response latency found by the latency transform, per dnstap \
         identity (the first {IDENTITY_CAP} identities; later ones: other)."
    );
    let _ = writeln!(t.out, "# TYPE {HISTOGRAM} histogram");
    for (label, h) in merged(steps) {
        let mut id = String::new();
        escape_label_value(&label, &mut id);
        let mut cumulative = 0u64;
        for i in 0..BUCKETS {
            cumulative += h.buckets[i];
            let le = match BOUNDS_NS.get(i) {
                Some(ns) => {
                    let s = seconds(*ns);
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                }
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                t.out,
                "{HISTOGRAM}_bucket{{identity=\"{id}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            t.out,
            "{HISTOGRAM}_sum{{identity=\"{id}\"}} {}",
            seconds(h.sum_ns)
        );
        let _ = writeln!(t.out, "{HISTOGRAM}_count{{identity=\"{id}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::latency::LatencyCounts;

    fn snap(ids: &[(&[u8], u64)], other: u64) -> LatencySnapshot {
        let mut histograms: Vec<IdentityHistogram> = ids
            .iter()
            .map(|(id, n)| {
                let mut h = IdentityHistogram {
                    identity: Some(id.to_vec()),
                    count: *n,
                    sum_ns: 1_000 * n,
                    ..IdentityHistogram::default()
                };
                h.buckets[0] = *n;
                h
            })
            .collect();
        if other > 0 {
            let mut h = IdentityHistogram {
                count: other,
                ..IdentityHistogram::default()
            };
            h.buckets[BUCKETS - 1] = other;
            histograms.push(h);
        }
        LatencySnapshot {
            counts: LatencyCounts {
                matched: 7,
                ..LatencyCounts::default()
            },
            pending: 3,
            bound_bytes: 100,
            histograms,
        }
    }

    #[test]
    fn histograms_sum_by_identity_and_other_comes_last() {
        let steps = vec![
            ("global".to_string(), snap(&[(b"ns1", 2), (b"ns2", 1)], 4)),
            ("stdout".to_string(), snap(&[(b"ns2", 5)], 1)),
        ];
        let mut t = Text { out: String::new() };
        render(&mut t, &steps);
        let text = t.out;
        for want in [
            "dnstap_latency_seconds_bucket{identity=\"ns1\",le=\"0.0001\"} 2\n",
            "dnstap_latency_seconds_bucket{identity=\"ns2\",le=\"0.0001\"} 6\n",
            "dnstap_latency_seconds_bucket{identity=\"ns2\",le=\"+Inf\"} 6\n",
            "dnstap_latency_seconds_count{identity=\"other\"} 5\n",
            "dnstap_latency_seconds_bucket{identity=\"other\",le=\"10\"} 0\n",
            "dnstap_latency_seconds_sum{identity=\"ns2\"} 0.000006000\n",
            "dnstap_receiver_latency_responses_total{chain=\"stdout\",result=\"matched\"} 7\n",
            "dnstap_receiver_latency_pending_queries{chain=\"global\"} 3\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(text.find("identity=\"other\"") > text.find("identity=\"ns2\""));
        assert_eq!(summaries(&steps).len(), 2);
        let mut empty = Text { out: String::new() };
        render(&mut empty, &[]);
        assert!(empty.out.is_empty());
    }
}
