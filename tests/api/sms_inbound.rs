//! The inbound SMS webhook: signed replies `OUI <code>` / `NON` from the usager's phone.

use serde_json::json;

use crate::common::TestApp;
use crate::mandates_support::*;

const SECRET: &str = "secret de webhook";

async fn app_with_webhook() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.sms_webhook_secret = Some(secrecy::SecretString::from(SECRET.to_owned()))
        })
        .spawn()
        .await
}

fn sign(app: &TestApp, body: &str, offset_secs: i64) -> String {
    let t = app.state.clock.now().timestamp() + offset_secs;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(tag.as_ref()))
}

async fn send(app: &TestApp, body: &str, signature: Option<String>) -> (u16, serde_json::Value) {
    let mut req = app
        .new_client()
        .post(app.url("/api/v1/sms/inbound"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("x-mandat-signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

fn reply(text: &str) -> String {
    json!({"from": PHONE_E164, "body": text}).to_string()
}

#[tokio::test]
async fn webhook_is_off_without_a_secret() {
    let app = TestApp::spawn().await;
    let body = reply("NON");
    assert_eq!(send(&app, &body, Some(sign(&app, &body, 0))).await.0, 404);
}

#[tokio::test]
async fn signed_replies_accept_refuse_and_count_wrong_codes() {
    let app = app_with_webhook().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;

    // Wrong code, then the right one.
    let m = d.new_mandate(&app, u, &["social"], "sms").await;
    let id = m["id"].as_str().unwrap().to_owned();
    let body = reply("OUI 000000");
    let (s, b) = send(&app, &body, Some(sign(&app, &body, 0))).await;
    assert_eq!((s, b["result"].as_str()), (200, Some("invalid_code")));
    let (_, seen) = d.get(&app, &format!("/api/v1/mandates/{id}")).await;
    assert_eq!(seen["consent"]["attempts_left"], 4);
    let (code, _) = last_sms_code(&app).await;
    let body = reply(&format!("oui {code}"));
    let sig = sign(&app, &body, -60);
    let (s, b) = send(&app, &body, Some(sig.clone())).await;
    assert_eq!((s, b["result"].as_str()), (200, Some("accepted")), "{b}");
    let (_, active) = d.get(&app, &format!("/api/v1/mandates/{id}")).await;
    assert_eq!(active["status"], "active");
    // The same signed request again: replay.
    assert_eq!(send(&app, &body, Some(sig)).await.0, 401);

    // NON refuses the next mandate.
    let n = d.new_mandate(&app, u, &["travail"], "sms").await;
    let body = reply("NON");
    let (s, b) = send(&app, &body, Some(sign(&app, &body, 0))).await;
    assert_eq!((s, b["result"].as_str()), (200, Some("refused")));
    let (_, refused) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", n["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(refused["status"], "refused");

    // Anything else, or no open challenge: recorded and ignored.
    let body = reply("STOP");
    assert_eq!(
        send(&app, &body, Some(sign(&app, &body, 0))).await.1["result"],
        "ignored"
    );

    let events = app.audit_events().await;
    let act = events
        .iter()
        .find(|e| e["action"] == "mandate.activated")
        .unwrap();
    assert_eq!(act["actor"], json!({"kind": "usager", "id": u.to_string()}));
    assert_eq!(act["details"]["via"], "sms");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "sms.reply_ignored")
            .count(),
        1
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(PHONE_E164) && !text.contains(&code));
}

#[tokio::test]
async fn unsigned_stale_forged_or_malformed_requests_are_refused() {
    let app = app_with_webhook().await;
    let body = reply("NON");
    assert_eq!(send(&app, &body, None).await.0, 401);
    assert_eq!(
        send(&app, &body, Some(sign(&app, &body, -301))).await.0,
        401,
        "stale"
    );
    assert_eq!(
        send(&app, &body, Some(sign(&app, &body, 301))).await.0,
        401,
        "from the future"
    );
    assert_eq!(
        send(&app, &body, Some(sign(&app, "{}", 0))).await.0,
        401,
        "another body"
    );
    assert_eq!(send(&app, &body, Some("t=abc,v1=00".into())).await.0, 400);
    let bad_json = "{\"from\": 1}";
    assert_eq!(
        send(&app, bad_json, Some(sign(&app, bad_json, 0))).await.0,
        400
    );
    let bad_phone = json!({"from": "12", "body": "NON"}).to_string();
    assert_eq!(
        send(&app, &bad_phone, Some(sign(&app, &bad_phone, 0)))
            .await
            .0,
        400
    );
    let res = app
        .new_client()
        .post(app.url("/api/v1/sms/inbound"))
        .header("content-type", "text/plain")
        .header("x-mandat-signature", sign(&app, &body, 0))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn the_providers_replies_are_not_held_by_a_per_ip_limit() {
    // Every reply comes from the provider's address: 60 in a row (the public per-IP limit is
    // 30 a minute) are all answered, signed or not, never 429.
    let app = app_with_webhook().await;
    for i in 0..60 {
        let body = reply(&format!("texte {i}"));
        let (status, _) = send(&app, &body, Some(sign(&app, &body, 0))).await;
        assert_eq!(status, 200, "reply {i}");
    }
    let (status, _) = send(&app, &reply("NON"), None).await;
    assert_eq!(status, 401, "unsigned: refused as such");
}
