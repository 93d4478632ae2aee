//! Member management: invitations, enrolment, deactivation, TOTP resets and cards.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::factors;
use crate::app::AppState;
use crate::audit::{self, Actor, Details, NewEvent};
use crate::authz::{Action, Facts, Resource};
use crate::crypto::totp::{APP_STEP, Seed};
use crate::crypto::{sha256, tokens};
use crate::domain::FieldError;
use crate::domain::account::{Email, OrgRole, check_password};
use crate::domain::text::clean_text;
use crate::error::{ApiResult, AppError};
use crate::http::auth::Session;
use crate::http::format_time;
use crate::store::{AidantRow, InvitationRow, Tx};

pub const INVITATION_TTL: Duration = Duration::hours(72);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub aidant_id: Uuid,
    /// `null` when the account already exists and is enrolled: it simply joins.
    pub invitation_url: Option<String>,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationInfo {
    pub email: Option<String>,
    pub organisation_name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub totp_secret: String,
    pub otpauth_uri: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberItem {
    pub aidant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub last_login_at: Option<String>,
}

pub fn invitation_url(state: &AppState, token: &SecretString) -> String {
    format!(
        "{}/invitation/{}",
        state.config.public_url,
        token.expose_secret()
    )
}

/// Creates an invitation row; returns the token (shown once).
pub async fn create_invitation(
    state: &AppState,
    tx: &mut dyn Tx,
    purpose: &str,
    aidant: Option<Uuid>,
    org: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<SecretString> {
    let token = tokens::new_token().map_err(anyhow::Error::from)?;
    tx.insert_invitation(&InvitationRow {
        token_hash: sha256(token.expose_secret().as_bytes()).to_vec(),
        purpose: purpose.to_owned(),
        aidant_id: aidant,
        organisation_id: org,
        expires_at,
        used_at: None,
        created_at: state.clock.now(),
    })
    .await?;
    Ok(token)
}

/// Loads the organisation and checks the caller may see it (404) and act (403 / step-up).
pub(super) async fn authorize_on_org(
    state: &AppState,
    session: &Session,
    org: Uuid,
    action: Action,
    facts: &Facts,
) -> ApiResult<()> {
    if !session.is_admin && !session.is_member_of(org) {
        return Err(AppError::NotFound);
    }
    {
        let mut tx = state.store.begin_read().await?;
        tx.get_organisation(org).await?.ok_or(AppError::NotFound)?;
    }
    state.authz.authorize(
        &session.principal(),
        action,
        &Resource::Organisation(org),
        facts,
    )?;
    Ok(())
}

/// The target must be a member (active or not) of the organisation, else 404.
pub(super) async fn target_member(
    tx: &mut dyn Tx,
    org: Uuid,
    aidant: Uuid,
) -> ApiResult<AidantRow> {
    let is_member = tx
        .memberships(aidant)
        .await?
        .iter()
        .any(|m| m.organisation_id == org);
    let a = tx
        .get_aidant(aidant)
        .await?
        .filter(|_| is_member)
        .ok_or(AppError::NotFound)?;
    Ok(a)
}

pub(super) fn event(
    state: &AppState,
    session: &Session,
    details: Details,
    org: Uuid,
    target: Uuid,
    request_id: Option<String>,
) -> NewEvent {
    NewEvent::new(state.clock.now(), Actor::aidant(session.aidant_id), details)
        .organisation(org)
        .target(target)
        .request_id(request_id)
}

pub struct InviteInput {
    pub email: String,
    pub display_name: String,
    pub role: String,
}

pub async fn invite(
    state: &AppState,
    session: &Session,
    org: Uuid,
    input: InviteInput,
    request_id: Option<String>,
) -> ApiResult<Invited> {
    authorize_on_org(
        state,
        session,
        org,
        Action::MemberInvite,
        &Facts::none().with("role", input.role.clone()),
    )
    .await?;
    let role = OrgRole::parse(&input.role).ok_or(AppError::Forbidden)?;
    let mut errors = Vec::new();
    let email = Email::parse(&input.email);
    if email.is_none() {
        errors.push(FieldError::new("email", "Adresse e-mail invalide."));
    }
    let name = clean_text(&input.display_name, 100)
        .map_err(|m| errors.push(FieldError::new("display_name", m)))
        .ok();
    let (Some(email), Some(name)) = (email, name) else {
        return Err(AppError::Validation(errors));
    };
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let (aidant_id, token) = match tx.find_aidant_by_email(email.as_str()).await? {
        Some(existing) if existing.is_admin || existing.is_dpo => {
            return Err(AppError::Conflict(
                "Ce compte a un rôle de plateforme : il ne peut pas rejoindre une structure."
                    .into(),
            ));
        }
        Some(existing) => {
            tx.upsert_membership(existing.id, org, role.as_str(), now)
                .await?;
            let token = if existing.password_hash.is_none() {
                tx.void_invitations(Some(existing.id), now).await?;
                Some(
                    create_invitation(
                        state,
                        tx.as_mut(),
                        "invite",
                        Some(existing.id),
                        Some(org),
                        Some(now + INVITATION_TTL),
                    )
                    .await?,
                )
            } else {
                None
            };
            (existing.id, token)
        }
        None => {
            let id = Uuid::now_v7();
            tx.insert_aidant(&AidantRow {
                id,
                email: email.as_str().to_owned(),
                display_name: name,
                password_hash: None,
                active: false,
                is_admin: false,
                is_dpo: false,
                current_organisation_id: Some(org),
                last_login_at: None,
                failed_logins: 0,
                failed_window_start: None,
                locked_until: None,
                created_at: now,
            })
            .await?;
            tx.upsert_membership(id, org, role.as_str(), now).await?;
            let token = create_invitation(
                state,
                tx.as_mut(),
                "invite",
                Some(id),
                Some(org),
                Some(now + INVITATION_TTL),
            )
            .await?;
            (id, Some(token))
        }
    };
    let ev = event(
        state,
        session,
        Details::AidantInvited {
            role: role.as_str().into(),
            platform: false,
        },
        org,
        aidant_id,
        request_id,
    );
    audit::append(tx.as_mut(), &ev).await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(Invited {
        aidant_id,
        expires_at: token.as_ref().map(|_| format_time(now + INVITATION_TTL)),
        invitation_url: token.map(|t| invitation_url(state, &t)),
    })
}

/// An open invitation by its token, or 404.
async fn open_invitation(
    state: &AppState,
    tx: &mut dyn Tx,
    token: &str,
) -> ApiResult<InvitationRow> {
    if token.len() > 128 {
        return Err(AppError::NotFound);
    }
    let inv = tx
        .get_invitation(&sha256(token.as_bytes()))
        .await?
        .ok_or(AppError::NotFound)?;
    let now = state.clock.now();
    if inv.used_at.is_some() || inv.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::NotFound);
    }
    Ok(inv)
}

pub async fn invitation_info(state: &AppState, token: &str) -> ApiResult<InvitationInfo> {
    let mut tx = state.store.begin_read().await?;
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    if inv.purpose == "first_admin" {
        return Ok(InvitationInfo {
            email: None,
            organisation_name: String::new(),
        });
    }
    let email = match inv.aidant_id {
        Some(a) => tx.get_aidant(a).await?.map(|a| a.email),
        None => None,
    };
    let organisation_name = match inv.organisation_id {
        Some(o) => tx
            .get_organisation(o)
            .await?
            .map(|o| o.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(InvitationInfo {
        email,
        organisation_name,
    })
}

pub struct AcceptInput {
    pub password: SecretString,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// Sets the password (or, for a TOTP reset, checks the current one) and issues a new pending
/// app factor, returned once.
pub async fn accept(state: &AppState, token: &str, input: AcceptInput) -> ApiResult<Enrolment> {
    let token_hash = sha256(token.as_bytes()).to_vec();
    let (inv, account) = {
        let mut tx = state.store.begin_read().await?;
        let inv = open_invitation(state, tx.as_mut(), token).await?;
        let account = match inv.aidant_id {
            Some(a) => tx.get_aidant(a).await?,
            None => None,
        };
        (inv, account)
    };
    // First administrator: the account is described at acceptance.
    let (email, name) = match (&account, inv.purpose.as_str()) {
        (Some(a), _) => (a.email.clone(), a.display_name.clone()),
        (None, "first_admin") => {
            let mut errors = Vec::new();
            let email = input.email.as_deref().and_then(Email::parse);
            if email.is_none() {
                errors.push(FieldError::new("email", "Adresse e-mail invalide."));
            }
            let name = input.display_name.as_deref().map(|n| clean_text(n, 100));
            let name = match name {
                Some(Ok(n)) => Some(n),
                Some(Err(m)) => {
                    errors.push(FieldError::new("display_name", m));
                    None
                }
                None => {
                    errors.push(FieldError::new("display_name", "Ce champ est obligatoire."));
                    None
                }
            };
            match (email, name) {
                (Some(e), Some(n)) => (e.as_str().to_owned(), n),
                _ => return Err(AppError::Validation(errors)),
            }
        }
        (None, _) => return Err(AppError::NotFound),
    };
    let password_hash = if inv.purpose == "totp_reset" {
        let stored = account.as_ref().and_then(|a| a.password_hash.clone());
        if !state.hasher.verify(input.password, stored).await {
            return Err(AppError::Validation(vec![FieldError::new(
                "password",
                "Mot de passe incorrect.",
            )]));
        }
        None
    } else {
        check_password(&input.password, Some(&email), Some(&name))
            .map_err(|m| AppError::Validation(vec![FieldError::new("password", m)]))?;
        Some(state.hasher.hash(input.password).await?)
    };
    let now = state.clock.now();
    let seed = Seed::generate().map_err(anyhow::Error::from)?;
    let mut tx = state.store.begin().await?;
    let aidant_id = match account {
        Some(a) => a.id,
        None => {
            if tx.find_aidant_by_email(&email).await?.is_some() {
                return Err(AppError::Validation(vec![FieldError::new(
                    "email",
                    "Cette adresse est déjà utilisée.",
                )]));
            }
            let id = Uuid::now_v7();
            tx.insert_aidant(&AidantRow {
                id,
                email: email.clone(),
                display_name: name,
                password_hash: None,
                active: false,
                is_admin: true,
                is_dpo: false,
                current_organisation_id: None,
                last_login_at: None,
                failed_logins: 0,
                failed_window_start: None,
                locked_until: None,
                created_at: now,
            })
            .await?;
            tx.attach_invitation(&token_hash, id).await?;
            id
        }
    };
    if let Some(h) = &password_hash {
        tx.set_aidant_password(aidant_id, h).await?;
    }
    for f in tx.totp_factors(aidant_id).await? {
        if f.status == "pending" {
            tx.set_totp_status(f.id, "retired").await?;
        }
    }
    let factor = factors::new_factor(
        state,
        factors::FactorSpec {
            aidant: Some(aidant_id),
            organisation: None,
            kind: "app",
            serial: None,
            step: APP_STEP,
            status: "pending",
        },
        &seed,
    )?;
    tx.insert_totp_factor(&factor).await?;
    let mut ev = NewEvent::new(
        now,
        Actor::aidant(aidant_id),
        Details::AidantInvitationAccepted {
            purpose: inv.purpose.clone(),
            password_set: password_hash.is_some(),
        },
    )
    .target(aidant_id);
    if let Some(o) = inv.organisation_id {
        ev = ev.organisation(o);
    }
    audit::append(tx.as_mut(), &ev).await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(Enrolment {
        totp_secret: seed.base32().to_string(),
        otpauth_uri: seed.otpauth_uri(&email).to_string(),
    })
}

/// Confirms the pending factor with a current code: the account becomes active, the token is spent.
pub async fn confirm(
    state: &AppState,
    token: &str,
    code: &str,
    request_id: Option<String>,
) -> ApiResult<()> {
    let token_hash = sha256(token.as_bytes()).to_vec();
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    let aidant = inv.aidant_id.ok_or(AppError::NotFound)?;
    let rows = tx.totp_factors(aidant).await?;
    let Some((factor, step)) = factors::match_code(state, &rows, code, &["pending"])? else {
        return Err(AppError::Validation(vec![FieldError::new(
            "totp",
            "Code incorrect : vérifiez l'heure de votre téléphone.",
        )]));
    };
    if !tx.use_invitation(&token_hash, now).await? || !tx.use_totp_step(factor, step).await? {
        return Err(AppError::Conflict(
            "Cette invitation a déjà été utilisée.".into(),
        ));
    }
    tx.set_totp_status(factor, "active").await?;
    tx.set_aidant_active(aidant, true).await?;
    let mut ev = NewEvent::new(
        now,
        Actor::aidant(aidant),
        Details::AidantEnrolled {
            factor: "app".into(),
        },
    )
    .target(aidant)
    .request_id(request_id);
    if let Some(o) = inv.organisation_id {
        ev = ev.organisation(o);
    }
    audit::append(tx.as_mut(), &ev).await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(())
}

pub async fn list(state: &AppState, session: &Session, org: Uuid) -> ApiResult<Vec<MemberItem>> {
    authorize_on_org(state, session, org, Action::MemberList, &Facts::none()).await?;
    let mut tx = state.store.begin_read().await?;
    Ok(tx
        .list_members(org)
        .await?
        .into_iter()
        .map(|m| MemberItem {
            aidant_id: m.aidant_id,
            email: m.email,
            display_name: m.display_name,
            role: m.role,
            active: m.membership_active && m.account_active,
            last_login_at: m.last_login_at.map(format_time),
        })
        .collect())
}

pub async fn deactivate(
    state: &AppState,
    session: &Session,
    org: Uuid,
    aidant: Uuid,
    request_id: Option<String>,
) -> ApiResult<()> {
    authorize_on_org(
        state,
        session,
        org,
        Action::MemberDeactivate,
        &Facts::none(),
    )
    .await?;
    if aidant == session.aidant_id {
        return Err(AppError::Conflict(
            "Vous ne pouvez pas désactiver votre propre compte.".into(),
        ));
    }
    let mut tx = state.store.begin().await?;
    let target = target_member(tx.as_mut(), org, aidant).await?;
    tx.set_membership_active(aidant, org, false).await?;
    let others = tx
        .memberships(aidant)
        .await?
        .iter()
        .any(|m| m.active && m.organisation_id != org);
    let account_deactivated = !others && !target.is_admin && !target.is_dpo;
    let mut ended = 0;
    if account_deactivated {
        tx.set_aidant_active(aidant, false).await?;
        ended = tx.delete_sessions_of(aidant, None).await?;
    }
    let details = Details::AidantDeactivated {
        account_deactivated,
        sessions_ended: i64::try_from(ended).unwrap_or(i64::MAX),
    };
    audit::append(
        tx.as_mut(),
        &event(state, session, details, org, aidant, request_id),
    )
    .await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(())
}

pub async fn reactivate(
    state: &AppState,
    session: &Session,
    org: Uuid,
    aidant: Uuid,
    request_id: Option<String>,
) -> ApiResult<()> {
    authorize_on_org(
        state,
        session,
        org,
        Action::MemberReactivate,
        &Facts::none(),
    )
    .await?;
    let mut tx = state.store.begin().await?;
    let target = target_member(tx.as_mut(), org, aidant).await?;
    tx.set_membership_active(aidant, org, true).await?;
    let enrolled = tx
        .totp_factors(aidant)
        .await?
        .iter()
        .any(|f| f.status == "active");
    if target.password_hash.is_some() && enrolled {
        tx.set_aidant_active(aidant, true).await?;
    }
    audit::append(
        tx.as_mut(),
        &event(
            state,
            session,
            Details::AidantReactivated {},
            org,
            aidant,
            request_id,
        ),
    )
    .await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(())
}

pub async fn totp_reset(
    state: &AppState,
    session: &Session,
    org: Uuid,
    aidant: Uuid,
    request_id: Option<String>,
) -> ApiResult<String> {
    authorize_on_org(state, session, org, Action::MemberTotpReset, &Facts::none()).await?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    target_member(tx.as_mut(), org, aidant).await?;
    let retired = tx.retire_totp_factors(aidant).await?;
    tx.delete_sessions_of(aidant, None).await?;
    tx.void_invitations(Some(aidant), now).await?;
    let token = create_invitation(
        state,
        tx.as_mut(),
        "totp_reset",
        Some(aidant),
        Some(org),
        Some(now + INVITATION_TTL),
    )
    .await?;
    let details = Details::AidantTotpReset {
        factors_retired: i64::try_from(retired).unwrap_or(i64::MAX),
    };
    audit::append(
        tx.as_mut(),
        &event(state, session, details, org, aidant, request_id),
    )
    .await?;
    tx.commit().await?;
    state.sequencer.notify();
    Ok(invitation_url(state, &token))
}

/// The purpose of an open invitation (`invite`, `totp_reset`, `first_admin`), or 404.
pub async fn invitation_purpose(state: &AppState, token: &str) -> ApiResult<Option<String>> {
    let mut tx = state.store.begin_read().await?;
    Ok(Some(
        open_invitation(state, tx.as_mut(), token).await?.purpose,
    ))
}
