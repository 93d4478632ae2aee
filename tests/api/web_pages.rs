//! The desk's pages over plain HTTP: CSRF tokens and the same-origin guard on every page
//! `POST`, French errors next to fields with nothing written, roles, login and step-up.

use crate::common::{Account, TestApp};
use crate::mandates_support::{Desk, desk};

/// The CSRF token of the forms of a page.
async fn token(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    let html = res.text().await.unwrap();
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on {path}"))
        .to_owned()
}

async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let res = client
        .post(app.url(path))
        .header("origin", app.origin())
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// Tables whose row counts must not move when a form is refused.
const TABLES: [&str; 6] = [
    "usager",
    "mandate",
    "organisation",
    "invitation",
    "membership",
    "session",
];

async fn counts(app: &TestApp) -> Vec<i64> {
    let mut out = vec![];
    for t in TABLES {
        out.push(app.count(t).await);
    }
    out
}

struct World {
    app: TestApp,
    desk: Desk,
    referent: reqwest::Client,
    dpo: reqwest::Client,
    admin: reqwest::Client,
    mandate: String,
    member: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let desk = desk(&app, None).await;
    let usager = desk.new_usager(&app, None).await;
    let m = desk.active(&app, usager, &["papiers", "famille"]).await;
    let referent = app.member("ref@exemple.fr", desk.org, "referent").await;
    let referent = app.login(&referent).await;
    let dpo = app.platform("dpo@exemple.fr", "dpo").await;
    let dpo = app.login(&dpo).await;
    let admin = app.platform("admin@exemple.fr", "admin").await;
    let admin = app.login(&admin).await;
    World {
        mandate: m["id"].as_str().unwrap().to_owned(),
        member: desk.account.id.to_string(),
        app,
        desk,
        referent,
        dpo,
        admin,
    }
}

/// Every page form, with the account that may post it and fields that would change
/// something.
/// A page form: who posts it, where, and its fields.
type PageFormCase<'a> = (&'a reqwest::Client, String, Vec<(&'static str, String)>);

fn forms(w: &World) -> Vec<PageFormCase<'_>> {
    let m = &w.mandate;
    let member = &w.member;
    let d = &w.desk.client;
    vec![
        (
            d,
            "/usagers/nouveau".into(),
            vec![
                ("given_name", "Jeanne".into()),
                ("family_name", "Martin".into()),
                ("birthdate", "1950-01-02".into()),
                ("identity_check", "document".into()),
            ],
        ),
        (
            d,
            "/mandats/nouveau".into(),
            vec![
                ("usager", String::new()),
                ("demarches", "papiers".into()),
                ("duree", "month".into()),
                ("canal", "print".into()),
            ],
        ),
        (
            d,
            format!("/mandats/{m}/consentement"),
            vec![("code", "ABCD-EFGH".into())],
        ),
        (
            d,
            format!("/mandats/{m}/revoquer"),
            vec![
                ("portee", "all".into()),
                ("motif", "usager_request".into()),
                ("confirmation", "oui".into()),
            ],
        ),
        (
            d,
            format!("/mandats/{m}/renouveler"),
            vec![("duree", "month".into()), ("canal", "print".into())],
        ),
        (d, format!("/mandats/{m}/renvoyer"), vec![]),
        (
            d,
            "/espace-aidant/structure".into(),
            vec![("organisation_id", w.desk.org.to_string())],
        ),
        (d, "/deconnexion".into(), vec![]),
        (
            &w.referent,
            "/structure/invitations".into(),
            vec![
                ("email", "new@exemple.fr".into()),
                ("display_name", "Nouvel Aidant".into()),
                ("role", "aidant".into()),
            ],
        ),
        (
            &w.referent,
            "/structure/demarches".into(),
            vec![("demarches", "papiers".into())],
        ),
        (
            &w.referent,
            format!("/structure/membres/{member}/desactiver"),
            vec![],
        ),
        (
            &w.referent,
            format!("/structure/membres/{member}/reactiver"),
            vec![],
        ),
        (
            &w.referent,
            format!("/structure/membres/{member}/second-facteur"),
            vec![],
        ),
        (
            &w.referent,
            format!("/structure/membres/{member}/carte"),
            vec![("serial", "X1".into()), ("totp", "123456".into())],
        ),
        (&w.dpo, "/dpo/verification".into(), vec![]),
        (&w.dpo, "/dpo/export".into(), vec![("format", "csv".into())]),
        (
            &w.admin,
            "/admin/organisations".into(),
            vec![
                ("name", "Nouvelle structure".into()),
                ("address", "2 rue du Port, 29200 Brest".into()),
            ],
        ),
        (
            &w.admin,
            format!("/admin/organisations/{}/referents", w.desk.org),
            vec![
                ("email", "r2@exemple.fr".into()),
                ("display_name", "Nouveau Référent".into()),
            ],
        ),
    ]
}

#[tokio::test]
async fn every_page_post_refuses_a_missing_or_wrong_token_and_cross_site_posts() {
    let w = world().await;
    let app = &w.app;
    let good = token(&w.desk.client, app, "/espace-aidant").await;
    let audit_before = app.audit_entries().await.len();
    let before = counts(app).await;
    for (client, path, fields) in forms(&w) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, html) = post(client, app, &path, &fields).await;
        assert_eq!(s, 403, "{path} without a token");
        assert!(html.contains("Formulaire refusé"), "{path}: {html}");
        let mut wrong = fields.clone();
        wrong.push(("csrf", "0000"));
        assert_eq!(
            post(client, app, &path, &wrong).await.0,
            403,
            "{path} wrong token"
        );
        // Another session's token is wrong too.
        let mut other = fields.clone();
        other.push(("csrf", good.as_str()));
        if !std::ptr::eq(client, &w.desk.client) {
            assert_eq!(
                post(client, app, &path, &other).await.0,
                403,
                "{path} foreign token"
            );
        }
        // A cross-site post is refused even with the right token.
        let home = if std::ptr::eq(client, &w.dpo) {
            "/dpo"
        } else if std::ptr::eq(client, &w.admin) {
            "/admin"
        } else {
            "/espace-aidant"
        };
        let mine = token(client, app, home).await;
        let mut ok = fields.clone();
        ok.push(("csrf", mine.as_str()));
        for (h, v) in [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ] {
            let res = client
                .post(app.url(&path))
                .header(h, v)
                .form(&ok)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{path} with {h}: {v}");
        }
    }
    assert_eq!(counts(app).await, before, "nothing written");
    assert_eq!(
        app.audit_entries().await.len(),
        audit_before,
        "nothing audited"
    );
    // The login form's token is bound to its cookie.
    let fresh = app.new_client();
    let (s, _) = post(
        &fresh,
        app,
        "/connexion",
        &[
            ("email", "a@b.fr"),
            ("password", "x"),
            ("totp", "1"),
            ("csrf", "abc"),
        ],
    )
    .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn the_home_page_is_french_and_tokens_are_per_session() {
    let w = world().await;
    let html = w
        .app
        .new_client()
        .get(w.app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Se connecter"));
    assert!(html.matches("<h1").count() == 1);
    // A token is per session: two sessions of the same account differ.
    let again = w.app.login(&w.desk.account).await;
    assert_ne!(
        token(&w.desk.client, &w.app, "/espace-aidant").await,
        token(&again, &w.app, "/espace-aidant").await
    );
}

#[tokio::test]
async fn bad_input_gets_french_errors_next_to_fields_and_writes_nothing() {
    let w = world().await;
    let app = &w.app;
    let d = &w.desk.client;
    let t = token(d, app, "/usagers/nouveau").await;
    let before = counts(app).await;
    let (s, html) = post(
        d,
        app,
        "/usagers/nouveau",
        &[
            ("csrf", &t),
            ("given_name", "Jeanne"),
            ("family_name", ""),
            ("birthdate", "1950-13-40"),
            ("phone", "12"),
            ("identity_check", "document"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("aria-describedby=\"family_name-error\""),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"birthdate-error\""));
    assert!(
        html.contains(
            "Le numéro de téléphone n&#39;est pas valide : un numéro français a dix chiffres"
        ) || html.contains(
            "Le numéro de téléphone n&#x27;est pas valide : un numéro français a dix chiffres"
        ),
        "{html}"
    );
    assert!(html.contains("value=\"Jeanne\""), "what was typed is kept");

    let usager = crate::mandates_support::usager_body(None);
    let id = w.desk.new_usager(app, None).await;
    let _ = usager;
    let before = {
        let mut b = before;
        b[0] += 1;
        b
    };
    let (s, html) = post(
        d,
        app,
        "/mandats/nouveau",
        &[
            ("csrf", &t),
            ("usager", &id.to_string()),
            ("duree", "month"),
            ("canal", "print"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("Choisissez au moins une démarche."), "{html}");
    assert!(html.contains("aria-describedby=\"demarches-error\""));
    let (s, html) = post(
        d,
        app,
        &format!("/mandats/{}/revoquer", w.mandate),
        &[
            ("csrf", &t),
            ("portee", "some"),
            ("motif", "usager_request"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains("Cochez la ou les démarches à révoquer.")
            && html.contains("Cochez la case pour confirmer")
    );
    let (s, html) = post(
        d,
        app,
        &format!("/mandats/{}/consentement", w.mandate),
        &[("csrf", &t), ("code", "1234")],
    )
    .await;
    assert!(s == 303 || s == 409 || s == 422, "{s}: {html}");

    let ta = token(&w.admin, app, "/admin").await;
    let (s, html) = post(
        &w.admin,
        app,
        "/admin/organisations",
        &[("csrf", &ta), ("name", ""), ("address", "")],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("aria-describedby=\"name-error\""), "{html}");
    let tr = token(&w.referent, app, "/structure").await;
    let (s, html) = post(
        &w.referent,
        app,
        "/structure/invitations",
        &[
            ("csrf", &tr),
            ("email", "pas-une-adresse"),
            ("display_name", "X Y"),
            ("role", "aidant"),
        ],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("value=\"pas-une-adresse\""), "{html}");
    assert_eq!(counts(app).await, before, "nothing written");
}

#[tokio::test]
async fn an_aidant_cannot_open_the_referent_dpo_or_admin_pages() {
    let w = world().await;
    let app = &w.app;
    let d = &w.desk.client;
    for path in ["/structure", "/dpo", "/admin"] {
        let res = d.get(app.url(path)).send().await.unwrap();
        assert!(
            res.status() == 403 || res.status() == 404,
            "{path}: {}",
            res.status()
        );
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let t = token(d, app, "/espace-aidant").await;
    let before = counts(app).await;
    for (path, fields) in [
        (
            "/admin/organisations",
            vec![("name", "Pirate"), ("address", "1 rue X, 75001 Paris")],
        ),
        (
            "/structure/invitations",
            vec![
                ("email", "x@exemple.fr"),
                ("display_name", "X Y"),
                ("role", "referent"),
            ],
        ),
        ("/dpo/verification", vec![]),
    ] {
        let mut f = fields.clone();
        f.push(("csrf", &t));
        let (s, _) = post(d, app, path, &f).await;
        assert!(s == 403 || s == 404, "{path}: {s}");
    }
    assert_eq!(counts(app).await, before);
    // The menu shows only what the account may open.
    let html = d
        .get(app.url("/espace-aidant"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("href=\"/structure\"") && !html.contains("href=\"/admin\""));
}

#[tokio::test]
async fn logged_out_pages_redirect_to_the_login_and_back() {
    let w = world().await;
    let app = &w.app;
    let c = app.new_client();
    let res = c
        .get(app.url("/espace-aidant?q=Dupont"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/connexion?suite=%2Fespace-aidant%3Fq%3DDupont"
    );
    // The login form: one generic error, the email kept, then the page asked for.
    let t = token(&c, app, "/connexion?suite=%2Fespace-aidant").await;
    let a: &Account = &w.desk.account;
    let (s, html) = post(
        &c,
        app,
        "/connexion",
        &[
            ("csrf", &t),
            ("email", &a.email),
            ("password", "faux mot de passe"),
            ("totp", "000000"),
            ("suite", "/espace-aidant"),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert!(html.contains("Adresse e-mail, mot de passe ou code incorrect."));
    assert!(
        html.contains(&format!("value=\"{}\"", a.email)) && !html.contains("faux mot de passe")
    );
    let t = token(&c, app, "/connexion").await;
    let code = app.code(&a.totp_secret);
    let res = c
        .post(app.url("/connexion"))
        .form(&[
            ("csrf", t.as_str()),
            ("email", &a.email),
            ("password", &a.password),
            ("totp", &code),
            ("suite", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/espace-aidant",
        "no open redirect"
    );
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("mandat_session=")
    );
    let res = c.get(app.url("/espace-aidant")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Logging out ends the session on the server.
    let t = token(&c, app, "/espace-aidant").await;
    let (s, _) = post(&c, app, "/deconnexion", &[("csrf", &t)]).await;
    assert_eq!(s, 303);
    assert_eq!(
        c.get(app.url("/espace-aidant"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

#[tokio::test]
async fn a_locked_account_is_told_how_long_to_wait() {
    let app = TestApp::spawn().await;
    let org = app.org("Structure").await;
    let a = app.member("lock@exemple.fr", org, "aidant").await;
    let c = app.new_client();
    let mut last = (0, String::new());
    for _ in 0..6 {
        let t = token(&c, &app, "/connexion").await;
        last = post(
            &c,
            &app,
            "/connexion",
            &[
                ("csrf", &t),
                ("email", &a.email),
                ("password", "mauvais mot de passe"),
                ("totp", "000000"),
            ],
        )
        .await;
    }
    assert_eq!(last.0, 429);
    assert!(last.1.contains("réessayez dans 15 minutes"), "{}", last.1);
}

#[tokio::test]
async fn a_stale_factor_is_asked_again_inline_and_the_form_goes_through() {
    let w = world().await;
    let app = &w.app;
    let d = &w.desk.client;
    let id = w.desk.new_usager(app, None).await;
    // Past the 15 minutes of a fresh factor (the session stays alive: idle 30 min).
    app.clock.advance(chrono::Duration::minutes(20));
    let t = token(d, app, "/espace-aidant").await;
    let fields = [
        ("csrf", t.as_str()),
        ("usager", &id.to_string()),
        ("demarches", "papiers"),
        ("duree", "month"),
        ("canal", "print"),
    ];
    let before = app.count("mandate").await;
    let (s, html) = post(d, app, "/mandats/nouveau", &fields).await;
    assert_eq!(s, 403);
    assert!(
        html.contains("Confirmer avec un code") && html.contains("name=\"step_up_code\""),
        "{html}"
    );
    assert!(
        html.contains("name=\"demarches\" value=\"papiers\""),
        "the form is carried"
    );
    assert_eq!(app.count("mandate").await, before);
    let code = app.code(&w.desk.account.totp_secret);
    let mut with_code = fields.to_vec();
    with_code.push(("step_up_code", &code));
    let res = d
        .post(app.url("/mandats/nouveau"))
        .form(&with_code)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.ends_with("/consentement"), "{to}");
    assert_eq!(app.count("mandate").await, before + 1);
    let html = d
        .get(app.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"printed-code\""), "{html}");
}

/// The `Location` of a `303`.
fn location(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303);
    res.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_sms_consent_through_the_pages_with_status_and_resend_then_renewal() {
    use crate::mandates_support::{PHONE, last_sms_code, outbox};
    let w = world().await;
    let app = &w.app;
    let d = &w.desk.client;
    let id = w.desk.new_usager(app, Some(PHONE)).await;
    let t = token(d, app, "/espace-aidant").await;
    // Step 2 offers the SMS to the masked number.
    let recap = d
        .get(app.url(&format!(
            "/mandats/nouveau?usager={id}&etape=2&demarches=social&demarches=logement&duree=semester"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(recap.contains("Par SMS au +33 •• •• •• •• 78"), "{recap}");
    assert!(recap.contains("6 mois (182 jours)"));
    let res = d
        .post(app.url("/mandats/nouveau"))
        .form(&[
            ("csrf", t.as_str()),
            ("usager", &id.to_string()),
            ("demarches", "social"),
            ("demarches", "logement"),
            ("duree", "semester"),
            ("canal", "sms"),
        ])
        .send()
        .await
        .unwrap();
    let code_page = location(&res);
    let mandate = code_page
        .trim_start_matches("/mandats/")
        .trim_end_matches("/consentement")
        .to_owned();
    let html = d
        .get(app.url(&code_page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("data-status-url=\"/mandats/{mandate}/statut\"")),
        "{html}"
    );
    assert!(!html.contains("printed-code"), "no printed code for an SMS");
    let status: serde_json::Value = d
        .get(app.url(&format!("/mandats/{mandate}/statut")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "pending_consent");
    // The desk lists it as pending.
    let desk = d
        .get(app.url("/espace-aidant"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        desk.contains(&format!("href=\"/mandats/{mandate}\"")),
        "{desk}"
    );
    // Resend: a new code, the first one is void.
    let (first, _) = last_sms_code(app).await;
    let codes =
        |lines: Vec<serde_json::Value>| lines.iter().filter(|l| l["kind"] == "code").count();
    let before = codes(outbox(app).await);
    let res = d
        .post(app.url(&format!("/mandats/{mandate}/renvoyer")))
        .form(&[("csrf", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        format!("/mandats/{mandate}/consentement?fait=renvoi")
    );
    assert_eq!(codes(outbox(app).await), before + 1);
    let (second, _) = last_sms_code(app).await;
    let (s, html) = post(d, app, &code_page, &[("csrf", &t), ("code", &first)]).await;
    if first != second {
        assert_eq!(s, 422, "{html}");
        assert!(html.contains("Code incorrect."));
    }
    let res = d
        .post(app.url(&code_page))
        .form(&[("csrf", t.as_str()), ("code", second.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/mandats/{mandate}?fait=active"));
    let page = d
        .get(app.url(&format!("/mandats/{mandate}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Consentement donné : mandat actif"), "{page}");
    // Renewal opens a new mandate awaiting its consent.
    let before = app.count("mandate").await;
    let res = d
        .post(app.url(&format!("/mandats/{mandate}/renouveler")))
        .form(&[("csrf", t.as_str()), ("duree", "long"), ("canal", "print")])
        .send()
        .await
        .unwrap();
    let next = location(&res);
    assert!(
        next.ends_with("/consentement") && !next.contains(&mandate),
        "{next}"
    );
    assert_eq!(app.count("mandate").await, before + 1);
}

#[tokio::test]
async fn an_aidant_of_two_organisations_switches_from_the_desk() {
    let w = world().await;
    let app = &w.app;
    let other = app.org("CCAS de Dammarie").await;
    let a = app.member("deux@exemple.fr", w.desk.org, "aidant").await;
    // The same account joins the second organisation.
    let res = w
        .admin
        .post(app.url(&format!("/api/v1/organisations/{other}/members")))
        .json(&serde_json::json!({"email": a.email, "display_name": "Camille Martin", "role": "aidant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let invited: serde_json::Value = res.json().await.unwrap();
    let token_of_link = invited["invitation_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // An existing account joins by itself, logged in (accounts belong to their person).
    let c = app.login(&a).await;
    let res = c
        .post(app.url(&format!("/api/v1/invitations/{token_of_link}/join")))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let html = c
        .get(app.url("/espace-aidant"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"organisation_id\""), "the switcher");
    let t = token(&c, app, "/espace-aidant").await;
    let res = c
        .post(app.url("/espace-aidant/structure"))
        .form(&[
            ("csrf", t.as_str()),
            ("organisation_id", &other.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/espace-aidant?fait=structure");
    let html = c
        .get(app.url("/espace-aidant?fait=structure"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Vous agissez maintenant pour CCAS de Dammarie"),
        "{html}"
    );
}

#[tokio::test]
async fn the_dpo_searches_checks_and_exports_with_a_fresh_code() {
    let app = TestApp::spawn().await;
    let dpo = app.platform("dpo2@exemple.fr", "dpo").await;
    let c = app.login(&dpo).await;
    let html = c
        .get(app.url("/dpo?action=aidant.login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<td>aidant.login</td>"), "{html}");
    let res = c
        .get(app.url("/dpo?since=pas-une-date"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("aria-describedby=\"f-since-error\"")
    );
    let t = token(&c, &app, "/dpo").await;
    let res = c
        .post(app.url("/dpo/verification"))
        .form(&[("csrf", t.as_str())])
        .send()
        .await
        .unwrap();
    let to = location(&res);
    assert!(to.starts_with("/dpo?verification=ok&entrees="), "{to}");
    let html = c
        .get(app.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Journal intègre"));
    // The export asks for a code first, then streams the CSV.
    let (s, html) = post(
        &c,
        &app,
        "/dpo/export",
        &[("csrf", &t), ("format", "csv"), ("action", "aidant.login")],
    )
    .await;
    assert_eq!(s, 403);
    assert!(
        html.contains("name=\"step_up_code\"") && html.contains("name=\"format\" value=\"csv\"")
    );
    let code = app.code(&dpo.totp_secret);
    let res = c
        .post(app.url("/dpo/export"))
        .form(&[
            ("csrf", t.as_str()),
            ("format", "csv"),
            ("action", "aidant.login"),
            ("step_up_code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("journal-audit.csv")
    );
    let csv = res.text().await.unwrap();
    assert!(
        csv.lines().count() >= 2 && csv.contains("aidant.login"),
        "{csv}"
    );
}

#[tokio::test]
async fn anyone_checks_an_attestation_without_personal_data() {
    use crate::mandates_support::FAMILY;
    let w = world().await;
    let app = &w.app;
    let (_, m) = w
        .desk
        .get(app, &format!("/api/v1/mandates/{}", w.mandate))
        .await;
    let url = m["verification_url"].as_str().unwrap().to_owned();
    let reference = url.rsplit('/').next().unwrap().to_owned();
    let anyone = app.new_client();
    let res = anyone
        .get(app.url(&format!(
            "/verifier?reference={}",
            url.replace(':', "%3A").replace('/', "%2F")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/verifier/{reference}"));
    let res = anyone
        .get(app.url(&format!("/verifier/{reference}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<strong>Valide</strong>") && html.contains("Famille"),
        "{html}"
    );
    assert!(!html.contains(FAMILY), "no personal data");
    let last = if reference.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &reference[..reference.len() - 1]);
    let res = anyone
        .get(app.url(&format!("/verifier/{forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Aucune attestation ne correspond")
    );
}
