//! The authorization endpoint's decision: validate the request (errors before the redirect
//! URI is known are shown, never redirected), then — for the logged-in aidant acting for an
//! organisation — list what active mandates cover, or issue the code at once when the request
//! names the usager (`login_hint`) and fixes the démarche.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::clients::{self, Client};
use super::{CODE_TTL_SECS, SCOPES, demarche_of_scope, pairwise, token_hash};
use crate::audit::{self, Details, NewEvent};
use crate::authz::{Action, Facts, Resource};
use crate::domain::demarche::{DemarcheId, catalogue};
use crate::error::AppError;
use crate::service::pii::open_usager;
use crate::service::{Caller, Services};
use crate::store::{OidcCandidate, OidcCodeRow};

/// The request's parameters, as received (query or form).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }
}

/// The parameters of the authorization request a page carries from screen to screen.
pub const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "prompt",
    "claims",
];

/// Why a request cannot go on.
#[derive(Debug)]
pub enum Rejection {
    /// Shown on a page (client or redirect URI not established: RFC 6749 §4.1.2.1).
    Page { title: String, message: String },
    /// Back to the client with `error`, `error_description` and `state`.
    Redirect(String),
    /// A failure of the service itself.
    Error(AppError),
}

impl From<AppError> for Rejection {
    fn from(e: AppError) -> Self {
        Self::Error(e)
    }
}

impl From<crate::store::StoreError> for Rejection {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Error(e.into())
    }
}

fn page(title: &str, message: &str) -> Rejection {
    Rejection::Page {
        title: title.into(),
        message: message.into(),
    }
}

/// `redirect_uri` with the query parameters added.
pub fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct Request {
    pub client: Client,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    /// The scopes, normalised (space-separated, known ones only).
    pub scope: String,
    /// The démarches the request allows (fixed by a `demarche:` scope or `claims`), if it
    /// restricts them; always within the client's.
    pub demarches: Option<Vec<String>>,
    pub login_hint: Option<String>,
    /// `prompt=select_account`: the screens are shown even with a hint.
    pub select_account: bool,
    /// `prompt=none`: no screen may be shown.
    pub no_prompt: bool,
    /// The original parameters (for the screens' hidden fields).
    pub params: Vec<(String, String)>,
}

impl Request {
    pub fn error(&self, error: &str, description: &str) -> Rejection {
        Rejection::Redirect(with_query(
            &self.redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &self.state),
            ],
        ))
    }

    fn allows(&self, demarche: &str) -> bool {
        self.client.allows_demarche(demarche)
            && self
                .demarches
                .as_ref()
                .is_none_or(|ds| ds.iter().any(|d| d == demarche))
    }

    /// The one démarche the request fixes, if it fixes one.
    fn fixed_demarche(&self) -> Option<&str> {
        match self.demarches.as_deref() {
            Some([one]) => Some(one.as_str()),
            _ => None,
        }
    }
}

/// The démarches of a FranceConnect-style `claims` parameter (`rep_scope` values).
pub fn claims_demarches(claims: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(claims).ok()?;
    let values = v
        .get("id_token")?
        .get("rep_scope")?
        .get("values")?
        .as_array()?;
    Some(
        values
            .iter()
            .filter_map(|x| x.as_str())
            .map(|s| demarche_of_scope(s).unwrap_or(s).to_owned())
            .collect(),
    )
}

/// Validates an authorization request (no session needed).
pub async fn validate(s: &Services, params: &Params) -> Result<Request, Rejection> {
    let client = match params.get("client_id") {
        Some(id) if params.count("client_id") == 1 => {
            let mut tx = s.store.begin_read().await?;
            clients::find(tx.as_mut(), id).await?
        }
        _ => None,
    };
    check(client, params)
}

/// The rules of an authorization request once its client is looked up (`None`: no such
/// active client): every parameter of the query is untrusted input, so this is pure and
/// fuzzed (`fuzz/fuzz_targets/oidc_request.rs`). A redirect only ever goes to one of the
/// client's registered URIs.
pub fn check(client: Option<Client>, params: &Params) -> Result<Request, Rejection> {
    for name in CARRIED {
        if params.count(name) > 1 {
            return Err(page(
                "Demande invalide",
                "La demande du service partenaire répète un paramètre : elle ne peut pas être traitée.",
            ));
        }
    }
    let unknown_client = || {
        page(
            "Service partenaire inconnu",
            "Le service qui vous a envoyé ici n'est pas enregistré auprès de mandat. Revenez sur le site du service et réessayez, ou prévenez son équipe.",
        )
    };
    let client = client.ok_or_else(unknown_client)?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|u| client.redirect_uris().any(|r| r == *u))
        .ok_or_else(|| {
            page(
                "Adresse de retour non reconnue",
                "L'adresse de retour demandée n'est pas enregistrée pour ce service partenaire : par sécurité, mandat ne vous y renvoie pas. Prévenez l'équipe du service.",
            )
        })?
        .to_owned();
    let state = params.get("state").unwrap_or("").to_owned();
    let mut req = Request {
        client,
        redirect_uri,
        state,
        nonce: String::new(),
        code_challenge: String::new(),
        scope: String::new(),
        demarches: None,
        login_hint: params
            .get("login_hint")
            .filter(|h| !h.is_empty() && h.len() <= 200)
            .map(str::to_owned),
        select_account: false,
        no_prompt: false,
        params: params
            .0
            .iter()
            .filter(|(k, _)| CARRIED.contains(&k.as_str()))
            .cloned()
            .collect(),
    };
    if params.get("request").is_some() {
        return Err(req.error("request_not_supported", "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(req.error("request_uri_not_supported", "request_uri is not supported"));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(req.error("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(req.error(
                "unsupported_response_type",
                "only the code response type is supported",
            ));
        }
    }
    if req.state.is_empty() || req.state.len() > 500 {
        return Err(req.error(
            "invalid_request",
            "state is required (at most 500 characters)",
        ));
    }
    let nonce = params.get("nonce").unwrap_or("");
    if nonce.is_empty() || nonce.len() > 500 {
        return Err(req.error(
            "invalid_request",
            "nonce is required (at most 500 characters)",
        ));
    }
    req.nonce = nonce.to_owned();
    let challenge = params.get("code_challenge").unwrap_or("");
    if params.get("code_challenge_method") != Some("S256")
        || challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(req.error(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256",
        ));
    }
    req.code_challenge = challenge.to_owned();
    let scope = params.get("scope").unwrap_or("");
    let mut scopes: Vec<&str> = Vec::new();
    let mut demarche_scope: Option<String> = None;
    for sc in scope.split(' ').filter(|x| !x.is_empty()) {
        if let Some(d) = demarche_of_scope(sc) {
            if DemarcheId::parse(d).is_none() || !req.client.allows_demarche(d) {
                return Err(req.error("invalid_scope", "unknown or not allowed démarche scope"));
            }
            if demarche_scope.as_deref().is_some_and(|prev| prev != d) {
                return Err(req.error("invalid_scope", "at most one démarche scope"));
            }
            demarche_scope = Some(d.to_owned());
        } else if !SCOPES.contains(&sc) {
            return Err(req.error("invalid_scope", "unknown scope"));
        }
        if !scopes.contains(&sc) {
            scopes.push(sc);
        }
    }
    if !scopes.contains(&"openid") {
        return Err(req.error("invalid_scope", "the openid scope is required"));
    }
    req.scope = scopes.join(" ");
    let mut demarches = demarche_scope.map(|d| vec![d]);
    if let Some(claims) = params.get("claims") {
        let Some(from_claims) = claims_demarches(claims) else {
            return Err(req.error("invalid_request", "claims is not understood"));
        };
        if from_claims
            .iter()
            .any(|d| DemarcheId::parse(d).is_none() || !req.client.allows_demarche(d))
        {
            return Err(req.error("invalid_scope", "unknown or not allowed démarche in claims"));
        }
        demarches = Some(match demarches {
            Some(fixed) => fixed
                .into_iter()
                .filter(|d| from_claims.contains(d))
                .collect(),
            None => from_claims,
        });
        if demarches.as_ref().is_some_and(Vec::is_empty) {
            return Err(req.error("invalid_scope", "no démarche left to choose from"));
        }
    }
    req.demarches = demarches;
    for p in params.get("prompt").unwrap_or("").split(' ') {
        match p {
            "select_account" | "consent" => req.select_account = true,
            "none" => req.no_prompt = true,
            "login" | "" => {}
            _ => return Err(req.error("invalid_request", "unsupported prompt value")),
        }
    }
    Ok(req)
}

/// One usager offered on the first screen (by the mandate that covers them).
#[derive(Debug, Clone)]
pub struct UsagerChoice {
    pub mandate_id: Uuid,
    pub name: String,
    pub birthdate: String,
    pub demarches: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DemarcheChoice {
    pub id: String,
    pub title: String,
}

/// What the aidant picked so far.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub mandate: Option<Uuid>,
    pub demarche: Option<String>,
    pub cancel: bool,
}

/// The next step of the flow.
#[derive(Debug)]
pub enum Step {
    /// Back to the client with the code (or an error).
    Redirect(String),
    ChooseUsager(Vec<UsagerChoice>),
    ChooseDemarche {
        mandate_id: Uuid,
        usager: String,
        demarches: Vec<DemarcheChoice>,
    },
}

fn title_of(id: &str) -> String {
    catalogue()
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| id.to_owned(), |d| d.title.clone())
}

/// Decides the next step for the aidant acting for `caller.organisation_id`.
pub async fn decide(
    s: &Services,
    caller: &Caller,
    auth_time: DateTime<Utc>,
    req: &Request,
    choice: &Choice,
) -> Result<Step, Rejection> {
    s.authz
        .authorize(
            &caller.principal,
            Action::MandateList,
            &Resource::Organisation(caller.organisation_id),
            &Facts::none(),
        )
        .map_err(AppError::from)?;
    if choice.cancel {
        return Err(req.error("access_denied", "the aidant cancelled the request"));
    }
    let now = s.clock.now();
    // A named usager and a fixed démarche: the code at once.
    if choice.mandate.is_none()
        && !req.select_account
        && let (Some(hint), Some(demarche)) = (&req.login_hint, req.fixed_demarche())
        && let Some(c) = hinted(s, caller, req, hint, demarche, now).await?
    {
        return issue(s, caller, auth_time, req, &c, true).await;
    }
    let candidates: Vec<OidcCandidate> = {
        let mut tx = s.store.begin_read().await?;
        tx.oidc_candidates(caller.organisation_id, now, 2000)
            .await?
            .into_iter()
            .filter(|c| req.allows(&c.demarche))
            .collect()
    };
    let pick = |mandate: Uuid, demarche: &str| {
        candidates
            .iter()
            .find(|c| c.mandate_id == mandate && c.demarche == demarche)
            .cloned()
    };
    if let Some(mandate) = choice.mandate {
        let offered: Vec<&OidcCandidate> = candidates
            .iter()
            .filter(|c| c.mandate_id == mandate)
            .collect();
        if offered.is_empty() {
            return Err(Rejection::Error(AppError::NotFound));
        }
        let chosen = choice
            .demarche
            .as_deref()
            .or(req.fixed_demarche())
            .or_else(|| (offered.len() == 1).then(|| offered[0].demarche.as_str()));
        if let Some(d) = chosen {
            let c = pick(mandate, d).ok_or(Rejection::Error(AppError::NotFound))?;
            return issue(s, caller, auth_time, req, &c, false).await;
        }
        if req.no_prompt {
            return Err(req.error("interaction_required", "the aidant must choose"));
        }
        let usager = usager_labels(s, &[offered[0].usager_id])
            .await?
            .remove(&offered[0].usager_id)
            .map(|(n, _)| n)
            .unwrap_or_default();
        return Ok(Step::ChooseDemarche {
            mandate_id: mandate,
            usager,
            demarches: offered
                .iter()
                .map(|c| DemarcheChoice {
                    id: c.demarche.clone(),
                    title: title_of(&c.demarche),
                })
                .collect(),
        });
    }
    if req.no_prompt {
        return Err(req.error("interaction_required", "the aidant must choose"));
    }
    // First screen: one line per mandate.
    let mut by_mandate: Vec<(Uuid, Uuid, DateTime<Utc>, Vec<String>)> = Vec::new();
    for c in &candidates {
        match by_mandate.iter_mut().find(|m| m.0 == c.mandate_id) {
            Some(m) => m.3.push(title_of(&c.demarche)),
            None => by_mandate.push((
                c.mandate_id,
                c.usager_id,
                c.expires_at,
                vec![title_of(&c.demarche)],
            )),
        }
    }
    let ids: Vec<Uuid> = by_mandate.iter().map(|m| m.1).collect();
    let labels = usager_labels(s, &ids).await?;
    let mut choices: Vec<UsagerChoice> = by_mandate
        .into_iter()
        .filter_map(|(mandate_id, usager, expires_at, demarches)| {
            let (name, birthdate) = labels.get(&usager)?.clone();
            Some(UsagerChoice {
                mandate_id,
                name,
                birthdate,
                demarches,
                expires_at,
            })
        })
        .collect();
    choices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Step::ChooseUsager(choices))
}

/// The mandate démarche a `login_hint` names (a mandate id, or the pairwise `sub` this
/// client received), when the organisation holds it active.
async fn hinted(
    s: &Services,
    caller: &Caller,
    req: &Request,
    hint: &str,
    demarche: &str,
    now: DateTime<Utc>,
) -> Result<Option<OidcCandidate>, Rejection> {
    if !req.allows(demarche) {
        return Ok(None);
    }
    let mut tx = s.store.begin_read().await?;
    let mandate = match Uuid::parse_str(hint) {
        Ok(id) => tx.get_mandate(id).await?,
        Err(_) => match tx.oidc_subject(&req.client.row.sector, hint).await? {
            Some(usager) => {
                tx.covering_mandate(caller.organisation_id, usager, demarche, now)
                    .await?
            }
            None => None,
        },
    };
    let Some(m) = mandate.filter(|m| m.organisation_id == caller.organisation_id) else {
        return Ok(None);
    };
    let Some(expires_at) = tx.oidc_mandate_expiry(m.id, demarche, now).await? else {
        return Ok(None);
    };
    Ok(Some(OidcCandidate {
        mandate_id: m.id,
        usager_id: m.usager_id,
        expires_at,
        demarche: demarche.to_owned(),
    }))
}

/// "Family name Given names" and the birth date of visible usagers.
async fn usager_labels(
    s: &Services,
    ids: &[Uuid],
) -> Result<BTreeMap<Uuid, (String, String)>, Rejection> {
    let mut out = BTreeMap::new();
    let mut tx = s.store.begin_read().await?;
    for id in ids {
        if out.contains_key(id) {
            continue;
        }
        let Some(row) = tx.get_usager(*id).await? else {
            continue;
        };
        if row.erased_at.is_some() || row.archived_at.is_some() {
            continue;
        }
        let p = open_usager(&s.keyring, &row)?;
        let birthdate = chrono::NaiveDate::parse_from_str(&p.birthdate, "%Y-%m-%d").map_or_else(
            |_| p.birthdate.to_string(),
            |d| d.format("%d/%m/%Y").to_string(),
        );
        out.insert(
            *id,
            (
                format!("{} {}", p.family_name.as_str(), p.given_name.as_str()),
                birthdate,
            ),
        );
    }
    Ok(out)
}

/// Issues the code for one mandate démarche and returns the redirect to the client.
async fn issue(
    s: &Services,
    caller: &Caller,
    auth_time: DateTime<Utc>,
    req: &Request,
    c: &OidcCandidate,
    hinted: bool,
) -> Result<Step, Rejection> {
    s.authz
        .authorize(
            &caller.principal,
            Action::MandateRead,
            &Resource::Mandate {
                id: c.mandate_id,
                organisation: caller.organisation_id,
            },
            &Facts::none(),
        )
        .map_err(AppError::from)?;
    let now = s.clock.now();
    let code = crate::crypto::tokens::new_token().map_err(|e| AppError::Internal(e.into()))?;
    let code = secrecy::ExposeSecret::expose_secret(&code).to_owned();
    let sub = pairwise(s, "usager", &req.client.row.sector, c.usager_id)?;
    let mut tx = s.store.begin().await?;
    tx.insert_oidc_code(&OidcCodeRow {
        code_hash: token_hash(&code),
        client_id: req.client.id(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        scope: req.scope.clone(),
        aidant_id: caller.aidant_id,
        organisation_id: caller.organisation_id,
        usager_id: c.usager_id,
        mandate_id: c.mandate_id,
        demarche: c.demarche.clone(),
        auth_time,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(CODE_TTL_SECS),
        used_at: None,
    })
    .await?;
    tx.remember_oidc_subject(&req.client.row.sector, &sub, c.usager_id)
        .await?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            caller.actor(),
            Details::OidcAuthorized {
                client_id: req.client.id().to_string(),
                demarche: c.demarche.clone(),
                hinted,
            },
        )
        .organisation(caller.organisation_id)
        .usager(c.usager_id)
        .mandate(c.mandate_id)
        .request_id(caller.request_id.clone()),
    )
    .await?;
    s.commit(tx).await?;
    Ok(Step::Redirect(with_query(
        &req.redirect_uri,
        &[("code", &code), ("state", &req.state)],
    )))
}

/// Where `/oidc/end-session` sends the browser back: the `post_logout_redirect_uri` when it
/// is registered for the client (named by `client_id` or the `id_token_hint`'s audience),
/// with `state`; `None` when none was asked. An unregistered URI is refused on a page.
pub async fn end_session_target(
    s: &Services,
    params: &Params,
) -> Result<Option<String>, Rejection> {
    let Some(uri) = params.get("post_logout_redirect_uri") else {
        return Ok(None);
    };
    let refused = || {
        page(
            "Adresse de retour non reconnue",
            "L'adresse de retour demandée n'est pas enregistrée pour ce service partenaire : par sécurité, mandat ne vous y renvoie pas.",
        )
    };
    let from_hint = match params.get("id_token_hint") {
        Some(hint) => Some(
            super::signing::audience_of(s, hint)
                .await?
                .ok_or_else(refused)?,
        ),
        None => None,
    };
    let client_id = match (params.get("client_id"), from_hint.as_deref()) {
        (Some(a), Some(b)) if a != b => return Err(refused()),
        (Some(a), _) => a.to_owned(),
        (None, Some(b)) => b.to_owned(),
        (None, None) => return Err(refused()),
    };
    let client = {
        let mut tx = s.store.begin_read().await?;
        clients::find(tx.as_mut(), &client_id).await?
    }
    .ok_or_else(refused)?;
    if !client.post_logout_redirect_uris().any(|u| u == uri) {
        return Err(refused());
    }
    Ok(Some(match params.get("state") {
        Some(state) => with_query(uri, &[("state", state)]),
        None => uri.to_owned(),
    }))
}
