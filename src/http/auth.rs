//! Who is calling: the session cookie resolved against the database (idle and absolute
//! timeouts enforced here, on the server), and the client IP (trusted proxies only).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

use crate::app::AppState;
use crate::error::AppError;
use crate::service::session;
pub use crate::service::session::{
    ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, Membership, Session, active_memberships,
};

/// The cookie's name: `__Host-` prefixed when it is `Secure`.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        "__Host-mandat_session"
    } else {
        "mandat_session"
    }
}

/// `Set-Cookie` for a new session token.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_name(state),
        ABSOLUTE_TIMEOUT.num_seconds()
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(state)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session token from the `Cookie` header, if any.
pub fn session_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = AppError;

    /// The cookie's session, resolved once per request by the use case.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let token = session_token(state, &parts.headers).ok_or(AppError::Unauthenticated)?;
        let session = session::resolve(state, &token).await?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// The client's IP: the peer address, or the last untrusted hop of `X-Forwarded-For` when
/// the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let trusted = |ip: IpAddr| state.config.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return Ok(Self(peer));
        }
        let hops: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        Ok(Self(
            hops.into_iter()
                .rev()
                .find(|ip| !trusted(*ip))
                .unwrap_or(peer),
        ))
    }
}
