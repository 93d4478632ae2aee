//! Session and account routes.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::auth::{ClientIp, Session, clear_cookie, session_cookie};
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::http::ratelimit::Limit;
use crate::service::accounts::{self, LoginInput, Me};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login))
        .route("/api/v1/session", delete(logout))
        .route("/api/v1/session/step-up", post(step_up))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/current-organisation", put(switch_organisation))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    #[schema(value_type = String)]
    password: SecretString,
    totp: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LoggedIn {
    aidant: Me,
}

/// Log in with password and TOTP code.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", security(()), request_body = LoginBody, responses((status = 200, body = LoggedIn), problem::Unauthenticated, problem::TooManyRequests))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    state.limits.check(Limit::Login, ip)?;
    let (token, me) = accounts::login(
        &state,
        LoginInput {
            email: body.email,
            password: body.password,
            totp: body.totp,
        },
        ip,
        rid,
    )
    .await?;
    let mut res = Json(LoggedIn { aidant: me }).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, token.expose_secret()),
    );
    Ok(res)
}

/// Log out: the session is destroyed on the server.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
) -> ApiResult<Response> {
    accounts::logout(&state, &session, rid).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&state));
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpBody {
    totp: String,
}

/// Give a fresh TOTP code: the session is stepped-up for 5 minutes.
#[utoipa::path(post, path = "/api/v1/session/step-up", tag = "session", request_body = StepUpBody, responses((status = 204), problem::Unauthenticated, problem::TooManyRequests, problem::Unprocessable))]
pub async fn step_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<StepUpBody>,
) -> ApiResult<StatusCode> {
    state.limits.check(Limit::Login, ip)?;
    accounts::step_up(&state, &session, &body.totp, ip, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = Me)))]
pub async fn me(session: Session) -> Json<Me> {
    Json(Me::from(&session))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    #[schema(value_type = String)]
    current_password: SecretString,
    #[schema(value_type = String)]
    new_password: SecretString,
}

/// Change the password; the account's other sessions end. A wrong current password counts
/// towards the account lockout.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "session", request_body = PasswordBody, responses((status = 204), problem::Unprocessable, problem::TooManyRequests))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    accounts::change_password(
        &state,
        &session,
        body.current_password,
        body.new_password,
        ip,
        rid,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    organisation_id: Uuid,
}

/// Choose the organisation the aidant acts for.
#[utoipa::path(put, path = "/api/v1/me/current-organisation", tag = "session", request_body = SwitchBody, responses((status = 200, body = Me), problem::NotFound))]
pub async fn switch_organisation(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<SwitchBody>,
) -> ApiResult<Json<Me>> {
    Ok(Json(
        accounts::switch_organisation(&state, &session, body.organisation_id, rid).await?,
    ))
}
