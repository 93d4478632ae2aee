//! What the vault's use cases take and answer: validated input, the listed metadata, the
//! revealed secret (zeroized, redacted).

use super::*;

/// The first version of the vault key-encryption key (before any `keys rotate vault`).
pub const INITIAL_KEK_VERSION: u32 = 1;
/// Data keys re-wrapped per transaction by `vault rewrap`.
pub const REWRAP_BATCH: i64 = 1000;

pub(super) const LABEL_MAX: usize = 100;
pub(super) const SERVICE_MAX: usize = 200;
pub(super) const LOGIN_MAX: usize = 200;
pub(super) const SECRET_MAX: usize = 500;
pub(super) const NOTES_MAX: usize = 1000;

/// Why a secret is revealed (`details.md` § Vault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    UsagerPresent,
    UsagerRemoteRequest,
    AccountMaintenance,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Self::UsagerPresent,
        Self::UsagerRemoteRequest,
        Self::AccountMaintenance,
        Self::Other,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsagerPresent => "usager_present",
            Self::UsagerRemoteRequest => "usager_remote_request",
            Self::AccountMaintenance => "account_maintenance",
            Self::Other => "other",
        }
    }

    /// The French wording of the reason (pages).
    pub fn label(self) -> &'static str {
        match self {
            Self::UsagerPresent => "L'usager est présent",
            Self::UsagerRemoteRequest => "Demande de l'usager à distance",
            Self::AccountMaintenance => "Maintenance du compte",
            Self::Other => "Autre",
        }
    }
}

/// How the access code is handed over to the usager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Print,
    Sms,
}

impl Channel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "print" => Some(Self::Print),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Print => "print",
            Self::Sms => "sms",
        }
    }
}

/// What the edge sends to create an entry (unvalidated).
pub struct EntryInput<'a> {
    pub label: &'a str,
    pub service: &'a str,
    pub login: &'a str,
    pub secret: &'a str,
    pub totp_seed: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub usager_id: Option<Uuid>,
    pub demarche: Option<&'a str>,
}

/// A validated new entry; the secret parts are zeroized on drop and never printed.
pub struct NewEntry {
    pub(super) label: String,
    pub(super) service: String,
    pub(super) login: SecretString,
    pub(super) secret: SecretString,
    pub(super) totp_seed: Option<Seed>,
    pub(super) notes: Option<SecretString>,
    pub(super) link: Option<(Uuid, DemarcheId)>,
}

impl std::fmt::Debug for NewEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewEntry([redacted])")
    }
}

/// A secret is 1–500 characters, kept exactly as given (no trimming: spaces may matter).
pub(super) fn check_secret(field: &str, raw: &str, max: usize) -> Result<(), FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(field, "Ce champ est obligatoire."));
    }
    if raw.chars().count() > max {
        return Err(FieldError::new(field, "Ce champ est trop long."));
    }
    if raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "Ce champ contient des caractères non autorisés.",
        ));
    }
    Ok(())
}

/// Validates the new secret of a rotation.
pub fn parse_secret(raw: &str) -> Result<SecretString, AppError> {
    check_secret("secret", raw, SECRET_MAX).map_err(|e| AppError::Validation(vec![e]))?;
    Ok(SecretString::from(raw.to_owned()))
}

impl NewEntry {
    /// Every field checked; the errors are French messages per field.
    pub fn parse(i: &EntryInput<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut text = |field: &str, raw: &str, max: usize| match clean_text(raw, max) {
            Ok(t) => Some(t),
            Err(m) => {
                errors.push(FieldError::new(field, m));
                None
            }
        };
        let label = text("label", i.label, LABEL_MAX);
        let service = text("service", i.service, SERVICE_MAX);
        for (field, raw, max) in [
            ("login", i.login, LOGIN_MAX),
            ("secret", i.secret, SECRET_MAX),
        ] {
            if let Err(e) = check_secret(field, raw, max) {
                errors.push(e);
            }
        }
        let totp_seed = match i.totp_seed.filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(s) => match Seed::parse_card(s, false) {
                Some(seed) => Some(seed),
                None => {
                    errors.push(FieldError::new(
                        "totp_seed",
                        "La clé TOTP doit être écrite en base32 (lettres A à Z et chiffres 2 à 7), comme le service la donne.",
                    ));
                    None
                }
            },
        };
        let notes = match i.notes.filter(|n| !n.trim().is_empty()) {
            None => None,
            Some(n) if n.chars().count() > NOTES_MAX => {
                errors.push(FieldError::new("notes", "Ce champ est trop long."));
                None
            }
            Some(n) => Some(SecretString::from(n.to_owned())),
        };
        let link = match (i.usager_id, i.demarche.filter(|d| !d.is_empty())) {
            (None, None) => None,
            (Some(u), Some(d)) => match DemarcheId::parse(d) {
                Some(d) => Some((u, d)),
                None => {
                    errors.push(FieldError::new("demarche", "Cette démarche n'existe pas."));
                    None
                }
            },
            (Some(_), None) => {
                errors.push(FieldError::new(
                    "demarche",
                    "Choisissez la démarche de ce compte : une entrée liée à un usager l'est pour une démarche.",
                ));
                None
            }
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "usager_id",
                    "Une démarche ne se choisit que pour une entrée liée à un usager.",
                ));
                None
            }
        };
        match (label, service, errors.is_empty()) {
            (Some(label), Some(service), true) => Ok(Self {
                label,
                service,
                login: SecretString::from(i.login.to_owned()),
                secret: SecretString::from(i.secret.to_owned()),
                totp_seed,
                notes,
                link,
            }),
            _ => Err(errors),
        }
    }
}

/// The metadata of an entry (what lists show): never the login, secret, seed or notes.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VaultEntry {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub label: String,
    pub service: String,
    pub has_totp: bool,
    pub usager_id: Option<Uuid>,
    pub demarche: Option<String>,
    /// The version of the secret (one more at each rotation).
    pub version: i64,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::time")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// A page of entries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VaultPage {
    pub items: Vec<VaultEntry>,
    pub next_cursor: Option<String>,
}

/// What `reveal` answers: zeroized on drop, redacted in `Debug`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revealed {
    #[schema(value_type = String)]
    #[serde(serialize_with = "plain_text")]
    pub secret: Zeroizing<String>,
    #[schema(value_type = String)]
    #[serde(serialize_with = "plain_text")]
    pub login: Zeroizing<String>,
    /// The account's current TOTP code, when the entry has a seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "plain_opt")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Zeroizing<String>>,
}

pub(super) fn plain_text<S: serde::Serializer>(
    v: &Zeroizing<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

pub(super) fn plain_opt<S: serde::Serializer>(
    v: &Option<Zeroizing<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_some(t.as_str()),
        None => s.serialize_none(),
    }
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revealed([redacted])")
    }
}

/// What a hand-over produced.
pub enum HandedOver {
    /// The slip (PDF bytes, never stored).
    Slip(Vec<u8>),
    /// The message is in the SMS outbox.
    SmsQueued,
}
