//! Plain-French wording of the printed documents: dates, durations, statuses, reasons and
//! audit actions. (The desk pages word the same values in `http::pages::view`.)

use chrono::{DateTime, Utc};

/// `23/11/2026` (UTC: Paris time is not assumed).
pub fn date(t: DateTime<Utc>) -> String {
    t.format("%d/%m/%Y").to_string()
}

/// `23/11/2026 à 09:30 UTC`.
pub fn datetime(t: DateTime<Utc>) -> String {
    t.format("%d/%m/%Y à %H:%M UTC").to_string()
}

/// [`date`] of an RFC 3339 text (an audit event's `ts`); empty when it is not one.
pub fn date_fr(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| date(t.with_timezone(&Utc)))
        .unwrap_or_default()
}

/// [`datetime`] of an RFC 3339 text (an audit event's `ts`).
pub fn datetime_fr(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| datetime(t.with_timezone(&Utc)))
        .unwrap_or_default()
}

/// `09/03/1948` from an ISO date (as stored); the input when it is not one.
pub fn birthdate_fr(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d")
        .map_or_else(|_| iso.to_owned(), |d| d.format("%d/%m/%Y").to_string())
}

pub fn mandate_status_fr(s: &str) -> &'static str {
    match s {
        "pending_consent" => "En attente du consentement",
        "active" => "Actif",
        "refused" => "Refusé par l'usager",
        "expired" => "Expiré",
        "revoked" => "Révoqué",
        _ => "Inconnu",
    }
}

pub fn duration_fr(s: &str) -> &'static str {
    match s {
        "short" => "1 jour",
        "month" => "1 mois (31 jours)",
        "semester" => "6 mois (182 jours)",
        "long" => "1 an (365 jours)",
        _ => "durée inconnue",
    }
}

pub fn reason_fr(s: &str) -> &'static str {
    match s {
        "usager_request" => "À la demande de l'usager",
        "deceased" => "Décès de l'usager",
        "error" => "Mandat créé par erreur",
        "other" => "Autre motif",
        "replaced" => "Remplacé par un nouveau mandat",
        _ => "Motif inconnu",
    }
}

/// What an audit action means, in French.
pub fn action_fr(action: &str) -> String {
    match action {
        "mandate.created" => "Mandat préparé".into(),
        "mandate.activated" => "Consentement donné : mandat actif".into(),
        "mandate.refused" => "Consentement refusé".into(),
        "mandate.revoked" => "Mandat révoqué".into(),
        "mandate.demarche_revoked" => "Démarche(s) révoquée(s)".into(),
        "mandate.renewed" => "Mandat renouvelé".into(),
        "mandate.expired" => "Mandat expiré".into(),
        "mandate.replaced" => "Remplacé par un nouveau mandat".into(),
        "mandate.consent_sent" => "Code de consentement envoyé".into(),
        "mandate.consent_failed" => "Code erroné saisi".into(),
        "mandate.attestation_printed" => "Document du mandat imprimé".into(),
        "usager.read" => "Fiche de l'usager consultée".into(),
        "usager.searched" => "Usager trouvé par une recherche".into(),
        "usager.created" => "Usager enregistré".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(date_fr("2026-11-23T09:00:00.000000Z"), "23/11/2026");
        assert_eq!(
            datetime_fr("2026-11-23T09:30:00Z"),
            "23/11/2026 à 09:30 UTC"
        );
        assert_eq!(birthdate_fr("1948-03-09"), "09/03/1948");
        assert_eq!(duration_fr("month"), "1 mois (31 jours)");
        assert_eq!(reason_fr("error"), "Mandat créé par erreur");
        assert_eq!(action_fr("usager.read"), "Fiche de l'usager consultée");
    }
}
