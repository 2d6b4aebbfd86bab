//! IP networks: [`Cidr`] (one `ADDR/PREFIX`, parsed from text) and [`IpSet`] (many of
//! them, compiled for look-ups whose cost does not grow with the list).
//!
//! An [`IpSet`] turns its networks into address ranges, sorts them and merges the ones that
//! overlap or touch, so a look-up is one binary search over disjoint ranges: about 20
//! compares for a million networks, whatever their prefix lengths. IPv4 and IPv6 are kept
//! apart; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is looked up as the IPv4 address
//! it is, as `allow-from` does (dual-stack listeners and some resolvers report clients so).
//!
//! Used by the `filtering` transform's query-ip lists and by `input::acl`'s `allow-from`.
//! Knows addresses and text; nothing of files, records or sockets.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// One `ADDR/PREFIX` network (`ADDR` alone means one host).
///
/// Invariant: `prefix <= 32` for IPv4, `<= 128` for IPv6, and `net` has no bits set past
/// the prefix (so `192.0.2.7/24` is stored as `192.0.2.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, `127.0.0.1` or `::1` (a host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr {
            net: mask(ip, prefix),
            prefix,
        })
    }

    /// True when `ip` lies in this network. An IPv4-mapped IPv6 address is taken as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.net.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix) == self.net
    }

    /// The network address (host bits cleared).
    pub fn net(&self) -> IpAddr {
        self.net
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `ip` with every bit past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask4(prefix)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask6(prefix)).into()),
    }
}

fn mask4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// Disjoint, sorted, non-adjacent inclusive ranges `(start, end)`, with an index by the
/// top 16 bits of the address.
///
/// Invariant: `start <= end`; `ranges[i].1 + 1 < ranges[i + 1].0` (merged, so the range
/// holding an address is the first whose end is not below it). `index` is empty, or has `BUCKETS + 1` entries: `index[b]` is the first range
/// whose end is at or past the first address of bucket `b`, and `index[BUCKETS]` is the
/// number of ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ranges<T> {
    /// Start and end side by side: the last step of a look-up reads both from one line.
    ranges: Box<[(T, T)]>,
    index: Box<[u32]>,
}

/// Buckets of the index: one per value of the address's top 16 bits.
const BUCKETS: usize = 1 << 16;
/// Below this many ranges a plain binary search stays in cache; no index (256 KiB) is built.
const INDEX_FROM: usize = 256;

impl<T: Copy + Ord + RangeBound> Ranges<T> {
    fn build(mut v: Vec<(T, T)>) -> Ranges<T> {
        v.sort_unstable();
        let mut merged: Vec<(T, T)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match merged.last_mut() {
                Some(last) if last.1 >= s || last.1.next() == Some(s) => {
                    if e > last.1 {
                        last.1 = e;
                    }
                }
                _ => merged.push((s, e)),
            }
        }
        let ranges: Box<[(T, T)]> = merged.into_boxed_slice();
        let index = if ranges.len() >= INDEX_FROM {
            let n = ranges.len() as u32;
            (0..BUCKETS)
                .map(|b| ranges.partition_point(|r| r.1 < T::bucket_start(b)) as u32)
                .chain(std::iter::once(n))
                .collect()
        } else {
            Box::default()
        };
        Ranges { ranges, index }
    }

    #[inline]
    fn contains(&self, a: T) -> bool {
        // PERF: benches/transform.rs drop_queryip_1M: a binary search over a million ranges
        // misses the cache at almost every step (3x the 10k cost); the index narrows it to
        // the ranges of one bucket, a few on average.
        let (lo, hi) = match (self.index.get(a.bucket()), self.index.get(a.bucket() + 1)) {
            // The first range whose end is at or past `a` lies in `lo..=next`: ranges
            // before `lo` end before the bucket, and range `next` ends past it. Searching
            // `lo..next` finds it, or ends at `next` when none before reaches `a`.
            (Some(&lo), Some(&next)) => (lo as usize, next as usize),
            _ => (0, self.ranges.len()),
        };
        let Some(bucket) = self.ranges.get(lo..hi) else {
            return false;
        };
        let i = lo + bucket.partition_point(|r| r.1 < a);
        self.ranges.get(i).is_some_and(|r| r.0 <= a)
    }

    fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// An address as a number: its successor (for merging touching ranges) and its index
/// bucket (the top 16 bits).
trait RangeBound: Sized {
    fn next(self) -> Option<Self>;
    fn bucket(self) -> usize;
    /// The first address of bucket `b` (`b < BUCKETS`).
    fn bucket_start(b: usize) -> Self;
}

impl RangeBound for u32 {
    fn next(self) -> Option<u32> {
        self.checked_add(1)
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
    fn bucket_start(b: usize) -> u32 {
        (b as u32) << 16
    }
}

impl RangeBound for u128 {
    fn next(self) -> Option<u128> {
        self.checked_add(1)
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
    fn bucket_start(b: usize) -> u128 {
        (b as u128) << 112
    }
}

/// A compiled set of networks: is this address in any of them?
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

impl IpSet {
    pub fn new(nets: impl IntoIterator<Item = Cidr>) -> IpSet {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for c in nets {
            match c.net {
                IpAddr::V4(a) => {
                    let s = u32::from(a);
                    v4.push((s, s | !mask4(c.prefix)));
                }
                IpAddr::V6(a) => {
                    let s = u128::from(a);
                    v6.push((s, s | !mask6(c.prefix)));
                }
            }
        }
        IpSet {
            v4: Ranges::build(v4),
            v6: Ranges::build(v6),
        }
    }

    /// Parses a list file's text: one address or network a line; blank lines and `#`
    /// comments (whole lines or after an entry) are ignored. The error is the 1-based line
    /// number and what is wrong with it.
    pub fn parse_list(text: &str) -> Result<Vec<Cidr>, (usize, String)> {
        let mut nets = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            nets.push(Cidr::parse(entry).map_err(|e| (i + 1, e))?);
        }
        Ok(nets)
    }

    /// Whether `ip` is in the set (IPv4-mapped IPv6 looked up as IPv4).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => self.v4.contains(u32::from(a)),
            IpAddr::V6(a) => self.v6.contains(u128::from(a)),
        }
    }

    /// The address as dnstap carries it (4 or 16 bytes): `None` for any other length.
    #[inline]
    pub fn contains_bytes(&self, b: &[u8]) -> Option<bool> {
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            return Some(self.v4.contains(u32::from_be_bytes(a)));
        }
        let a = <[u8; 16]>::try_from(b).ok()?;
        Some(self.contains(IpAddr::V6(Ipv6Addr::from(a))))
    }

    /// Disjoint ranges held (networks after merging).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IpSet {{ {} IPv4 ranges, {} IPv6 ranges, {} KiB }}",
            self.v4.len(),
            self.v6.len(),
            (self.v4.len() * 8
                + self.v6.len() * 32
                + (self.v4.index.len() + self.v6.index.len()) * 4)
                >> 10
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Cidr, IpSet};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Networks clustered in a small space so they overlap, nest and touch.
    fn random_nets(r: &mut Rng, n: usize) -> Vec<Cidr> {
        (0..n)
            .map(|_| {
                let x = r.next();
                if x & 1 == 0 {
                    let a = 0x0a00_0000 | (x >> 8) as u32 & 0xffff;
                    let p = 16 + (x >> 40) as u8 % 17;
                    Cidr::parse(&format!("{}/{p}", IpAddr::V4(a.into()))).unwrap()
                } else {
                    let a: u128 = (0x2001_0db8u128 << 96) | u128::from((x >> 8) & 0xffff) << 64;
                    let p = 32 + (x >> 40) as u8 % 97;
                    Cidr::parse(&format!("{}/{p}", IpAddr::V6(a.into()))).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn agrees_with_a_linear_scan_on_random_networks() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        // The last rounds are large enough for the bucket index.
        for round in 0..22 {
            let n = if round < 20 {
                1 + round * 7
            } else {
                5000 * (round - 19)
            };
            let nets = random_nets(&mut r, n);
            let set = IpSet::new(nets.iter().copied());
            for _ in 0..2000 {
                let x = r.next();
                let a = if x & 1 == 0 {
                    IpAddr::V4((0x0a00_0000 | (x >> 8) as u32 & 0xffff).into())
                } else {
                    let v: u128 = (0x2001_0db8u128 << 96)
                        | u128::from((x >> 8) & 0xffff) << 64
                        | u128::from(x >> 60);
                    IpAddr::V6(v.into())
                };
                let slow = nets.iter().any(|n| n.contains(a));
                assert_eq!(set.contains(a), slow, "{a} in {nets:?}");
                let bytes = match a {
                    IpAddr::V4(v) => v.octets().to_vec(),
                    IpAddr::V6(v) => v.octets().to_vec(),
                };
                assert_eq!(set.contains_bytes(&bytes), Some(slow));
            }
        }
    }

    #[test]
    fn the_bucket_index_agrees_with_a_linear_scan() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        // Long prefixes all over both spaces: thousands of ranges, across bucket edges.
        let nets: Vec<Cidr> = (0..3000)
            .map(|i| {
                let x = r.next();
                let text = if i % 2 == 0 {
                    format!("{}/{}", IpAddr::V4((x as u32).into()), 14 + x % 19)
                } else {
                    let a = u128::from(x) << 64 | u128::from(r.next());
                    format!("{}/{}", IpAddr::V6(a.into()), 12 + x % 117)
                };
                Cidr::parse(&text).unwrap()
            })
            .collect();
        let set = IpSet::new(nets.iter().copied());
        assert!(
            !set.v4.index.is_empty() && !set.v6.index.is_empty(),
            "{set:?}"
        );
        for i in 0..6000u64 {
            let x = r.next();
            let a = match i % 4 {
                0 => IpAddr::V4((x as u32).into()),
                // Next to a bucket edge.
                1 => IpAddr::V4(
                    ((x as u32) & 0xffff_0000)
                        .wrapping_add(i as u32 % 3)
                        .wrapping_sub(1)
                        .into(),
                ),
                2 => IpAddr::V6((u128::from(x) << 64 | u128::from(r.next())).into()),
                _ => {
                    // Just inside or outside a listed network.
                    let n = nets[(x % 3000) as usize];
                    match n.net() {
                        IpAddr::V4(v) => IpAddr::V4(u32::from(v).wrapping_sub(i as u32 % 2).into()),
                        IpAddr::V6(v) => {
                            IpAddr::V6(u128::from(v).wrapping_sub(u128::from(i % 2 == 1)).into())
                        }
                    }
                }
            };
            let slow = nets.iter().any(|n| n.contains(a));
            assert_eq!(set.contains(a), slow, "{a}");
        }
    }

    #[test]
    fn boundaries_merges_and_mapped_addresses() {
        let set = IpSet::new(
            [
                "192.0.2.0/25",
                "192.0.2.128/25",
                "2001:db8::/127",
                "0.0.0.0/32",
            ]
            .map(|s| Cidr::parse(s).unwrap()),
        );
        assert_eq!(set.len(), 3, "the two /25 merge: {set:?}");
        for (a, inside) in [
            ("192.0.1.255", false),
            ("192.0.2.0", true),
            ("192.0.2.255", true),
            ("192.0.3.0", false),
            ("::ffff:192.0.2.9", true),
            ("0.0.0.0", true),
            ("0.0.0.1", false),
            ("2001:db8::1", true),
            ("2001:db8::2", false),
            ("::", false),
        ] {
            assert_eq!(set.contains(ip(a)), inside, "{a}");
        }
        assert_eq!(set.contains_bytes(&[1, 2, 3]), None);
        let all = IpSet::new([
            Cidr::parse("::/0").unwrap(),
            Cidr::parse("0.0.0.0/0").unwrap(),
        ]);
        assert!(all.contains(ip("255.255.255.255")) && all.contains(ip("ffff::1")));
    }

    #[test]
    fn list_text_with_comments_and_errors_by_line() {
        let nets =
            IpSet::parse_list("# clients\n10.0.0.0/8\n\n  2001:db8::/32  # lab\n::1\n").unwrap();
        assert_eq!(nets.len(), 3);
        let e = IpSet::parse_list("10.0.0.0/8\n# x\n10.0.0.0/33\n").unwrap_err();
        assert_eq!(e.0, 3, "{e:?}");
        assert!(e.1.contains("0..=32"), "{e:?}");
        let e = IpSet::parse_list("host.example\n").unwrap_err();
        assert_eq!(e.0, 1);
    }
}
