//! SQL of mandates and consent challenges, shared by both backends (instantiated in
//! `sqlite.rs` and `postgres.rs`, together with `usagers_sql.rs`).
//!
//! State changes are conditional updates (`… WHERE status = 'pending_consent'`): of two
//! concurrent transactions, exactly one sees a row affected; the caller answers `409` to
//! the other.

macro_rules! impl_mandate_repos {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::MandateRepo for $tx {
            async fn insert_mandate(
                &mut self,
                r: &$crate::store::MandateRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO mandate (id, organisation_id, usager_id, created_by, duration, consent_channel, status, \
                     terms_hash, terms, terms_key_version, created_at, activated_at, expires_at, revoked_at, \
                     revoked_reason, ended_at, renews, resends) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                )
                .bind(r.id)
                .bind(r.organisation_id)
                .bind(r.usager_id)
                .bind(r.created_by)
                .bind(&r.duration)
                .bind(&r.consent_channel)
                .bind(&r.status)
                .bind(&r.terms_hash)
                .bind(&r.terms)
                .bind(r.terms_key_version)
                .bind(r.created_at)
                .bind(r.activated_at)
                .bind(r.expires_at)
                .bind(r.revoked_at)
                .bind(&r.revoked_reason)
                .bind(r.ended_at)
                .bind(r.renews)
                .bind(r.resends)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn insert_mandate_demarches(
                &mut self,
                mandate: uuid::Uuid,
                demarches: &[String],
            ) -> Result<(), $crate::store::StoreError> {
                if demarches.is_empty() {
                    return Ok(());
                }
                // One statement for all of them (one round trip).
                let mut q = $db::QueryBuilder::new(
                    "INSERT INTO mandate_demarche (mandate_id, demarche) VALUES ",
                );
                for (i, d) in demarches.iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.push("(");
                    q.push_bind(mandate);
                    q.push(", ");
                    q.push_bind(d.clone());
                    q.push(")");
                }
                q.build().execute(&mut *self.0).await?;
                Ok(())
            }

            async fn get_mandate(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::MandateRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!("SELECT ", $crate::store::mandates_sql::mandate_columns!(), " FROM mandate WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.0)
                    .await?)
            }

            async fn mandate_demarches(
                &mut self,
                mandate: uuid::Uuid,
            ) -> Result<Vec<$crate::store::MandateDemarcheRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT mandate_id, demarche, revoked_at, revoked_reason FROM mandate_demarche \
                     WHERE mandate_id = $1 ORDER BY demarche",
                )
                .bind(mandate)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn demarches_of_mandates(
                &mut self,
                ids: &[uuid::Uuid],
            ) -> Result<Vec<$crate::store::MandateDemarcheRow>, $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = $db::QueryBuilder::new(
                    "SELECT mandate_id, demarche, revoked_at, revoked_reason FROM mandate_demarche WHERE mandate_id IN (",
                );
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                q.push(") ORDER BY mandate_id, demarche");
                Ok(q.build_query_as().fetch_all(&mut *self.0).await?)
            }

            async fn list_mandates(
                &mut self,
                f: &$crate::store::MandateFilter,
            ) -> Result<Vec<$crate::store::MandateRow>, $crate::store::StoreError> {
                let mut q = $db::QueryBuilder::new(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::mandate_columns!(),
                    " FROM mandate WHERE organisation_id = "
                ));
                q.push_bind(f.organisation_id);
                if let Some(u) = f.usager_id {
                    q.push(" AND usager_id = ").push_bind(u);
                }
                // The time bounds are written `NOT (expires_at <= …)`: a range SQLite would
                // take `mandate_status_expiry` for and then sort every active mandate of the
                // organisation by id; this way it walks `mandate_org_status_id` newest first
                // and stops after the page (PostgreSQL plans both forms alike).
                match f.status.as_deref() {
                    None => {}
                    Some("active") => {
                        q.push(" AND status = 'active' AND NOT (expires_at <= ")
                            .push_bind(f.now)
                            .push(")");
                    }
                    Some("expired") => {
                        q.push(" AND (status = 'expired' OR (status = 'active' AND expires_at <= ")
                            .push_bind(f.now)
                            .push("))");
                    }
                    Some(s) => {
                        q.push(" AND status = ").push_bind(s.to_owned());
                    }
                }
                if let Some(before) = f.expiring_before {
                    q.push(" AND status = 'active' AND NOT (expires_at <= ")
                        .push_bind(f.now)
                        .push(") AND NOT (expires_at > ")
                        .push_bind(before)
                        .push(")");
                }
                if let Some(id) = f.before_id {
                    q.push(" AND id < ").push_bind(id);
                }
                q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
                Ok(q.build_query_as().fetch_all(&mut *self.0).await?)
            }

            async fn activate_mandate(
                &mut self,
                id: uuid::Uuid,
                activated_at: chrono::DateTime<chrono::Utc>,
                expires_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "UPDATE mandate SET status = 'active', activated_at = $2, expires_at = $3 \
                     WHERE id = $1 AND status = 'pending_consent'",
                )
                .bind(id)
                .bind(activated_at)
                .bind(expires_at)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn end_mandate(
                &mut self,
                id: uuid::Uuid,
                from: &str,
                to: &str,
                at: chrono::DateTime<chrono::Utc>,
                reason: Option<&str>,
            ) -> Result<bool, $crate::store::StoreError> {
                let revoked = to == "revoked";
                let r = $db::query(
                    "UPDATE mandate SET status = $3, ended_at = $4, \
                     revoked_at = CASE WHEN $5 THEN $4 ELSE revoked_at END, \
                     revoked_reason = CASE WHEN $5 THEN $6 ELSE revoked_reason END \
                     WHERE id = $1 AND status = $2",
                )
                .bind(id)
                .bind(from)
                .bind(to)
                .bind(at)
                .bind(revoked)
                .bind(reason)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn revoke_demarches(
                &mut self,
                mandate: uuid::Uuid,
                demarches: &[String],
                at: chrono::DateTime<chrono::Utc>,
                reason: &str,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut n = 0;
                for d in demarches {
                    n += $db::query(
                        "UPDATE mandate_demarche SET revoked_at = $3, revoked_reason = $4 \
                         WHERE mandate_id = $1 AND demarche = $2 AND revoked_at IS NULL",
                    )
                    .bind(mandate)
                    .bind(d)
                    .bind(at)
                    .bind(reason)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected();
                }
                Ok(n)
            }

            async fn active_demarches_of(
                &mut self,
                organisation: uuid::Uuid,
                usager: uuid::Uuid,
                except: uuid::Uuid,
            ) -> Result<Vec<(uuid::Uuid, String)>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT m.id, d.demarche FROM mandate m JOIN mandate_demarche d ON d.mandate_id = m.id \
                     WHERE m.organisation_id = $1 AND m.usager_id = $2 AND m.status = 'active' AND m.id <> $3 \
                     AND d.revoked_at IS NULL ORDER BY m.id, d.demarche",
                )
                .bind(organisation)
                .bind(usager)
                .bind(except)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn due_mandates(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<$crate::store::MandateRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::mandate_columns!(),
                    " FROM mandate WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn covering_mandate(
                &mut self,
                organisation: uuid::Uuid,
                usager: uuid::Uuid,
                demarche: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::store::MandateRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT m.id, m.organisation_id, m.usager_id, m.created_by, m.duration, m.consent_channel, \
                     m.status, m.terms_hash, m.terms, m.terms_key_version, m.created_at, m.activated_at, \
                     m.expires_at, m.revoked_at, m.revoked_reason, m.ended_at, m.renews, m.resends \
                     FROM mandate m JOIN mandate_demarche d ON d.mandate_id = m.id \
                     WHERE m.organisation_id = $1 AND m.usager_id = $2 AND d.demarche = $3 \
                     AND d.revoked_at IS NULL AND m.status = 'active' AND m.expires_at > $4 \
                     ORDER BY m.expires_at DESC LIMIT 1",
                )
                .bind(organisation)
                .bind(usager)
                .bind(demarche)
                .bind(now)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn mandates_of_usager(
                &mut self,
                usager: uuid::Uuid,
            ) -> Result<Vec<$crate::store::MandateRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::mandate_columns!(),
                    " FROM mandate WHERE usager_id = $1 ORDER BY id"
                ))
                .bind(usager)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn count_resend(
                &mut self,
                id: uuid::Uuid,
                max: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "UPDATE mandate SET resends = resends + 1 WHERE id = $1 AND resends < $2 \
                     AND status = 'pending_consent'",
                )
                .bind(id)
                .bind(max)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ChallengeRepo for $tx {
            async fn insert_challenge(
                &mut self,
                r: &$crate::store::ChallengeRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO consent_challenge (id, mandate_id, channel, terms_hash, code_mac, code_key_version, \
                     code_sealed, sent_to, status, attempts, created_at, expires_at, closed_at, phone_mac) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(r.id)
                .bind(r.mandate_id)
                .bind(&r.channel)
                .bind(&r.terms_hash)
                .bind(&r.code_mac)
                .bind(r.code_key_version)
                .bind(&r.code_sealed)
                .bind(&r.sent_to)
                .bind(&r.status)
                .bind(r.attempts)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.closed_at)
                .bind(&r.phone_mac)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_challenge(
                &mut self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::store::ChallengeRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!("SELECT ", $crate::store::mandates_sql::challenge_columns!(), " FROM consent_challenge WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.0)
                    .await?)
            }

            async fn current_challenge(
                &mut self,
                mandate: uuid::Uuid,
            ) -> Result<Option<$crate::store::ChallengeRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::challenge_columns!(),
                    " FROM consent_challenge WHERE mandate_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
                ))
                .bind(mandate)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn challenges_of_mandates(
                &mut self,
                ids: &[uuid::Uuid],
            ) -> Result<Vec<$crate::store::ChallengeRow>, $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = $db::QueryBuilder::new(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::challenge_columns!(),
                    " FROM consent_challenge WHERE mandate_id IN ("
                ));
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                q.push(") ORDER BY mandate_id, created_at DESC, id DESC");
                Ok(q.build_query_as().fetch_all(&mut *self.0).await?)
            }

            async fn open_challenge_for_phone(
                &mut self,
                phone_mac: &[u8],
            ) -> Result<Option<$crate::store::ChallengeRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "SELECT ",
                    $crate::store::mandates_sql::challenge_columns!(),
                    " FROM consent_challenge WHERE phone_mac = $1 AND status = 'open' AND channel = 'sms' \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ))
                .bind(phone_mac)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn remember_inbound(
                &mut self,
                signature: &[u8],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "INSERT INTO sms_inbound_seen (signature, seen_at) VALUES ($1, $2) \
                     ON CONFLICT (signature) DO NOTHING",
                )
                .bind(signature)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn forget_inbound_before(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("DELETE FROM sms_inbound_seen WHERE seen_at < $1")
                    .bind(before)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn count_wrong_code(
                &mut self,
                id: uuid::Uuid,
                max: i64,
            ) -> Result<Option<i64>, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "UPDATE consent_challenge SET attempts = attempts + 1 \
                     WHERE id = $1 AND status = 'open' AND attempts < $2 RETURNING attempts",
                )
                .bind(id)
                .bind(max)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn close_challenge(
                &mut self,
                id: uuid::Uuid,
                to: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "UPDATE consent_challenge SET status = $2, closed_at = $3, code_sealed = NULL \
                     WHERE id = $1 AND status = 'open'",
                )
                .bind(id)
                .bind(to)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn lapsed_challenges(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> Result<Vec<(uuid::Uuid, uuid::Uuid)>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT id, mandate_id FROM consent_challenge WHERE status = 'open' AND expires_at <= $1 \
                     ORDER BY expires_at LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn closed_challenges_before(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
                delete: bool,
            ) -> Result<i64, $crate::store::StoreError> {
                let n: i64 = $db::query_scalar(
                    "SELECT COUNT(*) FROM consent_challenge WHERE status <> 'open' AND closed_at < $1",
                )
                .bind(before)
                .fetch_one(&mut *self.0)
                .await?;
                if delete && n > 0 {
                    $db::query("DELETE FROM consent_challenge WHERE status <> 'open' AND closed_at < $1")
                        .bind(before)
                        .execute(&mut *self.0)
                        .await?;
                }
                Ok(n)
            }
        }

        $crate::store::usagers_sql::impl_usager_repos!($tx, $db);
    };
}

macro_rules! mandate_columns {
    () => {
        "id, organisation_id, usager_id, created_by, duration, consent_channel, status, terms_hash, terms, \
         terms_key_version, created_at, activated_at, expires_at, revoked_at, revoked_reason, ended_at, renews, resends"
    };
}

macro_rules! challenge_columns {
    () => {
        "id, mandate_id, channel, terms_hash, code_mac, code_key_version, code_sealed, sent_to, status, attempts, \
         created_at, expires_at, closed_at, phone_mac"
    };
}

pub(crate) use {challenge_columns, impl_mandate_repos, mandate_columns};
