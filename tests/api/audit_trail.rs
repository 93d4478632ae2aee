//! The tamper matrix: an attacker with database access (triggers dropped first) changes a
//! payload byte, a hash, deletes, inserts or swaps rows, truncates the tail, forges a
//! checkpoint, or rewrites and re-signs the whole history while the witness file keeps the
//! old checkpoints. Each is detected, with the right first bad index, by the verifier, by
//! `mandat audit verify`, and by the checkpoint writer (which then refuses to sign and turns
//! `/readyz` to 503).

use mandat::audit::checkpoint::{Checkpoint, SigningKey};
use mandat::audit::merkle::{RootBuilder, chain_hash, leaf_hash};
use mandat::crypto::{Keyring, MasterKey};

pub use crate::common::fixtures::{
    TEST_MASTER_KEY, append, checkpoint, cli_verify, mandat_cli, mandat_cli_env, mandat_cli_ok,
    quiet_app, verify, witness,
};
use crate::common::{TestApp, backend};

async fn sql(app: &TestApp, statements: &[&str]) {
    for s in statements {
        app.raw_sql(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// What an attacker does first.
async fn drop_triggers(app: &TestApp) {
    if backend() == "postgres" {
        sql(
            app,
            &[
                "DROP TRIGGER audit_log_immutable ON audit_log",
                "DROP TRIGGER audit_payload_no_update ON audit_payload",
                "DROP TRIGGER audit_payload_retention_only ON audit_payload",
                "DROP TRIGGER audit_checkpoint_immutable ON audit_checkpoint",
            ],
        )
        .await;
    } else {
        sql(
            app,
            &[
                "DROP TRIGGER audit_log_no_update",
                "DROP TRIGGER audit_log_no_delete",
                "DROP TRIGGER audit_payload_no_update",
                "DROP TRIGGER audit_payload_retention_only",
                "DROP TRIGGER audit_checkpoint_no_update",
                "DROP TRIGGER audit_checkpoint_no_delete",
            ],
        )
        .await;
    }
}

fn bytes(b: &[u8]) -> String {
    if backend() == "postgres" {
        format!("'\\x{}'::bytea", hex::encode(b))
    } else {
        format!("X'{}'", hex::encode(b))
    }
}

/// One row as the attacker rewrites it.
#[derive(Clone)]
struct Row {
    idx: i64,
    leaf: [u8; 32],
    chain: [u8; 32],
    payload: String,
}

async fn rows(app: &TestApp) -> Vec<Row> {
    app.audit_entries()
        .await
        .into_iter()
        .map(|e| Row {
            idx: e.idx,
            leaf: e.leaf_hash.try_into().unwrap(),
            chain: e.chain_hash.try_into().unwrap(),
            payload: e.canonical_event.unwrap(),
        })
        .collect()
}

/// Replaces the whole log by `rows` (as stored: no recomputation).
async fn rewrite(app: &TestApp, rows: &[Row]) {
    sql(app, &["DELETE FROM audit_payload", "DELETE FROM audit_log"]).await;
    let log: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "({}, '2026-11-23T09:00:00.000000Z', 'audit.verified', 'system', {}, {})",
                r.idx,
                bytes(&r.leaf),
                bytes(&r.chain)
            )
        })
        .collect();
    let payload: Vec<String> = rows
        .iter()
        .map(|r| format!("({}, '{}', 0)", r.idx, r.payload.replace('\'', "''")))
        .collect();
    sql(
        app,
        &[
            &format!(
                "INSERT INTO audit_log (idx, ts, action, actor_kind, leaf_hash, chain_hash) VALUES {}",
                log.join(", ")
            ),
            &format!(
                "INSERT INTO audit_payload (idx, canonical_event, prune_after) VALUES {}",
                payload.join(", ")
            ),
        ],
    )
    .await;
}

/// Makes `rows` a well-formed history: indexes, payload indexes, leaves and chains.
fn recompute(rows: &mut [Row]) {
    let mut prev = [0u8; 32];
    for (i, r) in rows.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
        v["index"] = serde_json::json!(i);
        r.payload = mandat::audit::canonical::to_canonical(&v).unwrap();
        r.idx = i as i64;
        r.leaf = leaf_hash(r.payload.as_bytes());
        r.chain = chain_hash(&prev, &r.leaf);
        prev = r.chain;
    }
}

async fn set_head(app: &TestApp, n: i64) {
    sql(
        app,
        &[&format!(
            "UPDATE audit_head SET next_index = {n}, chain_hash = (SELECT chain_hash FROM audit_log WHERE idx = {})",
            n - 1
        )],
    )
    .await;
}

/// 20 events, checkpoints at 10 and 20 (stored and witnessed), triggers dropped.
async fn setup() -> TestApp {
    let app = quiet_app().await;
    append(&app, 10).await;
    assert_eq!(checkpoint(&app).await, 10);
    append(&app, 10).await;
    assert_eq!(checkpoint(&app).await, 20);
    let r = verify(&app, &witness(&app)).await;
    assert!(r.ok, "{r:?}");
    assert_eq!((r.entries, r.checked_checkpoints), (20, 4));
    drop_triggers(&app).await;
    app
}

/// The verifier, the CLI and the checkpoint writer all report `bad`.
async fn assert_detected(app: &TestApp, bad: i64) {
    let r = verify(app, &witness(app)).await;
    assert!(!r.ok, "undetected: {r:?}");
    assert_eq!(r.first_bad_index, Some(bad), "{r:?}");
    let refused = app.state.checkpoints.write_now().await;
    assert!(refused.is_err(), "the writer must refuse to sign");
    assert_eq!(
        app.state.checkpoints.failure().map(|f| f.first_bad_index),
        Some(bad)
    );
    assert_eq!(app.get("/readyz").await.status(), 503);
    // Last: the CLI records its own `audit.verified` event after the tampered part.
    let (code, out) = cli_verify(app, Some("witness.jsonl")).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("first bad index: {bad}")), "{out}");
}

#[tokio::test]
async fn an_intact_log_verifies_everywhere() {
    let app = quiet_app().await;
    append(&app, 25).await;
    checkpoint(&app).await;
    let (code, out) = cli_verify(&app, Some("witness.jsonl")).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok"), "{out}");
    // The service call records audit.verified.
    let r = mandat::service::audit::verify(&app.state, &mandat::service::Ctx::system(), &[])
        .await
        .unwrap();
    assert!(r.ok && r.first_bad_index.is_none());
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "audit.verified" && e["details"]["ok"] == true)
    );
    assert!(app.state.checkpoints.failure().is_none());
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn a_changed_payload_byte_is_detected() {
    let app = setup().await;
    sql(
        &app,
        &["UPDATE audit_payload SET canonical_event = replace(canonical_event, '\"entries\":1005,', '\"entries\":1006,') WHERE idx = 5"],
    )
    .await;
    assert_detected(&app, 5).await;
}

#[tokio::test]
async fn a_changed_leaf_hash_is_detected() {
    let app = setup().await;
    sql(
        &app,
        &["UPDATE audit_log SET leaf_hash = chain_hash WHERE idx = 7"],
    )
    .await;
    assert_detected(&app, 7).await;
}

#[tokio::test]
async fn a_changed_chain_hash_is_detected() {
    let app = setup().await;
    sql(
        &app,
        &["UPDATE audit_log SET chain_hash = leaf_hash WHERE idx = 12"],
    )
    .await;
    assert_detected(&app, 12).await;
}

#[tokio::test]
async fn a_deleted_row_is_detected() {
    let app = setup().await;
    sql(
        &app,
        &[
            "DELETE FROM audit_payload WHERE idx = 4",
            "DELETE FROM audit_log WHERE idx = 4",
        ],
    )
    .await;
    assert_detected(&app, 4).await;
}

#[tokio::test]
async fn an_inserted_row_is_detected() {
    let app = setup().await;
    let mut all = rows(&app).await;
    // A forged event at index 6 with a correct leaf and chain; the rest shifted up by one.
    let mut forged = all[6].clone();
    forged.payload = forged
        .payload
        .replace("\"entries\":1006", "\"entries\":9999");
    forged.leaf = leaf_hash(forged.payload.as_bytes());
    forged.chain = chain_hash(&all[5].chain, &forged.leaf);
    all.insert(6, forged);
    for (i, r) in all.iter_mut().enumerate() {
        r.idx = i as i64;
    }
    rewrite(&app, &all).await;
    set_head(&app, 21).await;
    assert_detected(&app, 6).await;
}

#[tokio::test]
async fn two_swapped_rows_are_detected() {
    let app = setup().await;
    let mut all = rows(&app).await;
    all.swap(3, 8);
    for (i, r) in all.iter_mut().enumerate() {
        r.idx = i as i64;
    }
    rewrite(&app, &all).await;
    assert_detected(&app, 3).await;
}

#[tokio::test]
async fn a_truncated_tail_is_detected_by_the_stored_checkpoint_and_by_the_witness() {
    let app = setup().await;
    sql(
        &app,
        &[
            "DELETE FROM audit_payload WHERE idx >= 15",
            "DELETE FROM audit_log WHERE idx >= 15",
        ],
    )
    .await;
    set_head(&app, 15).await;
    let r = verify(&app, &[]).await;
    assert_eq!(r.first_bad_index, Some(15), "{r:?}");
    // The attacker also removes the checkpoint that covers the tail: only the witness knows.
    sql(&app, &["DELETE FROM audit_checkpoint WHERE tree_size = 20"]).await;
    let r = verify(&app, &[]).await;
    assert!(r.ok, "the database alone cannot tell: {r:?}");
    assert_detected(&app, 15).await;
}

#[tokio::test]
async fn a_forged_checkpoint_is_detected() {
    let app = setup().await;
    // The true root at 15, signed by a key that is not the service's.
    let leaves: Vec<[u8; 32]> = rows(&app).await.iter().map(|r| r.leaf).collect();
    let mut b = RootBuilder::new();
    for l in &leaves[..15] {
        b.push(*l);
    }
    let other = Keyring::new(MasterKey::generate().unwrap());
    let key = SigningKey::derive(&other, 1).unwrap();
    let cp = Checkpoint {
        origin: "mandat.test/audit".into(),
        tree_size: 15,
        root: b.root(),
        timestamp: "2026-11-23T09:30:00.000000Z".into(),
    };
    sql(
        &app,
        &[&format!(
            "INSERT INTO audit_checkpoint (tree_size, root_hash, timestamp, key_id, note) VALUES (15, {}, '{}', 'ffffffff', '{}')",
            bytes(&cp.root),
            cp.timestamp,
            key.sign(&cp)
        )],
    )
    .await;
    assert_detected(&app, 10).await;
}

#[tokio::test]
async fn a_altered_stored_checkpoint_is_detected() {
    let app = setup().await;
    // Another root written into the signed note of checkpoint 20 (signature no longer matches).
    let notes = witness(&app);
    let old = &notes[1].text;
    let fake_root = base64_root(&[9u8; 32]);
    let altered = old.replacen(old.lines().nth(2).unwrap(), &fake_root, 1);
    sql(
        &app,
        &[&format!(
            "UPDATE audit_checkpoint SET note = '{altered}', root_hash = {} WHERE tree_size = 20",
            bytes(&[9u8; 32])
        )],
    )
    .await;
    assert_detected(&app, 10).await;
}

fn base64_root(h: &[u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h)
}

#[tokio::test]
async fn a_rewritten_history_re_signed_is_caught_by_the_witness() {
    let app = setup().await;
    // The attacker holds the signing key: event 0 changed, every hash recomputed, every
    // checkpoint removed and signed again. The database alone is self-consistent.
    let mut all = rows(&app).await;
    all[0].payload = all[0].payload.replace("\"ok\":true", "\"ok\":false");
    recompute(&mut all);
    rewrite(&app, &all).await;
    set_head(&app, 20).await;
    sql(&app, &["DELETE FROM audit_checkpoint"]).await;
    let key = SigningKey::derive(&app.state.keyring, 1).unwrap();
    let mut b = RootBuilder::new();
    for (i, r) in all.iter().enumerate() {
        b.push(r.leaf);
        if i + 1 == 10 || i + 1 == 20 {
            let cp = Checkpoint {
                origin: "mandat.test/audit".into(),
                tree_size: (i + 1) as u64,
                root: b.root(),
                timestamp: "2026-11-23T09:45:00.000000Z".into(),
            };
            sql(
                &app,
                &[&format!(
                    "INSERT INTO audit_checkpoint (tree_size, root_hash, timestamp, key_id, note) VALUES ({}, {}, '{}', 'x', '{}')",
                    i + 1,
                    bytes(&cp.root),
                    cp.timestamp,
                    key.sign(&cp)
                )],
            )
            .await;
        }
    }
    let r = verify(&app, &[]).await;
    assert!(r.ok, "re-signed history passes without the witness: {r:?}");
    assert_detected(&app, 0).await;
}
