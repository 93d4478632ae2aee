//! Signed notes and witness files read back by `mandat audit verify --against`: never a
//! panic; a parsed note's text parses again to the same checkpoint; nothing this target did
//! not sign verifies under its key.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use mandat::audit::checkpoint::{SignedNote, SigningKey, parse_external};
use mandat::crypto::{Keyring, MasterKey};
use secrecy::SecretString;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let ring = Keyring::new(MasterKey::from_base64(&SecretString::from(b64)).unwrap());
        SigningKey::derive(&ring, 1).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(note) = SignedNote::parse(text) {
        let again = SignedNote::parse(&note.text).expect("parses again");
        assert_eq!(again.checkpoint, note.checkpoint);
        if note.verify(std::slice::from_ref(&key().public)).is_ok() {
            // What verifies is the checkpoint's own body, signed.
            assert!(note.text.starts_with(&note.checkpoint.body()));
        }
    }
    let _ = parse_external(text, "fuzz");
});
