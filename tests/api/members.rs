//! Invitations and member management, with the negative case of every management route.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Account, PASSWORD, TestApp};

/// Enrols through an invitation URL; returns the TOTP secret.
pub async fn enrol(app: &TestApp, url: &str, body: Value) -> String {
    let token = url.rsplit('/').next().unwrap();
    let res = app
        .post_json(&format!("/api/v1/invitations/{token}/accept"), &body)
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let e: Value = res.json().await.unwrap();
    let secret = e["totp_secret"].as_str().unwrap().to_owned();
    assert!(
        e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{token}/confirm"),
            &json!({"totp": app.code(&secret)}),
        )
        .await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    secret
}

#[tokio::test]
async fn first_administrator_then_organisation_then_referent_then_aidant() {
    let app = TestApp::spawn().await;
    let link = mandat::service::users::first_admin_link(&app.state)
        .await
        .unwrap()
        .expect("empty database gives a link");
    let token = link.rsplit('/').next().unwrap();
    let info: Value = app
        .get(&format!("/api/v1/invitations/{token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        json!({"email": null, "organisation_name": "", "kind": "first_admin"})
    );
    let secret = enrol(
        &app,
        &link,
        json!({"password": PASSWORD, "email": "admin@example.fr", "display_name": "Admin"}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/invitations/{token}"))
            .await
            .status(),
        404,
        "single use"
    );
    let admin = Account {
        id: uuid::Uuid::nil(),
        email: "admin@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    let admin_c = app.login(&admin).await;
    let me: Value = admin_c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["platform_roles"], json!(["admin"]));
    assert!(
        mandat::service::users::first_admin_link(&app.state)
            .await
            .unwrap()
            .is_none(),
        "accounts exist"
    );

    let res = admin_c
        .post(app.url("/api/v1/organisations"))
        .json(&json!({"name": "France Services Arras", "address": "3 rue Z", "siret": "73282932000074", "allowed_demarches": ["social", "argent"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let org: Value = res.json().await.unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert_eq!(org["allowed_demarches"], json!(["argent", "social"]));

    let res = admin_c
        .post(app.url(&format!("/api/v1/organisations/{org_id}/members")))
        .json(&json!({"email": "ref@example.fr", "display_name": "Référente", "role": "referent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    let url = inv["invitation_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    let info: Value = app
        .get(&format!("/api/v1/invitations/{token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        json!({"email": "ref@example.fr", "organisation_name": "France Services Arras", "kind": "enrol"})
    );
    // A weak password is refused, nothing enrolled.
    let weak = app
        .post_json(
            &format!("/api/v1/invitations/{token}/accept"),
            &json!({"password": "motdepasse123"}),
        )
        .await;
    assert_eq!(weak.status(), 422);
    let secret = enrol(&app, url, json!({"password": PASSWORD})).await;
    let referent = Account {
        id: uuid::Uuid::nil(),
        email: "ref@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    let ref_c = app.login(&referent).await;
    let res = ref_c
        .post(app.url(&format!("/api/v1/organisations/{org_id}/members")))
        .json(&json!({"email": "aidant@example.fr", "display_name": "Aidant", "role": "aidant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    let secret = enrol(
        &app,
        inv["invitation_url"].as_str().unwrap(),
        json!({"password": PASSWORD}),
    )
    .await;
    let aidant = Account {
        id: uuid::Uuid::nil(),
        email: "aidant@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    let aidant_c = app.login(&aidant).await;
    let list: Value = ref_c
        .get(app.url(&format!("/api/v1/organisations/{org_id}/members")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Deactivation ends the aidant's sessions; reactivation lets them in again.
    let aidant_id = inv["aidant_id"].as_str().unwrap();
    let res = ref_c
        .delete(app.url(&format!(
            "/api/v1/organisations/{org_id}/members/{aidant_id}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        aidant_c
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
        .json(&json!({"email": aidant.email, "password": aidant.password, "totp": app.code(&aidant.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a deactivated account cannot log in");
    let res = ref_c
        .post(app.url(&format!(
            "/api/v1/organisations/{org_id}/members/{aidant_id}/reactivate"
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    app.login(&aidant).await;

    let events = app.audit_events().await;
    let first = events
        .iter()
        .find(|e| e["action"] == "aidant.invited")
        .unwrap();
    assert_eq!(
        first["details"],
        json!({"role": "admin", "platform": true}),
        "the first-admin link is audited"
    );
    for action in [
        "aidant.invited",
        "aidant.invitation_accepted",
        "aidant.enrolled",
        "aidant.deactivated",
        "aidant.reactivated",
        "organisation.created",
    ] {
        assert!(events.iter().any(|e| e["action"] == action), "{action}");
    }
}

#[tokio::test]
async fn every_management_route_refuses_outsiders() {
    let app = TestApp::spawn().await;
    let org_a = app.org("A").await;
    let org_b = app.org("B").await;
    let ref_a = app.member("ref.a@example.fr", org_a, "referent").await;
    let ref_b = app.member("ref.b@example.fr", org_b, "referent").await;
    let aidant_a = app.member("aidant.a@example.fr", org_a, "aidant").await;
    let dpo = app.platform("dpo@example.fr", "dpo").await;
    let target = app.member("target@example.fr", org_a, "aidant").await;
    let t = target.id;
    let routes: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            format!("/api/v1/organisations/{org_a}/members"),
            json!({"email": "n@example.fr", "display_name": "N", "role": "aidant"}),
        ),
        (
            "GET",
            format!("/api/v1/organisations/{org_a}/members"),
            json!(null),
        ),
        (
            "DELETE",
            format!("/api/v1/organisations/{org_a}/members/{t}"),
            json!(null),
        ),
        (
            "POST",
            format!("/api/v1/organisations/{org_a}/members/{t}/reactivate"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/organisations/{org_a}/members/{t}/totp-reset"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/organisations/{org_a}/members/{t}/totp-card"),
            json!({"serial": "C1", "totp": "123456"}),
        ),
        (
            "POST",
            format!("/api/v1/organisations/{org_a}/totp-cards"),
            json!({"cards": [{"serial": "C1", "seed": "JBSWY3DPEHPK3PXP"}]}),
        ),
        (
            "PATCH",
            format!("/api/v1/organisations/{org_a}"),
            json!({"address": "ailleurs"}),
        ),
    ];
    let send = |c: &reqwest::Client, method: &str, path: &str, body: &Value| {
        let mut req = match method {
            "GET" => c.get(app.url(path)),
            "DELETE" => c.delete(app.url(path)),
            "PATCH" => c.patch(app.url(path)),
            _ => c.post(app.url(path)),
        };
        if !body.is_null() {
            req = req.json(body);
        }
        async move { req.send().await.unwrap() }
    };
    let outsider = app.login(&ref_b).await;
    app.step_up(&outsider, &ref_b).await;
    let plain = app.login(&aidant_a).await;
    app.step_up(&plain, &aidant_a).await;
    let dpo_c = app.login(&dpo).await;
    app.step_up(&dpo_c, &dpo).await;
    let anonymous = app.new_client();
    for (method, path, body) in &routes {
        assert_eq!(
            send(&outsider, method, path, body).await.status(),
            StatusCode::NOT_FOUND,
            "référent of B: {method} {path}"
        );
        assert_eq!(
            send(&dpo_c, method, path, body).await.status(),
            StatusCode::NOT_FOUND,
            "DPO: {method} {path}"
        );
        assert_eq!(
            send(&plain, method, path, body).await.status(),
            StatusCode::FORBIDDEN,
            "aidant of A: {method} {path}"
        );
        assert_eq!(
            send(&anonymous, method, path, body).await.status(),
            StatusCode::UNAUTHORIZED,
            "anonymous: {method} {path}"
        );
    }
    // A référent cannot escalate: platform roles are not grantable through an organisation.
    let own = app.login(&ref_a).await;
    for role in ["admin", "dpo"] {
        let res = send(
            &own,
            "POST",
            &format!("/api/v1/organisations/{org_a}/members"),
            &json!({"email": "n@example.fr", "display_name": "N", "role": role}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{role}");
    }
    // Targets outside the organisation are invisible, even to its référent.
    let res = send(
        &own,
        "DELETE",
        &format!("/api/v1/organisations/{org_a}/members/{}", ref_b.id),
        &json!(null),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Nothing changed: target still active, no invitation created.
    let list: Value = send(
        &own,
        "GET",
        &format!("/api/v1/organisations/{org_a}/members"),
        &json!(null),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["active"] == true)
    );
    assert_eq!(app.count("invitation").await, 0);
    // The administrator may, except binding cards (the référent checks the card in hand).
    let admin = app.platform("admin@example.fr", "admin").await;
    let admin_c = app.login(&admin).await;
    assert_eq!(
        send(
            &admin_c,
            "GET",
            &format!("/api/v1/organisations/{org_a}/members"),
            &json!(null)
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn physical_cards_are_imported_bound_and_used_to_log_in() {
    let app = TestApp::spawn().await;
    let org = app.org("A").await;
    let admin = app.platform("admin@example.fr", "admin").await;
    let referent = app.member("ref@example.fr", org, "referent").await;
    let aidant = app.member("aidant@example.fr", org, "aidant").await;
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let admin_c = app.login(&admin).await;
    let res = admin_c
        .post(app.url(&format!("/api/v1/organisations/{org}/totp-cards")))
        .json(&json!({"cards": [{"serial": "CARD-0001", "seed": seed}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let card = mandat::crypto::totp::Seed::parse_card(seed, false).unwrap();
    let card_code = |app: &TestApp| {
        app.clock.advance(chrono::Duration::seconds(60));
        card.code_at(60, app.state.clock.now().timestamp() as u64)
    };
    let ref_c = app.login(&referent).await;
    let bind = |code: String| {
        let req = ref_c
            .post(app.url(&format!(
                "/api/v1/organisations/{org}/members/{}/totp-card",
                aidant.id
            )))
            .json(&json!({"serial": "CARD-0001", "totp": code}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        bind("000000".into()).await.status(),
        422,
        "the code on the card is checked"
    );
    assert_eq!(bind(card_code(&app)).await.status(), 204);
    assert_eq!(
        bind(card_code(&app)).await.status(),
        409,
        "a card is bound once"
    );
    let res = app
        .new_client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": aidant.email, "password": aidant.password, "totp": card_code(&app)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login with the 60-second card");
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "aidant.totp_card_bound")
    );
    assert!(
        !events.iter().any(|e| e.to_string().contains("CARD-0001")),
        "no serial in events"
    );
}

#[tokio::test]
async fn an_enrolment_link_can_be_accepted_again_until_it_is_confirmed() {
    let app = TestApp::spawn().await;
    let link = mandat::service::users::first_admin_link(&app.state)
        .await
        .unwrap()
        .unwrap();
    let token = link.rsplit('/').next().unwrap();
    let body = json!({"password": PASSWORD, "email": "admin@example.fr", "display_name": "Admin"});
    let first = app
        .post_json(&format!("/api/v1/invitations/{token}/accept"), &body)
        .await;
    assert_eq!(first.status(), 200);
    // The enrolment page was lost: the same link gives a new secret, the old one is retired.
    let secret = enrol(&app, &link, body).await;
    let admin = Account {
        id: uuid::Uuid::nil(),
        email: "admin@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    app.login(&admin).await;
}
