//! The vault key-encryption key: `keys rotate vault`, the resumable `vault rewrap`, and the
//! bulk rows of the benchmarks.

use super::*;

/// A new version of the vault key-encryption key, for new writes (`mandat keys rotate
/// vault`); data keys wrapped under older versions stay readable until `vault rewrap`.
pub async fn rotate_kek(s: &Services, ctx: &Ctx) -> ApiResult<u32> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let version = current_kek_version(tx.as_mut())
        .await?
        .checked_add(1)
        .filter(|v| i32::try_from(*v).is_ok())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("key version overflow")))?;
    match tx
        .insert_key_version(Purpose::Vault.label(), version as i32, now)
        .await
    {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) => {
            return Err(AppError::Conflict(
                "another rotation of this key happened at the same time; run it again".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            ctx.actor.clone(),
            Details::KeysRotated {
                purpose: Purpose::Vault.label().to_owned(),
                version: i64::from(version),
                key_id: None,
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    s.commit(tx).await?;
    Ok(version)
}

/// What a `vault rewrap` run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RewrapReport {
    /// The version every data key is re-wrapped under.
    pub kek_version: u32,
    pub rewrapped: u64,
    pub batches: u64,
    /// Data keys still under an older version (0 when the run finished).
    pub remaining: i64,
    /// Data keys that did not unwrap under their recorded version (left as they are).
    pub unreadable: u64,
    /// How long each batch took (benchmarks).
    #[serde(skip)]
    pub batch_times: Vec<std::time::Duration>,
}

/// Re-wraps every live data key under the newest vault key-encryption key, `batch` keys per
/// transaction, without touching any field ciphertext. Progress is the row itself (its
/// `kek_version`, changed conditionally in the batch's transaction): a run stopped at any
/// point — or `max_batches` reached — resumes where it stopped, and each key is re-wrapped
/// exactly once. Each batch is audited (`vault.rewrapped`, a count).
pub async fn rewrap(
    s: &Services,
    ctx: &Ctx,
    batch: i64,
    max_batches: Option<u64>,
) -> ApiResult<RewrapReport> {
    let batch = batch.clamp(1, 10_000);
    let target = {
        let mut tx = s.store.begin_read().await?;
        current_kek_version(tx.as_mut()).await?
    };
    let mut keks = Keks::new(s);
    let new_kek = envelope::kek(&s.keyring, target).map_err(crypto("key"))?;
    let mut report = RewrapReport {
        kek_version: target,
        ..RewrapReport::default()
    };
    let mut after: Option<Uuid> = None;
    loop {
        if max_batches.is_some_and(|m| report.batches >= m) {
            break;
        }
        let started = std::time::Instant::now();
        let now = s.clock.now();
        let mut tx = s.store.begin().await?;
        let keys = tx.vault_keys_below(i64::from(target), after, batch).await?;
        let Some(last) = keys.last() else {
            break;
        };
        after = Some(last.id);
        let mut count = 0i64;
        for k in &keys {
            let here = EntryRef {
                organisation: k.organisation_id,
                entry: k.id,
            };
            let old = keks.get(version_u32(k.kek_version)?)?;
            let Ok(wrapped) = envelope::rewrap(old, &new_kek, here, &k.wrapped_key) else {
                tracing::warn!(vault.entry = %k.id, "a vault data key does not unwrap; left as it is");
                report.unreadable += 1;
                continue;
            };
            if tx
                .rewrap_vault_key(k.id, k.kek_version, i64::from(target), &wrapped)
                .await?
            {
                count += 1;
            }
        }
        if count > 0 {
            audit::append(
                tx.as_mut(),
                &NewEvent::new(
                    now,
                    ctx.actor.clone(),
                    Details::VaultRewrapped {
                        kek_version: i64::from(target),
                        count,
                    },
                )
                .request_id(ctx.request_id.clone()),
            )
            .await?;
        }
        s.commit(tx).await?;
        report.rewrapped += u64::try_from(count).unwrap_or(0);
        report.batches += 1;
        report.batch_times.push(started.elapsed());
    }
    let mut tx = s.store.begin_read().await?;
    report.remaining = tx.count_vault_keys_below(i64::from(target)).await?;
    Ok(report)
}

/// A sealed, unlinked entry row for bulk fixtures (benchmarks insert many per transaction,
/// without audit events); the same sealing as [`create`].
pub fn fixture_row(
    s: &Services,
    organisation: Uuid,
    aidant: Uuid,
    kek_version: u32,
    label: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> ApiResult<VaultEntryRow> {
    let mut row = VaultEntryRow {
        id: Uuid::now_v7(),
        organisation_id: organisation,
        created_by: aidant,
        created_at: now,
        updated_at: now,
        usager_id: None,
        demarche: None,
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
        label: Zeroizing::new(label.to_owned()),
        service: Zeroizing::new("service.example".to_owned()),
        login: Zeroizing::new(format!("login-{}", row.id.simple())),
        secret: Zeroizing::new(secret.to_owned()),
        totp_seed: None,
        notes: None,
    };
    let kek = envelope::kek(&s.keyring, kek_version).map_err(crypto("key"))?;
    seal_all(&kek, &mut row, &plain)?;
    Ok(row)
}
