//! The ID-token signing keys: ES256 (P-256) generated at first use, the private key sealed
//! under the `secrets` key and kept in `oidc_signing_key`; rotation adds a version and
//! retires the previous one, which stays in the JWKS until every token it signed expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::TOKEN_TTL_SECS;
use crate::audit::{self, Details, NewEvent};
use crate::crypto::{Aad, Purpose, open, seal};
use crate::error::{ApiResult, AppError};
use crate::service::{Ctx, Services};
use crate::store::{OidcSigningKeyRow, StoreError, Tx};

/// Version of the `secrets` key sealing new signing keys.
const SECRETS_KEY_VERSION: u32 = 1;
/// How long a retired key stays published: longer than any token it signed lives.
const RETIRED_PUBLISHED_SECS: i64 = 2 * TOKEN_TTL_SECS;

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("oidc signing key: {e}"))
}

/// A decoded private key, ready to sign. `ring`'s key pair is parsed once: parsing
/// recomputes the public point (a scalar multiplication, as costly as the signature itself),
/// which `jsonwebtoken::encode` would do again for every token.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SigningKey {
    fn from_pkcs8(der: &[u8]) -> ApiResult<Self> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| internal("parse"))?;
        Ok(Self { pair, rng })
    }
}

/// Decoded private keys by `kid` (derived data: every instance can rebuild it from the rows).
fn cache() -> &'static Mutex<HashMap<String, Arc<SigningKey>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<SigningKey>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn aad(kid: &str, version: u32) -> Aad<'_> {
    Aad {
        table: "oidc_signing_key",
        row_id: kid,
        field: "sealed_key",
        key_version: version,
    }
}

/// A new P-256 key as a row of `version`.
fn generate(s: &Services, version: i64, now: DateTime<Utc>) -> ApiResult<OidcSigningKeyRow> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| internal("generate"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| internal("parse"))?;
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err(internal("unexpected public key encoding"));
    }
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
    // RFC 7638 thumbprint: the required members in lexicographic order, no whitespace.
    let thumb = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(crate::crypto::sha256(thumb.as_bytes()));
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid});
    let kek = s
        .keyring
        .key(Purpose::Secrets, SECRETS_KEY_VERSION)
        .map_err(internal)?;
    let sealed =
        seal(kek.bytes(), &aad(&kid, SECRETS_KEY_VERSION), pkcs8.as_ref()).map_err(internal)?;
    Ok(OidcSigningKeyRow {
        version,
        kid,
        alg: "ES256".into(),
        key_version: i64::from(SECRETS_KEY_VERSION),
        sealed_key: sealed,
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

/// Creates the first signing key when there is none (first start; several instances may race:
/// the one that loses reads the winner's key).
pub async fn ensure_key(s: &Services) -> ApiResult<()> {
    let mut tx = s.store.begin_read().await?;
    if !tx.oidc_signing_keys().await?.is_empty() {
        return Ok(());
    }
    drop(tx);
    let row = generate(s, 1, s.clock.now())?;
    let mut tx = s.store.begin().await?;
    if !tx.oidc_signing_keys().await?.is_empty() {
        return Ok(());
    }
    match tx.insert_oidc_signing_key(&row).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    s.commit(tx).await?;
    Ok(())
}

/// The newest key: its `kid` and private key (decoded once per instance).
pub async fn current(tx: &mut dyn Tx, s: &Services) -> ApiResult<(String, Arc<SigningKey>)> {
    let rows = tx.oidc_signing_keys().await?;
    let row = rows
        .last()
        .ok_or_else(|| internal("no signing key (the server creates it at start-up)"))?;
    if let Some(k) = cache().lock().map_err(internal)?.get(&row.kid) {
        return Ok((row.kid.clone(), k.clone()));
    }
    let version = u32::try_from(row.key_version).map_err(internal)?;
    let kek = s.keyring.key(Purpose::Secrets, version).map_err(internal)?;
    let der = Zeroizing::new(
        open(kek.bytes(), &aad(&row.kid, version), &row.sealed_key).map_err(internal)?,
    );
    let key = Arc::new(SigningKey::from_pkcs8(&der)?);
    cache()
        .lock()
        .map_err(internal)?
        .insert(row.kid.clone(), key.clone());
    Ok((row.kid.clone(), key))
}

/// Signs claims as a JWS with ES256 under the newest key: the JWS compact serialization
/// (RFC 7515 §7.1) of `jsonwebtoken`'s header, the claims, and `ring`'s fixed-size P-256
/// signature (RFC 7518 §3.4), as `jsonwebtoken::encode` makes it.
pub fn sign(kid: &str, key: &SigningKey, claims: &impl Serialize) -> ApiResult<String> {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".into());
    let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(internal)?);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).map_err(internal)?, &mut jws);
    let signature = key
        .pair
        .sign(&key.rng, jws.as_bytes())
        .map_err(|_| internal("sign"))?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
    Ok(jws)
}

/// The published keys: the current ones, and retired ones until their tokens expired.
pub async fn jwks(s: &Services) -> ApiResult<Value> {
    let now = s.clock.now();
    let mut tx = s.store.begin_read().await?;
    let rows = tx.oidc_signing_keys().await?;
    let keys: Vec<Value> = rows
        .iter()
        .rev()
        .filter(|r| {
            r.retired_at
                .is_none_or(|t| now < t + chrono::Duration::seconds(RETIRED_PUBLISHED_SECS))
        })
        .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
        .collect();
    Ok(json!({ "keys": keys }))
}

/// The new version of the signing key.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedKey {
    pub version: i64,
    pub kid: String,
}

/// `keys rotate oidc`: a new key signs from now on; the previous one is retired (and stays
/// published for as long as a token it signed may live). Audited as `keys.rotated`.
pub async fn rotate(s: &Services, ctx: &Ctx) -> ApiResult<RotatedKey> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let version = tx
        .oidc_signing_keys()
        .await?
        .last()
        .map_or(1, |r| r.version + 1);
    let row = generate(s, version, now)?;
    match tx.insert_oidc_signing_key(&row).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::Conflict(
                "another rotation of this key happened at the same time; run it again".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tx.retire_oidc_signing_keys(version, now).await?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            ctx.actor.clone(),
            Details::KeysRotated {
                purpose: "oidc".into(),
                version,
                key_id: Some(row.kid.clone()),
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    s.commit(tx).await?;
    Ok(RotatedKey {
        version,
        kid: row.kid,
    })
}

/// The audience (client id) of an ID token this provider signed, expired or not; `None`
/// when the signature does not verify under a published key.
pub async fn audience_of(s: &Services, id_token: &str) -> ApiResult<Option<String>> {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};
    #[derive(serde::Deserialize)]
    struct Aud {
        aud: String,
    }
    let Ok(header) = jsonwebtoken::decode_header(id_token) else {
        return Ok(None);
    };
    if header.alg != Algorithm::ES256 {
        return Ok(None);
    }
    let mut tx = s.store.begin_read().await?;
    let rows = tx.oidc_signing_keys().await?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[super::issuer(s)]);
    validation.required_spec_claims.clear();
    for r in rows
        .iter()
        .filter(|r| header.kid.as_deref() == Some(r.kid.as_str()))
    {
        let Ok(jwk) = serde_json::from_str::<Jwk>(&r.public_jwk) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Aud>(id_token, &key, &validation) {
            return Ok(Some(data.claims.aud));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn new_key() -> (SigningKey, DecodingKey) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = SigningKey::from_pkcs8(pkcs8.as_ref()).unwrap();
        let point = key.pair.public_key().as_ref().to_vec();
        let public = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap();
        (key, public)
    }

    #[test]
    fn a_signed_token_verifies_with_the_public_key_and_carries_its_header() {
        let (key, public) = new_key();
        let claims = json!({"sub": "é/\"x\"", "aud": "c", "exp": 4_102_444_800_i64});
        let jws = sign("kid-1", &key, &claims).unwrap();
        let header = jsonwebtoken::decode_header(&jws).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["c"]);
        let data = jsonwebtoken::decode::<Value>(&jws, &public, &v).unwrap();
        assert_eq!(data.claims, claims);
    }

    #[test]
    fn a_token_altered_or_signed_by_another_key_does_not_verify() {
        let (key, public) = new_key();
        let (_, other) = new_key();
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_aud = false;
        let jws = sign("k", &key, &json!({"exp": 4_102_444_800_i64, "sub": "a"})).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&jws, &other, &v).is_err());
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"exp":4102444800,"sub":"b"}"#);
        let altered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert!(jsonwebtoken::decode::<Value>(&altered, &public, &v).is_err());
        assert!(jsonwebtoken::decode::<Value>(&jws, &public, &v).is_ok());
    }
}
