//! The mandate lifecycle through the services: replacement, revocation, renewal, expiry,
//! concurrency, idempotency and SMS resends.

use chrono::Duration;
use mandat::domain::mandate::{ConsentChannel, MandateDuration, RevocationReason};
use mandat::service::consent::{self, Decision};
use mandat::service::idempotency::{IdemKey, Replayable};
use mandat::service::mandates::{self, ListQuery, NewMandate};
use uuid::Uuid;

use crate::common::TestApp;
use crate::mandates_support::*;

#[tokio::test]
async fn same_demarche_in_same_organisation_replaces_the_old_one() {
    let app = TestApp::spawn().await;
    let a = caller(&app, None).await;
    let u = usager(&app, &a, None).await;
    let old = active_mandate(&app, &a, u, &["social", "travail"]).await;
    // Another organisation's mandate with the same usager is untouched: register the
    // usager there too (a separate record) and give it the same démarche.
    let b = caller(&app, None).await;
    let ub = usager(&app, &b, None).await;
    let other = active_mandate(&app, &b, ub, &["social"]).await;

    let pending = print_mandate(&app, &a, u, &["social"]).await;
    // Not replaced before the new one is active.
    let still = mandates::get(&app.state, &a, old.id).await.unwrap();
    assert!(still.demarches.iter().all(|d| d.status == "active"));
    let code = pending.consent.unwrap().code.unwrap();
    consent::consent_at_desk(&app.state, &a, pending.id, &code)
        .await
        .unwrap();

    let old_now = mandates::get(&app.state, &a, old.id).await.unwrap();
    assert_eq!(old_now.status, "active");
    let social = old_now.demarches.iter().find(|d| d.id == "social").unwrap();
    assert_eq!(social.status, "revoked");
    assert_eq!(social.revoked_reason.as_deref(), Some("replaced"));
    let travail = old_now
        .demarches
        .iter()
        .find(|d| d.id == "travail")
        .unwrap();
    assert_eq!(travail.status, "active");
    let other_now = mandates::get(&app.state, &b, other.id).await.unwrap();
    assert_eq!(other_now.status, "active");
    assert!(other_now.demarches.iter().all(|d| d.status == "active"));
    let events = app.audit_events().await;
    let r: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "mandate.replaced")
        .collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["mandate"], old.id.to_string());
    assert_eq!(r[0]["details"]["by"], pending.id.to_string());

    // Replacing the last démarche revokes the old mandate as a whole.
    active_mandate(&app, &a, u, &["travail"]).await;
    assert_eq!(
        mandates::get(&app.state, &a, old.id).await.unwrap().status,
        "revoked"
    );
}

#[tokio::test]
async fn revoking_one_demarche_leaves_the_others_then_full_revocation_blocks_renewal() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let m = active_mandate(&app, &c, u, &["social", "logement", "papiers"]).await;
    let r = mandates::revoke(
        &app.state,
        &c,
        m.id,
        Some(vec!["logement".into()]),
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    assert_eq!(r.status, "active");
    let st = |id: &str| {
        r.demarches
            .iter()
            .find(|d| d.id == id)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(st("logement"), "revoked");
    assert_eq!(st("social"), "active");
    assert_eq!(st("papiers"), "active");
    // Revoking it again: conflict; unknown démarche: 422.
    let e = mandates::revoke(
        &app.state,
        &c,
        m.id,
        Some(vec!["logement".into()]),
        RevocationReason::Other,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 409);
    let e = mandates::revoke(
        &app.state,
        &c,
        m.id,
        Some(vec!["argent".into()]),
        RevocationReason::Other,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 422);

    let all = mandates::revoke(&app.state, &c, m.id, None, RevocationReason::Deceased)
        .await
        .unwrap();
    assert_eq!(all.status, "revoked");
    assert!(all.revoked_at.is_some());
    assert!(all.demarches.iter().all(|d| d.status == "revoked"));
    let e = mandates::renew(
        &app.state,
        &c,
        m.id,
        MandateDuration::Long,
        None,
        ConsentChannel::Print,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 409);
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.demarche_revoked")
            .count(),
        1
    );
    let rev = events
        .iter()
        .find(|e| e["action"] == "mandate.revoked")
        .unwrap();
    assert_eq!(rev["details"]["reason"], "deceased");
}

#[tokio::test]
async fn renewal_allowed_within_a_year_of_expiry_only() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let m = active_mandate(&app, &c, u, &["social", "travail"]).await;
    // Pending mandates cannot be renewed.
    let p = print_mandate(&app, &c, u, &["papiers"]).await;
    let e = mandates::renew(
        &app.state,
        &c,
        p.id,
        MandateDuration::Long,
        None,
        ConsentChannel::Print,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 409);

    app.clock.advance(Duration::days(31 + 365));
    let seen = mandates::get(&app.state, &c, m.id).await.unwrap();
    assert_eq!(
        seen.status, "expired",
        "expired as soon as expires_at passes"
    );
    let n = mandates::renew(
        &app.state,
        &c,
        m.id,
        MandateDuration::Semester,
        None,
        ConsentChannel::Print,
    )
    .await
    .unwrap();
    assert_eq!(n.renews, Some(m.id));
    assert_eq!(n.status, "pending_consent");
    let ids: Vec<&str> = n.demarches.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["social", "travail"]);
    assert_eq!(n.duration, "semester");
    let code = n.consent.unwrap().code.unwrap();
    let active = consent::consent_at_desk(&app.state, &c, n.id, &code)
        .await
        .unwrap();
    assert_eq!(
        active.expires_at.unwrap() - active.activated_at.unwrap(),
        Duration::days(182)
    );

    app.clock.advance(Duration::seconds(1));
    let e = mandates::renew(
        &app.state,
        &c,
        m.id,
        MandateDuration::Long,
        None,
        ConsentChannel::Print,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&e), 409, "more than 365 days after expiry");
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.renewed")
            .count(),
        1
    );
}

#[tokio::test]
async fn expiry_job_and_expiring_filter() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let short = {
        let input = NewMandate {
            usager_id: u,
            demarches: demarches(&["loisirs"]),
            duration: MandateDuration::Semester,
            channel: ConsentChannel::Print,
        };
        let m = fresh(mandates::create(&app.state, &c, input, None).await.unwrap());
        consent::consent_at_desk(&app.state, &c, m.id, &m.consent.unwrap().code.unwrap())
            .await
            .unwrap()
    };
    let month = active_mandate(&app, &c, u, &["social"]).await;
    let pending = print_mandate(&app, &c, u, &["papiers"]).await;
    app.clock.advance(Duration::days(160));
    let q = ListQuery {
        expiring_within_days: Some(30),
        limit: 50,
        ..Default::default()
    };
    let (list, _) = mandates::list(&app.state, &c, &q).await.unwrap();
    let ids: Vec<Uuid> = list.iter().map(|m| m.id).collect();
    assert_eq!(ids, [short.id]);
    assert_eq!(
        mandat::service::lifecycle::expire_due(&app.state)
            .await
            .unwrap(),
        2,
        "the month mandate and the lapsed challenge"
    );
    assert_eq!(
        mandates::get(&app.state, &c, month.id)
            .await
            .unwrap()
            .status,
        "expired"
    );
    assert_eq!(
        mandates::get(&app.state, &c, pending.id)
            .await
            .unwrap()
            .status,
        "expired"
    );
    assert_eq!(
        mandat::service::lifecycle::expire_due(&app.state)
            .await
            .unwrap(),
        0,
        "idempotent"
    );
    let q = ListQuery {
        status: Some(mandat::domain::mandate::MandateStatus::Active),
        limit: 50,
        ..Default::default()
    };
    let (list, _) = mandates::list(&app.state, &c, &q).await.unwrap();
    assert_eq!(list.len(), 1);
    // Paging.
    let q = ListQuery {
        limit: 2,
        ..Default::default()
    };
    let (page1, next) = mandates::list(&app.state, &c, &q).await.unwrap();
    assert_eq!(page1.len(), 2);
    let (page2, none) = mandates::list(
        &app.state,
        &c,
        &ListQuery {
            cursor: next,
            limit: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page2.len(), 1);
    assert!(none.is_none());
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.expired")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consents_and_revocations_have_one_winner() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    for _ in 0..3 {
        let m = print_mandate(&app, &c, u, &["social"]).await;
        let code = m.consent.unwrap().code.unwrap();
        let (r1, r2) = tokio::join!(
            consent::consent_at_desk(&app.state, &c, m.id, &code),
            consent::consent_at_desk(&app.state, &c, m.id, &code)
        );
        let oks = [r1.is_ok(), r2.is_ok()].iter().filter(|b| **b).count();
        assert_eq!(oks, 1, "{r1:?} {r2:?}");
        let err = r1.err().or(r2.err()).unwrap();
        assert_eq!(status_of(&err), 409, "{err:?}");

        let (v1, v2) = tokio::join!(
            mandates::revoke(&app.state, &c, m.id, None, RevocationReason::Error),
            mandates::revoke(&app.state, &c, m.id, None, RevocationReason::Error)
        );
        assert_eq!([v1.is_ok(), v2.is_ok()].iter().filter(|b| **b).count(), 1);
        assert_eq!(status_of(&v1.err().or(v2.err()).unwrap()), 409);
    }
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.activated")
            .count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.revoked")
            .count(),
        3
    );
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let input = || NewMandate {
        usager_id: u,
        demarches: demarches(&["social"]),
        duration: MandateDuration::Short,
        channel: ConsentChannel::Print,
    };
    let key = |body: &[u8]| {
        IdemKey::new(
            &app.state.keyring,
            format!("{}:mandates", c.aidant_id),
            "k-1",
            body,
        )
        .unwrap()
    };
    let first = fresh(
        mandates::create(&app.state, &c, input(), Some(&key(b"body")))
            .await
            .unwrap(),
    );
    match mandates::create(&app.state, &c, input(), Some(&key(b"body")))
        .await
        .unwrap()
    {
        Replayable::Replay { status, body } => {
            assert_eq!(status, 201);
            let replay: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(replay, serde_json::to_value(&first).unwrap());
        }
        Replayable::Fresh(_) => panic!("not replayed"),
    }
    assert_eq!(app.count("mandate").await, 1);
    let e = mandates::create(&app.state, &c, input(), Some(&key(b"other body")))
        .await
        .err()
        .unwrap();
    assert_eq!(status_of(&e), 409);
    assert!(IdemKey::new(&app.state.keyring, "s".into(), &"x".repeat(65), b"").is_err());
    assert!(IdemKey::new(&app.state.keyring, "s".into(), "a b", b"").is_err());
}

#[tokio::test]
async fn sms_resend_voids_the_old_code_and_is_limited() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some("0692 12 34 56")).await;
    let m = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .unwrap();
    let first = m.consent.unwrap().challenge_id;
    let old_code: String = outbox(&app).await[1]["body"]
        .as_str()
        .unwrap()
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    assert_eq!(outbox(&app).await[0]["to"], "+262692123456");
    for _ in 0..3 {
        consent::resend(&app.state, &c, m.id).await.unwrap();
        // Delivered before the next resend voids this challenge (a void challenge's
        // messages are not sent any more).
        sms_settled(&app).await;
    }
    let e = consent::resend(&app.state, &c, m.id).await.unwrap_err();
    assert_eq!(status_of(&e), 429);
    let lines = outbox(&app).await;
    assert_eq!(lines.len(), 8);
    let e = consent::consent_public(&app.state, first, &old_code, Decision::Accept, None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 409, "void challenge");
    let last = lines.last().unwrap();
    let code: String = last["body"]
        .as_str()
        .unwrap()
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let current: Uuid = last["challenge_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        consent::consent_public(&app.state, current, &code, Decision::Accept, None)
            .await
            .unwrap(),
        "accepted"
    );
}

#[tokio::test]
async fn covering_mandate_follows_activation_revocation_and_expiry() {
    use mandat::service::lifecycle::covering;
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let other = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let check = |org: Uuid, d: &'static str| {
        let state = app.state.clone();
        async move {
            let mut tx = state.store.begin_read().await.unwrap();
            covering(tx.as_mut(), org, u, d, state.clock.now())
                .await
                .unwrap()
                .map(|m| m.id)
        }
    };
    let p = print_mandate(&app, &c, u, &["social", "travail"]).await;
    assert_eq!(check(c.organisation_id, "social").await, None, "pending");
    consent::consent_at_desk(&app.state, &c, p.id, &p.consent.unwrap().code.unwrap())
        .await
        .unwrap();
    assert_eq!(check(c.organisation_id, "social").await, Some(p.id));
    assert_eq!(
        check(c.organisation_id, "papiers").await,
        None,
        "not covered"
    );
    assert_eq!(
        check(other.organisation_id, "social").await,
        None,
        "another organisation"
    );
    mandates::revoke(
        &app.state,
        &c,
        p.id,
        Some(vec!["social".into()]),
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    assert_eq!(
        check(c.organisation_id, "social").await,
        None,
        "revoked at once"
    );
    assert_eq!(check(c.organisation_id, "travail").await, Some(p.id));
    app.clock.advance(Duration::days(31));
    assert_eq!(
        check(c.organisation_id, "travail").await,
        None,
        "expired, before the job runs"
    );
}
