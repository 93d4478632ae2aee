//! The rules an authorization request's outcome always keeps, whatever its parameters:
//! shared by the property test of `properties.rs` and the fuzz target
//! `fuzz/fuzz_targets/oidc_request.rs` (which includes this file by its path).

use mandat::service::oidc::authorize::{Rejection, Request};
use mandat::service::oidc::clients::Client;
use mandat::store::OidcClientRow;

/// The redirect URIs registered for [`partner`].
pub const REDIRECTS: [&str; 2] = [
    "https://partenaire.example/retour",
    "https://partenaire.example/autre",
];

/// A registered client allowed the `social` and `famille` démarches.
pub fn partner() -> Client {
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

/// Panics unless: an accepted request has a registered redirect URI, `openid`, an S256
/// challenge and only démarches the client may use; a redirect goes to a registered URI; the
/// service itself never fails.
pub fn assert_rules_kept(outcome: &Result<Request, Rejection>) {
    match outcome {
        Ok(req) => {
            assert!(REDIRECTS.contains(&req.redirect_uri.as_str()));
            assert!(req.scope.split(' ').any(|s| s == "openid"));
            assert_eq!(req.code_challenge.len(), 43);
            if let Some(ds) = &req.demarches {
                assert!(ds.iter().all(|d| d == "social" || d == "famille"), "{ds:?}");
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
