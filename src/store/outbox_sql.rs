//! SQL of the SMS outbox, shared by both backends. `$lock` is what the claim's inner select
//! adds on PostgreSQL (`FOR UPDATE … SKIP LOCKED`: concurrent workers of several instances
//! pass over each other's rows instead of queueing); SQLite has one writer at a time.

macro_rules! impl_outbox_repo {
    ($tx:ty, $db:ident, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::SmsOutboxRepo for $tx {
            async fn insert_sms(
                &mut self,
                r: &$crate::store::SmsOutboxRow,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO sms_outbox (id, mandate_id, challenge_id, usager_id, seq, kind, status, \
                     key_version, message, attempts, created_at, next_attempt_at, claimed_until, done_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(r.id)
                .bind(r.mandate_id)
                .bind(r.challenge_id)
                .bind(r.usager_id)
                .bind(r.seq)
                .bind(&r.kind)
                .bind(&r.status)
                .bind(r.key_version)
                .bind(&r.message)
                .bind(r.attempts)
                .bind(r.created_at)
                .bind(r.next_attempt_at)
                .bind(r.claimed_until)
                .bind(r.done_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn sms_due(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sms_outbox WHERE status = 'pending' \
                     AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1))",
                )
                .bind(now)
                .fetch_one(&mut *self.0)
                .await?)
            }

            async fn claim_sms(
                &mut self,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::store::SmsOutboxRow>, $crate::store::StoreError> {
                Ok($db::query_as(concat!(
                    "UPDATE sms_outbox SET attempts = attempts + 1, claimed_until = $2 \
                     WHERE id = (SELECT o.id FROM sms_outbox o \
                     WHERE o.status = 'pending' AND o.next_attempt_at <= $1 \
                     AND (o.claimed_until IS NULL OR o.claimed_until <= $1) \
                     AND NOT EXISTS (SELECT 1 FROM sms_outbox e WHERE e.challenge_id = o.challenge_id \
                     AND e.seq < o.seq AND e.status = 'pending') \
                     ORDER BY o.next_attempt_at, o.id LIMIT 1 ",
                    $lock,
                    ") AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1) \
                     RETURNING ",
                    $crate::store::outbox_sql::outbox_columns!()
                ))
                .bind(now)
                .bind(until)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn finish_sms(
                &mut self,
                id: uuid::Uuid,
                attempts: i64,
                status: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "UPDATE sms_outbox SET status = $3, message = NULL, claimed_until = NULL, done_at = $4 \
                     WHERE id = $1 AND attempts = $2 AND status = 'pending'",
                )
                .bind(id)
                .bind(attempts)
                .bind(status)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn retry_sms(
                &mut self,
                id: uuid::Uuid,
                attempts: i64,
                next: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let r = $db::query(
                    "UPDATE sms_outbox SET next_attempt_at = $3, claimed_until = NULL \
                     WHERE id = $1 AND attempts = $2 AND status = 'pending'",
                )
                .bind(id)
                .bind(attempts)
                .bind(next)
                .execute(&mut *self.0)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn sms_of_challenge(
                &mut self,
                challenge: uuid::Uuid,
            ) -> Result<
                Vec<(String, i64, Option<chrono::DateTime<chrono::Utc>>)>,
                $crate::store::StoreError,
            > {
                Ok($db::query_as(
                    "SELECT status, attempts, claimed_until FROM sms_outbox WHERE challenge_id = $1 ORDER BY seq",
                )
                .bind(challenge)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn prune_sms(
                &mut self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("DELETE FROM sms_outbox WHERE status <> 'pending' AND done_at < $1")
                    .bind(before)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }
        }
    };
}

macro_rules! outbox_columns {
    () => {
        "id, mandate_id, challenge_id, usager_id, seq, kind, status, key_version, message, attempts, \
         created_at, next_attempt_at, claimed_until, done_at"
    };
}

pub(crate) use {impl_outbox_repo, outbox_columns};
