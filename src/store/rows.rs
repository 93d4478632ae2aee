//! Plain rows as stored. Conversion to domain types happens in the service layer.

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrganisationRow {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub siret: Option<String>,
    /// JSON array of démarche ids.
    pub allowed_demarches: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// An audit entry as the sequencer writes it.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub idx: i64,
    pub ts: String,
    pub action: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub organisation: Option<String>,
    pub usager: Option<String>,
    pub mandate: Option<String>,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
    pub canonical: String,
    /// Unix seconds after which the payload may be pruned.
    pub prune_after: i64,
}

/// An audit entry as read back: the payload may have been pruned.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAuditEntry {
    pub idx: i64,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
    pub canonical_event: Option<String>,
}
