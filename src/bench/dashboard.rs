//! `dashboard`: over real HTTP on loopback, N clients of one organisation holding 10⁴ active
//! mandates (`--sizes` to change) load `/espace-aidant` (its three lists: pending consents,
//! expiring within 30 days, active; one query each plus the démarches and consents of the
//! listed mandates) as fast as they can.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};

use super::{BenchArgs, BenchDb, BenchServer, Measurement, Scenario};
use crate::config::Config;
use crate::crypto::totp::Seed;
use crate::domain::account::OrgRole;
use crate::domain::demarche::DemarcheId;
use crate::domain::mandate::{ConsentChannel, MandateDuration};
use crate::domain::organisation::NewOrganisation;
use crate::domain::usager::{NewUsager, UsagerInput};
use crate::service::accounts::{self, LoginInput};
use crate::service::idempotency::Replayable;
use crate::service::mandates::{self, NewMandate};
use crate::service::usagers::{self, Caller};
use crate::service::users::{self, Placement};
use crate::service::{Ctx, consent, organisations};

const PASSWORD: &str = "lampe orange tortue 77";
/// Tasks seeding the mandates.
const SEEDERS: usize = 8;

pub struct Dashboard;

/// One usager with one active mandate (1 in 10 expiring tomorrow).
async fn seed_one(state: &crate::app::AppState, caller: &Caller, i: u64) -> anyhow::Result<()> {
    let family = format!("Banc{i}");
    let input = NewUsager::parse(
        &UsagerInput {
            given_name: "Marie",
            family_name: &family,
            birthdate: "1950-04-12",
            birthplace: None,
            phone: None,
            email: None,
            identity_check: "document",
        },
        state.clock.now().date_naive(),
    )
    .map_err(|_| anyhow::anyhow!("usager input"))?;
    let Replayable::Fresh(u) = usagers::create(state, caller, input, None)
        .await
        .map_err(|e| anyhow::anyhow!("usager: {e}"))?
    else {
        anyhow::bail!("usager replayed");
    };
    let ids = ["social", "logement"]
        .iter()
        .filter_map(|d| DemarcheId::parse(d))
        .collect();
    let duration = if i.is_multiple_of(10) {
        MandateDuration::Short
    } else {
        MandateDuration::Long
    };
    let Replayable::Fresh(m) = mandates::create(
        state,
        caller,
        NewMandate {
            usager_id: u.id,
            demarches: ids,
            duration,
            channel: ConsentChannel::Print,
        },
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("mandate: {e}"))?
    else {
        anyhow::bail!("mandate replayed");
    };
    let code = m
        .consent
        .and_then(|c| c.code)
        .ok_or_else(|| anyhow::anyhow!("no printed code"))?;
    consent::consent_at_desk(state, caller, m.id, &code)
        .await
        .map_err(|e| anyhow::anyhow!("consent: {e}"))?;
    Ok(())
}

#[async_trait]
impl Scenario for Dashboard {
    fn name(&self) -> &'static str {
        "dashboard"
    }
    fn describe(&self) -> &'static str {
        "over HTTP: GET /espace-aidant of an organisation with 10^4 active mandates"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let size = args
            .sizes
            .as_ref()
            .and_then(|s| s.first().copied())
            .unwrap_or(10_000);
        let db = BenchDb::create(&args.db).await?;
        let config = db.config(base, (args.concurrency as u32 + 4).max(SEEDERS as u32 + 2));
        let server = BenchServer::start(config).await?;
        let state = server.state.clone();
        let org = organisations::create(
            &state,
            &Ctx::system(),
            NewOrganisation::parse("Banc d'essai", "1 rue du Banc", None, None)
                .map_err(|_| anyhow::anyhow!("org"))?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id;
        let created = users::create(
            &state,
            "aidant@bench.example",
            "Aidant de banc",
            Placement::Member {
                organisation: org,
                role: OrgRole::Aidant,
            },
            SecretString::from(PASSWORD.to_owned()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("user create: {e}"))?;
        let caller = Caller::member(created.id, org);
        let mut seeders = Vec::new();
        for s in 0..SEEDERS as u64 {
            let state = state.clone();
            let caller = caller.clone();
            seeders.push(tokio::spawn(async move {
                let mut i = s;
                while i < size {
                    seed_one(&state, &caller, i).await?;
                    i += SEEDERS as u64;
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for t in seeders {
            t.await??;
        }
        let seed =
            Seed::parse_card(&created.totp_secret, false).ok_or_else(|| anyhow::anyhow!("seed"))?;
        let code = seed.code_at(30, u64::try_from(state.clock.now().timestamp())?);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let (token, _) = accounts::login(
            &state,
            LoginInput {
                email: "aidant@bench.example".into(),
                password: SecretString::from(PASSWORD.to_owned()),
                totp: code,
            },
            ip,
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("login: {e}"))?;
        let cookie = format!(
            "{}={}",
            crate::http::auth::cookie_name(&state),
            token.expose_secret()
        );
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let url = format!("{}/espace-aidant", server.base);
            let cookie = cookie.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = match client.get(&url).header("cookie", &cookie).send().await {
                        Ok(r) if r.status() == 200 => r
                            .text()
                            .await
                            .is_ok_and(|html| html.contains("Mandats actifs")),
                        _ => false,
                    };
                    if ok {
                        latencies.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                Ok::<_, anyhow::Error>((latencies, errors))
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await??;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        let m = Measurement::from_latencies(
            format!("c{} n{size}", args.concurrency),
            latencies,
            errors,
            elapsed,
        )
        .note("active_mandates", size);
        server.stop().await;
        db.cleanup().await;
        Ok(vec![m])
    }
}
