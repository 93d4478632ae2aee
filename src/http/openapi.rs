//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::app::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mandat",
        description = "Delegated access: mandates, consent, audit."
    ),
    paths(
        crate::http::routes::health::healthz,
        crate::http::routes::health::readyz,
        crate::http::routes::catalogue::list,
    ),
    components(schemas(crate::error::Problem, crate::domain::FieldError))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
