//! Signals through the public API: validation, ids, CloudEvents JSON.

#![allow(clippy::type_complexity)] // test tables read best with their types inline

use agentry::signal::{Attribute, Rule};
use agentry::{DecodeError, Limits, Signal, SignalId};

fn rejects(builder: agentry::SignalBuilder, attribute: Attribute, rule: fn(&Rule) -> bool) {
    let err = builder.build().unwrap_err();
    assert_eq!(err.attribute(), &attribute, "{err}");
    assert!(rule(err.rule()), "unexpected rule for {attribute:?}: {err}");
    let msg = err.to_string();
    assert!(
        msg.contains(attribute.name()),
        "message does not name the attribute: {msg}"
    );
}

#[test]
fn validation_table() {
    let b = Signal::builder;
    rejects(b("", "/s"), Attribute::Type, |r| matches!(r, Rule::Empty));
    rejects(b("a..b", "/s"), Attribute::Type, |r| {
        matches!(r, Rule::EmptySegment { index: 1 })
    });
    rejects(b(".a", "/s"), Attribute::Type, |r| {
        matches!(r, Rule::EmptySegment { index: 0 })
    });
    rejects(b("a.b*", "/s"), Attribute::Type, |r| {
        matches!(r, Rule::InvalidCharacter { .. })
    });
    rejects(b("a b", "/s"), Attribute::Type, |r| {
        matches!(r, Rule::InvalidCharacter { .. })
    });
    let deep = vec!["x"; 65].join(".");
    rejects(Signal::builder(deep, "/s"), Attribute::Type, |r| {
        matches!(r, Rule::TooManySegments { count: 65, max: 64 })
    });
    rejects(b("a", ""), Attribute::Source, |r| matches!(r, Rule::Empty));
    rejects(b("a", "/has space"), Attribute::Source, |r| {
        matches!(r, Rule::InvalidCharacter { .. })
    });
    rejects(b("a", "/bad%zz"), Attribute::Source, |r| {
        matches!(r, Rule::InvalidPercentEncoding { .. })
    });
    rejects(b("a", "/s").id(""), Attribute::Id, |r| {
        matches!(r, Rule::Empty)
    });
    rejects(b("a", "/s").subject(""), Attribute::Subject, |r| {
        matches!(r, Rule::Empty)
    });
    rejects(
        b("a", "/s").datacontenttype("json"),
        Attribute::DataContentType,
        |r| matches!(r, Rule::InvalidMediaType),
    );
    rejects(
        b("a", "/s").dataschema("relative/path"),
        Attribute::DataSchema,
        |r| matches!(r, Rule::NotAbsoluteUri),
    );
    rejects(
        b("a", "/s").extension("Upper", 1),
        Attribute::Extension("Upper".into()),
        |r| matches!(r, Rule::InvalidName),
    );
    rejects(
        b("a", "/s").extension("waytoolongextensionname", 1),
        Attribute::Extension("waytoolongextensionname".into()),
        |r| matches!(r, Rule::InvalidName | Rule::TooLong { .. }),
    );
    rejects(
        b("a", "/s").extension("source", "x"),
        Attribute::Extension("source".into()),
        |r| matches!(r, Rule::ReservedName),
    );
    rejects(
        b("a", "/s")
            .data(vec![0u8; 11])
            .limits(Limits::default().with_max_payload(10)),
        Attribute::Data,
        |r| {
            matches!(
                r,
                Rule::PayloadTooLarge {
                    size: 11,
                    limit: 10
                }
            )
        },
    );
    // Accepted edge cases.
    Signal::builder(vec!["x"; 64].join("."), "/s")
        .build()
        .unwrap();
    Signal::builder("A-b_c.D9", "urn:x:y%20z")
        .extension("abcdefghij0123456789", true)
        .build()
        .unwrap();
    Signal::builder("a", "/s")
        .data(vec![0u8; 10])
        .limits(Limits::default().with_max_payload(10))
        .build()
        .unwrap();
    assert_eq!(Limits::default().max_payload(), 10 * 1024 * 1024);
}

#[test]
fn default_ids_are_uuid_v7_and_increase_within_a_thread() {
    let ids: Vec<SignalId> = (0..10_000)
        .map(|_| Signal::new("a", "/s", "").unwrap().id().clone())
        .collect();
    for pair in ids.windows(2) {
        let (a, b) = (pair[0].as_uuid().unwrap(), pair[1].as_uuid().unwrap());
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b, "{a} then {b}");
    }
}

#[test]
fn json_round_trip_keeps_every_attribute() {
    let time = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
    let cases = [
        Signal::builder("order.created", "/shop")
            .json_data(&serde_json::json!({"sku": "a", "n": 2}))
            .build(),
        Signal::builder("blob.stored", "/store")
            .data(vec![0u8, 159, 146, 150])
            .build(),
        Signal::builder("empty", "/e").build(),
        Signal::builder("full.house", "https://example.com/src")
            .id("custom-id-1")
            .subject("subj")
            .time(time)
            .datacontenttype("text/plain; charset=utf-8")
            .dataschema("https://example.com/schema")
            .extension("traceparent", "00-abc")
            .extension("retries", 3)
            .extension("urgent", true)
            .data("plain text")
            .build(),
    ];
    for signal in cases {
        let signal = signal.unwrap();
        let json = signal.to_json();
        let back = Signal::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, signal, "{json}");
    }
    let json = Signal::builder("order.created", "/shop")
        .json_data(&serde_json::json!({"sku": "a"}))
        .build()
        .unwrap()
        .to_json();
    assert!(
        json.contains(r#""data":{"sku":"a"}"#),
        "JSON data is embedded as JSON: {json}"
    );
}

#[test]
fn data_is_written_as_text_json_or_base64_by_one_rule() {
    let tail = |s: &Signal| {
        let json = s.to_json();
        let at = json
            .rfind(",\"data\":")
            .or_else(|| json.rfind(",\"data_base64\":"));
        at.map_or("}".to_owned(), |i| json[i + 1..].to_owned())
    };
    // Text goes as a JSON string under a default text/plain content type
    // (it used to go as base64, or as a number: "1.50" read back as 1.5).
    let text = Signal::new("a", "/s", "hello").unwrap();
    assert_eq!(text.datacontenttype(), Some("text/plain; charset=utf-8"));
    assert_eq!(tail(&text), r#""data":"hello"}"#);
    assert_eq!(
        tail(&Signal::new("a", "/s", "1.50").unwrap()),
        r#""data":"1.50"}"#
    );
    // JSON goes inline, bytes as base64, empty text as an empty string, and
    // no data as no member.
    assert_eq!(
        tail(&Signal::json("a", "/s", &1.5).unwrap()),
        r#""data":1.5}"#
    );
    assert_eq!(
        tail(&Signal::new("a", "/s", vec![104u8, 105]).unwrap()),
        r#""data_base64":"aGk="}"#
    );
    assert_eq!(tail(&Signal::new("a", "/s", "").unwrap()), r#""data":""}"#);
    assert_eq!(tail(&Signal::builder("a", "/s").build().unwrap()), "}");
    // Decoded text stays text, decoded empty text stays present.
    for input in [
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"a","datacontenttype":"text/plain","data":"héllo"}"#,
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"a","datacontenttype":"text/plain","data":""}"#,
    ] {
        let s = Signal::from_json(input.as_bytes()).unwrap();
        assert!(s.has_data());
        assert_eq!(s.to_json(), input);
    }
}

#[test]
fn json_from_other_cloudevents_producers_decodes() {
    let spec_example = br#"{
        "specversion" : "1.0",
        "type" : "com.github.pull_request.opened",
        "source" : "https://github.com/cloudevents/spec/pull",
        "subject" : "123",
        "id" : "A234-1234-1234",
        "time" : "2018-04-05T17:31:00Z",
        "comexampleextension1" : "value",
        "comexampleothervalue" : 5,
        "datacontenttype" : "text/xml",
        "data" : "<much wow=\"xml\"/>"
    }"#;
    let s = Signal::from_json(spec_example).unwrap();
    assert_eq!(s.ty(), "com.github.pull_request.opened");
    assert_eq!(s.data().as_bytes(), br#"<much wow="xml"/>"#);
    assert!(
        s.to_json().ends_with(r#""data":"<much wow=\"xml\"/>"}"#),
        "written back as text: {}",
        s.to_json()
    );
    assert_eq!(s.id().to_string(), "A234-1234-1234");
    assert_eq!(
        s.extension("comexampleothervalue")
            .and_then(|v| v.as_integer()),
        Some(5)
    );
}

#[test]
fn malformed_json_is_rejected_with_a_typed_error() {
    let table: &[(&[u8], fn(&DecodeError) -> bool)] = &[
        (b"not json", |e| matches!(e, DecodeError::Syntax { .. })),
        (b"[1,2]", |e| matches!(e, DecodeError::NotAnObject { .. })),
        (br#"{"specversion":"1.0","id":"1","source":"/s"}"#, |e| {
            matches!(e, DecodeError::MissingAttribute { name: "type" })
        }),
        (br#"{"specversion":"0.3","id":"1","source":"/s","type":"a"}"#, |e| {
            matches!(e, DecodeError::UnsupportedSpecVersion { .. })
        }),
        (br#"{"specversion":"1.0","id":1,"source":"/s","type":"a"}"#, |e| {
            matches!(e, DecodeError::WrongType { .. })
        }),
        (br#"{"specversion":"1.0","id":"1","source":"/s","type":"a","data_base64":"!!"}"#, |e| {
            matches!(e, DecodeError::InvalidBase64 { .. })
        }),
        (br#"{"specversion":"1.0","id":"1","source":"/s","type":"a","data":1,"data_base64":"AA=="}"#, |e| {
            matches!(e, DecodeError::DataAndDataBase64)
        }),
        (br#"{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"a"}"#, |e| {
            matches!(e, DecodeError::DuplicateAttribute { .. })
        }),
        (br#"{"specversion":"1.0","id":"1","source":"/s","type":"a..b"}"#, |e| {
            matches!(e, DecodeError::Invalid(_))
        }),
        (br#"{"specversion":"1.0","id":"1","source":"/s","type":"a","time":"yesterday"}"#, |e| {
            matches!(e, DecodeError::InvalidTime { .. })
        }),
        (b"\xff\xfe", |e| matches!(e, DecodeError::Syntax { .. })),
    ];
    for (input, expected) in table {
        let err = Signal::from_json(input).unwrap_err();
        assert!(
            expected(&err),
            "{}: {err:?}",
            String::from_utf8_lossy(input)
        );
        assert!(!err.to_string().is_empty());
    }
    let deep = "[".repeat(100_000);
    assert!(Signal::from_json(deep.as_bytes()).is_err());
    let limits = Limits::default().with_max_json_len(64);
    let big = Signal::new("a", "/s", vec![1u8; 100]).unwrap().to_json();
    assert!(matches!(
        Signal::from_json_with(big.as_bytes(), &limits),
        Err(DecodeError::InputTooLarge { .. })
    ));
}
