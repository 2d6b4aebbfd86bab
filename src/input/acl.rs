//! Who may connect: the `allow-from` CIDR list for TCP and TLS inputs, and the rate-limited
//! log of refused peers.
//!
//! The list is parsed and checked at start-up into a flat table of (network, prefix) pairs;
//! a check is a handful of integer compares per entry, done once per accepted connection
//! (never per message). IPv4 peers that reach a dual-stack `[::]` listener arrive as
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`); they are matched as the IPv4 address
//! they are. Unix sockets are not subject to the list: their file mode, owner and group say
//! who may connect. The network type, [`Cidr`], lives in `transform::ipset` (the query-ip
//! lists of the `filtering` transform parse the same notation).
//!
//! [`RefusalLog`] keeps a refused flood from flooding the log: the first refusal of each
//! address is logged (up to a bounded number of remembered addresses), the rest are counted
//! and summed up in at most one line per interval. It knows nothing of sockets: the caller
//! gives it addresses and instants.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::transform::ipset::Cidr;

/// The compiled `allow-from` list. Empty (the default) allows every peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<Cidr>,
}

impl AllowList {
    /// Parses every entry; the error names the entry's index and why.
    pub fn parse(entries: &[String]) -> Result<AllowList, (usize, String)> {
        let nets = entries
            .iter()
            .enumerate()
            .map(|(i, s)| Cidr::parse(s).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList { nets })
    }

    /// True when no list is configured (every peer is allowed).
    pub fn is_open(&self) -> bool {
        self.nets.is_empty()
    }

    /// True when `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.is_open() || self.nets.iter().any(|n| n.contains(ip))
    }

    pub fn networks(&self) -> &[Cidr] {
        &self.nets
    }
}

/// Addresses remembered for "first refusal is logged"; past this, refusals from new
/// addresses are only summed up (a scan of many addresses cannot grow memory without bound).
pub const REMEMBERED_PEERS: usize = 4096;

/// What to log for one refusal (decided under the lock, written outside it).
#[derive(Debug, PartialEq, Eq)]
pub enum LogDecision {
    /// First refusal of this address: log it alone.
    First,
    /// Counted; also log this summary of the refusals not logged since the last one.
    Summary { refused: u64, addresses: usize },
    /// Counted only.
    Quiet,
}

#[derive(Debug)]
struct RefusalState {
    seen: HashSet<IpAddr>,
    /// Refusals not logged one by one since the last summary, and their distinct addresses
    /// (counted among the remembered ones only).
    unlogged: u64,
    unlogged_peers: HashSet<IpAddr>,
    last_summary: Option<Instant>,
}

/// Rate-limited logging of refused connections: shared by every reader thread.
#[derive(Debug)]
pub struct RefusalLog {
    every: Duration,
    state: Mutex<RefusalState>,
}

impl RefusalLog {
    /// At most one summary line per `every`.
    pub fn new(every: Duration) -> RefusalLog {
        RefusalLog {
            every,
            state: Mutex::new(RefusalState {
                seen: HashSet::new(),
                unlogged: 0,
                unlogged_peers: HashSet::new(),
                last_summary: None,
            }),
        }
    }

    /// Records one refusal of `ip` at `now` and says what to log.
    pub fn on_refused(&self, ip: IpAddr, now: Instant) -> LogDecision {
        let Ok(mut st) = self.state.lock() else {
            return LogDecision::Quiet;
        };
        if st.seen.len() < REMEMBERED_PEERS && st.seen.insert(ip) {
            return LogDecision::First;
        }
        st.unlogged += 1;
        if st.unlogged_peers.len() < REMEMBERED_PEERS {
            st.unlogged_peers.insert(ip);
        }
        let due = st
            .last_summary
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every);
        if !due {
            return LogDecision::Quiet;
        }
        let d = LogDecision::Summary {
            refused: st.unlogged,
            addresses: st.unlogged_peers.len(),
        };
        st.unlogged = 0;
        st.unlogged_peers.clear();
        st.last_summary = Some(now);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The slow oracle: compare the first `prefix` bits one by one.
    fn contains_slow(net: &str, prefix: u32, addr: IpAddr) -> bool {
        let (n, a): (Vec<u8>, Vec<u8>) = match (ip(net), addr.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (n.octets().to_vec(), a.octets().to_vec()),
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.octets().to_vec(), a.octets().to_vec()),
            _ => return false,
        };
        (0..prefix as usize).all(|i| (n[i / 8] >> (7 - i % 8)) & 1 == (a[i / 8] >> (7 - i % 8)) & 1)
    }

    #[test]
    fn every_prefix_length_agrees_with_bitwise_compare() {
        let addrs = [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "192.0.2.255",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ];
        for (net, max) in [("127.0.0.1", 32), ("192.0.2.128", 32), ("2001:db8::1", 128)] {
            for p in 0..=max {
                let c = Cidr::parse(&format!("{net}/{p}")).unwrap();
                for a in addrs {
                    assert_eq!(
                        c.contains(ip(a)),
                        contains_slow(net, p, ip(a)),
                        "{net}/{p} contains {a}"
                    );
                }
            }
        }
    }

    #[test]
    fn host_entries_and_normalised_networks() {
        let c = Cidr::parse("127.0.0.1").unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(!c.contains(ip("127.0.0.2")));
        assert_eq!(
            Cidr::parse("192.0.2.7/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(Cidr::parse("[::1]").unwrap().to_string(), "::1/128");
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::5")));
        assert!(!Cidr::parse("::/0").unwrap().contains(ip("10.0.0.1")));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_entries() {
        let l = AllowList::parse(&["127.0.0.1/32".into()]).unwrap();
        assert!(l.allows(ip("::ffff:127.0.0.1")));
        assert!(!l.allows(ip("::ffff:127.0.0.2")));
        assert!(!l.allows(ip("::1")));
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        for bad in [
            "",
            "127.0.0.1/33",
            "::1/129",
            "localhost",
            "10.0.0.0/x",
            "1.2.3/8",
        ] {
            let e = AllowList::parse(&["10.0.0.0/8".into(), bad.into()]).unwrap_err();
            assert_eq!(e.0, 1, "{bad}");
        }
    }

    #[test]
    fn empty_list_allows_everyone() {
        let l = AllowList::default();
        assert!(l.is_open());
        assert!(l.allows(ip("203.0.113.9")));
    }

    #[test]
    fn refusals_log_first_per_peer_then_one_summary_per_interval() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (a, b) = (ip("127.0.0.2"), ip("::1"));
        assert_eq!(log.on_refused(a, t0), LogDecision::First);
        assert_eq!(log.on_refused(b, t0), LogDecision::First);
        // The first repeat opens the first summary window.
        assert_eq!(
            log.on_refused(a, t0),
            LogDecision::Summary {
                refused: 1,
                addresses: 1
            }
        );
        for i in 0..1000 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(
                log.on_refused(if i % 2 == 0 { a } else { b }, now),
                LogDecision::Quiet
            );
        }
        assert_eq!(
            log.on_refused(a, t0 + Duration::from_secs(10)),
            LogDecision::Summary {
                refused: 1001,
                addresses: 2
            }
        );
    }

    #[test]
    fn remembered_peers_are_bounded() {
        let log = RefusalLog::new(Duration::from_secs(3600));
        let t0 = Instant::now();
        let mut firsts = 0;
        for i in 0..(REMEMBERED_PEERS as u32 + 100) {
            let a = IpAddr::V4((0x0a00_0000 + i).into());
            if log.on_refused(a, t0) == LogDecision::First {
                firsts += 1;
            }
        }
        assert_eq!(firsts, REMEMBERED_PEERS);
        let st = log.state.lock().unwrap();
        assert!(st.seen.len() <= REMEMBERED_PEERS);
        assert!(st.unlogged_peers.len() <= REMEMBERED_PEERS);
    }
}
