//! `mandates`: over real HTTP on loopback, N aidants each create a print-consent mandate and
//! enter its code (2 requests, ≥ 3 audit events, all in transactions) as fast as they can.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{BenchArgs, BenchDb, BenchServer, Measurement, Scenario};
use crate::config::Config;
use crate::crypto::totp::Seed;
use crate::domain::account::OrgRole;
use crate::domain::organisation::NewOrganisation;
use crate::service::accounts::{self, LoginInput};
use crate::service::users::{self, Placement};
use crate::service::{Ctx, organisations};

const PASSWORD: &str = "lampe orange tortue 77";
/// Usagers per aidant: mandates rotate over them (each activation also replaces the previous
/// mandate of that usager for the démarche, as at a real desk).
const USAGERS_PER_AIDANT: usize = 8;

pub struct Mandates;

struct Desk {
    client: reqwest::Client,
    cookie: String,
    usagers: Vec<Uuid>,
}

async fn json_or_err(res: reqwest::Response, expected: u16) -> anyhow::Result<Value> {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status != expected {
        anyhow::bail!("HTTP {status}: {}", body["code"]);
    }
    Ok(body)
}

async fn desk(server: &BenchServer, org: Uuid, n: usize) -> anyhow::Result<Desk> {
    let state = &server.state;
    let email = format!("aidant{n}@bench.example");
    let created = users::create(
        state,
        &email,
        "Aidant de banc",
        Placement::Member {
            organisation: org,
            role: OrgRole::Aidant,
        },
        SecretString::from(PASSWORD.to_owned()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("user create: {e}"))?;
    let seed =
        Seed::parse_card(&created.totp_secret, false).ok_or_else(|| anyhow::anyhow!("seed"))?;
    let code = seed.code_at(30, u64::try_from(state.clock.now().timestamp())?);
    // Logged in through the service (the HTTP route's per-IP limit is for humans).
    let ip: IpAddr = [127, 0, 0, 1].into();
    let (token, _) = accounts::login(
        state,
        LoginInput {
            email,
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
        crate::http::auth::cookie_name(state),
        token.expose_secret()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2)
        .build()?;
    let mut usagers = Vec::with_capacity(USAGERS_PER_AIDANT);
    for i in 0..USAGERS_PER_AIDANT {
        let res = client
            .post(format!("{}/api/v1/usagers", server.base))
            .header("cookie", &cookie)
            .json(&json!({
                "given_name": "Marie",
                "family_name": format!("Banc-{n}-{i}"),
                "birthdate": "1950-04-12",
                "phone": "+33612345678",
                "identity_check": "document",
            }))
            .send()
            .await?;
        let u = json_or_err(res, 201).await?;
        usagers.push(u["id"].as_str().unwrap_or_default().parse()?);
    }
    Ok(Desk {
        client,
        cookie,
        usagers,
    })
}

/// One operation: create a print mandate, then enter its code.
async fn activate(base: &str, d: &Desk, usager: Uuid) -> anyhow::Result<()> {
    let res = d
        .client
        .post(format!("{base}/api/v1/mandates"))
        .header("cookie", &d.cookie)
        .json(&json!({"usager_id": usager, "demarches": ["social", "logement"], "duration": "semester", "consent_channel": "print"}))
        .send()
        .await?;
    let m = json_or_err(res, 201).await?;
    let id = m["id"].as_str().unwrap_or_default();
    let code = m["consent"]["code"].as_str().unwrap_or_default();
    let res = d
        .client
        .post(format!("{base}/api/v1/mandates/{id}/consent"))
        .header("cookie", &d.cookie)
        .json(&json!({"code": code}))
        .send()
        .await?;
    let m = json_or_err(res, 200).await?;
    if m["status"] != "active" {
        anyhow::bail!("mandate not active after consent");
    }
    Ok(())
}

#[async_trait]
impl Scenario for Mandates {
    fn name(&self) -> &'static str {
        "mandates"
    }
    fn describe(&self) -> &'static str {
        "over HTTP: create a print-consent mandate + enter its code (2 requests, >= 3 audit events)"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let db = BenchDb::create(&args.db).await?;
        let config = db.config(base, (args.concurrency as u32 + 4).max(8));
        let server = BenchServer::start(config).await?;
        let org = organisations::create(
            &server.state,
            &Ctx::system(),
            NewOrganisation::parse("Banc d'essai", "1 rue du Banc", None, None)
                .map_err(|_| anyhow::anyhow!("org"))?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .id;
        let mut desks = Vec::new();
        for n in 0..args.concurrency {
            desks.push(desk(&server, org, n).await?);
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for d in desks {
            let base_url = server.base.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let usager = d.usagers[i % d.usagers.len()];
                    i += 1;
                    let t = Instant::now();
                    match activate(&base_url, &d, usager).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(e) => {
                            errors += 1;
                            if errors <= 3 {
                                tracing::warn!(error = %e, "bench operation failed");
                            }
                        }
                    }
                }
                (latencies, errors)
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
        let activated = latencies.len();
        server.state.sequencer.barrier().await?;
        let events = {
            let mut tx = server.state.store.begin_read().await?;
            tx.audit_head().await?.0
        };
        let m = Measurement::from_latencies(
            format!("c{}", args.concurrency),
            latencies,
            errors,
            elapsed,
        )
        .note("activated_mandates", activated)
        .note("audit_events", events);
        server.stop().await;
        db.cleanup().await;
        Ok(vec![m])
    }
}
