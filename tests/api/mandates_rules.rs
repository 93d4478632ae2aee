//! Mandates and consent through the services (one transaction each): creation rules, both consent channels, wrong codes, expiry,
//! replacement, revocation, renewal, concurrency, idempotency.

use chrono::Duration;
use mandat::clock::Clock as _;
use mandat::domain::mandate::{ConsentChannel, MandateDuration, RevocationReason};
use mandat::error::AppError;
use mandat::service::consent::{self, Decision};
use mandat::service::idempotency::{IdemKey, Replayable};
use mandat::service::mandates::{self, ListQuery, NewMandate};
use uuid::Uuid;

use crate::common::TestApp;
use crate::mandates_support::*;

fn time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[tokio::test]
async fn demarche_outside_the_allowed_set_is_refused_and_nothing_written() {
    let app = TestApp::spawn().await;
    let c = caller(&app, Some(&["social", "papiers"])).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let e = try_mandate(&app, &c, u, &["social", "argent"], ConsentChannel::Print)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 422);
    assert_eq!(app.count("mandate").await, 0);
    assert_eq!(app.count("mandate_demarche").await, 0);
    assert_eq!(app.count("consent_challenge").await, 0);
}

#[tokio::test]
async fn sms_without_phone_is_refused_and_nothing_written() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let e = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 422);
    assert_eq!(app.count("mandate").await, 0);
    assert_eq!(app.count("consent_challenge").await, 0);
    assert!(outbox(&app).is_empty());
}

#[tokio::test]
async fn another_organisations_usager_or_mandate_is_not_found() {
    let app = TestApp::spawn().await;
    let a = caller(&app, None).await;
    let b = caller(&app, None).await;
    let u = usager(&app, &a, Some(PHONE)).await;
    let m = print_mandate(&app, &a, u, &["social"]).await;
    let code = m.consent.as_ref().unwrap().code.clone().unwrap();
    let nf = |r: Result<_, AppError>| assert_eq!(status_of(&r.unwrap_err()), 404);
    nf(try_mandate(&app, &b, u, &["social"], ConsentChannel::Print)
        .await
        .map(|_| ()));
    nf(mandates::get(&app.state, &b, m.id).await.map(|_| ()));
    nf(consent::consent_at_desk(&app.state, &b, m.id, &code)
        .await
        .map(|_| ()));
    nf(
        mandates::revoke(&app.state, &b, m.id, None, RevocationReason::Error)
            .await
            .map(|_| ()),
    );
    nf(mandates::renew(
        &app.state,
        &b,
        m.id,
        MandateDuration::Long,
        None,
        ConsentChannel::Print,
    )
    .await
    .map(|_| ()));
    nf(consent::resend(&app.state, &b, m.id).await);
    let (list, _) = mandates::list(
        &app.state,
        &b,
        &ListQuery {
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(list.is_empty());
    // The code still works for the right organisation: nothing was consumed.
    let active = consent::consent_at_desk(&app.state, &a, m.id, &code)
        .await
        .unwrap();
    assert_eq!(active.status, "active");
}

#[tokio::test]
async fn print_flow_activates_with_exact_expiry() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let m = print_mandate(&app, &c, u, &["social", "logement"]).await;
    assert_eq!(m.status, "pending_consent");
    let consent_view = m.consent.clone().unwrap();
    let code = consent_view.code.clone().unwrap();
    assert_eq!(code.len(), 14, "4-4-4 with dashes");
    assert_eq!(consent_view.channel, "print");
    assert_eq!(consent_view.attempts_left, 5);
    assert_eq!(
        time(&consent_view.expires_at) - time(&m.created_at),
        Duration::days(14)
    );
    assert!(
        m.verification_url
            .starts_with("http://127.0.0.1:8080/verifier/")
    );
    // The code is returned once: later reads do not show it.
    assert!(
        mandates::get(&app.state, &c, m.id)
            .await
            .unwrap()
            .consent
            .unwrap()
            .code
            .is_none()
    );

    app.clock.advance(Duration::hours(3));
    // Lower case and spaces are fine.
    let typed = code.to_lowercase().replace('-', " ");
    let active = consent::consent_at_desk(&app.state, &c, m.id, &typed)
        .await
        .unwrap();
    assert_eq!(active.status, "active");
    let activated = time(active.activated_at.as_deref().unwrap());
    assert_eq!(activated, app.clock.now());
    assert_eq!(
        time(active.expires_at.as_deref().unwrap()) - activated,
        Duration::days(31)
    );
    assert!(active.demarches.iter().all(|d| d.status == "active"));
    assert_eq!(active.consent.unwrap().status, "accepted");

    let events = app.audit_events().await;
    let act: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "mandate.activated")
        .collect();
    assert_eq!(act.len(), 1);
    assert_eq!(act[0]["actor"]["kind"], "aidant");
    assert_eq!(act[0]["actor"]["id"], c.aidant_id.to_string());
    assert_eq!(act[0]["details"]["terms_hash"], m.terms_hash);
    for a in ["mandate.created", "mandate.consent_sent"] {
        assert_eq!(events.iter().filter(|e| e["action"] == a).count(), 1, "{a}");
    }
    // The printed code was destroyed at consent.
    assert_eq!(
        app.count("consent_challenge WHERE code_sealed IS NOT NULL")
            .await,
        0
    );
    // The code is single use.
    let again = consent::consent_at_desk(&app.state, &c, m.id, &code)
        .await
        .unwrap_err();
    assert_eq!(status_of(&again), 409);
}

#[tokio::test]
async fn sms_flow_code_only_in_outbox_then_public_consent() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = try_mandate(&app, &c, u, &["travail"], ConsentChannel::Sms)
        .await
        .unwrap();
    let view = m.consent.clone().unwrap();
    assert!(view.code.is_none());
    assert_eq!(view.sent_to.as_deref(), Some("+33 •• •• •• •• 78"));
    assert_eq!(
        time(&view.expires_at) - time(&m.created_at),
        Duration::minutes(10)
    );
    let body = serde_json::to_string(&m).unwrap();
    let lines = outbox(&app);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "recap");
    assert_eq!(lines[1]["kind"], "code");
    for l in &lines {
        assert_eq!(l["to"], PHONE_E164);
        assert_eq!(l["mandate_id"], m.id.to_string());
        assert_eq!(l["challenge_id"], view.challenge_id.to_string());
        assert!(l["sent_at"].as_str().unwrap().ends_with('Z'));
    }
    let text = lines[1]["body"].as_str().unwrap();
    assert!(text.contains(&format!(
        "http://127.0.0.1:8080/consentement/{}",
        view.challenge_id
    )));
    let code: String = text
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{text}");
    assert!(!body.contains(&code), "the aidant never sees the code");
    assert!(
        lines[0]["body"]
            .as_str()
            .unwrap()
            .contains("France Services Test")
    );

    let status =
        consent::consent_public(&app.state, view.challenge_id, &code, Decision::Accept, None)
            .await
            .unwrap();
    assert_eq!(status, "accepted");
    let active = mandates::get(&app.state, &c, m.id).await.unwrap();
    assert_eq!(active.status, "active");
    let events = app.audit_events().await;
    let act = events
        .iter()
        .find(|e| e["action"] == "mandate.activated")
        .unwrap();
    assert_eq!(act["actor"]["kind"], "usager");
    assert_eq!(act["actor"]["id"], u.to_string());
    // Unknown challenge: 404.
    let e = consent::consent_public(&app.state, Uuid::now_v7(), &code, Decision::Accept, None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 404);
}

#[tokio::test]
async fn public_refusal_needs_the_code() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let m = print_mandate(&app, &c, u, &["famille"]).await;
    let v = m.consent.unwrap();
    let e = consent::consent_public(&app.state, v.challenge_id, "", Decision::Refuse, None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 422);
    let s = consent::consent_public(
        &app.state,
        v.challenge_id,
        &v.code.unwrap(),
        Decision::Refuse,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, "refused");
    assert_eq!(
        mandates::get(&app.state, &c, m.id).await.unwrap().status,
        "refused"
    );
}

#[tokio::test]
async fn wrong_codes_count_down_then_lock_and_refuse() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, None).await;
    let m = print_mandate(&app, &c, u, &["social"]).await;
    let code = m.consent.unwrap().code.unwrap();
    for left in [4, 3, 2, 1] {
        match consent::consent_at_desk(&app.state, &c, m.id, "AAAA-BBBB-CCCC")
            .await
            .unwrap_err()
        {
            AppError::InvalidCode { attempts_left } => assert_eq!(attempts_left, left),
            other => panic!("{other:?}"),
        }
    }
    let fifth = consent::consent_at_desk(&app.state, &c, m.id, "0000-0000-0000")
        .await
        .unwrap_err();
    assert!(matches!(fifth, AppError::ChallengeLocked), "{fifth:?}");
    assert_eq!(status_of(&fifth), 423);
    let after = mandates::get(&app.state, &c, m.id).await.unwrap();
    assert_eq!(after.status, "refused");
    assert_eq!(after.consent.unwrap().status, "locked");
    // Even the right code no longer works.
    let e = consent::consent_at_desk(&app.state, &c, m.id, &code)
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 423);
    let events = app.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.consent_failed")
            .count(),
        5
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "mandate.refused")
            .count(),
        1
    );
    assert_eq!(
        app.count("consent_challenge WHERE code_sealed IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn late_code_is_gone_and_the_mandate_expires() {
    let app = TestApp::spawn().await;
    let c = caller(&app, None).await;
    let u = usager(&app, &c, Some(PHONE)).await;
    let m = print_mandate(&app, &c, u, &["social"]).await;
    let code = m.consent.unwrap().code.unwrap();
    app.clock.advance(Duration::days(14));
    let e = consent::consent_at_desk(&app.state, &c, m.id, &code)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::ChallengeExpired));
    assert_eq!(status_of(&e), 410);
    assert_eq!(
        mandates::get(&app.state, &c, m.id).await.unwrap().status,
        "expired"
    );
    assert_eq!(
        app.count("consent_challenge WHERE code_sealed IS NOT NULL")
            .await,
        0
    );

    // SMS: 10 minutes.
    let s = try_mandate(&app, &c, u, &["social"], ConsentChannel::Sms)
        .await
        .unwrap();
    app.clock.advance(Duration::minutes(10));
    let e = consent::consent_at_desk(&app.state, &c, s.id, "123456")
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 410);
}

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
        time(active.expires_at.as_deref().unwrap()) - time(active.activated_at.as_deref().unwrap()),
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
        mandates::expire_due(&app.state).await.unwrap(),
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
        mandates::expire_due(&app.state).await.unwrap(),
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
    let old_code: String = outbox(&app)[1]["body"]
        .as_str()
        .unwrap()
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    assert_eq!(outbox(&app)[0]["to"], "+262692123456");
    for _ in 0..3 {
        consent::resend(&app.state, &c, m.id).await.unwrap();
    }
    let e = consent::resend(&app.state, &c, m.id).await.unwrap_err();
    assert_eq!(status_of(&e), 429);
    let lines = outbox(&app);
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
