//! Accounts, memberships, second factors, sessions and invitations: rows and repository.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AidantRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub active: bool,
    pub is_admin: bool,
    pub is_dpo: bool,
    pub current_organisation_id: Option<Uuid>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub failed_logins: i32,
    pub failed_window_start: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One row of a session resolved with its account and one active membership (none: the
/// membership columns are `NULL`); a session has as many rows as active memberships.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionPrincipalRow {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub fresh_factor_at: DateTime<Utc>,
    pub step_up_at: Option<DateTime<Utc>>,
    pub aidant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub account_active: bool,
    pub is_admin: bool,
    pub is_dpo: bool,
    pub current_organisation_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub organisation_name: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    pub aidant_id: Uuid,
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub role: String,
    pub active: bool,
    /// Invited while the account already existed: inactive until the person joins.
    pub pending: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberListRow {
    pub aidant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub membership_active: bool,
    pub account_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpFactorRow {
    pub id: Uuid,
    pub aidant_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub kind: String,
    pub serial: Option<String>,
    pub seed_sealed: Vec<u8>,
    pub key_version: i32,
    pub step_secs: i32,
    pub last_used_step: Option<i64>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub aidant_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub fresh_factor_at: DateTime<Utc>,
    pub step_up_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub token_hash: Vec<u8>,
    pub purpose: String,
    pub aidant_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Login throttling state of one account.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct LoginState {
    pub failed_logins: i32,
    pub failed_window_start: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait AccountRepo {
    async fn insert_aidant(&mut self, a: &AidantRow) -> Result<(), StoreError>;
    async fn get_aidant(&mut self, id: Uuid) -> Result<Option<AidantRow>, StoreError>;
    async fn find_aidant_by_email(&mut self, email: &str) -> Result<Option<AidantRow>, StoreError>;
    async fn set_aidant_password(&mut self, id: Uuid, hash: &str) -> Result<(), StoreError>;
    async fn set_aidant_profile(
        &mut self,
        id: Uuid,
        email: &str,
        display_name: &str,
    ) -> Result<(), StoreError>;
    async fn set_aidant_active(&mut self, id: Uuid, active: bool) -> Result<(), StoreError>;
    /// Counts one failed password or code check in one conditional statement: within the
    /// window (started after `window_after`) the counter grows, and reaching `max` locks the
    /// account until `lock_until` (and resets the counter); an account already locked keeps
    /// its state. Returns the state after the update (`None`: no such account).
    async fn record_auth_failure(
        &mut self,
        id: Uuid,
        now: DateTime<Utc>,
        window_after: DateTime<Utc>,
        max: i32,
        lock_until: DateTime<Utc>,
    ) -> Result<Option<LoginState>, StoreError>;
    /// A successful login: clears the failures and records the time, unless the account is
    /// locked at `at` (then nothing changes and it returns false).
    async fn record_login(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// True when the account is not locked at `now` (an expired lock is cleared); false when
    /// it is. One conditional statement, so it holds until the transaction ends.
    async fn ensure_unlocked(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn set_current_organisation(
        &mut self,
        id: Uuid,
        org: Option<Uuid>,
    ) -> Result<(), StoreError>;
    async fn count_aidants(&mut self) -> Result<i64, StoreError>;

    async fn memberships(&mut self, aidant: Uuid) -> Result<Vec<MembershipRow>, StoreError>;
    async fn upsert_membership(
        &mut self,
        aidant: Uuid,
        org: Uuid,
        role: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A pending membership (an existing account invited into `org`): created inactive, or
    /// its role updated when it is still pending; an active or ended membership is left as is.
    /// `invited_name` is what the organisation typed (its member list shows that, not the
    /// account's own name).
    async fn add_pending_membership(
        &mut self,
        aidant: Uuid,
        org: Uuid,
        role: &str,
        invited_name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The person joins: the membership becomes active (no longer pending).
    async fn join_membership(&mut self, aidant: Uuid, org: Uuid) -> Result<u64, StoreError>;
    async fn set_membership_active(
        &mut self,
        aidant: Uuid,
        org: Uuid,
        active: bool,
    ) -> Result<u64, StoreError>;
    async fn list_members(&mut self, org: Uuid) -> Result<Vec<MemberListRow>, StoreError>;

    async fn insert_totp_factor(&mut self, f: &TotpFactorRow) -> Result<(), StoreError>;
    async fn totp_factors(&mut self, aidant: Uuid) -> Result<Vec<TotpFactorRow>, StoreError>;
    /// Records a used step if it is later than the last one; false when it is not (replay).
    async fn use_totp_step(&mut self, factor: Uuid, step: i64) -> Result<bool, StoreError>;
    async fn set_totp_status(&mut self, factor: Uuid, status: &str) -> Result<(), StoreError>;
    async fn retire_totp_factors(&mut self, aidant: Uuid) -> Result<u64, StoreError>;
    async fn find_card(&mut self, serial: &str) -> Result<Option<TotpFactorRow>, StoreError>;
    async fn bind_card(&mut self, factor: Uuid, aidant: Uuid, step: i64)
    -> Result<u64, StoreError>;

    async fn insert_session(&mut self, s: &SessionRow) -> Result<(), StoreError>;
    async fn get_session(&mut self, id_hash: &[u8]) -> Result<Option<SessionRow>, StoreError>;
    /// The session, its account and its active memberships (ordered by organisation name)
    /// in one statement; empty when the session is unknown.
    async fn resolve_session(
        &mut self,
        id_hash: &[u8],
    ) -> Result<Vec<SessionPrincipalRow>, StoreError>;
    async fn touch_session(&mut self, id_hash: &[u8], at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn set_session_step_up(
        &mut self,
        id_hash: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn delete_session(&mut self, id_hash: &[u8]) -> Result<u64, StoreError>;
    /// Ends every session of an account except `keep`.
    async fn delete_sessions_of(
        &mut self,
        aidant: Uuid,
        keep: Option<&[u8]>,
    ) -> Result<u64, StoreError>;

    /// Sessions last seen before `before` (long expired): counted, and deleted when `delete`.
    async fn sessions_seen_before(
        &mut self,
        before: DateTime<Utc>,
        delete: bool,
    ) -> Result<i64, StoreError>;

    async fn insert_invitation(&mut self, i: &InvitationRow) -> Result<(), StoreError>;
    async fn get_invitation(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<InvitationRow>, StoreError>;
    /// Consumes an unused invitation; false when it was already used.
    async fn use_invitation(
        &mut self,
        token_hash: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn attach_invitation(
        &mut self,
        token_hash: &[u8],
        aidant: Uuid,
    ) -> Result<(), StoreError>;
    /// Voids the open credential-setting invitations (enrolment, TOTP reset) of an account,
    /// or the open first-admin links when `None`. Join invitations are left alone.
    async fn void_invitations(
        &mut self,
        aidant: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Voids every open invitation of an account into one organisation.
    async fn void_invitations_in(
        &mut self,
        aidant: Uuid,
        org: Uuid,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}
