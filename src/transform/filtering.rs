//! The `filtering` transform: keep or drop a record by its dnstap message type, its client
//! address (`query_address`, against [`IpSet`]s), the DNS header's rcode, the first
//! question's type, and domain lists (a domain and everything under it, or exact names);
//! then, last, sample what is left ([`Sampler`]). Compiled once from a [`FilteringSpec`]
//! into bit sets, range tables and hash tables; a check is a few loads, a binary search per
//! address list and, with a domain list, one look-up per label of the query name.
//!
//! Semantics (docs/transforms.md):
//! - every `keep-*` key keeps only the records that match it, every `drop-*` key drops the
//!   ones that do; a record must pass all of them;
//! - the rcode is the 4-bit header rcode the seed formats show (`code`); a record with no
//!   readable DNS message has no rcode, qtype or name: a `keep-*` on that field drops it, a
//!   `drop-*` keeps it;
//! - the DNS message is the one the record is about (the query for `*_QUERY` types, the
//!   response otherwise), as in every format;
//! - a record without a client address (or one that is not 4 or 16 bytes) fails a
//!   `keep-queryip*` list and passes a `drop-queryip*` one, as above.
//!
//! Knows records and domain sets; nothing of files, counters or the configuration file.
#![forbid(unsafe_code)]

use crate::dns::MessageView;
use crate::record::Record;
use crate::transform::domains::DomainSet;
use crate::transform::ipset::IpSet;
use crate::transform::sampling::{Sampler, DEFAULT_KEEP_RCODES};
use crate::transform::{DropReason, Verdict};

/// The filter as `config` hands it down: values already parsed and checked (names turned
/// into numbers, list files read into sets).
#[derive(Clone, Debug, Default)]
pub struct FilteringSpec {
    /// Keep only these dnstap message types (`message-types`, `log-queries: false`,
    /// `log-replies: false`); `None` keeps every type.
    pub message_types: Option<Vec<u32>>,
    /// Header rcodes (0..=15) to drop.
    pub drop_rcodes: Vec<u8>,
    /// Keep only these header rcodes.
    pub keep_rcodes: Option<Vec<u8>>,
    pub drop_qtypes: Vec<u16>,
    pub keep_qtypes: Option<Vec<u16>>,
    /// Drop names in this set (subdomains included, or exact: the set says which).
    pub drop_domains: Vec<DomainSet>,
    /// Keep only names in one of these sets; empty = no keep list.
    pub keep_domains: Vec<DomainSet>,
    /// Drop records whose client address (`query_address`) is in this set.
    pub drop_queryip: Option<IpSet>,
    /// Keep only records whose client address is in this set.
    pub keep_queryip: Option<IpSet>,
    /// Keep 1 record in this many (0 and 1: no sampling).
    pub downsample: u32,
    /// Rcodes never sampled out; `None`: [`DEFAULT_KEEP_RCODES`].
    pub downsample_keep_rcodes: Option<Vec<u8>>,
}

/// A set of small numbers: bit `n` of word `n / 64`.
#[derive(Clone, Debug)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(max: usize, members: impl IntoIterator<Item = usize>) -> Bits {
        let mut words = vec![0u64; max / 64 + 1].into_boxed_slice();
        for m in members {
            if let Some(w) = words.get_mut(m / 64) {
                *w |= 1 << (m % 64);
            }
        }
        Bits(words)
    }

    #[inline]
    fn has(&self, n: usize) -> bool {
        self.0.get(n / 64).is_some_and(|w| w >> (n % 64) & 1 == 1)
    }
}

/// A keep list and a drop list over one field.
#[derive(Clone, Debug)]
struct KeepDrop {
    keep: Option<Bits>,
    drop: Option<Bits>,
}

impl KeepDrop {
    fn new(max: usize, keep: Option<&[usize]>, drop: &[usize]) -> KeepDrop {
        KeepDrop {
            keep: keep.map(|k| Bits::new(max, k.iter().copied())),
            drop: (!drop.is_empty()).then(|| Bits::new(max, drop.iter().copied())),
        }
    }

    fn is_noop(&self) -> bool {
        self.keep.is_none() && self.drop.is_none()
    }

    /// Whether a record whose field is `value` (`None`: it has none) passes.
    #[inline]
    fn passes(&self, value: Option<usize>) -> bool {
        match value {
            Some(v) => {
                self.keep.as_ref().is_none_or(|k| k.has(v))
                    && !self.drop.as_ref().is_some_and(|d| d.has(v))
            }
            None => self.keep.is_none(),
        }
    }
}

/// The compiled `filtering` transform.
#[derive(Clone, Debug)]
pub struct Filtering {
    /// dnstap message types are small numbers (1..=14 today); a type past the set's end is
    /// outside every list.
    message_types: Option<Bits>,
    rcodes: KeepDrop,
    qtypes: KeepDrop,
    drop_domains: Vec<DomainSet>,
    keep_domains: Vec<DomainSet>,
    drop_queryip: Option<IpSet>,
    keep_queryip: Option<IpSet>,
    /// Whether any check needs the DNS message's question.
    needs_question: bool,
    /// Last: it samples what the other keys kept.
    sampler: Option<Sampler>,
}

/// Message types are checked in a 64-bit set; values past it match no list.
const MESSAGE_TYPE_MAX: usize = 63;

impl Filtering {
    pub fn new(spec: &FilteringSpec) -> Filtering {
        let to_usize = |v: &[u8]| v.iter().map(|&x| usize::from(x)).collect::<Vec<_>>();
        let to_usize16 = |v: &[u16]| v.iter().map(|&x| usize::from(x)).collect::<Vec<_>>();
        let rcodes = KeepDrop::new(
            15,
            spec.keep_rcodes.as_deref().map(to_usize).as_deref(),
            &to_usize(&spec.drop_rcodes),
        );
        let qtypes = KeepDrop::new(
            usize::from(u16::MAX),
            spec.keep_qtypes.as_deref().map(to_usize16).as_deref(),
            &to_usize16(&spec.drop_qtypes),
        );
        let needs_question =
            !qtypes.is_noop() || !spec.drop_domains.is_empty() || !spec.keep_domains.is_empty();
        Filtering {
            message_types: spec.message_types.as_ref().map(|t| {
                Bits::new(
                    MESSAGE_TYPE_MAX,
                    t.iter()
                        .filter_map(|&x| usize::try_from(x).ok())
                        .filter(|&x| x <= MESSAGE_TYPE_MAX),
                )
            }),
            rcodes,
            qtypes,
            drop_domains: spec.drop_domains.clone(),
            keep_domains: spec.keep_domains.clone(),
            drop_queryip: spec.drop_queryip.clone(),
            keep_queryip: spec.keep_queryip.clone(),
            needs_question,
            sampler: Sampler::new(
                spec.downsample,
                spec.downsample_keep_rcodes
                    .as_deref()
                    .unwrap_or(&DEFAULT_KEEP_RCODES),
            ),
        }
    }

    /// 1 in how many records this filter's sampling keeps (1: no sampling).
    pub fn sample_rate(&self) -> u32 {
        self.sampler.as_ref().map_or(1, Sampler::rate)
    }

    /// Whether this filter keeps every record (nothing configured).
    pub fn is_noop(&self) -> bool {
        self.message_types.is_none()
            && self.rcodes.is_noop()
            && !self.needs_question
            && self.drop_queryip.is_none()
            && self.keep_queryip.is_none()
            && self.sampler.is_none()
    }

    #[inline]
    pub fn check(&self, rec: &Record<'_>) -> Verdict {
        if let Some(types) = &self.message_types {
            let t = rec.message_type.and_then(|t| usize::try_from(t).ok());
            if !t.is_some_and(|t| types.has(t)) {
                return Verdict::Drop(DropReason::MessageType);
            }
        }
        if !self.query_ip_passes(rec.query_address) {
            return Verdict::Drop(DropReason::QueryIp);
        }
        let view: Option<&MessageView<'_>> = match &rec.dns {
            Some(Ok(v)) => Some(v),
            _ => None,
        };
        if !self
            .rcodes
            .passes(view.map(|v| usize::from(v.header.rcode())))
        {
            return Verdict::Drop(DropReason::Rcode);
        }
        if self.needs_question {
            if let Some(reason) = self.question_drops(view) {
                return Verdict::Drop(reason);
            }
        }
        if let Some(s) = &self.sampler {
            if !s.keeps(rec) {
                return Verdict::Drop(DropReason::Sampled);
            }
        }
        Verdict::Keep
    }

    /// The query-ip lists on the client address (4 or 16 bytes; any other length, or none,
    /// is no address: a keep list drops it, a drop list keeps it).
    #[inline]
    fn query_ip_passes(&self, addr: Option<&[u8]>) -> bool {
        let lookup = |set: &IpSet| addr.and_then(|a| set.contains_bytes(a));
        if let Some(d) = &self.drop_queryip {
            if lookup(d) == Some(true) {
                return false;
            }
        }
        match &self.keep_queryip {
            Some(k) => lookup(k) == Some(true),
            None => true,
        }
    }

    /// The question's checks: qtype, then the domain lists.
    #[inline]
    fn question_drops(&self, view: Option<&MessageView<'_>>) -> Option<DropReason> {
        let question = view.and_then(|v| v.question.as_ref());
        if !self.qtypes.passes(question.map(|q| usize::from(q.qtype))) {
            return Some(DropReason::Qtype);
        }
        for set in &self.drop_domains {
            if question.is_some_and(|q| set.matches(q.name.labels())) {
                return Some(set_reason(set));
            }
        }
        if let Some(first) = self.keep_domains.first() {
            let kept = question
                .is_some_and(|q| self.keep_domains.iter().any(|s| s.matches(q.name.labels())));
            if !kept {
                return Some(set_reason(first));
            }
        }
        None
    }
}

fn set_reason(set: &DomainSet) -> DropReason {
    match set.mode() {
        crate::transform::domains::Match::Subdomains => DropReason::Domain,
        crate::transform::domains::Match::Exact => DropReason::Fqdn,
    }
}

#[cfg(test)]
mod tests {
    use super::{Filtering, FilteringSpec};
    use crate::record::Record;
    use crate::transform::domains::{DomainSet, Match};
    use crate::transform::{DropReason, Verdict};

    /// A DNS message: header (id 1, the given rcode, QR set for responses) and one question.
    fn dns(name: &str, qtype: u16, rcode: u8, response: bool) -> Vec<u8> {
        let flags: u16 = if response { 0x8000 } else { 0 } | u16::from(rcode);
        let mut m = vec![0, 1];
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    fn record<'a>(msg: &'a [u8], message_type: u32) -> Record<'a> {
        let mut r = Record {
            message_type: Some(message_type),
            ..Record::default()
        };
        if message_type % 2 == 1 {
            r.query_message = Some(msg);
        } else {
            r.response_message = Some(msg);
        }
        r.parse_dns();
        r
    }

    #[test]
    fn each_key_keeps_and_drops() {
        let q = dns("www.example.com", 1, 0, false);
        let nx = dns("nope.example.org", 28, 3, true);
        let (query, nxdomain) = (record(&q, 5), record(&nx, 6));

        let only_responses = Filtering::new(&FilteringSpec {
            message_types: Some(vec![6]),
            ..Default::default()
        });
        assert_eq!(
            only_responses.check(&query),
            Verdict::Drop(DropReason::MessageType)
        );
        assert_eq!(only_responses.check(&nxdomain), Verdict::Keep);

        let keep_nx = Filtering::new(&FilteringSpec {
            keep_rcodes: Some(vec![3]),
            ..Default::default()
        });
        assert_eq!(keep_nx.check(&query), Verdict::Drop(DropReason::Rcode));
        assert_eq!(keep_nx.check(&nxdomain), Verdict::Keep);

        let drop_aaaa = Filtering::new(&FilteringSpec {
            drop_qtypes: vec![28],
            ..Default::default()
        });
        assert_eq!(drop_aaaa.check(&query), Verdict::Keep);
        assert_eq!(drop_aaaa.check(&nxdomain), Verdict::Drop(DropReason::Qtype));

        let domains = Filtering::new(&FilteringSpec {
            drop_domains: vec![DomainSet::parse(Match::Subdomains, "EXAMPLE.com").unwrap()],
            ..Default::default()
        });
        assert_eq!(domains.check(&query), Verdict::Drop(DropReason::Domain));
        assert_eq!(domains.check(&nxdomain), Verdict::Keep);

        let exact = Filtering::new(&FilteringSpec {
            keep_domains: vec![DomainSet::parse(Match::Exact, "www.example.com").unwrap()],
            ..Default::default()
        });
        assert_eq!(exact.check(&query), Verdict::Keep);
        assert_eq!(exact.check(&nxdomain), Verdict::Drop(DropReason::Fqdn));
        assert!(!exact.is_noop());
        assert!(Filtering::new(&FilteringSpec::default()).is_noop());
    }

    #[test]
    fn records_without_a_dns_message_fail_keep_lists_only() {
        let bare = Record {
            message_type: Some(5),
            ..Record::default()
        };
        let keep = Filtering::new(&FilteringSpec {
            keep_qtypes: Some(vec![1]),
            ..Default::default()
        });
        assert_eq!(keep.check(&bare), Verdict::Drop(DropReason::Qtype));
        let drop = Filtering::new(&FilteringSpec {
            drop_rcodes: vec![0],
            drop_qtypes: vec![1],
            drop_domains: vec![DomainSet::parse(Match::Subdomains, "com").unwrap()],
            ..Default::default()
        });
        assert_eq!(drop.check(&bare), Verdict::Keep);
    }
}
