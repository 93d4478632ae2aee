//! `mandat backup --to FILE`: a copy taken while `serve` writes restores into a database
//! that verifies (SQLite); PostgreSQL is refused with a pointer to pg_dump, and the
//! documented pg_dump / pg_restore round trip verifies too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mandat::config::DatabaseUrl;

use crate::serve_process::{self as sp, Deployment};

/// Creates and activates mandates until `stop`; returns how many were activated.
fn load(
    client: reqwest::Client,
    base: String,
    usager: uuid::Uuid,
    done: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let (id, code) = sp::create_mandate(&client, &base, usager)
                .await
                .expect("create under load");
            sp::consent(&client, &base, id, &code)
                .await
                .expect("consent under load");
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

async fn wait_for(done: &AtomicUsize, n: usize) {
    let start = std::time::Instant::now();
    while done.load(Ordering::Relaxed) < n {
        assert!(start.elapsed() < Duration::from_secs(30), "load too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_backup_taken_under_write_load_restores_into_a_database_that_verifies() {
    let d = Deployment::new().await;
    let org = d.org("MFS Sauvegarde");
    let aidants = [
        d.aidant("backup1@example.org", org),
        d.aidant("backup2@example.org", org),
    ];
    let server = d.serve(sp::free_port(), &[]).await;
    if let DatabaseUrl::Postgres(_) = d.db {
        let out = d
            .command()
            .args(["backup", "--to"])
            .arg(d.dir.path().join("x.db"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!d.dir.path().join("x.db").exists());
    }
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, a) in aidants.iter().enumerate() {
        let client = sp::login(&server.base, a).await;
        let usager = sp::usager(&client, &server.base, &format!("Sauve-{i}")).await;
        tasks.push(load(
            client,
            server.base.clone(),
            usager,
            done.clone(),
            stop.clone(),
        ));
    }
    wait_for(&done, 10).await;
    let at_backup = done.load(Ordering::Relaxed);

    // The copy, taken while both clients write.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_url = match &d.db {
        DatabaseUrl::Sqlite(_) => {
            let file = d.dir.path().join("backup.db");
            let mut c = d.command();
            c.args(["backup", "--to"]).arg(&file);
            let out = tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(report["audit_entries"].as_i64().unwrap() > 0, "{report}");
            // A second backup to the same file is refused, the first one untouched.
            let again = d
                .command()
                .args(["backup", "--to"])
                .arg(&file)
                .output()
                .unwrap();
            assert_eq!(again.status.code(), Some(2));
            // Restore: the file becomes the database of a new deployment.
            let target = restored_dir.path().join("mandat.db");
            std::fs::copy(&file, &target).unwrap();
            format!("sqlite://{}", target.display())
        }
        DatabaseUrl::Postgres(_) => pg_dump_and_restore(&d).await,
    };
    // The load goes on after the copy.
    wait_for(&done, at_backup + 10).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.stop(), Some(0));

    let verify = |url: &str| {
        crate::common::mandat_command(restored_dir.path())
            .env("MANDAT_DATABASE_URL", url)
            .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY)
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let out = verify(&restored_url);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ok"), "{text}");
    // The copy holds the mandates activated before it, not all of the later ones.
    let restored = restored_count(&restored_url).await;
    let total = d.sql_i64s("SELECT COUNT(*) FROM mandate").await[0];
    assert!(restored as usize >= at_backup, "{restored} < {at_backup}");
    assert!(restored < total, "the copy is the state at backup time");
    // The restored database serves.
    let port = sp::free_port();
    let mut child = crate::common::mandat_command(restored_dir.path())
        .env("MANDAT_DATABASE_URL", &restored_url)
        .env("MANDAT_MASTER_KEY", crate::audit_trail::TEST_MASTER_KEY)
        .env("MANDAT_LISTEN", format!("127.0.0.1:{port}"))
        .env("MANDAT_LOG", "warn")
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            ready = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready,
        "the restored database is ready (its log verifies at start-up)"
    );
}

async fn restored_count(url: &str) -> i64 {
    use sqlx::Connection as _;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM mandate")
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM mandate")
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

/// The README's PostgreSQL procedure: `pg_dump --format=custom` while serving, then
/// `pg_restore` into a new database. Returns the new database's URL.
async fn pg_dump_and_restore(d: &Deployment) -> String {
    use secrecy::ExposeSecret as _;
    let DatabaseUrl::Postgres(url) = &d.db else {
        unreachable!()
    };
    let url = url.expose_secret().to_owned();
    let dump = d.dir.path().join("mandat.dump");
    let source = url.clone();
    let dump_file = dump.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("pg_dump")
            .args(["--format=custom", "--file"])
            .arg(&dump_file)
            .arg(&source)
            .output()
    })
    .await
    .unwrap()
    .expect("pg_dump (postgresql-client) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (server, _) = url.rsplit_once('/').unwrap();
    let name = format!("mandat_test_{}", uuid::Uuid::new_v4().simple());
    {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let target = format!("{server}/{name}");
    let out = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(&target)
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}
