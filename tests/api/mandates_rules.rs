//! Mandates and consent through the services (one transaction each): creation rules,
//! visibility, both consent channels, wrong codes, late codes.

use chrono::Duration;
use mandat::clock::Clock as _;
use mandat::domain::mandate::{ConsentChannel, MandateDuration, RevocationReason};
use mandat::error::AppError;
use mandat::service::consent::{self, Decision};
use mandat::service::mandates::{self, ListQuery};
use uuid::Uuid;

use crate::common::TestApp;
use crate::mandates_support::*;

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
    assert!(outbox(&app).await.is_empty());
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
    assert_eq!(consent_view.expires_at - m.created_at, Duration::days(14));
    assert!(
        m.verification_url
            .starts_with("http://127.0.0.1:8080/verifier/")
    );
    // The code is returned once: later reads do not show it; the attestation can re-print it.
    assert_eq!(
        consent::printed_code(&app.state, &c, m.id)
            .await
            .unwrap()
            .as_deref(),
        Some(code.as_str())
    );
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
    let activated = active.activated_at.unwrap();
    assert_eq!(activated, app.clock.now());
    assert_eq!(active.expires_at.unwrap() - activated, Duration::days(31));
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
        consent::printed_code(&app.state, &c, m.id).await.unwrap(),
        None
    );
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
    assert_eq!(view.expires_at - m.created_at, Duration::minutes(10));
    let body = serde_json::to_string(&m).unwrap();
    let lines = outbox(&app).await;
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
