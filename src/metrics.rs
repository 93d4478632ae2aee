//! Prometheus metrics on `MANDAT_METRICS_ADDR`: a listener of its own (never the public one),
//! off by default. The recorder is installed once per process when that listener starts;
//! until then the `metrics::counter!` calls of the code cost next to nothing.
//!
//! Labels never hold personal data: HTTP requests are labelled by route *template*
//! (`/api/v1/mandates/{id}`, never the raw path), method and status; the other series by a
//! fixed outcome word. Gauges read from the database (audit queue, checkpoint age) are
//! sampled when the endpoint is scraped.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::service::Services;

/// Requests answered, by `method`, `route` (template) and `status`.
pub const HTTP_REQUESTS: &str = "mandat_http_requests_total";
/// Time to answer, by `method` and `route`.
pub const HTTP_DURATION: &str = "mandat_http_request_duration_seconds";
/// Login attempts by `outcome`: success, failure, locked (refused: the account is locked).
pub const LOGINS: &str = "mandat_logins_total";
/// Accounts locked by a failed attempt.
pub const LOCKOUTS: &str = "mandat_lockouts_total";
/// SMS handled by the outbox worker, by `outcome`: sent, retried, failed, void.
pub const SMS: &str = "mandat_sms_deliveries_total";
/// Events sequenced into the audit log by this process.
pub const AUDIT_SEQUENCED: &str = "mandat_audit_sequenced_total";

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "time to answer an HTTP request, by method and route template"
    );
    describe_counter!(LOGINS, "login attempts by outcome");
    describe_counter!(LOCKOUTS, "accounts locked by a failed attempt");
    describe_counter!(SMS, "SMS handled by the outbox worker, by outcome");
    describe_counter!(AUDIT_SEQUENCED, "audit events sequenced by this process");
    describe_gauge!(
        "mandat_audit_queue_depth",
        "committed audit events waiting for the sequencer"
    );
    describe_gauge!(
        "mandat_audit_sequencer_lag_seconds",
        Unit::Seconds,
        "age of the oldest audit event waiting for the sequencer (0 when none waits)"
    );
    describe_gauge!("mandat_audit_log_entries", "entries in the audit log");
    describe_gauge!(
        "mandat_audit_checkpoint_age_seconds",
        Unit::Seconds,
        "age of the latest signed checkpoint"
    );
    describe_gauge!(
        "mandat_audit_checkpoint_tree_size",
        "entries covered by the latest signed checkpoint"
    );
    describe_gauge!(
        "mandat_db_connections",
        "database connections by state (in_use, idle)"
    );
    describe_gauge!("mandat_db_connections_max", "database connections at most");
}

/// Reads the gauges that live in the database. A failed read leaves the previous values
/// (and is logged): the scrape still answers.
async fn sample(s: &Services) {
    use ::metrics::gauge;
    let pool = s.store.pool_stats();
    gauge!("mandat_db_connections", "state" => "in_use").set(f64::from(pool.in_use));
    gauge!("mandat_db_connections", "state" => "idle").set(f64::from(pool.idle));
    gauge!("mandat_db_connections_max").set(f64::from(pool.max));
    let read = async {
        let mut tx = s.store.begin_read().await?;
        let depth = tx.audit_queue_len().await?;
        let oldest = tx.audit_queue_batch(1).await?.into_iter().next();
        let size = tx.audit_head().await?.0;
        let checkpoint = tx.latest_audit_checkpoint().await?;
        Ok::<_, crate::store::StoreError>((depth, oldest, size, checkpoint))
    };
    let (depth, oldest, size, checkpoint) = match read.await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the audit state");
            return;
        }
    };
    let now = s.clock.now();
    let age = |ts: &str| {
        chrono::DateTime::parse_from_rfc3339(ts)
            .map(|t| {
                (now - t.with_timezone(&chrono::Utc))
                    .num_milliseconds()
                    .max(0) as f64
                    / 1e3
            })
            .ok()
    };
    gauge!("mandat_audit_queue_depth").set(depth as f64);
    let lag = oldest
        .and_then(|(_, text)| {
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            age(v.get("ts")?.as_str()?)
        })
        .unwrap_or(0.0);
    gauge!("mandat_audit_sequencer_lag_seconds").set(lag);
    gauge!("mandat_audit_log_entries").set(size as f64);
    if let Some(c) = checkpoint {
        gauge!("mandat_audit_checkpoint_tree_size").set(c.tree_size as f64);
        if let Some(a) = age(&c.timestamp) {
            gauge!("mandat_audit_checkpoint_age_seconds").set(a);
        }
    }
}

#[derive(Clone)]
struct Endpoint {
    services: Services,
    handle: PrometheusHandle,
}

async fn scrape(State(e): State<Endpoint>) -> Response {
    sample(&e.services).await;
    e.handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        e.handle.render(),
    )
        .into_response()
}

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    handle: PrometheusHandle,
    mut stop: watch::Receiver<bool>,
) {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Endpoint { services, handle });
    let shutdown = async move {
        loop {
            let stopped = *stop.borrow_and_update();
            if stopped || stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}
