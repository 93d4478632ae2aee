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
