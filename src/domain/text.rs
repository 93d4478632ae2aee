//! Human text fields: trimmed, inner whitespace collapsed, no control characters, bounded.

/// Normalises a short text (names, labels). Errors are French messages.
pub fn clean_text(raw: &str, max_chars: usize) -> Result<String, &'static str> {
    if raw.chars().any(char::is_control) {
        return Err("Ce champ contient des caractères non autorisés.");
    }
    let cleaned = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        return Err("Ce champ est obligatoire.");
    }
    if cleaned.chars().count() > max_chars {
        return Err("Ce champ est trop long.");
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cleans_and_refuses() {
        assert_eq!(
            clean_text("  Maison   France Services ", 100).unwrap(),
            "Maison France Services"
        );
        assert!(clean_text("   ", 100).is_err());
        assert!(clean_text("a\u{0}b", 100).is_err());
        assert!(clean_text(&"x".repeat(101), 100).is_err());
    }

    proptest! {
        #[test]
        fn output_is_trimmed_and_bounded(s in ".{0,150}") {
            if let Ok(c) = clean_text(&s, 100) {
                prop_assert!(!c.starts_with(' ') && !c.ends_with(' '));
                prop_assert!(c.chars().count() <= 100);
                prop_assert!(!c.contains("  "));
            }
        }
    }
}
