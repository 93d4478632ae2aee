//! `oidc` and `token`: the OpenID Connect provider over real HTTP on loopback.
//!
//! `oidc`: the full partner login with the aidant already logged in — `GET /oidc/authorize`
//! (PKCE S256, `login_hint` = a mandate id and a `demarche:` scope: the code at once) →
//! `POST /oidc/token` (`client_secret_basic`) → `GET /oidc/userinfo`; one operation = one
//! whole flow. `token`: the token endpoint alone, with codes minted before the timed phase.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

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
use crate::service::oidc::authorize::{self, Choice, Params, Step};
use crate::service::oidc::clients::{self, AuthMethod, NewClient};
use crate::service::usagers::{self, Caller};
use crate::service::users::{self, Placement};
use crate::service::{Ctx, consent, organisations};

const PASSWORD: &str = "lampe orange tortue 77";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// Usagers with an active mandate the flows act for.
const USAGERS: usize = 64;

pub struct Oidc;
pub struct Token;

/// Partner services registered for a run.
const CLIENTS: usize = 8;

struct Setup {
    db: BenchDb,
    server: BenchServer,
    caller: Caller,
    cookie: String,
    mandates: Vec<Uuid>,
    /// The partner services (one client each): the per-client rate limit of the token and
    /// userinfo endpoints (1,000/s) is a limit of one partner, not of the provider.
    clients: Vec<(String, String)>,
}

fn err(what: &'static str) -> impl FnOnce(crate::error::AppError) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {e:?}")
}

async fn setup(args: &BenchArgs, base: &Config) -> anyhow::Result<Setup> {
    let db = BenchDb::create(&args.db).await?;
    let config = db.config(base, (args.concurrency as u32 + 4).max(8));
    let server = BenchServer::start(config).await?;
    let state = server.state.clone();
    let org = organisations::create(
        &state,
        &Ctx::system(),
        NewOrganisation::parse("Banc d'essai", "1 rue du Banc", None, None)
            .map_err(|_| anyhow::anyhow!("org"))?,
    )
    .await
    .map_err(err("org"))?
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
    .map_err(err("user"))?;
    let caller = Caller::member(created.id, org);
    let mut mandate_ids = Vec::with_capacity(USAGERS);
    for i in 0..USAGERS {
        let family = format!("Flux{i}");
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
        let Replayable::Fresh(u) = usagers::create(&state, &caller, input, None)
            .await
            .map_err(err("usager"))?
        else {
            anyhow::bail!("usager replayed");
        };
        let ids = ["social", "logement"]
            .iter()
            .filter_map(|d| DemarcheId::parse(d))
            .collect();
        let Replayable::Fresh(m) = mandates::create(
            &state,
            &caller,
            NewMandate {
                usager_id: u.id,
                demarches: ids,
                duration: MandateDuration::Long,
                channel: ConsentChannel::Print,
            },
            None,
        )
        .await
        .map_err(err("mandate"))?
        else {
            anyhow::bail!("mandate replayed");
        };
        let code = m
            .consent
            .and_then(|c| c.code)
            .ok_or_else(|| anyhow::anyhow!("no printed code"))?;
        consent::consent_at_desk(&state, &caller, m.id, &code)
            .await
            .map_err(err("consent"))?;
        mandate_ids.push(m.id);
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
    .map_err(err("login"))?;
    let cookie = format!(
        "{}={}",
        crate::http::auth::cookie_name(&state),
        token.expose_secret()
    );
    let mut partners = Vec::new();
    for i in 0..CLIENTS {
        let c = clients::create(
            &state,
            None,
            NewClient {
                name: format!("Banc OIDC {i}"),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                demarches: vec![],
                auth: AuthMethod::Secret,
                jwks: None,
            },
        )
        .await
        .map_err(err("client"))?;
        partners.push((c.client_id, c.client_secret.unwrap_or_default()));
    }
    Ok(Setup {
        db,
        server,
        caller,
        cookie,
        mandates: mandate_ids,
        clients: partners,
    })
}

fn pkce() -> (String, String) {
    let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(crate::crypto::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_query(client_id: &str, challenge: &str, mandate: Uuid) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile demarche:social"),
        ("state", "banc"),
        ("nonce", "banc-nonce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("login_hint", &mandate.to_string()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn code_of(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}

async fn token_request(
    http: &reqwest::Client,
    base: &str,
    s: (&str, &str),
    code: &str,
    verifier: &str,
) -> Option<serde_json::Value> {
    let r = http
        .post(format!("{base}/oidc/token"))
        .basic_auth(s.0, Some(s.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

async fn one_flow(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    creds: (&str, &str),
    mandate: Uuid,
) -> Option<()> {
    let (verifier, challenge) = pkce();
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(authorize_query(creds.0, &challenge, mandate))
        .finish();
    let r = http
        .get(format!("{base}/oidc/authorize?{q}"))
        .header("cookie", cookie)
        .send()
        .await
        .ok()?;
    let code = code_of(r.headers().get("location")?.to_str().ok()?)?;
    let t = token_request(http, base, creds, &code, &verifier).await?;
    let access = t.get("access_token")?.as_str()?;
    let u = http
        .get(format!("{base}/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .ok()?;
    (u.status() == 200).then_some(())
}

#[async_trait]
impl Scenario for Oidc {
    fn name(&self) -> &'static str {
        "oidc"
    }
    fn describe(&self) -> &'static str {
        "over HTTP: authorize (hinted) -> token (PKCE, client_secret_basic) -> userinfo"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let s = setup(args, base).await?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for i in 0..args.concurrency {
            let base = s.server.base.clone();
            let cookie = s.cookie.clone();
            let (id, secret) = s.clients[i % s.clients.len()].clone();
            let mandates = s.mandates.clone();
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = i;
                while Instant::now() < deadline {
                    let m = mandates[n % mandates.len()];
                    n += 1;
                    let t = Instant::now();
                    match one_flow(&http, &base, &cookie, (&id, &secret), m).await {
                        Some(()) => latencies.push(t.elapsed()),
                        None => errors += 1,
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
        let m = Measurement::from_latencies(
            format!("flow c{}", args.concurrency),
            latencies,
            errors,
            started.elapsed(),
        )
        .note("db", s.db.describe());
        s.server.stop().await;
        s.db.cleanup().await;
        Ok(vec![m])
    }
}

#[async_trait]
impl Scenario for Token {
    fn name(&self) -> &'static str {
        "token"
    }
    fn describe(&self) -> &'static str {
        "over HTTP: POST /oidc/token alone, with codes issued before the timed phase"
    }

    async fn run(&self, args: &BenchArgs, base: &Config) -> anyhow::Result<Vec<Measurement>> {
        let s = setup(args, base).await?;
        let state = s.server.state.clone();
        // Codes live 60 s: mint what the timed phase can use, at most 40 s worth of minting.
        let want = (args.duration as usize * 4000).min(60_000);
        let mint_deadline = Instant::now() + Duration::from_secs(40);
        let mut codes = Vec::with_capacity(want);
        let now = state.clock.now();
        for i in 0..want {
            if Instant::now() > mint_deadline {
                break;
            }
            let (verifier, challenge) = pkce();
            let client = i % s.clients.len();
            let params = Params(authorize_query(
                &s.clients[client].0,
                &challenge,
                s.mandates[i % s.mandates.len()],
            ));
            let req = authorize::validate(&state, &params)
                .await
                .map_err(|e| anyhow::anyhow!("authorize: {e:?}"))?;
            let step = authorize::decide(&state, &s.caller, now, &req, &Choice::default())
                .await
                .map_err(|e| anyhow::anyhow!("authorize: {e:?}"))?;
            let Step::Redirect(to) = step else {
                anyhow::bail!("the hinted request did not issue a code");
            };
            let code = code_of(&to).ok_or_else(|| anyhow::anyhow!("no code"))?;
            codes.push((code, verifier, client));
        }
        let minted = codes.len();
        let codes = Arc::new(codes);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration);
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let base = s.server.base.clone();
            let clients = s.clients.clone();
            let codes = codes.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((code, verifier, client)) = codes.get(i) else {
                        break;
                    };
                    let (id, secret) = &clients[*client];
                    let t = Instant::now();
                    match token_request(&http, &base, (id, secret), code, verifier).await {
                        Some(_) => latencies.push(t.elapsed()),
                        None => errors += 1,
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
        let used = next.load(Ordering::Relaxed).min(minted);
        let m = Measurement::from_latencies(
            format!("token c{}", args.concurrency),
            latencies,
            errors,
            elapsed,
        )
        .note("codes_minted", minted)
        .note("codes_used", used)
        .note("ran_out_of_codes", used >= minted)
        .note("db", s.db.describe());
        s.server.stop().await;
        s.db.cleanup().await;
        Ok(vec![m])
    }
}
