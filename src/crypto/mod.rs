//! Cryptography: the key hierarchy, AEAD sealing, random tokens, keyed hashes.
//! Every primitive comes from `ring`; this module only composes them.

pub mod aead;
pub mod envelope;
pub mod keyring;
pub mod password;
pub mod tokens;
pub mod totp;

pub use aead::{Aad, DataKey, open, seal};
pub use keyring::{Keyring, MasterKey, Purpose};

/// SHA-256 of some bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("decryption failed")]
    Open,
    #[error("unknown key version")]
    UnknownKeyVersion,
    #[error("random generator failure")]
    Random,
    #[error("malformed key material")]
    Malformed,
}
