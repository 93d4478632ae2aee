//! The token endpoint (authorization code + PKCE S256), userinfo and revocation (RFC 7009).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::clients::{self, ClientCredentials};
use super::{ACR, AMR, TOKEN_TTL_SECS, issuer, pairwise, signing, token_hash};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::error::AppError;
use crate::service::Services;
use crate::service::pii::open_usager;
use crate::store::{OidcTokenRow, Tx};

/// An RFC 6749 §5.2 error (or RFC 6750 for userinfo): the code, a description for the
/// developer (English, no secret, no personal data) and the HTTP status.
#[derive(Debug)]
pub struct OidcError {
    pub error: &'static str,
    pub description: String,
    pub status: u16,
}

impl OidcError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" | "invalid_token" => 401,
            "server_error" => 500,
            "temporarily_unavailable" => 503,
            "slow_down" => 429,
            _ => 400,
        };
        Self {
            error,
            description: description.into(),
            status,
        }
    }
    pub fn invalid_client(d: &str) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_grant(d: &str) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_request(d: &str) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_token(d: &str) -> Self {
        Self::new("invalid_token", d)
    }
}

impl From<AppError> for OidcError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unavailable => Self::new("temporarily_unavailable", "try again later"),
            AppError::RateLimited { .. } => Self::new("slow_down", "too many requests"),
            other => {
                tracing::error!(error = ?other, "oidc request failed");
                Self::new("server_error", "internal error")
            }
        }
    }
}

impl From<crate::store::StoreError> for OidcError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// A token request's form, parsed.
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub credentials: ClientCredentials,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRequest([redacted])")
    }
}

#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenResponse([redacted])")
    }
}

/// RFC 7636 §4.1: 43–128 characters of the unreserved set.
fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What the claims of a token are built from.
struct Subject<'a> {
    sector: &'a str,
    scope: &'a str,
    aidant: Uuid,
    organisation: Uuid,
    usager: Uuid,
    mandate: Uuid,
    demarche: &'a str,
    mandate_expires: DateTime<Utc>,
}

/// The usager claims the scopes allow, plus `sub`, `act` and `mandate`.
async fn claims(
    s: &Services,
    tx: &mut dyn Tx,
    who: &Subject<'_>,
) -> Result<Map<String, Value>, OidcError> {
    let mut c = Map::new();
    c.insert(
        "sub".into(),
        pairwise(s, "usager", who.sector, who.usager)?.into(),
    );
    let scopes: Vec<&str> = who.scope.split(' ').collect();
    let wants = |x: &str| scopes.contains(&x);
    if wants("profile") || wants("birth") || wants("phone") || wants("email") {
        let row = tx
            .get_usager(who.usager)
            .await?
            .filter(|u| u.erased_at.is_none())
            .ok_or_else(|| OidcError::invalid_grant("the usager is no longer available"))?;
        let p = open_usager(&s.keyring, &row)?;
        if wants("profile") {
            c.insert("given_name".into(), p.given_name.as_str().into());
            c.insert("family_name".into(), p.family_name.as_str().into());
            c.insert("birthdate".into(), p.birthdate.as_str().into());
        }
        if wants("birth")
            && let Some(b) = &p.birthplace
        {
            c.insert("birthplace".into(), b.as_str().into());
        }
        if wants("phone")
            && let Some(ph) = &p.phone
        {
            c.insert("phone_number".into(), ph.as_str().into());
        }
        if wants("email")
            && let Some(e) = &p.email
        {
            c.insert("email".into(), e.as_str().into());
        }
    }
    let org = tx
        .get_organisation(who.organisation)
        .await?
        .ok_or_else(|| OidcError::invalid_grant("the organisation is no longer available"))?;
    c.insert(
        "act".into(),
        json!({
            "sub": pairwise(s, "aidant", who.sector, who.aidant)?,
            "organisation": {"id": org.id.to_string(), "name": org.name, "siret": org.siret},
        }),
    );
    c.insert(
        "mandate".into(),
        json!({
            "id": who.mandate.to_string(),
            "demarche": who.demarche,
            "expires_at": who.mandate_expires.timestamp(),
        }),
    );
    Ok(c)
}

/// Whether an authenticated client may make one more request (its rate limit); the adapter
/// that counts requests gives it.
pub type Admit<'a> = &'a (dyn Fn(Uuid) -> bool + Send + Sync);

fn too_many() -> OidcError {
    OidcError::new("slow_down", "too many requests for this client")
}

/// `POST /oidc/token`: exchanges a code for an access token and an ES256 ID token.
pub async fn exchange(
    s: &Services,
    req: TokenRequest,
    admit: Admit<'_>,
) -> Result<TokenResponse, OidcError> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (client, method) = clients::authenticate(s, tx.as_mut(), &req.credentials).await?;
    if !admit(client.id()) {
        return Err(too_many());
    }
    match req.grant_type.as_deref() {
        Some("authorization_code") => {}
        None => return Err(OidcError::invalid_request("grant_type is required")),
        Some(_) => {
            return Err(OidcError::new(
                "unsupported_grant_type",
                "only authorization_code is supported",
            ));
        }
    }
    let code = req
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 200)
        .ok_or_else(|| OidcError::invalid_request("code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| OidcError::invalid_request("redirect_uri is required"))?;
    let hash = token_hash(code);
    let row = tx
        .get_oidc_code(&hash)
        .await?
        .filter(|r| r.client_id == client.id())
        .ok_or_else(|| OidcError::invalid_grant("unknown code"))?;
    if row.used_at.is_some() {
        // RFC 6749 §4.1.2: a second use revokes what the first one issued.
        let revoked = tx.revoke_oidc_tokens_of_code(&hash, now).await?;
        audit::append(
            tx.as_mut(),
            &NewEvent::new(
                now,
                Actor::client(&client.id().to_string()),
                Details::OidcCodeReplayed {
                    client_id: client.id().to_string(),
                    tokens_revoked: i64::try_from(revoked).unwrap_or(i64::MAX),
                },
            )
            .organisation(row.organisation_id)
            .usager(row.usager_id)
            .mandate(row.mandate_id),
        )
        .await?;
        s.commit(tx).await?;
        return Err(OidcError::invalid_grant("code already used"));
    }
    if now >= row.expires_at {
        return Err(OidcError::invalid_grant("code expired"));
    }
    if !tx.use_oidc_code(&hash, now).await? {
        return Err(OidcError::invalid_grant("code already used"));
    }
    // From here on the code is spent, whatever the outcome.
    let verifier_matches = req.code_verifier.as_deref().is_some_and(|v| {
        verifier_ok(v)
            && crate::crypto::ct_eq(
                URL_SAFE_NO_PAD
                    .encode(crate::crypto::sha256(v.as_bytes()))
                    .as_bytes(),
                row.code_challenge.as_bytes(),
            )
    });
    let problem = if redirect_uri != row.redirect_uri {
        Some(OidcError::invalid_grant("redirect_uri does not match"))
    } else if !verifier_matches {
        Some(OidcError::invalid_grant("code_verifier does not match"))
    } else {
        None
    };
    let expiry = if problem.is_none() {
        tx.oidc_mandate_expiry(row.mandate_id, &row.demarche, now)
            .await?
    } else {
        None
    };
    let Some(mandate_expires) = expiry else {
        s.commit(tx).await?;
        return Err(problem.unwrap_or_else(|| {
            OidcError::invalid_grant("the mandate no longer covers this démarche")
        }));
    };
    let subject = Subject {
        sector: &client.row.sector,
        scope: &row.scope,
        aidant: row.aidant_id,
        organisation: row.organisation_id,
        usager: row.usager_id,
        mandate: row.mandate_id,
        demarche: &row.demarche,
        mandate_expires,
    };
    let mut id_claims = claims(s, tx.as_mut(), &subject).await?;
    let (kid, key) = signing::current(tx.as_mut(), s).await?;
    let access = crate::crypto::tokens::new_token().map_err(|e| AppError::Internal(e.into()))?;
    let access = secrecy::ExposeSecret::expose_secret(&access).to_owned();
    let expires_at = now + chrono::Duration::seconds(TOKEN_TTL_SECS);
    tx.insert_oidc_token(&OidcTokenRow {
        token_hash: token_hash(&access),
        code_hash: hash,
        client_id: client.id(),
        scope: row.scope.clone(),
        aidant_id: row.aidant_id,
        organisation_id: row.organisation_id,
        usager_id: row.usager_id,
        mandate_id: row.mandate_id,
        demarche: row.demarche.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
    })
    .await?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            Actor::client(&client.id().to_string()),
            Details::OidcTokenIssued {
                client_id: client.id().to_string(),
                demarche: row.demarche.clone(),
                auth_method: method.into(),
            },
        )
        .organisation(row.organisation_id)
        .usager(row.usager_id)
        .mandate(row.mandate_id),
    )
    .await?;
    s.commit(tx).await?;

    let at_hash = {
        let digest = crate::crypto::sha256(access.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    let std_claims = [
        ("iss", Value::from(issuer(s))),
        ("aud", Value::from(client.id().to_string())),
        ("exp", Value::from(expires_at.timestamp())),
        ("iat", Value::from(now.timestamp())),
        ("auth_time", Value::from(row.auth_time.timestamp())),
        ("nonce", Value::from(row.nonce.clone())),
        ("acr", Value::from(ACR)),
        ("amr", json!(AMR)),
        ("at_hash", Value::from(at_hash)),
    ];
    for (k, v) in std_claims {
        id_claims.insert(k.into(), v);
    }
    let id_token = signing::sign(&kid, &key, &id_claims)?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: TOKEN_TTL_SECS,
        id_token,
        scope: row.scope,
    })
}

/// `GET/POST /oidc/userinfo`: the usager claims of a live token, while its mandate démarche
/// stays active. Each call is audited (`oidc.userinfo`).
pub async fn userinfo(s: &Services, token: &str, admit: Admit<'_>) -> Result<Value, OidcError> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let t = tx
        .get_oidc_token(&token_hash(token))
        .await?
        .filter(|t| t.revoked_at.is_none() && now < t.expires_at)
        .ok_or_else(|| OidcError::invalid_token("the access token is invalid or expired"))?;
    if !admit(t.client_id) {
        return Err(too_many());
    }
    let mandate_expires = tx
        .oidc_mandate_expiry(t.mandate_id, &t.demarche, now)
        .await?
        .ok_or_else(|| OidcError::invalid_token("the mandate no longer covers this démarche"))?;
    let client = tx
        .get_oidc_client(t.client_id)
        .await?
        .filter(|c| c.active)
        .ok_or_else(|| OidcError::invalid_token("the client is no longer registered"))?;
    let subject = Subject {
        sector: &client.sector,
        scope: &t.scope,
        aidant: t.aidant_id,
        organisation: t.organisation_id,
        usager: t.usager_id,
        mandate: t.mandate_id,
        demarche: &t.demarche,
        mandate_expires,
    };
    let c = claims(s, tx.as_mut(), &subject).await.map_err(|e| {
        if e.error == "invalid_grant" {
            OidcError::invalid_token("the usager is no longer available")
        } else {
            e
        }
    })?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            Actor::client(&t.client_id.to_string()),
            Details::OidcUserinfo {
                client_id: t.client_id.to_string(),
                demarche: t.demarche.clone(),
            },
        )
        .organisation(t.organisation_id)
        .usager(t.usager_id)
        .mandate(t.mandate_id),
    )
    .await?;
    s.commit(tx).await?;
    Ok(Value::Object(c))
}

/// `POST /oidc/revoke` (RFC 7009): the client revokes one of its access tokens. Unknown
/// tokens, or another client's, change nothing and answer the same.
pub async fn revoke(
    s: &Services,
    creds: &ClientCredentials,
    token: Option<&str>,
    admit: Admit<'_>,
) -> Result<(), OidcError> {
    let now = s.clock.now();
    let mut tx = s.store.begin().await?;
    let (client, _) = clients::authenticate(s, tx.as_mut(), creds).await?;
    if !admit(client.id()) {
        return Err(too_many());
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OidcError::invalid_request("token is required"))?;
    let hash = token_hash(token);
    let row = tx.get_oidc_token(&hash).await?;
    if tx.revoke_oidc_token(&hash, client.id(), now).await? > 0
        && let Some(r) = row
    {
        audit::append(
            tx.as_mut(),
            &NewEvent::new(
                now,
                Actor::client(&client.id().to_string()),
                Details::OidcTokenRevoked {
                    client_id: client.id().to_string(),
                },
            )
            .organisation(r.organisation_id)
            .usager(r.usager_id)
            .mandate(r.mandate_id),
        )
        .await?;
    }
    s.commit(tx).await?;
    Ok(())
}
