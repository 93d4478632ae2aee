//! Accounts: e-mail addresses, roles, and the password policy (security.md).

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// An e-mail address, lower-cased (addresses are unique case-insensitively).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        let (local, domain) = s.rsplit_once('@')?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        (domain_ok && local_ok).then_some(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    // Personal data: not printed in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Aidant,
    Referent,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aidant => "aidant",
            Self::Referent => "referent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "aidant" => Some(Self::Aidant),
            "referent" => Some(Self::Referent),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlatformRole {
    Dpo,
    Admin,
}

const COMMON_PASSWORDS: &str = include_str!("../../policies/common-passwords.txt");

/// Checks the password policy: 12–128 characters, not a common password, not built on the
/// account's e-mail or name. Returns a French message for the user.
pub fn check_password(
    password: &SecretString,
    email: Option<&str>,
    name: Option<&str>,
) -> Result<(), &'static str> {
    let pw = password.expose_secret();
    let len = pw.chars().count();
    if len < 12 {
        return Err("Le mot de passe doit comporter au moins 12 caractères.");
    }
    if len > 128 {
        return Err("Le mot de passe doit comporter au plus 128 caractères.");
    }
    if pw.chars().any(char::is_control) {
        return Err("Le mot de passe contient des caractères non autorisés.");
    }
    let lower = pw.to_lowercase();
    if COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .any(|c| !c.is_empty() && !c.starts_with('#') && c == lower)
    {
        return Err("Ce mot de passe est trop courant : choisissez-en un autre.");
    }
    let mut personal: Vec<String> = Vec::new();
    if let Some(e) = email {
        let local = e.split('@').next().unwrap_or("").to_lowercase();
        personal.push(local);
    }
    if let Some(n) = name {
        personal.extend(n.to_lowercase().split_whitespace().map(str::to_owned));
    }
    if personal
        .iter()
        .any(|p| p.chars().count() >= 4 && lower.contains(p.as_str()))
    {
        return Err("Le mot de passe ne doit pas contenir votre nom ou votre adresse e-mail.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Marie.Dupont@Example.FR ").unwrap().as_str(),
            "marie.dupont@example.fr"
        );
        for bad in [
            "", "a", "a@b", "@x.fr", "a@.fr", "a b@x.fr", "a@x..fr", "a@x\n.fr", "a@-x.fr",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{:?}", Email::parse("a@x.fr").unwrap()).contains("a@x.fr"));
    }

    #[test]
    fn password_policy() {
        let s = |p: &str| SecretString::from(p.to_owned());
        assert!(check_password(&s("court"), None, None).is_err());
        assert!(check_password(&s(&"x".repeat(129)), None, None).is_err());
        assert!(check_password(&s("motdepasse123"), None, None).is_err());
        assert!(
            check_password(&s("MotDePasse123"), None, None).is_err(),
            "case-insensitive list"
        );
        assert!(
            check_password(
                &s("dupont-est-la-2026"),
                Some("marie.dupont@x.fr"),
                Some("Marie Dupont")
            )
            .is_err()
        );
        assert!(
            check_password(
                &s("cheval agrafe pile 42"),
                Some("marie@x.fr"),
                Some("Marie Dupont")
            )
            .is_ok()
        );
    }
}
