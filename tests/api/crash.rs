//! Crash safety: a real `mandat serve` under a bounded write load from several clients
//! (mandate creations and desk consents over the API) is killed with SIGKILL at random
//! moments and restarted on the same database. Afterwards every write a client saw
//! acknowledged is there, nothing is half-done (no mandate without its audit events, no
//! gap in the log), `mandat audit verify` passes (also against the witness file), and the
//! checkpoints go on from the last signed one. Prints a report.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::serve_process::{self as sp, Deployment};

const CLIENTS: usize = 4;
const KILLS: usize = 5;
/// The whole test stays well under 90 s.
const BUDGET: Duration = Duration::from_secs(80);

#[derive(Default)]
struct Acked {
    created: BTreeSet<Uuid>,
    activated: BTreeSet<Uuid>,
    /// Requests that got no answer (connection reset by the kill, or refused while down).
    unanswered: u64,
}

/// A pseudo-random delay in `[lo, hi)` ms (no seeded generator needed: the kill points
/// are printed in the report).
fn jitter(lo: u64, hi: u64) -> Duration {
    let n = Uuid::new_v4().as_u128() as u64;
    Duration::from_millis(lo + n % (hi - lo))
}

async fn client_loop(
    client: reqwest::Client,
    base: String,
    usagers: Vec<Uuid>,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0usize;
    // Mandates created but whose consent got no answer: retried after a restart.
    let mut pending: Vec<(Uuid, String)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let step = if let Some((id, code)) = pending.pop() {
            match sp::consent(&client, &base, id, &code).await {
                Ok(()) => {
                    acked.lock().unwrap().activated.insert(id);
                    Ok(())
                }
                Err(e) if e.starts_with("HTTP") => Ok(()),
                Err(e) => {
                    pending.push((id, code));
                    Err(e)
                }
            }
        } else {
            let usager = usagers[i % usagers.len()];
            i += 1;
            match sp::create_mandate(&client, &base, usager).await {
                Ok((id, code)) => {
                    acked.lock().unwrap().created.insert(id);
                    match sp::consent(&client, &base, id, &code).await {
                        Ok(()) => {
                            acked.lock().unwrap().activated.insert(id);
                            Ok(())
                        }
                        Err(e) if e.starts_with("HTTP") => Ok(()),
                        Err(e) => {
                            pending.push((id, code));
                            Err(e)
                        }
                    }
                }
                Err(e) if e.starts_with("HTTP") => Ok(()),
                Err(e) => Err(e),
            }
        };
        if step.is_err() {
            acked.lock().unwrap().unanswered += 1;
            // The server is down: try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn sigkill_under_write_load_loses_no_acknowledged_write() {
    let started = Instant::now();
    let d = Deployment::new().await;
    let org = d.org("MFS Crash");
    let aidants: Vec<_> = (0..CLIENTS)
        .map(|n| d.aidant(&format!("crash{n}@example.org"), org))
        .collect();
    let port = sp::free_port();
    let mut server = d.serve(port, &[]).await;
    let base = server.base.clone();

    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut usagers_created = 0;
    for (n, a) in aidants.iter().enumerate() {
        let client = sp::login(&base, a).await;
        let mut usagers = Vec::new();
        for k in 0..4 {
            usagers.push(sp::usager(&client, &base, &format!("Crash-{n}-{k}")).await);
            usagers_created += 1;
        }
        tasks.push(tokio::spawn(client_loop(
            client,
            base.clone(),
            usagers,
            acked.clone(),
            stop.clone(),
        )));
    }

    let mut kill_points = Vec::new();
    let mut checkpoints_at_kill = Vec::new();
    for k in 0..KILLS {
        let wait = jitter(300, 1500);
        tokio::time::sleep(wait).await;
        let (created, activated) = {
            let a = acked.lock().unwrap();
            (a.created.len(), a.activated.len())
        };
        server.kill();
        let killed_at = started.elapsed();
        let latest = d
            .sql_i64s("SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoint")
            .await[0];
        checkpoints_at_kill.push(latest);
        kill_points.push(format!(
            "kill {} at {:.2}s (after {} ms of load; {created} created / {activated} activated acknowledged so far; latest signed checkpoint {latest})",
            k + 1,
            killed_at.as_secs_f64(),
            wait.as_millis(),
        ));
        // Down for a moment: the clients' requests fail meanwhile.
        tokio::time::sleep(jitter(50, 300)).await;
        server = d.serve(port, &[]).await;
        assert!(
            started.elapsed() < BUDGET,
            "crash test over its time budget"
        );
    }
    // A last stretch of load on the restarted server, then a clean stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // Give the checkpointer a moment to sign the tail, then stop cleanly.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.stop(), Some(0), "clean exit after the last restart");

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let stored: BTreeSet<Uuid> = d
        .sql_uuids("SELECT id FROM mandate")
        .await
        .into_iter()
        .collect();
    let activated_stored: BTreeSet<Uuid> = d
        .sql_uuids("SELECT id FROM mandate WHERE activated_at IS NOT NULL")
        .await
        .into_iter()
        .collect();
    let audit_ids = |action: &'static str| {
        let d = &d;
        async move {
            d.sql_strings(&format!(
                "SELECT mandate_id FROM audit_log WHERE action = '{action}' AND mandate_id IS NOT NULL"
            ))
            .await
            .into_iter()
            .map(|s| s.parse::<Uuid>().expect("uuid"))
            .collect::<BTreeSet<Uuid>>()
        }
    };
    let created_events = audit_ids("mandate.created").await;
    let activated_events = audit_ids("mandate.activated").await;
    let lost_created: Vec<_> = acked.created.difference(&stored).collect();
    let lost_activated: Vec<_> = acked.activated.difference(&activated_stored).collect();
    let without_created_event: Vec<_> = stored.difference(&created_events).collect();
    let without_activated_event: Vec<_> = activated_stored.difference(&activated_events).collect();
    let events_without_mandate: Vec<_> = created_events.difference(&stored).collect();
    let queue_left = d.sql_i64s("SELECT COUNT(*) FROM audit_queue").await[0];
    let log = d
        .sql_i64s("SELECT COUNT(*) FROM audit_log UNION ALL SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log UNION ALL SELECT next_index FROM audit_head")
        .await;
    let (log_rows, log_end, head) = (log[0], log[1], log[2]);
    let checkpoints = d
        .sql_i64s("SELECT tree_size FROM audit_checkpoint ORDER BY tree_size")
        .await;
    let last_checkpoint = checkpoints.last().copied().unwrap_or(0);
    let (verify_code, verify_out) = d.audit_verify(None);
    let witness = d.witness_file();
    let (against_code, against_out) = d.audit_verify(Some(&witness));
    let witness_lines = std::fs::read_to_string(&witness)
        .unwrap_or_default()
        .lines()
        .count();

    println!("== crash test report ({})", crate::common::backend());
    for p in &kill_points {
        println!("  {p}");
    }
    println!(
        "  clients: {CLIENTS}; usagers created: {usagers_created}; requests without an answer (server down): {}",
        acked.unanswered
    );
    println!(
        "  acknowledged: {} mandates created, {} activated",
        acked.created.len(),
        acked.activated.len()
    );
    println!(
        "  found after restart: {} of the acknowledged creations, {} of the acknowledged activations ({} mandates stored in all, {} activated)",
        acked.created.len() - lost_created.len(),
        acked.activated.len() - lost_activated.len(),
        stored.len(),
        activated_stored.len()
    );
    println!(
        "  half-done: {} mandates without mandate.created, {} activated without mandate.activated, {} mandate.created without a mandate",
        without_created_event.len(),
        without_activated_event.len(),
        events_without_mandate.len()
    );
    println!(
        "  audit log: {log_rows} entries, indices 0..{log_end}, head {head}, {queue_left} left in the queue"
    );
    println!(
        "  checkpoints: {} signed, latest at kill {:?}, last {last_checkpoint}; witness lines {witness_lines}",
        checkpoints.len(),
        checkpoints_at_kill
    );
    println!("  audit verify: exit {verify_code}: {}", verify_out.trim());
    println!(
        "  audit verify --against witness: exit {against_code}: {}",
        against_out.trim()
    );
    println!("  duration: {:.1}s", started.elapsed().as_secs_f64());

    assert!(acked.created.len() >= KILLS, "the load made writes");
    assert!(!acked.activated.is_empty());
    assert!(acked.unanswered > 0, "the kills hit requests in flight");
    assert!(
        lost_created.is_empty(),
        "acknowledged creations lost: {lost_created:?}"
    );
    assert!(
        lost_activated.is_empty(),
        "acknowledged activations lost: {lost_activated:?}"
    );
    assert!(
        without_created_event.is_empty(),
        "{without_created_event:?}"
    );
    assert!(
        without_activated_event.is_empty(),
        "{without_activated_event:?}"
    );
    assert!(
        events_without_mandate.is_empty(),
        "{events_without_mandate:?}"
    );
    assert_eq!(queue_left, 0, "the clean stop sequenced everything");
    assert_eq!(log_rows, log_end, "no gap in the audit log");
    assert_eq!(log_end, head);
    assert_eq!(verify_code, 0, "{verify_out}");
    assert!(verify_out.starts_with("ok"), "{verify_out}");
    assert_eq!(against_code, 0, "{against_out}");
    // Checkpoints go on from the last signed one: each restart signed past the latest
    // checkpoint that existed at its kill, and the witness saw every one of them.
    assert!(last_checkpoint > *checkpoints_at_kill.last().unwrap());
    for w in checkpoints_at_kill.windows(2) {
        assert!(w[0] <= w[1], "{checkpoints_at_kill:?}");
    }
    assert!(
        checkpoints_at_kill.first().copied().unwrap_or(0) < last_checkpoint,
        "new checkpoints after the restarts"
    );
    assert!(witness_lines >= checkpoints.len().min(1));
    assert!(started.elapsed() < BUDGET + Duration::from_secs(10));
}
