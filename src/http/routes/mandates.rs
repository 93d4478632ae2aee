//! Mandates: creation, lists, consent at the desk, resend, revocation, renewal; and the
//! public consent endpoint (no account: the usager).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::usagers::{caller_for, created, idempotency_key};
use crate::app::AppState;
use crate::domain::demarche::{DemarcheId, parse_set};
use crate::domain::mandate::{ConsentChannel, MandateDuration, MandateStatus, RevocationReason};
use crate::error::{ApiResult, AppError};
use crate::http::auth::{ClientIp, Session};
use crate::http::extract::{ApiJson, RequestId};
use crate::http::openapi::problem;
use crate::http::ratelimit::Limit;
use crate::service::consent::{self, Decision};
use crate::service::documents;
use crate::service::mandates::{self, ListQuery, Mandate, NewMandate, validation};
use crate::service::verification::{self, Verification};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/mandates", post(create).get(list))
        .route("/api/v1/mandates/{id}", get(read))
        .route(
            "/api/v1/mandates/{id}/attestation.pdf",
            get(attestation_pdf),
        )
        .route("/api/v1/mandates/{id}/revocation.pdf", get(revocation_pdf))
        .route("/api/v1/mandates/{id}/consent", post(consent_at_desk))
        .route("/api/v1/mandates/{id}/consent/resend", post(resend))
        .route("/api/v1/mandates/{id}/revoke", post(revoke))
        .route("/api/v1/mandates/{id}/renew", post(renew))
        .route("/api/v1/public/consent", post(public_consent))
        .route(
            "/api/v1/public/attestations/{reference}",
            get(verify_attestation),
        )
}

/// `?limit=` (1–500, default 50).
pub fn limit(raw: Option<i64>) -> ApiResult<i64> {
    match raw {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(validation(
            "limit",
            "La limite doit être comprise entre 1 et 500.",
        )),
    }
}

fn demarche_set(ids: &[String]) -> ApiResult<Vec<DemarcheId>> {
    parse_set(ids)
        .ok_or_else(|| validation("demarches", "Indiquez au moins une démarche du catalogue."))
}

fn duration(s: &str) -> ApiResult<MandateDuration> {
    MandateDuration::parse(s).ok_or_else(|| {
        validation(
            "duration",
            "Durée inconnue : short, month, semester ou long.",
        )
    })
}

fn channel(s: &str) -> ApiResult<ConsentChannel> {
    ConsentChannel::parse(s)
        .ok_or_else(|| validation("consent_channel", "Canal inconnu : sms ou print."))
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    usager_id: Uuid,
    demarches: Vec<String>,
    duration: String,
    consent_channel: String,
    /// The organisation the mandate is for (default: the current one).
    organisation_id: Option<Uuid>,
}

/// Open a mandate in `pending_consent`. For `print`, `consent.code` is returned once.
#[utoipa::path(post, path = "/api/v1/mandates", tag = "mandates", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Mandate), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    headers: HeaderMap,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let caller = caller_for(&session, b.organisation_id, rid)?;
    let idem = idempotency_key(&state, &headers, &session, "mandates", &b)?;
    let input = NewMandate {
        usager_id: b.usager_id,
        demarches: demarche_set(&b.demarches)?,
        duration: duration(&b.duration)?,
        channel: channel(&b.consent_channel)?,
    };
    Ok(created(
        mandates::create(&state, &caller, input, idem.as_ref()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    usager_id: Option<Uuid>,
    status: Option<String>,
    #[param(minimum = 0, maximum = 3660)]
    expiring_within_days: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MandateList {
    items: Vec<Mandate>,
    next_cursor: Option<String>,
}

/// Mandates of the current organisation.
#[utoipa::path(get, path = "/api/v1/mandates", tag = "mandates", params(ListParams), responses((status = 200, body = MandateList), problem::Unprocessable))]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<MandateList>> {
    let caller = caller_for(&session, None, rid)?;
    let status = p
        .status
        .as_deref()
        .map(|s| MandateStatus::parse(s).ok_or_else(|| validation("status", "Statut inconnu.")))
        .transpose()?;
    let expiring_within_days = match p.expiring_within_days {
        Some(d) if !(0..=3660).contains(&d) => {
            return Err(validation(
                "expiring_within_days",
                "Indiquez un nombre de jours entre 0 et 3660.",
            ));
        }
        d => d,
    };
    let cursor = p
        .cursor
        .as_deref()
        .map(|c| Uuid::try_parse(c).map_err(|_| validation("cursor", "Curseur invalide.")))
        .transpose()?;
    let q = ListQuery {
        usager_id: p.usager_id,
        status,
        expiring_within_days,
        cursor,
        limit: limit(p.limit)?,
    };
    let (items, next) = mandates::list(&state, &caller, &q).await?;
    Ok(Json(MandateList {
        items,
        next_cursor: next.map(|u| u.simple().to_string()),
    }))
}

/// One mandate of the current organisation.
#[utoipa::path(get, path = "/api/v1/mandates/{id}", tag = "mandates", params(("id" = Uuid, Path)), responses((status = 200, body = Mandate), problem::NotFound))]
pub async fn read(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Mandate>> {
    let caller = caller_for(&session, None, rid)?;
    Ok(Json(mandates::get(&state, &caller, id).await?))
}

fn pdf_response(bytes: Vec<u8>, name: &str) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}.pdf\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// The printable attestation (A4 PDF): terms, signature boxes, the printed code while the
/// challenge is open, the verification QR code. Each print is audited.
#[utoipa::path(get, path = "/api/v1/mandates/{id}/attestation.pdf", tag = "mandates", params(("id" = Uuid, Path)), responses((status = 200, content_type = "application/pdf", body = Vec<u8>), problem::NotFound))]
pub async fn attestation_pdf(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let caller = caller_for(&session, None, rid)?;
    let bytes = documents::attestation(&state, &caller, id).await?;
    Ok(pdf_response(bytes, &format!("attestation-{}", id.simple())))
}

/// The printable revocation notice (A4 PDF); `404` before any revocation.
#[utoipa::path(get, path = "/api/v1/mandates/{id}/revocation.pdf", tag = "mandates", params(("id" = Uuid, Path)), responses((status = 200, content_type = "application/pdf", body = Vec<u8>), problem::NotFound))]
pub async fn revocation_pdf(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let caller = caller_for(&session, None, rid)?;
    let bytes = documents::revocation(&state, &caller, id).await?;
    Ok(pdf_response(bytes, &format!("revocation-{}", id.simple())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    code: String,
}

/// The usager hands the code back at the desk: the mandate becomes active.
#[utoipa::path(post, path = "/api/v1/mandates/{id}/consent", tag = "mandates", request_body = ConsentBody, params(("id" = Uuid, Path)), responses((status = 200, body = Mandate), problem::NotFound, problem::Conflict, problem::Gone, problem::Unprocessable, problem::Locked))]
pub async fn consent_at_desk(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<ConsentBody>,
) -> ApiResult<Json<Mandate>> {
    let caller = caller_for(&session, None, rid)?;
    Ok(Json(
        consent::consent_at_desk(&state, &caller, id, &b.code).await?,
    ))
}

/// A new SMS code (the previous one is void); at most 3 per mandate.
#[utoipa::path(post, path = "/api/v1/mandates/{id}/consent/resend", tag = "mandates", params(("id" = Uuid, Path)), responses((status = 202), problem::NotFound, problem::Conflict, problem::TooManyRequests))]
pub async fn resend(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let caller = caller_for(&session, None, rid)?;
    consent::resend(&state, &caller, id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    demarches: Option<Vec<String>>,
    reason: String,
}

/// Revoke some démarches, or the whole mandate.
#[utoipa::path(post, path = "/api/v1/mandates/{id}/revoke", tag = "mandates", request_body = RevokeBody, params(("id" = Uuid, Path)), responses((status = 200, body = Mandate), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RevokeBody>,
) -> ApiResult<Json<Mandate>> {
    let caller = caller_for(&session, None, rid)?;
    let reason = RevocationReason::parse_requested(&b.reason).ok_or_else(|| {
        validation(
            "reason",
            "Motif inconnu : usager_request, deceased, error ou other.",
        )
    })?;
    let demarches = match b.demarches {
        Some(d) => Some(
            demarche_set(&d)?
                .into_iter()
                .map(|d| d.as_str().to_owned())
                .collect(),
        ),
        None => None,
    };
    Ok(Json(
        mandates::revoke(&state, &caller, id, demarches, reason).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    duration: String,
    demarches: Option<Vec<String>>,
    consent_channel: String,
}

/// A new mandate renewing this one (active, or expired for at most 365 days).
#[utoipa::path(post, path = "/api/v1/mandates/{id}/renew", tag = "mandates", request_body = RenewBody, params(("id" = Uuid, Path)), responses((status = 201, body = Mandate), problem::NotFound, problem::Conflict, problem::Unprocessable))]
pub async fn renew(
    State(state): State<AppState>,
    session: Session,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RenewBody>,
) -> ApiResult<(StatusCode, Json<Mandate>)> {
    let caller = caller_for(&session, None, rid)?;
    let demarches = b.demarches.as_deref().map(demarche_set).transpose()?;
    let m = mandates::renew(
        &state,
        &caller,
        id,
        duration(&b.duration)?,
        demarches,
        channel(&b.consent_channel)?,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicConsentBody {
    challenge_id: Uuid,
    code: String,
    decision: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicConsentAnswer {
    status: &'static str,
}

/// The usager accepts or refuses on the public page (the code is needed for both).
#[utoipa::path(post, path = "/api/v1/public/consent", tag = "public", security(()), request_body = PublicConsentBody, responses((status = 200, body = PublicConsentAnswer), problem::NotFound, problem::Conflict, problem::Gone, problem::Unprocessable, problem::Locked, problem::TooManyRequests))]
pub async fn public_consent(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestId(rid): RequestId,
    ApiJson(b): ApiJson<PublicConsentBody>,
) -> ApiResult<Json<PublicConsentAnswer>> {
    state.limits.check(Limit::Public, ip)?;
    let decision = match b.decision.as_str() {
        "accept" => Decision::Accept,
        "refuse" => Decision::Refuse,
        _ => return Err(validation("decision", "Indiquez « accept » ou « refuse ».")),
    };
    let status = answer_public(&state, ip, b.challenge_id, &b.code, decision, rid).await?;
    Ok(Json(PublicConsentAnswer { status }))
}

/// The usager's answer through the API or the public page: the client's code failures are
/// counted (4 per minute), then the public-consent use case runs.
pub async fn answer_public(
    state: &AppState,
    ip: std::net::IpAddr,
    challenge: Uuid,
    code: &str,
    decision: Decision,
    rid: Option<String>,
) -> ApiResult<&'static str> {
    // Checks the client's failures and holds a place for this entry in one step.
    let entry = state.code_failures.begin(ip, state.clock.now())?;
    let answer = consent::consent_public(state, challenge, code, decision, rid).await;
    let failed = matches!(
        answer,
        Err(AppError::InvalidCode { .. } | AppError::ChallengeLocked | AppError::NotFound)
    );
    entry.finish(failed, state.clock.now());
    answer
}

/// What anyone holding an attestation may check (no personal data); `404` for a forged or
/// unknown reference.
#[utoipa::path(get, path = "/api/v1/public/attestations/{reference}", tag = "public", security(()), params(("reference" = String, Path)), responses((status = 200, body = Verification), problem::NotFound, problem::TooManyRequests))]
pub async fn verify_attestation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(reference): Path<String>,
) -> ApiResult<Json<Verification>> {
    state.limits.check(Limit::Public, ip)?;
    Ok(Json(verification::verify(&state, &reference).await?))
}
