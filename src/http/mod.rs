//! The HTTP front door: router, middleware stack, extractors, one routes file per area.

pub mod auth;
pub mod code_failures;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod ratelimit;
pub mod routes;
pub mod serve;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::AppError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// API timestamps: RFC 3339, UTC, `Z` (the one format of [`crate::domain::time`]).
pub fn format_time(t: DateTime<Utc>) -> String {
    crate::domain::time::format(t)
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let hsts = state.config.secure_cookies();
    let csrf_state = state.clone();
    let app = Router::new()
        .merge(routes::health::router())
        .merge(routes::catalogue::router())
        .merge(routes::session::router())
        .merge(routes::members::router())
        .merge(routes::organisations::router())
        .merge(routes::audit::router())
        .merge(routes::usagers::router())
        .merge(routes::mandates::router())
        .merge(routes::sms::router())
        .merge(routes::vault::router())
        .merge(routes::oidc::router())
        .merge(pages::router())
        .merge(openapi::router())
        .fallback(|| async { AppError::NotFound })
        .with_state(state);

    // Router::layer wraps outward: the first call is the innermost layer.
    let x_request_id = HeaderName::from_static("x-request-id");
    let mut stack = app
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(
            middleware::problem_for_bare_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            csrf_state,
            middleware::csrf_guard,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(middleware::make_span))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(
            middleware::drop_client_request_id,
        ));
    for (name, value) in security_headers() {
        stack = stack.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    if hsts {
        stack = stack.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    stack
}

fn security_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}
