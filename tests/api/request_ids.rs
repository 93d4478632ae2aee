//! Request ids are the server's: a client's `X-Request-Id` is never echoed, logged, stored in
//! the audit log or exported; every response carries a server-generated UUID.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestApp;

/// A 2,000-character client request id, recognisable by its first characters.
fn client_request_id() -> String {
    let mut s = String::from("CLIENTRID-");
    while s.len() < 2000 {
        s.push_str("0123456789abcdefghij");
    }
    s.truncate(2000);
    s
}

/// The part looked for in every haystack (short enough to catch a truncated copy).
const MARK: &[u8] = b"CLIENTRID";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn server_uuid(res: &reqwest::Response) -> uuid::Uuid {
    let v = res.headers()["x-request-id"].to_str().unwrap();
    assert!(!v.contains("CLIENTRID"));
    uuid::Uuid::parse_str(v).unwrap_or_else(|_| panic!("not a UUID: {v}"))
}

/// Every table of the test database, as bytes: the SQLite files (with their journal), or a
/// text dump of every PostgreSQL table.
async fn database_bytes(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    match &app.db_url {
        mandat::config::DatabaseUrl::Sqlite(_) => ["mandat.db", "mandat.db-wal", "mandat.db-shm"]
            .iter()
            .filter_map(|f| {
                std::fs::read(app.dir.path().join(f))
                    .ok()
                    .map(|b| ((*f).to_owned(), b))
            })
            .collect(),
        mandat::config::DatabaseUrl::Postgres(u) => {
            use secrecy::ExposeSecret as _;
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(u.expose_secret())
                .await
                .unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            let mut out = Vec::new();
            for t in tables {
                let dump: Option<String> =
                    sqlx::query_scalar(&format!("SELECT string_agg(t::text, '|') FROM \"{t}\" t"))
                        .fetch_one(&mut c)
                        .await
                        .unwrap();
                out.push((t, dump.unwrap_or_default().into_bytes()));
            }
            out
        }
    }
}

#[tokio::test]
async fn a_client_request_id_is_replaced_and_never_stored_or_exported() {
    let app = TestApp::spawn().await;
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    let rid = client_request_id();
    let client = app.new_client();

    // A failed login and a successful one, both audited, both with the client's id.
    let res = client
        .post(app.url("/api/v1/session"))
        .header("x-request-id", &rid)
        .json(&json!({"email": dpo.email, "password": "mauvais mot de passe", "totp": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let failed_id = server_uuid(&res);
    let body = res.text().await.unwrap();
    assert!(!body.contains("CLIENTRID"), "{body}");
    let res = client
        .post(app.url("/api/v1/session"))
        .header("x-request-id", &rid)
        .json(&json!({"email": dpo.email, "password": dpo.password, "totp": app.code(&dpo.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let login_id = server_uuid(&res);
    assert_ne!(failed_id, login_id, "one id per request");
    // Error responses too (a 404 of an unknown route).
    let res = client
        .get(app.url("/api/v1/nothing"))
        .header("x-request-id", &rid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server_uuid(&res);

    // The audit events carry the server's ids.
    let events = app.audit_events().await;
    let by_action = |a: &str| {
        events
            .iter()
            .find(|e| e["action"] == a)
            .unwrap_or_else(|| panic!("no {a}"))
            .clone()
    };
    assert_eq!(
        by_action("aidant.login_failed")["request_id"],
        failed_id.to_string()
    );
    assert_eq!(
        by_action("aidant.login")["request_id"],
        login_id.to_string()
    );
    for e in &events {
        assert!(!e.to_string().contains("CLIENTRID"), "{e}");
    }

    // Exports (which are audited too, with the client's id sent again).
    app.step_up(&client, &dpo).await;
    for format in ["jsonl", "csv"] {
        let res = client
            .get(app.url(&format!("/api/v1/audit/export?format={format}")))
            .header("x-request-id", &rid)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        server_uuid(&res);
        let text = res.text().await.unwrap();
        assert!(text.contains(&login_id.to_string()), "{format}: {text}");
        assert!(!text.contains("CLIENTRID"), "{format}");
    }
    let exported = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["action"] == "audit.exported")
        .count();
    assert_eq!(exported, 2);

    // Nowhere in the database, raw bytes included.
    app.state.sequencer.barrier().await.unwrap();
    let haystacks = database_bytes(&app).await;
    assert!(!haystacks.is_empty());
    for (name, bytes) in &haystacks {
        assert!(
            !contains(bytes, MARK),
            "the client's request id is in {name}"
        );
    }
}

#[tokio::test]
async fn a_client_request_id_is_not_logged_by_serve() {
    use secrecy::ExposeSecret as _;
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err_path = dir.path().join("serve.err");
    let out_path = dir.path().join("serve.out");
    let mut c = crate::common::mandat_command(dir.path());
    if let mandat::config::DatabaseUrl::Postgres(u) = &url {
        c.env("MANDAT_DATABASE_URL", u.expose_secret())
            .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY);
    }
    let mut server = c
        .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
        .env("MANDAT_INSECURE_HTTP", "1")
        .env("MANDAT_LOG", "debug")
        .arg("serve")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rid = client_request_id();
    let res = client
        .post(format!("{base}/api/v1/session"))
        .header("x-request-id", &rid)
        .json(&json!({"email": "personne@example.fr", "password": "x", "totp": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let id = server_uuid(&res);
    let p: Value = res.json().await.unwrap();
    assert!(!p.to_string().contains("CLIENTRID"));
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    let mut logs = std::fs::read(&err_path).unwrap();
    logs.extend(std::fs::read(&out_path).unwrap());
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains(&id.to_string()),
        "the request was logged with the server's id: {text}"
    );
    assert!(!contains(&logs, MARK), "the client's request id was logged");
}
