//! The inbound SMS webhook: the `X-Mandat-Signature` header (the input up to its first
//! newline), the raw body (the rest) as JSON, and the reply text. Never a panic; a signature
//! this target did not make never verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::http::extract::parse_json;
use mandat::http::routes::sms::InboundBody;
use mandat::sms::inbound::{parse_reply, verify};

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    let now = 1_800_000_000;
    let _ = verify(b"fuzz-webhook-secret", &header, body, now);
    if let Ok(b) = parse_json::<InboundBody>(body) {
        drop(b);
    }
    let text = String::from_utf8_lossy(body);
    let _ = parse_reply(&text);
});
