//! Use cases. Each public function is one transaction: it reads, decides, writes the change
//! and its audit events, and commits — or changes nothing.

pub mod access_report;
pub mod accounts;
pub mod audit;
pub mod cards;
pub mod consent;
pub mod directory;
pub mod documents;
pub mod factors;
pub mod idempotency;
pub mod keys;
pub mod lifecycle;
pub mod mandates;
pub mod members;
pub mod oidc;
pub mod organisations;
pub(crate) mod pii;
pub mod retention;
pub mod session;
pub mod sms_replies;
pub mod usagers;
pub mod users;
pub mod vault;
pub mod verification;

use std::sync::Arc;

use uuid::Uuid;

use crate::audit::Actor;
use crate::audit::checkpointer::Checkpointer;
use crate::audit::sequencer::Sequencer;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keyring;
use crate::store::{Store, StoreError, Tx};

/// What every use case and background job works with, owned by the service layer: the
/// store, the keys, the clock, the audit sequencer and checkpoint writer, the policies, the
/// password hasher, the SMS delivery and the configuration. Built once at start-up (`app`);
/// the HTTP layer adds its rate limiters on top and reaches this by `FromRef`/`Deref`.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    pub sequencer: Sequencer,
    pub authz: Arc<crate::authz::Authz>,
    /// The audit checkpoint writer and the log's integrity state.
    pub checkpoints: Checkpointer,
    pub hasher: crate::crypto::password::PasswordHasher,
    /// The SMS sender and its delivery worker's wake-up (messages leave after the commit).
    pub sms: crate::sms::Delivery,
    /// The retention periods, read once from `MANDAT_RETENTION_FILE`.
    pub retention: Arc<retention::RetentionPolicy>,
}

impl Services {
    /// Commits a use case's transaction, then wakes the audit sequencer for the events it
    /// appended (they are sequenced only once committed).
    pub async fn commit(&self, tx: Box<dyn Tx>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.sequencer.notify();
        Ok(())
    }
}

/// An aidant acting for one organisation: who (the principal the policies see), for which
/// organisation, in which request. Organisation-scoped use cases take it and authorize
/// themselves with `s.authz` as their first step.
#[derive(Debug, Clone)]
pub struct Caller {
    pub aidant_id: Uuid,
    pub organisation_id: Uuid,
    pub principal: crate::authz::Principal,
    pub request_id: Option<String>,
}

impl Caller {
    /// The session acting for `organisation` (a membership of the session, checked by
    /// [`session::Session::acting_organisation`]).
    pub fn new(session: &session::Session, organisation: Uuid, request_id: Option<String>) -> Self {
        Self {
            aidant_id: session.aidant_id,
            organisation_id: organisation,
            principal: session.principal(),
            request_id,
        }
    }

    /// A plain member (aidant role) of `organisation` who has just given a second factor:
    /// for the command line, benchmarks and fixtures, which act without an HTTP session.
    pub fn member(aidant: Uuid, organisation: Uuid) -> Self {
        Self {
            aidant_id: aidant,
            organisation_id: organisation,
            principal: crate::authz::Principal {
                id: aidant,
                active: true,
                is_admin: false,
                is_dpo: false,
                member_of: vec![organisation],
                referent_of: vec![],
                fresh_factor_age: 0,
                step_up_age: None,
            },
            request_id: None,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::aidant(self.aidant_id)
    }

    /// The policy decision for `action` on `resource` (a use case's first step).
    pub fn authorize(
        &self,
        s: &Services,
        action: crate::authz::Action,
        resource: &crate::authz::Resource,
    ) -> crate::error::ApiResult<()> {
        s.authz.authorize(
            &self.principal,
            action,
            resource,
            &crate::authz::Facts::none(),
        )?;
        Ok(())
    }

    /// The policy decision for `action` on the caller's organisation.
    pub fn authorize_org(
        &self,
        s: &Services,
        action: crate::authz::Action,
    ) -> crate::error::ApiResult<()> {
        self.authorize(
            s,
            action,
            &crate::authz::Resource::Organisation(self.organisation_id),
        )
    }
}

/// Who is asking, and the request it belongs to (for audit events), for use cases that are
/// not scoped to one organisation (platform administration, the audit trail, the DPO).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    /// The principal the policies see; `None` for the platform's own work (the command line
    /// run by the operator, background jobs), which no policy restricts. Never `None` for a
    /// request: the HTTP layer builds its contexts with [`Ctx::of`].
    pub principal: Option<crate::authz::Principal>,
    pub request_id: Option<String>,
}

impl Ctx {
    pub fn system() -> Self {
        Self {
            actor: Actor::system(),
            principal: None,
            request_id: None,
        }
    }

    /// The account of a session.
    pub fn of(session: &session::Session, request_id: Option<String>) -> Self {
        Self {
            actor: Actor::aidant(session.aidant_id),
            principal: Some(session.principal()),
            request_id,
        }
    }

    /// The policy decision for `action` on `resource` (a use case's first step); the
    /// platform's own work is not subject to the policies.
    pub fn authorize(
        &self,
        s: &Services,
        action: crate::authz::Action,
        resource: &crate::authz::Resource,
    ) -> crate::error::ApiResult<()> {
        if let Some(p) = &self.principal {
            s.authz
                .authorize(p, action, resource, &crate::authz::Facts::none())?;
        }
        Ok(())
    }
}
