//! A tiny deterministic random number generator (SplitMix64) and a stable string hash.
//!
//! Every generated value is a pure function of `(seed, table, key, variant, column)`, so a row can be
//! regenerated at any time instead of being stored: a tenant of millions of rows costs a few bytes
//! per changed row, not the rows themselves. Both functions are fixed here (not `std`'s hashers,
//! whose output may change between Rust releases) so a seed means the same data everywhere.

/// SplitMix64: fast, tiny, good enough statistical quality for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream is determined by `parts`, in order.
    pub fn from_parts(parts: &[u64]) -> Rng {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for &p in parts {
            state = mix(state ^ p);
        }
        Rng(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for test data and free of division.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.wrapping_sub(lo) as u64;
        if span == u64::MAX {
            return self.next_u64() as i64;
        }
        lo.wrapping_add(self.below(span + 1) as i64)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit: a stable hash of names (tables, columns, tenants).
pub fn hash_str(s: &str) -> u64 {
    fnv1a(FNV_OFFSET, s.as_bytes())
}

pub const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// Continues an FNV-1a hash over `bytes`. For equal-length inputs a single differing byte always
/// changes the result, which is what a row checksum needs.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_same_stream_different_parts_different_stream() {
        let mut a = Rng::from_parts(&[1, 2, 3]);
        let mut b = Rng::from_parts(&[1, 2, 3]);
        let mut c = Rng::from_parts(&[1, 2, 4]);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut r = Rng::from_parts(&[42]);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let v = r.range_i64(-3, 3);
            assert!((-3..=3).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(r.below(0), 0);
        // The full i64 range must not overflow.
        let _ = r.range_i64(i64::MIN, i64::MAX);
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: changing it would change every seed's data.
        assert_eq!(hash_str(""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(hash_str("a"), 0xAF63_DC4C_8601_EC8C);
        assert_ne!(hash_str("contact"), hash_str("person"));
    }
}
