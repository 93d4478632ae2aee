//! The audit core on a real database: same-transaction append, sequencing without gaps
//! under concurrent writers, the chain, and the immutability triggers.

use std::sync::Arc;

use mandat::audit::merkle::{chain_hash, leaf_hash};
use mandat::audit::{self, Actor, Details, NewEvent};
use mandat::domain::organisation::NewOrganisation;
use mandat::service::{Ctx, organisations};

use crate::common::TestApp;

fn check_chain(entries: &[mandat::store::StoredAuditEntry]) {
    let mut prev = [0u8; 32];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.idx, i as i64, "gap-free indexes");
        let text = e.canonical_event.as_deref().expect("payload");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["index"], i as i64, "the payload carries its index");
        let leaf = leaf_hash(text.as_bytes());
        assert_eq!(e.leaf_hash, leaf.to_vec());
        let chain = chain_hash(&prev, &leaf);
        assert_eq!(e.chain_hash, chain.to_vec());
        prev = chain;
    }
}

#[tokio::test]
async fn organisation_creation_writes_its_event_in_the_same_transaction() {
    let app = TestApp::spawn().await;
    let input = NewOrganisation::parse(
        "MFS Roubaix",
        "1 place de la Liberté",
        Some("73282932000074"),
        None,
    )
    .unwrap();
    let org = organisations::create(&app.state, &Ctx::system(), input)
        .await
        .unwrap();
    let events = app.audit_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "organisation.created");
    assert_eq!(events[0]["organisation"], org.id.to_string());
    assert_eq!(events[0]["details"]["has_siret"], true);
    assert!(
        !events[0].to_string().contains("Roubaix"),
        "no free text in events"
    );

    // A transaction that fails after its audit append leaves neither the change nor the event.
    let mut tx = app.state.store.begin().await.unwrap();
    let ev = NewEvent::new(
        app.state.clock.now(),
        Actor::system(),
        Details::AidantLogout {},
    );
    audit::append(tx.as_mut(), &ev).await.unwrap();
    drop(tx); // rolled back
    assert_eq!(app.audit_events().await.len(), 1);
    assert_eq!(app.count("organisation").await, 1);
}

#[tokio::test]
async fn concurrent_writers_get_gap_free_indexes_and_a_valid_chain() {
    let app = TestApp::spawn().await;
    let writers = 12;
    let per_writer = 40;
    let state = Arc::new(app.state.clone());
    let mut handles = Vec::new();
    for w in 0..writers {
        let state = state.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let mut tx = state.store.begin().await.unwrap();
                let ev = NewEvent::new(
                    state.clock.now(),
                    Actor::system(),
                    Details::AuditVerified {
                        ok: true,
                        entries: w * 1000 + i,
                    },
                );
                audit::append(tx.as_mut(), &ev).await.unwrap();
                tx.commit().await.unwrap();
                if i % 7 == 0 {
                    state.sequencer.run_once().await.unwrap();
                }
            }
        }));
    }
    // A second sequencer racing the first: the lock keeps indexes gap-free.
    let racer = {
        let state = state.clone();
        tokio::spawn(async move {
            for _ in 0..30 {
                state.sequencer.run_once().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for h in handles {
        h.await.unwrap();
    }
    racer.await.unwrap();
    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), (writers * per_writer) as usize);
    check_chain(&entries);
    let mut seen: Vec<i64> = entries
        .iter()
        .map(|e| {
            let v: serde_json::Value =
                serde_json::from_str(e.canonical_event.as_deref().unwrap()).unwrap();
            v["details"]["entries"].as_i64().unwrap()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        (writers * per_writer) as usize,
        "every event exactly once"
    );
    assert_eq!(app.count("audit_queue").await, 0);
}

#[tokio::test]
async fn audit_log_rejects_update_and_delete_in_the_database() {
    let app = TestApp::spawn().await;
    let input = NewOrganisation::parse("Structure", "Adresse", None, None).unwrap();
    organisations::create(&app.state, &Ctx::system(), input)
        .await
        .unwrap();
    assert_eq!(app.audit_entries().await.len(), 1);
    for sql in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "UPDATE audit_payload SET canonical_event = '{}'",
        "DELETE FROM audit_payload",
    ] {
        let err = app.raw_sql(sql).await.expect_err(sql);
        assert!(
            err.contains("append-only") || err.contains("retention"),
            "{sql}: {err}"
        );
    }
    if crate::common::backend() == "postgres" {
        let err = app
            .raw_sql("TRUNCATE audit_log CASCADE")
            .await
            .expect_err("truncate");
        assert!(err.contains("append-only"), "{err}");
    }
    assert_eq!(app.audit_entries().await.len(), 1);
}
