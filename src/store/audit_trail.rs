//! The audit trail's reads and checkpoint writes (search, export, proofs, verification,
//! retention of payloads). The SQL shared by both backends is in `audit_trail_sql.rs`.

use async_trait::async_trait;

use super::{StoreError, StoredAuditEntry};

/// A signed checkpoint as stored in `audit_checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckpointRow {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub timestamp: String,
    pub key_id: String,
    pub note: String,
}

/// Search filters over the indexed columns of `audit_log`. Times are canonical audit
/// timestamps (six fractional digits, `Z`), which sort as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub usager: Option<String>,
    pub mandate: Option<String>,
    pub organisation: Option<String>,
    /// Only entries with `idx < below` (a snapshot of the tree size).
    pub below: Option<i64>,
}

/// One row of a search or export: the indexed columns and the payload, if not pruned.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub idx: i64,
    pub ts: String,
    pub action: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub organisation_id: Option<String>,
    pub usager_id: Option<String>,
    pub mandate_id: Option<String>,
    pub leaf_hash: Vec<u8>,
    pub canonical_event: Option<String>,
}

/// What a pruning pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneSummary {
    pub count: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// Which audit payloads a retention pass selects (every condition holds together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSelection<'a> {
    /// Actions listed (see `listed`).
    pub actions: &'a [&'a str],
    /// `true`: only the actions listed; `false`: every other action.
    pub listed: bool,
    /// `Some(true)`: only entries about a mandate; `Some(false)`: only the others.
    pub with_mandate: Option<bool>,
    /// Only entries whose `ts` is before this canonical timestamp (text order).
    pub before_ts: String,
    /// And whose `prune_after` (the floor the database enforces) has passed.
    pub now_unix: i64,
}

#[async_trait]
pub trait AuditTrailRepo {
    /// Leaf hashes of `from <= idx < to`, in index order.
    async fn audit_leaf_hashes(&mut self, from: i64, to: i64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Stored entries of `from <= idx < to` with payloads, in index order.
    async fn audit_entries_between(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredAuditEntry>, StoreError>;
    /// Smallest and largest index in `audit_log`.
    async fn audit_bounds(&mut self) -> Result<(Option<i64>, Option<i64>), StoreError>;
    async fn insert_audit_checkpoint(&mut self, cp: &CheckpointRow) -> Result<(), StoreError>;
    async fn latest_audit_checkpoint(&mut self) -> Result<Option<CheckpointRow>, StoreError>;
    /// Checkpoints with `after < tree_size <= upto`, smallest first, at most `limit`.
    async fn audit_checkpoints_between(
        &mut self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError>;
    /// Entries matching `filter` with `idx > after`, in index order, at most `limit`.
    async fn search_audit(
        &mut self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError>;
    async fn count_audit(&mut self, filter: &AuditFilter) -> Result<i64, StoreError>;
    /// Counts the payloads `sel` selects and, when `delete`, deletes them (hashes stay).
    async fn prune_audit_payloads(
        &mut self,
        sel: &PayloadSelection<'_>,
        delete: bool,
    ) -> Result<PruneSummary, StoreError>;
    /// Versions recorded in `key_version` for a key purpose, ascending.
    async fn key_versions(&mut self, purpose: &str) -> Result<Vec<i32>, StoreError>;
    async fn insert_key_version(
        &mut self,
        purpose: &str,
        version: i32,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
}
