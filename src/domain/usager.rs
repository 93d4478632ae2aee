//! Usager input turned into typed values: names, birth date and place, phone (E.164),
//! email, how identity was checked. Parse, don't validate: a [`NewUsager`] is always valid.

use std::fmt;

use chrono::{Datelike as _, NaiveDate};
use phonenumber::country::Id as Region;
use phonenumber::{Mode, PhoneNumber};

use super::FieldError;
use super::text::clean_text;

/// Longest accepted name, in characters.
pub const NAME_MAX: usize = 100;
/// Oldest accepted age, in years: anything older is a typing error.
pub const MAX_AGE_YEARS: i32 = 130;

/// A given or family name: trimmed, inner whitespace collapsed, no control characters,
/// at least one letter, at most [`NAME_MAX`] characters. Never re-cased.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let cleaned = clean_text(raw, NAME_MAX)?;
        if !cleaned.chars().any(char::is_alphabetic) {
            return Err("Le nom doit contenir au moins une lettre.");
        }
        Ok(Self(cleaned))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Personal data: never printed by `Debug`.
impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName([redacted])")
    }
}

/// A birth date, neither in the future nor more than [`MAX_AGE_YEARS`] ago.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    /// `raw` is `YYYY-MM-DD`; `today` is the server's current date (UTC).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, &'static str> {
        let raw = raw.trim();
        if raw.len() != 10 {
            return Err("La date de naissance doit être au format AAAA-MM-JJ.");
        }
        let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| "La date de naissance doit être au format AAAA-MM-JJ.")?;
        if d > today {
            return Err("La date de naissance ne peut pas être dans le futur.");
        }
        if today.year() - d.year() > MAX_AGE_YEARS {
            return Err("La date de naissance est trop ancienne.");
        }
        Ok(Self(d))
    }
    pub fn date(self) -> NaiveDate {
        self.0
    }
    /// `YYYY-MM-DD`.
    pub fn to_iso(self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }
}

impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthDate([redacted])")
    }
}

/// A birth place: an INSEE commune code (5 characters, Corsica `2A`/`2B`) or free text.
#[derive(Clone, PartialEq, Eq)]
pub enum BirthPlace {
    Insee(String),
    Text(String),
}

impl BirthPlace {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let t = raw.trim();
        let upper = t.to_ascii_uppercase();
        let b = upper.as_bytes();
        let insee = b.len() == 5
            && (b.iter().all(u8::is_ascii_digit)
                || (b[0] == b'2'
                    && (b[1] == b'A' || b[1] == b'B')
                    && b[2..].iter().all(u8::is_ascii_digit)));
        if insee {
            return Ok(Self::Insee(upper));
        }
        clean_text(raw, NAME_MAX).map(Self::Text)
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Insee(s) | Self::Text(s) => s,
        }
    }
}

impl fmt::Debug for BirthPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthPlace([redacted])")
    }
}

/// Regions tried, in order, for a number written in national form (`0` and nine digits):
/// metropolitan France, then the overseas departments and collectivities that share the
/// French numbering plan (`0692…` is dialled from Paris as from Saint-Denis, and is
/// `+262 692…`). Saint-Pierre-et-Miquelon, New Caledonia, French Polynesia and Wallis and
/// Futuna have numbering plans of their own, in which a national number is ambiguous
/// (`75 12 34` is a mobile in Nouméa and a number in Saint-Pierre): theirs are accepted
/// written with their country code only.
const NATIONAL_REGIONS: [Region; 8] = [
    Region::FR,
    Region::RE,
    Region::YT,
    Region::GP,
    Region::MQ,
    Region::GF,
    Region::BL,
    Region::MF,
];

/// A phone number in E.164 (`+33612345678`), valid for its region.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const MSG: &str = "Le numéro de téléphone n'est pas valide.";
        const NATIONAL: &str = "Le numéro de téléphone n'est pas valide : un numéro français a dix chiffres et commence par 0 ; un autre s'écrit avec son indicatif (+687 …).";
        let t = raw.trim();
        if t.is_empty() || t.len() > 32 || t.chars().any(char::is_control) {
            return Err(MSG);
        }
        let international = t.starts_with('+') || t.starts_with("00");
        let candidates: Vec<Option<Region>> = if international {
            vec![None]
        } else {
            let digits: Vec<char> = t.chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 10 || digits[0] != '0' {
                return Err(NATIONAL);
            }
            NATIONAL_REGIONS.iter().copied().map(Some).collect()
        };
        let normalised = t.strip_prefix("00").map(|r| format!("+{r}"));
        let text = normalised.as_deref().unwrap_or(t);
        for region in &candidates {
            if let Ok(n) = phonenumber::parse(*region, text)
                && phonenumber::is_valid(&n)
            {
                return Ok(Self(e164(&n)));
            }
        }
        Err(MSG)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Reads back a stored E.164 value (already validated when stored).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The form shown to aidants: only the country code and the last two digits
    /// (`+33 •• •• •• •• 78`).
    pub fn masked(&self) -> String {
        let cc = phonenumber::parse(None, &self.0)
            .map(|n| n.code().value().to_string())
            .unwrap_or_default();
        let last2: String = {
            let digits: Vec<char> = self.0.chars().filter(char::is_ascii_digit).collect();
            digits[digits.len().saturating_sub(2)..].iter().collect()
        };
        format!("+{cc} •• •• •• •• {last2}")
    }
}

fn e164(n: &PhoneNumber) -> String {
    n.format().mode(Mode::E164).to_string()
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone([redacted])")
    }
}

/// An email address under a strict simple rule: ASCII, one `@`, a dot-atom local part, a
/// domain of at least two LDH labels ending in a letter TLD; at most 254 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const MSG: &str = "L'adresse électronique n'est pas valide.";
        let t = raw.trim();
        if t.len() > 254 || !t.is_ascii() {
            return Err(MSG);
        }
        let (local, domain) = t.split_once('@').ok_or(MSG)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok {
            Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(MSG)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email([redacted])")
    }
}

/// How the aidant checked the usager's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityCheck {
    Document,
    FranceConnect,
}

impl IdentityCheck {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "document" => Some(Self::Document),
            "franceconnect" => Some(Self::FranceConnect),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::FranceConnect => "franceconnect",
        }
    }
}

/// A validated request to register a usager.
#[derive(Debug, Clone)]
pub struct NewUsager {
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub birthdate: BirthDate,
    pub birthplace: Option<BirthPlace>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub identity_check: IdentityCheck,
}

/// The raw fields, as received.
#[derive(Debug, Clone, Copy)]
pub struct UsagerInput<'a> {
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub birthdate: &'a str,
    pub birthplace: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub identity_check: &'a str,
}

fn check<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, &'static str>) -> Option<T> {
    r.map_err(|m| errors.push(FieldError::new(field, m))).ok()
}

fn optional(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.trim().is_empty())
}

impl NewUsager {
    /// Validates every field, reporting all errors at once (French messages).
    pub fn parse(input: &UsagerInput<'_>, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let given_name = check(e, "given_name", PersonName::parse(input.given_name));
        let family_name = check(e, "family_name", PersonName::parse(input.family_name));
        let birthdate = check(e, "birthdate", BirthDate::parse(input.birthdate, today));
        let birthplace =
            optional(input.birthplace).map(|b| check(e, "birthplace", BirthPlace::parse(b)));
        let phone = optional(input.phone).map(|p| check(e, "phone", Phone::parse(p)));
        let email = optional(input.email).map(|m| check(e, "email", Email::parse(m)));
        let identity_check = check(
            e,
            "identity_check",
            IdentityCheck::parse(input.identity_check)
                .ok_or("Indiquez « document » ou « franceconnect »."),
        );
        match (given_name, family_name, birthdate, identity_check) {
            (Some(given_name), Some(family_name), Some(birthdate), Some(identity_check))
                if errors.is_empty() =>
            {
                Ok(Self {
                    given_name,
                    family_name,
                    birthdate,
                    birthplace: birthplace.flatten(),
                    phone: phone.flatten(),
                    email: email.flatten(),
                    identity_check,
                })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn names_are_cleaned_not_recased() {
        assert_eq!(
            PersonName::parse("  jean-PIERRE   de la  Fontaine ")
                .unwrap()
                .as_str(),
            "jean-PIERRE de la Fontaine"
        );
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse("123").is_err());
        assert!(PersonName::parse("a\u{7}b").is_err());
        assert!(PersonName::parse(&"é".repeat(101)).is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn birth_dates() {
        assert!(BirthDate::parse("1950-02-28", today()).is_ok());
        assert!(BirthDate::parse("2026-11-23", today()).is_ok());
        assert!(BirthDate::parse("2026-11-24", today()).is_err());
        assert!(BirthDate::parse("1890-01-01", today()).is_err());
        assert!(BirthDate::parse("1950-02-30", today()).is_err());
        assert!(BirthDate::parse("23/11/1950", today()).is_err());
        assert!(BirthDate::parse("+1950-02-28", today()).is_err());
    }

    #[test]
    fn birth_places() {
        assert_eq!(
            BirthPlace::parse("75056").unwrap(),
            BirthPlace::Insee("75056".into())
        );
        assert_eq!(
            BirthPlace::parse("2a004").unwrap(),
            BirthPlace::Insee("2A004".into())
        );
        assert_eq!(
            BirthPlace::parse(" Alger  (Algérie) ").unwrap(),
            BirthPlace::Text("Alger (Algérie)".into())
        );
        assert!(BirthPlace::parse("x\u{0}").is_err());
    }

    #[test]
    fn french_and_overseas_phones() {
        for (raw, e164) in [
            ("06 12 34 56 78", "+33612345678"),
            ("+33 6 12 34 56 78", "+33612345678"),
            ("0033612345678", "+33612345678"),
            ("01.45.67.89.10", "+33145678910"),
            ("0692 12 34 56", "+262692123456"), // La Réunion
            ("+262 692 12 34 56", "+262692123456"),
            ("0639 01 23 45", "+262639012345"),   // Mayotte
            ("0690 12 34 56", "+590690123456"),   // Guadeloupe
            ("0694 12 34 56", "+594694123456"),   // Guyane
            ("0696 12 34 56", "+596696123456"),   // Martinique
            ("+687 75 12 34", "+687751234"),      // Nouvelle-Calédonie
            ("+689 87 12 34 56", "+68987123456"), // Polynésie française
            ("+269 321 23 45", "+2693212345"),    // Comores
            ("+508 41 23 45", "+508412345"),      // Saint-Pierre-et-Miquelon
            ("00 687 75 12 34", "+687751234"),
        ] {
            assert_eq!(Phone::parse(raw).map(|p| p.0), Ok(e164.to_owned()), "{raw}");
        }
        for bad in [
            "",
            "12",
            "06 12 34",
            "+33 6 12 34 56 78 90",
            "abcdefghij",
            "+999 123456",
            // Not in the French plan, nor anywhere else in national form.
            "07 00 12 34 56",
            "07 12 34 56 78",
            "0 41 23 45",
            // A national number of a plan of its own: ambiguous without its country code.
            "41 23 45",
            "75 12 34",
            "87 12 34 56",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masked_phone() {
        assert_eq!(
            Phone::parse("0612345678").unwrap().masked(),
            "+33 •• •• •• •• 78"
        );
        assert_eq!(
            Phone::parse("0692123456").unwrap().masked(),
            "+262 •• •• •• •• 56"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Jean.Dupont+x@Exemple.FR ").unwrap().as_str(),
            "Jean.Dupont+x@exemple.fr"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "a@b.c",
            "@b.fr",
            "a@.fr",
            "a..b@c.fr",
            ".a@c.fr",
            "a@c-.fr",
            "é@c.fr",
            "a b@c.fr",
            "a@b@c.fr",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_personal_data() {
        let u = NewUsager::parse(
            &UsagerInput {
                given_name: "Jeanne",
                family_name: "Martinez",
                birthdate: "1950-01-02",
                birthplace: Some("Lyon"),
                phone: Some("0612345678"),
                email: Some("jm@exemple.fr"),
                identity_check: "document",
            },
            today(),
        )
        .unwrap();
        let s = format!("{u:?}");
        for secret in ["Jeanne", "Martinez", "1950", "Lyon", "612345678", "jm@"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
    }

    #[test]
    fn all_errors_at_once() {
        let e = NewUsager::parse(
            &UsagerInput {
                given_name: "",
                family_name: "X",
                birthdate: "2030-01-01",
                birthplace: None,
                phone: Some("123"),
                email: Some(""),
                identity_check: "passport",
            },
            today(),
        )
        .unwrap_err();
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["given_name", "birthdate", "phone", "identity_check"]
        );
    }

    proptest! {
        #[test]
        fn names_never_panic_and_stay_clean(s in "\\PC{0,120}") {
            if let Ok(n) = PersonName::parse(&s) {
                prop_assert!(n.as_str().chars().count() <= NAME_MAX);
                prop_assert!(!n.as_str().chars().any(char::is_control));
                prop_assert_eq!(n.as_str(), n.as_str().trim());
                prop_assert!(!n.as_str().contains("  "));
            }
        }

        #[test]
        fn phone_parse_is_idempotent(s in "[+0-9 .()-]{0,20}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert!(p.as_str().starts_with('+'));
                prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
            }
        }

        #[test]
        fn phone_parse_never_panics(s in "\\PC{0,40}", t in "\\+[0-9]{1,18}") {
            let _ = Phone::parse(&s);
            if let Ok(p) = Phone::parse(&t) {
                prop_assert!(p.masked().starts_with('+'));
            }
        }

        #[test]
        fn french_mobiles_are_accepted(n in 0u32..10_000_000, second in prop::sample::select(vec!['1', '2', '4', '5', '6'])) {
            let raw = format!("06{second}{n:07}");
            let p = Phone::parse(&raw);
            prop_assert!(p.is_ok(), "{}", raw);
        }

        #[test]
        fn birth_dates_never_in_future(y in 1800i32..2100, m in 1u32..13, d in 1u32..29) {
            let raw = format!("{y:04}-{m:02}-{d:02}");
            if let Ok(b) = BirthDate::parse(&raw, today()) {
                prop_assert!(b.date() <= today());
                prop_assert_eq!(b.to_iso(), raw);
            }
        }

        #[test]
        fn emails_never_panic(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            }
        }
    }
}
