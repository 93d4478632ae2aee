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
use super::shared::impl_shared_repos;
use super::{Backend, Store, StoreError, Tx};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
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
}
