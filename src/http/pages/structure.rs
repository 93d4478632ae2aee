//! `/structure`: the référent's page — organisation, allowed démarches, aidants (invite,
//! deactivate, reactivate, reset the second factor, bind a card).

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::form::{Errors, FormData, apply_step_up, step_up_page};
use super::{Nav, PageForm, PageSession, error_page, page, see_other, view};
use crate::app::AppState;
use crate::domain::demarche::catalogue;
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::service::members::{self, InviteInput};
use crate::service::{cards, organisations};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/structure", get(show))
        .route("/structure/demarches", post(update_demarches))
        .route("/structure/invitations", post(invite))
        .route("/structure/membres/{aidant}/desactiver", post(deactivate))
        .route("/structure/membres/{aidant}/reactiver", post(reactivate))
        .route(
            "/structure/membres/{aidant}/second-facteur",
            post(totp_reset),
        )
        .route("/structure/membres/{aidant}/carte", post(bind_card))
}

pub struct MemberLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    /// Invited, never logged in.
    pub pending: bool,
    pub last_login: String,
}

pub struct DemarcheChoice {
    pub id: String,
    pub title: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "structure.html")]
struct StructurePage {
    nav: Nav,
    name: String,
    address: String,
    siret: String,
    demarches: Vec<DemarcheChoice>,
    members: Vec<MemberLine>,
    done: &'static str,
    errors: Errors,
    email: String,
    display_name: String,
    role: String,
    /// The link to hand over after an invitation or a reset.
    link: Option<String>,
    card_for: String,
}

/// The organisation the référent acts for; `403` for anyone else.
fn referent_org(session: &Session, nav: &Nav) -> Result<Uuid, AppError> {
    match session.current_organisation_id {
        Some(org) if nav.is_referent => Ok(org),
        _ => Err(AppError::Forbidden),
    }
}

struct Extra {
    done: &'static str,
    errors: Errors,
    form: FormData,
    link: Option<String>,
    card_for: String,
}

impl Extra {
    fn none() -> Self {
        Self {
            done: "",
            errors: Errors::default(),
            form: FormData::default(),
            link: None,
            card_for: String::new(),
        }
    }
}

async fn render(state: &AppState, session: &Session, nav: Nav, x: Extra) -> Response {
    let org = match referent_org(session, &nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    let result = async {
        let o = organisations::get_as(state, session, org).await?;
        let m = members::list(state, session, org).await?;
        Ok::<_, AppError>((o, m))
    }
    .await;
    let (o, list) = match result {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let status = if x.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &StructurePage {
            nav: nav.at("structure"),
            name: o.name,
            address: o.address,
            siret: o.siret.unwrap_or_default(),
            demarches: catalogue()
                .iter()
                .map(|d| DemarcheChoice {
                    id: d.id.clone(),
                    title: d.title.clone(),
                    checked: o.allowed_demarches.contains(&d.id),
                })
                .collect(),
            members: list
                .into_iter()
                .map(|m| MemberLine {
                    id: m.aidant_id.to_string(),
                    name: m.display_name,
                    email: m.email,
                    role: view::role_fr(&m.role),
                    active: m.active,
                    pending: !m.active && m.last_login_at.is_none(),
                    last_login: m
                        .last_login_at
                        .map(view::datetime)
                        .unwrap_or_else(|| "jamais".into()),
                })
                .collect(),
            done: x.done,
            email: x.form.get("email").to_owned(),
            display_name: x.form.get("display_name").to_owned(),
            role: x.form.opt("role").unwrap_or_else(|| "aidant".into()),
            errors: x.errors,
            link: x.link,
            card_for: x.card_for,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let done = match q.get("fait") {
        "demarches" => "Les démarches proposées sont enregistrées.",
        "desactive" => "Le compte est désactivé dans votre structure.",
        "reactive" => "Le compte est réactivé.",
        "carte" => "La carte est associée au compte.",
        _ => "",
    };
    render(
        &state,
        &session,
        nav,
        Extra {
            done,
            ..Extra::none()
        },
    )
    .await
}

fn member_id(s: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(s).map_err(|_| AppError::NotFound)
}

async fn update_demarches(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    f: PageForm,
) -> Response {
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    let chosen = f.data.all("demarches");
    match organisations::update_as(&state, &f.session, org, None, Some(chosen), rid).await {
        Ok(_) => see_other("/structure?fait=demarches"),
        Err(AppError::Validation(errors)) => {
            let mut e = Errors::default();
            for x in errors {
                e.add("demarches", &x.message);
            }
            render(
                &state,
                &f.session,
                f.nav.clone(),
                Extra {
                    errors: e,
                    ..Extra::none()
                },
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

async fn invite(State(state): State<AppState>, RequestId(rid): RequestId, f: PageForm) -> Response {
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    let input = InviteInput {
        email: f.data.get("email").to_owned(),
        display_name: f.data.get("display_name").to_owned(),
        role: f.data.get("role").to_owned(),
    };
    match members::invite(&state, &f.session, org, input, rid).await {
        // The link is a secret shown once, here: this answer is not a redirection.
        Ok(invited) => {
            // The same answer whether the e-mail has an account or not (an existing account
            // joins through the link, logged in).
            let done = "Invitation créée. Remettez ce lien à la personne invitée : il sert une fois, pendant 72 heures.";
            render(
                &state,
                &f.session,
                f.nav.clone(),
                Extra {
                    done,
                    link: Some(invited.invitation_url),
                    ..Extra::none()
                },
            )
            .await
        }
        Err(AppError::Validation(errors)) => {
            render(
                &state,
                &f.session,
                f.nav.clone(),
                Extra {
                    errors: Errors(errors),
                    form: f.data.clone(),
                    ..Extra::none()
                },
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

async fn deactivate(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(aidant): Path<String>,
    f: PageForm,
) -> Response {
    let aidant = match member_id(&aidant) {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    match members::deactivate(&state, &f.session, org, aidant, rid).await {
        Ok(()) => see_other("/structure?fait=desactive"),
        Err(e) => error_page(e),
    }
}

async fn reactivate(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(aidant): Path<String>,
    f: PageForm,
) -> Response {
    let aidant = match member_id(&aidant) {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    match members::reactivate(&state, &f.session, org, aidant, rid).await {
        Ok(()) => see_other("/structure?fait=reactive"),
        Err(e) => error_page(e),
    }
}

async fn totp_reset(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(aidant): Path<String>,
    mut f: PageForm,
) -> Response {
    let aidant = match member_id(&aidant) {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let action = format!("/structure/membres/{aidant}/second-facteur");
    if let Err(r) = apply_step_up(&state, &mut f, &action, "/structure", rid.clone()).await {
        return r;
    }
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    match members::totp_reset(&state, &f.session, org, aidant, rid).await {
        Ok(link) => {
            render(
                &state,
                &f.session,
                f.nav.clone(),
                Extra {
                    done: "Second facteur réinitialisé. Remettez ce lien à la personne : elle y enregistrera un nouvel authentificateur.",
                    link: Some(link),
                    ..Extra::none()
                },
            )
            .await
        }
        Err(AppError::StepUpRequired) => step_up_page(&f, &action, "/structure", None),
        Err(e) => error_page(e),
    }
}

async fn bind_card(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(aidant): Path<String>,
    f: PageForm,
) -> Response {
    let aidant_id = match member_id(&aidant) {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let org = match referent_org(&f.session, &f.nav) {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    match cards::bind_card(
        &state,
        &f.session,
        org,
        aidant_id,
        f.data.get("serial"),
        f.data.get("totp"),
        rid,
    )
    .await
    {
        Ok(()) => see_other("/structure?fait=carte"),
        Err(AppError::Validation(errors)) => {
            let mut e = Errors::default();
            for x in errors {
                let field = if x.field == "serial" {
                    "serial"
                } else {
                    "totp"
                };
                e.add(field, &x.message);
            }
            render(
                &state,
                &f.session,
                f.nav.clone(),
                Extra {
                    errors: e,
                    form: f.data.clone(),
                    card_for: aidant_id.to_string(),
                    ..Extra::none()
                },
            )
            .await
        }
        Err(e) => error_page(e),
    }
}
