//! Mandates: creation (terms, hash, consent challenge, SMS), reads and lists, revocation,
//! renewal, replacement and expiry. Each use case is one transaction with its audit events.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::consent::{issue_challenge, view_of};
use super::idempotency::{self, IdemKey, Replayable};
use super::pii::{open_usager, seal_field, usager_key};
use super::usagers::{Caller, visible_row};
use crate::audit::{self, Details, NewEvent};
use crate::authz::{Action, Resource};
use crate::domain::FieldError;
use crate::domain::demarche::DemarcheId;
use crate::domain::mandate::{
    ConsentChannel, DemarcheStatus, MandateDuration, MandateStatus, RevocationError,
    RevocationReason, can_renew, plan_revocation,
};
use crate::domain::terms::{Terms, TermsOrganisation, TermsUsager};
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{ChallengeRow, MandateDemarcheRow, MandateFilter, MandateRow, Tx};

pub use super::consent::ConsentView;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MandateDemarche {
    pub id: String,
    pub status: String,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_reason: Option<String>,
}

/// The API shape of a mandate.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mandate {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub usager_id: Uuid,
    pub created_by: Uuid,
    pub demarches: Vec<MandateDemarche>,
    pub duration: String,
    pub status: String,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub terms_hash: String,
    pub renews: Option<Uuid>,
    pub verification_url: String,
    pub consent: Option<ConsentView>,
}

/// A validated request for a new mandate.
#[derive(Debug, Clone)]
pub struct NewMandate {
    pub usager_id: Uuid,
    pub demarches: Vec<DemarcheId>,
    pub duration: MandateDuration,
    pub channel: ConsentChannel,
}

fn internal(what: &str) -> AppError {
    AppError::Internal(anyhow::anyhow!("corrupt {what}"))
}

/// Renders a mandate as seen at `now`; `code` is the printed code of a creation answer.
pub async fn render(
    state: &Services,
    tx: &mut dyn Tx,
    row: &MandateRow,
    code: Option<String>,
) -> ApiResult<Mandate> {
    let demarches = tx.mandate_demarches(row.id).await?;
    let challenge = tx.current_challenge(row.id).await?;
    assemble(state, row, demarches, challenge.as_ref(), code)
}

/// Renders several mandates with two more queries in all (no query per mandate).
pub async fn render_many(
    state: &Services,
    tx: &mut dyn Tx,
    rows: &[MandateRow],
) -> ApiResult<Vec<Mandate>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut demarches: HashMap<Uuid, Vec<MandateDemarcheRow>> = HashMap::new();
    for d in tx.demarches_of_mandates(&ids).await? {
        demarches.entry(d.mandate_id).or_default().push(d);
    }
    let mut challenges: HashMap<Uuid, ChallengeRow> = HashMap::new();
    for c in tx.challenges_of_mandates(&ids).await? {
        // Newest first within each mandate: keep the first seen.
        challenges.entry(c.mandate_id).or_insert(c);
    }
    rows.iter()
        .map(|r| {
            let d = demarches.remove(&r.id).unwrap_or_default();
            assemble(state, r, d, challenges.get(&r.id), None)
        })
        .collect()
}

fn assemble(
    state: &Services,
    row: &MandateRow,
    demarches: Vec<MandateDemarcheRow>,
    challenge: Option<&ChallengeRow>,
    code: Option<String>,
) -> ApiResult<Mandate> {
    let now = state.clock.now();
    let status = MandateStatus::parse(&row.status).ok_or_else(|| internal("mandate.status"))?;
    let effective = status.effective(row.expires_at, now);
    let demarches = demarches
        .into_iter()
        .map(|d| MandateDemarche {
            status: DemarcheStatus::effective(d.revoked_at.is_some(), effective)
                .as_str()
                .to_owned(),
            id: d.demarche,
            revoked_at: d.revoked_at,
            revoked_reason: d.revoked_reason,
        })
        .collect();
    let consent = challenge.map(|c| view_of(c, now, code)).transpose()?;
    Ok(Mandate {
        id: row.id,
        organisation_id: row.organisation_id,
        usager_id: row.usager_id,
        created_by: row.created_by,
        demarches,
        duration: row.duration.clone(),
        status: effective.as_str().to_owned(),
        created_at: row.created_at,
        activated_at: row.activated_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        terms_hash: row.terms_hash.clone(),
        renews: row.renews,
        verification_url: format!(
            "{}/verifier/{}",
            state.config.public_url.trim_end_matches('/'),
            super::verification::verification_ref(state, row.id)?
        ),
        consent,
    })
}

/// The mandate, if it belongs to the organisation (else `404`).
pub async fn own_mandate(tx: &mut dyn Tx, organisation: Uuid, id: Uuid) -> ApiResult<MandateRow> {
    match tx.get_mandate(id).await? {
        Some(m) if m.organisation_id == organisation => Ok(m),
        _ => Err(AppError::NotFound),
    }
}

/// A mandate of the caller's organisation (`404` for another organisation's, as for an
/// unknown one), after the policy decision for `action` on it.
pub async fn authorized(
    state: &Services,
    tx: &mut dyn Tx,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> ApiResult<MandateRow> {
    let m = own_mandate(tx, caller.organisation_id, id).await?;
    caller.authorize(
        state,
        action,
        &Resource::Mandate {
            id,
            organisation: m.organisation_id,
        },
    )?;
    Ok(m)
}

/// Opens a mandate and its consent challenge (printed code returned once, SMS sent).
pub async fn create(
    state: &Services,
    caller: &Caller,
    input: NewMandate,
    idem: Option<&IdemKey>,
) -> ApiResult<Replayable<Mandate>> {
    caller.authorize_org(state, Action::MandateCreate)?;
    let mut tx = state.store.begin().await?;
    if let Some(i) = idem
        && let Some((status, body)) = idempotency::lookup(&state.keyring, tx.as_mut(), i).await?
    {
        let body = with_printed_code(state, tx.as_mut(), body).await?;
        return Ok(Replayable::Replay { status, body });
    }
    let (row, mandate) = create_in(state, tx.as_mut(), caller, &input, None)
        .await?
        .render(state)?;
    if let Some(i) = idem {
        // Stored without the printed code: a replay takes it from the challenge while the
        // challenge is open, so the code is gone from replays (and from the database) as
        // soon as the challenge closes.
        let mut first = mandate.clone();
        if let Some(c) = first.consent.as_mut() {
            c.code = None;
        }
        idempotency::record(
            &state.keyring,
            tx.as_mut(),
            i,
            201,
            &first,
            Some(row.usager_id),
            row.created_at,
        )
        .await?;
    }
    state.commit(tx).await?;
    notify_sms(state, &row);
    Ok(Replayable::Fresh(mandate))
}

/// The stored first answer of a creation, with the printed code put back while its
/// challenge is still open, and without it once consent, refusal, lock or expiry closed it.
async fn with_printed_code(state: &Services, tx: &mut dyn Tx, body: Vec<u8>) -> ApiResult<Vec<u8>> {
    let Ok(mut first) = serde_json::from_slice::<Mandate>(&body) else {
        return Ok(body);
    };
    let Some(view) = first.consent.as_mut() else {
        return Ok(body);
    };
    if view.channel != ConsentChannel::Print.as_str() {
        return Ok(body);
    }
    let code = match (
        tx.get_mandate(first.id).await?,
        tx.get_challenge(view.challenge_id).await?,
    ) {
        (Some(m), Some(ch)) => super::consent::open_printed_code(state, tx, &m, &ch).await?,
        _ => None,
    };
    if code == view.code {
        return Ok(body);
    }
    view.code = code;
    Ok(serde_json::to_vec(&first).map_err(anyhow::Error::from)?)
}

async fn create_in(
    state: &Services,
    tx: &mut dyn Tx,
    caller: &Caller,
    input: &NewMandate,
    renews: Option<Uuid>,
) -> ApiResult<Created> {
    let now = state.clock.now();
    let org = tx
        .get_organisation(caller.organisation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let allowed: Vec<String> =
        serde_json::from_str(&org.allowed_demarches).map_err(|_| internal("allowed_demarches"))?;
    let ids: Vec<String> = input
        .demarches
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    if let Some(bad) = ids.iter().find(|d| !allowed.contains(d)) {
        tracing::info!(demarche = %bad, "démarche outside the organisation's allowed set");
        return Err(AppError::Validation(vec![FieldError::new(
            "demarches",
            "Cette structure ne propose pas l'une des démarches demandées.",
        )]));
    }
    let urow = visible_row(tx, caller.organisation_id, input.usager_id).await?;
    let plain = open_usager(&state.keyring, &urow)?;
    if input.channel == ConsentChannel::Sms && plain.phone.is_none() {
        return Err(AppError::Validation(vec![FieldError::new(
            "consent_channel",
            "Le consentement par SMS demande le numéro de téléphone de l'usager.",
        )]));
    }
    let terms = Terms::new(
        TermsOrganisation {
            id: org.id,
            name: org.name.clone(),
            address: org.address.clone(),
            siret: org.siret.clone(),
        },
        TermsUsager {
            id: urow.id,
            given_name: plain.given_name.to_string(),
            family_name: plain.family_name.to_string(),
            birthdate: plain.birthdate.to_string(),
        },
        &ids,
        input.duration,
        input.channel,
        caller.aidant_id,
    );
    let canonical = zeroize::Zeroizing::new(terms.canonical().map_err(anyhow::Error::from)?);
    let terms_hash = terms.hash().map_err(anyhow::Error::from)?;
    let dek = usager_key(&state.keyring, &urow)?;
    let id = Uuid::now_v7();
    let row = MandateRow {
        id,
        organisation_id: org.id,
        usager_id: urow.id,
        created_by: caller.aidant_id,
        duration: input.duration.as_str().to_owned(),
        consent_channel: input.channel.as_str().to_owned(),
        status: MandateStatus::PendingConsent.as_str().to_owned(),
        terms_hash: terms_hash.clone(),
        terms: seal_field(
            &dek,
            "mandate",
            &id.to_string(),
            "terms",
            urow.key_version as u32,
            &canonical,
        )?,
        terms_key_version: urow.key_version,
        created_at: now,
        activated_at: None,
        expires_at: None,
        revoked_at: None,
        revoked_reason: None,
        ended_at: None,
        renews,
        resends: 0,
    };
    tx.insert_mandate(&row).await?;
    tx.insert_mandate_demarches(id, &terms.demarches).await?;
    let created = NewEvent::new(
        now,
        caller.actor(),
        Details::MandateCreated {
            demarches: terms.demarches.clone(),
            duration: input.duration.as_str().to_owned(),
            consent_channel: input.channel.as_str().to_owned(),
            terms_hash: terms_hash.clone(),
        },
    )
    .organisation(org.id)
    .usager(urow.id)
    .mandate(id)
    .request_id(caller.request_id.clone());
    audit::append(tx, &created).await?;
    let demarche_titles: Vec<String> = input
        .demarches
        .iter()
        .filter_map(|d| {
            crate::domain::demarche::catalogue()
                .iter()
                .find(|c| c.id == d.as_str())
                .map(|c| c.short_title.clone())
        })
        .collect();
    let (code, challenge) = issue_challenge(
        state,
        tx,
        &row,
        &dek,
        plain.phone.as_deref().map(String::as_str),
        &org.name,
        &demarche_titles,
        &caller.actor(),
        caller.request_id.clone(),
        false,
    )
    .await?;
    Ok(Created {
        demarches: terms
            .demarches
            .iter()
            .map(|d| MandateDemarcheRow {
                mandate_id: row.id,
                demarche: d.clone(),
                revoked_at: None,
                revoked_reason: None,
            })
            .collect(),
        row,
        code,
        challenge,
    })
}

/// What [`create_in`] wrote, so that the answer is rendered without reading it back.
pub(crate) struct Created {
    pub row: MandateRow,
    pub demarches: Vec<MandateDemarcheRow>,
    pub challenge: ChallengeRow,
    /// The printed code (shown once), `None` for SMS.
    pub code: Option<String>,
}

impl Created {
    pub(crate) fn render(self, state: &Services) -> ApiResult<(MandateRow, Mandate)> {
        let m = assemble(
            state,
            &self.row,
            self.demarches,
            Some(&self.challenge),
            self.code,
        )?;
        Ok((self.row, m))
    }
}

/// One mandate of the caller's organisation.
pub async fn get(state: &Services, caller: &Caller, id: Uuid) -> ApiResult<Mandate> {
    let mut tx = state.store.begin_read().await?;
    let row = authorized(state, tx.as_mut(), caller, id, Action::MandateRead).await?;
    render(state, tx.as_mut(), &row, None).await
}

/// The audit events of a mandate of the caller's organisation, oldest first (the timeline of
/// its page).
pub async fn timeline(
    state: &Services,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<Vec<serde_json::Value>> {
    {
        let mut tx = state.store.begin_read().await?;
        authorized(state, tx.as_mut(), caller, id, Action::MandateRead).await?;
    }
    let q =
        crate::domain::audit_query::AuditQuery::parse(&crate::domain::audit_query::RawAuditQuery {
            mandate: Some(id.to_string()),
            ..Default::default()
        })
        .map_err(AppError::Validation)?;
    // Authorized above as a read of the mandate, which its events describe.
    let page = super::audit::search(state, &super::Ctx::system(), None, &q, None, 200).await?;
    Ok(page.items)
}

/// List filters, validated.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub usager_id: Option<Uuid>,
    pub status: Option<MandateStatus>,
    pub expiring_within_days: Option<i64>,
    pub cursor: Option<Uuid>,
    pub limit: i64,
}

/// Mandates of the caller's organisation, newest first, with the next cursor.
pub async fn list(
    state: &Services,
    caller: &Caller,
    q: &ListQuery,
) -> ApiResult<(Vec<Mandate>, Option<Uuid>)> {
    caller.authorize_org(state, Action::MandateList)?;
    let now = state.clock.now();
    let filter = MandateFilter {
        organisation_id: caller.organisation_id,
        usager_id: q.usager_id,
        status: q.status.map(|s| s.as_str().to_owned()),
        expiring_before: q
            .expiring_within_days
            .map(|d| now + chrono::Duration::days(d)),
        now,
        before_id: q.cursor,
        limit: q.limit + 1,
    };
    let mut tx = state.store.begin_read().await?;
    let mut rows = tx.list_mandates(&filter).await?;
    let next = if rows.len() as i64 > q.limit {
        rows.truncate(q.limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((render_many(state, tx.as_mut(), &rows).await?, next))
}

/// Revokes some démarches (or all of them) of an active mandate.
pub async fn revoke(
    state: &Services,
    caller: &Caller,
    id: Uuid,
    demarches: Option<Vec<String>>,
    reason: RevocationReason,
) -> ApiResult<Mandate> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let row = authorized(state, tx.as_mut(), caller, id, Action::MandateRevoke).await?;
    let status = MandateStatus::parse(&row.status)
        .ok_or_else(|| internal("mandate.status"))?
        .effective(row.expires_at, now);
    let current: Vec<(String, bool)> = tx
        .mandate_demarches(id)
        .await?
        .into_iter()
        .map(|d| (d.demarche, d.revoked_at.is_some()))
        .collect();
    let plan = plan_revocation(status, &current, demarches.as_deref()).map_err(|e| match e {
        RevocationError::UnknownDemarche => AppError::Validation(vec![FieldError::new(
            "demarches",
            "Cette démarche ne fait pas partie du mandat.",
        )]),
        RevocationError::NotActive | RevocationError::AlreadyRevoked => {
            AppError::Conflict("Ce mandat n'est plus actif pour ces démarches.".into())
        }
    })?;
    let changed = tx
        .revoke_demarches(id, &plan.revoke, now, reason.as_str())
        .await?;
    if changed != plan.revoke.len() as u64 {
        return Err(AppError::Conflict("Ce mandat vient d'être modifié.".into()));
    }
    let base = |d: Details| {
        NewEvent::new(now, caller.actor(), d)
            .organisation(row.organisation_id)
            .usager(row.usager_id)
            .mandate(id)
            .request_id(caller.request_id.clone())
    };
    if plan.revokes_mandate {
        if !tx
            .end_mandate(id, "active", "revoked", now, Some(reason.as_str()))
            .await?
        {
            return Err(AppError::Conflict("Ce mandat vient d'être modifié.".into()));
        }
        audit::append(
            tx.as_mut(),
            &base(Details::MandateRevoked {
                reason: reason.as_str().to_owned(),
            }),
        )
        .await?;
    } else {
        audit::append(
            tx.as_mut(),
            &base(Details::MandateDemarcheRevoked {
                demarches: plan.revoke.clone(),
                reason: reason.as_str().to_owned(),
            }),
        )
        .await?;
    }
    let row = tx.get_mandate(id).await?.ok_or(AppError::NotFound)?;
    let out = render(state, tx.as_mut(), &row, None).await?;
    state.commit(tx).await?;
    Ok(out)
}

/// Opens a new mandate renewing `id` (allowed while active or expired ≤ 365 days).
pub async fn renew(
    state: &Services,
    caller: &Caller,
    id: Uuid,
    duration: MandateDuration,
    demarches: Option<Vec<DemarcheId>>,
    channel: ConsentChannel,
) -> ApiResult<Mandate> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let old = authorized(state, tx.as_mut(), caller, id, Action::MandateRenew).await?;
    let status = MandateStatus::parse(&old.status).ok_or_else(|| internal("mandate.status"))?;
    if !can_renew(status, old.expires_at, now) {
        return Err(AppError::Conflict(
            "Ce mandat ne peut plus être renouvelé.".into(),
        ));
    }
    let demarches = match demarches {
        Some(d) => d,
        None => tx
            .mandate_demarches(id)
            .await?
            .into_iter()
            .filter(|d| d.revoked_at.is_none())
            .filter_map(|d| DemarcheId::parse(&d.demarche))
            .collect(),
    };
    if demarches.is_empty() {
        return Err(AppError::Conflict(
            "Ce mandat ne peut plus être renouvelé.".into(),
        ));
    }
    let input = NewMandate {
        usager_id: old.usager_id,
        demarches,
        duration,
        channel,
    };
    let (row, out) = create_in(state, tx.as_mut(), caller, &input, Some(id))
        .await?
        .render(state)?;
    let event = NewEvent::new(
        now,
        caller.actor(),
        Details::MandateRenewed {
            new_mandate: row.id.to_string(),
        },
    )
    .organisation(old.organisation_id)
    .usager(old.usager_id)
    .mandate(id)
    .request_id(caller.request_id.clone());
    audit::append(tx.as_mut(), &event).await?;
    state.commit(tx).await?;
    notify_sms(state, &row);
    Ok(out)
}

/// After the commit: an SMS challenge left messages in the outbox.
fn notify_sms(state: &Services, row: &MandateRow) {
    if row.consent_channel == ConsentChannel::Sms.as_str() {
        state.sms.notify();
    }
}

pub fn validation(field: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, message)])
}
