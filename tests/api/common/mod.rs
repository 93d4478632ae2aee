//! `TestApp`: the real server on port 0 over a fresh database, SQLite by default or
//! PostgreSQL when `TEST_POSTGRES_URL` names a server (each test gets its own database).

#![allow(dead_code)]

pub mod fixtures;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::TimeZone as _;
use mandat::app::{App, AppState};
use mandat::clock::ManualClock;
use mandat::config::{Config, DatabaseUrl};
use secrecy::SecretString;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub db_url: DatabaseUrl,
    /// What the builder set up before the test (`TestApp::builder().org(…).member(…)…`).
    pub scene: fixtures::Scene,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Which backend this run tests.
pub fn backend() -> &'static str {
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A fresh, empty database for one test.
pub async fn fresh_database(dir: &std::path::Path) -> DatabaseUrl {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(server) => {
            use sqlx::Connection as _;
            let server = server.trim_end_matches('/').to_owned();
            let name = format!("mandat_test_{}", uuid::Uuid::new_v4().simple());
            let admin_url = format!("{server}/postgres");
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("TEST_POSTGRES_URL: cannot connect to {admin_url}: {e}")
                });
            let mut attempt = 0;
            loop {
                match sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                {
                    Ok(_) => break,
                    Err(_) if attempt < 20 => {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                    }
                    Err(e) => panic!("cannot create test database: {e}"),
                }
            }
            let _ = conn.close().await;
            DatabaseUrl::Postgres(SecretString::from(format!("{server}/{name}")))
        }
        Err(_) => DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("mandat.db").display())),
    }
}

type ConfigTweak = Box<dyn FnOnce(&mut Config) + Send>;

pub struct Builder {
    tweak: Vec<ConfigTweak>,
    listen_public: bool,
    scene: Vec<fixtures::Step>,
}

impl Builder {
    pub fn with_config(mut self, f: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.tweak.push(Box::new(f));
        self
    }

    /// `MANDAT_PUBLIC_URL` is the address the server listens on (what a browser sends as
    /// `Origin`), instead of the default `http://127.0.0.1:8080`.
    pub fn public_url_is_listen_address(mut self) -> Self {
        self.listen_public = true;
        self
    }

    /// A new organisation (all démarches allowed); the members, usagers and mandates that
    /// follow belong to it.
    pub fn org(mut self, name: &str) -> Self {
        self.scene.push(fixtures::Step::Org(name.to_owned()));
        self
    }

    /// A member (`aidant` or `referent`) of the last organisation, enrolled.
    pub fn member(mut self, role: &str) -> Self {
        self.scene.push(fixtures::Step::Member(role.to_owned()));
        self
    }

    /// A usager (with a phone) registered by the last member.
    pub fn usager(mut self) -> Self {
        self.scene.push(fixtures::Step::Usager);
        self
    }

    /// An active mandate of the last usager for these démarches (printed code, consented at
    /// the desk by the last member).
    pub fn mandate(mut self, demarches: &[&str]) -> Self {
        self.scene.push(fixtures::Step::Mandate(
            demarches.iter().map(|d| (*d).to_owned()).collect(),
        ));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = fresh_database(dir.path()).await;
        let mut config = Config::for_tests(db_url.clone(), dir.path());
        for f in self.tweak {
            f(&mut config);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        if self.listen_public {
            config.public_url = format!("http://{}", listener.local_addr().expect("address"));
        }
        let clock = Arc::new(ManualClock::new(
            chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        ));
        let state = AppState::new(config, clock.clone(), true)
            .await
            .expect("app state");
        let app = App::with_listener(state.clone(), listener);
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut app = TestApp {
            addr,
            base: format!("http://{addr}"),
            state,
            clock,
            client,
            dir,
            db_url,
            scene: fixtures::Scene::default(),
            shutdown: Some(tx),
            server: Some(server),
        };
        app.scene = fixtures::play(&app, &self.scene).await;
        app
    }
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            tweak: Vec::new(),
            listen_public: false,
            scene: Vec::new(),
        }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// The origin of `MANDAT_PUBLIC_URL`: what a browser on the service's pages sends as
    /// `Origin` (the server listens elsewhere in tests, which does not matter).
    pub fn origin(&self) -> String {
        reqwest::Url::parse(&self.state.config.public_url)
            .expect("public URL")
            .origin()
            .ascii_serialization()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// All audit entries, sequenced first (read barrier).
    pub async fn audit_entries(&self) -> Vec<mandat::store::StoredAuditEntry> {
        self.state.sequencer.barrier().await.expect("barrier");
        let mut tx = self.state.store.begin().await.expect("tx");
        tx.audit_entries(0, i64::MAX).await.expect("entries")
    }

    /// Canonical events of the audit log, parsed.
    pub async fn audit_events(&self) -> Vec<serde_json::Value> {
        self.audit_entries()
            .await
            .into_iter()
            .filter_map(|e| e.canonical_event)
            .map(|t| serde_json::from_str(&t).expect("json"))
            .collect()
    }

    /// Runs raw SQL on the test database, outside the application (tamper tests).
    pub async fn raw_sql(&self, sql: &str) -> Result<u64, String> {
        use sqlx::Connection as _;
        match &self.db_url {
            DatabaseUrl::Sqlite(u) => {
                let mut c = sqlx::SqliteConnection::connect(u)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
            DatabaseUrl::Postgres(u) => {
                use secrecy::ExposeSecret as _;
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sql)
                    .execute(&mut c)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Number of rows of a table.
    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Connection as _;
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.db_url {
            DatabaseUrl::Sqlite(u) => {
                let mut c = sqlx::SqliteConnection::connect(u).await.expect("connect");
                sqlx::query_scalar(&sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
            DatabaseUrl::Postgres(u) => {
                use secrecy::ExposeSecret as _;
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query_scalar(&sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An account made for a test, with what it needs to log in.
#[derive(Clone)]
pub struct Account {
    pub id: uuid::Uuid,
    pub email: String,
    pub password: String,
    pub totp_secret: String,
}

pub const PASSWORD: &str = "cheval agrafe pile 42";

impl TestApp {
    /// A new organisation (all démarches allowed).
    pub async fn org(&self, name: &str) -> uuid::Uuid {
        let input = mandat::domain::organisation::NewOrganisation::parse(
            name,
            "1 rue de la Paix, 75002 Paris",
            None,
            None,
        )
        .unwrap();
        mandat::service::organisations::create(&self.state, &mandat::service::Ctx::system(), input)
            .await
            .unwrap()
            .id
    }

    async fn account(&self, email: &str, placement: mandat::service::users::Placement) -> Account {
        let created = mandat::service::users::create(
            &self.state,
            email,
            "Camille Martin",
            placement,
            SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .expect("user create");
        Account {
            id: created.id,
            email: email.to_owned(),
            password: PASSWORD.into(),
            totp_secret: created.totp_secret,
        }
    }

    pub async fn member(&self, email: &str, org: uuid::Uuid, role: &str) -> Account {
        use mandat::domain::account::OrgRole;
        let role = OrgRole::parse(role).expect("role");
        self.account(
            email,
            mandat::service::users::Placement::Member {
                organisation: org,
                role,
            },
        )
        .await
    }

    pub async fn platform(&self, email: &str, role: &str) -> Account {
        use mandat::domain::account::PlatformRole;
        let r = if role == "admin" {
            PlatformRole::Admin
        } else {
            PlatformRole::Dpo
        };
        self.account(email, mandat::service::users::Placement::Platform(r))
            .await
    }

    /// A fresh TOTP code: the clock moves to the next 30-second step first (a code is
    /// accepted only once per step).
    pub fn code(&self, secret: &str) -> String {
        self.clock.advance(chrono::Duration::seconds(30));
        self.code_now(secret)
    }

    /// The TOTP code at the current clock, without moving it.
    pub fn code_now(&self, secret: &str) -> String {
        let seed = mandat::crypto::totp::Seed::parse_card(secret, false).expect("seed");
        seed.code_at(30, self.state.clock.now().timestamp() as u64)
    }

    pub fn new_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Logs in with a new cookie jar; returns the client.
    pub async fn login(&self, a: &Account) -> reqwest::Client {
        let client = self.new_client();
        let res = client
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"email": a.email, "password": a.password, "totp": self.code(&a.totp_secret)}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "login of {}: {}",
            a.email,
            res.text().await.unwrap()
        );
        client
    }

    /// Steps the session up with a fresh code.
    pub async fn step_up(&self, client: &reqwest::Client, a: &Account) {
        let res = client
            .post(self.url("/api/v1/session/step-up"))
            .json(&serde_json::json!({"totp": self.code(&a.totp_secret)}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "step-up: {}", res.text().await.unwrap());
    }
}

/// The `mandat` binary, run in `dir`, with none of this process's `MANDAT_*` variables.
pub fn mandat_command(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mandat"));
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("MANDAT_") {
            c.env_remove(k);
        }
    }
    c
}
