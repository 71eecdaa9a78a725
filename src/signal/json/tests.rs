use super::*;
use crate::signal::validate::RESERVED_NAMES;
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn decode(input: &str) -> Result<Signal, DecodeError> {
    Signal::from_json(input.as_bytes())
}

fn round_trip(s: &Signal) {
    let json = s.to_json();
    assert_eq!(Signal::from_json(json.as_bytes()).as_ref(), Ok(s), "{json}");
    let mut written = Vec::new();
    s.write_json(&mut written).unwrap();
    assert_eq!(written, json.as_bytes());
    assert_eq!(s.to_json_vec(), json.as_bytes());
}

fn at(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos.into())
    }
}

// ------------------------------------------------------------ encoding

#[test]
fn encodes_json_data_inline_and_attributes_in_order() {
    let s = Signal::builder("order.created", "/shop")
        .id("A1")
        .time(at(1_522_949_460, 0))
        .datacontenttype("application/json")
        .extension("n", 5)
        .extension("b", false)
        .extension("s", "v\"")
        .data(r#"{"x": [1, 2]}"#)
        .build()
        .unwrap();
    assert_eq!(
        s.to_json(),
        r#"{"specversion":"1.0","id":"A1","source":"/shop","type":"order.created","time":"2018-04-05T17:31:00.000000000Z","datacontenttype":"application/json","b":false,"n":5,"s":"v\"","data":{"x": [1, 2]}}"#
    );
    round_trip(&s);
}

#[test]
fn encodes_binary_and_non_json_data_as_base64() {
    let s = Signal::builder("t", "/s")
        .id("1")
        .subject("sub")
        .dataschema("urn:x")
        .data(vec![0u8, 1, 2, 255])
        .build()
        .unwrap();
    assert_eq!(
        s.to_json(),
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"sub","dataschema":"urn:x","data_base64":"AAEC/w=="}"#
    );
    round_trip(&s);
}

#[test]
fn json_content_type_with_non_json_payload_falls_back_to_base64() {
    for payload in [
        &b" 1"[..],
        b"1 ",
        b"{\"a\":1} trailing",
        b"not json",
        b"\xff\xfe",
        b"{\"a\":",
        b"\n",
    ] {
        let s = Signal::builder("t", "/s")
            .datacontenttype("application/json")
            .data(Payload::copy_from_slice(payload))
            .build()
            .unwrap();
        let json = s.to_json();
        assert!(json.contains("\"data_base64\""), "{json}");
        round_trip(&s);
    }
}

#[test]
fn absent_content_type_means_json_both_ways() {
    // Decoding: `data` without `datacontenttype` is JSON (CloudEvents JSON
    // format); encoding writes it back as `data`, not `data_base64`.
    let input = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#;
    let s = decode(input).unwrap();
    assert_eq!(s.datacontenttype(), None);
    assert_eq!(s.data().as_bytes(), br#"{"a":1}"#);
    assert_eq!(s.to_json(), input);
    round_trip(&s);
    // Same rule as a JSON content type: a payload that is not exactly one JSON
    // value goes out as base64 and comes back unchanged.
    for payload in [&b" 1"[..], b"1 ", b"not json", b"\xff", b"{\"a\":"] {
        let s = Signal::builder("t", "/s")
            .id("1")
            .data(Payload::copy_from_slice(payload))
            .build()
            .unwrap();
        let json = s.to_json();
        assert!(json.contains("\"data_base64\""), "{json}");
        round_trip(&s);
    }
    // Built text without a content type is text/plain, not JSON: a `str`
    // says nothing about JSON (it used to go out inline as `[1,2]`).
    let s = Signal::builder("t", "/s")
        .id("1")
        .data("[1,2]")
        .build()
        .unwrap();
    assert_eq!(
        s.to_json(),
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain; charset=utf-8","data":"[1,2]"}"#
    );
    round_trip(&s);
    // A decoded JSON value keeps its absent content type through to_builder.
    let copy = decode(input).unwrap().to_builder().id("2").build().unwrap();
    assert_eq!(copy.datacontenttype(), None);
    assert!(copy.to_json().ends_with(r#""data":{"a":1}}"#));
}

#[test]
fn text_goes_out_as_a_string_and_never_as_a_number() {
    // Defect: `Signal::new(ty, source, "1.50")` went out as the JSON number
    // `1.50`, which other readers turn into `1.5`.
    let s = Signal::builder("price.quoted", "/shop")
        .id("1")
        .data("1.50")
        .build()
        .unwrap();
    assert_eq!(
        s.to_json(),
        r#"{"specversion":"1.0","id":"1","source":"/shop","type":"price.quoted","datacontenttype":"text/plain; charset=utf-8","data":"1.50"}"#
    );
    assert!(!Signal::new("t", "/s", "1.50").unwrap().data_is_binary());
    round_trip(&s);
    // Defect: text without a content type went out as `data_base64`.
    let hello = Signal::new("t", "/s", String::from("hello")).unwrap();
    assert!(
        hello.to_json().ends_with(r#""data":"hello"}"#),
        "{}",
        hello.to_json()
    );
    round_trip(&hello);
    // A content type set by the user is kept, before or after the data.
    for s in [
        Signal::builder("t", "/s")
            .datacontenttype("text/csv")
            .data("a,b")
            .build(),
        Signal::builder("t", "/s")
            .data("a,b")
            .datacontenttype("text/csv")
            .build(),
    ] {
        let s = s.unwrap();
        assert_eq!(s.datacontenttype(), Some("text/csv"));
        assert!(
            s.to_json()
                .ends_with(r#""datacontenttype":"text/csv","data":"a,b"}"#)
        );
    }
    // Control characters, quotes and non-ASCII text survive as a string.
    let odd = Signal::new("t", "/s", "\u{0}\u{1f}\"\\ é 𝄞\n").unwrap();
    assert!(
        odd.to_json().contains(r#""data":"\u0000\u001f\"\\ é 𝄞\n""#),
        "{}",
        odd.to_json()
    );
    round_trip(&odd);
}

#[test]
fn decoded_text_is_written_back_as_text() {
    // Defect: `"datacontenttype":"text/plain","data":"héllo"` was written
    // back as `data_base64`.
    for input in [
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"héllo"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/xml","data":"<a b=\"c\"/>"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data":"raw"}"#,
    ] {
        let s = decode(input).unwrap();
        assert!(!s.data_is_binary());
        assert_eq!(s.to_json(), input);
        round_trip(&s);
    }
    // And decoded bytes are written back as bytes, even valid UTF-8 under a
    // text type, or valid JSON without a content type.
    for input in [
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data_base64":"aMOpbGxv"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"MQ=="}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"MQ=="}"#,
    ] {
        let s = decode(input).unwrap();
        assert!(s.data_is_binary());
        assert_eq!(s.to_json(), input);
        round_trip(&s);
    }
}

#[test]
fn empty_data_is_present_and_distinct_from_none() {
    // Defect: `"data":""` under text/plain was written back without `data`.
    let input = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":""}"#;
    let s = decode(input).unwrap();
    assert!(s.has_data() && s.data().is_empty());
    assert_eq!(s.to_json(), input);
    round_trip(&s);
    let input = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":""}"#;
    let s = decode(input).unwrap();
    assert!(s.has_data() && s.data_is_binary());
    assert_eq!(s.to_json(), input);
    round_trip(&s);
    let none = decode(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#).unwrap();
    assert!(!none.has_data() && !none.data_is_binary());
    assert_ne!(none, s);
    // Built: "" is empty text, an empty Vec empty bytes, no `data` none.
    let text = Signal::new("t", "/s", "").unwrap();
    assert!(text.has_data());
    assert!(text.to_json().ends_with(r#""data":""}"#));
    let bytes = Signal::new("t", "/s", Vec::new()).unwrap();
    assert!(bytes.to_json().ends_with(r#""data_base64":""}"#));
    let none = Signal::builder("t", "/s").build().unwrap();
    assert!(!none.has_data());
    assert_eq!(none.into_data(), Payload::new());
    for s in [text, bytes] {
        round_trip(&s);
    }
}

#[test]
fn text_under_a_json_content_type_must_be_json() {
    for text in ["not json", "", "1 2", "{\"a\":", "'a'"] {
        let err = Signal::builder("t", "/s")
            .datacontenttype("application/json")
            .data(text)
            .build()
            .unwrap_err();
        assert_eq!(err.attribute(), &Attribute::Data, "{text:?}");
        assert!(matches!(err.rule(), Rule::NotJson { .. }), "{text:?}");
        assert!(err.to_string().contains("not one JSON value"), "{err}");
    }
    // Surrounding whitespace is not part of the value and is dropped.
    let s = Signal::builder("t", "/s")
        .datacontenttype("application/cloudevents+json; charset=utf-8")
        .data(" \t{\"a\": 1}\r\n")
        .build()
        .unwrap();
    assert_eq!(s.data().as_bytes(), br#"{"a": 1}"#);
    assert!(s.to_json().ends_with(r#""data":{"a": 1}}"#));
    round_trip(&s);
    // The number keeps its digits: JSON text is written verbatim.
    let s = Signal::builder("t", "/s")
        .datacontenttype("application/json")
        .data("1.50")
        .build()
        .unwrap();
    assert!(s.to_json().ends_with(r#""data":1.50}"#));
    // A JSON string under a JSON type keeps its quotes.
    let s = decode(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":"x"}"#).unwrap();
    assert_eq!(s.data().as_bytes(), br#""x""#);
}

#[test]
fn uuid_ids_are_written_hyphenated_lowercase() {
    let s = Signal::builder("t", "/s").build().unwrap();
    let u = s.id().as_uuid().unwrap();
    let json = s.to_json();
    assert!(
        json.contains(&format!("\"id\":\"{}\"", u.hyphenated())),
        "{json}"
    );
    round_trip(&s);
}

#[test]
fn empty_payload_writes_no_data_member() {
    let s = Signal::builder("t", "/s")
        .datacontenttype("application/json")
        .build()
        .unwrap();
    let json = s.to_json();
    assert!(!json.contains("data\""), "{json}");
    round_trip(&s);
}

#[test]
fn write_json_reports_writer_errors() {
    struct Broken;
    impl io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let s = Signal::new("t", "/s", "x").unwrap();
    let err = s.write_json(Broken).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
}

// ------------------------------------------------------------ round trips

#[test]
fn hand_written_round_trips() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let signals = vec![
        // JSON data from json_data.
        Signal::builder("order.created", "/shop")
            .json_data(&serde_json::json!({"a": [1, 2.5, {"b": null}], "c": "é\"\\"}))
            .build(),
        // JSON `null`, a JSON string, a number, deep nesting.
        Signal::builder("t", "/s")
            .datacontenttype("application/json")
            .data("null")
            .build(),
        Signal::builder("t", "/s")
            .datacontenttype("text/json")
            .data("\"s\"")
            .build(),
        Signal::builder("t", "/s")
            .datacontenttype("application/x+json")
            .data("-1.5e300")
            .build(),
        Signal::builder("t", "/s")
            .datacontenttype("application/json")
            .data(deep)
            .build(),
        // JSON text without a content type is JSON data; other bytes are
        // binary data.
        Signal::builder("t", "/s").data("{}").build(),
        Signal::builder("t", "/s").data("\"s\"").build(),
        Signal::builder("t", "/s").data(" {}").build(),
        Signal::builder("t", "/s").data("plain text").build(),
        // Binary data.
        Signal::builder("t", "/s")
            .datacontenttype("application/octet-stream")
            .data((0..=255).collect::<Vec<u8>>())
            .build(),
        // Text data with a non-JSON content type.
        Signal::builder("t", "/s")
            .datacontenttype("text/plain; charset=utf-8")
            .data("héllo\n")
            .build(),
        // No data.
        Signal::builder("t", "/s").build(),
        // Every optional attribute and each extension type.
        Signal::builder("com.example.some-event_v2", "https://example.com/a?b=c%20d")
            .id("A234-1234-1234")
            .subject("caf\u{e9} \"quoted\" \\ back")
            .time(at(1_700_000_000, 123_456_789))
            .datacontenttype("application/cloudevents+json; charset=utf-8")
            .dataschema("https://example.com/schema.json")
            .extension("flag", true)
            .extension("off", false)
            .extension("min", i32::MIN)
            .extension("max", i32::MAX)
            .extension("text", "tab-free, 𝄞 and \"quotes\"")
            .extension("empty", "")
            .extension("abcdefghijklmnopqrst", 0)
            .data(r#"{"k":"v"}"#)
            .build(),
        // Times before 1970, at the ends of the range, with nanoseconds.
        Signal::builder("t", "/s").time(at(-1, 1)).build(),
        Signal::builder("t", "/s")
            .time(at(-86_400 * 365 * 100, 999_999_999))
            .build(),
        Signal::builder("t", "/s")
            .time(at(-62_167_219_200, 0))
            .build(),
        Signal::builder("t", "/s")
            .time(at(253_402_300_799, 999_999_999))
            .build(),
        // Explicit UUID id (normalized) and an uppercase one (kept as text).
        Signal::builder("t", "/s")
            .id("0190163d-8694-739b-aea5-966c26f8ad91")
            .build(),
        Signal::builder("t", "/s")
            .id("0190163D-8694-739B-AEA5-966C26F8AD91")
            .build(),
    ];
    for s in signals {
        round_trip(&s.unwrap());
    }
}

#[test]
fn largest_valid_signal_fits_the_derived_json_limit() {
    let limits = Limits::default()
        .with_max_payload(300)
        .with_max_attribute_len(50)
        .with_max_extensions(3);
    let quotes = "\"".repeat(50);
    let backslashes = "\\".repeat(50);
    let mut b = Signal::builder("a".repeat(50), format!("/{}", "b".repeat(49)))
        .id(quotes.clone())
        .subject(backslashes)
        .time(at(253_402_300_799, 999_999_999))
        .datacontenttype(format!("text/plain;a={}", "c".repeat(37)))
        .dataschema(format!("urn:{}", "d".repeat(46)))
        .data(vec![0xff; 300])
        .limits(limits);
    for name in [
        "abcdefghijklmnopqrs1",
        "abcdefghijklmnopqrs2",
        "abcdefghijklmnopqrs3",
    ] {
        b = b.extension(name, quotes.clone());
    }
    let s = b.build().unwrap();
    let json = s.to_json_vec();
    assert!(
        json.len() <= limits.max_json_len(),
        "{} > {}",
        json.len(),
        limits.max_json_len()
    );
    assert_eq!(Signal::from_json_with(&json, &limits), Ok(s));
}

// ------------------------------------------------------------ foreign input

/// The JSON-data example of the CloudEvents JSON format spec (1.0.2, 3.2).
const SPEC_JSON_EXAMPLE: &str = r#"{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/json",
    "data" : {
        "appinfoA" : "abc",
        "appinfoB" : 123,
        "appinfoC" : true
    }
}"#;

#[test]
fn decodes_the_spec_json_data_example() {
    let s = decode(SPEC_JSON_EXAMPLE).unwrap();
    assert_eq!(s.ty(), "com.example.someevent");
    assert_eq!(s.source(), "/mycontext");
    assert_eq!(s.id(), &SignalId::from("C234-1234-1234"));
    assert_eq!(s.subject(), None);
    assert_eq!(s.time(), Some(at(1_522_949_460, 0)));
    assert_eq!(s.datacontenttype(), Some("application/json"));
    assert_eq!(
        s.extension("comexampleextension1"),
        Some(&ExtensionValue::from("value"))
    );
    assert_eq!(
        s.extension("comexampleothervalue"),
        Some(&ExtensionValue::Integer(5))
    );
    let data = std::str::from_utf8(s.data()).unwrap();
    assert!(
        data.starts_with("{\n        \"appinfoA\" : \"abc\""),
        "{data}"
    );
    assert!(data.ends_with('}'), "{data}");
    let value: serde_json::Value = serde_json::from_slice(s.data()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"appinfoA": "abc", "appinfoB": 123, "appinfoC": true})
    );
    round_trip(&s);
}

#[test]
fn decodes_the_spec_xml_and_string_examples() {
    let xml = decode(
        r#"{
        "specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
        "id" : "B234-1234-1234", "time" : "2018-04-05T17:31:00Z",
        "comexampleextension1" : "value", "comexampleothervalue" : 5,
        "unsetextension": null,
        "datacontenttype" : "application/xml",
        "data" : "<much wow=\"xml\"/>"
    }"#,
    )
    .unwrap();
    assert_eq!(xml.data().as_bytes(), br#"<much wow="xml"/>"#);
    assert_eq!(xml.extension("unsetextension"), None);
    assert_eq!(xml.extensions().count(), 2);
    round_trip(&xml);

    let string = decode(
        r#"{"specversion":"1.0","type":"com.example.someevent","source":"/mycontext",
        "subject":null,"id":"D234-1234-1234","time":"2018-04-05T17:31:00Z",
        "data":"I'm just a string"}"#,
    )
    .unwrap();
    assert_eq!(string.data().as_bytes(), br#""I'm just a string""#);
    assert_eq!(string.datacontenttype(), None);
    round_trip(&string);
}

#[test]
fn decodes_other_producers_output() {
    // Binary data, offsets, unpadded base64, escapes, numbers as data.
    let thrift = decode(
        r#"{"specversion":"1.0","type":"com.example.someevent","source":"/mycontext",
        "id":"A234-1234-1234","time":"2018-04-05T19:31:00+02:00",
        "datacontenttype":"application/vnd.apache.thrift.binary","data_base64":"SGVsbG8="}"#,
    )
    .unwrap();
    assert_eq!(thrift.data().as_bytes(), b"Hello");
    assert_eq!(thrift.time(), Some(at(1_522_949_460, 0)));
    round_trip(&thrift);

    let go_style = decode(
        r#"{"specversion":"1.0","id":"0190163d-8694-739b-aea5-966c26f8ad91","source":"urn:x",
        "type":"a.b","time":"1969-07-20T20:17:40.123456789-05:00","subject":"caf\u00e9",
        "data_base64":"SGVsbG8","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "priority":-3,"sampled":true}"#,
    )
    .unwrap();
    assert!(go_style.id().as_uuid().is_some());
    assert_eq!(go_style.subject(), Some("café"));
    assert_eq!(go_style.data().as_bytes(), b"Hello");
    assert_eq!(
        go_style.extension("priority"),
        Some(&ExtensionValue::Integer(-3))
    );
    assert_eq!(
        go_style.extension("sampled"),
        Some(&ExtensionValue::Bool(true))
    );
    assert_eq!(
        go_style.time(),
        Some(at(-14_182_940 + 5 * 3600, 123_456_789))
    );
    round_trip(&go_style);

    let null_data = decode(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":null,"data_base64":null}"#,
    )
    .unwrap();
    // JSON `null` is a value under a JSON (or absent) content type, distinct
    // from no data (CloudEvents JSON format 3.1.1); under another it is no
    // data, as for attributes.
    assert_eq!(null_data.data().as_bytes(), b"null");
    assert!(null_data.has_data());
    assert!(null_data.to_json().ends_with(r#""data":null}"#));
    round_trip(&null_data);
    let text_null = decode(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":null}"#,
    )
    .unwrap();
    assert!(!text_null.has_data());

    // Under a non-JSON content type, `data` must be a string (it used to be
    // read as its JSON text, which came back as a string: not a round trip).
    let text_number = decode(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":12}"#,
    );
    assert_eq!(
        text_number,
        Err(DecodeError::WrongType {
            attribute: Text::from("data"),
            expected: "a string (its datacontenttype is not JSON)",
            found: "a number",
        })
    );

    let escaped_text = decode(
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"a\nb\u00e9"}"#,
    )
    .unwrap();
    assert_eq!(escaped_text.data().as_bytes(), "a\nbé".as_bytes());

    let deep = format!(
        r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(decode(&deep).unwrap().data().len(), 20_000);
}

// ------------------------------------------------------------ rejections

const HEAD: &str = r#""specversion":"1.0","id":"x","source":"/s","type":"t""#;

fn obj(extra: &str) -> Vec<u8> {
    format!("{{{HEAD}{extra}}}").into_bytes()
}

fn invalid(attribute: Attribute, rule: Rule) -> impl Fn(&DecodeError) -> bool {
    move |e| matches!(e, DecodeError::Invalid(s) if s.attribute() == &attribute && s.rule() == &rule)
}

fn is(expected: DecodeError) -> impl Fn(&DecodeError) -> bool {
    move |e| e == &expected
}

fn syntax(e: &DecodeError) -> bool {
    matches!(e, DecodeError::Syntax { .. })
}

fn wrong(
    attribute: &'static str,
    expected: &'static str,
    found: &'static str,
) -> impl Fn(&DecodeError) -> bool {
    is(DecodeError::WrongType {
        attribute: Text::from(attribute),
        expected,
        found,
    })
}

fn missing(name: &'static str) -> impl Fn(&DecodeError) -> bool {
    is(DecodeError::MissingAttribute { name })
}

fn ext(name: &'static str) -> Attribute {
    Attribute::Extension(Text::from(name))
}

#[test]
fn rejection_table() {
    type Check = Box<dyn Fn(&DecodeError) -> bool>;
    let d = Limits::default();
    let small = Limits::default().with_max_payload(4).with_max_extensions(2);
    let tiny = Limits::default().with_max_json_len(10);
    let outside = "an integer outside the 32-bit signed range";
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let rows: Vec<(&str, Vec<u8>, Limits, Check)> = vec![
        ("not json", b"hello".to_vec(), d, Box::new(syntax)),
        ("empty input", Vec::new(), d, Box::new(syntax)),
        ("truncated", obj("")[..30].to_vec(), d, Box::new(syntax)),
        (
            "trailing bytes",
            [obj(""), b" x".to_vec()].concat(),
            d,
            Box::new(syntax),
        ),
        (
            "two objects",
            [obj(""), obj("")].concat(),
            d,
            Box::new(syntax),
        ),
        (
            "comment",
            [b"//c\n".to_vec(), obj("")].concat(),
            d,
            Box::new(syntax),
        ),
        (
            "a string",
            br#""event""#.to_vec(),
            d,
            Box::new(is(DecodeError::NotAnObject { found: "a string" })),
        ),
        (
            "an array",
            br#"[{"specversion":"1.0"}]"#.to_vec(),
            d,
            Box::new(is(DecodeError::NotAnObject { found: "an array" })),
        ),
        (
            "a number",
            b"42".to_vec(),
            d,
            Box::new(is(DecodeError::NotAnObject { found: "a number" })),
        ),
        (
            "null",
            b"null".to_vec(),
            d,
            Box::new(is(DecodeError::NotAnObject { found: "null" })),
        ),
        (
            "missing specversion",
            br#"{"id":"x","source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(missing("specversion")),
        ),
        (
            "missing id",
            br#"{"specversion":"1.0","source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(missing("id")),
        ),
        (
            "missing source",
            br#"{"specversion":"1.0","id":"x","type":"t"}"#.to_vec(),
            d,
            Box::new(missing("source")),
        ),
        (
            "missing type",
            br#"{"specversion":"1.0","id":"x","source":"/s"}"#.to_vec(),
            d,
            Box::new(missing("type")),
        ),
        (
            "null id",
            br#"{"specversion":"1.0","id":null,"source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(missing("id")),
        ),
        (
            "specversion 0.3",
            br#"{"specversion":"0.3","id":"x","source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(is(DecodeError::UnsupportedSpecVersion {
                found: Text::from("0.3"),
            })),
        ),
        (
            "specversion as number",
            br#"{"specversion":1.0,"id":"x","source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(wrong(
                "specversion",
                "a string",
                "a fractional or very large number",
            )),
        ),
        (
            "id as number",
            br#"{"specversion":"1.0","id":42,"source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(wrong("id", "a string", "an integer")),
        ),
        (
            "source as object",
            br#"{"specversion":"1.0","id":"x","source":{},"type":"t"}"#.to_vec(),
            d,
            Box::new(wrong("source", "a string", "an object")),
        ),
        (
            "subject as bool",
            obj(r#","subject":true"#),
            d,
            Box::new(wrong("subject", "a string", "a boolean")),
        ),
        (
            "time as number",
            obj(r#","time":0"#),
            d,
            Box::new(wrong("time", "a string", "an integer")),
        ),
        (
            "data_base64 as array",
            obj(r#","data_base64":[]"#),
            d,
            Box::new(wrong("data_base64", "a string", "an array")),
        ),
        (
            "bad base64",
            obj(r#","data_base64":"!!!!""#),
            d,
            Box::new(|e: &DecodeError| matches!(e, DecodeError::InvalidBase64 { .. })),
        ),
        (
            "base64 with whitespace",
            obj(r#","data_base64":"SGVs bG8=""#),
            d,
            Box::new(|e: &DecodeError| matches!(e, DecodeError::InvalidBase64 { .. })),
        ),
        (
            "object data under a text type",
            obj(r#","datacontenttype":"text/plain","data":{"a":1}"#),
            d,
            Box::new(wrong(
                "data",
                "a string (its datacontenttype is not JSON)",
                "an object",
            )),
        ),
        (
            "array data under an xml type",
            obj(r#","datacontenttype":"application/xml","data":[1]"#),
            d,
            Box::new(wrong(
                "data",
                "a string (its datacontenttype is not JSON)",
                "an array",
            )),
        ),
        (
            "boolean data under a binary type",
            obj(r#","datacontenttype":"application/octet-stream","data":false"#),
            d,
            Box::new(wrong(
                "data",
                "a string (its datacontenttype is not JSON)",
                "a boolean",
            )),
        ),
        (
            "data and data_base64",
            obj(r#","data":1,"data_base64":"AA==""#),
            d,
            Box::new(is(DecodeError::DataAndDataBase64)),
        ),
        (
            "duplicate type",
            br#"{"specversion":"1.0","id":"x","source":"/s","type":"t","type":"u"}"#.to_vec(),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("type"),
            })),
        ),
        (
            "duplicate data",
            obj(r#","data":1,"data":1"#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("data"),
            })),
        ),
        (
            "duplicate extension",
            obj(r#","e":1,"f":2,"e":1"#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("e"),
            })),
        ),
        (
            "duplicate via escape",
            obj(r#","e":1,"\u0065":2"#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("e"),
            })),
        ),
        (
            "duplicate null extension",
            obj(r#","e":null,"e":null"#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("e"),
            })),
        ),
        (
            "extension set and null",
            obj(r#","e":1,"f":2,"e":null"#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("e"),
            })),
        ),
        (
            "extension null then set",
            obj(r#","e":null,"e":"x""#),
            d,
            Box::new(is(DecodeError::DuplicateAttribute {
                name: Text::from("e"),
            })),
        ),
        (
            "extension object",
            obj(r#","e":{"a":1}"#),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, "an object")),
        ),
        (
            "extension array",
            obj(r#","e":[1]"#),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, "an array")),
        ),
        (
            "extension float",
            obj(r#","e":1.5"#),
            d,
            Box::new(wrong(
                "e",
                EXTENSION_TYPES,
                "a fractional or very large number",
            )),
        ),
        (
            "extension integral float",
            obj(r#","e":1.0"#),
            d,
            Box::new(wrong(
                "e",
                EXTENSION_TYPES,
                "a fractional or very large number",
            )),
        ),
        (
            "extension exponent",
            obj(r#","e":1e3"#),
            d,
            Box::new(wrong(
                "e",
                EXTENSION_TYPES,
                "a fractional or very large number",
            )),
        ),
        (
            "extension above i32",
            obj(r#","e":2147483648"#),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, outside)),
        ),
        (
            "extension below i32",
            obj(r#","e":-2147483649"#),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, outside)),
        ),
        (
            "extension u64::MAX",
            obj(r#","e":18446744073709551615"#),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, outside)),
        ),
        (
            "extension beyond u64",
            obj(r#","e":18446744073709551616"#),
            d,
            Box::new(wrong(
                "e",
                EXTENSION_TYPES,
                "a fractional or very large number",
            )),
        ),
        (
            "extension number beyond f64",
            obj(r#","e":1e400"#),
            d,
            Box::new(syntax),
        ),
        (
            "uppercase extension name",
            obj(r#","Bad":1"#),
            d,
            Box::new(invalid(ext("Bad"), Rule::InvalidName)),
        ),
        (
            "extension name with underscore",
            obj(r#","trace_id":"x""#),
            d,
            Box::new(invalid(ext("trace_id"), Rule::InvalidName)),
        ),
        (
            "21-char extension name",
            obj(r#","abcdefghijklmnopqrstu":1"#),
            d,
            Box::new(invalid(ext("abcdefghijklmnopqrstu"), Rule::InvalidName)),
        ),
        (
            "capitalised attribute",
            obj(r#","Type":"x""#),
            d,
            Box::new(invalid(ext("Type"), Rule::InvalidName)),
        ),
        (
            "time not rfc3339",
            obj(r#","time":"yesterday""#),
            d,
            Box::new(
                |e: &DecodeError| matches!(e, DecodeError::InvalidTime { value, .. } if value == "yesterday"),
            ),
        ),
        (
            "time with an x between date and time",
            obj(r#","time":"2018-04-05x17:31:00Z""#),
            d,
            Box::new(|e: &DecodeError| {
                matches!(e, DecodeError::InvalidTime { value, message }
                    if value == "2018-04-05x17:31:00Z" && message.contains("separated by 'T'"))
            }),
        ),
        (
            "time without offset",
            obj(r#","time":"2018-04-05T17:31:00""#),
            d,
            Box::new(|e: &DecodeError| matches!(e, DecodeError::InvalidTime { .. })),
        ),
        (
            "time date only",
            obj(r#","time":"2018-04-05""#),
            d,
            Box::new(|e: &DecodeError| matches!(e, DecodeError::InvalidTime { .. })),
        ),
        (
            "input over the limit",
            obj(""),
            tiny,
            Box::new(is(DecodeError::InputTooLarge {
                len: obj("").len(),
                limit: 10,
            })),
        ),
        (
            "payload over the limit after base64",
            obj(r#","data_base64":"AAAAAAA=""#),
            small,
            Box::new(invalid(
                Attribute::Data,
                Rule::PayloadTooLarge { size: 5, limit: 4 },
            )),
        ),
        (
            "raw data over the limit",
            obj(r#","data":12345"#),
            small,
            Box::new(invalid(
                Attribute::Data,
                Rule::PayloadTooLarge { size: 5, limit: 4 },
            )),
        ),
        (
            "too many extensions",
            obj(r#","c":1,"b":2,"a":3,"d":4"#),
            small,
            Box::new(invalid(
                ext("a"),
                Rule::TooManyExtensions { count: 4, max: 2 },
            )),
        ),
        (
            "too many extensions, null ones not counted",
            obj(r#","n1":null,"c":1,"n2":null,"b":2,"n3":null,"a":3,"n4":null"#),
            small,
            Box::new(invalid(
                ext("a"),
                Rule::TooManyExtensions { count: 3, max: 2 },
            )),
        ),
        (
            "invalid utf-8 in a string",
            obj(",\"e\":\"\u{1}\"")
                .into_iter()
                .map(|b| if b == 1 { 0xff } else { b })
                .collect(),
            d,
            Box::new(syntax),
        ),
        (
            "invalid utf-8 in a key",
            obj(",\"\u{1}\":1")
                .into_iter()
                .map(|b| if b == 1 { 0xc3 } else { b })
                .collect(),
            d,
            Box::new(syntax),
        ),
        (
            "invalid utf-8 in data",
            obj(",\"data\":\"\u{1}\"")
                .into_iter()
                .map(|b| if b == 1 { 0x80 } else { b })
                .collect(),
            d,
            Box::new(syntax),
        ),
        (
            "invalid utf-8 outside strings",
            [b"\xef\xbb\xbf".to_vec(), obj("")].concat(),
            d,
            Box::new(syntax),
        ),
        (
            "raw control character in a string",
            obj(",\"subject\":\"a\u{1}\""),
            d,
            Box::new(syntax),
        ),
        (
            "lone surrogate in an attribute",
            obj(r#","subject":"\ud800""#),
            d,
            Box::new(syntax),
        ),
        (
            "lone surrogate in text data",
            obj(r#","datacontenttype":"text/plain","data":"\ud800""#),
            d,
            Box::new(syntax),
        ),
        (
            "10,000-deep unclosed arrays",
            "[".repeat(10_000).into_bytes(),
            d,
            Box::new(syntax),
        ),
        (
            "10,000-deep unclosed objects",
            r#"{"a":"#.repeat(10_000).into_bytes(),
            d,
            Box::new(syntax),
        ),
        (
            "10,000-deep array document",
            deep_array.clone().into_bytes(),
            d,
            Box::new(is(DecodeError::NotAnObject { found: "an array" })),
        ),
        (
            "10,000-deep extension",
            obj(&format!(",\"e\":{deep_array}")),
            d,
            Box::new(wrong("e", EXTENSION_TYPES, "an array")),
        ),
        (
            "10,000-deep attribute",
            obj(&format!(",\"subject\":{deep_array}")),
            d,
            Box::new(wrong("subject", "a string", "an array")),
        ),
        (
            "invalid type",
            br#"{"specversion":"1.0","id":"x","source":"/s","type":"a..b"}"#.to_vec(),
            d,
            Box::new(invalid(Attribute::Type, Rule::EmptySegment { index: 1 })),
        ),
        (
            "empty source",
            br#"{"specversion":"1.0","id":"x","source":"","type":"t"}"#.to_vec(),
            d,
            Box::new(invalid(Attribute::Source, Rule::Empty)),
        ),
        (
            "empty id",
            br#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#.to_vec(),
            d,
            Box::new(invalid(Attribute::Id, Rule::Empty)),
        ),
        (
            "bad content type",
            obj(r#","datacontenttype":"json""#),
            d,
            Box::new(invalid(Attribute::DataContentType, Rule::InvalidMediaType)),
        ),
        (
            "relative dataschema",
            obj(r#","dataschema":"/s.json""#),
            d,
            Box::new(invalid(Attribute::DataSchema, Rule::NotAbsoluteUri)),
        ),
        (
            "escaped control character",
            obj(r#","subject":"\u0007""#),
            d,
            Box::new(invalid(
                Attribute::Subject,
                Rule::InvalidCharacter {
                    index: 0,
                    found: '\u{7}',
                },
            )),
        ),
        (
            "control character in extension",
            obj(r#","e":"a\nb""#),
            d,
            Box::new(invalid(
                ext("e"),
                Rule::InvalidCharacter {
                    index: 1,
                    found: '\n',
                },
            )),
        ),
    ];
    assert!(rows.len() >= 20);
    for (name, input, limits, check) in rows {
        match Signal::from_json_with(&input, &limits) {
            Ok(s) => panic!("{name}: accepted as {s:?}"),
            Err(e) => {
                assert!(check(&e), "{name}: unexpected {e:?}");
                // Every message is a full sentence naming the problem.
                assert!(e.to_string().len() > 20, "{name}: {e}");
            }
        }
    }
}

#[test]
fn null_members_count_as_absent() {
    let s = Signal::from_json(&obj(
        r#","subject":null,"time":null,"datacontenttype":null,"dataschema":null,"x":null"#,
    ))
    .unwrap();
    assert_eq!(s, Signal::from_json(&obj("")).unwrap());
}

#[test]
fn null_extensions_do_not_count_toward_max_extensions() {
    let limits = Limits::default().with_max_extensions(2);
    // Two set extensions (the limit) and more unset ones than the limit,
    // before, between and after them.
    let input = obj(r#","n1":null,"a":1,"n2":null,"n3":null,"b":"x","n4":null"#);
    let s = Signal::from_json_with(&input, &limits).unwrap();
    let names: Vec<&str> = s.extensions().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        s,
        Signal::from_json_with(&obj(r#","a":1,"b":"x""#), &limits).unwrap()
    );
    // Even past the bound on kept `null` names, they are not counted and the
    // set extensions are still all read.
    let many: String = (0..200).map(|i| format!(r#","u{i}":null"#)).collect();
    let input = obj(&format!(r#"{many},"a":1,"b":2"#));
    let s = Signal::from_json_with(&input, &limits).unwrap();
    assert_eq!(s.extensions().count(), 2);
    let input = obj(&format!(r#"{many},"a":1,"b":2,"c":3"#));
    let err = Signal::from_json_with(&input, &limits).unwrap_err();
    assert!(
        invalid(ext("c"), Rule::TooManyExtensions { count: 3, max: 2 })(&err),
        "{err:?}"
    );
}

#[test]
fn decode_errors_explain_themselves() {
    let e = Signal::from_json(b"{\n\"a\":}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "CloudEvents JSON input is not valid JSON: expected value at line 2, column 5"
    );
    let e = Signal::from_json(&obj(r#","data":"x","data_base64":"x""#)).unwrap_err();
    assert!(e.to_string().contains("at most one"), "{e}");
    let e = Signal::from_json(&obj(r#","e":1.5"#)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CloudEvents attribute `e` must be a boolean, a string, or an integer from -2147483648 \
         to 2147483647 (or null for unset), found a fractional or very large number"
    );
    let e = Signal::from_json(br#"{"specversion":"1.0","id":"x","source":"/s","type":"a..b"}"#)
        .unwrap_err();
    let source = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some(
            "invalid signal `type` \"a..b\": segment 2 is empty; a type is one or more segments \
             of [A-Za-z0-9_-] separated by '.' (at most 64 segments), e.g. \"order.created\""
        )
    );
    assert!(
        e.to_string()
            .starts_with("decoded event is not a valid signal: invalid signal `type`")
    );
    let lone = obj(r#","datacontenttype":"text/plain","data":"\ud800""#);
    match Signal::from_json(&lone) {
        Err(DecodeError::Syntax {
            line: 1,
            column,
            message,
        }) => {
            assert!(
                column > 100 && message.contains("`data`"),
                "{column} {message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------ properties

fn arb_type() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9_-]{1,6}", 1..6).prop_map(|v| v.join("."))
}

fn arb_source() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z0-9/._~-]{0,16}(%[0-9A-Fa-f]{2}){0,2}",
        "urn:[a-z]{1,8}:[a-z0-9]{1,8}",
        "https://[a-z]{1,8}\\.com/[a-zé?=&]{0,10}",
    ]
}

fn arb_extension_value() -> impl Strategy<Value = ExtensionValue> {
    prop_oneof![
        any::<bool>().prop_map(ExtensionValue::Bool),
        any::<i32>().prop_map(ExtensionValue::Integer),
        "\\PC{0,16}".prop_map(ExtensionValue::from),
    ]
}

/// Data as a builder takes it: none, bytes, any text, or JSON text.
#[derive(Clone, Debug)]
enum GenData {
    None,
    Bytes(Vec<u8>),
    Text(String),
    Json(String),
}

fn arb_json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1.50".to_owned()),
        "\\PC{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::collection::vec(any::<i32>(), 0..20).prop_map(|v| serde_json::to_string(&v).unwrap()),
        Just(r#"{ "a" : [1, 2.5e3, true, null], "b": "\u00e9" }"#.to_owned()),
    ]
}

fn arb_data() -> impl Strategy<Value = GenData> {
    prop_oneof![
        Just(GenData::None),
        prop::collection::vec(any::<u8>(), 0..4096).prop_map(GenData::Bytes),
        arb_json_text().prop_map(|s| GenData::Bytes(s.into_bytes())),
        any::<String>().prop_map(GenData::Text),
        "[\\x00-\\x7f]{0,64}".prop_map(GenData::Text),
        arb_json_text().prop_map(GenData::Text),
        arb_json_text().prop_map(GenData::Json),
    ]
}

fn arb_signal() -> impl Strategy<Value = Signal> {
    let content_types = prop::sample::select(vec![
        "application/json",
        "text/json",
        "application/cloudevents+json; charset=utf-8",
        "text/plain",
        "application/octet-stream",
        "application/xml",
    ]);
    let extensions = prop::collection::vec(
        (
            "[a-z0-9]{1,20}".prop_filter("reserved", |n| !RESERVED_NAMES.contains(&n.as_str())),
            arb_extension_value(),
        ),
        0..6,
    );
    let id = prop_oneof![
        Just(None),
        "\\PC{1,24}".prop_map(Some),
        any::<u128>().prop_map(|u| Some(uuid::Uuid::from_u128(u).to_string())),
    ];
    let time = prop::option::of((-62_167_219_200i64..=253_402_300_799, 0u32..1_000_000_000));
    (
        (
            arb_type(),
            arb_source(),
            id,
            prop::option::of("\\PC{1,24}"),
            time,
        ),
        (
            prop::option::of(content_types),
            prop::option::of("https://example\\.com/[a-z0-9/]{0,12}"),
            extensions,
            arb_data(),
        ),
    )
        .prop_map(
            |((ty, source, id, subject, time), (ct, schema, extensions, data))| {
                let mut b = Signal::builder(ty, source);
                let json_ct = ct.is_some_and(is_json_content_type);
                b = match data {
                    GenData::None => b,
                    GenData::Bytes(bytes) => b.data(bytes),
                    // Under a JSON type, text must be JSON: send it as a JSON string.
                    GenData::Text(text) if json_ct => b.data(serde_json::to_string(&text).unwrap()),
                    GenData::Text(text) => b.data(text),
                    GenData::Json(text) => {
                        b.json_data(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
                    }
                };
                if let Some(id) = id {
                    b = b.id(id);
                }
                if let Some(subject) = subject {
                    b = b.subject(subject);
                }
                if let Some((secs, nanos)) = time {
                    b = b.time(at(secs, nanos));
                }
                if let Some(ct) = ct {
                    b = b.datacontenttype(ct);
                }
                if let Some(schema) = schema {
                    b = b.dataschema(schema);
                }
                for (name, value) in extensions {
                    b = b.extension(name, value);
                }
                b.build().expect("generated signals are valid")
            },
        )
}

/// A JSON object whose members are drawn from attribute names and
/// plausible values, to reach the decoder's semantic checks.
fn arb_member_soup() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "dataschema",
            "data",
            "data_base64",
            "e",
            "Ext",
            "x_y",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9]{0,22}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "null",
            "true",
            "1",
            "-1",
            "1.5",
            "2147483648",
            "\"x\"",
            "\"\"",
            "[]",
            "{}",
            "\"AA==\"",
            "\"!\"",
            "\"2018-04-05T17:31:00Z\"",
            "\"1.0\"",
            "\"/s\"",
            "\"a.b\"",
            "\"application/json\"",
            "\"text/plain\"",
            "\"urn:x\"",
            "[[[]]]",
            "{\"a\":[1]}",
            "\"\\ud800\"",
            "\"\\u0000\"",
            "1e400",
        ])
        .prop_map(str::to_owned),
        "\"\\PC{0,8}\"",
    ];
    prop::collection::vec((key, value), 0..14).prop_map(|members| {
        let body: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// Whatever was accepted re-encodes to an equal signal.
fn check_accepted(result: Result<Signal, DecodeError>) -> Result<(), TestCaseError> {
    if let Ok(s) = result {
        prop_assert_eq!(Signal::from_json(&s.to_json_vec()), Ok(s));
    }
    Ok(())
}

proptest! {
    #[test]
    fn generated_signals_round_trip(s in arb_signal()) {
        let json = s.to_json_vec();
        prop_assert!(json.len() <= Limits::default().max_json_len());
        prop_assert_eq!(Signal::from_json(&json), Ok(s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_accepted(Signal::from_json(&bytes))?;
    }

    #[test]
    fn json_ish_text_never_panics(text in "[{}\\[\\]\":,0-9a-z_. \\\\eE+-]{0,256}") {
        check_accepted(Signal::from_json(text.as_bytes()))?;
    }

    #[test]
    fn member_soup_never_panics(text in arb_member_soup()) {
        check_accepted(Signal::from_json(text.as_bytes()))?;
    }

    #[test]
    fn mutated_encodings_never_panic(
        s in arb_signal(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = s.to_json_vec();
        for (at, byte, op) in edits {
            let i = at % (bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => {}
            }
        }
        check_accepted(Signal::from_json(&bytes))?;
    }
}
