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

pub mod domains;
pub mod filtering;
pub mod ipset;
pub mod sampling;

use std::sync::Arc;

use crate::record::Record;

pub use filtering::{Filtering, FilteringSpec};

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
}

impl DropReason {
    /// Every reason, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; 7] = [
        DropReason::MessageType,
        DropReason::Rcode,
        DropReason::Qtype,
        DropReason::Domain,
        DropReason::Fqdn,
        DropReason::QueryIp,
        DropReason::Sampled,
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
}

/// One compiled transform. An enum rather than trait objects: the set is closed and the
/// writer's loop stays monomorphic.
#[derive(Debug)]
pub enum Step {
    Filtering(Filtering),
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

    /// Runs every step on the record; the first step that drops it decides.
    #[inline]
    pub fn check(&self, rec: &Record<'_>) -> Verdict {
        for step in &self.steps {
            let v = match step {
                Step::Filtering(f) => f.check(rec),
            };
            if v != Verdict::Keep {
                return v;
            }
        }
        Verdict::Keep
    }

    /// 1 in how many records this chain's sampling keeps (1: it does not sample): what the
    /// full formats show as `filtering.sample-rate`. Every sampler hashes a record the same
    /// way and keeps the hashes below `2^64 / rate`, so samplers in a row nest: together
    /// they keep 1 in the largest rate, not the product.
    pub fn sample_rate(&self) -> u32 {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Filtering(f) => f.sample_rate(),
            })
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
