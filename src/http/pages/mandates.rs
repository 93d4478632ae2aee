//! Mandates at the desk: the wizard (`/mandats/nouveau?usager=`: démarches and duration →
//! recap and consent channel → code entry → done) and the mandate page (terms, status per
//! démarche, timeline, revocation, renewal).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use super::desk::{UsagerLine, read_usager};
use super::form::{Errors, FormData, apply_step_up, step_up_page};
use super::{Nav, PageForm, PageSession, error_page, page, see_other, view};
use crate::app::AppState;
use crate::domain::FieldError;
use crate::domain::demarche::{DemarcheId, catalogue, parse_set};
use crate::domain::mandate::{ConsentChannel, MandateDuration, RevocationReason};
use crate::domain::usager::Phone;
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::http::routes::usagers::caller_for;
use crate::service::consent;
use crate::service::idempotency::Replayable;
use crate::service::mandates::{self, Mandate, NewMandate};
use crate::service::organisations;
use crate::service::usagers::Usager;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mandats/nouveau", get(wizard).post(create))
        .route("/mandats/{id}", get(show))
        .route("/mandats/{id}/consentement", get(code_form).post(code))
        .route("/mandats/{id}/statut", get(status))
        .route("/mandats/{id}/renvoyer", post(resend))
        .route("/mandats/{id}/revoquer", post(revoke))
        .route("/mandats/{id}/renouveler", post(renew))
}

pub struct Tile {
    pub id: String,
    pub title: String,
    pub description: String,
    pub warning: Option<String>,
    pub checked: bool,
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

fn durations(selected: &str) -> Vec<Choice> {
    [
        ("short", "1 jour, pour une démarche ponctuelle"),
        ("month", "1 mois"),
        ("semester", "6 mois"),
        ("long", "1 an"),
    ]
    .into_iter()
    .map(|(value, label)| Choice {
        value,
        label,
        checked: value == selected,
    })
    .collect()
}

fn masked(u: &Usager) -> Option<String> {
    u.phone
        .as_deref()
        .and_then(|p| Phone::parse(p).ok())
        .map(|p| p.masked())
}

#[derive(Template)]
#[template(path = "mandate_new.html")]
struct Step1 {
    nav: Nav,
    u: UsagerLine,
    tiles: Vec<Tile>,
    durations: Vec<Choice>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "mandate_recap.html")]
struct Step2 {
    nav: Nav,
    u: UsagerLine,
    demarches: Vec<String>,
    demarche_titles: Vec<String>,
    has_argent: bool,
    duration: String,
    duration_label: &'static str,
    phone: Option<String>,
    channel: String,
    errors: Errors,
}

/// The usager and the démarches the organisation offers, for the wizard.
async fn wizard_context(
    state: &AppState,
    session: &Session,
    usager: &str,
    rid: Option<String>,
) -> Result<(Usager, Vec<String>), AppError> {
    let id = Uuid::try_parse(usager).map_err(|_| AppError::NotFound)?;
    let (caller, u) = read_usager(state, session, id, rid).await?;
    let org = organisations::get(state, caller.organisation_id).await?;
    Ok((u, org.allowed_demarches))
}

fn step1(nav: Nav, u: &Usager, allowed: &[String], f: &FormData, errors: Errors) -> Response {
    let chosen = f.all("demarches");
    let tiles = catalogue()
        .iter()
        .filter(|d| allowed.contains(&d.id))
        .map(|d| Tile {
            checked: chosen.contains(&d.id),
            id: d.id.clone(),
            title: d.title.clone(),
            description: d.description.clone(),
            warning: d.warning.clone(),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &Step1 {
            nav: nav.at("desk"),
            u: UsagerLine::from(u),
            tiles,
            durations: durations(f.get("duree")),
            errors,
        },
    )
}

/// Démarches and duration of the wizard's first step, validated.
fn terms_of(f: &FormData, errors: &mut Errors) -> Option<(Vec<DemarcheId>, MandateDuration)> {
    let demarches = parse_set(&f.all("demarches"));
    if demarches.is_none() {
        errors.add("demarches", "Choisissez au moins une démarche.");
    }
    let duration = MandateDuration::parse(f.get("duree"));
    if duration.is_none() {
        errors.add("duree", "Choisissez la durée du mandat.");
    }
    Some((demarches?, duration?))
}

async fn wizard(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RequestId(rid): RequestId,
    RawQuery(raw): RawQuery,
) -> Response {
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let (u, allowed) = match wizard_context(&state, &session, f.get("usager"), rid).await {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    if f.get("etape") != "2" {
        return step1(nav, &u, &allowed, &f, Errors::default());
    }
    let mut errors = Errors::default();
    match terms_of(&f, &mut errors) {
        Some((demarches, duration)) => recap(nav, &u, &demarches, duration, "", Errors::default()),
        None => step1(nav, &u, &allowed, &f, errors),
    }
}

fn recap(
    nav: Nav,
    u: &Usager,
    demarches: &[DemarcheId],
    duration: MandateDuration,
    channel: &str,
    errors: Errors,
) -> Response {
    let ids: Vec<String> = demarches.iter().map(|d| d.as_str().to_owned()).collect();
    let phone = masked(u);
    let channel = if channel.is_empty() {
        if phone.is_some() { "sms" } else { "print" }
    } else {
        channel
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &Step2 {
            nav: nav.at("desk"),
            u: UsagerLine::from(u),
            demarche_titles: ids.iter().map(|d| view::demarche_title(d)).collect(),
            has_argent: ids.iter().any(|d| d == "argent"),
            demarches: ids,
            duration: duration.as_str().to_owned(),
            duration_label: view::duration_fr(duration.as_str()),
            phone,
            channel: channel.to_owned(),
            errors,
        },
    )
}

async fn create(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    mut f: PageForm,
) -> Response {
    let usager = f.data.get("usager").to_owned();
    let back = format!("/mandats/nouveau?usager={usager}");
    if let Err(r) = apply_step_up(&state, &mut f, "/mandats/nouveau", &back, rid.clone()).await {
        return r;
    }
    let (u, allowed) = match wizard_context(&state, &f.session, &usager, rid.clone()).await {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let mut errors = Errors::default();
    let Some((demarches, duration)) = terms_of(&f.data, &mut errors) else {
        return step1(f.nav.clone(), &u, &allowed, &f.data, errors);
    };
    let Some(channel) = ConsentChannel::parse(f.data.get("canal")) else {
        errors.add("canal", "Choisissez comment l'usager donne son accord.");
        return recap(f.nav.clone(), &u, &demarches, duration, "", errors);
    };
    let caller = match caller_for(&f.session, None, rid) {
        Ok(c) => c,
        Err(AppError::StepUpRequired) => return step_up_page(&f, "/mandats/nouveau", &back, None),
        Err(e) => return error_page(e),
    };
    let input = NewMandate {
        usager_id: u.id,
        demarches: demarches.clone(),
        duration,
        channel,
    };
    match mandates::create(&state, &caller, input, None).await {
        Ok(Replayable::Fresh(m)) => see_other(&format!("/mandats/{}/consentement", m.id)),
        Ok(Replayable::Replay { .. }) => see_other(&format!("/usagers/{}", u.id)),
        Err(AppError::Validation(list)) => {
            let field_of = |e: &FieldError| {
                if e.field == "consent_channel" {
                    "canal"
                } else {
                    "demarches"
                }
            };
            for e in &list {
                errors.add(field_of(e), &e.message);
            }
            recap(
                f.nav.clone(),
                &u,
                &demarches,
                duration,
                f.data.get("canal"),
                errors,
            )
        }
        Err(AppError::StepUpRequired) => step_up_page(&f, "/mandats/nouveau", &back, None),
        Err(e) => error_page(e),
    }
}

fn parse_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(id).map_err(|_| AppError::NotFound)
}

#[derive(Template)]
#[template(path = "mandate_code.html")]
struct Step3 {
    nav: Nav,
    id: String,
    demarches: String,
    sms: bool,
    sent_to: String,
    printed_code: Option<String>,
    attempts_left: i64,
    expires: String,
    error: Option<String>,
    resent: bool,
    /// The SMS delivery trouble, if any (retrying or failed).
    sms_notice: Option<&'static str>,
}

async fn step3(
    state: &AppState,
    session: &Session,
    nav: Nav,
    id: Uuid,
    rid: Option<String>,
    error: Option<String>,
    resent: bool,
) -> Response {
    let caller = match caller_for(session, None, rid) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let m = match mandates::get(state, &caller, id).await {
        Ok(m) => m,
        Err(e) => return error_page(e),
    };
    if m.status != "pending_consent" {
        return see_other(&format!("/mandats/{id}"));
    }
    let consent = m.consent.clone();
    let sms = consent.as_ref().is_some_and(|c| c.channel == "sms");
    let printed_code = if sms {
        None
    } else {
        match consent::printed_code(state, &caller, id).await {
            Ok(c) => c,
            Err(e) => return error_page(e),
        }
    };
    let sms_notice = if sms {
        match consent::sms_delivery(state, &caller, id).await {
            Ok(d) => d.and_then(view::sms_delivery_fr),
            Err(e) => return error_page(e),
        }
    } else {
        None
    };
    let ids: Vec<String> = m.demarches.iter().map(|d| d.id.clone()).collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(
        status,
        &Step3 {
            nav: nav.at("desk"),
            id: id.to_string(),
            demarches: view::demarche_list_fr(&ids),
            sms,
            sent_to: consent
                .as_ref()
                .and_then(|c| c.sent_to.clone())
                .unwrap_or_default(),
            printed_code,
            attempts_left: consent.as_ref().map_or(0, |c| c.attempts_left),
            expires: consent
                .as_ref()
                .map(|c| view::datetime(c.expires_at))
                .unwrap_or_default(),
            error,
            resent,
            sms_notice,
        },
    )
}

async fn code_form(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    step3(
        &state,
        &session,
        nav,
        id,
        rid,
        None,
        q.get("fait") == "renvoi",
    )
    .await
}

async fn code(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    mut f: PageForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let action = format!("/mandats/{id}/consentement");
    if let Err(r) = apply_step_up(&state, &mut f, &action, &action, rid.clone()).await {
        return r;
    }
    let caller = match caller_for(&f.session, None, rid.clone()) {
        Ok(c) => c,
        Err(AppError::StepUpRequired) => return step_up_page(&f, &action, &action, None),
        Err(e) => return error_page(e),
    };
    let error = match consent::consent_at_desk(&state, &caller, id, f.data.get("code")).await {
        Ok(_) => return see_other(&format!("/mandats/{id}?fait=active")),
        Err(AppError::InvalidCode { attempts_left }) => format!(
            "Code incorrect. Il reste {attempts_left} essai{}.",
            if attempts_left > 1 { "s" } else { "" }
        ),
        Err(AppError::Validation(e)) => e
            .into_iter()
            .next()
            .map_or_else(|| "Code invalide.".to_owned(), |e| e.message),
        Err(AppError::StepUpRequired) => return step_up_page(&f, &action, &action, None),
        Err(e) => return error_page(e),
    };
    step3(
        &state,
        &f.session,
        f.nav.clone(),
        id,
        rid,
        Some(error),
        false,
    )
    .await
}

#[derive(serde::Serialize)]
struct Status {
    status: String,
    label: &'static str,
    /// A French notice when the consent SMS is being retried or could not be sent.
    sms: Option<&'static str>,
}

/// The status of a mandate, polled by the code-entry page while an SMS answer is awaited.
async fn status(
    State(state): State<AppState>,
    PageSession { session, .. }: PageSession,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let id = parse_id(&id)?;
        let caller = caller_for(&session, None, rid)?;
        let m = mandates::get(&state, &caller, id).await?;
        let sms = consent::sms_delivery(&state, &caller, id).await?;
        Ok::<_, AppError>((m, sms.and_then(view::sms_delivery_fr)))
    }
    .await;
    match result {
        Ok((m, sms)) => Json(Status {
            label: view::mandate_status_fr(&m.status),
            status: m.status,
            sms,
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn resend(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    f: PageForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let caller = match caller_for(&f.session, None, rid) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    match consent::resend(&state, &caller, id).await {
        Ok(()) => see_other(&format!("/mandats/{id}/consentement?fait=renvoi")),
        Err(e) => error_page(e),
    }
}

pub struct DemarcheLine {
    pub id: String,
    pub title: String,
    pub status: String,
    pub status_label: &'static str,
    pub revoked: String,
    pub reason: &'static str,
    pub checked: bool,
}

pub struct TimelineLine {
    pub when: String,
    pub what: String,
}

#[derive(Template)]
#[template(path = "mandate.html")]
struct MandatePage {
    nav: Nav,
    id: String,
    usager_id: String,
    usager_name: String,
    status: String,
    status_label: &'static str,
    duration_label: &'static str,
    created: String,
    activated: String,
    expires: String,
    revoked: String,
    verification_url: String,
    demarches: Vec<DemarcheLine>,
    timeline: Vec<TimelineLine>,
    can_revoke: bool,
    can_renew: bool,
    done: &'static str,
    errors: Errors,
    scope: String,
    reasons: Vec<Choice>,
    renew_durations: Vec<Choice>,
}

const REASONS: [(&str, &str); 4] = [
    ("usager_request", "À la demande de l'usager"),
    ("deceased", "Décès de l'usager"),
    ("error", "Mandat créé par erreur"),
    ("other", "Autre motif"),
];

async fn timeline(
    state: &AppState,
    caller: &crate::service::Caller,
    id: Uuid,
) -> Result<Vec<TimelineLine>, AppError> {
    Ok(mandates::timeline(state, caller, id)
        .await?
        .iter()
        .map(|e| TimelineLine {
            when: view::datetime_fr(e["ts"].as_str().unwrap_or("")),
            what: view::action_fr(e["action"].as_str().unwrap_or("")),
        })
        .collect())
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page and what the failed form carried"
)]
async fn mandate_page(
    state: &AppState,
    session: &Session,
    nav: Nav,
    id: Uuid,
    rid: Option<String>,
    done: &'static str,
    errors: Errors,
    form: Option<&FormData>,
) -> Response {
    let result = async {
        let caller = caller_for(session, None, rid.clone())?;
        let m: Mandate = mandates::get(state, &caller, id).await?;
        let usager = read_usager(state, session, m.usager_id, rid)
            .await
            .map(|(_, u)| format!("{} {}", u.given_name, u.family_name))
            .unwrap_or_default();
        let timeline = timeline(state, &caller, id).await?;
        Ok::<_, AppError>((m, usager, timeline))
    }
    .await;
    let (m, usager_name, timeline) = match result {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let chosen = form.map(|f| f.all("demarches")).unwrap_or_default();
    let demarches = m
        .demarches
        .iter()
        .map(|d| DemarcheLine {
            title: view::demarche_title(&d.id),
            status_label: view::demarche_status_fr(&d.status),
            revoked: view::opt_date(d.revoked_at),
            reason: d.revoked_reason.as_deref().map_or("", view::reason_fr),
            checked: chosen.contains(&d.id),
            id: d.id.clone(),
            status: d.status.clone(),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &MandatePage {
            nav: nav.at("desk"),
            id: m.id.to_string(),
            usager_id: m.usager_id.to_string(),
            usager_name,
            status_label: view::mandate_status_fr(&m.status),
            duration_label: view::duration_fr(&m.duration),
            created: view::datetime(m.created_at),
            activated: view::opt_date(m.activated_at),
            expires: view::opt_date(m.expires_at),
            revoked: view::opt_date(m.revoked_at),
            verification_url: m.verification_url.clone(),
            demarches,
            timeline,
            can_revoke: m.status == "active",
            can_renew: m.status == "active" || m.status == "expired",
            status: m.status,
            done,
            errors,
            scope: form.map_or_else(|| "all".to_owned(), |f| f.get("portee").to_owned()),
            reasons: REASONS
                .iter()
                .map(|(value, label)| Choice {
                    value,
                    label,
                    checked: form.is_some_and(|f| f.get("motif") == *value),
                })
                .collect(),
            renew_durations: durations(form.map_or("", |f| f.get("duree"))),
        },
    )
}

async fn show(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let done = match q.get("fait") {
        "active" => "Le consentement est enregistré : le mandat est actif.",
        "revocation" => "La révocation est enregistrée.",
        _ => "",
    };
    mandate_page(
        &state,
        &session,
        nav,
        id,
        rid,
        done,
        Errors::default(),
        None,
    )
    .await
}

async fn revoke(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    mut f: PageForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let action = format!("/mandats/{id}/revoquer");
    let back = format!("/mandats/{id}");
    if let Err(r) = apply_step_up(&state, &mut f, &action, &back, rid.clone()).await {
        return r;
    }
    let mut errors = Errors::default();
    let reason = RevocationReason::parse_requested(f.data.get("motif"));
    if reason.is_none() {
        errors.add("motif", "Choisissez le motif de la révocation.");
    }
    let demarches = if f.data.get("portee") == "some" {
        let chosen = f.data.all("demarches");
        match parse_set(&chosen) {
            Some(set) => Some(set.iter().map(|d| d.as_str().to_owned()).collect()),
            None => {
                errors.add("demarches", "Cochez la ou les démarches à révoquer.");
                None
            }
        }
    } else {
        None
    };
    if f.data.get("confirmation") != "oui" {
        errors.add(
            "confirmation",
            "Cochez la case pour confirmer que l'usager a été informé.",
        );
    }
    let (Some(reason), true) = (reason, errors.is_empty()) else {
        return mandate_page(
            &state,
            &f.session,
            f.nav.clone(),
            id,
            rid,
            "",
            errors,
            Some(&f.data),
        )
        .await;
    };
    let caller = match caller_for(&f.session, None, rid.clone()) {
        Ok(c) => c,
        Err(AppError::StepUpRequired) => return step_up_page(&f, &action, &back, None),
        Err(e) => return error_page(e),
    };
    match mandates::revoke(&state, &caller, id, demarches, reason).await {
        Ok(_) => see_other(&format!("/mandats/{id}?fait=revocation")),
        Err(AppError::Validation(list)) => {
            for e in &list {
                errors.add("demarches", &e.message);
            }
            mandate_page(
                &state,
                &f.session,
                f.nav.clone(),
                id,
                rid,
                "",
                errors,
                Some(&f.data),
            )
            .await
        }
        Err(AppError::StepUpRequired) => step_up_page(&f, &action, &back, None),
        Err(e) => error_page(e),
    }
}

async fn renew(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    mut f: PageForm,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let action = format!("/mandats/{id}/renouveler");
    let back = format!("/mandats/{id}");
    if let Err(r) = apply_step_up(&state, &mut f, &action, &back, rid.clone()).await {
        return r;
    }
    let mut errors = Errors::default();
    let duration = MandateDuration::parse(f.data.get("duree"));
    if duration.is_none() {
        errors.add("duree", "Choisissez la durée du nouveau mandat.");
    }
    let channel = ConsentChannel::parse(f.data.get("canal"));
    if channel.is_none() {
        errors.add("canal", "Choisissez comment l'usager donne son accord.");
    }
    let (Some(duration), Some(channel)) = (duration, channel) else {
        return mandate_page(
            &state,
            &f.session,
            f.nav.clone(),
            id,
            rid,
            "",
            errors,
            Some(&f.data),
        )
        .await;
    };
    let caller = match caller_for(&f.session, None, rid.clone()) {
        Ok(c) => c,
        Err(AppError::StepUpRequired) => return step_up_page(&f, &action, &back, None),
        Err(e) => return error_page(e),
    };
    match mandates::renew(&state, &caller, id, duration, None, channel).await {
        Ok(m) => see_other(&format!("/mandats/{}/consentement", m.id)),
        Err(AppError::Validation(list)) => {
            for e in &list {
                errors.add("canal", &e.message);
            }
            mandate_page(
                &state,
                &f.session,
                f.nav.clone(),
                id,
                rid,
                "",
                errors,
                Some(&f.data),
            )
            .await
        }
        Err(AppError::StepUpRequired) => step_up_page(&f, &action, &back, None),
        Err(e) => error_page(e),
    }
}
