//! SMS leave after the commit: messages are written to `sms_outbox` in the business
//! transaction and sent by the delivery worker afterwards (retries with backoff, then
//! `sms.failed`); a rolled-back creation sends nothing; the outbox keeps no code in clear.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use mandat::app::AppState;
use mandat::config::{Config, SmsProvider};
use mandat::domain::mandate::ConsentChannel;
use mandat::service::consent;
use mandat::sms::delivery::{MAX_ATTEMPTS, backoff, deliver_due};
use serde_json::json;
use uuid::Uuid;

use crate::common::{TestApp, backend};
use crate::mandates_support::*;

/// Polls `cond` until it holds, within a bounded deadline (never a timing assertion: the
/// deadline only turns a hang into a failure).
async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// Waits until the message of this kind has made `attempts` attempts and its worker has
/// recorded the result (no claim held).
async fn wait_attempts(app: &TestApp, kind: &str, attempts: i64) {
    let sql = format!(
        "sms_outbox WHERE kind = '{kind}' AND attempts = {attempts} AND claimed_until IS NULL"
    );
    wait_until(&format!("{kind} attempt {attempts}"), || async {
        app.state.sms.notify();
        app.count(&sql).await == 1
    })
    .await;
}

/// Rows of `sms_outbox` whose sealed message contains `needle` in clear.
async fn rows_holding(app: &TestApp, needle: &str) -> i64 {
    let sql = if backend() == "postgres" {
        format!("sms_outbox WHERE position(convert_to('{needle}', 'UTF8') in message) > 0")
    } else {
        format!("sms_outbox WHERE instr(message, CAST('{needle}' AS BLOB)) > 0")
    };
    app.count(&sql).await
}

fn outbox_file(app: &TestApp) -> std::path::PathBuf {
    app.dir.path().join("sms-outbox.jsonl")
}

fn failing_provider(c: &mut Config) {
    c.sms = SmsProvider::Http {
        url: "https://sms.example/send".into(),
        token: secrecy::SecretString::from("jeton".to_owned()),
    };
}

#[tokio::test]
async fn messages_are_queued_in_the_transaction_sent_after_it_and_erased() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .unwrap();
    let challenge = m.consent.unwrap().challenge_id;
    let lines = outbox(&app).await;
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["kind"].as_str(), lines[1]["kind"].as_str()),
        (Some("recap"), Some("code"))
    );
    for l in &lines {
        assert_eq!(l["to"], PHONE_E164);
        assert_eq!(l["challenge_id"], challenge.to_string());
        assert_eq!(l["mandate_id"], m.id.to_string());
    }
    assert_eq!(app.count("sms_outbox").await, 2);
    assert_eq!(
        app.count(&format!(
            "sms_outbox WHERE status = 'sent' AND attempts = 1 AND message IS NULL \
             AND done_at IS NOT NULL AND challenge_id = {}",
            uuid_literal(challenge)
        ))
        .await,
        2,
        "sent once, and the sealed message (number and code) erased"
    );
    // The worker has nothing left to do: no message goes twice.
    let pass = deliver_due(&app.state, app.state.sms.sender())
        .await
        .unwrap();
    assert_eq!(pass.handled(), 0);
    assert_eq!(outbox_now(&app).len(), 2);
    // The bookkeeping rows (ids and times only) go with the expiry job after a day.
    mandat::service::lifecycle::expire_due(&app.state)
        .await
        .unwrap();
    assert_eq!(app.count("sms_outbox").await, 2);
    app.clock.advance(Duration::days(1) + Duration::seconds(1));
    mandat::service::lifecycle::expire_due(&app.state)
        .await
        .unwrap();
    assert_eq!(app.count("sms_outbox").await, 0);
}

/// A UUID as a literal of the test's backend (BLOB on SQLite, UUID on PostgreSQL).
fn uuid_literal(id: Uuid) -> String {
    if backend() == "postgres" {
        format!("'{id}'")
    } else {
        format!("X'{}'", id.simple())
    }
}

#[tokio::test]
async fn a_failing_provider_is_retried_with_backoff_then_given_up_and_audited() {
    let app = TestApp::builder()
        .with_config(failing_provider)
        .spawn()
        .await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    // The creation answers 201: the provider is not called in the request.
    let m = d.new_mandate(&app, u, &["social"], "sms").await;
    let id = m["id"].as_str().unwrap().to_owned();
    let challenge = m["consent"]["challenge_id"].as_str().unwrap().to_owned();

    wait_attempts(&app, "recap", 1).await;
    // The aidant's page is told the SMS is being retried, in French, and keeps the mandate.
    wait_until("the retry is shown to the aidant", || async {
        let (_, st) = d.get(&app, &format!("/mandats/{id}/statut")).await;
        st["sms"]
            .as_str()
            .is_some_and(|t| t.contains("un nouvel essai est en cours"))
    })
    .await;
    // Queued sealed: neither the number nor any text in clear.
    assert_eq!(app.count("sms_outbox WHERE message IS NOT NULL").await, 2);
    assert_eq!(rows_holding(&app, PHONE_E164).await, 0);
    assert_eq!(rows_holding(&app, "612345678").await, 0);
    assert_eq!(rows_holding(&app, "Votre code").await, 0);
    // The code waits for its recap.
    assert_eq!(
        app.count("sms_outbox WHERE kind = 'code' AND attempts = 0")
            .await,
        1
    );
    for kind in ["recap", "code"] {
        if kind == "code" {
            wait_attempts(&app, "code", 1).await;
        }
        for attempt in 2..=MAX_ATTEMPTS {
            // Each retry waits for its backoff (at most 40 s here): move past it.
            app.clock.advance(Duration::seconds(45));
            wait_attempts(&app, kind, attempt).await;
        }
    }
    wait_until("both messages given up", || async {
        app.count("sms_outbox WHERE status = 'failed'").await == 2
    })
    .await;
    assert_eq!(
        app.count("sms_outbox WHERE message IS NOT NULL").await,
        0,
        "a failed message is erased too"
    );
    assert!(!outbox_file(&app).exists(), "nothing was ever sent");

    let events = app.audit_events().await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "sms.failed")
        .collect();
    assert_eq!(failed.len(), 2);
    for e in &failed {
        assert_eq!(
            e["details"],
            json!({"challenge": challenge, "attempts": MAX_ATTEMPTS})
        );
        assert_eq!(e["mandate"], id);
        assert_eq!(e["organisation"], d.org.to_string());
        assert_eq!(e["actor"]["kind"], "system");
    }
    let text = serde_json::to_string(&failed).unwrap();
    assert!(!text.contains("612345678") && !text.contains("Votre code"));
    // The mandate itself was created and waits for consent (the aidant may resend).
    let (_, now) = d.get(&app, &format!("/api/v1/mandates/{id}")).await;
    assert_eq!(now["status"], "pending_consent");
    // The aidant sees why in French, on the live status and on the code-entry page.
    let (_, st) = d.get(&app, &format!("/mandats/{id}/statut")).await;
    assert_eq!(st["status"], "pending_consent");
    let notice = st["sms"].as_str().expect("a notice once the SMS failed");
    assert!(notice.contains("n'a pas pu être envoyé"), "{notice}");
    assert!(notice.contains("Le mandat est conservé"), "{notice}");
    let page = d
        .client
        .get(app.url(&format!("/mandats/{id}/consentement")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("n&#39;a pas pu être envoyé") || html.contains("n'a pas pu être envoyé"));
    assert!(html.contains("Renvoyer un code par SMS"));
}

#[tokio::test]
async fn a_message_that_failed_once_is_sent_at_the_next_attempt_in_order() {
    let app = TestApp::builder()
        .with_config(|c| {
            if let SmsProvider::Outbox { path } = &mut c.sms {
                // A directory that does not exist yet: every append fails until it does.
                *path = path
                    .parent()
                    .unwrap()
                    .join("later")
                    .join("sms-outbox.jsonl");
            }
        })
        .spawn()
        .await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .expect("created although the provider fails");
    wait_attempts(&app, "recap", 1).await;
    assert_eq!(app.count("sms_outbox WHERE status = 'pending'").await, 2);
    std::fs::create_dir(app.dir.path().join("later")).unwrap();
    app.clock.advance(backoff(1));
    wait_until("both messages sent", || async {
        app.state.sms.notify();
        app.count("sms_outbox WHERE status = 'sent'").await == 2
    })
    .await;
    let text = std::fs::read_to_string(app.dir.path().join("later/sms-outbox.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "recap", "the recap still comes first");
    assert_eq!(lines[1]["kind"], "code");
    assert_eq!(lines[1]["mandate_id"], m.id.to_string());
    assert_eq!(
        app.count("sms_outbox WHERE kind = 'recap' AND attempts = 2")
            .await,
        1
    );
    assert_eq!(
        app.count("sms_outbox WHERE kind = 'code' AND attempts = 1")
            .await,
        1
    );
    let events = app.audit_events().await;
    assert!(events.iter().all(|e| e["action"] != "sms.failed"));
}

#[tokio::test]
async fn a_creation_rolled_back_after_its_challenge_sends_nothing() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    // The last write of a creation with an Idempotency-Key is its stored answer, after the
    // challenge and its messages: make that write fail.
    if backend() == "postgres" {
        app.raw_sql(
            "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
        )
        .await
        .unwrap();
        app.raw_sql(
            "CREATE TRIGGER refuse_answer BEFORE INSERT ON idempotency_key \
             FOR EACH ROW EXECUTE FUNCTION refuse_insert()",
        )
        .await
        .unwrap();
    } else {
        app.raw_sql(
            "CREATE TRIGGER refuse_answer BEFORE INSERT ON idempotency_key \
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
        )
        .await
        .unwrap();
    }
    let body = json!({"usager_id": u, "demarches": ["social"], "duration": "month", "consent_channel": "sms"});
    let create = || {
        d.client
            .post(app.url("/api/v1/mandates"))
            .header("Idempotency-Key", "rollback-1")
            .json(&body)
            .send()
    };
    let res = create().await.unwrap();
    assert_eq!(res.status(), 500);
    for table in ["mandate", "consent_challenge", "sms_outbox"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    let pass = deliver_due(&app.state, app.state.sms.sender())
        .await
        .unwrap();
    assert_eq!(pass.handled(), 0);
    assert!(outbox(&app).await.is_empty());
    assert!(!outbox_file(&app).exists());
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .all(|e| e["action"] != "mandate.created" && e["action"] != "mandate.consent_sent")
    );

    // The same request once the write succeeds: created, and its two messages sent.
    let drop = if backend() == "postgres" {
        "DROP TRIGGER refuse_answer ON idempotency_key"
    } else {
        "DROP TRIGGER refuse_answer"
    };
    app.raw_sql(drop).await.unwrap();
    let res = create().await.unwrap();
    assert_eq!(res.status(), 201);
    let m: serde_json::Value = res.json().await.unwrap();
    let lines = outbox(&app).await;
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["mandate_id"] == m["id"]));
}

#[tokio::test]
async fn messages_of_a_challenge_closed_before_delivery_are_not_sent() {
    let app = TestApp::builder()
        .with_config(|c| {
            if let SmsProvider::Outbox { path } = &mut c.sms {
                *path = path
                    .parent()
                    .unwrap()
                    .join("later")
                    .join("sms-outbox.jsonl");
            }
        })
        .spawn()
        .await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .unwrap();
    let first = m.consent.unwrap().challenge_id;
    wait_attempts(&app, "recap", 1).await;
    // A resend voids the first challenge while its messages still wait.
    consent::resend(&app.state, &c, m.id).await.unwrap();
    std::fs::create_dir(app.dir.path().join("later")).unwrap();
    app.clock.advance(backoff(1));
    wait_until("every message handled", || async {
        app.state.sms.notify();
        app.count("sms_outbox WHERE status = 'pending'").await == 0
    })
    .await;
    let text = std::fs::read_to_string(app.dir.path().join("later/sms-outbox.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "only the new challenge's recap and code");
    assert!(lines.iter().all(|l| l["challenge_id"] != first.to_string()));
    assert_eq!(
        app.count(&format!(
            "sms_outbox WHERE status = 'void' AND message IS NULL AND challenge_id = {}",
            uuid_literal(first)
        ))
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_message_exactly_once() {
    let app = TestApp::spawn().await;
    // A second instance on the same database and outbox file, delivering in parallel with
    // the first one's worker.
    let config = Config::for_tests(app.db_url.clone(), app.dir.path());
    let other = AppState::new(config, app.clock.clone(), false)
        .await
        .unwrap();
    let c = caller(&app, None).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (state, stop) = (other.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    deliver_due(&state, state.sms.sender()).await.unwrap();
                    tokio::time::sleep(StdDuration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let mut challenges = Vec::new();
    for _ in 0..8 {
        let u = usager(&app, &c, Some(PHONE)).await;
        let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
            .await
            .unwrap();
        challenges.push(m.consent.unwrap().challenge_id.to_string());
    }
    let lines = outbox(&app).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(lines.len(), 16, "each message once");
    for ch in &challenges {
        let kinds: Vec<&str> = lines
            .iter()
            .filter(|l| l["challenge_id"] == ch.as_str())
            .map(|l| l["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["recap", "code"], "{ch}");
    }
    assert_eq!(
        app.count("sms_outbox WHERE status = 'sent' AND attempts = 1")
            .await,
        16
    );
}

/// A local stand-in for an SMS provider: records each request (authorization header and
/// JSON body) and answers `503` to the first one, `200` afterwards.
async fn stub_provider() -> (
    String,
    Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let log = seen.clone();
    let router = axum::Router::new().route(
        "/send",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
                let log = log.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut l = log.lock().unwrap();
                    l.push((auth, body));
                    if l.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/send"), seen)
}

#[tokio::test]
async fn the_http_provider_gets_both_messages_with_its_token_and_a_5xx_is_retried() {
    let (url, seen) = stub_provider().await;
    let app = TestApp::builder()
        .with_config(move |c| {
            c.sms = SmsProvider::Http {
                url,
                token: secrecy::SecretString::from("jeton-du-fournisseur".to_owned()),
            };
        })
        .spawn()
        .await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .expect("created");
    // The first attempt of the recap gets a 503: it stays pending and is retried.
    wait_attempts(&app, "recap", 1).await;
    assert_eq!(app.count("sms_outbox WHERE status = 'pending'").await, 2);
    app.clock.advance(backoff(1));
    wait_until("both messages delivered", || async {
        app.state.sms.notify();
        app.count("sms_outbox WHERE status = 'sent'").await == 2
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "503, then the recap again, then the code");
    for (auth, body) in &seen {
        assert_eq!(auth, "Bearer jeton-du-fournisseur");
        assert_eq!(body["to"], PHONE_E164);
        assert_eq!(
            body["reference"],
            m.consent.as_ref().unwrap().challenge_id.to_string()
        );
    }
    assert_eq!(seen[0].1["body"], seen[1].1["body"], "the recap again");
    assert!(
        seen[1].1["body"]
            .as_str()
            .unwrap()
            .contains("Conditions complètes")
    );
    let code = seen[2].1["body"].as_str().unwrap();
    assert!(code.contains("Votre code d'accord"));
    // The code the provider carried activates the mandate.
    let digits: String = code
        .split("code d'accord pour le mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(digits.len(), 6);
    let active = consent::consent_at_desk(&app.state, &c, m.id, &digits)
        .await
        .unwrap();
    assert_eq!(active.status, "active");
    let events = app.audit_events().await;
    assert!(events.iter().all(|e| e["action"] != "sms.failed"));
}
