//! SQL of the OpenID Connect provider, shared by both backends. Inserts that may meet an
//! existing row use `ON CONFLICT DO NOTHING` (PostgreSQL aborts a transaction on a unique
//! violation; both backends accept this form).

macro_rules! impl_oidc_repo {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::OidcRepo for $tx {
            async fn insert_oidc_client(
                &mut self,
                r: &$crate::store::OidcClientRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO oidc_client (id, name, redirect_uris, post_logout_redirect_uris, \
                     allowed_demarches, auth_method, secret_mac, secret_key_version, jwks, sector, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(r.id)
                .bind(&r.name)
                .bind(&r.redirect_uris)
                .bind(&r.post_logout_redirect_uris)
                .bind(&r.allowed_demarches)
                .bind(&r.auth_method)
                .bind(&r.secret_mac)
                .bind(r.secret_key_version)
                .bind(&r.jwks)
                .bind(&r.sector)
                .bind(r.active)
                .bind(r.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_oidc_client(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::OidcClientRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::oidc_sql::client_columns!(),
                    " FROM oidc_client WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn list_oidc_clients(
                &mut self,
                limit: i64,
            ) -> Result<Vec<$crate::store::OidcClientRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::oidc_sql::client_columns!(),
                    " FROM oidc_client ORDER BY name, id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn oidc_signing_keys(
                &mut self,
            ) -> Result<Vec<$crate::store::OidcSigningKeyRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT version, kid, alg, key_version, sealed_key, public_jwk, created_at, retired_at \
                     FROM oidc_signing_key ORDER BY version",
                )
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn insert_oidc_signing_key(
                &mut self,
                r: &$crate::store::OidcSigningKeyRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO oidc_signing_key (version, kid, alg, key_version, sealed_key, public_jwk, created_at, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(r.version)
                .bind(&r.kid)
                .bind(&r.alg)
                .bind(r.key_version)
                .bind(&r.sealed_key)
                .bind(&r.public_jwk)
                .bind(r.created_at)
                .bind(r.retired_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn retire_oidc_signing_keys(
                &mut self,
                version: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE oidc_signing_key SET retired_at = $2 WHERE version < $1 AND retired_at IS NULL",
                )
                .bind(version)
                .bind(at)
                .execute(&mut *self.0)
                .await?
                .rows_affected())
            }

            async fn insert_oidc_code(
                &mut self,
                r: &$crate::store::OidcCodeRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO oidc_code (code_hash, client_id, redirect_uri, code_challenge, nonce, scope, \
                     aidant_id, organisation_id, usager_id, mandate_id, demarche, auth_time, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(&r.code_hash)
                .bind(r.client_id)
                .bind(&r.redirect_uri)
                .bind(&r.code_challenge)
                .bind(&r.nonce)
                .bind(&r.scope)
                .bind(r.aidant_id)
                .bind(r.organisation_id)
                .bind(r.usager_id)
                .bind(r.mandate_id)
                .bind(&r.demarche)
                .bind(r.auth_time)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.used_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_oidc_code(
                &mut self,
                hash: &[u8],
            ) -> Result<Option<$crate::store::OidcCodeRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT code_hash, client_id, redirect_uri, code_challenge, nonce, scope, aidant_id, \
                     organisation_id, usager_id, mandate_id, demarche, auth_time, created_at, expires_at, used_at \
                     FROM oidc_code WHERE code_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn use_oidc_code(
                &mut self,
                hash: &[u8],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query("UPDATE oidc_code SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
                    .bind(hash)
                    .bind(at)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn insert_oidc_token(
                &mut self,
                r: &$crate::store::OidcTokenRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO oidc_token (token_hash, code_hash, client_id, scope, aidant_id, organisation_id, \
                     usager_id, mandate_id, demarche, created_at, expires_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&r.token_hash)
                .bind(&r.code_hash)
                .bind(r.client_id)
                .bind(&r.scope)
                .bind(r.aidant_id)
                .bind(r.organisation_id)
                .bind(r.usager_id)
                .bind(r.mandate_id)
                .bind(&r.demarche)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.revoked_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_oidc_token(
                &mut self,
                hash: &[u8],
            ) -> Result<Option<$crate::store::OidcTokenRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT token_hash, code_hash, client_id, scope, aidant_id, organisation_id, usager_id, \
                     mandate_id, demarche, created_at, expires_at, revoked_at FROM oidc_token WHERE token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn revoke_oidc_tokens_of_code(
                &mut self,
                code_hash: &[u8],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE oidc_token SET revoked_at = $2 WHERE code_hash = $1 AND revoked_at IS NULL",
                )
                .bind(code_hash)
                .bind(at)
                .execute(&mut *self.0)
                .await?
                .rows_affected())
            }

            async fn revoke_oidc_token(
                &mut self,
                hash: &[u8],
                client: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE oidc_token SET revoked_at = $3 WHERE token_hash = $1 AND client_id = $2 AND revoked_at IS NULL",
                )
                .bind(hash)
                .bind(client)
                .bind(at)
                .execute(&mut *self.0)
                .await?
                .rows_affected())
            }

            async fn remember_oidc_jti(
                &mut self,
                client: uuid::Uuid,
                jti: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query(
                    "INSERT INTO oidc_jti (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(client)
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *self.0)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn remember_oidc_subject(
                &mut self,
                sector: &str,
                sub: &str,
                usager: uuid::Uuid,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO oidc_subject (sector, sub, usager_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(sector)
                .bind(sub)
                .bind(usager)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn oidc_subject(
                &mut self,
                sector: &str,
                sub: &str,
            ) -> Result<Option<uuid::Uuid>, $crate::store::StoreError> {
                Ok($db::query_scalar("SELECT usager_id FROM oidc_subject WHERE sector = $1 AND sub = $2")
                    .bind(sector)
                    .bind(sub)
                    .fetch_optional(&mut *self.0)
                    .await?)
            }

            async fn oidc_mandate_expiry(
                &mut self,
                mandate: uuid::Uuid,
                demarche: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, $crate::store::StoreError> {
                let row: Option<(Option<chrono::DateTime<chrono::Utc>>,)> = $db::query_as(
                    "SELECT m.expires_at FROM mandate m JOIN mandate_demarche d ON d.mandate_id = m.id \
                     WHERE m.id = $1 AND d.demarche = $2 AND m.status = 'active' AND d.revoked_at IS NULL",
                )
                .bind(mandate)
                .bind(demarche)
                .fetch_optional(&mut *self.0)
                .await?;
                Ok(row.and_then(|(e,)| e).filter(|e| *e > now))
            }

            async fn oidc_candidates(
                &mut self,
                organisation: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<$crate::store::OidcCandidate>, $crate::store::StoreError> {
                let rows: Vec<(uuid::Uuid, uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>, String)> =
                    $db::query_as(
                        "SELECT m.id, m.usager_id, m.expires_at, d.demarche FROM mandate m \
                         JOIN mandate_demarche d ON d.mandate_id = m.id \
                         WHERE m.organisation_id = $1 AND m.status = 'active' AND d.revoked_at IS NULL \
                         ORDER BY m.id DESC, d.demarche LIMIT $2",
                    )
                    .bind(organisation)
                    .bind(limit)
                    .fetch_all(&mut *self.0)
                    .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(mandate_id, usager_id, expires_at, demarche)| {
                        let expires_at = expires_at.filter(|e| *e > now)?;
                        Some($crate::store::OidcCandidate {
                            mandate_id,
                            usager_id,
                            expires_at,
                            demarche,
                        })
                    })
                    .collect())
            }

            async fn prune_oidc(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM oidc_code WHERE expires_at < $1",
                    "DELETE FROM oidc_token WHERE expires_at < $1",
                    "DELETE FROM oidc_jti WHERE expires_at < $1",
                ] {
                    n += $db::query(sql)
                        .bind(before)
                        .execute(&mut *self.0)
                        .await?
                        .rows_affected();
                }
                Ok(n)
            }
        }
    };
}

macro_rules! client_columns {
    () => {
        "id, name, redirect_uris, post_logout_redirect_uris, allowed_demarches, auth_method, secret_mac, \
         secret_key_version, jwks, sector, active, created_at"
    };
}

pub(crate) use {client_columns, impl_oidc_repo};
