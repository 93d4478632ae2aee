//! The printed code leaves idempotent replays once its challenge closes; consent-code
//! failures are checked and counted atomically (per challenge in the database, per client in
//! memory), under concurrent entries.

use chrono::Duration;
use mandat::domain::mandate::{ConsentChannel, MandateDuration};
use mandat::service::consent::{self, Decision};
use mandat::service::idempotency::{self, IdemKey, Replayable};
use mandat::service::mandates::{self, NewMandate};
use mandat::service::usagers::Caller;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;
use crate::mandates_support::*;

fn key(app: &TestApp, c: &Caller, name: &str) -> IdemKey {
    IdemKey::new(
        &app.state.keyring,
        format!("{}:mandates", c.aidant_id),
        name,
        name.as_bytes(),
    )
    .unwrap()
}

fn print_input(u: Uuid) -> NewMandate {
    NewMandate {
        usager_id: u,
        demarches: demarches(&["social"]),
        duration: MandateDuration::Month,
        channel: ConsentChannel::Print,
    }
}

/// The answer to a repeated creation with the same key: must be a replay.
async fn replay(app: &TestApp, c: &Caller, u: Uuid, name: &str) -> Value {
    match mandates::create(&app.state, c, print_input(u), Some(&key(app, c, name)))
        .await
        .unwrap()
    {
        Replayable::Replay { status, body } => {
            assert_eq!(status, 201);
            serde_json::from_slice(&body).unwrap()
        }
        Replayable::Fresh(_) => panic!("not replayed"),
    }
}

/// What the database keeps as the first answer (sealed), opened.
async fn stored(app: &TestApp, c: &Caller, name: &str) -> Value {
    let mut tx = app.state.store.begin().await.unwrap();
    let (_, body) = idempotency::lookup(&app.state.keyring, tx.as_mut(), &key(app, c, name))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn without_code(mut v: Value) -> Value {
    v["consent"].as_object_mut().unwrap().remove("code");
    v
}

#[tokio::test]
async fn idempotent_replays_lose_the_printed_code_once_the_challenge_closes() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let mut firsts = Vec::new();
    for name in ["consent", "refusal", "lock", "expiry"] {
        let u = usager(&app, &c, None).await;
        let first = fresh(
            mandates::create(&app.state, &c, print_input(u), Some(&key(&app, &c, name)))
                .await
                .unwrap(),
        );
        let first = serde_json::to_value(&first).unwrap();
        let code = first["consent"]["code"].as_str().unwrap().to_owned();
        // While the challenge is open: the first answer exactly, code included (the
        // attestation may be printed again), though the database copy never holds it.
        assert_eq!(replay(&app, &c, u, name).await, first);
        assert!(
            stored(&app, &c, name).await["consent"]
                .get("code")
                .is_none()
        );
        firsts.push((name, u, first, code));
    }
    for (name, _, first, code) in &firsts {
        let id: Uuid = first["id"].as_str().unwrap().parse().unwrap();
        let challenge: Uuid = first["consent"]["challenge_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        match *name {
            "consent" => {
                consent::consent_at_desk(&app.state, &c, id, code)
                    .await
                    .unwrap();
            }
            "refusal" => {
                consent::consent_public(&app.state, challenge, code, Decision::Refuse, None)
                    .await
                    .unwrap();
            }
            "lock" => {
                for _ in 0..5 {
                    consent::consent_at_desk(&app.state, &c, id, "AAAA-BBBB-CCCC")
                        .await
                        .unwrap_err();
                }
            }
            _ => {}
        }
    }
    app.clock.advance(Duration::days(15));
    for (name, u, first, code) in &firsts {
        let again = replay(&app, &c, *u, name).await;
        assert_eq!(again, without_code(first.clone()), "{name}");
        assert!(!again.to_string().contains(code.as_str()), "{name}");
    }
    assert_eq!(app.count("mandate").await, 4, "replays created nothing");
}

#[tokio::test]
async fn replay_over_http_after_consent_has_no_code() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let body = json!({"usager_id": u, "demarches": ["social"], "duration": "month", "consent_channel": "print"});
    let send = || {
        d.client
            .post(app.url("/api/v1/mandates"))
            .header("Idempotency-Key", "creation-1")
            .json(&body)
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let code = first["consent"]["code"].as_str().unwrap().to_owned();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{}/consent", first["id"].as_str().unwrap()),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 200);
    let after = send().await.unwrap();
    assert_eq!(after.status(), 201);
    let text = after.text().await.unwrap();
    assert!(!text.contains(&code));
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        without_code(first)
    );
}

async fn parallel_wrong_codes(app: &TestApp, c: &Caller, mandate: Uuid, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (state, c) = (app.state.clone(), c.clone());
            tokio::spawn(async move {
                consent::consent_at_desk(&state, &c, mandate, "AAAA-BBBB-CCCC")
                    .await
                    .map(|_| 200)
                    .unwrap_or_else(|e| status_of(&e))
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_codes_each_count_and_lock_once() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    // Five at once: four count down, exactly one is the fifth and locks.
    let u = usager(&app, &c, None).await;
    let five = print_mandate(&app, &c, u, &["social"]).await;
    assert_eq!(
        parallel_wrong_codes(&app, &c, five.id, 5).await,
        [422, 422, 422, 422, 423]
    );
    // Twelve at once: still five counted, one lock, the others find it locked.
    let u = usager(&app, &c, None).await;
    let twelve = print_mandate(&app, &c, u, &["travail"]).await;
    let statuses = parallel_wrong_codes(&app, &c, twelve.id, 12).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 423).count(),
        8,
        "{statuses:?}"
    );

    for m in [&five, &twelve] {
        let after = mandates::get(&app.state, &c, m.id).await.unwrap();
        assert_eq!(after.status, "refused");
        let view = after.consent.unwrap();
        assert_eq!((view.status.as_str(), view.attempts_left), ("locked", 0));
    }
    assert_eq!(
        app.count("consent_challenge WHERE attempts = 5 AND status = 'locked'")
            .await,
        2
    );
    let events = app.audit_events().await;
    for m in [&five, &twelve] {
        let of = |action: &str| {
            events
                .iter()
                .filter(|e| e["action"] == action && e["mandate"] == m.id.to_string())
                .count()
        };
        assert_eq!(of("mandate.consent_failed"), 5);
        assert_eq!(of("mandate.refused"), 1, "one lock");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_public_entries_cannot_pass_the_per_client_limit() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let m = d.new_mandate(&app, u, &["social"], "print").await;
    let challenge = m["consent"]["challenge_id"].clone();
    let public = app.new_client();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let req = public.post(app.url("/api/v1/public/consent")).json(
                &json!({"challenge_id": challenge, "code": "ZZZZ-ZZZZ-ZZZZ", "decision": "refuse"}),
            );
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [422, 422, 422, 422, 429, 429, 429, 429, 429, 429],
        "four entries per client, however many arrive at once"
    );
    assert_eq!(
        app.count("consent_challenge WHERE attempts = 4 AND status = 'open'")
            .await,
        1
    );
}
