//! The authorize screens (`/oidc/authorize`): a logged-in aidant (else `/connexion` and
//! back) chooses the usager, then the démarche, for the partner service named on the page;
//! `login_hint` and a `demarche:` scope skip both. And the end of a session requested by a
//! partner (`/oidc/end-session`).

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;
use uuid::Uuid;

use super::{Nav, PageForm, PageSession, error_page, message};
use crate::app::AppState;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::http::routes::oidc::query_pairs;
use crate::service::Caller;
use crate::service::oidc::authorize::{
    self, CARRIED, Choice, DemarcheChoice, Params, Rejection, Request, Step,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/oidc/authorize", get(show).post(choose))
}

pub struct UsagerLine {
    pub mandate_id: String,
    pub name: String,
    pub birthdate: String,
    pub expires: String,
    pub demarches: String,
}

#[derive(Template)]
#[template(path = "oidc_usager.html")]
struct UsagerPage {
    nav: Nav,
    client_name: String,
    carried: Vec<(String, String)>,
    usagers: Vec<UsagerLine>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "oidc_demarche.html")]
struct DemarchePage {
    nav: Nav,
    client_name: String,
    carried: Vec<(String, String)>,
    mandate_id: String,
    usager: String,
    demarches: Vec<DemarcheChoice>,
}

/// A rejection as the browser sees it: a French page, or the redirect to the client.
fn rejected(r: Rejection) -> Response {
    match r {
        Rejection::Page { title, message: m } => {
            message(StatusCode::BAD_REQUEST, &title, &m, false)
        }
        Rejection::Redirect(to) => Redirect::to(&to).into_response(),
        Rejection::Error(e) => error_page(e),
    }
}

/// The screens' forms end in a redirect to the partner: their `form-action` must allow its
/// origin (browsers apply it to the redirects that follow a form submission).
fn allow_partner(mut res: Response, req: &Request) -> Response {
    let origin = url::Url::parse(&req.redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; frame-ancestors 'none'; form-action 'self' {origin}; base-uri 'none'; object-src 'none'"
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
        res.headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

fn render(nav: Nav, req: &Request, step: Step) -> Response {
    let res = render_step(nav, req, step);
    allow_partner(res, req)
}

fn render_step(nav: Nav, req: &Request, step: Step) -> Response {
    let carried: Vec<(String, String)> = req.params.clone();
    match step {
        Step::Redirect(to) => Redirect::to(&to).into_response(),
        Step::ChooseUsager(list) => super::page(
            StatusCode::OK,
            &UsagerPage {
                nav,
                client_name: req.client.row.name.clone(),
                carried,
                usagers: list
                    .into_iter()
                    .map(|u| UsagerLine {
                        mandate_id: u.mandate_id.to_string(),
                        name: u.name,
                        birthdate: u.birthdate,
                        expires: u.expires_at.format("%d/%m/%Y").to_string(),
                        demarches: u.demarches.join(", "),
                    })
                    .collect(),
                error: None,
            },
        ),
        Step::ChooseDemarche {
            mandate_id,
            usager,
            demarches,
        } => super::page(
            StatusCode::OK,
            &DemarchePage {
                nav,
                client_name: req.client.row.name.clone(),
                carried,
                mandate_id: mandate_id.to_string(),
                usager,
                demarches,
            },
        ),
    }
}

fn caller(session: &Session, request_id: Option<String>) -> Result<Caller, Box<Response>> {
    let org = session.acting_organisation(None).map_err(|_| {
        Box::new(message(
            StatusCode::FORBIDDEN,
            "Connexion impossible",
            "Seul un aidant membre d'une structure peut se connecter à un service partenaire pour un usager.",
            false,
        ))
    })?;
    Ok(Caller::new(session, org, request_id))
}

async fn show(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    RawQuery(q): RawQuery,
    session: Result<PageSession, Response>,
) -> Response {
    let params = Params(query_pairs(q.as_deref()));
    let req = match authorize::validate(&state, &params).await {
        Ok(r) => r,
        Err(r) => return rejected(r),
    };
    let ps = match session {
        Ok(ps) => ps,
        Err(login) => {
            if req.no_prompt {
                return rejected(req.error("login_required", "the aidant is not logged in"));
            }
            return login;
        }
    };
    let caller = match caller(&ps.session, rid) {
        Ok(c) => c,
        Err(res) => return *res,
    };
    match authorize::decide(
        &state,
        &caller,
        ps.session.fresh_factor_at,
        &req,
        &Choice::default(),
    )
    .await
    {
        Ok(step) => render(ps.nav, &req, step),
        Err(r) => rejected(r),
    }
}

async fn choose(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    form: PageForm,
) -> Response {
    let params = Params(
        form.data
            .0
            .iter()
            .filter(|(k, _)| CARRIED.contains(&k.as_str()))
            .cloned()
            .collect(),
    );
    let req = match authorize::validate(&state, &params).await {
        Ok(r) => r,
        Err(r) => return rejected(r),
    };
    let caller = match caller(&form.session, rid) {
        Ok(c) => c,
        Err(res) => return *res,
    };
    let choice = Choice {
        mandate: form
            .data
            .opt("mandate")
            .and_then(|m| Uuid::parse_str(&m).ok()),
        demarche: form.data.opt("demarche"),
        cancel: form.data.get("action") == "cancel",
    };
    if !choice.cancel && choice.mandate.is_none() {
        // Nothing chosen: the first screen again.
        return match authorize::decide(
            &state,
            &caller,
            form.session.fresh_factor_at,
            &req,
            &Choice::default(),
        )
        .await
        {
            Ok(step) => render(form.nav, &req, step),
            Err(r) => rejected(r),
        };
    }
    match authorize::decide(&state, &caller, form.session.fresh_factor_at, &req, &choice).await {
        Ok(step) => render(form.nav, &req, step),
        Err(r) => rejected(r),
    }
}

/// `GET /oidc/end-session`: the partner ends the aidant's session (RP-initiated logout) and
/// is sent back to a registered `post_logout_redirect_uri`, else a page says it is done.
pub async fn end_session(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    RawQuery(q): RawQuery,
    session: Result<Session, crate::error::AppError>,
) -> Response {
    let params = Params(query_pairs(q.as_deref()));
    let target = match authorize::end_session_target(&state, &params).await {
        Ok(t) => t,
        Err(r) => return rejected(r),
    };
    if let Ok(s) = session
        && let Err(e) = crate::service::accounts::logout(&state, &s, rid).await
    {
        return error_page(e);
    }
    match target {
        Some(to) => {
            let mut res = Redirect::to(&to).into_response();
            res.headers_mut().append(
                axum::http::header::SET_COOKIE,
                crate::http::auth::clear_cookie(&state),
            );
            res
        }
        None => {
            let mut res = message(
                StatusCode::OK,
                "Vous êtes déconnecté",
                "Votre session mandat est terminée. Vous pouvez fermer cette page.",
                true,
            );
            res.headers_mut().append(
                axum::http::header::SET_COOKIE,
                crate::http::auth::clear_cookie(&state),
            );
            res
        }
    }
}
