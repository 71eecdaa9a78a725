//! [`SignalError`] (a signal breaks a rule) and [`DecodeError`] (CloudEvents JSON
//! input cannot become a signal).
//!
//! Both are plain data: a caller can match on *which* attribute broke *which*
//! rule (to map it to an HTTP 400 body, a metric label, a retry decision) and
//! the `Display` text says what to change without reading this crate's code.

use super::Text;
use std::error::Error;
use std::fmt;

/// The signal attribute an error is about, named as in CloudEvents.
///
/// Lets a caller point at the offending field (`attribute().name()`) instead of
/// parsing a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// `id`.
    Id,
    /// `source`.
    Source,
    /// `type`.
    Type,
    /// `subject`.
    Subject,
    /// `time`.
    Time,
    /// `datacontenttype`.
    DataContentType,
    /// `dataschema`.
    DataSchema,
    /// The payload (`data` / `data_base64` in JSON).
    Data,
    /// An extension attribute, by name (the name as given, even when invalid).
    Extension(Text),
}

impl Attribute {
    /// The CloudEvents attribute name (`"datacontenttype"`, an extension's own
    /// name, ...), so errors can be reported in the vocabulary of the wire format.
    pub fn name(&self) -> &str {
        match self {
            Attribute::Id => "id",
            Attribute::Source => "source",
            Attribute::Type => "type",
            Attribute::Subject => "subject",
            Attribute::Time => "time",
            Attribute::DataContentType => "datacontenttype",
            Attribute::DataSchema => "dataschema",
            Attribute::Data => "data",
            Attribute::Extension(name) => name.as_str(),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rule an attribute broke, with the numbers needed to fix it.
///
/// Byte offsets (`index` of [`InvalidCharacter`](Rule::InvalidCharacter) and
/// [`InvalidPercentEncoding`](Rule::InvalidPercentEncoding)) count from 0 in
/// the attribute's UTF-8 text; a segment `index` counts segments from 0 (the
/// message says "segment 1" for index 0).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The value is the empty string.
    Empty,
    /// The value is longer than [`Limits::max_attribute_len`](super::Limits::max_attribute_len).
    TooLong {
        /// Length of the value in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A `type` segment (between dots) is empty: `"a..b"`, `".a"`, `"a."`.
    EmptySegment {
        /// Which segment, counting from 0.
        index: usize,
    },
    /// A character not allowed in this attribute.
    InvalidCharacter {
        /// Byte offset of the character.
        index: usize,
        /// The character.
        found: char,
    },
    /// A `type` has more dot-separated segments than allowed.
    TooManySegments {
        /// Number of segments.
        count: usize,
        /// The maximum (64).
        max: usize,
    },
    /// A `%` that does not start a `%XX` escape (two hex digits).
    InvalidPercentEncoding {
        /// Byte offset of the `%`.
        index: usize,
    },
    /// `dataschema` has no `scheme:` prefix.
    NotAbsoluteUri,
    /// `datacontenttype` is not a `type/subtype[;param=value]*` media type.
    InvalidMediaType,
    /// An extension uses the name of a CloudEvents context attribute.
    ReservedName,
    /// An extension name is not 1 to 20 characters of `[a-z0-9]`.
    InvalidName,
    /// More extensions than [`Limits::max_extensions`](super::Limits::max_extensions).
    /// The error's attribute is the first extension over the limit (in name
    /// order when building, in document order when decoding).
    TooManyExtensions {
        /// Number of extensions.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is larger than [`Limits::max_payload`](super::Limits::max_payload).
    PayloadTooLarge {
        /// Payload size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// [`SignalBuilder::json_data`](super::SignalBuilder::json_data) could not
    /// serialize the value.
    Serialization {
        /// serde_json's explanation.
        message: Text,
    },
    /// `time` lies outside the years 0000 to 9999, which RFC 3339 cannot express.
    TimeOutOfRange,
    /// Text data under a JSON `datacontenttype` is not exactly one JSON value,
    /// so CloudEvents JSON could not write it inline.
    NotJson {
        /// serde_json's explanation.
        message: Text,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Empty => f.write_str("it is empty"),
            Rule::TooLong { len, max } => {
                write!(f, "it is {len} bytes long, over the limit of {max} bytes")
            }
            Rule::EmptySegment { index } => write!(f, "segment {} is empty", index + 1),
            Rule::InvalidCharacter { index, found } => {
                write!(f, "character {found:?} at byte {index} is not allowed")
            }
            Rule::TooManySegments { count, max } => {
                write!(f, "it has {count} segments, more than the maximum of {max}")
            }
            Rule::InvalidPercentEncoding { index } => write!(
                f,
                "the '%' at byte {index} is not followed by two hexadecimal digits"
            ),
            Rule::NotAbsoluteUri => {
                f.write_str("it is not an absolute URI (it lacks a `scheme:` prefix)")
            }
            Rule::InvalidMediaType => f.write_str("it is not a media type"),
            Rule::ReservedName => {
                f.write_str("the name is reserved for a CloudEvents context attribute")
            }
            Rule::InvalidName => f.write_str("the name is not a valid extension name"),
            Rule::TooManyExtensions { count, max } => write!(
                f,
                "the signal has {count} extensions, more than the limit of {max}"
            ),
            Rule::PayloadTooLarge { size, limit } => write!(
                f,
                "the payload is {size} bytes, over the limit of {limit} bytes"
            ),
            Rule::Serialization { message } => {
                write!(f, "the value could not be serialized to JSON: {message}")
            }
            Rule::TimeOutOfRange => {
                f.write_str("it lies outside the years 0000 to 9999 that RFC 3339 can express")
            }
            Rule::NotJson { message } => write!(
                f,
                "the text is not one JSON value, as the JSON datacontenttype says: {message}"
            ),
        }
    }
}

/// A signal attribute breaks a rule: returned by
/// [`SignalBuilder::build`](super::SignalBuilder::build) and (wrapped in
/// [`DecodeError::Invalid`]) by decoding.
///
/// ```
/// use agentry::Signal;
/// use agentry::signal::{Attribute, Rule};
/// let err = Signal::builder("order..created", "/shop").build().unwrap_err();
/// assert_eq!(err.attribute(), &Attribute::Type);
/// assert_eq!(err.rule(), &Rule::EmptySegment { index: 1 });
/// assert!(err.to_string().starts_with("invalid signal `type` \"order..created\": segment 2 is empty"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalError {
    attribute: Attribute,
    rule: Rule,
    value: Option<Text>,
}

impl SignalError {
    pub(crate) fn new(attribute: Attribute, rule: Rule, value: Option<Text>) -> Self {
        SignalError {
            attribute,
            rule,
            value,
        }
    }

    /// Which attribute is wrong, to report or match on it.
    pub fn attribute(&self) -> &Attribute {
        &self.attribute
    }

    /// Which rule it breaks, with the offending position or sizes.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The offending string value, when the attribute has one (not for `time`,
    /// `data`, or an extension whose *name* is the problem), so it can be
    /// logged or echoed back to whoever sent it.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// A sentence on what a valid value looks like, or how to lift a limit.
    fn hint(&self) -> Option<&'static str> {
        match &self.rule {
            Rule::TooLong { .. } => {
                return Some("raise Limits::max_attribute_len if such long values are expected");
            }
            Rule::TooManyExtensions { .. } => {
                return Some("raise Limits::max_extensions or carry the extra values in the data");
            }
            Rule::PayloadTooLarge { .. } => {
                return Some("raise Limits::max_payload or send large data out of band");
            }
            Rule::Serialization { .. } => {
                return Some(
                    "check the value's Serialize implementation; JSON object keys must be strings",
                );
            }
            Rule::NotJson { .. } => {
                return Some(
                    "send valid JSON (e.g. with json_data), bytes (Data::binary, written as \
                     data_base64), or text under a non-JSON content type such as text/plain",
                );
            }
            Rule::TimeOutOfRange => {
                return Some(
                    "use a time from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z",
                );
            }
            Rule::ReservedName | Rule::InvalidName => {
                return Some(
                    "an extension name is 1 to 20 characters of [a-z0-9] and not one of \
                     specversion, id, source, type, datacontenttype, dataschema, subject, \
                     time, data, data_base64",
                );
            }
            _ => {}
        }
        Some(match &self.attribute {
            Attribute::Type => {
                "a type is one or more segments of [A-Za-z0-9_-] separated by '.' \
                 (at most 64 segments), e.g. \"order.created\""
            }
            Attribute::Source => {
                "a source is a URI-reference such as \"/shop/checkout\" or \
                 \"https://example.com/shop\": no whitespace, control characters, Unicode \
                 noncharacters or any of <>\"{}|\\^`, and every '%' starts a %XX escape"
            }
            Attribute::Id => {
                "an id is non-empty text without control characters or Unicode noncharacters"
            }
            Attribute::Subject => {
                "a subject is non-empty text without control characters or Unicode \
                 noncharacters"
            }
            Attribute::DataContentType => {
                "a content type is an RFC 2046 media type such as \"application/json\" or \
                 \"text/plain; charset=utf-8\""
            }
            Attribute::DataSchema => {
                "a data schema is an absolute URI such as \
                 \"https://example.com/schemas/order.json\", with the same character rules \
                 as a source"
            }
            Attribute::Extension(_) => {
                "an extension string value is text without control characters or Unicode \
                 noncharacters"
            }
            Attribute::Time | Attribute::Data => return None,
        })
    }
}

/// Writes `s` escaped like a Rust string, cut after `max` characters.
fn write_clipped(f: &mut fmt::Formatter<'_>, s: &str, max: usize) -> fmt::Result {
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        write!(f, "{}", c.escape_debug())?;
    }
    if chars.next().is_some() {
        f.write_str("…")?;
    }
    Ok(())
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid signal ")?;
        match &self.attribute {
            Attribute::Extension(name) => {
                f.write_str("extension `")?;
                write_clipped(f, name, 40)?;
                f.write_str("`")?;
            }
            other => write!(f, "`{}`", other.name())?,
        }
        if let Some(value) = &self.value {
            f.write_str(" \"")?;
            write_clipped(f, value, 64)?;
            f.write_str("\"")?;
        }
        write!(f, ": {}", self.rule)?;
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl Error for SignalError {}

/// Why CloudEvents JSON input could not be decoded into a [`Signal`](super::Signal).
///
/// Decoding reads untrusted bytes, so every way they can be wrong is a value
/// here, never a panic. Variants that name an attribute carry its JSON member
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than [`Limits::max_json_len`](super::Limits::max_json_len);
    /// it was rejected before parsing.
    InputTooLarge {
        /// Input length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The input is not well-formed JSON (including invalid UTF-8, trailing
    /// bytes, and numbers out of range).
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (byte) of the error.
        column: usize,
        /// What the JSON parser expected.
        message: Text,
    },
    /// The JSON document is not an object.
    NotAnObject {
        /// What it is instead (`"an array"`, `"a string"`, ...).
        found: &'static str,
    },
    /// A required attribute is absent (or `null`).
    MissingAttribute {
        /// Its JSON member name.
        name: &'static str,
    },
    /// An attribute has the wrong JSON type.
    WrongType {
        /// Its JSON member name.
        attribute: Text,
        /// The JSON type(s) it may have.
        expected: &'static str,
        /// The JSON type it has.
        found: &'static str,
    },
    /// `specversion` is not `"1.0"`.
    UnsupportedSpecVersion {
        /// The version found.
        found: Text,
    },
    /// A member name appears twice in the object.
    DuplicateAttribute {
        /// The repeated name.
        name: Text,
    },
    /// Both `data` and `data_base64` are present.
    DataAndDataBase64,
    /// `data_base64` is not standard base64.
    InvalidBase64 {
        /// The base64 decoder's explanation.
        message: Text,
    },
    /// `time` is not an RFC 3339 timestamp.
    InvalidTime {
        /// The value found.
        value: Text,
        /// The parser's explanation.
        message: Text,
    },
    /// The JSON is a well-formed event but an attribute breaks a signal rule
    /// (the same rules as [`SignalBuilder::build`](super::SignalBuilder::build)).
    Invalid(SignalError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InputTooLarge { len, limit } => write!(
                f,
                "CloudEvents JSON input is {len} bytes, over the limit of {limit} bytes; \
                 raise Limits::max_json_len (see Signal::from_json_with) if such input is expected"
            ),
            DecodeError::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "CloudEvents JSON input is not valid JSON: {message} at line {line}, column {column}"
            ),
            DecodeError::NotAnObject { found } => write!(
                f,
                "CloudEvents JSON input must be a JSON object holding the event's attributes, \
                 found {found}"
            ),
            DecodeError::MissingAttribute { name } => write!(
                f,
                "CloudEvents JSON input lacks the required attribute `{name}` \
                 (every event has specversion, id, source and type)"
            ),
            DecodeError::WrongType {
                attribute,
                expected,
                found,
            } => {
                f.write_str("CloudEvents attribute `")?;
                write_clipped(f, attribute, 40)?;
                write!(f, "` must be {expected}, found {found}")
            }
            DecodeError::UnsupportedSpecVersion { found } => {
                f.write_str("unsupported CloudEvents specversion \"")?;
                write_clipped(f, found, 16)?;
                f.write_str("\"; only \"1.0\" is supported")
            }
            DecodeError::DuplicateAttribute { name } => {
                f.write_str("CloudEvents attribute `")?;
                write_clipped(f, name, 40)?;
                f.write_str("` appears more than once; each member name must be unique")
            }
            DecodeError::DataAndDataBase64 => f.write_str(
                "CloudEvents JSON input has both `data` and `data_base64`; \
                 an event carries at most one of them",
            ),
            DecodeError::InvalidBase64 { message } => write!(
                f,
                "`data_base64` is not standard base64 (RFC 4648 section 4, \
                 alphabet A-Z a-z 0-9 + /): {message}"
            ),
            DecodeError::InvalidTime { value, message } => {
                f.write_str("`time` \"")?;
                write_clipped(f, value, 64)?;
                write!(
                    f,
                    "\" is not an RFC 3339 timestamp such as \"2018-04-05T17:31:00Z\": {message}"
                )
            }
            DecodeError::Invalid(e) => write!(f, "decoded event is not a valid signal: {e}"),
        }
    }
}

impl Error for DecodeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            DecodeError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SignalError> for DecodeError {
    fn from(e: SignalError) -> Self {
        DecodeError::Invalid(e)
    }
}
