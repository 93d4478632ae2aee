//! CSRF tokens of the pages. Logged in: `HMAC(token key, "csrf" ‖ session id hash)`, so the
//! token is per session, needs no storage and dies with the session. Before login (the
//! `/connexion` form): a random value in a `SameSite=Strict` cookie, repeated in the form
//! (double submit). Both are compared in constant time.

use axum::http::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret as _;

use crate::app::AppState;
use crate::crypto::{Purpose, ct_eq, tokens};
use crate::error::AppError;

/// The name of the hidden field carrying the token in every form.
pub const FIELD: &str = "csrf";

/// The cookie of the login form's token.
pub fn login_cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "__Host-mandat_csrf"
    } else {
        "mandat_csrf"
    }
}

/// The token of a session.
pub fn session_token(state: &AppState, session_id_hash: &[u8]) -> Result<String, AppError> {
    let key = state
        .keyring
        .key(Purpose::Token, 1)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("token key: {e}")))?;
    Ok(hex::encode(key.hmac(&[b"csrf", session_id_hash])))
}

/// Whether `submitted` is the session's token.
pub fn check_session(state: &AppState, session_id_hash: &[u8], submitted: Option<&str>) -> bool {
    match (session_token(state, session_id_hash), submitted) {
        (Ok(expected), Some(s)) => ct_eq(expected.as_bytes(), s.as_bytes()),
        _ => false,
    }
}

/// A new login-form token and its `Set-Cookie`.
pub fn new_login_token(state: &AppState) -> Result<(String, HeaderValue), AppError> {
    let token = tokens::new_token().map_err(anyhow::Error::from)?;
    let token = token.expose_secret().to_owned();
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        login_cookie_name(state)
    );
    let value = HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?;
    Ok((token, value))
}

/// Whether the login form's token matches its cookie.
pub fn check_login(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    let name = login_cookie_name(state);
    let cookie = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned());
    match (cookie, submitted) {
        (Some(c), Some(s)) if !c.is_empty() => ct_eq(c.as_bytes(), s.as_bytes()),
        _ => false,
    }
}
