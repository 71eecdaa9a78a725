//! CloudEvents JSON decoding of arbitrary bytes: never panics, and whatever
//! it accepts survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use agentry::{Limits, Signal};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default().with_max_payload(4096);
    if let Ok(signal) = Signal::from_json_with(data, &limits) {
        let again = Signal::from_json_with(signal.to_json().as_bytes(), &limits).expect("own output decodes");
        assert_eq!(again, signal);
    }
});
