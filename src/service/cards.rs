//! Physical TOTP cards (60-second step): imported by an administrator for an organisation,
//! bound to an aidant by a référent who checks a code read from the card.

use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::factors;
use super::members::{active_target_member, authorize_on_org, event};
use super::session::Session;
use crate::audit::{self, Actor, Details, NewEvent};
use crate::authz::{Action, Facts};
use crate::crypto::totp::{CARD_STEP, Seed};
use crate::domain::FieldError;
use crate::error::{ApiResult, AppError};
use crate::service::Services;

pub struct CardInput {
    pub serial: String,
    pub seed: SecretString,
    pub hex: bool,
}

fn clean_serial(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| s.to_owned())
}

pub async fn import_cards(
    state: &Services,
    session: &Session,
    org: Uuid,
    cards: Vec<CardInput>,
    request_id: Option<String>,
) -> ApiResult<i64> {
    authorize_on_org(state, session, org, Action::TotpCardsImport, &Facts::none()).await?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (i, c) in cards.iter().enumerate() {
        let serial = clean_serial(&c.serial);
        let seed = Seed::parse_card(c.seed.expose_secret(), c.hex);
        match (serial, seed) {
            (Some(serial), Some(seed)) => rows.push(factors::new_factor(
                state,
                factors::FactorSpec {
                    aidant: None,
                    organisation: Some(org),
                    kind: "card",
                    serial: Some(serial),
                    step: CARD_STEP,
                    status: "unbound",
                },
                &seed,
            )?),
            (None, _) => errors.push(FieldError::new(
                &format!("cards[{i}].serial"),
                "Numéro de série invalide.",
            )),
            (_, None) => errors.push(FieldError::new(
                &format!("cards[{i}].seed"),
                "Graine invalide (base32 ou hexadécimal).",
            )),
        }
    }
    if cards.is_empty() {
        errors.push(FieldError::new("cards", "Indiquez au moins une carte."));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let mut tx = state.store.begin().await?;
    for r in &rows {
        tx.insert_totp_factor(r).await?;
    }
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let ev = NewEvent::new(
        state.clock.now(),
        Actor::aidant(session.aidant_id),
        Details::AidantTotpCardsImported { count },
    )
    .organisation(org)
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(count)
}

/// Binds an imported card to an active member after checking a current code (±10 minutes).
pub async fn bind_card(
    state: &Services,
    session: &Session,
    org: Uuid,
    aidant: Uuid,
    serial: &str,
    code: &str,
    request_id: Option<String>,
) -> ApiResult<()> {
    authorize_on_org(state, session, org, Action::MemberBindCard, &Facts::none()).await?;
    let mut tx = state.store.begin().await?;
    // Only where the membership is active: not a person invited who has not joined yet.
    active_target_member(tx.as_mut(), org, aidant).await?;
    let card = tx
        .find_card(serial.trim())
        .await?
        .filter(|c| c.organisation_id == Some(org) && c.kind == "card")
        .ok_or(AppError::NotFound)?;
    if card.status != "unbound" {
        return Err(AppError::Conflict("Cette carte est déjà attribuée.".into()));
    }
    let seed = factors::open_seed(state, &card)?;
    let unix = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    let Some(step) = seed.verify(code, CARD_STEP, unix, 10, None) else {
        return Err(AppError::Validation(vec![FieldError::new(
            "totp",
            "Code incorrect pour cette carte.",
        )]));
    };
    if tx.bind_card(card.id, aidant, step).await? != 1 {
        return Err(AppError::Conflict("Cette carte est déjà attribuée.".into()));
    }
    audit::append(
        tx.as_mut(),
        &event(
            state,
            session,
            Details::AidantTotpCardBound {},
            org,
            aidant,
            request_id,
        ),
    )
    .await?;
    state.commit(tx).await?;
    Ok(())
}
