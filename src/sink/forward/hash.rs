//! `loadbalance: hash`: the collector of a record from a key computed on the [`Record`]
//! (client address, client prefix, identity or query name), by rendezvous hashing over the
//! healthy collectors, so that losing one moves only the keys it had. Allocation-free per
//! record: the key bytes are hashed as they are read.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

use crate::record::Record;

/// What `hash` groups records by (`hash-key:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashKey {
    /// The DNS client's address (dnstap `query_address`).
    ClientIp,
    /// The client's address truncated to `v4` / `v6` bits.
    ClientPrefix { v4: u8, v6: u8 },
    /// The dnstap identity.
    Identity,
    /// The first question's name, case-folded.
    Qname,
}

impl HashKey {
    pub fn name(self) -> &'static str {
        match self {
            HashKey::ClientIp => "client-ip",
            HashKey::ClientPrefix { .. } => "client-prefix",
            HashKey::Identity => "identity",
            HashKey::Qname => "qname",
        }
    }
}

/// FNV-1a, 64 bits: enough spread for picking a collector, no allocation.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    #[inline]
    fn byte(&mut self, b: u8) {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.byte(x);
        }
    }
}

/// The record's key, hashed.
pub(crate) fn key_hash(key: HashKey, rec: &Record<'_>) -> u64 {
    let mut h = Fnv::new();
    match key {
        HashKey::ClientIp => h.bytes(rec.query_address.unwrap_or_default()),
        HashKey::ClientPrefix { v4, v6 } => {
            let a = rec.query_address.unwrap_or_default();
            let bits = if a.len() == 4 { v4 } else { v6 } as usize;
            for (i, &b) in a.iter().enumerate() {
                let keep = bits.saturating_sub(i * 8).min(8);
                let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
                h.byte(b & mask);
            }
        }
        HashKey::Identity => h.bytes(rec.identity.unwrap_or_default()),
        HashKey::Qname => {
            if let Some(Ok(m)) = &rec.dns {
                if let Some(q) = &m.question {
                    q.name.for_each_label(|l| {
                        h.byte(l.len() as u8);
                        for &b in l {
                            h.byte(b.to_ascii_lowercase());
                        }
                    });
                }
            }
        }
    }
    h.0
}

/// A 64-bit mix (splitmix64's finalizer).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Rendezvous: the healthy collector with the highest score for `key` (among all of them
/// when none is healthy, so that the buffers fill and the overflow policy acts).
pub(crate) fn pick(key: u64, healthy: &[AtomicBool]) -> usize {
    let score = |i: usize| mix(key ^ mix(i as u64 + 1));
    let best = (0..healthy.len())
        .filter(|&i| healthy[i].load(Ordering::Relaxed))
        .max_by_key(|&i| score(i));
    best.unwrap_or_else(|| (0..healthy.len()).max_by_key(|&i| score(i)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_a_collector_moves_only_its_keys_and_prefixes_group() {
        let h: Vec<AtomicBool> = (0..4).map(|_| AtomicBool::new(true)).collect();
        let before: Vec<usize> = (0..1000u64).map(|k| pick(mix(k), &h)).collect();
        for c in 0..4 {
            let n = before.iter().filter(|&&x| x == c).count();
            assert!((150..350).contains(&n), "collector {c}: {n} of 1000");
        }
        h[2].store(false, Ordering::Relaxed);
        for (k, &b) in before.iter().enumerate() {
            let now = pick(mix(k as u64), &h);
            if b != 2 {
                assert_eq!(now, b, "key {k} moved");
            } else {
                assert_ne!(now, 2);
            }
        }
        let r = |a: &'static [u8]| Record {
            query_address: Some(a),
            ..Record::default()
        };
        let k = HashKey::ClientPrefix { v4: 24, v6: 56 };
        assert_eq!(
            key_hash(k, &r(&[10, 0, 1, 7])),
            key_hash(k, &r(&[10, 0, 1, 200]))
        );
        assert_ne!(
            key_hash(k, &r(&[10, 0, 2, 7])),
            key_hash(k, &r(&[10, 0, 1, 7]))
        );
        assert_ne!(
            key_hash(HashKey::ClientIp, &r(&[10, 0, 1, 7])),
            key_hash(HashKey::ClientIp, &r(&[10, 0, 1, 200]))
        );
    }
}
