//! The one error type of the HTTP layer and its RFC 9457 problem+json rendering.
//!
//! `Display` and `detail` are safe to show: no SQL, no secrets, no personal data. Internal
//! causes are logged once, here, inside the request's span (which carries the request id).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::store::StoreError;

pub const PROBLEM_BASE: &str = "https://mandat.example/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{detail}")]
    InvalidRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("a recent second factor is required")]
    StepUpRequired,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("invalid code")]
    InvalidCode { attempts_left: i64 },
    #[error("challenge locked")]
    ChallengeLocked,
    #[error("challenge expired")]
    ChallengeExpired,
    #[error("mandate not active")]
    MandateNotActive,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable
            }
            StoreError::Conflict(c) => {
                tracing::info!(constraint = %c, "unique constraint conflict");
                Self::Conflict("Cette ressource existe déjà.".into())
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The problem+json document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    /// The fields at fault (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `(status, slug, French title)` for a status alone (used for framework rejections too).
pub fn status_parts(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("invalid_request", "Requête invalide"),
        401 => ("unauthenticated", "Authentification requise"),
        403 => ("forbidden", "Action non autorisée"),
        404 => ("not_found", "Ressource introuvable"),
        405 => ("method_not_allowed", "Méthode non autorisée"),
        408 => ("request_timeout", "Délai de la requête dépassé"),
        409 => ("conflict", "Conflit"),
        410 => ("gone", "Ressource expirée"),
        413 => ("payload_too_large", "Requête trop volumineuse"),
        415 => (
            "unsupported_media_type",
            "Type de contenu non pris en charge",
        ),
        422 => ("validation_failed", "Données invalides"),
        423 => ("locked", "Ressource verrouillée"),
        429 => ("rate_limited", "Trop de requêtes"),
        503 => ("unavailable", "Service momentanément indisponible"),
        s if s >= 500 => ("internal", "Erreur interne"),
        _ => ("error", "Erreur"),
    }
}

pub fn problem(status: StatusCode, code: &str, title: &str, detail: &str) -> Problem {
    Problem {
        type_: format!("{PROBLEM_BASE}{code}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        code: code.to_owned(),
        errors: Vec::new(),
        attempts_left: None,
        request_id: None,
    }
}

impl Problem {
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::InvalidCode { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::StepUpRequired | Self::MandateNotActive => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ChallengeLocked => StatusCode::LOCKED,
            Self::ChallengeExpired => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code_and_detail(&self) -> (&'static str, String) {
        match self {
            Self::InvalidRequest { detail, .. } => ("invalid_request", detail.clone()),
            Self::Validation(_) => (
                "validation_failed",
                "Certains champs sont invalides.".into(),
            ),
            Self::Unauthenticated => (
                "unauthenticated",
                "Identifiants incorrects ou session expirée.".into(),
            ),
            Self::Forbidden => (
                "forbidden",
                "Vous n'avez pas le droit d'effectuer cette action.".into(),
            ),
            Self::NotFound => ("not_found", "Cette ressource n'existe pas.".into()),
            Self::Conflict(d) => ("conflict", d.clone()),
            Self::StepUpRequired => (
                "step_up_required",
                "Saisissez un nouveau code à usage unique pour continuer.".into(),
            ),
            Self::RateLimited { .. } => (
                "rate_limited",
                "Trop de tentatives : réessayez plus tard.".into(),
            ),
            Self::InvalidCode { .. } => ("invalid_code", "Le code saisi est incorrect.".into()),
            Self::ChallengeLocked => (
                "challenge_locked",
                "Trop de codes incorrects : le consentement est bloqué.".into(),
            ),
            Self::ChallengeExpired => ("challenge_expired", "Ce code a expiré.".into()),
            Self::MandateNotActive => (
                "mandate_not_active",
                "Aucun mandat actif ne couvre cette démarche.".into(),
            ),
            Self::PayloadTooLarge => ("payload_too_large", "La requête dépasse 64 Kio.".into()),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                "Le corps de la requête doit être en application/json.".into(),
            ),
            Self::Unavailable => (
                "unavailable",
                "Le service est momentanément indisponible, réessayez dans quelques secondes."
                    .into(),
            ),
            Self::Internal(_) => ("internal", "Une erreur interne est survenue.".into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let (code, detail) = self.code_and_detail();
        let (_, title) = status_parts(status);
        let mut p = problem(status, code, title, &detail);
        match &self {
            Self::InvalidRequest { errors, .. } => p.errors.clone_from(errors),
            Self::Validation(errors) => p.errors.clone_from(errors),
            Self::InvalidCode { attempts_left } => p.attempts_left = Some(*attempts_left),
            _ => {}
        }
        let mut res = p.into_response_with(status);
        let retry = match &self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Unavailable => Some(5),
            _ => None,
        };
        if let Some(secs) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, AppError>;
