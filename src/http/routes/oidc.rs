//! The OpenID Connect provider's machine endpoints: discovery, JWKS, token, userinfo,
//! revocation and RP-initiated logout. The authorize screens are pages (`pages::oidc`).
//! Handlers parse, call `service::oidc`, and answer in the RFC 6749 / 6750 error format.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::domain::demarche::DemarcheId;
use crate::service::oidc::clients::ClientCredentials;
use crate::service::oidc::token::{self, OidcError, TokenRequest};
use crate::service::oidc::{self as oidc, SCOPES, signing};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oidc/jwks", get(jwks))
        .route("/oidc/token", post(token_endpoint))
        .route("/oidc/userinfo", get(userinfo).post(userinfo))
        .route("/oidc/revoke", post(revoke))
        .route(
            "/oidc/end-session",
            get(super::super::pages::oidc::end_session),
        )
}

/// Endpoints called by relying parties' servers, authenticated by client credentials or a
/// bearer token, never by the session cookie: the same-origin guard does not apply.
pub fn is_back_channel(path: &str) -> bool {
    matches!(path, "/oidc/token" | "/oidc/userinfo" | "/oidc/revoke")
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn error_response(e: &OidcError, bearer: bool) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = json_response(
        status,
        &json!({"error": e.error, "error_description": e.description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        let v = if bearer {
            format!(
                "Bearer realm=\"mandat\", error=\"{}\", error_description=\"{}\"",
                e.error, e.description
            )
        } else {
            "Basic realm=\"mandat\"".to_owned()
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if e.error == "slow_down" {
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

async fn discovery(State(state): State<AppState>) -> Response {
    let iss = oidc::issuer(&state);
    let mut scopes: Vec<String> = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    scopes.extend(
        DemarcheId::all()
            .iter()
            .map(|d| format!("demarche:{}", d.as_str())),
    );
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oidc/authorize"),
        "token_endpoint": format!("{iss}/oidc/token"),
        "userinfo_endpoint": format!("{iss}/oidc/userinfo"),
        "jwks_uri": format!("{iss}/oidc/jwks"),
        "revocation_endpoint": format!("{iss}/oidc/revoke"),
        "end_session_endpoint": format!("{iss}/oidc/end-session"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "given_name", "family_name", "birthdate", "birthplace", "phone_number", "email",
            "act", "mandate"
        ],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "acr_values_supported": [oidc::ACR],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    });
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

async fn jwks(State(state): State<AppState>) -> Response {
    match signing::jwks(&state).await {
        Ok(body) => {
            let mut res = axum::Json(body).into_response();
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            res
        }
        Err(e) => e.into_response(),
    }
}

/// A form body: `None` when malformed or when a parameter repeats (RFC 6749 §3.1).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OidcError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty()
        && !ctype
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OidcError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(OidcError::invalid_request("a parameter is repeated"));
        }
    }
    Ok(pairs)
}

fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.swap_remove(i).1)
}

fn credentials(
    headers: &HeaderMap,
    pairs: &mut Vec<(String, String)>,
) -> Result<ClientCredentials, OidcError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(ClientCredentials::parse_basic)
                .ok_or_else(|| OidcError::invalid_client("malformed Authorization header"))?,
        ),
        None => None,
    };
    Ok(ClientCredentials {
        basic,
        client_id: take(pairs, "client_id"),
        client_secret: take(pairs, "client_secret").map(SecretString::from),
        assertion_type: take(pairs, "client_assertion_type"),
        assertion: take(pairs, "client_assertion"),
    })
}

async fn token_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let mut pairs = parse_form(&headers, &body)?;
        let credentials = credentials(&headers, &mut pairs)?;
        let req = TokenRequest {
            grant_type: take(&mut pairs, "grant_type"),
            code: take(&mut pairs, "code"),
            redirect_uri: take(&mut pairs, "redirect_uri"),
            code_verifier: take(&mut pairs, "code_verifier"),
            credentials,
        };
        token::exchange(&state, req, &|c| state.limits.admit_client("token", c)).await
    };
    match run.await {
        Ok(t) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&t).unwrap_or(Value::Null),
        ),
        Err(e) => error_response(&e, false),
    }
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
        let token = match from_header {
            Some(t) => t,
            None => {
                let mut pairs = parse_form(&headers, &body)?;
                take(&mut pairs, "access_token")
                    .ok_or_else(|| OidcError::invalid_token("a bearer access token is required"))?
            }
        };
        if token.is_empty() || token.len() > 200 {
            return Err(OidcError::invalid_token(
                "a bearer access token is required",
            ));
        }
        token::userinfo(&state, &token, &|c| {
            state.limits.admit_client("userinfo", c)
        })
        .await
    };
    match run.await {
        Ok(claims) => json_response(StatusCode::OK, &claims),
        Err(e) => error_response(&e, true),
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let mut pairs = parse_form(&headers, &body)?;
        let credentials = credentials(&headers, &mut pairs)?;
        let t = take(&mut pairs, "token");
        let admit = |c| state.limits.admit_client("revoke", c);
        token::revoke(&state, &credentials, t.as_deref(), &admit).await
    };
    match run.await {
        Ok(()) => json_response(StatusCode::OK, &json!({})),
        Err(e) => error_response(&e, false),
    }
}

/// The query of a request as pairs (for the pages).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}
