//! The public pages: `/verifier/{ref}` along a mandate's lifecycle, and the usager's
//! `/consentement/{challenge}` page (terms, code, accept or refuse, CSRF, limits).

use chrono::Duration;
use serde_json::json;

use crate::common::TestApp;
use crate::mandates_support::*;

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let res = client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let res = client
        .post(app.url(path))
        .header("origin", app.origin())
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a CSRF token")
        .to_owned()
}

fn reference(m: &serde_json::Value) -> String {
    let url = m["verification_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

fn assert_no_personal_data(html: &str) {
    for secret in [GIVEN, FAMILY, PHONE_E164, EMAIL, "1948", "Roubaix"] {
        assert!(!html.contains(secret), "{secret} on the page");
    }
}

#[tokio::test]
async fn verification_page_follows_the_lifecycle_and_refuses_altered_references() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let anyone = app.new_client();

    // Pending, then active, then revoked.
    let m = d.new_mandate(&app, u, &["famille"], "print").await;
    let id = m["id"].as_str().unwrap();
    let path = format!("/verifier/{}", reference(&m));
    let (s, html) = page(&anyone, &app, &path).await;
    assert_eq!(s, 200);
    assert!(html.contains("Pas encore valide"), "{html}");
    assert_no_personal_data(&html);
    d.post(
        &app,
        &format!("/api/v1/mandates/{id}/consent"),
        json!({"code": m["consent"]["code"]}),
    )
    .await;
    let (_, html) = page(&anyone, &app, &path).await;
    assert!(html.contains("<strong>Valide</strong>"), "{html}");
    assert!(html.contains("France Services Test") && html.contains("Famille"));
    assert!(html.contains("Valable jusqu'au"));
    assert_no_personal_data(&html);
    d.post(
        &app,
        &format!("/api/v1/mandates/{id}/revoke"),
        json!({"reason": "usager_request"}),
    )
    .await;
    let (s, html) = page(&anyone, &app, &path).await;
    assert_eq!(s, 200);
    assert!(html.contains("<strong>Révoquée</strong>"), "{html}");
    assert!(html.contains("Révoqué le"));
    assert_no_personal_data(&html);

    // Refused by the usager.
    let refused = d.new_mandate(&app, u, &["social"], "print").await;
    let res = app
        .post_json(
            "/api/v1/public/consent",
            &json!({"challenge_id": refused["consent"]["challenge_id"], "code": refused["consent"]["code"], "decision": "refuse"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let (_, html) = page(&anyone, &app, &format!("/verifier/{}", reference(&refused))).await;
    assert!(
        html.contains("Non valide") && html.contains("a refusé le mandat"),
        "{html}"
    );

    // Active, then expired on the manual clock.
    let active = d.active(&app, u, &["logement"]).await;
    let active_path = format!("/verifier/{}", reference(&active));
    assert!(
        page(&anyone, &app, &active_path)
            .await
            .1
            .contains("<strong>Valide</strong>")
    );
    app.clock.advance(Duration::days(32));
    d.relogin(&app).await;
    let (s, html) = page(&anyone, &app, &active_path).await;
    assert_eq!(s, 200);
    assert!(html.contains("<strong>Expirée</strong>"), "{html}");

    // One character changed anywhere in the reference: the French 404 page.
    let r = reference(&active);
    for at in [0, 10, 33, r.len() - 1] {
        let mut chars: Vec<char> = r.chars().collect();
        if chars[at] == '.' {
            continue;
        }
        chars[at] = if chars[at] == '0' { '1' } else { '0' };
        let altered: String = chars.into_iter().collect();
        let (s, html) = page(&anyone, &app, &format!("/verifier/{altered}")).await;
        assert_eq!(s, 404, "{altered}");
        assert!(html.contains("Aucune attestation ne correspond"));
        assert!(!html.contains("France Services Test"));
    }
}

#[tokio::test]
async fn usager_accepts_on_the_public_consent_page() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.new_mandate(&app, u, &["social", "argent"], "sms").await;
    let id = m["id"].as_str().unwrap();
    let (code, challenge) = last_sms_code(&app).await;
    let usager = app.new_client();
    let path = format!("/consentement/{challenge}");

    let (s, html) = page(&usager, &app, &path).await;
    assert_eq!(s, 200);
    for expected in [
        "France Services Test",
        "1 mois (31 jours)",
        "Social - Santé",
        "Argent - Impôts - Consommation",
        "Attention : Pour un dossier de surendettement",
        "J'accepte",
        "Je refuse",
        "Après 5 codes erronés",
        "4 codes erronés en une minute",
        "public.css",
    ] {
        assert!(html.contains(expected), "{expected:?} missing: {html}");
    }
    assert_no_personal_data(&html);
    assert!(!html.contains("<script"));
    let csrf = csrf_of(&html);

    // Without the cookie's token, nothing happens.
    let stranger = app.new_client();
    let (s, _) = post(
        &stranger,
        &app,
        &path,
        &[("csrf", &csrf), ("code", &code), ("decision", "accept")],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        d.get(&app, &format!("/api/v1/mandates/{id}")).await.1["status"],
        "pending_consent"
    );

    // A wrong code: explained, the form again with the attempts left.
    let wrong = if code.starts_with('0') {
        "111111"
    } else {
        "000000"
    };
    let (s, html) = post(
        &usager,
        &app,
        &path,
        &[("csrf", &csrf), ("code", wrong), ("decision", "accept")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("Il vous reste 4 essai(s)"), "{html}");
    let csrf = csrf_of(&html);

    // The right code: confirmation, the mandate is active.
    let (s, html) = post(
        &usager,
        &app,
        &path,
        &[("csrf", &csrf), ("code", &code), ("decision", "accept")],
    )
    .await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("le mandat est actif"), "{html}");
    assert_eq!(
        d.get(&app, &format!("/api/v1/mandates/{id}")).await.1["status"],
        "active"
    );
    let events = app.audit_events().await;
    let activated = events
        .iter()
        .find(|e| e["action"] == "mandate.activated" && e["mandate"] == id)
        .unwrap();
    assert_eq!(activated["actor"]["kind"], "usager");

    // The link afterwards: already answered.
    let (s, html) = page(&usager, &app, &path).await;
    assert_eq!(s, 410);
    assert!(html.contains("Mandat déjà accepté"));

    // Unknown or malformed challenges reveal nothing.
    for bad in [
        uuid::Uuid::now_v7().to_string(),
        "pas-un-identifiant".into(),
    ] {
        let (s, html) = page(&usager, &app, &format!("/consentement/{bad}")).await;
        assert_eq!(s, 404);
        assert!(html.contains("Lien introuvable"));
        assert!(!html.contains("France Services Test"));
    }
}

#[tokio::test]
async fn usager_refuses_and_wrong_codes_lock_the_page() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;

    // Refusal (the code is needed for it too).
    let m = d.new_mandate(&app, u, &["social"], "sms").await;
    let (code, challenge) = last_sms_code(&app).await;
    let usager = app.new_client();
    let path = format!("/consentement/{challenge}");
    let csrf = csrf_of(&page(&usager, &app, &path).await.1);
    let (s, html) = post(
        &usager,
        &app,
        &path,
        &[("csrf", &csrf), ("code", &code), ("decision", "refuse")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(html.contains("Votre refus est enregistré"), "{html}");
    let (_, v) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(v["status"], "refused");

    // Five wrong codes lock the challenge; the fifth failure in a minute is held back by
    // the per-client limit and explained.
    let m = d.new_mandate(&app, u, &["famille"], "sms").await;
    let (code, challenge) = last_sms_code(&app).await;
    let path = format!("/consentement/{challenge}");
    let client = app.new_client();
    let mut csrf = csrf_of(&page(&client, &app, &path).await.1);
    let wrong = if code.starts_with('0') {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        let (s, html) = post(
            &client,
            &app,
            &path,
            &[("csrf", &csrf), ("code", wrong), ("decision", "accept")],
        )
        .await;
        assert_eq!(s, 422, "{html}");
        csrf = csrf_of(&html);
    }
    let (s, html) = post(
        &client,
        &app,
        &path,
        &[("csrf", &csrf), ("code", wrong), ("decision", "accept")],
    )
    .await;
    assert_eq!(s, 429, "{html}");
    assert!(
        html.contains("Plus de 4 codes erronés en une minute"),
        "{html}"
    );
    app.clock.advance(Duration::seconds(61));
    let (s, html) = post(
        &client,
        &app,
        &path,
        &[("csrf", &csrf), ("code", wrong), ("decision", "accept")],
    )
    .await;
    assert_eq!(s, 423, "{html}");
    assert!(html.contains("Demande bloquée"), "{html}");
    let (_, v) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(v["status"], "refused");
}
