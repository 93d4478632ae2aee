//! The credential vault (product rule 3): collective-account credentials of an organisation,
//! sealed with envelope encryption (`crypto::envelope`). Each use case loads the entry,
//! authorizes itself against `policies/vault.cedar`, writes its audit event in the same
//! transaction and commits. Secrets leave only through `reveal` and `hand_over`.

mod entry;
mod keys;

pub use entry::*;
pub use keys::*;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::idempotency::{self, IdemKey, Replayable};
use super::{Caller, Ctx, Services};
use crate::audit::{self, Details, NewEvent};
use crate::authz::{Action, Denial, Facts, Resource};
use crate::crypto::envelope::{self, EntryRef};
use crate::crypto::keyring::PurposeKey;
use crate::crypto::totp::{APP_STEP, Seed};
use crate::crypto::{DataKey, Purpose};
use crate::domain::FieldError;
use crate::domain::demarche::DemarcheId;
use crate::domain::text::clean_text;
use crate::error::{ApiResult, AppError};
use crate::store::{MandateRow, Tx, VaultEntryRow};

fn crypto(what: &'static str) -> impl FnOnce(crate::crypto::CryptoError) -> AppError {
    move |e| AppError::Internal(anyhow::anyhow!("vault {what}: {e}"))
}

/// A stored entry that does not open under its own key and associated data (a ciphertext
/// moved from another row or field, or tampered with): refused with a clear message.
fn unreadable(id: Uuid) -> AppError {
    tracing::warn!(vault.entry = %id, "a vault entry does not decrypt under its own key and associated data");
    AppError::Conflict(
        "Cette entrée du coffre ne peut pas être déchiffrée : ses données ne correspondent pas \
         à cette entrée (copiées d'une autre ou altérées). Rien n'a été révélé ; enregistrez un \
         nouveau secret ou supprimez l'entrée."
            .into(),
    )
}

fn at(row: &VaultEntryRow) -> EntryRef {
    EntryRef {
        organisation: row.organisation_id,
        entry: row.id,
    }
}

fn version_u32(v: i64) -> ApiResult<u32> {
    u32::try_from(v).map_err(|_| AppError::Internal(anyhow::anyhow!("vault version out of range")))
}

/// The newest vault key-encryption key version (new writes use it).
pub async fn current_kek_version(tx: &mut dyn Tx) -> ApiResult<u32> {
    Ok(tx
        .key_versions(Purpose::Vault.label())
        .await?
        .into_iter()
        .filter_map(|v| u32::try_from(v).ok())
        .max()
        .unwrap_or(INITIAL_KEK_VERSION)
        .max(INITIAL_KEK_VERSION))
}

/// Derived key-encryption keys, one derivation per version per use case.
struct Keks<'a> {
    s: &'a Services,
    cache: HashMap<u32, PurposeKey>,
}

impl<'a> Keks<'a> {
    fn new(s: &'a Services) -> Self {
        Self {
            s,
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, version: u32) -> ApiResult<&PurposeKey> {
        if !self.cache.contains_key(&version) {
            let k = envelope::kek(&self.s.keyring, version).map_err(crypto("key"))?;
            self.cache.insert(version, k);
        }
        self.cache
            .get(&version)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("vault key cache")))
    }
}

/// The entry's data key; a wrapping that does not open is reported by [`unreadable`].
fn data_key(keks: &mut Keks<'_>, row: &VaultEntryRow) -> ApiResult<DataKey> {
    let wrapped = row.wrapped_key.as_deref().ok_or(AppError::NotFound)?;
    let kek = keks.get(version_u32(row.kek_version)?)?;
    envelope::unwrap(kek, at(row), wrapped).map_err(|_| unreadable(row.id))
}

fn open_text(
    dek: &DataKey,
    row: &VaultEntryRow,
    field: &str,
    sealed: Option<&[u8]>,
) -> ApiResult<Option<Zeroizing<String>>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = envelope::open_field(dek, at(row), field, version_u32(row.version)?, sealed)
        .map_err(|_| unreadable(row.id))?;
    String::from_utf8(plain.to_vec())
        .map(|s| Some(Zeroizing::new(s)))
        .map_err(|_| unreadable(row.id))
}

fn open_required(
    dek: &DataKey,
    row: &VaultEntryRow,
    field: &str,
    sealed: Option<&[u8]>,
) -> ApiResult<Zeroizing<String>> {
    open_text(dek, row, field, sealed)?.ok_or_else(|| unreadable(row.id))
}

/// Every field of an entry in clear.
struct Plain {
    label: Zeroizing<String>,
    service: Zeroizing<String>,
    login: Zeroizing<String>,
    secret: Zeroizing<String>,
    totp_seed: Option<Zeroizing<Vec<u8>>>,
    notes: Option<Zeroizing<String>>,
}

fn open_all(dek: &DataKey, row: &VaultEntryRow) -> ApiResult<Plain> {
    let totp_seed = match row.totp_seed.as_deref() {
        None => None,
        Some(sealed) => Some(
            envelope::open_field(dek, at(row), "totp_seed", version_u32(row.version)?, sealed)
                .map_err(|_| unreadable(row.id))?,
        ),
    };
    Ok(Plain {
        label: open_required(dek, row, "label", row.label.as_deref())?,
        service: open_required(dek, row, "service", row.service.as_deref())?,
        login: open_required(dek, row, "login", row.login.as_deref())?,
        secret: open_required(dek, row, "secret", row.secret.as_deref())?,
        totp_seed,
        notes: open_text(dek, row, "notes", row.notes.as_deref())?,
    })
}

/// Seals every field of `plain` into `row` under a new data key, at `row.version`, wrapped
/// under `kek`.
fn seal_all(kek: &PurposeKey, row: &mut VaultEntryRow, plain: &Plain) -> ApiResult<()> {
    let dek = DataKey::generate().map_err(crypto("data key"))?;
    let v = version_u32(row.version)?;
    let here = at(row);
    let s = |field: &str, p: &[u8]| {
        envelope::seal_field(&dek, here, field, v, p).map_err(crypto("seal"))
    };
    row.label = Some(s("label", plain.label.as_bytes())?);
    row.service = Some(s("service", plain.service.as_bytes())?);
    row.login = Some(s("login", plain.login.as_bytes())?);
    row.secret = Some(s("secret", plain.secret.as_bytes())?);
    row.totp_seed = plain
        .totp_seed
        .as_ref()
        .map(|b| s("totp_seed", b))
        .transpose()?;
    row.notes = plain
        .notes
        .as_ref()
        .map(|n| s("notes", n.as_bytes()))
        .transpose()?;
    row.kek_version = i64::from(kek.version);
    row.wrapped_key = Some(envelope::wrap(kek, here, &dek).map_err(crypto("wrap"))?);
    Ok(())
}

fn metadata(keks: &mut Keks<'_>, row: &VaultEntryRow) -> ApiResult<VaultEntry> {
    let dek = data_key(keks, row)?;
    Ok(VaultEntry {
        id: row.id,
        organisation_id: row.organisation_id,
        label: open_required(&dek, row, "label", row.label.as_deref())?.to_string(),
        service: open_required(&dek, row, "service", row.service.as_deref())?.to_string(),
        has_totp: row.totp_seed.is_some(),
        usager_id: row.usager_id,
        demarche: row.demarche.clone(),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The entry, when it is live and belongs to the caller's organisation (else `404`), and
/// the active mandate covering its usager for its démarche now, if it is linked.
async fn load(
    tx: &mut dyn Tx,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<(VaultEntryRow, Option<MandateRow>)> {
    let row = tx.get_vault_entry(id).await?.ok_or(AppError::NotFound)?;
    if row.deleted_at.is_some() || row.organisation_id != caller.organisation_id {
        return Err(AppError::NotFound);
    }
    let mandate = match (row.usager_id, row.demarche.as_deref()) {
        (Some(u), Some(d)) => {
            super::lifecycle::covering(tx, row.organisation_id, u, d, now).await?
        }
        _ => None,
    };
    Ok((row, mandate))
}

/// Decides `action` on the entry. A refusal that an active mandate would lift is
/// `403 mandate_not_active` (api.md), a refusal that a step-up would lift
/// `403 step_up_required`.
fn authorize(
    s: &Services,
    caller: &Caller,
    action: Action,
    row: &VaultEntryRow,
    mandate: Option<&MandateRow>,
) -> ApiResult<()> {
    let resource = |mandate_active| Resource::VaultEntry {
        id: row.id,
        organisation: row.organisation_id,
        linked: row.usager_id.is_some(),
        mandate_active,
    };
    match s.authz.authorize(
        &caller.principal,
        action,
        &resource(mandate.is_some()),
        &Facts::none(),
    ) {
        Ok(()) => Ok(()),
        Err(Denial::Forbidden)
            if mandate.is_none()
                && row.usager_id.is_some()
                && s.authz.authorize(
                    &caller.principal,
                    action,
                    &resource(true),
                    &Facts::none(),
                ) != Err(Denial::Forbidden) =>
        {
            Err(AppError::MandateNotActive)
        }
        Err(d) => Err(d.into()),
    }
}

fn event(caller: &Caller, now: DateTime<Utc>, row: &VaultEntryRow, details: Details) -> NewEvent {
    let mut e = NewEvent::new(now, caller.actor(), details)
        .organisation(row.organisation_id)
        .target(row.id)
        .request_id(caller.request_id.clone());
    if let Some(u) = row.usager_id {
        e = e.usager(u);
    }
    e
}

/// Adds an entry to the caller's organisation (`201 VaultEntry`, no secret in it).
pub async fn create(
    s: &Services,
    caller: &Caller,
    input: NewEntry,
    idem: Option<&IdemKey>,
) -> ApiResult<Replayable<VaultEntry>> {
    s.authz.authorize(
        &caller.principal,
        Action::VaultCreate,
        &Resource::Organisation(caller.organisation_id),
        &Facts::none(),
    )?;
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    if let Some(i) = idem
        && let Some((status, body)) = idempotency::lookup(&s.keyring, tx.as_mut(), i).await?
    {
        return Ok(Replayable::Replay { status, body });
    }
    if let Some((usager, _)) = &input.link
        && super::usagers::visible_row(tx.as_mut(), caller.organisation_id, *usager)
            .await
            .is_err()
    {
        return Err(AppError::Validation(vec![FieldError::new(
            "usager_id",
            "Cet usager n'est pas suivi par votre structure.",
        )]));
    }
    let kek_version = current_kek_version(tx.as_mut()).await?;
    let mut keks = Keks::new(s);
    let id = Uuid::now_v7();
    let mut row = VaultEntryRow {
        id,
        organisation_id: caller.organisation_id,
        created_by: caller.aidant_id,
        created_at: now,
        updated_at: now,
        usager_id: input.link.as_ref().map(|(u, _)| *u),
        demarche: input.link.as_ref().map(|(_, d)| d.as_str().to_owned()),
        kek_version: 0,
        wrapped_key: None,
        version: 1,
        label: None,
        service: None,
        login: None,
        secret: None,
        totp_seed: None,
        notes: None,
        deleted_at: None,
    };
    let plain = Plain {
        label: Zeroizing::new(input.label.clone()),
        service: Zeroizing::new(input.service.clone()),
        login: Zeroizing::new(input.login.expose_secret().to_owned()),
        secret: Zeroizing::new(input.secret.expose_secret().to_owned()),
        totp_seed: input
            .totp_seed
            .as_ref()
            .map(|seed| Zeroizing::new(seed.bytes().to_vec())),
        notes: input
            .notes
            .as_ref()
            .map(|n| Zeroizing::new(n.expose_secret().to_owned())),
    };
    seal_all(keks.get(kek_version)?, &mut row, &plain)?;
    tx.insert_vault_entry(&row).await?;
    audit::append(
        tx.as_mut(),
        &event(
            caller,
            now,
            &row,
            Details::VaultCreated {
                linked: row.usager_id.is_some(),
                demarche: row.demarche.clone(),
                has_totp: row.totp_seed.is_some(),
            },
        ),
    )
    .await?;
    let entry = metadata(&mut keks, &row)?;
    if let Some(i) = idem {
        idempotency::record(&s.keyring, tx.as_mut(), i, 201, &entry, row.usager_id, now).await?;
    }
    s.commit(tx).await?;
    Ok(Replayable::Fresh(entry))
}

/// The organisation's entries (metadata only), `limit` per page after the opaque `cursor`.
pub async fn list(
    s: &Services,
    caller: &Caller,
    cursor: Option<&str>,
    limit: i64,
) -> ApiResult<VaultPage> {
    s.authz.authorize(
        &caller.principal,
        Action::VaultList,
        &Resource::Organisation(caller.organisation_id),
        &Facts::none(),
    )?;
    let after = match cursor {
        None => None,
        Some(c) => Some(Uuid::parse_str(c).map_err(|_| AppError::InvalidRequest {
            detail: "Le curseur de pagination est invalide.".into(),
            errors: vec![],
        })?),
    };
    let limit = limit.clamp(1, 500);
    let mut tx = s.store.begin_read().await?;
    let rows = tx
        .list_vault_entries(caller.organisation_id, after, limit + 1)
        .await?;
    drop(tx);
    let more = rows.len() as i64 > limit;
    let mut keks = Keks::new(s);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        match metadata(&mut keks, row) {
            Ok(m) => items.push(m),
            // One unreadable entry does not hide the others: it is listed without its text.
            Err(AppError::Conflict(_)) => items.push(VaultEntry {
                id: row.id,
                organisation_id: row.organisation_id,
                label: "Entrée illisible".into(),
                service: String::new(),
                has_totp: row.totp_seed.is_some(),
                usager_id: row.usager_id,
                demarche: row.demarche.clone(),
                version: row.version,
                created_at: row.created_at,
                updated_at: row.updated_at,
            }),
            Err(e) => return Err(e),
        }
    }
    let next_cursor = more
        .then(|| items.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(VaultPage { items, next_cursor })
}

/// Reveals the secret (and the account's current TOTP code) of an entry: audited.
pub async fn reveal(
    s: &Services,
    caller: &Caller,
    id: Uuid,
    reason: Reason,
) -> ApiResult<Revealed> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (row, mandate) = load(tx.as_mut(), caller, id, now).await?;
    authorize(s, caller, Action::VaultReveal, &row, mandate.as_ref())?;
    let mut keks = Keks::new(s);
    let dek = data_key(&mut keks, &row)?;
    let plain = open_all(&dek, &row)?;
    let totp_code = plain.totp_seed.as_ref().map(|b| {
        Seed::from_bytes(b.to_vec()).code_at(APP_STEP, u64::try_from(now.timestamp()).unwrap_or(0))
    });
    let mut e = event(
        caller,
        now,
        &row,
        Details::VaultRevealed {
            reason: reason.as_str().to_owned(),
            totp_code: totp_code.is_some(),
        },
    );
    if let Some(m) = &mandate {
        e = e.mandate(m.id);
    }
    audit::append(tx.as_mut(), &e).await?;
    s.commit(tx).await?;
    Ok(Revealed {
        secret: plain.secret,
        login: plain.login,
        totp_code,
        notes: plain.notes,
    })
}

/// Replaces the secret: a new version under a new data key; the old ciphertexts are
/// overwritten.
pub async fn rotate(
    s: &Services,
    caller: &Caller,
    id: Uuid,
    secret: SecretString,
) -> ApiResult<()> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (row, mandate) = load(tx.as_mut(), caller, id, now).await?;
    authorize(s, caller, Action::VaultRotate, &row, mandate.as_ref())?;
    let mut keks = Keks::new(s);
    let dek = data_key(&mut keks, &row)?;
    let mut plain = open_all(&dek, &row)?;
    plain.secret = Zeroizing::new(secret.expose_secret().to_owned());
    let mut next = VaultEntryRow {
        version: row.version + 1,
        updated_at: now,
        ..row.clone()
    };
    let kek_version = current_kek_version(tx.as_mut()).await?;
    seal_all(keks.get(kek_version)?, &mut next, &plain)?;
    if !tx.replace_vault_fields(&next, row.version).await? {
        return Err(AppError::Conflict(
            "Le secret de cette entrée vient d'être changé par ailleurs ; rechargez la page."
                .into(),
        ));
    }
    audit::append(
        tx.as_mut(),
        &event(
            caller,
            now,
            &next,
            Details::VaultRotated {
                version: next.version,
            },
        ),
    )
    .await?;
    s.commit(tx).await.map_err(AppError::from)
}

/// Deletes an entry: its data key and ciphertexts are destroyed (crypto-shredding).
pub async fn delete(s: &Services, caller: &Caller, id: Uuid) -> ApiResult<()> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (row, mandate) = load(tx.as_mut(), caller, id, now).await?;
    authorize(s, caller, Action::VaultDelete, &row, mandate.as_ref())?;
    if !tx.shred_vault_entry(row.id, now).await? {
        return Err(AppError::NotFound);
    }
    audit::append(
        tx.as_mut(),
        &event(caller, now, &row, Details::VaultDeleted {}),
    )
    .await?;
    s.commit(tx).await.map_err(AppError::from)
}

/// The SMS that hands an access code over.
pub fn hand_over_text(service: &str, login: &str, code: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "Vos identifiants pour {service} : identifiant {login}, code d'accès {code}. \
         Ce compte est le vôtre ; ne communiquez ce code à personne."
    ))
}

/// Gives the account's access code to the entry's usager: a printed slip (returned, never
/// stored) or an SMS to the usager's phone through the outbox (sent after the commit).
pub async fn hand_over(
    s: &Services,
    caller: &Caller,
    id: Uuid,
    channel: Channel,
) -> ApiResult<HandedOver> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (row, mandate) = load(tx.as_mut(), caller, id, now).await?;
    authorize(s, caller, Action::VaultHandOver, &row, mandate.as_ref())?;
    let (Some(mandate), Some(usager_id)) = (mandate, row.usager_id) else {
        return Err(AppError::MandateNotActive);
    };
    let mut keks = Keks::new(s);
    let dek = data_key(&mut keks, &row)?;
    let plain = open_all(&dek, &row)?;
    let out = match channel {
        Channel::Print => {
            let org = tx
                .get_organisation(row.organisation_id)
                .await?
                .ok_or(AppError::NotFound)?;
            let slip = crate::pdf::VaultSlip {
                organisation_name: org.name,
                service: plain.service.to_string(),
                login: plain.login.clone(),
                access_code: plain.secret.clone(),
                date: crate::domain::wording::date(now),
            };
            HandedOver::Slip(
                crate::pdf::vault_slip(&slip)
                    .map_err(|e| AppError::Internal(anyhow::anyhow!("vault slip: {e}")))?,
            )
        }
        Channel::Sms => {
            let urow = tx.get_usager(usager_id).await?.ok_or(AppError::NotFound)?;
            let usager = super::pii::open_usager(&s.keyring, &urow)?;
            let Some(phone) = usager.phone.as_ref() else {
                return Err(AppError::Validation(vec![FieldError::new(
                    "channel",
                    "Cet usager n'a pas de numéro de téléphone : remettez-lui plutôt le code sur une feuille imprimée.",
                )]));
            };
            let udek = super::pii::usager_key(&s.keyring, &urow)?;
            crate::sms::delivery::enqueue(
                tx.as_mut(),
                &udek,
                urow.key_version,
                crate::sms::delivery::Outgoing {
                    mandate: &mandate,
                    challenge: row.id,
                    to: phone,
                    messages: vec![(
                        crate::sms::SmsKind::VaultAccessCode,
                        hand_over_text(&plain.service, &plain.login, &plain.secret),
                    )],
                },
                now,
            )
            .await?;
            HandedOver::SmsQueued
        }
    };
    audit::append(
        tx.as_mut(),
        &event(
            caller,
            now,
            &row,
            Details::VaultHandedOver {
                channel: channel.as_str().to_owned(),
            },
        )
        .mandate(mandate.id),
    )
    .await?;
    s.commit(tx).await?;
    if channel == Channel::Sms {
        s.sms.notify();
    }
    Ok(out)
}
