//! Retention (product rule 8): one policy, loaded once from `MANDAT_RETENTION_FILE`, applied
//! class by class by one job — `mandat retention run [--dry-run]`, and on a schedule inside
//! `serve` (hourly by default).
//!
//! A real run removes, in one transaction with one `retention.applied` event (counts and
//! audit index ranges, never content):
//! - `audit_payload.access_log`: payloads of access events (logins, reads) older than
//!   `access_log_days`;
//! - `audit_payload.mandate_evidence`: payloads of events about a mandate older than
//!   `mandate_evidence_days` + the longest life of a mandate (so they are kept at least
//!   `mandate_evidence_days` after the mandate ends);
//! - `audit_payload.other`: payloads of the other events older than `mandate_evidence_days`;
//! - `consent_challenge`: challenges closed (used, refused, expired, locked, void) more than
//!   `consent_challenge_days` ago;
//! - `session`: sessions last seen more than `access_log_days` ago;
//! - `usager_identity`: usagers whose last mandate ended more than
//!   `usager_identity_active_days + usager_identity_archive_days` ago (and at least
//!   `mandate_evidence_days`, since their key also opens the mandate terms) are crypto-shredded
//!   (each also records `usager.erased`), at most [`USAGER_BATCH`] per run;
//! - `usager_identity.archived`: usagers whose last mandate ended more than
//!   `usager_identity_active_days` ago are archived: the organisations linked to them no
//!   longer find or read them, the DPO still reads them (for proof) until they are shredded.
//!
//! Audit payloads also have a floor the database enforces (`prune_after`, set when the event
//! is sequenced): a shorter period in the file cannot remove them earlier. Hashes are never
//! removed, so verification still passes. A dry run counts the same rows and changes nothing.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::audit::sequencer::ACCESS_ACTIONS;
use crate::audit::{self, Details, NewEvent, RetentionCount};
use crate::domain::mandate::{ConsentChannel, MandateDuration, erasure_allowed};
use crate::error::ApiResult;
use crate::service::Services;
use crate::store::PayloadSelection;

/// The retention file used when `MANDAT_RETENTION_FILE` is not set.
pub const DEFAULT_FILE: &str = "policies/retention.toml";
/// Usagers crypto-shredded per run at most (the next run continues).
pub const USAGER_BATCH: i64 = 500;
/// Largest period accepted in the file (100 years).
const MAX_DAYS: i64 = 36_500;

/// Retention periods by class, in days (`[retention]` of the retention file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    pub consent_challenge_days: i64,
    pub access_log_days: i64,
    pub mandate_evidence_days: i64,
    pub usager_identity_active_days: i64,
    pub usager_identity_archive_days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    retention: RetentionPolicy,
}

impl Default for RetentionPolicy {
    /// The shipped `policies/retention.toml`.
    fn default() -> Self {
        Self {
            consent_challenge_days: 30,
            access_log_days: 365,
            mandate_evidence_days: 2192,
            usager_identity_active_days: 1096,
            usager_identity_archive_days: 1096,
        }
    }
}

impl RetentionPolicy {
    /// Parses and validates the text of a retention file (every key required, none unknown).
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: RetentionFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let p = file.retention;
        for (name, days) in [
            ("consent_challenge_days", p.consent_challenge_days),
            ("access_log_days", p.access_log_days),
            ("mandate_evidence_days", p.mandate_evidence_days),
            ("usager_identity_active_days", p.usager_identity_active_days),
            (
                "usager_identity_archive_days",
                p.usager_identity_archive_days,
            ),
        ] {
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(format!(
                    "retention.{name}: expected a number of days between 1 and {MAX_DAYS}"
                ));
            }
        }
        Ok(p)
    }

    /// Reads the file once. The default path may be absent (a run outside the source tree):
    /// the shipped defaults apply. Any other missing or malformed file is an error.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|m| format!("{}: {m}", path.display())),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && path == Path::new(DEFAULT_FILE) =>
            {
                tracing::info!(
                    path = DEFAULT_FILE,
                    "no retention file: using the default retention periods"
                );
                Ok(Self::default())
            }
            Err(e) => Err(format!("cannot read {}: {}", path.display(), e.kind())),
        }
    }

    /// Days after the last mandate of a usager ends before their data key is destroyed.
    pub fn usager_erasure_days(&self) -> i64 {
        (self.usager_identity_active_days + self.usager_identity_archive_days)
            .max(self.mandate_evidence_days)
    }
}

/// The longest a mandate lives after its first event: the longest consent window, then the
/// longest duration, plus a day of margin.
pub fn mandate_span_days() -> i64 {
    let consent = ConsentChannel::Sms
        .challenge_validity()
        .max(ConsentChannel::Print.challenge_validity());
    let longest = MandateDuration::ALL
        .iter()
        .map(|d| d.days())
        .max()
        .unwrap_or(0);
    longest + consent.num_days() + 1
}

/// What a run removed (or, dry, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub classes: Vec<RetentionCount>,
}

impl RetentionReport {
    pub fn count(&self, class: &str) -> i64 {
        self.classes
            .iter()
            .find(|c| c.class == class)
            .map_or(0, |c| c.count)
    }

    pub fn total(&self) -> i64 {
        self.classes.iter().map(|c| c.count).sum()
    }

    /// A few lines for the CLI (English, no content).
    pub fn summary(&self) -> String {
        let mut out = if self.dry_run {
            format!(
                "retention dry run: {} item(s) would be removed; nothing changed\n",
                self.total()
            )
        } else {
            format!("retention applied: {} item(s) removed\n", self.total())
        };
        for c in &self.classes {
            out.push_str(&format!("  {}: {}", c.class, c.count));
            if let (Some(a), Some(b)) = (c.first_index, c.last_index) {
                out.push_str(&format!(" (audit indexes {a}..={b})"));
            }
            out.push('\n');
        }
        out
    }
}

fn ts(t: DateTime<Utc>) -> String {
    audit::event::format_ts(t)
}

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

fn count(class: &str, count: i64) -> RetentionCount {
    RetentionCount {
        class: class.to_owned(),
        count,
        first_index: None,
        last_index: None,
    }
}

/// Applies the policy now (or only counts, when `dry_run`). A real run writes one
/// `retention.applied` event in the transaction of its deletions.
pub async fn run(state: &Services, ctx: &Ctx, dry_run: bool) -> ApiResult<RetentionReport> {
    // Payload rows exist once their events are sequenced.
    state.sequencer.barrier().await?;
    let policy = *state.retention;
    let now = state.clock.now();
    let delete = !dry_run;
    let mut tx = state.store.begin().await?;
    let mut classes = Vec::new();

    let payload_classes = [
        (
            "audit_payload.access_log",
            true,
            None,
            policy.access_log_days,
        ),
        (
            "audit_payload.mandate_evidence",
            false,
            Some(true),
            policy.mandate_evidence_days + mandate_span_days(),
        ),
        (
            "audit_payload.other",
            false,
            Some(false),
            policy.mandate_evidence_days,
        ),
    ];
    for (class, listed, with_mandate, keep_days) in payload_classes {
        let sel = PayloadSelection {
            actions: ACCESS_ACTIONS,
            listed,
            with_mandate,
            before_ts: ts(now - days(keep_days)),
            now_unix: now.timestamp(),
        };
        let s = tx.prune_audit_payloads(&sel, delete).await?;
        classes.push(RetentionCount {
            class: class.to_owned(),
            count: s.count,
            first_index: s.first,
            last_index: s.last,
        });
    }

    let n = tx
        .closed_challenges_before(now - days(policy.consent_challenge_days), delete)
        .await?;
    classes.push(count("consent_challenge", n));

    let n = tx
        .sessions_seen_before(now - days(policy.access_log_days), delete)
        .await?;
    classes.push(count("session", n));

    let erasure_days = policy.usager_erasure_days();
    let mut shredded = 0;
    for id in tx
        .usagers_ended_before(now - days(erasure_days), USAGER_BATCH)
        .await?
    {
        let mandates = tx.mandates_of_usager(id).await?;
        // The same rule as an erasure on request, with the longer period.
        if !erasure_allowed(
            &super::usagers::mandate_ends(&mandates, now),
            now,
            erasure_days,
        ) {
            continue;
        }
        if dry_run || super::usagers::shred(tx.as_mut(), id, mandates.len(), now, ctx).await? {
            shredded += 1;
        }
    }
    classes.push(count("usager_identity", shredded));

    let archived = tx
        .archive_usagers_ended_before(now - days(policy.usager_identity_active_days), now, delete)
        .await?;
    classes.push(count("usager_identity.archived", archived));

    let report = RetentionReport { dry_run, classes };
    if dry_run {
        // Nothing was written; dropping the transaction rolls back its reads.
        return Ok(report);
    }
    audit::append(
        tx.as_mut(),
        &NewEvent::new(
            now,
            ctx.actor.clone(),
            Details::RetentionApplied {
                classes: report.classes.clone(),
            },
        )
        .request_id(ctx.request_id.clone()),
    )
    .await?;
    state.commit(tx).await?;
    Ok(report)
}

/// When the job runs inside `serve`: first `first_after` start-up, then every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first_after: Duration,
    pub every: Duration,
}

impl Schedule {
    /// The schedule for a configured period: the first run comes after five minutes (or one
    /// period if shorter), so that a server restarted often still applies retention.
    pub fn every(every: Duration) -> Self {
        Self {
            first_after: every.min(Duration::from_secs(300)),
            every,
        }
    }
}

/// Runs [`run`] on `schedule` until `stop` turns true (registered by `serve`).
pub async fn run_scheduled(
    state: Services,
    schedule: Schedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + schedule.first_after,
        schedule.every,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match run(&state, &Ctx::system(), false).await {
                    Ok(r) => tracing::info!(
                        removed = r.total(),
                        audit_payloads = r.count("audit_payload.access_log")
                            + r.count("audit_payload.mandate_evidence")
                            + r.count("audit_payload.other"),
                        consent_challenges = r.count("consent_challenge"),
                        sessions = r.count("session"),
                        usagers_erased = r.count("usager_identity"),
                        "retention applied"
                    ),
                    Err(e) => tracing::warn!(error = %e, "retention job failed; retrying at the next tick"),
                }
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../policies/retention.toml");

    #[test]
    fn the_shipped_file_is_the_default() {
        assert_eq!(
            RetentionPolicy::parse(SHIPPED).unwrap(),
            RetentionPolicy::default()
        );
        assert_eq!(RetentionPolicy::default().usager_erasure_days(), 2192);
    }

    #[test]
    fn a_bad_file_is_refused_with_the_key_named() {
        let missing = SHIPPED.replace("access_log_days = 365", "");
        assert!(
            RetentionPolicy::parse(&missing)
                .unwrap_err()
                .contains("access_log_days")
        );
        let unknown = format!("{SHIPPED}\nvault_days = 3\n");
        assert!(
            RetentionPolicy::parse(&unknown)
                .unwrap_err()
                .contains("vault_days")
        );
        let zero = SHIPPED.replace("consent_challenge_days = 30", "consent_challenge_days = 0");
        assert!(
            RetentionPolicy::parse(&zero)
                .unwrap_err()
                .contains("retention.consent_challenge_days")
        );
        let text = SHIPPED.replace("= 30", "= \"30\"");
        assert!(RetentionPolicy::parse(&text).is_err());
    }

    #[test]
    fn a_missing_file_is_an_error_unless_it_is_the_default_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = RetentionPolicy::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(e.contains("nope.toml"), "{e}");
    }

    #[test]
    fn mandate_evidence_outlives_the_longest_mandate() {
        // 365 days of the longest duration + 14 days of a printed consent window + 1.
        assert_eq!(mandate_span_days(), 380);
    }

    #[test]
    fn the_first_run_comes_within_five_minutes() {
        let s = Schedule::every(Duration::from_secs(3600));
        assert_eq!(s.first_after, Duration::from_secs(300));
        let s = Schedule::every(Duration::from_millis(200));
        assert_eq!(s.first_after, Duration::from_millis(200));
    }
}
