//! `/admin`: organisations and their référents; create an organisation, invite its
//! référent (the link to hand over is shown once).

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::form::{Errors, FormData};
use super::{Nav, PageForm, PageSession, error_page, page, see_other};
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::service::members::{self, InviteInput};
use crate::service::{directory, organisations};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(show))
        .route("/admin/organisations", post(create_org))
        .route(
            "/admin/organisations/{org}/referents",
            post(invite_referent),
        )
}

pub struct OrgLine {
    pub id: String,
    pub name: String,
    pub address: String,
    pub referents: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    orgs: Vec<OrgLine>,
    done: &'static str,
    link: Option<String>,
    errors: Errors,
    form: FormData,
    /// The organisation whose référent form failed.
    failed_org: String,
    /// The audit-signing key in service, in words.
    signing: String,
    /// Registered OpenID Connect clients.
    clients: Vec<ClientLine>,
}

pub struct ClientLine {
    pub id: String,
    pub name: String,
    pub auth: &'static str,
    pub redirect_uris: String,
    pub demarches: String,
}

struct Extra {
    done: &'static str,
    link: Option<String>,
    errors: Errors,
    form: FormData,
    failed_org: String,
}

impl Extra {
    fn none() -> Self {
        Self {
            done: "",
            link: None,
            errors: Errors::default(),
            form: FormData::default(),
            failed_org: String::new(),
        }
    }
}

async fn render(state: &AppState, session: &Session, nav: Nav, x: Extra) -> Response {
    let result = async {
        let list = directory::list_organisations(state, session, 500).await?;
        let mut orgs = Vec::with_capacity(list.len());
        for o in list {
            let referents = members::list(state, session, o.id)
                .await?
                .into_iter()
                .filter(|m| m.role == "referent")
                .map(|m| match (m.active, m.last_login_at.is_some()) {
                    (true, _) => format!("{} ({})", m.display_name, m.email),
                    (false, false) => {
                        format!("{} ({}, invitation en attente)", m.display_name, m.email)
                    }
                    (false, true) => format!("{} ({}, désactivé)", m.display_name, m.email),
                })
                .collect();
            orgs.push(OrgLine {
                id: o.id.to_string(),
                name: o.name,
                address: o.address,
                referents,
            });
        }
        let keys = crate::service::audit::public_keys(state).await?;
        let clients = crate::service::oidc::clients::list(state, &session.principal())
            .await?
            .into_iter()
            .map(|c| ClientLine {
                id: c.id.to_string(),
                name: c.name,
                auth: if c.auth_method == "private_key_jwt" {
                    "clé privée (private_key_jwt)"
                } else {
                    "secret partagé"
                },
                redirect_uris: c.redirect_uris.join(", "),
                demarches: c.allowed_demarches.join(", "),
            })
            .collect::<Vec<_>>();
        Ok::<_, AppError>((
            orgs,
            keys.keys.into_iter().map(|k| k.key_id).collect::<Vec<_>>(),
            clients,
        ))
    }
    .await;
    let (orgs, signing_keys, clients) = match result {
        Ok(o) => o,
        Err(e) => return error_page(e),
    };
    let status = if x.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &AdminPage {
            nav: nav.at("admin"),
            orgs,
            done: x.done,
            link: x.link,
            errors: x.errors,
            form: x.form,
            failed_org: x.failed_org,
            signing: signing_status(&signing_keys),
            clients,
        },
    )
}

/// `version 2 en service (identifiant …), 1 version antérieure …` from key ids, oldest first.
fn signing_status(keys: &[String]) -> String {
    let Some(current) = keys.last() else {
        return "aucune version enregistrée".into();
    };
    let mut s = format!("version {} en service (identifiant {current})", keys.len());
    match keys.len() - 1 {
        0 => {}
        1 => s.push_str(", 1 version antérieure encore acceptée pour la vérification"),
        n => s.push_str(&format!(
            ", {n} versions antérieures encore acceptées pour la vérification"
        )),
    }
    s
}

async fn show(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let done = match q.get("fait") {
        "organisation" => "L'organisation est créée. Invitez maintenant son référent.",
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

async fn create_org(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    f: PageForm,
) -> Response {
    // The use case authorizes before validating: a non-administrator learns nothing from
    // the form.
    let siret = f.data.opt("siret");
    let input = organisations::OrganisationInput {
        name: f.data.get("name"),
        address: f.data.get("address"),
        siret: siret.as_deref(),
        allowed_demarches: None,
    };
    let errors = match organisations::create_as(&state, &f.session, input, rid).await {
        Ok(_) => return see_other("/admin?fait=organisation"),
        Err(AppError::Validation(e)) => e,
        Err(AppError::Conflict(m)) => vec![crate::domain::FieldError::new("name", &m)],
        Err(e) => return error_page(e),
    };
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

async fn invite_referent(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(org): Path<String>,
    f: PageForm,
) -> Response {
    let Ok(org) = Uuid::try_parse(&org) else {
        return error_page(AppError::NotFound);
    };
    let input = InviteInput {
        email: f.data.get("email").to_owned(),
        display_name: f.data.get("display_name").to_owned(),
        role: "referent".into(),
    };
    match members::invite(&state, &f.session, org, input, rid).await {
        // The link is a secret shown once, here: this answer is not a redirection.
        Ok(invited) => {
            // The same answer whether the e-mail has an account or not (an existing account
            // joins through the link, logged in).
            let done = "Invitation du référent créée. Remettez-lui ce lien : il sert une fois, pendant 72 heures.";
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
            let mut e = Errors::default();
            for x in errors {
                let field = if x.field == "display_name" {
                    "ref_display_name"
                } else {
                    "ref_email"
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
                    failed_org: org.to_string(),
                    ..Extra::none()
                },
            )
            .await
        }
        Err(e) => error_page(e),
    }
}
