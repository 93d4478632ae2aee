//! Liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, http::StatusCode};
use serde::Serialize;

use crate::app::AppState;
use crate::error::AppError;
use crate::http::openapi::problem;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is running.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its migrations are current.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, body = Health), problem::Unavailable))]
pub async fn readyz(State(state): State<AppState>) -> Result<(StatusCode, Json<Health>), AppError> {
    if state.checkpoints.failure().is_some() {
        // Logged with its first bad index when detected; an operator must act.
        return Err(AppError::Unavailable);
    }
    let check = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ready()).await;
    match check {
        Ok(Ok(())) => Ok((StatusCode::OK, Json(Health { status: "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(AppError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            Err(AppError::Unavailable)
        }
    }
}
