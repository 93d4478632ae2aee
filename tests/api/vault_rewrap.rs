//! `mandat keys rotate vault` and `mandat vault rewrap`: an interrupted run resumes and
//! re-wraps every data key exactly once, without touching any field ciphertext.

use std::collections::HashMap;

use mandat::service::Ctx;
use mandat::service::vault;
use serde_json::Value;

use crate::audit_trail::{mandat_cli, mandat_cli_ok};
use crate::common::TestApp;
use crate::mandates_support::desk;
use crate::vault::{SECRET, column, entry_body, id_of, new_entry};

async fn wrapped_keys(app: &TestApp, ids: &[String]) -> HashMap<String, (Vec<u8>, Vec<u8>)> {
    let mut out = HashMap::new();
    for id in ids {
        out.insert(
            id.clone(),
            (
                column(app, id, "wrapped_key").await.unwrap(),
                column(app, id, "secret").await.unwrap(),
            ),
        );
    }
    out
}

#[tokio::test]
async fn an_interrupted_rewrap_resumes_and_rewraps_each_key_once() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(id_of(
            &new_entry(&app, &d, entry_body(&format!("Compte {i}"))).await,
        ));
    }
    // Nothing to do before a rotation.
    let r = vault::rewrap(&app.state, &Ctx::system(), 10, None)
        .await
        .unwrap();
    assert_eq!((r.kek_version, r.rewrapped, r.remaining), (1, 0, 0));

    let rotated: Value = serde_json::from_str(
        mandat_cli_ok(&app, &["keys", "rotate", "vault"])
            .await
            .trim(),
    )
    .unwrap();
    assert_eq!(rotated["purpose"], "vault");
    assert_eq!(rotated["version"], 2);
    let before = wrapped_keys(&app, &ids).await;

    // Interrupted after one batch.
    let r = vault::rewrap(&app.state, &Ctx::system(), 10, Some(1))
        .await
        .unwrap();
    assert_eq!((r.kek_version, r.rewrapped, r.remaining), (2, 10, 15));
    let middle = wrapped_keys(&app, &ids).await;
    let moved: Vec<&String> = ids
        .iter()
        .filter(|id| middle[*id].0 != before[*id].0)
        .collect();
    assert_eq!(moved.len(), 10);

    // Resumed by the command line, to the end.
    let out = mandat_cli_ok(&app, &["vault", "rewrap", "--batch-size", "7"]).await;
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["rewrapped"], 15, "{report}");
    assert_eq!(report["remaining"], 0);
    assert_eq!(report["kek_version"], 2);
    let after = wrapped_keys(&app, &ids).await;
    for id in &ids {
        assert_ne!(after[id].0, before[id].0, "every key re-wrapped");
        assert_eq!(after[id].1, before[id].1, "field ciphertexts untouched");
        if moved.contains(&id) {
            assert_eq!(after[id].0, middle[id].0, "re-wrapped once, not twice");
        }
    }
    assert_eq!(app.count("vault_entry WHERE kek_version = 2").await, 25);
    // A third run has nothing left.
    let out = mandat_cli_ok(&app, &["vault", "rewrap"]).await;
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["rewrapped"], 0);

    // Audited per batch: the counts add up to the entries, exactly once each.
    let events = app.audit_events().await;
    let total: i64 = events
        .iter()
        .filter(|e| e["action"] == "vault.rewrapped")
        .map(|e| e["details"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 25);
    assert!(events.iter().any(|e| e["action"] == "keys.rotated"
        && e["details"]["purpose"] == "vault"
        && e["details"]["version"] == 2));

    // Everything still opens; new entries use the new version.
    app.step_up(&d.client, &d.account).await;
    let (s, b) = d
        .post(
            &app,
            &format!("/api/v1/vault/entries/{}/reveal", ids[3]),
            serde_json::json!({"reason": "account_maintenance"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["secret"], SECRET);
    new_entry(&app, &d, entry_body("Après rotation")).await;
    assert_eq!(app.count("vault_entry WHERE kek_version = 2").await, 26);

    let bad = mandat_cli(&app, &["vault", "rewrap", "--batch-size", "0"]).await;
    assert_eq!(bad.status.code(), Some(2));
}
