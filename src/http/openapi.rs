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
        crate::http::routes::session::login,
        crate::http::routes::session::logout,
        crate::http::routes::session::step_up,
        crate::http::routes::session::me,
        crate::http::routes::session::change_password,
        crate::http::routes::session::switch_organisation,
        crate::http::routes::members::invite,
        crate::http::routes::members::list,
        crate::http::routes::members::deactivate,
        crate::http::routes::members::reactivate,
        crate::http::routes::members::totp_reset,
        crate::http::routes::members::import_cards,
        crate::http::routes::members::bind_card,
        crate::http::routes::members::invitation,
        crate::http::routes::members::accept,
        crate::http::routes::members::confirm,
        crate::http::routes::members::join,
        crate::http::routes::organisations::create,
        crate::http::routes::organisations::read,
        crate::http::routes::organisations::update,
        crate::http::routes::audit::events,
        crate::http::routes::audit::export,
        crate::http::routes::audit::latest_checkpoint,
        crate::http::routes::audit::inclusion,
        crate::http::routes::audit::consistency,
        crate::http::routes::audit::verify,
        crate::http::routes::audit::public_key,
        crate::http::routes::usagers::create,
        crate::http::routes::usagers::search,
        crate::http::routes::usagers::read,
        crate::http::routes::usagers::erase,
        crate::http::routes::mandates::create,
        crate::http::routes::mandates::list,
        crate::http::routes::mandates::read,
        crate::http::routes::usagers::access_report,
        crate::http::routes::mandates::attestation_pdf,
        crate::http::routes::mandates::revocation_pdf,
        crate::http::routes::mandates::consent_at_desk,
        crate::http::routes::mandates::resend,
        crate::http::routes::mandates::revoke,
        crate::http::routes::mandates::renew,
        crate::http::routes::mandates::public_consent,
        crate::http::routes::mandates::verify_attestation,
        crate::http::routes::sms::inbound,
        crate::http::routes::vault::create,
        crate::http::routes::vault::list,
        crate::http::routes::vault::reveal,
        crate::http::routes::vault::rotate,
        crate::http::routes::vault::remove,
        crate::http::routes::vault::hand_over,
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
