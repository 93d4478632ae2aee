//! Logging in and out, step-up, the account itself.

use std::net::IpAddr;

use chrono::Duration;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::factors;
use crate::app::AppState;
use crate::audit::{self, Actor, Details, NewEvent};
use crate::crypto::{Purpose, sha256, tokens};
use crate::domain::FieldError;
use crate::domain::account::{Email, check_password};
use crate::error::{ApiResult, AppError};
use crate::http::auth::{Membership, Session, active_memberships};
use crate::store::{LoginState, SessionRow};

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

/// The throttling state after one more failure: counted within a 15-minute window; the
/// fifth locks the account for 15 minutes (and resets the counter). Returns whether it locked.
fn after_failure(
    a: &crate::store::AidantRow,
    now: chrono::DateTime<chrono::Utc>,
) -> (LoginState, bool) {
    let in_window = a
        .failed_window_start
        .is_some_and(|w| now - w < FAILURE_WINDOW);
    let count = if in_window { a.failed_logins + 1 } else { 1 };
    let locked = count >= MAX_FAILURES;
    let state = LoginState {
        failed_logins: if locked { 0 } else { count },
        failed_window_start: match (locked, in_window) {
            (true, _) => None,
            (false, true) => a.failed_window_start,
            (false, false) => Some(now),
        },
        locked_until: locked.then_some(now + LOCK_DURATION),
    };
    (state, locked)
}

/// A keyed, truncated hash of an IP for audit details (never the IP itself).
pub fn ip_mac(state: &AppState, ip: IpAddr) -> String {
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

/// Password + TOTP. Every failure looks the same (`401`); a locked account gets `429`.
pub async fn login(
    state: &AppState,
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
    if let Some(a) = &aidant
        && let Some(until) = a.locked_until
        && until > now
    {
        // Still costs a verification: the answer time does not reveal the lock.
        let _ = state
            .hasher
            .verify(input.password, a.password_hash.clone())
            .await;
        return Err(AppError::RateLimited {
            retry_after_secs: u64::try_from((until - now).num_seconds())
                .unwrap_or(1)
                .max(1),
        });
    }
    let password_ok = state
        .hasher
        .verify(
            input.password,
            aidant.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await;
    let code = factors::match_code(state, &factor_rows, &input.totp, &["active"])?;
    let mac = ip_mac(state, ip);
    let mut tx = state.store.begin().await?;
    let success = match (&aidant, password_ok, code) {
        (Some(a), true, Some((factor, step))) if a.active => tx.use_totp_step(factor, step).await?,
        _ => false,
    };
    let Some(a) = aidant.clone().filter(|_| success) else {
        let (actor, locked) = match &aidant {
            Some(a) => {
                let (failure, locked) = after_failure(a, now);
                tx.set_login_state(a.id, failure).await?;
                (Actor::aidant(a.id), locked)
            }
            None => (Actor::anonymous(), false),
        };
        let ev = NewEvent::new(
            now,
            actor,
            Details::AidantLoginFailed {
                locked,
                ip_mac: mac,
            },
        )
        .request_id(request_id);
        audit::append(tx.as_mut(), &ev).await?;
        tx.commit().await?;
        state.sequencer.notify();
        tracing::info!(locked, "login failed");
        return Err(AppError::Unauthenticated);
    };
    let token = tokens::new_token().map_err(anyhow::Error::from)?;
    let id_hash = sha256(token.expose_secret().as_bytes()).to_vec();
    tx.record_login(a.id, now).await?;
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
    tx.commit().await?;
    state.sequencer.notify();
    tracing::info!(aidant.id = %a.id, "login");
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
    state: &AppState,
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
    tx.commit().await?;
    state.sequencer.notify();
    Ok(())
}

/// A deliberate extra code: marks the session stepped-up (5 min) and fresh (15 min).
/// Wrong codes count towards the account lockout.
pub async fn step_up(
    state: &AppState,
    session: &Session,
    code: &str,
    request_id: Option<String>,
) -> ApiResult<()> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let account = tx
        .get_aidant(session.aidant_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if account.locked_until.is_some_and(|u| u > now) {
        return Err(AppError::RateLimited {
            retry_after_secs: u64::try_from(
                (account.locked_until.unwrap_or(now) - now).num_seconds(),
            )
            .unwrap_or(1)
            .max(1),
        });
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
        tx.commit().await?;
        state.sequencer.notify();
        return Ok(());
    }
    let (failure, locked) = after_failure(&account, now);
    let count = if locked {
        MAX_FAILURES
    } else {
        failure.failed_logins
    };
    tx.set_login_state(account.id, failure).await?;
    if locked {
        tx.delete_sessions_of(account.id, None).await?;
    }
    let ev = NewEvent::new(
        now,
        Actor::aidant(account.id),
        Details::AidantLoginFailed {
            locked,
            ip_mac: String::new(),
        },
    )
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    tx.commit().await?;
    state.sequencer.notify();
    Err(AppError::InvalidCode {
        attempts_left: i64::from(MAX_FAILURES - count).max(0),
    })
}

pub async fn change_password(
    state: &AppState,
    session: &Session,
    current: SecretString,
    new: SecretString,
    request_id: Option<String>,
) -> ApiResult<()> {
    check_password(&new, Some(&session.email), Some(&session.display_name))
        .map_err(|m| AppError::Validation(vec![FieldError::new("new_password", m)]))?;
    let stored = {
        let mut tx = state.store.begin_read().await?;
        tx.get_aidant(session.aidant_id)
            .await?
            .and_then(|a| a.password_hash)
    };
    if !state.hasher.verify(current, stored).await {
        return Err(AppError::Validation(vec![FieldError::new(
            "current_password",
            "Le mot de passe actuel est incorrect.",
        )]));
    }
    let hash = state.hasher.hash(new).await?;
    let mut tx = state.store.begin().await?;
    tx.set_aidant_password(session.aidant_id, &hash).await?;
    let ended = tx
        .delete_sessions_of(session.aidant_id, Some(&session.id_hash))
        .await?;
    let ev = NewEvent::new(
        state.clock.now(),
        Actor::aidant(session.aidant_id),
        Details::AidantPasswordChanged {
            sessions_ended: i64::try_from(ended).unwrap_or(i64::MAX),
        },
    )
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(())
}

pub async fn switch_organisation(
    state: &AppState,
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
    tx.commit().await?;
    state.sequencer.notify();
    let mut me = Me::from(session);
    me.current_organisation_id = Some(org);
    Ok(me)
}
