//! Usagers: registration (sealed personal data + blind index), audited reads, search.
//! A usager is visible only to the organisations linked to them.

use serde::Serialize;
use uuid::Uuid;

use super::idempotency::{self, IdemKey, Replayable};
use super::pii::{open_usager, seal_usager};
use crate::audit::{self, Details, NewEvent};
use crate::authz::{Action, Resource};
use crate::crypto::Purpose;
use crate::domain::FieldError;
use crate::domain::mandate::{MandateStatus, erasure_allowed};
use crate::domain::search::{IndexKind, SearchQuery, usager_entries};
use crate::domain::usager::NewUsager;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{MandateRow, Tx, UsagerRow};

/// Version of the blind-index key used for new entries and searches.
pub const INDEX_KEY_VERSION: u32 = 1;

pub use super::Caller;

/// The API shape of a usager.
#[derive(Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Usager {
    pub id: Uuid,
    pub given_name: String,
    pub family_name: String,
    pub birthdate: String,
    pub birthplace: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub identity_check: String,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for Usager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Usager({}, [redacted])", self.id)
    }
}

fn to_api(state: &Services, row: &UsagerRow) -> ApiResult<Usager> {
    let p = open_usager(&state.keyring, row)?;
    Ok(Usager {
        id: row.id,
        given_name: p.given_name.to_string(),
        family_name: p.family_name.to_string(),
        birthdate: p.birthdate.to_string(),
        birthplace: p.birthplace.map(|s| s.to_string()),
        phone: p.phone.map(|s| s.to_string()),
        email: p.email.map(|s| s.to_string()),
        identity_check: row.identity_check.clone(),
        created_at: row.created_at,
    })
}

fn index_mac(state: &Services, kind: IndexKind, value: &str) -> ApiResult<Vec<u8>> {
    let key = state
        .keyring
        .key(Purpose::Index, INDEX_KEY_VERSION)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("index key: {e}")))?;
    Ok(key
        .hmac(&[kind.as_str().as_bytes(), value.as_bytes()])
        .to_vec())
}

/// Whether the caller may register usagers for their organisation (the form is shown only
/// then).
pub fn may_register(state: &Services, caller: &Caller) -> ApiResult<()> {
    caller.authorize_org(state, Action::UsagerCreate)
}

/// Registers a usager for the caller's organisation (which is linked to them from now on).
pub async fn create(
    state: &Services,
    caller: &Caller,
    input: NewUsager,
    idem: Option<&IdemKey>,
) -> ApiResult<Replayable<Usager>> {
    caller.authorize_org(state, Action::UsagerCreate)?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    if let Some(i) = idem
        && let Some((status, body)) = idempotency::lookup(&state.keyring, tx.as_mut(), i).await?
    {
        return Ok(Replayable::Replay { status, body });
    }
    if tx.get_organisation(caller.organisation_id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let id = Uuid::now_v7();
    let base = UsagerRow {
        id,
        created_at: now,
        created_by: caller.aidant_id,
        created_by_org: caller.organisation_id,
        identity_check: input.identity_check.as_str().to_owned(),
        key_version: 0,
        wrapped_key: None,
        given_name: vec![],
        family_name: vec![],
        birthdate: vec![],
        birthplace: None,
        phone: None,
        email: None,
        erased_at: None,
        archived_at: None,
    };
    let row = seal_usager(&state.keyring, id, &input, base)?;
    tx.insert_usager(&row).await?;
    tx.link_usager(caller.organisation_id, id, now).await?;
    for (kind, value) in usager_entries(
        input.given_name.as_str(),
        input.family_name.as_str(),
        input.birthdate.date(),
    ) {
        let mac = index_mac(state, kind, &value)?;
        tx.insert_usager_index(id, kind.as_str(), i64::from(INDEX_KEY_VERSION), &mac)
            .await?;
    }
    let event = NewEvent::new(
        now,
        caller.actor(),
        Details::UsagerCreated {
            identity_check: input.identity_check.as_str().to_owned(),
            has_phone: input.phone.is_some(),
            has_email: input.email.is_some(),
        },
    )
    .organisation(caller.organisation_id)
    .usager(id)
    .request_id(caller.request_id.clone());
    audit::append(tx.as_mut(), &event).await?;
    let usager = to_api(state, &row)?;
    if let Some(i) = idem {
        idempotency::record(&state.keyring, tx.as_mut(), i, 201, &usager, Some(id), now).await?;
    }
    state.commit(tx).await?;
    Ok(Replayable::Fresh(usager))
}

/// The usager row, if visible to the organisation (else `404`): linked to it, neither erased
/// nor archived (an archived identity is the DPO's only, see [`read_archived`]).
pub async fn visible_row(tx: &mut dyn Tx, organisation: Uuid, id: Uuid) -> ApiResult<UsagerRow> {
    Ok(visible(tx, organisation, id).await?.0)
}

/// [`visible_row`] and the organisations linked to the usager.
async fn visible(
    tx: &mut dyn Tx,
    organisation: Uuid,
    id: Uuid,
) -> ApiResult<(UsagerRow, Vec<Uuid>)> {
    let row = tx.get_usager(id).await?.ok_or(AppError::NotFound)?;
    if row.erased_at.is_some() || row.archived_at.is_some() {
        return Err(AppError::NotFound);
    }
    let linked = tx.usager_links(id).await?;
    if !linked.contains(&organisation) {
        return Err(AppError::NotFound);
    }
    Ok((row, linked))
}

/// A usager visible to the caller's organisation (`404` otherwise), after the policy
/// decision for reading their data.
pub async fn readable(
    state: &Services,
    tx: &mut dyn Tx,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<UsagerRow> {
    let (row, linked) = visible(tx, caller.organisation_id, id).await?;
    caller.authorize(
        state,
        Action::UsagerRead,
        &Resource::Usager {
            id,
            linked,
            archived: false,
        },
    )?;
    Ok(row)
}

async fn audit_read(tx: &mut dyn Tx, state: &Services, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let event = NewEvent::new(state.clock.now(), caller.actor(), Details::UsagerRead {})
        .organisation(caller.organisation_id)
        .usager(id)
        .request_id(caller.request_id.clone());
    audit::append(tx, &event).await?;
    Ok(())
}

/// Reads a usager's personal data (audited).
pub async fn get(state: &Services, caller: &Caller, id: Uuid) -> ApiResult<Usager> {
    let mut tx = state.store.begin().await?;
    let row = readable(state, tx.as_mut(), caller, id).await?;
    let usager = to_api(state, &row)?;
    audit_read(tx.as_mut(), state, caller, id).await?;
    state.commit(tx).await?;
    Ok(usager)
}

/// What authorization needs to know of a usager.
#[derive(Debug, Clone)]
pub struct UsagerFacts {
    /// The organisations linked to the usager.
    pub linked: Vec<Uuid>,
    /// Whether the identity is archived (readable by the DPO only).
    pub archived: bool,
}

/// The organisations linked to a usager and whether it is archived (for authorization);
/// `404` when unknown or erased.
pub async fn links(state: &Services, id: Uuid) -> ApiResult<UsagerFacts> {
    let mut tx = state.store.begin_read().await?;
    let row = tx.get_usager(id).await?.ok_or(AppError::NotFound)?;
    if row.erased_at.is_some() {
        return Err(AppError::NotFound);
    }
    Ok(UsagerFacts {
        linked: tx.usager_links(id).await?,
        archived: row.archived_at.is_some(),
    })
}

/// The DPO reads an archived identity, for proof (product rule 8); audited like any read.
/// Authorized here (`usager.read` on an archived usager); anything not archived is `404`
/// to the DPO, who never reads a live usager's data.
pub async fn read_archived(state: &Services, ctx: &super::Ctx, id: Uuid) -> ApiResult<Usager> {
    let mut tx = state.store.begin().await?;
    let row = tx
        .get_usager(id)
        .await?
        .filter(|r| r.erased_at.is_none() && r.archived_at.is_some())
        .ok_or(AppError::NotFound)?;
    let linked = tx.usager_links(id).await?;
    ctx.authorize(
        state,
        Action::UsagerRead,
        &Resource::Usager {
            id,
            linked,
            archived: true,
        },
    )?;
    let usager = to_api(state, &row)?;
    let event = NewEvent::new(state.clock.now(), ctx.actor.clone(), Details::UsagerRead {})
        .usager(id)
        .request_id(ctx.request_id.clone());
    audit::append(tx.as_mut(), &event).await?;
    state.commit(tx).await?;
    Ok(usager)
}

/// Searches the caller's organisation's usagers by blind index; every result is an audited
/// read.
pub async fn search(
    state: &Services,
    caller: &Caller,
    q: &str,
    limit: i64,
) -> ApiResult<Vec<Usager>> {
    caller.authorize_org(state, Action::UsagerSearch)?;
    let query = SearchQuery::parse(q).ok_or_else(|| {
        AppError::Validation(vec![FieldError::new(
            "q",
            "Indiquez un nom, une date de naissance (AAAA-MM-JJ), ou les deux.",
        )])
    })?;
    let name_macs = match &query.name {
        Some(n) => vec![index_mac(state, IndexKind::Name, n)?],
        None => vec![],
    };
    let bd_mac = query
        .birthdate
        .as_deref()
        .map(|d| index_mac(state, IndexKind::Birthdate, d))
        .transpose()?;
    let mut tx = state.store.begin().await?;
    let ids = tx
        .search_usagers(caller.organisation_id, &name_macs, bd_mac.as_deref(), limit)
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = tx.get_usager(id).await? {
            out.push(to_api(state, &row)?);
            audit_read(tx.as_mut(), state, caller, id).await?;
        }
    }
    let event = NewEvent::new(
        state.clock.now(),
        caller.actor(),
        Details::UsagerSearched {
            results: out.len() as i64,
        },
    )
    .organisation(caller.organisation_id)
    .request_id(caller.request_id.clone());
    audit::append(tx.as_mut(), &event).await?;
    state.commit(tx).await?;
    Ok(out)
}

/// `(status, end)` of each mandate as seen at `now` (`end` = when it was refused, expired or
/// revoked), for [`erasure_allowed`].
pub(crate) fn mandate_ends(
    mandates: &[MandateRow],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(MandateStatus, Option<chrono::DateTime<chrono::Utc>>)> {
    mandates
        .iter()
        .map(|m| {
            let status = MandateStatus::parse(&m.status)
                .unwrap_or(MandateStatus::Active)
                .effective(m.expires_at, now);
            let end = m.ended_at.or(if status == MandateStatus::Expired {
                m.expires_at
            } else {
                None
            });
            (status, end)
        })
        .collect()
}

/// Crypto-shreds a usager in the caller's transaction: data key and ciphertexts gone (their
/// personal data, the terms of their mandates and any printed code become unreadable), blind
/// index and stored idempotent answers about them removed, `usager.erased` recorded.
/// `false` when already erased.
pub(crate) async fn shred(
    tx: &mut dyn Tx,
    id: Uuid,
    mandates: usize,
    now: chrono::DateTime<chrono::Utc>,
    ctx: &super::Ctx,
) -> ApiResult<bool> {
    if !tx.erase_usager(id, now).await? {
        return Ok(false);
    }
    tx.delete_idempotency_of_usager(id).await?;
    let event = NewEvent::new(
        now,
        ctx.actor.clone(),
        Details::UsagerErased {
            mandates: mandates as i64,
        },
    )
    .usager(id)
    .request_id(ctx.request_id.clone());
    audit::append(tx, &event).await?;
    Ok(true)
}

/// Erases a usager (DPO): see [`shred`]. `409` while a mandate is pending or active, or its
/// evidence is still retained (`mandate_evidence_days` of the retention policy).
pub async fn erase(state: &Services, ctx: &super::Ctx, id: Uuid) -> ApiResult<()> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let row = tx.get_usager(id).await?.ok_or(AppError::NotFound)?;
    if row.erased_at.is_some() {
        return Err(AppError::NotFound);
    }
    ctx.authorize(
        state,
        Action::UsagerErase,
        &Resource::Usager {
            id,
            linked: tx.usager_links(id).await?,
            archived: row.archived_at.is_some(),
        },
    )?;
    let mandates = tx.mandates_of_usager(id).await?;
    let ends = mandate_ends(&mandates, now);
    if !erasure_allowed(&ends, now, state.retention.mandate_evidence_days) {
        return Err(AppError::Conflict(
            "Ce usager a un mandat en cours ou dont la preuve doit encore être conservée.".into(),
        ));
    }
    if !shred(tx.as_mut(), id, mandates.len(), now, ctx).await? {
        return Err(AppError::NotFound);
    }
    state.commit(tx).await?;
    Ok(())
}
