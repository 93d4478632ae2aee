//! Organisations (structures): validated input.

use super::FieldError;
use super::demarche::{DemarcheId, parse_set};
use super::text::clean_text;

/// A SIRET: 14 digits passing the Luhn check (La Poste's SIRETs, which use another rule,
/// are accepted by their SIREN prefix 356000000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Siret(String);

impl Siret {
    pub fn parse(raw: &str) -> Option<Self> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let la_poste = digits.starts_with("356000000")
            && digits
                .bytes()
                .map(|b| u32::from(b - b'0'))
                .sum::<u32>()
                .is_multiple_of(5);
        (luhn(&digits) || la_poste).then_some(Self(digits))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A validated request to create an organisation.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub name: String,
    pub address: String,
    pub siret: Option<Siret>,
    pub allowed_demarches: Vec<DemarcheId>,
}

impl NewOrganisation {
    pub fn parse(
        name: &str,
        address: &str,
        siret: Option<&str>,
        demarches: Option<&[String]>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = clean_text(name, 200)
            .map_err(|m| errors.push(FieldError::new("name", m)))
            .ok();
        let address = clean_text(address, 300)
            .map_err(|m| errors.push(FieldError::new("address", m)))
            .ok();
        let siret = match siret {
            None => None,
            Some(s) if s.trim().is_empty() => None,
            Some(s) => {
                let parsed = Siret::parse(s);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "siret",
                        "Le SIRET doit comporter 14 chiffres valides.",
                    ));
                }
                parsed
            }
        };
        let allowed = match demarches {
            None => Some(DemarcheId::all()),
            Some(list) => {
                let parsed = parse_set(list);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "allowed_demarches",
                        "Indiquez au moins une démarche du catalogue.",
                    ));
                }
                parsed
            }
        };
        match (name, address, allowed) {
            (Some(name), Some(address), Some(allowed_demarches)) if errors.is_empty() => Ok(Self {
                name,
                address,
                siret,
                allowed_demarches,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siret_luhn() {
        assert!(Siret::parse("73282932000074").is_some());
        assert!(Siret::parse("732 829 320 00074").is_some());
        assert!(Siret::parse("73282932000075").is_none());
        assert!(Siret::parse("7328293200007").is_none());
        assert!(Siret::parse("7328293200007a").is_none());
        assert!(Siret::parse("35600000000048").is_some(), "La Poste rule");
    }

    #[test]
    fn new_organisation_validation() {
        let o = NewOrganisation::parse(" MFS  Lille ", "1 rue X", None, None).unwrap();
        assert_eq!(o.name, "MFS Lille");
        assert_eq!(o.allowed_demarches.len(), 10);
        let e =
            NewOrganisation::parse("", "1 rue X", Some("123"), Some(&["nope".into()])).unwrap_err();
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "siret", "allowed_demarches"]);
    }
}
