//! RFC 9162 §2.1.3 inclusion proofs and §2.1.4 consistency proofs: generation and
//! verification.
//!
//! Generation is split in two: which subtrees a proof needs (pure index arithmetic, as
//! ranges of leaf indexes) and the hashes of those subtrees, computed by streaming the leaf
//! hashes of each range through a [`RootBuilder`] — never the whole tree in memory. The
//! ranges of one proof are disjoint, so a proof reads each leaf at most once.

use std::ops::Range;

use super::merkle::{Hash, RootBuilder, largest_power_of_two_below, node_hash};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index or size out of range")]
    OutOfRange,
    #[error("the proof has the wrong length")]
    WrongLength,
    #[error("the recomputed root does not match")]
    RootMismatch,
}

/// The subtrees (as leaf ranges) whose hashes form the inclusion proof of leaf `m` in a tree
/// of `n` leaves, in proof order (RFC 9162 §2.1.3.1 `PATH(m, D[n])`).
pub fn inclusion_ranges(m: u64, n: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if m >= n {
        return Err(ProofError::OutOfRange);
    }
    let mut out = Vec::new();
    path(m, 0, n, &mut out);
    Ok(out)
}

fn path(m: u64, start: u64, end: u64, out: &mut Vec<Range<u64>>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(m, start, start + k, out);
        out.push(start + k..end);
    } else {
        path(m - k, start + k, end, out);
        out.push(start..start + k);
    }
}

/// The subtrees whose hashes form the consistency proof between trees of `m` and `n` leaves
/// (RFC 9162 §2.1.4.1 `PROOF(m, D[n])`); empty when `m == 0` or `m == n`.
pub fn consistency_ranges(m: u64, n: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if m > n {
        return Err(ProofError::OutOfRange);
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, 0, n, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: u64, start: u64, end: u64, b: bool, out: &mut Vec<Range<u64>>) {
    let n = end - start;
    if m == n {
        if !b {
            out.push(start..end);
        }
        return;
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(m, start, start + k, b, out);
        out.push(start + k..end);
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push(start..start + k);
    }
}

/// Hashes of the given ranges over leaves held in memory (tests, small trees).
pub fn hashes_in_memory(leaves: &[Hash], ranges: &[Range<u64>]) -> Vec<Hash> {
    ranges
        .iter()
        .map(|r| {
            let mut b = RootBuilder::new();
            for h in &leaves[r.start as usize..r.end as usize] {
                b.push(*h);
            }
            b.root()
        })
        .collect()
}

/// Inclusion proof over leaves held in memory.
pub fn inclusion_proof(leaves: &[Hash], m: u64) -> Result<Vec<Hash>, ProofError> {
    let ranges = inclusion_ranges(m, leaves.len() as u64)?;
    Ok(hashes_in_memory(leaves, &ranges))
}

/// Consistency proof over leaves held in memory (`leaves` is the newer tree).
pub fn consistency_proof(leaves: &[Hash], m: u64) -> Result<Vec<Hash>, ProofError> {
    let ranges = consistency_ranges(m, leaves.len() as u64)?;
    Ok(hashes_in_memory(leaves, &ranges))
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `size2` with `root2` extends the tree of
/// `size1` with `root1`. Trivial cases: equal sizes need equal roots and an empty proof; an
/// empty first tree is consistent with anything (empty proof).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::OutOfRange);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if size1 == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // Step 2: when size1 is a power of two, the old root itself starts the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *root1 && sr == *root2 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{leaf_hash, mth};
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The RFC 6962 reference tree (certificate-transparency / transparency-dev vectors).
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| leaf_hash(&hex::decode(s).unwrap()))
        .collect()
    }

    #[test]
    fn inclusion_vectors() {
        // (leaf index, tree size, proof) from transparency-dev/merkle proof/verify_test.go.
        let vectors: Vec<(u64, u64, Vec<&str>)> = vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                vec![
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = reference_leaves();
        for (m, n, expected) in vectors {
            let tree = &leaves[..n as usize];
            let proof = inclusion_proof(tree, m).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(proof, expected, "inclusion {m} in {n}");
            verify_inclusion(m, n, &leaves[m as usize], &proof, &mth(tree)).unwrap();
        }
    }

    #[test]
    fn consistency_vectors() {
        let vectors: Vec<(u64, u64, Vec<&str>)> = vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        let leaves = reference_leaves();
        for (m, n, expected) in vectors {
            let tree = &leaves[..n as usize];
            let proof = consistency_proof(tree, m).unwrap();
            let expected: Vec<Hash> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(proof, expected, "consistency {m} → {n}");
            verify_consistency(m, n, &mth(&leaves[..m as usize]), &mth(tree), &proof).unwrap();
        }
    }

    #[test]
    fn trivial_and_invalid_consistency_cases() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let empty = crate::audit::merkle::empty_root();
        assert!(verify_consistency(0, 0, &a, &a, &[]).is_ok());
        assert!(verify_consistency(0, 1, &a, &b, &[]).is_ok());
        assert!(verify_consistency(1, 1, &b, &b, &[]).is_ok());
        assert!(verify_consistency(0, 0, &a, &b, &[]).is_err());
        assert!(verify_consistency(1, 0, &a, &b, &[]).is_err());
        assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
        assert!(verify_consistency(0, 1, &empty, &empty, &[empty]).is_err());
        assert!(verify_consistency(1, 1, &empty, &empty, &[empty]).is_err());
        assert!(inclusion_ranges(3, 3).is_err());
        assert!(consistency_ranges(4, 3).is_err());
    }

    fn tree(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_every_alteration_fails(
            n in 1u64..300, m_seed in any::<u64>(), flip in any::<(usize, u8)>()
        ) {
            let leaves = tree(n);
            let m = m_seed % n;
            let root = mth(&leaves);
            let proof = inclusion_proof(&leaves, m).unwrap();
            prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &proof, &root).is_ok());
            // The ranges are disjoint and cover every leaf but m.
            let covered: u64 = inclusion_ranges(m, n).unwrap().iter().map(|r| r.end - r.start).sum();
            prop_assert_eq!(covered, n - 1);
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let i = flip.0 % bad.len();
                bad[i][(flip.1 % 32) as usize] ^= 1;
                prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &bad, &root).is_err());
                prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &proof[..proof.len() - 1], &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(root);
            prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &longer, &root).is_err());
            if n > 1 {
                let other = (m + 1) % n;
                prop_assert!(verify_inclusion(other, n, &leaves[m as usize], &proof, &root).is_err());
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_every_alteration_fails(
            n in 1u64..300, m_seed in any::<u64>(), flip in any::<(usize, u8)>()
        ) {
            let leaves = tree(n);
            let m = m_seed % (n + 1);
            let (r1, r2) = (mth(&leaves[..m as usize]), mth(&leaves));
            let proof = consistency_proof(&leaves, m).unwrap();
            prop_assert!(verify_consistency(m, n, &r1, &r2, &proof).is_ok());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let i = flip.0 % bad.len();
                bad[i][(flip.1 % 32) as usize] ^= 1;
                prop_assert!(verify_consistency(m, n, &r1, &r2, &bad).is_err());
                prop_assert!(verify_consistency(m, n, &r1, &r2, &proof[..proof.len() - 1]).is_err());
                prop_assert!(verify_consistency(m, n, &r2, &r1, &proof).is_err());
                let mut longer = proof.clone();
                longer.push(r1);
                prop_assert!(verify_consistency(m, n, &r1, &r2, &longer).is_err());
                // A different history of the same size is not consistent.
                let mut forged = leaves.clone();
                forged[0] = leaf_hash(b"forged");
                prop_assert!(verify_consistency(m, n, &mth(&forged[..m as usize]), &r2, &proof).is_err());
            }
        }
    }
}
