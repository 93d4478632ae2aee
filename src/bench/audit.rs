//! Audit scenarios: `audit-append` (gap-free index contention and commit cost) and
//! `audit-verify` (full verification time at 10⁴, 10⁵, 10⁶ events).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::{BenchArgs, BenchDb, Measurement, Scenario};
use crate::app::AppState;
use crate::audit::checkpoint::{Checkpoint, SigningKey};
use crate::audit::checkpointer::INITIAL_KEY_VERSION;
use crate::audit::merkle::RootBuilder;
use crate::audit::sequencer::sequence_entry;
use crate::audit::{self, Actor, Details, NewEvent};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::CheckpointRow;

/// A realistic event (about 450 bytes of canonical JSON).
fn event(now: chrono::DateTime<chrono::Utc>, n: u64) -> NewEvent {
    NewEvent::new(
        now,
        Actor::aidant(Uuid::now_v7()),
        Details::MandateActivated {
            demarches: vec!["papiers".into(), "social".into()],
            terms_hash: hex::encode(crate::crypto::sha256(&n.to_le_bytes())),
            expires_at: "2027-11-23T10:15:02.123456Z".into(),
            via: "desk".into(),
        },
    )
    .organisation(Uuid::now_v7())
    .usager(Uuid::now_v7())
    .mandate(Uuid::now_v7())
    .request_id(Some(Uuid::new_v4().to_string()))
}

pub struct AuditAppend;

#[async_trait]
impl Scenario for AuditAppend {
    fn name(&self) -> &'static str {
        "audit-append"
    }
    fn describe(&self) -> &'static str {
        "N concurrent tasks, each op = one transaction appending one event (then zero gaps + chain verified)"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let db = BenchDb::create(&args.db).await?;
        let config = db.config(base, (args.concurrency as u32 + 4).max(8));
        let state = AppState::new(config, Arc::new(SystemClock), true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let seq = tokio::spawn(state.sequencer.clone().run(stop_rx.clone()));
        let cps = tokio::spawn(state.checkpoints.clone().run(stop_rx));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for w in 0..args.concurrency {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut n = (w as u64) << 40;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let r = async {
                        let mut tx = state.store.begin().await?;
                        audit::append(tx.as_mut(), &event(state.clock.now(), n)).await?;
                        tx.commit().await
                    }
                    .await;
                    match r {
                        Ok(()) => lat.push(t0.elapsed()),
                        Err(e) => {
                            errors += 1;
                            tracing::warn!(error = %e, "append failed");
                        }
                    }
                    state.sequencer.notify();
                    n += 1;
                }
                (lat, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        let _ = stop.send(true);
        let _ = seq.await;
        let _ = cps.await;
        let t_drain = Instant::now();
        state.sequencer.barrier().await?;
        let drain = t_drain.elapsed();
        let ops = latencies.len() as i64;
        let keys = state.checkpoints.public_keys().await?;
        let v = crate::audit::verify::verify(&state.store, &keys, &[]).await?;
        let checkpoints = {
            let mut tx = state.store.begin_read().await?;
            tx.audit_checkpoints_between(-1, i64::MAX, i64::MAX)
                .await?
                .len()
        };
        state.store.close().await;
        let m = Measurement::from_latencies(
            format!("append c={}", args.concurrency),
            latencies,
            errors,
            elapsed,
        )
        .note("events_in_log", v.report.entries)
        .note("gaps", i64::from(v.report.entries != ops))
        .note("verified", v.report.ok && v.report.entries == ops)
        .note("checkpoints", checkpoints as i64)
        .note("sequencer_drain_ms", drain.as_millis() as i64)
        .note("db", db.describe());
        db.cleanup().await;
        Ok(vec![m])
    }
}

pub struct AuditVerify;

/// Writes `n` events straight into the log (as the sequencer would), with a checkpoint every
/// `every` events.
async fn seed(state: &AppState, n: u64, every: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 8192;
    let key = SigningKey::derive(&state.keyring, INITIAL_KEY_VERSION)?;
    let origin = state.checkpoints.settings().origin.clone();
    let mut prev = [0u8; 32];
    let mut frontier = RootBuilder::new();
    let mut at = 0u64;
    let now = state.clock.now();
    while at < n {
        let end = (at + BATCH).min(n);
        let mut entries = Vec::with_capacity((end - at) as usize);
        let mut cps = Vec::new();
        for i in at..end {
            let text = serde_json::to_string(&event(now, i).to_value())?;
            let e = sequence_entry(&text, i as i64, &prev)?;
            prev.copy_from_slice(&e.chain_hash);
            let mut leaf = [0u8; 32];
            leaf.copy_from_slice(&e.leaf_hash);
            frontier.push(leaf);
            entries.push(e);
            if (i + 1) % every == 0 || i + 1 == n {
                let cp = Checkpoint {
                    origin: origin.clone(),
                    tree_size: i + 1,
                    root: frontier.root(),
                    timestamp: crate::audit::event::format_ts(now),
                };
                cps.push(CheckpointRow {
                    tree_size: (i + 1) as i64,
                    root_hash: cp.root.to_vec(),
                    timestamp: cp.timestamp.clone(),
                    key_id: hex::encode(key.public.key_id(&origin)),
                    note: key.sign(&cp),
                });
            }
        }
        let mut tx = state.store.begin_sequencer().await?;
        tx.insert_audit_entries(&entries).await?;
        for cp in &cps {
            tx.insert_audit_checkpoint(cp).await?;
        }
        tx.set_audit_head(end as i64, &prev).await?;
        tx.commit().await?;
        at = end;
    }
    Ok(())
}

#[async_trait]
impl Scenario for AuditVerify {
    fn name(&self) -> &'static str {
        "audit-verify"
    }
    fn describe(&self) -> &'static str {
        "full verification (leaves, chain, Merkle roots, checkpoint signatures) of 10^4, 10^5, 10^6 events"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let sizes = args
            .sizes
            .clone()
            .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
        let mut out = Vec::new();
        for n in sizes {
            let db = BenchDb::create(&args.db).await?;
            let config = db.config(base, 4);
            let state = AppState::new(config, Arc::new(SystemClock), true)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let every = state.config.checkpoint_every_events.max(1);
            let t_seed = Instant::now();
            seed(&state, n, every).await?;
            let seeded = t_seed.elapsed();
            // Verification runs on a log written long before: on PostgreSQL, let the freshly
            // written rows get their visibility hints and statistics now, not during (and
            // from) the timed runs, where autovacuum would compete for the same cores.
            db.settle().await?;
            let keys = state.checkpoints.public_keys().await?;
            let mut runs = Vec::new();
            let mut ok = true;
            let mut checked = 0;
            for _ in 0..5 {
                let t0 = Instant::now();
                let v = crate::audit::verify::verify(&state.store, &keys, &[]).await?;
                runs.push(t0.elapsed());
                ok &= v.report.ok && v.report.entries == n as i64;
                checked = v.report.checked_checkpoints;
            }
            let best = runs.iter().min().copied().unwrap_or_default();
            let mut m = Measurement::from_latencies(format!("verify {n}"), runs.clone(), 0, best);
            // One operation is one event verified; the latency columns are whole runs.
            m.operations = n;
            m.throughput_per_s = n as f64 / best.as_secs_f64().max(1e-9);
            m = m
                .note("verified", ok)
                .note("checkpoints", checked)
                .note("best_run_ms", best.as_millis() as i64)
                .note("seed_s", seeded.as_secs_f64().round() as i64)
                .note("clock", SystemClock.now().to_rfc3339());
            state.store.close().await;
            db.cleanup().await;
            out.push(m);
        }
        Ok(out)
    }
}
