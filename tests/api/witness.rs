//! The HTTP witness sink: a small receiver records the bodies it is sent. Checkpoints arrive
//! in order and verify (as a witness file given to `--against`); a receiver that fails first
//! still gets everything; a witness that is down blocks neither requests nor the writer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mandat::audit::checkpoint::read_external;

use crate::audit_trail::{append, cli_verify, verify};
use crate::common::TestApp;

#[derive(Default)]
struct Received {
    bodies: Vec<String>,
    auth: Vec<Option<String>>,
    attempts: usize,
}

#[derive(Clone)]
struct Receiver {
    state: Arc<Mutex<Received>>,
    /// Requests answered 503 before the receiver starts accepting.
    fail_first: usize,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mut s = r.state.lock().unwrap();
    s.attempts += 1;
    if s.attempts <= r.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    s.bodies.push(body);
    s.auth.push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    StatusCode::NO_CONTENT
}

/// Starts a receiver on port 0; returns its URL and what it records.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Received>>) {
    let state = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new()
        .route("/witness", axum::routing::post(receive))
        .with_state(Receiver {
            state: state.clone(),
            fail_first,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/witness"), state)
}

async fn app_with_witness(url: &str, token: Option<&str>) -> TestApp {
    let url = url.to_owned();
    let token = token.map(|t| secrecy::SecretString::from(t.to_owned()));
    TestApp::builder()
        .with_config(move |c| {
            c.checkpoint_interval_ms = 3_600_000;
            c.checkpoint_every_events = 1_000_000;
            c.checkpoint_witness_url = Some(url);
            c.checkpoint_witness_token = token;
        })
        .spawn()
        .await
}

/// Three checkpoints, each signed without waiting for the witness.
async fn three_checkpoints(app: &TestApp) -> Vec<i64> {
    let mut sizes = Vec::new();
    for _ in 0..3 {
        append(app, 2).await;
        let started = Instant::now();
        let row = app.state.checkpoints.write_now().await.unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the writer does not wait for the witness"
        );
        sizes.push(row.tree_size);
    }
    sizes
}

async fn wait_for(state: &Arc<Mutex<Received>>, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let bodies = state.lock().unwrap().bodies.clone();
        if bodies.len() >= n {
            return bodies;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "witness received {} of {n}",
            bodies.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The received bodies as a witness file, checked like one.
async fn check_received(app: &TestApp, bodies: &[String], sizes: &[i64]) {
    let got: Vec<i64> = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["tree_size"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, sizes, "in order, each once");
    let file = app.dir.path().join("received.jsonl");
    std::fs::write(&file, bodies.join("\n") + "\n").unwrap();
    // Each body is exactly a witness-file line.
    let local = std::fs::read_to_string(app.dir.path().join("witness.jsonl")).unwrap();
    assert_eq!(local.lines().collect::<Vec<_>>(), bodies);
    let notes = read_external(&file).unwrap();
    let r = verify(app, &notes).await;
    assert!(r.ok, "{r:?}");
    let (code, out) = cli_verify(app, Some("received.jsonl")).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn checkpoints_reach_the_http_witness_in_order_and_verify() {
    let (url, received) = receiver(0).await;
    let app = app_with_witness(&url, Some("t0k3n-witness")).await;
    let sizes = three_checkpoints(&app).await;
    let bodies = wait_for(&received, 3).await;
    check_received(&app, &bodies, &sizes).await;
    assert!(
        received
            .lock()
            .unwrap()
            .auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer t0k3n-witness"))
    );
    let stats = app.state.checkpoints.http_witness().unwrap().stats();
    assert_eq!((stats.delivered, stats.failures, stats.queued), (3, 0, 0));
}

#[tokio::test]
async fn a_witness_that_fails_first_still_gets_everything_and_blocks_nothing() {
    let (url, received) = receiver(3).await;
    let app = app_with_witness(&url, None).await;
    let sizes = three_checkpoints(&app).await;
    // Requests are served while the witness fails.
    assert_eq!(app.get("/readyz").await.status(), 200);
    let bodies = wait_for(&received, 3).await;
    check_received(&app, &bodies, &sizes).await;
    let stats = app.state.checkpoints.http_witness().unwrap().stats();
    assert_eq!(stats.failures, 3, "{stats:?}");
    assert_eq!(stats.delivered, 3, "{stats:?}");
    assert_eq!(received.lock().unwrap().attempts, 6);
}

#[tokio::test]
async fn an_unreachable_witness_is_counted_and_readiness_stays() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = app_with_witness(&format!("http://127.0.0.1:{port}/w"), None).await;
    three_checkpoints(&app).await;
    let start = Instant::now();
    while app
        .state
        .checkpoints
        .http_witness()
        .unwrap()
        .stats()
        .failures
        == 0
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = app.state.checkpoints.http_witness().unwrap().stats();
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.queued, 3, "kept, in order, for the next attempt");
    assert_eq!(app.get("/readyz").await.status(), 200);
}
