//! Ready-made fixtures for the integration and browser tests: organisations, members,
//! usagers and mandates made through the use cases (one transaction each), the scene a
//! [`Builder`](super::Builder) sets up before a test (`TestApp::builder().org(…).member(…)
//! .usager().mandate(…)`), and the audit-trail and command-line helpers.

#![allow(dead_code)]

use mandat::audit::checkpoint::{SignedNote, read_external};
use mandat::audit::verify::VerifyReport;
use mandat::audit::{self, Actor, Details, NewEvent};
use mandat::config::DatabaseUrl;
use mandat::domain::demarche::{DemarcheId, parse_set};
use mandat::domain::mandate::{ConsentChannel, MandateDuration};
use mandat::domain::usager::{NewUsager, UsagerInput};
use mandat::error::AppError;
use mandat::service::consent;
use mandat::service::idempotency::Replayable;
use mandat::service::mandates::{self, Mandate, NewMandate};
use mandat::service::usagers::{self, Caller};
use uuid::Uuid;

use super::{Account, TestApp};

pub const GIVEN: &str = "Marguerite-Zoé";
pub const FAMILY: &str = "Quatrefeuilles";
pub const PHONE: &str = "06 12 34 56 78";
pub const PHONE_E164: &str = "+33612345678";
pub const EMAIL: &str = "marguerite.quatrefeuilles@exemple.fr";

pub fn today(app: &TestApp) -> chrono::NaiveDate {
    use mandat::clock::Clock as _;
    app.clock.now().date_naive()
}

pub fn input(app: &TestApp, phone: Option<&str>) -> NewUsager {
    NewUsager::parse(
        &UsagerInput {
            given_name: GIVEN,
            family_name: FAMILY,
            birthdate: "1948-03-09",
            birthplace: Some("Roubaix"),
            phone,
            email: Some(EMAIL),
            identity_check: "document",
        },
        today(app),
    )
    .unwrap()
}

pub fn fresh<T>(r: Replayable<T>) -> T {
    match r {
        Replayable::Fresh(t) => t,
        Replayable::Replay { .. } => panic!("unexpected replay"),
    }
}

pub async fn usager(app: &TestApp, c: &Caller, phone: Option<&str>) -> Uuid {
    fresh(
        usagers::create(&app.state, c, input(app, phone), None)
            .await
            .unwrap(),
    )
    .id
}

pub fn demarches(ids: &[&str]) -> Vec<DemarcheId> {
    parse_set(&ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
}

pub async fn try_mandate(
    app: &TestApp,
    c: &Caller,
    usager: Uuid,
    ids: &[&str],
    channel: ConsentChannel,
) -> Result<Mandate, AppError> {
    let input = NewMandate {
        usager_id: usager,
        demarches: demarches(ids),
        duration: MandateDuration::Month,
        channel,
    };
    mandates::create(&app.state, c, input, None)
        .await
        .map(fresh)
}

pub async fn print_mandate(app: &TestApp, c: &Caller, usager: Uuid, ids: &[&str]) -> Mandate {
    try_mandate(app, c, usager, ids, ConsentChannel::Print)
        .await
        .unwrap()
}

/// A printed mandate, consented at the desk.
pub async fn active_mandate(app: &TestApp, c: &Caller, usager: Uuid, ids: &[&str]) -> Mandate {
    let m = print_mandate(app, c, usager, ids).await;
    let code = m.consent.as_ref().unwrap().code.clone().unwrap();
    consent::consent_at_desk(&app.state, c, m.id, &code)
        .await
        .unwrap()
}

/// One step of a scene, in the order the builder was given them.
#[derive(Debug, Clone)]
pub enum Step {
    Org(String),
    Member(String),
    Usager,
    Mandate(Vec<String>),
}

/// A member of an organisation of the scene.
#[derive(Clone)]
pub struct Member {
    pub account: Account,
    pub org: Uuid,
    pub role: String,
    /// The member acting for `org`, for calling the use cases directly.
    pub caller: Caller,
}

/// What the builder set up: each list in creation order.
#[derive(Clone, Default)]
pub struct Scene {
    pub orgs: Vec<Uuid>,
    pub members: Vec<Member>,
    pub usagers: Vec<Uuid>,
    /// Active printed-code mandates, consented at the desk.
    pub mandates: Vec<Mandate>,
}

impl Scene {
    pub fn org(&self) -> Uuid {
        *self
            .orgs
            .last()
            .expect("the scene has no organisation: .org(…)")
    }

    pub fn member(&self) -> &Member {
        self.members
            .last()
            .expect("the scene has no member: .member(…)")
    }

    pub fn usager(&self) -> Uuid {
        *self
            .usagers
            .last()
            .expect("the scene has no usager: .usager()")
    }

    pub fn mandate(&self) -> &Mandate {
        self.mandates
            .last()
            .expect("the scene has no mandate: .mandate(…)")
    }
}

/// Plays the steps: each member joins the last organisation, each usager is registered by the
/// last member, each mandate is for the last usager.
pub async fn play(app: &TestApp, steps: &[Step]) -> Scene {
    let mut s = Scene::default();
    for step in steps {
        match step {
            Step::Org(name) => s.orgs.push(app.org(name).await),
            Step::Member(role) => {
                let org = s.org();
                let email = format!("{role}{}.o{}@exemple.fr", s.members.len() + 1, s.orgs.len());
                let account = app.member(&email, org, role).await;
                let mut caller = Caller::member(account.id, org);
                if role == "referent" {
                    caller.principal.referent_of.push(org);
                }
                s.members.push(Member {
                    account,
                    org,
                    role: role.clone(),
                    caller,
                });
            }
            Step::Usager => {
                let c = s.member().caller.clone();
                s.usagers.push(usager(app, &c, Some(PHONE)).await);
            }
            Step::Mandate(ids) => {
                let c = s.member().caller.clone();
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let m = active_mandate(app, &c, s.usager(), &ids).await;
                s.mandates.push(m);
            }
        }
    }
    s
}

/// An app whose background writer never checkpoints by itself (the tests decide when).
pub async fn quiet_app() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.checkpoint_interval_ms = 3_600_000;
            c.checkpoint_every_events = 1_000_000;
        })
        .spawn()
        .await
}

pub async fn append(app: &TestApp, n: i64) {
    for i in 0..n {
        let mut tx = app.state.store.begin().await.unwrap();
        let ev = NewEvent::new(
            app.state.clock.now(),
            Actor::system(),
            Details::AuditVerified {
                ok: true,
                entries: 1000 + i,
            },
        );
        audit::append(tx.as_mut(), &ev).await.unwrap();
        tx.commit().await.unwrap();
    }
    app.state.sequencer.barrier().await.unwrap();
}

pub async fn checkpoint(app: &TestApp) -> i64 {
    app.state
        .checkpoints
        .write_now()
        .await
        .expect("checkpoint")
        .expect("a new checkpoint")
        .tree_size
}

pub fn witness(app: &TestApp) -> Vec<SignedNote> {
    read_external(&app.dir.path().join("witness.jsonl")).expect("witness file")
}

pub async fn verify(app: &TestApp, external: &[SignedNote]) -> VerifyReport {
    mandat::audit::verify::verify(
        &app.state.store,
        &app.state.checkpoints.public_keys().await.unwrap(),
        external,
    )
    .await
    .unwrap()
    .report
}

/// Runs `mandat audit verify [--against FILE]` on the app's database.
pub async fn cli_verify(app: &TestApp, against: Option<&str>) -> (i32, String) {
    let mut args = vec!["audit", "verify"];
    if let Some(f) = against {
        args.extend(["--against", f]);
    }
    let out = mandat_cli(app, &args).await;
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs the binary with the app's database and master key, off the runtime's thread (the
/// test's server keeps running meanwhile: it may hold the write lock the binary waits for).
pub async fn mandat_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    mandat_cli_env(app, &[], args).await
}

/// [`mandat_cli`] that must succeed: its standard output.
pub async fn mandat_cli_ok(app: &TestApp, args: &[&str]) -> String {
    let out = mandat_cli(app, args).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "mandat {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// [`mandat_cli`] with more environment variables.
pub async fn mandat_cli_env(
    app: &TestApp,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    use secrecy::ExposeSecret as _;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mandat"));
    c.current_dir(app.dir.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("MANDAT_") {
            c.env_remove(k);
        }
    }
    let url = match &app.db_url {
        DatabaseUrl::Sqlite(u) => u.clone(),
        DatabaseUrl::Postgres(u) => u.expose_secret().to_owned(),
    };
    c.env("MANDAT_DATABASE_URL", url)
        .env("MANDAT_MASTER_KEY", TEST_MASTER_KEY)
        .env("MANDAT_LOG", "error")
        .envs(env.iter().copied())
        .args(args);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// The master key of `Config::for_tests`.
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
