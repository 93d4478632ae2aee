//! Second factors: sealing TOTP seeds and checking codes against an account's factors.

use uuid::Uuid;

use crate::crypto::totp::{APP_STEP, CARD_STEP, Seed};
use crate::crypto::{Aad, Purpose, open, seal};
use crate::error::AppError;
use crate::service::Services;
use crate::store::{TotpFactorRow, Tx};

/// Current version of the key sealing seeds.
pub const SEED_KEY_VERSION: u32 = 1;

fn aad(id: &str, version: u32) -> Aad<'_> {
    Aad {
        table: "totp_factor",
        row_id: id,
        field: "seed",
        key_version: version,
    }
}

pub fn seal_seed(state: &Services, factor_id: Uuid, seed: &Seed) -> Result<Vec<u8>, AppError> {
    let key = state
        .keyring
        .key(Purpose::Secrets, SEED_KEY_VERSION)
        .map_err(anyhow::Error::from)?;
    let id = factor_id.to_string();
    Ok(
        seal(key.bytes(), &aad(&id, SEED_KEY_VERSION), seed.bytes())
            .map_err(anyhow::Error::from)?,
    )
}

pub fn open_seed(state: &Services, f: &TotpFactorRow) -> Result<Seed, AppError> {
    let version = u32::try_from(f.key_version).map_err(anyhow::Error::from)?;
    let key = state
        .keyring
        .key(Purpose::Secrets, version)
        .map_err(anyhow::Error::from)?;
    let id = f.id.to_string();
    let plain =
        open(key.bytes(), &aad(&id, version), &f.seed_sealed).map_err(anyhow::Error::from)?;
    Ok(Seed::from_bytes(plain))
}

pub fn step_of(f: &TotpFactorRow) -> u64 {
    match u64::try_from(f.step_secs) {
        Ok(s) if s == CARD_STEP => CARD_STEP,
        _ => APP_STEP,
    }
}

/// Where a new factor goes and what it is.
pub struct FactorSpec<'a> {
    pub aidant: Option<Uuid>,
    pub organisation: Option<Uuid>,
    pub kind: &'a str,
    pub serial: Option<String>,
    pub step: u64,
    pub status: &'a str,
}

/// A new factor row (seed sealed).
pub fn new_factor(
    state: &Services,
    spec: FactorSpec<'_>,
    seed: &Seed,
) -> Result<TotpFactorRow, AppError> {
    let id = Uuid::now_v7();
    Ok(TotpFactorRow {
        id,
        aidant_id: spec.aidant,
        organisation_id: spec.organisation,
        kind: spec.kind.to_owned(),
        serial: spec.serial,
        seed_sealed: seal_seed(state, id, seed)?,
        key_version: SEED_KEY_VERSION as i32,
        step_secs: spec.step as i32,
        last_used_step: None,
        status: spec.status.to_owned(),
        created_at: state.clock.now(),
    })
}

/// Which active factor accepts `code` now, and at which step. Does not record the step.
pub fn match_code(
    state: &Services,
    factors: &[TotpFactorRow],
    code: &str,
    statuses: &[&str],
) -> Result<Option<(Uuid, i64)>, AppError> {
    let unix = u64::try_from(state.clock.now().timestamp()).unwrap_or(0);
    for f in factors
        .iter()
        .filter(|f| statuses.contains(&f.status.as_str()))
    {
        let seed = open_seed(state, f)?;
        if let Some(step) = seed.verify(code, step_of(f), unix, 1, f.last_used_step) {
            return Ok(Some((f.id, step)));
        }
    }
    Ok(None)
}

/// Checks a code against the account's active factors and records its step in `tx`;
/// `false` for a wrong or replayed code.
pub async fn check_and_use(
    state: &Services,
    tx: &mut dyn Tx,
    aidant: Uuid,
    code: &str,
) -> Result<bool, AppError> {
    let factors = tx.totp_factors(aidant).await?;
    match match_code(state, &factors, code, &["active"])? {
        Some((factor, step)) => Ok(tx.use_totp_step(factor, step).await?),
        None => Ok(false),
    }
}
