//! The `user-privacy` transform: client addresses truncated to a prefix and/or replaced by
//! a keyed pseudonym, and the qname cut down to its registered domain, in every place a
//! record shows them: `query_address`, `response_address`, an RPZ policy's `CLIENT_IP`
//! value, and the EDNS Client Subnet option of both DNS messages (in the message copies
//! of [`Enrichment`], so every format, Kafka key and forwarded line sees the changed
//! values; see docs/transforms.md for what this does and does not protect).
//!
//! Pseudonyms:
//! - `crypto-pan` ([`CryptoPan`]): prefix-preserving, a permutation of each family.
//! - `hmac-sha256`: HMAC-SHA256(key, address bytes), its first 4 (IPv4) or 16 (IPv6)
//!   bytes taken as an address of the same family. Not prefix-preserving, not a
//!   permutation (two addresses may share a pseudonym, with probability 2^-32 per IPv4
//!   pair).
//!
//! An address is pseudonymized first, then truncated (with Crypto-PAn, the truncated
//! pseudonym of an address is the pseudonym of its prefix, truncated). A Client Subnet
//! address is the prefix the client sent, zero-padded: it is mapped like an address and
//! cut back to its own source prefix length, so with Crypto-PAn it equals the client's
//! pseudonym cut to that length.
//!
//! Knows records, DNS messages and the keyed functions; nothing of files or configuration
//! (the key arrives as bytes).
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cryptopan::CryptoPan;
use super::normalize::SuffixList;
use super::rewrite;
use super::Verdict;
use crate::record::{Addr, Enrichment, Record};

/// `Policy.Match` value of an RPZ rule that matched the client's address.
const POLICY_MATCH_CLIENT_IP: u32 = 2;

/// A keyed pseudonym function for addresses.
pub enum Pseudonym {
    /// Boxed: its AES key schedule is ~700 bytes.
    CryptoPan(Box<CryptoPan>),
    /// The MAC keyed once (its inner and outer pads absorbed), cloned per address.
    HmacSha256(Hmac<Sha256>),
}

impl std::fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self {
            Pseudonym::CryptoPan(_) => f.write_str("Pseudonym::CryptoPan"),
            Pseudonym::HmacSha256(_) => f.write_str("Pseudonym::HmacSha256"),
        }
    }
}

impl Pseudonym {
    /// HMAC-SHA256 keyed with `key` (any length; the configuration asks for 32 bytes).
    pub fn hmac_sha256(key: &[u8]) -> Pseudonym {
        // HMAC takes keys of every length: the error cannot happen.
        match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(mac) => Pseudonym::HmacSha256(mac),
            Err(_) => unreachable_mac(),
        }
    }

    /// Replaces a 4- or 16-byte address by its pseudonym, in place.
    pub fn apply(&self, a: &mut [u8]) {
        match self {
            Pseudonym::CryptoPan(c) => c.apply(a),
            Pseudonym::HmacSha256(mac) => {
                if a.len() != 4 && a.len() != 16 {
                    return;
                }
                let mut m = mac.clone();
                m.update(a);
                let out = m.finalize().into_bytes();
                for (d, s) in a.iter_mut().zip(out.iter()) {
                    *d = *s;
                }
            }
        }
    }
}

#[cold]
fn unreachable_mac() -> Pseudonym {
    // `Hmac::new_from_slice` accepts any key length (RFC 2104 hashes long keys).
    #[allow(clippy::panic, reason = "HMAC accepts every key length")]
    {
        panic!("HMAC refused a key")
    }
}

/// Shards of [`PseudonymCache`] (a power of two).
const CACHE_SHARDS: usize = 16;
/// Entries per shard (a power of two): 16 x 1024 = 16 384 addresses, 600 KiB.
const CACHE_SLOTS: usize = 1024;

/// One remembered pseudonym: `len` 0 is an empty slot.
#[derive(Clone, Copy, Default)]
struct Slot {
    len: u8,
    from: [u8; 16],
    to: [u8; 16],
}

/// The most recent pseudonyms, direct-mapped by address (a new address takes its slot
/// from the old one): DNS traffic repeats its clients and its servers, and a Crypto-PAn
/// IPv4 pseudonym costs 32 AES blocks (128 for IPv6). Sharded mutexes, as the step is
/// shared by every writer thread; a lock is held for one slot copy.
pub struct PseudonymCache {
    /// `CACHE_SHARDS` shards (boxed: 600 KiB).
    shards: Box<[Mutex<[Slot; CACHE_SLOTS]>]>,
}

impl Default for PseudonymCache {
    fn default() -> Self {
        PseudonymCache {
            shards: (0..CACHE_SHARDS)
                .map(|_| Mutex::new([Slot::default(); CACHE_SLOTS]))
                .collect(),
        }
    }
}

impl std::fmt::Debug for PseudonymCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymCache")
    }
}

impl PseudonymCache {
    /// `a` replaced by `p`'s pseudonym, from the cache when it holds it.
    fn apply(&self, p: &Pseudonym, a: &mut [u8]) {
        let len = a.len();
        if len != 4 && len != 16 {
            return;
        }
        // PERF: the address as one 128-bit number, folded and multiplied once (a byte-wise
        // FNV-1a over an IPv6 address was a chain of 16 dependent multiplies).
        // (PERF: read as one word of its length, not copied into a zeroed one: a memcpy
        // call and a store-forwarding stall.)
        let w = match <[u8; 4]>::try_from(&*a) {
            Ok(v4) => u128::from(u32::from_le_bytes(v4)),
            Err(_) => <[u8; 16]>::try_from(&*a).map_or(0, u128::from_le_bytes),
        };
        let x = w ^ (len as u128);
        let h =
            ((x as u64) ^ ((x >> 64) as u64).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = (h >> 32) as usize;
        let Some(shard) = self.shards.get(h % CACHE_SHARDS) else {
            p.apply(a);
            return;
        };
        let i = (h / CACHE_SHARDS) % CACHE_SLOTS;
        if let Ok(slots) = shard.lock() {
            if let Some(s) = slots.get(i) {
                if s.len as usize == len && s.from.get(..len) == Some(&*a) {
                    if let Some(to) = s.to.get(..len) {
                        a.copy_from_slice(to);
                        return;
                    }
                }
            }
        }
        let mut slot = Slot {
            len: len as u8,
            ..Slot::default()
        };
        if let Some(f) = slot.from.get_mut(..len) {
            f.copy_from_slice(a);
        }
        p.apply(a);
        if let Some(t) = slot.to.get_mut(..len) {
            t.copy_from_slice(a);
        }
        if let Ok(mut slots) = shard.lock() {
            if let Some(s) = slots.get_mut(i) {
                *s = slot;
            }
        }
    }
}

/// The `user-privacy` transform, compiled.
#[derive(Debug, Default)]
pub struct UserPrivacy {
    /// `anonymize-ip`: bits kept of IPv4 and IPv6 addresses.
    pub truncate: Option<(u8, u8)>,
    pub pseudonym: Option<Pseudonym>,
    /// `minimize-qname`: the list that finds the registered domain.
    pub minimize: Option<Arc<SuffixList>>,
    /// Recent pseudonyms of `pseudonym`.
    pub cache: PseudonymCache,
}

impl UserPrivacy {
    pub fn is_noop(&self) -> bool {
        self.truncate.is_none() && self.pseudonym.is_none() && self.minimize.is_none()
    }

    fn maps_addresses(&self) -> bool {
        self.truncate.is_some() || self.pseudonym.is_some()
    }

    /// Pseudonymizes, then truncates, one address of 4 or 16 bytes in place.
    pub fn map_address(&self, a: &mut [u8]) {
        if let Some(p) = &self.pseudonym {
            // PERF: benches/transform.rs `privacy/crypto-pan` (a lab capture: a few
            // addresses, all hits) against `privacy/crypto-pan-uncached`.
            self.cache.apply(p, a);
        }
        if let Some((v4, v6)) = self.truncate {
            match a.len() {
                4 => keep_bits(a, v4.into()),
                16 => keep_bits(a, v6.into()),
                _ => {}
            }
        }
    }

    /// Maps a Client Subnet address (`len` bytes of the family's address, the rest
    /// implied zero) and clears every bit past its source prefix.
    fn map_ecs(&self, family: u16, source_prefix: u8, a: &mut [u8]) {
        let full = match family {
            1 => 4,
            2 => 16,
            _ => {
                // An unknown family cannot be mapped: show none of it.
                a.fill(0);
                return;
            }
        };
        if a.len() > full {
            a.fill(0);
            return;
        }
        let mut buf = [0u8; 16];
        let Some(addr) = buf.get_mut(..full) else {
            return;
        };
        for (d, s) in addr.iter_mut().zip(a.iter()) {
            *d = *s;
        }
        self.map_address(addr);
        keep_bits(addr, source_prefix.into());
        for (d, s) in a.iter_mut().zip(addr.iter()) {
            *d = *s;
        }
    }

    #[inline]
    pub fn apply(&self, rec: &Record<'_>, en: &mut Enrichment) -> Verdict {
        if let Some(list) = &self.minimize {
            rewrite::minimize(rec, en, |name| {
                let s = list.suffix_labels(name);
                name.len().saturating_sub(s + 1)
            });
        }
        if self.maps_addresses() {
            en.query_address = self.mapped(en.query_address, rec.query_address);
            en.response_address = self.mapped(en.response_address, rec.response_address);
            if let Some(p) = &rec.policy {
                if p.matched == Some(POLICY_MATCH_CLIENT_IP) {
                    en.policy_address = self.mapped(en.policy_address, p.value);
                }
            }
            rewrite::map_ecs(rec, en, |family, source, a| self.map_ecs(family, source, a));
        }
        Verdict::Keep
    }

    /// The mapped form of an address as the steps so far left it (`current`, else the
    /// decoded one). An address of another length than 4 or 16 becomes empty (shown `0x`):
    /// it cannot be mapped, and must not be shown.
    fn mapped(&self, current: Option<Addr>, decoded: Option<&[u8]>) -> Option<Addr> {
        let mut a = match current {
            Some(a) => a,
            None => Addr::from_slice(decoded?).unwrap_or_default(),
        };
        self.map_address(a.as_mut_slice());
        Some(a)
    }
}

/// Clears every bit of `a` after the first `bits`.
fn keep_bits(a: &mut [u8], bits: usize) {
    for (i, b) in a.iter_mut().enumerate() {
        let first = i * 8;
        if bits <= first {
            *b = 0;
        } else if bits < first + 8 {
            *b &= 0xffu8 << (8 - (bits - first));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_prefix() {
        let p = UserPrivacy {
            truncate: Some((24, 56)),
            ..UserPrivacy::default()
        };
        let mut a = [192, 0, 2, 77];
        p.map_address(&mut a);
        assert_eq!(a, [192, 0, 2, 0]);
        let mut b = [
            0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 9, 9, 9, 9, 9, 9, 9, 9,
        ];
        p.map_address(&mut b);
        assert_eq!(
            b,
            [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let mut c = [255u8; 4];
        keep_bits(&mut c, 13);
        assert_eq!(c, [255, 0xf8, 0, 0]);
    }

    #[test]
    fn ecs_with_crypto_pan_is_the_clients_pseudonym_cut_to_its_prefix() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let p = UserPrivacy {
            pseudonym: Some(Pseudonym::CryptoPan(Box::new(CryptoPan::new(&key)))),
            ..UserPrivacy::default()
        };
        let mut client = [198, 51, 100, 23];
        let mut ecs = [198, 51, 100];
        p.map_address(&mut client);
        p.map_ecs(1, 24, &mut ecs);
        assert_eq!(ecs, client[..3]);
        let mut odd = [10, 9, 8, 7, 6];
        p.map_ecs(1, 32, &mut odd);
        assert_eq!(odd, [0; 5]);
    }

    #[test]
    fn the_cache_gives_what_the_function_gives() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 3) as u8);
        let p = UserPrivacy {
            pseudonym: Some(Pseudonym::CryptoPan(Box::new(CryptoPan::new(&key)))),
            ..UserPrivacy::default()
        };
        let direct = CryptoPan::new(&key);
        // More addresses than slots, each twice: misses, hits and evictions.
        for round in 0..2 {
            for i in 0..6000u32 {
                let v4 = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
                let mut a = v4;
                p.map_address(&mut a);
                assert_eq!(a, direct.ipv4(v4), "round {round}, {i}");
                let mut v6 = [0u8; 16];
                v6[12..].copy_from_slice(&v4);
                let mut b = v6;
                p.map_address(&mut b);
                assert_eq!(b, direct.ipv6(v6), "round {round}, {i}");
            }
        }
    }

    #[test]
    fn hmac_pseudonyms_keep_the_family_and_depend_on_the_key() {
        let a = Pseudonym::hmac_sha256(&[1; 32]);
        let b = Pseudonym::hmac_sha256(&[2; 32]);
        let (mut x, mut y) = ([192, 0, 2, 1], [192, 0, 2, 1]);
        a.apply(&mut x);
        b.apply(&mut y);
        assert_ne!(x, y);
        assert_ne!(x, [192, 0, 2, 1]);
        let mut v6 = [0x20u8; 16];
        a.apply(&mut v6);
        assert_ne!(v6, [0x20; 16]);
    }
}
