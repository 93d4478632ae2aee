//! SQL of usagers (sealed rows, links, blind index) and idempotency keys, shared by both
//! backends; instantiated through `impl_mandate_repos!`.

macro_rules! impl_usager_repos {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::UsagerRepo for $tx {
            async fn insert_usager(
                &mut self,
                r: &$crate::store::UsagerRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO usager (id, created_at, created_by, created_by_org, identity_check, key_version, \
                     wrapped_key, given_name, family_name, birthdate, birthplace, phone, email, erased_at, archived_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(r.id)
                .bind(r.created_at)
                .bind(r.created_by)
                .bind(r.created_by_org)
                .bind(&r.identity_check)
                .bind(r.key_version)
                .bind(&r.wrapped_key)
                .bind(&r.given_name)
                .bind(&r.family_name)
                .bind(&r.birthdate)
                .bind(&r.birthplace)
                .bind(&r.phone)
                .bind(&r.email)
                .bind(r.erased_at)
                .bind(r.archived_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_usager(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::UsagerRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT id, created_at, created_by, created_by_org, identity_check, key_version, wrapped_key, \
                     given_name, family_name, birthdate, birthplace, phone, email, erased_at, archived_at FROM usager WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn link_usager(
                &mut self,
                organisation: uuid::Uuid,
                usager: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO usager_link (organisation_id, usager_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (organisation_id, usager_id) DO NOTHING",
                )
                .bind(organisation)
                .bind(usager)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn usager_links(
                &mut self,
                usager: uuid::Uuid,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT organisation_id FROM usager_link WHERE usager_id = $1 ORDER BY organisation_id",
                )
                .bind(usager)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn insert_usager_index(
                &mut self,
                usager: uuid::Uuid,
                kind: &str,
                key_version: i64,
                mac: &[u8],
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO usager_index (usager_id, kind, key_version, mac) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (usager_id, kind, key_version, mac) DO NOTHING",
                )
                .bind(usager)
                .bind(kind)
                .bind(key_version)
                .bind(mac)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn erase_usager(
                &mut self,
                id: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let empty: Vec<u8> = Vec::new();
                let r = $db::query(
                    "UPDATE usager SET wrapped_key = NULL, given_name = $3, family_name = $3, birthdate = $3, \
                     birthplace = NULL, phone = NULL, email = NULL, erased_at = $2 \
                     WHERE id = $1 AND erased_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .bind(&empty)
                .execute(&mut *self.0)
                .await?;
                $db::query("DELETE FROM usager_index WHERE usager_id = $1")
                    .bind(id)
                    .execute(&mut *self.0)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn usagers_ended_before(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT u.id FROM usager u WHERE u.erased_at IS NULL AND u.created_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM mandate m WHERE m.usager_id = u.id \
                     AND NOT (m.status IN ('refused', 'expired', 'revoked') \
                     AND m.ended_at IS NOT NULL AND m.ended_at < $1)) \
                     ORDER BY u.created_at, u.id LIMIT $2",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn archive_usagers_ended_before(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
                at: chrono::DateTime<chrono::Utc>,
                apply: bool,
            ) -> Result<i64, $crate::store::StoreError> {
                const ENDED: &str = "u.erased_at IS NULL AND u.archived_at IS NULL AND u.created_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM mandate m WHERE m.usager_id = u.id \
                     AND NOT (m.status IN ('refused', 'expired', 'revoked') \
                     AND m.ended_at IS NOT NULL AND m.ended_at < $1))";
                if !apply {
                    return Ok($db::query_scalar(&format!(
                        "SELECT COUNT(*) FROM usager u WHERE {ENDED}"
                    ))
                    .bind(before)
                    .fetch_one(&mut *self.0)
                    .await?);
                }
                let r = $db::query(&format!(
                    "UPDATE usager SET archived_at = $2 WHERE id IN (SELECT u.id FROM usager u WHERE {ENDED})"
                ))
                .bind(before)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(i64::try_from(r.rows_affected()).unwrap_or(i64::MAX))
            }

            async fn search_usagers(
                &mut self,
                organisation: uuid::Uuid,
                name_macs: &[Vec<u8>],
                birthdate_mac: Option<&[u8]>,
                limit: i64,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                let mut q = $db::QueryBuilder::new(
                    "SELECT l.usager_id FROM usager_link l JOIN usager u ON u.id = l.usager_id \
                     WHERE u.erased_at IS NULL AND u.archived_at IS NULL AND l.organisation_id = ",
                );
                q.push_bind(organisation);
                if !name_macs.is_empty() {
                    q.push(
                        " AND EXISTS (SELECT 1 FROM usager_index i WHERE i.usager_id = l.usager_id \
                         AND i.kind = 'name' AND i.mac IN (",
                    );
                    let mut sep = q.separated(", ");
                    for m in name_macs {
                        sep.push_bind(m.clone());
                    }
                    q.push("))");
                }
                if let Some(m) = birthdate_mac {
                    q.push(
                        " AND EXISTS (SELECT 1 FROM usager_index i WHERE i.usager_id = l.usager_id \
                         AND i.kind = 'birthdate' AND i.mac = ",
                    );
                    q.push_bind(m.to_vec());
                    q.push(")");
                }
                q.push(" ORDER BY l.usager_id LIMIT ");
                q.push_bind(limit);
                Ok(q.build_query_scalar().fetch_all(&mut *self.0).await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::IdempotencyRepo for $tx {
            async fn get_idempotency(
                &mut self,
                scope: &str,
                key: &str,
            ) -> Result<Option<$crate::store::IdempotencyRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT scope, key, request_mac, status, key_version, wrapped_key, body, usager_id, created_at \
                     FROM idempotency_key WHERE scope = $1 AND key = $2",
                )
                .bind(scope)
                .bind(key)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn insert_idempotency(
                &mut self,
                r: &$crate::store::IdempotencyRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO idempotency_key (scope, key, request_mac, status, key_version, wrapped_key, body, usager_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&r.scope)
                .bind(&r.key)
                .bind(&r.request_mac)
                .bind(r.status)
                .bind(r.key_version)
                .bind(&r.wrapped_key)
                .bind(&r.body)
                .bind(r.usager_id)
                .bind(r.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn prune_idempotency(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("DELETE FROM idempotency_key WHERE created_at < $1")
                    .bind(before)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn delete_idempotency_of_usager(
                &mut self,
                usager: uuid::Uuid,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("DELETE FROM idempotency_key WHERE usager_id = $1")
                    .bind(usager)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(crate) use impl_usager_repos;
