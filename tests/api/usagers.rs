//! Usagers: validation, sealed storage, audited reads, blind-index search, visibility,
//! and no personal data in clear in the database files, the logs or the audit log.

use std::sync::{Arc, Mutex};

use mandat::domain::usager::{NewUsager, UsagerInput};
use mandat::service::usagers;

use crate::common::{TestApp, backend};
use crate::mandates_support::*;

#[tokio::test]
async fn bad_input_is_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let base = UsagerInput {
        given_name: "Jeanne",
        family_name: "Martin",
        birthdate: "1950-01-02",
        birthplace: None,
        phone: Some("06 12 34 56 78"),
        email: None,
        identity_check: "document",
    };
    let today = today(&app);
    for (bad, field) in [
        (
            UsagerInput {
                phone: Some("06 12"),
                ..base
            },
            "phone",
        ),
        (
            UsagerInput {
                birthdate: "2026-11-24",
                ..base
            },
            "birthdate",
        ),
        (
            UsagerInput {
                given_name: "  ",
                ..base
            },
            "given_name",
        ),
        (
            UsagerInput {
                family_name: "",
                ..base
            },
            "family_name",
        ),
        (
            UsagerInput {
                email: Some("jeanne@"),
                ..base
            },
            "email",
        ),
        (
            UsagerInput {
                identity_check: "passport",
                ..base
            },
            "identity_check",
        ),
    ] {
        let e = NewUsager::parse(&bad, today).unwrap_err();
        assert_eq!(
            e.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            [field]
        );
        assert!(
            e[0].message.chars().any(|c| "éèàç".contains(c))
                || e[0].message.starts_with(char::is_uppercase)
        );
    }
    assert!(NewUsager::parse(&base, today).is_ok());
    assert_eq!(app.count("usager").await, 0);
}

#[tokio::test]
async fn bad_input_over_http_is_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let before = app.audit_events().await.len();
    for (field, value) in [
        ("phone", serde_json::json!("06 12")),
        ("phone", serde_json::json!("+999 1234")),
        ("birthdate", serde_json::json!("2026-11-24")),
        ("birthdate", serde_json::json!("1850-01-01")),
        ("given_name", serde_json::json!("   ")),
        ("family_name", serde_json::json!("")),
        ("family_name", serde_json::json!("x".repeat(101))),
        ("family_name", serde_json::json!("Mar\u{0007}tin")),
        ("email", serde_json::json!("a@b")),
        ("identity_check", serde_json::json!("passport")),
    ] {
        let mut body = usager_body(Some(PHONE));
        body[field] = value;
        let (s, b) = d.post(&app, "/api/v1/usagers", body).await;
        assert_eq!(s, 422, "{field}: {b}");
        assert_eq!(b["code"], "validation_failed");
        assert_eq!(b["errors"][0]["field"], field);
        assert!(!b.to_string().contains(FAMILY), "no personal data echoed");
    }
    let (s, _) = d.post(&app, "/api/v1/usagers", serde_json::json!({"given_name": "A", "family_name": "B", "birthdate": "1950-01-01", "identity_check": "document", "nickname": "x"})).await;
    assert_eq!(s, 400, "unknown field");
    for t in ["usager", "usager_link", "usager_index", "idempotency_key"] {
        assert_eq!(app.count(t).await, 0, "{t}");
    }
    assert_eq!(app.audit_events().await.len(), before);
    // The same usager, valid: 201, phone in E.164.
    let (s, b) = d
        .post(&app, "/api/v1/usagers", usager_body(Some("0692 12 34 56")))
        .await;
    assert_eq!(s, 201);
    assert_eq!(b["phone"], "+262692123456");
    assert_eq!(b["given_name"], GIVEN);
    let id = b["id"].as_str().unwrap();
    let (s, r) = d.get(&app, &format!("/api/v1/usagers/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(r["family_name"], FAMILY);
    let (s, found) = d
        .get(&app, "/api/v1/usagers?q=quatrefeuilles%201948-03-09")
        .await;
    assert_eq!(s, 200);
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(d.get(&app, "/api/v1/usagers?q=").await.0, 422);
}

#[tokio::test]
async fn created_usager_is_sealed_readable_by_its_organisations_and_every_read_audited() {
    let app = TestApp::spawn().await;
    let a = caller(&app, None).await;
    let b = caller(&app, None).await;
    let created = fresh(
        usagers::create(&app.state, &a, input(&app, Some(PHONE)), None)
            .await
            .unwrap(),
    );
    assert_eq!(created.phone.as_deref(), Some(PHONE_E164));
    assert_eq!(created.given_name, GIVEN);
    let read = usagers::get(&app.state, &a, created.id).await.unwrap();
    assert_eq!(read.family_name, FAMILY);
    assert_eq!(read.email.as_deref(), Some(EMAIL));
    assert_eq!(read.birthdate, "1948-03-09");
    assert_eq!(read.birthplace.as_deref(), Some("Roubaix"));
    let e = usagers::get(&app.state, &b, created.id).await.unwrap_err();
    assert_eq!(status_of(&e), 404);
    let e = usagers::get(&app.state, &a, uuid::Uuid::now_v7())
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 404);
    let events = app.audit_events().await;
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "usager.read")
        .collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0]["usager"], created.id.to_string());
    assert_eq!(reads[0]["organisation"], a.organisation_id.to_string());
    let c = events
        .iter()
        .find(|e| e["action"] == "usager.created")
        .unwrap();
    assert_eq!(
        c["details"],
        serde_json::json!({"identity_check":"document","has_phone":true,"has_email":true})
    );
}

#[tokio::test]
async fn search_by_blind_index() {
    let app = TestApp::spawn().await;
    let a = caller(&app, None).await;
    let b = caller(&app, None).await;
    let u = usager(&app, &a, None).await;
    let _other = usager(&app, &b, None).await;
    for q in [
        "quatrefeuilles",
        "QUATREFEUILLES",
        "Marguerite-Zoé Quatrefeuilles",
        "quatrefeuilles margueritezoe",
        "Quatrefeuilles 1948-03-09",
        "1948-03-09",
    ] {
        let found = usagers::search(&app.state, &a, q, 20).await.unwrap();
        assert_eq!(found.iter().map(|x| x.id).collect::<Vec<_>>(), [u], "{q}");
    }
    for q in [
        "quatre",
        "Quatrefeuilles 1948-03-10",
        "marguerite",
        "Zoé Dupont",
    ] {
        assert!(
            usagers::search(&app.state, &a, q, 20)
                .await
                .unwrap()
                .is_empty(),
            "{q}"
        );
    }
    assert_eq!(
        status_of(
            &usagers::search(&app.state, &a, " - ", 20)
                .await
                .unwrap_err()
        ),
        422
    );
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "usager.read")
            .count(),
        6,
        "every result is a read"
    );
}

/// Captures every log line (all levels) written while the test runs on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every log line of this test process from now on (a process-wide subscriber: scoped ones
/// race with callsite caching when tests run in parallel).
fn capture_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w == n)
}

#[tokio::test]
async fn personal_data_never_in_clear_in_database_logs_or_audit() {
    let logs = capture_logs();
    let app = TestApp::spawn().await;
    // A scripted session over HTTP: register, read, search, SMS mandate, wrong code, public
    // consent, printed mandate, consent, partial and full revocation.
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    assert_eq!(d.get(&app, &format!("/api/v1/usagers/{u}")).await.0, 200);
    let q = format!("/api/v1/usagers?q={}", FAMILY);
    assert_eq!(
        d.get(&app, &q).await.1["items"].as_array().unwrap().len(),
        1
    );
    let s = d.new_mandate(&app, u, &["social"], "sms").await;
    let sid = s["id"].as_str().unwrap();
    assert_eq!(
        d.post(
            &app,
            &format!("/api/v1/mandates/{sid}/consent"),
            serde_json::json!({"code": "000000"})
        )
        .await
        .0,
        422
    );
    let (code, challenge) = last_sms_code(&app).await;
    let res = app
        .new_client()
        .post(app.url("/api/v1/public/consent"))
        .json(&serde_json::json!({"challenge_id": challenge, "code": code, "decision": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let p = d.active(&app, u, &["papiers", "famille"]).await;
    let pid = p["id"].as_str().unwrap();
    assert_eq!(
        d.post(
            &app,
            &format!("/api/v1/mandates/{pid}/revoke"),
            serde_json::json!({"demarches": ["famille"], "reason": "usager_request"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.post(
            &app,
            &format!("/api/v1/mandates/{pid}/revoke"),
            serde_json::json!({"reason": "error"})
        )
        .await
        .0,
        200
    );
    let events = app.audit_events().await;
    assert!(events.len() >= 12);
    let secrets = [
        GIVEN,
        FAMILY,
        "Quatrefeuilles",
        "612345678",
        "6 12 34 56 78",
        EMAIL,
        "marguerite.quatrefeuilles",
        "Roubaix",
    ];
    let audit_text = serde_json::to_string(&events).unwrap();
    for s in secrets {
        assert!(!audit_text.contains(s), "{s} in the audit log");
    }
    let log_bytes = logs.0.lock().unwrap().clone();
    assert!(
        contains(&log_bytes, "mandat::"),
        "the application's logs were captured"
    );
    for s in secrets {
        assert!(!contains(&log_bytes, s), "{s} in the logs");
    }
    if backend() == "sqlite" {
        // Raw bytes of the database file and its write-ahead log.
        let mut raw = Vec::new();
        for name in ["mandat.db", "mandat.db-wal"] {
            if let Ok(b) = std::fs::read(app.dir.path().join(name)) {
                raw.extend(b);
            }
        }
        assert!(raw.len() > 10_000);
        for s in secrets {
            assert!(!contains(&raw, s), "{s} in the database files");
        }
        // Sanity: the scan would see clear text (the organisation name is stored in clear).
        assert!(contains(&raw, "France Services Test"));
    } else {
        // PostgreSQL: dump every text-like cell of the application's tables.
        let dump = pg_text_dump(&app).await;
        assert!(dump.contains("France Services Test"));
        for s in secrets {
            assert!(!dump.contains(s), "{s} in the database");
        }
    }
}

async fn pg_text_dump(app: &TestApp) -> String {
    use secrecy::ExposeSecret as _;
    use sqlx::Connection as _;
    let mandat::config::DatabaseUrl::Postgres(url) = &app.db_url else {
        unreachable!()
    };
    let mut c = sqlx::PgConnection::connect(url.expose_secret())
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let mut out = String::new();
    for t in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT (t.*)::text FROM \"{t}\" t"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        for r in rows {
            out.push_str(&r);
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn dpo_erasure_crypto_shreds_and_respects_retention() {
    let app = TestApp::spawn().await;
    let mut d = desk(&app, None).await;
    let dpo = app.platform("dpo@exemple.fr", "dpo").await;
    let mut dpo_client = app.login(&dpo).await;
    // A usager registered with an idempotency key, never given a mandate.
    let res = d
        .client
        .post(app.url("/api/v1/usagers"))
        .header("Idempotency-Key", "reg-1")
        .json(&usager_body(Some(PHONE)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let lone: String = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.count("idempotency_key").await, 1);
    let del =
        |c: &reqwest::Client, id: &str| c.delete(app.url(&format!("/api/v1/usagers/{id}"))).send();
    assert_eq!(
        del(&d.client, &lone).await.unwrap().status(),
        403,
        "aidants do not erase"
    );
    assert_eq!(del(&dpo_client, &lone).await.unwrap().status(), 204);
    assert_eq!(d.get(&app, &format!("/api/v1/usagers/{lone}")).await.0, 404);
    assert_eq!(
        d.get(&app, &format!("/api/v1/usagers?q={FAMILY}")).await.1["items"],
        serde_json::json!([])
    );
    assert_eq!(app.count("idempotency_key").await, 0);
    assert_eq!(
        app.count("usager WHERE wrapped_key IS NULL AND erased_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(del(&dpo_client, &lone).await.unwrap().status(), 404);

    // With a mandate: refused while active, and while its evidence is retained.
    let u = d.new_usager(&app, None).await;
    let m = d.active(&app, u, &["social"]).await;
    assert_eq!(
        del(&dpo_client, &u.to_string()).await.unwrap().status(),
        409
    );
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{}/revoke", m["id"].as_str().unwrap()),
            serde_json::json!({"reason": "usager_request"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        del(&dpo_client, &u.to_string()).await.unwrap().status(),
        409
    );
    app.clock.advance(chrono::Duration::days(2193));
    dpo_client = app.login(&dpo).await;
    assert_eq!(
        del(&dpo_client, &u.to_string()).await.unwrap().status(),
        204
    );
    d.relogin(&app).await;
    // The mandate remains (evidence: ids, status, hash), its terms are now unreadable.
    let (s, still) = d
        .get(
            &app,
            &format!("/api/v1/mandates/{}", m["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(still["status"], "revoked");
    let events = app.audit_events().await;
    let erased: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "usager.erased")
        .collect();
    assert_eq!(erased.len(), 2);
    assert_eq!(erased[1]["details"], serde_json::json!({"mandates": 1}));
}
