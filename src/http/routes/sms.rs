//! The SMS provider's inbound webhook: the usager answers the consent SMS.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{ApiResult, AppError};
use crate::http::extract::{RequestId, parse_json};
use crate::http::openapi::problem;
use crate::service::sms_replies;
use crate::sms::inbound::{SignatureError, parse_reply, verify};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/sms/inbound", post(inbound))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundBody {
    /// The sender, E.164.
    from: String,
    /// The text: `OUI <code>` or `NON`.
    body: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InboundAnswer {
    /// `accepted`, `refused`, `ignored`, `invalid_code`, `locked`, `expired` or `conflict`.
    result: &'static str,
}

/// Inbound SMS (signed by the provider with `X-Mandat-Signature`); `404` when no webhook
/// secret is configured. Not limited per IP: every reply of every usager comes from the
/// provider's few addresses (a per-IP budget would drop replies at a busy hour), and the
/// signature is the gate (an HMAC check per request; each signature once).
#[utoipa::path(post, path = "/api/v1/sms/inbound", tag = "public", security(()), request_body = InboundBody,
    params(("X-Mandat-Signature" = String, Header)),
    responses((status = 200, body = InboundAnswer), problem::BadRequest, problem::Unauthenticated, problem::NotFound, problem::UnsupportedMediaType))]
pub async fn inbound(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<InboundAnswer>> {
    let Some(secret) = state.config.sms_webhook_secret.as_ref() else {
        return Err(AppError::NotFound);
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(AppError::UnsupportedMediaType);
    }
    let signature = headers
        .get("x-mandat-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(AppError::Unauthenticated)?;
    let now = state.clock.now().timestamp();
    let sig =
        verify(secret.expose_secret().as_bytes(), signature, &body, now).map_err(|e| match e {
            SignatureError::Malformed => AppError::InvalidRequest {
                detail: "En-tête X-Mandat-Signature mal formé.".into(),
                errors: vec![],
            },
            SignatureError::Stale | SignatureError::Bad => AppError::Unauthenticated,
        })?;
    let b: InboundBody = parse_json(&body)?;
    let result = sms_replies::handle(&state, &sig, &b.from, parse_reply(&b.body), rid).await?;
    Ok(Json(InboundAnswer { result }))
}
