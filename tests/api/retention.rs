//! Retention (product rule 8): each class goes once its period has passed, a dry run changes
//! nothing, every real run writes one `retention.applied` event, the log still verifies, the
//! job runs inside `serve`, and `mandat retention run [--dry-run]`.
//!
//! Old data is made with the clock set back (the database refuses to prune an audit payload
//! before its floor in real time, so the clock never goes beyond the present).

use std::time::Duration;

use chrono::Duration as Days;
use mandat::audit::sequencer::ACCESS_ACTIONS;
use mandat::domain::mandate::RevocationReason;
use mandat::service::retention::{self, RetentionReport};
use mandat::service::{Ctx, mandates};
use serde_json::Value;

use crate::audit_trail::{checkpoint, mandat_cli_env, mandat_cli_ok, quiet_app, verify, witness};
use crate::common::TestApp;
use crate::mandates_support::{FAMILY, active_mandate, caller, usager};

fn class<'a>(r: &'a RetentionReport, name: &str) -> &'a mandat::audit::RetentionCount {
    r.classes
        .iter()
        .find(|c| c.class == name)
        .unwrap_or_else(|| panic!("class {name} in {r:?}"))
}

/// Every table a run may touch, with its row count.
async fn counts(app: &TestApp) -> Vec<i64> {
    // Events committed before are sequenced first (their rows are counted).
    app.state.sequencer.barrier().await.unwrap();
    let mut out = Vec::new();
    for t in [
        "audit_payload",
        "audit_log",
        "session",
        "consent_challenge",
        "usager WHERE erased_at IS NULL",
        "mandate",
    ] {
        out.push(app.count(t).await);
    }
    out
}

fn applied(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["action"] == "retention.applied")
        .collect()
}

async fn assert_log_verifies(app: &TestApp) {
    // Events committed just before are sequenced first, so the checkpoint covers them.
    app.state.sequencer.barrier().await.unwrap();
    let size = checkpoint(app).await;
    let r = verify(app, &witness(app)).await;
    assert!(r.ok && r.entries == size, "{r:?}");
}

#[tokio::test]
async fn old_access_logs_and_challenges_go_and_a_dry_run_changes_nothing() {
    let app = quiet_app().await;
    let org = app.org("Structure A").await;
    let aidant = app.member("aidant@a.test", org, "aidant").await;
    let c = caller(&app, None).await;

    // 800 days ago: a login (session + access event) and a consent challenge used at the desk.
    app.clock.advance(Days::days(-800));
    let _old_session = app.login(&aidant).await;
    let u_old = usager(&app, &c, None).await;
    active_mandate(&app, &c, u_old, &["social"]).await;
    app.clock.advance(Days::days(800));
    // Today: the same again, which stays.
    let recent = app.login(&aidant).await;
    let u_new = usager(&app, &c, None).await;
    active_mandate(&app, &c, u_new, &["social"]).await;
    assert_eq!(app.count("session").await, 2);
    assert_eq!(app.count("consent_challenge").await, 2);

    // The access events older than 365 days, as the log has them.
    let cutoff = mandat::audit::event::format_ts(app.state.clock.now() - Days::days(365));
    let entries = app.audit_events().await;
    let old_access: Vec<i64> = entries
        .iter()
        .filter(|e| {
            ACCESS_ACTIONS.contains(&e["action"].as_str().unwrap())
                && e["ts"].as_str().unwrap() < cutoff.as_str()
        })
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert!(!old_access.is_empty());

    let before = counts(&app).await;
    let dry = retention::run(&app.state, &Ctx::system(), true)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(counts(&app).await, before, "a dry run changes nothing");
    assert!(applied(&app.audit_events().await).is_empty());
    assert!(
        dry.summary().contains("nothing changed"),
        "{}",
        dry.summary()
    );

    let real = retention::run(&app.state, &Ctx::system(), false)
        .await
        .unwrap();
    assert_eq!(
        real.classes, dry.classes,
        "the dry run announced exactly this"
    );
    let access = class(&real, "audit_payload.access_log");
    assert_eq!(access.count, old_access.len() as i64);
    assert_eq!(access.first_index, old_access.first().copied());
    assert_eq!(access.last_index, old_access.last().copied());
    assert_eq!(class(&real, "session").count, 1);
    assert_eq!(class(&real, "consent_challenge").count, 1);
    assert_eq!(class(&real, "audit_payload.mandate_evidence").count, 0);
    assert_eq!(class(&real, "audit_payload.other").count, 0);
    assert_eq!(class(&real, "usager_identity").count, 0);

    assert_eq!(app.count("session").await, 1);
    assert_eq!(app.count("consent_challenge").await, 1);
    let after = app.audit_entries().await;
    for i in &old_access {
        assert!(
            after[*i as usize].canonical_event.is_none(),
            "payload {i} pruned"
        );
    }
    assert_eq!(
        after.iter().filter(|e| e.canonical_event.is_none()).count(),
        old_access.len(),
        "nothing else pruned"
    );
    // One event, counts and index ranges only.
    let events = app.audit_events().await;
    let ev = applied(&events);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["actor"]["kind"], "system");
    let listed = ev[0]["details"]["classes"].as_array().unwrap();
    assert_eq!(listed.len(), real.classes.len());
    assert_eq!(
        listed[0],
        serde_json::to_value(&real.classes[0]).unwrap(),
        "{listed:?}"
    );
    // The recent session still works.
    assert_eq!(
        recent
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_log_verifies(&app).await;

    // Nothing is left to remove; the run is still recorded.
    let again = retention::run(&app.state, &Ctx::system(), false)
        .await
        .unwrap();
    assert_eq!(again.total(), 0);
    assert_eq!(applied(&app.audit_events().await).len(), 2);
    assert_log_verifies(&app).await;
}

#[tokio::test]
async fn old_mandate_evidence_and_usager_identity_go_after_their_periods() {
    let app = quiet_app().await;
    // Eight years ago: an organisation, a usager, a mandate consented then revoked.
    app.clock.advance(Days::days(-8 * 365));
    let c = caller(&app, None).await;
    let u_old = usager(&app, &c, None).await;
    let m_old = active_mandate(&app, &c, u_old, &["social"]).await;
    mandates::revoke(
        &app.state,
        &c,
        m_old.id,
        None,
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    // A year ago: another usager whose mandate ended then (kept).
    app.clock.advance(Days::days(7 * 365));
    let u_recent = usager(&app, &c, None).await;
    let m_recent = active_mandate(&app, &c, u_recent, &["social"]).await;
    mandates::revoke(
        &app.state,
        &c,
        m_recent.id,
        None,
        RevocationReason::UsagerRequest,
    )
    .await
    .unwrap();
    app.clock.advance(Days::days(365));

    let events = app.audit_events().await;
    let about = |m: uuid::Uuid| {
        events
            .iter()
            .filter(|e| e["mandate"] == m.to_string())
            .map(|e| e["index"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let old_mandate_events = about(m_old.id);
    let recent_mandate_events = about(m_recent.id);
    assert!(old_mandate_events.len() >= 2);

    let r = retention::run(&app.state, &Ctx::system(), false)
        .await
        .unwrap();
    let evidence = class(&r, "audit_payload.mandate_evidence");
    assert_eq!(evidence.count, old_mandate_events.len() as i64);
    assert_eq!(evidence.first_index, old_mandate_events.first().copied());
    assert!(
        class(&r, "audit_payload.other").count >= 2,
        "organisation.created and usager.created of eight years ago: {r:?}"
    );
    assert_eq!(class(&r, "consent_challenge").count, 2);
    assert_eq!(class(&r, "usager_identity").count, 1);

    let entries = app.audit_entries().await;
    assert!(
        old_mandate_events
            .iter()
            .all(|i| entries[*i as usize].canonical_event.is_none())
    );
    assert!(
        recent_mandate_events
            .iter()
            .all(|i| entries[*i as usize].canonical_event.is_some()),
        "evidence of a mandate ended a year ago stays"
    );
    // The old usager is crypto-shredded (with its own event), the recent one is not.
    {
        let mut tx = app.state.store.begin_read().await.unwrap();
        let old = tx.get_usager(u_old).await.unwrap().unwrap();
        assert!(old.erased_at.is_some() && old.wrapped_key.is_none());
        let kept = tx.get_usager(u_recent).await.unwrap().unwrap();
        assert!(kept.erased_at.is_none() && kept.wrapped_key.is_some());
    }
    assert_eq!(app.count("usager WHERE erased_at IS NULL").await, 1);
    let events = app.audit_events().await;
    let erased: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "usager.erased")
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0]["usager"], u_old.to_string());
    assert_eq!(erased[0]["actor"]["kind"], "system");
    assert_eq!(applied(&events).len(), 1);
    assert_log_verifies(&app).await;
}

#[tokio::test]
async fn the_retention_job_runs_inside_serve() {
    let app = TestApp::builder()
        .with_config(|c| c.retention_interval = Duration::from_millis(200))
        .spawn()
        .await;
    let start = std::time::Instant::now();
    loop {
        let events = app.audit_events().await;
        if let Some(e) = applied(&events).first() {
            assert_eq!(e["actor"]["kind"], "system");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no retention.applied from the scheduled job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn retention_cli_dry_run_then_run_and_a_bad_file_exits_3() {
    let app = quiet_app().await;
    let org = app.org("Structure A").await;
    let aidant = app.member("aidant@a.test", org, "aidant").await;
    app.clock.advance(Days::days(-800));
    let _old = app.login(&aidant).await;
    app.clock.advance(Days::days(800));
    let before = counts(&app).await;
    assert_eq!(app.count("session").await, 1);

    let text = mandat_cli_ok(&app, &["retention", "run", "--dry-run"]).await;
    assert!(text.contains("nothing changed"), "{text}");
    assert!(text.contains("session: 1"), "{text}");
    assert_eq!(counts(&app).await, before);
    assert!(applied(&app.audit_events().await).is_empty());

    let text = mandat_cli_ok(&app, &["retention", "run"]).await;
    assert!(text.starts_with("retention applied"), "{text}");
    assert!(text.contains("session: 1"), "{text}");
    assert!(text.contains("audit_payload.access_log: 1"), "{text}");
    assert_eq!(app.count("session").await, 0);
    let events = app.audit_events().await;
    assert_eq!(applied(&events).len(), 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "aidant.login")
            .count(),
        0,
        "the login's payload is pruned (its hash stays)"
    );
    assert_log_verifies(&app).await;

    std::fs::write(
        app.dir.path().join("bad.toml"),
        "[retention]\naccess_log_days = -1\n",
    )
    .unwrap();
    let out = mandat_cli_env(
        &app,
        &[("MANDAT_RETENTION_FILE", "bad.toml")],
        &["retention", "run"],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("MANDAT_RETENTION_FILE"), "{err}");
    let events = app.audit_events().await;
    assert_eq!(applied(&events).len(), 1, "{:?}", applied(&events));
}

#[tokio::test]
async fn an_archived_identity_is_hidden_from_its_organisation_and_read_by_the_dpo() {
    let app = quiet_app().await;
    let org = app.org("France Services Arras").await;
    let aidant = app.member("aidant@exemple.fr", org, "aidant").await;
    let dpo = app.platform("dpo@exemple.fr", "dpo").await;
    let c = mandat::service::usagers::Caller::member(aidant.id, org);
    // Four years ago: a usager whose mandate was consented, then revoked.
    app.clock.advance(Days::days(-4 * 365));
    let u_old = usager(&app, &c, None).await;
    let m = active_mandate(&app, &c, u_old, &["social"]).await;
    mandates::revoke(&app.state, &c, m.id, None, RevocationReason::UsagerRequest)
        .await
        .unwrap();
    app.clock.advance(Days::days(4 * 365));
    let u_new = usager(&app, &c, None).await;

    let desk = app.login(&aidant).await;
    let office = app.login(&dpo).await;
    let read = |client: &reqwest::Client, id: uuid::Uuid| {
        let req = client.get(app.url(&format!("/api/v1/usagers/{id}")));
        async move { req.send().await.unwrap() }
    };
    let found = |client: &reqwest::Client| {
        let req = client.get(app.url(&format!("/api/v1/usagers?q={FAMILY}")));
        async move {
            let body: Value = req.send().await.unwrap().json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Before the run: the organisation reads both; the DPO reads neither (live data).
    assert_eq!(read(&desk, u_old).await.status(), 200);
    assert_eq!(found(&desk).await.len(), 2);
    assert_eq!(read(&office, u_old).await.status(), 404);

    let dry = retention::run(&app.state, &Ctx::system(), true)
        .await
        .unwrap();
    assert_eq!(class(&dry, "usager_identity.archived").count, 1);
    assert_eq!(
        read(&desk, u_old).await.status(),
        200,
        "a dry run changes nothing"
    );
    let r = retention::run(&app.state, &Ctx::system(), false)
        .await
        .unwrap();
    assert_eq!(class(&r, "usager_identity.archived").count, 1);
    assert_eq!(class(&r, "usager_identity").count, 0, "not shredded yet");

    // The organisation no longer reads or finds the archived usager; the recent one stays.
    assert_eq!(read(&desk, u_old).await.status(), 404);
    assert_eq!(read(&desk, u_new).await.status(), 200);
    assert_eq!(found(&desk).await, vec![u_new.to_string()]);
    // The DPO reads the archived identity (for proof), audited; still not the live one.
    let res = read(&office, u_old).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["family_name"], FAMILY);
    assert_eq!(read(&office, u_new).await.status(), 404);
    app.state.sequencer.barrier().await.unwrap();
    let events = app.audit_events().await;
    assert!(events.iter().any(|e| e["action"] == "usager.read"
        && e["usager"] == u_old.to_string()
        && e["actor"]["id"] == dpo.id.to_string()));

    // A second run has nothing more to archive.
    let again = retention::run(&app.state, &Ctx::system(), false)
        .await
        .unwrap();
    assert_eq!(class(&again, "usager_identity.archived").count, 0);
    assert_log_verifies(&app).await;
}
