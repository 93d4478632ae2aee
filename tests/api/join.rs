//! Accounts belong to their person: inviting an e-mail that already has an account gives a
//! join invitation and a pending membership, never a credential-setting token
//! (`details.md` § Hardening decisions).

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Account, PASSWORD, TestApp};
use crate::members::enrol;

fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

async fn invite(app: &TestApp, c: &reqwest::Client, org: uuid::Uuid, email: &str) -> Value {
    let res = c
        .post(app.url(&format!("/api/v1/organisations/{org}/members")))
        .json(&json!({"email": email, "display_name": "Invitée", "role": "aidant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "invite {email}");
    res.json().await.unwrap()
}

/// The keys of an object and the JSON type of each value.
fn shape(v: &Value) -> Vec<(String, &'static str)> {
    let mut s: Vec<(String, &'static str)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let t = match v {
                Value::Null => "null",
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            (k.clone(), t)
        })
        .collect();
    s.sort();
    s
}

async fn member_ids(app: &TestApp, c: &reqwest::Client, org: uuid::Uuid) -> Vec<String> {
    members(app, c, org)
        .await
        .iter()
        .filter(|m| m["active"] == true)
        .map(|m| m["aidant_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A member list entry without what differs between two invitees (id and e-mail).
async fn listed_as(app: &TestApp, c: &reqwest::Client, org: uuid::Uuid, id: &str) -> Value {
    let mut m = members(app, c, org)
        .await
        .into_iter()
        .find(|m| m["aidant_id"] == id)
        .unwrap_or_else(|| panic!("{id} listed"));
    let o = m.as_object_mut().unwrap();
    o.remove("aidant_id");
    o.remove("email");
    m
}

async fn members(app: &TestApp, c: &reqwest::Client, org: uuid::Uuid) -> Vec<Value> {
    let list: Value = c
        .get(app.url(&format!("/api/v1/organisations/{org}/members")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"].as_array().unwrap().clone()
}

async fn my_organisations(app: &TestApp, c: &reqwest::Client) -> Vec<String> {
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["organisation_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn join(app: &TestApp, c: &reqwest::Client, token: &str) -> reqwest::Response {
    c.post(app.url(&format!("/api/v1/invitations/{token}/join")))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

/// The cross-organisation takeover of the first release, which must fail: organisation B
/// invites v (not enrolled yet), then A's référent invites v's e-mail.
#[tokio::test]
async fn another_organisation_cannot_take_over_an_account_it_did_not_create() {
    let app = TestApp::spawn().await;
    let org_a = app.org("A").await;
    let org_b = app.org("B").await;
    let ref_a = app.member("ref.a@example.fr", org_a, "referent").await;
    let ref_b = app.member("ref.b@example.fr", org_b, "referent").await;
    let admin = app.platform("admin@example.fr", "admin").await;
    let ref_a_c = app.login(&ref_a).await;
    let ref_b_c = app.login(&ref_b).await;

    let by_b = invite(&app, &ref_b_c, org_b, "v@example.fr").await;
    let v_id = by_b["aidant_id"].as_str().unwrap().to_owned();
    let by_a = invite(&app, &ref_a_c, org_a, "v@example.fr").await;
    // A's answer has exactly the shape of an invitation of a new e-mail.
    let fresh = invite(&app, &ref_a_c, org_a, "new@example.fr").await;
    assert_eq!(shape(&by_a), shape(&fresh));
    assert_eq!(
        shape(&by_a),
        vec![
            ("aidant_id".to_owned(), "string"),
            ("expires_at".to_owned(), "string"),
            ("invitation_url".to_owned(), "string"),
        ]
    );
    let a_token = token_of(by_a["invitation_url"].as_str().unwrap());
    let info: Value = app
        .get(&format!("/api/v1/invitations/{a_token}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["kind"], "join");

    // A's token sets no password and enrols no factor.
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{a_token}/accept"),
            &json!({"password": "le mot de passe du voleur"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{a_token}/confirm"),
            &json!({"totp": "123456"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    {
        let mut tx = app.state.store.begin_read().await.unwrap();
        let v = tx.get_aidant(v_id.parse().unwrap()).await.unwrap().unwrap();
        assert!(v.password_hash.is_none() && !v.active);
        assert!(tx.totp_factors(v.id).await.unwrap().is_empty());
    }
    // Not a member of A yet: listed exactly like the invitation of a new e-mail (not
    // active), and A's référent can neither reset the factor nor bind a card (another
    // organisation's object: 404).
    assert!(!member_ids(&app, &ref_a_c, org_a).await.contains(&v_id));
    let fresh_id = fresh["aidant_id"].as_str().unwrap();
    assert_eq!(
        listed_as(&app, &ref_a_c, org_a, &v_id).await,
        listed_as(&app, &ref_a_c, org_a, fresh_id).await
    );
    assert_eq!(
        listed_as(&app, &ref_a_c, org_a, &v_id).await["display_name"],
        "Invitée"
    );
    // Neither id is time-ordered (a UUIDv7 would date the account).
    for id in [v_id.as_str(), fresh_id] {
        assert_eq!(id.parse::<uuid::Uuid>().unwrap().get_version_num(), 4);
    }
    app.step_up(&ref_a_c, &ref_a).await;
    let reset = |c: &reqwest::Client| {
        let req = c
            .post(app.url(&format!(
                "/api/v1/organisations/{org_a}/members/{v_id}/totp-reset"
            )))
            .json(&json!({}));
        async move { req.send().await.unwrap() }
    };
    assert_eq!(reset(&ref_a_c).await.status(), StatusCode::NOT_FOUND);
    let admin_c = app.login(&admin).await;
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let res = admin_c
        .post(app.url(&format!("/api/v1/organisations/{org_a}/totp-cards")))
        .json(&json!({"cards": [{"serial": "CARD-A1", "seed": seed}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let card = mandat::crypto::totp::Seed::parse_card(seed, false).unwrap();
    let bind = |code: String| {
        let req = ref_a_c
            .post(app.url(&format!(
                "/api/v1/organisations/{org_a}/members/{v_id}/totp-card"
            )))
            .json(&json!({"serial": "CARD-A1", "totp": code}));
        async move { req.send().await.unwrap() }
    };
    app.clock.advance(Duration::seconds(60));
    let code = card.code_at(60, app.state.clock.now().timestamp() as u64);
    assert_eq!(bind(code).await.status(), StatusCode::NOT_FOUND);
    // The pending membership cannot be turned active by the référent either.
    let res = ref_a_c
        .post(app.url(&format!(
            "/api/v1/organisations/{org_a}/members/{v_id}/reactivate"
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // B's invitation still works: v enrols through it.
    let secret = enrol(
        &app,
        by_b["invitation_url"].as_str().unwrap(),
        json!({"password": PASSWORD}),
    )
    .await;
    let v = Account {
        id: v_id.parse().unwrap(),
        email: "v@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    let v_c = app.login(&v).await;
    assert_eq!(
        my_organisations(&app, &v_c).await,
        vec![org_b.to_string()],
        "the pending membership is not one to act for"
    );
    let res = v_c
        .put(app.url("/api/v1/me/current-organisation"))
        .json(&json!({"organisation_id": org_a}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Only the invited account joins with A's token.
    assert_eq!(
        join(&app, &ref_b_c, &a_token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(join(&app, &v_c, &a_token).await.status(), 204);
    assert_eq!(
        join(&app, &v_c, &a_token).await.status(),
        StatusCode::NOT_FOUND,
        "single use"
    );
    let mut orgs = my_organisations(&app, &v_c).await;
    orgs.sort();
    let mut expected = vec![org_a.to_string(), org_b.to_string()];
    expected.sort();
    assert_eq!(orgs, expected);
    assert!(member_ids(&app, &ref_a_c, org_a).await.contains(&v_id));
    // Now an active member of A: A's référent may bind a card.
    app.clock.advance(Duration::seconds(60));
    let code = card.code_at(60, app.state.clock.now().timestamp() as u64);
    assert_eq!(bind(code).await.status(), 204);

    let events = app.audit_events().await;
    let joined: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "aidant.joined")
        .collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["actor"]["id"], v_id);
    assert_eq!(joined[0]["organisation"], org_a.to_string());
    assert_eq!(joined[0]["details"], json!({"role": "aidant"}));
}

/// An enrolled account invited by another organisation is not silently added to it; it joins
/// itself, logged in with a fresh second factor.
#[tokio::test]
async fn an_enrolled_account_is_not_added_silently_and_joins_with_a_fresh_factor() {
    let app = TestApp::spawn().await;
    let org_a = app.org("A").await;
    let org_b = app.org("B").await;
    let ref_a = app.member("ref.a@example.fr", org_a, "referent").await;
    let w = app.member("w@example.fr", org_b, "aidant").await;
    let ref_a_c = app.login(&ref_a).await;
    let w_c = app.login(&w).await;

    let inv = invite(&app, &ref_a_c, org_a, "W@example.fr").await;
    assert_eq!(inv["aidant_id"], w.id.to_string());
    assert!(inv["invitation_url"].is_string() && inv["expires_at"].is_string());
    let token = token_of(inv["invitation_url"].as_str().unwrap());
    assert!(
        !member_ids(&app, &ref_a_c, org_a)
            .await
            .contains(&w.id.to_string())
    );
    // Listed as an invitation with the name A typed, never the account's own name nor its
    // last login.
    let entry = listed_as(&app, &ref_a_c, org_a, &w.id.to_string()).await;
    assert_eq!(entry["display_name"], "Invitée");
    assert_eq!(entry["active"], false);
    assert!(entry["last_login_at"].is_null());
    assert_eq!(my_organisations(&app, &w_c).await, vec![org_b.to_string()]);
    // A TOTP reset of w would end w's sessions and factors everywhere: refused while pending.
    app.step_up(&ref_a_c, &ref_a).await;
    let res = ref_a_c
        .post(app.url(&format!(
            "/api/v1/organisations/{org_a}/members/{}/totp-reset",
            w.id
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        w_c.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "w's session is untouched"
    );
    // Anonymous: 401; a second factor older than 15 minutes: step-up first.
    assert_eq!(
        join(&app, &app.new_client(), &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.clock.advance(Duration::minutes(16));
    let res = join(&app, &w_c, &token).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "step_up_required"
    );
    assert_eq!(my_organisations(&app, &w_c).await, vec![org_b.to_string()]);
    app.step_up(&w_c, &w).await;
    assert_eq!(join(&app, &w_c, &token).await.status(), 204);
    assert!(
        my_organisations(&app, &w_c)
            .await
            .contains(&org_a.to_string())
    );
    assert!(
        member_ids(&app, &ref_a_c, org_a)
            .await
            .contains(&w.id.to_string())
    );

    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let op = &doc["paths"]["/api/v1/invitations/{token}/join"]["post"];
    assert_eq!(op["tags"], json!(["members"]));
    assert!(op["responses"]["204"].is_object() && op["responses"]["404"].is_object());
}

/// A pending membership cancelled by the organisation voids its join invitation and leaves
/// the account alone; a platform account invited by e-mail gets the same answer and cannot join.
#[tokio::test]
async fn cancelling_a_pending_membership_and_platform_accounts() {
    let app = TestApp::spawn().await;
    let org_a = app.org("A").await;
    let org_b = app.org("B").await;
    let ref_a = app.member("ref.a@example.fr", org_a, "referent").await;
    let w = app.member("w@example.fr", org_b, "aidant").await;
    let admin = app.platform("admin@example.fr", "admin").await;
    let ref_a_c = app.login(&ref_a).await;

    let inv = invite(&app, &ref_a_c, org_a, "w@example.fr").await;
    let token = token_of(inv["invitation_url"].as_str().unwrap());
    let res = ref_a_c
        .delete(app.url(&format!("/api/v1/organisations/{org_a}/members/{}", w.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let w_c = app.login(&w).await;
    assert_eq!(
        join(&app, &w_c, &token).await.status(),
        StatusCode::NOT_FOUND,
        "the join invitation was voided"
    );
    assert_eq!(my_organisations(&app, &w_c).await, vec![org_b.to_string()]);
    let events = app.audit_events().await;
    let deactivated = events
        .iter()
        .find(|e| e["action"] == "aidant.deactivated")
        .unwrap();
    assert_eq!(deactivated["details"]["account_deactivated"], false);

    let for_admin = invite(&app, &ref_a_c, org_a, "admin@example.fr").await;
    let fresh = invite(&app, &ref_a_c, org_a, "n@example.fr").await;
    assert_eq!(shape(&for_admin), shape(&fresh));
    let admin_c = app.login(&admin).await;
    let token = token_of(for_admin["invitation_url"].as_str().unwrap());
    assert_eq!(
        join(&app, &admin_c, &token).await.status(),
        StatusCode::FORBIDDEN,
        "platform accounts never join an organisation"
    );
    let me: Value = admin_c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"], json!([]));
}

/// Deactivation voids the account's open invitations in that organisation, and an old
/// invitation never re-activates the account.
#[tokio::test]
async fn deactivation_voids_open_invitations_and_old_tokens_never_reactivate() {
    let app = TestApp::spawn().await;
    let org = app.org("A").await;
    let referent = app.member("ref@example.fr", org, "referent").await;
    let ref_c = app.login(&referent).await;

    // Accepted (password set, factor pending) but not confirmed, then deactivated.
    let first = invite(&app, &ref_c, org, "n1@example.fr").await;
    let t1 = token_of(first["invitation_url"].as_str().unwrap());
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{t1}/accept"),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let secret: String = res.json::<Value>().await.unwrap()["totp_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not accepted at all, then deactivated.
    let second = invite(&app, &ref_c, org, "n2@example.fr").await;
    let t2 = token_of(second["invitation_url"].as_str().unwrap());
    for inv in [&first, &second] {
        let id = inv["aidant_id"].as_str().unwrap();
        let res = ref_c
            .delete(app.url(&format!("/api/v1/organisations/{org}/members/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{t1}/confirm"),
            &json!({"totp": app.code(&secret)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{t2}/accept"),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    for t in [&t1, &t2] {
        assert_eq!(
            app.get(&format!("/api/v1/invitations/{t}")).await.status(),
            404
        );
    }
    let mut tx = app.state.store.begin_read().await.unwrap();
    for inv in [&first, &second] {
        let a = tx
            .get_aidant(inv["aidant_id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!a.active, "the account stays inactive");
        assert!(
            !tx.totp_factors(a.id)
                .await
                .unwrap()
                .iter()
                .any(|f| f.status == "active")
        );
    }
    drop(tx);
    let res = app
        .new_client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": "n1@example.fr", "password": PASSWORD, "totp": app.code(&secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A TOTP-reset link of a member deactivated afterwards is void too.
    let aidant = app.member("aidant@example.fr", org, "aidant").await;
    app.step_up(&ref_c, &referent).await;
    let res = ref_c
        .post(app.url(&format!(
            "/api/v1/organisations/{org}/members/{}/totp-reset",
            aidant.id
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let reset_url: String = res.json::<Value>().await.unwrap()["invitation_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = ref_c
        .delete(app.url(&format!(
            "/api/v1/organisations/{org}/members/{}",
            aidant.id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .post_json(
            &format!("/api/v1/invitations/{}/accept", token_of(&reset_url)),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// A first link lost or expired is replaced when only this organisation ever invited the
/// account (nobody else has a claim on it); once another organisation invited it too, or
/// once it enrolled, inviting it again only gives a join invitation.
#[tokio::test]
async fn a_lost_first_link_is_replaced_only_while_the_account_is_ours_alone() {
    let app = TestApp::spawn().await;
    let org_a = app.org("A").await;
    let org_b = app.org("B").await;
    let ref_a = app.member("ref.a@example.fr", org_a, "referent").await;
    let ref_b = app.member("ref.b@example.fr", org_b, "referent").await;
    let ref_a_c = app.login(&ref_a).await;
    let ref_b_c = app.login(&ref_b).await;

    let first = invite(&app, &ref_a_c, org_a, "x@example.fr").await;
    let lost = token_of(first["invitation_url"].as_str().unwrap());
    let again = invite(&app, &ref_a_c, org_a, "x@example.fr").await;
    assert_eq!(again["aidant_id"], first["aidant_id"]);
    let fresh = token_of(again["invitation_url"].as_str().unwrap());
    let kind = |t: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/invitations/{t}"))
                .await
                .json::<Value>()
                .await
                .unwrap()["kind"]
                .clone()
        }
    };
    assert_eq!(kind(fresh.clone()).await, "enrol");
    // The lost link is void; the new one enrols the person.
    assert_eq!(
        app.get(&format!("/api/v1/invitations/{lost}"))
            .await
            .status(),
        404
    );

    // Another organisation invites the same e-mail: from then on neither may hand out a
    // credential-setting link again.
    let by_b = invite(&app, &ref_b_c, org_b, "x@example.fr").await;
    assert_eq!(
        kind(token_of(by_b["invitation_url"].as_str().unwrap())).await,
        "join"
    );
    let third = invite(&app, &ref_a_c, org_a, "x@example.fr").await;
    assert_eq!(
        kind(token_of(third["invitation_url"].as_str().unwrap())).await,
        "join"
    );
    // A's enrolment link of before still works: the person enrols through it.
    enrol(
        &app,
        again["invitation_url"].as_str().unwrap(),
        json!({"password": PASSWORD}),
    )
    .await;
}
