//! Server-rendered French pages (askama). Pages answer HTML even for errors.
//!
//! A page handler is a thin adapter: it parses the form, calls the same use case as the
//! API (`crate::service`), and renders. Forms post back to the page (`POST`-redirect-`GET`)
//! with a per-session CSRF token (see [`csrf`]); the same-origin guard of the middleware
//! applies to every `POST` too.

pub mod admin;
pub mod consent;
pub mod csrf;
pub mod desk;
pub mod dpo;
pub mod form;
pub mod home;
pub mod invitation;
pub mod mandates;
pub mod nav;
pub mod oidc;
pub mod structure;
pub mod vault;
pub mod view;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::error::AppError;

pub use form::{PageForm, PageSession};
pub use nav::Nav;

const CSS: &str = include_str!("../../../static/mandat.css");
const JS: &str = include_str!("../../../static/mandat.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/mandat.css", get(css))
        .route("/static/mandat.js", get(js))
        .merge(invitation::router())
        .merge(home::router())
        .merge(desk::router())
        .merge(mandates::router())
        .merge(structure::router())
        .merge(dpo::router())
        .merge(admin::router())
        .merge(consent::router())
        .merge(vault::router())
        .merge(oidc::router())
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

/// Renders a template with a status; a rendering failure is an internal error.
///
/// Pages say `Referrer-Policy: same-origin` (the site-wide default is `no-referrer`): under
/// `no-referrer` a browser posts its forms with `Origin: null`, which the same-origin guard
/// refuses; `same-origin` still sends nothing to other sites.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            res
        }
        Err(e) => {
            crate::error::AppError::Internal(anyhow::anyhow!("template: {e}")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub success: bool,
}

pub fn message(status: StatusCode, title: &str, message: &str, success: bool) -> Response {
    page(
        status,
        &Message {
            title,
            message,
            success,
        },
    )
}

/// `303 See Other` to a page of this site (the `GET` of `POST`-redirect-`GET`).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// An error of a use case as a French page. Field errors are handled by each form; what
/// reaches here is shown as a message page.
pub fn error_page(e: AppError) -> Response {
    match e {
        AppError::Unauthenticated => see_other("/connexion"),
        AppError::NotFound => message(
            StatusCode::NOT_FOUND,
            "Page introuvable",
            "Cette page n'existe pas, ou vous n'y avez pas accès.",
            false,
        ),
        AppError::Forbidden | AppError::StepUpRequired => message(
            StatusCode::FORBIDDEN,
            "Accès refusé",
            "Votre compte ne permet pas cette action.",
            false,
        ),
        AppError::Conflict(detail) => {
            message(StatusCode::CONFLICT, "Action impossible", &detail, false)
        }
        AppError::RateLimited { retry_after_secs } => message(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives",
            &format!(
                "Trop de tentatives : réessayez dans {}.",
                view::wait_fr(retry_after_secs)
            ),
            false,
        ),
        AppError::Validation(errors) | AppError::InvalidRequest { errors, .. }
            if !errors.is_empty() =>
        {
            let text: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Données invalides",
                &text.join(" "),
                false,
            )
        }
        AppError::Validation(_) | AppError::InvalidRequest { .. } => message(
            StatusCode::BAD_REQUEST,
            "Données invalides",
            "Le formulaire envoyé est incomplet ou mal formé.",
            false,
        ),
        AppError::ChallengeExpired => message(
            StatusCode::GONE,
            "Code expiré",
            "Le délai pour saisir ce code est dépassé.",
            false,
        ),
        AppError::ChallengeLocked => message(
            StatusCode::LOCKED,
            "Code bloqué",
            "Trop de codes erronés : ce consentement est bloqué.",
            false,
        ),
        AppError::Unavailable => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service indisponible",
            "Le service est momentanément indisponible. Réessayez dans quelques instants.",
            false,
        ),
        other => other.into_response(),
    }
}
