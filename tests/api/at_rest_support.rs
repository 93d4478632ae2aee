//! A scripted session against the real binary (an organisation and an account made from the
//! command line, `serve`, a login), then a scan of the raw database files (SQLite: the file,
//! its WAL and shared memory; PostgreSQL: a text dump of every table) and of everything the
//! process printed, for values that must never be stored or printed in clear.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mandat::config::DatabaseUrl;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

pub const EMAIL: &str = "camille@example.fr";
pub const PASSWORD: &str = "Zèbre-violet-9-lampadaire";

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running `mandat serve` on a fresh database, with one account of `role` logged in.
pub struct Session {
    pub dir: tempfile::TempDir,
    url: DatabaseUrl,
    /// What the commands printed so far, then the server's output once stopped.
    pub logs: String,
    server: Child,
    out_path: PathBuf,
    err_path: PathBuf,
    pub base: String,
    pub client: reqwest::Client,
    /// The account's TOTP secret as printed by `user create`, and the seed it encodes.
    pub totp_secret: String,
    pub seed: mandat::crypto::totp::Seed,
    /// The `Set-Cookie` header of the login.
    pub login_cookie: String,
}

impl Session {
    pub async fn start(role: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::common::fresh_database(dir.path()).await;
        let mut logs = String::new();
        let out = command(&dir, &url)
            .args(["org", "create", "--name", "MFS", "--address", "1 rue X"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        let org: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut child = command(&dir, &url)
            .args([
                "user", "create", "--email", EMAIL, "--name", "Camille", "--org",
            ])
            .args([
                org["id"].as_str().unwrap(),
                "--role",
                role,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let totp_secret = created["totp_secret"].as_str().unwrap().to_owned();
        let seed = mandat::crypto::totp::Seed::parse_card(&totp_secret, false).unwrap();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Output to files: a pipe nobody reads would fill up and block the server.
        let out_path = dir.path().join("serve.out");
        let err_path = dir.path().join("serve.err");
        let server = command(&dir, &url)
            .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
            .arg("serve")
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let start = Instant::now();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let res = client
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"email": EMAIL, "password": PASSWORD, "totp": seed.code_at(30, now())}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let login_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
        Self {
            dir,
            url,
            logs,
            server,
            out_path,
            err_path,
            base,
            client,
            totp_secret,
            seed,
            login_cookie,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Step-up with the next TOTP code (each time step is accepted once).
    pub async fn step_up(&self) {
        tokio::time::sleep(Duration::from_secs(30 - now() % 30 + 1)).await;
        let res = self
            .client
            .post(self.url("/api/v1/session/step-up"))
            .json(&json!({"totp": self.seed.code_at(30, now())}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }

    /// Stops the server, then asserts that none of `secrets` (nor their hex form, as
    /// PostgreSQL prints bytes) appears in the database files, the table dumps or the logs.
    /// `table`: a table the dump must include (the scan reached the data).
    pub async fn stop_and_assert_nowhere_in_clear(mut self, secrets: &[Vec<u8>], table: &str) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.server.id().to_string()])
            .status();
        self.server.wait().unwrap();
        self.logs
            .push_str(&std::fs::read_to_string(&self.out_path).unwrap());
        self.logs
            .push_str(&std::fs::read_to_string(&self.err_path).unwrap());
        assert!(self.logs.contains("login"), "the logs were captured");
        let needles: Vec<Vec<u8>> = secrets
            .iter()
            .cloned()
            .chain(secrets.iter().map(|s| hex::encode(s).into_bytes()))
            .collect();
        let haystacks = self.haystacks(table).await;
        assert!(!haystacks.is_empty());
        for (name, bytes) in haystacks.iter().chain(std::iter::once(&(
            "logs".to_owned(),
            self.logs.clone().into_bytes(),
        ))) {
            for (i, s) in needles.iter().enumerate() {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_slice()),
                    "secret #{i} appears in clear in {name}"
                );
            }
        }
    }

    async fn haystacks(&self, table: &str) -> Vec<(String, Vec<u8>)> {
        match &self.url {
            DatabaseUrl::Sqlite(_) => ["mandat.db", "mandat.db-wal", "mandat.db-shm"]
                .iter()
                .filter_map(|f| {
                    std::fs::read(self.dir.path().join(f))
                        .ok()
                        .map(|b| ((*f).to_owned(), b))
                })
                .collect(),
            DatabaseUrl::Postgres(u) => {
                use sqlx::Connection as _;
                let mut c = sqlx::PgConnection::connect(u.expose_secret())
                    .await
                    .unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                assert!(tables.iter().any(|t| t == table), "no table {table}");
                let mut out = Vec::new();
                for t in tables {
                    let dump: Option<String> = sqlx::query_scalar(&format!(
                        "SELECT string_agg(t::text, '|') FROM \"{t}\" t"
                    ))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                    out.push((t, dump.unwrap_or_default().into_bytes()));
                }
                out
            }
        }
    }
}

/// The binary with debug logs, on plain HTTP, on the session's database.
fn command(dir: &tempfile::TempDir, url: &DatabaseUrl) -> Command {
    let mut c = crate::common::mandat_command(dir.path());
    c.env("MANDAT_INSECURE_HTTP", "1")
        .env("MANDAT_LOG", "debug");
    if let DatabaseUrl::Postgres(u) = url {
        c.env("MANDAT_DATABASE_URL", u.expose_secret())
            .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY);
    }
    c
}
