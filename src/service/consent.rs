//! Consent challenges: issuing (printed code or two SMS), answering (at the desk or on the
//! public page), resending. Codes are stored only as `HMAC(code key, challenge_id ‖ code)`;
//! a printed code is also kept sealed while the challenge is open, for re-printing.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Ctx;
use super::lifecycle::{audit_expired, replace_older};
use super::mandates::{Mandate, authorized, render};
use super::pii::{open_field, open_usager, seal_field, usager_key};
use super::usagers::Caller;
use crate::audit::{self, Actor, Details, NewEvent};
use crate::authz::Action;
use crate::crypto::{DataKey, Purpose, ct_eq};
use crate::domain::consent::{ChallengeStatus, ConsentCode, MAX_ATTEMPTS, Verdict, judge};
use crate::domain::mandate::{ConsentChannel, MandateDuration};
use crate::domain::usager::Phone;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::sms::{SmsKind, code_text, recap_text};
use crate::store::{ChallengeRow, MandateRow, Tx};

/// Version of the `code` HMAC key for new challenges.
const CODE_KEY_VERSION: u32 = 1;
/// Resends allowed per mandate.
pub const MAX_RESENDS: i64 = 3;

/// The consent part of a mandate.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub channel: String,
    pub challenge_id: Uuid,
    pub status: String,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub attempts_left: i64,
    pub sent_to: Option<String>,
    /// The printed code, in the creation answer only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
}

pub fn view_of(
    c: &ChallengeRow,
    now: chrono::DateTime<Utc>,
    code: Option<String>,
) -> ApiResult<ConsentView> {
    let status = ChallengeStatus::parse(&c.status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt challenge status")))?
        .effective(c.expires_at, now);
    Ok(ConsentView {
        channel: c.channel.clone(),
        challenge_id: c.id,
        status: status.as_str().to_owned(),
        expires_at: c.expires_at,
        attempts_left: (MAX_ATTEMPTS - c.attempts).max(0),
        sent_to: c.sent_to.clone(),
        code,
    })
}

fn code_mac(
    state: &Services,
    version: u32,
    challenge: Uuid,
    code: &ConsentCode,
) -> ApiResult<[u8; 32]> {
    let key = state
        .keyring
        .key(Purpose::Code, version)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("code key: {e}")))?;
    Ok(key.hmac(&[challenge.as_bytes(), code.expose().as_bytes()]))
}

/// The keyed hash matching SMS replies to challenges (the number itself is not stored).
pub fn phone_mac(state: &Services, phone: &Phone) -> ApiResult<Vec<u8>> {
    let key = state
        .keyring
        .key(Purpose::Index, super::usagers::INDEX_KEY_VERSION)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("index key: {e}")))?;
    Ok(key.hmac(&[b"phone", phone.as_str().as_bytes()]).to_vec())
}

/// Creates the mandate's consent challenge and delivers the code: returned for printing,
/// or queued in the SMS outbox (recap, then code), sent by the delivery worker once the
/// caller's transaction commits (the caller then calls `state.sms.notify()`). Returns the
/// printed code's display form.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per channel event; a struct would only rename them"
)]
pub async fn issue_challenge(
    state: &Services,
    tx: &mut dyn Tx,
    mandate: &MandateRow,
    dek: &DataKey,
    phone: Option<&str>,
    organisation_name: &str,
    demarche_titles: &[String],
    actor: &Actor,
    request_id: Option<String>,
    resend: bool,
) -> ApiResult<(Option<String>, ChallengeRow)> {
    let now = state.clock.now();
    let channel = ConsentChannel::parse(&mandate.consent_channel)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt channel")))?;
    let code =
        ConsentCode::generate(channel).map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let id = Uuid::now_v7();
    let sealed = match channel {
        ConsentChannel::Print => Some(seal_field(
            dek,
            "consent_challenge",
            &id.to_string(),
            "code",
            mandate.terms_key_version as u32,
            code.expose(),
        )?),
        ConsentChannel::Sms => None,
    };
    let phone = match (channel, phone) {
        (ConsentChannel::Sms, Some(p)) => Some(Phone::from_stored(p.to_owned())),
        (ConsentChannel::Sms, None) => {
            return Err(super::mandates::validation(
                "consent_channel",
                "Le consentement par SMS demande le numéro de téléphone de l'usager.",
            ));
        }
        _ => None,
    };
    let row = ChallengeRow {
        id,
        mandate_id: mandate.id,
        channel: channel.as_str().to_owned(),
        terms_hash: mandate.terms_hash.clone(),
        code_mac: code_mac(state, CODE_KEY_VERSION, id, &code)?.to_vec(),
        code_key_version: i64::from(CODE_KEY_VERSION),
        code_sealed: sealed,
        sent_to: phone.as_ref().map(Phone::masked),
        phone_mac: phone.as_ref().map(|p| phone_mac(state, p)).transpose()?,
        status: ChallengeStatus::Open.as_str().to_owned(),
        attempts: 0,
        created_at: now,
        expires_at: now + channel.challenge_validity(),
        closed_at: None,
    };
    tx.insert_challenge(&row).await?;
    let event = NewEvent::new(
        now,
        actor.clone(),
        Details::MandateConsentSent {
            channel: channel.as_str().to_owned(),
            challenge: id.to_string(),
            resend,
        },
    )
    .organisation(mandate.organisation_id)
    .usager(mandate.usager_id)
    .mandate(mandate.id)
    .request_id(request_id);
    audit::append(tx, &event).await?;
    let shown = match phone {
        None => Some(code.display()),
        Some(phone) => {
            let link = format!(
                "{}/consentement/{id}",
                state.config.public_url.trim_end_matches('/')
            );
            let duration =
                MandateDuration::parse(&mandate.duration).map_or("", MandateDuration::label_fr);
            let titles: Vec<&str> = demarche_titles.iter().map(String::as_str).collect();
            crate::sms::delivery::enqueue(
                tx,
                dek,
                mandate.terms_key_version,
                crate::sms::delivery::Outgoing {
                    mandate,
                    challenge: id,
                    to: phone.as_str(),
                    messages: vec![
                        (
                            SmsKind::Recap,
                            Zeroizing::new(recap_text(organisation_name, &titles, duration, &link)),
                        ),
                        (
                            SmsKind::Code,
                            Zeroizing::new(code_text(&code.display(), &link)),
                        ),
                    ],
                },
                now,
            )
            .await?;
            None
        }
    };
    Ok((shown, row))
}

/// One code entry: what was typed (`None` only for a refusal by SMS reply, authenticated by
/// the phone number), the decision, and where it came from (`desk`, `public`, `sms`).
pub(super) struct Entry<'a> {
    pub typed: Option<&'a str>,
    pub decision: Decision,
    pub via: &'static str,
}

/// The usager's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Refuse,
}

/// Checks a code and applies the decision, committing what must be kept even when the
/// answer is an error (attempt counts, locks, expiry).
pub(super) async fn answer(
    state: &Services,
    mut tx: Box<dyn Tx>,
    ch: ChallengeRow,
    m: MandateRow,
    entry: Entry<'_>,
    who: Ctx,
) -> ApiResult<MandateRow> {
    let Ctx {
        actor, request_id, ..
    } = who;
    let Entry {
        typed,
        decision,
        via,
    } = entry;
    let now = state.clock.now();
    let channel = ConsentChannel::parse(&ch.channel)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt channel")))?;
    let status = ChallengeStatus::parse(&ch.status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt challenge status")))?;
    if ch.terms_hash != m.terms_hash {
        return Err(AppError::Conflict(
            "Les conditions du mandat ont changé.".into(),
        ));
    }
    let matches = match typed.map(|t| ConsentCode::normalise(channel, t)) {
        // No code: the reply came from the number the code was sent to (refusal by SMS).
        None => true,
        Some(Some(code)) => {
            let version = u32::try_from(ch.code_key_version).unwrap_or(0);
            ct_eq(&code_mac(state, version, ch.id, &code)?, &ch.code_mac)
        }
        Some(None) => false,
    };
    let event = |d: Details| {
        NewEvent::new(now, actor.clone(), d)
            .organisation(m.organisation_id)
            .usager(m.usager_id)
            .mandate(m.id)
            .request_id(request_id.clone())
    };
    let conflict = || AppError::Conflict("Ce consentement a déjà été traité.".into());
    match judge(status, ch.expires_at, ch.attempts, now, matches) {
        Verdict::Accepted => {
            let (to, ok) = match decision {
                Decision::Accept => ("accepted", true),
                Decision::Refuse => ("refused", false),
            };
            if !tx.close_challenge(ch.id, to, now).await? {
                return Err(conflict());
            }
            if ok {
                let duration = MandateDuration::parse(&m.duration)
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt duration")))?;
                let expires_at = duration.expires_at(now);
                if !tx.activate_mandate(m.id, now, expires_at).await? {
                    return Err(conflict());
                }
                let demarches: Vec<String> = tx
                    .mandate_demarches(m.id)
                    .await?
                    .into_iter()
                    .map(|d| d.demarche)
                    .collect();
                audit::append(
                    tx.as_mut(),
                    &event(Details::MandateActivated {
                        demarches,
                        terms_hash: m.terms_hash.clone(),
                        expires_at: crate::domain::time::format(expires_at),
                        via: via.to_owned(),
                    }),
                )
                .await?;
                replace_older(tx.as_mut(), &m, &actor, now, request_id.clone()).await?;
            } else {
                if !tx
                    .end_mandate(m.id, "pending_consent", "refused", now, None)
                    .await?
                {
                    return Err(conflict());
                }
                audit::append(
                    tx.as_mut(),
                    &event(Details::MandateRefused {
                        reason: "usager_refused".into(),
                        terms_hash: m.terms_hash.clone(),
                    }),
                )
                .await?;
            }
            let row = tx.get_mandate(m.id).await?.ok_or(AppError::NotFound)?;
            state.commit(tx).await?;
            Ok(row)
        }
        Verdict::Wrong { .. } | Verdict::Lock => {
            // The count is what the conditional update returns, not the row read above: of
            // concurrent wrong entries each counts once and exactly one reaches the last.
            let Some(attempts) = tx.count_wrong_code(ch.id, MAX_ATTEMPTS).await? else {
                // Another entry closed the challenge meanwhile (a lock, an answer).
                return match tx.get_challenge(ch.id).await? {
                    Some(c) if c.status == ChallengeStatus::Locked.as_str() => {
                        Err(AppError::ChallengeLocked)
                    }
                    _ => Err(conflict()),
                };
            };
            let left = (MAX_ATTEMPTS - attempts).max(0);
            audit::append(
                tx.as_mut(),
                &event(Details::MandateConsentFailed {
                    challenge: ch.id.to_string(),
                    attempts_left: left,
                    via: via.to_owned(),
                }),
            )
            .await?;
            if left > 0 {
                state.commit(tx).await?;
                return Err(AppError::InvalidCode {
                    attempts_left: left,
                });
            }
            tx.close_challenge(ch.id, "locked", now).await?;
            if tx
                .end_mandate(m.id, "pending_consent", "refused", now, None)
                .await?
            {
                audit::append(
                    tx.as_mut(),
                    &event(Details::MandateRefused {
                        reason: "locked".into(),
                        terms_hash: m.terms_hash.clone(),
                    }),
                )
                .await?;
            }
            state.commit(tx).await?;
            Err(AppError::ChallengeLocked)
        }
        Verdict::Late => {
            if tx.close_challenge(ch.id, "expired", now).await?
                && tx
                    .end_mandate(m.id, "pending_consent", "expired", now, None)
                    .await?
            {
                audit_expired(tx.as_mut(), &m, now).await?;
                state.commit(tx).await?;
            }
            Err(AppError::ChallengeExpired)
        }
        Verdict::Locked => Err(AppError::ChallengeLocked),
        Verdict::Closed => Err(conflict()),
    }
}

/// The aidant enters the code the usager hands back at the desk.
pub async fn consent_at_desk(
    state: &Services,
    caller: &Caller,
    mandate: Uuid,
    code: &str,
) -> ApiResult<Mandate> {
    let mut tx = state.store.begin().await?;
    let m = authorized(state, tx.as_mut(), caller, mandate, Action::MandateConsent).await?;
    let ch = tx
        .current_challenge(m.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let row = answer(
        state,
        tx,
        ch,
        m,
        Entry {
            typed: Some(code),
            decision: Decision::Accept,
            via: "desk",
        },
        Ctx {
            actor: caller.actor(),
            principal: Some(caller.principal.clone()),
            request_id: caller.request_id.clone(),
        },
    )
    .await?;
    let mut tx = state.store.begin_read().await?;
    render(state, tx.as_mut(), &row, None).await
}

/// The usager answers on the public page (the code is needed for both decisions).
/// Returns `accepted` or `refused`.
pub async fn consent_public(
    state: &Services,
    challenge: Uuid,
    code: &str,
    decision: Decision,
    request_id: Option<String>,
) -> ApiResult<&'static str> {
    let mut tx = state.store.begin().await?;
    let ch = tx
        .get_challenge(challenge)
        .await?
        .ok_or(AppError::NotFound)?;
    let m = tx
        .get_mandate(ch.mandate_id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Only the mandate's current challenge counts (a resend voids the older ones).
    if tx.current_challenge(m.id).await?.map(|c| c.id) != Some(ch.id) {
        return Err(AppError::Conflict(
            "Ce code a été remplacé par un nouveau code.".into(),
        ));
    }
    let actor = Actor::usager(m.usager_id);
    let entry = Entry {
        typed: Some(code),
        decision,
        via: "public",
    };
    answer(
        state,
        tx,
        ch,
        m,
        entry,
        Ctx {
            actor,
            principal: None,
            request_id,
        },
    )
    .await?;
    Ok(match decision {
        Decision::Accept => "accepted",
        Decision::Refuse => "refused",
    })
}

/// The printed code of a mandate's open challenge, for re-printing the attestation
/// (printers jam); `None` once the challenge is closed (the code is destroyed then).
pub async fn printed_code(
    state: &Services,
    caller: &Caller,
    mandate: Uuid,
) -> ApiResult<Option<String>> {
    let mut tx = state.store.begin_read().await?;
    let m = authorized(state, tx.as_mut(), caller, mandate, Action::MandateRead).await?;
    let Some(ch) = tx.current_challenge(m.id).await? else {
        return Ok(None);
    };
    open_printed_code(state, tx.as_mut(), &m, &ch).await
}

/// The sealed printed code of `ch` in clear while the challenge is open and not lapsed;
/// `None` otherwise (closed challenges no longer hold it).
pub(super) async fn open_printed_code(
    state: &Services,
    tx: &mut dyn Tx,
    m: &MandateRow,
    ch: &ChallengeRow,
) -> ApiResult<Option<String>> {
    let now = state.clock.now();
    let (Some(sealed), true) = (
        ch.code_sealed.as_deref(),
        ch.mandate_id == m.id && ch.status == "open" && now < ch.expires_at,
    ) else {
        return Ok(None);
    };
    let urow = tx
        .get_usager(m.usager_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let dek = usager_key(&state.keyring, &urow)?;
    let version = u32::try_from(m.terms_key_version).unwrap_or(0);
    let plain = open_field(
        &dek,
        "consent_challenge",
        &ch.id.to_string(),
        "code",
        version,
        sealed,
    )?;
    Ok(ConsentCode::normalise(ConsentChannel::Print, &plain).map(|c| c.display()))
}

/// How the messages of a mandate's current SMS challenge are getting to the usager's phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsDelivery {
    /// Not sent yet (first attempt under way or waiting for the worker).
    Waiting,
    /// Every message was accepted by the provider.
    Sent,
    /// An attempt failed; the outbox tries again later (backoff).
    Retrying,
    /// The provider refused every attempt: the usager will not get this code.
    Failed,
}

impl SmsDelivery {
    /// Of the `(status, attempts, claimed_until)` of a challenge's messages.
    pub fn of(messages: &[(String, i64, Option<chrono::DateTime<Utc>>)]) -> Self {
        if messages.iter().any(|(s, _, _)| s == "failed") {
            Self::Failed
        } else if messages
            .iter()
            .any(|(s, n, claimed)| s == "pending" && *n > 0 && claimed.is_none())
        {
            Self::Retrying
        } else if !messages.is_empty() && messages.iter().all(|(s, _, _)| s == "sent") {
            Self::Sent
        } else {
            Self::Waiting
        }
    }
}

/// The delivery of the current challenge's SMS of a mandate of the caller's organisation;
/// `None` for a printed-code mandate or when there is no challenge.
pub async fn sms_delivery(
    state: &Services,
    caller: &Caller,
    mandate: Uuid,
) -> ApiResult<Option<SmsDelivery>> {
    let mut tx = state.store.begin_read().await?;
    let m = authorized(state, tx.as_mut(), caller, mandate, Action::MandateRead).await?;
    if m.consent_channel != ConsentChannel::Sms.as_str() {
        return Ok(None);
    }
    let Some(ch) = tx.current_challenge(m.id).await? else {
        return Ok(None);
    };
    let messages = tx.sms_of_challenge(ch.id).await?;
    Ok(Some(SmsDelivery::of(&messages)))
}

/// A new SMS challenge (the previous one is void); at most [`MAX_RESENDS`] per mandate.
pub async fn resend(state: &Services, caller: &Caller, mandate: Uuid) -> ApiResult<()> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let m = authorized(state, tx.as_mut(), caller, mandate, Action::MandateResend).await?;
    if m.consent_channel != ConsentChannel::Sms.as_str() || m.status != "pending_consent" {
        return Err(AppError::Conflict(
            "Aucun code SMS à renvoyer pour ce mandat.".into(),
        ));
    }
    if let Some(c) = tx.current_challenge(m.id).await? {
        if c.status != "open" {
            return Err(AppError::Conflict(
                "Aucun code SMS à renvoyer pour ce mandat.".into(),
            ));
        }
        tx.close_challenge(c.id, "void", now).await?;
    }
    if !tx.count_resend(m.id, MAX_RESENDS).await? {
        return Err(AppError::RateLimited {
            retry_after_secs: 3600,
        });
    }
    let org = tx
        .get_organisation(m.organisation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let urow = tx
        .get_usager(m.usager_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let plain = open_usager(&state.keyring, &urow)?;
    let dek = usager_key(&state.keyring, &urow)?;
    let titles: Vec<String> = tx
        .mandate_demarches(m.id)
        .await?
        .into_iter()
        .filter_map(|d| {
            crate::domain::demarche::catalogue()
                .iter()
                .find(|c| c.id == d.demarche)
                .map(|c| c.short_title.clone())
        })
        .collect();
    issue_challenge(
        state,
        tx.as_mut(),
        &m,
        &dek,
        plain.phone.as_deref().map(String::as_str),
        &org.name,
        &titles,
        &caller.actor(),
        caller.request_id.clone(),
        true,
    )
    .await?;
    state.commit(tx).await?;
    state.sms.notify();
    Ok(())
}

/// One démarche of the terms shown on the public consent page.
#[derive(Debug, Clone)]
pub struct PublicDemarche {
    pub title: String,
    pub description: String,
    pub warning: Option<String>,
}

/// What the usager holding the SMS link sees before answering: the organisation, the
/// démarches and the duration — nothing personal (the link may be forwarded).
#[derive(Debug, Clone)]
pub struct PublicTerms {
    pub organisation: String,
    pub demarches: Vec<PublicDemarche>,
    pub duration: String,
    /// Whether the challenge still takes an answer (open, current, not lapsed).
    pub open: bool,
    pub mandate_status: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub attempts_left: i64,
}

/// The terms behind a challenge, for the public consent page; `404` for an unknown one.
pub async fn public_terms(state: &Services, challenge: Uuid) -> ApiResult<PublicTerms> {
    let now = state.clock.now();
    let mut tx = state.store.begin_read().await?;
    let ch = tx
        .get_challenge(challenge)
        .await?
        .ok_or(AppError::NotFound)?;
    let m = tx
        .get_mandate(ch.mandate_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let org = tx
        .get_organisation(m.organisation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let current = tx.current_challenge(m.id).await?.map(|c| c.id) == Some(ch.id);
    let demarches = tx
        .mandate_demarches(m.id)
        .await?
        .into_iter()
        .map(|d| {
            let c = crate::domain::demarche::catalogue()
                .iter()
                .find(|c| c.id == d.demarche);
            PublicDemarche {
                title: c.map_or_else(|| d.demarche.clone(), |c| c.title.clone()),
                description: c.map(|c| c.description.clone()).unwrap_or_default(),
                warning: c.and_then(|c| c.warning.clone()),
            }
        })
        .collect();
    Ok(PublicTerms {
        organisation: org.name,
        demarches,
        duration: m.duration.clone(),
        open: current && ch.status == "open" && now < ch.expires_at,
        mandate_status: m.status.clone(),
        expires_at: ch.expires_at,
        attempts_left: (MAX_ATTEMPTS - ch.attempts).max(0),
    })
}

#[cfg(test)]
mod tests {
    use super::SmsDelivery;

    #[test]
    fn sms_delivery_reads_the_outbox_states() {
        let t = Some(chrono::Utc::now());
        let m = |s: &str, n: i64, c| (s.to_owned(), n, c);
        assert_eq!(SmsDelivery::of(&[]), SmsDelivery::Waiting);
        assert_eq!(
            SmsDelivery::of(&[m("pending", 0, None)]),
            SmsDelivery::Waiting
        );
        // The first attempt in flight (claimed) is not a retry yet.
        assert_eq!(SmsDelivery::of(&[m("pending", 1, t)]), SmsDelivery::Waiting);
        assert_eq!(
            SmsDelivery::of(&[m("sent", 1, None), m("pending", 1, None)]),
            SmsDelivery::Retrying
        );
        assert_eq!(
            SmsDelivery::of(&[m("sent", 1, None), m("sent", 2, None)]),
            SmsDelivery::Sent
        );
        assert_eq!(
            SmsDelivery::of(&[m("failed", 5, None), m("pending", 0, None)]),
            SmsDelivery::Failed
        );
    }
}
