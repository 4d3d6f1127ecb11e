//! The stable 64-bit hash used for affinity keys and hash-ring points.
//!
//! Both load balancer nodes of a pair must send the same key to the same backend, before and
//! after a failover and across upgrades, so this hash is part of the wire contract: it must
//! give the same value on every run, every platform and every version. That rules out
//! `std::collections::hash_map::DefaultHasher` (randomly keyed, and its algorithm may change).
//!
//! The function is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over
//! the bytes, followed by the MurmurHash3 `fmix64` finaliser. FNV-1a is simple and fast on
//! the short keys we hash (client addresses, cookies, `"10.0.0.11:8080-17"` ring points), but
//! its high bits mix poorly when keys differ only in their last byte; the finaliser spreads
//! every input bit over the whole output, which keeps ring points evenly spaced.
//!
//! Changing anything here moves every hashed session: the known-answer tests below pin it.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes `bytes` to 64 bits, identically on every node, platform and version.
pub fn hash64(bytes: &[u8]) -> u64 {
    fmix64(fnv1a64(bytes))
}

/// FNV-1a, 64-bit variant.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// MurmurHash3's 64-bit finaliser: a bijection in which each input bit affects every output bit.
pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_matches_murmur3() {
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn hash64_values_are_pinned_across_versions() {
        // If this fails, every consistent-hash session in a running cluster would move.
        // Expected values computed independently (Python) from the definition above.
        assert_eq!(hash64(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash64(b"10.0.0.11:8080-0"), 0xa203_b196_dec7_d502);
        assert_eq!(hash64(b"session=abc123"), 0x91f1_0b40_154f_9101);
    }

    #[test]
    fn keys_differing_in_one_byte_differ_in_about_half_the_bits() {
        let mut total_flipped = 0;
        for i in 0..1000u32 {
            let a = hash64(format!("key-{i}").as_bytes());
            let b = hash64(format!("key-{}", i + 1).as_bytes());
            total_flipped += (a ^ b).count_ones();
        }
        let mean = f64::from(total_flipped) / 1000.0;
        assert!((28.0..36.0).contains(&mean), "mean flipped bits {mean}");
    }
}
