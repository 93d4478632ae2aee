//! The account lockout is counted atomically in the write transaction, by every password
//! check (login, step-up, password change, TOTP-reset acceptance), every failure audited.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Account, TestApp};

/// Requests arrive through a trusted proxy, each from its own client address, so the per-IP
/// buckets stay out of the way and only the account lockout answers.
async fn app_behind_proxy() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.trusted_proxies = vec![mandat::config::Cidr::parse("127.0.0.1/32").unwrap()];
        })
        .spawn()
        .await
}

async fn login_from(app: &TestApp, ip: &str, a: &Account, password: &str) -> reqwest::Response {
    app.new_client()
        .post(app.url("/api/v1/session"))
        .header("x-forwarded-for", ip)
        .json(
            &json!({"email": a.email, "password": password, "totp": app.code_now(&a.totp_secret)}),
        )
        .send()
        .await
        .unwrap()
}

/// `aidant.login_failed` events whose actor is the account.
async fn failures_of(app: &TestApp, a: &Account) -> Vec<Value> {
    app.audit_events()
        .await
        .into_iter()
        .filter(|e| e["action"] == "aidant.login_failed" && e["actor"]["id"] == a.id.to_string())
        .collect()
}

async fn failed_logins(app: &TestApp, a: &Account) -> (i32, bool) {
    let mut tx = app.state.store.begin_read().await.unwrap();
    let row = tx.get_aidant(a.id).await.unwrap().unwrap();
    let locked = row.locked_until.is_some_and(|u| u > app.state.clock.now());
    (row.failed_logins, locked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_concurrent_wrong_logins_lock_the_account_and_are_all_audited() {
    let app = app_behind_proxy().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    app.clock.advance(chrono::Duration::seconds(30));
    let attempts = (0..12).map(|i| {
        let ip = format!("10.0.0.{}", i + 1);
        let app = &app;
        let a = &a;
        async move { login_from(app, &ip, a, "pas le bon mot de passe").await }
    });
    for res in join_all(attempts).await {
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&res.status()),
            "{}",
            res.status()
        );
    }
    let failures = failures_of(&app, &a).await;
    assert_eq!(failures.len(), 12, "one audited failure per attempt");
    assert!(failures.iter().any(|e| e["details"]["locked"] == true));
    assert!(failed_logins(&app, &a).await.1, "locked");
    // The right password and a fresh code are refused while locked (and that is audited).
    app.clock.advance(chrono::Duration::seconds(30));
    let res = login_from(&app, "10.0.1.1", &a, &a.password).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(failures_of(&app, &a).await.len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_logins_count_one_each() {
    let app = app_behind_proxy().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let attempts = (0..4).map(|i| {
        let ip = format!("10.0.0.{}", i + 1);
        let app = &app;
        let a = &a;
        async move { login_from(app, &ip, a, "pas le bon mot de passe").await }
    });
    for res in join_all(attempts).await {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        failed_logins(&app, &a).await,
        (4, false),
        "four concurrent failures count four"
    );
    let res = login_from(&app, "10.0.0.9", &a, "pas le bon mot de passe").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(failed_logins(&app, &a).await.1, "the fifth locks");
}

#[tokio::test]
async fn five_wrong_current_passwords_lock_the_account() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let client = app.login(&a).await;
    for i in 0..5 {
        let res = client
            .post(app.url("/api/v1/me/password"))
            .json(&json!({"current_password": "pas le bon mot de passe", "new_password": "un tout autre secret 2026"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "attempt {i}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "current_password", "{body}");
    }
    assert_eq!(failures_of(&app, &a).await.len(), 5);
    assert!(failed_logins(&app, &a).await.1, "locked");
    // The lock ended the session that was guessing.
    assert_eq!(
        client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = app
        .new_client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": a.email, "password": a.password, "totp": app.code(&a.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The password did not change.
    let stored = {
        let mut tx = app.state.store.begin_read().await.unwrap();
        tx.get_aidant(a.id).await.unwrap().unwrap().password_hash
    };
    assert!(
        app.state
            .hasher
            .verify(secrecy::SecretString::from(a.password.clone()), stored)
            .await
    );
}

#[tokio::test]
async fn wrong_passwords_on_a_totp_reset_link_count_towards_the_lockout() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS").await;
    let referent = app.member("ref@example.fr", org, "referent").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let ref_c = app.login(&referent).await;
    app.step_up(&ref_c, &referent).await;
    let res = ref_c
        .post(app.url(&format!(
            "/api/v1/organisations/{org}/members/{}/totp-reset",
            a.id
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let url: String = res.json::<Value>().await.unwrap()["invitation_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let accept = |password: &str| {
        let body = json!({"password": password});
        let path = format!("/api/v1/invitations/{token}/accept");
        let app = &app;
        async move { app.post_json(&path, &body).await }
    };
    for _ in 0..5 {
        assert_eq!(accept("pas le bon mot de passe").await.status(), 422);
    }
    assert_eq!(failures_of(&app, &a).await.len(), 5);
    assert!(failed_logins(&app, &a).await.1, "locked");
    let res = accept(&a.password).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right password is refused while locked"
    );
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(failures_of(&app, &a).await.len(), 6, "audited too");
    {
        let mut tx = app.state.store.begin_read().await.unwrap();
        assert!(
            !tx.totp_factors(a.id)
                .await
                .unwrap()
                .iter()
                .any(|f| f.status == "pending"),
            "no factor issued"
        );
    }
    // After the lock, the link works with the right password.
    app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(accept(&a.password).await.status(), 200);
}

#[tokio::test]
async fn a_step_up_on_a_locked_account_is_refused_and_audited() {
    let app = app_behind_proxy().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let client = app.login(&a).await;
    // Someone else guesses the password from elsewhere and locks the account.
    for i in 0..5 {
        let res = login_from(&app, &format!("10.0.0.{}", i + 1), &a, "pas le bon").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let before = failures_of(&app, &a).await.len();
    let res = client
        .post(app.url("/api/v1/session/step-up"))
        .json(&json!({"totp": app.code(&a.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let after = failures_of(&app, &a).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap()["details"]["locked"], true);
}
