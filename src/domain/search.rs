//! Normalisation for the usager blind index (pure). The store keeps only keyed hashes of
//! what these functions produce; a search computes the same hashes from the query.
//!
//! Normalised form: lower case, accents removed (NFD then combining marks dropped), hyphens
//! and apostrophes removed, other non-alphanumeric characters as separators; tokens sorted so
//! that "given family" and "family given" give the same value (exact token match: a keyed
//! hash cannot do prefixes).

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// What a blind-index entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// The family name alone, or given and family names together (either order).
    Name,
    /// The birth date, `YYYY-MM-DD`.
    Birthdate,
}

impl IndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Birthdate => "birthdate",
        }
    }
}

fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '-' | '\''
            | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2019}'
            | '\u{2018}'
            | '\u{02bc}'
            | '`'
            | '\u{b4}'
    )
}

/// Lower-cased, accent-free tokens of a text, hyphens and apostrophes removed.
pub fn tokens(text: &str) -> Vec<String> {
    let folded: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c) && !is_joiner(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'œ' => "oe".to_owned(),
            'æ' => "ae".to_owned(),
            'ß' => "ss".to_owned(),
            c if c.is_alphanumeric() => c.to_string(),
            _ => " ".to_owned(),
        })
        .collect();
    folded.split_whitespace().map(str::to_owned).collect()
}

/// The canonical value of a set of name tokens: sorted, space-separated. `None` when empty.
pub fn name_key(tokens: &[String]) -> Option<String> {
    if tokens.is_empty() {
        return None;
    }
    let mut t = tokens.to_vec();
    t.sort();
    Some(t.join(" "))
}

/// The values indexed for a usager: the family name alone, and given + family names.
pub fn usager_entries(given: &str, family: &str, birthdate: NaiveDate) -> Vec<(IndexKind, String)> {
    let family_tokens = tokens(family);
    let mut all = tokens(given);
    all.extend(family_tokens.iter().cloned());
    let mut out = Vec::with_capacity(3);
    if let Some(f) = name_key(&family_tokens) {
        out.push((IndexKind::Name, f));
    }
    if let Some(a) = name_key(&all)
        && out.iter().all(|(_, v)| *v != a)
    {
        out.push((IndexKind::Name, a));
    }
    out.push((
        IndexKind::Birthdate,
        birthdate.format("%Y-%m-%d").to_string(),
    ));
    out
}

/// A parsed search: the name part (if any) and birth-date filters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    pub name: Option<String>,
    pub birthdate: Option<String>,
}

impl SearchQuery {
    /// Splits `q` into tokens: a `YYYY-MM-DD` token filters on birth date, the others form
    /// the name. `None` when nothing searchable remains.
    pub fn parse(q: &str) -> Option<Self> {
        let mut name_parts = Vec::new();
        let mut birthdate = None;
        for raw in q.split_whitespace().take(20) {
            if raw.len() == 10
                && let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            {
                birthdate = Some(d.format("%Y-%m-%d").to_string());
                continue;
            }
            name_parts.extend(tokens(raw));
        }
        let name = name_key(&name_parts);
        (name.is_some() || birthdate.is_some()).then_some(Self { name, birthdate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            tokens("Jean-Pierre  D'Ormesson"),
            ["jeanpierre", "dormesson"]
        );
        assert_eq!(tokens("ÉLODIE Lœtitia"), ["elodie", "loetitia"]);
        assert_eq!(tokens("N’Diaye"), ["ndiaye"]);
        assert_eq!(tokens("  "), Vec::<String>::new());
    }

    #[test]
    fn entries_and_queries_meet() {
        let d = NaiveDate::from_ymd_opt(1950, 1, 2).unwrap();
        let e = usager_entries("Jean-Pierre", "Le Gall", d);
        let values: Vec<&str> = e.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["gall le", "gall jeanpierre le", "1950-01-02"]);
        for q in [
            "le gall",
            "LE GALL",
            "Jean-Pierre Le Gall",
            "le gall jeanpierre",
            "Gall Le",
        ] {
            let s = SearchQuery::parse(q).unwrap();
            assert!(values.contains(&s.name.as_deref().unwrap()), "{q}");
        }
        let s = SearchQuery::parse("Le Gall 1950-01-02").unwrap();
        assert_eq!(s.birthdate.as_deref(), Some("1950-01-02"));
        assert_eq!(SearchQuery::parse("1950-01-02").unwrap().name, None);
        assert!(SearchQuery::parse("  - ' ").is_none());
        // Prefixes do not match.
        assert!(!values.contains(&SearchQuery::parse("gal").unwrap().name.as_deref().unwrap()));
    }

    proptest! {
        #[test]
        fn name_key_is_order_independent(a in "[a-zA-Zéèàç' -]{1,20}", b in "[a-zA-Zéèàç' -]{1,20}") {
            let ab = name_key(&tokens(&format!("{a} {b}")));
            let ba = name_key(&tokens(&format!("{b} {a}")));
            prop_assert_eq!(ab, ba);
        }

        #[test]
        fn tokens_are_lowercase_ascii_for_french_names(s in "[A-Za-zÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸàâäçéèêëîïôöùûüÿ' -]{0,40}") {
            for t in tokens(&s) {
                prop_assert!(t.chars().all(|c| c.is_ascii_lowercase()), "{}", t);
            }
        }

        #[test]
        fn search_never_panics(s in "\\PC{0,80}") {
            let _ = SearchQuery::parse(&s);
        }
    }
}
