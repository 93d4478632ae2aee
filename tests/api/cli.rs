//! The binary itself: configuration errors, `org create`, `serve` in an empty directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::mandat_command as mandat;

fn db_env(c: &mut Command, dir: &std::path::Path, url: &mandat::config::DatabaseUrl) {
    use secrecy::ExposeSecret as _;
    match url {
        mandat::config::DatabaseUrl::Sqlite(_) => {
            let _ = dir;
        }
        mandat::config::DatabaseUrl::Postgres(u) => {
            // PostgreSQL needs a configured master key (no generated key file).
            c.env("MANDAT_DATABASE_URL", u.expose_secret())
                .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY);
        }
    }
}

/// `serve` with `env`, expected to stop at once with exit code 3 naming `var`.
fn refused(dir: &std::path::Path, env: &[(&str, &str)], var: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = mandat(dir);
    c.env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{env:?}: {err}");
    assert!(err.contains(var), "{env:?} should name {var}: {err}");
}

#[test]
fn an_empty_webhook_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &[("MANDAT_SMS_WEBHOOK_SECRET", "")],
        "MANDAT_SMS_WEBHOOK_SECRET",
    );
    let file = dir.path().join("webhook-secret");
    std::fs::write(&file, "\n").unwrap();
    refused(
        dir.path(),
        &[("MANDAT_SMS_WEBHOOK_SECRET_FILE", file.to_str().unwrap())],
        "MANDAT_SMS_WEBHOOK_SECRET_FILE",
    );
    assert!(!dir.path().join("mandat.db").exists(), "nothing created");
}

#[tokio::test]
async fn postgres_without_a_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The database need not exist: the key is checked first.
    let url = match std::env::var("TEST_POSTGRES_URL") {
        Ok(server) => format!("{}/mandat_never_created", server.trim_end_matches('/')),
        Err(_) => "postgres://postgres@127.0.0.1:1/none".to_owned(),
    };
    let d = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        refused(&d, &[("MANDAT_DATABASE_URL", &url)], "MANDAT_MASTER_KEY");
    })
    .await
    .unwrap();
    assert!(
        !dir.path().join("mandat.keys").exists(),
        "no key file generated for PostgreSQL"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("mandat.keys");
    std::fs::write(&keys, format!("{}\n", crate::audit_trail::TEST_MASTER_KEY)).unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(mode)).unwrap();
        refused(
            dir.path(),
            &[("MANDAT_KEYS_FILE", keys.to_str().unwrap())],
            "MANDAT_KEYS_FILE",
        );
    }
    // The default path too.
    refused(dir.path(), &[], "MANDAT_KEYS_FILE");
    assert!(!dir.path().join("mandat.db").exists(), "nothing created");
}

#[test]
fn bad_listen_exits_3_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = mandat(dir.path())
        .env("MANDAT_LISTEN", "nonsense")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MANDAT_LISTEN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!dir.path().join("mandat.db").exists(), "nothing created");
}

#[test]
fn unreachable_database_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let out = mandat(dir.path())
        .env(
            "MANDAT_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn org_create_prints_an_id_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    let mut c = mandat(dir.path());
    db_env(&mut c, dir.path(), &url);
    let out = c
        .args([
            "org",
            "create",
            "--name",
            "MFS Lens",
            "--address",
            "2 rue Y",
            "--demarches",
            "social,argent",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());

    let mut c = mandat(dir.path());
    db_env(&mut c, dir.path(), &url);
    let out = c
        .args([
            "org",
            "create",
            "--name",
            "X",
            "--address",
            "Y",
            "--siret",
            "123",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--siret"));
}

#[tokio::test]
async fn serve_in_an_empty_directory_creates_the_database_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = mandat(dir.path());
    let url = crate::common::fresh_database(dir.path()).await;
    let is_sqlite = matches!(url, mandat::config::DatabaseUrl::Sqlite(_));
    db_env(&mut c, dir.path(), &url);
    let mut child = c
        .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .map(|r| r.status());
    // Graceful shutdown on SIGTERM.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(ok, "readyz answered 200");
    assert_eq!(health.unwrap(), 200);
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");
    if is_sqlite {
        assert!(dir.path().join("mandat.db").exists());
    }
    let keys = dir.path().join("mandat.keys");
    if is_sqlite {
        assert!(keys.exists(), "master key generated on a first local run");
    }
    use std::io::Read as _;
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains(&format!("http://127.0.0.1:{port}")), "{out}");
}
