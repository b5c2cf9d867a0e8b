//! Which worker of a group owns which partition: a pure function of the partition count and the
//! live member ids, so every worker that sees the same members computes the same split.
//!
//! Plain rendezvous hashing (each partition to the member of highest weight) moves few partitions
//! when members come and go, but is uneven at the small counts deployments run (6 partitions over
//! 3 workers often gives 4/1/1). So the weights only rank; ownership is balanced by capacity:
//!
//! 1. every (partition, member) pair gets the weight `mix(fnv1a(member id bytes ‖ partition as
//!    two big-endian bytes))` — FNV-1a 64 as in [`mirror_common::partition`], then the
//!    MurmurHash3 64-bit finaliser so the last bytes reach every bit;
//! 2. pairs are visited from the heaviest down (ties by member id, then partition), and a pair is
//!    taken when its partition has no owner yet and its member holds fewer than ⌊N/M⌋;
//! 3. a second visit does the same with room for one more each, which places the N mod M left.
//!
//! Every partition gets exactly one owner and every member ⌊N/M⌋ or ⌈N/M⌉. A partition stays with
//! its member unless a heavier pair claims the place, so a joining or leaving member moves its own
//! share plus, because capacities shrink or grow with it, a few more: on average about a third of
//! a share over random member ids, at most a few shares (the property tests below bound it).

use std::collections::BTreeSet;

use mirror_common::partition::stable_hash;
use uuid::Uuid;

/// The owner of every partition (index = partition) when `members` share `partitions`; empty
/// when there are no members. The order of `members` and any duplicates do not matter.
pub(crate) fn assign(partitions: u16, members: &[Uuid]) -> Vec<Uuid> {
    let mut members = members.to_vec();
    members.sort_unstable();
    members.dedup();
    if members.is_empty() {
        return Vec::new();
    }
    let n = usize::from(partitions);
    let mut pairs: Vec<(u64, usize, u16)> = members
        .iter()
        .enumerate()
        .flat_map(|(m, member)| (0..partitions).map(move |p| (weight(member, p), m, p)))
        .collect();
    // Heaviest first; members are sorted, so the index breaks ties by member id.
    pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let base = n / members.len();
    let mut owner: Vec<Option<usize>> = vec![None; n];
    let mut load = vec![0usize; members.len()];
    for capacity in [base, base + 1] {
        for &(_, m, p) in &pairs {
            let slot = &mut owner[usize::from(p)];
            if slot.is_none() && load[m] < capacity {
                *slot = Some(m);
                load[m] += 1;
            }
        }
    }
    // The second visit leaves no partition without an owner (N mod M < M places of one more).
    owner
        .into_iter()
        .map(|m| members[m.unwrap_or_default()])
        .collect()
}

/// The partitions `member` owns when `members` share `partitions`.
pub(crate) fn owned(partitions: u16, members: &[Uuid], member: Uuid) -> BTreeSet<u16> {
    assign(partitions, members)
        .into_iter()
        .zip(0..partitions)
        .filter(|(owner, _)| *owner == member)
        .map(|(_, partition)| partition)
        .collect()
}

/// The rendezvous weight of `member` for `partition`.
fn weight(member: &Uuid, partition: u16) -> u64 {
    let mut bytes = [0u8; 18];
    bytes[..16].copy_from_slice(member.as_bytes());
    bytes[16..].copy_from_slice(&partition.to_be_bytes());
    mix(stable_hash(&bytes))
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(seeds: &[u128]) -> Vec<Uuid> {
        seeds.iter().map(|&s| Uuid::from_u128(s)).collect()
    }

    fn loads(partitions: u16, members: &[Uuid]) -> Vec<usize> {
        let owners = assign(partitions, members);
        members
            .iter()
            .map(|m| owners.iter().filter(|o| *o == m).count())
            .collect()
    }

    fn moved(before: &[Uuid], after: &[Uuid]) -> usize {
        before.iter().zip(after).filter(|(a, b)| a != b).count()
    }

    #[test]
    fn the_weight_is_a_documented_stable_value() {
        // mix(fnv1a(16 zero bytes ‖ 00 07)), computed by hand from the published algorithms.
        let expected = mix(stable_hash(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
        ]));
        assert_eq!(weight(&Uuid::nil(), 7), expected);
        assert_eq!(mix(0), 0);
        assert_eq!(mix(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn one_member_owns_everything() {
        let me = Uuid::new_v4();
        assert_eq!(owned(6, &[me], me), (0..6).collect());
        assert!(owned(6, &[me], Uuid::new_v4()).is_empty());
        assert!(assign(6, &[]).is_empty());
    }

    #[test]
    fn six_partitions_split_two_each_over_three() {
        let m = members(&[11, 22, 33]);
        assert_eq!(loads(6, &m), vec![2, 2, 2]);
        let split: Vec<BTreeSet<u16>> = m.iter().map(|&me| owned(6, &m, me)).collect();
        let all: BTreeSet<u16> = split.iter().flatten().copied().collect();
        assert_eq!(all, (0..6).collect());
    }

    #[test]
    fn more_members_than_partitions_leaves_some_idle() {
        let m = members(&[1, 2, 3, 4, 5]);
        let mut l = loads(3, &m);
        l.sort_unstable();
        assert_eq!(l, vec![0, 0, 1, 1, 1]);
    }

    #[test]
    fn a_joining_member_moves_under_one_extra_share_on_average() {
        // 200 groups of 3 fixed ids joined by a 4th, over 32 partitions (share 8).
        let id =
            |i: u128| Uuid::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        let extra: usize = (0..200u128)
            .map(|g| {
                let all: Vec<Uuid> = (0..4).map(|i| id(g * 4 + i)).collect();
                let (old, new) = (assign(32, &all[..3]), assign(32, &all));
                let taken = new.iter().filter(|o| **o == all[3]).count();
                moved(&old, &new) - taken
            })
            .sum();
        assert!(extra < 200 * 8, "{extra} extra moves in 200 joins");
    }

    proptest! {
        #[test]
        fn every_partition_has_one_owner_and_loads_differ_by_at_most_one(
            partitions in 1u16..64,
            seeds in proptest::collection::btree_set(any::<u128>(), 1..12),
        ) {
            let m = members(&seeds.into_iter().collect::<Vec<_>>());
            let owners = assign(partitions, &m);
            prop_assert_eq!(owners.len(), usize::from(partitions));
            prop_assert!(owners.iter().all(|o| m.contains(o)));
            let l = loads(partitions, &m);
            prop_assert_eq!(l.iter().sum::<usize>(), usize::from(partitions));
            let (min, max) = (*l.iter().min().unwrap(), *l.iter().max().unwrap());
            prop_assert!(max - min <= 1, "{:?}", l);
            // Every member computes the same split whatever order it lists the members in.
            let mut reversed = m.clone();
            reversed.reverse();
            prop_assert_eq!(assign(partitions, &reversed), owners);
        }

        #[test]
        fn a_joining_member_moves_little_more_than_its_share(
            partitions in 1u16..64,
            seeds in proptest::collection::btree_set(any::<u128>(), 2..10),
        ) {
            let all = members(&seeds.into_iter().collect::<Vec<_>>());
            let (newcomer, before) = all.split_last().unwrap();
            let old = assign(partitions, before);
            let new = assign(partitions, &all);
            let share = usize::from(partitions).div_ceil(all.len());
            let taken = new.iter().filter(|o| *o == newcomer).count();
            // The newcomer's partitions move to it; rebalancing the capacities moves a few more.
            prop_assert!(
                moved(&old, &new) <= taken + 4 * share,
                "{} moved, {} taken, share {}", moved(&old, &new), taken, share
            );
        }

        #[test]
        fn a_leaving_member_moves_little_more_than_its_share(
            partitions in 1u16..64,
            seeds in proptest::collection::btree_set(any::<u128>(), 2..10),
        ) {
            let all = members(&seeds.into_iter().collect::<Vec<_>>());
            let (leaver, after) = all.split_last().unwrap();
            let old = assign(partitions, &all);
            let new = assign(partitions, after);
            let share = usize::from(partitions).div_ceil(after.len());
            let orphaned = old.iter().filter(|o| *o == leaver).count();
            prop_assert!(
                moved(&old, &new) <= orphaned + 4 * share,
                "{} moved, {} orphaned, share {}", moved(&old, &new), orphaned, share
            );
        }
    }
}
