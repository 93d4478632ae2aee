//! The credential vault over HTTP (api.md § Collective-account credentials): the policy
//! matrix, step-up and mandate refusals, reveal, rotation, deletion, idempotency, moved
//! ciphertexts, hand-over.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;
use crate::mandates_support::{Desk, PHONE, PHONE_E164, desk, outbox};

pub const SECRET: &str = "Mot-de-passe-très-secret-81";
pub const LOGIN: &str = "compte.collectif.42@exemple.fr";
/// A TOTP seed of the account, base32 as services give it.
pub const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

pub fn entry_body(label: &str) -> Value {
    json!({
        "label": label,
        "service": "ameli.fr",
        "login": LOGIN,
        "secret": SECRET,
        "totp_seed": SEED,
        "notes": "Compte ouvert au guichet",
    })
}

pub async fn new_entry(app: &TestApp, d: &Desk, body: Value) -> Value {
    let (s, b) = d.post(app, "/api/v1/vault/entries", body).await;
    assert_eq!(s, 201, "{b}");
    b
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn reveal(
    app: &TestApp,
    d: &Desk,
    id: &str,
    reason: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = d
        .client
        .post(app.url(&format!("/api/v1/vault/entries/{id}/reveal")))
        .json(&json!({ "reason": reason }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

fn code_of(b: &Value) -> &str {
    b["code"].as_str().unwrap_or_default()
}

/// A literal for a UUID in raw SQL on this backend.
pub fn uuid_lit(id: &str) -> String {
    let u: Uuid = id.parse().unwrap();
    if crate::common::backend() == "postgres" {
        format!("'{u}'::uuid")
    } else {
        format!("X'{}'", u.simple())
    }
}

/// The raw bytes of one column of one entry.
pub async fn column(app: &TestApp, id: &str, col: &str) -> Option<Vec<u8>> {
    use sqlx::Connection as _;
    let sql = format!("SELECT {col} FROM vault_entry WHERE id = {}", uuid_lit(id));
    match &app.db_url {
        mandat::config::DatabaseUrl::Sqlite(u) => {
            let mut c = sqlx::SqliteConnection::connect(u).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
        mandat::config::DatabaseUrl::Postgres(u) => {
            use secrecy::ExposeSecret as _;
            let mut c = sqlx::PgConnection::connect(u.expose_secret())
                .await
                .unwrap();
            sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

fn totp_now(app: &TestApp) -> String {
    use mandat::clock::Clock as _;
    let seed = mandat::crypto::totp::Seed::parse_card(SEED, false).unwrap();
    seed.code_at(30, app.clock.now().timestamp() as u64)
}

#[tokio::test]
async fn the_policy_matrix_over_http() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let usager = d.new_usager(&app, Some(PHONE)).await;
    let mandate = d.active(&app, usager, &["social"]).await;
    let free = id_of(&new_entry(&app, &d, entry_body("CAF collectif")).await);
    let mut linked_body = entry_body("Ameli de l'usager");
    linked_body["usager_id"] = json!(usager);
    linked_body["demarche"] = json!("social");
    let linked = id_of(&new_entry(&app, &d, linked_body.clone()).await);
    let mut unmandated = linked_body.clone();
    unmandated["demarche"] = json!("papiers");
    let unmandated = id_of(&new_entry(&app, &d, unmandated).await);

    // The list holds metadata only.
    let (s, list) = d.get(&app, "/api/v1/vault/entries").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let text = list.to_string();
    assert!(text.contains("CAF collectif") && text.contains("ameli.fr"));
    for secret in [SECRET, LOGIN, SEED, "Compte ouvert"] {
        assert!(!text.contains(secret), "{secret} in the list");
    }

    // No step-up yet (a login is not one).
    let (s, b, _) = reveal(&app, &d, &free, "usager_present").await;
    assert_eq!((s, code_of(&b)), (403, "step_up_required"), "{b}");
    assert!(!b.to_string().contains(SECRET));

    app.step_up(&d.client, &d.account).await;
    let (s, b, headers) = reveal(&app, &d, &free, "usager_present").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["secret"], SECRET);
    assert_eq!(b["login"], LOGIN);
    assert_eq!(b["totp_code"], totp_now(&app));
    assert_eq!(headers["cache-control"], "no-store");
    let (s, b, _) = reveal(&app, &d, &linked, "usager_remote_request").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["secret"], SECRET);
    // Linked, but no mandate covers its démarche.
    let (s, b, _) = reveal(&app, &d, &unmandated, "usager_present").await;
    assert_eq!((s, code_of(&b)), (403, "mandate_not_active"), "{b}");
    // A reason from the list only.
    let (s, b, _) = reveal(&app, &d, &free, "curiosité").await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "reason");

    // Another organisation: unknown entry, not listed.
    let other = desk(&app, None).await;
    app.step_up(&other.client, &other.account).await;
    let (s, b, _) = reveal(&app, &other, &free, "usager_present").await;
    assert_eq!(s, 404, "{b}");
    let (_, list) = other.get(&app, "/api/v1/vault/entries").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let res = other
        .client
        .delete(app.url(&format!("/api/v1/vault/entries/{free}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // DPO and administrator: refused everything.
    for role in ["dpo", "admin"] {
        let acc = app
            .platform(&format!("{role}-vault@exemple.fr"), role)
            .await;
        let client = app.login(&acc).await;
        app.step_up(&client, &acc).await;
        let platform = Desk {
            org: d.org,
            account: acc,
            client,
        };
        let (s, b, _) = reveal(&app, &platform, &free, "usager_present").await;
        assert_eq!(s, 403, "{role}: {b}");
        assert!(!b.to_string().contains(SECRET));
        let (s, _) = platform.get(&app, "/api/v1/vault/entries").await;
        assert_eq!(s, 403, "{role}");
        let (s, _) = platform
            .post(&app, "/api/v1/vault/entries", entry_body("x"))
            .await;
        assert_eq!(s, 403, "{role}");
    }

    // A stale step-up (more than 5 minutes).
    app.clock.advance(chrono::Duration::seconds(301));
    let (s, b, _) = reveal(&app, &d, &free, "usager_present").await;
    assert_eq!((s, code_of(&b)), (403, "step_up_required"), "{b}");

    // Revoking the mandate makes the linked entry unrevealable at once.
    app.step_up(&d.client, &d.account).await;
    let (s, _, _) = reveal(&app, &d, &linked, "usager_present").await;
    assert_eq!(s, 200);
    let (s, b) = d
        .post(
            &app,
            &format!(
                "/api/v1/mandates/{}/revoke",
                mandate["id"].as_str().unwrap()
            ),
            json!({"reason": "usager_request"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = reveal(&app, &d, &linked, "usager_present").await;
    assert_eq!((s, code_of(&b)), (403, "mandate_not_active"), "{b}");

    // Audited, without any secret, login, seed or label.
    let events = app.audit_events().await;
    let revealed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "vault.revealed")
        .collect();
    assert_eq!(revealed.len(), 3);
    assert_eq!(revealed[0]["details"]["reason"], "usager_present");
    assert_eq!(revealed[0]["target"], free.as_str());
    assert_eq!(revealed[1]["usager"], usager.to_string());
    assert_eq!(revealed[1]["mandate"], mandate["id"]);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "vault.created")
            .count(),
        3
    );
    let all = serde_json::to_string(&events).unwrap();
    for secret in [SECRET, LOGIN, SEED, "CAF collectif", "ameli.fr"] {
        assert!(!all.contains(secret), "{secret} in the audit log");
    }
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    for (body, field) in [
        (
            json!({"label": "", "service": "s", "login": "l", "secret": "x"}),
            "label",
        ),
        (
            json!({"label": "l", "service": "s", "login": "l", "secret": ""}),
            "secret",
        ),
        (
            json!({"label": "l", "service": "s", "login": "l", "secret": "x", "totp_seed": "pas une clé !"}),
            "totp_seed",
        ),
        (
            json!({"label": "l", "service": "s", "login": "l", "secret": "x", "demarche": "social"}),
            "usager_id",
        ),
        (
            json!({"label": "l", "service": "s", "login": "l", "secret": "x", "usager_id": Uuid::now_v7(), "demarche": "social"}),
            "usager_id",
        ),
        (
            json!({"label": "l", "service": "s", "login": "l", "secret": "x", "usager_id": Uuid::now_v7(), "demarche": "inconnue"}),
            "demarche",
        ),
    ] {
        let (s, b) = d.post(&app, "/api/v1/vault/entries", body).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["errors"][0]["field"], field, "{b}");
    }
    let (s, _) = d
        .post(
            &app,
            "/api/v1/vault/entries",
            json!({"label": "l", "extra": 1}),
        )
        .await;
    assert!(s == 400 || s == 422, "{s}");
    assert_eq!(app.count("vault_entry").await, 0);
    let res = d
        .client
        .post(app.url("/api/v1/vault/entries/pas-un-id/reveal"))
        .json(&json!({"reason": "other"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn a_ciphertext_copied_elsewhere_fails_to_open_and_is_reported() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let a = id_of(&new_entry(&app, &d, entry_body("A")).await);
    let b = id_of(&new_entry(&app, &d, entry_body("B")).await);
    app.step_up(&d.client, &d.account).await;
    // B's secret into A's row.
    app.raw_sql(&format!(
        "UPDATE vault_entry SET secret = (SELECT secret FROM vault_entry WHERE id = {}) WHERE id = {}",
        uuid_lit(&b),
        uuid_lit(&a)
    ))
    .await
    .unwrap();
    let (s, body, _) = reveal(&app, &d, &a, "account_maintenance").await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(code_of(&body), "conflict");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("ne peut pas être déchiffrée"),
        "{body}"
    );
    assert!(!body.to_string().contains(SECRET));
    // B's own login into B's secret field (same row, another field).
    app.raw_sql(&format!(
        "UPDATE vault_entry SET secret = login WHERE id = {}",
        uuid_lit(&b)
    ))
    .await
    .unwrap();
    let (s, body, _) = reveal(&app, &d, &b, "account_maintenance").await;
    assert_eq!(s, 409, "{body}");
    // Nothing revealed is audited as revealed.
    assert!(
        !app.audit_events()
            .await
            .iter()
            .any(|e| e["action"] == "vault.revealed")
    );
}

#[tokio::test]
async fn rotation_replaces_the_ciphertext_and_deletion_shreds_the_key() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let id = id_of(&new_entry(&app, &d, entry_body("Impots")).await);
    let old = column(&app, &id, "secret").await.unwrap();
    let url = app.url(&format!("/api/v1/vault/entries/{id}/secret"));
    let res = d
        .client
        .put(&url)
        .json(&json!({"secret": "Nouveau-secret-2027"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let b: Value = res.json().await.unwrap();
    assert_eq!(code_of(&b), "step_up_required");
    app.step_up(&d.client, &d.account).await;
    let res = d
        .client
        .put(&url)
        .json(&json!({"secret": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = d
        .client
        .put(&url)
        .json(&json!({"secret": "Nouveau-secret-2027"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    let new = column(&app, &id, "secret").await.unwrap();
    assert_ne!(old, new, "a new ciphertext");
    let (_, list) = d.get(&app, "/api/v1/vault/entries").await;
    assert_eq!(list["items"][0]["version"], 2);
    let (s, b, _) = reveal(&app, &d, &id, "account_maintenance").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["secret"], "Nouveau-secret-2027");
    assert_eq!(b["login"], LOGIN, "the other fields survive the rotation");
    assert_eq!(b["totp_code"], totp_now(&app));
    // The old ciphertext is nowhere in the row any more.
    for col in ["label", "service", "login", "secret", "totp_seed", "notes"] {
        assert_ne!(column(&app, &id, col).await, Some(old.clone()), "{col}");
    }

    let res = d
        .client
        .delete(app.url(&format!("/api/v1/vault/entries/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        column(&app, &id, "wrapped_key").await,
        None,
        "the data key is destroyed"
    );
    assert_eq!(column(&app, &id, "secret").await, None);
    let (s, _, _) = reveal(&app, &d, &id, "account_maintenance").await;
    assert_eq!(s, 404);
    let (_, list) = d.get(&app, "/api/v1/vault/entries").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let res = d
        .client
        .delete(app.url(&format!("/api/v1/vault/entries/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let events = app.audit_events().await;
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("vault."))
        .collect();
    assert_eq!(
        actions,
        [
            "vault.created",
            "vault.rotated",
            "vault.revealed",
            "vault.deleted"
        ]
    );
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("Nouveau-secret")
    );
}

#[tokio::test]
async fn creation_is_idempotent() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let post = |body: Value, key: &'static str| {
        let req = d
            .client
            .post(app.url("/api/v1/vault/entries"))
            .header("idempotency-key", key)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            let s = res.status().as_u16();
            (s, res.json::<Value>().await.unwrap())
        }
    };
    let (s1, b1) = post(entry_body("Pôle emploi"), "cle-1").await;
    let (s2, b2) = post(entry_body("Pôle emploi"), "cle-1").await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2, "the first answer replayed");
    assert_eq!(app.count("vault_entry").await, 1);
    let (s3, b3) = post(entry_body("Autre"), "cle-1").await;
    assert_eq!(s3, 409, "{b3}");
    assert_eq!(app.count("vault_entry").await, 1);
    // The stored first answer holds no secret.
    assert!(!b1.to_string().contains(SECRET));
}

fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slip.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn hand_over_by_printed_slip_and_by_sms() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let usager = d.new_usager(&app, Some(PHONE)).await;
    let mandate = d.active(&app, usager, &["social"]).await;
    let mut body = entry_body("Ameli de l'usager");
    body["usager_id"] = json!(usager);
    body["demarche"] = json!("social");
    let id = id_of(&new_entry(&app, &d, body).await);
    let free = id_of(&new_entry(&app, &d, entry_body("Collectif")).await);
    let url = |id: &str| app.url(&format!("/api/v1/vault/entries/{id}/hand-over"));
    let send = |id: String, channel: &'static str| {
        let req = d.client.post(url(&id)).json(&json!({ "channel": channel }));
        async move { req.send().await.unwrap() }
    };

    let res = send(id.clone(), "print").await;
    assert_eq!(res.status(), 403, "a step-up first");
    app.step_up(&d.client, &d.account).await;
    let res = send(id.clone(), "fax").await;
    assert_eq!(res.status(), 422);
    let res = send(free.clone(), "print").await;
    assert_eq!(
        res.status(),
        403,
        "an entry without a usager is not handed over"
    );

    let res = send(id.clone(), "print").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = pdf_text(&res.bytes().await.unwrap());
    for expected in [
        "ameli.fr",
        LOGIN,
        SECRET,
        "23/11/2026",
        "France Services Test",
    ] {
        assert!(text.contains(expected), "{expected} not in: {text}");
    }
    assert!(!text.contains("Quatrefeuilles"), "no other personal data");

    let res = send(id.clone(), "sms").await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let lines = outbox(&app).await;
    let line = lines
        .iter()
        .find(|l| l["kind"] == "vault_access_code")
        .expect("the access code SMS");
    assert_eq!(line["to"], PHONE_E164);
    assert_eq!(line["mandate_id"], mandate["id"]);
    let sms = line["body"].as_str().unwrap();
    assert!(sms.contains(SECRET) && sms.contains(LOGIN), "{sms}");
    // Sent, then erased from the database.
    assert_eq!(app.count("sms_outbox WHERE message IS NOT NULL").await, 0);

    let events = app.audit_events().await;
    let handed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "vault.handed_over")
        .collect();
    assert_eq!(handed.len(), 2);
    assert_eq!(handed[0]["details"]["channel"], "print");
    assert_eq!(handed[1]["details"]["channel"], "sms");
    assert_eq!(handed[1]["usager"], usager.to_string());
    assert_eq!(handed[1]["target"], id.as_str());
    assert_eq!(handed[1]["actor"]["id"], d.account.id.to_string());
    assert!(!serde_json::to_string(&events).unwrap().contains(SECRET));

    // A usager without a phone: the printed slip only.
    let silent = d.new_usager(&app, None).await;
    d.active(&app, silent, &["famille"]).await;
    let mut body = entry_body("CAF");
    body["usager_id"] = json!(silent);
    body["demarche"] = json!("famille");
    let caf = id_of(&new_entry(&app, &d, body).await);
    let res = send(caf, "sms").await;
    assert_eq!(res.status(), 422);

    // Revoked: no hand-over any more.
    let (s, _) = d
        .post(
            &app,
            &format!(
                "/api/v1/mandates/{}/revoke",
                mandate["id"].as_str().unwrap()
            ),
            json!({"reason": "usager_request"}),
        )
        .await;
    assert_eq!(s, 200);
    let res = send(id, "print").await;
    assert_eq!(res.status(), 403);
    let b: Value = res.json().await.unwrap();
    assert_eq!(code_of(&b), "mandate_not_active");
}
