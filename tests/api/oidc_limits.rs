//! The per-client limits of the OpenID Connect back channel (`MANDAT_OIDC_CLIENT_RATE`):
//! counted once the client is authenticated, one budget per endpoint.

use crate::common::TestApp;
use crate::oidc_support::*;

#[tokio::test]
async fn each_client_is_limited_once_authenticated_and_others_cannot_spend_its_budget() {
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .with_config(|c| c.oidc_client_rate = 1)
        .spawn()
        .await;
    let d = desk(&app).await;
    let (_, mandate_id) = mandate(&app, &d, &["social"]).await;
    let rp = client(&app, &[]).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &d, &rp, mandate_id, &challenge).await;
    // Someone who knows the client's id but not its secret: refused, and counted nowhere.
    for _ in 0..5 {
        let res = token(&app, &rp.client_id, "not-the-secret", &code, &verifier).await;
        assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    }
    let res = token(&app, &rp.client_id, &rp.secret, &code, &verifier).await;
    assert_eq!(res.status(), 200, "the client's own budget is intact");
    let access = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // One request per second: the next one within the second is refused, on this endpoint.
    let res = token(&app, &rp.client_id, &rp.secret, "another-code", &verifier).await;
    assert_eq!(error_of(res).await, (429, "slow_down".into()));
    // userinfo has a budget of its own, counted by the client of the token.
    assert_eq!(userinfo(&app, &access).await.status(), 200);
    let res = userinfo(&app, &access).await;
    assert_eq!(res.status(), 429);
    assert_eq!(error_of(res).await.1, "slow_down");
    // An unknown token is refused as such, not counted against anyone.
    assert_eq!(userinfo(&app, "unknown-token").await.status(), 401);
}
