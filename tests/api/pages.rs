//! The invitation pages, as a browser without JavaScript uses them.

use crate::common::{PASSWORD, TestApp};

#[tokio::test]
async fn first_administrator_enrols_through_the_pages() {
    let app = TestApp::spawn().await;
    let link = mandat::service::users::first_admin_link(&app.state)
        .await
        .unwrap()
        .unwrap();
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    let res = app.get(path).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">") && html.contains("premier compte administrateur"));
    assert!(html.contains("<label for=\"password\">"));

    let form = |fields: &[(&str, &str)]| {
        let req = app
            .client
            .post(app.url(path))
            .header("origin", app.origin())
            .form(fields);
        async move { req.send().await.unwrap() }
    };
    let res = form(&[
        ("email", "pas-une-adresse"),
        ("display_name", "Admin"),
        ("password", "court"),
    ])
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("aria-describedby=\"email-error\"")
            && html.contains("Adresse e-mail invalide.")
    );
    assert_eq!(app.count("aidant").await, 0, "nothing written");

    let res = form(&[
        ("email", "admin@example.fr"),
        ("display_name", "Admin"),
        ("password", PASSWORD),
    ])
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg"), "QR code");
    let secret = html
        .split("<p class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();

    let code_form = |code: String| {
        let req = app
            .client
            .post(app.url(&format!("{path}/code")))
            .header("origin", app.origin())
            .form(&[("secret", secret.as_str()), ("totp", code.as_str())]);
        async move { req.send().await.unwrap() }
    };
    let res = code_form("000000".into()).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("totp-error"));
    let res = code_form(app.code(&secret)).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Compte activé"));
    let admin = crate::common::Account {
        id: uuid::Uuid::nil(),
        email: "admin@example.fr".into(),
        password: PASSWORD.into(),
        totp_secret: secret,
    };
    app.login(&admin).await;

    let res = app.get(path).await;
    assert_eq!(res.status(), 404, "the link served once");
    assert!(res.text().await.unwrap().contains("Lien invalide"));
    let css = app.get("/static/mandat.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let app = TestApp::spawn().await;
    let link = mandat::service::users::first_admin_link(&app.state)
        .await
        .unwrap()
        .unwrap();
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    let res = app
        .client
        .post(app.url(path))
        .header("origin", "https://evil.example")
        .form(&[
            ("email", "a@example.fr"),
            ("display_name", "A"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("aidant").await, 0);
}

#[tokio::test]
async fn an_existing_account_joins_through_the_page_logged_in() {
    let app = TestApp::spawn().await;
    let org_a = app.org("Maison France Services Arras").await;
    let org_b = app.org("B").await;
    let referent = app.member("ref@example.fr", org_a, "referent").await;
    let w = app.member("w@example.fr", org_b, "aidant").await;
    let ref_c = app.login(&referent).await;
    let res = ref_c
        .post(app.url(&format!("/api/v1/organisations/{org_a}/members")))
        .json(&serde_json::json!({"email": "w@example.fr", "display_name": "W", "role": "aidant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let url: String = res.json::<serde_json::Value>().await.unwrap()["invitation_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.trim_start_matches("http://127.0.0.1:8080").to_owned();

    let res = app.get(&path).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Rejoindre une structure") && html.contains("Maison France Services Arras")
    );
    assert!(html.contains("connectez-vous") || html.contains("Connectez-vous"));
    assert!(html.contains(&format!("action=\"{path}/join\"")));
    assert!(
        !html.contains("name=\"password\""),
        "no password is set here"
    );

    // The password form of the page refuses a join invitation.
    let res = app
        .client
        .post(app.url(&path))
        .header("origin", app.origin())
        .form(&[("password", "le mot de passe du voleur")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let join = |c: &reqwest::Client, code: String| {
        let req = c
            .post(app.url(&format!("{path}/join")))
            .header("origin", app.origin())
            .form(&[("totp", code.as_str())]);
        async move { req.send().await.unwrap() }
    };
    // Not logged in: the page says so.
    let res = join(&app.new_client(), app.code(&w.totp_secret)).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("connectez-vous à mandat avec votre propre compte")
    );
    // Logged in as someone else: an unknown link.
    let res = join(&ref_c, app.code(&referent.totp_secret)).await;
    assert_eq!(res.status(), 404);
    // Logged in as the invited account: a wrong code, then the right one.
    let w_c = app.login(&w).await;
    let res = join(&w_c, "000000".into()).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("totp-error"));
    let res = join(&w_c, app.code(&w.totp_secret)).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Structure rejointe"));
    let me: serde_json::Value = w_c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        me["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["organisation_id"] == org_a.to_string())
    );
    assert_eq!(app.get(&path).await.status(), 404, "the link served once");
}
