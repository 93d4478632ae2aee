//! The OpenID Connect provider's untrusted parameters: the first line is a token request's
//! `Authorization` header (client_secret_basic), the rest an authorization request's query
//! (every parameter: client_id, redirect_uri, scope, claims, prompt, PKCE…). Never a panic;
//! a redirect only ever goes to a registered URI; an accepted request always has `openid`,
//! an S256 challenge and démarches the client may use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::service::oidc::authorize::{self, Params, Rejection};
use mandat::service::oidc::clients::{Client, ClientCredentials};
use mandat::store::OidcClientRow;

const REDIRECTS: [&str; 2] = [
    "https://partenaire.example/retour",
    "https://partenaire.example/autre",
];

fn client() -> Client {
    Client {
        row: OidcClientRow {
            id: uuid::Uuid::nil(),
            name: "Partenaire".into(),
            redirect_uris: REDIRECTS.join("\n"),
            post_logout_redirect_uris: String::new(),
            allowed_demarches: "social,famille".into(),
            auth_method: "client_secret_basic".into(),
            secret_mac: None,
            secret_key_version: None,
            jwks: None,
            sector: "partenaire.example".into(),
            active: true,
            created_at: chrono::DateTime::UNIX_EPOCH,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let (header, query) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = ClientCredentials::parse_basic(&String::from_utf8_lossy(header));
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query).into_owned().collect();
    for (k, v) in &pairs {
        if k == "claims" {
            let _ = authorize::claims_demarches(v);
        }
    }
    let params = Params(pairs);
    for c in [None, Some(client())] {
        match authorize::check(c, &params) {
            Ok(req) => {
                assert!(REDIRECTS.contains(&req.redirect_uri.as_str()));
                assert!(req.scope.split(' ').any(|s| s == "openid"));
                assert_eq!(req.code_challenge.len(), 43);
                if let Some(ds) = &req.demarches {
                    assert!(ds.iter().all(|d| d == "social" || d == "famille"));
                }
            }
            Err(Rejection::Redirect(to)) => {
                let base = to.split('?').next().unwrap_or_default();
                assert!(REDIRECTS.contains(&base), "redirect to {to}");
            }
            Err(Rejection::Page { .. }) => {}
            Err(Rejection::Error(e)) => panic!("a failure of the service: {e:?}"),
        }
    }
});
