//! Bad input: arbitrary bytes and strings thrown at CloudEvents JSON decoding,
//! signal building and route-pattern parsing. Nothing may panic; every
//! rejection is a typed error with a message; everything accepted survives a
//! round trip. The interesting inputs found along the way are kept as a
//! regression corpus under `tests/corpus/`.

use agentry::router::Pattern;
use agentry::{AgentSpec, DecodeError, Instruction, Limits, RouteSpec, Runtime, Signal};
use proptest::prelude::*;
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
                "a", ".", "*", "**", "", " ", "%", "%4", "\u{0}", "é", "\u{85}", "\u{fdd0}",
                "\u{ffff}"
            ]),
            0..12
        )
        .prop_map(|v| v.concat()),
    ]
}

/// Valid `type`s: one to four segments.
fn valid_type() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,8}(\\.[A-Za-z0-9_-]{1,8}){0,3}"
}

/// Valid `source`s: paths, absolute URIs, URNs, with escapes and non-ASCII.
fn valid_source() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z0-9/é_.-]{0,20}(%[0-9A-F]{2})?",
        "https://example\\.com/[a-z]{0,8}\\?[a-z]=[0-9]{1,3}",
        "urn:[a-z]{1,8}:[a-z0-9]{1,8}",
    ]
}

/// Media types: valid ones (JSON and not, with parameters) and garbage.
fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "application/json",
            "application/cloudevents+json; charset=utf-8",
            "text/json",
            "text/plain",
            "text/plain; charset=utf-8",
            "application/octet-stream",
            "application/vnd.x+json;a=\"b; c\"",
            "image/png",
        ])
        .prop_map(str::to_owned),
        1 => nasty(),
    ]
}

/// A payload: arbitrary bytes, or JSON text (valid or nearly).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![
            "{\"a\":1}",
            "[1, 2]",
            "\"s\"",
            "null",
            "-1.5e3",
            " 1",
            "1 ",
            "{\"a\":",
            "",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// A `time` member: RFC 3339 (sometimes out of range or with a bad
/// separator) or garbage.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => concat!(
            "[0-9]{4}-(0[1-9]|1[0-2])-[0-2][1-9][Tt ]",
            "[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,12})?",
            "([Zz]|[+-][01][0-9]:[0-5][0-9])",
        ),
        1 => nasty(),
    ]
}

/// An extension member's JSON value: every type CloudEvents JSON can carry,
/// and some it cannot.
fn extension_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        nasty().prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!([1])),
    ]
}

/// The event's data: none, a `data` value, or `data_base64`.
#[derive(Clone, Debug)]
enum Data {
    None,
    Json(serde_json::Value),
    Base64(Vec<u8>),
}

/// CloudEvents JSON objects with the right structure (mostly the members and
/// JSON types CloudEvents asks for) and arbitrary contents, so that decoding
/// both accepts (and the round trip is checked) and refuses.
fn event_json() -> impl Strategy<Value = Vec<u8>> {
    use serde_json::{Map, Value};
    let data = prop_oneof![
        Just(Data::None),
        extension_value().prop_map(Data::Json),
        Just(Data::Json(
            serde_json::json!({"a": [1, "b", null], "c": {"d": true}})
        )),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(Data::Base64),
    ];
    (
        prop_oneof![9 => Just("1.0".to_owned()), 1 => nasty()],
        prop_oneof![
            "[A-Za-z0-9-]{1,16}".boxed(),
            Just("0190163d-8694-739b-aea5-966c26f8ad91".to_owned()).boxed(),
            nasty().boxed(),
        ],
        prop_oneof![3 => valid_source(), 1 => nasty()],
        prop_oneof![3 => valid_type(), 1 => nasty()],
        prop::option::of(nasty()),
        prop::option::of(time_text()),
        prop::option::of(content_type()),
        prop::collection::vec(
            (
                prop_oneof![3 => "[a-z0-9]{1,20}".boxed(), 1 => nasty().boxed()],
                extension_value(),
            ),
            0..4,
        ),
        data,
    )
        .prop_map(
            |(specversion, id, source, ty, subject, time, ct, extensions, data)| {
                let mut m = Map::new();
                m.insert("specversion".into(), Value::String(specversion));
                m.insert("id".into(), Value::String(id));
                m.insert("source".into(), Value::String(source));
                m.insert("type".into(), Value::String(ty));
                let optional = [
                    ("subject", subject),
                    ("time", time),
                    ("datacontenttype", ct),
                ];
                for (name, value) in optional {
                    if let Some(v) = value {
                        m.insert(name.into(), Value::String(v));
                    }
                }
                for (name, value) in extensions {
                    m.insert(name, value);
                }
                match data {
                    Data::None => {}
                    Data::Json(v) => {
                        m.insert("data".into(), v);
                    }
                    Data::Base64(bytes) => {
                        use base64::Engine as _;
                        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                        m.insert("data_base64".into(), Value::String(text));
                    }
                }
                serde_json::to_vec(&Value::Object(m)).expect("a JSON value serializes")
            },
        )
}

/// Decoded input must encode to JSON that decodes to the same signal.
fn check_decoded(
    result: Result<Signal, DecodeError>,
    limits: &Limits,
) -> Result<bool, TestCaseError> {
    match result {
        Ok(s) => {
            let again = Signal::from_json_with(s.to_json().as_bytes(), limits);
            prop_assert_eq!(again, Ok(s));
            Ok(true)
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(false)
        }
    }
}

/// Signal attributes: each field valid or nasty, optional ones absent too.
#[derive(Clone, Debug)]
struct Attributes {
    ty: String,
    source: String,
    subject: Option<String>,
    extension: Option<(String, agentry::ExtensionValue)>,
    content_type: Option<String>,
    /// Bytes, or text when `text` is set and they are UTF-8 (text is
    /// written as `data`, bytes as `data_base64`).
    data: Vec<u8>,
    text: bool,
}

fn attributes() -> impl Strategy<Value = Attributes> {
    let extension = (
        prop_oneof![3 => "[a-z0-9]{1,20}".boxed(), 1 => nasty().boxed()],
        prop_oneof![
            nasty().prop_map(agentry::ExtensionValue::from),
            any::<i32>().prop_map(agentry::ExtensionValue::from),
            any::<bool>().prop_map(agentry::ExtensionValue::from),
        ],
    );
    (
        prop_oneof![3 => valid_type(), 1 => nasty()],
        prop_oneof![3 => valid_source(), 1 => nasty()],
        prop::option::of(nasty()),
        prop::option::of(extension),
        prop::option::of(content_type()),
        payload(),
        any::<bool>(),
    )
        .prop_map(
            |(ty, source, subject, extension, content_type, data, text)| Attributes {
                ty,
                source,
                subject,
                extension,
                content_type,
                data,
                text,
            },
        )
}

fn build(a: Attributes) -> Result<Signal, agentry::SignalError> {
    let data = match String::from_utf8(a.data) {
        Ok(text) if a.text => agentry::signal::Data::from(text),
        Ok(text) => agentry::signal::Data::from(text.into_bytes()),
        Err(e) => agentry::signal::Data::from(e.into_bytes()),
    };
    let mut b = Signal::builder(a.ty, a.source)
        .data(data)
        .limits(Limits::default().with_max_payload(32));
    if let Some(subject) = a.subject {
        b = b.subject(subject);
    }
    if let Some((name, value)) = a.extension {
        b = b.extension(name, value);
    }
    if let Some(ct) = a.content_type {
        b = b.datacontenttype(ct);
    }
    b.build()
}

/// The generators above produce accepted and refused cases alike, so both
/// halves of the properties below run (a generator that only makes garbage
/// would leave the round-trip half dead).
#[test]
fn the_generators_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut decoded, mut refused) = (0, 0);
    let events = event_json();
    for _ in 0..500 {
        let bytes = events.new_tree(&mut runner).unwrap().current();
        match Signal::from_json(&bytes) {
            Ok(_) => decoded += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        decoded >= 25 && refused >= 25,
        "decoded {decoded}, refused {refused}"
    );
    let (mut built, mut rejected, mut inline) = (0, 0, 0);
    let attrs = attributes();
    for _ in 0..500 {
        match build(attrs.new_tree(&mut runner).unwrap().current()) {
            Ok(s) => {
                built += 1;
                inline += usize::from(s.to_json().contains("\"data\":"));
            }
            Err(_) => rejected += 1,
        }
    }
    assert!(
        built >= 25 && rejected >= 25,
        "built {built}, rejected {rejected}"
    );
    println!(
        "decoded {decoded}, refused {refused}; built {built}, rejected {rejected}, inline {inline}"
    );
    assert!(
        inline > 0 && inline < built,
        "{inline} of {built} with a `data` member (text), not `data_base64`"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decoded(Signal::from_json(&bytes), &Limits::default())?;
    }

    #[test]
    fn decoding_structurally_valid_events_never_panics_and_round_trips(bytes in event_json()) {
        check_decoded(Signal::from_json(&bytes), &Limits::default())?;
    }

    #[test]
    fn decoding_mutated_signals_never_panics(
        cut in 0usize..400,
        insert in prop::sample::select(vec![
            "\"", "{", "}", ",", ":", "null", "1e999", "\\u0000", "[", "-", " ", "1", "\"x\":1,",
        ]),
    ) {
        let json = Signal::builder("a.b", "/s").subject("x").extension("n", 3).data(vec![1u8, 2, 3]).build().unwrap().to_json();
        let at = cut.min(json.len());
        let mut mutated = json.clone();
        if mutated.is_char_boundary(at) {
            mutated.insert_str(at, insert);
        }
        let limits = Limits::default().with_max_payload(64);
        check_decoded(Signal::from_json_with(mutated.as_bytes(), &limits), &limits)?;
    }

    #[test]
    fn building_from_arbitrary_attributes_never_panics(attributes in attributes()) {
        match build(attributes) {
            Ok(s) => prop_assert_eq!(Signal::from_json(s.to_json().as_bytes()), Ok(s)),
            Err(e) => {
                // The message names the attribute as it writes an extension
                // name: escaped, cut after 40 characters.
                let msg = e.to_string();
                let name = e.attribute().name();
                let shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
                prop_assert!(msg.contains(&shown), "{}", msg);
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
