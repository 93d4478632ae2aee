//! The use cases decide authorization themselves, as their first step: called directly (as
//! the pages, the API and the command line all do) by a principal the policies refuse, they
//! answer `403` and change nothing, whatever adapter forgot to check.

use mandat::audit::Actor;
use mandat::domain::audit_query::{AuditQuery, RawAuditQuery};
use mandat::domain::mandate::{ConsentChannel, RevocationReason};
use mandat::service::mandates;
use mandat::service::usagers::{self, Caller};
use mandat::service::{Ctx, access_report, audit, consent, documents};

use crate::common::TestApp;
use crate::mandates_support::*;

/// The same aidant and organisation, but a principal no longer member of it (what a stale or
/// forged caller would carry).
fn outsider(c: &Caller) -> Caller {
    let mut o = c.clone();
    o.principal.member_of.clear();
    o.principal.referent_of.clear();
    o
}

#[tokio::test]
async fn use_cases_refuse_a_principal_the_policies_refuse_and_change_nothing() {
    let app = TestApp::builder()
        .org("France Services Lille")
        .member("aidant")
        .usager()
        .mandate(&["logement"])
        .spawn()
        .await;
    let (c, u) = (app.scene.member().caller.clone(), app.scene.usager());
    let active = app.scene.mandate().clone();
    let m = print_mandate(&app, &c, u, &["social"]).await;
    let o = outsider(&c);
    let s = &app.state;
    app.state.sequencer.barrier().await.unwrap();
    let events_before = app.audit_events().await.len();

    let denied = |e: mandat::error::AppError| status_of(&e);
    assert_eq!(denied(mandates::get(s, &o, m.id).await.unwrap_err()), 403);
    assert_eq!(
        denied(
            mandates::list(s, &o, &Default::default())
                .await
                .unwrap_err()
        ),
        403
    );
    assert_eq!(
        denied(
            try_mandate(&app, &o, u, &["social"], ConsentChannel::Print)
                .await
                .unwrap_err()
        ),
        403
    );
    assert_eq!(
        denied(
            mandates::revoke(s, &o, active.id, None, RevocationReason::Error)
                .await
                .unwrap_err()
        ),
        403
    );
    let code = m.consent.as_ref().unwrap().code.clone().unwrap();
    assert_eq!(
        denied(
            consent::consent_at_desk(s, &o, m.id, &code)
                .await
                .unwrap_err()
        ),
        403
    );
    assert_eq!(
        denied(consent::printed_code(s, &o, m.id).await.unwrap_err()),
        403
    );
    assert_eq!(
        denied(documents::attestation(s, &o, m.id).await.unwrap_err()),
        403
    );
    assert_eq!(denied(usagers::get(s, &o, u).await.unwrap_err()), 403);
    assert_eq!(
        denied(
            usagers::create(s, &o, input(&app, None), None)
                .await
                .err()
                .unwrap()
        ),
        403
    );
    assert_eq!(
        denied(usagers::search(s, &o, FAMILY, 10).await.unwrap_err()),
        403
    );
    assert_eq!(
        denied(access_report::build(s, &o, u).await.err().unwrap()),
        403
    );
    // The audit trail: an aidant's principal is not the DPO's.
    let aidant = Ctx {
        actor: Actor::aidant(o.aidant_id),
        principal: Some(c.principal.clone()),
        request_id: None,
    };
    let q = AuditQuery::parse(&RawAuditQuery::default()).unwrap();
    assert_eq!(
        denied(
            audit::search(s, &aidant, None, &q, None, 10)
                .await
                .unwrap_err()
        ),
        403
    );
    assert_eq!(
        denied(audit::verify(s, &aidant, &[]).await.unwrap_err()),
        403
    );
    assert_eq!(
        denied(usagers::erase(s, &aidant, u).await.unwrap_err()),
        403
    );

    // Nothing changed: no event written, the mandates as they were.
    app.state.sequencer.barrier().await.unwrap();
    assert_eq!(app.audit_events().await.len(), events_before);
    assert_eq!(
        mandates::get(s, &c, m.id).await.unwrap().status,
        "pending_consent"
    );
    assert_eq!(
        mandates::get(s, &c, active.id).await.unwrap().status,
        "active"
    );
}
