//! Usagers: registration, search, audited reads.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::usager::{NewUsager, UsagerInput};
use crate::error::{ApiResult, AppError};
use crate::http::auth::Session;
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::service::idempotency::{IdemKey, Replayable};
use crate::service::usagers::{self, Caller, Usager};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usagers", post(create).get(search))
        .route("/api/v1/usagers/{id}", get(read).delete(erase))
        .route("/api/v1/usagers/{id}/access-report", get(access_report))
}

/// The caller acting for their current organisation (or `explicit`, one of theirs); each
/// use case then authorizes itself.
pub fn caller_for(
    session: &Session,
    explicit: Option<Uuid>,
    request_id: Option<String>,
) -> ApiResult<Caller> {
    Ok(Caller::new(
        session,
        session.acting_organisation(explicit)?,
        request_id,
    ))
}

/// The `Idempotency-Key` of a request, scoped to the account and the route.
pub fn idempotency_key(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    route: &str,
    body: &impl Serialize,
) -> ApiResult<Option<IdemKey>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().map_err(|_| AppError::InvalidRequest {
        detail: "L'en-tête Idempotency-Key doit compter 1 à 64 caractères imprimables.".into(),
        errors: vec![],
    })?;
    let bytes = serde_json::to_vec(body).map_err(anyhow::Error::from)?;
    IdemKey::new(
        &state.keyring,
        format!("{}:{route}", session.aidant_id),
        key,
        &bytes,
    )
    .map(Some)
}

/// `201` with the body, or the first answer replayed.
pub fn created<T: Serialize>(r: Replayable<T>) -> Response {
    match r {
        Replayable::Fresh(t) => (StatusCode::CREATED, Json(t)).into_response(),
        Replayable::Replay { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    }
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    given_name: String,
    family_name: String,
    birthdate: String,
    birthplace: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    identity_check: String,
}

/// Register a usager for the current organisation (personal data encrypted at rest).
#[utoipa::path(post, path = "/api/v1/usagers", tag = "usagers", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Usager), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let caller = caller_for(&session, None, rid)?;
    let idem = idempotency_key(&state, &headers, &session, "usagers", &b)?;
    let input = NewUsager::parse(
        &UsagerInput {
            given_name: &b.given_name,
            family_name: &b.family_name,
            birthdate: &b.birthdate,
            birthplace: b.birthplace.as_deref(),
            phone: b.phone.as_deref(),
            email: b.email.as_deref(),
            identity_check: &b.identity_check,
        },
        state.clock.now().date_naive(),
    )
    .map_err(AppError::Validation)?;
    Ok(created(
        usagers::create(&state, &caller, input, idem.as_ref()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// A name (family name, or given and family names), a birth date `YYYY-MM-DD`, or both.
    q: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsagerList {
    items: Vec<Usager>,
    next_cursor: Option<String>,
}

/// Search the current organisation's usagers (exact normalised tokens; each result is an
/// audited read).
#[utoipa::path(get, path = "/api/v1/usagers", tag = "usagers", params(SearchParams), responses((status = 200, body = UsagerList), problem::Unprocessable))]
pub async fn search(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<UsagerList>> {
    let caller = caller_for(&session, None, rid)?;
    let limit = super::mandates::limit(p.limit)?;
    let items = usagers::search(&state, &caller, p.q.as_deref().unwrap_or(""), limit).await?;
    Ok(Json(UsagerList {
        items,
        next_cursor: None,
    }))
}

/// A usager's personal data (organisations linked to them; audited). Once archived by
/// retention, the DPO only.
#[utoipa::path(get, path = "/api/v1/usagers/{id}", tag = "usagers", params(("id" = Uuid, Path)), responses((status = 200, body = Usager), problem::NotFound))]
pub async fn read(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Usager>> {
    if session.is_dpo {
        let ctx = crate::service::Ctx::of(&session, rid);
        return Ok(Json(usagers::read_archived(&state, &ctx, id).await?));
    }
    let caller = caller_for(&session, None, rid)?;
    Ok(Json(usagers::get(&state, &caller, id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (default) or `pdf`.
    format: Option<String>,
}

/// The usager's access report: mandates with the current organisation, every use made of
/// them and every read of the usager's data (who, what, when); audited as a read.
#[utoipa::path(get, path = "/api/v1/usagers/{id}/access-report", tag = "usagers", params(("id" = Uuid, Path), ReportParams), responses((status = 200, body = crate::service::access_report::AccessReport),
    (status = 200, content_type = "application/pdf", body = Vec<u8>), problem::NotFound, problem::Unprocessable))]
pub async fn access_report(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    Query(p): Query<ReportParams>,
) -> ApiResult<Response> {
    let pdf = match p.format.as_deref() {
        None | Some("json") => false,
        Some("pdf") => true,
        Some(_) => {
            return Err(crate::service::mandates::validation(
                "format",
                "Format inconnu : json ou pdf.",
            ));
        }
    };
    let caller = caller_for(&session, None, rid)?;
    let report = crate::service::access_report::build(&state, &caller, id).await?;
    if !pdf {
        return Ok(Json(report.report).into_response());
    }
    let bytes = crate::service::access_report::pdf(&report)?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/pdf".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("inline; filename=\"acces-{}.pdf\"", id.simple()),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// Erase a usager (DPO): `204`, or `409` while a mandate is active or retention applies.
#[utoipa::path(delete, path = "/api/v1/usagers/{id}", tag = "usagers", params(("id" = Uuid, Path)), responses((status = 204), problem::NotFound, problem::Conflict))]
pub async fn erase(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let ctx = crate::service::Ctx::of(&session, rid);
    usagers::erase(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
