//! The aidant's desk: `/espace-aidant` (organisation switcher, usager search, the lists of
//! mandates), `/usagers/nouveau` and `/usagers/{id}`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::form::{Errors, FormData};
use super::{Nav, PageForm, PageSession, error_page, page, see_other, view};
use crate::app::AppState;
use crate::domain::mandate::MandateStatus;
use crate::domain::usager::{NewUsager, UsagerInput};
use crate::error::AppError;
use crate::http::auth::Session;
use crate::http::extract::RequestId;
use crate::http::routes::usagers::caller_for;
use crate::service::accounts;
use crate::service::mandates::{self, ListQuery, Mandate};
use crate::service::usagers::{self, Caller, Usager};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/espace-aidant", get(desk))
        .route("/espace-aidant/structure", post(switch))
        .route("/usagers/nouveau", get(new_usager_form).post(new_usager))
        .route("/usagers/{id}", get(usager))
}

/// One mandate in a list.
pub struct MandateLine {
    pub id: String,
    pub usager_id: String,
    pub status: String,
    pub status_label: &'static str,
    pub demarches: String,
    pub duration: &'static str,
    pub created: String,
    pub expires: String,
}

impl From<&Mandate> for MandateLine {
    fn from(m: &Mandate) -> Self {
        let ids: Vec<String> = m
            .demarches
            .iter()
            .filter(|d| d.status != "revoked")
            .map(|d| d.id.clone())
            .collect();
        Self {
            id: m.id.to_string(),
            usager_id: m.usager_id.to_string(),
            status: m.status.clone(),
            status_label: view::mandate_status_fr(&m.status),
            demarches: view::demarche_list_fr(&ids),
            duration: view::duration_fr(&m.duration),
            created: view::date(m.created_at),
            expires: view::opt_date(m.expires_at),
        }
    }
}

pub struct UsagerLine {
    pub id: String,
    pub name: String,
    pub birthdate: String,
}

impl From<&Usager> for UsagerLine {
    fn from(u: &Usager) -> Self {
        Self {
            id: u.id.to_string(),
            name: format!("{} {}", u.given_name, u.family_name),
            birthdate: birthdate_fr(&u.birthdate),
        }
    }
}

/// `1950-03-14` → `14/03/1950`.
pub fn birthdate_fr(d: &str) -> String {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| d.to_owned())
}

#[derive(Template)]
#[template(path = "desk.html")]
struct Desk {
    nav: Nav,
    q: String,
    searched: bool,
    q_error: Option<String>,
    results: Vec<UsagerLine>,
    active: Vec<MandateLine>,
    expiring: Vec<MandateLine>,
    pending: Vec<MandateLine>,
    switched: bool,
}

async fn list_of(
    state: &AppState,
    caller: &Caller,
    status: MandateStatus,
    expiring_within_days: Option<i64>,
) -> Result<Vec<MandateLine>, AppError> {
    let q = ListQuery {
        status: Some(status),
        expiring_within_days,
        limit: 20,
        ..ListQuery::default()
    };
    let (items, _) = mandates::list(state, caller, &q).await?;
    Ok(items.iter().map(MandateLine::from).collect())
}

/// The account acting for its current organisation, or the page saying it has none.
fn member_caller(s: &Session, rid: Option<String>) -> Result<Caller, AppError> {
    caller_for(s, None, rid)
}

async fn desk(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RequestId(rid): RequestId,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let caller = match member_caller(&session, rid.clone()) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let mut p = Desk {
        nav: nav.at("desk"),
        q: q.get("q").chars().take(200).collect(),
        searched: false,
        q_error: None,
        results: vec![],
        active: vec![],
        expiring: vec![],
        pending: vec![],
        switched: q.get("fait") == "structure",
    };
    if q.0.iter().any(|(k, _)| k == "q") {
        p.searched = true;
        let searcher = match member_caller(&session, rid) {
            Ok(c) => c,
            Err(e) => return error_page(e),
        };
        match usagers::search(&state, &searcher, &p.q, 20).await {
            Ok(found) => p.results = found.iter().map(UsagerLine::from).collect(),
            Err(AppError::Validation(e)) => {
                p.q_error = e.into_iter().next().map(|e| e.message);
            }
            Err(e) => return error_page(e),
        }
    }
    let lists = async {
        Ok::<_, AppError>((
            list_of(&state, &caller, MandateStatus::Active, None).await?,
            list_of(&state, &caller, MandateStatus::Active, Some(30)).await?,
            list_of(&state, &caller, MandateStatus::PendingConsent, None).await?,
        ))
    };
    match lists.await {
        Ok((a, e, pe)) => {
            p.active = a;
            p.expiring = e;
            p.pending = pe;
        }
        Err(e) => return error_page(e),
    }
    let status = if p.q_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page(status, &p)
}

async fn switch(State(state): State<AppState>, RequestId(rid): RequestId, f: PageForm) -> Response {
    let Ok(org) = Uuid::try_parse(f.data.get("organisation_id")) else {
        return error_page(AppError::NotFound);
    };
    match accounts::switch_organisation(&state, &f.session, org, rid).await {
        Ok(_) => see_other("/espace-aidant?fait=structure"),
        Err(e) => error_page(e),
    }
}

#[derive(Template)]
#[template(path = "usager_new.html")]
struct NewUsagerPage {
    nav: Nav,
    given_name: String,
    family_name: String,
    birthdate: String,
    birthplace: String,
    phone: String,
    email: String,
    identity_check: String,
    errors: Errors,
}

async fn new_usager_form(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
) -> Response {
    if let Err(e) = member_caller(&session, None).and_then(|c| usagers::may_register(&state, &c)) {
        return error_page(e);
    }
    page(
        StatusCode::OK,
        &NewUsagerPage {
            nav: nav.at("desk"),
            given_name: String::new(),
            family_name: String::new(),
            birthdate: String::new(),
            birthplace: String::new(),
            phone: String::new(),
            email: String::new(),
            identity_check: "document".into(),
            errors: Errors::default(),
        },
    )
}

async fn new_usager(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    f: PageForm,
) -> Response {
    let caller = match member_caller(&f.session, rid) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let d = &f.data;
    let input = NewUsager::parse(
        &UsagerInput {
            given_name: d.get("given_name"),
            family_name: d.get("family_name"),
            birthdate: d.get("birthdate"),
            birthplace: Some(d.get("birthplace")),
            phone: Some(d.get("phone")),
            email: Some(d.get("email")),
            identity_check: d.get("identity_check"),
        },
        state.clock.now().date_naive(),
    );
    let again = |errors: Vec<crate::domain::FieldError>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewUsagerPage {
                nav: f.nav.clone().at("desk"),
                given_name: d.get("given_name").to_owned(),
                family_name: d.get("family_name").to_owned(),
                birthdate: d.get("birthdate").to_owned(),
                birthplace: d.get("birthplace").to_owned(),
                phone: d.get("phone").to_owned(),
                email: d.get("email").to_owned(),
                identity_check: d.get("identity_check").to_owned(),
                errors: Errors(errors),
            },
        )
    };
    let input = match input {
        Ok(i) => i,
        Err(errors) => return again(errors),
    };
    match usagers::create(&state, &caller, input, None).await {
        Ok(crate::service::idempotency::Replayable::Fresh(u)) => {
            see_other(&format!("/usagers/{}?fait=cree", u.id))
        }
        Ok(crate::service::idempotency::Replayable::Replay { .. }) => see_other("/espace-aidant"),
        Err(AppError::Validation(errors)) => again(errors),
        Err(e) => error_page(e),
    }
}

#[derive(Template)]
#[template(path = "usager.html")]
struct UsagerPage {
    nav: Nav,
    u: UsagerLine,
    phone: String,
    email: String,
    birthplace: String,
    identity_check: &'static str,
    created: bool,
    pending: Vec<MandateLine>,
    active: Vec<MandateLine>,
    ended: Vec<MandateLine>,
}

/// The usager of the caller's organisation (audited read), as the API reads it.
pub async fn read_usager(
    state: &AppState,
    session: &Session,
    id: Uuid,
    rid: Option<String>,
) -> Result<(Caller, Usager), AppError> {
    let caller = caller_for(session, None, rid)?;
    let u = usagers::get(state, &caller, id).await?;
    Ok((caller, u))
}

async fn usager(
    State(state): State<AppState>,
    PageSession { session, nav }: PageSession,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let Ok(id) = Uuid::try_parse(&id) else {
        return error_page(AppError::NotFound);
    };
    let (_, u) = match read_usager(&state, &session, id, rid.clone()).await {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    let lister = match member_caller(&session, rid) {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let query = ListQuery {
        usager_id: Some(id),
        limit: 100,
        ..ListQuery::default()
    };
    let items = match mandates::list(&state, &lister, &query).await {
        Ok((items, _)) => items,
        Err(e) => return error_page(e),
    };
    let lines: Vec<MandateLine> = items.iter().map(MandateLine::from).collect();
    let (mut pending, mut active, mut ended) = (vec![], vec![], vec![]);
    for l in lines {
        match l.status.as_str() {
            "pending_consent" => pending.push(l),
            "active" => active.push(l),
            _ => ended.push(l),
        }
    }
    page(
        StatusCode::OK,
        &UsagerPage {
            nav: nav.at("desk"),
            phone: u.phone.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            birthplace: u.birthplace.clone().unwrap_or_default(),
            identity_check: view::identity_check_fr(&u.identity_check),
            u: UsagerLine::from(&u),
            created: q.get("fait") == "cree",
            pending,
            active,
            ended,
        },
    )
}
