//! SQL of [`AuditTrailRepo`](super::AuditTrailRepo), shared by both backends.

macro_rules! impl_audit_trail_repo {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditTrailRepo for $tx {
            async fn audit_leaf_hashes(
                &mut self,
                from: i64,
                to: i64,
            ) -> Result<Vec<Vec<u8>>, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT leaf_hash FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn audit_entries_between(
                &mut self,
                from: i64,
                to: i64,
            ) -> Result<Vec<$crate::store::StoredAuditEntry>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT l.idx, l.leaf_hash, l.chain_hash, p.canonical_event \
                     FROM audit_log l LEFT JOIN audit_payload p ON p.idx = l.idx \
                     WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn audit_bounds(
                &mut self,
            ) -> Result<(Option<i64>, Option<i64>), $crate::store::StoreError> {
                Ok($db::query_as("SELECT MIN(idx), MAX(idx) FROM audit_log")
                    .fetch_one(&mut *self.0)
                    .await?)
            }

            async fn insert_audit_checkpoint(
                &mut self,
                cp: &$crate::store::CheckpointRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO audit_checkpoint (tree_size, root_hash, timestamp, key_id, note) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(cp.tree_size)
                .bind(&cp.root_hash)
                .bind(&cp.timestamp)
                .bind(&cp.key_id)
                .bind(&cp.note)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn latest_audit_checkpoint(
                &mut self,
            ) -> Result<Option<$crate::store::CheckpointRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT tree_size, root_hash, timestamp, key_id, note FROM audit_checkpoint \
                     ORDER BY tree_size DESC LIMIT 1",
                )
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn audit_checkpoints_between(
                &mut self,
                after: i64,
                upto: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::CheckpointRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT tree_size, root_hash, timestamp, key_id, note FROM audit_checkpoint \
                     WHERE tree_size > $1 AND tree_size <= $2 ORDER BY tree_size LIMIT $3",
                )
                .bind(after)
                .bind(upto)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn search_audit(
                &mut self,
                filter: &$crate::store::AuditFilter,
                after: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::AuditRow>, $crate::store::StoreError> {
                let mut q = $db::QueryBuilder::new(
                    "SELECT l.idx, l.ts, l.action, l.actor_kind, l.actor_id, l.organisation_id, \
                     l.usager_id, l.mandate_id, l.leaf_hash, p.canonical_event \
                     FROM audit_log l LEFT JOIN audit_payload p ON p.idx = l.idx WHERE l.idx > ",
                );
                q.push_bind(after);
                audit_filter_sql!(q, filter);
                q.push(" ORDER BY l.idx LIMIT ");
                q.push_bind(limit);
                Ok(q.build_query_as().fetch_all(&mut *self.0).await?)
            }

            async fn count_audit(
                &mut self,
                filter: &$crate::store::AuditFilter,
            ) -> Result<i64, $crate::store::StoreError> {
                let mut q = $db::QueryBuilder::new("SELECT COUNT(*) FROM audit_log l WHERE 1 = 1");
                audit_filter_sql!(q, filter);
                Ok(q.build_query_scalar().fetch_one(&mut *self.0).await?)
            }

            async fn prune_audit_payloads(
                &mut self,
                sel: &$crate::store::PayloadSelection<'_>,
                delete: bool,
            ) -> Result<$crate::store::PruneSummary, $crate::store::StoreError> {
                if sel.listed && sel.actions.is_empty() {
                    return Ok($crate::store::PruneSummary::default());
                }
                let mut q = $db::QueryBuilder::new(
                    "SELECT COUNT(*), MIN(p.idx), MAX(p.idx) FROM audit_payload p \
                     JOIN audit_log l ON l.idx = p.idx WHERE p.prune_after <= ",
                );
                q.push_bind(sel.now_unix);
                $crate::store::audit_trail_sql::payload_selection_sql!(q, sel);
                let (count, first, last): (i64, Option<i64>, Option<i64>) =
                    q.build_query_as().fetch_one(&mut *self.0).await?;
                if delete && count > 0 {
                    let mut q = $db::QueryBuilder::new(
                        "DELETE FROM audit_payload WHERE prune_after <= ",
                    );
                    q.push_bind(sel.now_unix);
                    q.push(" AND idx IN (SELECT l.idx FROM audit_log l WHERE 1 = 1");
                    $crate::store::audit_trail_sql::payload_selection_sql!(q, sel);
                    q.push(")");
                    q.build().execute(&mut *self.0).await?;
                }
                Ok($crate::store::PruneSummary { count, first, last })
            }

            async fn key_versions(
                &mut self,
                purpose: &str,
            ) -> Result<Vec<i32>, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT version FROM key_version WHERE purpose = $1 ORDER BY version",
                )
                .bind(purpose)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn insert_key_version(
                &mut self,
                purpose: &str,
                version: i32,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO key_version (purpose, version, created_at) VALUES ($1, $2, $3)",
                )
                .bind(purpose)
                .bind(version)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }
        }
    };
}

/// Appends the `AND …` clauses of a [`PayloadSelection`](super::PayloadSelection) (table
/// alias `l` for `audit_log`).
macro_rules! payload_selection_sql {
    ($q:ident, $sel:ident) => {
        $q.push(" AND l.ts < ").push_bind($sel.before_ts.clone());
        if !$sel.actions.is_empty() {
            $q.push(if $sel.listed {
                " AND l.action IN ("
            } else {
                " AND l.action NOT IN ("
            });
            let mut list = $q.separated(", ");
            for a in $sel.actions {
                list.push_bind(*a);
            }
            $q.push(")");
        }
        match $sel.with_mandate {
            Some(true) => {
                $q.push(" AND l.mandate_id IS NOT NULL");
            }
            Some(false) => {
                $q.push(" AND l.mandate_id IS NULL");
            }
            None => {}
        }
    };
}

/// Appends the `AND …` clauses of an [`AuditFilter`](super::AuditFilter) (table alias `l`).
macro_rules! audit_filter_sql {
    ($q:ident, $f:ident) => {
        if let Some(v) = &$f.since {
            $q.push(" AND l.ts >= ").push_bind(v.clone());
        }
        if let Some(v) = &$f.until {
            $q.push(" AND l.ts < ").push_bind(v.clone());
        }
        if let Some(v) = &$f.action {
            $q.push(" AND l.action = ").push_bind(v.clone());
        }
        if let Some(v) = &$f.actor {
            $q.push(" AND l.actor_id = ").push_bind(v.clone());
        }
        if let Some(v) = &$f.usager {
            $q.push(" AND l.usager_id = ").push_bind(v.clone());
        }
        if let Some(v) = &$f.mandate {
            $q.push(" AND l.mandate_id = ").push_bind(v.clone());
        }
        if let Some(v) = &$f.organisation {
            $q.push(" AND l.organisation_id = ").push_bind(v.clone());
        }
        if let Some(v) = $f.below {
            $q.push(" AND l.idx < ").push_bind(v);
        }
    };
}

pub(crate) use audit_filter_sql;
pub(crate) use impl_audit_trail_repo;
pub(crate) use payload_selection_sql;
