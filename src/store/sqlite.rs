//! SQLite backend: one file, WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, and
//! write transactions opened with `BEGIN IMMEDIATE` (one writer at a time, no upgrade
//! deadlocks).

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::accounts_sql::impl_account_repo;
use super::audit_trail_sql::{audit_filter_sql, impl_audit_trail_repo};
use super::mandates_sql::impl_mandate_repos;
use super::shared::impl_shared_repos;
use super::{Backend, Store, StoreError, Tx};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file (`None` in memory): the audit scan reads it directly.
    file: Option<std::path::PathBuf>,
    /// One writer at a time, queued in-process: waiting writers wait on this lock instead of
    /// SQLite's busy handler (which sleeps in steps of milliseconds and ruins the tail latency).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// How long a write transaction waits for its turn (like `busy_timeout`).
const WRITER_WAIT: Duration = Duration::from_secs(10);

impl SqliteStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let file = Some(opts.get_filename().to_path_buf())
            .filter(|f| !f.as_os_str().is_empty() && f.as_os_str() != ":memory:");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            // A local file: no network to fail between uses, so no ping before each use.
            .test_before_acquire(false)
            .acquire_timeout(timeout)
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Self {
            pool,
            file,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// A transaction, and for write transactions the in-process writer lock (released after the
/// commit or the rollback that dropping the transaction starts).
pub struct SqliteTx(
    Transaction<'static, Sqlite>,
    Option<tokio::sync::OwnedMutexGuard<()>>,
);

impl_shared_repos!(SqliteTx);
impl_audit_trail_repo!(SqliteTx);
impl_account_repo!(SqliteTx);
impl_mandate_repos!(SqliteTx);

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SqliteTx(tx, writer) = *self;
        tx.commit().await?;
        drop(writer);
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(e.into()))
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        let expected = MIGRATOR.iter().map(|m| m.version).max();
        if applied == expected {
            Ok(())
        } else {
            Err(StoreError::Corrupt("migrations not current"))
        }
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError> {
        let writer = tokio::time::timeout(WRITER_WAIT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        Ok(Box::new(SqliteTx(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Some(writer),
        )))
    }

    async fn begin_read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(SqliteTx(self.pool.begin().await?, None)))
    }

    async fn begin_sequencer(&self) -> Result<Box<dyn Tx>, StoreError> {
        // BEGIN IMMEDIATE already excludes every other writer.
        self.begin().await
    }

    async fn begin_snapshot(&self) -> Result<Box<dyn Tx>, StoreError> {
        // A deferred transaction: in WAL mode its snapshot never blocks the writer.
        Ok(Box::new(SqliteTx(self.pool.begin().await?, None)))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn has_audit_stream(&self) -> bool {
        self.file.is_some()
    }

    async fn audit_stream(
        &self,
        start: i64,
        end: i64,
        page: i64,
        out: tokio::sync::mpsc::Sender<Result<Vec<super::StoredAuditEntry>, StoreError>>,
    ) -> Result<(), StoreError> {
        let file = self
            .file
            .clone()
            .ok_or(StoreError::Corrupt("in-memory database"))?;
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
