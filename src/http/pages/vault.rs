//! `/coffre`: the organisation's collective accounts (ui.md) — list, add, reveal with the
//! step-up asked inline and a reason (the secret shown for 60 seconds with a copy button,
//! `static/coffre.js`), rotate, delete, hand-over. Every action calls the same use case as
//! the API (`service::vault`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::form::Errors;
use super::{Nav, PageForm, PageSession, error_page, page, see_other, view};
use crate::app::AppState;
use crate::domain::demarche::catalogue;
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::service::Caller;
use crate::service::vault::{self, Channel, EntryInput, HandedOver, NewEntry, Reason};

const JS: &str = include_str!("../../../static/coffre.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coffre", get(show).post(add))
        .route("/coffre/{id}/afficher", post(reveal))
        .route("/coffre/{id}/secret", post(rotate))
        .route("/coffre/{id}/supprimer", post(remove))
        .route("/coffre/{id}/remise", post(hand_over))
        .route("/static/coffre.js", get(js))
}

async fn js() -> Response {
    let mut res = JS.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

pub struct EntryLine {
    pub id: String,
    pub label: String,
    pub service: String,
    pub has_totp: bool,
    pub linked: bool,
    pub demarche: String,
    pub version: i64,
    pub updated: String,
}

pub struct Shown {
    pub id: String,
    pub label: String,
    pub login: String,
    pub secret: String,
    pub totp_code: String,
}

impl Drop for Shown {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.login.zeroize();
        self.secret.zeroize();
    }
}

#[derive(Default)]
struct AddValues {
    label: String,
    service: String,
    usager_id: String,
    demarche: String,
}

#[derive(Template)]
#[template(path = "coffre.html")]
struct CoffrePage {
    nav: Nav,
    entries: Vec<EntryLine>,
    /// Whether a step-up of less than 5 minutes is in the session (else the forms ask a code).
    fresh: bool,
    done: String,
    errors: Errors,
    add: AddValues,
    /// The entry whose form failed, and the French message shown next to it.
    error_for: String,
    /// Which form of that entry: `afficher`, `secret`, `remise` or `supprimer`.
    error_action: &'static str,
    entry_error: String,
    shown: Option<Shown>,
    reasons: Vec<(&'static str, &'static str)>,
    demarches: Vec<(String, String)>,
}

fn fresh(state: &AppState, s: &Session) -> bool {
    s.step_up_at
        .is_some_and(|at| state.clock.now() - at <= chrono::Duration::seconds(300))
}

fn caller(session: &Session, rid: Option<String>) -> Result<Caller, AppError> {
    let org = session.acting_organisation(None)?;
    Ok(Caller::new(session, org, rid))
}

struct Outcome {
    status: StatusCode,
    done: String,
    errors: Errors,
    add: AddValues,
    error_for: String,
    error_action: &'static str,
    entry_error: String,
    shown: Option<Shown>,
}

impl Outcome {
    fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            done: String::new(),
            errors: Errors::default(),
            add: AddValues::default(),
            error_for: String::new(),
            error_action: "",
            entry_error: String::new(),
            shown: None,
        }
    }

    fn entry_error(id: Uuid, action: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_for: id.to_string(),
            error_action: action,
            entry_error: message.into(),
            ..Self::ok()
        }
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    nav: Nav,
    rid: Option<String>,
    o: Outcome,
) -> Response {
    let caller = match caller(session, rid) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let list = match vault::list(state, &caller, None, 500).await {
        Ok(l) => l,
        Err(e) => return error_page(e),
    };
    let entries = list
        .items
        .into_iter()
        .map(|e| EntryLine {
            id: e.id.to_string(),
            label: e.label,
            service: e.service,
            has_totp: e.has_totp,
            linked: e.usager_id.is_some(),
            demarche: e
                .demarche
                .as_deref()
                .map(view::demarche_title)
                .unwrap_or_default(),
            version: e.version,
            updated: crate::domain::wording::date(e.updated_at),
        })
        .collect();
    page(
        o.status,
        &CoffrePage {
            fresh: fresh(state, session),
            nav: nav.at("coffre"),
            entries,
            done: o.done,
            errors: o.errors,
            add: o.add,
            error_for: o.error_for,
            error_action: o.error_action,
            entry_error: o.entry_error,
            shown: o.shown,
            reasons: Reason::ALL
                .iter()
                .map(|r| (r.as_str(), r.label()))
                .collect(),
            demarches: catalogue()
                .iter()
                .map(|d| (d.id.clone(), d.title.clone()))
                .collect(),
        },
    )
}

async fn show(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    PageSession { session, nav }: PageSession,
    RawQuery(q): RawQuery,
) -> Response {
    let done = match q.as_deref() {
        Some("ajout=ok") => "L'entrée a été ajoutée au coffre.",
        Some("secret=ok") => "Le nouveau secret est enregistré ; l'ancien est effacé.",
        Some("suppression=ok") => {
            "L'entrée a été supprimée : son secret est définitivement illisible."
        }
        Some("sms=ok") => "Le code d'accès part par SMS au téléphone de l'usager.",
        _ => "",
    };
    render(
        &state,
        &session,
        nav,
        rid,
        Outcome {
            done: done.into(),
            ..Outcome::ok()
        },
    )
    .await
}

/// Checks the inline step-up code when the form carries one; the French message otherwise.
async fn step_up_inline(
    state: &AppState,
    f: &mut PageForm,
    rid: Option<String>,
) -> Result<(), String> {
    let Some(code) = f.data.opt("step_up_code").filter(|c| !c.trim().is_empty()) else {
        return Ok(());
    };
    match crate::service::accounts::step_up(state, &f.session, &code, f.ip, rid).await {
        Ok(()) => {
            let now = state.clock.now();
            f.session.step_up_at = Some(now);
            f.session.fresh_factor_at = now;
            Ok(())
        }
        Err(AppError::InvalidCode { .. }) => {
            Err("Code incorrect. Saisissez le code affiché maintenant.".into())
        }
        Err(AppError::RateLimited { .. }) => {
            Err("Trop d'essais. Attendez quelques minutes avant de recommencer.".into())
        }
        Err(_) => Err("Le code n'a pas pu être vérifié. Recommencez.".into()),
    }
}

/// The French message of a refused entry action.
fn entry_message(e: &AppError) -> Option<String> {
    Some(match e {
        AppError::StepUpRequired => {
            "Saisissez le code à 6 chiffres de votre application pour confirmer (il date de plus de 5 minutes).".into()
        }
        AppError::MandateNotActive => "Aucun mandat actif de l'usager ne couvre la démarche de ce compte : cette action n'est pas possible.".into(),
        AppError::Conflict(m) => m.clone(),
        AppError::Validation(list) => list.first().map(|e| e.message.clone())?,
        AppError::Forbidden => "Cette action ne vous est pas permise.".into(),
        _ => return None,
    })
}

async fn entry_failed(
    state: &AppState,
    f: PageForm,
    rid: Option<String>,
    id: Uuid,
    action: &'static str,
    e: AppError,
) -> Response {
    match entry_message(&e) {
        Some(m) => {
            let status = e.status();
            let mut o = Outcome::entry_error(id, action, m);
            o.status = status;
            render(state, &f.session, f.nav, rid, o).await
        }
        None => error_page(e),
    }
}

async fn add(State(state): State<AppState>, RequestId(rid): RequestId, f: PageForm) -> Response {
    let caller = match caller(&f.session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let values = AddValues {
        label: f.data.get("label").to_owned(),
        service: f.data.get("service").to_owned(),
        usager_id: f.data.get("usager_id").trim().to_owned(),
        demarche: f.data.get("demarche").to_owned(),
    };
    let usager_id = match values.usager_id.as_str() {
        "" => None,
        raw => match Uuid::parse_str(raw) {
            Ok(u) => Some(u),
            Err(_) => {
                let mut errors = Errors::default();
                errors.add("usager_id", "Cet identifiant d'usager n'est pas valide.");
                return render(
                    &state,
                    &f.session,
                    f.nav,
                    rid,
                    Outcome {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        errors,
                        add: values,
                        ..Outcome::ok()
                    },
                )
                .await;
            }
        },
    };
    let parsed = NewEntry::parse(&EntryInput {
        label: f.data.get("label"),
        service: f.data.get("service"),
        login: f.data.get("login"),
        secret: f.data.get("secret"),
        totp_seed: f.data.opt("totp_seed").as_deref(),
        notes: f.data.opt("notes").as_deref(),
        usager_id,
        demarche: Some(values.demarche.as_str()).filter(|d| !d.is_empty()),
    });
    let result = match parsed {
        Ok(input) => vault::create(&state, &caller, input, None)
            .await
            .map(|_| ()),
        Err(list) => Err(AppError::Validation(list)),
    };
    match result {
        Ok(()) => see_other("/coffre?ajout=ok"),
        Err(AppError::Validation(list)) => {
            render(
                &state,
                &f.session,
                f.nav,
                rid,
                Outcome {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    errors: Errors(list),
                    add: values,
                    ..Outcome::ok()
                },
            )
            .await
        }
        Err(e) => error_page(e),
    }
}

async fn reveal(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    mut f: PageForm,
) -> Response {
    if let Err(m) = step_up_inline(&state, &mut f, rid.clone()).await {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(id, "afficher", m),
        )
        .await;
    }
    let Some(reason) = Reason::parse(f.data.get("reason")) else {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(
                id,
                "afficher",
                "Choisissez pourquoi vous affichez ce secret.",
            ),
        )
        .await;
    };
    let caller = match caller(&f.session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match vault::reveal(&state, &caller, id, reason).await {
        Ok(r) => {
            let label = vault::list(&state, &caller, None, 500)
                .await
                .ok()
                .and_then(|l| l.items.into_iter().find(|e| e.id == id))
                .map(|e| e.label)
                .unwrap_or_default();
            let shown = Shown {
                id: id.to_string(),
                label,
                login: r.login.to_string(),
                secret: r.secret.to_string(),
                totp_code: r.totp_code.clone().unwrap_or_default(),
            };
            render(
                &state,
                &f.session,
                f.nav,
                rid,
                Outcome {
                    shown: Some(shown),
                    ..Outcome::ok()
                },
            )
            .await
        }
        Err(e) => entry_failed(&state, f, rid, id, "afficher", e).await,
    }
}

async fn rotate(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    mut f: PageForm,
) -> Response {
    if let Err(m) = step_up_inline(&state, &mut f, rid.clone()).await {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(id, "secret", m),
        )
        .await;
    }
    let secret = match vault::parse_secret(f.data.get("secret")) {
        Ok(s) => s,
        Err(e) => return entry_failed(&state, f, rid, id, "secret", e).await,
    };
    let caller = match caller(&f.session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match vault::rotate(&state, &caller, id, secret).await {
        Ok(()) => see_other("/coffre?secret=ok"),
        Err(e) => entry_failed(&state, f, rid, id, "secret", e).await,
    }
}

async fn remove(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    f: PageForm,
) -> Response {
    if f.data.get("confirmation") != "oui" {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(
                id,
                "supprimer",
                "Cochez la case pour confirmer la suppression.",
            ),
        )
        .await;
    }
    let caller = match caller(&f.session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match vault::delete(&state, &caller, id).await {
        Ok(()) => see_other("/coffre?suppression=ok"),
        Err(e) => entry_failed(&state, f, rid, id, "supprimer", e).await,
    }
}

async fn hand_over(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<Uuid>,
    mut f: PageForm,
) -> Response {
    if let Err(m) = step_up_inline(&state, &mut f, rid.clone()).await {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(id, "remise", m),
        )
        .await;
    }
    let Some(channel) = Channel::parse(f.data.get("channel")) else {
        return render(
            &state,
            &f.session,
            f.nav,
            rid,
            Outcome::entry_error(id, "remise", "Choisissez une feuille imprimée ou un SMS."),
        )
        .await;
    };
    let caller = match caller(&f.session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match vault::hand_over(&state, &caller, id, channel).await {
        Ok(HandedOver::Slip(bytes)) => {
            let mut res = crate::http::routes::vault::slip_response(bytes);
            res.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"identifiants.pdf\""),
            );
            res
        }
        Ok(HandedOver::SmsQueued) => see_other("/coffre?sms=ok"),
        Err(e) => entry_failed(&state, f, rid, id, "remise", e).await,
    }
}
