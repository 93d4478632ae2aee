//! The DPO's functions over HTTP: search with cursor paging and filters, the référent's
//! scope, streamed exports behind a step-up, proofs a client verifies on its own, the public
//! key, verification; retention of payloads; and an independent verifier (Python, stdlib
//! only) that recomputes the Merkle root of an export and checks the checkpoint signature.

use mandat::audit::merkle::Hash;
use mandat::audit::proof::{verify_consistency, verify_inclusion};
use mandat::audit::{self, Actor, Details, NewEvent};
use serde_json::{Value, json};

use crate::audit_trail::{append, checkpoint, mandat_cli_ok, quiet_app};
use crate::common::TestApp;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

async fn get_json(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, Value) {
    let res = client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn all_pages(client: &reqwest::Client, app: &TestApp, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit/events?{query}&limit=3&cursor={c}"),
            None => format!("/api/v1/audit/events?{query}&limit=3"),
        };
        let (status, page) = get_json(client, app, &path).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn dpo_searches_and_referents_see_only_their_organisation() {
    let app = quiet_app().await;
    let org_a = app.org("Structure A").await;
    let org_b = app.org("Structure B").await;
    append(&app, 4).await;
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    let referent = app.member("ref@a.test", org_a, "referent").await;
    let admin = app.platform("admin@mandat.test", "admin").await;
    let aidant = app.member("aidant@a.test", org_a, "aidant").await;

    assert_eq!(app.get("/api/v1/audit/events").await.status(), 401);

    let c = app.login(&dpo).await;
    let everything = app.audit_events().await;
    let items = all_pages(&c, &app, "since=2000-01-01T00:00:00Z").await;
    assert!(items.len() >= everything.len());
    let indexes: Vec<i64> = items.iter().map(|e| e["index"].as_i64().unwrap()).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "ordered, no repeats"
    );
    assert_eq!(items[..everything.len()], everything[..]);
    let created = all_pages(&c, &app, "action=organisation.created").await;
    assert_eq!(created.len(), 2);
    let b_only = all_pages(&c, &app, &format!("organisation={org_b}")).await;
    assert!(!b_only.is_empty());
    assert!(
        b_only
            .iter()
            .all(|e| e["organisation"] == org_b.to_string())
    );
    let (s, _) = get_json(&c, &app, "/api/v1/audit/events?limit=501").await;
    assert_eq!(s, 422);
    let (s, _) = get_json(&c, &app, "/api/v1/audit/events?since=hier").await;
    assert_eq!(s, 422);
    let (s, _) = get_json(&c, &app, "/api/v1/audit/events?cursor=%%%").await;
    assert!(s == 422 || s == 400);

    // The référent: their organisation's events only.
    let r = app.login(&referent).await;
    let mine = all_pages(&r, &app, "action=organisation.created").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["organisation"], org_a.to_string());
    let (s, _) = get_json(
        &r,
        &app,
        &format!("/api/v1/audit/events?organisation={org_b}"),
    )
    .await;
    assert_eq!(s, 403);
    for path in [
        "/api/v1/audit/proofs/consistency?from=1&to=2",
        "/api/v1/audit/export?format=jsonl",
    ] {
        assert_eq!(
            r.get(app.url(path)).send().await.unwrap().status(),
            403,
            "{path}"
        );
    }

    // Administrators and aidants do not read the trail.
    for who in [&admin, &aidant] {
        let c = app.login(who).await;
        let (s, _) = get_json(&c, &app, "/api/v1/audit/events").await;
        assert_eq!(s, 403);
        let res = c
            .post(app.url("/api/v1/audit/verify"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
}

#[tokio::test]
async fn exports_need_a_step_up_are_audited_and_are_the_canonical_events() {
    let app = quiet_app().await;
    app.org("Structure A").await;
    append(&app, 5).await;
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    let c = app.login(&dpo).await;
    let res = c
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "step_up_required");

    app.step_up(&c, &dpo).await;
    let stored: Vec<String> = app
        .audit_entries()
        .await
        .into_iter()
        .map(|e| e.canonical_event.unwrap())
        .collect();
    let res = c
        .get(app.url("/api/v1/audit/export?format=jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines.len(),
        stored.len(),
        "a snapshot: the export's own event is not in it"
    );
    assert_eq!(lines, stored.iter().map(String::as_str).collect::<Vec<_>>());

    let res = c
        .get(app.url("/api/v1/audit/export?format=csv&action=audit.verified"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "index,horodatage,action,type_acteur,id_acteur,organisation,usager,mandat,cible,id_requete,details,empreinte_feuille,contenu_purge"
    );
    assert_eq!(rows.count(), 5);

    let exported: Vec<Value> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["action"] == "audit.exported")
        .collect();
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["actor"]["id"], dpo.id.to_string());
    assert_eq!(exported[0]["details"]["events"], stored.len() as i64);
    assert_eq!(exported[1]["details"]["format"], "csv");
}

#[tokio::test]
async fn proofs_checkpoints_public_key_and_verify_over_http() {
    let app = quiet_app().await;
    append(&app, 13).await;
    let size = checkpoint(&app).await;
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    assert_eq!(
        app.get("/api/v1/audit/checkpoints/latest").await.status(),
        401
    );

    // The public key needs no session.
    let keys: Value = app
        .get("/api/v1/audit/public-key")
        .await
        .json()
        .await
        .unwrap();
    let k = &keys["keys"][0];
    assert_eq!(k["alg"], "Ed25519");
    assert!(k["vkey"].as_str().unwrap().starts_with(&format!(
        "mandat.test/audit+{}+",
        k["key_id"].as_str().unwrap()
    )));

    let c = app.login(&dpo).await;
    let (s, cp) = get_json(&c, &app, "/api/v1/audit/checkpoints/latest").await;
    assert_eq!(s, 200);
    assert_eq!(cp["tree_size"], size);
    assert!(
        cp["note"]
            .as_str()
            .unwrap()
            .contains("\n\n\u{2014} mandat.test/audit ")
    );
    let root = h(cp["root_hash"].as_str().unwrap());

    let leaves: Vec<Hash> = app
        .audit_entries()
        .await
        .iter()
        .map(|e| e.leaf_hash.clone().try_into().unwrap())
        .collect();
    for index in [0, 5, 12] {
        let (s, p) = get_json(
            &c,
            &app,
            &format!("/api/v1/audit/proofs/inclusion?index={index}&tree_size={size}"),
        )
        .await;
        assert_eq!(s, 200, "{p}");
        let proof: Vec<Hash> = p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| h(x.as_str().unwrap()))
            .collect();
        verify_inclusion(index as u64, size as u64, &leaves[index], &proof, &root).unwrap();
    }
    let old_root = mandat::audit::merkle::mth(&leaves[..5]);
    let (s, p) = get_json(
        &c,
        &app,
        &format!("/api/v1/audit/proofs/consistency?from=5&to={size}"),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let proof: Vec<Hash> = p["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| h(x.as_str().unwrap()))
        .collect();
    verify_consistency(5, size as u64, &old_root, &root, &proof).unwrap();
    for bad in [
        format!("/api/v1/audit/proofs/inclusion?index={size}&tree_size={size}"),
        "/api/v1/audit/proofs/inclusion?index=0&tree_size=100000".into(),
        "/api/v1/audit/proofs/consistency?from=6&to=5".into(),
    ] {
        let (s, _) = get_json(&c, &app, &bad).await;
        assert_eq!(s, 422, "{bad}");
    }

    let res = c
        .post(app.url("/api/v1/audit/verify"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(r["checked_checkpoints"], 1);
    assert!(r.get("first_bad_index").is_none());
}

#[tokio::test]
async fn pruned_payloads_keep_the_log_verifiable_and_an_independent_verifier_agrees() {
    let app = quiet_app().await;
    // Logouts three years ago (12-month retention), then recent events (6 years).
    app.clock.advance(chrono::Duration::days(-3 * 365));
    for _ in 0..4 {
        let mut tx = app.state.store.begin().await.unwrap();
        let ev = NewEvent::new(
            app.state.clock.now(),
            Actor::system(),
            Details::AidantLogout {},
        );
        audit::append(tx.as_mut(), &ev).await.unwrap();
        tx.commit().await.unwrap();
    }
    app.clock.advance(chrono::Duration::days(3 * 365));
    append(&app, 6).await;

    let ctx = mandat::service::Ctx::system();
    let report = mandat::service::retention::run(&app.state, &ctx, false)
        .await
        .unwrap();
    let access = report
        .classes
        .iter()
        .find(|c| c.class == "audit_payload.access_log")
        .unwrap();
    assert_eq!(
        (access.count, access.first_index, access.last_index),
        (4, Some(0), Some(3))
    );
    assert_eq!(report.total(), 4);
    let events = app.audit_events().await;
    assert_eq!(
        app.count("audit_payload").await,
        7,
        "4 of 10 pruned, +1 retention.applied"
    );
    let applied = events
        .iter()
        .find(|e| e["action"] == "retention.applied")
        .unwrap();
    assert_eq!(
        applied["details"]["classes"][0],
        json!({"class": "audit_payload.access_log", "count": 4, "first_index": 0, "last_index": 3})
    );
    let size = checkpoint(&app).await;
    let r = crate::audit_trail::verify(&app, &crate::audit_trail::witness(&app)).await;
    assert!(r.ok && r.entries == size, "{r:?}");

    // The export and the independent verifier.
    let export = mandat_cli_ok(&app, &["audit", "export", "--format", "jsonl"]).await;
    assert_eq!(export.lines().count() as i64, size);
    assert!(export.lines().next().unwrap().contains("\"pruned\":true"));
    let dir = app.dir.path();
    std::fs::write(dir.join("export.jsonl"), &export).unwrap();
    let cp = mandat::service::audit::latest_checkpoint(
        &app.state,
        Some(&mandat::service::Ctx::system()),
    )
    .await
    .unwrap();
    std::fs::write(
        dir.join("checkpoint.json"),
        serde_json::to_string(&cp).unwrap(),
    )
    .unwrap();
    let keys = mandat::service::audit::public_keys(&app.state)
        .await
        .unwrap();
    std::fs::write(dir.join("keys.json"), serde_json::to_string(&keys).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_export.py");
    let run = || {
        std::process::Command::new("python3")
            .arg(script)
            .args(["export.jsonl", "checkpoint.json", "keys.json"])
            .current_dir(dir)
            .output()
            .expect("python3 is required by this test (installed by .ci/run)")
    };
    let ok = run();
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.starts_with("ok"), "{text}");
    // A changed byte in the export is caught by the independent verifier too.
    std::fs::write(
        dir.join("export.jsonl"),
        export.replacen("\"ok\":true", "\"ok\":false", 1),
    )
    .unwrap();
    let bad = run();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    // And so is a checkpoint signed by another key.
    let forged = cp
        .note
        .replacen(&cp.note[cp.note.len() - 10..], "AAAAAAAAA\n", 1);
    let mut cp2: Value = serde_json::to_value(&cp).unwrap();
    cp2["note"] = json!(forged);
    std::fs::write(dir.join("export.jsonl"), &export).unwrap();
    std::fs::write(dir.join("checkpoint.json"), cp2.to_string()).unwrap();
    assert_eq!(run().status.code(), Some(1));
}

#[tokio::test]
async fn csv_exports_neutralise_formula_cells() {
    let app = quiet_app().await;
    // Request ids chosen by clients were stored by the first release: such an event still
    // exports without opening as a formula in a spreadsheet.
    let formulas = [
        "=HYPERLINK(\"https://evil.example\",\"ouvrir\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\tx",
        "\rx",
    ];
    for f in formulas {
        let mut tx = app.state.store.begin().await.unwrap();
        let ev = NewEvent::new(
            app.state.clock.now(),
            Actor::system(),
            Details::AuditVerified {
                ok: true,
                entries: 1,
            },
        )
        .request_id(Some(f.to_owned()));
        audit::append(tx.as_mut(), &ev).await.unwrap();
        tx.commit().await.unwrap();
    }
    app.state.sequencer.barrier().await.unwrap();
    let dpo = app.platform("dpo@mandat.test", "dpo").await;
    let c = app.login(&dpo).await;
    app.step_up(&c, &dpo).await;
    let res = c
        .get(app.url("/api/v1/audit/export?format=csv&action=audit.verified"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    // The request id is the tenth column; quoted cells (with `"` or a line break) start
    // with `"'`.
    for expected in [
        "\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"ouvrir\"\")\"",
        "'+1+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1:A2)",
        "'\tx",
        "\"'\rx\"",
    ] {
        assert!(
            csv.contains(&format!(",{expected},")),
            "{expected:?} in {csv}"
        );
    }
    for f in formulas {
        for prefix in [",", ",\""] {
            assert!(
                !csv.contains(&format!("{prefix}{}", &f[..2])),
                "{f:?} left as a formula"
            );
        }
    }
    // The JSONL export stays the canonical events, unchanged.
    let jsonl = c
        .get(app.url("/api/v1/audit/export?format=jsonl&action=audit.verified"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<String> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, formulas);
}
