//! `/dpo`: audit search with filters and the detail of each event, the integrity check,
//! exports (CSV, JSONL; a step-up is asked inline) and the retention policy in force.

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use super::form::{Errors, FormData, apply_step_up, step_up_page};
use super::{Nav, PageForm, PageSession, error_page, page, see_other, view};
use crate::app::AppState;
use crate::domain::audit_query::{AuditQuery, RawAuditQuery};
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::service::Ctx;
use crate::service::audit::{self, ExportFormat};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dpo", get(show))
        .route("/dpo/verification", post(verify))
        .route("/dpo/export", post(export))
}

const FILTERS: [&str; 7] = [
    "since",
    "until",
    "action",
    "actor",
    "usager",
    "mandate",
    "organisation",
];

pub struct EventLine {
    pub index: String,
    pub when: String,
    pub action: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "dpo.html")]
struct DpoPage {
    nav: Nav,
    filters: Vec<(&'static str, &'static str, &'static str, String)>,
    errors: Errors,
    events: Vec<EventLine>,
    next_cursor: Option<String>,
    next_query: String,
    carried: Vec<(String, String)>,
    verified: Option<(bool, String)>,
    retention: Vec<(&'static str, i64)>,
}

/// The page is the DPO's (a référent reads their organisation's events through the API).
fn dpo_only(session: &Session) -> Result<(), AppError> {
    if session.is_dpo {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A date of the form (`AAAA-MM-JJ`) as the start or end of that day, or RFC 3339 as is.
fn day_bound(v: &str, end: bool) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
        return Some(if end {
            format!("{v}T23:59:59.999999Z")
        } else {
            format!("{v}T00:00:00Z")
        });
    }
    Some(v.to_owned())
}

fn raw_query(f: &FormData) -> RawAuditQuery {
    RawAuditQuery {
        since: day_bound(f.get("since"), false),
        until: day_bound(f.get("until"), true),
        action: f.opt("action"),
        actor: f.opt("actor"),
        usager: f.opt("usager"),
        mandate: f.opt("mandate"),
        organisation: f.opt("organisation"),
    }
}

async fn show(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(e) = dpo_only(&session) {
        return error_page(e);
    }
    let f = FormData::parse(raw.unwrap_or_default().as_bytes());
    let mut errors = Errors::default();
    let mut events = vec![];
    let mut next_cursor = None;
    match AuditQuery::parse(&raw_query(&f)) {
        Ok(q) => match audit::search(
            &state,
            &ctx(&session, None),
            None,
            &q,
            f.opt("cursor").as_deref(),
            50,
        )
        .await
        {
            Ok(p) => {
                next_cursor = p.next_cursor;
                events = p
                    .items
                    .iter()
                    .map(|e| EventLine {
                        index: e["index"].to_string(),
                        when: view::datetime_fr(e["ts"].as_str().unwrap_or("")),
                        action: e["action"].as_str().unwrap_or("").to_owned(),
                        actor: format!(
                            "{} {}",
                            e["actor"]["kind"].as_str().unwrap_or(""),
                            e["actor"]["id"].as_str().unwrap_or("")
                        ),
                        detail: serde_json::to_string_pretty(e).unwrap_or_default(),
                    })
                    .collect();
            }
            Err(AppError::Validation(list)) => errors.0.extend(list),
            Err(e) => return error_page(e),
        },
        Err(list) => errors.0.extend(list),
    }
    let carried: Vec<(String, String)> = FILTERS
        .iter()
        .filter_map(|k| f.opt(k).map(|v| ((*k).to_owned(), v)))
        .collect();
    let mut next_query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(carried.iter())
        .finish();
    if let Some(c) = &next_cursor {
        if !next_query.is_empty() {
            next_query.push('&');
        }
        next_query.push_str("cursor=");
        next_query.push_str(c);
    }
    let verified = match f.get("verification") {
        "ok" => Some((
            true,
            format!(
                "Journal intègre : {} entrées vérifiées, aucune modification détectée.",
                f.get("entrees")
            ),
        )),
        "echec" => Some((
            false,
            format!(
                "Journal altéré : la vérification échoue à l'entrée n° {}. Prévenez l'administrateur.",
                f.get("entree")
            ),
        )),
        _ => None,
    };
    let r = &state.retention;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &DpoPage {
            nav: nav.at("dpo"),
            filters: vec![
                ("since", "Depuis le", "date", f.get("since").to_owned()),
                ("until", "Jusqu'au", "date", f.get("until").to_owned()),
                ("action", "Action", "text", f.get("action").to_owned()),
                (
                    "actor",
                    "Identifiant de l'auteur",
                    "text",
                    f.get("actor").to_owned(),
                ),
                (
                    "usager",
                    "Identifiant de l'usager",
                    "text",
                    f.get("usager").to_owned(),
                ),
                (
                    "mandate",
                    "Identifiant du mandat",
                    "text",
                    f.get("mandate").to_owned(),
                ),
                (
                    "organisation",
                    "Identifiant de la structure",
                    "text",
                    f.get("organisation").to_owned(),
                ),
            ],
            errors,
            events,
            next_cursor,
            next_query,
            carried,
            verified,
            retention: vec![
                ("Codes de consentement", r.consent_challenge_days),
                ("Journal des accès", r.access_log_days),
                ("Preuves des mandats", r.mandate_evidence_days),
                (
                    "Identité des usagers (active)",
                    r.usager_identity_active_days,
                ),
                (
                    "Identité des usagers (archivée)",
                    r.usager_identity_archive_days,
                ),
            ],
        },
    )
}

fn ctx(session: &Session, rid: Option<String>) -> Ctx {
    Ctx::of(session, rid)
}

async fn verify(State(state): State<AppState>, RequestId(rid): RequestId, f: PageForm) -> Response {
    if let Err(e) = dpo_only(&f.session) {
        return error_page(e);
    }
    match audit::verify(&state, &ctx(&f.session, rid), &[]).await {
        Ok(r) if r.ok => see_other(&format!("/dpo?verification=ok&entrees={}", r.entries)),
        Ok(r) => see_other(&format!(
            "/dpo?verification=echec&entree={}",
            r.first_bad_index.unwrap_or(-1)
        )),
        Err(e) => error_page(e),
    }
}

async fn export(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    mut f: PageForm,
) -> Response {
    if let Err(r) = apply_step_up(&state, &mut f, "/dpo/export", "/dpo", rid.clone()).await {
        return r;
    }
    if let Err(e) = dpo_only(&f.session) {
        return error_page(e);
    }
    let Some(format) = ExportFormat::parse(f.data.get("format")) else {
        return error_page(AppError::Validation(vec![crate::domain::FieldError::new(
            "format",
            "Choisissez le format CSV ou JSONL.",
        )]));
    };
    let query = match AuditQuery::parse(&raw_query(&f.data)) {
        Ok(q) => q,
        Err(list) => return error_page(AppError::Validation(list)),
    };
    let export = match audit::export(&state, &ctx(&f.session, rid), &query, format).await {
        Ok(e) => e,
        Err(AppError::StepUpRequired) => return step_up_page(&f, "/dpo/export", "/dpo", None),
        Err(e) => return error_page(e),
    };
    let stream = futures::stream::unfold(export.chunks, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (c.map(Bytes::from).map_err(std::io::Error::other), rx))
    });
    let (ctype, name) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "journal-audit.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "journal-audit.csv"),
    };
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}
