//! `Idempotency-Key`: a replay with the same key and body returns the first answer (status
//! and body); the same key with another body → `409`. The first answer is stored sealed
//! (it may hold personal data or a printed consent code), in the same transaction as the
//! change it answers.

use super::pii::{open_field, seal_field};
use crate::crypto::{DataKey, Keyring, Purpose, ct_eq};
use crate::error::AppError;
use crate::store::{IdempotencyRow, Tx};

const KEY_VERSION: u32 = 1;
/// How long a first answer is kept for replays.
pub const KEEP: chrono::Duration = chrono::Duration::hours(24);

/// A validated key, scoped to the caller and the route, with the request's keyed hash.
#[derive(Debug, Clone)]
pub struct IdemKey {
    pub scope: String,
    pub key: String,
    request_mac: [u8; 32],
}

/// What a use case answered, or the first answer replayed.
pub enum Replayable<T> {
    Fresh(T),
    Replay { status: u16, body: Vec<u8> },
}

impl IdemKey {
    /// `key` must be 1–64 printable ASCII characters.
    pub fn new(keyring: &Keyring, scope: String, key: &str, body: &[u8]) -> Result<Self, AppError> {
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(AppError::InvalidRequest {
                detail: "L'en-tête Idempotency-Key doit compter 1 à 64 caractères imprimables."
                    .into(),
                errors: vec![],
            });
        }
        let mac = keyring
            .key(Purpose::Token, 1)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("token key: {e}")))?
            .hmac(&[b"idempotency", scope.as_bytes(), key.as_bytes(), body]);
        Ok(Self {
            scope,
            key: key.to_owned(),
            request_mac: mac,
        })
    }

    fn row_id(&self) -> String {
        hex::encode(crate::crypto::sha256(
            format!("{}\n{}", self.scope, self.key).as_bytes(),
        ))
    }
}

/// The stored answer for this key, if any; `409` when the key was used with another body.
pub async fn lookup(
    keyring: &Keyring,
    tx: &mut dyn Tx,
    idem: &IdemKey,
) -> Result<Option<(u16, Vec<u8>)>, AppError> {
    let Some(row) = tx.get_idempotency(&idem.scope, &idem.key).await? else {
        return Ok(None);
    };
    if !ct_eq(&row.request_mac, &idem.request_mac) {
        return Err(AppError::Conflict(
            "Cette clé d'idempotence a déjà servi pour une autre requête.".into(),
        ));
    }
    let v = u32::try_from(row.key_version).unwrap_or(0);
    let kek = keyring
        .key(Purpose::Pii, v)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("pii key: {e}")))?;
    let id = idem.row_id();
    let dek = DataKey::unwrap(&row.wrapped_key, &kek, "idempotency_key", &id)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("idempotency key: {e}")))?;
    let body = open_field(&dek, "idempotency_key", &id, "body", v, &row.body)?;
    Ok(Some((
        u16::try_from(row.status).unwrap_or(200),
        body.as_bytes().to_vec(),
    )))
}

/// Records the first answer.
pub async fn record(
    keyring: &Keyring,
    tx: &mut dyn Tx,
    idem: &IdemKey,
    status: u16,
    body: &impl serde::Serialize,
    usager: Option<uuid::Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    let text = zeroize::Zeroizing::new(serde_json::to_string(body).map_err(anyhow::Error::from)?);
    let kek = keyring
        .key(Purpose::Pii, KEY_VERSION)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("pii key: {e}")))?;
    let dek = DataKey::generate().map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let id = idem.row_id();
    let row = IdempotencyRow {
        scope: idem.scope.clone(),
        key: idem.key.clone(),
        request_mac: idem.request_mac.to_vec(),
        status: i64::from(status),
        key_version: i64::from(KEY_VERSION),
        wrapped_key: dek
            .wrap(&kek, "idempotency_key", &id)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
        body: seal_field(&dek, "idempotency_key", &id, "body", KEY_VERSION, &text)?,
        usager_id: usager,
        created_at: now,
    };
    tx.insert_idempotency(&row).await?;
    Ok(())
}
