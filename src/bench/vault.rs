//! `vault-rewrap`: 10⁵ vault entries (`--sizes` to change) sealed under `vault/v1`, then
//! `keys rotate vault` and `vault rewrap` — stopped half-way and resumed, like an operator
//! interrupting it — until every data key is under `vault/v2`. One operation = one batch
//! (one transaction of [`REWRAP_BATCH`] keys); the figure is data keys re-wrapped per minute.

use std::time::Instant;

use async_trait::async_trait;

use super::{BenchArgs, BenchDb, Measurement, Scenario};
use crate::config::Config;
use crate::service::vault::{self, REWRAP_BATCH};
use crate::service::{Ctx, organisations};

const DEFAULT_ENTRIES: u64 = 100_000;
/// Rows inserted per seeding transaction.
const SEED_BATCH: usize = 1000;

pub struct VaultRewrap;

#[async_trait]
impl Scenario for VaultRewrap {
    fn name(&self) -> &'static str {
        "vault-rewrap"
    }

    fn describe(&self) -> &'static str {
        "vault rewrap of 10^5 data keys after keys rotate vault, interrupted half-way and resumed"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let n = args
            .sizes
            .as_ref()
            .and_then(|s| s.first().copied())
            .unwrap_or(DEFAULT_ENTRIES);
        let db = BenchDb::create(&args.db).await?;
        let state = crate::app::AppState::new(
            db.config(base, 4),
            std::sync::Arc::new(crate::clock::SystemClock),
            true,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let org = organisations::create(
            &state,
            &Ctx::system(),
            crate::domain::organisation::NewOrganisation::parse(
                "Banc du coffre",
                "1 rue du Banc, 75001 Paris",
                None,
                None,
            )
            .map_err(|_| anyhow::anyhow!("organisation"))?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("organisation: {e}"))?;
        let aidant = uuid::Uuid::now_v7();
        let seeded = Instant::now();
        let mut left = n;
        while left > 0 {
            let now = state.clock.now();
            let mut tx = state.store.begin().await?;
            let k = left.min(SEED_BATCH as u64);
            for i in 0..k {
                let row = vault::fixture_row(
                    &state,
                    org.id,
                    aidant,
                    vault::INITIAL_KEK_VERSION,
                    &format!("Compte {i}"),
                    "secret du banc",
                    now,
                )
                .map_err(|e| anyhow::anyhow!("fixture: {e}"))?;
                tx.insert_vault_entry(&row).await?;
            }
            tx.commit().await?;
            left -= k;
        }
        let seed_s = seeded.elapsed().as_secs_f64();
        db.settle().await?;
        let version = vault::rotate_kek(&state, &Ctx::system())
            .await
            .map_err(|e| anyhow::anyhow!("rotate: {e}"))?;

        let batches = n.div_ceil(REWRAP_BATCH as u64);
        let started = Instant::now();
        let first = vault::rewrap(&state, &Ctx::system(), REWRAP_BATCH, Some(batches / 2))
            .await
            .map_err(|e| anyhow::anyhow!("rewrap: {e}"))?;
        let second = vault::rewrap(&state, &Ctx::system(), REWRAP_BATCH, None)
            .await
            .map_err(|e| anyhow::anyhow!("rewrap: {e}"))?;
        let elapsed = started.elapsed();
        state
            .sequencer
            .barrier()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let moved = {
            let mut tx = state.store.begin_read().await?;
            n as i64 - tx.count_vault_keys_below(i64::from(version)).await?
        };
        let rewrapped = first.rewrapped + second.rewrapped;
        let per_minute = rewrapped as f64 / elapsed.as_secs_f64().max(1e-9) * 60.0;
        let mut times = first.batch_times.clone();
        times.extend(second.batch_times.iter().copied());
        let m = Measurement::from_latencies("rewrap batches", times, 0, elapsed)
            .note("entries", n)
            .note("batch_size", REWRAP_BATCH)
            .note("kek_version", version)
            .note("rewrapped_first_run", first.rewrapped)
            .note("remaining_after_first_run", first.remaining)
            .note("rewrapped_resumed_run", second.rewrapped)
            .note("remaining", second.remaining)
            .note("data_keys_per_minute", per_minute.round())
            .note("seed_seconds", (seed_s * 10.0).round() / 10.0)
            .note(
                "verified",
                rewrapped == n && second.remaining == 0 && moved == n as i64,
            );
        state.store.close().await;
        db.cleanup().await;
        Ok(vec![m])
    }
}
