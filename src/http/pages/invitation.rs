//! `/invitation/{token}`: set a password, enrol an authenticator app, confirm with a code —
//! or, for a join invitation (an existing account invited into an organisation), join it
//! while logged in with one's own account and a fresh code.
//! The token in the URL is the capability (single use, 72 h, stored hashed); the forms are
//! same-origin only (see the CSRF guard).

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use qrcode::QrCode;
use qrcode::render::svg;
use secrecy::SecretString;
use serde::Deserialize;

use super::{message, page};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::{ClientIp, Session};
use crate::http::extract::RequestId;
use crate::http::ratelimit::Limit;
use crate::service::accounts;
use crate::service::members::{self, AcceptInput};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invitation/{token}", get(show).post(submit_password))
        .route("/invitation/{token}/code", post(submit_code))
        .route("/invitation/{token}/join", post(submit_join))
}

#[derive(Template, Default)]
#[template(path = "invitation.html")]
struct PasswordPage {
    token: String,
    first_admin: bool,
    reset: bool,
    join: bool,
    organisation_name: String,
    email: Option<String>,
    email_value: String,
    name_value: String,
    general_error: Option<String>,
    email_error: Option<String>,
    name_error: Option<String>,
    password_error: Option<String>,
}

#[derive(Template)]
#[template(path = "invitation_totp.html")]
struct TotpPage {
    token: String,
    secret: String,
    qr_svg: String,
    code_error: Option<String>,
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Lien invalide",
        "Ce lien d'invitation n'existe pas, a expiré ou a déjà servi. Demandez une nouvelle invitation à votre référent.",
        false,
    )
}

fn error_page(e: AppError) -> Response {
    match e {
        AppError::NotFound => not_found(),
        AppError::RateLimited { .. } => message(
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives",
            "Trop de tentatives : réessayez plus tard.",
            false,
        ),
        other => axum::response::IntoResponse::into_response(other),
    }
}

async fn base_page(state: &AppState, token: &str) -> Result<PasswordPage, AppError> {
    let info = members::invitation_info(state, token).await?;
    Ok(PasswordPage {
        token: token.to_owned(),
        first_admin: info.kind == "first_admin",
        reset: info.kind == "totp_reset",
        join: info.kind == "join",
        organisation_name: info.organisation_name,
        email: info.email,
        ..PasswordPage::default()
    })
}

async fn show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Invitation, ip) {
        return error_page(e);
    }
    match base_page(&state, &token).await {
        Ok(p) => page(StatusCode::OK, &p),
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: String,
    email: Option<String>,
    display_name: Option<String>,
}

fn qr(uri: &str) -> String {
    QrCode::new(uri.as_bytes())
        .map(|c| {
            c.render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default()
}

async fn submit_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Invitation, ip) {
        return error_page(e);
    }
    let mut p = match base_page(&state, &token).await {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    if p.join {
        // A join invitation sets no password: the page offers the join form instead.
        return error_page(AppError::NotFound);
    }
    let input = AcceptInput {
        password: SecretString::from(f.password),
        email: f.email.clone(),
        display_name: f.display_name.clone(),
        ip,
    };
    match members::accept(&state, &token, input).await {
        Ok(enrolment) => page(
            StatusCode::OK,
            &TotpPage {
                token,
                qr_svg: qr(&enrolment.otpauth_uri),
                secret: enrolment.totp_secret,
                code_error: None,
            },
        ),
        Err(AppError::Validation(errors)) => {
            for e in errors {
                let slot = match e.field.as_str() {
                    "email" => &mut p.email_error,
                    "display_name" => &mut p.name_error,
                    "password" => &mut p.password_error,
                    _ => &mut p.general_error,
                };
                *slot = Some(e.message);
            }
            p.email_value = f.email.unwrap_or_default();
            p.name_value = f.display_name.unwrap_or_default();
            page(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    secret: String,
    totp: String,
}

async fn submit_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    RequestId(rid): RequestId,
    Form(f): Form<CodeForm>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Invitation, ip) {
        return error_page(e);
    }
    match members::confirm(&state, &token, &f.totp, rid).await {
        Ok(()) => message(
            StatusCode::OK,
            "Compte activé",
            "Votre compte est activé. Vous pouvez maintenant vous connecter avec votre adresse e-mail, votre mot de passe et un code de votre application.",
            true,
        ),
        Err(AppError::Validation(errors)) => {
            // The secret was shown on the previous page; it is only echoed back to re-display it.
            let secret: String = f
                .secret
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(64)
                .collect();
            let uri = format!(
                "otpauth://totp/mandat?secret={secret}&issuer=mandat&digits=6&period=30&algorithm=SHA1"
            );
            let code_error = errors.into_iter().next().map(|e| e.message);
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &TotpPage {
                    token,
                    qr_svg: qr(&uri),
                    secret,
                    code_error,
                },
            )
        }
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct JoinForm {
    totp: String,
}

/// Joins with the logged-in account: the code given in the form refreshes its second factor
/// (a step-up, counted towards the lockout when wrong), then the membership becomes active.
async fn submit_join(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    RequestId(rid): RequestId,
    session: Result<Session, AppError>,
    Form(f): Form<JoinForm>,
) -> Response {
    if let Err(e) = state.limits.check(Limit::Invitation, ip) {
        return error_page(e);
    }
    let mut p = match base_page(&state, &token).await {
        Ok(p) if p.join => p,
        Ok(_) => return not_found(),
        Err(e) => return error_page(e),
    };
    let Ok(mut session) = session else {
        return message(
            StatusCode::UNAUTHORIZED,
            "Connectez-vous d'abord",
            "Pour rejoindre cette structure, connectez-vous à mandat avec votre propre compte dans ce navigateur, puis rouvrez ce lien.",
            false,
        );
    };
    // Only the invited account goes further (anyone else: the same page as an unknown link).
    if let Err(e) = members::join_invitation(&state, &session, &token).await {
        return error_page(e);
    }
    match accounts::step_up(&state, &session, &f.totp, ip, rid.clone()).await {
        Ok(()) => {
            // The step-up just written makes this session's second factor fresh.
            let now = state.clock.now();
            session.fresh_factor_at = now;
            session.step_up_at = Some(now);
            session.now = now;
        }
        Err(AppError::InvalidCode { .. }) => {
            p.general_error = Some(
                "Code incorrect : saisissez le code affiché maintenant par votre application."
                    .into(),
            );
            return page(StatusCode::UNPROCESSABLE_ENTITY, &p);
        }
        Err(e) => return error_page(e),
    }
    match members::join(&state, &session, &token, rid).await {
        Ok(()) => message(
            StatusCode::OK,
            "Structure rejointe",
            &format!(
                "Vous faites maintenant partie de {}. Vous pouvez agir pour cette structure avec votre compte habituel.",
                p.organisation_name
            ),
            true,
        ),
        Err(AppError::Forbidden) => message(
            StatusCode::FORBIDDEN,
            "Action impossible",
            "Ce compte ne peut pas rejoindre une structure.",
            false,
        ),
        Err(e) => error_page(e),
    }
}
