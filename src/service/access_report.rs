//! The usager's access report: their mandates with the caller's organisation, every use
//! made of those mandates and every read of their data, from the audit log (who — aidant id
//! and organisation —, what, when). Producing it is itself an audited read. Only the
//! caller's organisation's entries are listed (no disclosure across organisations).

use serde::Serialize;
use uuid::Uuid;

use super::mandates::{Mandate, render_many};
use super::pii::open_usager;
use super::usagers::{Caller, readable};
use crate::audit::{self, Details, NewEvent};
use crate::domain::wording::{
    action_fr, birthdate_fr, date, datetime_fr, duration_fr, mandate_status_fr,
};
use crate::error::{ApiResult, AppError};
use crate::service::Services;
use crate::store::{AuditFilter, MandateFilter};

/// At most this many audit entries in one report.
const MAX_ENTRIES: i64 = 10_000;

/// Actions that disclose the usager's personal data (reads).
const READS: [&str; 3] = [
    "usager.read",
    "usager.searched",
    "mandate.attestation_printed",
];

/// One line of the report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    pub at: String,
    pub action: String,
    /// The action in plain French.
    pub label: String,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub organisation_id: Option<String>,
    pub mandate_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessReport {
    pub usager_id: Uuid,
    pub organisation_id: Uuid,
    pub generated_at: String,
    pub mandates: Vec<Mandate>,
    /// What was done with the mandates (creation, consent, revocation, …).
    pub mandate_uses: Vec<AccessEntry>,
    /// Every read of the usager's data.
    pub data_reads: Vec<AccessEntry>,
}

/// The report and, for its printed form, the usager's name and birth date.
pub struct Report {
    pub report: AccessReport,
    pub usager_name: String,
    pub usager_birthdate: String,
    pub organisation_name: String,
}

/// Builds the report of a usager of the caller's organisation (`404` otherwise); audited
/// as a read of the usager's data.
pub async fn build(state: &Services, caller: &Caller, id: Uuid) -> ApiResult<Report> {
    let now = state.clock.now();
    state.sequencer.barrier().await?;
    let mut tx = state.store.begin().await?;
    let urow = readable(state, tx.as_mut(), caller, id).await?;
    let org = tx
        .get_organisation(caller.organisation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let rows = tx
        .list_mandates(&MandateFilter {
            organisation_id: caller.organisation_id,
            usager_id: Some(id),
            status: None,
            expiring_before: None,
            now,
            before_id: None,
            limit: 1000,
        })
        .await?;
    let mandates = render_many(state, tx.as_mut(), &rows).await?;
    let entries = tx
        .search_audit(
            &AuditFilter {
                usager: Some(id.to_string()),
                organisation: Some(caller.organisation_id.to_string()),
                ..AuditFilter::default()
            },
            -1,
            MAX_ENTRIES,
        )
        .await?;
    let (reads, uses): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .map(|e| AccessEntry {
            label: action_fr(&e.action),
            at: e.ts,
            action: e.action,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            organisation_id: e.organisation_id,
            mandate_id: e.mandate_id,
        })
        .partition(|e| READS.contains(&e.action.as_str()));
    let uses = uses
        .into_iter()
        .filter(|e| e.mandate_id.is_some())
        .collect();
    let plain = open_usager(&state.keyring, &urow)?;
    let event = NewEvent::new(now, caller.actor(), Details::UsagerRead {})
        .organisation(caller.organisation_id)
        .usager(id)
        .request_id(caller.request_id.clone());
    audit::append(tx.as_mut(), &event).await?;
    state.commit(tx).await?;
    Ok(Report {
        report: AccessReport {
            usager_id: id,
            organisation_id: caller.organisation_id,
            generated_at: crate::domain::time::format(now),
            mandates,
            mandate_uses: uses,
            data_reads: reads,
        },
        usager_name: format!("{} {}", *plain.given_name, *plain.family_name),
        usager_birthdate: birthdate_fr(&plain.birthdate),
        organisation_name: org.name,
    })
}

fn who(e: &AccessEntry) -> String {
    match (e.actor_kind.as_str(), e.actor_id.as_deref()) {
        ("aidant", Some(id)) => format!("aidant {id}"),
        ("usager", _) => "vous-même".to_owned(),
        ("system", _) => "le service (automatique)".to_owned(),
        (kind, Some(id)) => format!("{kind} {id}"),
        (kind, None) => kind.to_owned(),
    }
}

/// The printed form of the report.
pub fn pdf(r: &Report) -> ApiResult<Vec<u8>> {
    let line = |e: &AccessEntry| {
        format!(
            "{} — {} — par {}{}",
            datetime_fr(&e.at),
            e.label,
            who(e),
            e.mandate_id
                .as_deref()
                .map(|m| format!(" (mandat {m})"))
                .unwrap_or_default()
        )
    };
    let input = crate::pdf::AccessReportDoc {
        organisation: r.organisation_name.clone(),
        usager_name: r.usager_name.clone(),
        usager_birthdate: r.usager_birthdate.clone(),
        generated_at: datetime_fr(&r.report.generated_at),
        mandates: r
            .report
            .mandates
            .iter()
            .map(|m| {
                format!(
                    "Mandat {} — {} — {} — préparé le {}{}",
                    m.id,
                    mandate_status_fr(&m.status),
                    duration_fr(&m.duration),
                    date(m.created_at),
                    m.expires_at
                        .map(|e| format!(", fin le {}", date(e)))
                        .unwrap_or_default()
                )
            })
            .collect(),
        uses: r.report.mandate_uses.iter().map(line).collect(),
        reads: r.report.data_reads.iter().map(line).collect(),
    };
    crate::pdf::access_report(&input).map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
}
