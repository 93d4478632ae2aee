//! `mandat audit verify` and `mandat audit export`.

use std::io::Write as _;
use std::sync::Arc;

use crate::app::{AppState, StartError};
use crate::cli::{AuditCommand, ExitCode};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::audit_query::{AuditQuery, RawAuditQuery};
use crate::service::Ctx;
use crate::service::audit::{self, ExportFormat};

fn other(e: impl std::fmt::Debug) -> StartError {
    // Operators read this: the cause chain, which never holds event content or secrets.
    StartError::Other(anyhow::anyhow!("{e:?}"))
}

pub async fn run(cmd: AuditCommand, config: Config) -> Result<ExitCode, StartError> {
    match cmd {
        AuditCommand::Verify { against } => {
            let external = match &against {
                Some(p) => match audit::external_checkpoints(p) {
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("--against: {e}");
                        return Ok(2);
                    }
                },
                None => Vec::new(),
            };
            let state = AppState::new(config, Arc::new(SystemClock), true).await?;
            let report = audit::verify(&state, &Ctx::system(), &external)
                .await
                .map_err(other)?;
            state.sequencer.barrier().await.map_err(other)?;
            state.store.close().await;
            println!("{}", report.summary());
            Ok(if report.ok { 0 } else { 1 })
        }
        AuditCommand::Export {
            format,
            since,
            until,
        } => {
            let Some(format) = ExportFormat::parse(&format) else {
                eprintln!("--format: jsonl ou csv");
                return Ok(2);
            };
            let query = match AuditQuery::parse(&RawAuditQuery {
                since,
                until,
                ..Default::default()
            }) {
                Ok(q) => q,
                Err(errors) => {
                    for e in errors {
                        eprintln!("--{}: {}", e.field, e.message);
                    }
                    return Ok(2);
                }
            };
            let state = AppState::new(config, Arc::new(SystemClock), true).await?;
            let mut export = audit::export(&state, &Ctx::system(), &query, format)
                .await
                .map_err(other)?;
            let mut failed = false;
            {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                while let Some(chunk) = export.chunks.recv().await {
                    match chunk {
                        Ok(text) => out.write_all(text.as_bytes()).map_err(other)?,
                        Err(e) => {
                            eprintln!("export interrupted: {e}");
                            failed = true;
                            break;
                        }
                    }
                }
                out.flush().map_err(other)?;
            }
            state.sequencer.barrier().await.map_err(other)?;
            state.store.close().await;
            Ok(if failed { 1 } else { 0 })
        }
    }
}
