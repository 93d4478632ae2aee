//! The SMS outbox: messages written in the business transaction, delivered after the commit
//! by the worker of `sms::delivery`. The SQL is in `outbox_sql.rs`, shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// One outgoing message. `message` (number and text, sealed under the usager's data key) is
/// present only while the message is `pending`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SmsOutboxRow {
    pub id: Uuid,
    pub mandate_id: Uuid,
    pub challenge_id: Uuid,
    pub usager_id: Uuid,
    /// Order of the messages of one challenge: a message waits for the earlier ones.
    pub seq: i64,
    pub kind: String,
    /// `pending`, `sent`, `failed` or `void`.
    pub status: String,
    pub key_version: i64,
    pub message: Option<Vec<u8>>,
    /// Delivery attempts so far (counted when a worker claims the message).
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait SmsOutboxRepo {
    async fn insert_sms(&mut self, row: &SmsOutboxRow) -> Result<(), StoreError>;
    /// Whether a message is due at `now` (a cheap read before claiming).
    async fn sms_due(&mut self, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Claims the oldest due message until `until` and counts one more attempt, in one
    /// conditional statement: of several workers (instances), exactly one gets a message.
    /// Due = pending, `next_attempt_at` passed, not claimed (or the claim lapsed), no earlier
    /// message of its challenge still pending.
    async fn claim_sms(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SmsOutboxRow>, StoreError>;
    /// Ends a claimed message (`sent`, `failed` or `void`) and erases its sealed content;
    /// `false` when the claim is no longer this one (`attempts` moved on).
    async fn finish_sms(
        &mut self,
        id: Uuid,
        attempts: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Releases a claimed message for another attempt at `next`; `false` when the claim is
    /// no longer this one.
    async fn retry_sms(
        &mut self,
        id: Uuid,
        attempts: i64,
        next: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `(status, attempts, claimed_until)` of each message of a challenge, in sending order.
    async fn sms_of_challenge(
        &mut self,
        challenge: Uuid,
    ) -> Result<Vec<(String, i64, Option<DateTime<Utc>>)>, StoreError>;
    /// Forgets the messages that ended before `before`; returns how many.
    async fn prune_sms(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
