//! JSON bodies of the routes anyone can call (public consent, login, invitations, SMS
//! webhook): a value, or a 400/422 problem; never a panic, never another status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::error::AppError;
use mandat::http::extract::parse_json;
use mandat::http::routes::{mandates, members, session, sms};

fn check<T: serde::de::DeserializeOwned>(data: &[u8]) {
    if let Err(e) = parse_json::<T>(data) {
        let s = e.status().as_u16();
        assert!(s == 400 || s == 422, "status {s}");
        assert!(!matches!(e, AppError::Internal(_)));
    }
}

fuzz_target!(|data: &[u8]| {
    check::<mandates::PublicConsentBody>(data);
    check::<session::LoginBody>(data);
    check::<members::AcceptBody>(data);
    check::<members::ConfirmBody>(data);
    check::<sms::InboundBody>(data);
});
