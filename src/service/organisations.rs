//! Organisations: creation (CLI and administrators) and reads.

use serde::Serialize;
use uuid::Uuid;

use super::Ctx;
use crate::audit::{self, Details, NewEvent};
use crate::domain::organisation::NewOrganisation;
use crate::error::{ApiResult, AppError};
use crate::service::Services;
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
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
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
            created_at: r.created_at,
        })
    }
}

pub async fn create(
    state: &Services,
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
    state.commit(tx).await?;
    row.try_into()
}

pub async fn get(state: &Services, id: Uuid) -> ApiResult<Organisation> {
    let mut tx = state.store.begin().await?;
    let row = tx.get_organisation(id).await?.ok_or(AppError::NotFound)?;
    drop(tx);
    row.try_into()
}

/// What an administrator typed to create an organisation (validated after authorization).
pub struct OrganisationInput<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub siret: Option<&'a str>,
    pub allowed_demarches: Option<&'a [String]>,
}

/// `POST /organisations` (administrators). Authorized first, then validated: a
/// non-administrator learns nothing from the body.
pub async fn create_as(
    state: &Services,
    session: &super::session::Session,
    input: OrganisationInput<'_>,
    request_id: Option<String>,
) -> ApiResult<Organisation> {
    use crate::authz::{Action, Facts, Resource};
    state.authz.authorize(
        &session.principal(),
        Action::OrganisationCreate,
        &Resource::Platform,
        &Facts::none(),
    )?;
    let input = NewOrganisation::parse(
        input.name,
        input.address,
        input.siret,
        input.allowed_demarches,
    )
    .map_err(AppError::Validation)?;
    let ctx = Ctx {
        actor: crate::audit::Actor::aidant(session.aidant_id),
        principal: Some(session.principal()),
        request_id,
    };
    create(state, &ctx, input).await
}

/// `GET /organisations/{id}`: members and administrators; others get 404.
pub async fn get_as(
    state: &Services,
    session: &super::session::Session,
    id: Uuid,
) -> ApiResult<Organisation> {
    use crate::authz::{Action, Facts, Resource};
    if !session.is_admin && !session.is_member_of(id) {
        return Err(AppError::NotFound);
    }
    state.authz.authorize(
        &session.principal(),
        Action::OrganisationRead,
        &Resource::Organisation(id),
        &Facts::none(),
    )?;
    get(state, id).await
}

/// `PATCH /organisations/{id}`: référents of the organisation and administrators.
pub async fn update_as(
    state: &Services,
    session: &super::session::Session,
    id: Uuid,
    address: Option<String>,
    demarches: Option<Vec<String>>,
    request_id: Option<String>,
) -> ApiResult<Organisation> {
    use crate::authz::{Action, Facts, Resource};
    use crate::domain::FieldError;
    if !session.is_admin && !session.is_member_of(id) {
        return Err(AppError::NotFound);
    }
    state.authz.authorize(
        &session.principal(),
        Action::OrganisationUpdate,
        &Resource::Organisation(id),
        &Facts::none(),
    )?;
    let mut errors = Vec::new();
    let address = match address
        .as_deref()
        .map(|a| crate::domain::text::clean_text(a, 300))
    {
        Some(Ok(a)) => Some(a),
        Some(Err(m)) => {
            errors.push(FieldError::new("address", m));
            None
        }
        None => None,
    };
    let demarches = match demarches.as_deref().map(crate::domain::demarche::parse_set) {
        Some(Some(d)) => Some(d.iter().map(|d| d.as_str().to_owned()).collect::<Vec<_>>()),
        Some(None) => {
            errors.push(FieldError::new(
                "allowed_demarches",
                "Indiquez au moins une démarche du catalogue.",
            ));
            None
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let mut tx = state.store.begin().await?;
    let row = tx.get_organisation(id).await?.ok_or(AppError::NotFound)?;
    let current: Organisation = row.clone().try_into()?;
    let new_address = address.unwrap_or_else(|| current.address.clone());
    let new_demarches = demarches.unwrap_or_else(|| current.allowed_demarches.clone());
    let allowed_json = serde_json::to_string(&new_demarches).map_err(anyhow::Error::from)?;
    tx.update_organisation(id, &new_address, &allowed_json)
        .await?;
    let ev = NewEvent::new(
        state.clock.now(),
        crate::audit::Actor::aidant(session.aidant_id),
        Details::OrganisationUpdated {
            allowed_demarches: new_demarches.clone(),
            address_changed: new_address != current.address,
        },
    )
    .organisation(id)
    .request_id(request_id);
    audit::append(tx.as_mut(), &ev).await?;
    state.commit(tx).await?;
    Ok(Organisation {
        address: new_address,
        allowed_demarches: new_demarches,
        ..current
    })
}
