//! The OpenAPI document is true: every route of the JSON API is in it, every error response is
//! the shared problem+json, and what the server answers is listed for the operation.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::TestApp;

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

/// The index of the parenthesis closing the one at `open`, skipping string literals.
fn closing(s: &[u8], open: usize) -> usize {
    let (mut depth, mut i) = (0, open);
    while i < s.len() {
        match s[i] {
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced .route( call");
}

/// `(method, path)` of every `.route("path", get(..).post(..))` in `source`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(at) = source[from..].find(".route(") {
        let open = from + at + ".route".len();
        let close = closing(bytes, open);
        let call = &source[open + 1..close];
        let q1 = call.find('"').expect("route path literal");
        let q2 = q1 + 1 + call[q1 + 1..].find('"').expect("route path literal end");
        let path = &call[q1 + 1..q2];
        let rest = &call[q2 + 1..];
        for m in METHODS {
            let mut search = 0;
            while let Some(i) = rest[search..].find(&format!("{m}(")) {
                let i = search + i;
                let before = rest[..i].chars().next_back();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    out.push(((*m).to_owned(), path.to_owned()));
                }
                search = i + m.len();
            }
        }
        from = close;
    }
    out
}

/// The routes of the JSON API: every router of `src/http/routes/` and the document's own.
fn router_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("src/http/routes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        // The OpenID Connect endpoints are described by their own standard document
        // (`/.well-known/openid-configuration`) and answer RFC 6749 errors, not problem+json.
        .filter(|p| !p.ends_with("oidc.rs"))
        .collect();
    files.push(root.join("src/http/openapi.rs"));
    let mut all = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        all.extend(routes_in(&text));
    }
    all
}

async fn document(app: &TestApp) -> Value {
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(*m).is_some() {
                out.insert(((*m).to_owned(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_route_reader_finds_chained_methods() {
    let src = r#"Router::new()
        .route("/a/{id}", get(read).delete(erase))
        .route(
            "/b",
            post(create),
        )
        .route("/c", get(target_get))"#;
    let found = routes_in(src);
    assert_eq!(
        found,
        vec![
            ("get".to_owned(), "/a/{id}".to_owned()),
            ("delete".to_owned(), "/a/{id}".to_owned()),
            ("post".to_owned(), "/b".to_owned()),
            ("get".to_owned(), "/c".to_owned()),
        ]
    );
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_document_and_only_those() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let routes = router_routes();
    assert!(routes.len() > 40, "the route reader found {routes:?}");
    let ops = documented(&doc);
    let missing: Vec<_> = routes.difference(&ops).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document (add a #[utoipa::path] and list it in \
         src/http/openapi.rs): {missing:?}"
    );
    let extra: Vec<_> = ops.difference(&routes).collect();
    assert!(
        extra.is_empty(),
        "documented operations with no route: {extra:?}"
    );
}

#[tokio::test]
async fn every_error_response_is_the_shared_problem_json() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let shared = doc["components"]["responses"].as_object().unwrap();
    for status in [
        "400", "401", "403", "404", "409", "410", "413", "415", "422", "423", "429", "503",
    ] {
        assert!(
            shared.values().any(
                |r| r["content"]["application/problem+json"]["schema"]["$ref"]
                    == "#/components/schemas/Problem"
            ),
            "{status}"
        );
    }
    for (name, r) in shared {
        let content = r["content"].as_object().unwrap();
        assert_eq!(content.len(), 1, "{name}");
        assert_eq!(
            content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
            "{name}"
        );
    }
    let mut statuses_seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            assert!(op["security"].is_array(), "{m} {path}: security declared");
            for (status, r) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    statuses_seen.insert(status.clone());
                    let target = r["$ref"].as_str().unwrap_or_else(|| {
                        panic!("{m} {path} {status}: not a shared problem response: {r}")
                    });
                    let name = target.strip_prefix("#/components/responses/").unwrap();
                    assert!(shared.contains_key(name), "{m} {path} {status}");
                }
            }
            // What the middleware and extractors imply.
            let has = |s: &str| op["responses"].get(s).is_some();
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415"] {
                    assert!(has(s), "{m} {path} has a body: {s}");
                }
            }
            if *m != "get" {
                assert!(has("403"), "{m} {path}: CSRF guard");
            }
            let needs_session = op["security"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r.get("session").is_some());
            if needs_session {
                assert!(has("401"), "{m} {path}: needs a session");
            }
        }
    }
    for s in [
        "400", "401", "403", "404", "409", "410", "413", "415", "422", "423", "429", "503",
    ] {
        assert!(statuses_seen.contains(s), "no operation documents {s}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    // A public operation and a session one.
    assert_eq!(
        doc["paths"]["/api/v1/public/consent"]["post"]["security"],
        json!([{}])
    );
    assert_eq!(
        doc["paths"]["/api/v1/mandates"]["post"]["security"],
        json!([{"session": []}])
    );
}

/// The path with each `{param}` replaced: UUID parameters by a fresh UUID, others by text.
fn concrete(path: &str, op: &Value) -> String {
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] != "path" {
            continue;
        }
        let name = p["name"].as_str().unwrap();
        let value = if p["schema"]["format"] == "uuid" {
            uuid::Uuid::new_v4().to_string()
        } else {
            "abc".to_owned()
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    assert!(
        !out.contains('{'),
        "{path}: every path parameter documented"
    );
    out
}

/// Every operation, asked without a session, then by a logged-in aidant with an empty JSON
/// object (and unknown ids), answers a status its operation lists.
#[tokio::test]
async fn what_the_server_answers_is_documented() {
    let app = TestApp::spawn().await;
    let org = app.org("Maison France Services").await;
    let aidant = app.member("aidant@example.org", org, "aidant").await;
    let logged_in = app.login(&aidant).await;
    let doc = document(&app).await;
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                ops.push(((*m).to_owned(), path.clone(), op.clone()));
            }
        }
    }
    // Logging out last keeps the session for the others.
    ops.sort_by_key(|(m, p, _)| (m == "delete" && p == "/api/v1/session", p.clone()));
    let anonymous = app.new_client();
    let mut checked = 0;
    for (m, path, op) in &ops {
        let url = app.url(&concrete(path, op));
        for client in [&anonymous, &logged_in] {
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let mut req = client.request(method, &url);
            if op.get("requestBody").is_some() {
                req = req.json(&json!({}));
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16().to_string();
            assert!(
                op["responses"].get(&status).is_some(),
                "{m} {path} answered {status}, not in the document"
            );
            if res.status().is_client_error() || res.status().is_server_error() {
                let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
                assert!(
                    ct.starts_with("application/problem+json"),
                    "{m} {path}: {ct}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked}");
}
