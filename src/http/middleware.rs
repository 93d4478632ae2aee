//! Cross-cutting middleware: request spans, problem+json for every error (including the
//! framework's own rejections), and panics turned into a 500 problem.

use std::any::Any;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{PROBLEM_JSON, problem, status_parts};

/// One span per request. The raw path is not logged (it may hold tokens); the route
/// template is.
pub fn make_span(req: &Request<Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), route = %route, request_id = %request_id)
}

/// Any error response that is not already problem+json (404 of unknown routes, 405, 408
/// timeouts, 413 body limits, panics) is rewritten as one, keeping useful headers.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (is_problem || is_page) && !status.is_server_error() {
        return res;
    }
    let (parts, body) = res.into_parts();
    let mut p = if is_problem {
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(mut v) => {
                if let (Some(obj), Some(id)) = (v.as_object_mut(), &request_id) {
                    obj.insert("request_id".into(), id.clone().into());
                }
                let mut out = Response::from_parts(
                    parts,
                    Body::from(serde_json::to_vec(&v).unwrap_or_default()),
                );
                out.headers_mut().remove(header::CONTENT_LENGTH);
                return out;
            }
            Err(_) => problem(
                status,
                "internal",
                "Erreur interne",
                "Une erreur interne est survenue.",
            ),
        }
    } else {
        let (code, title) = status_parts(status);
        let detail = match status {
            StatusCode::NOT_FOUND => "Cette ressource n'existe pas.",
            StatusCode::METHOD_NOT_ALLOWED => "Cette méthode n'est pas acceptée ici.",
            StatusCode::REQUEST_TIMEOUT => "La requête a pris trop de temps.",
            StatusCode::PAYLOAD_TOO_LARGE => "La requête dépasse 64 Kio.",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "Le corps de la requête doit être en application/json."
            }
            s if s.is_server_error() => "Une erreur interne est survenue.",
            _ => title,
        };
        problem(status, code, title, detail)
    };
    if status.is_server_error() {
        p.request_id = request_id;
    }
    let mut out = p.into_response_with(status);
    for keep in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&keep) {
            out.headers_mut().insert(keep, v.clone());
        }
    }
    out
}

/// A panic in a handler: logged (inside the request span, so with its id), answered 500.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = %msg, "handler panicked");
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

/// CSRF in depth for state-changing requests: refuse cross-site `Sec-Fetch-Site` and foreign
/// `Origin` (403), and require a JSON content type on API writes with a body (415), which a
/// cross-site HTML form cannot send. The session cookie is also `SameSite=Strict`.
pub async fn csrf_guard(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse as _;

    use crate::error::AppError;
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !unsafe_method {
        return next.run(req).await;
    }
    let h = req.headers();
    if h.get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return AppError::Forbidden.into_response();
    }
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = h
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let same = origin == state.config.public_url
            || origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host);
        if !same {
            return AppError::Forbidden.into_response();
        }
    }
    let path = req.uri().path();
    let is_api_write = path.starts_with("/api/")
        && path != "/api/v1/sms/inbound"
        && *req.method() != Method::DELETE;
    if is_api_write {
        let json = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return AppError::UnsupportedMediaType.into_response();
        }
    }
    next.run(req).await
}
