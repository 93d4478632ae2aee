//! SQL that both backends run unchanged (SQLite accepts `$N` parameters too). Each backend
//! instantiates these repositories for its own transaction type, so every query is
//! type-checked against that backend's driver.

macro_rules! impl_shared_repos {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::OrgRepo for $tx {
            async fn insert_organisation(
                &mut self,
                org: &$crate::store::OrganisationRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO organisation (id, name, address, siret, allowed_demarches, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(org.id)
                .bind(&org.name)
                .bind(&org.address)
                .bind(&org.siret)
                .bind(&org.allowed_demarches)
                .bind(org.active)
                .bind(org.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_organisation(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::OrganisationRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT id, name, address, siret, allowed_demarches, active, created_at \
                     FROM organisation WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn update_organisation(
                &mut self,
                id: uuid::Uuid,
                address: &str,
                allowed_demarches: &str,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE organisation SET address = $1, allowed_demarches = $2 WHERE id = $3")
                    .bind(address)
                    .bind(allowed_demarches)
                    .bind(id)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn list_organisations(
                &mut self,
                limit: i64,
            ) -> Result<Vec<$crate::store::OrganisationRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT id, name, address, siret, allowed_demarches, active, created_at \
                     FROM organisation ORDER BY name, id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AuditRepo for $tx {
            async fn enqueue_audit(&mut self, event_json: &str) -> Result<(), $crate::store::StoreError> {
                $db::query("INSERT INTO audit_queue (event) VALUES ($1)")
                    .bind(event_json)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn audit_queue_batch(
                &mut self,
                limit: i64,
            ) -> Result<Vec<(i64, String)>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT id, event FROM audit_queue ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&mut *self.0)
                    .await?)
            }

            async fn audit_queue_len(&mut self) -> Result<i64, $crate::store::StoreError> {
                Ok($db::query_scalar("SELECT COUNT(*) FROM audit_queue")
                    .fetch_one(&mut *self.0)
                    .await?)
            }

            async fn audit_head(&mut self) -> Result<(i64, Vec<u8>), $crate::store::StoreError> {
                Ok($db::query_as("SELECT next_index, chain_hash FROM audit_head WHERE id = 1")
                    .fetch_one(&mut *self.0)
                    .await?)
            }

            async fn set_audit_head(
                &mut self,
                next_index: i64,
                chain_hash: &[u8],
            ) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE audit_head SET next_index = $1, chain_hash = $2 WHERE id = 1")
                    .bind(next_index)
                    .bind(chain_hash)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn audit_entries(
                &mut self,
                from: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::StoredAuditEntry>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT l.idx, l.leaf_hash, l.chain_hash, p.canonical_event \
                     FROM audit_log l LEFT JOIN audit_payload p ON p.idx = l.idx \
                     WHERE l.idx >= $1 ORDER BY l.idx LIMIT $2",
                )
                .bind(from)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }
        }
    };
}

pub(crate) use impl_shared_repos;
