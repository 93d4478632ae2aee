//! Accounts made by the operator: `mandat user create`, and the first administrator's link.

use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use super::{factors, members};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::crypto::totp::{APP_STEP, Seed};
use crate::domain::FieldError;
use crate::domain::account::{Email, OrgRole, PlatformRole, check_password};
use crate::domain::text::clean_text;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::AidantRow;

#[derive(Debug, Serialize)]
pub struct CreatedUser {
    pub id: Uuid,
    pub totp_secret: String,
    pub otpauth_uri: String,
}

pub enum Placement {
    Member { organisation: Uuid, role: OrgRole },
    Platform(PlatformRole),
}

/// Creates an active account with a password and an enrolled authenticator app.
pub async fn create(
    state: &Services,
    email: &str,
    name: &str,
    placement: Placement,
    password: SecretString,
) -> ApiResult<CreatedUser> {
    let mut errors = Vec::new();
    let email = Email::parse(email);
    if email.is_none() {
        errors.push(FieldError::new("email", "Adresse e-mail invalide."));
    }
    let name = clean_text(name, 100)
        .map_err(|m| errors.push(FieldError::new("name", m)))
        .ok();
    let (Some(email), Some(name)) = (email, name) else {
        return Err(AppError::Validation(errors));
    };
    check_password(&password, Some(email.as_str()), Some(&name))
        .map_err(|m| AppError::Validation(vec![FieldError::new("password", m)]))?;
    let hash = state.hasher.hash(password).await?;
    let now = state.clock.now();
    let id = Uuid::new_v4(); // random, like every account id (see `members::invite`)
    let seed = Seed::generate().map_err(anyhow::Error::from)?;
    let mut tx = state.store.begin().await?;
    if tx.find_aidant_by_email(email.as_str()).await?.is_some() {
        return Err(AppError::Conflict(
            "Un compte existe déjà avec cette adresse.".into(),
        ));
    }
    let (is_admin, is_dpo, org) = match &placement {
        Placement::Platform(PlatformRole::Admin) => (true, false, None),
        Placement::Platform(PlatformRole::Dpo) => (false, true, None),
        Placement::Member { organisation, .. } => {
            tx.get_organisation(*organisation)
                .await?
                .ok_or(AppError::NotFound)?;
            (false, false, Some(*organisation))
        }
    };
    tx.insert_aidant(&AidantRow {
        id,
        email: email.as_str().to_owned(),
        display_name: name,
        password_hash: Some(hash),
        active: true,
        is_admin,
        is_dpo,
        current_organisation_id: org,
        last_login_at: None,
        failed_logins: 0,
        failed_window_start: None,
        locked_until: None,
        created_at: now,
    })
    .await?;
    let role = match &placement {
        Placement::Member { organisation, role } => {
            tx.upsert_membership(id, *organisation, role.as_str(), now)
                .await?;
            role.as_str()
        }
        Placement::Platform(PlatformRole::Admin) => "admin",
        Placement::Platform(PlatformRole::Dpo) => "dpo",
    };
    let factor = factors::new_factor(
        state,
        factors::FactorSpec {
            aidant: Some(id),
            organisation: None,
            kind: "app",
            serial: None,
            step: APP_STEP,
            status: "active",
        },
        &seed,
    )?;
    tx.insert_totp_factor(&factor).await?;
    for details in [
        Details::AidantInvited {
            role: role.into(),
            platform: org.is_none(),
        },
        Details::AidantEnrolled {
            factor: "app".into(),
        },
    ] {
        let mut ev = NewEvent::new(now, Actor::system(), details).target(id);
        if let Some(o) = org {
            ev = ev.organisation(o);
        }
        audit::append(tx.as_mut(), &ev).await?;
    }
    state.commit(tx).await?;
    Ok(CreatedUser {
        id,
        totp_secret: seed.base32().to_string(),
        otpauth_uri: seed.otpauth_uri(email.as_str()).to_string(),
    })
}

/// On a database without any account: a one-time link to create the first administrator
/// (older unused links are voided). `None` when accounts exist.
pub async fn first_admin_link(state: &Services) -> ApiResult<Option<String>> {
    let mut tx = state.store.begin().await?;
    if tx.count_aidants().await? > 0 {
        return Ok(None);
    }
    tx.void_invitations(None, state.clock.now()).await?;
    let token =
        members::create_invitation(state, tx.as_mut(), "first_admin", None, None, None).await?;
    let ev = NewEvent::new(
        state.clock.now(),
        Actor::system(),
        Details::AidantInvited {
            role: "admin".into(),
            platform: true,
        },
    );
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(Some(members::invitation_url(state, &token)))
}
