//! RFC 6962 / RFC 9162 hashing: leaves, interior nodes, the running chain hash, and a
//! streaming Merkle root (constant memory: one subtree root per set bit of the size).

use crate::crypto::sha256;
use ring::digest::{Context, SHA256};

pub type Hash = [u8; 32];

pub fn leaf_hash(canonical_event: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0x00]);
    c.update(canonical_event);
    finish(c)
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0x01]);
    c.update(left);
    c.update(right);
    finish(c)
}

/// `chain_hash = SHA-256(prev_chain_hash ‖ leaf_hash)`; index 0 chains from 32 zero bytes.
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(prev);
    c.update(leaf);
    finish(c)
}

pub fn empty_root() -> Hash {
    sha256(b"")
}

fn finish(c: Context) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// Builds the root of a growing tree leaf by leaf, in O(log n) memory.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    /// Roots of perfect subtrees, largest first, with their sizes (powers of two).
    stack: Vec<(u64, Hash)>,
    size: u64,
}

impl RootBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(sz, h)) = self.stack.last() {
            if sz != node.0 {
                break;
            }
            self.stack.pop();
            node = (sz * 2, node_hash(&h, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// RFC 6962 MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// RFC 6962 MTH computed recursively (reference implementation for tests and proofs).
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
pub fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        // Certificate Transparency test vectors (RFC 6962 reference tree of 8 leaves).
        let leaves: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            vec![
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        let mut b = RootBuilder::new();
        for (i, h) in hashes.iter().enumerate() {
            b.push(*h);
            assert_eq!(hex::encode(b.root()), roots[i], "size {}", i + 1);
            assert_eq!(hex::encode(mth(&hashes[..=i])), roots[i]);
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    proptest! {
        #[test]
        fn streaming_root_equals_recursive_root(n in 0usize..200) {
            let hashes: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut b = RootBuilder::new();
            for h in &hashes { b.push(*h); }
            prop_assert_eq!(b.root(), mth(&hashes));
        }
    }
}
