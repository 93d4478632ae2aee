//! Mandates over HTTP: the rules the API must show, with real sessions and policies.

use chrono::Duration;
use serde_json::json;

use crate::common::TestApp;
use crate::mandates_support::*;

fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn refused_creations_write_nothing() {
    let app = TestApp::spawn().await;
    let d = desk(&app, Some(&["social", "papiers"])).await;
    let with_phone = d.new_usager(&app, Some(PHONE)).await;
    let without_phone = d.new_usager(&app, None).await;
    let before = app.audit_events().await.len();
    for (body, field) in [
        (
            json!({"usager_id": with_phone, "demarches": ["social", "argent"], "duration": "month", "consent_channel": "print"}),
            "demarches",
        ),
        (
            json!({"usager_id": without_phone, "demarches": ["social"], "duration": "month", "consent_channel": "sms"}),
            "consent_channel",
        ),
        (
            json!({"usager_id": with_phone, "demarches": ["banque"], "duration": "month", "consent_channel": "print"}),
            "demarches",
        ),
        (
            json!({"usager_id": with_phone, "demarches": ["social"], "duration": "year", "consent_channel": "print"}),
            "duration",
        ),
        (
            json!({"usager_id": with_phone, "demarches": ["social"], "duration": "month", "consent_channel": "fax"}),
            "consent_channel",
        ),
    ] {
        let (s, b) = d.post(&app, "/api/v1/mandates", body).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["code"], "validation_failed");
        assert_eq!(b["errors"][0]["field"], field, "{b}");
    }
    for t in [
        "mandate",
        "mandate_demarche",
        "consent_challenge",
        "idempotency_key",
    ] {
        assert_eq!(app.count(t).await, 0, "{t}");
    }
    assert_eq!(app.audit_events().await.len(), before);
    assert!(outbox(&app).await.is_empty());
}

#[tokio::test]
async fn another_organisations_usager_and_mandate_are_not_found() {
    let app = TestApp::spawn().await;
    let a = desk(&app, None).await;
    let b = desk(&app, None).await;
    let u = a.new_usager(&app, None).await;
    let m = a.new_mandate(&app, u, &["social"], "print").await;
    let id = m["id"].as_str().unwrap();
    let code = m["consent"]["code"].clone();
    for (path, body) in [
        (
            format!("/api/v1/mandates/{id}/consent"),
            json!({"code": code}),
        ),
        (
            format!("/api/v1/mandates/{id}/revoke"),
            json!({"reason": "error"}),
        ),
        (
            format!("/api/v1/mandates/{id}/renew"),
            json!({"duration": "long", "consent_channel": "print"}),
        ),
        (format!("/api/v1/mandates/{id}/consent/resend"), json!({})),
        (
            "/api/v1/mandates".to_owned(),
            json!({"usager_id": u, "demarches": ["social"], "duration": "month", "consent_channel": "print"}),
        ),
    ] {
        let (s, body) = b.post(&app, &path, body).await;
        assert_eq!(s, 404, "{path}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    for path in [
        format!("/api/v1/mandates/{id}"),
        format!("/api/v1/usagers/{u}"),
    ] {
        assert_eq!(b.get(&app, &path).await.0, 404, "{path}");
    }
    let (_, list) = b.get(&app, "/api/v1/mandates").await;
    assert_eq!(list["items"], json!([]));
    // Acting explicitly for an organisation one is not a member of: 404 as well.
    let (s, _) = b
        .post(&app, "/api/v1/mandates", json!({"usager_id": u, "demarches": ["social"], "duration": "month", "consent_channel": "print", "organisation_id": a.org}))
        .await;
    assert_eq!(s, 404);
    // Nothing was consumed: the owner still activates it.
    let (s, _) = a
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/consent"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 200);
    // Anonymous: 401.
    let res = app
        .new_client()
        .get(app.url(&format!("/api/v1/mandates/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn print_flow_over_http() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let m = d
        .new_mandate(&app, u, &["social", "logement"], "print")
        .await;
    assert_eq!(m["status"], "pending_consent");
    assert_eq!(m["consent"]["channel"], "print");
    assert_eq!(m["consent"]["attempts_left"], 5);
    let code = m["consent"]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 14);
    let id = m["id"].as_str().unwrap().to_owned();
    let (_, again) = d.get(&app, &format!("/api/v1/mandates/{id}")).await;
    assert!(again["consent"].get("code").is_none(), "returned once");
    app.clock.advance(Duration::minutes(5));
    let (s, active) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/consent"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 200, "{active}");
    assert_eq!(active["status"], "active");
    assert_eq!(
        time(&active["expires_at"]) - time(&active["activated_at"]),
        Duration::days(31)
    );
    assert!(active["expires_at"].as_str().unwrap().ends_with('Z'));
    let (s, b) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/consent"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let events = app.audit_events().await;
    let act = events
        .iter()
        .find(|e| e["action"] == "mandate.activated")
        .unwrap();
    assert_eq!(
        act["actor"],
        json!({"kind": "aidant", "id": d.account.id.to_string()})
    );
    assert!(act["request_id"].is_string());
}

#[tokio::test]
async fn sms_flow_over_http() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.new_mandate(&app, u, &["travail"], "sms").await;
    assert!(m["consent"].get("code").is_none());
    assert_eq!(m["consent"]["sent_to"], "+33 •• •• •• •• 78");
    let (code, challenge) = last_sms_code(&app).await;
    assert_eq!(challenge, m["consent"]["challenge_id"].as_str().unwrap());
    assert!(!m.to_string().contains(&code));
    let public = app.new_client();
    let res = public
        .post(app.url("/api/v1/public/consent"))
        .json(&json!({"challenge_id": challenge, "code": code, "decision": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "accepted"})
    );
    let (_, now) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(now["status"], "active");
    let res = public
        .post(app.url("/api/v1/public/consent"))
        .json(&json!({"challenge_id": uuid::Uuid::now_v7(), "code": code, "decision": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn wrong_codes_then_lock_then_late_codes() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let m = d.new_mandate(&app, u, &["social"], "print").await;
    let path = format!("/api/v1/mandates/{}/consent", m["id"].as_str().unwrap());
    for left in [4, 3, 2, 1] {
        let (s, b) = d.post(&app, &path, json!({"code": "ZZZZ-ZZZZ-ZZZZ"})).await;
        assert_eq!(s, 422);
        assert_eq!(b["code"], "invalid_code");
        assert_eq!(b["attempts_left"], left, "top-level member");
    }
    let (s, b) = d.post(&app, &path, json!({"code": "ZZZZ-ZZZZ-ZZZZ"})).await;
    assert_eq!(s, 423);
    assert_eq!(b["code"], "challenge_locked");
    let (_, after) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after["status"], "refused");

    let late = d.new_mandate(&app, u, &["social"], "print").await;
    app.clock.advance(Duration::days(14));
    d.relogin(&app).await;
    let (s, b) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{}/consent", late["id"].as_str().unwrap()),
            json!({"code": late["consent"]["code"]}),
        )
        .await;
    assert_eq!(s, 410, "{b}");
    assert_eq!(b["code"], "challenge_expired");
}

#[tokio::test]
async fn replacement_partial_revocation_and_renewal_rules() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let old = d.active(&app, u, &["social", "travail", "papiers"]).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    d.active(&app, u, &["social"]).await;
    let (_, o) = d.get(&app, &format!("/api/v1/mandates/{old_id}")).await;
    let st = |m: &serde_json::Value, id: &str| {
        m["demarches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(st(&o, "social")["status"], "revoked");
    assert_eq!(st(&o, "social")["revoked_reason"], "replaced");
    assert_eq!(st(&o, "travail")["status"], "active");

    let (s, r) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{old_id}/revoke"),
            json!({"demarches": ["travail"], "reason": "usager_request"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "active");
    assert_eq!(st(&r, "papiers")["status"], "active");
    assert_eq!(st(&r, "travail")["status"], "revoked");
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{old_id}/revoke"),
            json!({"reason": "because"}),
        )
        .await;
    assert_eq!(s, 422, "reason is a code");
    let (s, r) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{old_id}/revoke"),
            json!({"reason": "error"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["status"], "revoked");
    let (s, b) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{old_id}/renew"),
            json!({"duration": "long", "consent_channel": "print"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    // Renewal: allowed within 365 days of expiry, refused after.
    let m = d.active(&app, u, &["logement"]).await;
    let id = m["id"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::days(31 + 364));
    d.relogin(&app).await;
    let (s, n) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/renew"),
            json!({"duration": "semester", "consent_channel": "print"}),
        )
        .await;
    assert_eq!(s, 201, "{n}");
    assert_eq!(n["renews"], id.as_str());
    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    d.relogin(&app).await;
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/renew"),
            json!({"duration": "semester", "consent_channel": "print"}),
        )
        .await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn second_factor_older_than_fifteen_minutes_needs_a_step_up() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let m = d.new_mandate(&app, u, &["social"], "print").await;
    app.clock.advance(Duration::minutes(16));
    let body = json!({"usager_id": u, "demarches": ["social"], "duration": "month", "consent_channel": "print"});
    let (s, b) = d.post(&app, "/api/v1/mandates", body.clone()).await;
    assert_eq!(s, 403);
    assert_eq!(b["code"], "step_up_required");
    let path = format!("/api/v1/mandates/{}/consent", m["id"].as_str().unwrap());
    assert_eq!(
        d.post(&app, &path, json!({"code": m["consent"]["code"]}))
            .await
            .0,
        403
    );
    // Reads need no fresh factor.
    assert_eq!(
        d.get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap())
        )
        .await
        .0,
        200
    );
    app.step_up(&d.client, &d.account).await;
    assert_eq!(d.post(&app, "/api/v1/mandates", body).await.0, 201);
    assert_eq!(
        d.post(&app, &path, json!({"code": m["consent"]["code"]}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn platform_roles_cannot_touch_usagers_or_mandates() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    for role in ["admin", "dpo"] {
        let acc = app.platform(&format!("{role}@exemple.fr"), role).await;
        let c = app.login(&acc).await;
        let res = c
            .post(app.url("/api/v1/usagers"))
            .json(&usager_body(None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{role}");
        let res = c
            .get(app.url(&format!("/api/v1/usagers/{u}")))
            .send()
            .await
            .unwrap();
        assert!(res.status() == 403 || res.status() == 404, "{role}");
    }
}

#[tokio::test]
async fn idempotency_key_over_http() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let body = json!({"usager_id": u, "demarches": ["social"], "duration": "short", "consent_channel": "print"});
    let send = |b: serde_json::Value| {
        d.client
            .post(app.url("/api/v1/mandates"))
            .header("Idempotency-Key", "clé-1".replace('é', "e"))
            .json(&b)
            .send()
    };
    let r1 = send(body.clone()).await.unwrap();
    assert_eq!(r1.status(), 201);
    let b1: serde_json::Value = r1.json().await.unwrap();
    let r2 = send(body.clone()).await.unwrap();
    assert_eq!(r2.status(), 201);
    assert_eq!(r2.json::<serde_json::Value>().await.unwrap(), b1);
    assert_eq!(app.count("mandate").await, 1);
    let mut other = body.clone();
    other["duration"] = json!("long");
    assert_eq!(send(other).await.unwrap().status(), 409);
    let r = d
        .client
        .post(app.url("/api/v1/mandates"))
        .header("Idempotency-Key", "x".repeat(65))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn lists_filter_by_status_usager_and_expiry() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let u1 = d.new_usager(&app, None).await;
    let u2 = d.new_usager(&app, None).await;
    d.active(&app, u1, &["social"]).await;
    d.new_mandate(&app, u2, &["papiers"], "print").await;
    let (s, all) = d.get(&app, "/api/v1/mandates").await;
    assert_eq!(s, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, mine) = d
        .get(&app, &format!("/api/v1/mandates?usager_id={u1}"))
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, pending) = d.get(&app, "/api/v1/mandates?status=pending_consent").await;
    assert_eq!(pending["items"][0]["usager_id"], u2.to_string());
    app.clock.advance(Duration::days(10));
    d.relogin(&app).await;
    let (_, soon) = d
        .get(&app, "/api/v1/mandates?expiring_within_days=30")
        .await;
    assert_eq!(soon["items"].as_array().unwrap().len(), 1);
    let (_, none) = d.get(&app, "/api/v1/mandates?expiring_within_days=5").await;
    assert_eq!(none["items"], json!([]));
    let (_, page) = d.get(&app, "/api/v1/mandates?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = d
        .get(&app, &format!("/api/v1/mandates?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    assert_eq!(d.get(&app, "/api/v1/mandates?status=nope").await.0, 422);
    assert_eq!(d.get(&app, "/api/v1/mandates?limit=0").await.0, 422);
}

#[tokio::test]
async fn public_page_limits_failures_per_client_and_per_challenge() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.new_mandate(&app, u, &["social"], "print").await;
    let challenge = m["consent"]["challenge_id"].clone();
    let public = app.new_client();
    let attempt = |code: &str| {
        public
            .post(app.url("/api/v1/public/consent"))
            .json(&json!({"challenge_id": challenge, "code": code, "decision": "refuse"}))
            .send()
    };
    for left in [4, 3, 2, 1] {
        let r = attempt("ZZZZ-ZZZZ-ZZZZ").await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["attempts_left"],
            left
        );
    }
    let r = attempt("ZZZZ-ZZZZ-ZZZZ").await.unwrap();
    assert_eq!(r.status(), 429, "4 failures per 60 s per client");
    assert!(r.headers().contains_key("retry-after"));
    app.clock.advance(Duration::seconds(60));
    let r = attempt("ZZZZ-ZZZZ-ZZZZ").await.unwrap();
    assert_eq!(r.status(), 423);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "challenge_locked"
    );
    let (_, after) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after["status"], "refused");
    let r = public
        .post(app.url("/api/v1/public/consent"))
        .json(
            &json!({"challenge_id": challenge, "code": m["consent"]["code"], "decision": "accept"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        423,
        "even the right code: the challenge is locked"
    );
    let doc: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    for p in [
        "/api/v1/mandates/{id}/consent",
        "/api/v1/public/consent",
        "/api/v1/usagers/{id}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} in the OpenAPI document");
    }
}
