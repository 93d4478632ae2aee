//! RFC 6238 TOTP (SHA-1, 6 digits) through `totp-rs`: seeds, provisioning URIs, and a
//! verification that returns the matched time step so a code is accepted only once.

use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

/// Step of authenticator apps and of physical cards.
pub const APP_STEP: u64 = 30;
pub const CARD_STEP: u64 = 60;

/// A TOTP seed in clear: zeroized on drop, never printed.
pub struct Seed(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed([redacted])")
    }
}

impl Seed {
    pub fn generate() -> Result<Self, super::CryptoError> {
        let mut b = Zeroizing::new(vec![0u8; 20]);
        super::tokens::fill_random(&mut b)?;
        Ok(Self(b))
    }

    pub fn from_bytes(b: Vec<u8>) -> Self {
        Self(Zeroizing::new(b))
    }

    /// A card seed as printed by its maker: RFC 4648 base32 (padding optional) or hex.
    pub fn parse_card(text: &str, hex_encoded: bool) -> Option<Self> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let bytes = if hex_encoded {
            hex::decode(&cleaned).ok()?
        } else {
            Secret::Encoded(cleaned.trim_end_matches('=').to_uppercase())
                .to_bytes()
                .ok()?
        };
        (10..=64)
            .contains(&bytes.len())
            .then(|| Self::from_bytes(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 (RFC 4648, no padding), as authenticator apps expect.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(Secret::Raw(self.0.to_vec()).to_encoded().to_string())
    }

    fn totp(&self, step: u64) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            0,
            step,
            self.0.to_vec(),
            None,
            String::new(),
        )
    }

    /// `otpauth://totp/...` for a QR code.
    pub fn otpauth_uri(&self, account: &str) -> Zeroizing<String> {
        let t = TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            1,
            APP_STEP,
            self.0.to_vec(),
            Some("mandat".into()),
            account.to_owned(),
        );
        Zeroizing::new(t.get_url())
    }

    /// The code at a unix time (tests and step-up helpers).
    pub fn code_at(&self, step_secs: u64, unix: u64) -> String {
        self.totp(step_secs).generate(unix)
    }

    /// Checks `code` within `window` steps around `unix`; returns the matched step if it is
    /// later than `last_used_step` (a code is accepted once).
    pub fn verify(
        &self,
        code: &str,
        step_secs: u64,
        unix: u64,
        window: i64,
        last_used_step: Option<i64>,
    ) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(step_secs);
        let current = i64::try_from(unix / step_secs).ok()?;
        let mut matched = None;
        for offset in -window..=window {
            let step = current + offset;
            if step < 0 || last_used_step.is_some_and(|last| step <= last) {
                continue;
            }
            let expected = totp.generate(u64::try_from(step).ok()? * step_secs);
            if super::ct_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 Appendix B, SHA-1 seed "12345678901234567890", 8 digits → last 6 digits.
        let s = Seed::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(s.code_at(30, 59), "287082");
        assert_eq!(s.code_at(30, 1_111_111_109), "081804");
    }

    #[test]
    fn accepted_once_and_within_window() {
        let s = Seed::generate().unwrap();
        let now = 1_800_000_000;
        let code = s.code_at(APP_STEP, now);
        let step = s.verify(&code, APP_STEP, now, 1, None).unwrap();
        assert_eq!(
            s.verify(&code, APP_STEP, now, 1, Some(step)),
            None,
            "replay refused"
        );
        assert!(
            s.verify(&code, APP_STEP, now + 30, 1, None).is_some(),
            "previous step accepted"
        );
        assert!(
            s.verify(&code, APP_STEP, now + 90, 1, None).is_none(),
            "outside the window"
        );
        assert!(s.verify("12345", APP_STEP, now, 1, None).is_none());
        assert!(!format!("{s:?}").contains(&*s.base32()));
    }

    #[test]
    fn card_seeds() {
        let b32 = Seed::parse_card("JBSW Y3DP EHPK 3PXP", false).unwrap();
        assert_eq!(b32.bytes(), b"Hello!\xde\xad\xbe\xef");
        let hx = Seed::parse_card("48656c6c6f21deadbeef", true).unwrap();
        assert_eq!(hx.bytes(), b32.bytes());
        assert!(Seed::parse_card("not base32!", false).is_none());
        assert!(Seed::parse_card("AAAA", false).is_none(), "too short");
    }
}
