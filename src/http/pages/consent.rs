//! The usager's public consent page (`/consentement/{challenge}`, the link of the SMS): the
//! terms in plain French, the code, « J'accepte » / « Je refuse », then a confirmation. No
//! account, no JavaScript: the CSRF token is a double-submit cookie (as on `/connexion`),
//! and the answer goes through the same use case as `POST /api/v1/public/consent`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use uuid::Uuid;

use super::form::FormData;
use super::{csrf, error_page, page, view};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::ClientIp;
use crate::http::extract::RequestId;
use crate::http::ratelimit::Limit;
use crate::http::routes::mandates::answer_public;
use crate::service::consent::{self, Decision, PublicDemarche};

const CSS: &str = include_str!("../../../static/public.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/public.css", get(css))
        .route("/consentement/{challenge}", get(show).post(submit))
}

async fn css() -> Response {
    use axum::response::IntoResponse as _;
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "consent_public.html")]
struct ConsentPage {
    challenge: Uuid,
    organisation: String,
    duration: &'static str,
    demarches: Vec<PublicDemarche>,
    expires: String,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "consent_public_done.html")]
struct Done<'a> {
    title: &'a str,
    message: &'a str,
    success: bool,
}

fn done(status: StatusCode, title: &str, message: &str, success: bool) -> Response {
    page(
        status,
        &Done {
            title,
            message,
            success,
        },
    )
}

/// The same page for an unknown, malformed or foreign challenge: nothing is revealed.
fn not_found() -> Response {
    done(
        StatusCode::NOT_FOUND,
        "Lien introuvable",
        "Ce lien ne correspond à aucune demande. Vérifiez qu'il a été recopié en entier.",
        false,
    )
}

/// The page of a challenge that no longer takes an answer.
fn closed(mandate_status: &str) -> Response {
    let (title, text) = match mandate_status {
        "active" => (
            "Mandat déjà accepté",
            "Vous avez déjà donné votre accord : le mandat est actif.",
        ),
        "refused" => (
            "Demande close",
            "Cette demande a été refusée ou bloquée. Adressez-vous à la structure pour en \
             faire une nouvelle.",
        ),
        _ => (
            "Demande expirée",
            "Le délai pour répondre à cette demande est dépassé, ou un nouveau code vous a été \
             envoyé. Adressez-vous à la structure si besoin.",
        ),
    };
    done(StatusCode::GONE, title, text, false)
}

async fn render(
    state: &AppState,
    challenge: Uuid,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let terms = match consent::public_terms(state, challenge).await {
        Ok(t) => t,
        Err(AppError::NotFound) => return not_found(),
        Err(e) => return error_page(e),
    };
    if !terms.open {
        return closed(&terms.mandate_status);
    }
    let (token, cookie) = match csrf::new_login_token(state) {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let mut res = page(
        status,
        &ConsentPage {
            challenge,
            organisation: terms.organisation,
            duration: view::duration_fr(&terms.duration),
            demarches: terms.demarches,
            expires: view::datetime_fr(&crate::domain::time::format(terms.expires_at)),
            csrf: token,
            error,
        },
    );
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

async fn show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(challenge): Path<String>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Public, ip) {
        return error_page(e);
    }
    let Ok(challenge) = Uuid::try_parse(&challenge) else {
        return not_found();
    };
    render(&state, challenge, StatusCode::OK, None).await
}

async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    RequestId(rid): RequestId,
    Path(challenge): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Public, ip) {
        return error_page(e);
    }
    let Ok(challenge) = Uuid::try_parse(&challenge) else {
        return not_found();
    };
    let f = FormData::parse(&body);
    if !csrf::check_login(&state, &headers, Some(f.get(csrf::FIELD))) {
        return super::form::csrf_refused();
    }
    let decision = match f.get("decision") {
        "accept" => Decision::Accept,
        "refuse" => Decision::Refuse,
        _ => {
            return render(
                &state,
                challenge,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Choisissez « J'accepte » ou « Je refuse ».".into()),
            )
            .await;
        }
    };
    let code = f.get("code");
    if code.is_empty() {
        return render(
            &state,
            challenge,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Saisissez le code reçu par SMS.".into()),
        )
        .await;
    }
    match answer_public(&state, ip, challenge, code, decision, rid).await {
        Ok("accepted") => done(
            StatusCode::OK,
            "Merci, le mandat est actif",
            "Vous avez donné votre accord. La structure peut maintenant faire ces démarches \
             pour vous. Vous pouvez y mettre fin à tout moment en le lui demandant.",
            true,
        ),
        Ok(_) => done(
            StatusCode::OK,
            "Vous avez refusé",
            "Votre refus est enregistré : aucun mandat n'est créé. Vous pouvez fermer cette page.",
            true,
        ),
        Err(AppError::NotFound) => not_found(),
        Err(AppError::InvalidCode { attempts_left }) => {
            render(
                &state,
                challenge,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(format!(
                    "Le code saisi est incorrect. Il vous reste {attempts_left} essai(s) avant \
                     que la demande soit bloquée."
                )),
            )
            .await
        }
        Err(AppError::ChallengeLocked) => done(
            StatusCode::LOCKED,
            "Demande bloquée",
            "Trop de codes erronés ont été saisis : cette demande est bloquée. Adressez-vous à \
             la structure pour en faire une nouvelle.",
            false,
        ),
        Err(AppError::ChallengeExpired) => closed("expired"),
        Err(AppError::RateLimited { retry_after_secs }) => done(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop d'essais",
            &format!(
                "Plus de 4 codes erronés en une minute : patientez {} avant de réessayer.",
                view::wait_fr(retry_after_secs)
            ),
            false,
        ),
        Err(e) => error_page(e),
    }
}
