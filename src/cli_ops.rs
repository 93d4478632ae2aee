//! `mandat keys rotate`, `mandat vault rewrap` and `mandat retention run`.

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
