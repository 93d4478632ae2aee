//! Envelope encryption of usagers' personal data: one random data key per usager, wrapped
//! under the `pii` key-encryption key; each field sealed with AES-256-GCM and bound to its
//! table, row, field and key version. Crypto-shredding = forgetting the wrapped data key.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{Aad, DataKey, Keyring, Purpose, open, seal};
use crate::domain::usager::NewUsager;
use crate::error::AppError;
use crate::store::UsagerRow;

/// Version of the `pii` key-encryption key used for new usagers.
pub const PII_KEY_VERSION: u32 = 1;

fn crypto_err(what: &'static str) -> impl FnOnce(crate::crypto::CryptoError) -> AppError {
    move |e| AppError::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// Seals a field of a row under a data key.
pub fn seal_field(
    dek: &DataKey,
    table: &str,
    row_id: &str,
    field: &str,
    version: u32,
    plain: &str,
) -> Result<Vec<u8>, AppError> {
    let aad = Aad {
        table,
        row_id,
        field,
        key_version: version,
    };
    seal(dek.bytes(), &aad, plain.as_bytes()).map_err(crypto_err("seal"))
}

pub fn open_field(
    dek: &DataKey,
    table: &str,
    row_id: &str,
    field: &str,
    version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<String>, AppError> {
    let aad = Aad {
        table,
        row_id,
        field,
        key_version: version,
    };
    let plain = Zeroizing::new(open(dek.bytes(), &aad, sealed).map_err(crypto_err("open"))?);
    Ok(Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(
        |_| AppError::Internal(anyhow::anyhow!("{table}.{field}: not UTF-8")),
    )?))
}

/// The usager's data key, unwrapped; `NotFound` once crypto-shredded.
pub fn usager_key(keyring: &Keyring, row: &UsagerRow) -> Result<DataKey, AppError> {
    let wrapped = row.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    let version = u32::try_from(row.key_version)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("usager.key_version")))?;
    let kek = keyring
        .key(Purpose::Pii, version)
        .map_err(crypto_err("pii key"))?;
    DataKey::unwrap(wrapped, &kek, "usager", &row.id.to_string())
        .map_err(crypto_err("unwrap usager key"))
}

/// The usager's personal data in clear (zeroized on drop).
pub struct UsagerPlain {
    pub given_name: Zeroizing<String>,
    pub family_name: Zeroizing<String>,
    pub birthdate: Zeroizing<String>,
    pub birthplace: Option<Zeroizing<String>>,
    pub phone: Option<Zeroizing<String>>,
    pub email: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for UsagerPlain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsagerPlain([redacted])")
    }
}

/// A new usager row with every personal field sealed.
pub fn seal_usager(
    keyring: &Keyring,
    id: Uuid,
    input: &NewUsager,
    base: UsagerRow,
) -> Result<UsagerRow, AppError> {
    let v = PII_KEY_VERSION;
    let dek = DataKey::generate().map_err(crypto_err("data key"))?;
    let kek = keyring
        .key(Purpose::Pii, v)
        .map_err(crypto_err("pii key"))?;
    let rid = id.to_string();
    let s = |field: &str, plain: &str| seal_field(&dek, "usager", &rid, field, v, plain);
    Ok(UsagerRow {
        id,
        key_version: i64::from(v),
        wrapped_key: Some(
            dek.wrap(&kek, "usager", &id.to_string())
                .map_err(crypto_err("wrap"))?,
        ),
        given_name: s("given_name", input.given_name.as_str())?,
        family_name: s("family_name", input.family_name.as_str())?,
        birthdate: s("birthdate", &input.birthdate.to_iso())?,
        birthplace: input
            .birthplace
            .as_ref()
            .map(|b| s("birthplace", b.as_str()))
            .transpose()?,
        phone: input
            .phone
            .as_ref()
            .map(|p| s("phone", p.as_str()))
            .transpose()?,
        email: input
            .email
            .as_ref()
            .map(|e| s("email", e.as_str()))
            .transpose()?,
        ..base
    })
}

pub fn open_usager(keyring: &Keyring, row: &UsagerRow) -> Result<UsagerPlain, AppError> {
    let dek = usager_key(keyring, row)?;
    let v = u32::try_from(row.key_version).unwrap_or(0);
    let rid = row.id.to_string();
    let o = |field: &str, sealed: &[u8]| open_field(&dek, "usager", &rid, field, v, sealed);
    Ok(UsagerPlain {
        given_name: o("given_name", &row.given_name)?,
        family_name: o("family_name", &row.family_name)?,
        birthdate: o("birthdate", &row.birthdate)?,
        birthplace: row
            .birthplace
            .as_deref()
            .map(|b| o("birthplace", b))
            .transpose()?,
        phone: row.phone.as_deref().map(|b| o("phone", b)).transpose()?,
        email: row.email.as_deref().map(|b| o("email", b)).transpose()?,
    })
}
