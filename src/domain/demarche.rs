//! The démarche catalogue (`policies/demarches.toml`, embedded at build time).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Demarche {
    pub id: String,
    pub title: String,
    pub short_title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    demarche: Vec<Demarche>,
}

const CATALOGUE_TOML: &str = include_str!("../../policies/demarches.toml");

/// The catalogue, in display order. Parsed once; a malformed file fails the test suite.
pub fn catalogue() -> &'static [Demarche] {
    static CATALOGUE: OnceLock<Vec<Demarche>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        toml::from_str::<CatalogueFile>(CATALOGUE_TOML)
            .map(|f| f.demarche)
            .unwrap_or_default()
    })
}

/// A démarche id that exists in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DemarcheId(String);

impl DemarcheId {
    pub fn parse(s: &str) -> Option<Self> {
        catalogue()
            .iter()
            .any(|d| d.id == s)
            .then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn all() -> Vec<Self> {
        catalogue().iter().map(|d| Self(d.id.clone())).collect()
    }
}

/// Parses a list of ids into a sorted, de-duplicated set; `None` if any id is unknown or the
/// list is empty.
pub fn parse_set(ids: &[String]) -> Option<Vec<DemarcheId>> {
    let mut out = ids
        .iter()
        .map(|s| DemarcheId::parse(s))
        .collect::<Option<Vec<_>>>()?;
    out.sort();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_ten_domains_in_order() {
        let ids: Vec<&str> = catalogue().iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "papiers",
                "famille",
                "social",
                "travail",
                "logement",
                "transports",
                "argent",
                "justice",
                "etranger",
                "loisirs"
            ]
        );
        let argent = catalogue().iter().find(|d| d.id == "argent").unwrap();
        assert!(
            argent
                .warning
                .as_deref()
                .unwrap()
                .contains("surendettement")
        );
        assert_eq!(
            catalogue().iter().filter(|d| d.warning.is_some()).count(),
            1
        );
    }

    #[test]
    fn parse_set_sorts_dedups_and_refuses_unknown() {
        let s = parse_set(&["social".into(), "argent".into(), "social".into()]).unwrap();
        assert_eq!(
            s.iter().map(DemarcheId::as_str).collect::<Vec<_>>(),
            ["argent", "social"]
        );
        assert!(parse_set(&["banque".into()]).is_none());
        assert!(parse_set(&[]).is_none());
    }
}
