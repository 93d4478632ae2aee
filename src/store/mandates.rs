//! Repositories of usagers, mandates, consent challenges and idempotency keys: traits and
//! rows. The SQL is in `mandates_sql.rs`, shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// A usager as stored: personal fields are AES-256-GCM ciphertexts under the usager's
/// data key (`wrapped_key`, wrapped under `pii/v{key_version}`). `wrapped_key` is `None`
/// once the usager has been crypto-shredded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsagerRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub created_by_org: Uuid,
    pub identity_check: String,
    pub key_version: i64,
    pub wrapped_key: Option<Vec<u8>>,
    pub given_name: Vec<u8>,
    pub family_name: Vec<u8>,
    pub birthdate: Vec<u8>,
    pub birthplace: Option<Vec<u8>>,
    pub phone: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub erased_at: Option<DateTime<Utc>>,
    /// Set by retention once the identity's active period is over: from then on only the
    /// DPO reads it (product rule 8).
    pub archived_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MandateRow {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub usager_id: Uuid,
    pub created_by: Uuid,
    pub duration: String,
    pub consent_channel: String,
    pub status: String,
    pub terms_hash: String,
    /// The canonical terms, sealed under the usager's data key (they hold names).
    pub terms: Vec<u8>,
    pub terms_key_version: i64,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub renews: Option<Uuid>,
    pub resends: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MandateDemarcheRow {
    pub mandate_id: Uuid,
    pub demarche: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub mandate_id: Uuid,
    pub channel: String,
    pub terms_hash: String,
    /// `HMAC-SHA256(code/v{code_key_version}, challenge_id ‖ code)`.
    pub code_mac: Vec<u8>,
    pub code_key_version: i64,
    /// Printed codes only, while open: sealed under the usager's data key.
    pub code_sealed: Option<Vec<u8>>,
    pub sent_to: Option<String>,
    /// SMS: keyed hash of the number the code went to (matches replies).
    pub phone_mac: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub scope: String,
    pub key: String,
    pub request_mac: Vec<u8>,
    pub status: i64,
    pub key_version: i64,
    pub wrapped_key: Vec<u8>,
    /// The first answer's body, sealed (it may hold personal data or a printed code).
    pub body: Vec<u8>,
    pub usager_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Filters of a mandate list (one organisation).
#[derive(Debug, Clone)]
pub struct MandateFilter {
    pub organisation_id: Uuid,
    pub usager_id: Option<Uuid>,
    pub status: Option<String>,
    /// Active mandates expiring at or before this instant (and after `now`).
    pub expiring_before: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// Paging: ids strictly below this one (newest first).
    pub before_id: Option<Uuid>,
    pub limit: i64,
}

#[async_trait]
pub trait UsagerRepo {
    async fn insert_usager(&mut self, row: &UsagerRow) -> Result<(), StoreError>;
    async fn get_usager(&mut self, id: Uuid) -> Result<Option<UsagerRow>, StoreError>;
    /// Links an organisation to a usager (no-op when already linked).
    async fn link_usager(
        &mut self,
        organisation: Uuid,
        usager: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn usager_links(&mut self, usager: Uuid) -> Result<Vec<Uuid>, StoreError>;
    async fn insert_usager_index(
        &mut self,
        usager: Uuid,
        kind: &str,
        key_version: i64,
        mac: &[u8],
    ) -> Result<(), StoreError>;
    /// Usagers linked to `organisation` having a `name` entry among `name_macs` (when
    /// given) and the `birthdate` entry `birthdate_mac` (when given).
    /// Crypto-shreds a usager: data key and ciphertexts gone, blind index removed.
    /// `false` when already erased.
    async fn erase_usager(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Usagers not erased, created before `before`, whose every mandate ended (refused,
    /// expired or revoked) before `before`; oldest first, at most `limit`.
    async fn usagers_ended_before(
        &mut self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Archives the identity of usagers not erased nor archived, created before `before`,
    /// whose every mandate ended before `before` (one statement); only counts them when
    /// `!apply`. Returns their number.
    async fn archive_usagers_ended_before(
        &mut self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        apply: bool,
    ) -> Result<i64, StoreError>;
    async fn search_usagers(
        &mut self,
        organisation: Uuid,
        name_macs: &[Vec<u8>],
        birthdate_mac: Option<&[u8]>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
}

#[async_trait]
pub trait MandateRepo {
    async fn insert_mandate(&mut self, row: &MandateRow) -> Result<(), StoreError>;
    async fn insert_mandate_demarches(
        &mut self,
        mandate: Uuid,
        demarches: &[String],
    ) -> Result<(), StoreError>;
    async fn get_mandate(&mut self, id: Uuid) -> Result<Option<MandateRow>, StoreError>;
    async fn mandate_demarches(
        &mut self,
        mandate: Uuid,
    ) -> Result<Vec<MandateDemarcheRow>, StoreError>;
    /// The démarches of several mandates (one query).
    async fn demarches_of_mandates(
        &mut self,
        ids: &[Uuid],
    ) -> Result<Vec<MandateDemarcheRow>, StoreError>;
    async fn list_mandates(&mut self, f: &MandateFilter) -> Result<Vec<MandateRow>, StoreError>;
    /// `pending_consent` → `active`; `false` when the mandate was no longer pending.
    async fn activate_mandate(
        &mut self,
        id: Uuid,
        activated_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `from` → `to` (a final status), recording the end (and the reason of a revocation);
    /// `false` when the mandate was no longer in `from`.
    async fn end_mandate(
        &mut self,
        id: Uuid,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Marks still-active démarches revoked; returns how many changed.
    async fn revoke_demarches(
        &mut self,
        mandate: Uuid,
        demarches: &[String],
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<u64, StoreError>;
    /// `(mandate id, démarche)` of the still-active démarches of the other active mandates
    /// between this organisation and usager.
    async fn active_demarches_of(
        &mut self,
        organisation: Uuid,
        usager: Uuid,
        except: Uuid,
    ) -> Result<Vec<(Uuid, String)>, StoreError>;
    /// Active mandates whose `expires_at` has passed.
    async fn due_mandates(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<MandateRow>, StoreError>;
    /// The active mandate of this organisation covering the usager for the démarche at `now`
    /// (the latest-expiring when several), if any.
    async fn covering_mandate(
        &mut self,
        organisation: Uuid,
        usager: Uuid,
        demarche: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MandateRow>, StoreError>;
    /// Every mandate of a usager, in any organisation.
    async fn mandates_of_usager(&mut self, usager: Uuid) -> Result<Vec<MandateRow>, StoreError>;
    /// Counts one more resend, at most `max`; `false` when the limit is reached.
    async fn count_resend(&mut self, id: Uuid, max: i64) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait ChallengeRepo {
    async fn insert_challenge(&mut self, row: &ChallengeRow) -> Result<(), StoreError>;
    async fn get_challenge(&mut self, id: Uuid) -> Result<Option<ChallengeRow>, StoreError>;
    /// The newest challenge of a mandate.
    async fn current_challenge(
        &mut self,
        mandate: Uuid,
    ) -> Result<Option<ChallengeRow>, StoreError>;
    /// Every challenge of several mandates, newest first within each mandate (one query).
    async fn challenges_of_mandates(
        &mut self,
        ids: &[Uuid],
    ) -> Result<Vec<ChallengeRow>, StoreError>;
    /// The newest open SMS challenge sent to the number with this keyed hash.
    async fn open_challenge_for_phone(
        &mut self,
        phone_mac: &[u8],
    ) -> Result<Option<ChallengeRow>, StoreError>;
    /// Records an inbound webhook signature; `false` when it was already seen (replay).
    async fn remember_inbound(
        &mut self,
        signature: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn forget_inbound_before(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// One more wrong code on an open challenge below `max` attempts, checked and counted in
    /// one conditional statement (`UPDATE … RETURNING`): the new count, or `None` if the
    /// challenge is no longer open or has no attempt left.
    async fn count_wrong_code(&mut self, id: Uuid, max: i64) -> Result<Option<i64>, StoreError>;
    /// Closes an open challenge (and destroys its sealed code); `false` if it was not open.
    async fn close_challenge(
        &mut self,
        id: Uuid,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Open challenges whose expiry has passed: `(challenge, mandate)`.
    async fn lapsed_challenges(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
    /// Challenges closed (used, refused, expired, locked or void) before `before`: counted,
    /// and deleted when `delete`.
    async fn closed_challenges_before(
        &mut self,
        before: DateTime<Utc>,
        delete: bool,
    ) -> Result<i64, StoreError>;
}

#[async_trait]
pub trait IdempotencyRepo {
    async fn get_idempotency(
        &mut self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError>;
    async fn insert_idempotency(&mut self, row: &IdempotencyRow) -> Result<(), StoreError>;
    /// Forgets answers older than `before`; returns how many.
    async fn prune_idempotency(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    async fn delete_idempotency_of_usager(&mut self, usager: Uuid) -> Result<u64, StoreError>;
}
