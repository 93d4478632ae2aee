//! The OpenID Connect provider's untrusted parameters: the first line is a token request's
//! `Authorization` header (client_secret_basic), the rest an authorization request's query
//! (every parameter: client_id, redirect_uri, scope, claims, prompt, PKCE…). Never a panic;
//! a redirect only ever goes to a registered URI; an accepted request always has `openid`,
//! an S256 challenge and démarches the client may use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::service::oidc::authorize::{self, Params};
use mandat::service::oidc::clients::ClientCredentials;

#[path = "../../tests/api/oidc_request_rules.rs"]
mod rules;

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
    for c in [None, Some(rules::partner())] {
        rules::assert_rules_kept(&authorize::check(c, &params));
    }
});
