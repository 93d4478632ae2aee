//! Consent codes as typed by a person (printed and SMS): never a panic, and a normalised code
//! normalises to itself, in its canonical and its printed form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::domain::consent::ConsentCode;
use mandat::domain::mandate::ConsentChannel;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    for channel in [ConsentChannel::Print, ConsentChannel::Sms] {
        if let Some(c) = ConsentCode::normalise(channel, &raw) {
            let again = ConsentCode::normalise(channel, c.expose()).expect("canonical form");
            assert_eq!(again.expose(), c.expose());
            let shown = ConsentCode::normalise(channel, &c.display()).expect("printed form");
            assert_eq!(shown.expose(), c.expose());
        }
    }
});
