//! SMS leave after the commit. A use case writes its messages to the `sms_outbox` table in
//! its own transaction ([`enqueue`]); after the commit it wakes the worker ([`Delivery::notify`]),
//! which also polls every [`POLL_EVERY`]. The worker claims one due message at a time in a
//! short transaction, commits the claim, and only then hands the message to the
//! [`SmsSender`]: no provider call (file append or network) ever happens while a
//! transaction is open, and a rolled-back use case leaves nothing to send.
//!
//! A failed send is retried with exponential backoff ([`backoff`]); after [`MAX_ATTEMPTS`]
//! the message is `failed` and `sms.failed` is audited (challenge id and attempt count, never
//! the number or the text). The sealed message (number and text, which may hold a consent
//! code) is erased as soon as the message is sent, failed or void. A message whose challenge
//! has closed meanwhile (answered, replaced, expired) or whose usager was erased is `void`:
//! it is not sent. Delivery is at least once: a worker that stops between the send and its
//! bookkeeping leaves the message to be sent again when its claim lapses ([`LEASE`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{SmsKind, SmsMessage, SmsSender};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::crypto::DataKey;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::service::pii::{open_field, seal_field, usager_key};
use crate::store::{MandateRow, SmsOutboxRow, Tx};

/// Delivery attempts of one message before it is given up.
pub const MAX_ATTEMPTS: i64 = 5;
/// How often the worker looks for due messages without being woken.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a claim holds: past it, another worker may take the message again.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How long ended messages (their ids and times only) are kept.
pub const KEEP: chrono::Duration = chrono::Duration::days(1);
/// Messages handled per pass before the worker looks at its stop signal again.
const PASS_LIMIT: usize = 100;

const TABLE: &str = "sms_outbox";
const FIELD: &str = "message";

/// The wait before the next attempt, after `attempts` failed ones: 5 s, 10 s, 20 s, 40 s…,
/// at most 5 minutes.
pub fn backoff(attempts: i64) -> chrono::Duration {
    let doublings = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    (chrono::Duration::seconds(5) * 2_i32.pow(doublings)).min(chrono::Duration::minutes(5))
}

/// The configured sender and the worker's wake-up, shared by every request.
#[derive(Clone)]
pub struct Delivery {
    sender: Arc<dyn SmsSender>,
    wake: Arc<Notify>,
}

impl Delivery {
    pub fn new(sender: Arc<dyn SmsSender>) -> Self {
        Self {
            sender,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn sender(&self) -> &dyn SmsSender {
        self.sender.as_ref()
    }

    /// Tells the worker that messages were committed (call after the commit).
    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

/// What the sealed column holds.
#[derive(Serialize, Deserialize)]
struct Sealed {
    to: String,
    body: String,
}

/// The messages of one challenge, in sending order.
pub struct Outgoing<'a> {
    pub mandate: &'a MandateRow,
    pub challenge: Uuid,
    /// E.164.
    pub to: &'a str,
    pub messages: Vec<(SmsKind, Zeroizing<String>)>,
}

/// Writes the messages to the outbox in the caller's transaction, sealed under the usager's
/// data key (`dek`, version `key_version`). Nothing is sent before the caller commits.
pub async fn enqueue(
    tx: &mut dyn Tx,
    dek: &DataKey,
    key_version: i64,
    out: Outgoing<'_>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let version = u32::try_from(key_version)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("usager.key_version")))?;
    for (seq, (kind, body)) in out.messages.into_iter().enumerate() {
        let id = Uuid::now_v7();
        let plain = Zeroizing::new(
            serde_json::to_string(&Sealed {
                to: out.to.to_owned(),
                body: body.to_string(),
            })
            .map_err(anyhow::Error::from)?,
        );
        let row = SmsOutboxRow {
            id,
            mandate_id: out.mandate.id,
            challenge_id: out.challenge,
            usager_id: out.mandate.usager_id,
            seq: i64::try_from(seq).unwrap_or(i64::MAX),
            kind: kind.as_str().to_owned(),
            status: "pending".into(),
            key_version,
            message: Some(seal_field(
                dek,
                TABLE,
                &id.to_string(),
                FIELD,
                version,
                &plain,
            )?),
            attempts: 0,
            created_at: now,
            next_attempt_at: now,
            claimed_until: None,
            done_at: None,
        };
        tx.insert_sms(&row).await?;
    }
    Ok(())
}

/// What happened to one claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retried,
    Failed,
    Void,
}

impl Outcome {
    /// The metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Void => "void",
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub void: usize,
}

impl Pass {
    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Sent => self.sent += 1,
            Outcome::Retried => self.retried += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Void => self.void += 1,
        }
    }

    pub fn handled(&self) -> usize {
        self.sent + self.retried + self.failed + self.void
    }
}

/// Handles the messages due now, one at a time, through `sender`.
pub async fn deliver_due(state: &Services, sender: &dyn SmsSender) -> ApiResult<Pass> {
    let mut pass = Pass::default();
    {
        // A read first: an idle poll never takes the write lock (SQLite's single writer).
        let mut tx = state.store.begin_read().await?;
        if !tx.sms_due(state.clock.now()).await? {
            return Ok(pass);
        }
    }
    for _ in 0..PASS_LIMIT {
        match deliver_one(state, sender).await? {
            Some(o) => pass.count(o),
            None => break,
        }
    }
    Ok(pass)
}

/// Claims, sends and records one message; `None` when none is due.
pub async fn deliver_one(state: &Services, sender: &dyn SmsSender) -> ApiResult<Option<Outcome>> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let Some(row) = tx.claim_sms(now, now + LEASE).await? else {
        return Ok(None);
    };
    let Some(msg) = open_message(state, tx.as_mut(), &row, now).await? else {
        tx.finish_sms(row.id, row.attempts, "void", now).await?;
        tx.commit().await?;
        ::metrics::counter!(crate::metrics::SMS, "outcome" => Outcome::Void.name()).increment(1);
        return Ok(Some(Outcome::Void));
    };
    tx.commit().await?;
    // The claim is committed and no transaction is open: only now does the message leave.
    let sent = sender.send(&msg).await;
    drop(msg);
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let outcome = match sent {
        Ok(()) => {
            tx.finish_sms(row.id, row.attempts, "sent", now).await?;
            Outcome::Sent
        }
        Err(e) if row.attempts >= MAX_ATTEMPTS => {
            tracing::warn!(error = %e, mandate.id = %row.mandate_id, challenge = %row.challenge_id,
                attempts = row.attempts, "sms not delivered; giving up");
            if tx.finish_sms(row.id, row.attempts, "failed", now).await? {
                let mut event = NewEvent::new(
                    now,
                    Actor::system(),
                    Details::SmsFailed {
                        challenge: row.challenge_id.to_string(),
                        attempts: row.attempts,
                    },
                )
                .usager(row.usager_id)
                .mandate(row.mandate_id);
                if let Some(m) = tx.get_mandate(row.mandate_id).await? {
                    event = event.organisation(m.organisation_id);
                }
                audit::append(tx.as_mut(), &event).await?;
            }
            Outcome::Failed
        }
        Err(e) => {
            tracing::warn!(error = %e, mandate.id = %row.mandate_id, challenge = %row.challenge_id,
                attempts = row.attempts, "sms not delivered; will retry");
            tx.retry_sms(row.id, row.attempts, now + backoff(row.attempts))
                .await?;
            Outcome::Retried
        }
    };
    tx.commit().await?;
    ::metrics::counter!(crate::metrics::SMS, "outcome" => outcome.name()).increment(1);
    if outcome == Outcome::Failed {
        state.sequencer.notify();
    }
    Ok(Some(outcome))
}

/// The message in clear, or `None` when it must not be sent any more: its challenge closed
/// or lapsed, its usager was erased, or it cannot be opened.
async fn open_message(
    state: &Services,
    tx: &mut dyn Tx,
    row: &SmsOutboxRow,
    now: DateTime<Utc>,
) -> ApiResult<Option<SmsMessage>> {
    let Some(kind) = SmsKind::parse(&row.kind) else {
        return Ok(None);
    };
    match kind {
        SmsKind::Recap | SmsKind::Code => match tx.get_challenge(row.challenge_id).await? {
            Some(c) if c.status == "open" && now < c.expires_at => {}
            _ => return Ok(None),
        },
        SmsKind::Receipt => {}
        // A vault access code (`challenge_id` is the entry) leaves only while its mandate
        // is still active.
        SmsKind::VaultAccessCode => match tx.get_mandate(row.mandate_id).await? {
            Some(m) if m.status == "active" => {}
            _ => return Ok(None),
        },
    }
    let (Some(sealed), Some(urow)) = (row.message.as_deref(), tx.get_usager(row.usager_id).await?)
    else {
        return Ok(None);
    };
    let Ok(dek) = usager_key(&state.keyring, &urow) else {
        return Ok(None);
    };
    let version = u32::try_from(row.key_version).unwrap_or(0);
    let opened = open_field(&dek, TABLE, &row.id.to_string(), FIELD, version, sealed)
        .ok()
        .and_then(|plain| serde_json::from_str::<Sealed>(&plain).ok());
    let Some(Sealed { to, body }) = opened else {
        tracing::warn!(mandate.id = %row.mandate_id, "an outbox message cannot be opened; not sent");
        return Ok(None);
    };
    Ok(Some(SmsMessage {
        to,
        body,
        mandate_id: row.mandate_id,
        challenge_id: row.challenge_id,
        kind,
        sent_at: crate::domain::time::format(now),
    }))
}

/// The worker inside `serve`: a pass when woken after a commit, and every [`POLL_EVERY`];
/// returns when `stop` turns true (between messages, never during a send).
pub async fn run(state: Services, mut stop: watch::Receiver<bool>) {
    let delivery = state.sms.clone();
    while !*stop.borrow() {
        match deliver_due(&state, delivery.sender()).await {
            Ok(pass) if pass.handled() > 0 => {
                tracing::debug!(?pass, "sms outbox pass");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sms outbox pass failed; retrying"),
        }
        tokio::select! {
            () = delivery.wake.notified() => {}
            () = tokio::time::sleep(POLL_EVERY) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let secs: Vec<i64> = (1..=9).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(0).num_seconds(), 5);
    }
}
