//! `mandat keys rotate`: a new audit-signing key version signs the next checkpoints of the
//! running server, every version stays published and verifies, `keys.rotated` is recorded
//! with its `key_version` row; purposes without a data model are refused.

use serde_json::Value;

use crate::audit_trail::{
    append, checkpoint, cli_verify, mandat_cli, mandat_cli_env, quiet_app, verify, witness,
};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test]
async fn rotating_the_audit_key_signs_new_checkpoints_and_old_ones_still_verify() {
    let app = quiet_app().await;
    append(&app, 5).await;
    let first = app.state.checkpoints.write_now().await.unwrap().unwrap();

    // The binary rotates while the server runs.
    // (The key id names the origin: the binary gets the server's.)
    let out = mandat_cli_env(
        &app,
        &[("MANDAT_AUDIT_ORIGIN", "mandat.test/audit")],
        &["keys", "rotate", "audit"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(rotated["purpose"], "audit");
    assert_eq!(rotated["version"], 2);
    let new_id = rotated["key_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, first.key_id);
    assert_eq!(app.count("key_version").await, 1);
    let events = app.audit_events().await;
    let ev: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "keys.rotated")
        .collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0]["details"],
        serde_json::json!({"purpose": "audit-signing", "version": 2, "key_id": new_id})
    );

    // The running server signs its next checkpoint with the new version.
    append(&app, 3).await;
    let second = app.state.checkpoints.write_now().await.unwrap().unwrap();
    assert_eq!(second.key_id, new_id);
    assert!(second.tree_size > first.tree_size);

    // Both keys are published.
    let keys: Value = app
        .get("/api/v1/audit/public-key")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.key_id.as_str(), new_id.as_str()]);

    // Verification accepts checkpoints of both versions: stored, witnessed, --against.
    let r = verify(&app, &witness(&app)).await;
    assert!(r.ok && r.checked_checkpoints >= 2, "{r:?}");
    let (code, text) = cli_verify(&app, Some("witness.jsonl")).await;
    assert_eq!(code, 0, "{text}");
    let report = mandat::service::audit::verify(&app.state, &mandat::service::Ctx::system(), &[])
        .await
        .unwrap();
    assert!(report.ok);
    // And the writer's own re-verification keeps signing.
    append(&app, 2).await;
    assert!(checkpoint(&app).await > second.tree_size);
    assert!(app.state.checkpoints.failure().is_none());

    // A third version, in process.
    let third = mandat::service::keys::rotate(
        &app.state,
        &mandat::service::Ctx::system(),
        mandat::service::keys::RotatableKey::Audit,
    )
    .await
    .unwrap();
    assert_eq!(third.version, 3);
    append(&app, 1).await;
    let last = app.state.checkpoints.write_now().await.unwrap().unwrap();
    assert_eq!(last.key_id, third.key_id);
    let r = verify(&app, &witness(&app)).await;
    assert!(r.ok, "{r:?}");
}

#[tokio::test]
async fn purposes_without_a_data_model_are_refused() {
    let app = quiet_app().await;
    for purpose in ["index"] {
        let out = mandat_cli(&app, &["keys", "rotate", purpose]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{purpose}: {err}");
        assert!(err.contains("not available"), "{err}");
    }
    let out = mandat_cli(&app, &["keys", "rotate", "pii"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(app.count("key_version").await, 0);
    assert!(
        !app.audit_events()
            .await
            .iter()
            .any(|e| e["action"] == "keys.rotated")
    );
}
