//! The credential vault (api.md § Collective-account credentials). Handlers parse, build the
//! caller and call one use case of `service::vault`, which authorizes itself.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::usagers::{created, idempotency_key};
use crate::app::AppState;
use crate::domain::FieldError;
use crate::error::{ApiResult, AppError};
use crate::http::auth::Session;
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::service::Caller;
use crate::service::vault::{
    self, Channel, EntryInput, HandedOver, NewEntry, Reason, Revealed, VaultEntry, VaultPage,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/vault/entries", post(create).get(list))
        .route("/api/v1/vault/entries/{id}", delete(remove))
        .route("/api/v1/vault/entries/{id}/reveal", post(reveal))
        .route("/api/v1/vault/entries/{id}/secret", put(rotate))
        .route("/api/v1/vault/entries/{id}/hand-over", post(hand_over))
}

fn caller(session: &Session, rid: Option<String>) -> ApiResult<Caller> {
    let org = session.acting_organisation(None)?;
    Ok(Caller::new(session, org, rid))
}

fn invalid(field: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, message)])
}

/// The body of a creation. `Debug` is not derived: it holds the login and the secret.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    label: String,
    service: String,
    login: String,
    secret: String,
    totp_seed: Option<String>,
    notes: Option<String>,
    usager_id: Option<Uuid>,
    demarche: Option<String>,
}

impl Drop for CreateBody {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.login.zeroize();
        self.secret.zeroize();
        if let Some(s) = self.totp_seed.as_mut() {
            s.zeroize();
        }
        if let Some(n) = self.notes.as_mut() {
            n.zeroize();
        }
    }
}

/// Add a collective-account credential to the current organisation (sealed at rest).
#[utoipa::path(post, path = "/api/v1/vault/entries", tag = "vault", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = VaultEntry), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let caller = caller(&session, rid)?;
    let idem = idempotency_key(&state, &headers, &session, "vault", &b)?;
    let input = NewEntry::parse(&EntryInput {
        label: &b.label,
        service: &b.service,
        login: &b.login,
        secret: &b.secret,
        totp_seed: b.totp_seed.as_deref(),
        notes: b.notes.as_deref(),
        usager_id: b.usager_id,
        demarche: b.demarche.as_deref(),
    })
    .map_err(AppError::Validation)?;
    Ok(created(
        vault::create(&state, &caller, input, idem.as_ref()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The current organisation's entries: metadata only (never a login, secret or seed).
#[utoipa::path(get, path = "/api/v1/vault/entries", tag = "vault", params(ListParams), responses((status = 200, body = VaultPage), problem::Unprocessable))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<VaultPage>> {
    let caller = caller(&session, rid)?;
    let limit = super::mandates::limit(p.limit)?;
    Ok(Json(
        vault::list(&state, &caller, p.cursor.as_deref(), limit).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealBody {
    /// `usager_present`, `usager_remote_request`, `account_maintenance` or `other`.
    reason: String,
}

/// Reveal the secret (and the account's current TOTP code): a step-up of less than 5
/// minutes, a reason, and for a linked entry an active mandate covering its démarche.
#[utoipa::path(post, path = "/api/v1/vault/entries/{id}/reveal", tag = "vault", params(("id" = Uuid, Path)), request_body = RevealBody,
    responses((status = 200, body = Revealed), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn reveal(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RevealBody>,
) -> ApiResult<Response> {
    let caller = caller(&session, rid)?;
    let reason = Reason::parse(&b.reason).ok_or_else(|| {
        invalid(
            "reason",
            "Indiquez pourquoi vous affichez ce secret : usager présent, demande à distance, maintenance du compte ou autre.",
        )
    })?;
    let revealed = vault::reveal(&state, &caller, id, reason).await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(revealed),
    )
        .into_response())
}

/// The new secret. `Debug` is not derived.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    secret: String,
}

impl Drop for SecretBody {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.secret.zeroize();
    }
}

/// Replace the secret: a new version; the old ciphertext is overwritten.
#[utoipa::path(put, path = "/api/v1/vault/entries/{id}/secret", tag = "vault", params(("id" = Uuid, Path)), request_body = SecretBody,
    responses((status = 204), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn rotate(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<SecretBody>,
) -> ApiResult<StatusCode> {
    let caller = caller(&session, rid)?;
    let secret = vault::parse_secret(&b.secret)?;
    vault::rotate(&state, &caller, id, secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an entry: its data key is destroyed (crypto-shredding).
#[utoipa::path(delete, path = "/api/v1/vault/entries/{id}", tag = "vault", params(("id" = Uuid, Path)),
    responses((status = 204), problem::NotFound, problem::Conflict))]
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let caller = caller(&session, rid)?;
    vault::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOverBody {
    /// `print` (a PDF slip, not stored) or `sms` (to the usager's phone).
    channel: String,
}

/// Hand the account's access code over to the entry's usager.
#[utoipa::path(post, path = "/api/v1/vault/entries/{id}/hand-over", tag = "vault", params(("id" = Uuid, Path)), request_body = HandOverBody,
    responses(
        (status = 200, content_type = "application/pdf", body = Vec<u8>),
        (status = 202),
        problem::NotFound,
        problem::Conflict,
        problem::Unprocessable,
    ))]
pub async fn hand_over(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<HandOverBody>,
) -> ApiResult<Response> {
    let caller = caller(&session, rid)?;
    let channel = Channel::parse(&b.channel)
        .ok_or_else(|| invalid("channel", "Choisissez « print » ou « sms »."))?;
    Ok(
        match vault::hand_over(&state, &caller, id, channel).await? {
            HandedOver::Slip(bytes) => slip_response(bytes),
            HandedOver::SmsQueued => StatusCode::ACCEPTED.into_response(),
        },
    )
}

/// The slip as a PDF answer (never cached).
pub fn slip_response(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"identifiants.pdf\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response()
}
