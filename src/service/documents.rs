//! Printable documents of a mandate: the attestation (re-printable while the challenge is
//! open, with its code) and the revocation notice. Each print is audited
//! (`mandate.attestation_printed`, which document only); the PDF is rendered after the
//! commit, from the terms the usager accepted.

use uuid::Uuid;

use super::consent::open_printed_code;
use super::mandates::{authorized, render};
use super::pii::{open_field, usager_key};
use super::usagers::Caller;
use crate::audit::{self, Details, NewEvent};
use crate::authz::Action;
use crate::domain::demarche::catalogue;
use crate::domain::terms::Terms;
use crate::domain::wording::{
    birthdate_fr, date, datetime_fr, duration_fr, mandate_status_fr, reason_fr,
};
use crate::error::{ApiResult, AppError};
use crate::pdf::{self, DemarcheText, OrganisationText};
use crate::service::Services;
use crate::store::{MandateRow, Tx};

/// The terms of a mandate as the usager accepted them (sealed with the mandate).
async fn terms_of(state: &Services, tx: &mut dyn Tx, m: &MandateRow) -> ApiResult<Terms> {
    let urow = tx
        .get_usager(m.usager_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let dek = usager_key(&state.keyring, &urow)?;
    let plain = open_field(
        &dek,
        "mandate",
        &m.id.to_string(),
        "terms",
        u32::try_from(m.terms_key_version).unwrap_or(0),
        &m.terms,
    )?;
    serde_json::from_str(&plain).map_err(|_| AppError::Internal(anyhow::anyhow!("corrupt terms")))
}

fn organisation(t: &Terms) -> OrganisationText {
    OrganisationText {
        name: t.organisation.name.clone(),
        siret: t.organisation.siret.clone(),
        address: t.organisation.address.clone(),
    }
}

fn title(id: &str) -> String {
    catalogue()
        .iter()
        .find(|c| c.id == id)
        .map_or_else(|| id.to_owned(), |c| c.title.clone())
}

async fn audit_print(
    state: &Services,
    tx: &mut dyn Tx,
    caller: &Caller,
    m: &MandateRow,
    document: &str,
) -> ApiResult<()> {
    let event = NewEvent::new(
        state.clock.now(),
        caller.actor(),
        Details::MandateAttestationPrinted {
            document: document.to_owned(),
        },
    )
    .organisation(m.organisation_id)
    .usager(m.usager_id)
    .mandate(m.id)
    .request_id(caller.request_id.clone());
    audit::append(tx, &event).await?;
    Ok(())
}

fn pdf_error(e: pdf::PdfError) -> AppError {
    AppError::Internal(anyhow::anyhow!("{e}"))
}

/// The attestation of a mandate of the caller's organisation (`404` otherwise).
pub async fn attestation(state: &Services, caller: &Caller, id: Uuid) -> ApiResult<Vec<u8>> {
    let mut tx = state.store.begin().await?;
    let m = authorized(state, tx.as_mut(), caller, id, Action::MandateRead).await?;
    let terms = terms_of(state, tx.as_mut(), &m).await?;
    let view = render(state, tx.as_mut(), &m, None).await?;
    let code = match tx.current_challenge(m.id).await? {
        Some(ch) => open_printed_code(state, tx.as_mut(), &m, &ch).await?,
        None => None,
    };
    audit_print(state, tx.as_mut(), caller, &m, "attestation").await?;
    state.commit(tx).await?;
    let input = pdf::Attestation {
        mandate_ref: m.id.to_string(),
        organisation: organisation(&terms),
        usager_name: format!("{} {}", terms.usager.given_name, terms.usager.family_name),
        usager_birthdate: birthdate_fr(&terms.usager.birthdate),
        demarches: terms
            .demarches
            .iter()
            .map(|d| {
                let c = catalogue().iter().find(|c| &c.id == d);
                DemarcheText {
                    title: c.map_or_else(|| d.clone(), |c| c.title.clone()),
                    description: c.map(|c| c.description.clone()).unwrap_or_default(),
                    warning: c.and_then(|c| c.warning.clone()),
                }
            })
            .collect(),
        duration: duration_fr(&terms.duration.name).to_owned(),
        status: mandate_status_fr(&view.status).to_owned(),
        created_at: date(view.created_at),
        activated_at: view.activated_at.map(date),
        expires_at: view.expires_at.map(date),
        printed_code: code,
        terms_hash: m.terms_hash.clone(),
        verification_url: view.verification_url,
    };
    pdf::attestation(&input).map_err(pdf_error)
}

/// The revocation notice of a mandate of the caller's organisation; `404` before any
/// démarche of it was revoked.
pub async fn revocation(state: &Services, caller: &Caller, id: Uuid) -> ApiResult<Vec<u8>> {
    let mut tx = state.store.begin().await?;
    let m = authorized(state, tx.as_mut(), caller, id, Action::MandateRead).await?;
    let demarches = tx.mandate_demarches(m.id).await?;
    let (revoked, remaining): (Vec<_>, Vec<_>) =
        demarches.into_iter().partition(|d| d.revoked_at.is_some());
    if revoked.is_empty() {
        return Err(AppError::NotFound);
    }
    let terms = terms_of(state, tx.as_mut(), &m).await?;
    let view = render(state, tx.as_mut(), &m, None).await?;
    audit_print(state, tx.as_mut(), caller, &m, "revocation").await?;
    state.commit(tx).await?;
    let input = pdf::Revocation {
        mandate_ref: m.id.to_string(),
        organisation: organisation(&terms),
        usager_name: format!("{} {}", terms.usager.given_name, terms.usager.family_name),
        usager_birthdate: birthdate_fr(&terms.usager.birthdate),
        revoked: revoked
            .iter()
            .map(|d| pdf::RevokedText {
                title: title(&d.demarche),
                revoked_at: d
                    .revoked_at
                    .map(|t| datetime_fr(&crate::domain::time::format(t)))
                    .unwrap_or_default(),
                reason: reason_fr(d.revoked_reason.as_deref().unwrap_or("")).to_owned(),
            })
            .collect(),
        remaining: if m.status == "revoked" {
            Vec::new()
        } else {
            remaining.iter().map(|d| title(&d.demarche)).collect()
        },
        mandate_revoked: m.status == "revoked",
        verification_url: view.verification_url,
    };
    pdf::revocation(&input).map_err(pdf_error)
}
