//! The public catalogue of démarches.

use axum::routing::get;
use axum::{Json, Router};

use crate::app::AppState;
use crate::domain::demarche::{Demarche, catalogue};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/demarches", get(list))
}

/// The démarches, in catalogue order.
#[utoipa::path(get, path = "/api/v1/demarches", tag = "catalogue", security(()), responses((status = 200, body = [Demarche])))]
pub async fn list() -> Json<&'static [Demarche]> {
    Json(catalogue())
}
