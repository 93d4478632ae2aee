//! Extractors of the pages: the logged-in account (or a redirection to `/connexion`) and a
//! posted form whose CSRF token has been checked.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};

use super::{Nav, csrf, error_page, message, see_other};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::Session;

/// The logged-in account of a page, with the navigation built from it.
pub struct PageSession {
    pub session: Session,
    pub nav: Nav,
}

/// Where `/connexion` sends back after logging in: a path of this site only.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && n.len() <= 2048
        && n.chars().all(|c| c.is_ascii_graphic());
    ok.then(|| n.to_owned())
}

fn login_redirect(parts: &Parts) -> Response {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    match safe_next(Some(target)) {
        Some(t) if parts.method == axum::http::Method::GET && t != "/" => {
            let encoded: String = form_urlencoded::byte_serialize(t.as_bytes()).collect();
            see_other(&format!("/connexion?suite={encoded}"))
        }
        _ => see_other("/connexion"),
    }
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Session::from_request_parts(parts, state).await {
            Ok(session) => {
                let nav = Nav::new(state, &session).map_err(error_page)?;
                Ok(Self { session, nav })
            }
            Err(AppError::Unauthenticated) => Err(login_redirect(parts)),
            Err(e) => Err(error_page(e)),
        }
    }
}

/// The fields of a posted form, in order (a name may repeat: checkboxes).
#[derive(Debug, Default, Clone)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of a field, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The value of a field, or `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The fields to repeat as hidden inputs (the CSRF token and the step-up code aside).
    pub fn carried(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| k != csrf::FIELD && k != "step_up_code")
            .cloned()
            .collect()
    }
}

/// A form posted by a logged-in account, CSRF token checked (`403` page otherwise).
pub struct PageForm {
    pub session: Session,
    pub nav: Nav,
    pub data: FormData,
    /// The client's address (failed step-up codes are audited with its keyed hash).
    pub ip: std::net::IpAddr,
}

pub fn csrf_refused() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Formulaire refusé",
        "Ce formulaire a expiré ou ne vient pas de ce site. Revenez à la page précédente, rechargez-la et recommencez.",
        false,
    )
}

/// Reads the body of a form (size limited by the router).
pub async fn read_body(req: Request, state: &AppState) -> Result<FormData, Response> {
    let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge.into_response()
        } else {
            error_page(AppError::InvalidRequest {
                detail: String::new(),
                errors: vec![],
            })
        }
    })?;
    Ok(FormData::parse(&bytes))
}

impl FromRequest<AppState> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let PageSession { session, nav } =
            PageSession::from_request_parts(&mut parts, state).await?;
        let Ok(crate::http::auth::ClientIp(ip)) =
            crate::http::auth::ClientIp::from_request_parts(&mut parts, state).await;
        let data = read_body(Request::from_parts(parts, body), state).await?;
        if !csrf::check_session(state, &session.id_hash, Some(data.get(csrf::FIELD))) {
            return Err(csrf_refused());
        }
        Ok(Self {
            session,
            nav,
            data,
            ip,
        })
    }
}

/// The inline step-up: the same form again with a code field, its other fields carried as
/// hidden inputs (no secret is ever carried: no form that needs a step-up has one).
#[derive(askama::Template)]
#[template(path = "step_up.html")]
struct StepUpPage<'a> {
    nav: &'a Nav,
    action: &'a str,
    back: &'a str,
    carried: Vec<(String, String)>,
    error: Option<String>,
}

/// The page asking for a fresh code before `action` is posted again.
pub fn step_up_page(f: &PageForm, action: &str, back: &str, error: Option<String>) -> Response {
    super::page(
        StatusCode::FORBIDDEN,
        &StepUpPage {
            nav: &f.nav,
            action,
            back,
            carried: f.data.carried(),
            error,
        },
    )
}

/// When the form carries a step-up code, checks it first (the session is then fresh for
/// what follows in this request); a wrong code shows the step-up page again.
pub async fn apply_step_up(
    state: &AppState,
    f: &mut PageForm,
    action: &str,
    back: &str,
    request_id: Option<String>,
) -> Result<(), Response> {
    let Some(code) = f.data.opt("step_up_code") else {
        return Ok(());
    };
    match crate::service::accounts::step_up(state, &f.session, &code, f.ip, request_id).await {
        Ok(()) => {
            let now = state.clock.now();
            f.session.step_up_at = Some(now);
            f.session.fresh_factor_at = now;
            Ok(())
        }
        Err(AppError::InvalidCode { .. }) => Err(step_up_page(
            f,
            action,
            back,
            Some("Code incorrect. Saisissez le code affiché maintenant.".into()),
        )),
        Err(e) => Err(error_page(e)),
    }
}

/// Field errors of a form, shown under each field.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<crate::domain::FieldError>);

impl Errors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn add(&mut self, field: &str, message: &str) {
        self.0.push(crate::domain::FieldError::new(field, message));
    }

    /// `(field, "Label : message")` for the summary at the top of a form.
    pub fn summary(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|e| {
                let text = match super::view::field_label(&e.field) {
                    "" => e.message.clone(),
                    label => format!("{label} : {}", e.message),
                };
                (e.field.clone(), text)
            })
            .collect()
    }
}
