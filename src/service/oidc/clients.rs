//! Relying parties: registration (`mandat client create`) and client authentication at the
//! token endpoint (`client_secret_basic`, `client_secret_post`, `private_key_jwt`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{TOKEN_KEY_VERSION, token::OidcError};
use crate::audit::{self, Actor, Details, NewEvent};
use crate::authz::{Action, Facts, Resource};
use crate::crypto::Purpose;
use crate::domain::demarche::DemarcheId;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{OidcClientRow, Tx};

/// How a client authenticates at the token endpoint, as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A shared secret, sent with HTTP Basic or in the form (`client_secret_post`).
    Secret,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" | "client_secret_post" => Some(Self::Secret),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// What `client create` is given.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty: every démarche of the catalogue.
    pub demarches: Vec<String>,
    pub auth: AuthMethod,
    /// The client's public keys (a JWK Set), for `private_key_jwt`.
    pub jwks: Option<String>,
}

#[derive(Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreatedClient({}, [redacted])", self.client_id)
    }
}

fn invalid(field: &str, message: &str) -> AppError {
    crate::service::mandates::validation(field, message)
}

/// The host all redirect URIs share (the pairwise sector).
fn sector_of(uris: &[String]) -> Result<String, AppError> {
    let mut host: Option<String> = None;
    for u in uris {
        let parsed = url::Url::parse(u)
            .map_err(|_| invalid("redirect_uri", "Adresse de retour invalide."))?;
        if parsed.fragment().is_some() || !matches!(parsed.scheme(), "https" | "http") {
            return Err(invalid(
                "redirect_uri",
                "Adresse de retour invalide : http(s), sans fragment.",
            ));
        }
        let h = parsed
            .host_str()
            .ok_or_else(|| invalid("redirect_uri", "Adresse de retour sans hôte."))?
            .to_ascii_lowercase();
        match &host {
            Some(prev) if *prev != h => {
                return Err(invalid(
                    "redirect_uri",
                    "Les adresses de retour d'un client partagent un même hôte.",
                ));
            }
            _ => host = Some(h),
        }
    }
    host.ok_or_else(|| {
        invalid(
            "redirect_uri",
            "Au moins une adresse de retour est requise.",
        )
    })
}

/// HMAC of a client secret (keyed by the server's `token` key, bound to the client id).
fn secret_mac(s: &Services, client: Uuid, secret: &str) -> ApiResult<Vec<u8>> {
    let key = s
        .keyring
        .key(Purpose::Token, TOKEN_KEY_VERSION)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("token key: {e}")))?;
    Ok(key
        .hmac(&[b"oidc-client-secret", client.as_bytes(), secret.as_bytes()])
        .to_vec())
}

/// Registers a client (an administrator's act; the command line acts as the system).
pub async fn create(
    s: &Services,
    principal: Option<&crate::authz::Principal>,
    input: NewClient,
) -> ApiResult<CreatedClient> {
    if let Some(p) = principal {
        s.authz.authorize(
            p,
            Action::OidcClientCreate,
            &Resource::Platform,
            &Facts::none(),
        )?;
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "Nom obligatoire (200 caractères au plus)."));
    }
    let sector = sector_of(&input.redirect_uris)?;
    for u in &input.post_logout_redirect_uris {
        url::Url::parse(u).map_err(|_| {
            invalid(
                "post_logout_redirect_uri",
                "Adresse de retour après déconnexion invalide.",
            )
        })?;
    }
    let demarches: Vec<String> = if input.demarches.is_empty() {
        DemarcheId::all()
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect()
    } else {
        for d in &input.demarches {
            if DemarcheId::parse(d).is_none() {
                return Err(invalid("demarches", "Démarche inconnue."));
            }
        }
        input.demarches.clone()
    };
    let id = Uuid::now_v7();
    let (secret, mac, jwks, method) = match input.auth {
        AuthMethod::Secret => {
            let secret = crate::crypto::tokens::new_token()
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
            let mac = secret_mac(s, id, secret.expose_secret())?;
            (Some(secret), Some(mac), None, "client_secret_basic")
        }
        AuthMethod::PrivateKeyJwt => {
            let text = input
                .jwks
                .ok_or_else(|| invalid("jwks", "Un jeu de clés (JWK Set) est requis."))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|_| invalid("jwks", "Jeu de clés (JWK Set) illisible."))?;
            if set.keys.is_empty() || set.keys.iter().any(|k| DecodingKey::from_jwk(k).is_err()) {
                return Err(invalid(
                    "jwks",
                    "Jeu de clés (JWK Set) vide ou inutilisable.",
                ));
            }
            (None, None, Some(text), "private_key_jwt")
        }
    };
    let now = s.clock.now();
    let row = OidcClientRow {
        id,
        name,
        redirect_uris: input.redirect_uris.join("\n"),
        post_logout_redirect_uris: input.post_logout_redirect_uris.join("\n"),
        allowed_demarches: demarches.join(","),
        auth_method: method.into(),
        secret_mac: mac,
        secret_key_version: secret.as_ref().map(|_| i64::from(TOKEN_KEY_VERSION)),
        jwks,
        sector,
        active: true,
        created_at: now,
    };
    let mut tx = s.store.begin().await?;
    tx.insert_oidc_client(&row).await?;
    let actor = principal.map_or_else(Actor::system, |p| Actor::aidant(p.id));
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            actor,
            Details::OidcClientCreated {
                client_id: id.to_string(),
                auth_method: method.into(),
                allowed_demarches: demarches,
            },
        ),
    )
    .await?;
    s.commit(tx).await?;
    Ok(CreatedClient {
        client_id: id.to_string(),
        client_secret: secret.map(|s| s.expose_secret().to_owned()),
    })
}

/// A registered client as the pages and the use cases see it.
#[derive(Debug, Clone)]
pub struct Client {
    pub row: OidcClientRow,
}

impl Client {
    pub fn id(&self) -> Uuid {
        self.row.id
    }
    pub fn redirect_uris(&self) -> impl Iterator<Item = &str> {
        self.row.redirect_uris.lines().filter(|l| !l.is_empty())
    }
    pub fn post_logout_redirect_uris(&self) -> impl Iterator<Item = &str> {
        self.row
            .post_logout_redirect_uris
            .lines()
            .filter(|l| !l.is_empty())
    }
    pub fn allows_demarche(&self, d: &str) -> bool {
        self.row.allowed_demarches.split(',').any(|a| a == d)
    }
    pub fn allowed_demarches(&self) -> Vec<String> {
        self.row
            .allowed_demarches
            .split(',')
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The active client of this id, if any.
pub async fn find(tx: &mut dyn Tx, client_id: &str) -> ApiResult<Option<Client>> {
    let Ok(id) = Uuid::parse_str(client_id.trim()) else {
        return Ok(None);
    };
    Ok(tx
        .get_oidc_client(id)
        .await?
        .filter(|r| r.active)
        .map(|row| Client { row }))
}

/// A client as listed on `/admin`.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub id: Uuid,
    pub name: String,
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    pub allowed_demarches: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The registered clients (administrators).
pub async fn list(
    s: &Services,
    principal: &crate::authz::Principal,
) -> ApiResult<Vec<ClientSummary>> {
    s.authz.authorize(
        principal,
        Action::OidcClientCreate,
        &Resource::Platform,
        &Facts::none(),
    )?;
    let mut tx = s.store.begin_read().await?;
    Ok(tx
        .list_oidc_clients(500)
        .await?
        .into_iter()
        .map(|r| ClientSummary {
            id: r.id,
            name: r.name,
            auth_method: r.auth_method,
            redirect_uris: r.redirect_uris.lines().map(str::to_owned).collect(),
            allowed_demarches: r
                .allowed_demarches
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: r.created_at,
        })
        .collect())
}

/// What the token endpoint was given to authenticate the client.
#[derive(Default)]
pub struct ClientCredentials {
    /// `Authorization: Basic …`, decoded: `(client_id, secret)`.
    pub basic: Option<(String, SecretString)>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCredentials([redacted])")
    }
}

impl ClientCredentials {
    /// Reads `Authorization: Basic` (RFC 6749 §2.3.1: both parts form-urlencoded).
    pub fn parse_basic(header: &str) -> Option<(String, SecretString)> {
        let b64 = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))?;
        let raw = STANDARD.decode(b64.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (id, secret) = text.split_once(':')?;
        let dec = |s: &str| -> String {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), SecretString::from(dec(secret))))
    }
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: Option<String>,
}

/// Authenticates the client of a token request; `invalid_client` on any failure.
pub async fn authenticate(
    s: &Services,
    tx: &mut dyn Tx,
    creds: &ClientCredentials,
) -> Result<(Client, &'static str), OidcError> {
    let bad = || OidcError::invalid_client("client authentication failed");
    if let Some(assertion) = &creds.assertion {
        if creds.assertion_type.as_deref() != Some(ASSERTION_TYPE) || creds.basic.is_some() {
            return Err(bad());
        }
        return private_key_jwt(s, tx, creds.client_id.as_deref(), assertion).await;
    }
    let (id, secret, method) = match (&creds.basic, &creds.client_id, &creds.client_secret) {
        (Some((id, secret)), None | Some(_), None) => (id.as_str(), secret, "client_secret_basic"),
        (None, Some(id), Some(secret)) => (id.as_str(), secret, "client_secret_post"),
        _ => return Err(bad()),
    };
    if let (Some((basic_id, _)), Some(form_id)) = (&creds.basic, &creds.client_id)
        && basic_id != form_id
    {
        return Err(bad());
    }
    let client = find(tx, id)
        .await
        .map_err(OidcError::from)?
        .ok_or_else(bad)?;
    if AuthMethod::parse(&client.row.auth_method) != Some(AuthMethod::Secret) {
        return Err(bad());
    }
    let stored = client.row.secret_mac.as_deref().ok_or_else(bad)?;
    let mac = secret_mac(s, client.id(), secret.expose_secret()).map_err(OidcError::from)?;
    if !crate::crypto::ct_eq(&mac, stored) {
        return Err(bad());
    }
    Ok((client, method))
}

async fn private_key_jwt(
    s: &Services,
    tx: &mut dyn Tx,
    form_client_id: Option<&str>,
    assertion: &str,
) -> Result<(Client, &'static str), OidcError> {
    let bad = || OidcError::invalid_client("client authentication failed");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad())?;
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES384
    ) {
        return Err(bad());
    }
    // The issuer names the client; the signature is checked with that client's keys below.
    let mut peek = Validation::new(header.alg);
    peek.insecure_disable_signature_validation();
    peek.validate_exp = false;
    peek.validate_aud = false;
    peek.required_spec_claims.clear();
    let unverified: AssertionClaims =
        jsonwebtoken::decode(assertion, &DecodingKey::from_secret(&[]), &peek)
            .map_err(|_| bad())?
            .claims;
    if form_client_id.is_some_and(|c| c != unverified.iss) {
        return Err(bad());
    }
    let client = find(tx, &unverified.iss)
        .await
        .map_err(OidcError::from)?
        .ok_or_else(bad)?;
    if AuthMethod::parse(&client.row.auth_method) != Some(AuthMethod::PrivateKeyJwt) {
        return Err(bad());
    }
    let set: JwkSet =
        serde_json::from_str(client.row.jwks.as_deref().ok_or_else(bad)?).map_err(|_| bad())?;
    let candidates: Vec<_> = set
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
        .collect();
    let client_id = client.id().to_string();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[super::token_endpoint(s), super::issuer(s)]);
    validation.set_issuer(&[&client_id]);
    validation.sub = Some(client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Times are checked below against the service's clock.
    validation.validate_exp = false;
    let verified = candidates.iter().find_map(|k| {
        let key = DecodingKey::from_jwk(k).ok()?;
        jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).ok()
    });
    let claims = verified.ok_or_else(bad)?.claims;
    if claims.sub != client_id {
        return Err(bad());
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 200)
        .ok_or_else(bad)?;
    let exp = DateTime::<Utc>::from_timestamp(claims.exp, 0).ok_or_else(bad)?;
    let now = s.clock.now();
    let leeway = chrono::Duration::seconds(30);
    if exp + leeway < now || exp > now + chrono::Duration::minutes(10) {
        return Err(OidcError::invalid_client(
            "client assertion expired or too long-lived",
        ));
    }
    let keep_until = exp + chrono::Duration::seconds(60);
    if !tx
        .remember_oidc_jti(client.id(), &jti, keep_until)
        .await
        .map_err(|e| OidcError::from(AppError::from(e)))?
    {
        return Err(OidcError::invalid_client("client assertion already used"));
    }
    Ok((client, "private_key_jwt"))
}
