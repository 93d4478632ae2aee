//! PostgreSQL backend: a pool shared by any number of stateless instances; the audit
//! sequencer is serialised across instances by a transaction-scoped advisory lock.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use super::accounts_sql::impl_account_repo;
use super::audit_trail_sql::{audit_filter_sql, impl_audit_trail_repo};
use super::mandates_sql::impl_mandate_repos;
use super::oidc_sql::impl_oidc_repo;
use super::outbox_sql::impl_outbox_repo;
use super::shared::impl_shared_repos;
// vault
use super::vault_sql::impl_vault_repo;
use super::{Backend, Store, StoreError, Tx};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Advisory lock key of the audit sequencer ("mandat" in ASCII).
const SEQUENCER_LOCK: i64 = 0x6d61_6e64_6174;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(
        url: &SecretString,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect(url.expose_secret())
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub struct PgTx(Transaction<'static, Postgres>);

impl_shared_repos!(PgTx, sqlx);
impl_audit_trail_repo!(PgTx, sqlx);
impl_account_repo!(PgTx, sqlx);
impl_mandate_repos!(PgTx, sqlx);
impl_outbox_repo!(PgTx, sqlx, "FOR UPDATE OF o SKIP LOCKED");
// vault
impl_vault_repo!(PgTx, sqlx);
impl_oidc_repo!(PgTx, sqlx);

#[async_trait]
impl super::AuditSequencerRepo for PgTx {
    /// One statement per table whatever the batch size: the columns travel as arrays
    /// (`UNNEST`), so the statement is prepared once per connection and the batch costs two
    /// round trips.
    async fn insert_audit_entries(
        &mut self,
        entries: &[super::AuditEntry],
    ) -> Result<(), super::StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let idx: Vec<i64> = entries.iter().map(|e| e.idx).collect();
        let col = |f: fn(&super::AuditEntry) -> &str| entries.iter().map(f).collect::<Vec<_>>();
        let opt =
            |f: fn(&super::AuditEntry) -> Option<&str>| entries.iter().map(f).collect::<Vec<_>>();
        let bytes = |f: fn(&super::AuditEntry) -> &[u8]| entries.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO audit_log (idx, ts, action, actor_kind, actor_id, organisation_id, \
             usager_id, mandate_id, leaf_hash, chain_hash) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
             $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BYTEA[], $10::BYTEA[])",
        )
        .bind(&idx)
        .bind(col(|e| e.ts.as_str()))
        .bind(col(|e| e.action.as_str()))
        .bind(col(|e| e.actor_kind.as_str()))
        .bind(opt(|e| e.actor_id.as_deref()))
        .bind(opt(|e| e.organisation.as_deref()))
        .bind(opt(|e| e.usager.as_deref()))
        .bind(opt(|e| e.mandate.as_deref()))
        .bind(bytes(|e| e.leaf_hash.as_slice()))
        .bind(bytes(|e| e.chain_hash.as_slice()))
        .execute(&mut *self.0)
        .await?;
        sqlx::query(
            "INSERT INTO audit_payload (idx, canonical_event, prune_after) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[])",
        )
        .bind(&idx)
        .bind(col(|e| e.canonical.as_str()))
        .bind(entries.iter().map(|e| e.prune_after).collect::<Vec<_>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn delete_audit_queue(&mut self, ids: &[i64]) -> Result<(), super::StoreError> {
        sqlx::query("DELETE FROM audit_queue WHERE id = ANY($1)")
            .bind(ids)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
        Ok(Box::new(PgTx(self.pool.begin().await?)))
    }

    async fn begin_read(&self) -> Result<Box<dyn Tx>, StoreError> {
        self.begin().await
    }

    async fn begin_sequencer(&self) -> Result<Box<dyn Tx>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(PgTx(tx)))
    }

    async fn begin_snapshot(&self) -> Result<Box<dyn Tx>, StoreError> {
        Ok(Box::new(PgTx(
            self.pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?,
        )))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_stats(&self) -> super::PoolStats {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(open);
        super::PoolStats {
            max: self.pool.options().get_max_connections(),
            in_use: open - idle,
            idle,
        }
    }

    fn has_audit_stream(&self) -> bool {
        true
    }

    /// One streamed query in a read-only snapshot: the server merge-joins the two tables'
    /// primary-key scans once (pages of separate range queries would re-plan and re-join
    /// each time), without JIT or parallel workers, which only add start-up cost to a scan
    /// in index order on a small machine.
    async fn audit_stream(
        &self,
        start: i64,
        end: i64,
        page: i64,
        out: tokio::sync::mpsc::Sender<Result<Vec<super::StoredAuditEntry>, StoreError>>,
    ) -> Result<(), StoreError> {
        use futures::TryStreamExt as _;
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
            .execute(&mut *tx)
            .await?;
        // Columns by position: no per-row name lookups.
        let mut rows = sqlx::query_as::<_, (i64, Vec<u8>, Vec<u8>, Option<String>)>(
            "SELECT l.idx, l.leaf_hash, l.chain_hash, p.canonical_event \
             FROM audit_log l LEFT JOIN audit_payload p ON p.idx = l.idx \
             WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx",
        )
        .bind(start)
        .bind(end)
        .fetch(&mut *tx);
        let mut pager = super::Pager::new(start, end, page, out);
        while let Some((idx, leaf_hash, chain_hash, canonical_event)) = rows.try_next().await? {
            let row = super::StoredAuditEntry {
                idx,
                leaf_hash,
                chain_hash,
                canonical_event,
            };
            if !pager.push(row).await {
                return Ok(());
            }
        }
        pager.finish().await;
        Ok(())
    }
}
