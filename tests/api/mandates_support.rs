//! Ready-made actors for the usager and mandate tests: organisations, callers, usagers,
//! mandates (through the services, one transaction each).

#![allow(dead_code)]

use mandat::domain::organisation::NewOrganisation;
use mandat::error::AppError;
use mandat::service::usagers::Caller;
use mandat::service::{Ctx, organisations};
use uuid::Uuid;

use crate::common::TestApp;
pub use crate::common::fixtures::*;

/// A new organisation and an aidant acting for it.
pub async fn caller(app: &TestApp, allowed: Option<&[&str]>) -> Caller {
    let allowed: Option<Vec<String>> = allowed.map(|a| a.iter().map(|s| (*s).to_owned()).collect());
    let org = organisations::create(
        &app.state,
        &Ctx::system(),
        NewOrganisation::parse(
            "France Services Test",
            "1 place de la Mairie, 59000 Lille",
            None,
            allowed.as_deref(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    Caller::member(Uuid::now_v7(), org.id)
}

/// Waits (bounded) until the delivery worker has handled every queued SMS: nothing left
/// `pending` in `sms_outbox`. Messages leave after the commit, from the worker, so a test
/// reads the outbox file only once this holds.
pub async fn sms_settled(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if app.count("sms_outbox WHERE status = 'pending'").await == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the SMS outbox was not delivered in time"
        );
        app.state.sms.notify();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The SMS outbox lines, once every queued message was handled.
pub async fn outbox(app: &TestApp) -> Vec<serde_json::Value> {
    sms_settled(app).await;
    outbox_now(app)
}

/// The SMS outbox lines as the file holds them now.
pub fn outbox_now(app: &TestApp) -> Vec<serde_json::Value> {
    let path = app.dir.path().join("sms-outbox.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn status_of(e: &AppError) -> u16 {
    e.status().as_u16()
}

/// An aidant logged in at the desk of an organisation, over HTTP.
pub struct Desk {
    pub org: Uuid,
    pub account: crate::common::Account,
    pub client: reqwest::Client,
}

pub async fn desk(app: &TestApp, allowed: Option<&[&str]>) -> Desk {
    let c = caller(app, allowed).await;
    let email = format!("aidant-{}@exemple.fr", Uuid::now_v7().simple());
    let account = app.member(&email, c.organisation_id, "aidant").await;
    let client = app.login(&account).await;
    Desk {
        org: c.organisation_id,
        account,
        client,
    }
}

impl Desk {
    pub async fn relogin(&mut self, app: &TestApp) {
        self.client = app.login(&self.account).await;
    }

    pub async fn post(
        &self,
        app: &TestApp,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .client
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> (u16, serde_json::Value) {
        let res = self.client.get(app.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn new_usager(&self, app: &TestApp, phone: Option<&str>) -> Uuid {
        let (s, b) = self.post(app, "/api/v1/usagers", usager_body(phone)).await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn new_mandate(
        &self,
        app: &TestApp,
        usager: Uuid,
        demarches: &[&str],
        channel: &str,
    ) -> serde_json::Value {
        let (s, b) = self
            .post(
                app,
                "/api/v1/mandates",
                serde_json::json!({"usager_id": usager, "demarches": demarches, "duration": "month", "consent_channel": channel}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// A printed mandate, consented at the desk.
    pub async fn active(
        &self,
        app: &TestApp,
        usager: Uuid,
        demarches: &[&str],
    ) -> serde_json::Value {
        let m = self.new_mandate(app, usager, demarches, "print").await;
        let (s, b) = self
            .post(
                app,
                &format!("/api/v1/mandates/{}/consent", m["id"].as_str().unwrap()),
                serde_json::json!({"code": m["consent"]["code"]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }
}

pub fn usager_body(phone: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "given_name": GIVEN,
        "family_name": FAMILY,
        "birthdate": "1948-03-09",
        "birthplace": "Roubaix",
        "phone": phone,
        "email": EMAIL,
        "identity_check": "document",
    })
}

/// The SMS code in the last `code` line of the outbox, and its challenge.
pub async fn last_sms_code(app: &TestApp) -> (String, String) {
    let lines = outbox(app).await;
    let line = lines.iter().rev().find(|l| l["kind"] == "code").unwrap();
    let body = line["body"].as_str().unwrap();
    let code: String = body
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    (code, line["challenge_id"].as_str().unwrap().to_owned())
}
