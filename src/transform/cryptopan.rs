//! Crypto-PAn (Xu, Fan, Ammar, Moon, "Prefix-Preserving IP Address Anonymization", ICNP
//! 2002): a keyed permutation of IPv4 and IPv6 addresses that keeps shared prefixes. Two
//! addresses whose first `n` bits are equal map to two addresses whose first `n` bits are
//! equal, and no more: subnets stay analysable while the addresses are hidden.
//!
//! The 32-byte key is split: the first 16 bytes key AES-128, the last 16 are encrypted
//! once with it into the 128-bit `pad`. Bit `i` (from the most significant) of the result
//! is bit `i` of the address flipped by the first bit of AES(`prefix_i` ‖ `pad` bits after
//! `i`), where `prefix_i` is the address's first `i` bits. An IPv4 address is the top 32
//! bits of the 128-bit block (as the reference implementation and the `yacryptopan`
//! package do, which tests/privacy.rs holds this one to).
//!
//! ```text
//!  block_i = | address bits 0..i | pad bits i..128 |   ─► AES ─► first bit = flip_i
//!  result  = address XOR (flip_0 flip_1 ... flip_{n-1})
//! ```
//!
//! Knows addresses as bytes and the `aes` crate; nothing of records or configuration.
#![forbid(unsafe_code)]

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// Length of a Crypto-PAn key in bytes (AES-128 key, then the pad's plaintext).
pub const KEY_LEN: usize = 32;

/// A keyed Crypto-PAn permutation, read through `&self` by every writer thread.
#[derive(Clone)]
pub struct CryptoPan {
    cipher: Aes128,
    /// AES(key[16..32]) as a big-endian 128-bit number.
    pad: u128,
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("CryptoPan { .. }")
    }
}

impl CryptoPan {
    pub fn new(key: &[u8; KEY_LEN]) -> CryptoPan {
        let (aes_key, pad_plain) = key.split_at(16);
        let cipher = Aes128::new(GenericArray::from_slice(aes_key));
        let mut pad = GenericArray::clone_from_slice(pad_plain);
        cipher.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        CryptoPan {
            cipher,
            pad: u128::from_be_bytes(p),
        }
    }

    /// Maps an IPv4 address.
    pub fn ipv4(&self, a: [u8; 4]) -> [u8; 4] {
        let x = u128::from(u32::from_be_bytes(a)) << 96;
        let flips = self.flips::<32>(x);
        (u32::from_be_bytes(a) ^ (flips >> 96) as u32).to_be_bytes()
    }

    /// Maps an IPv6 address.
    pub fn ipv6(&self, a: [u8; 16]) -> [u8; 16] {
        let x = u128::from_be_bytes(a);
        (x ^ self.flips::<128>(x)).to_be_bytes()
    }

    /// Maps a 4- or 16-byte address in place (other lengths are left alone).
    pub fn apply(&self, a: &mut [u8]) {
        if let Ok(v4) = <[u8; 4]>::try_from(&*a) {
            a.copy_from_slice(&self.ipv4(v4));
        } else if let Ok(v6) = <[u8; 16]>::try_from(&*a) {
            a.copy_from_slice(&self.ipv6(v6));
        }
    }

    /// The flip bits for the first `N` bit positions of `x` (the address in the top bits
    /// of a 128-bit number), as a 128-bit mask aligned like `x`.
    #[inline]
    fn flips<const N: usize>(&self, x: u128) -> u128 {
        // PERF: the N blocks depend only on the address, not on each other, so they are
        // encrypted in one `encrypt_blocks` call, which pipelines AES-NI over 8 blocks at
        // a time (benches/transform.rs `privacy/crypto-pan`: ~4x faster than N
        // `encrypt_block` calls in a row).
        let mut blocks = [GenericArray::default(); N];
        for (i, b) in blocks.iter_mut().enumerate() {
            // Bits 0..i of the address, bits i.. of the pad.
            let keep = if i == 0 { 0 } else { !0u128 << (128 - i) };
            let input = (x & keep) | (self.pad & !keep);
            b.copy_from_slice(&input.to_be_bytes());
        }
        self.cipher.encrypt_blocks(&mut blocks);
        let mut flips = 0u128;
        for (i, b) in blocks.iter().enumerate() {
            flips |= u128::from(b[0] >> 7) << (127 - i);
        }
        flips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_key() -> [u8; KEY_LEN] {
        std::array::from_fn(|i| i as u8)
    }

    /// The vectors `yacryptopan` prints for the key 0, 1, ..., 31 (its `__main__`).
    #[test]
    fn matches_published_vectors() {
        let c = CryptoPan::new(&reference_key());
        assert_eq!(c.ipv4([192, 0, 2, 1]), [2, 90, 93, 17]);
        let a: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let want: std::net::Ipv6Addr = "dd92:2c44:3fc0:ff1e:7ff9:c7f0:8180:7e00".parse().unwrap();
        assert_eq!(c.ipv6(a.octets()), want.octets());
    }

    #[test]
    fn shared_prefix_length_is_kept() {
        let c = CryptoPan::new(&reference_key());
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..2000 {
            let a = next() as u32;
            // b shares a random number of leading bits with a.
            let k = (next() % 33) as u32;
            let b = if k == 32 {
                a
            } else {
                (a & !(u32::MAX >> k))
                    | ((!a) & (1 << (31 - k)))
                    | (next() as u32 & (u32::MAX >> k >> 1))
            };
            let shared = (a ^ b).leading_zeros();
            let (x, y) = (
                u32::from_be_bytes(c.ipv4(a.to_be_bytes())),
                u32::from_be_bytes(c.ipv4(b.to_be_bytes())),
            );
            assert_eq!((x ^ y).leading_zeros(), shared, "{a:08x} {b:08x}");
        }
    }
}
