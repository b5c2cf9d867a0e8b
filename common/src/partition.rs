//! Which partition queue a tenant's messages go through.
//!
//! The hash is FNV-1a 64 over the UTF-8 bytes of the context id, taken modulo the partition count.
//! It is part of the deployment contract: every receiver and worker must compute the same value,
//! forever, so it never depends on a library's hashing choices or on the process.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The partition (0-based) of a tenant, for `partitions` > 0 partitions.
pub fn partition_of(context_id: &str, partitions: u16) -> u16 {
    let n = u64::from(partitions.max(1));
    // The remainder is below `partitions`, so it fits.
    (stable_hash(context_id.as_bytes()) % n) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(partition_of("Cust24709", 32), partition_of("Cust24709", 32));
        for i in 0..1000 {
            assert!(partition_of(&format!("Cust{i}"), 7) < 7);
        }
        assert_eq!(partition_of("anything", 1), 0);
    }

    #[test]
    fn spreads_tenants_evenly() {
        let mut counts = [0u32; 32];
        for i in 0..32_000 {
            counts[usize::from(partition_of(&format!("Cust{i}"), 32))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
