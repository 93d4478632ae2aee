//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`.
//!
//! # Documenting a route
//!
//! 1. Annotate the handler with `#[utoipa::path(...)]`: method, path, tag, `request_body`,
//!    `params`, its success responses, and the error statuses that come from the use case,
//!    written with the shared problem responses of [`problem`]:
//!    `responses((status = 200, body = Mandate), problem::NotFound, problem::Conflict)`.
//! 2. A route that needs no session says so with `security(())` (anonymous) or
//!    `security((), ("session" = []))` (a session is optional). Every other operation is
//!    documented as needing the `session` cookie.
//! 3. Query parameters are a struct deriving `utoipa::IntoParams` with
//!    `#[into_params(parameter_in = Query)]`, their bounds written as `#[param(minimum = …)]`
//!    when the handler checks them (schemathesis sends values past every documented bound).
//! 4. Add the handler to `paths(...)` of [`ApiDoc`] below.
//!
//! The statuses that come from the framework and the middleware are added to every operation
//! by [`Problems`] from its shape, so no handler repeats them: `400` for a body or parameters
//! that do not parse, `413` and `415` for a body, `401` and `403` for a session, `403` for a
//! cross-site write (CSRF guard), `503` when the database is unavailable. Every error response
//! of the document is `application/problem+json` with the one [`crate::error::Problem`]
//! schema (an inline error response is replaced by the shared one of its status).
//!
//! `tests/api/openapi.rs` fails when a route of `src/http/routes/` is missing from the
//! document, when an error response is not problem+json, or when a request answers a status
//! its operation does not list; `scripts/schemathesis` checks the whole document against a
//! running server.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::app::AppState;
use crate::error::PROBLEM_JSON;

/// The shared error responses: each is an `application/problem+json` [`crate::error::Problem`]
/// registered once under `components.responses`, for use in `responses(...)` of a handler.
pub mod problem {
    use std::collections::BTreeMap;

    use utoipa::openapi::{Ref, RefOr, Response};

    macro_rules! problems {
        ($( $(#[$meta:meta])* $name:ident = $status:literal, $desc:literal; )*) => {
            $(
                #[doc = $desc]
                pub struct $name;

                impl utoipa::IntoResponses for $name {
                    fn responses() -> BTreeMap<String, RefOr<Response>> {
                        BTreeMap::from([(
                            $status.to_owned(),
                            RefOr::Ref(Ref::from_response_name(stringify!($name))),
                        )])
                    }
                }
            )*

            /// `(component name, status, description)` of every shared error response.
            pub const ALL: &[(&str, &str, &str)] = &[$((stringify!($name), $status, $desc)),*];
        };
    }

    problems! {
        BadRequest = "400", "The request cannot be read: malformed JSON, an unknown or missing field, a path, query or header parameter that does not parse.";
        Unauthenticated = "401", "No valid session (or wrong credentials).";
        Forbidden = "403", "Not allowed: the policy denies it, no current organisation, a recent second factor is required, or a cross-site write.";
        NotFound = "404", "No such resource (or one of another organisation).";
        Conflict = "409", "The resource's state does not allow it, or it already exists.";
        Gone = "410", "The code or link has expired.";
        PayloadTooLarge = "413", "The body exceeds 64 KiB.";
        UnsupportedMediaType = "415", "The body is not declared as application/json.";
        Unprocessable = "422", "A field is invalid (see `errors`), or a wrong code (see `attempts_left`).";
        Locked = "423", "Too many wrong codes: the challenge is locked.";
        TooManyRequests = "429", "Rate limited; see the Retry-After header.";
        Unavailable = "503", "The database is unavailable; retry after a few seconds.";
    }

    /// The component name of the shared response for `status`.
    pub fn name_of(status: &str) -> Option<&'static str> {
        ALL.iter()
            .find(|(_, s, _)| *s == status)
            .map(|(n, _, _)| *n)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mandat",
        description = "Delegated access: mandates, consent, audit. Every error is an RFC 9457 \
                       `application/problem+json` document."
    ),
    modifiers(&Problems),
    paths(
        document,
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
    Router::new().route("/api/v1/openapi.json", get(document))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The name of the session security scheme.
pub const SESSION_SCHEME: &str = "session";

/// Paths whose handlers never touch the database (so never answer `503`).
const NO_DATABASE: &[&str] = &["/healthz", "/api/v1/demarches", "/api/v1/openapi.json"];

/// Adds the shared problem responses, the session scheme, and to each operation the error
/// statuses that its shape implies (see the module documentation).
pub struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, _, description) in problem::ALL {
            let mut res = Response::new(*description);
            res.content.insert(
                PROBLEM_JSON.to_owned(),
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(res));
        }
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "mandat_session",
                "The session cookie set by POST /api/v1/session (`__Host-mandat_session` when \
                 the public URL is HTTPS).",
            ))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                if let Some(op) = op.as_mut() {
                    complete(path, method, op);
                }
            }
        }
    }
}

fn complete(path: &str, method: &str, op: &mut Operation) {
    let mut add: Vec<&str> = Vec::new();
    let anonymous = SecurityRequirement::default();
    match &op.security {
        None => {
            op.security = Some(vec![SecurityRequirement::new(
                SESSION_SCHEME,
                Vec::<String>::new(),
            )]);
            add.extend(["401", "403"]);
        }
        Some(reqs) if reqs.iter().all(|r| *r == anonymous) => {}
        Some(_) => add.push("401"),
    }
    let writes = method != "get";
    if writes {
        // The CSRF guard (cross-site writes), the body limit and the JSON content type.
        add.extend(["403", "413", "415"]);
    }
    if op.request_body.is_some() {
        add.extend(["400", "413", "415"]);
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || path.contains('{') {
        add.push("400");
    }
    if !NO_DATABASE.contains(&path) {
        add.push("503");
    }
    let responses = &mut op.responses.responses;
    // Inline error responses become the shared problem+json one of their status.
    let inline: Vec<String> = responses
        .keys()
        .filter(|s| s.starts_with('4') || s.starts_with('5'))
        .cloned()
        .collect();
    for status in inline.iter().map(String::as_str).chain(add) {
        if let Some(name) = problem::name_of(status) {
            responses.insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
        }
    }
}
