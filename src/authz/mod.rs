//! Authorization: Cedar policies from `policies/`, loaded and validated at start-up, and one
//! decision function every handler calls. See `policies/README.md`.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use uuid::Uuid;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod mandates_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vault_tests;

const SCHEMA: &str = include_str!("../../policies/schema.cedarschema");
const POLICIES: &[(&str, &str)] = &[
    (
        "accounts.cedar",
        include_str!("../../policies/accounts.cedar"),
    ),
    ("audit.cedar", include_str!("../../policies/audit.cedar")),
    (
        "mandates.cedar",
        include_str!("../../policies/mandates.cedar"),
    ),
    ("vault.cedar", include_str!("../../policies/vault.cedar")),
];

/// Seconds used for "never" ages (no step-up yet).
const NEVER: i64 = 1 << 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    OidcClientCreate,
    KeysRotate,
    MemberInvite,
    MemberList,
    MemberDeactivate,
    MemberReactivate,
    MemberTotpReset,
    MemberBindCard,
    TotpCardsImport,
    InvitationJoin,
    AuditRead,
    AuditVerify,
    AuditExport,
    UsagerCreate,
    UsagerSearch,
    UsagerRead,
    UsagerErase,
    MandateCreate,
    MandateList,
    MandateRead,
    MandateConsent,
    MandateResend,
    MandateRevoke,
    MandateRenew,
    VaultCreate,
    VaultList,
    VaultReveal,
    VaultRotate,
    VaultDelete,
    VaultHandOver,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrganisationCreate => "organisation.create",
            Self::OrganisationRead => "organisation.read",
            Self::OrganisationUpdate => "organisation.update",
            Self::OidcClientCreate => "oidc.client_create",
            Self::KeysRotate => "keys.rotate",
            Self::MemberInvite => "member.invite",
            Self::MemberList => "member.list",
            Self::MemberDeactivate => "member.deactivate",
            Self::MemberReactivate => "member.reactivate",
            Self::MemberTotpReset => "member.totp_reset",
            Self::MemberBindCard => "member.bind_card",
            Self::TotpCardsImport => "totp_cards.import",
            Self::InvitationJoin => "invitation.join",
            Self::AuditRead => "audit.read",
            Self::AuditVerify => "audit.verify",
            Self::AuditExport => "audit.export",
            Self::UsagerCreate => "usager.create",
            Self::UsagerSearch => "usager.search",
            Self::UsagerRead => "usager.read",
            Self::UsagerErase => "usager.erase",
            Self::MandateCreate => "mandate.create",
            Self::MandateList => "mandate.list",
            Self::MandateRead => "mandate.read",
            Self::MandateConsent => "mandate.consent",
            Self::MandateResend => "mandate.resend",
            Self::MandateRevoke => "mandate.revoke",
            Self::MandateRenew => "mandate.renew",
            Self::VaultCreate => "vault.create",
            Self::VaultList => "vault.list",
            Self::VaultReveal => "vault.reveal",
            Self::VaultRotate => "vault.rotate",
            Self::VaultDelete => "vault.delete",
            Self::VaultHandOver => "vault.hand_over",
        }
    }
}

/// The account asking, as the policies see it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: Uuid,
    pub active: bool,
    pub is_admin: bool,
    pub is_dpo: bool,
    pub member_of: Vec<Uuid>,
    pub referent_of: Vec<Uuid>,
    /// Seconds since the last second factor (login or step-up).
    pub fresh_factor_age: i64,
    /// Seconds since the last step-up; `None` when there was none in this session.
    pub step_up_age: Option<i64>,
}

/// What is acted upon.
#[derive(Debug, Clone)]
pub enum Resource {
    Platform,
    Organisation(Uuid),
    Usager {
        id: Uuid,
        linked: Vec<Uuid>,
        /// An archived identity is readable by the DPO only (product rule 8).
        archived: bool,
    },
    Mandate {
        id: Uuid,
        organisation: Uuid,
    },
    AuditTrail {
        organisation: Option<Uuid>,
    },
    /// A vault entry: its organisation, whether it is linked to a usager, and whether an
    /// active mandate of that organisation covers the usager for the entry's démarche now.
    VaultEntry {
        id: Uuid,
        organisation: Uuid,
        linked: bool,
        mandate_active: bool,
    },
}

/// Extra facts of one request (e.g. the role being granted).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub strings: Vec<(&'static str, String)>,
}

impl Facts {
    pub fn none() -> Self {
        Self::default()
    }
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.strings.push((key, value.into()));
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Forbidden,
    /// Allowed with a fresher second factor.
    StepUpRequired,
}

impl From<Denial> for crate::error::AppError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden => Self::Forbidden,
            Denial::StepUpRequired => Self::StepUpRequired,
        }
    }
}

pub struct Authz {
    policies: PolicySet,
    schema: Schema,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authz")
    }
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(ty).unwrap_or_else(|_| unreachable!("static type names parse")),
        EntityId::new(id),
    )
}

fn org_set(ids: &[Uuid]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        ids.iter()
            .map(|o| RestrictedExpression::new_entity_uid(uid("Organisation", &o.to_string()))),
    )
}

impl Authz {
    /// Loads and strictly validates the embedded schema and policies.
    pub fn load() -> anyhow::Result<Self> {
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
            .map_err(|e| anyhow::anyhow!("policies/schema.cedarschema: {e}"))?;
        let mut text = String::new();
        for (name, body) in POLICIES {
            text.push_str(&format!("// {name}\n{body}\n"));
        }
        let policies = PolicySet::from_str(&text).map_err(|e| anyhow::anyhow!("policies: {e}"))?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result
                .validation_errors()
                .map(ToString::to_string)
                .collect();
            anyhow::bail!("policies do not validate: {}", errors.join("; "));
        }
        Ok(Self {
            policies,
            schema,
            authorizer: Authorizer::new(),
        })
    }

    /// The one decision function.
    pub fn authorize(
        &self,
        who: &Principal,
        action: Action,
        what: &Resource,
        facts: &Facts,
    ) -> Result<(), Denial> {
        match self.decide(who, action, what, facts) {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Denied: would a fresh second factor change the answer?
                let fresh = Principal {
                    fresh_factor_age: 0,
                    step_up_age: Some(0),
                    ..who.clone()
                };
                if matches!(self.decide(&fresh, action, what, facts), Ok(true)) {
                    Err(Denial::StepUpRequired)
                } else {
                    Err(Denial::Forbidden)
                }
            }
            Err(e) => {
                tracing::error!(error = %e, action = action.as_str(), "authorization request could not be evaluated");
                Err(Denial::Forbidden)
            }
        }
    }

    fn decide(
        &self,
        who: &Principal,
        action: Action,
        what: &Resource,
        facts: &Facts,
    ) -> anyhow::Result<bool> {
        let principal_uid = uid("Aidant", &who.id.to_string());
        let attrs: HashMap<String, RestrictedExpression> = HashMap::from([
            ("active".into(), RestrictedExpression::new_bool(who.active)),
            (
                "is_admin".into(),
                RestrictedExpression::new_bool(who.is_admin),
            ),
            ("is_dpo".into(), RestrictedExpression::new_bool(who.is_dpo)),
            ("member_of".into(), org_set(&who.member_of)),
            ("referent_of".into(), org_set(&who.referent_of)),
            (
                "fresh_factor_age".into(),
                RestrictedExpression::new_long(who.fresh_factor_age),
            ),
            (
                "step_up_age".into(),
                RestrictedExpression::new_long(who.step_up_age.unwrap_or(NEVER)),
            ),
        ]);
        let mut entities = vec![Entity::new(principal_uid.clone(), attrs, HashSet::new())?];
        let mut orgs: HashSet<Uuid> = who
            .member_of
            .iter()
            .chain(&who.referent_of)
            .copied()
            .collect();
        let resource_uid = match what {
            Resource::Platform => {
                let u = uid("Platform", "platform");
                entities.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
                u
            }
            Resource::Organisation(id) => {
                orgs.insert(*id);
                uid("Organisation", &id.to_string())
            }
            Resource::Usager {
                id,
                linked,
                archived,
            } => {
                orgs.extend(linked.iter().copied());
                let u = uid("Usager", &id.to_string());
                entities.push(Entity::new(
                    u.clone(),
                    HashMap::from([
                        ("linked".into(), org_set(linked)),
                        ("archived".into(), RestrictedExpression::new_bool(*archived)),
                    ]),
                    HashSet::new(),
                )?);
                u
            }
            Resource::Mandate { id, organisation } => {
                orgs.insert(*organisation);
                let u = uid("Mandate", &id.to_string());
                let org = RestrictedExpression::new_entity_uid(uid(
                    "Organisation",
                    &organisation.to_string(),
                ));
                entities.push(Entity::new(
                    u.clone(),
                    HashMap::from([("organisation".into(), org)]),
                    HashSet::new(),
                )?);
                u
            }
            Resource::AuditTrail { organisation } => {
                let scope = organisation.unwrap_or(Uuid::nil());
                orgs.insert(scope);
                let u = uid("AuditTrail", &scope.to_string());
                let attrs = HashMap::from([
                    (
                        "scoped".into(),
                        RestrictedExpression::new_bool(organisation.is_some()),
                    ),
                    (
                        "organisation".into(),
                        RestrictedExpression::new_entity_uid(uid(
                            "Organisation",
                            &scope.to_string(),
                        )),
                    ),
                ]);
                entities.push(Entity::new(u.clone(), attrs, HashSet::new())?);
                u
            }
            Resource::VaultEntry {
                id,
                organisation,
                linked,
                mandate_active,
            } => {
                orgs.insert(*organisation);
                let u = uid("VaultEntry", &id.to_string());
                let attrs = HashMap::from([
                    (
                        "organisation".into(),
                        RestrictedExpression::new_entity_uid(uid(
                            "Organisation",
                            &organisation.to_string(),
                        )),
                    ),
                    ("linked".into(), RestrictedExpression::new_bool(*linked)),
                    (
                        "mandate_active".into(),
                        RestrictedExpression::new_bool(*mandate_active),
                    ),
                ]);
                entities.push(Entity::new(u.clone(), attrs, HashSet::new())?);
                u
            }
        };
        for o in orgs {
            entities.push(Entity::new_no_attrs(
                uid("Organisation", &o.to_string()),
                HashSet::new(),
            ));
        }
        let entities = Entities::from_entities(entities, Some(&self.schema))?;
        let context = Context::from_pairs(
            facts
                .strings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), RestrictedExpression::new_string(v.clone()))),
        )?;
        let request = Request::new(
            principal_uid,
            uid("Action", action.as_str()),
            resource_uid,
            context,
            Some(&self.schema),
        )?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            anyhow::bail!("policy evaluation errors: {}", errors.join("; "));
        }
        Ok(response.decision() == Decision::Allow)
    }
}
