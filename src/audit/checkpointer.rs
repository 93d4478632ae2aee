//! The checkpoint writer: one per database at a time (it takes the sequencer's lock), run in
//! the background after sequencer passes.
//!
//! It never signs two inconsistent checkpoints. Before its first signature (and again before
//! any signature while the log is small, or when its last full check is older than
//! [`REVERIFY_AFTER`]) it verifies the whole stored log against every stored and witnessed
//! checkpoint; between full checks it keeps the Merkle frontier of the verified prefix in
//! memory and, under the lock, checks that the stored chain still ends where it ended and
//! that the new entries extend it (leaf and chain recomputed) before signing the extended
//! root. Any failure is latched: no more signatures, `/readyz` answers 503, the first bad
//! index is logged, until an operator restarts the service after investigating.
//!
//! Keys: the signing key is the newest version of the audit-signing key recorded in
//! `key_version` (version 1 when none is), read in the writer's transaction before each
//! signature, so a running server signs with a rotated key from its next checkpoint on.
//! Verification accepts every recorded version.
//!
//! Sinks: each signed checkpoint is logged (one debug line), appended to the witness file and
//! queued for the HTTP witness when configured (see [`super::witness`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::checkpoint::{
    Checkpoint, PublicKey, SigningKey, WitnessRecord, append_witness, public_keys, read_external,
};
use super::merkle::{Hash, RootBuilder, chain_hash, leaf_hash};
use super::verify::{self, PAGE};
use super::witness::HttpWitness;
use crate::clock::Clock;
use crate::crypto::{Keyring, Purpose};
use crate::store::{CheckpointRow, Store, StoreError, Tx};

/// Full re-verification before every signature while the log has at most this many entries.
pub const ALWAYS_REVERIFY_UP_TO: u64 = 16_384;
/// Full re-verification at least this often otherwise.
pub const REVERIFY_AFTER: Duration = Duration::from_secs(600);
/// Version of the checkpoint-signing key before any rotation (it has no `key_version` row).
pub const INITIAL_KEY_VERSION: u32 = 1;

/// The versions of the checkpoint-signing key: the initial one and every recorded rotation,
/// ascending (the last one signs).
pub async fn signing_versions(tx: &mut dyn Tx) -> Result<Vec<u32>, StoreError> {
    let mut versions: Vec<u32> = tx
        .key_versions(Purpose::AuditSigning.label())
        .await?
        .into_iter()
        .filter_map(|v| u32::try_from(v).ok().filter(|v| *v >= 1))
        .collect();
    versions.push(INITIAL_KEY_VERSION);
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Settings of the writer, from the configuration.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    pub origin: String,
    pub witness: Option<PathBuf>,
    /// The HTTP witness sink, when configured.
    pub http_witness: Option<HttpWitness>,
    pub every_events: u64,
    pub interval: Duration,
}

/// Why the writer stopped signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityFailure {
    pub first_bad_index: i64,
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("integrity failure at index {}: {}", .0.first_bad_index, .0.problem)]
    Integrity(IntegrityFailure),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("witness sink: {0}")]
    Witness(String),
    #[error("signing key: {0}")]
    Key(String),
}

#[derive(Default)]
struct Cache {
    /// A full verification succeeded at some point and the fields below describe its prefix.
    verified_at: Option<Instant>,
    size: u64,
    frontier: RootBuilder,
    last_chain: Hash,
}

struct Inner {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    settings: CheckpointSettings,
    cache: tokio::sync::Mutex<Cache>,
    failure: Mutex<Option<IntegrityFailure>>,
    last_written: Mutex<Instant>,
    /// Whether this process has signed a checkpoint (then the witness already has it).
    signed: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct Checkpointer(Arc<Inner>);

impl Checkpointer {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        settings: CheckpointSettings,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            keyring,
            clock,
            settings,
            cache: tokio::sync::Mutex::new(Cache::default()),
            failure: Mutex::new(None),
            last_written: Mutex::new(Instant::now()),
            signed: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn settings(&self) -> &CheckpointSettings {
        &self.0.settings
    }

    /// The keys that may have signed checkpoints: every version recorded in the database.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>, StoreError> {
        let versions = {
            let mut tx = self.0.store.begin_read().await?;
            signing_versions(tx.as_mut()).await?
        };
        Ok(public_keys(&self.0.keyring, &versions))
    }

    /// The HTTP witness sink, when configured (its delivery task runs inside `serve`).
    pub fn http_witness(&self) -> Option<&HttpWitness> {
        self.0.settings.http_witness.as_ref()
    }

    /// The latched integrity failure, if any (`/readyz` answers 503 while there is one).
    pub fn failure(&self) -> Option<IntegrityFailure> {
        self.0
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn fail(&self, first_bad_index: i64, problem: String) -> CheckpointError {
        tracing::error!(
            audit.first_bad_index = first_bad_index,
            problem = %problem,
            "audit log integrity failure: checkpoint signing stopped"
        );
        let f = IntegrityFailure {
            first_bad_index,
            problem,
        };
        *self
            .0
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(f.clone());
        CheckpointError::Integrity(f)
    }

    fn witness_notes(&self) -> Result<Vec<super::checkpoint::SignedNote>, CheckpointError> {
        match &self.0.settings.witness {
            Some(p) if p.exists() => read_external(p).map_err(CheckpointError::Witness),
            _ => Ok(Vec::new()),
        }
    }

    /// Full verification of the stored log (outside any lock); refreshes the cache.
    async fn full_check(&self, cache: &mut Cache) -> Result<(), CheckpointError> {
        let external = self.witness_notes()?;
        let keys = self.public_keys().await?;
        let v = verify::verify(&self.0.store, &keys, &external).await?;
        if let Some(i) = v.report.first_bad_index {
            return Err(self.fail(i, v.report.problem.unwrap_or_default()));
        }
        cache.verified_at = Some(Instant::now());
        cache.size = v.report.entries as u64;
        cache.frontier = v.frontier;
        cache.last_chain = v.last_chain;
        Ok(())
    }

    async fn latest_stored(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let mut tx = self.0.store.begin_read().await?;
        tx.latest_audit_checkpoint().await
    }

    /// Verifies the log once (at start-up) so that `/readyz` reflects its state.
    pub async fn startup_check(&self) -> Result<(), CheckpointError> {
        let mut cache = self.0.cache.lock().await;
        if cache.verified_at.is_none() {
            self.full_check(&mut cache).await?;
        }
        Ok(())
    }

    /// Writes a checkpoint when enough events or enough time have passed since the latest
    /// stored checkpoint (or since the start, when the log has none yet).
    ///
    /// The comparison is with the latest *stored* checkpoint, not with the verified prefix:
    /// the start-up verification may already cover entries that no checkpoint signs yet
    /// (the first-administrator link is logged just before the writer starts).
    pub async fn maybe_checkpoint(&self) -> Result<Option<CheckpointRow>, CheckpointError> {
        let (size, signed) = {
            let mut tx = self.0.store.begin_read().await?;
            let size = tx.audit_head().await?.0 as u64;
            let signed = tx
                .latest_audit_checkpoint()
                .await?
                .map_or(0, |c| c.tree_size as u64);
            (size, signed)
        };
        let elapsed = self
            .0
            .last_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed();
        if size > signed
            && (size - signed >= self.0.settings.every_events
                || elapsed >= self.0.settings.interval)
        {
            self.write_now().await
        } else {
            Ok(None)
        }
    }

    /// Signs and stores a checkpoint of the current log, if it grew since the last one.
    pub async fn write_now(&self) -> Result<Option<CheckpointRow>, CheckpointError> {
        if let Some(f) = self.failure() {
            return Err(CheckpointError::Integrity(f));
        }
        let mut cache = self.0.cache.lock().await;
        let stale = cache
            .verified_at
            .is_none_or(|t| t.elapsed() >= REVERIFY_AFTER);
        if stale || cache.size <= ALWAYS_REVERIFY_UP_TO {
            self.full_check(&mut cache).await?;
        }
        // Verify the new entries in a read snapshot: writers and the sequencer go on; the
        // lock is taken only to store the signed checkpoint.
        let mut tx = self.0.store.begin_snapshot().await?;
        // The newest key version (a rotation takes effect at the next checkpoint).
        let version = signing_versions(tx.as_mut())
            .await?
            .last()
            .copied()
            .unwrap_or(INITIAL_KEY_VERSION);
        let key = SigningKey::derive(&self.0.keyring, version)
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        let (next, head_chain) = tx.audit_head().await?;
        let n = next as u64;
        let latest = tx.latest_audit_checkpoint().await?;
        if latest.as_ref().is_some_and(|c| c.tree_size as u64 >= n) || n == 0 {
            return Ok(None);
        }
        if n < cache.size {
            return Err(self.fail(
                n as i64,
                format!("the head says {n} entries, {} were verified", cache.size),
            ));
        }
        // The verified prefix still ends where it ended.
        if cache.size > 0 {
            let stored = tx
                .audit_entries_between(cache.size as i64 - 1, cache.size as i64)
                .await?;
            if stored.first().map(|e| e.chain_hash.as_slice()) != Some(&cache.last_chain[..]) {
                cache.verified_at = None;
                return Err(self.fail(
                    cache.size as i64 - 1,
                    "the verified prefix of the log changed".into(),
                ));
            }
        }
        // The new entries extend it.
        let mut frontier = cache.frontier.clone();
        let mut prev = cache.last_chain;
        let mut at = cache.size as i64;
        let check_against = latest
            .as_ref()
            .filter(|c| c.tree_size as u64 > cache.size)
            .cloned();
        while (at as u64) < n {
            let page = tx
                .audit_entries_between(at, (at + PAGE).min(n as i64))
                .await?;
            if page.is_empty() {
                return Err(self.fail(at, format!("entry {at} is missing")));
            }
            for e in page {
                let leaf: Hash = match e.leaf_hash.as_slice().try_into() {
                    Ok(h) if e.idx == at => h,
                    _ => return Err(self.fail(at, format!("entry {at} is missing or malformed"))),
                };
                if e.canonical_event
                    .as_deref()
                    .is_some_and(|t| leaf_hash(t.as_bytes()) != leaf)
                {
                    return Err(self.fail(at, "the payload does not match its leaf hash".into()));
                }
                let chain = chain_hash(&prev, &leaf);
                if e.chain_hash.as_slice() != chain {
                    return Err(self.fail(at, "chain hash mismatch".into()));
                }
                frontier.push(leaf);
                prev = chain;
                at += 1;
                // A checkpoint another writer signed meanwhile must be on this path.
                if let Some(c) = &check_against
                    && c.tree_size == at
                    && c.root_hash.as_slice() != frontier.root()
                {
                    return Err(self.fail(
                        cache.size as i64,
                        format!("stored checkpoint {at} is not consistent with the log"),
                    ));
                }
            }
        }
        if head_chain.as_slice() != prev {
            return Err(self.fail(n as i64, "the head row disagrees with the log".into()));
        }
        let cp = Checkpoint {
            origin: self.0.settings.origin.clone(),
            tree_size: n,
            root: frontier.root(),
            timestamp: super::event::format_ts(self.0.clock.now()),
        };
        let note = key.sign(&cp);
        let row = CheckpointRow {
            tree_size: n as i64,
            root_hash: cp.root.to_vec(),
            timestamp: cp.timestamp.clone(),
            key_id: hex::encode(key.public.key_id(&cp.origin)),
            note: note.clone(),
        };
        drop(tx);
        let mut tx = self.0.store.begin_sequencer().await?;
        // Another instance may have signed meanwhile: sign only on top of what was checked.
        let now_latest = tx.latest_audit_checkpoint().await?;
        if now_latest.map(|c| c.tree_size) != latest.map(|c| c.tree_size) {
            return Ok(None);
        }
        tx.insert_audit_checkpoint(&row).await?;
        let record = witness_record(&row);
        // Witness file first: if the commit then fails, it holds a true root of the log.
        if let Some(path) = &self.0.settings.witness {
            append_witness(path, &record).map_err(|e| CheckpointError::Witness(e.to_string()))?;
        }
        tx.commit().await?;
        // Every second under load: `debug`, not an operator's `info`.
        tracing::debug!(
            audit.tree_size = n,
            audit.root = %record.root_hash,
            audit.key_id = %row.key_id,
            audit.key_version = version,
            audit.timestamp = %row.timestamp,
            "audit checkpoint signed"
        );
        if let Some(http) = &self.0.settings.http_witness {
            http.enqueue(record);
        }
        cache.size = n;
        cache.frontier = frontier;
        cache.last_chain = prev;
        *self
            .0
            .last_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.0
            .signed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(row))
    }

    /// The background loop, until `shutdown` changes.
    /// Runs beside the sequencer's loop: it checkpoints what the sequencer has moved.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Err(e) = self.startup_check().await {
            tracing::error!(error = %e, "audit start-up verification failed");
        }
        // What the HTTP witness had queued when the process stopped is covered by the newest
        // stored checkpoint: send it again (at least once; a duplicate is harmless).
        // Under the writer's cache lock, and only if nothing was signed since the start, so
        // the witness still receives checkpoints in order.
        if let Some(http) = &self.0.settings.http_witness {
            let _writer = self.0.cache.lock().await;
            if !self.0.signed.load(std::sync::atomic::Ordering::Relaxed) {
                match self.latest_stored().await {
                    Ok(Some(row)) => http.enqueue(witness_record(&row)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the latest checkpoint for the witness")
                    }
                }
            }
        }
        let tick = (self.0.settings.interval / 4)
            .clamp(Duration::from_millis(20), Duration::from_millis(250));
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
            if self.failure().is_some() {
                continue;
            }
            if let Err(e) = self.maybe_checkpoint().await
                && !matches!(e, CheckpointError::Integrity(_))
            {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
        }
    }
}

/// The witness record (a witness-file line, an HTTP witness body) of a stored checkpoint.
pub fn witness_record(row: &CheckpointRow) -> WitnessRecord {
    WitnessRecord {
        tree_size: row.tree_size as u64,
        root_hash: hex::encode(&row.root_hash),
        timestamp: row.timestamp.clone(),
        note: row.note.clone(),
    }
}
