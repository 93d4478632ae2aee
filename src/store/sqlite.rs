//! SQLite backend: one file, WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, and
//! write transactions opened with `BEGIN IMMEDIATE` (one writer at a time, no upgrade
//! deadlocks).

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::accounts_sql::impl_account_repo;
use super::mandates_sql::impl_mandate_repos;
use super::shared::impl_shared_repos;
use super::{Backend, Store, StoreError, Tx};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

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
            .acquire_timeout(timeout)
            .connect_with(opts)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

pub struct SqliteTx(Transaction<'static, Sqlite>);

impl_shared_repos!(SqliteTx);
impl_account_repo!(SqliteTx);
impl_mandate_repos!(SqliteTx);

#[async_trait]
impl Tx for SqliteTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await?;
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
        Ok(Box::new(SqliteTx(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
        )))
    }

    async fn begin_read(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(SqliteTx(self.pool.begin().await?)))
    }

    async fn begin_sequencer(&self) -> Result<Box<dyn Tx>, StoreError> {
        // BEGIN IMMEDIATE already excludes every other writer.
        self.begin().await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
