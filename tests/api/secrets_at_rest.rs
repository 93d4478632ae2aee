//! A scripted session against the real binary, then a scan of the raw database files and
//! of everything the process printed: no password, TOTP seed or session id in clear.

use base64::Engine as _;
use serde_json::json;

use crate::at_rest_support::{PASSWORD, Session};

#[tokio::test]
async fn no_password_seed_or_session_id_in_clear_in_the_database_or_the_logs() {
    let s = Session::start("referent").await;
    let session_id = s
        .login_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    s.step_up().await;
    let res = s
        .client
        .post(s.url("/api/v1/me/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "Second-secret-très-long-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let secrets: Vec<Vec<u8>> = vec![
        PASSWORD.as_bytes().to_vec(),
        b"Second-secret-tr".to_vec(),
        s.totp_secret.as_bytes().to_vec(),
        s.seed.bytes().to_vec(),
        session_id.as_bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(s.seed.bytes())
            .into_bytes(),
    ];
    s.stop_and_assert_nowhere_in_clear(&secrets, "aidant").await;
}
