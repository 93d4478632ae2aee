//! The credential vault's rows. The SQL is in `vault_sql.rs`, shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// One vault entry as stored: every field sealed under the entry's data key, which is
/// stored wrapped under `vault/v{kek_version}`. Once deleted (`deleted_at`), the data key
/// and every ciphertext are gone.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VaultEntryRow {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub usager_id: Option<Uuid>,
    pub demarche: Option<String>,
    pub kek_version: i64,
    pub wrapped_key: Option<Vec<u8>>,
    /// The version of the sealed fields (one more at each rotation of the secret).
    pub version: i64,
    pub label: Option<Vec<u8>>,
    pub service: Option<Vec<u8>>,
    pub login: Option<Vec<u8>>,
    pub secret: Option<Vec<u8>>,
    pub totp_seed: Option<Vec<u8>>,
    pub notes: Option<Vec<u8>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A wrapped data key waiting to be re-wrapped.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VaultKeyRow {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub kek_version: i64,
    pub wrapped_key: Vec<u8>,
}

#[async_trait]
pub trait VaultRepo {
    async fn insert_vault_entry(&mut self, row: &VaultEntryRow) -> Result<(), StoreError>;
    async fn get_vault_entry(&mut self, id: Uuid) -> Result<Option<VaultEntryRow>, StoreError>;
    /// The organisation's live entries in id order, after `after`, at most `limit`.
    async fn list_vault_entries(
        &mut self,
        organisation: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<VaultEntryRow>, StoreError>;
    /// Replaces the data key and every sealed field of a live entry whose version is still
    /// `from_version` (the old ciphertexts are overwritten); `false` otherwise.
    async fn replace_vault_fields(
        &mut self,
        row: &VaultEntryRow,
        from_version: i64,
    ) -> Result<bool, StoreError>;
    /// Forgets the data key and every ciphertext of a live entry; `false` when already gone.
    async fn shred_vault_entry(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Live data keys wrapped under a version older than `below`, in id order after
    /// `after`, at most `limit`.
    async fn vault_keys_below(
        &mut self,
        below: i64,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<VaultKeyRow>, StoreError>;
    /// Stores a re-wrapped data key if the row is still wrapped under `from`; `false` otherwise
    /// (another run re-wrapped it, or it was deleted meanwhile).
    async fn rewrap_vault_key(
        &mut self,
        id: Uuid,
        from: i64,
        to: i64,
        wrapped: &[u8],
    ) -> Result<bool, StoreError>;
    /// How many live data keys are wrapped under a version older than `below`.
    async fn count_vault_keys_below(&mut self, below: i64) -> Result<i64, StoreError>;
}
