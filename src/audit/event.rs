//! Typed audit events. `details` is a closed enum: only enumerated, typed fields, never free
//! text or personal data. Usagers appear by pseudonymous id only.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::canonical::{CanonicalError, to_canonical};

/// Format version of the canonical event.
pub const EVENT_VERSION: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Aidant,
    Usager,
    System,
    Client,
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn aidant(id: Uuid) -> Self {
        Self {
            kind: ActorKind::Aidant,
            id: Some(id.to_string()),
        }
    }
    pub fn usager(id: Uuid) -> Self {
        Self {
            kind: ActorKind::Usager,
            id: Some(id.to_string()),
        }
    }
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
        }
    }
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
        }
    }
    pub fn client(client_id: &str) -> Self {
        Self {
            kind: ActorKind::Client,
            id: Some(client_id.to_owned()),
        }
    }
}

/// The action and its typed details (serialised as `"action"` + `"details"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "details")]
pub enum Details {
    #[serde(rename = "organisation.created")]
    OrganisationCreated {
        allowed_demarches: Vec<String>,
        has_siret: bool,
    },
    #[serde(rename = "organisation.updated")]
    OrganisationUpdated {
        allowed_demarches: Vec<String>,
        address_changed: bool,
    },
    #[serde(rename = "aidant.login")]
    AidantLogin { factor: String, ip_mac: String },
    #[serde(rename = "aidant.login_failed")]
    AidantLoginFailed { locked: bool, ip_mac: String },
    #[serde(rename = "aidant.logout")]
    AidantLogout {},
    #[serde(rename = "aidant.step_up")]
    AidantStepUp { factor: String },
    #[serde(rename = "aidant.invited")]
    AidantInvited { role: String, platform: bool },
    #[serde(rename = "aidant.invitation_accepted")]
    AidantInvitationAccepted { purpose: String, password_set: bool },
    #[serde(rename = "aidant.enrolled")]
    AidantEnrolled { factor: String },
    #[serde(rename = "aidant.deactivated")]
    AidantDeactivated {
        account_deactivated: bool,
        sessions_ended: i64,
    },
    #[serde(rename = "aidant.reactivated")]
    AidantReactivated {},
    #[serde(rename = "aidant.totp_reset")]
    AidantTotpReset { factors_retired: i64 },
    #[serde(rename = "aidant.totp_card_bound")]
    AidantTotpCardBound {},
    #[serde(rename = "aidant.totp_cards_imported")]
    AidantTotpCardsImported { count: i64 },
    #[serde(rename = "aidant.password_changed")]
    AidantPasswordChanged { sessions_ended: i64 },
    #[serde(rename = "aidant.organisation_switched")]
    AidantOrganisationSwitched {},
    /// An existing account accepted a join invitation: its pending membership is active.
    #[serde(rename = "aidant.joined")]
    AidantJoined { role: String },
    #[serde(rename = "usager.created")]
    UsagerCreated {
        identity_check: String,
        has_phone: bool,
        has_email: bool,
    },
    #[serde(rename = "usager.read")]
    UsagerRead {},
    #[serde(rename = "usager.erased")]
    UsagerErased { mandates: i64 },
    #[serde(rename = "usager.searched")]
    UsagerSearched { results: i64 },
    #[serde(rename = "mandate.created")]
    MandateCreated {
        demarches: Vec<String>,
        duration: String,
        consent_channel: String,
        terms_hash: String,
    },
    #[serde(rename = "mandate.consent_sent")]
    MandateConsentSent {
        channel: String,
        challenge: String,
        resend: bool,
    },
    #[serde(rename = "mandate.consent_failed")]
    MandateConsentFailed {
        challenge: String,
        attempts_left: i64,
        via: String,
    },
    #[serde(rename = "mandate.activated")]
    MandateActivated {
        demarches: Vec<String>,
        terms_hash: String,
        expires_at: String,
        via: String,
    },
    #[serde(rename = "mandate.refused")]
    MandateRefused { reason: String, terms_hash: String },
    #[serde(rename = "mandate.replaced")]
    MandateReplaced { demarches: Vec<String>, by: String },
    #[serde(rename = "mandate.revoked")]
    MandateRevoked { reason: String },
    #[serde(rename = "mandate.demarche_revoked")]
    MandateDemarcheRevoked {
        demarches: Vec<String>,
        reason: String,
    },
    #[serde(rename = "mandate.expired")]
    MandateExpired {},
    #[serde(rename = "mandate.renewed")]
    MandateRenewed { new_mandate: String },
    /// A printable document of a mandate was produced (`attestation` or `revocation`).
    #[serde(rename = "mandate.attestation_printed")]
    MandateAttestationPrinted { document: String },
    #[serde(rename = "sms.reply_ignored")]
    SmsReplyIgnored { matched: bool },
    /// An outgoing SMS given up after its last delivery attempt (never the number or text).
    #[serde(rename = "sms.failed")]
    SmsFailed { challenge: String, attempts: i64 },
    // vault: the entry is the event's `target`; never a label, login, secret or seed.
    #[serde(rename = "vault.created")]
    VaultCreated {
        linked: bool,
        demarche: Option<String>,
        has_totp: bool,
    },
    /// A secret was revealed to an aidant, for a reason from the list of `details.md`.
    #[serde(rename = "vault.revealed")]
    VaultRevealed { reason: String, totp_code: bool },
    #[serde(rename = "vault.rotated")]
    VaultRotated { version: i64 },
    /// The entry's data key was destroyed (crypto-shredding).
    #[serde(rename = "vault.deleted")]
    VaultDeleted {},
    /// The access code was given to the entry's usager (`print` or `sms`).
    #[serde(rename = "vault.handed_over")]
    VaultHandedOver { channel: String },
    /// One batch of `mandat vault rewrap`: data keys re-wrapped under `kek_version`.
    #[serde(rename = "vault.rewrapped")]
    VaultRewrapped { kek_version: i64, count: i64 },
    #[serde(rename = "audit.exported")]
    AuditExported { format: String, events: i64 },
    #[serde(rename = "audit.verified")]
    AuditVerified { ok: bool, entries: i64 },
    /// One run of the retention job: per class of data, how many rows went (and for audit
    /// payloads the index range), never content.
    #[serde(rename = "retention.applied")]
    RetentionApplied { classes: Vec<RetentionCount> },
    /// A relying party registered (`client` actor ids are client ids).
    #[serde(rename = "oidc.client_created")]
    OidcClientCreated {
        client_id: String,
        auth_method: String,
        allowed_demarches: Vec<String>,
    },
    /// An authorization code issued to a client for an aidant acting under a mandate.
    #[serde(rename = "oidc.authorized")]
    OidcAuthorized {
        client_id: String,
        demarche: String,
        /// Whether the choice screens were skipped (`login_hint` and a démarche scope).
        hinted: bool,
    },
    /// A code exchanged for tokens.
    #[serde(rename = "oidc.token_issued")]
    OidcTokenIssued {
        client_id: String,
        demarche: String,
        auth_method: String,
    },
    /// One use of an access token at the userinfo endpoint.
    #[serde(rename = "oidc.userinfo")]
    OidcUserinfo { client_id: String, demarche: String },
    /// A code presented again: the tokens it had issued are revoked.
    #[serde(rename = "oidc.code_replayed")]
    OidcCodeReplayed {
        client_id: String,
        tokens_revoked: i64,
    },
    /// An access token revoked by its client (RFC 7009).
    #[serde(rename = "oidc.token_revoked")]
    OidcTokenRevoked { client_id: String },
    /// A new version of a key; older versions stay for reading and verification.
    #[serde(rename = "keys.rotated")]
    KeysRotated {
        purpose: String,
        version: i64,
        /// The signed-note key id, for the audit-signing key.
        key_id: Option<String>,
    },
}

/// What a retention run removed from one class of data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionCount {
    pub class: String,
    pub count: i64,
    /// Smallest and largest audit index whose payload was pruned (audit payload classes).
    pub first_index: Option<i64>,
    pub last_index: Option<i64>,
}

/// An event before the sequencer gives it its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEvent {
    pub ts: DateTime<Utc>,
    pub actor: Actor,
    pub organisation: Option<Uuid>,
    pub usager: Option<Uuid>,
    pub mandate: Option<Uuid>,
    pub target: Option<Uuid>,
    pub request_id: Option<String>,
    pub details: Details,
}

impl NewEvent {
    pub fn new(ts: DateTime<Utc>, actor: Actor, details: Details) -> Self {
        Self {
            ts,
            actor,
            organisation: None,
            usager: None,
            mandate: None,
            target: None,
            request_id: None,
            details,
        }
    }
    pub fn organisation(mut self, id: Uuid) -> Self {
        self.organisation = Some(id);
        self
    }
    pub fn usager(mut self, id: Uuid) -> Self {
        self.usager = Some(id);
        self
    }
    pub fn mandate(mut self, id: Uuid) -> Self {
        self.mandate = Some(id);
        self
    }
    pub fn target(mut self, id: Uuid) -> Self {
        self.target = Some(id);
        self
    }
    pub fn request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    /// The event as a JSON object with every top-level key except `index`.
    pub fn to_value(&self) -> Value {
        let mut details = serde_json::to_value(&self.details).unwrap_or(Value::Null);
        let (action, details) = match details.as_object_mut() {
            Some(m) => (
                m.remove("action").unwrap_or(Value::Null),
                m.remove("details").unwrap_or(Value::Null),
            ),
            None => (Value::Null, Value::Null),
        };
        serde_json::json!({
            "v": EVENT_VERSION,
            "ts": format_ts(self.ts),
            "action": action,
            "actor": self.actor,
            "organisation": self.organisation.map(|u| u.to_string()),
            "usager": self.usager.map(|u| u.to_string()),
            "mandate": self.mandate.map(|u| u.to_string()),
            "target": self.target.map(|u| u.to_string()),
            "request_id": self.request_id,
            "details": details,
        })
    }
}

/// `ts` with exactly six fractional digits and `Z`.
pub fn format_ts(ts: DateTime<Utc>) -> String {
    crate::domain::time::format(ts)
}

/// The canonical text of an event once its index is known.
pub fn canonical_with_index(
    mut pending: serde_json::Map<String, Value>,
    index: i64,
) -> Result<String, CanonicalError> {
    pending.insert("index".into(), Value::from(index));
    to_canonical(&Value::Object(pending))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn canonical_event_shape() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 2).unwrap()
            + chrono::Duration::microseconds(123_456);
        let org = Uuid::nil();
        let ev = NewEvent::new(
            ts,
            Actor::system(),
            Details::OrganisationCreated {
                allowed_demarches: vec!["social".into()],
                has_siret: false,
            },
        )
        .organisation(org);
        let Value::Object(map) = ev.to_value() else {
            panic!()
        };
        let text = canonical_with_index(map, 0).unwrap();
        assert_eq!(
            text,
            r#"{"action":"organisation.created","actor":{"id":null,"kind":"system"},"details":{"allowed_demarches":["social"],"has_siret":false},"index":0,"mandate":null,"organisation":"00000000-0000-0000-0000-000000000000","request_id":null,"target":null,"ts":"2026-11-23T10:15:02.123456Z","usager":null,"v":1}"#
        );
    }

    #[test]
    fn empty_details_are_an_object() {
        let ev = NewEvent::new(Utc::now(), Actor::anonymous(), Details::AidantLogout {});
        assert_eq!(ev.to_value()["details"], serde_json::json!({}));
        assert_eq!(ev.to_value()["action"], "aidant.logout");
    }
}
