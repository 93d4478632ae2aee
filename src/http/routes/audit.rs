//! The audit trail for DPOs (and référents, for their own organisation's events).

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::app::AppState;
use crate::audit::verify::VerifyReport;
use crate::domain::audit_query::{AuditQuery, RawAuditQuery, parse_limit};
use crate::error::{ApiResult, AppError};
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::http::openapi::problem;
use crate::service::Ctx;
use crate::service::audit::{
    self, AuditPage, ConsistencyProof, ExportFormat, InclusionProof, LatestCheckpoint, PublicKeys,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/events", get(events))
        .route("/api/v1/audit/export", get(export))
        .route("/api/v1/audit/checkpoints/latest", get(latest_checkpoint))
        .route("/api/v1/audit/proofs/inclusion", get(inclusion))
        .route("/api/v1/audit/proofs/consistency", get(consistency))
        .route("/api/v1/audit/verify", post(verify))
        .route("/api/v1/audit/public-key", get(public_key))
}

fn validation(errors: Vec<crate::domain::FieldError>) -> AppError {
    AppError::Validation(errors)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    since: Option<String>,
    until: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    usager: Option<String>,
    mandate: Option<String>,
    organisation: Option<String>,
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Search the audit trail (DPO; a référent sees only their organisation's events).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(EventsParams),
    responses((status = 200, body = AuditPage), problem::Forbidden, problem::NotFound, problem::Unprocessable))]
pub async fn events(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<EventsParams>,
) -> ApiResult<Json<AuditPage>> {
    let mut raw = RawAuditQuery {
        since: p.since,
        until: p.until,
        action: p.action,
        actor: p.actor,
        usager: p.usager,
        mandate: p.mandate,
        organisation: p.organisation,
    };
    // A DPO searches the whole trail; anyone else only one organisation's events (their
    // current one unless they name another), which the policies then check.
    let scope = if session.is_dpo {
        None
    } else {
        let org = match raw.organisation.as_deref() {
            Some(o) => o.parse().map_err(|_| AppError::Forbidden)?,
            None => session.current_organisation_id.ok_or(AppError::Forbidden)?,
        };
        raw.organisation = Some(org.to_string());
        Some(org)
    };
    let query = AuditQuery::parse(&raw).map_err(validation)?;
    let limit = parse_limit(p.limit).map_err(|e| validation(vec![e]))?;
    let ctx = Ctx::of(&session, None);
    Ok(Json(
        audit::search(&state, &ctx, scope, &query, p.cursor.as_deref(), limit).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `jsonl` or `csv`.
    format: String,
    since: Option<String>,
    until: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    usager: Option<String>,
    mandate: Option<String>,
    organisation: Option<String>,
}

/// Streamed export (DPO, step-up ≤ 5 min): JSONL lines are exactly the canonical events.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportParams),
    responses((status = 200, description = "JSONL or CSV stream", content(
        (String = "application/x-ndjson"), (String = "text/csv"))), problem::Forbidden, problem::NotFound, problem::Unprocessable))]
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Query(p): Query<ExportParams>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(&p.format).ok_or_else(|| {
        validation(vec![crate::domain::FieldError::new(
            "format",
            "Format inconnu : jsonl ou csv.",
        )])
    })?;
    let query = AuditQuery::parse(&RawAuditQuery {
        since: p.since,
        until: p.until,
        action: p.action,
        actor: p.actor,
        usager: p.usager,
        mandate: p.mandate,
        organisation: p.organisation,
    })
    .map_err(validation)?;
    let export = audit::export(&state, &Ctx::of(&session, rid), &query, format).await?;
    let stream = futures::stream::unfold(export.chunks, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (c.map(Bytes::from).map_err(std::io::Error::other), rx))
    });
    let (ctype, name) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "journal-audit.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "journal-audit.csv"),
    };
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&export.events.to_string()) {
        res.headers_mut().insert("x-audit-events", v);
    }
    Ok(res)
}

/// The latest signed checkpoint (DPO; public when `MANDAT_PUBLISH_CHECKPOINTS=1`).
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/latest", tag = "audit", security((), ("session" = [])),
    responses((status = 200, body = LatestCheckpoint), problem::Forbidden, problem::NotFound))]
pub async fn latest_checkpoint(
    State(state): State<AppState>,
    session: Result<Session, AppError>,
) -> ApiResult<Json<LatestCheckpoint>> {
    let ctx = session.ok().map(|s| Ctx::of(&s, None));
    Ok(Json(audit::latest_checkpoint(&state, ctx.as_ref()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    index: i64,
    tree_size: i64,
}

/// RFC 9162 inclusion proof of one entry (DPO).
#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", params(InclusionParams),
    responses((status = 200, body = InclusionProof), problem::NotFound, problem::Unprocessable))]
pub async fn inclusion(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<InclusionParams>,
) -> ApiResult<Json<InclusionProof>> {
    let ctx = Ctx::of(&session, None);
    Ok(Json(
        audit::inclusion(&state, &ctx, p.index, p.tree_size).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    from: i64,
    to: i64,
}

/// RFC 9162 consistency proof between two tree sizes (DPO).
#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyProof), problem::Unprocessable))]
pub async fn consistency(
    State(state): State<AppState>,
    session: Session,
    Query(p): Query<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyProof>> {
    let ctx = Ctx::of(&session, None);
    Ok(Json(audit::consistency(&state, &ctx, p.from, p.to).await?))
}

/// Verify the whole trail now (DPO); recorded as `audit.verified`.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyReport), problem::Forbidden))]
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(
        audit::verify(&state, &Ctx::of(&session, rid), &[]).await?,
    ))
}

/// The checkpoint-signing public keys (public).
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit", security(()),
    responses((status = 200, body = PublicKeys)))]
pub async fn public_key(State(state): State<AppState>) -> ApiResult<Json<PublicKeys>> {
    Ok(Json(audit::public_keys(&state).await?))
}
