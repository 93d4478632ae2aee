//! Organisations: creation (CLI and administrators) and reads.

use serde::Serialize;
use uuid::Uuid;

use super::Ctx;
use crate::app::AppState;
use crate::audit::{self, Details, NewEvent};
use crate::domain::organisation::NewOrganisation;
use crate::error::{ApiResult, AppError};
use crate::store::OrganisationRow;

/// The API shape of an organisation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Organisation {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub siret: Option<String>,
    pub allowed_demarches: Vec<String>,
    pub active: bool,
    pub created_at: String,
}

impl TryFrom<OrganisationRow> for Organisation {
    type Error = AppError;
    fn try_from(r: OrganisationRow) -> Result<Self, AppError> {
        let allowed_demarches: Vec<String> =
            serde_json::from_str(&r.allowed_demarches).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("organisation.allowed_demarches: {e}"))
            })?;
        Ok(Self {
            id: r.id,
            name: r.name,
            address: r.address,
            siret: r.siret,
            allowed_demarches,
            active: r.active,
            created_at: crate::http::format_time(r.created_at),
        })
    }
}

pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    input: NewOrganisation,
) -> ApiResult<Organisation> {
    let now = state.clock.now();
    let ids: Vec<String> = input
        .allowed_demarches
        .iter()
        .map(|d| d.as_str().to_owned())
        .collect();
    let row = OrganisationRow {
        id: Uuid::now_v7(),
        name: input.name,
        address: input.address,
        siret: input.siret.as_ref().map(|s| s.as_str().to_owned()),
        allowed_demarches: serde_json::to_string(&ids).map_err(anyhow::Error::from)?,
        active: true,
        created_at: now,
    };
    let event = NewEvent::new(
        now,
        ctx.actor.clone(),
        Details::OrganisationCreated {
            allowed_demarches: ids,
            has_siret: row.siret.is_some(),
        },
    )
    .organisation(row.id)
    .request_id(ctx.request_id.clone());
    let mut tx = state.store.begin().await?;
    tx.insert_organisation(&row).await?;
    audit::append(tx.as_mut(), &event).await?;
    tx.commit().await?;
    state.sequencer.notify();
    row.try_into()
}

pub async fn get(state: &AppState, id: Uuid) -> ApiResult<Organisation> {
    let mut tx = state.store.begin().await?;
    let row = tx.get_organisation(id).await?.ok_or(AppError::NotFound)?;
    drop(tx);
    row.try_into()
}
