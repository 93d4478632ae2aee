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

/// Counts the request and records its latency, labelled by route template (never the raw
/// path, which holds ids and tokens), method and final status.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    ::metrics::counter!(crate::metrics::HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(crate::metrics::HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Any error response that is not already problem+json (404 of unknown routes, 405, 408
/// timeouts, 413 body limits, panics) is rewritten as one, keeping useful headers.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The OAuth endpoints answer in the RFC 6749 / 6750 error format their clients expect.
    let oauth = crate::http::routes::oidc::is_back_channel(req.uri().path());
    let res = next.run(req).await;
    let status = res.status();
    if oauth || !(status.is_client_error() || status.is_server_error()) {
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

/// Whether a request has no body: no `Content-Length` and no `Transfer-Encoding` (for HTTP/1.1,
/// a body of length 0), or `Content-Length: 0`.
pub fn body_is_empty(req: &Request) -> bool {
    use axum::body::HttpBody as _;
    let body = req.body();
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}

/// Whether a request declares a JSON body (`application/json` or `application/*+json`).
pub fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Whether `origin` (an `Origin` header) is the origin of `public_url`: same scheme, host and
/// port (a default port written or not). `null` and anything unparsable are foreign.
pub fn is_public_origin(origin: &str, public_url: &str) -> bool {
    match (reqwest::Url::parse(origin), reqwest::Url::parse(public_url)) {
        (Ok(o), Ok(p)) => {
            let (o, p) = (o.origin(), p.origin());
            o.is_tuple() && o == p
        }
        _ => false,
    }
}

/// A client-sent `X-Request-Id` is dropped before the request-id layer sets the server's own
/// (a UUID): client-chosen text never reaches the logs, the audit log or a response.
pub async fn drop_client_request_id(mut req: Request, next: Next) -> Response {
    req.headers_mut().remove("x-request-id");
    next.run(req).await
}

/// Cross-site protection for state-changing requests, whatever their body: a cross-site or
/// same-site `Sec-Fetch-Site`, or an `Origin` other than `MANDAT_PUBLIC_URL`'s, gets `403`.
/// The session cookie is also `SameSite=Strict`. API writes with a body must declare JSON
/// (`415` otherwise); a body-less action (`curl -X POST …`) needs no content type.
pub async fn csrf_guard(
    axum::extract::State(state): axum::extract::State<crate::app::AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse as _;

    use crate::error::AppError;
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !unsafe_method || crate::http::routes::oidc::is_back_channel(req.uri().path()) {
        return next.run(req).await;
    }
    let h = req.headers();
    if h.get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return AppError::Forbidden.into_response();
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| is_public_origin(o, &state.config.public_url));
        if !ok {
            return AppError::Forbidden.into_response();
        }
    }
    let path = req.uri().path();
    let is_api_write = path.starts_with("/api/") && path != "/api/v1/sms/inbound";
    if is_api_write && !body_is_empty(&req) && !declares_json(h) {
        return AppError::UnsupportedMediaType.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_url_origin_is_ours() {
        let public = "https://mandat.example.org";
        assert!(is_public_origin("https://mandat.example.org", public));
        assert!(is_public_origin("https://mandat.example.org:443", public));
        assert!(is_public_origin(
            "https://mandat.example.org",
            "https://Mandat.Example.org:443/base"
        ));
        for foreign in [
            "http://mandat.example.org",
            "https://mandat.example.org:8443",
            "https://evil.example",
            "https://mandat.example.org.evil.example",
            "null",
            "",
            "mandat.example.org",
        ] {
            assert!(!is_public_origin(foreign, public), "{foreign}");
        }
    }

    #[test]
    fn empty_bodies() {
        let req = |body: axum::body::Body| Request::builder().body(body).unwrap();
        assert!(body_is_empty(&req(axum::body::Body::empty())));
        assert!(body_is_empty(&req(axum::body::Body::from(""))));
        assert!(!body_is_empty(&req(axum::body::Body::from("{}"))));
    }
}
