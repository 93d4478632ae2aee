//! A real `mandat serve` process on a fresh database (SQLite, or PostgreSQL when
//! `TEST_POSTGRES_URL` is set), with accounts made by the CLI and clients logged in over HTTP.
//! Used by the metrics, backup and crash tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mandat::config::DatabaseUrl;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "cheval agrafe pile 42";

/// A directory, a database and the environment every command of the test gets.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub db: DatabaseUrl,
    vars: Vec<(String, String)>,
}

pub struct Aidant {
    pub email: String,
    pub totp_secret: String,
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Deployment {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::common::fresh_database(dir.path()).await;
        let url = match &db {
            DatabaseUrl::Sqlite(u) => u.clone(),
            DatabaseUrl::Postgres(u) => u.expose_secret().to_owned(),
        };
        let d = dir.path();
        let vars = [
            ("MANDAT_DATABASE_URL", url),
            (
                "MANDAT_MASTER_KEY",
                crate::audit_trail::TEST_MASTER_KEY.to_owned(),
            ),
            ("MANDAT_INSECURE_HTTP", "1".into()),
            ("MANDAT_LOG", "warn".into()),
            (
                "MANDAT_SMS_OUTBOX",
                d.join("sms-outbox.jsonl").display().to_string(),
            ),
            (
                "MANDAT_CHECKPOINT_WITNESS",
                d.join("witness.jsonl").display().to_string(),
            ),
            ("MANDAT_CHECKPOINT_INTERVAL_MS", "200".into()),
            ("MANDAT_CHECKPOINT_EVERY_EVENTS", "50".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self { dir, db, vars }
    }

    pub fn witness_file(&self) -> std::path::PathBuf {
        self.dir.path().join("witness.jsonl")
    }

    /// `mandat` with this deployment's environment.
    pub fn command(&self) -> Command {
        let mut c = crate::common::mandat_command(self.dir.path());
        c.envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Runs `mandat args…` (with `stdin` as standard input); panics unless it exits 0.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write as _;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mandat");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("mandat output");
        assert!(
            out.status.success(),
            "mandat {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn org(&self, name: &str) -> Uuid {
        let out = self.run(
            &["org", "create", "--name", name, "--address", "1 rue Y"],
            None,
        );
        let v: Value = serde_json::from_str(&out).expect("org json");
        v["id"].as_str().expect("id").parse().expect("uuid")
    }

    pub fn aidant(&self, email: &str, org: Uuid) -> Aidant {
        let out = self.run(
            &[
                "user",
                "create",
                "--email",
                email,
                "--name",
                "Camille Martin",
                "--org",
                &org.to_string(),
                "--role",
                "aidant",
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        let v: Value = serde_json::from_str(&out).expect("user json");
        Aidant {
            email: email.to_owned(),
            totp_secret: v["totp_secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Starts `mandat serve` on `port` (plus `extra` variables); returns once `/readyz`
    /// answers 200.
    pub async fn serve(&self, port: u16, extra: &[(&str, String)]) -> Server {
        let child = self
            .command()
            .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready().await;
        server
    }

    /// Connects to the deployment's database (outside the server).
    pub async fn sql_uuids(&self, sql: &str) -> Vec<Uuid> {
        use sqlx::Connection as _;
        match &self.db {
            DatabaseUrl::Sqlite(u) => {
                let mut c = sqlx::SqliteConnection::connect(u).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
            DatabaseUrl::Postgres(u) => {
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
        }
    }

    pub async fn sql_strings(&self, sql: &str) -> Vec<String> {
        use sqlx::Connection as _;
        match &self.db {
            DatabaseUrl::Sqlite(u) => {
                let mut c = sqlx::SqliteConnection::connect(u).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
            DatabaseUrl::Postgres(u) => {
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
        }
    }

    pub async fn sql_i64s(&self, sql: &str) -> Vec<i64> {
        use sqlx::Connection as _;
        match &self.db {
            DatabaseUrl::Sqlite(u) => {
                let mut c = sqlx::SqliteConnection::connect(u).await.expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
            DatabaseUrl::Postgres(u) => {
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql)
                    .fetch_all(&mut c)
                    .await
                    .expect("query")
            }
        }
    }

    /// `mandat audit verify [--against FILE]`: (exit code, stdout + stderr).
    pub fn audit_verify(&self, against: Option<&std::path::Path>) -> (i32, String) {
        let mut c = self.command();
        c.args(["audit", "verify"]);
        if let Some(f) = against {
            c.arg("--against").arg(f);
        }
        let out = c.output().expect("audit verify");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve not ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful shutdown (sequencer drained).
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TOTP code for `secret` now (wall clock: the server runs on the system clock).
pub fn totp_now(secret: &str) -> String {
    let seed = mandat::crypto::totp::Seed::parse_card(secret, false).expect("seed");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    seed.code_at(30, now)
}

/// Logs `a` in over HTTP; returns a client holding the session cookie.
pub async fn login(base: &str, a: &Aidant) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"email": a.email, "password": PASSWORD, "totp": totp_now(&a.totp_secret)}))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), 200, "login: {}", res.text().await.unwrap());
    client
}

/// A new usager of the client's organisation; its id.
pub async fn usager(client: &reqwest::Client, base: &str, family_name: &str) -> Uuid {
    let res = client
        .post(format!("{base}/api/v1/usagers"))
        .json(&json!({
            "given_name": "Marie",
            "family_name": family_name,
            "birthdate": "1950-04-12",
            "phone": "+33612345678",
            "identity_check": "document",
        }))
        .send()
        .await
        .expect("usager request");
    assert_eq!(res.status(), 201, "usager: {}", res.text().await.unwrap());
    let v: Value = res.json().await.expect("json");
    v["id"].as_str().expect("id").parse().expect("uuid")
}

/// Creates a print-consent mandate: `Ok((id, code))` on 201, `Err` otherwise (including a
/// connection error).
pub async fn create_mandate(
    client: &reqwest::Client,
    base: &str,
    usager: Uuid,
) -> Result<(Uuid, String), String> {
    let res = client
        .post(format!("{base}/api/v1/mandates"))
        .json(&json!({"usager_id": usager, "demarches": ["social", "logement"], "duration": "semester", "consent_channel": "print"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 201 {
        return Err(format!("HTTP {}", res.status()));
    }
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    let id = v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("no id")?;
    let code = v["consent"]["code"].as_str().ok_or("no code")?.to_owned();
    Ok((id, code))
}

/// Enters the consent code at the desk: `Ok` when the answer is 200 and the mandate active.
pub async fn consent(
    client: &reqwest::Client,
    base: &str,
    mandate: Uuid,
    code: &str,
) -> Result<(), String> {
    let res = client
        .post(format!("{base}/api/v1/mandates/{mandate}/consent"))
        .json(&json!({"code": code}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 200 {
        return Err(format!("HTTP {}", res.status()));
    }
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    if v["status"] == "active" {
        Ok(())
    } else {
        Err(format!("status {}", v["status"]))
    }
}
