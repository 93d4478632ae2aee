//! Who is calling: the session cookie resolved against the database (idle and absolute
//! timeouts enforced here, on the server), and the client IP (trusted proxies only).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::app::AppState;
use crate::authz::Principal;
use crate::crypto::sha256;
use crate::error::AppError;
use crate::store::MembershipRow;

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// `last_seen_at` is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

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

/// A membership as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub organisation_id: Uuid,
    pub organisation_name: String,
    pub role: String,
}

/// The authenticated account of this request.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub aidant_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub is_dpo: bool,
    /// Active memberships only.
    pub memberships: Vec<Membership>,
    pub current_organisation_id: Option<Uuid>,
    pub fresh_factor_at: DateTime<Utc>,
    pub step_up_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl Session {
    /// The principal the policies see.
    pub fn principal(&self) -> Principal {
        Principal {
            id: self.aidant_id,
            active: true,
            is_admin: self.is_admin,
            is_dpo: self.is_dpo,
            member_of: self.memberships.iter().map(|m| m.organisation_id).collect(),
            referent_of: self
                .memberships
                .iter()
                .filter(|m| m.role == "referent")
                .map(|m| m.organisation_id)
                .collect(),
            fresh_factor_age: (self.now - self.fresh_factor_at).num_seconds().max(0),
            step_up_age: self.step_up_at.map(|t| (self.now - t).num_seconds().max(0)),
        }
    }

    pub fn is_member_of(&self, org: Uuid) -> bool {
        self.memberships.iter().any(|m| m.organisation_id == org)
    }

    /// The organisation to act for: explicit, or the current one.
    pub fn acting_organisation(&self, explicit: Option<Uuid>) -> Result<Uuid, AppError> {
        match explicit.or(self.current_organisation_id) {
            Some(org) if self.is_member_of(org) => Ok(org),
            Some(_) => Err(AppError::NotFound),
            None => Err(AppError::Forbidden),
        }
    }

    pub fn platform_roles(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.is_dpo {
            r.push("dpo");
        }
        if self.is_admin {
            r.push("admin");
        }
        r
    }
}

pub fn active_memberships(rows: Vec<MembershipRow>) -> Vec<Membership> {
    rows.into_iter()
        .filter(|m| m.active)
        .map(|m| Membership {
            organisation_id: m.organisation_id,
            organisation_name: m.organisation_name,
            role: m.role,
        })
        .collect()
}

impl FromRequestParts<AppState> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        let token = session_token(state, &parts.headers).ok_or(AppError::Unauthenticated)?;
        let id_hash = sha256(token.as_bytes()).to_vec();
        let now = state.clock.now();
        let mut tx = state.store.begin_read().await?;
        let Some(row) = tx.get_session(&id_hash).await? else {
            return Err(AppError::Unauthenticated);
        };
        let aidant = tx.get_aidant(row.aidant_id).await?;
        let memberships = tx.memberships(row.aidant_id).await?;
        drop(tx);
        let expired =
            now - row.last_seen_at > IDLE_TIMEOUT || now - row.created_at > ABSOLUTE_TIMEOUT;
        let aidant = match aidant {
            Some(a) if a.active && !expired => a,
            _ => {
                let mut tx = state.store.begin().await?;
                tx.delete_session(&id_hash).await?;
                tx.commit().await?;
                return Err(AppError::Unauthenticated);
            }
        };
        if now - row.last_seen_at > TOUCH_EVERY {
            let mut tx = state.store.begin().await?;
            tx.touch_session(&id_hash, now).await?;
            tx.commit().await?;
        }
        let memberships = active_memberships(memberships);
        let current = aidant
            .current_organisation_id
            .filter(|o| memberships.iter().any(|m| m.organisation_id == *o))
            .or_else(|| memberships.first().map(|m| m.organisation_id));
        let session = Session {
            id_hash,
            aidant_id: aidant.id,
            email: aidant.email,
            display_name: aidant.display_name,
            is_admin: aidant.is_admin,
            is_dpo: aidant.is_dpo,
            memberships,
            current_organisation_id: current,
            fresh_factor_at: row.fresh_factor_at,
            step_up_at: row.step_up_at,
            now,
        };
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
