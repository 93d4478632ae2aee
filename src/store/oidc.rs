//! The OpenID Connect provider's rows: clients, signing keys, codes and access tokens (kept
//! as SHA-256 hashes), the `jti` replay cache and the pairwise subjects given to each sector.
//! The SQL is in `oidc_sql.rs`, shared by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// A registered relying party.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcClientRow {
    pub id: Uuid,
    pub name: String,
    /// One URI per line.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    /// Comma-separated démarche ids.
    pub allowed_demarches: String,
    pub auth_method: String,
    /// HMAC of the secret under the `token` key of `secret_key_version`.
    pub secret_mac: Option<Vec<u8>>,
    pub secret_key_version: Option<i64>,
    /// The client's public keys (a JWK Set), for `private_key_jwt`.
    pub jwks: Option<String>,
    pub sector: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// One version of the ID-token signing key, its private half sealed under `secrets`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcSigningKeyRow {
    pub version: i64,
    pub kid: String,
    pub alg: String,
    pub key_version: i64,
    pub sealed_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// An authorization code (by hash) and everything it was bound to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcCodeRow {
    pub code_hash: Vec<u8>,
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: String,
    pub scope: String,
    pub aidant_id: Uuid,
    pub organisation_id: Uuid,
    pub usager_id: Uuid,
    pub mandate_id: Uuid,
    pub demarche: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// An access token (by hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcTokenRow {
    pub token_hash: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub client_id: Uuid,
    pub scope: String,
    pub aidant_id: Uuid,
    pub organisation_id: Uuid,
    pub usager_id: Uuid,
    pub mandate_id: Uuid,
    pub demarche: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An active mandate démarche of an organisation, as the choice screens list them.
#[derive(Debug, Clone)]
pub struct OidcCandidate {
    pub mandate_id: Uuid,
    pub usager_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub demarche: String,
}

#[async_trait]
pub trait OidcRepo {
    async fn insert_oidc_client(&mut self, row: &OidcClientRow) -> Result<(), StoreError>;
    async fn get_oidc_client(&mut self, id: Uuid) -> Result<Option<OidcClientRow>, StoreError>;
    /// Clients by name, at most `limit`.
    async fn list_oidc_clients(&mut self, limit: i64) -> Result<Vec<OidcClientRow>, StoreError>;
    /// Every signing key version, oldest first.
    async fn oidc_signing_keys(&mut self) -> Result<Vec<OidcSigningKeyRow>, StoreError>;
    async fn insert_oidc_signing_key(&mut self, row: &OidcSigningKeyRow) -> Result<(), StoreError>;
    /// Marks the versions older than `version` retired at `at` (if not already).
    async fn retire_oidc_signing_keys(
        &mut self,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    async fn insert_oidc_code(&mut self, row: &OidcCodeRow) -> Result<(), StoreError>;
    async fn get_oidc_code(&mut self, hash: &[u8]) -> Result<Option<OidcCodeRow>, StoreError>;
    /// Marks an unused code used; `false` when it was already used (a replay).
    async fn use_oidc_code(&mut self, hash: &[u8], at: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn insert_oidc_token(&mut self, row: &OidcTokenRow) -> Result<(), StoreError>;
    async fn get_oidc_token(&mut self, hash: &[u8]) -> Result<Option<OidcTokenRow>, StoreError>;
    /// Revokes every token issued from a code; returns how many changed.
    async fn revoke_oidc_tokens_of_code(
        &mut self,
        code_hash: &[u8],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Revokes one token of a client; returns how many changed.
    async fn revoke_oidc_token(
        &mut self,
        hash: &[u8],
        client: Uuid,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Records a client assertion's `jti`; `false` when it was already seen.
    async fn remember_oidc_jti(
        &mut self,
        client: Uuid,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn remember_oidc_subject(
        &mut self,
        sector: &str,
        sub: &str,
        usager: Uuid,
    ) -> Result<(), StoreError>;
    async fn oidc_subject(&mut self, sector: &str, sub: &str) -> Result<Option<Uuid>, StoreError>;
    /// `expires_at` of the mandate when it is active at `now` and its démarche is not revoked.
    async fn oidc_mandate_expiry(
        &mut self,
        mandate: Uuid,
        demarche: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The active démarches of the organisation's active mandates at `now`, newest mandates
    /// first, at most `limit` rows.
    async fn oidc_candidates(
        &mut self,
        organisation: Uuid,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OidcCandidate>, StoreError>;
    /// Forgets codes, tokens and `jti`s expired before `before`; returns how many rows went.
    async fn prune_oidc(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
