//! The first checkpoint: signed soon after the first event (the first-administrator link
//! logged at start included), `GET /api/v1/audit/checkpoints/latest` is `404` only while the
//! log is empty, and a signed checkpoint is logged at `debug`, not `info`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone as _;
use mandat::app::{App, AppState};
use mandat::clock::ManualClock;
use mandat::config::{Config, DatabaseUrl};
use serde_json::Value;

use crate::audit_trail::{TEST_MASTER_KEY, append};
use crate::common::{TestApp, fresh_database};

/// Generous bound for what must happen within about 2 s.
const DEADLINE: Duration = Duration::from_secs(10);

async fn stored_checkpoint_size(state: &AppState) -> Option<i64> {
    let mut tx = state.store.begin_read().await.unwrap();
    tx.latest_audit_checkpoint()
        .await
        .unwrap()
        .map(|c| c.tree_size)
}

#[tokio::test]
async fn an_event_logged_before_the_writer_starts_is_checkpointed_without_more_events() {
    // What `serve` does on a fresh database: the first-administrator link is logged (and
    // sequenced) before the checkpoint writer's start-up verification.
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let config = Config::for_tests(db, dir.path());
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
    ));
    let state = AppState::new(config, clock, true).await.unwrap();
    let link = mandat::service::users::first_admin_link(&state)
        .await
        .unwrap();
    assert!(link.is_some());
    state.sequencer.barrier().await.unwrap();
    assert_eq!(stored_checkpoint_size(&state).await, None);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = App::with_listener(state.clone(), listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    // The background writer signs it, with no other event arriving.
    let start = Instant::now();
    let size = loop {
        if let Some(size) = stored_checkpoint_size(&state).await {
            break size;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the first event was not checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(size, 1);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_first_event_of_a_running_server_is_checkpointed() {
    let app = TestApp::spawn().await;
    app.org("Structure A").await;
    let start = Instant::now();
    while stored_checkpoint_size(&app.state).await.is_none() {
        assert!(start.elapsed() < DEADLINE, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn latest_checkpoint_is_not_found_only_while_the_log_is_empty() {
    // A writer that would not sign for an hour: the endpoint signs the first checkpoint.
    let app = TestApp::builder()
        .with_config(|c| {
            c.checkpoint_interval_ms = 3_600_000;
            c.checkpoint_every_events = 1_000_000;
            c.publish_checkpoints = true;
        })
        .spawn()
        .await;
    let res = app.get("/api/v1/audit/checkpoints/latest").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
    append(&app, 1).await;
    let res = app.get("/api/v1/audit/checkpoints/latest").await;
    assert_eq!(res.status(), 200);
    let cp: Value = res.json().await.unwrap();
    assert_eq!(cp["tree_size"], 1);
    // Later ones come from the writer as usual: the endpoint does not sign again.
    append(&app, 2).await;
    let cp: Value = app
        .get("/api/v1/audit/checkpoints/latest")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cp["tree_size"], 1);
    assert_eq!(app.count("audit_checkpoint").await, 1);
}

/// Runs `serve` in `dir` with `log` until the latest checkpoint covers `size` entries;
/// returns what it logged.
async fn serve_until_checkpoint(
    dir: &std::path::Path,
    db: &DatabaseUrl,
    log: &str,
    size: i64,
) -> String {
    use secrecy::ExposeSecret as _;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err_path = dir.join(format!("serve-{size}.err"));
    let mut c = crate::common::mandat_command(dir);
    if let DatabaseUrl::Postgres(u) = db {
        c.env("MANDAT_DATABASE_URL", u.expose_secret())
            .env("MANDAT_MASTER_KEY", TEST_MASTER_KEY);
    }
    let mut server = c
        .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
        .env("MANDAT_PUBLISH_CHECKPOINTS", "1")
        .env("MANDAT_LOG", log)
        .env("MANDAT_LOG_FORMAT", "json")
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/audit/checkpoints/latest");
    let start = Instant::now();
    let mut reached = false;
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(res) = client.get(&url).send().await
            && res.status() == 200
        {
            let cp: Value = res.json().await.unwrap();
            if cp["tree_size"].as_i64() >= Some(size) {
                reached = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    let logs = std::fs::read_to_string(&err_path).unwrap();
    assert!(reached, "no checkpoint of {size} entries: {logs}");
    logs
}

#[tokio::test]
async fn a_signed_checkpoint_is_logged_at_debug_not_info() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    // On a database without accounts, `serve` logs the first-administrator link: one event.
    let logs = serve_until_checkpoint(dir.path(), &db, "info", 1).await;
    assert!(
        logs.contains("listening"),
        "info lines were captured: {logs}"
    );
    assert!(!logs.contains("audit checkpoint signed"), "{logs}");
    // The next start logs a new link: a second event, signed by the writer, seen at debug.
    let logs = serve_until_checkpoint(dir.path(), &db, "info,mandat=debug", 2).await;
    let line = logs
        .lines()
        .find(|l| l.contains("audit checkpoint signed"))
        .unwrap_or_else(|| panic!("no checkpoint line at debug: {logs}"));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "DEBUG");
}
