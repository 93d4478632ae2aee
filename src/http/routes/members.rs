//! Invitations and member management.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::auth::{ClientIp, Session};
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::http::ratelimit::Limit;
use crate::service::members::{
    self, AcceptInput, Enrolment, InvitationInfo, InviteInput, Invited, MemberItem,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/organisations/{org}/members",
            post(invite).get(list),
        )
        .route(
            "/api/v1/organisations/{org}/members/{aidant}",
            delete(deactivate),
        )
        .route(
            "/api/v1/organisations/{org}/members/{aidant}/reactivate",
            post(reactivate),
        )
        .route(
            "/api/v1/organisations/{org}/members/{aidant}/totp-reset",
            post(totp_reset),
        )
        .route(
            "/api/v1/organisations/{org}/members/{aidant}/totp-card",
            post(bind_card),
        )
        .route("/api/v1/organisations/{org}/totp-cards", post(import_cards))
        .route("/api/v1/invitations/{token}", get(invitation))
        .route("/api/v1/invitations/{token}/accept", post(accept))
        .route("/api/v1/invitations/{token}/confirm", post(confirm))
        .route("/api/v1/invitations/{token}/join", post(join))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    display_name: String,
    role: String,
}

/// Invite an aidant or référent into an organisation. The answer is the same whether the
/// e-mail is new (the link sets a password and a factor) or already has an account (the link
/// is a join invitation: a pending membership, activated by the person, logged in).
#[utoipa::path(post, path = "/api/v1/organisations/{org}/members", tag = "members", request_body = InviteBody,
    params(("org" = Uuid, Path)), responses((status = 201, body = Invited), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn invite(
    State(state): State<AppState>,
    session: Session,
    Path(org): Path<Uuid>,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<InviteBody>,
) -> ApiResult<(StatusCode, Json<Invited>)> {
    let out = members::invite(
        &state,
        &session,
        org,
        InviteInput {
            email: b.email,
            display_name: b.display_name,
            role: b.role,
        },
        rid,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MemberList {
    items: Vec<MemberItem>,
}

/// The organisation's members.
#[utoipa::path(get, path = "/api/v1/organisations/{org}/members", tag = "members", params(("org" = Uuid, Path)), responses((status = 200, body = MemberList), problem::NotFound))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(org): Path<Uuid>,
) -> ApiResult<Json<MemberList>> {
    Ok(Json(MemberList {
        items: members::list(&state, &session, org).await?,
    }))
}

/// End a membership (the account is deactivated if it was its last).
#[utoipa::path(delete, path = "/api/v1/organisations/{org}/members/{aidant}", tag = "members",
    params(("org" = Uuid, Path), ("aidant" = Uuid, Path)), responses((status = 204), problem::NotFound, problem::Conflict))]
pub async fn deactivate(
    State(state): State<AppState>,
    session: Session,
    Path((org, aidant)): Path<(Uuid, Uuid)>,
    RequestId(rid): RequestId,
) -> ApiResult<StatusCode> {
    members::deactivate(&state, &session, org, aidant, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reactivate a membership.
#[utoipa::path(post, path = "/api/v1/organisations/{org}/members/{aidant}/reactivate", tag = "members",
    params(("org" = Uuid, Path), ("aidant" = Uuid, Path)), responses((status = 204), problem::NotFound, problem::Conflict))]
pub async fn reactivate(
    State(state): State<AppState>,
    session: Session,
    Path((org, aidant)): Path<(Uuid, Uuid)>,
    RequestId(rid): RequestId,
) -> ApiResult<StatusCode> {
    members::reactivate(&state, &session, org, aidant, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ResetLink {
    invitation_url: String,
}

/// Retire the aidant's second factors; they enrol a new one through the returned link.
#[utoipa::path(post, path = "/api/v1/organisations/{org}/members/{aidant}/totp-reset", tag = "members",
    params(("org" = Uuid, Path), ("aidant" = Uuid, Path)), responses((status = 200, body = ResetLink), problem::NotFound, problem::Conflict))]
pub async fn totp_reset(
    State(state): State<AppState>,
    session: Session,
    Path((org, aidant)): Path<(Uuid, Uuid)>,
    RequestId(rid): RequestId,
) -> ApiResult<Json<ResetLink>> {
    Ok(Json(ResetLink {
        invitation_url: members::totp_reset(&state, &session, org, aidant, rid).await?,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    serial: String,
    #[schema(value_type = String)]
    seed: SecretString,
    /// `"hex"` when the seed is hexadecimal (default base32).
    encoding: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardsBody {
    cards: Vec<CardBody>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Imported {
    imported: i64,
}

/// Import physical TOTP cards (60-second step) for an organisation.
#[utoipa::path(post, path = "/api/v1/organisations/{org}/totp-cards", tag = "members", request_body = CardsBody,
    params(("org" = Uuid, Path)), responses((status = 201, body = Imported), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn import_cards(
    State(state): State<AppState>,
    session: Session,
    Path(org): Path<Uuid>,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<CardsBody>,
) -> ApiResult<(StatusCode, Json<Imported>)> {
    let cards = b
        .cards
        .into_iter()
        .map(|c| crate::service::cards::CardInput {
            serial: c.serial,
            seed: c.seed,
            hex: c.encoding.as_deref() == Some("hex"),
        })
        .collect();
    let imported = crate::service::cards::import_cards(&state, &session, org, cards, rid).await?;
    Ok((StatusCode::CREATED, Json(Imported { imported })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindBody {
    serial: String,
    totp: String,
}

/// Bind an imported card to an aidant after checking a current code.
#[utoipa::path(post, path = "/api/v1/organisations/{org}/members/{aidant}/totp-card", tag = "members", request_body = BindBody,
    params(("org" = Uuid, Path), ("aidant" = Uuid, Path)), responses((status = 204), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn bind_card(
    State(state): State<AppState>,
    session: Session,
    Path((org, aidant)): Path<(Uuid, Uuid)>,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<BindBody>,
) -> ApiResult<StatusCode> {
    crate::service::cards::bind_card(&state, &session, org, aidant, &b.serial, &b.totp, rid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an invitation is for.
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "members", security(()), params(("token" = String, Path)), responses((status = 200, body = InvitationInfo), problem::NotFound, problem::Gone, problem::TooManyRequests))]
pub async fn invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> ApiResult<Json<InvitationInfo>> {
    state.limits.check(Limit::Invitation, ip)?;
    Ok(Json(members::invitation_info(&state, &token).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    #[schema(value_type = String)]
    password: SecretString,
    email: Option<String>,
    display_name: Option<String>,
}

/// Set the password and receive the TOTP secret to enrol (a join invitation: `404`).
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "members", security(()), request_body = AcceptBody,
    params(("token" = String, Path)), responses((status = 200, body = Enrolment), problem::NotFound, problem::Conflict, problem::Gone, problem::Unprocessable, problem::TooManyRequests))]
pub async fn accept(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult<Json<Enrolment>> {
    state.limits.check(Limit::Invitation, ip)?;
    Ok(Json(
        members::accept(
            &state,
            &token,
            AcceptInput {
                password: b.password,
                email: b.email,
                display_name: b.display_name,
                ip,
            },
        )
        .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    totp: String,
}

/// Confirm the enrolment with a current code: the account is active.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/confirm", tag = "members", security(()), request_body = ConfirmBody,
    params(("token" = String, Path)), responses((status = 204), problem::NotFound, problem::Conflict, problem::Gone, problem::Unprocessable, problem::TooManyRequests))]
pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> ApiResult<StatusCode> {
    state.limits.check(Limit::Invitation, ip)?;
    members::confirm(&state, &token, &b.totp, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept a join invitation with your own account (logged in, second factor within 15
/// minutes): the membership becomes active. An invitation of another account: `404`.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/join", tag = "members",
    params(("token" = String, Path)), responses((status = 204), problem::Unauthenticated, problem::Forbidden, problem::NotFound, problem::Conflict, problem::Gone, problem::TooManyRequests))]
pub async fn join(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Path(token): Path<String>,
    RequestId(rid): RequestId,
) -> ApiResult<StatusCode> {
    state.limits.check(Limit::Invitation, ip)?;
    members::join(&state, &session, &token, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}
