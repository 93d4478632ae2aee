//! The vault page in a real browser: add an entry, reveal it with the step-up asked inline
//! and a reason, the secret shown then masked after 60 seconds, the copy button, a new
//! secret, the hand-over by SMS, the deletion.

use std::time::Duration;

use crate::browser::Browser;
use crate::common::{self, TestApp};

const SECRET: &str = "Tournesol-bleu-2026";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_page_in_chromium() {
    let app = TestApp::builder()
        .public_url_is_listen_address()
        .spawn()
        .await;
    let org = app.org("France Services de Melun").await;
    let aidant = app.member("camille@melun.example", org, "aidant").await;
    let desk = app.login(&aidant).await;
    let post = |path: &str, body: serde_json::Value| {
        desk.post(app.url(path))
            .header("origin", app.origin())
            .json(&body)
            .send()
    };
    // A usager with a mandate for `social` (printed, consented at the desk).
    let usager: serde_json::Value = post(
        "/api/v1/usagers",
        serde_json::json!({"given_name": "Paul", "family_name": "Lefèvre", "birthdate": "1950-04-02",
            "phone": "06 11 22 33 78", "identity_check": "document"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let m: serde_json::Value = post(
        "/api/v1/mandates",
        serde_json::json!({"usager_id": usager["id"], "demarches": ["social"],
            "duration": "month", "consent_channel": "print"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let res = post(
        &format!("/api/v1/mandates/{}/consent", m["id"].as_str().unwrap()),
        serde_json::json!({"code": m["consent"]["code"]}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);

    let mut b = Browser::start(&format!("{}-coffre", common::backend())).await;
    crate::log_in(&mut b, &app, &aidant, "coffre-connexion").await;
    b.wait_h1("Espace aidant").await;
    b.submit("nav a[href='/coffre']").await;
    b.wait_h1("Coffre des comptes collectifs").await;
    b.check("coffre-vide").await;

    // Add: a linked entry, typed in the page.
    b.submit("main form[action='/coffre'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    assert!(
        b.body()
            .await
            .contains("Le formulaire contient des erreurs")
    );
    b.check("coffre-erreurs").await;
    b.fill("#label", "Compte Ameli de l'usager").await;
    b.fill("#service", "ameli.fr").await;
    b.fill("#login", "paul.lefevre.ameli").await;
    b.fill("#secret", SECRET).await;
    b.fill("#totp_seed", "JBSWY3DPEHPK3PXP").await;
    b.fill("#usager_id", usager["id"].as_str().unwrap()).await;
    b.client
        .execute(
            "document.getElementById('demarche').value = 'social';",
            vec![],
        )
        .await
        .unwrap();
    b.submit("main form[action='/coffre'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    let page = b.body().await;
    assert!(page.contains("L'entrée a été ajoutée au coffre."), "{page}");
    assert!(page.contains("Compte Ameli de l'usager"));
    assert!(!page.contains(SECRET), "no secret in the list");
    b.check("coffre-liste").await;

    // Reveal: the step-up code asked in the form itself, with the reason.
    b.click("ul.vault li details:nth-of-type(1) summary").await;
    b.client
        .execute(
            "document.querySelector('ul.vault li select[name=reason]').value = 'usager_present';",
            vec![],
        )
        .await
        .unwrap();
    b.fill(
        "ul.vault li form[action$='/afficher'] input[name=step_up_code]",
        &app.code(&aidant.totp_secret),
    )
    .await;
    b.check("coffre-afficher").await;
    b.submit("ul.vault li form[action$='/afficher'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    assert_eq!(b.text("#shown-secret").await, SECRET);
    assert_eq!(b.text("#shown-login").await, "paul.lefevre.ameli");
    assert_eq!(b.text("#shown-totp").await.len(), 6);
    b.click("button[data-vault-copy]").await;
    // The clipboard answers asynchronously: "Copié", or "Copie impossible" without access.
    let copied = b
        .wait_text_change("button[data-vault-copy]", "Copier le secret")
        .await;
    assert!(
        ["Copié", "Copie impossible"].contains(&copied.as_str()),
        "{copied}"
    );
    b.check("coffre-secret-affiche").await;
    // Masked after 60 seconds.
    tokio::time::sleep(Duration::from_secs(62)).await;
    assert_eq!(b.text("#shown-secret").await, "••••••");
    assert!(b.text("#shown").await.contains("Secret masqué"));
    assert!(!b.body().await.contains(SECRET));
    assert!(
        b.client
            .find(fantoccini::Locator::Css("button[data-vault-copy]"))
            .await
            .is_err(),
        "no copy button once masked"
    );
    b.check("coffre-secret-masque").await;

    // A new secret (the step-up is still fresh: no code asked).
    b.goto(&app.url("/coffre")).await;
    b.wait_h1("Coffre des comptes collectifs").await;
    b.click("ul.vault li details:nth-of-type(2) summary").await;
    b.fill(
        "ul.vault li form[action$='/secret'] input[name=secret]",
        "Nouveau-2027",
    )
    .await;
    b.submit("ul.vault li form[action$='/secret'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    let page = b.body().await;
    assert!(page.contains("Le nouveau secret est enregistré"), "{page}");
    assert!(page.contains("version 2"));
    b.check("coffre-nouveau-secret").await;

    // Hand-over by SMS to the usager.
    b.click("ul.vault li details:nth-of-type(3) summary").await;
    b.click("ul.vault li input[name=channel][value=sms]").await;
    b.check("coffre-remise").await;
    b.submit("ul.vault li form[action$='/remise'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    assert!(
        b.body()
            .await
            .contains("Le code d'accès part par SMS au téléphone de l'usager.")
    );
    b.check("coffre-remise-sms").await;

    // Delete: confirmation asked, then the entry is gone.
    b.click("ul.vault li details:nth-of-type(4) summary").await;
    b.submit("ul.vault li form[action$='/supprimer'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    assert!(
        b.body()
            .await
            .contains("Cochez la case pour confirmer la suppression.")
    );
    b.check("coffre-suppression-confirmation").await;
    b.click("ul.vault li input[name=confirmation]").await;
    b.submit("ul.vault li form[action$='/supprimer'] button[type=submit]")
        .await;
    b.wait_h1("Coffre des comptes collectifs").await;
    let page = b.body().await;
    assert!(page.contains("L'entrée a été supprimée"), "{page}");
    assert!(page.contains("Aucun compte dans le coffre"));
    b.check("coffre-supprime").await;
    b.stop().await;

    let actions: Vec<String> = app
        .audit_events()
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .filter(|a| a.starts_with("vault."))
        .collect();
    assert_eq!(
        actions,
        [
            "vault.created",
            "vault.revealed",
            "vault.rotated",
            "vault.handed_over",
            "vault.deleted"
        ]
    );
}
