//! The SQL of [`super::AccountRepo`], shared by both backends.

macro_rules! impl_account_repo {
    ($tx:ty, $db:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountRepo for $tx {
            async fn insert_aidant(&mut self, a: &$crate::store::AidantRow) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO aidant (id, email, display_name, password_hash, active, is_admin, is_dpo, \
                     current_organisation_id, last_login_at, failed_logins, failed_window_start, locked_until, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(a.id)
                .bind(&a.email)
                .bind(&a.display_name)
                .bind(&a.password_hash)
                .bind(a.active)
                .bind(a.is_admin)
                .bind(a.is_dpo)
                .bind(a.current_organisation_id)
                .bind(a.last_login_at)
                .bind(a.failed_logins)
                .bind(a.failed_window_start)
                .bind(a.locked_until)
                .bind(a.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_aidant(&mut self, id: uuid::Uuid) -> Result<Option<$crate::store::AidantRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM aidant WHERE id = $1").bind(id).fetch_optional(&mut *self.0).await?)
            }

            async fn find_aidant_by_email(&mut self, email: &str) -> Result<Option<$crate::store::AidantRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM aidant WHERE email = $1").bind(email).fetch_optional(&mut *self.0).await?)
            }

            async fn set_aidant_password(&mut self, id: uuid::Uuid, hash: &str) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE aidant SET password_hash = $1 WHERE id = $2").bind(hash).bind(id).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn set_aidant_profile(&mut self, id: uuid::Uuid, email: &str, display_name: &str) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE aidant SET email = $1, display_name = $2 WHERE id = $3")
                    .bind(email)
                    .bind(display_name)
                    .bind(id)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn set_aidant_active(&mut self, id: uuid::Uuid, active: bool) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE aidant SET active = $1 WHERE id = $2").bind(active).bind(id).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn record_auth_failure(
                &mut self,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
                window_after: chrono::DateTime<chrono::Utc>,
                max: i32,
                lock_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::store::LoginState>, $crate::store::StoreError> {
                // Every SET expression reads the row as it was before this statement, and the
                // row is locked by the statement itself: concurrent failures are counted one by one.
                Ok($db::query_as(
                    "UPDATE aidant SET \
                     failed_logins = CASE \
                       WHEN locked_until IS NOT NULL AND locked_until > $2 THEN failed_logins \
                       WHEN failed_window_start IS NOT NULL AND failed_window_start > $3 THEN \
                         CASE WHEN failed_logins + 1 >= $4 THEN 0 ELSE failed_logins + 1 END \
                       WHEN 1 >= $4 THEN 0 ELSE 1 END, \
                     failed_window_start = CASE \
                       WHEN locked_until IS NOT NULL AND locked_until > $2 THEN failed_window_start \
                       WHEN failed_window_start IS NOT NULL AND failed_window_start > $3 THEN \
                         CASE WHEN failed_logins + 1 >= $4 THEN NULL ELSE failed_window_start END \
                       WHEN 1 >= $4 THEN NULL ELSE $2 END, \
                     locked_until = CASE \
                       WHEN locked_until IS NOT NULL AND locked_until > $2 THEN locked_until \
                       WHEN failed_window_start IS NOT NULL AND failed_window_start > $3 THEN \
                         CASE WHEN failed_logins + 1 >= $4 THEN $5 ELSE NULL END \
                       WHEN 1 >= $4 THEN $5 ELSE NULL END \
                     WHERE id = $1 \
                     RETURNING failed_logins, failed_window_start, locked_until",
                )
                .bind(id)
                .bind(now)
                .bind(window_after)
                .bind(max)
                .bind(lock_until)
                .fetch_optional(&mut *self.0)
                .await?)
            }

            async fn record_login(&mut self, id: uuid::Uuid, at: chrono::DateTime<chrono::Utc>) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE aidant SET last_login_at = $1, failed_logins = 0, failed_window_start = NULL, locked_until = NULL \
                     WHERE id = $2 AND (locked_until IS NULL OR locked_until <= $1)",
                )
                .bind(at)
                .bind(id)
                .execute(&mut *self.0)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn ensure_unlocked(&mut self, id: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query("UPDATE aidant SET locked_until = NULL WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn set_current_organisation(&mut self, id: uuid::Uuid, org: Option<uuid::Uuid>) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE aidant SET current_organisation_id = $1 WHERE id = $2").bind(org).bind(id).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn count_aidants(&mut self) -> Result<i64, $crate::store::StoreError> {
                Ok($db::query_scalar("SELECT COUNT(*) FROM aidant").fetch_one(&mut *self.0).await?)
            }

            async fn memberships(&mut self, aidant: uuid::Uuid) -> Result<Vec<$crate::store::MembershipRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT m.aidant_id, m.organisation_id, o.name AS organisation_name, m.role, m.active, m.pending \
                     FROM membership m JOIN organisation o ON o.id = m.organisation_id \
                     WHERE m.aidant_id = $1 ORDER BY o.name",
                )
                .bind(aidant)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn upsert_membership(
                &mut self,
                aidant: uuid::Uuid,
                org: uuid::Uuid,
                role: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO membership (aidant_id, organisation_id, role, active, created_at) VALUES ($1, $2, $3, TRUE, $4) \
                     ON CONFLICT (aidant_id, organisation_id) DO UPDATE SET role = excluded.role, active = TRUE, pending = FALSE",
                )
                .bind(aidant)
                .bind(org)
                .bind(role)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn add_pending_membership(
                &mut self,
                aidant: uuid::Uuid,
                org: uuid::Uuid,
                role: &str,
                invited_name: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO membership (aidant_id, organisation_id, role, active, pending, invited_name, created_at) \
                     VALUES ($1, $2, $3, FALSE, TRUE, $4, $5) \
                     ON CONFLICT (aidant_id, organisation_id) DO UPDATE SET role = excluded.role, \
                     invited_name = excluded.invited_name WHERE membership.pending",
                )
                .bind(aidant)
                .bind(org)
                .bind(role)
                .bind(invited_name)
                .bind(at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn join_membership(&mut self, aidant: uuid::Uuid, org: uuid::Uuid) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("UPDATE membership SET active = TRUE, pending = FALSE WHERE aidant_id = $1 AND organisation_id = $2")
                    .bind(aidant)
                    .bind(org)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn set_membership_active(&mut self, aidant: uuid::Uuid, org: uuid::Uuid, active: bool) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("UPDATE membership SET active = $1 WHERE aidant_id = $2 AND organisation_id = $3")
                    .bind(active)
                    .bind(aidant)
                    .bind(org)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn list_members(&mut self, org: uuid::Uuid) -> Result<Vec<$crate::store::MemberListRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT a.id AS aidant_id, a.email, \
                     CASE WHEN m.pending THEN COALESCE(m.invited_name, a.email) ELSE a.display_name END AS display_name, \
                     m.role, m.active AS membership_active, \
                     CASE WHEN m.pending THEN FALSE ELSE a.active END AS account_active, \
                     CASE WHEN m.pending THEN NULL ELSE a.last_login_at END AS last_login_at \
                     FROM membership m JOIN aidant a ON a.id = m.aidant_id WHERE m.organisation_id = $1 \
                     ORDER BY 3, a.id",
                )
                .bind(org)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn insert_totp_factor(&mut self, f: &$crate::store::TotpFactorRow) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO totp_factor (id, aidant_id, organisation_id, kind, serial, seed_sealed, key_version, step_secs, \
                     last_used_step, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(f.id)
                .bind(f.aidant_id)
                .bind(f.organisation_id)
                .bind(&f.kind)
                .bind(&f.serial)
                .bind(&f.seed_sealed)
                .bind(f.key_version)
                .bind(f.step_secs)
                .bind(f.last_used_step)
                .bind(&f.status)
                .bind(f.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn totp_factors(&mut self, aidant: uuid::Uuid) -> Result<Vec<$crate::store::TotpFactorRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM totp_factor WHERE aidant_id = $1 ORDER BY created_at")
                    .bind(aidant)
                    .fetch_all(&mut *self.0)
                    .await?)
            }

            async fn use_totp_step(&mut self, factor: uuid::Uuid, step: i64) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE totp_factor SET last_used_step = $1 WHERE id = $2 AND (last_used_step IS NULL OR last_used_step < $1)",
                )
                .bind(step)
                .bind(factor)
                .execute(&mut *self.0)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn set_totp_status(&mut self, factor: uuid::Uuid, status: &str) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE totp_factor SET status = $1 WHERE id = $2").bind(status).bind(factor).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn retire_totp_factors(&mut self, aidant: uuid::Uuid) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("UPDATE totp_factor SET status = 'retired' WHERE aidant_id = $1 AND status IN ('active', 'pending')")
                    .bind(aidant)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn find_card(&mut self, serial: &str) -> Result<Option<$crate::store::TotpFactorRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM totp_factor WHERE serial = $1").bind(serial).fetch_optional(&mut *self.0).await?)
            }

            async fn bind_card(&mut self, factor: uuid::Uuid, aidant: uuid::Uuid, step: i64) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query(
                    "UPDATE totp_factor SET aidant_id = $1, status = 'active', last_used_step = $2 WHERE id = $3 AND status = 'unbound'",
                )
                .bind(aidant)
                .bind(step)
                .bind(factor)
                .execute(&mut *self.0)
                .await?
                .rows_affected())
            }

            async fn insert_session(&mut self, s: &$crate::store::SessionRow) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO session (id_hash, aidant_id, created_at, last_seen_at, fresh_factor_at, step_up_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id_hash)
                .bind(s.aidant_id)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.fresh_factor_at)
                .bind(s.step_up_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_session(&mut self, id_hash: &[u8]) -> Result<Option<$crate::store::SessionRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM session WHERE id_hash = $1").bind(id_hash).fetch_optional(&mut *self.0).await?)
            }

            async fn resolve_session(&mut self, id_hash: &[u8]) -> Result<Vec<$crate::store::SessionPrincipalRow>, $crate::store::StoreError> {
                Ok($db::query_as(
                    "SELECT s.created_at, s.last_seen_at, s.fresh_factor_at, s.step_up_at, a.id AS aidant_id, a.email, \
                     a.display_name, a.active AS account_active, a.is_admin, a.is_dpo, a.current_organisation_id, \
                     m.organisation_id, o.name AS organisation_name, m.role \
                     FROM session s JOIN aidant a ON a.id = s.aidant_id \
                     LEFT JOIN membership m ON m.aidant_id = a.id AND m.active \
                     LEFT JOIN organisation o ON o.id = m.organisation_id \
                     WHERE s.id_hash = $1 ORDER BY o.name, m.organisation_id",
                )
                .bind(id_hash)
                .fetch_all(&mut *self.0)
                .await?)
            }

            async fn touch_session(&mut self, id_hash: &[u8], at: chrono::DateTime<chrono::Utc>) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE session SET last_seen_at = $1 WHERE id_hash = $2").bind(at).bind(id_hash).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn set_session_step_up(&mut self, id_hash: &[u8], at: chrono::DateTime<chrono::Utc>) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE session SET step_up_at = $1, fresh_factor_at = $1, last_seen_at = $1 WHERE id_hash = $2")
                    .bind(at)
                    .bind(id_hash)
                    .execute(&mut *self.0)
                    .await?;
                Ok(())
            }

            async fn delete_session(&mut self, id_hash: &[u8]) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("DELETE FROM session WHERE id_hash = $1").bind(id_hash).execute(&mut *self.0).await?.rows_affected())
            }

            async fn delete_sessions_of(&mut self, aidant: uuid::Uuid, keep: Option<&[u8]>) -> Result<u64, $crate::store::StoreError> {
                let keep = keep.map(<[u8]>::to_vec).unwrap_or_default();
                Ok($db::query("DELETE FROM session WHERE aidant_id = $1 AND id_hash <> $2")
                    .bind(aidant)
                    .bind(keep)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }

            async fn sessions_seen_before(&mut self, before: chrono::DateTime<chrono::Utc>, delete: bool) -> Result<i64, $crate::store::StoreError> {
                let n: i64 = $db::query_scalar("SELECT COUNT(*) FROM session WHERE last_seen_at < $1")
                    .bind(before)
                    .fetch_one(&mut *self.0)
                    .await?;
                if delete && n > 0 {
                    $db::query("DELETE FROM session WHERE last_seen_at < $1").bind(before).execute(&mut *self.0).await?;
                }
                Ok(n)
            }

            async fn insert_invitation(&mut self, i: &$crate::store::InvitationRow) -> Result<(), $crate::store::StoreError> {
                $db::query(
                    "INSERT INTO invitation (token_hash, purpose, aidant_id, organisation_id, expires_at, used_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&i.token_hash)
                .bind(&i.purpose)
                .bind(i.aidant_id)
                .bind(i.organisation_id)
                .bind(i.expires_at)
                .bind(i.used_at)
                .bind(i.created_at)
                .execute(&mut *self.0)
                .await?;
                Ok(())
            }

            async fn get_invitation(&mut self, token_hash: &[u8]) -> Result<Option<$crate::store::InvitationRow>, $crate::store::StoreError> {
                Ok($db::query_as("SELECT * FROM invitation WHERE token_hash = $1").bind(token_hash).fetch_optional(&mut *self.0).await?)
            }

            async fn use_invitation(&mut self, token_hash: &[u8], at: chrono::DateTime<chrono::Utc>) -> Result<bool, $crate::store::StoreError> {
                Ok($db::query("UPDATE invitation SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                    .bind(at)
                    .bind(token_hash)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn attach_invitation(&mut self, token_hash: &[u8], aidant: uuid::Uuid) -> Result<(), $crate::store::StoreError> {
                $db::query("UPDATE invitation SET aidant_id = $1 WHERE token_hash = $2").bind(aidant).bind(token_hash).execute(&mut *self.0).await?;
                Ok(())
            }

            async fn void_invitations(&mut self, aidant: Option<uuid::Uuid>, at: chrono::DateTime<chrono::Utc>) -> Result<u64, $crate::store::StoreError> {
                let q = match aidant {
                    Some(id) => $db::query(
                        "UPDATE invitation SET used_at = $1 WHERE aidant_id = $2 AND used_at IS NULL AND purpose IN ('invite', 'totp_reset')",
                    )
                    .bind(at)
                    .bind(id),
                    None => $db::query("UPDATE invitation SET used_at = $1 WHERE purpose = 'first_admin' AND used_at IS NULL").bind(at),
                };
                Ok(q.execute(&mut *self.0).await?.rows_affected())
            }

            async fn void_invitations_in(
                &mut self,
                aidant: uuid::Uuid,
                org: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok($db::query("UPDATE invitation SET used_at = $1 WHERE aidant_id = $2 AND organisation_id = $3 AND used_at IS NULL")
                    .bind(at)
                    .bind(aidant)
                    .bind(org)
                    .execute(&mut *self.0)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(crate) use impl_account_repo;
