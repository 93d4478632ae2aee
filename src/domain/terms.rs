//! The canonical terms of a mandate and their hash: what the usager accepts, provably.
//!
//! Terms = organisation (id, name, address, SIRET), usager (id, given and family names,
//! birth date), démarches (sorted ids), duration (name and days), consent channel, creating
//! aidant id, template version. `terms_hash` = hex SHA-256 of the RFC 8785 canonical JSON.
//! `expires_at` is not part of the terms (it is derived at activation).

use serde::Serialize;
use uuid::Uuid;

use super::mandate::{ConsentChannel, MandateDuration};
use crate::audit::canonical::{CanonicalError, to_canonical};

/// Version of the terms template; bump when the wording or the fields change.
pub const TEMPLATE_VERSION: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TermsOrganisation {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub siret: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TermsUsager {
    pub id: Uuid,
    pub given_name: String,
    pub family_name: String,
    pub birthdate: String,
}

impl std::fmt::Debug for TermsUsager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TermsUsager({}, [redacted])", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TermsDuration {
    pub name: String,
    pub days: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Terms {
    pub template_version: i64,
    pub organisation: TermsOrganisation,
    pub usager: TermsUsager,
    pub demarches: Vec<String>,
    pub duration: TermsDuration,
    pub consent_channel: String,
    pub created_by: Uuid,
}

impl Terms {
    pub fn new(
        organisation: TermsOrganisation,
        usager: TermsUsager,
        demarches: &[String],
        duration: MandateDuration,
        channel: ConsentChannel,
        created_by: Uuid,
    ) -> Self {
        let mut demarches = demarches.to_vec();
        demarches.sort();
        demarches.dedup();
        Self {
            template_version: TEMPLATE_VERSION,
            organisation,
            usager,
            demarches,
            duration: TermsDuration {
                name: duration.as_str().to_owned(),
                days: duration.days(),
            },
            consent_channel: channel.as_str().to_owned(),
            created_by,
        }
    }

    /// RFC 8785 canonical JSON.
    pub fn canonical(&self) -> Result<String, CanonicalError> {
        let v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        to_canonical(&v)
    }

    /// Hex SHA-256 of the canonical JSON.
    pub fn hash(&self) -> Result<String, CanonicalError> {
        Ok(hex::encode(crate::crypto::sha256(
            self.canonical()?.as_bytes(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(demarches: &[String]) -> Terms {
        Terms::new(
            TermsOrganisation {
                id: Uuid::nil(),
                name: "France Services Lille".into(),
                address: "1 place de la République".into(),
                siret: None,
            },
            TermsUsager {
                id: Uuid::from_u128(1),
                given_name: "Élodie".into(),
                family_name: "N'Diaye".into(),
                birthdate: "1950-01-02".into(),
            },
            demarches,
            MandateDuration::Month,
            ConsentChannel::Print,
            Uuid::from_u128(2),
        )
    }

    #[test]
    fn canonical_shape_and_hash() {
        let t = sample(&["social".into(), "argent".into()]);
        let c = t.canonical().unwrap();
        assert_eq!(
            c,
            r#"{"consent_channel":"print","created_by":"00000000-0000-0000-0000-000000000002","demarches":["argent","social"],"duration":{"days":31,"name":"month"},"organisation":{"address":"1 place de la République","id":"00000000-0000-0000-0000-000000000000","name":"France Services Lille","siret":null},"template_version":1,"usager":{"birthdate":"1950-01-02","family_name":"N'Diaye","given_name":"Élodie","id":"00000000-0000-0000-0000-000000000001"}}"#
        );
        assert_eq!(
            t.hash().unwrap(),
            hex::encode(crate::crypto::sha256(c.as_bytes()))
        );
        assert!(!format!("{t:?}").contains("Élodie"));
    }

    proptest! {
        #[test]
        fn hash_ignores_demarche_order(mut d in prop::collection::vec("[a-z]{3,8}", 1..6)) {
            let h1 = sample(&d).hash().unwrap();
            d.reverse();
            prop_assert_eq!(h1, sample(&d).hash().unwrap());
        }

        #[test]
        fn hash_changes_with_any_field(name in "[A-Za-z]{1,10}") {
            let base = sample(&["social".into()]);
            let mut other = base.clone();
            other.usager.family_name = format!("{name}x");
            prop_assert_ne!(base.hash().unwrap(), other.hash().unwrap());
        }
    }
}
