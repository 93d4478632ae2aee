//! The usager's side of an SMS consent, on a phone-sized window (360 × 740): the link of
//! the SMS, the code typed in, the mandate active.

use crate::browser::Browser;
use crate::common::{self, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usager_consents_from_the_sms_link_on_a_phone() {
    // The browser's `Origin` is the listen address: it must be the service's public URL.
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await;
    let org = app.org("France Services de Melun").await;
    let aidant = app.member("camille@melun.example", org, "aidant").await;
    let desk = app.login(&aidant).await;
    let post = |path: &str, body: serde_json::Value| {
        desk.post(app.url(path))
            .header("origin", app.origin())
            .json(&body)
            .send()
    };
    let usager: serde_json::Value = post(
        "/api/v1/usagers",
        serde_json::json!({"given_name": "Paul", "family_name": "Lefèvre", "birthdate": "1950-04-02",
            "phone": "06 11 22 33 78", "identity_check": "document"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let res = post(
        "/api/v1/mandates",
        serde_json::json!({"usager_id": usager["id"], "demarches": ["social", "argent"],
            "duration": "month", "consent_channel": "sms"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let mandate: serde_json::Value = res.json().await.unwrap();

    // The code SMS, once the delivery worker has written it.
    let mut line = None;
    for _ in 0..500 {
        let sms =
            std::fs::read_to_string(app.dir.path().join("sms-outbox.jsonl")).unwrap_or_default();
        line = sms
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["kind"] == "code");
        if line.is_some() {
            break;
        }
        app.state.sms.notify();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = line.expect("an SMS with the code");
    let body = line["body"].as_str().unwrap();
    let code: String = body
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let challenge = line["challenge_id"].as_str().unwrap();
    assert!(
        body.contains(&format!("/consentement/{challenge}")),
        "{body}"
    );

    let mut phone = Browser::start(&format!("{}-telephone", common::backend())).await;
    phone
        .client
        .set_window_size(360, 740)
        .await
        .expect("window size");
    phone
        .goto(&app.url(&format!("/consentement/{challenge}")))
        .await;
    phone.wait_h1("Votre accord pour un mandat").await;
    let page = phone.body().await;
    assert!(page.contains("France Services de Melun"), "{page}");
    assert!(page.contains("Argent - Impôts - Consommation"), "{page}");
    assert!(!page.contains("Lefèvre"), "no personal data on the page");
    let width = phone
        .client
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .expect("scroll width");
    assert!(
        width.as_u64().unwrap() <= 360,
        "no horizontal scrolling: {width}"
    );
    phone.check("consentement").await;
    phone.fill("#code", &code).await;
    phone.submit("main button[value=accept]").await;
    phone.wait_h1("Merci, le mandat est actif").await;
    phone.check("consentement-accepte").await;
    phone.stop().await;

    let m: serde_json::Value = desk
        .get(app.url(&format!(
            "/api/v1/mandates/{}",
            mandate["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "active");
}
