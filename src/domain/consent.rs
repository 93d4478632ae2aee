//! Consent codes and the rules of a consent challenge (pure, except code generation which
//! draws from the system's secure random generator).
//!
//! Printed code: 12 Crockford base32 characters (60 bits), shown grouped 4-4-4.
//! SMS code: 6 digits. Input is normalised (spaces, dashes, case, `O`→`0`, `I`/`L`→`1`).

use std::fmt;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::mandate::ConsentChannel;
use crate::crypto::CryptoError;
use crate::crypto::tokens::random_below;

/// Crockford's base32 alphabet (no I, L, O, U).
pub const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const PRINT_CODE_LEN: usize = 12;
pub const SMS_CODE_LEN: usize = 6;
/// Wrong codes accepted before the challenge locks (the fifth locks it).
pub const MAX_ATTEMPTS: i64 = 5;

/// A consent code in canonical form (what is hashed). Redacted `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct ConsentCode(Zeroizing<String>);

impl fmt::Debug for ConsentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsentCode([redacted])")
    }
}

impl ConsentCode {
    /// A fresh random code for the channel.
    pub fn generate(channel: ConsentChannel) -> Result<Self, CryptoError> {
        let mut s = Zeroizing::new(String::with_capacity(PRINT_CODE_LEN));
        match channel {
            ConsentChannel::Print => {
                for _ in 0..PRINT_CODE_LEN {
                    s.push(char::from(CROCKFORD[random_below(32)? as usize]));
                }
            }
            ConsentChannel::Sms => {
                let n = random_below(1_000_000)?;
                s.push_str(&format!("{n:06}"));
            }
        }
        Ok(Self(s))
    }

    /// Normalises what a person typed; `None` when it cannot be a code of this channel.
    pub fn normalise(channel: ConsentChannel, raw: &str) -> Option<Self> {
        if raw.len() > 64 {
            return None;
        }
        let mut s = Zeroizing::new(String::with_capacity(PRINT_CODE_LEN));
        for c in raw.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\u{a0}' | '\u{202f}' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            s.push(c);
        }
        let ok = match channel {
            ConsentChannel::Print => {
                s.len() == PRINT_CODE_LEN && s.bytes().all(|b| CROCKFORD.contains(&b))
            }
            ConsentChannel::Sms => s.len() == SMS_CODE_LEN && s.bytes().all(|b| b.is_ascii_digit()),
        };
        ok.then_some(Self(s))
    }

    /// The canonical form (hash input).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The printed form: `ABCD-EFGH-JKMN` for printed codes, digits as is for SMS.
    pub fn display(&self) -> String {
        if self.0.len() == PRINT_CODE_LEN {
            format!("{}-{}-{}", &self.0[..4], &self.0[4..8], &self.0[8..])
        } else {
            self.0.to_string()
        }
    }
}

/// Status of a challenge as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Open,
    Accepted,
    Refused,
    Expired,
    Locked,
    /// Replaced by a resend.
    Void,
}

impl ChallengeStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "accepted" => Self::Accepted,
            "refused" => Self::Refused,
            "expired" => Self::Expired,
            "locked" => Self::Locked,
            "void" => Self::Void,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
            Self::Expired => "expired",
            Self::Locked => "locked",
            Self::Void => "void",
        }
    }
    /// The status as seen at `now` (an open challenge past its expiry is expired).
    pub fn effective(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        if self == Self::Open && now >= expires_at {
            Self::Expired
        } else {
            self
        }
    }
}

/// What a code entry leads to, decided before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right code: consent recorded with the requested decision.
    Accepted,
    /// Wrong code, attempts remain.
    Wrong { attempts_left: i64 },
    /// Wrong code and no attempt left: the challenge locks, the mandate is refused.
    Lock,
    /// Too late: the challenge expires, and the mandate with it.
    Late,
    /// Already locked.
    Locked,
    /// Already answered, replaced, or expired earlier: nothing to do.
    Closed,
}

/// Decides a code entry. `attempts` is the count of wrong codes before this one.
pub fn judge(
    status: ChallengeStatus,
    expires_at: DateTime<Utc>,
    attempts: i64,
    now: DateTime<Utc>,
    code_matches: bool,
) -> Verdict {
    match status {
        ChallengeStatus::Locked => return Verdict::Locked,
        ChallengeStatus::Expired => return Verdict::Late,
        ChallengeStatus::Open => {}
        _ => return Verdict::Closed,
    }
    if now >= expires_at {
        return Verdict::Late;
    }
    if attempts >= MAX_ATTEMPTS {
        return Verdict::Locked;
    }
    if code_matches {
        return Verdict::Accepted;
    }
    let left = MAX_ATTEMPTS - attempts - 1;
    if left <= 0 {
        Verdict::Lock
    } else {
        Verdict::Wrong {
            attempts_left: left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone as _};
    use proptest::prelude::*;

    #[test]
    fn generated_codes_have_their_shape() {
        for _ in 0..200 {
            let p = ConsentCode::generate(ConsentChannel::Print).unwrap();
            assert_eq!(p.expose().len(), 12);
            assert!(p.expose().bytes().all(|b| CROCKFORD.contains(&b)));
            let d = p.display();
            assert_eq!(d.len(), 14);
            assert_eq!(&d[4..5], "-");
            assert_eq!(
                ConsentCode::normalise(ConsentChannel::Print, &d)
                    .unwrap()
                    .expose(),
                p.expose()
            );
            let s = ConsentCode::generate(ConsentChannel::Sms).unwrap();
            assert_eq!(s.expose().len(), 6);
            assert!(s.expose().bytes().all(|b| b.is_ascii_digit()));
        }
        let p = ConsentCode::generate(ConsentChannel::Print).unwrap();
        assert!(!format!("{p:?}").contains(p.expose()));
    }

    #[test]
    fn normalisation() {
        let n = |c, s| ConsentCode::normalise(c, s).map(|c| c.expose().to_owned());
        assert_eq!(
            n(ConsentChannel::Print, "abcd efgh jkmn").as_deref(),
            Some("ABCDEFGHJKMN")
        );
        assert_eq!(
            n(ConsentChannel::Print, "o1il-OOOO-1111").as_deref(),
            Some("011100001111")
        );
        assert_eq!(
            n(ConsentChannel::Print, "ABCD-EFGH-JKMU"),
            None,
            "U is not Crockford"
        );
        assert_eq!(n(ConsentChannel::Print, "ABCD-EFGH-JKM"), None);
        assert_eq!(
            n(ConsentChannel::Sms, " 123-456 ").as_deref(),
            Some("123456")
        );
        assert_eq!(n(ConsentChannel::Sms, "12345O").as_deref(), Some("123450"));
        assert_eq!(n(ConsentChannel::Sms, "12345"), None);
        assert_eq!(n(ConsentChannel::Sms, "12345a"), None);
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
    }

    #[test]
    fn five_wrong_codes_lock() {
        let exp = now() + Duration::minutes(10);
        let mut attempts = 0;
        let mut lefts = vec![];
        loop {
            match judge(ChallengeStatus::Open, exp, attempts, now(), false) {
                Verdict::Wrong { attempts_left } => {
                    lefts.push(attempts_left);
                    attempts += 1;
                }
                Verdict::Lock => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(lefts, [4, 3, 2, 1]);
        assert_eq!(attempts, 4, "the fifth wrong code locks");
        assert_eq!(
            judge(ChallengeStatus::Locked, exp, 5, now(), true),
            Verdict::Locked
        );
        assert_eq!(
            judge(ChallengeStatus::Open, exp, 0, exp, true),
            Verdict::Late
        );
        assert_eq!(
            judge(ChallengeStatus::Accepted, exp, 0, now(), true),
            Verdict::Closed
        );
    }

    proptest! {
        #[test]
        fn normalise_never_panics(s in "\\PC{0,80}") {
            let _ = ConsentCode::normalise(ConsentChannel::Print, &s);
            let _ = ConsentCode::normalise(ConsentChannel::Sms, &s);
        }

        #[test]
        fn lowercase_and_separators_are_harmless(idx in prop::collection::vec(0usize..32, 12), seps in prop::collection::vec(prop::sample::select(vec!["", " ", "-"]), 12)) {
            let canonical: String = idx.iter().map(|i| char::from(CROCKFORD[*i])).collect();
            let typed: String = canonical.chars().zip(&seps).map(|(c, s)| format!("{}{s}", c.to_ascii_lowercase())).collect();
            let n = ConsentCode::normalise(ConsentChannel::Print, &typed).unwrap();
            prop_assert_eq!(n.expose(), canonical.as_str());
        }

        #[test]
        fn a_right_code_in_time_is_accepted_unless_exhausted(attempts in 0i64..8, mins in 0i64..20) {
            let exp = now() + Duration::minutes(10);
            let at = now() + Duration::minutes(mins);
            let v = judge(ChallengeStatus::Open, exp, attempts, at, true);
            let expected = if at >= exp { Verdict::Late } else if attempts >= MAX_ATTEMPTS { Verdict::Locked } else { Verdict::Accepted };
            prop_assert_eq!(v, expected);
        }

        #[test]
        fn wrong_codes_never_accept(attempts in 0i64..8, status in prop::sample::select(vec![ChallengeStatus::Open, ChallengeStatus::Accepted, ChallengeStatus::Locked, ChallengeStatus::Void, ChallengeStatus::Refused])) {
            let exp = now() + Duration::minutes(10);
            prop_assert_ne!(judge(status, exp, attempts, now(), false), Verdict::Accepted);
        }
    }
}
