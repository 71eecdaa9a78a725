//! CloudEvents JSON format (structured content mode), version 1.0.
//!
//! Encoding goes through serde with a borrowed view ([`Envelope`]); nothing is
//! copied into an intermediate tree. Decoding reads untrusted bytes: the length
//! is bounded before parsing, every member is classified without recursion
//! (nested values are skipped by serde_json's iterative skipper), and every
//! problem is a [`DecodeError`], never a panic.

use super::data::Form;
use super::error::{Attribute, DecodeError, Rule, SignalError};
use super::validate::is_json_content_type;
use super::{ExtensionValue, Limits, Payload, Signal, SignalBuilder, SignalId, Text, timestamp};
use base64::Engine as _;
use base64::alphabet;
use base64::display::Base64Display;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::io;

/// Standard alphabet; padding optional on input (some producers drop it),
/// always written on output.
const BASE64_INPUT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How many `null` extension members decoding checks for duplicates at least
/// (more when `max_extensions` is larger).
const UNSET_KEPT_MIN: usize = 64;

/// What an extension value may be, for [`DecodeError::WrongType`].
const EXTENSION_TYPES: &str =
    "a boolean, a string, or an integer from -2147483648 to 2147483647 (or null for unset)";

impl Signal {
    /// The signal as CloudEvents JSON (structured mode), e.g. for an HTTP body
    /// with content type `application/cloudevents+json`.
    ///
    /// Members: `specversion`, `id`, `source`, `type`, then the optional
    /// attributes present, extensions (sorted by name), and the data as the
    /// [module docs](super#data-in-cloudevents-json) say: bytes as
    /// `data_base64` (standard alphabet, padded), text as `"data"` (inline
    /// JSON under a JSON or absent content type, a JSON string otherwise),
    /// no member without data.
    ///
    /// `time` is written in UTC with nine fraction digits
    /// (`2018-04-05T17:31:00.000000000Z`), a fixed width that sorts as text.
    /// [`Signal::from_json`] gives back an equal signal.
    pub fn to_json(&self) -> String {
        let bytes = self.to_json_vec();
        // serde_json writes only UTF-8 (every input is a `str` or a validated
        // `RawValue`), so the lossy branch is never taken.
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// [`to_json`](Signal::to_json) as bytes, sized up front so the buffer is
    /// allocated once.
    pub fn to_json_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded_len_estimate(self));
        let result = serde_json::to_writer(&mut out, &Envelope(self));
        // A `Vec` writer cannot fail and `Envelope` raises no error of its own.
        debug_assert!(result.is_ok(), "encoding a signal failed: {result:?}");
        out
    }

    /// Writes [`to_json`](Signal::to_json) to `writer` without building it in
    /// memory first (the payload is base64-encoded in chunks on the way).
    /// Wrap unbuffered writers (files, sockets) in a `BufWriter`.
    pub fn write_json<W: io::Write>(&self, writer: W) -> io::Result<()> {
        serde_json::to_writer(writer, &Envelope(self)).map_err(io::Error::from)
    }

    /// Decodes one event in CloudEvents JSON format, with default [`Limits`].
    /// See [`from_json_with`](Signal::from_json_with).
    ///
    /// ```
    /// let input = br#"{"specversion":"1.0","id":"A234-1234-1234","source":"/mycontext",
    ///     "type":"com.example.someevent","time":"2018-04-05T17:31:00Z",
    ///     "datacontenttype":"application/json","data":{"appinfoA":"abc"}}"#;
    /// let s = agentry::Signal::from_json(input)?;
    /// assert_eq!(s.ty(), "com.example.someevent");
    /// assert_eq!(s.data().as_bytes(), br#"{"appinfoA":"abc"}"#);
    /// # Ok::<(), agentry::DecodeError>(())
    /// ```
    pub fn from_json(input: &[u8]) -> Result<Signal, DecodeError> {
        Signal::from_json_with(input, &Limits::default())
    }

    /// Decodes one event in CloudEvents JSON format from untrusted bytes.
    ///
    /// Never panics. Input longer than [`Limits::max_json_len`] is rejected
    /// before parsing. Then:
    /// - `specversion` must be `"1.0"`; `id`, `source`, `type` are required
    ///   strings; other attributes must be strings; a member whose value is
    ///   `null` counts as absent (CloudEvents JSON format, section 2.2);
    /// - any other member is an extension: a boolean, a string, or an integer
    ///   in the 32-bit signed range (floats, objects and arrays are errors);
    ///   a `null` one is unset and does not count toward
    ///   [`Limits::max_extensions`];
    /// - a member name may appear only once;
    /// - data as the [module docs](super#data-in-cloudevents-json) say:
    ///   `data` under a JSON or absent `datacontenttype` gives the exact JSON
    ///   text of the value (`null` included); under another content type a
    ///   string gives its UTF-8 content, `null` no data, anything else is an
    ///   error; `data_base64` gives bytes (padding optional); both together
    ///   are an error;
    /// - the result must pass the same checks as
    ///   [`SignalBuilder::build`](super::SignalBuilder::build) under `limits`
    ///   ([`DecodeError::Invalid`]).
    ///
    /// An `id` that is a canonical lowercase hyphenated UUID becomes
    /// [`SignalId::Uuid`], so decoding what [`to_json`](Signal::to_json) wrote
    /// gives back an equal signal.
    pub fn from_json_with(input: &[u8], limits: &Limits) -> Result<Signal, DecodeError> {
        let limit = limits.max_json_len();
        if input.len() > limit {
            return Err(DecodeError::InputTooLarge {
                len: input.len(),
                limit,
            });
        }
        let mut de = serde_json::Deserializer::from_slice(input);
        let seed = DocumentSeed {
            max_extensions: limits.max_extensions(),
        };
        let document = seed.deserialize(&mut de).map_err(syntax_error)?;
        de.end().map_err(syntax_error)?;
        match document {
            Ok(members) => members.into_signal(input, limits),
            Err(found) => Err(DecodeError::NotAnObject { found }),
        }
    }
}

// ---------------------------------------------------------------- encoding

/// A borrowed view of a signal that serializes as a CloudEvents JSON object.
struct Envelope<'a>(&'a Signal);

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("specversion", Signal::SPECVERSION)?;
        s.id.with_str(|id| map.serialize_entry("id", id))?;
        map.serialize_entry("source", s.source.as_str())?;
        map.serialize_entry("type", s.ty.as_str())?;
        if let Some(subject) = s.subject() {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(t) = s.time() {
            let text = timestamp::format(t);
            // The formatter writes ASCII digits and separators only.
            let text = std::str::from_utf8(&text).unwrap_or_default();
            map.serialize_entry("time", text)?;
        }
        if let Some(ct) = s.datacontenttype() {
            map.serialize_entry("datacontenttype", ct)?;
        }
        if let Some(schema) = s.dataschema() {
            map.serialize_entry("dataschema", schema)?;
        }
        for (name, value) in s.extension_slice() {
            match value {
                ExtensionValue::Bool(b) => map.serialize_entry(name.as_str(), b)?,
                ExtensionValue::Integer(i) => map.serialize_entry(name.as_str(), i)?,
                ExtensionValue::String(t) => map.serialize_entry(name.as_str(), t.as_str())?,
            }
        }
        if let Some(data) = &s.data {
            match data_member(s, data.as_bytes()) {
                DataMember::Json(raw) => map.serialize_entry("data", raw)?,
                DataMember::Text(text) => map.serialize_entry("data", text)?,
                DataMember::Base64(bytes) => {
                    map.serialize_entry("data_base64", &Base64Data(bytes))?;
                }
            }
        }
        map.end()
    }
}

/// How the data is written.
enum DataMember<'a> {
    /// `"data": <the JSON value>`, verbatim.
    Json(&'a RawValue),
    /// `"data": "<the text>"`.
    Text(&'a str),
    /// `"data_base64": "<base64>"`.
    Base64(&'a [u8]),
}

/// Bytes go as base64; text inline under a JSON or absent content type, as a
/// string otherwise. `build` guarantees text is UTF-8 and, under a JSON
/// content type, one JSON value without surrounding whitespace (so decoding
/// gives back the same bytes); the base64 fallbacks only keep that promise
/// should the invariant ever break.
fn data_member<'a>(s: &Signal, bytes: &'a [u8]) -> DataMember<'a> {
    if s.data_is_binary() {
        return DataMember::Base64(bytes);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return DataMember::Base64(bytes);
    };
    if s.datacontenttype().is_none_or(is_json_content_type) {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) if raw.get().len() == text.len() => DataMember::Json(raw),
            _ => DataMember::Base64(bytes),
        }
    } else {
        DataMember::Text(text)
    }
}

/// Bytes serialized as a standard base64 string, encoded in chunks straight
/// into the output (no intermediate `String`).
struct Base64Data<'a>(&'a [u8]);

impl Serialize for Base64Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &STANDARD))
    }
}

/// An upper-bound guess of the encoded size, so `to_json_vec` allocates once
/// in the common case.
fn encoded_len_estimate(s: &Signal) -> usize {
    let strings = s.source.len()
        + s.ty.len()
        + s.subject().map_or(0, str::len)
        + s.datacontenttype().map_or(0, str::len)
        + s.dataschema().map_or(0, str::len)
        + s.id.as_text().map_or(36, str::len);
    let extensions: usize = s
        .extension_slice()
        .iter()
        .map(|(n, v)| n.len() + 8 + v.as_str().map_or(11, str::len))
        .sum();
    let data = s.data().len().div_ceil(3) * 4;
    192 + strings + extensions + data
}

// ---------------------------------------------------------------- decoding

/// A JSON value classified by type, without keeping nested content.
enum Value<'de> {
    Str(Cow<'de, str>),
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float,
    Null,
    Array,
    Object,
}

impl Value<'_> {
    /// The JSON type, for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float => "a fractional or very large number",
            Value::Null => "null",
            Value::Array => "an array",
            Value::Object => "an object",
        }
    }
}

impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Value::Float)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Object)
    }
}

/// A JSON string, borrowed from the input unless it contains escapes.
struct Str<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

/// Whether a JSON value is `null`, skipping anything else without keeping it.
struct IsNull(bool);

impl<'de> de::Deserialize<'de> for IsNull {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IsNullVisitor;
        impl<'de> Visitor<'de> for IsNullVisitor {
            type Value = IsNull;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IsNull(true))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IsNull(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(IsNull(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(IsNull(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(IsNull(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(IsNull(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IsNull(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IsNull(false))
            }
        }
        d.deserialize_any(IsNullVisitor)
    }
}

/// The top-level JSON value: the object's members, or (as the error) what
/// the document is instead of an object.
type Document<'de> = Result<Members<'de>, &'static str>;

/// The members of the top-level object, classified but not yet checked.
#[derive(Default)]
struct Members<'de> {
    specversion: Option<Value<'de>>,
    id: Option<Value<'de>>,
    source: Option<Value<'de>>,
    ty: Option<Value<'de>>,
    subject: Option<Value<'de>>,
    time: Option<Value<'de>>,
    datacontenttype: Option<Value<'de>>,
    dataschema: Option<Value<'de>>,
    data_base64: Option<Value<'de>>,
    data: Option<&'de RawValue>,
    /// Extensions with a value, in document order; at most
    /// `max_extensions + 1` are kept (one over the limit is enough to report
    /// it), so hostile input with millions of members costs no memory beyond
    /// the input itself.
    extensions: Vec<(Cow<'de, str>, Value<'de>)>,
    /// How many extension members with a value there are in all. A `null`
    /// member is unset (CloudEvents JSON format, section 2.2): it is dropped
    /// and does not count toward `max_extensions`.
    extension_count: usize,
    /// Names of the `null` extension members, only for the duplicate check;
    /// at most `max_extensions` (or [`UNSET_KEPT_MIN`]) are kept, for the same
    /// reason as above. Further `null` members are skipped unchecked: they
    /// would be dropped anyway.
    unset: Vec<Cow<'de, str>>,
    /// The first known attribute seen twice.
    duplicate: Option<Cow<'de, str>>,
}

/// Reads the top-level value, keeping at most `max_extensions + 1` extensions.
struct DocumentSeed {
    max_extensions: usize,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed {
    type Value = Document<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed {
    type Value = Document<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudEvents JSON object")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = Members::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            let slot = match key.as_ref() {
                "specversion" => &mut m.specversion,
                "id" => &mut m.id,
                "source" => &mut m.source,
                "type" => &mut m.ty,
                "subject" => &mut m.subject,
                "time" => &mut m.time,
                "datacontenttype" => &mut m.datacontenttype,
                "dataschema" => &mut m.dataschema,
                "data_base64" => &mut m.data_base64,
                "data" => {
                    let raw: &'de RawValue = map.next_value()?;
                    if m.data.is_some() {
                        m.duplicate.get_or_insert(key);
                    } else {
                        m.data = Some(raw);
                    }
                    continue;
                }
                _ => {
                    // Kept only while under the bound; beyond it only whether
                    // the value is `null` is read.
                    if m.extensions.len() <= self.max_extensions {
                        let value: Value<'de> = map.next_value()?;
                        if !matches!(value, Value::Null) {
                            m.extension_count += 1;
                            m.extensions.push((key, value));
                            continue;
                        }
                    } else if !map.next_value::<IsNull>()?.0 {
                        m.extension_count += 1;
                        continue;
                    }
                    if m.unset.len() < self.max_extensions.max(UNSET_KEPT_MIN) {
                        m.unset.push(key);
                    }
                    continue;
                }
            };
            let value: Value<'de> = map.next_value()?;
            if slot.is_some() {
                m.duplicate.get_or_insert(key);
            } else {
                *slot = Some(value);
            }
        }
        Ok(Ok(m))
    }
}

/// An owned `Text` from a decoded string (no second copy when already owned).
fn text(s: Cow<'_, str>) -> Text {
    match s {
        Cow::Borrowed(s) => Text::copy_from(s),
        Cow::Owned(s) => Text::from(s),
    }
}

/// A required string attribute; `null` counts as absent.
fn required<'de>(name: &'static str, v: Option<Value<'de>>) -> Result<Cow<'de, str>, DecodeError> {
    optional(name, v)?.ok_or(DecodeError::MissingAttribute { name })
}

/// An optional string attribute; `null` counts as absent.
fn optional<'de>(
    name: &'static str,
    v: Option<Value<'de>>,
) -> Result<Option<Cow<'de, str>>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => Err(DecodeError::WrongType {
            attribute: Text::from_static(name),
            expected: "a string",
            found: other.kind(),
        }),
    }
}

impl<'de> Members<'de> {
    /// Checks the members' presence and types, converts them, and validates
    /// the result like `SignalBuilder::build`.
    fn into_signal(self, input: &'de [u8], limits: &Limits) -> Result<Signal, DecodeError> {
        if let Some(name) = self.duplicate {
            return Err(DecodeError::DuplicateAttribute { name: text(name) });
        }
        let max = limits.max_extensions();
        if self.extension_count > max {
            // `extensions` holds `max + 1` entries: the last is the first over the limit.
            let name = self
                .extensions
                .last()
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            let rule = Rule::TooManyExtensions {
                count: self.extension_count,
                max,
            };
            let error = SignalError::new(Attribute::Extension(text(name)), rule, None);
            return Err(DecodeError::Invalid(error));
        }
        let mut extensions = self.extensions;
        extensions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut unset = self.unset;
        unset.sort_unstable();
        let set_twice = extensions.windows(2).find_map(|pair| match pair {
            [(a, _), (b, _)] if a == b => Some(a),
            _ => None,
        });
        let unset_twice = unset.windows(2).find_map(|pair| match pair {
            [a, b] if a == b => Some(a),
            _ => None,
        });
        let set_and_unset = || {
            unset
                .iter()
                .find(|name| extensions.binary_search_by(|(n, _)| n.cmp(name)).is_ok())
        };
        if let Some(name) = set_twice.or(unset_twice).or_else(set_and_unset) {
            return Err(DecodeError::DuplicateAttribute {
                name: text(name.clone()),
            });
        }

        let specversion = required("specversion", self.specversion)?;
        if specversion != Signal::SPECVERSION {
            return Err(DecodeError::UnsupportedSpecVersion {
                found: text(specversion),
            });
        }
        let id = required("id", self.id)?;
        let source = required("source", self.source)?;
        let ty = required("type", self.ty)?;
        let subject = optional("subject", self.subject)?;
        let time = optional("time", self.time)?;
        let datacontenttype = optional("datacontenttype", self.datacontenttype)?;
        let dataschema = optional("dataschema", self.dataschema)?;
        let data_base64 = optional("data_base64", self.data_base64)?;
        if self.data.is_some() && data_base64.is_some() {
            return Err(DecodeError::DataAndDataBase64);
        }

        let time = match time {
            None => None,
            Some(t) => match timestamp::parse(&t) {
                Ok(time) => Some(time),
                Err(message) => {
                    return Err(DecodeError::InvalidTime {
                        value: text(t),
                        message: Text::from(message),
                    });
                }
            },
        };
        let data = match (data_base64, self.data) {
            (Some(b64), _) => match BASE64_INPUT.decode(b64.as_bytes()) {
                Ok(bytes) => Some(Form::Binary(Payload::from(bytes))),
                Err(e) => {
                    return Err(DecodeError::InvalidBase64 {
                        message: Text::from(e.to_string()),
                    });
                }
            },
            (None, Some(raw)) => data_form(raw, datacontenttype.as_deref(), input)?,
            (None, None) => None,
        };

        let mut converted = Vec::with_capacity(extensions.len());
        for (name, value) in extensions {
            let value = match value {
                Value::Bool(b) => ExtensionValue::Bool(b),
                Value::Str(s) => ExtensionValue::String(text(s)),
                Value::Int(i) => integer(&name, i32::try_from(i).ok())?,
                Value::UInt(u) => integer(&name, i32::try_from(u).ok())?,
                other => {
                    return Err(DecodeError::WrongType {
                        attribute: text(name),
                        expected: EXTENSION_TYPES,
                        found: other.kind(),
                    });
                }
            };
            converted.push((text(name), value));
        }

        SignalBuilder {
            id: Some(SignalId::from_text(text(id))),
            source: text(source),
            ty: text(ty),
            subject: subject.map(text),
            time,
            datacontenttype: datacontenttype.map(text),
            dataschema: dataschema.map(text),
            extensions: converted,
            data,
            data_error: None,
            limits: *limits,
        }
        .build()
        .map_err(DecodeError::Invalid)
    }
}

/// An extension integer, if it fits CloudEvents' 32-bit Integer.
fn integer(name: &str, value: Option<i32>) -> Result<ExtensionValue, DecodeError> {
    value
        .map(ExtensionValue::Integer)
        .ok_or_else(|| DecodeError::WrongType {
            attribute: Text::copy_from(name),
            expected: EXTENSION_TYPES,
            found: "an integer outside the 32-bit signed range",
        })
}

/// The data of a `data` member: the JSON text of the value under a JSON or
/// absent content type; otherwise a string's content, no data for `null`,
/// and an error for any other value (CloudEvents JSON format 3.1.2 allows
/// refusing it, and reading it as its JSON text would not survive a round
/// trip: it would come back as a string).
fn data_form(raw: &RawValue, ct: Option<&str>, input: &[u8]) -> Result<Option<Form>, DecodeError> {
    let json = raw.get();
    if ct.is_none_or(is_json_content_type) {
        return Ok(Some(Form::Json(Payload::copy_from_slice(json.as_bytes()))));
    }
    let found = match json.as_bytes().first() {
        Some(b'"') => None,
        Some(b'n') => return Ok(None),
        Some(b'{') => Some("an object"),
        Some(b'[') => Some("an array"),
        Some(b't' | b'f') => Some("a boolean"),
        _ => Some("a number"),
    };
    if let Some(found) = found {
        return Err(DecodeError::WrongType {
            attribute: Text::from_static("data"),
            expected: "a string (its datacontenttype is not JSON)",
            found,
        });
    }
    match serde_json::from_str::<Str<'_>>(json) {
        Ok(Str(Cow::Borrowed(s))) => Ok(Some(Form::Text(Payload::copy_from_slice(s.as_bytes())))),
        Ok(Str(Cow::Owned(s))) => Ok(Some(Form::Text(Payload::from(s)))),
        // Only a `\uD800`-style lone surrogate escape gets here: the parser
        // already checked the rest. Report it where the `data` value starts.
        Err(e) => {
            let offset = (json.as_ptr() as usize).saturating_sub(input.as_ptr() as usize);
            let before = input.get(..offset).unwrap_or_default();
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = offset - line_start + e.column();
            Err(DecodeError::Syntax {
                line,
                column,
                message: Text::from(format!(
                    "the `data` string cannot be decoded as text: {}",
                    error_message(&e)
                )),
            })
        }
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

fn syntax_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Syntax {
        line: e.line(),
        column: e.column(),
        message: Text::from(error_message(&e)),
    }
}

#[cfg(test)]
mod tests;
