//! Logging in and out, step-up, the account itself.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::factors;
use super::session::{Membership, Session, active_memberships};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::crypto::{Purpose, sha256, tokens};
use crate::domain::FieldError;
use crate::domain::account::{Email, check_password};
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{AidantRow, SessionRow, Tx};

pub const MAX_FAILURES: i32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
pub const LOCK_DURATION: Duration = Duration::minutes(15);

/// The `Me` shape of the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub platform_roles: Vec<&'static str>,
    pub memberships: Vec<Membership>,
    pub current_organisation_id: Option<Uuid>,
}

impl From<&Session> for Me {
    fn from(s: &Session) -> Self {
        Self {
            id: s.aidant_id,
            email: s.email.clone(),
            display_name: s.display_name.clone(),
            platform_roles: s.platform_roles(),
            memberships: s.memberships.clone(),
            current_organisation_id: s.current_organisation_id,
        }
    }
}

/// What one failed password or code check did to the account.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failure {
    /// The account is locked now (by this failure or by a concurrent one).
    pub locked: bool,
    pub attempts_left: i64,
}

/// Counts one failed check of the account's password or code — atomically, in `tx` — and
/// audits it (`aidant.login_failed`). Failures count within a 15-minute window; the fifth
/// locks the account for 15 minutes. When `end_sessions`, a lock also ends the account's
/// sessions (checks made inside a session: step-up, password change).
pub(super) async fn count_failure(
    state: &Services,
    tx: &mut dyn Tx,
    aidant: Uuid,
    ip_mac: String,
    end_sessions: bool,
    request_id: Option<String>,
) -> ApiResult<Failure> {
    let now = state.clock.now();
    let after = tx
        .record_auth_failure(
            aidant,
            now,
            now - FAILURE_WINDOW,
            MAX_FAILURES,
            now + LOCK_DURATION,
        )
        .await?;
    let locked = after
        .and_then(|s| s.locked_until)
        .is_some_and(|until| until > now);
    if locked && end_sessions {
        tx.delete_sessions_of(aidant, None).await?;
    }
    let ev = NewEvent::new(
        now,
        Actor::aidant(aidant),
        Details::AidantLoginFailed { locked, ip_mac },
    )
    .request_id(request_id);
    audit::append(tx, &ev).await?;
    let count = match after {
        Some(s) if !locked => s.failed_logins,
        _ => MAX_FAILURES,
    };
    Ok(Failure {
        locked,
        attempts_left: i64::from(MAX_FAILURES - count).max(0),
    })
}

/// An attempt on a locked account: audited as a failure (`locked: true`), answered `429`
/// with the seconds left. The caller commits `tx`.
pub(super) async fn refuse_locked(
    state: &Services,
    tx: &mut dyn Tx,
    aidant: Uuid,
    ip_mac: String,
    request_id: Option<String>,
) -> ApiResult<AppError> {
    let now = state.clock.now();
    let until = tx
        .get_aidant(aidant)
        .await?
        .and_then(|a| a.locked_until)
        .filter(|u| *u > now)
        .unwrap_or(now + LOCK_DURATION);
    let ev = NewEvent::new(
        now,
        Actor::aidant(aidant),
        Details::AidantLoginFailed {
            locked: true,
            ip_mac,
        },
    )
    .request_id(request_id);
    audit::append(tx, &ev).await?;
    Ok(locked_error(until, now))
}

fn locked_error(until: DateTime<Utc>, now: DateTime<Utc>) -> AppError {
    AppError::RateLimited {
        retry_after_secs: u64::try_from((until - now).num_seconds())
            .unwrap_or(1)
            .max(1),
    }
}

/// Whether the account is locked at `now` (as read; writes re-check in their transaction).
pub(super) fn is_locked(a: &AidantRow, now: DateTime<Utc>) -> bool {
    a.locked_until.is_some_and(|u| u > now)
}

/// A keyed, truncated hash of an IP for audit details (never the IP itself).
pub fn ip_mac(state: &Services, ip: IpAddr) -> String {
    match state.keyring.key(Purpose::Token, 1) {
        Ok(k) => hex::encode(&k.hmac(&[b"ip", ip.to_string().as_bytes()])[..8]),
        Err(_) => String::new(),
    }
}

pub struct LoginInput {
    pub email: String,
    pub password: SecretString,
    pub totp: String,
}

/// Password + TOTP. Every failure looks the same (`401`) and is counted and audited in the
/// write transaction; a locked account gets `429` (audited too).
pub async fn login(
    state: &Services,
    input: LoginInput,
    ip: IpAddr,
    request_id: Option<String>,
) -> ApiResult<(SecretString, Me)> {
    let now = state.clock.now();
    let email = Email::parse(&input.email);
    let (aidant, factor_rows) = match &email {
        Some(e) => {
            let mut tx = state.store.begin_read().await?;
            let a = tx.find_aidant_by_email(e.as_str()).await?;
            let f = match &a {
                Some(a) => tx.totp_factors(a.id).await?,
                None => Vec::new(),
            };
            (a, f)
        }
        None => (None, Vec::new()),
    };
    // Always one verification: the answer time reveals neither the account nor its lock.
    let password_ok = state
        .hasher
        .verify(
            input.password,
            aidant.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await;
    let mac = ip_mac(state, ip);
    let mut tx = state.store.begin().await?;
    if let Some(a) = aidant.as_ref().filter(|a| is_locked(a, now)) {
        let refused = refuse_locked(state, tx.as_mut(), a.id, mac, request_id).await?;
        state.commit(tx).await?;
        tracing::info!(locked = true, "login refused");
        ::metrics::counter!(crate::metrics::LOGINS, "outcome" => "locked").increment(1);
        return Err(refused);
    }
    let code = factors::match_code(state, &factor_rows, &input.totp, &["active"])?;
    let success = match (&aidant, password_ok, code) {
        (Some(a), true, Some((factor, step))) if a.active => tx.use_totp_step(factor, step).await?,
        _ => false,
    };
    let Some(a) = aidant.clone().filter(|_| success) else {
        let locked = match &aidant {
            Some(a) => {
                count_failure(state, tx.as_mut(), a.id, mac, false, request_id)
                    .await?
                    .locked
            }
            None => {
                let ev = NewEvent::new(
                    now,
                    Actor::anonymous(),
                    Details::AidantLoginFailed {
                        locked: false,
                        ip_mac: mac,
                    },
                )
                .request_id(request_id);
                audit::append(tx.as_mut(), &ev).await?;
                false
            }
        };
        state.commit(tx).await?;
        tracing::info!(locked, "login failed");
        ::metrics::counter!(crate::metrics::LOGINS, "outcome" => "failure").increment(1);
        if locked {
            ::metrics::counter!(crate::metrics::LOCKOUTS).increment(1);
        }
        return Err(AppError::Unauthenticated);
    };
    // The lock is checked again where the session is created: a concurrent failure that
    // locked the account since the read above wins.
    if !tx.record_login(a.id, now).await? {
        let refused = refuse_locked(state, tx.as_mut(), a.id, mac, request_id).await?;
        state.commit(tx).await?;
        tracing::info!(locked = true, "login refused");
        ::metrics::counter!(crate::metrics::LOGINS, "outcome" => "locked").increment(1);
        return Err(refused);
    }
    let token = tokens::new_token().map_err(anyhow::Error::from)?;
    let id_hash = sha256(token.expose_secret().as_bytes()).to_vec();
    tx.insert_session(&SessionRow {
        id_hash,
        aidant_id: a.id,
        created_at: now,
        last_seen_at: now,
        fresh_factor_at: now,
        step_up_at: None,
    })
    .await?;
    let memberships = active_memberships(tx.memberships(a.id).await?);
    let current = a
        .current_organisation_id
        .filter(|o| memberships.iter().any(|m| m.organisation_id == *o))
        .or_else(|| memberships.first().map(|m| m.organisation_id));
    let ev = NewEvent::new(
        now,
        Actor::aidant(a.id),
        Details::AidantLogin {
            factor: "totp".into(),
            ip_mac: mac,
        },
    )
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    tracing::info!(aidant.id = %a.id, "login");
    ::metrics::counter!(crate::metrics::LOGINS, "outcome" => "success").increment(1);
    let me = Me {
        id: a.id,
        email: a.email,
        display_name: a.display_name,
        platform_roles: [(a.is_dpo, "dpo"), (a.is_admin, "admin")]
            .into_iter()
            .filter(|(b, _)| *b)
            .map(|(_, r)| r)
            .collect(),
        memberships,
        current_organisation_id: current,
    };
    Ok((token, me))
}

pub async fn logout(
    state: &Services,
    session: &Session,
    request_id: Option<String>,
) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    tx.delete_session(&session.id_hash).await?;
    let ev = NewEvent::new(
        state.clock.now(),
        Actor::aidant(session.aidant_id),
        Details::AidantLogout {},
    )
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(())
}

/// A deliberate extra code: marks the session stepped-up (5 min) and fresh (15 min).
/// Wrong codes count towards the account lockout; a lock ends the account's sessions.
pub async fn step_up(
    state: &Services,
    session: &Session,
    code: &str,
    ip: IpAddr,
    request_id: Option<String>,
) -> ApiResult<()> {
    let now = state.clock.now();
    let mac = ip_mac(state, ip);
    let mut tx = state.store.begin().await?;
    if !tx.ensure_unlocked(session.aidant_id, now).await? {
        let refused = refuse_locked(state, tx.as_mut(), session.aidant_id, mac, request_id).await?;
        state.commit(tx).await?;
        return Err(refused);
    }
    if factors::check_and_use(state, tx.as_mut(), session.aidant_id, code).await? {
        tx.set_session_step_up(&session.id_hash, now).await?;
        let ev = NewEvent::new(
            now,
            Actor::aidant(session.aidant_id),
            Details::AidantStepUp {
                factor: "totp".into(),
            },
        )
        .request_id(request_id);
        audit::append(tx.as_mut(), &ev).await?;
        state.commit(tx).await?;
        return Ok(());
    }
    let failure =
        count_failure(state, tx.as_mut(), session.aidant_id, mac, true, request_id).await?;
    state.commit(tx).await?;
    Err(AppError::InvalidCode {
        attempts_left: failure.attempts_left,
    })
}

/// Changes the password. The current password is a password check like a login's: a wrong
/// one counts towards the lockout (a lock ends the account's sessions), a locked account
/// gets `429`.
pub async fn change_password(
    state: &Services,
    session: &Session,
    current: SecretString,
    new: SecretString,
    ip: IpAddr,
    request_id: Option<String>,
) -> ApiResult<()> {
    check_password(&new, Some(&session.email), Some(&session.display_name))
        .map_err(|m| AppError::Validation(vec![FieldError::new("new_password", m)]))?;
    let now = state.clock.now();
    let mac = ip_mac(state, ip);
    let account = {
        let mut tx = state.store.begin_read().await?;
        tx.get_aidant(session.aidant_id)
            .await?
            .ok_or(AppError::Unauthenticated)?
    };
    let locked = is_locked(&account, now);
    let current_ok = state.hasher.verify(current, account.password_hash).await;
    if locked {
        let mut tx = state.store.begin().await?;
        let refused = refuse_locked(state, tx.as_mut(), session.aidant_id, mac, request_id).await?;
        state.commit(tx).await?;
        return Err(refused);
    }
    if !current_ok {
        let mut tx = state.store.begin().await?;
        count_failure(state, tx.as_mut(), session.aidant_id, mac, true, request_id).await?;
        state.commit(tx).await?;
        return Err(AppError::Validation(vec![FieldError::new(
            "current_password",
            "Le mot de passe actuel est incorrect.",
        )]));
    }
    let hash = state.hasher.hash(new).await?;
    let mut tx = state.store.begin().await?;
    if !tx.ensure_unlocked(session.aidant_id, now).await? {
        let refused = refuse_locked(state, tx.as_mut(), session.aidant_id, mac, request_id).await?;
        state.commit(tx).await?;
        return Err(refused);
    }
    tx.set_aidant_password(session.aidant_id, &hash).await?;
    let ended = tx
        .delete_sessions_of(session.aidant_id, Some(&session.id_hash))
        .await?;
    let ev = NewEvent::new(
        now,
        Actor::aidant(session.aidant_id),
        Details::AidantPasswordChanged {
            sessions_ended: i64::try_from(ended).unwrap_or(i64::MAX),
        },
    )
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(())
}

pub async fn switch_organisation(
    state: &Services,
    session: &Session,
    org: Uuid,
    request_id: Option<String>,
) -> ApiResult<Me> {
    if !session.is_member_of(org) {
        return Err(AppError::NotFound);
    }
    let mut tx = state.store.begin().await?;
    tx.set_current_organisation(session.aidant_id, Some(org))
        .await?;
    let ev = NewEvent::new(
        state.clock.now(),
        Actor::aidant(session.aidant_id),
        Details::AidantOrganisationSwitched {},
    )
    .organisation(org)
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    let mut me = Me::from(session);
    me.current_organisation_id = Some(org);
    Ok(me)
}
