//! The transform stage: what happens to a decoded [`Record`] between the writer's decode and
//! the formats. Each transform is compiled from its spec at start-up into an immutable value
//! read through `&self` on the hot path; a [`Chain`] is the list one output (or every
//! output, for the global chain) runs, in order.
//!
//! Knows records and the DNS/dnstap views they borrow; knows nothing of sockets, threads,
//! clocks, counters or the configuration file: `config` builds the specs, the writer owns
//! the chains and counts every record a chain removes, by [`DropReason`].
//!
//! ```text
//!  writer ── Record ──► global Chain ──► Keep ──► per-output Chain ──► Keep ──► format
//!                            └─► Drop(reason) ─► counted        └─► Drop(reason) ─► counted
//! ```
//!
//! Start reading at [`Chain::check`], then [`filtering::Filtering`].
#![forbid(unsafe_code)]

pub mod cryptopan;
pub mod domains;
pub mod filtering;
pub mod ipset;
pub mod latency;
pub mod normalize;
pub mod privacy;
pub mod reducer;
mod rewrite;
pub mod sampling;

use std::sync::Arc;
use std::time::Instant;

use crate::record::{Enrichment, Record};

pub use filtering::{Filtering, FilteringSpec};
pub use latency::{Latency, LatencySpec};
pub use reducer::{Reducer, ReducerSpec};

/// Why a transform removed a record. The label is the `reason` of the
/// `records_filtered_total` metric and of the `-v` line; the list is closed so the counters
/// can be a fixed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// `log-queries` / `log-replies` / `message-types`
    MessageType,
    /// `drop-rcodes` / `keep-rcodes`
    Rcode,
    /// `drop-qtypes` / `keep-qtypes`
    Qtype,
    /// `drop-domain-file` / `keep-domain-file`
    Domain,
    /// `drop-fqdn-file` / `keep-fqdn-file`
    Fqdn,
    /// `drop-queryip*` / `keep-queryip*`
    QueryIp,
    /// `downsample`
    Sampled,
    /// Folded by the reducer into the record it emits for its key
    Reduced,
}

impl DropReason {
    /// Every reason, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; 8] = [
        DropReason::MessageType,
        DropReason::Rcode,
        DropReason::Qtype,
        DropReason::Domain,
        DropReason::Fqdn,
        DropReason::QueryIp,
        DropReason::Sampled,
        DropReason::Reduced,
    ];

    /// The reason's label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MessageType => "message-type",
            DropReason::Rcode => "rcode",
            DropReason::Qtype => "qtype",
            DropReason::Domain => "domain",
            DropReason::Fqdn => "fqdn",
            DropReason::QueryIp => "query-ip",
            DropReason::Sampled => "sampled",
            DropReason::Reduced => "reduced",
        }
    }

    /// Position in [`DropReason::ALL`] (a counter array index).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a chain decided for one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Drop(DropReason),
    /// A stateful step (the reducer) took the record and will emit it later, from
    /// [`Chain::drain`]; until then it is counted as held.
    Held,
}

/// Where a record a chain emits from [`Chain::drain`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A record the chain held earlier ([`Verdict::Held`]), now released.
    Released,
    /// A record the chain made (the latency transform's `TIMEOUT` record of an unanswered
    /// query).
    Generated,
}

/// One record a chain emits from [`Chain::drain`], after the steps that follow the one
/// that emitted it. `rec` already carries `en` ([`Record::overlaid`]) when `verdict` is
/// `Keep`; the output stage runs it through what comes next (the outputs' own chains).
pub struct Emission<'r, 's> {
    pub rec: &'r Record<'s>,
    /// The dnstap payload the record was decoded from (what raw outputs send).
    pub payload: &'r [u8],
    /// What the record carries besides its decoded fields.
    pub en: &'r Enrichment,
    pub origin: Origin,
    /// What the rest of the chain decided: only a kept record goes on.
    pub verdict: Verdict,
}

/// The emission callback of [`Chain::drain`].
pub type Emit<'e> = dyn FnMut(Emission<'_, '_>) + 'e;

/// The emission callback of a step's drain: the record (as decoded), its payload, what the
/// steps changed in it, and where it comes from.
pub type StepEmit<'e> = dyn FnMut(&Record<'_>, &[u8], &mut Enrichment, Origin) + 'e;

/// One compiled transform. An enum rather than trait objects: the set is closed and the
/// writer's loop stays monomorphic.
///
/// Every step reads the record as decoded (`rec`) plus what the steps before it wrote in
/// `en`, and writes its own changes into `en` (never into the frame). Steps that keep
/// state across records (matching tables, reducer windows) keep it behind interior
/// mutability, as a chain is shared by every writer thread; they say so in
/// [`Step::is_stateful`] and release what they hold from [`Step::drain`].
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few steps built once at start-up; boxing the filter would add a pointer \
              chase per record"
)]
pub enum Step {
    Filtering(Filtering),
    /// Query→response latency and unanswered queries (stateful: a matching table).
    Latency(Latency),
    Normalize(normalize::Normalize),
    UserPrivacy(privacy::UserPrivacy),
    Reducer(Reducer),
}

impl Step {
    #[inline]
    fn apply(&self, rec: &Record<'_>, en: &mut Enrichment, now: Instant) -> Verdict {
        match self {
            Step::Filtering(f) => f.check(rec),
            Step::Latency(l) => l.apply(rec, en, now),
            Step::Normalize(n) => n.apply(rec, en),
            Step::UserPrivacy(p) => p.apply(rec, en),
            Step::Reducer(r) => r.apply(rec, en, now),
        }
    }

    /// Whether the step keeps records or state across records, so that it must be drained
    /// ([`Chain::drain`]) and cannot run split over several ordered writers.
    fn is_stateful(&self) -> bool {
        match self {
            Step::Filtering(_) | Step::Normalize(_) | Step::UserPrivacy(_) => false,
            Step::Latency(_) => true,
            Step::Reducer(_) => true,
        }
    }

    /// Emits what the step holds and is due at `now` (everything when `all`): each record
    /// with its payload, its enrichment and where it comes from.
    fn drain(&self, now: Instant, all: bool, emit: &mut StepEmit<'_>) {
        match self {
            Step::Filtering(_) | Step::Normalize(_) | Step::UserPrivacy(_) => {}
            Step::Latency(l) => l.drain(now, all, emit),
            Step::Reducer(r) => r.drain(now, all, emit),
        }
    }

    fn sample_rate(&self) -> u32 {
        match self {
            Step::Filtering(f) => f.sample_rate(),
            Step::Latency(_) | Step::Normalize(_) | Step::UserPrivacy(_) | Step::Reducer(_) => 1,
        }
    }
}

/// The transforms one output runs, in order; empty = keep everything.
#[derive(Debug, Default)]
pub struct Chain {
    steps: Vec<Step>,
}

impl Chain {
    /// The chain with no step (keeps everything).
    pub const EMPTY: Chain = Chain { steps: Vec::new() };

    /// A shared empty chain.
    pub fn empty() -> &'static Chain {
        &EMPTY
    }

    pub fn new(steps: Vec<Step>) -> Chain {
        Chain { steps }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether a step keeps state across records (see [`Step::is_stateful`]).
    pub fn is_stateful(&self) -> bool {
        self.steps.iter().any(Step::is_stateful)
    }

    /// Runs every step on the record; the first step that drops (or holds) it decides.
    /// What the steps change is written into `en` (reset by the caller before each
    /// record); a kept record goes on as `rec.overlaid(en)` when `en` is not clear.
    #[inline]
    pub fn apply(&self, rec: &Record<'_>, en: &mut Enrichment, now: Instant) -> Verdict {
        self.apply_from(0, rec, en, now)
    }

    #[inline]
    fn apply_from(
        &self,
        first: usize,
        rec: &Record<'_>,
        en: &mut Enrichment,
        now: Instant,
    ) -> Verdict {
        for step in self.steps.iter().skip(first) {
            let v = step.apply(rec, en, now);
            if v != Verdict::Keep {
                return v;
            }
        }
        Verdict::Keep
    }

    /// The verdict of the stateless steps alone, on a record as decoded (what the filters
    /// decide; for tests and callers that change nothing).
    pub fn check(&self, rec: &Record<'_>) -> Verdict {
        let mut en = Enrichment::default();
        self.apply(rec, &mut en, Instant::now())
    }

    /// Emits what the stateful steps hold and is due at `now` (everything when `all`, at
    /// the end of the stream), each record run through the steps after the one that
    /// emitted it. A chain without stateful steps emits nothing and costs a loop over its
    /// steps.
    pub fn drain(&self, now: Instant, all: bool, emit: &mut Emit<'_>) {
        for (k, step) in self.steps.iter().enumerate() {
            if !step.is_stateful() {
                continue;
            }
            step.drain(now, all, &mut |rec, payload, en, origin| {
                let verdict = self.apply_from(k + 1, rec, en, now);
                let en: &Enrichment = en;
                let out = rec.overlaid(en);
                emit(Emission {
                    rec: &out,
                    payload,
                    en,
                    origin,
                    verdict,
                });
            });
        }
    }

    /// The chain's latency steps (for their counters: metrics page, `-v` lines).
    pub fn latency_steps(&self) -> impl Iterator<Item = &Latency> {
        self.steps.iter().filter_map(|s| match s {
            Step::Latency(l) => Some(l),
            _ => None,
        })
    }

    /// 1 in how many records this chain's sampling keeps (1: it does not sample): what the
    /// full formats show as `filtering.sample-rate`. Every sampler hashes a record the same
    /// way and keeps the hashes below `2^64 / rate`, so samplers in a row nest: together
    /// they keep 1 in the largest rate, not the product.
    pub fn sample_rate(&self) -> u32 {
        self.steps
            .iter()
            .map(Step::sample_rate)
            .fold(1u32, u32::max)
    }
}

/// The empty chain, for outputs without one.
static EMPTY: Chain = Chain::EMPTY;

/// Every chain a configuration runs: the global one (before every output), then one per
/// output, in the order of the outputs. Immutable after start-up; shared by every writer
/// thread (and by offline mode).
#[derive(Clone, Debug, Default)]
pub struct Chains {
    pub global: Arc<Chain>,
    /// Index-aligned with the outputs; a missing entry is the empty chain.
    pub outputs: Vec<Arc<Chain>>,
}

impl Chains {
    /// The chain of output `i` (empty when it has none).
    pub fn output(&self, i: usize) -> &Chain {
        self.outputs.get(i).map_or(&EMPTY, |c| c)
    }

    /// 1 in how many records output `i` gets by sampling (1: not sampled): the larger of
    /// the global chain's rate and its own, as samplers nest ([`Chain::sample_rate`]).
    pub fn sample_rate(&self, i: usize) -> u32 {
        self.global.sample_rate().max(self.output(i).sample_rate())
    }

    /// Whether a chain keeps state across records (then only one writer may run it, and
    /// the writer drains it).
    pub fn is_stateful(&self) -> bool {
        self.global.is_stateful() || self.outputs.iter().any(|c| c.is_stateful())
    }

    /// Every latency step of every chain, with its chain: `None` for the global one, else
    /// the output's index (for the metrics page and the `-v` lines).
    pub fn latency_steps(&self) -> Vec<(Option<usize>, &Latency)> {
        let mut v: Vec<(Option<usize>, &Latency)> =
            self.global.latency_steps().map(|l| (None, l)).collect();
        for (i, c) in self.outputs.iter().enumerate() {
            v.extend(c.latency_steps().map(|l| (Some(i), l)));
        }
        v
    }

    /// Whether no chain has a step (the writer then skips the stage).
    pub fn is_empty(&self) -> bool {
        self.global.is_empty() && self.outputs.iter().all(|c| c.is_empty())
    }
}

/// Records removed per [`DropReason`], indexed by [`DropReason::index`]: what a writer
/// adds up per batch before publishing to its counters.
pub type ReasonCounts = [u64; DropReason::ALL.len()];

#[cfg(test)]
mod tests {
    use super::{Chains, DropReason, Verdict};

    #[test]
    fn missing_output_chains_are_empty() {
        let c = Chains::default();
        assert!(c.is_empty());
        assert!(c.output(3).is_empty());
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.as_str());
        }
        assert_ne!(Verdict::Keep, Verdict::Drop(DropReason::Rcode));
    }
}
