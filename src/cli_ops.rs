//! `mandat keys rotate`, `mandat vault rewrap`, `mandat retention run` and `mandat backup`.

use std::sync::Arc;

use crate::app::{AppState, StartError};
use crate::cli::{ExitCode, KeysCommand, RetentionCommand, VaultCommand};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::service::keys::{self, RotatableKey};
use crate::service::{Ctx, retention};

/// The cause for an operator: the message of a refusal, the cause chain otherwise (never
/// personal data or secrets).
fn describe(e: &crate::error::AppError) -> String {
    match e {
        crate::error::AppError::Conflict(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

fn other(e: impl std::fmt::Display) -> StartError {
    // Operators read this; it never holds personal data or secrets.
    StartError::Other(anyhow::anyhow!("{e}"))
}

pub async fn keys(cmd: KeysCommand, config: Config) -> Result<ExitCode, StartError> {
    let KeysCommand::Rotate { purpose } = cmd;
    let Some(key) = RotatableKey::parse(&purpose) else {
        eprintln!("keys rotate: expected one of vault, audit, oidc, index");
        return Ok(2);
    };
    if let Some(why) = key.unsupported() {
        eprintln!("keys rotate {}: not available: {why}", key.name());
        return Ok(2);
    }
    let state = AppState::new(config, Arc::new(SystemClock), true).await?;
    let result = keys::rotate(&state, &Ctx::system(), key).await;
    let code = match result {
        Ok(rotated) => {
            state.sequencer.barrier().await.map_err(other)?;
            println!(
                "{}",
                serde_json::to_string(&rotated).map_err(|e| other(e.to_string()))?
            );
            0
        }
        Err(e) => {
            eprintln!("keys rotate {}: {}", key.name(), describe(&e));
            1
        }
    };
    state.store.close().await;
    Ok(code)
}

pub async fn retention(cmd: RetentionCommand, config: Config) -> Result<ExitCode, StartError> {
    let RetentionCommand::Run { dry_run } = cmd;
    let state = AppState::new(config, Arc::new(SystemClock), true).await?;
    let result = retention::run(&state, &Ctx::system(), dry_run).await;
    let code = match result {
        Ok(report) => {
            state.sequencer.barrier().await.map_err(other)?;
            print!("{}", report.summary());
            0
        }
        Err(e) => {
            eprintln!("retention run: {}", describe(&e));
            1
        }
    };
    state.store.close().await;
    Ok(code)
}

/// `mandat backup --to FILE`: SQLite's `VACUUM INTO` from a read transaction of its own, so
/// the copy is one consistent snapshot even while `serve` writes (the writer never waits).
/// The copy is checked (`PRAGMA quick_check`) before the command reports success. The
/// master key is not in the database: back up the key file (or `MANDAT_MASTER_KEY`) apart.
pub async fn backup(to: &std::path::Path, config: Config) -> Result<ExitCode, StartError> {
    use std::str::FromStr as _;
    let url = match &config.database_url {
        crate::config::DatabaseUrl::Postgres(_) => {
            eprintln!(
                "backup: not available for PostgreSQL; use pg_dump, e.g. pg_dump --format=custom --file=mandat.dump \"$MANDAT_DATABASE_URL\" (see README.md, Operations)"
            );
            return Ok(2);
        }
        crate::config::DatabaseUrl::Sqlite(u) => u.clone(),
    };
    let source = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .map_err(|e| StartError::Config(format!("MANDAT_DATABASE_URL: {e}")))?
        .get_filename()
        .to_path_buf();
    if !source.is_file() {
        eprintln!("backup: no database at {}", source.display());
        return Ok(2);
    }
    if to.exists() {
        eprintln!("backup: {} exists already; give a new file", to.display());
        return Ok(2);
    }
    let store = crate::app::open_store(&config, false).await?;
    let copied = store.backup_to(to).await;
    store.close().await;
    if let Err(e) = copied {
        eprintln!("backup: {e}");
        return Ok(1);
    }
    let target = to.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &target,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        let entries: i64 =
            conn.query_row("SELECT next_index FROM audit_head WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        Ok::<_, rusqlite::Error>((check, entries))
    })
    .await
    .map_err(other)?;
    match checked {
        Ok((check, entries)) if check == "ok" => {
            let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
            println!(
                "{}",
                serde_json::json!({"backup": to.display().to_string(), "bytes": bytes, "audit_entries": entries})
            );
            eprintln!(
                "backup: the master key is not in the copy; keep the key file (MANDAT_KEYS_FILE) or MANDAT_MASTER_KEY with it"
            );
            Ok(0)
        }
        Ok((check, _)) => {
            eprintln!("backup: the copy does not pass PRAGMA quick_check: {check}");
            Ok(1)
        }
        Err(e) => {
            eprintln!("backup: cannot read the copy back: {e}");
            Ok(1)
        }
    }
}

/// `mandat vault rewrap`: re-wraps every data key under the newest vault key (resumable).
pub async fn vault(cmd: VaultCommand, config: Config) -> Result<ExitCode, StartError> {
    let VaultCommand::Rewrap {
        batch_size,
        max_batches,
    } = cmd;
    if batch_size < 1 {
        eprintln!("vault rewrap: --batch-size must be at least 1");
        return Ok(2);
    }
    let state = AppState::new(config, Arc::new(SystemClock), true).await?;
    let result =
        crate::service::vault::rewrap(&state, &Ctx::system(), batch_size, max_batches).await;
    let code = match result {
        Ok(report) => {
            state.sequencer.barrier().await.map_err(other)?;
            println!(
                "{}",
                serde_json::to_string(&report).map_err(|e| other(e.to_string()))?
            );
            i32::from(report.unreadable > 0)
        }
        Err(e) => {
            eprintln!("vault rewrap: {}", describe(&e));
            1
        }
    };
    state.store.close().await;
    Ok(code)
}
