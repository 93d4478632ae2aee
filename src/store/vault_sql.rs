//! SQL of the credential vault, shared by both backends.

macro_rules! vault_columns {
    () => {
        "id, organisation_id, created_by, created_at, updated_at, usager_id, demarche, \
         kek_version, wrapped_key, version, label, service, login, secret, totp_seed, notes, deleted_at"
    };
}

macro_rules! impl_vault_repo {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::VaultRepo for $tx {
            async fn insert_vault_entry(
                &mut self,
                r: &$crate::store::VaultEntryRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(concat!(
                    "INSERT INTO vault_entry (",
                    $crate::store::vault_sql::vault_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
                ))
                .bind(r.id)
                .bind(r.organisation_id)
                .bind(r.created_by)
                .bind(r.created_at)
                .bind(r.updated_at)
                .bind(r.usager_id)
                .bind(&r.demarche)
                .bind(r.kek_version)
                .bind(&r.wrapped_key)
                .bind(r.version)
                .bind(&r.label)
                .bind(&r.service)
                .bind(&r.login)
                .bind(&r.secret)
                .bind(&r.totp_seed)
                .bind(&r.notes)
                .bind(r.deleted_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_vault_entry(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::VaultEntryRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::vault_sql::vault_columns!(),
                    " FROM vault_entry WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn list_vault_entries(
                &mut self,
                organisation: uuid::Uuid,
                after: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<$crate::store::VaultEntryRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::vault_sql::vault_columns!(),
                    " FROM vault_entry WHERE organisation_id = $1 AND deleted_at IS NULL \
                     AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(organisation)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn replace_vault_fields(
                &mut self,
                r: &$crate::store::VaultEntryRow,
                from_version: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $db::query(
                    "UPDATE vault_entry SET updated_at = $2, kek_version = $3, wrapped_key = $4, \
                     version = $5, label = $6, service = $7, login = $8, secret = $9, \
                     totp_seed = $10, notes = $11 \
                     WHERE id = $1 AND version = $12 AND deleted_at IS NULL",
                )
                .bind(r.id)
                .bind(r.updated_at)
                .bind(r.kek_version)
                .bind(&r.wrapped_key)
                .bind(r.version)
                .bind(&r.label)
                .bind(&r.service)
                .bind(&r.login)
                .bind(&r.secret)
                .bind(&r.totp_seed)
                .bind(&r.notes)
                .bind(from_version)
                .execute(&mut *self.0)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn shred_vault_entry(
                &mut self,
                id: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $db::query(
                    "UPDATE vault_entry SET wrapped_key = NULL, label = NULL, service = NULL, \
                     login = NULL, secret = NULL, totp_seed = NULL, notes = NULL, \
                     deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn vault_keys_below(
                &mut self,
                below: i64,
                after: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<$crate::store::VaultKeyRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT id, organisation_id, kek_version, wrapped_key FROM vault_entry \
                     WHERE kek_version < $1 AND wrapped_key IS NOT NULL \
                     AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
                )
                .bind(below)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn rewrap_vault_key(
                &mut self,
                id: uuid::Uuid,
                from: i64,
                to: i64,
                wrapped: &[u8],
            ) -> Result<bool, $crate::store::StoreError> {
                let done = $db::query(
                    "UPDATE vault_entry SET kek_version = $3, wrapped_key = $4 \
                     WHERE id = $1 AND kek_version = $2 AND wrapped_key IS NOT NULL",
                )
                .bind(id)
                .bind(from)
                .bind(to)
                .bind(wrapped)
                .execute(&mut *self.0)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_vault_keys_below(
                &mut self,
                below: i64,
            ) -> Result<i64, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT COUNT(*) FROM vault_entry WHERE kek_version < $1 AND wrapped_key IS NOT NULL",
                )
                .bind(below)
                .fetch_one(&mut *self.0)
                .await?)
            }
        }
    };
}

pub(crate) use {impl_vault_repo, vault_columns};
