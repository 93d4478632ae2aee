//! Storage behind traits, one implementation per backend, chosen once at start-up from the
//! database URL. A use case opens one [`Tx`], does its reads and writes — including its audit
//! events — and commits; dropping a `Tx` rolls it back.
//!
//! The SQL shared by both backends is written once (`shared.rs`) and instantiated for each
//! backend's transaction type; what differs (locks, connection options) lives in `sqlite.rs`
//! and `postgres.rs`. No `sqlx::Any`.

mod accounts;
mod accounts_sql;
mod audit_trail;
mod audit_trail_sql;
mod group_commit;
mod lite;
mod mandates;
pub(crate) mod mandates_sql;
// oidc
mod oidc;
pub(crate) mod oidc_sql;
mod outbox;
pub(crate) mod outbox_sql;
mod postgres;
mod rows;
mod shared;
mod sqlite;
pub(crate) mod usagers_sql;
// vault
mod vault;
pub(crate) mod vault_sql;

use std::sync::Arc;

use async_trait::async_trait;

pub use accounts::*;
pub use audit_trail::*;
pub use mandates::*;
// oidc
pub use oidc::*;
pub use outbox::*;
pub use postgres::PgStore;
pub use rows::*;
pub use sqlite::SqliteStore;
// vault
pub use vault::*;

use crate::config::DatabaseUrl;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// A unique constraint was violated (the name of the constraint or index).
    #[error("conflict on {0}")]
    Conflict(String),
    /// Stored data does not have the expected shape.
    #[error("corrupt data in {0}")]
    Corrupt(&'static str),
    #[error("database error")]
    Db(#[source] BoxError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => Self::Unavailable(Box::new(e)),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let name = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned());
                Self::Conflict(name)
            }
            _ => Self::Db(Box::new(e)),
        }
    }
}

impl From<lite::Error> for StoreError {
    fn from(e: lite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            lite::Error::Sqlite(rusqlite::Error::SqliteFailure(f, msg)) => match f.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Self::Conflict(msg.clone().unwrap_or_else(|| f.to_string()))
                }
                _ if matches!(
                    f.code,
                    ffi::ErrorCode::DatabaseBusy
                        | ffi::ErrorCode::DatabaseLocked
                        | ffi::ErrorCode::CannotOpen
                ) =>
                {
                    Self::Unavailable(Box::new(e))
                }
                _ => Self::Db(Box::new(e)),
            },
            _ => Self::Db(Box::new(e)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        lite::Error::Sqlite(e).into()
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Connections of a store (the metrics endpoint reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections the store may open at most.
    pub max: u32,
    /// Connections serving a transaction now.
    pub in_use: u32,
    /// Open connections waiting for one.
    pub idle: u32,
}

/// A database: opens transactions.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// `Ok` when the database answers and every embedded migration is applied.
    async fn ready(&self) -> Result<(), StoreError>;
    /// Opens a read-write transaction.
    async fn begin(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Opens a transaction meant for reads (SQLite: deferred, so it does not block writers).
    async fn begin_read(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Opens the transaction of the audit sequencer, holding its exclusive lock.
    async fn begin_sequencer(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Opens a read-only snapshot that does not block writers (long reads: verify, export).
    async fn begin_snapshot(&self) -> Result<Box<dyn Tx>, StoreError>;
    /// Closes the pool.
    async fn close(&self);
    /// How many connections are in use and idle now.
    fn pool_stats(&self) -> PoolStats;
    /// Writes a consistent copy of the whole database to the new file `to`, while the
    /// service goes on (SQLite only; PostgreSQL is backed up with its own tools).
    async fn backup_to(&self, to: &std::path::Path) -> Result<(), StoreError> {
        let _ = to;
        Err(StoreError::Other(anyhow::anyhow!(
            "this database is backed up with its own tools"
        )))
    }
    /// Whether [`Store::audit_stream`] is a fast path of this backend.
    fn has_audit_stream(&self) -> bool {
        false
    }
    /// A backend's fast sequential read of the audit log (verification), from one snapshot:
    /// sends the entries of `[start, end)` (payload joined, in index order) as one message per
    /// range `[start + k·page, start + (k+1)·page)`, possibly empty.
    async fn audit_stream(
        &self,
        start: i64,
        end: i64,
        page: i64,
        out: tokio::sync::mpsc::Sender<Result<Vec<StoredAuditEntry>, StoreError>>,
    ) -> Result<(), StoreError> {
        let _ = (start, end, page, out);
        Err(StoreError::Other(anyhow::anyhow!(
            "no audit stream on this backend"
        )))
    }
}

/// Cuts a stream of entries in index order into the pages of [`Store::audit_stream`]: one
/// message per range `[start + k·page, start + (k+1)·page)` up to `end`, empty ones included.
pub(crate) struct Pager {
    start: i64,
    to: i64,
    end: i64,
    page: i64,
    rows: Vec<StoredAuditEntry>,
    out: tokio::sync::mpsc::Sender<Result<Vec<StoredAuditEntry>, StoreError>>,
}

impl Pager {
    pub(crate) fn new(
        start: i64,
        end: i64,
        page: i64,
        out: tokio::sync::mpsc::Sender<Result<Vec<StoredAuditEntry>, StoreError>>,
    ) -> Self {
        let page = page.max(1);
        Self {
            start,
            to: (start + page).min(end),
            end,
            page,
            rows: Vec::with_capacity(page as usize),
            out,
        }
    }

    /// Sends the full pages before `idx`; `false` when the receiver is gone.
    async fn flush_before(&mut self, idx: i64) -> bool {
        while idx >= self.to && self.to < self.end {
            let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(self.page as usize));
            if self.out.send(Ok(rows)).await.is_err() {
                return false;
            }
            self.to = (self.to + self.page).min(self.end);
        }
        true
    }

    /// Adds one entry (in index order); `false` when the receiver is gone.
    pub(crate) async fn push(&mut self, row: StoredAuditEntry) -> bool {
        let ok = self.flush_before(row.idx).await;
        self.rows.push(row);
        ok
    }

    /// Sends the last page and the empty ones up to `end`.
    pub(crate) async fn finish(mut self) {
        if self.flush_before(self.end).await && self.to > self.start {
            let _ = self.out.send(Ok(std::mem::take(&mut self.rows))).await;
        }
    }
}

/// One transaction. The repositories are supertraits so each area keeps its own file.
#[async_trait]
pub trait Tx:
    OrgRepo
    + AuditRepo
    + AuditSequencerRepo
    + AuditTrailRepo
    + AccountRepo
    + UsagerRepo
    + MandateRepo
    + ChallengeRepo
    + IdempotencyRepo
    + SmsOutboxRepo
    // vault
    + VaultRepo
    // oidc
    + OidcRepo
    + Send
{
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait]
pub trait OrgRepo {
    async fn insert_organisation(&mut self, org: &OrganisationRow) -> Result<(), StoreError>;
    async fn get_organisation(
        &mut self,
        id: uuid::Uuid,
    ) -> Result<Option<OrganisationRow>, StoreError>;
    async fn update_organisation(
        &mut self,
        id: uuid::Uuid,
        address: &str,
        allowed_demarches: &str,
    ) -> Result<(), StoreError>;
    /// Organisations by name, at most `limit`.
    async fn list_organisations(&mut self, limit: i64) -> Result<Vec<OrganisationRow>, StoreError>;
}

#[async_trait]
pub trait AuditRepo {
    /// Stage one: the pending event, in the business transaction.
    async fn enqueue_audit(&mut self, event_json: &str) -> Result<(), StoreError>;
    /// Committed queue rows, oldest first: `(queue id, event json)`.
    async fn audit_queue_batch(&mut self, limit: i64) -> Result<Vec<(i64, String)>, StoreError>;
    /// Committed events waiting for the sequencer.
    async fn audit_queue_len(&mut self) -> Result<i64, StoreError>;
    /// `(next index, chain hash of the last entry)`.
    async fn audit_head(&mut self) -> Result<(i64, Vec<u8>), StoreError>;
    async fn set_audit_head(
        &mut self,
        next_index: i64,
        chain_hash: &[u8],
    ) -> Result<(), StoreError>;
    /// Stored entries with `idx >= from`, in index order, at most `limit`.
    async fn audit_entries(
        &mut self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<StoredAuditEntry>, StoreError>;
}

/// The sequencer's writes, written per backend: PostgreSQL wants few round trips (multi-row
/// statements), SQLite wants few distinct statements (one cached statement per row, no
/// compilation of a new statement text for every batch size).
#[async_trait]
pub trait AuditSequencerRepo {
    async fn insert_audit_entries(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// Removes the sequenced queue rows: `ids` is a batch of the smallest queue ids.
    async fn delete_audit_queue(&mut self, ids: &[i64]) -> Result<(), StoreError>;
}

/// Opens the store the URL names, waiting at most `timeout` for the first connection.
pub async fn connect(
    url: &DatabaseUrl,
    max_connections: u32,
    timeout: std::time::Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        DatabaseUrl::Sqlite(u) => {
            Arc::new(SqliteStore::connect(u, max_connections, timeout).await?)
        }
        DatabaseUrl::Postgres(u) => Arc::new(PgStore::connect(u, max_connections, timeout).await?),
    })
}

#[cfg(test)]
mod pager_tests {
    use super::*;

    fn entry(idx: i64) -> StoredAuditEntry {
        StoredAuditEntry {
            idx,
            leaf_hash: vec![],
            chain_hash: vec![],
            canonical_event: None,
        }
    }

    async fn pages(start: i64, end: i64, page: i64, idxs: &[i64]) -> Vec<Vec<i64>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let mut pager = Pager::new(start, end, page, tx);
        for &i in idxs {
            assert!(pager.push(entry(i)).await);
        }
        pager.finish().await;
        let mut out = Vec::new();
        while let Some(p) = rx.recv().await {
            out.push(p.unwrap().iter().map(|e| e.idx).collect());
        }
        out
    }

    #[tokio::test]
    async fn one_message_per_index_range_even_when_rows_are_missing() {
        assert_eq!(
            pages(0, 5, 2, &[0, 1, 2, 3, 4]).await,
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        // Missing rows leave their range short or empty, never shift later rows.
        assert_eq!(
            pages(0, 7, 2, &[0, 5]).await,
            vec![vec![0], vec![], vec![5], vec![]]
        );
        assert_eq!(pages(3, 3, 2, &[]).await, Vec::<Vec<i64>>::new());
    }
}
