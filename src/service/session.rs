//! Who is calling, below HTTP: a session token resolves to a [`Session`] (the account, its
//! active memberships, its second-factor times) in one read, with the idle and absolute
//! timeouts enforced here on the server. The HTTP layer only finds the token in the cookie.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Services;
use crate::authz::Principal;
use crate::crypto::sha256;
use crate::error::{ApiResult, AppError};
use crate::store::MembershipRow;

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// `last_seen_at` is written at most this often.
pub const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A membership as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub role: String,
}

/// The authenticated account of this request.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub aidant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub is_dpo: bool,
    /// Active memberships only.
    pub memberships: Vec<Membership>,
    pub current_organisation_id: Option<Uuid>,
    pub fresh_factor_at: DateTime<Utc>,
    pub step_up_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl Session {
    /// The principal the policies see.
    pub fn principal(&self) -> Principal {
        Principal {
            id: self.aidant_id,
            active: true,
            is_admin: self.is_admin,
            is_dpo: self.is_dpo,
            member_of: self.memberships.iter().map(|m| m.organisation_id).collect(),
            referent_of: self
                .memberships
                .iter()
                .filter(|m| m.role == "referent")
                .map(|m| m.organisation_id)
                .collect(),
            fresh_factor_age: (self.now - self.fresh_factor_at).num_seconds().max(0),
            step_up_age: self.step_up_at.map(|t| (self.now - t).num_seconds().max(0)),
        }
    }

    pub fn is_member_of(&self, org: Uuid) -> bool {
        self.memberships.iter().any(|m| m.organisation_id == org)
    }

    /// The organisation to act for: explicit, or the current one.
    pub fn acting_organisation(&self, explicit: Option<Uuid>) -> Result<Uuid, AppError> {
        match explicit.or(self.current_organisation_id) {
            Some(org) if self.is_member_of(org) => Ok(org),
            Some(_) => Err(AppError::NotFound),
            None => Err(AppError::Forbidden),
        }
    }

    pub fn platform_roles(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.is_dpo {
            r.push("dpo");
        }
        if self.is_admin {
            r.push("admin");
        }
        r
    }
}

pub fn active_memberships(rows: Vec<MembershipRow>) -> Vec<Membership> {
    rows.into_iter()
        .filter(|m| m.active)
        .map(|m| Membership {
            organisation_id: m.organisation_id,
            organisation_name: m.organisation_name,
            role: m.role,
        })
        .collect()
}

/// Resolves a session token: one read (session, account and active memberships joined);
/// an unknown, idle (30 min), too old (12 h) or deactivated session is `401` (and removed);
/// `last_seen_at` is written at most once a minute.
pub async fn resolve(s: &Services, token: &str) -> ApiResult<Session> {
    let id_hash = sha256(token.as_bytes()).to_vec();
    let now = s.clock.now();
    let rows = {
        let mut tx = s.store.begin_read().await?;
        tx.resolve_session(&id_hash).await?
    };
    let Some(first) = rows.first() else {
        return Err(AppError::Unauthenticated);
    };
    let expired =
        now - first.last_seen_at > IDLE_TIMEOUT || now - first.created_at > ABSOLUTE_TIMEOUT;
    if expired || !first.account_active {
        let mut tx = s.store.begin().await?;
        tx.delete_session(&id_hash).await?;
        tx.commit().await?;
        return Err(AppError::Unauthenticated);
    }
    if now - first.last_seen_at > TOUCH_EVERY {
        let mut tx = s.store.begin().await?;
        tx.touch_session(&id_hash, now).await?;
        tx.commit().await?;
    }
    let memberships: Vec<Membership> = rows
        .iter()
        .filter_map(|r| {
            Some(Membership {
                organisation_id: r.organisation_id?,
                organisation_name: r.organisation_name.clone()?,
                role: r.role.clone()?,
            })
        })
        .collect();
    let first = &rows[0];
    let current = first
        .current_organisation_id
        .filter(|o| memberships.iter().any(|m| m.organisation_id == *o))
        .or_else(|| memberships.first().map(|m| m.organisation_id));
    Ok(Session {
        id_hash,
        aidant_id: first.aidant_id,
        email: first.email.clone(),
        display_name: first.display_name.clone(),
        is_admin: first.is_admin,
        is_dpo: first.is_dpo,
        memberships,
        current_organisation_id: current,
        fresh_factor_at: first.fresh_factor_at,
        step_up_at: first.step_up_at,
        now,
    })
}
