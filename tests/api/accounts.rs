//! Accounts: login with two factors, lockout, sessions and their timeouts, step-up.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

#[tokio::test]
async fn login_gives_a_cookie_and_me_and_a_code_works_once() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS Lille").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let client = app.new_client();
    let code = app.code(&a.totp_secret);
    let res = client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": "Camille@Example.fr", "password": a.password, "totp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("mandat_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["aidant"]["email"], "camille@example.fr");
    let me: Value = client
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], a.id.to_string());
    assert_eq!(me["platform_roles"], json!([]));
    assert_eq!(me["memberships"][0]["organisation_id"], org.to_string());
    assert_eq!(me["memberships"][0]["organisation_name"], "MFS Lille");
    assert_eq!(me["memberships"][0]["role"], "aidant");
    assert_eq!(me["current_organisation_id"], org.to_string());

    // The same code a second time (same step) is refused.
    let again = app
        .new_client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": a.email, "password": a.password, "totp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "aidant.login" && e["actor"]["id"] == a.id.to_string())
    );

    // Logout destroys the session on the server.
    assert_eq!(
        client
            .delete(app.url("/api/v1/session"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(app.count("session").await, 0);
}

#[tokio::test]
async fn every_login_failure_looks_the_same_and_five_lock_the_account() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;
    let attempt = |email: &str, password: &str, totp: String| {
        let body = json!({"email": email, "password": password, "totp": totp});
        let req = app
            .new_client()
            .post(app.url("/api/v1/session"))
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let mut bodies = Vec::new();
    for res in [
        attempt(&a.email, "wrong password 123", app.code(&a.totp_secret)).await,
        attempt(&a.email, &a.password, "000000".into()).await,
        attempt("nobody@example.fr", &a.password, app.code(&a.totp_secret)).await,
    ] {
        assert_eq!(res.status(), 401);
        let mut b: Value = res.json().await.unwrap();
        b.as_object_mut().unwrap().remove("request_id");
        bodies.push(b);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    assert_eq!(bodies[0]["code"], "unauthenticated");

    // Two failures so far for the account; three more lock it.
    for _ in 0..3 {
        assert_eq!(
            attempt(&a.email, "wrong password 123", app.code(&a.totp_secret))
                .await
                .status(),
            401
        );
    }
    let locked = attempt(&a.email, &a.password, app.code(&a.totp_secret)).await;
    assert_eq!(
        locked.status(),
        429,
        "right credentials refused while locked"
    );
    assert!(locked.headers().contains_key("retry-after"));
    app.clock.advance(Duration::minutes(15));
    assert_eq!(
        attempt(&a.email, &a.password, app.code(&a.totp_secret))
            .await
            .status(),
        200
    );

    let events = app.audit_events().await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "aidant.login_failed")
        .collect();
    assert_eq!(
        failed.len(),
        7,
        "one event per failure, including the unknown e-mail and the attempt while locked"
    );
    assert!(failed.iter().any(|e| e["details"]["locked"] == true));
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("nobody@example.fr")),
        "no e-mail in events"
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_are_enforced_by_the_server() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS").await;
    let a = app.member("camille@example.fr", org, "aidant").await;

    let idle = app.login(&a).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        idle.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.clock.advance(Duration::minutes(31));
    assert_eq!(
        idle.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "idle > 30 min"
    );

    let busy = app.login(&a).await;
    for _ in 0..35 {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(
            busy.get(app.url("/api/v1/me"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "activity keeps the session"
        );
    }
    app.clock.advance(Duration::minutes(21));
    assert_eq!(
        busy.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "absolute 12 h"
    );
}

#[tokio::test]
async fn step_up_lasts_five_minutes_and_password_change_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let org = app.org("MFS").await;
    let referent = app.member("ref@example.fr", org, "referent").await;
    let aidant = app.member("aidant@example.fr", org, "aidant").await;
    let client = app.login(&referent).await;
    let reset = |c: &reqwest::Client| {
        let req = c
            .post(app.url(&format!(
                "/api/v1/organisations/{org}/members/{}/totp-reset",
                aidant.id
            )))
            .json(&json!({}));
        async move { req.send().await.unwrap() }
    };
    let res = reset(&client).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "step_up_required",
        "the login's own code does not count"
    );
    // A wrong step-up code is refused with the attempts left.
    let wrong = client
        .post(app.url("/api/v1/session/step-up"))
        .json(&json!({"totp": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    assert_eq!(wrong.json::<Value>().await.unwrap()["attempts_left"], 4);
    app.step_up(&client, &referent).await;
    app.clock.advance(Duration::minutes(6));
    assert_eq!(
        reset(&client).await.status(),
        403,
        "step-up older than 5 minutes"
    );
    app.step_up(&client, &referent).await;
    let res = reset(&client).await;
    assert_eq!(res.status(), 200);
    let url = res.json::<Value>().await.unwrap()["invitation_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:8080/invitation/"));
    // The old factor no longer works.
    let res = app
        .new_client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": aidant.email, "password": aidant.password, "totp": app.code(&aidant.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Password change: the other session ends, this one stays.
    let other = app.login(&referent).await;
    let res = client
        .post(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": referent.password, "new_password": "un tout autre secret 2026"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        other
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let weak = client
        .post(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": "un tout autre secret 2026", "new_password": "motdepasse123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    let events = app.audit_events().await;
    for action in [
        "aidant.step_up",
        "aidant.totp_reset",
        "aidant.password_changed",
        "aidant.login_failed",
    ] {
        assert!(events.iter().any(|e| e["action"] == action), "{action}");
    }
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let app = TestApp::spawn().await;
    let mut last = StatusCode::OK;
    for _ in 0..11 {
        last = app
            .post_json(
                "/api/v1/session",
                &json!({"email": "x@example.fr", "password": "p", "totp": "1"}),
            )
            .await
            .status();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn switching_organisation_needs_a_membership() {
    let app = TestApp::spawn().await;
    let a_org = app.org("A").await;
    let b_org = app.org("B").await;
    let c_org = app.org("C").await;
    let a = app.member("camille@example.fr", a_org, "aidant").await;
    mandat::service::users::create(
        &app.state,
        "x@example.fr",
        "X",
        mandat::service::users::Placement::Member {
            organisation: b_org,
            role: mandat::domain::account::OrgRole::Aidant,
        },
        secrecy::SecretString::from(crate::common::PASSWORD.to_owned()),
    )
    .await
    .unwrap();
    let client = app.login(&a).await;
    let res = client
        .put(app.url("/api/v1/me/current-organisation"))
        .json(&json!({"organisation_id": c_org}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = client
        .put(app.url("/api/v1/me/current-organisation"))
        .json(&json!({"organisation_id": a_org}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
