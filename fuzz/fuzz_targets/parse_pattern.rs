//! Route-pattern parsing and matching of arbitrary strings: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use agentry::router::Pattern;

fuzz_target!(|input: (String, String)| {
    let (pattern, ty) = input;
    if let Ok(p) = Pattern::parse(&pattern) {
        assert_eq!(p.as_str(), pattern);
        let _ = p.matches(&ty);
    }
});
