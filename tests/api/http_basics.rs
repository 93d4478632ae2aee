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
    // An Origin naming the Host the request was sent to is not enough: only
    // MANDAT_PUBLIC_URL's origin is the service's.
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("origin", app.base.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // A body that is not JSON.
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("content-type", "text/plain")
        .body("name=N")
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // No body where one is needed: a clear 400, not a content-type complaint.
    let res = c
        .post(app.url("/api/v1/session/step-up"))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.count("organisation").await, 0, "nothing written");
    let res = c
        .post(app.url("/api/v1/organisations"))
        .header("origin", app.origin())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "same origin accepted");
    assert_eq!(app.count("organisation").await, 1);
}

/// A raw HTTP/1.1 request (what `curl -X POST` sends: no `Content-Length`, no
/// `Content-Type`); returns the status code.
async fn raw_post(app: &TestApp, path: &str, cookie: &str, extra: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n{extra}Connection: close\r\n\r\n",
        app.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text}"))
}

#[tokio::test]
async fn bodyless_actions_need_no_content_type_but_stay_same_origin() {
    let app = TestApp::spawn().await;
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    let c = app.new_client();
    let res = c
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"email": dpo.email, "password": dpo.password, "totp": app.code(&dpo.totp_secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let verified = || async {
        app.audit_events()
            .await
            .iter()
            .filter(|e| e["action"] == "audit.verified")
            .count()
    };

    // `curl -X POST …/audit/verify`: no Content-Length, no Content-Type.
    assert_eq!(
        raw_post(&app, "/api/v1/audit/verify", &cookie, "").await,
        200
    );
    // `Content-Length: 0`, no Content-Type.
    assert_eq!(
        raw_post(
            &app,
            "/api/v1/audit/verify",
            &cookie,
            "Content-Length: 0\r\n"
        )
        .await,
        200
    );
    let res = c
        .post(app.url("/api/v1/audit/verify"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(verified().await, 3);

    // Without a body, cross-site protection still applies.
    for extra in [
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
        "Origin: https://evil.example\r\n",
        "Origin: null\r\n",
    ] {
        assert_eq!(
            raw_post(&app, "/api/v1/audit/verify", &cookie, extra).await,
            403,
            "{extra}"
        );
    }
    let res = c
        .post(app.url("/api/v1/audit/verify"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // The service's own pages may (same origin, or typed by the user).
    for extra in [
        "Sec-Fetch-Site: same-origin\r\nOrigin: http://127.0.0.1:8080\r\n",
        "Sec-Fetch-Site: none\r\n",
    ] {
        assert_eq!(
            raw_post(&app, "/api/v1/audit/verify", &cookie, extra).await,
            200,
            "{extra}"
        );
    }
    // A non-empty body must be JSON, even where none is needed.
    let res = c
        .post(app.url("/api/v1/audit/verify"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(verified().await, 5, "the refused requests changed nothing");
}
