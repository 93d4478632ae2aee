//! Member management: invitations, enrolment, deactivation, TOTP resets and cards.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use uuid::Uuid;

use super::session::Session;
use super::{accounts, factors};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::authz::{Action, Facts, Resource};
use crate::crypto::totp::{APP_STEP, Seed};
use crate::crypto::{sha256, tokens};
use crate::domain::FieldError;
use crate::domain::account::{Email, OrgRole, check_password};
use crate::domain::text::clean_text;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{AidantRow, InvitationRow, MembershipRow, Tx};

pub const INVITATION_TTL: Duration = Duration::hours(72);

/// The same shape whether the e-mail was new or already had an account: the answer does not
/// tell. A new e-mail's link sets a password and a factor; an existing account's link is a
/// join invitation, accepted while logged in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub aidant_id: Uuid,
    pub invitation_url: String,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationInfo {
    pub email: Option<String>,
    pub organisation_name: String,
    /// `enrol` (set a password and a factor), `join` (an existing account joins the
    /// organisation, logged in), `totp_reset` (enrol a new factor) or `first_admin`.
    #[schema(example = "enrol")]
    pub kind: &'static str,
}

/// The kind of an invitation, as the API and the pages name it.
pub fn invitation_kind(purpose: &str) -> &'static str {
    match purpose {
        "join" => "join",
        "totp_reset" => "totp_reset",
        "first_admin" => "first_admin",
        _ => "enrol",
    }
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
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn invitation_url(state: &Services, token: &SecretString) -> String {
    format!(
        "{}/invitation/{}",
        state.config.public_url,
        token.expose_secret()
    )
}

/// Creates an invitation row; returns the token (shown once).
pub async fn create_invitation(
    state: &Services,
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
    state: &Services,
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

/// The target must have a membership (active, ended or pending) in the organisation, else 404.
pub(super) async fn target_member(
    tx: &mut dyn Tx,
    org: Uuid,
    aidant: Uuid,
) -> ApiResult<(AidantRow, MembershipRow)> {
    let membership = tx
        .memberships(aidant)
        .await?
        .into_iter()
        .find(|m| m.organisation_id == org)
        .ok_or(AppError::NotFound)?;
    let a = tx.get_aidant(aidant).await?.ok_or(AppError::NotFound)?;
    Ok((a, membership))
}

/// The target must be an active member of the organisation (not pending, not ended), else
/// 404: a person invited but not joined yet is not the organisation's to manage.
pub(super) async fn active_target_member(
    tx: &mut dyn Tx,
    org: Uuid,
    aidant: Uuid,
) -> ApiResult<AidantRow> {
    match target_member(tx, org, aidant).await? {
        (a, m) if m.active && !m.pending => Ok(a),
        _ => Err(AppError::NotFound),
    }
}

pub(super) fn event(
    state: &Services,
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
    state: &Services,
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
    // An existing account (enrolled or not, in any organisation) belongs to its person: it is
    // never given a credential-setting token, its other invitations stay valid, and it gets a
    // pending membership that the person activates by joining while logged in. One
    // exception, so that a lost or expired first link can be replaced: an account that never
    // enrolled and that only this organisation ever invited gets a new enrolment link (this
    // organisation's earlier links are voided) — nobody else has a claim on it.
    let existing = tx.find_aidant_by_email(email.as_str()).await?;
    let only_ours = match &existing {
        Some(a) if a.password_hash.is_none() && !a.is_admin && !a.is_dpo => {
            let ms = tx.memberships(a.id).await?;
            !ms.is_empty() && ms.iter().all(|m| m.organisation_id == org && !m.pending)
        }
        _ => false,
    };
    let (aidant_id, purpose) = match existing {
        Some(existing) if only_ours => {
            tx.void_invitations_in(existing.id, org, now).await?;
            tx.upsert_membership(existing.id, org, role.as_str(), now)
                .await?;
            (existing.id, "invite")
        }
        Some(existing) => {
            // Platform accounts never join an organisation (the join is refused); the answer
            // does not tell them apart either.
            if !existing.is_admin && !existing.is_dpo {
                tx.add_pending_membership(existing.id, org, role.as_str(), &name, now)
                    .await?;
            }
            (existing.id, "join")
        }
        None => {
            // Random (v4), like every account id: a time-ordered id would date the account
            // and tell a new email from an existing one.
            let id = Uuid::new_v4();
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
            (id, "invite")
        }
    };
    let expires_at = now + INVITATION_TTL;
    let token = create_invitation(
        state,
        tx.as_mut(),
        purpose,
        Some(aidant_id),
        Some(org),
        Some(expires_at),
    )
    .await?;
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
    state.commit(tx).await?;
    Ok(Invited {
        aidant_id,
        invitation_url: invitation_url(state, &token),
        expires_at,
    })
}

/// An open invitation by its token, or 404.
async fn open_invitation(
    state: &Services,
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

pub async fn invitation_info(state: &Services, token: &str) -> ApiResult<InvitationInfo> {
    let mut tx = state.store.begin_read().await?;
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    let kind = invitation_kind(&inv.purpose);
    if inv.purpose == "first_admin" {
        return Ok(InvitationInfo {
            email: None,
            organisation_name: String::new(),
            kind,
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
        kind,
    })
}

pub struct AcceptInput {
    pub password: SecretString,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The client's address, for the keyed hash in a failure's audit event.
    pub ip: IpAddr,
}

/// Sets the password (or, for a TOTP reset, checks the current one) and issues a new pending
/// app factor, returned once. A join invitation sets nothing: `404`. For a TOTP reset the
/// current password is a password check like a login's (counted, audited, locked → `429`).
pub async fn accept(state: &Services, token: &str, input: AcceptInput) -> ApiResult<Enrolment> {
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
    let reset = inv.purpose == "totp_reset";
    match (inv.purpose.as_str(), &account) {
        // A first-administrator link is attached to its account at the first acceptance
        // and may be accepted again until it is confirmed.
        ("invite" | "totp_reset", Some(_)) | ("first_admin", _) => {}
        // A join invitation never sets credentials; an enrolment link of an active account
        // has nothing left to set.
        _ => return Err(AppError::NotFound),
    }
    if inv.purpose != "totp_reset" && account.as_ref().is_some_and(|a| a.active) {
        return Err(AppError::NotFound);
    }
    let mac = accounts::ip_mac(state, input.ip);
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
    let password_hash = if let (true, Some(a)) = (reset, &account) {
        let locked = accounts::is_locked(a, state.clock.now());
        let ok = state
            .hasher
            .verify(input.password, a.password_hash.clone())
            .await;
        if locked || !ok {
            let mut tx = state.store.begin().await?;
            let out = if locked {
                Err(accounts::refuse_locked(state, tx.as_mut(), a.id, mac, None).await?)
            } else {
                accounts::count_failure(state, tx.as_mut(), a.id, mac, false, None).await?;
                Err(AppError::Validation(vec![FieldError::new(
                    "password",
                    "Mot de passe incorrect.",
                )]))
            };
            state.commit(tx).await?;
            return out;
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
    if let (true, Some(a)) = (reset, &account)
        && !tx.ensure_unlocked(a.id, now).await?
    {
        let refused = accounts::refuse_locked(state, tx.as_mut(), a.id, mac, None).await?;
        state.commit(tx).await?;
        return Err(refused);
    }
    let aidant_id = match account {
        Some(a) => a.id,
        None => {
            if tx.find_aidant_by_email(&email).await?.is_some() {
                return Err(AppError::Validation(vec![FieldError::new(
                    "email",
                    "Cette adresse est déjà utilisée.",
                )]));
            }
            let id = Uuid::new_v4();
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
    state.commit(tx).await?;
    Ok(Enrolment {
        totp_secret: seed.base32().to_string(),
        otpauth_uri: seed.otpauth_uri(&email).to_string(),
    })
}

/// Confirms the pending factor with a current code, the token is spent: an enrolment makes
/// the account active. It never re-activates an account: an enrolment needs the membership
/// it was issued for to be still active, a TOTP reset an account still active.
pub async fn confirm(
    state: &Services,
    token: &str,
    code: &str,
    request_id: Option<String>,
) -> ApiResult<()> {
    let token_hash = sha256(token.as_bytes()).to_vec();
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    let aidant = inv.aidant_id.ok_or(AppError::NotFound)?;
    let account = tx.get_aidant(aidant).await?.ok_or(AppError::NotFound)?;
    let allowed = match inv.purpose.as_str() {
        "first_admin" => true,
        "invite" => tx
            .memberships(aidant)
            .await?
            .iter()
            .any(|m| Some(m.organisation_id) == inv.organisation_id && m.active && !m.pending),
        "totp_reset" => account.active,
        _ => false,
    };
    if !allowed {
        return Err(AppError::NotFound);
    }
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
    if inv.purpose != "totp_reset" {
        tx.set_aidant_active(aidant, true).await?;
    }
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
    state.commit(tx).await?;
    Ok(())
}

pub async fn list(state: &Services, session: &Session, org: Uuid) -> ApiResult<Vec<MemberItem>> {
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
            last_login_at: m.last_login_at,
        })
        .collect())
}

/// Ends a membership and voids the account's open invitations into the organisation; the
/// account is deactivated (its sessions end) when it was its last active membership. A
/// pending membership is only cancelled: the account is not the organisation's to change.
pub async fn deactivate(
    state: &Services,
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
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let (target, membership) = target_member(tx.as_mut(), org, aidant).await?;
    tx.set_membership_active(aidant, org, false).await?;
    tx.void_invitations_in(aidant, org, now).await?;
    let others = tx
        .memberships(aidant)
        .await?
        .iter()
        .any(|m| m.active && m.organisation_id != org);
    let account_deactivated = !membership.pending && !others && !target.is_admin && !target.is_dpo;
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
    state.commit(tx).await?;
    Ok(())
}

/// Reactivates an ended membership (a pending one is activated only by the person joining).
pub async fn reactivate(
    state: &Services,
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
    let (target, membership) = target_member(tx.as_mut(), org, aidant).await?;
    if membership.pending {
        return Err(AppError::NotFound);
    }
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
    state.commit(tx).await?;
    Ok(())
}

/// Retires the account's factors and ends its sessions — for every organisation — so it is
/// allowed only to référents of an organisation where the membership is active, and to
/// administrators. A pending, ended or absent membership answers `404`.
pub async fn totp_reset(
    state: &Services,
    session: &Session,
    org: Uuid,
    aidant: Uuid,
    request_id: Option<String>,
) -> ApiResult<String> {
    authorize_on_org(state, session, org, Action::MemberTotpReset, &Facts::none()).await?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    if session.is_admin {
        target_member(tx.as_mut(), org, aidant).await?;
    } else {
        active_target_member(tx.as_mut(), org, aidant).await?;
    }
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
    state.commit(tx).await?;
    Ok(invitation_url(state, &token))
}

/// The join invitation `token` if it invites the logged-in account, else 404 (whatever the
/// reason: nothing tells an invitation of someone else from no invitation).
pub async fn join_invitation(
    state: &Services,
    session: &Session,
    token: &str,
) -> ApiResult<InvitationRow> {
    let mut tx = state.store.begin_read().await?;
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    if inv.purpose != "join" || inv.aidant_id != Some(session.aidant_id) {
        return Err(AppError::NotFound);
    }
    Ok(inv)
}

/// The logged-in person accepts a join invitation with their own credentials (second factor
/// within 15 minutes): the pending membership becomes active, the token is spent.
pub async fn join(
    state: &Services,
    session: &Session,
    token: &str,
    request_id: Option<String>,
) -> ApiResult<()> {
    let inv = join_invitation(state, session, token).await?;
    let org = inv.organisation_id.ok_or(AppError::NotFound)?;
    state.authz.authorize(
        &session.principal(),
        Action::InvitationJoin,
        &Resource::Organisation(org),
        &Facts::none(),
    )?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    // Checked again in the write transaction: the token may have been spent or voided since.
    let inv = open_invitation(state, tx.as_mut(), token).await?;
    if inv.purpose != "join" || inv.aidant_id != Some(session.aidant_id) {
        return Err(AppError::NotFound);
    }
    if !tx.use_invitation(&inv.token_hash, now).await? {
        return Err(AppError::NotFound);
    }
    let role = tx
        .memberships(session.aidant_id)
        .await?
        .into_iter()
        .find(|m| m.organisation_id == org)
        .map(|m| m.role)
        .ok_or(AppError::NotFound)?;
    if tx.join_membership(session.aidant_id, org).await? != 1 {
        return Err(AppError::NotFound);
    }
    let ev = NewEvent::new(
        now,
        Actor::aidant(session.aidant_id),
        Details::AidantJoined { role },
    )
    .organisation(org)
    .target(session.aidant_id)
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(())
}
