//! The OpenID Connect provider driven by a real relying party library (`openidconnect`):
//! discovery, PKCE, code, token, ID-token signature and claims, userinfo; then the negative
//! list of `oidc.md`. Runs on both databases like the rest of the suite.

use mandat::clock::Clock as _;
use mandat::domain::mandate::RevocationReason;
use openidconnect::core::{
    CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};

use crate::common::TestApp;
use crate::mandates_support::{FAMILY, GIVEN};
use crate::oidc_support::*;

async fn app() -> TestApp {
    TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await
}

#[tokio::test]
async fn a_relying_party_library_completes_the_flow() {
    let app = app().await;
    let d = desk(&app).await;
    let (usager_id, mandate_id) = mandate(&app, &d, &["social", "logement"]).await;
    let rp = client(&app, &[]).await;

    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    assert_eq!(meta.issuer().as_str(), app.base);
    let oidc = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(rp.client_id.clone()),
        Some(ClientSecret::new(rp.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = oidc
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("demarche:social".into()))
        .add_extra_param("login_hint", mandate_id.to_string())
        .set_pkce_challenge(challenge)
        .url();
    // The aidant's browser: the screens are skipped (hint + démarche), straight back to the RP.
    let res = d.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let p = location_params(&res);
    assert_eq!(param(&p, "state"), Some(csrf.secret().as_str()));
    let code = param(&p, "code").unwrap().to_owned();
    assert!(code.len() >= 43, "a 256-bit code");

    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token");
    assert_eq!(
        tokens.expires_in(),
        Some(std::time::Duration::from_secs(300))
    );
    let id_token = tokens.id_token().expect("an id_token");
    let clock = app.clock.clone();
    let id_verifier = oidc
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256])
        .set_time_fn(move || clock.now());
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(claims.audiences()[0].as_str(), rp.client_id);
    let sub = claims.subject().as_str().to_owned();
    assert_ne!(
        sub,
        usager_id.to_string(),
        "the subject is pairwise, not the row id"
    );
    assert_eq!(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some(GIVEN)
    );
    assert_eq!(
        claims
            .family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some(FAMILY)
    );
    assert!(claims.expiration() <= app.clock.now() + chrono::Duration::seconds(300));
    let header = jws_part(&id_token.to_string(), 0);
    assert_eq!(header["alg"], "ES256");
    let raw = jws_part(&id_token.to_string(), 1);
    assert_eq!(raw["mandate"]["id"], mandate_id.to_string());
    assert_eq!(raw["mandate"]["demarche"], "social");
    assert!(raw["mandate"]["expires_at"].is_i64());
    assert_eq!(raw["act"]["organisation"]["id"], d.org.to_string());
    assert_eq!(
        raw["act"]["organisation"]["name"],
        "France Services Roubaix"
    );
    assert!(raw["act"]["sub"].is_string());
    assert_ne!(raw["act"]["sub"], d.aidant.id.to_string());
    assert_eq!(raw["amr"], serde_json::json!(["pwd", "otp"]));
    assert!(raw["acr"].is_string());
    assert!(raw["auth_time"].is_i64());

    let info: CoreUserInfoClaims = oidc
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    let raw = userinfo(&app, tokens.access_token().secret()).await;
    assert_eq!(raw.status(), 200);
    let raw: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(raw["mandate"]["id"], mandate_id.to_string());
    assert_eq!(raw["act"]["organisation"]["id"], d.org.to_string());

    // Another flow for the same usager: the RP names them by the `sub` it received.
    let (v2, c2) = pkce();
    let res = d
        .browser
        .get(app.url(&authorize_path(&rp, &c2, &[("login_hint", &sub)])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let code2 = param(&location_params(&res), "code").unwrap().to_owned();
    let t2 = token(&app, &rp.client_id, &rp.secret, &code2, &v2).await;
    assert_eq!(t2.status(), 200);

    app.state.sequencer.barrier().await.unwrap();
    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_owned())
        .collect();
    for a in ["oidc.authorized", "oidc.token_issued", "oidc.userinfo"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited");
    }
    // No code, token or secret in the audit trail.
    let all = serde_json::to_string(&app.audit_events().await).unwrap();
    assert!(!all.contains(tokens.access_token().secret()));
    assert!(!all.contains(&rp.secret));
    assert!(!all.contains(GIVEN));
}

#[tokio::test]
async fn discovery_and_jwks_offer_only_asymmetric_signatures() {
    let app = app().await;
    let meta: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], app.base);
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let algs = meta["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&serde_json::json!("ES256")));
    assert!(!algs.iter().any(|a| a == "none" || a == "HS256"));
    let jwks: serde_json::Value = app.get("/oidc/jwks").await.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert!(keys[0].get("d").is_none(), "no private part published");
}

/// A desk with a usager under an active `social` mandate, a client, and a fresh code.
struct Flow {
    app: TestApp,
    d: Desk,
    rp: Rp,
    mandate: uuid::Uuid,
    verifier: String,
    code: String,
}

async fn flow() -> Flow {
    let app = app().await;
    let d = desk(&app).await;
    let (_, mandate_id) = mandate(&app, &d, &["social"]).await;
    let rp = client(&app, &[]).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &d, &rp, mandate_id, &challenge).await;
    Flow {
        app,
        d,
        rp,
        mandate: mandate_id,
        verifier,
        code,
    }
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let f = flow().await;
    let first = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first
            .headers()
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap(),
        "no-store"
    );
    let body: serde_json::Value = first.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&f.app, &access).await.status(), 200);
    let again = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    assert_eq!(error_of(again).await, (400, "invalid_grant".into()));
    let res = userinfo(&f.app, &access).await;
    assert_eq!(res.status(), 401, "the first token is revoked");
    assert!(
        res.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    f.app.state.sequencer.barrier().await.unwrap();
    let replayed = f
        .app
        .audit_events()
        .await
        .into_iter()
        .find(|e| e["action"] == "oidc.code_replayed")
        .expect("audited");
    assert_eq!(replayed["details"]["tokens_revoked"], 1);
}

#[tokio::test]
async fn a_wrong_verifier_or_a_missing_one_is_refused() {
    let f = flow().await;
    let (other, _) = pkce();
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &other).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    // The code is spent by the failed attempt.
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    assert_eq!(error_of(res).await.1, "invalid_grant");

    let (_, challenge) = pkce();
    let code = code_for(&f.app, &f.d, &f.rp, f.mandate, &challenge).await;
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/token"))
        .basic_auth(&f.rp.client_id, Some(&f.rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "invalid_grant");
}

#[tokio::test]
async fn another_clients_code_and_wrong_secrets_are_refused() {
    let f = flow().await;
    let other = client(&f.app, &[]).await;
    let res = token(
        &f.app,
        &other.client_id,
        &other.secret,
        &f.code,
        &f.verifier,
    )
    .await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
    let res = token(
        &f.app,
        &f.rp.client_id,
        "not-the-secret",
        &f.code,
        &f.verifier,
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_some());
    assert_eq!(error_of(res).await.1, "invalid_client");
    let res = token(&f.app, &f.rp.client_id, &other.secret, &f.code, &f.verifier).await;
    assert_eq!(error_of(res).await.1, "invalid_client");
    // No client authentication at all.
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", f.code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    // client_secret_post works too, and the code was not spent by the refusals above.
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", f.code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", f.verifier.as_str()),
            ("client_id", f.rp.client_id.as_str()),
            ("client_secret", f.rp.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/token"))
        .basic_auth(&f.rp.client_id, Some(&f.rp.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "unsupported_grant_type");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let f = flow().await;
    f.app.clock.advance(chrono::Duration::seconds(61));
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn a_mandate_revoked_between_authorize_and_token_or_after_stops_everything() {
    let f = flow().await;
    mandat::service::mandates::revoke(
        &f.app.state,
        &f.d.caller,
        f.mandate,
        Some(vec!["social".into()]),
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".into()));

    // Userinfo stops at the next call once the démarche is revoked.
    let app = f.app;
    let d = f.d;
    let (_, m2) = mandate(&app, &d, &["social", "famille"]).await;
    let (v, c) = pkce();
    let code = code_for(&app, &d, &f.rp, m2, &c).await;
    let res = token(&app, &f.rp.client_id, &f.rp.secret, &code, &v).await;
    assert_eq!(res.status(), 200);
    let access = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(userinfo(&app, &access).await.status(), 200);
    mandat::service::mandates::revoke(
        &app.state,
        &d.caller,
        m2,
        Some(vec!["social".into()]),
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    assert_eq!(userinfo(&app, &access).await.status(), 401);
}

#[tokio::test]
async fn bad_authorization_requests_are_shown_or_sent_back_as_the_rules_say() {
    let f = flow().await;
    let (_, challenge) = pkce();
    let get = |path: String| {
        let b = f.d.browser.clone();
        let url = f.app.url(&path);
        async move { b.get(url).send().await.unwrap() }
    };
    // Unregistered redirect URI: a page, never a redirect.
    let res = get(authorize_path(
        &f.rp,
        &challenge,
        &[("redirect_uri", "https://evil.example/cb")],
    ))
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains("Adresse de retour non reconnue"), "{html}");
    // Unknown client: a page.
    let res = get(authorize_path(
        &f.rp,
        &challenge,
        &[("client_id", "inconnu")],
    ))
    .await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // Missing PKCE, plain PKCE, unknown scope, missing openid, no nonce: back with the error.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("scope", "openid demarche:inconnue")], "invalid_scope"),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("nonce", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let res = get(authorize_path(&f.rp, &challenge, &extra)).await;
        assert_eq!(res.status(), 303, "{extra:?}");
        let p = location_params(&res);
        assert_eq!(param(&p, "error"), Some(error), "{extra:?}");
        assert_eq!(param(&p, "state"), Some("etat-123"));
        assert!(param(&p, "code").is_none());
    }
    // Not logged in: the login page, then back here.
    let res = f
        .app
        .new_client()
        .get(f.app.url(&authorize_path(&f.rp, &challenge, &[])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let loc = res.headers().get("location").unwrap().to_str().unwrap();
    assert!(
        loc.starts_with("/connexion?suite=%2Foidc%2Fauthorize"),
        "{loc}"
    );
}

#[tokio::test]
async fn the_aidant_chooses_the_usager_then_the_demarche() {
    let app = app().await;
    let d = desk(&app).await;
    let (_, m) = mandate(&app, &d, &["social", "logement"]).await;
    let rp = client(&app, &["social", "logement", "famille"]).await;
    let (v, c) = pkce();
    let path = authorize_path(&rp, &c, &[("scope", "openid profile")]);
    let res = d.browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Caisse d"), "the partner is named");
    assert!(html.contains(FAMILY), "{html}");
    assert!(html.contains(&m.to_string()));
    let csrf = csrf_of(&html);
    let mut form: Vec<(String, String)> = url::Url::parse(&app.url(&path))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("csrf".into(), csrf.clone()));
    form.push(("mandate".into(), m.to_string()));
    form.push(("action".into(), "choose".into()));
    let res = d
        .browser
        .post(app.url("/oidc/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Choisir la démarche"), "{html}");
    assert!(html.contains("value=\"logement\""));
    form.push(("demarche".into(), "logement".into()));
    let res = d
        .browser
        .post(app.url("/oidc/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let code = param(&location_params(&res), "code").unwrap().to_owned();
    let res = token(&app, &rp.client_id, &rp.secret, &code, &v).await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        jws_part(body["id_token"].as_str().unwrap(), 1)["mandate"]["demarche"],
        "logement"
    );

    // A démarche the client may not use is never offered; cancelling goes back with access_denied.
    let other = client(&app, &["famille"]).await;
    let (_, c) = pkce();
    let path = authorize_path(&other, &c, &[("scope", "openid")]);
    let html = d
        .browser
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&m.to_string()), "no mandate covers famille");
    let mut form: Vec<(String, String)> = url::Url::parse(&app.url(&path))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("csrf".into(), csrf_of(&html)));
    form.push(("action".into(), "cancel".into()));
    let res = d
        .browser
        .post(app.url("/oidc/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        param(&location_params(&res), "error"),
        Some("access_denied")
    );
}

#[tokio::test]
async fn revoke_and_end_session() {
    let f = flow().await;
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    let body: serde_json::Value = res.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/revoke"))
        .basic_auth(&f.rp.client_id, Some(&f.rp.secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(userinfo(&f.app, &access).await.status(), 401);
    // Unknown tokens answer the same (RFC 7009).
    let res = reqwest::Client::new()
        .post(f.app.url("/oidc/revoke"))
        .basic_auth(&f.rp.client_id, Some(&f.rp.secret))
        .form(&[("token", "nothing-like-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // End session: an unregistered URI is refused on a page; a registered one is followed.
    let q = |uri: &str| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", uri)
            .append_pair("state", "fin")
            .finish()
    };
    let res =
        f.d.browser
            .get(
                f.app
                    .url(&format!("/oidc/end-session?{}", q("https://evil.example/"))),
            )
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 400);
    let res =
        f.d.browser
            .get(f.app.url(&format!("/oidc/end-session?{}", q(LOGOUT))))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(param(&location_params(&res), "state"), Some("fin"));
    // The aidant's session is over.
    let res =
        f.d.browser
            .get(f.app.url("/api/v1/me"))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_published_until_its_tokens_expired() {
    let f = flow().await;
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &f.code, &f.verifier).await;
    let old = res.json::<serde_json::Value>().await.unwrap();
    let old_kid = jws_part(old["id_token"].as_str().unwrap(), 0)["kid"].clone();
    let rotated = mandat::service::keys::rotate(
        &f.app.state,
        &mandat::service::Ctx::system(),
        mandat::service::keys::RotatableKey::Oidc,
    )
    .await
    .unwrap();
    assert_eq!(rotated.version, 2);
    let kids = |v: serde_json::Value| -> Vec<serde_json::Value> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect()
    };
    let published = kids(f.app.get("/oidc/jwks").await.json().await.unwrap());
    assert_eq!(published.len(), 2);
    assert!(published.contains(&old_kid));
    let (v, c) = pkce();
    let code = code_for(&f.app, &f.d, &f.rp, f.mandate, &c).await;
    let res = token(&f.app, &f.rp.client_id, &f.rp.secret, &code, &v).await;
    let new = res.json::<serde_json::Value>().await.unwrap();
    let new_kid = jws_part(new["id_token"].as_str().unwrap(), 0)["kid"].clone();
    assert_eq!(new_kid, serde_json::json!(rotated.key_id));
    assert_ne!(new_kid, old_kid);
    f.app.clock.advance(chrono::Duration::minutes(11));
    let published = kids(f.app.get("/oidc/jwks").await.json().await.unwrap());
    assert_eq!(published, vec![new_kid]);
}

#[tokio::test]
async fn private_key_jwt_with_a_replay_cache() {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let app = app().await;
    let d = desk(&app).await;
    let (_, m) = mandate(&app, &d, &["social"]).await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let pt = pair.public_key().as_ref();
    use base64::Engine as _;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "rp-1", "use": "sig", "alg": "ES256",
        "x": b.encode(&pt[1..33]), "y": b.encode(&pt[33..65])}]});
    let created = mandat::service::oidc::clients::create(
        &app.state,
        None,
        mandat::service::oidc::clients::NewClient {
            name: "Service à clés".into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            demarches: vec![],
            auth: mandat::service::oidc::clients::AuthMethod::PrivateKeyJwt,
            jwks: Some(jwks.to_string()),
        },
    )
    .await
    .unwrap();
    assert!(created.client_secret.is_none());
    let rp = Rp {
        client_id: created.client_id.clone(),
        secret: String::new(),
    };
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let assertion = |jti: &str, aud: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("rp-1".into());
        let now = app.clock.now().timestamp();
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"iss": rp.client_id, "sub": rp.client_id, "aud": aud,
                "jti": jti, "iat": now, "exp": now + 60}),
            &key,
        )
        .unwrap()
    };
    let send = |code: String, verifier: String, a: String| {
        let url = app.url("/oidc/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let token_url = format!("{}/oidc/token", app.base);
    // Wrong audience.
    let (v, c) = pkce();
    let code = code_for(&app, &d, &rp, m, &c).await;
    let res = send(
        code.clone(),
        v.clone(),
        assertion("j0", "https://ailleurs.example/token"),
    )
    .await;
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    let a1 = assertion("j1", &token_url);
    let res = send(code, v, a1.clone()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // The same assertion again: its jti was seen.
    let (v, c) = pkce();
    let code = code_for(&app, &d, &rp, m, &c).await;
    let res = send(code.clone(), v.clone(), a1).await;
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    // A secret does not authenticate a key client.
    let res = token(&app, &rp.client_id, "secret", &code, &v).await;
    assert_eq!(error_of(res).await.1, "invalid_client");
    let res = send(code, v, assertion("j2", &token_url)).await;
    assert_eq!(res.status(), 200);
}
