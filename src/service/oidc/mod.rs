//! The OpenID Connect provider's use cases (`oidc.md`): client registration, the signing
//! keys, the authorization decision and its code, the token endpoint, userinfo, revocation
//! and RP-initiated logout. Nothing here lives only in process memory that another instance
//! would need: codes, tokens and `jti`s are rows (hashed), keys are sealed rows.

pub mod authorize;
pub mod clients;
pub mod signing;
pub mod token;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::crypto::Purpose;
use crate::error::AppError;
use crate::service::Services;

/// Lifetime of an authorization code.
pub const CODE_TTL_SECS: i64 = 60;
/// Lifetime of access and ID tokens (`expires_in`).
pub const TOKEN_TTL_SECS: i64 = 300;
/// `acr` of the ID token: the aidant logged in with a password and a second factor.
pub const ACR: &str = "eidas2";
/// `amr` of the ID token.
pub const AMR: [&str; 2] = ["pwd", "otp"];
/// Version of the `token` key under which pairwise identifiers and client secrets are keyed.
pub const TOKEN_KEY_VERSION: u32 = 1;

/// The scopes this provider knows besides `demarche:<id>`.
pub const SCOPES: &[&str] = &["openid", "profile", "birth", "phone", "email"];

/// The provider's issuer: the public URL without a trailing slash.
pub fn issuer(s: &Services) -> String {
    s.config.public_url.trim_end_matches('/').to_owned()
}

pub fn token_endpoint(s: &Services) -> String {
    format!("{}/oidc/token", issuer(s))
}

fn internal(what: &'static str) -> impl FnOnce(crate::crypto::CryptoError) -> AppError {
    move |e| AppError::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// The pairwise identifier of a usager (`kind` = `usager`) or an aidant (`aidant`) for a
/// sector: HMAC of the id and the sector host under the `token` key, URL-safe base64.
pub fn pairwise(s: &Services, kind: &str, sector: &str, id: Uuid) -> Result<String, AppError> {
    let key = s
        .keyring
        .key(Purpose::Token, TOKEN_KEY_VERSION)
        .map_err(internal("token key"))?;
    let mac = key.hmac(&[
        b"oidc-pairwise",
        kind.as_bytes(),
        sector.as_bytes(),
        id.as_bytes(),
    ]);
    Ok(URL_SAFE_NO_PAD.encode(mac))
}

/// SHA-256 of a code or token: what the database keeps.
pub fn token_hash(token: &str) -> Vec<u8> {
    crate::crypto::sha256(token.as_bytes()).to_vec()
}

/// The démarche of a `demarche:<id>` scope.
pub fn demarche_of_scope(scope: &str) -> Option<&str> {
    scope.strip_prefix("demarche:")
}
