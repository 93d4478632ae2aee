//! Key rotation (`mandat keys rotate <purpose>`): a new version of a purpose key derived from
//! the master key, recorded in `key_version` with its `keys.rotated` event in one transaction.
//! Older versions stay derivable, for reading and verification.
//!
//! The audit-signing key: the next checkpoint (of a running server too: the writer reads the
//! newest version before each signature) is signed with the new version, and verification
//! accepts every recorded version. The vault key-encryption key: new entries and rotated
//! secrets are wrapped under the new version at once; `mandat vault rewrap` moves the
//! existing data keys (`service::vault`). The OpenID Connect signing key: a new ES256 key
//! signs the next ID tokens, the previous one stays in the JWKS until its tokens expired
//! (`service::oidc::signing`). The blind-index key has no rotation path yet (no
//! re-indexing), so it is refused rather than recorded
//! without effect.

use serde::Serialize;

use super::Ctx;
use crate::audit::checkpoint::SigningKey;
use crate::audit::checkpointer::signing_versions;
use crate::audit::{self, Details, NewEvent};
use crate::crypto::Purpose;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::StoreError;

/// What `keys rotate` was asked to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotatableKey {
    Vault,
    Audit,
    Oidc,
    Index,
}

impl RotatableKey {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vault" => Some(Self::Vault),
            "audit" => Some(Self::Audit),
            "oidc" => Some(Self::Oidc),
            "index" => Some(Self::Index),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::Audit => "audit",
            Self::Oidc => "oidc",
            Self::Index => "index",
        }
    }

    /// Why this key cannot rotate in this version, if it cannot.
    pub fn unsupported(self) -> Option<&'static str> {
        match self {
            Self::Audit | Self::Vault | Self::Oidc => None,
            Self::Index => Some(
                "rotating the blind-index key needs every usager re-indexed, which this version does not do",
            ),
        }
    }
}

/// The new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotated {
    pub purpose: &'static str,
    pub version: u32,
    /// The signed-note key id of the new audit-signing key (8 hex), or the `kid` of the new
    /// OpenID Connect signing key; absent for the vault key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_id: String,
}

/// Adds a version of the key and records `keys.rotated`.
pub async fn rotate(state: &Services, ctx: &Ctx, key: RotatableKey) -> ApiResult<Rotated> {
    if let Some(why) = key.unsupported() {
        return Err(AppError::Conflict(why.into()));
    }
    if key == RotatableKey::Vault {
        let version = crate::service::vault::rotate_kek(state, ctx).await?;
        return Ok(Rotated {
            purpose: key.name(),
            version,
            key_id: String::new(),
        });
    }
    if key == RotatableKey::Oidc {
        let r = super::oidc::signing::rotate(state, ctx).await?;
        return Ok(Rotated {
            purpose: key.name(),
            version: u32::try_from(r.version)
                .map_err(|_| AppError::Internal(anyhow::anyhow!("key version overflow")))?,
            key_id: r.kid,
        });
    }
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let current = signing_versions(tx.as_mut())
        .await?
        .last()
        .copied()
        .unwrap_or(1);
    let version = current
        .checked_add(1)
        .filter(|v| i32::try_from(*v).is_ok())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("key version overflow")))?;
    let signing = SigningKey::derive(&state.keyring, version)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("signing key: {e}")))?;
    let origin = &state.checkpoints.settings().origin;
    let key_id = hex::encode(signing.public.key_id(origin));
    match tx
        .insert_key_version(Purpose::AuditSigning.label(), version as i32, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
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
                purpose: Purpose::AuditSigning.label().to_owned(),
                version: i64::from(version),
                key_id: Some(key_id.clone()),
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    state.commit(tx).await?;
    Ok(Rotated {
        purpose: key.name(),
        version,
        key_id,
    })
}
