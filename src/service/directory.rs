//! The list of organisations, for administrators.

use super::Services;
use super::organisations::Organisation;
use super::session::Session;
use crate::authz::{Action, Facts, Resource};
use crate::error::{ApiResult, AppError};

/// Organisations by name (at most `limit`), each one authorized for reading; only an
/// administrator reads organisations they are not a member of, so others get `403`.
pub async fn list_organisations(
    state: &Services,
    session: &Session,
    limit: i64,
) -> ApiResult<Vec<Organisation>> {
    if !session.is_admin {
        return Err(AppError::Forbidden);
    }
    let rows = {
        let mut tx = state.store.begin_read().await?;
        tx.list_organisations(limit).await?
    };
    let principal = session.principal();
    rows.into_iter()
        .map(|r| {
            state.authz.authorize(
                &principal,
                Action::OrganisationRead,
                &Resource::Organisation(r.id),
                &Facts::none(),
            )?;
            Organisation::try_from(r)
        })
        .collect()
}
