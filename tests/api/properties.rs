//! Property tests of the parsers of untrusted input (the same ones the fuzz targets of
//! `fuzz/` drive): they never panic on arbitrary input, and they round-trip where a round
//! trip exists.

use base64::Engine as _;
use mandat::audit::checkpoint::{Checkpoint, SignedNote, SigningKey, parse_external};
use mandat::crypto::{Keyring, MasterKey};
use mandat::domain::consent::ConsentCode;
use mandat::domain::mandate::ConsentChannel;
use mandat::domain::usager::Phone;
use mandat::error::AppError;
use mandat::http::extract::parse_json;
use mandat::http::routes::{mandates, members, session, sms};
use mandat::service::oidc::authorize::{self, Params, Rejection};
use mandat::service::oidc::clients::ClientCredentials;
use mandat::sms::inbound::{Reply, SignatureError, parse_reply, verify};
use proptest::prelude::*;
use secrecy::SecretString;

use crate::oidc_request_rules::{assert_rules_kept, partner};

fn keyring(byte: u8) -> Keyring {
    let b64 = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    Keyring::new(MasterKey::from_base64(&SecretString::from(b64)).unwrap())
}

fn sign_webhook(secret: &[u8], t: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let msg = [t.to_string().as_bytes(), b".", body].concat();
    format!(
        "t={t},v1={}",
        hex::encode(ring::hmac::sign(&key, &msg).as_ref())
    )
}

/// A body error is a 400 or a 422 problem that does not echo what was sent.
fn check_body_error(e: AppError, sent: &str) -> Result<(), TestCaseError> {
    let status = e.status().as_u16();
    prop_assert!(status == 400 || status == 422, "status {status}");
    if let AppError::InvalidRequest { detail, errors } = &e {
        for fe in errors {
            if sent.len() >= 8 {
                prop_assert!(!fe.message.contains(sent));
            }
        }
        prop_assert!(sent.len() < 8 || !detail.contains(sent));
    }
    Ok(())
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        "[a-z0-9][a-z0-9./-]{0,40}",
        any::<u64>(),
        any::<[u8; 32]>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{1,15}Z",
    )
        .prop_map(|(origin, tree_size, root, timestamp)| Checkpoint {
            origin,
            tree_size,
            root,
            timestamp,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn phone_numbers_never_panic_and_normalise_to_a_fixed_point(raw in "\\PC{0,40}") {
        if let Ok(p) = Phone::parse(&raw) {
            let again = Phone::parse(p.as_str()).expect("an E.164 number parses again");
            prop_assert_eq!(again.as_str(), p.as_str());
            prop_assert!(p.as_str().starts_with('+'));
            let _ = p.masked();
        }
    }

    #[test]
    fn separators_never_change_a_number(
        digits in "[1-9][0-9]{8}",
        sep in prop::sample::select(vec![" ", ".", "-"]),
    ) {
        let pairs = |s: &str| -> Vec<String> {
            s.as_bytes().chunks(2).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect()
        };
        let national = format!("0{digits}");
        let spaced = pairs(&national).join(sep);
        prop_assert_eq!(
            Phone::parse(&national).map(|p| p.as_str().to_owned()),
            Phone::parse(&spaced).map(|p| p.as_str().to_owned())
        );
        let international = format!("+33{digits}");
        let spaced = format!("+33 {}", pairs(&digits).join(sep));
        prop_assert_eq!(
            Phone::parse(&international).map(|p| p.as_str().to_owned()),
            Phone::parse(&spaced).map(|p| p.as_str().to_owned())
        );
    }

    #[test]
    fn a_french_mobile_is_the_same_number_national_or_international(digits in "(6[0-2]|7[3-9])[0-9]{7}") {
        let national = Phone::parse(&format!("0{digits}")).expect("06 and 07 numbers are French mobiles");
        let international = Phone::parse(&format!("+33{digits}")).unwrap();
        let zeros = Phone::parse(&format!("0033{digits}")).unwrap();
        prop_assert_eq!(national.as_str(), format!("+33{digits}"));
        prop_assert_eq!(international.as_str(), national.as_str());
        prop_assert_eq!(zeros.as_str(), national.as_str());
    }

    #[test]
    // A national number is in the French plan: metropolitan France or an overseas department
    // (0692… is +262 692…), never a country with a plan of its own, and the same nine digits.
    fn a_national_number_stays_in_the_french_plan(digits in "[1-9][0-9]{8}") {
        if let Ok(p) = Phone::parse(&format!("0{digits}")) {
            let cc = p.as_str().strip_suffix(digits.as_str()).expect("the same nine digits");
            prop_assert!(["+33", "+262", "+590", "+594", "+596"].contains(&cc), "{}", p.as_str());
        }
    }

    #[test]
    fn a_national_number_is_ten_digits_starting_with_zero(digits in "[0-9]{4,12}") {
        // `00` is the international prefix (`0033…` is `+33…`), not a national number.
        let national = digits.len() == 10 && digits.starts_with('0');
        if !(national || digits.starts_with("00")) {
            prop_assert!(Phone::parse(&digits).is_err(), "{}", digits);
        }
    }

    #[test]
    fn consent_codes_never_panic_and_normalise_to_a_fixed_point(raw in "\\PC{0,80}") {
        for channel in [ConsentChannel::Print, ConsentChannel::Sms] {
            if let Some(c) = ConsentCode::normalise(channel, &raw) {
                let again = ConsentCode::normalise(channel, c.expose()).expect("canonical parses");
                prop_assert_eq!(again.expose(), c.expose());
                let shown = ConsentCode::normalise(channel, &c.display()).expect("printed parses");
                prop_assert_eq!(shown.expose(), c.expose());
            }
        }
    }

    #[test]
    fn generated_codes_read_back_as_themselves(sms in any::<bool>()) {
        let channel = if sms { ConsentChannel::Sms } else { ConsentChannel::Print };
        let c = ConsentCode::generate(channel).unwrap();
        let back = ConsentCode::normalise(channel, &c.display().to_lowercase()).unwrap();
        prop_assert_eq!(back.expose(), c.expose());
    }

    #[test]
    fn sms_replies_never_panic(text in "\\PC{0,200}") {
        match parse_reply(&text) {
            Reply::Accept { code } => {
                prop_assert!(!code.is_empty());
                prop_assert!(!code.contains(char::is_whitespace));
            }
            Reply::Refuse | Reply::Other => {}
        }
    }

    #[test]
    fn sms_signatures_round_trip_and_any_other_body_fails(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        body in prop::collection::vec(any::<u8>(), 0..300),
        other in prop::collection::vec(any::<u8>(), 0..300),
        t in 0i64..10_000_000_000,
        drift in -300i64..=300,
    ) {
        let header = sign_webhook(&secret, t, &body);
        prop_assert!(verify(&secret, &header, &body, t + drift).is_ok());
        if other != body {
            prop_assert_eq!(verify(&secret, &header, &other, t), Err(SignatureError::Bad));
        }
        prop_assert_eq!(verify(&secret, &header, &body, t + 301), Err(SignatureError::Stale));
    }

    #[test]
    fn sms_signature_headers_never_panic(header in "\\PC{0,120}", body in any::<Vec<u8>>(), now in any::<i64>()) {
        let _ = verify(b"secret", &header, &body, now);
    }

    #[test]
    fn public_json_bodies_are_a_value_or_a_400_or_422(raw in "\\PC{0,200}") {
        if let Err(e) = parse_json::<mandates::PublicConsentBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<sms::InboundBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<session::LoginBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<members::AcceptBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<members::ConfirmBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
    }

    #[test]
    fn json_shaped_bodies_never_panic(
        keys in prop::collection::vec(prop::sample::select(vec!["challenge_id", "code", "decision", "from", "body", "email", "password", "totp", "x"]), 0..5),
        values in prop::collection::vec(prop_oneof![
            Just("null".to_owned()), Just("1e999".to_owned()), Just("-0".to_owned()), Just("[]".to_owned()), Just("{}".to_owned()),
            "\"\\PC{0,20}\"".prop_map(|s| serde_json::to_string(&s).unwrap()),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("\"018f3b5e-9a1c-7cde-8f00-123456789abc\"".to_owned()),
        ], 0..5),
    ) {
        let fields: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let raw = format!("{{{}}}", fields.join(","));
        if let Err(e) = parse_json::<mandates::PublicConsentBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<sms::InboundBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
        if let Err(e) = parse_json::<session::LoginBody>(raw.as_bytes()) { check_body_error(e, &raw)?; }
    }

    #[test]
    fn signed_notes_round_trip(cp in checkpoint(), version in 1u32..4) {
        let key = SigningKey::derive(&keyring(3), version).unwrap();
        let note = key.sign(&cp);
        let parsed = SignedNote::parse(&note).expect("a signed note parses");
        prop_assert_eq!(&parsed.checkpoint, &cp);
        prop_assert_eq!(&parsed.text, &note);
        prop_assert!(parsed.verify(std::slice::from_ref(&key.public)).is_ok());
        let again = SignedNote::parse(&parsed.text).unwrap();
        prop_assert_eq!(again.checkpoint, cp.clone());
        let other = SigningKey::derive(&keyring(4), version).unwrap();
        prop_assert!(parsed.verify(std::slice::from_ref(&other.public)).is_err());
        let external = parse_external(&note, "note").expect("a note file");
        prop_assert_eq!(&external[0].checkpoint, &cp);
    }

    #[test]
    fn altered_notes_never_verify(cp in checkpoint(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let key = SigningKey::derive(&keyring(5), 1).unwrap();
        let note = key.sign(&cp);
        let mut bytes = note.clone().into_bytes();
        let i = at.index(bytes.len());
        if bytes[i] == byte { return Ok(()); }
        bytes[i] = byte;
        if let Ok(text) = String::from_utf8(bytes)
            && let Ok(parsed) = SignedNote::parse(&text)
        {
            let body_same = parsed.checkpoint == cp && text.starts_with(&cp.body());
            if !body_same {
                prop_assert!(parsed.verify(std::slice::from_ref(&key.public)).is_err());
            }
        }
    }

    #[test]
    fn external_checkpoint_files_never_panic(text in "\\PC{0,300}") {
        let _ = SignedNote::parse(&text);
        let _ = parse_external(&text, "file");
        let _ = parse_external(&format!("{{\"tree_size\":1,\"root_hash\":\"00\",\"timestamp\":\"t\",\"note\":{}}}", serde_json::to_string(&text).unwrap()), "file");
    }

    #[test]
    fn authorization_requests_only_ever_redirect_to_a_registered_uri(
        keep in prop::collection::vec(prop::bool::weighted(0.85), VALID_REQUEST.len()),
        extra in prop::collection::vec((oidc_name(), oidc_value()), 0..5),
    ) {
        // A valid request with some parameters dropped and others added or repeated.
        let mut pairs: Vec<(String, String)> = VALID_REQUEST
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|((n, v), _)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        pairs.extend(extra);
        let params = Params(pairs);
        for c in [None, Some(partner())] {
            assert_rules_kept(&authorize::check(c, &params));
        }
    }

    #[test]
    fn basic_client_credentials_never_panic_and_round_trip(
        id in "[A-Za-z0-9._~%-]{0,40}", secret in "\\PC{0,60}", raw in "\\PC{0,80}"
    ) {
        let _ = ClientCredentials::parse_basic(&raw);
        let _ = authorize::claims_demarches(&raw);
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&id), enc(&secret)))
        );
        let (got_id, got_secret) = ClientCredentials::parse_basic(&header).expect("well-formed");
        let decoded_id: String = form_urlencoded::parse(format!("x={}", enc(&id)).as_bytes())
            .next().map(|(_, v)| v.into_owned()).unwrap_or_default();
        prop_assert_eq!(got_id, decoded_id);
        prop_assert_eq!(secrecy::ExposeSecret::expose_secret(&got_secret), secret.as_str());
    }
}

const VALID_REQUEST: [(&str, &str); 9] = [
    ("response_type", "code"),
    ("client_id", "00000000-0000-0000-0000-000000000000"),
    ("redirect_uri", "https://partenaire.example/retour"),
    ("scope", "openid profile"),
    ("state", "etat"),
    ("nonce", "nonce"),
    (
        "code_challenge",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    ),
    ("code_challenge_method", "S256"),
    ("login_hint", "00000000-0000-0000-0000-000000000001"),
];

#[test]
fn the_valid_request_of_the_property_is_accepted() {
    let params = Params(
        VALID_REQUEST
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let req = authorize::check(Some(partner()), &params).expect("accepted");
    assert_eq!(req.scope, "openid profile");
    assert!(matches!(
        authorize::check(None, &params),
        Err(Rejection::Page { .. })
    ));
}

/// Mostly the parameters the provider reads, sometimes another, sometimes repeated.
fn oidc_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(authorize::CARRIED.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["request", "request_uri", "response_mode"]).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

/// Values that pass each rule and values that do not, mixed.
fn oidc_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "00000000-0000-0000-0000-000000000000",
            "https://partenaire.example/retour",
            "https://partenaire.example/autre",
            "https://partenaire.example/retour/../ailleurs",
            "https://evil.example/retour",
            "code",
            "token",
            "S256",
            "plain",
            "openid",
            "openid profile demarche:social",
            "openid demarche:famille demarche:social",
            "openid demarche:travail",
            "openid demarche:inconnue",
            "profile",
            "select_account",
            "none",
            "login consent",
            r#"{"id_token":{"rep_scope":{"values":["demarche:social","famille"]}}}"#,
            r#"{"id_token":{"rep_scope":{"values":["travail"]}}}"#,
            r#"{"id_token":{"rep_scope":{"values":[]}}}"#,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ]).prop_map(str::to_owned),
        1 => "[A-Za-z0-9_-]{43}",
        1 => "\\PC{0,60}",
    ]
}
