//! The HTTP contract every route shares: health, problem+json, headers, limits.

use crate::common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

async fn problem(res: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: Value = res.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(
        body["type"],
        format!("https://mandat.example/problems/{code}")
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_when_the_database_does_not_answer() {
    let app = TestApp::spawn().await;
    app.state.store.close().await;
    let res = app.get("/readyz").await;
    assert!(res.headers().get("retry-after").is_some());
    problem(res, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn security_headers_and_request_id_on_every_response() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/nope", "/api/v1/demarches"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        assert!(h.contains_key("permissions-policy"));
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.contains_key("x-request-id"));
        assert!(
            !h.contains_key("strict-transport-security"),
            "tests run with insecure HTTP"
        );
    }
}

#[tokio::test]
async fn framework_rejections_are_problems() {
    let app = TestApp::spawn().await;
    problem(
        app.get("/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .client
        .delete(app.url("/api/v1/demarches"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("allow"));
    problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn catalogue_lists_the_ten_demarches_in_french() {
    let app = TestApp::spawn().await;
    let items: Vec<Value> = app.get("/api/v1/demarches").await.json().await.unwrap();
    assert_eq!(items.len(), 10);
    assert_eq!(items[0]["id"], "papiers");
    let argent = items.iter().find(|d| d["id"] == "argent").unwrap();
    assert!(
        argent["warning"]
            .as_str()
            .unwrap()
            .contains("surendettement")
    );
    assert!(
        items
            .iter()
            .filter(|d| d["id"] != "argent")
            .all(|d| d.get("warning").is_none())
    );
    assert_eq!(items[4]["title"], "Logement");
}

#[tokio::test]
async fn openapi_document_is_generated() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/healthz", "/readyz", "/api/v1/demarches"] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
}

#[tokio::test]
async fn bad_bodies_get_their_problem_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.platform("admin@example.fr", "admin").await;
    let c = app.login(&admin).await;
    let before = app.count("organisation").await;
    let url = app.url("/api/v1/organisations");
    let post = |body: Vec<u8>, ct: &str| c.post(&url).header("content-type", ct).body(body).send();

    let b = problem(
        post(b"{\"name\": ".to_vec(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(b.get("errors").is_none());
    let b = problem(
        post(
            br#"{"name":"N","address":"A","colour":"blue"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "colour");
    let b = problem(
        post(
            br#"{"name":"Jean Secret","address":42}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "address");
    problem(
        post(b"name=N".to_vec(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let big = format!(r#"{{"name":"{}","address":"A"}}"#, "x".repeat(70 * 1024));
    problem(
        post(big.into_bytes(), "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let b = problem(
        post(
            br#"{"name":"  ","address":"A","siret":"123"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "siret"]);
    assert!(!b.to_string().contains("Jean Secret"));
    assert_eq!(app.count("organisation").await, before, "nothing written");
    let actions: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(!actions.contains(&Value::from("organisation.created")));
}

#[tokio::test]
async fn cross_site_writes_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.platform("admin@example.fr", "admin").await;
    let c = app.login(&admin).await;
    let body = serde_json::json!({"name": "N", "address": "A"});
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("sec-fetch-site", "cross-site")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // A body-less write must still declare JSON (an HTML form cannot).
    let res = c
        .post(app.url("/api/v1/session/step-up"))
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("origin", app.base.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "same origin accepted");
    assert_eq!(app.count("organisation").await, 1);
}
