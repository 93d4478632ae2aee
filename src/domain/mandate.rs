//! Mandates: duration, channel, statuses and the lifecycle as pure functions.
//!
//! ```text
//! pending_consent ──accept──> active ──revoke all──> revoked
//! pending_consent ──refuse | lock──> refused      active ──expires_at passed──> expired
//! pending_consent ──challenge expired──> expired
//! active | expired (≤ 365 days) ──renew──> new mandate (pending_consent)
//! ```

use chrono::{DateTime, Duration, Utc};

/// How long a mandate runs from activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MandateDuration {
    Short,
    Month,
    Semester,
    Long,
}

impl MandateDuration {
    pub const ALL: [Self; 4] = [Self::Short, Self::Month, Self::Semester, Self::Long];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Month => "month",
            Self::Semester => "semester",
            Self::Long => "long",
        }
    }
    pub fn days(self) -> i64 {
        match self {
            Self::Short => 1,
            Self::Month => 31,
            Self::Semester => 182,
            Self::Long => 365,
        }
    }
    /// French wording for SMS and documents.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Short => "1 jour",
            Self::Month => "31 jours",
            Self::Semester => "182 jours (6 mois)",
            Self::Long => "365 jours (1 an)",
        }
    }
    /// `activated_at + duration`, exact.
    pub fn expires_at(self, activated_at: DateTime<Utc>) -> DateTime<Utc> {
        activated_at + Duration::days(self.days())
    }
}

/// How the usager gives consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentChannel {
    Sms,
    Print,
}

impl ConsentChannel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sms" => Some(Self::Sms),
            "print" => Some(Self::Print),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Print => "print",
        }
    }
    /// How long a challenge on this channel stays open.
    pub fn challenge_validity(self) -> Duration {
        match self {
            Self::Sms => Duration::minutes(10),
            Self::Print => Duration::days(14),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MandateStatus {
    PendingConsent,
    Active,
    Refused,
    Expired,
    Revoked,
}

impl MandateStatus {
    pub const ALL: [Self; 5] = [
        Self::PendingConsent,
        Self::Active,
        Self::Refused,
        Self::Expired,
        Self::Revoked,
    ];
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingConsent => "pending_consent",
            Self::Active => "active",
            Self::Refused => "refused",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(self, Self::Refused | Self::Expired | Self::Revoked)
    }
    /// The status as seen at `now`: an active mandate past its expiry is expired even
    /// before the expiry job records it.
    pub fn effective(self, expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match (self, expires_at) {
            (Self::Active, Some(e)) if now >= e => Self::Expired,
            (s, _) => s,
        }
    }
}

/// What can happen to a mandate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The right code was given.
    Accept,
    /// The usager refused (with the code).
    Refuse,
    /// Too many wrong codes.
    Lock,
    /// The consent challenge expired unanswered.
    ChallengeExpired,
    /// Every démarche is now revoked.
    RevokeAll,
    /// `expires_at` has passed.
    Expire,
}

/// The transition refused: the caller answers `409 conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("transition {event:?} not allowed from {from:?}")]
pub struct TransitionError {
    pub from: MandateStatus,
    pub event: Event,
}

/// The lifecycle: the next status, or an error when the event does not apply.
pub fn transition(from: MandateStatus, event: Event) -> Result<MandateStatus, TransitionError> {
    use MandateStatus as S;
    match (from, event) {
        (S::PendingConsent, Event::Accept) => Ok(S::Active),
        (S::PendingConsent, Event::Refuse | Event::Lock) => Ok(S::Refused),
        (S::PendingConsent, Event::ChallengeExpired) => Ok(S::Expired),
        (S::Active, Event::RevokeAll) => Ok(S::Revoked),
        (S::Active, Event::Expire) => Ok(S::Expired),
        _ => Err(TransitionError { from, event }),
    }
}

/// Status of one démarche of a mandate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemarcheStatus {
    Active,
    Revoked,
    Expired,
}

impl DemarcheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
    /// Stored status (`active`/`revoked`) seen through the mandate's effective status.
    pub fn effective(revoked: bool, mandate: MandateStatus) -> Self {
        if revoked {
            Self::Revoked
        } else if mandate == MandateStatus::Expired {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// Why démarches were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    UsagerRequest,
    Deceased,
    Error,
    Other,
    /// Set by the system when a newer mandate of the same organisation covers the démarche.
    Replaced,
}

impl RevocationReason {
    /// The reasons a person may give (`replaced` is not one of them).
    pub fn parse_requested(s: &str) -> Option<Self> {
        match s {
            "usager_request" => Some(Self::UsagerRequest),
            "deceased" => Some(Self::Deceased),
            "error" => Some(Self::Error),
            "other" => Some(Self::Other),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsagerRequest => "usager_request",
            Self::Deceased => "deceased",
            Self::Error => "error",
            Self::Other => "other",
            Self::Replaced => "replaced",
        }
    }
}

/// The outcome of a revocation request over a mandate's démarches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationPlan {
    /// Démarches to mark revoked now (sorted).
    pub revoke: Vec<String>,
    /// Whether the mandate as a whole becomes revoked.
    pub revokes_mandate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("mandate not active")]
    NotActive,
    #[error("démarche not part of the mandate")]
    UnknownDemarche,
    #[error("démarche already revoked")]
    AlreadyRevoked,
}

/// Plans a revocation: `requested = None` revokes every still-active démarche.
/// `current` lists `(démarche, revoked)`.
pub fn plan_revocation(
    status: MandateStatus,
    current: &[(String, bool)],
    requested: Option<&[String]>,
) -> Result<RevocationPlan, RevocationError> {
    if status != MandateStatus::Active {
        return Err(RevocationError::NotActive);
    }
    let active: Vec<&String> = current.iter().filter(|(_, r)| !r).map(|(d, _)| d).collect();
    let mut revoke: Vec<String> = match requested {
        None => active.iter().map(|d| (*d).clone()).collect(),
        Some(list) => {
            for d in list {
                match current.iter().find(|(c, _)| c == d) {
                    None => return Err(RevocationError::UnknownDemarche),
                    Some((_, true)) => return Err(RevocationError::AlreadyRevoked),
                    Some((_, false)) => {}
                }
            }
            list.to_vec()
        }
    };
    revoke.sort();
    revoke.dedup();
    if revoke.is_empty() {
        return Err(RevocationError::AlreadyRevoked);
    }
    let revokes_mandate = active.iter().all(|d| revoke.contains(d));
    Ok(RevocationPlan {
        revoke,
        revokes_mandate,
    })
}

/// How long after its expiry a mandate may still be renewed.
pub const RENEWAL_GRACE_DAYS: i64 = 365;

/// Renewal is allowed while active, or expired for at most 365 days; never when pending,
/// refused or fully revoked.
pub fn can_renew(
    status: MandateStatus,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match status.effective(expires_at, now) {
        MandateStatus::Active => true,
        MandateStatus::Expired => {
            expires_at.is_some_and(|e| now <= e + Duration::days(RENEWAL_GRACE_DAYS))
        }
        _ => false,
    }
}

/// Démarches of an older active mandate that a newly active one replaces: those it also
/// covers (the caller restricts to the same organisation and usager).
pub fn replaced_demarches(old_active: &[String], new: &[String]) -> Vec<String> {
    let mut out: Vec<String> = old_active
        .iter()
        .filter(|d| new.contains(d))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Erasure on request: allowed when the usager never had a mandate, or when every mandate
/// has ended (`end` = when it was refused, expired or revoked) more than `retention_days`
/// ago (mandate evidence is kept that long). `mandates` lists `(status, end)`.
pub fn erasure_allowed(
    mandates: &[(MandateStatus, Option<DateTime<Utc>>)],
    now: DateTime<Utc>,
    retention_days: i64,
) -> bool {
    mandates.iter().all(|(status, end)| {
        status.is_final() && end.is_some_and(|e| now > e + Duration::days(retention_days))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
    }

    #[test]
    fn durations() {
        let d: Vec<i64> = MandateDuration::ALL.iter().map(|d| d.days()).collect();
        assert_eq!(d, [1, 31, 182, 365]);
        assert_eq!(
            MandateDuration::Long.expires_at(t0()),
            t0() + Duration::days(365)
        );
        assert_eq!(
            MandateDuration::parse("semester"),
            Some(MandateDuration::Semester)
        );
        assert_eq!(MandateDuration::parse("year"), None);
    }

    #[test]
    fn revocation_plans() {
        let cur = vec![
            ("argent".to_owned(), false),
            ("social".to_owned(), false),
            ("travail".to_owned(), true),
        ];
        let p = plan_revocation(MandateStatus::Active, &cur, Some(&["social".into()])).unwrap();
        assert_eq!(
            p,
            RevocationPlan {
                revoke: vec!["social".into()],
                revokes_mandate: false
            }
        );
        let p = plan_revocation(MandateStatus::Active, &cur, None).unwrap();
        assert_eq!(p.revoke, ["argent", "social"]);
        assert!(p.revokes_mandate);
        assert_eq!(
            plan_revocation(MandateStatus::Active, &cur, Some(&["travail".into()])),
            Err(RevocationError::AlreadyRevoked)
        );
        assert_eq!(
            plan_revocation(MandateStatus::Active, &cur, Some(&["papiers".into()])),
            Err(RevocationError::UnknownDemarche)
        );
        assert_eq!(
            plan_revocation(MandateStatus::Revoked, &cur, None),
            Err(RevocationError::NotActive)
        );
    }

    #[test]
    fn renewal_rules() {
        let exp = t0();
        assert!(can_renew(
            MandateStatus::Active,
            Some(exp),
            exp - Duration::days(1)
        ));
        assert!(
            can_renew(MandateStatus::Active, Some(exp), exp + Duration::days(365)),
            "seen as expired, within grace"
        );
        assert!(can_renew(
            MandateStatus::Expired,
            Some(exp),
            exp + Duration::days(365)
        ));
        assert!(!can_renew(
            MandateStatus::Expired,
            Some(exp),
            exp + Duration::days(365) + Duration::seconds(1)
        ));
        assert!(!can_renew(
            MandateStatus::Revoked,
            Some(exp),
            exp - Duration::days(1)
        ));
        assert!(!can_renew(MandateStatus::PendingConsent, None, exp));
        assert!(!can_renew(MandateStatus::Refused, None, exp));
    }

    #[test]
    fn erasure_rules() {
        let now = t0();
        assert!(erasure_allowed(&[], now, 2192), "never had a mandate");
        let old = Some(now - Duration::days(2193));
        let recent = Some(now - Duration::days(10));
        assert!(erasure_allowed(
            &[(MandateStatus::Revoked, old), (MandateStatus::Refused, old)],
            now,
            2192
        ));
        assert!(!erasure_allowed(
            &[
                (MandateStatus::Revoked, old),
                (MandateStatus::Expired, recent)
            ],
            now,
            2192
        ));
        assert!(
            !erasure_allowed(&[(MandateStatus::Active, old)], now, 2192),
            "active"
        );
        assert!(!erasure_allowed(
            &[(MandateStatus::PendingConsent, None)],
            now,
            2192
        ));
    }

    fn status() -> impl Strategy<Value = MandateStatus> {
        prop::sample::select(MandateStatus::ALL.to_vec())
    }
    fn event() -> impl Strategy<Value = Event> {
        prop::sample::select(vec![
            Event::Accept,
            Event::Refuse,
            Event::Lock,
            Event::ChallengeExpired,
            Event::RevokeAll,
            Event::Expire,
        ])
    }

    proptest! {
        #[test]
        fn final_states_are_final(s in status(), e in event()) {
            if s.is_final() {
                prop_assert!(transition(s, e).is_err());
            }
        }

        #[test]
        fn only_pending_can_become_active(s in status(), e in event()) {
            if let Ok(MandateStatus::Active) = transition(s, e) {
                prop_assert_eq!(s, MandateStatus::PendingConsent);
                prop_assert_eq!(e, Event::Accept);
            }
        }

        #[test]
        fn any_event_sequence_stays_in_the_graph(events in prop::collection::vec(event(), 0..12)) {
            let mut s = MandateStatus::PendingConsent;
            let mut activations = 0;
            for e in events {
                if let Ok(next) = transition(s, e) {
                    prop_assert_ne!(next, s);
                    if next == MandateStatus::Active { activations += 1; }
                    if next == MandateStatus::Revoked { prop_assert_eq!(s, MandateStatus::Active); }
                    s = next;
                }
            }
            prop_assert!(activations <= 1, "a mandate is activated at most once");
        }

        #[test]
        fn full_revocation_iff_every_active_demarche_is_revoked(
            flags in prop::collection::vec(any::<bool>(), 1..10),
            pick in prop::collection::vec(any::<bool>(), 10),
        ) {
            let cur: Vec<(String, bool)> = flags.iter().enumerate().map(|(i, r)| (format!("d{i}"), *r)).collect();
            let requested: Vec<String> = cur.iter().zip(&pick).filter(|((_, r), p)| !r && **p).map(|((d, _), _)| d.clone()).collect();
            match plan_revocation(MandateStatus::Active, &cur, Some(&requested)) {
                Ok(p) => {
                    let remaining = cur.iter().filter(|(d, r)| !r && !p.revoke.contains(d)).count();
                    prop_assert_eq!(p.revokes_mandate, remaining == 0);
                }
                Err(e) => prop_assert_eq!(e, RevocationError::AlreadyRevoked, "only when nothing to revoke"),
            }
        }

        #[test]
        fn expiry_is_exact(secs in 0i64..400 * 86_400, d in prop::sample::select(MandateDuration::ALL.to_vec())) {
            let act = t0();
            let exp = d.expires_at(act);
            let now = act + Duration::seconds(secs);
            let eff = MandateStatus::Active.effective(Some(exp), now);
            prop_assert_eq!(eff == MandateStatus::Expired, secs >= d.days() * 86_400);
        }

        #[test]
        fn replacement_is_the_intersection(a in prop::collection::btree_set("[a-e]", 0..5), b in prop::collection::btree_set("[a-e]", 0..5)) {
            let a: Vec<String> = a.into_iter().collect();
            let b: Vec<String> = b.into_iter().collect();
            let r = replaced_demarches(&a, &b);
            for d in &r { prop_assert!(a.contains(d) && b.contains(d)); }
            for d in &a { prop_assert_eq!(b.contains(d), r.contains(d)); }
        }
    }
}
