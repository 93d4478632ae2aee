//! Verification of an attestation by anyone holding it: the signed reference printed on the
//! paper (QR code) leads to the mandate's status, démarches, organisation and dates — never
//! to the usager's personal data.

use serde::Serialize;
use uuid::Uuid;

use crate::crypto::{Purpose, ct_eq};
use crate::domain::demarche::catalogue;
use crate::domain::mandate::MandateStatus;
use crate::error::{ApiResult, AppError};
use crate::service::Services;

fn mac(state: &Services, id: Uuid) -> ApiResult<[u8; 32]> {
    let key = state
        .keyring
        .key(Purpose::Token, 1)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("token key: {e}")))?;
    Ok(key.hmac(&[b"verification", id.as_bytes()]))
}

/// The signed reference printed on the attestation: `{id, 32 hex}.{first 16 bytes of
/// HMAC(token/v1, "verification" ‖ id), hex}`.
pub fn verification_ref(state: &Services, id: Uuid) -> ApiResult<String> {
    Ok(format!(
        "{}.{}",
        id.simple(),
        hex::encode(&mac(state, id)?[..16])
    ))
}

/// The mandate a reference names, if its signature is right.
pub fn parse_ref(state: &Services, r: &str) -> ApiResult<Option<Uuid>> {
    let Some((id, sig)) = r.split_once('.') else {
        return Ok(None);
    };
    if id.len() != 32 || sig.len() != 32 {
        return Ok(None);
    }
    let (Ok(id), Ok(sig)) = (Uuid::try_parse(id), hex::decode(sig)) else {
        return Ok(None);
    };
    Ok(ct_eq(&mac(state, id)?[..16], &sig).then_some(id))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifiedDemarche {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifiedOrganisation {
    pub name: String,
}

/// What an attestation's holder may learn.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub status: String,
    /// The démarches still covered (not revoked).
    pub demarches: Vec<VerifiedDemarche>,
    pub organisation: VerifiedOrganisation,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(with = "crate::domain::time::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `404` for a malformed or forged reference, as for an unknown one.
pub async fn verify(state: &Services, r: &str) -> ApiResult<Verification> {
    let id = parse_ref(state, r)?.ok_or(AppError::NotFound)?;
    let now = state.clock.now();
    let mut tx = state.store.begin_read().await?;
    let m = tx.get_mandate(id).await?.ok_or(AppError::NotFound)?;
    let org = tx
        .get_organisation(m.organisation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let status = MandateStatus::parse(&m.status)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("corrupt mandate.status")))?
        .effective(m.expires_at, now);
    let demarches = tx
        .mandate_demarches(id)
        .await?
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| VerifiedDemarche {
            title: catalogue()
                .iter()
                .find(|c| c.id == d.demarche)
                .map(|c| c.title.clone())
                .unwrap_or_default(),
            id: d.demarche,
        })
        .collect();
    Ok(Verification {
        status: status.as_str().to_owned(),
        demarches,
        organisation: VerifiedOrganisation { name: org.name },
        activated_at: m.activated_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
    })
}
