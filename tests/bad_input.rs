//! Bad input: arbitrary bytes and strings thrown at CloudEvents JSON decoding,
//! signal building and route-pattern parsing. Nothing may panic; every
//! rejection is a typed error with a message; everything accepted survives a
//! round trip. The interesting inputs found along the way are kept as a
//! regression corpus under `tests/corpus/`.

use proptest::prelude::*;
use sigrun::router::Pattern;
use sigrun::{AgentSpec, DecodeError, Instruction, Limits, RouteSpec, Runtime, Signal};
use std::path::Path;

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn variant(e: &DecodeError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `ok_*.json` must decode and round-trip; `err_<Variant>_*.json` must be
/// refused with that `DecodeError` variant.
#[test]
fn json_corpus() {
    let mut files: Vec<_> = std::fs::read_dir(corpus().join("json"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus went missing");
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let result = Signal::from_json(&bytes);
        if name.starts_with("ok_") {
            let signal = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = Signal::from_json(signal.to_json().as_bytes()).unwrap();
            assert_eq!(again, signal, "{name}: round trip");
        } else {
            let expected = name.trim_start_matches("err_").split('_').next().unwrap();
            let err = result.err().unwrap_or_else(|| panic!("{name}: accepted"));
            assert_eq!(variant(&err), expected, "{name}: {err}");
            assert!(!err.to_string().is_empty());
        }
    }
}

/// `ok <pattern>` lines must parse back to the same text, `err <pattern>`
/// lines must be refused with a message naming the pattern.
#[test]
fn pattern_corpus() {
    let text = std::fs::read_to_string(corpus().join("patterns.txt")).unwrap();
    let mut cases = 0;
    for line in text.lines() {
        let (verdict, pattern) = line.split_once(' ').unwrap_or((line, ""));
        match verdict {
            "ok" => assert_eq!(Pattern::parse(pattern).unwrap().as_str(), pattern),
            "err" => {
                let e = Pattern::parse(pattern).unwrap_err();
                assert!(
                    e.to_string().starts_with("invalid route pattern"),
                    "{pattern:?}: {e}"
                );
            }
            other => panic!("bad corpus line {other:?}"),
        }
        cases += 1;
    }
    assert!(cases >= 25);
}

/// Strings with the characters that matter to the validators.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z.*_ %0-9A-F-]{0,40}",
        prop::collection::vec(
            prop::sample::select(vec![
                "a", ".", "*", "**", "", " ", "%", "%4", "\u{0}", "é", "\u{85}"
            ]),
            0..12
        )
        .prop_map(|v| v.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        match Signal::from_json(&bytes) {
            Ok(s) => prop_assert_eq!(Signal::from_json(s.to_json().as_bytes()).unwrap(), s),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn decoding_mutated_signals_never_panics(
        cut in 0usize..400,
        insert in prop::sample::select(vec!["\"", "{", "}", ",", ":", "null", "1e999", "\\u0000", "[", "-"]),
    ) {
        let json = Signal::builder("a.b", "/s").subject("x").extension("n", 3).data(vec![1u8, 2, 3]).build().unwrap().to_json();
        let at = cut.min(json.len());
        let mut mutated = json.clone();
        if mutated.is_char_boundary(at) {
            mutated.insert_str(at, insert);
        }
        let limits = Limits::default().with_max_payload(64);
        if let Err(e) = Signal::from_json_with(mutated.as_bytes(), &limits) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn building_from_arbitrary_attributes_never_panics(
        ty in nasty(), source in nasty(), subject in nasty(), ext_name in nasty(), ext_value in nasty(),
        content_type in nasty(), data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let built = Signal::builder(ty, source)
            .subject(subject)
            .extension(ext_name, ext_value)
            .datacontenttype(content_type)
            .data(data)
            .limits(Limits::default().with_max_payload(32))
            .build();
        match built {
            Ok(s) => prop_assert_eq!(Signal::from_json(s.to_json().as_bytes()).unwrap(), s),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(e.attribute().name()), "{}", msg);
            }
        }
    }

    #[test]
    fn parsing_arbitrary_patterns_never_panics(pattern in nasty(), ty in nasty()) {
        match Pattern::parse(&pattern) {
            Ok(p) => {
                prop_assert_eq!(p.as_str(), pattern.as_str());
                let _ = p.matches(&ty);
            }
            Err(e) => prop_assert!(e.to_string().contains("invalid route pattern")),
        }
    }
}

#[test]
fn arbitrary_patterns_through_a_running_agent_are_refused_cleanly() {
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent = rt
        .spawn(&AgentSpec::<u8>::new(0).on("x", |_: &mut u8, _: &mut Instruction| Ok(())))
        .unwrap();
    let text = std::fs::read_to_string(corpus().join("patterns.txt")).unwrap();
    for line in text.lines() {
        let (verdict, pattern) = line.split_once(' ').unwrap_or((line, ""));
        let result = agent.add_route(RouteSpec::new(pattern.to_owned(), "x"));
        assert_eq!(result.is_ok(), verdict == "ok", "{pattern:?}: {result:?}");
    }
    // Signals of any valid type still route (or are refused) without panicking.
    for ty in ["x", "a.b", "s.s.s", "zzz"] {
        let _ = agent.send(Signal::new(ty, "/t", "").unwrap());
    }
    rt.run_until_idle().unwrap();
}
