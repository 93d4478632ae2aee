//! Plain-French wording of what the pages show: dates, durations, statuses, démarches.

use chrono::{DateTime, Utc};

use crate::domain::demarche::catalogue;

pub use crate::domain::wording::{date, date_fr, datetime, datetime_fr};

pub fn opt_date(t: Option<DateTime<Utc>>) -> String {
    t.map(date).unwrap_or_default()
}

/// A wait in words: `45 secondes`, `15 minutes`, `1 heure`.
pub fn wait_fr(secs: u64) -> String {
    match secs {
        0..=1 => "1 seconde".into(),
        2..=59 => format!("{secs} secondes"),
        60..=119 => "1 minute".into(),
        120..=3599 => format!("{} minutes", secs.div_ceil(60)),
        3600..=7199 => "1 heure".into(),
        _ => format!("{} heures", secs.div_ceil(3600)),
    }
}

/// What the aidant is told about the consent SMS while it is not plainly on its way.
pub fn sms_delivery_fr(d: crate::service::consent::SmsDelivery) -> Option<&'static str> {
    use crate::service::consent::SmsDelivery;
    match d {
        SmsDelivery::Waiting | SmsDelivery::Sent => None,
        SmsDelivery::Retrying => Some(
            "L'envoi du SMS a échoué ; un nouvel essai est en cours. Le mandat est conservé, \
             rien n'est à refaire pour l'instant.",
        ),
        SmsDelivery::Failed => Some(
            "Le SMS n'a pas pu être envoyé malgré plusieurs essais : l'usager n'a pas reçu de \
             code. Le mandat est conservé en attente. Vérifiez le numéro avec l'usager, puis \
             renvoyez un code par SMS.",
        ),
    }
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

pub fn demarche_status_fr(s: &str) -> &'static str {
    match s {
        "active" => "Active",
        "revoked" => "Révoquée",
        "expired" => "Expirée",
        "pending" => "En attente",
        _ => "—",
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

pub fn role_fr(s: &str) -> &'static str {
    match s {
        "referent" => "Référent",
        "aidant" => "Aidant",
        _ => "Membre",
    }
}

pub fn identity_check_fr(s: &str) -> &'static str {
    match s {
        "document" => "Pièce d'identité vérifiée au guichet",
        "franceconnect" => "FranceConnect",
        _ => "Autre",
    }
}

/// The label of a form field, for error summaries.
pub fn field_label(field: &str) -> &'static str {
    match field {
        "given_name" => "Prénom(s)",
        "family_name" => "Nom de naissance",
        "birthdate" => "Date de naissance",
        "birthplace" => "Lieu de naissance",
        "phone" => "Téléphone",
        "email" | "ref_email" => "Adresse e-mail",
        "identity_check" => "Vérification de l'identité",
        "demarches" => "Démarches",
        "duree" => "Durée",
        "canal" => "Accord de l'usager",
        "motif" => "Motif",
        "confirmation" => "Confirmation",
        "name" => "Nom",
        "address" => "Adresse",
        "siret" => "SIRET",
        "display_name" | "ref_display_name" => "Nom et prénom",
        "role" => "Rôle",
        "serial" => "Numéro de série",
        "totp" => "Code",
        // vault
        "label" => "Nom de l'entrée",
        "service" => "Service",
        "login" => "Identifiant",
        "secret" => "Mot de passe ou code d'accès",
        "totp_seed" => "Clé de double authentification",
        "notes" => "Notes",
        "usager_id" => "Usager lié",
        "demarche" => "Démarche du compte",
        _ => "",
    }
}

/// The catalogue title of a démarche id.
pub fn demarche_title(id: &str) -> String {
    catalogue()
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| id.to_owned(), |d| d.title.clone())
}

/// `Papiers, Famille et Social` from ids.
pub fn demarche_list_fr(ids: &[String]) -> String {
    let titles: Vec<String> = ids
        .iter()
        .map(|id| {
            catalogue()
                .iter()
                .find(|d| &d.id == id)
                .map_or_else(|| id.clone(), |d| d.short_title.clone())
        })
        .collect();
    match titles.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} et {last}", rest.join(", ")),
    }
}

/// What an audit action means, in French, for the timeline of a mandate.
pub fn action_fr(action: &str) -> String {
    match action {
        "mandate.created" => "Mandat préparé".into(),
        "mandate.activated" => "Consentement donné : mandat actif".into(),
        "mandate.refused" => "Consentement refusé".into(),
        "mandate.revoked" => "Mandat révoqué".into(),
        "mandate.demarche_revoked" => "Démarche(s) révoquée(s)".into(),
        "mandate.renewed" => "Mandat renouvelé".into(),
        "mandate.expired" => "Mandat expiré".into(),
        "mandate.attestation_printed" => "Document du mandat imprimé".into(),
        "mandate.replaced" => "Remplacé par un nouveau mandat".into(),
        "mandate.consent_sent" => "Code de consentement envoyé".into(),
        "mandate.consent_failed" => "Code erroné saisi".into(),
        "usager.read" => "Fiche de l'usager consultée".into(),
        "usager.created" => "Usager enregistré".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_waits_and_lists() {
        assert_eq!(wait_fr(900), "15 minutes");
        assert_eq!(wait_fr(30), "30 secondes");
        assert_eq!(wait_fr(3600), "1 heure");
        assert_eq!(
            demarche_list_fr(&["papiers".into(), "famille".into(), "argent".into()]),
            "Papiers, Famille et Argent"
        );
        assert_eq!(date_fr("2026-11-23T09:00:00.000000Z"), "23/11/2026");
    }
}
