//! The same flow with a Python relying party (authlib, `tests/oidc_authlib/rp.py`): no
//! special case on either side. Skips with a message when python3 or authlib is missing.

use mandat::clock::Clock as _;

use crate::common::TestApp;
use crate::oidc_support::*;

fn python_with_authlib() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn an_authlib_relying_party_completes_the_flow() {
    if !python_with_authlib() {
        eprintln!(
            "SKIPPED: python3 with authlib and requests is not installed (pip install authlib requests)"
        );
        return;
    }
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await;
    let d = desk(&app).await;
    let (_, mandate_id) = mandate(&app, &d, &["social"]).await;
    let rp = client(&app, &[]).await;
    // The aidant's session cookie, as the browser holds it.
    let login = app.new_client();
    let res = login
        .post(app.url("/api/v1/session"))
        .json(
            &serde_json::json!({"email": d.aidant.email, "password": d.aidant.password,
            "totp": app.code(&d.aidant.totp_secret)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mandat_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let cfg = serde_json::json!({
        "issuer": app.base,
        "client_id": rp.client_id,
        "client_secret": rp.secret,
        "redirect_uri": REDIRECT,
        "cookie": cookie,
        "login_hint": mandate_id.to_string(),
        "now": app.clock.now().timestamp(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc_authlib/rp.py");
    let arg = cfg.to_string();
    // Off the runtime's thread: the server under test runs on it.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(arg)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "authlib RP failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["alg"], "ES256");
    assert_eq!(result["mandate"], mandate_id.to_string());
}
