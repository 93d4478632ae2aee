//! A scripted vault session against the real binary, then a scan of the raw database files
//! (SQLite: the file and its WAL; PostgreSQL: a dump of every table) and of everything the
//! process printed: no vault secret, login or TOTP seed in clear.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::at_rest_support::Session;
use crate::vault::{LOGIN, SECRET, SEED};

const ROTATED: &str = "Deuxième-secret-du-compte-55";

#[tokio::test]
async fn no_vault_secret_login_or_seed_in_clear_in_the_database_or_the_logs() {
    let s = Session::start("aidant").await;
    let res = s
        .client
        .post(s.url("/api/v1/vault/entries"))
        .json(
            &json!({"label": "Compte collectif", "service": "impots.gouv.fr", "login": LOGIN,
            "secret": SECRET, "totp_seed": SEED, "notes": "Note privée du compte"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.step_up().await;
    let reveal = |reason: &'static str| {
        s.client
            .post(s.url(&format!("/api/v1/vault/entries/{id}/reveal")))
            .json(&json!({ "reason": reason }))
            .send()
    };
    let res = reveal("usager_present").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], SECRET);
    let res = s
        .client
        .put(s.url(&format!("/api/v1/vault/entries/{id}/secret")))
        .json(&json!({"secret": ROTATED}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = reveal("account_maintenance").await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], ROTATED);
    let res = s
        .client
        .get(s.url("/api/v1/vault/entries"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let seed = mandat::crypto::totp::Seed::parse_card(SEED, false).unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        SECRET.as_bytes().to_vec(),
        ROTATED.as_bytes().to_vec(),
        LOGIN.as_bytes().to_vec(),
        SEED.as_bytes().to_vec(),
        seed.bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(seed.bytes())
            .into_bytes(),
        b"Note priv".to_vec(),
        b"impots.gouv".to_vec(),
    ];
    s.stop_and_assert_nowhere_in_clear(&secrets, "vault_entry")
        .await;
}
