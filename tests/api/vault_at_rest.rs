//! A scripted vault session against the real binary, then a scan of the raw database files
//! (SQLite: the file and its WAL; PostgreSQL: a dump of every table) and of everything the
//! process printed: no vault secret, login or TOTP seed in clear.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::vault::{LOGIN, SECRET, SEED};

const ROTATED: &str = "Deuxième-secret-du-compte-55";

fn mandat(dir: &std::path::Path) -> Command {
    let mut c = crate::common::mandat_command(dir);
    c.env("MANDAT_INSECURE_HTTP", "1")
        .env("MANDAT_LOG", "debug");
    c
}

#[tokio::test]
async fn no_vault_secret_login_or_seed_in_clear_in_the_database_or_the_logs() {
    use secrecy::ExposeSecret as _;
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    let db_env: Option<String> = match &url {
        mandat::config::DatabaseUrl::Postgres(u) => Some(u.expose_secret().to_owned()),
        mandat::config::DatabaseUrl::Sqlite(_) => None,
    };
    let with_db = |mut c: Command| {
        if let Some(u) = &db_env {
            c.env("MANDAT_DATABASE_URL", u)
                .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY);
        }
        c
    };
    let mut logs = String::new();
    let out = with_db(mandat(dir.path()))
        .args(["org", "create", "--name", "MFS", "--address", "1 rue X"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    let org: Value = serde_json::from_slice(&out.stdout).unwrap();
    let password = "Zèbre-violet-9-lampadaire";
    let mut child = with_db(mandat(dir.path()))
        .args([
            "user",
            "create",
            "--email",
            "camille@example.fr",
            "--name",
            "Camille",
            "--org",
            org["id"].as_str().unwrap(),
            "--role",
            "aidant",
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
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let totp =
        mandat::crypto::totp::Seed::parse_card(created["totp_secret"].as_str().unwrap(), false)
            .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out_path = dir.path().join("serve.out");
    let err_path = dir.path().join("serve.err");
    let mut server = with_db(mandat(dir.path()))
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
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"email": "camille@example.fr", "password": password, "totp": totp.code_at(30, now())}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{base}/api/v1/vault/entries"))
        .json(
            &json!({"label": "Compte collectif", "service": "impots.gouv.fr", "login": LOGIN,
            "secret": SECRET, "totp_seed": SEED, "notes": "Note privée du compte"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Step-up needs the next code (each step is accepted once).
    tokio::time::sleep(Duration::from_secs(30 - now() % 30 + 1)).await;
    let res = client
        .post(format!("{base}/api/v1/session/step-up"))
        .json(&json!({"totp": totp.code_at(30, now())}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = client
        .post(format!("{base}/api/v1/vault/entries/{id}/reveal"))
        .json(&json!({"reason": "usager_present"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], SECRET);
    let res = client
        .put(format!("{base}/api/v1/vault/entries/{id}/secret"))
        .json(&json!({"secret": ROTATED}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = client
        .post(format!("{base}/api/v1/vault/entries/{id}/reveal"))
        .json(&json!({"reason": "account_maintenance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], ROTATED);
    let res = client
        .get(format!("{base}/api/v1/vault/entries"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    logs.push_str(&std::fs::read_to_string(&out_path).unwrap());
    logs.push_str(&std::fs::read_to_string(&err_path).unwrap());
    assert!(logs.contains("login"), "the logs were captured");

    let seed = mandat::crypto::totp::Seed::parse_card(SEED, false).unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        SECRET.as_bytes().to_vec(),
        ROTATED.as_bytes().to_vec(),
        LOGIN.as_bytes().to_vec(),
        SEED.as_bytes().to_vec(),
        seed.bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(seed.bytes())
            .into_bytes(),
        b"Note priv".to_vec(),
        b"impots.gouv".to_vec(),
    ];
    // PostgreSQL prints BYTEA as hex: a plaintext stored as bytes would show that way.
    let hexed: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| hex::encode(s).into_bytes())
        .collect();
    let secrets: Vec<Vec<u8>> = secrets.into_iter().chain(hexed).collect();
    let haystacks: Vec<(String, Vec<u8>)> = match &url {
        mandat::config::DatabaseUrl::Sqlite(_) => ["mandat.db", "mandat.db-wal", "mandat.db-shm"]
            .iter()
            .filter_map(|f| {
                std::fs::read(dir.path().join(f))
                    .ok()
                    .map(|b| ((*f).to_owned(), b))
            })
            .collect(),
        mandat::config::DatabaseUrl::Postgres(u) => {
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
            assert!(tables.iter().any(|t| t == "vault_entry"));
            let mut out = Vec::new();
            for t in tables {
                let dump: Option<String> =
                    sqlx::query_scalar(&format!("SELECT string_agg(t::text, '|') FROM \"{t}\" t"))
                        .fetch_one(&mut c)
                        .await
                        .unwrap();
                out.push((t, dump.unwrap_or_default().into_bytes()));
            }
            out
        }
    };
    assert!(!haystacks.is_empty());
    for (name, bytes) in haystacks
        .iter()
        .chain(std::iter::once(&("logs".to_owned(), logs.into_bytes())))
    {
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_slice()),
                "{} appears in clear in {name}",
                String::from_utf8_lossy(&s[..4.min(s.len())])
            );
        }
    }
}
