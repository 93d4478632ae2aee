//! `mandat bench <scenario>`: in-process benchmarks on a fresh database, printing a table
//! (throughput, p50/p90/p99/max latency, errors, peak RSS) and optionally JSON.
//!
//! Scenarios are pluggable: implement [`Scenario`] in a file of this folder and list it in
//! [`scenarios`]. See `bench/README.md` for what each one measures.

mod audit;
mod dashboard;
mod mandates;
mod oidc;
mod vault;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::app::StartError;
use crate::cli::ExitCode;
use crate::config::{Config, DatabaseUrl};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenario: audit-append, audit-verify, mandates, dashboard, vault-rewrap, oidc, token.
    pub scenario: String,
    /// `sqlite` (a fresh file in a temporary directory) or a PostgreSQL server URL (a fresh
    /// database is created there and dropped afterwards).
    #[arg(long, default_value = "sqlite")]
    pub db: String,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Sizes for size-driven scenarios (audit-verify: numbers of events; dashboard: active
    /// mandates, first size only; vault-rewrap: entries, first size only).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<u64>>,
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub name: String,
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub peak_rss_mb: f64,
    /// Scenario-specific facts (e.g. "gaps": 0, "chain_verified": true).
    pub notes: serde_json::Map<String, serde_json::Value>,
}

impl Measurement {
    /// Builds a measurement from per-operation latencies.
    pub fn from_latencies(
        name: impl Into<String>,
        mut latencies: Vec<Duration>,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies[i].as_secs_f64() * 1000.0
        };
        let ops = latencies.len() as u64;
        Self {
            name: name.into(),
            operations: ops,
            errors,
            seconds: elapsed.as_secs_f64(),
            throughput_per_s: ops as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: pct(0.50),
            p90_ms: pct(0.90),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            peak_rss_mb: peak_rss_mb(),
            notes: serde_json::Map::new(),
        }
    }

    pub fn note(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.notes.insert(key.to_owned(), value.into());
        self
    }
}

/// Peak resident set size of this process (Linux `VmHWM`), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A fresh database for one scenario run, removed on [`BenchDb::cleanup`].
pub struct BenchDb {
    pub url: DatabaseUrl,
    pub dir: tempfile::TempDir,
    /// Server URL without database, connection parameters (`?…` or empty), database name.
    postgres: Option<(String, String, String)>,
}

impl BenchDb {
    pub async fn create(spec: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        if spec == "sqlite" {
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return Ok(Self {
                url: DatabaseUrl::Sqlite(url),
                dir,
                postgres: None,
            });
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            anyhow::bail!("--db: expected sqlite or a postgres:// server URL");
        }
        use sqlx::Connection as _;
        // Connection parameters (`?sslmode=disable`, `?host=/run/postgresql`) apply to every
        // database of the run.
        let (server, params) = spec.split_at(spec.find('?').unwrap_or(spec.len()));
        let server = server.trim_end_matches('/').to_owned();
        let params = params.to_owned();
        let name = format!("mandat_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres{params}")).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(Self {
            url: DatabaseUrl::Postgres(format!("{server}/{name}{params}").into()),
            dir,
            postgres: Some((server, params, name)),
        })
    }

    /// A configuration for this database (local defaults, witness in the temporary folder).
    pub fn config(&self, base: &Config, max_connections: u32) -> Config {
        let mut c = Config::for_tests(self.url.clone(), self.dir.path());
        c.database_max_connections = max_connections;
        c.checkpoint_origin.clone_from(&base.checkpoint_origin);
        c.checkpoint_every_events = base.checkpoint_every_events;
        c.checkpoint_interval_ms = base.checkpoint_interval_ms;
        // `MANDAT_METRICS_ADDR`: watch a run with `curl …/metrics`.
        c.metrics_addr = base.metrics_addr;
        c
    }

    /// PostgreSQL: `VACUUM (ANALYZE)` of the audit tables and a `CHECKPOINT` (SQLite: nothing
    /// to do).
    pub async fn settle(&self) -> anyhow::Result<()> {
        if let DatabaseUrl::Postgres(url) = &self.url {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(url.expose_secret()).await?;
            sqlx::query("VACUUM (ANALYZE) audit_log, audit_payload")
                .execute(&mut conn)
                .await?;
            // Write the dirty pages out now rather than while the runs are timed (needs the
            // pg_checkpoint role: without it, the runs share the cores with the checkpointer).
            if let Err(e) = sqlx::query("CHECKPOINT").execute(&mut conn).await {
                tracing::warn!(error = %e, "CHECKPOINT refused; timings may include its writes");
            }
            conn.close().await?;
        }
        Ok(())
    }

    pub async fn cleanup(self) {
        if let Some((server, params, name)) = self.postgres {
            use sqlx::Connection as _;
            if let Ok(mut conn) =
                sqlx::PgConnection::connect(&format!("{server}/postgres{params}")).await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    pub fn describe(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(_) => "sqlite (WAL, synchronous=NORMAL)".into(),
            DatabaseUrl::Postgres(u) => {
                let u = u.expose_secret();
                let host = u.rsplit('@').next().unwrap_or("postgres");
                let (host, params) = host.split_at(host.find('?').unwrap_or(host.len()));
                let host = host.rsplit_once('/').map_or(host, |h| h.0);
                // Only parameters that say how the server is reached: a URL may also carry
                // `password=`, which must not reach the output or a results file.
                let shown: Vec<&str> = params
                    .trim_start_matches('?')
                    .split('&')
                    .filter(|p| p.starts_with("sslmode=") || p.starts_with("host="))
                    .collect();
                if shown.is_empty() {
                    format!("postgres ({host})")
                } else {
                    format!("postgres ({host}, {})", shown.join(", "))
                }
            }
        }
    }
}

/// A real server on loopback over a bench database, for scenarios driven over HTTP.
pub struct BenchServer {
    pub state: crate::app::AppState,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl BenchServer {
    /// Starts the server (migrations applied, system clock, port chosen by the OS).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let state =
            crate::app::AppState::new(config, std::sync::Arc::new(crate::clock::SystemClock), true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let app = crate::app::App::with_listener(state.clone(), listener);
        let base = format!("http://{}", app.local_addr());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            state,
            base,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the server and waits for its background jobs.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A benchmark scenario.
#[async_trait]
pub trait Scenario: Send + Sync {
    fn name(&self) -> &'static str;
    /// One line: what one operation is.
    fn describe(&self) -> &'static str;
    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>>;
}

/// Every scenario this build knows.
pub fn scenarios() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(audit::AuditAppend),
        Box::new(audit::AuditVerify),
        Box::new(mandates::Mandates),
        Box::new(dashboard::Dashboard),
        Box::new(vault::VaultRewrap),
        Box::new(oidc::Oidc),
        Box::new(oidc::Token),
    ]
}

fn print_table(scenario: &str, args: &BenchArgs, results: &[Measurement]) {
    println!(
        "scenario {scenario} — db {}, concurrency {}, duration {} s",
        if args.db == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        },
        args.concurrency,
        args.duration
    );
    println!(
        "{:<28} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}",
        "run", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "RSS MB"
    );
    for m in results {
        println!(
            "{:<28} {:>10} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>9.1}",
            m.name,
            m.operations,
            m.throughput_per_s,
            m.p50_ms,
            m.p90_ms,
            m.p99_ms,
            m.max_ms,
            m.errors,
            m.peak_rss_mb
        );
        if !m.notes.is_empty() {
            println!("{:<28} {}", "", serde_json::Value::Object(m.notes.clone()));
        }
    }
}

pub async fn run(args: BenchArgs, config: Config) -> Result<ExitCode, StartError> {
    let all = scenarios();
    let Some(scenario) = all.iter().find(|s| s.name() == args.scenario) else {
        eprintln!("unknown scenario '{}'; known:", args.scenario);
        for s in &all {
            eprintln!("  {:<16} {}", s.name(), s.describe());
        }
        return Ok(2);
    };
    if args.concurrency == 0 || args.duration == 0 {
        eprintln!("--concurrency and --duration must be at least 1");
        return Ok(2);
    }
    let results = scenario
        .run(&args, &config)
        .await
        .map_err(StartError::Other)?;
    print_table(scenario.name(), &args, &results);
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "scenario": scenario.name(),
            "db": if args.db == "sqlite" { "sqlite" } else { "postgres" },
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "release_build": !cfg!(debug_assertions),
            "results": results,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap_or_default())
            .map_err(|e| StartError::Other(anyhow::anyhow!("--json: {e}")))?;
    }
    let failed = results.iter().any(|m| {
        m.notes
            .get("verified")
            .is_some_and(|v| v == &serde_json::Value::Bool(false))
    });
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_bench_server_answers_on_loopback() {
        let db = BenchDb::create("sqlite").await.unwrap();
        let base = Config::for_tests(db.url.clone(), db.dir.path());
        let server = BenchServer::start(db.config(&base, 4)).await.unwrap();
        let addr = server.base.trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        server.stop().await;
        db.cleanup().await;
        let m = Measurement::from_latencies(
            "x",
            vec![Duration::from_millis(1), Duration::from_millis(3)],
            0,
            Duration::from_secs(1),
        );
        assert_eq!((m.operations, m.max_ms), (2, 3.0));
    }

    #[test]
    fn the_database_description_shows_no_credentials() {
        let db = BenchDb {
            url: DatabaseUrl::Postgres(
                "postgres://u:s3cret@db:5432/x?sslmode=disable&password=hunter2".into(),
            ),
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
        };
        let d = db.describe();
        assert_eq!(d, "postgres (db:5432, sslmode=disable)");
    }
}
