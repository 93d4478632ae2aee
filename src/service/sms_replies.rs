//! Consent by SMS reply (the inbound webhook, already authenticated by its signature):
//! `OUI <code>` accepts, `NON` refuses, anything else is recorded and ignored. A reply is
//! matched to the newest open SMS challenge sent to the sender's number.

use super::Ctx;
use super::consent::{Decision, Entry, answer, phone_mac};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::domain::usager::Phone;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::sms::inbound::Reply;

/// Handles one reply once (`signature` is the replay key). Returns what happened:
/// `accepted`, `refused`, `ignored`, `invalid_code`, `locked`, `expired` or `conflict`.
pub async fn handle(
    state: &Services,
    signature: &[u8],
    from: &str,
    reply: Reply,
    request_id: Option<String>,
) -> ApiResult<&'static str> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    if !tx.remember_inbound(signature, now).await? {
        return Err(AppError::Unauthenticated);
    }
    tx.commit().await?;
    let phone = Phone::parse(from).map_err(|_| AppError::InvalidRequest {
        detail: "Numéro d'expéditeur invalide.".into(),
        errors: vec![],
    })?;
    let mac = phone_mac(state, &phone)?;
    let mut tx = state.store.begin().await?;
    let challenge = tx.open_challenge_for_phone(&mac).await?;
    let mandate = match &challenge {
        Some(c) => tx.get_mandate(c.mandate_id).await?,
        None => None,
    };
    let (entry, ch, m) = match (reply, challenge, mandate) {
        (Reply::Accept { code }, Some(ch), Some(m)) => (Some(code), ch, m),
        (Reply::Refuse, Some(ch), Some(m)) => (None, ch, m),
        (_, ch, m) => {
            let mut event = NewEvent::new(
                now,
                Actor::anonymous(),
                Details::SmsReplyIgnored {
                    matched: m.is_some(),
                },
            )
            .request_id(request_id);
            if let (Some(_), Some(m)) = (ch, m) {
                event = event
                    .organisation(m.organisation_id)
                    .usager(m.usager_id)
                    .mandate(m.id);
            }
            audit::append(tx.as_mut(), &event).await?;
            state.commit(tx).await?;
            return Ok("ignored");
        }
    };
    let decision = if entry.is_some() {
        Decision::Accept
    } else {
        Decision::Refuse
    };
    let who = Ctx {
        actor: Actor::usager(m.usager_id),
        principal: None,
        request_id,
    };
    let e = Entry {
        typed: entry.as_deref(),
        decision,
        via: "sms",
    };
    match answer(state, tx, ch, m, e, who).await {
        Ok(_) if decision == Decision::Accept => Ok("accepted"),
        Ok(_) => Ok("refused"),
        Err(AppError::InvalidCode { .. }) => Ok("invalid_code"),
        Err(AppError::ChallengeLocked) => Ok("locked"),
        Err(AppError::ChallengeExpired) => Ok("expired"),
        Err(AppError::Conflict(_)) => Ok("conflict"),
        Err(other) => Err(other),
    }
}
