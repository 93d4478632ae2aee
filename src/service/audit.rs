//! The audit trail's use cases for DPOs and operators: search, export, proofs, checkpoints,
//! verification, and retention of payloads. Every read goes through the read barrier first.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Ctx;
use crate::audit::checkpoint::{SignedNote, read_external};
use crate::audit::merkle::{Hash, RootBuilder};
use crate::audit::proof::{consistency_ranges, inclusion_ranges};
use crate::audit::verify::{self, PAGE, VerifyReport};
use crate::audit::{self, Details, NewEvent};
use crate::authz::{Action, Resource};
use crate::domain::FieldError;
use crate::domain::audit_query::AuditQuery;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{AuditFilter, AuditRow, StoreError, Tx};

/// The whole trail, as the policies see it.
const WHOLE_TRAIL: Resource = Resource::AuditTrail { organisation: None };

/// One page of search results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Canonical events (audit.md); an entry whose payload was pruned by retention shows its
    /// indexed fields with `"details": null` and `"pruned": true`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub leaf_index: i64,
    pub tree_size: i64,
    pub hashes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    pub hashes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestCheckpoint {
    pub tree_size: i64,
    pub root_hash: String,
    pub timestamp: String,
    pub note: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicKeyInfo {
    pub key_id: String,
    pub alg: &'static str,
    pub public_key: String,
    pub vkey: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublicKeys {
    pub keys: Vec<PublicKeyInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }
}

fn filter(q: &AuditQuery) -> AuditFilter {
    AuditFilter {
        since: q.since.clone(),
        until: q.until.clone(),
        action: q.action.clone(),
        actor: q.actor.clone(),
        usager: q.usager.clone(),
        mandate: q.mandate.clone(),
        organisation: q.organisation.clone(),
        below: None,
    }
}

fn bad_cursor() -> AppError {
    AppError::Validation(vec![FieldError::new(
        "cursor",
        "Curseur de pagination invalide.",
    )])
}

pub fn encode_cursor(idx: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{idx}"))
}

pub fn decode_cursor(c: &str) -> ApiResult<i64> {
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad_cursor())?;
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.strip_prefix('a'))
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|i| *i >= 0)
        .ok_or_else(bad_cursor)
}

/// The API shape of a row: the canonical event, or its indexed fields when pruned.
pub fn row_value(r: &AuditRow) -> Value {
    if let Some(v) = r
        .canonical_event
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        return v;
    }
    serde_json::json!({
        "v": 1, "index": r.idx, "ts": r.ts, "action": r.action,
        "actor": {"kind": r.actor_kind, "id": r.actor_id},
        "organisation": r.organisation_id, "usager": r.usager_id, "mandate": r.mandate_id,
        "target": null, "request_id": null, "details": null, "pruned": true,
    })
}

/// Search with filters and cursor paging, oldest first.
/// `scope` is the organisation a référent reads about (`None`: the whole trail, DPO only);
/// the policies decide.
pub async fn search(
    state: &Services,
    ctx: &Ctx,
    scope: Option<uuid::Uuid>,
    q: &AuditQuery,
    cursor: Option<&str>,
    limit: i64,
) -> ApiResult<AuditPage> {
    ctx.authorize(
        state,
        Action::AuditRead,
        &Resource::AuditTrail {
            organisation: scope,
        },
    )?;
    let after = cursor.map(decode_cursor).transpose()?.unwrap_or(-1);
    state.sequencer.barrier().await?;
    let mut tx = state.store.begin_snapshot().await?;
    let mut rows = tx.search_audit(&filter(q), after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(r.idx))
    } else {
        None
    };
    Ok(AuditPage {
        items: rows.iter().map(row_value).collect(),
        next_cursor,
    })
}

/// French CSV header line.
pub const CSV_HEADER: &str = "index,horodatage,action,type_acteur,id_acteur,organisation,usager,mandat,cible,id_requete,details,empreinte_feuille,contenu_purge\r\n";

/// One CSV cell. A value a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a `'` in front (OWASP, CSV injection); then the
/// cell is quoted when it holds a comma, a quote or a line break.
pub fn csv_field(out: &mut String, v: &str) {
    let neutralised;
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutralised = format!("'{v}");
        neutralised.as_str()
    } else {
        v
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

fn format_row(r: &AuditRow, format: ExportFormat, out: &mut String) {
    match format {
        ExportFormat::Jsonl => {
            match &r.canonical_event {
                Some(t) => out.push_str(t),
                None => out.push_str(&format!(
                    "{{\"index\":{},\"leaf_hash\":\"{}\",\"pruned\":true}}",
                    r.idx,
                    hex::encode(&r.leaf_hash)
                )),
            }
            out.push('\n');
        }
        ExportFormat::Csv => {
            let v = r
                .canonical_event
                .as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok());
            let s = |k: &str| {
                v.as_ref()
                    .and_then(|v| v.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let details = v
                .as_ref()
                .and_then(|v| v.get("details"))
                .and_then(|d| audit::canonical::to_canonical(d).ok())
                .unwrap_or_default();
            let fields = [
                r.idx.to_string(),
                r.ts.clone(),
                r.action.clone(),
                r.actor_kind.clone(),
                r.actor_id.clone().unwrap_or_default(),
                r.organisation_id.clone().unwrap_or_default(),
                r.usager_id.clone().unwrap_or_default(),
                r.mandate_id.clone().unwrap_or_default(),
                s("target"),
                s("request_id"),
                details,
                hex::encode(&r.leaf_hash),
                if v.is_some() { "non" } else { "oui" }.to_owned(),
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(out, f);
            }
            out.push_str("\r\n");
        }
    }
}

/// A streamed export: chunks of text, in index order, from one snapshot.
pub struct Export {
    pub events: i64,
    pub chunks: mpsc::Receiver<Result<String, StoreError>>,
}

/// Starts an export (recorded first as `audit.exported`); the chunks are produced by a task
/// reading one page at a time, so memory stays constant whatever the size of the log.
pub async fn export(
    state: &Services,
    ctx: &Ctx,
    q: &AuditQuery,
    format: ExportFormat,
) -> ApiResult<Export> {
    ctx.authorize(state, Action::AuditExport, &WHOLE_TRAIL)?;
    state.sequencer.barrier().await?;
    let mut f = filter(q);
    let size = {
        let mut tx = state.store.begin_snapshot().await?;
        tx.audit_head().await?.0
    };
    f.below = Some(size);
    let events = {
        let mut tx = state.store.begin_snapshot().await?;
        tx.count_audit(&f).await?
    };
    let mut tx = state.store.begin().await?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            state.clock.now(),
            ctx.actor.clone(),
            Details::AuditExported {
                format: format.name().into(),
                events,
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    state.commit(tx).await?;

    let (out, chunks) = mpsc::channel(2);
    let store = state.store.clone();
    tokio::spawn(async move {
        let result = async {
            let mut tx = store.begin_snapshot().await?;
            if format == ExportFormat::Csv && out.send(Ok(CSV_HEADER.to_owned())).await.is_err() {
                return Ok(());
            }
            let mut after = -1;
            loop {
                let rows = tx.search_audit(&f, after, PAGE).await?;
                let Some(last) = rows.last() else { break };
                after = last.idx;
                let mut chunk = String::with_capacity(rows.len() * 400);
                for r in &rows {
                    format_row(r, format, &mut chunk);
                }
                if out.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "audit export failed midway");
            let _ = out.send(Err(e)).await;
        }
    });
    Ok(Export { events, chunks })
}

/// Hashes of the given disjoint leaf ranges, streaming the leaf hashes page by page.
async fn range_hashes(tx: &mut dyn Tx, ranges: &[std::ops::Range<u64>]) -> ApiResult<Vec<Hash>> {
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let mut b = RootBuilder::new();
        let mut at = r.start as i64;
        while (at as u64) < r.end {
            let to = (at + PAGE).min(r.end as i64);
            let page = tx.audit_leaf_hashes(at, to).await?;
            if page.len() as i64 != to - at {
                return Err(AppError::Internal(anyhow::anyhow!("audit log has a gap")));
            }
            for h in page {
                b.push(
                    h.as_slice()
                        .try_into()
                        .map_err(|_| AppError::Internal(anyhow::anyhow!("malformed leaf hash")))?,
                );
            }
            at = to;
        }
        out.push(b.root());
    }
    Ok(out)
}

async fn current_size(state: &Services, tx: &mut dyn Tx) -> ApiResult<i64> {
    let _ = state;
    Ok(tx.audit_head().await?.0)
}

fn out_of_range(field: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(
        field,
        "Valeur hors de l'arbre : l'index doit être inférieur à la taille, et la taille au plus celle du journal.",
    )])
}

/// RFC 9162 inclusion proof of entry `index` in the tree of `tree_size` entries.
pub async fn inclusion(
    state: &Services,
    ctx: &Ctx,
    index: i64,
    tree_size: i64,
) -> ApiResult<InclusionProof> {
    ctx.authorize(state, Action::AuditRead, &WHOLE_TRAIL)?;
    state.sequencer.barrier().await?;
    let mut tx = state.store.begin_snapshot().await?;
    let size = current_size(state, tx.as_mut()).await?;
    if index < 0 || tree_size <= index || tree_size > size {
        return Err(out_of_range("index"));
    }
    let ranges =
        inclusion_ranges(index as u64, tree_size as u64).map_err(|_| out_of_range("index"))?;
    let hashes = range_hashes(tx.as_mut(), &ranges).await?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size,
        hashes: hashes.iter().map(hex::encode).collect(),
    })
}

/// RFC 9162 consistency proof between the trees of `from` and `to` entries.
pub async fn consistency(
    state: &Services,
    ctx: &Ctx,
    from: i64,
    to: i64,
) -> ApiResult<ConsistencyProof> {
    ctx.authorize(state, Action::AuditRead, &WHOLE_TRAIL)?;
    state.sequencer.barrier().await?;
    let mut tx = state.store.begin_snapshot().await?;
    let size = current_size(state, tx.as_mut()).await?;
    if from < 0 || from > to || to > size {
        return Err(out_of_range("from"));
    }
    let ranges = consistency_ranges(from as u64, to as u64).map_err(|_| out_of_range("from"))?;
    let hashes = range_hashes(tx.as_mut(), &ranges).await?;
    Ok(ConsistencyProof {
        from,
        to,
        hashes: hashes.iter().map(hex::encode).collect(),
    })
}

/// The latest signed checkpoint; `404` only while the log is empty. When events exist but
/// the writer has not signed its first checkpoint yet, it is signed now. Anyone may read it
/// when checkpoints are published (`MANDAT_PUBLISH_CHECKPOINTS`); otherwise the DPO
/// (`ctx` is `None` for an anonymous request).
pub async fn latest_checkpoint(state: &Services, ctx: Option<&Ctx>) -> ApiResult<LatestCheckpoint> {
    if !state.config.publish_checkpoints {
        ctx.ok_or(AppError::Unauthenticated)?
            .authorize(state, Action::AuditRead, &WHOLE_TRAIL)?;
    }
    let stored = {
        let mut tx = state.store.begin_snapshot().await?;
        tx.latest_audit_checkpoint().await?
    };
    let cp = match stored {
        Some(cp) => cp,
        None => {
            state.sequencer.barrier().await?;
            let empty = {
                let mut tx = state.store.begin_snapshot().await?;
                tx.audit_head().await?.0 == 0
            };
            if empty {
                return Err(AppError::NotFound);
            }
            match state.checkpoints.write_now().await {
                Ok(Some(cp)) => cp,
                // Signed meanwhile by the background writer (or another instance).
                Ok(None) => {
                    let mut tx = state.store.begin_snapshot().await?;
                    tx.latest_audit_checkpoint()
                        .await?
                        .ok_or(AppError::Unavailable)?
                }
                Err(crate::audit::checkpointer::CheckpointError::Store(e)) => return Err(e.into()),
                // An integrity failure (the writer no longer signs; `/readyz` says so).
                Err(_) => return Err(AppError::Unavailable),
            }
        }
    };
    Ok(LatestCheckpoint {
        tree_size: cp.tree_size,
        root_hash: hex::encode(&cp.root_hash),
        timestamp: cp.timestamp,
        note: cp.note,
    })
}

/// Every version of the checkpoint-signing key (older versions still verify old checkpoints).
pub async fn public_keys(state: &Services) -> ApiResult<PublicKeys> {
    let origin = &state.checkpoints.settings().origin;
    Ok(PublicKeys {
        keys: state
            .checkpoints
            .public_keys()
            .await?
            .into_iter()
            .map(|k| PublicKeyInfo {
                key_id: hex::encode(k.key_id(origin)),
                alg: "Ed25519",
                public_key: base64::engine::general_purpose::STANDARD.encode(k.bytes),
                vkey: k.vkey(origin),
            })
            .collect(),
    })
}

/// Reads the checkpoints of a file held outside the database (`--against`).
pub fn external_checkpoints(path: &Path) -> Result<Vec<SignedNote>, String> {
    read_external(path)
}

/// Verifies the whole log (and `external` checkpoints) and records `audit.verified`.
pub async fn verify(
    state: &Services,
    ctx: &Ctx,
    external: &[SignedNote],
) -> ApiResult<VerifyReport> {
    ctx.authorize(state, Action::AuditVerify, &WHOLE_TRAIL)?;
    state.sequencer.barrier().await?;
    let keys = state.checkpoints.public_keys().await?;
    let report = verify::verify(&state.store, &keys, external).await?.report;
    if let Some(i) = report.first_bad_index {
        tracing::error!(audit.first_bad_index = i, problem = ?report.problem, "audit verification failed");
    }
    let mut tx = state.store.begin().await?;
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            state.clock.now(),
            ctx.actor.clone(),
            Details::AuditVerified {
                ok: report.ok,
                entries: report.entries,
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    state.commit(tx).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    fn cell(v: &str) -> String {
        let mut out = String::new();
        csv_field(&mut out, v);
        out
    }

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+33612345678"), "'+33612345678");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        // Ordinary values are unchanged; a sign inside a value is no formula.
        assert_eq!(cell("mandate.revoked"), "mandate.revoked");
        assert_eq!(cell("2026-11-23T09:00:00Z"), "2026-11-23T09:00:00Z");
        assert_eq!(cell("a=b"), "a=b");
        assert_eq!(cell(""), "");
        assert_eq!(cell("a,b"), "\"a,b\"");
    }
}
