//! Signal building from arbitrary attribute strings: never panics; accepted
//! signals survive a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use agentry::Signal;

fuzz_target!(|parts: (String, String, String, String, String, Vec<u8>)| {
    let (ty, source, subject, name, value, data) = parts;
    let built = Signal::builder(ty, source)
        .subject(subject)
        .extension(name, value)
        .data(data)
        .build();
    match built {
        Ok(s) => assert_eq!(Signal::from_json(s.to_json().as_bytes()).expect("own output decodes"), s),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
