//! The authorize screens in a real browser: a partner sends the aidant to
//! `/oidc/authorize`; not logged in yet, the aidant logs in and comes back, chooses the
//! usager, then the démarche, and is sent back to the partner with a code.

use mandat::domain::demarche::DemarcheId;
use mandat::domain::mandate::{ConsentChannel, MandateDuration};
use mandat::domain::usager::{NewUsager, UsagerInput};
use mandat::service::Caller;
use mandat::service::idempotency::Replayable;
use mandat::service::mandates::{self, NewMandate};
use mandat::service::oidc::clients::{self, AuthMethod, NewClient};
use mandat::service::{consent, usagers};

use crate::browser::Browser;
use crate::common::{self, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aidant_logs_into_a_partner_for_a_usager() {
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await;
    let org = app.org("France Services de Melun").await;
    let aidant = app
        .member("camille.oidc@melun.example", org, "aidant")
        .await;
    let caller = Caller::member(aidant.id, org);
    use mandat::clock::Clock as _;
    let input = NewUsager::parse(
        &UsagerInput {
            given_name: "Jeanne",
            family_name: "Dupont",
            birthdate: "1950-03-14",
            birthplace: None,
            phone: None,
            email: None,
            identity_check: "document",
        },
        app.clock.now().date_naive(),
    )
    .unwrap();
    let Replayable::Fresh(u) = usagers::create(&app.state, &caller, input, None)
        .await
        .unwrap()
    else {
        panic!("replay")
    };
    let Replayable::Fresh(m) = mandates::create(
        &app.state,
        &caller,
        NewMandate {
            usager_id: u.id,
            demarches: ["social", "logement"]
                .iter()
                .filter_map(|d| DemarcheId::parse(d))
                .collect(),
            duration: MandateDuration::Month,
            channel: ConsentChannel::Print,
        },
        None,
    )
    .await
    .unwrap() else {
        panic!("replay")
    };
    let code = m.consent.unwrap().code.unwrap();
    consent::consent_at_desk(&app.state, &caller, m.id, &code)
        .await
        .unwrap();
    let rp = clients::create(
        &app.state,
        None,
        NewClient {
            name: "Caisse d'allocations familiales".into(),
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            post_logout_redirect_uris: vec![],
            demarches: vec![],
            auth: AuthMethod::Secret,
            jwks: None,
        },
    )
    .await
    .unwrap();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", rp.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("scope", "openid profile"),
            ("state", "etat-ui"),
            ("nonce", "nonce-ui"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();

    let mut b = Browser::start(&format!("{}-oidc", common::backend())).await;
    b.goto(&app.url(&format!("/oidc/authorize?{query}"))).await;
    b.wait_h1("Se connecter").await;
    b.fill("#email", &aidant.email).await;
    b.fill("#password", &aidant.password).await;
    b.fill("#totp", &app.code(&aidant.totp_secret)).await;
    b.submit("main form[action='/connexion'] button[type=submit]")
        .await;
    b.wait_h1("Se connecter à Caisse d'allocations familiales pour un usager")
        .await;
    let page = b.body().await;
    assert!(page.contains("Dupont Jeanne"), "{page}");
    assert!(page.contains("14/03/1950"), "{page}");
    b.check("oidc-usager").await;
    b.submit("main button[value=choose]").await;
    b.wait_h1("Choisir la démarche").await;
    assert!(b.body().await.contains("Logement"));
    b.check("oidc-demarche").await;
    b.click("input[value=logement]").await;
    b.submit("main button[value=choose]").await;
    // Back at the partner (nothing listens there): the address carries the code and state.
    let mut url = String::new();
    for _ in 0..100 {
        url = b.client.current_url().await.unwrap().to_string();
        if url.starts_with("http://127.0.0.1:9/callback") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        url.starts_with("http://127.0.0.1:9/callback?code="),
        "{url}"
    );
    assert!(url.contains("state=etat-ui"), "{url}");
    b.stop().await;
}
