//! Phone numbers as typed at the desk: never a panic, and an accepted number in E.164 parses
//! again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mandat::domain::usager::Phone;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Phone::parse(raw) {
        let again = Phone::parse(p.as_str()).expect("E.164 parses again");
        assert_eq!(again.as_str(), p.as_str());
        let _ = p.masked();
    }
});
