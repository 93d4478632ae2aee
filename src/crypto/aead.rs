//! AES-256-GCM sealing with associated data bound to the row, and data-key wrapping.
//!
//! Ciphertext format: `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The key version is
//! stored next to the ciphertext (a column) *and* bound into the associated data, so a
//! ciphertext moved to another row, field or key version fails to open.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad as RingAad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::CryptoError;
use super::keyring::PurposeKey;

/// What a ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub table: &'a str,
    pub row_id: &'a str,
    pub field: &'a str,
    pub key_version: u32,
}

impl Aad<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for part in [
            self.table.as_bytes(),
            self.row_id.as_bytes(),
            self.field.as_bytes(),
        ] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out
    }
}

/// A random 256-bit data key (DEK). Never stored in clear; zeroized on drop.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        super::tokens::fill_random(k.as_mut())?;
        Ok(Self(k))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps this key under a key-encryption key, bound to its owner row.
    pub fn wrap(
        &self,
        kek: &PurposeKey,
        table: &str,
        row_id: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        let aad = Aad {
            table,
            row_id,
            field: "data_key",
            key_version: kek.version,
        };
        seal(kek.bytes(), &aad, self.0.as_ref())
    }

    pub fn unwrap(
        wrapped: &[u8],
        kek: &PurposeKey,
        table: &str,
        row_id: &str,
    ) -> Result<Self, CryptoError> {
        let aad = Aad {
            table,
            row_id,
            field: "data_key",
            key_version: kek.version,
        };
        let plain = Zeroizing::new(open(kek.bytes(), &aad, wrapped)?);
        let arr: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        Ok(Self(Zeroizing::new(arr)))
    }
}

fn key(bytes: &[u8; 32]) -> Result<LessSafeKey, CryptoError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::Malformed)?,
    ))
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(key_bytes: &[u8; 32], aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = key(key_bytes)?;
    let mut nonce = [0u8; NONCE_LEN];
    super::tokens::fill_random(&mut nonce)?;
    let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    buf.extend_from_slice(&nonce);
    buf.extend_from_slice(plaintext);
    let mut body = buf.split_off(NONCE_LEN);
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        RingAad::from(aad.encode()),
        &mut body,
    )
    .map_err(|_| CryptoError::Open)?;
    buf.extend_from_slice(&body);
    body.iter_mut().for_each(|b| *b = 0);
    Ok(buf)
}

/// Opens a ciphertext made by [`seal`] with the same key and associated data.
pub fn open(key_bytes: &[u8; 32], aad: &Aad<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Open);
    }
    let k = key(key_bytes)?;
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
    let mut body = body.to_vec();
    let plain = k
        .open_in_place(nonce, RingAad::from(aad.encode()), &mut body)
        .map_err(|_| CryptoError::Open)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::{Keyring, MasterKey, Purpose};
    use secrecy::SecretString;

    fn keyring() -> Keyring {
        Keyring::new(
            MasterKey::from_base64(&SecretString::from(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
            ))
            .unwrap(),
        )
    }

    const AAD: Aad<'static> = Aad {
        table: "vault_entry",
        row_id: "r1",
        field: "secret",
        key_version: 1,
    };

    #[test]
    fn round_trip() {
        let dek = DataKey::generate().unwrap();
        let c = seal(dek.bytes(), &AAD, b"mot de passe").unwrap();
        assert_eq!(open(dek.bytes(), &AAD, &c).unwrap(), b"mot de passe");
        let c2 = seal(dek.bytes(), &AAD, b"mot de passe").unwrap();
        assert_ne!(c, c2, "random nonces");
    }

    #[test]
    fn wrong_associated_data_fails() {
        let dek = DataKey::generate().unwrap();
        let c = seal(dek.bytes(), &AAD, b"x").unwrap();
        for bad in [
            Aad {
                row_id: "r2",
                ..AAD
            },
            Aad {
                table: "usager",
                ..AAD
            },
            Aad {
                field: "login",
                ..AAD
            },
        ] {
            assert_eq!(open(dek.bytes(), &bad, &c), Err(CryptoError::Open));
        }
        let mut tampered = c.clone();
        tampered[20] ^= 1;
        assert!(open(dek.bytes(), &AAD, &tampered).is_err());
        assert!(open(dek.bytes(), &AAD, &c[..10]).is_err());
    }

    #[test]
    fn wrong_version_fails() {
        let dek = DataKey::generate().unwrap();
        let c = seal(dek.bytes(), &AAD, b"x").unwrap();
        assert!(
            open(
                dek.bytes(),
                &Aad {
                    key_version: 2,
                    ..AAD
                },
                &c
            )
            .is_err()
        );
        // Wrapping: a DEK wrapped under vault/v1 does not open under vault/v2.
        let r = keyring();
        let v1 = r.key(Purpose::Vault, 1).unwrap();
        let v2 = r.key(Purpose::Vault, 2).unwrap();
        let wrapped = dek.wrap(&v1, "vault_entry", "r1").unwrap();
        assert_eq!(
            DataKey::unwrap(&wrapped, &v1, "vault_entry", "r1")
                .unwrap()
                .bytes(),
            dek.bytes()
        );
        assert!(DataKey::unwrap(&wrapped, &v2, "vault_entry", "r1").is_err());
        assert!(DataKey::unwrap(&wrapped, &v1, "vault_entry", "r2").is_err());
    }

    #[test]
    fn debug_does_not_leak() {
        let dek = DataKey::generate().unwrap();
        let s = format!("{dek:?}");
        assert_eq!(s, "DataKey([redacted])");
        assert!(!s.contains(&hex::encode(&dek.bytes()[..4])));
    }
}
