//! Verifying an attestation from its signed reference: status, démarches, organisation,
//! dates — no personal data; forged references are unknown.

use chrono::Duration;
use serde_json::json;

use crate::common::TestApp;
use crate::mandates_support::*;

#[tokio::test]
async fn signed_reference_shows_status_without_personal_data() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.new_mandate(&app, u, &["social", "argent"], "print").await;
    let url = m["verification_url"].as_str().unwrap();
    let reference = url.rsplit('/').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:8080/verifier/"));
    let anyone = app.new_client();
    let check = |r: String| {
        let c = anyone.clone();
        let u = app.url(&format!("/api/v1/public/attestations/{r}"));
        async move {
            let res = c.get(u).send().await.unwrap();
            let s = res.status().as_u16();
            (s, res.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (s, v) = check(reference.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "pending_consent");
    assert_eq!(v["organisation"], json!({"name": "France Services Test"}));
    assert_eq!(v["demarches"][0]["id"], "argent");
    assert!(v["demarches"][0]["title"].as_str().unwrap().len() > 3);
    for secret in [GIVEN, FAMILY, PHONE_E164, EMAIL, "1948"] {
        assert!(!v.to_string().contains(secret));
    }
    // Consent, partial revocation: the revoked démarche disappears.
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{}/consent", m["id"].as_str().unwrap()),
            json!({"code": m["consent"]["code"]}),
        )
        .await;
    assert_eq!(s, 200);
    d.post(
        &app,
        &format!("/api/v1/mandates/{}/revoke", m["id"].as_str().unwrap()),
        json!({"demarches": ["argent"], "reason": "error"}),
    )
    .await;
    let (_, v) = check(reference.clone()).await;
    assert_eq!(v["status"], "active");
    assert_eq!(v["demarches"].as_array().unwrap().len(), 1);
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    app.clock.advance(Duration::days(32));
    d.relogin(&app).await;
    assert_eq!(check(reference.clone()).await.1["status"], "expired");

    // Forged, truncated or foreign references: 404.
    let (id, sig) = reference.split_once('.').unwrap();
    let flipped = format!(
        "{id}.{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    let other_id = uuid::Uuid::now_v7().simple().to_string();
    for bad in [
        flipped,
        format!("{other_id}.{sig}"),
        id.to_owned(),
        "x".into(),
        format!("{reference}0"),
    ] {
        assert_eq!(check(bad.clone()).await.0, 404, "{bad}");
    }
}
