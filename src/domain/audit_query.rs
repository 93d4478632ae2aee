//! Parameters of audit searches and exports, validated (French messages).

use chrono::{DateTime, Utc};

use super::FieldError;
use crate::audit::event::format_ts;

/// Largest page of a search.
pub const MAX_LIMIT: i64 = 500;
pub const DEFAULT_LIMIT: i64 = 50;

/// Validated filters; times in the canonical audit format (they sort as text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub usager: Option<String>,
    pub mandate: Option<String>,
    pub organisation: Option<String>,
}

/// Raw filters as given (query string or command line).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RawAuditQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub usager: Option<String>,
    pub mandate: Option<String>,
    pub organisation: Option<String>,
}

fn time(v: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = v.filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(format_ts(t.with_timezone(&Utc))),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "Date invalide : utilisez le format RFC 3339, par exemple 2026-11-23T10:00:00Z.",
            ));
            None
        }
    }
}

fn token(v: Option<&str>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = v.filter(|s| !s.is_empty())?;
    let ok = v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Some(v.to_owned())
    } else {
        errors.push(FieldError::new(field, "Valeur de filtre invalide."));
        None
    }
}

impl AuditQuery {
    pub fn parse(raw: &RawAuditQuery) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let q = Self {
            since: time(raw.since.as_deref(), "since", &mut errors),
            until: time(raw.until.as_deref(), "until", &mut errors),
            action: token(raw.action.as_deref(), "action", &mut errors),
            actor: token(raw.actor.as_deref(), "actor", &mut errors),
            usager: token(raw.usager.as_deref(), "usager", &mut errors),
            mandate: token(raw.mandate.as_deref(), "mandate", &mut errors),
            organisation: token(raw.organisation.as_deref(), "organisation", &mut errors),
        };
        if let (Some(s), Some(u)) = (&q.since, &q.until)
            && s > u
        {
            errors.push(FieldError::new(
                "until",
                "La fin de la période précède son début.",
            ));
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }
}

/// `limit` of a page: 1–500, default 50.
pub fn parse_limit(v: Option<i64>) -> Result<i64, FieldError> {
    match v {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(FieldError::new(
            "limit",
            "La taille de page doit être comprise entre 1 et 500.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_times() {
        let q = AuditQuery::parse(&RawAuditQuery {
            since: Some("2026-11-23T10:00:00+01:00".into()),
            action: Some("mandate.activated".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.since.as_deref(), Some("2026-11-23T09:00:00.000000Z"));
        assert_eq!(q.action.as_deref(), Some("mandate.activated"));
    }

    #[test]
    fn rejects_bad_values_in_french() {
        let e = AuditQuery::parse(&RawAuditQuery {
            since: Some("hier".into()),
            actor: Some("x' OR 1=1".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[0].message.contains("Date invalide"));
        assert!(parse_limit(Some(0)).is_err());
        assert_eq!(parse_limit(None).unwrap(), 50);
    }
}
