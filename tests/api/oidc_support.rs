//! Fixtures of the OpenID Connect tests: an organisation with a logged-in aidant, usagers
//! under active mandates, registered clients, and a browser that follows the authorize
//! redirects by hand.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandat::service::Caller;
use mandat::service::oidc::clients::{self, AuthMethod, NewClient};
use uuid::Uuid;

use crate::common::{Account, TestApp};
use crate::mandates_support::{active_mandate, usager};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const LOGOUT: &str = "http://127.0.0.1:9/bye";

pub struct Desk {
    pub org: Uuid,
    pub aidant: Account,
    pub browser: reqwest::Client,
    pub caller: Caller,
}

/// An organisation (every démarche allowed) and a logged-in aidant of it.
pub async fn desk(app: &TestApp) -> Desk {
    let org = app.org("France Services Roubaix").await;
    let email = format!("aidant-{}@exemple.fr", Uuid::now_v7().simple());
    let aidant = app.member(&email, org, "aidant").await;
    let browser = app.login(&aidant).await;
    let caller = Caller::member(aidant.id, org);
    Desk {
        org,
        aidant,
        browser,
        caller,
    }
}

/// A usager of the desk's organisation with an active mandate for `demarches`.
pub async fn mandate(app: &TestApp, d: &Desk, demarches: &[&str]) -> (Uuid, Uuid) {
    let u = usager(app, &d.caller, None).await;
    let m = active_mandate(app, &d.caller, u, demarches).await;
    (u, m.id)
}

pub struct Rp {
    pub client_id: String,
    pub secret: String,
}

pub async fn client(app: &TestApp, demarches: &[&str]) -> Rp {
    let c = clients::create(
        &app.state,
        None,
        NewClient {
            name: "Caisse d'allocations de test".into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![LOGOUT.into()],
            demarches: demarches.iter().map(|s| (*s).to_owned()).collect(),
            auth: AuthMethod::Secret,
            jwks: None,
        },
    )
    .await
    .unwrap();
    Rp {
        client_id: c.client_id,
        secret: c.client_secret.unwrap(),
    }
}

pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(mandat::crypto::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization request URL (path and query) with the given parameters on top of valid ones.
pub fn authorize_path(rp: &Rp, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), rp.client_id.clone()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("scope".into(), "openid profile demarche:social".into()),
        ("state".into(), "etat-123".into()),
        ("nonce".into(), "nonce-456".into()),
        ("code_challenge".into(), challenge.into()),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push(((*k).into(), (*v).into()));
        }
    }
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oidc/authorize?{q}")
}

/// The query parameters of a redirect `Location`.
pub fn location_params(res: &reqwest::Response) -> Vec<(String, String)> {
    let loc = res
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap();
    let url = url::Url::parse(loc).expect("an absolute redirect");
    url.query_pairs().into_owned().collect()
}

pub fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The code of a hinted authorize request (the screens skipped).
pub async fn code_for(app: &TestApp, d: &Desk, rp: &Rp, mandate: Uuid, challenge: &str) -> String {
    let res = d
        .browser
        .get(app.url(&authorize_path(
            rp,
            challenge,
            &[("login_hint", &mandate.to_string())],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let p = location_params(&res);
    assert_eq!(param(&p, "state"), Some("etat-123"));
    param(&p, "code").expect("a code").to_owned()
}

/// `POST /oidc/token` with `client_secret_basic`.
pub async fn token(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn userinfo(app: &TestApp, access: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The JSON payload of a JWS (no verification: the tests verify with a relying party).
pub fn jws_part(token: &str, i: usize) -> serde_json::Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token")
        .to_owned()
}

/// The status and the RFC 6749 `error` code of an OIDC error answer.
pub async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or("").to_owned())
}
