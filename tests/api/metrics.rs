//! The Prometheus endpoint (`MANDAT_METRICS_ADDR`): a listener of its own, off by default;
//! counters move with the traffic; no id, email or name in any label.

use crate::serve_process::{self as sp, Deployment};

/// `name{labels} value` lines of a scrape.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(text: &str, series: &str) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(s, _)| s == series)
        .map(|(_, v)| v)
        .sum()
}

fn sum_of(text: &str, name: &str, label: &str) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(s, _)| (s == name || s.starts_with(&format!("{name}{{"))) && s.contains(label))
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(client: &reqwest::Client, addr: &str) -> String {
    let res = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_endpoint_counts_requests_by_route_template_without_personal_data() {
    let d = Deployment::new().await;
    let org = d.org("MFS Metrics");
    let a = d.aidant("metrics@example.org", org);
    let (port, metrics_port) = (sp::free_port(), sp::free_port());
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = d
        .serve(port, &[("MANDAT_METRICS_ADDR", metrics_addr.clone())])
        .await;
    let plain = reqwest::Client::new();
    // Not on the public listener.
    let res = plain
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the public listener has no /metrics");

    let before = scrape(&plain, &metrics_addr).await;
    let client = sp::login(&server.base, &a).await;
    // A failed login too (unknown account).
    let res = plain
        .post(format!("{}/api/v1/session", server.base))
        .json(
            &serde_json::json!({"email": "nobody@example.org", "password": "x", "totp": "000000"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let usager = sp::usager(&client, &server.base, "Dupont-Metrics").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (id, code) = sp::create_mandate(&client, &server.base, usager)
            .await
            .unwrap();
        sp::consent(&client, &server.base, id, &code).await.unwrap();
        let res = client
            .get(format!("{}/api/v1/mandates/{id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        ids.push(id);
    }
    // An unknown path: counted as "unmatched", not by its text.
    let secret_path = format!("/api/v1/nothing/{}", uuid::Uuid::new_v4());
    let res = plain
        .get(format!("{}{secret_path}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Let the background checkpointer sign the new events.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let after = scrape(&plain, &metrics_addr).await;

    let created =
        r#"mandat_http_requests_total{method="POST",route="/api/v1/mandates",status="201"}"#;
    assert_eq!(
        value(&after, created) - value(&before, created),
        3.0,
        "{after}"
    );
    let read =
        r#"mandat_http_requests_total{method="GET",route="/api/v1/mandates/{id}",status="200"}"#;
    assert_eq!(value(&after, read) - value(&before, read), 3.0);
    let consents = r#"mandat_http_requests_total{method="POST",route="/api/v1/mandates/{id}/consent",status="200"}"#;
    assert_eq!(value(&after, consents) - value(&before, consents), 3.0);
    assert!(
        value(
            &after,
            r#"mandat_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ) >= 1.0
    );
    let latency =
        r#"mandat_http_request_duration_seconds_count{method="POST",route="/api/v1/mandates"}"#;
    assert_eq!(value(&after, latency) - value(&before, latency), 3.0);
    assert!(after.contains(
        r#"mandat_http_request_duration_seconds_bucket{method="POST",route="/api/v1/mandates",le="0.1"}"#
    ));
    let logins = |t: &str, o: &str| value(t, &format!("mandat_logins_total{{outcome=\"{o}\"}}"));
    assert_eq!(logins(&after, "success") - logins(&before, "success"), 1.0);
    assert_eq!(logins(&after, "failure") - logins(&before, "failure"), 1.0);
    // Audit: events sequenced, queue drained, a checkpoint signed recently.
    assert!(
        value(&after, "mandat_audit_sequenced_total") >= 9.0,
        "{after}"
    );
    assert!(value(&after, "mandat_audit_log_entries") > value(&before, "mandat_audit_log_entries"));
    assert!(after.contains("mandat_audit_queue_depth "));
    assert!(after.contains("mandat_audit_sequencer_lag_seconds "));
    let age = value(&after, "mandat_audit_checkpoint_age_seconds");
    assert!(
        after.contains("mandat_audit_checkpoint_age_seconds ") && (0.0..60.0).contains(&age),
        "{after}"
    );
    assert!(value(&after, "mandat_audit_checkpoint_tree_size") >= 1.0);
    assert!(value(&after, "mandat_db_connections_max") >= 1.0);
    assert!(sum_of(&after, "mandat_db_connections", "state=") >= 1.0);

    // No personal data or id in any label: no UUID, no e-mail, no name, no raw path.
    for (series, _) in samples(&after) {
        assert!(!series.contains('@'), "{series}");
        for id in ids.iter().chain([&org, &usager]) {
            assert!(!series.contains(&id.to_string()), "{series}");
        }
        assert!(!series.contains("Dupont"), "{series}");
        assert!(!series.contains("Camille"), "{series}");
        assert!(!series.contains(&secret_path), "{series}");
        let looks_like_uuid = series
            .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .any(|w| w.len() == 36 && w.matches('-').count() == 4);
        assert!(!looks_like_uuid, "{series}");
    }
    assert_eq!(
        server.stop(),
        Some(0),
        "clean exit, metrics listener included"
    );
}
