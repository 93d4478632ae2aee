//! Organisations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiResult;
use crate::http::auth::Session;
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::service::organisations::{self, Organisation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/organisations", post(create))
        .route("/api/v1/organisations/{org}", get(read).patch(update))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    address: String,
    siret: Option<String>,
    allowed_demarches: Option<Vec<String>>,
}

/// Create an organisation (administrators).
#[utoipa::path(post, path = "/api/v1/organisations", tag = "organisations", request_body = CreateBody, responses((status = 201, body = Organisation), problem::Conflict, problem::Unprocessable))]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, Json<Organisation>)> {
    let input = organisations::OrganisationInput {
        name: &b.name,
        address: &b.address,
        siret: b.siret.as_deref(),
        allowed_demarches: b.allowed_demarches.as_deref(),
    };
    Ok((
        StatusCode::CREATED,
        Json(organisations::create_as(&state, &session, input, rid).await?),
    ))
}

/// An organisation (its members and administrators).
#[utoipa::path(get, path = "/api/v1/organisations/{org}", tag = "organisations", params(("org" = Uuid, Path)), responses((status = 200, body = Organisation), problem::NotFound))]
pub async fn read(
    State(state): State<AppState>,
    session: Session,
    Path(org): Path<Uuid>,
) -> ApiResult<Json<Organisation>> {
    Ok(Json(organisations::get_as(&state, &session, org).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    allowed_demarches: Option<Vec<String>>,
    address: Option<String>,
}

/// Change the allowed démarches or the address (référents, administrators).
#[utoipa::path(patch, path = "/api/v1/organisations/{org}", tag = "organisations", request_body = UpdateBody, params(("org" = Uuid, Path)), responses((status = 200, body = Organisation), problem::NotFound, problem::Unprocessable))]
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(org): Path<Uuid>,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<UpdateBody>,
) -> ApiResult<Json<Organisation>> {
    Ok(Json(
        organisations::update_as(&state, &session, org, b.address, b.allowed_demarches, rid)
            .await?,
    ))
}
