//! Server-rendered French pages (askama). Pages answer HTML even for errors.

pub mod invitation;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

const CSS: &str = include_str!("../../../static/mandat.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/mandat.css", get(css))
        .merge(invitation::router())
}

async fn css() -> Response {
    let mut res = CSS.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

/// Renders a template with a status; a rendering failure is an internal error.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
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
