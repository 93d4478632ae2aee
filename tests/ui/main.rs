//! The desk's journeys in a real browser: headless Chromium driven by chromedriver against
//! one server for the whole suite (SQLite by default, PostgreSQL with `TEST_POSTGRES_URL`).
//! Every step is saved under `target/ui-screenshots/` and checked with axe-core (no
//! `serious` or `critical` violation). Needs the Debian packages `chromium` and
//! `chromium-driver`, and `npm ci --prefix tests/ui` (both installed by `.ci/run`).

#[path = "../api/common/mod.rs"]
mod common;

mod browser;
mod consent;
mod oidc;
mod vault;

use browser::Browser;
use common::{Account, TestApp};

async fn log_in(b: &mut Browser, app: &TestApp, a: &Account, step: &str) {
    b.goto(&app.url("/connexion")).await;
    b.wait_h1("Se connecter").await;
    b.fill("#email", &a.email).await;
    b.fill("#password", &a.password).await;
    b.fill("#totp", &app.code(&a.totp_secret)).await;
    b.check(step).await;
    b.submit("main form[action='/connexion'] button[type=submit]")
        .await;
}

async fn log_out(b: &Browser) {
    b.submit("header form[action='/deconnexion'] button").await;
    b.wait_h1("Se connecter").await;
    assert!(b.body().await.contains("Vous êtes déconnecté."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_journeys_in_chromium() {
    // The browser's `Origin` is the listen address: it must be the service's public URL.
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await;
    let org = app.org("France Services de Melun").await;
    let aidant = app.member("camille@melun.example", org, "aidant").await;
    let referent = app.member("dominique@melun.example", org, "referent").await;
    let dpo = app.platform("dpo@mandat.example", "dpo").await;
    let admin = app.platform("admin@mandat.example", "admin").await;
    let mut b = Browser::start(common::backend()).await;

    // The home page says what the service is.
    b.goto(&app.url("/")).await;
    b.wait_h1("mandat").await;
    b.check("accueil").await;

    // Log in with TOTP: a wrong code gets the one generic error, the right one the desk.
    b.goto(&app.url("/connexion")).await;
    b.fill("#email", &aidant.email).await;
    b.fill("#password", &aidant.password).await;
    b.fill("#totp", "000000").await;
    b.submit("main form[action='/connexion'] button[type=submit]")
        .await;
    b.wait_h1("Se connecter").await;
    assert!(
        b.body()
            .await
            .contains("Adresse e-mail, mot de passe ou code incorrect.")
    );
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#email"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(aidant.email.as_str()),
        "the email typed is kept"
    );
    b.check("connexion-erreur").await;
    log_in(&mut b, &app, &aidant, "connexion").await;
    b.wait_h1("Espace aidant").await;
    assert!(b.body().await.contains("France Services de Melun"));
    b.check("espace-aidant").await;

    // Create a usager: an empty form is refused field by field, then it is registered.
    b.submit("a[href='/usagers/nouveau']").await;
    b.wait_h1("Enregistrer un usager").await;
    b.submit("main form[action='/usagers/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Enregistrer un usager").await;
    let described = b
        .client
        .find(fantoccini::Locator::Css("#given_name"))
        .await
        .unwrap()
        .attr("aria-describedby")
        .await
        .unwrap();
    assert_eq!(described.as_deref(), Some("given_name-error"));
    b.check("usager-erreurs").await;
    b.fill("#given_name", "Jeanne").await;
    b.fill("#family_name", "Dupont").await;
    b.client
        .execute(
            "document.getElementById('birthdate').value = '1950-03-14';",
            vec![],
        )
        .await
        .unwrap();
    b.fill("#birthplace", "Melun").await;
    b.check("usager-formulaire").await;
    b.submit("main form[action='/usagers/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Jeanne Dupont").await;
    assert!(b.body().await.contains("L'usager est enregistré."));
    b.check("usager").await;

    // A mandate by print: démarches as tiles, recap in plain words, the code typed back.
    b.submit("main a.button[href^='/mandats/nouveau']").await;
    b.wait_h1("Nouveau mandat pour Jeanne Dupont").await;
    assert!(
        b.body().await.contains("surendettement"),
        "the argent warning"
    );
    for d in ["papiers", "famille", "argent"] {
        b.click(&format!("input[name=demarches][value={d}]")).await;
    }
    b.click("input[name=duree][value=month]").await;
    b.check("mandat-demarches").await;
    b.submit("main form[action='/mandats/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Récapitulatif du mandat").await;
    let recap = b.body().await;
    assert!(recap.contains("1 mois"), "{recap}");
    assert!(recap.contains("ne doit jamais effectuer de paiement"));
    b.click("input[name=canal][value=print]").await;
    b.check("mandat-recapitulatif").await;
    b.submit("main form[action='/mandats/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Code de consentement").await;
    let code = b.text("#printed-code").await;
    assert!(!code.trim().is_empty());
    b.check("mandat-code").await;
    b.fill("#code", "ZZZZ-ZZZZ").await;
    b.submit("main form[action$='/consentement'] button[type=submit]")
        .await;
    b.wait_h1("Code de consentement").await;
    assert!(b.body().await.contains("Code incorrect"));
    b.check("mandat-code-erreur").await;
    b.fill("#code", code.trim()).await;
    b.submit("main form[action$='/consentement'] button[type=submit]")
        .await;
    b.wait_h1("Mandat de Jeanne Dupont").await;
    let page = b.body().await;
    assert!(page.contains("le mandat est actif"), "{page}");
    assert!(page.contains("Consentement donné"), "timeline: {page}");
    b.check("mandat-actif").await;

    // Revoke one démarche: confirmation required, then only that one is revoked.
    b.click("input[name=portee][value=some]").await;
    b.click("input[name=demarches][value=famille]").await;
    b.client
        .execute(
            "document.getElementById('motif').value = 'usager_request';",
            vec![],
        )
        .await
        .unwrap();
    b.submit("main form[action$='/revoquer'] button[type=submit]")
        .await;
    b.wait_h1("Mandat de Jeanne Dupont").await;
    assert!(
        b.body()
            .await
            .contains("Cochez la case pour confirmer que l'usager a été informé.")
    );
    b.check("revocation-confirmation").await;
    b.click("input[name=confirmation]").await;
    b.submit("main form[action$='/revoquer'] button[type=submit]")
        .await;
    b.wait_h1("Mandat de Jeanne Dupont").await;
    let rows = b.text("main table tbody").await;
    assert!(rows.contains("Famille Révoquée"), "{rows}");
    assert!(rows.contains("Papiers - Citoyenneté Active"), "{rows}");
    b.check("revocation-faite").await;
    // The same page on a phone (home visits).
    b.client.set_window_size(390, 844).await.unwrap();
    b.check("mandat-telephone").await;
    b.client.set_window_size(1280, 1000).await.unwrap();

    // A mandate by SMS: the code page follows the consent live (static JS polling) and
    // moves on by itself once the usager has answered from their phone.
    b.goto(&app.url("/usagers/nouveau")).await;
    b.wait_h1("Enregistrer un usager").await;
    b.fill("#given_name", "Paul").await;
    b.fill("#family_name", "Lefèvre").await;
    b.client
        .execute(
            "document.getElementById('birthdate').value = '1947-06-02';",
            vec![],
        )
        .await
        .unwrap();
    b.fill("#phone", "06 12 34 56 78").await;
    b.submit("main form[action='/usagers/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Paul Lefèvre").await;
    b.submit("main a.button[href^='/mandats/nouveau']").await;
    b.wait_h1("Nouveau mandat pour Paul Lefèvre").await;
    b.click("input[name=demarches][value=social]").await;
    b.click("input[name=duree][value=semester]").await;
    b.submit("main form[action='/mandats/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Récapitulatif du mandat").await;
    b.click("input[name=canal][value=sms]").await;
    b.submit("main form[action='/mandats/nouveau'] button[type=submit]")
        .await;
    b.wait_h1("Code de consentement").await;
    let page = b.body().await;
    assert!(page.contains("+33 •• •• •• •• 78"), "{page}");
    assert!(page.contains("État : En attente du consentement"), "{page}");
    b.check("mandat-sms-attente").await;
    let sms = std::fs::read_to_string(app.dir.path().join("sms-outbox.jsonl")).unwrap();
    let line: serde_json::Value = sms
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["kind"] == "code")
        .expect("an SMS with the code");
    let code: String = line["body"]
        .as_str()
        .unwrap()
        .split("mandat : ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let res = app
        .new_client()
        .post(app.url("/api/v1/public/consent"))
        .json(&serde_json::json!({"challenge_id": line["challenge_id"], "code": code, "decision": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    b.wait_h1("Mandat de Paul Lefèvre").await;
    assert!(b.text("main .badge").await.contains("Actif"));
    b.check("mandat-sms-actif").await;
    log_out(&b).await;

    // The référent invites an aidant and gets the link to hand over.
    log_in(&mut b, &app, &referent, "referent-connexion").await;
    b.wait_h1("Espace aidant").await;
    b.submit("nav a[href='/structure']").await;
    b.wait_h1("France Services de Melun").await;
    b.check("structure").await;
    b.fill("#email", "alex@melun.example").await;
    b.fill("#display_name", "Alex Bernard").await;
    b.submit("main form[action='/structure/invitations'] button[type=submit]")
        .await;
    b.wait_h1("France Services de Melun").await;
    let link = b.text("#handover-link").await;
    assert!(link.contains("/invitation/"), "{link}");
    assert!(b.text("main table").await.contains("Alex Bernard"));
    b.check("structure-invitation").await;
    log_out(&b).await;

    // The DPO runs the integrity check.
    log_in(&mut b, &app, &dpo, "dpo-connexion").await;
    b.wait_h1("Journal d'audit").await;
    b.check("dpo").await;
    b.submit("main form[action='/dpo/verification'] button[type=submit]")
        .await;
    b.wait_h1("Journal d'audit").await;
    let result = b.body().await;
    assert!(result.contains("Journal intègre"), "{result}");
    b.check("dpo-integrite").await;
    log_out(&b).await;

    // The administrator creates an organisation and invites its référent.
    log_in(&mut b, &app, &admin, "admin-connexion").await;
    b.wait_h1("Administration").await;
    let page = b.body().await;
    assert!(
        page.contains("Clé de signature du journal d'audit : version 1 en service"),
        "{page}"
    );
    b.check("admin").await;
    b.submit("main form[action='/admin/organisations'] button[type=submit]")
        .await;
    b.wait_h1("Administration").await;
    assert_eq!(
        b.client
            .find(fantoccini::Locator::Css("#name"))
            .await
            .unwrap()
            .attr("aria-describedby")
            .await
            .unwrap()
            .as_deref(),
        Some("name-error")
    );
    b.check("admin-erreurs").await;
    b.fill("#name", "France Services de Provins").await;
    b.fill("#address", "4 rue du Château, 77160 Provins").await;
    b.submit("main form[action='/admin/organisations'] button[type=submit]")
        .await;
    b.wait_h1("Administration").await;
    assert!(b.body().await.contains("L'organisation est créée."));
    let section = "//section[.//h3[text()='France Services de Provins']]";
    b.client
        .find(fantoccini::Locator::XPath(&format!("{section}//summary")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .find(fantoccini::Locator::XPath(&format!(
            "{section}//input[@name='email']"
        )))
        .await
        .unwrap()
        .send_keys("sacha@provins.example")
        .await
        .unwrap();
    b.client
        .find(fantoccini::Locator::XPath(&format!(
            "{section}//input[@name='display_name']"
        )))
        .await
        .unwrap()
        .send_keys("Sacha Petit")
        .await
        .unwrap();
    b.check("admin-organisation").await;
    let old = b
        .client
        .find(fantoccini::Locator::Css("html"))
        .await
        .unwrap();
    b.client
        .find(fantoccini::Locator::XPath(&format!(
            "{section}//button[@type='submit']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_gone(old).await;
    b.wait_h1("Administration").await;
    assert!(b.text("#handover-link").await.contains("/invitation/"));
    assert!(
        b.body().await.contains("Sacha Petit"),
        "the référent is listed"
    );
    b.check("admin-referent").await;
    log_out(&b).await;

    b.stop().await;
    app.stop().await;
}
