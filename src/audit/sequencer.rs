//! Stage two of the append: one sequencer per database gives committed queue rows their
//! gap-free index, computes leaf and chain hashes and moves them into `audit_log` and
//! `audit_payload`, in one transaction (an advisory lock on PostgreSQL, the single writer on
//! SQLite). Log order is the sequencer's order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use super::event::canonical_with_index;
use super::merkle::{chain_hash, leaf_hash};
use crate::store::{AuditEntry, Store, StoreError};

/// Events per sequencer transaction.
pub const BATCH: usize = 256;
/// Pause of the background loop after a pass.
const COALESCE: Duration = Duration::from_millis(5);

/// Access events (logins, reads): the "access log" class of retention.
pub const ACCESS_ACTIONS: &[&str] = &[
    "aidant.login",
    "aidant.login_failed",
    "aidant.logout",
    "aidant.step_up",
    "usager.read",
    "usager.searched",
    "oidc.userinfo",
];

/// The floor the database enforces on pruning (`audit_payload.prune_after`), fixed when the
/// event is sequenced: 12 months for access events, 6 years for the others (mandate evidence,
/// administration). The retention job may keep payloads longer (`policies/retention.toml`),
/// never shorter. Hashes are kept forever.
pub fn payload_retention_days(action: &str) -> i64 {
    if ACCESS_ACTIONS.contains(&action) {
        365
    } else {
        6 * 365 + 2
    }
}

/// Turns one queued event into the log entry at `index`, chained after `prev`.
pub fn sequence_entry(text: &str, index: i64, prev: &[u8; 32]) -> Result<AuditEntry, StoreError> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(StoreError::Corrupt("audit_queue"));
    };
    let field = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
    let action = field("action").unwrap_or_default();
    let ts = field("ts").unwrap_or_default();
    let actor = map.get("actor");
    let actor_kind = actor
        .and_then(|a| a.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let actor_id = actor
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (organisation, usager, mandate) =
        (field("organisation"), field("usager"), field("mandate"));
    let canonical = canonical_with_index(map, index).map_err(|e| StoreError::Other(e.into()))?;
    let leaf = leaf_hash(canonical.as_bytes());
    let chain = chain_hash(prev, &leaf);
    let ts_unix = chrono::DateTime::parse_from_rfc3339(&ts)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    Ok(AuditEntry {
        idx: index,
        ts,
        prune_after: ts_unix + payload_retention_days(&action) * 86_400,
        action,
        actor_kind,
        actor_id,
        organisation,
        usager,
        mandate,
        leaf_hash: leaf.to_vec(),
        chain_hash: chain.to_vec(),
        canonical,
    })
}

#[derive(Clone)]
pub struct Sequencer {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
}

impl Sequencer {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells the background task that events were committed.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Sequences one batch; returns how many events it moved.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let mut tx = self.store.begin_sequencer().await?;
        let batch = tx.audit_queue_batch(BATCH as i64).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let (mut next, prev) = tx.audit_head().await?;
        let mut prev: [u8; 32] = prev
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit_head"))?;
        let mut entries = Vec::with_capacity(batch.len());
        let mut ids = Vec::with_capacity(batch.len());
        for (qid, text) in batch {
            ids.push(qid);
            let entry = sequence_entry(&text, next, &prev)?;
            prev = entry
                .chain_hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("audit chain"))?;
            entries.push(entry);
            next += 1;
        }
        tx.insert_audit_entries(&entries).await?;
        tx.delete_audit_queue(&ids).await?;
        tx.set_audit_head(next, &prev).await?;
        tx.commit().await?;
        ::metrics::counter!(crate::metrics::AUDIT_SEQUENCED).increment(entries.len() as u64);
        Ok(entries.len())
    }

    /// Read barrier: every event committed before this call is sequenced when it returns.
    pub async fn barrier(&self) -> Result<(), StoreError> {
        while self.run_once().await? > 0 {}
        Ok(())
    }

    /// The background loop: runs when woken or every 50 ms, until `shutdown` resolves.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = shutdown.changed() => {
                    let _ = self.barrier().await;
                    return;
                }
            }
            if let Err(e) = self.barrier().await {
                tracing::error!(error = %e, "audit sequencer pass failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // Coalesce: the events committed in the next moments wait for one pass together
            // (one transaction per batch instead of one per event under load). A reader
            // never waits for this: every read runs its own barrier first.
            tokio::time::sleep(COALESCE).await;
        }
    }
}
