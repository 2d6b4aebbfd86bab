//! Sampling (`downsample: N`): keep 1 record in N, decided by a hash of the query's client
//! address, client port and DNS id, so a query and its response (which carry the same three
//! values) are kept or dropped together, on every writer thread and every run alike.
//! Records whose rcode is in the keep list (`downsample-keep-rcodes`, by default NXDOMAIN,
//! SERVFAIL and REFUSED) are never sampled out.
//!
//! A query's rcode is NOERROR: the keep list saves responses only, and the query of a kept
//! NXDOMAIN response was sampled like any other query (the sampler cannot know, when the
//! query passes, how it will be answered). docs/transforms.md says so.
//!
//! Stateless: no counter, no clock; the decision is a function of the record alone.
#![forbid(unsafe_code)]

use crate::record::Record;

/// The rcodes `downsample-keep-rcodes` defaults to: NXDOMAIN, SERVFAIL, REFUSED.
pub const DEFAULT_KEEP_RCODES: [u8; 3] = [3, 2, 5];

/// The compiled sampler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampler {
    rate: u32,
    /// A record is kept when its hash is below this: `ceil(2^64 / rate)`, so the fraction
    /// kept is `1/rate` to within `rate / 2^64`.
    below: u64,
    /// Bit `r` set: rcode `r` (0..=15) is never sampled out.
    keep_rcodes: u16,
}

impl Sampler {
    /// Keeps 1 in `rate` (`rate >= 2`; `None` for less: that keeps everything).
    pub fn new(rate: u32, keep_rcodes: &[u8]) -> Option<Sampler> {
        if rate < 2 {
            return None;
        }
        let below = (u64::MAX / u64::from(rate)) + 1;
        let keep_rcodes = keep_rcodes
            .iter()
            .filter(|&&r| r < 16)
            .fold(0u16, |m, &r| m | 1 << r);
        Some(Sampler {
            rate,
            below,
            keep_rcodes,
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Whether the record stays.
    #[inline]
    pub fn keeps(&self, rec: &Record<'_>) -> bool {
        let header = match &rec.dns {
            Some(Ok(v)) => Some(&v.header),
            _ => None,
        };
        if let Some(h) = header {
            if self.keep_rcodes >> h.rcode() & 1 == 1 {
                return true;
            }
        }
        // The id from the raw bytes: a response whose body is malformed still pairs.
        let id = match rec.dns_message() {
            Some([a, b, ..]) => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        pair_hash(rec.query_address, rec.query_port, id) < self.below
    }
}

/// The 64-bit finaliser of splitmix64: every input bit flips about half the output bits.
#[inline]
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash a query and its response share: client address (4 or 16 bytes, or absent),
/// client port and DNS id. Fixed seed: the same record samples the same way on every run.
#[inline]
pub fn pair_hash(address: Option<&[u8]>, port: Option<u32>, id: u16) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    if let Some(a) = address {
        // Each 8 bytes as a little-endian word, a shorter last piece zero-padded.
        // PERF: benches/transform.rs downsample_10: the two address lengths read as whole
        // words; a copy of a variable-length piece into a zeroed word was a memcpy call and
        // a store-forwarding stall. Same words, so the same hash.
        if let Ok(v4) = <[u8; 4]>::try_from(a) {
            h = mix(h ^ u64::from(u32::from_le_bytes(v4)));
        } else if let Ok(v6) = <[u8; 16]>::try_from(a) {
            let x = u128::from_le_bytes(v6);
            h = mix(h ^ x as u64);
            h = mix(h ^ (x >> 64) as u64);
        } else {
            for chunk in a.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = mix(h ^ u64::from_le_bytes(w));
            }
        }
        h ^= (a.len() as u64) << 56;
    }
    let tail = u64::from(port.unwrap_or(0x1_0000)) << 16 | u64::from(id);
    mix(h ^ tail)
}

#[cfg(test)]
mod tests {
    use super::{pair_hash, Sampler, DEFAULT_KEEP_RCODES};
    use crate::record::Record;

    fn dns(id: u16, rcode: u8, response: bool) -> Vec<u8> {
        let flags: u16 = if response { 0x8000 } else { 0 } | u16::from(rcode);
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0; 8]);
        m
    }

    fn record<'a>(msg: &'a [u8], addr: &'a [u8], port: u32, response: bool) -> Record<'a> {
        let mut r = Record {
            message_type: Some(if response { 6 } else { 5 }),
            query_address: Some(addr),
            query_port: Some(port),
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

    #[test]
    fn queries_and_responses_go_together_at_the_rate() {
        let s = Sampler::new(10, &DEFAULT_KEEP_RCODES).unwrap();
        let (mut kept, n) = (0u32, 200_000u32);
        for i in 0..n {
            let addr = [10, 0, (i >> 16) as u8, (i >> 8) as u8];
            let (q, r) = (dns(i as u16, 0, false), dns(i as u16, 0, true));
            let port = 1024 + i % 60_000;
            let kq = s.keeps(&record(&q, &addr, port, false));
            assert_eq!(kq, s.keeps(&record(&r, &addr, port, true)), "{i}");
            kept += u32::from(kq);
        }
        let expected = n / 10;
        assert!(kept.abs_diff(expected) < expected / 20, "{kept} of {n}");
    }

    #[test]
    fn kept_rcodes_are_never_sampled_out() {
        let s = Sampler::new(1_000_000, &DEFAULT_KEEP_RCODES).unwrap();
        for i in 0..1000u16 {
            for rc in DEFAULT_KEEP_RCODES {
                let m = dns(i, rc, true);
                assert!(s.keeps(&record(&m, &[192, 0, 2, 1], 53, true)));
            }
        }
        let none = Sampler::new(1_000_000, &[]).unwrap();
        let m = dns(7, 3, true);
        assert!(!none.keeps(&record(&m, &[192, 0, 2, 1], 5353, true)));
        assert!(Sampler::new(1, &[]).is_none());
    }

    #[test]
    fn hash_inputs_each_matter() {
        let a = pair_hash(Some(&[10, 0, 0, 1]), Some(53), 1);
        assert_ne!(a, pair_hash(Some(&[10, 0, 0, 2]), Some(53), 1));
        assert_ne!(a, pair_hash(Some(&[10, 0, 0, 1]), Some(54), 1));
        assert_ne!(a, pair_hash(Some(&[10, 0, 0, 1]), Some(53), 2));
        assert_ne!(a, pair_hash(None, Some(53), 1));
    }

    #[test]
    fn the_hash_is_the_word_by_word_one_for_every_length() {
        // The hash as it was first written: every 8 bytes (or fewer, last) zero-padded into
        // a word. The words read whole must give the same values, so that a sampled stream
        // keeps the same records from one version to the next.
        let reference = |a: &[u8], port: u32, id: u16| {
            let mut h: u64 = 0x243f_6a88_85a3_08d3;
            for chunk in a.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = super::mix(h ^ u64::from_le_bytes(w));
            }
            h ^= (a.len() as u64) << 56;
            super::mix(h ^ (u64::from(port) << 16 | u64::from(id)))
        };
        let bytes: Vec<u8> = (0..17u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        for len in 0..=17 {
            let a = &bytes[..len];
            assert_eq!(
                pair_hash(Some(a), Some(5353), 77),
                reference(a, 5353, 77),
                "{len}"
            );
        }
    }
}
