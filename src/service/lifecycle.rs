//! The lifecycle over time and across mandates: replacement at activation, and the expiry
//! job (lapsed consent challenges, mandates past `expires_at`, and the bookkeeping rows of
//! ended SMS).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, Actor, Details, NewEvent};
use crate::domain::mandate::{RevocationReason, replaced_demarches};
use crate::error::ApiResult;
use crate::service::Services;
use crate::store::{MandateRow, Tx};

/// At activation: the same organisation's other active mandates with this usager lose the
/// démarches the new one covers (`replaced`); one left with none becomes revoked.
pub async fn replace_older(
    tx: &mut dyn Tx,
    new: &MandateRow,
    actor: &Actor,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> ApiResult<()> {
    let new_demarches: Vec<String> = tx
        .mandate_demarches(new.id)
        .await?
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| d.demarche)
        .collect();
    let others = tx
        .active_demarches_of(new.organisation_id, new.usager_id, new.id)
        .await?;
    let mut by_mandate: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
    for (m, d) in others {
        by_mandate.entry(m).or_default().push(d);
    }
    for (old_id, active) in by_mandate {
        let replaced = replaced_demarches(&active, &new_demarches);
        if replaced.is_empty() {
            continue;
        }
        tx.revoke_demarches(old_id, &replaced, now, RevocationReason::Replaced.as_str())
            .await?;
        let base = |d: Details| {
            NewEvent::new(now, actor.clone(), d)
                .organisation(new.organisation_id)
                .usager(new.usager_id)
                .mandate(old_id)
                .request_id(request_id.clone())
        };
        audit::append(
            tx,
            &base(Details::MandateReplaced {
                demarches: replaced.clone(),
                by: new.id.to_string(),
            }),
        )
        .await?;
        if replaced.len() == active.len()
            && tx
                .end_mandate(
                    old_id,
                    "active",
                    "revoked",
                    now,
                    Some(RevocationReason::Replaced.as_str()),
                )
                .await?
        {
            audit::append(
                tx,
                &base(Details::MandateRevoked {
                    reason: RevocationReason::Replaced.as_str().to_owned(),
                }),
            )
            .await?;
        }
    }
    Ok(())
}

/// The expiry job: lapsed consent challenges expire their pending mandate; active mandates
/// past `expires_at` become expired. Returns how many mandates changed.
pub async fn expire_due(state: &Services) -> ApiResult<u64> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let mut n = 0;
    for (challenge, mandate) in tx.lapsed_challenges(now, 500).await? {
        tx.close_challenge(challenge, "expired", now).await?;
        if let Some(m) = tx.get_mandate(mandate).await?
            && tx
                .end_mandate(mandate, "pending_consent", "expired", now, None)
                .await?
        {
            n += 1;
            audit_expired(tx.as_mut(), &m, now).await?;
        }
    }
    for m in tx.due_mandates(now, 500).await? {
        if tx.end_mandate(m.id, "active", "expired", now, None).await? {
            n += 1;
            audit_expired(tx.as_mut(), &m, now).await?;
        }
    }
    tx.prune_idempotency(now - super::idempotency::KEEP).await?;
    tx.forget_inbound_before(now - chrono::Duration::minutes(10))
        .await?;
    tx.prune_sms(now - crate::sms::delivery::KEEP).await?;
    tx.commit().await?;
    if n > 0 {
        state.sequencer.notify();
    }
    Ok(n)
}

pub async fn audit_expired(tx: &mut dyn Tx, m: &MandateRow, now: DateTime<Utc>) -> ApiResult<()> {
    let event = NewEvent::new(now, Actor::system(), Details::MandateExpired {})
        .organisation(m.organisation_id)
        .usager(m.usager_id)
        .mandate(m.id);
    audit::append(tx, &event).await?;
    Ok(())
}

/// Product rule 1, the data part: the active mandate of `organisation` covering `usager` for
/// `demarche` at `now` (not expired, démarche not revoked), inside the caller's transaction.
/// OIDC and the vault call this before acting for a usager; `None` → `403 mandate_not_active`.
pub async fn covering(
    tx: &mut dyn Tx,
    organisation: Uuid,
    usager: Uuid,
    demarche: &str,
    now: DateTime<Utc>,
) -> ApiResult<Option<MandateRow>> {
    Ok(tx
        .covering_mandate(organisation, usager, demarche, now)
        .await?)
}

/// How often the expiry job runs inside `serve`.
pub const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs [`expire_due`] every [`EXPIRY_EVERY`] until `stop` turns true.
pub async fn run_expiry(state: Services, mut stop: tokio::sync::watch::Receiver<bool>) {
    // The first run waits one period: start-up stays quick, and tests drive the job directly.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + EXPIRY_EVERY, EXPIRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match expire_due(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(mandates = n, "expired mandates"),
                    Err(e) => tracing::warn!(error = %e, "expiry job failed; retrying at the next tick"),
                }
            }
            _ = stop.changed() => {
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}
