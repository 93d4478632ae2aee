//! SQLite backend: one file, WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, and
//! one write connection whose transactions are savepoints committed in groups under one
//! `BEGIN IMMEDIATE` (one writer at a time, no upgrade deadlocks; `group_commit`).

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::accounts_sql::impl_account_repo;
use super::audit_trail_sql::{audit_filter_sql, impl_audit_trail_repo};
use super::group_commit::{Hold, Writer};
use super::lite::{self, lite_row};
use super::mandates_sql::impl_mandate_repos;
use super::oidc_sql::impl_oidc_repo;
use super::outbox_sql::impl_outbox_repo;
use super::shared::impl_shared_repos;
// vault
use super::vault_sql::impl_vault_repo;
use super::{Backend, Store, StoreError, Tx};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a transaction waits for its turn (like `busy_timeout`).
const WRITER_WAIT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection (every query of the service fits).
const STATEMENT_CACHE: usize = 512;
/// How soon the background thread copies the WAL back into the database file again after a
/// checkpoint that found new frames: small checkpoints often, because a checkpoint's copy and
/// `fsync` hold up the transactions that run meanwhile in proportion to its size (measured:
/// p99 of the OIDC flow at 8 concurrent flows 27 ms with one checkpoint per 250 ms, 11 ms
/// with this; see bench/README.md).
const WAL_CHECKPOINT_BUSY: Duration = Duration::from_millis(2);
/// The longest pause between checkpoints while nothing is written (doubling from the above).
const WAL_CHECKPOINT_IDLE: Duration = Duration::from_millis(250);
/// The writer checkpoints by itself only past this many WAL pages (~64 MB): a safety net in
/// case the background thread falls behind, not the normal path.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

pub struct SqliteStore {
    file: PathBuf,
    /// Set when the store closes or drops: stops the WAL checkpoint thread.
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// The one write connection. Writers queue on its lock in-process instead of in
    /// SQLite's busy handler (which sleeps in steps of milliseconds and ruins tail latency),
    /// and their transactions commit in groups (`group_commit`).
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    /// Read connections at most (the pool size).
    max_readers: u32,
    acquire_timeout: Duration,
}

/// Read connections, opened on demand up to the pool size and kept.
struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    file: PathBuf,
}

fn open(file: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(file).map_err(unavailable)?;
    conn.busy_timeout(WRITER_WAIT).map_err(unavailable)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(unavailable)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Copies committed WAL frames into the database file (a passive checkpoint, which never
/// waits for readers or the writer) from a thread of its own, so that commits only append
/// to the WAL and never pay for the copy and its `fsync`. With `synchronous = NORMAL` this
/// is where the durability sync happens, as SQLite does it on its own, only elsewhere.
fn spawn_wal_checkpointer(file: PathBuf, closed: Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    let run = move || {
        let Ok(conn) = open(&file) else { return };
        let mut pause = WAL_CHECKPOINT_IDLE;
        let mut last = (0_i64, 0_i64);
        while !closed.load(Ordering::Relaxed) {
            std::thread::sleep(pause);
            // (busy, frames in the WAL, frames copied): the same pair twice is an idle WAL.
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            }) {
                Ok(now) if now != last => {
                    last = now;
                    pause = WAL_CHECKPOINT_BUSY;
                }
                Ok(_) => pause = (pause * 2).min(WAL_CHECKPOINT_IDLE),
                Err(e) => {
                    tracing::warn!(error = %e, "sqlite WAL checkpoint failed");
                    pause = WAL_CHECKPOINT_IDLE;
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("sqlite-wal-checkpoint".into())
        .spawn(run)
    {
        tracing::warn!(error = %e, "cannot start the sqlite WAL checkpoint thread");
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database was closed".into())
}

pub(super) fn timed_out() -> StoreError {
    StoreError::Unavailable("timed out waiting for a database connection".into())
}

impl SqliteStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?;
        let file = opts.get_filename().to_path_buf();
        if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
            return Err(StoreError::Unavailable(
                "an in-memory SQLite database cannot be shared by connections; give a file".into(),
            ));
        }
        let writer = open(&file)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            .map_err(unavailable)?;
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        spawn_wal_checkpointer(file.clone(), closed.clone());
        Ok(Self {
            closed,
            writer: Arc::new(Writer::new(writer)),
            readers: Arc::new(Readers {
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_connections.max(1) as usize)),
                file: file.clone(),
            }),
            file,
            max_readers: max_connections.max(1),
            acquire_timeout: timeout,
        })
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.readers.permits.is_closed() {
            return Err(closed());
        }
        Ok(())
    }

    async fn reader(&self) -> Result<Reader, StoreError> {
        let permit = tokio::time::timeout(
            self.acquire_timeout,
            self.readers.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| closed())?;
        let idle = self.readers.idle.lock().map(|mut v| v.pop()).ok().flatten();
        let conn = match idle {
            Some(c) => c,
            None => open(&self.readers.file)?,
        };
        Ok(Reader {
            conn: Some(conn),
            pool: self.readers.clone(),
            _permit: permit,
        })
    }

    fn begin_on(conn: Held, sql: &str) -> Result<Box<dyn Tx>, StoreError> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Box::new(SqliteTx(LiteTx { conn, open: true })))
    }
}

/// A pooled read connection, given back when dropped.
struct Reader {
    conn: Option<Connection>,
    pool: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
            idle.push(conn);
        }
    }
}

enum Held {
    Writer(Hold),
    Reader(Reader),
}

impl Deref for Held {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Self::Writer(h) => h.conn(),
            // Present until dropped.
            Self::Reader(r) => r.conn.as_ref().unwrap_or_else(|| unreachable!()),
        }
    }
}

/// An open transaction on one connection; rolled back when dropped uncommitted.
pub struct LiteTx {
    conn: Held,
    open: bool,
}

impl Deref for LiteTx {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for LiteTx {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Held::Writer(h) => h.conn_mut(),
            Held::Reader(r) => r.conn.as_mut().unwrap_or_else(|| unreachable!()),
        }
    }
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        // A write transaction's hold rolls back to its savepoint by itself.
        if self.open && matches!(self.conn, Held::Reader(_)) {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A transaction: for write transactions the writer connection and its lock (released
/// after the commit or the rollback of a drop).
pub struct SqliteTx(LiteTx);

impl_shared_repos!(SqliteTx, lite);
impl_audit_trail_repo!(SqliteTx, lite);
impl_account_repo!(SqliteTx, lite);
impl_mandate_repos!(SqliteTx, lite);
impl_outbox_repo!(SqliteTx, lite, "");
// vault
impl_vault_repo!(SqliteTx, lite);
impl_oidc_repo!(SqliteTx, lite);

#[async_trait]
impl super::AuditSequencerRepo for SqliteTx {
    async fn insert_audit_entries(
        &mut self,
        entries: &[super::AuditEntry],
    ) -> Result<(), StoreError> {
        for e in entries {
            lite::query(
                "INSERT INTO audit_log (idx, ts, action, actor_kind, actor_id, organisation_id, \
                 usager_id, mandate_id, leaf_hash, chain_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(e.idx)
            .bind(&e.ts)
            .bind(&e.action)
            .bind(&e.actor_kind)
            .bind(&e.actor_id)
            .bind(&e.organisation)
            .bind(&e.usager)
            .bind(&e.mandate)
            .bind(&e.leaf_hash)
            .bind(&e.chain_hash)
            .execute(&self.0)
            .await?;
            lite::query(
                "INSERT INTO audit_payload (idx, canonical_event, prune_after) VALUES ($1, $2, $3)",
            )
            .bind(e.idx)
            .bind(&e.canonical)
            .bind(e.prune_after)
            .execute(&self.0)
            .await?;
        }
        Ok(())
    }

    async fn delete_audit_queue(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        // One writer at a time: no other transaction can hold an uncommitted queue row, so
        // the batch of the smallest ids is exactly every id up to its largest.
        if let Some(last) = ids.iter().max() {
            lite::query("DELETE FROM audit_queue WHERE id <= $1")
                .bind(*last)
                .execute(&self.0)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        match &mut self.0.conn {
            Held::Writer(hold) => hold.commit().await?,
            Held::Reader(_) => {
                self.0.conn.prepare_cached("COMMIT")?.execute([])?;
            }
        }
        self.0.open = false;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Migrations through sqlx's migrator (its bookkeeping table is the same on both
        // backends), on a short-lived pool; the service's connections hold no transaction.
        let opts = SqliteConnectOptions::new()
            .filename(&self.file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(WRITER_WAIT)
            .foreign_keys(true);
        self.check_open()?;
        let _writer = self.writer.lock_flushed(WRITER_WAIT).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let done = MIGRATOR.run(&pool).await;
        pool.close().await;
        done.map_err(|e| StoreError::Other(e.into()))
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let reader = self.reader().await?;
        let applied: Option<i64> =
            lite::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&Held::Reader(reader))
                .await
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let expected = MIGRATOR.iter().map(|m| m.version).max();
        if applied == expected {
            Ok(())
        } else {
            Err(StoreError::Corrupt("migrations not current"))
        }
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        // A savepoint in the group's outer transaction (`BEGIN IMMEDIATE`).
        self.check_open()?;
        let conn = self.writer.lock(WRITER_WAIT).await?;
        Self::begin_on(
            Held::Writer(Hold::new(conn, self.writer.clone())),
            "SAVEPOINT tx",
        )
    }

    async fn begin_read(&self) -> Result<Box<dyn Tx>, StoreError> {
        // Deferred: in WAL mode its snapshot never blocks the writer.
        Self::begin_on(Held::Reader(self.reader().await?), "BEGIN")
    }

    async fn begin_sequencer(&self) -> Result<Box<dyn Tx>, StoreError> {
        // The writer connection already excludes every other writer.
        self.begin().await
    }

    async fn begin_snapshot(&self) -> Result<Box<dyn Tx>, StoreError> {
        self.begin_read().await
    }

    async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.readers.permits.close();
        if let Ok(mut idle) = self.readers.idle.lock() {
            idle.clear();
        }
    }

    fn pool_stats(&self) -> super::PoolStats {
        // The writer connection and the read connections.
        let writer_busy = u32::from(self.writer.busy());
        let free = u32::try_from(self.readers.permits.available_permits()).unwrap_or(u32::MAX);
        let readers_busy = self.max_readers.saturating_sub(free);
        let idle = self
            .readers
            .idle
            .lock()
            .map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX));
        super::PoolStats {
            max: self.max_readers + 1,
            in_use: readers_busy + writer_busy,
            idle: idle + (1 - writer_busy),
        }
    }

    /// `VACUUM INTO` on a read connection of its own: one read transaction (a WAL snapshot,
    /// which never blocks the writer) copied into a new, compact file.
    async fn backup_to(&self, to: &std::path::Path) -> Result<(), StoreError> {
        let file = self.file.clone();
        let to = to.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let conn = open(&file)?;
            let target = to.to_str().ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!("the backup path is not valid UTF-8"))
            })?;
            conn.execute("VACUUM INTO ?1", [target])
                .map_err(|e| StoreError::Other(anyhow::anyhow!("VACUUM INTO failed: {e}")))?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Other(e.into()))?
    }

    fn has_audit_stream(&self) -> bool {
        true
    }

    async fn audit_stream(
        &self,
        start: i64,
        end: i64,
        page: i64,
        out: tokio::sync::mpsc::Sender<Result<Vec<super::StoredAuditEntry>, StoreError>>,
    ) -> Result<(), StoreError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut scan = RawScan::open(&file)?;
            let mut from = start;
            while from < end {
                let to = (from + page).min(end);
                let rows = scan.page(from, to);
                let failed = rows.is_err();
                if out.blocking_send(rows).is_err() || failed {
                    break;
                }
                from = to;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Other(e.into()))?
    }
}

/// The audit scan of SQLite: a read-only connection of the C library itself (no async
/// driver between rows), inside one deferred transaction (a WAL snapshot that never blocks
/// the writer). Verifying 10⁶ entries is bound by SHA-256, not by row decoding.
struct RawScan(rusqlite::Connection);

fn raw_err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(anyhow::anyhow!("sqlite audit scan: {e}"))
}

impl RawScan {
    fn open(file: &std::path::Path) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(raw_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(raw_err)?;
        conn.execute_batch("BEGIN").map_err(raw_err)?;
        Ok(Self(conn))
    }
}

impl RawScan {
    fn page(&mut self, from: i64, to: i64) -> Result<Vec<super::StoredAuditEntry>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached(
                "SELECT l.idx, l.leaf_hash, l.chain_hash, p.canonical_event \
                 FROM audit_log l LEFT JOIN audit_payload p ON p.idx = l.idx \
                 WHERE l.idx >= ?1 AND l.idx < ?2 ORDER BY l.idx",
            )
            .map_err(raw_err)?;
        let rows = stmt
            .query_map([from, to], |r| {
                Ok(super::StoredAuditEntry {
                    idx: r.get(0)?,
                    leaf_hash: r.get(1)?,
                    chain_hash: r.get(2)?,
                    canonical_event: r.get(3)?,
                })
            })
            .map_err(raw_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(raw_err)
    }
}

// Rows read by column name, as sqlx's `FromRow` derive reads them on PostgreSQL.
// vault
lite_row!(super::VaultEntryRow {
    id,
    organisation_id,
    created_by,
    created_at,
    updated_at,
    usager_id,
    demarche,
    kek_version,
    wrapped_key,
    version,
    label,
    service,
    login,
    secret,
    totp_seed,
    notes,
    deleted_at,
});
lite_row!(super::VaultKeyRow {
    id,
    organisation_id,
    kek_version,
    wrapped_key,
});
lite_row!(super::OrganisationRow {
    id,
    name,
    address,
    siret,
    allowed_demarches,
    active,
    created_at
});
lite_row!(super::StoredAuditEntry {
    idx,
    leaf_hash,
    chain_hash,
    canonical_event
});
lite_row!(super::CheckpointRow {
    tree_size,
    root_hash,
    timestamp,
    key_id,
    note
});
lite_row!(super::AuditRow {
    idx,
    ts,
    action,
    actor_kind,
    actor_id,
    organisation_id,
    usager_id,
    mandate_id,
    leaf_hash,
    canonical_event
});
lite_row!(super::AidantRow {
    id,
    email,
    display_name,
    password_hash,
    active,
    is_admin,
    is_dpo,
    current_organisation_id,
    last_login_at,
    failed_logins,
    failed_window_start,
    locked_until,
    created_at
});
lite_row!(super::SessionPrincipalRow {
    created_at,
    last_seen_at,
    fresh_factor_at,
    step_up_at,
    aidant_id,
    email,
    display_name,
    account_active,
    is_admin,
    is_dpo,
    current_organisation_id,
    organisation_id,
    organisation_name,
    role
});
lite_row!(super::MembershipRow {
    aidant_id,
    organisation_id,
    organisation_name,
    role,
    active,
    pending
});
lite_row!(super::LoginState {
    failed_logins,
    failed_window_start,
    locked_until
});
lite_row!(super::MemberListRow {
    aidant_id,
    email,
    display_name,
    role,
    membership_active,
    account_active,
    last_login_at
});
lite_row!(super::TotpFactorRow {
    id,
    aidant_id,
    organisation_id,
    kind,
    serial,
    seed_sealed,
    key_version,
    step_secs,
    last_used_step,
    status,
    created_at
});
lite_row!(super::SessionRow {
    id_hash,
    aidant_id,
    created_at,
    last_seen_at,
    fresh_factor_at,
    step_up_at
});
lite_row!(super::InvitationRow {
    token_hash,
    purpose,
    aidant_id,
    organisation_id,
    expires_at,
    used_at,
    created_at
});
lite_row!(super::UsagerRow {
    id,
    created_at,
    created_by,
    created_by_org,
    identity_check,
    key_version,
    wrapped_key,
    given_name,
    family_name,
    birthdate,
    birthplace,
    phone,
    email,
    erased_at,
    archived_at
});
lite_row!(super::MandateRow {
    id,
    organisation_id,
    usager_id,
    created_by,
    duration,
    consent_channel,
    status,
    terms_hash,
    terms,
    terms_key_version,
    created_at,
    activated_at,
    expires_at,
    revoked_at,
    revoked_reason,
    ended_at,
    renews,
    resends
});
lite_row!(super::MandateDemarcheRow {
    mandate_id,
    demarche,
    revoked_at,
    revoked_reason
});
lite_row!(super::ChallengeRow {
    id,
    mandate_id,
    channel,
    terms_hash,
    code_mac,
    code_key_version,
    code_sealed,
    sent_to,
    phone_mac,
    status,
    attempts,
    created_at,
    expires_at,
    closed_at
});
lite_row!(super::IdempotencyRow {
    scope,
    key,
    request_mac,
    status,
    key_version,
    wrapped_key,
    body,
    usager_id,
    created_at
});
lite_row!(super::SmsOutboxRow {
    id,
    mandate_id,
    challenge_id,
    usager_id,
    seq,
    kind,
    status,
    key_version,
    message,
    attempts,
    created_at,
    next_attempt_at,
    claimed_until,
    done_at
});

// oidc
lite_row!(super::OidcClientRow {
    id,
    name,
    redirect_uris,
    post_logout_redirect_uris,
    allowed_demarches,
    auth_method,
    secret_mac,
    secret_key_version,
    jwks,
    sector,
    active,
    created_at
});
lite_row!(super::OidcSigningKeyRow {
    version,
    kid,
    alg,
    key_version,
    sealed_key,
    public_jwk,
    created_at,
    retired_at
});
lite_row!(super::OidcCodeRow {
    code_hash,
    client_id,
    redirect_uri,
    code_challenge,
    nonce,
    scope,
    aidant_id,
    organisation_id,
    usager_id,
    mandate_id,
    demarche,
    auth_time,
    created_at,
    expires_at,
    used_at
});
lite_row!(super::OidcTokenRow {
    token_hash,
    code_hash,
    client_id,
    scope,
    aidant_id,
    organisation_id,
    usager_id,
    mandate_id,
    demarche,
    created_at,
    expires_at,
    revoked_at
});

#[cfg(test)]
mod tests {
    /// `.cargo/config.toml` builds the bundled SQLite without its memory statistics: their
    /// global mutex, taken by every allocation of every connection, was ≈ 5 % of the token
    /// endpoint's CPU (bench/README.md).
    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }
}
