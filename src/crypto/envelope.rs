//! Envelope encryption of vault entries: a random data key per entry, wrapped under the
//! versioned vault key-encryption key (`vault/v<N>`); every field sealed under the data key
//! with associated data binding the organisation, the entry, the field and the entry's
//! version. A ciphertext copied into another entry, another organisation, another field or
//! another version fails to open.

use uuid::Uuid;
use zeroize::Zeroizing;

use super::CryptoError;
use super::aead::{Aad, DataKey, open, seal};
use super::keyring::{Keyring, Purpose, PurposeKey};

/// The table named in every associated data of the vault.
pub const TABLE: &str = "vault_entry";

/// Which entry a ciphertext belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef {
    pub organisation: Uuid,
    pub entry: Uuid,
}

impl EntryRef {
    fn row_id(&self) -> String {
        format!("{}/{}", self.organisation, self.entry)
    }
}

/// The vault key-encryption key of a version.
pub fn kek(keyring: &Keyring, version: u32) -> Result<PurposeKey, CryptoError> {
    keyring.key(Purpose::Vault, version)
}

/// Wraps an entry's data key under `kek` (its version is bound too).
pub fn wrap(kek: &PurposeKey, at: EntryRef, dek: &DataKey) -> Result<Vec<u8>, CryptoError> {
    dek.wrap(kek, TABLE, &at.row_id())
}

/// Unwraps an entry's data key.
pub fn unwrap(kek: &PurposeKey, at: EntryRef, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
    DataKey::unwrap(wrapped, kek, TABLE, &at.row_id())
}

/// Re-wraps a data key from `old` to `new` without touching any field ciphertext.
pub fn rewrap(
    old: &PurposeKey,
    new: &PurposeKey,
    at: EntryRef,
    wrapped: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let dek = unwrap(old, at, wrapped)?;
    wrap(new, at, &dek)
}

/// Seals one field of an entry at `version`.
pub fn seal_field(
    dek: &DataKey,
    at: EntryRef,
    field: &str,
    version: u32,
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let row = at.row_id();
    seal(
        dek.bytes(),
        &Aad {
            table: TABLE,
            row_id: &row,
            field,
            key_version: version,
        },
        plain,
    )
}

/// Opens one field of an entry at `version`.
pub fn open_field(
    dek: &DataKey,
    at: EntryRef,
    field: &str,
    version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let row = at.row_id();
    open(
        dek.bytes(),
        &Aad {
            table: TABLE,
            row_id: &row,
            field,
            key_version: version,
        },
        sealed,
    )
    .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::MasterKey;
    use secrecy::SecretString;

    fn keyring() -> Keyring {
        Keyring::new(
            MasterKey::from_base64(&SecretString::from(
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
            ))
            .unwrap(),
        )
    }

    fn at(n: u128) -> EntryRef {
        EntryRef {
            organisation: Uuid::from_u128(1),
            entry: Uuid::from_u128(n),
        }
    }

    #[test]
    fn a_field_opens_only_where_it_was_sealed() {
        let dek = DataKey::generate().unwrap();
        let c = seal_field(&dek, at(2), "secret", 1, b"hunter2").unwrap();
        assert_eq!(
            open_field(&dek, at(2), "secret", 1, &c).unwrap().as_slice(),
            b"hunter2"
        );
        assert!(open_field(&dek, at(3), "secret", 1, &c).is_err(), "entry");
        assert!(open_field(&dek, at(2), "login", 1, &c).is_err(), "field");
        assert!(open_field(&dek, at(2), "secret", 2, &c).is_err(), "version");
        let other_org = EntryRef {
            organisation: Uuid::from_u128(9),
            ..at(2)
        };
        assert!(open_field(&dek, other_org, "secret", 1, &c).is_err(), "org");
    }

    #[test]
    fn rewrap_changes_the_wrapping_not_the_key() {
        let r = keyring();
        let (v1, v2) = (kek(&r, 1).unwrap(), kek(&r, 2).unwrap());
        let dek = DataKey::generate().unwrap();
        let w1 = wrap(&v1, at(2), &dek).unwrap();
        let w2 = rewrap(&v1, &v2, at(2), &w1).unwrap();
        assert_ne!(w1, w2);
        assert_eq!(unwrap(&v2, at(2), &w2).unwrap().bytes(), dek.bytes());
        assert!(unwrap(&v1, at(2), &w2).is_err());
        assert!(unwrap(&v2, at(3), &w2).is_err(), "bound to its entry");
    }
}
