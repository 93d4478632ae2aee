//! `/` (what the service is), `/connexion` (email, password and code in one form),
//! `/deconnexion`, and the public check of an attestation (`/verifier/{ref}`).

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts as _, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use secrecy::{ExposeSecret as _, SecretString};

use super::form::{FormData, read_body, safe_next};
use super::{Nav, PageForm, csrf, error_page, page, see_other, view};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::{ClientIp, Session, clear_cookie, session_cookie};
use crate::http::extract::RequestId;
use crate::http::ratelimit::Limit;
use crate::service::accounts::{self, LoginInput};
use crate::service::verification;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/connexion", get(login_form).post(login))
        .route("/deconnexion", post(logout))
        .route("/verifier", get(verify_form))
        .route("/verifier/{reference}", get(verify))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    nav: Option<Nav>,
}

async fn home(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let nav = match Session::from_request_parts(&mut parts, &state).await {
        Ok(s) => Nav::new(&state, &s).ok(),
        Err(_) => None,
    };
    page(StatusCode::OK, &Home { nav })
}

#[derive(Template, Default)]
#[template(path = "login.html")]
struct Login {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    locked: Option<String>,
    logged_out: bool,
}

fn login_page(state: &AppState, status: StatusCode, mut p: Login) -> Response {
    let (token, cookie) = match csrf::new_login_token(state) {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    p.csrf = token;
    let mut res = page(status, &p);
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

async fn login_form(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = FormData::parse(q.unwrap_or_default().as_bytes());
    login_page(
        &state,
        StatusCode::OK,
        Login {
            next: safe_next(q.opt("suite").as_deref()).unwrap_or_default(),
            logged_out: q.get("au-revoir") == "1",
            ..Login::default()
        },
    )
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestId(rid): RequestId,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let f = match read_body(req, &state).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !csrf::check_login(&state, &headers, Some(f.get(csrf::FIELD))) {
        return super::form::csrf_refused();
    }
    let next = safe_next(f.opt("suite").as_deref()).unwrap_or_default();
    let retry = |error: Option<String>, locked: Option<String>, status| {
        login_page(
            &state,
            status,
            Login {
                next: next.clone(),
                email: f.get("email").to_owned(),
                error,
                locked,
                ..Login::default()
            },
        )
    };
    if let Err(e) = state.limits.check(Limit::Login, ip) {
        let wait = match e {
            AppError::RateLimited { retry_after_secs } => retry_after_secs,
            _ => 60,
        };
        return retry(
            None,
            Some(format!(
                "Trop de tentatives depuis votre connexion : réessayez dans {}.",
                view::wait_fr(wait)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let input = LoginInput {
        email: f.get("email").to_owned(),
        password: SecretString::from(
            f.0.iter()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        ),
        totp: f.get("totp").to_owned(),
    };
    match accounts::login(&state, input, ip, rid).await {
        Ok((token, me)) => {
            let landing = if !next.is_empty() {
                next.clone()
            } else if !me.memberships.is_empty() {
                "/espace-aidant".to_owned()
            } else if me.platform_roles.contains(&"admin") {
                "/admin".to_owned()
            } else if me.platform_roles.contains(&"dpo") {
                "/dpo".to_owned()
            } else {
                "/".to_owned()
            };
            let mut res = see_other(&landing);
            res.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(&state, token.expose_secret()),
            );
            res
        }
        Err(AppError::RateLimited { retry_after_secs }) => retry(
            None,
            Some(format!(
                "Ce compte est verrouillé après plusieurs échecs : réessayez dans {}.",
                view::wait_fr(retry_after_secs)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(AppError::Unauthenticated | AppError::Validation(_)) => retry(
            Some("Adresse e-mail, mot de passe ou code incorrect.".into()),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => error_page(e),
    }
}

async fn logout(State(state): State<AppState>, RequestId(rid): RequestId, f: PageForm) -> Response {
    if let Err(e) = accounts::logout(&state, &f.session, rid).await {
        return error_page(e);
    }
    let mut res = see_other("/connexion?au-revoir=1");
    res.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(&state));
    res
}

#[derive(Template)]
#[template(path = "verify.html")]
struct Verify {
    status_label: &'static str,
    status: String,
    organisation: String,
    demarches: Vec<String>,
    activated: String,
    expires: String,
    revoked: String,
    not_found: bool,
}

async fn verify_form(RawQuery(q): RawQuery) -> Response {
    let q = FormData::parse(q.unwrap_or_default().as_bytes());
    let r: String = q
        .get("reference")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
        .take(200)
        .collect();
    if r.is_empty() {
        return see_other("/#verifier");
    }
    see_other(&format!("/verifier/{r}"))
}

async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(reference): Path<String>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Public, ip) {
        return error_page(e);
    }
    let mut p = Verify {
        status_label: "",
        status: String::new(),
        organisation: String::new(),
        demarches: vec![],
        activated: String::new(),
        expires: String::new(),
        revoked: String::new(),
        not_found: false,
    };
    match verification::verify(&state, &reference).await {
        Ok(v) => {
            p.status_label = match v.status.as_str() {
                "active" => "Valide",
                "expired" => "Expirée",
                "revoked" => "Révoquée",
                "pending_consent" => "Pas encore valide (consentement attendu)",
                "refused" => "Non valide : l'usager a refusé le mandat",
                _ => "Non valide",
            };
            p.status = v.status;
            p.organisation = v.organisation.name;
            p.demarches = v.demarches.into_iter().map(|d| d.title).collect();
            p.activated = view::opt_date(v.activated_at);
            p.expires = view::opt_date(v.expires_at);
            p.revoked = view::opt_date(v.revoked_at);
            page(StatusCode::OK, &p)
        }
        Err(AppError::NotFound) => {
            p.not_found = true;
            page(StatusCode::NOT_FOUND, &p)
        }
        Err(e) => error_page(e),
    }
}
