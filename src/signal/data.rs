//! [`Data`]: a payload together with its kind (text or bytes), which decides
//! its CloudEvents JSON form.

use super::Payload;
use bytes::Bytes;

/// A signal's data as handed to [`SignalBuilder::data`](super::SignalBuilder::data)
/// or [`Signal::new`](super::Signal::new): the bytes, and whether they are
/// text or binary.
///
/// The kind decides how the data is written in CloudEvents JSON (see the
/// [module docs](super#data-in-cloudevents-json)): text (`&str`, `String`)
/// as a JSON string, or inline when the content type is JSON; bytes
/// (`Vec<u8>`, `&[u8]`, `bytes::Bytes`, [`Payload`]) as `data_base64`.
/// Building never changes the bytes, except that JSON text loses
/// surrounding whitespace.
///
/// ```
/// use agentry::signal::Data;
/// let text = agentry::Signal::new("t", "/s", "1.50")?;
/// assert!(!text.data_is_binary());
/// let bytes = agentry::Signal::new("t", "/s", Data::binary("1.50"))?;
/// assert!(bytes.data_is_binary());
/// assert_eq!(text.data(), bytes.data());
/// # Ok::<(), agentry::SignalError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data(pub(super) Form);

/// What the builder knows about its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// UTF-8 text from a `str`: a JSON string under a non-JSON content type,
    /// checked and written inline under a JSON one.
    Text(Payload),
    /// Exactly one JSON value without surrounding whitespace (from
    /// `json_data`, or decoded from a `data` member): written inline under a
    /// JSON or absent content type, as a JSON string under any other.
    Json(Payload),
    /// Bytes: always `data_base64`.
    Binary(Payload),
}

impl Form {
    pub(super) fn payload(&self) -> &Payload {
        match self {
            Form::Text(p) | Form::Json(p) | Form::Binary(p) => p,
        }
    }
}

impl Data {
    /// Bytes, written as `data_base64` whatever they contain (even text).
    pub fn binary(bytes: impl Into<Payload>) -> Data {
        Data(Form::Binary(bytes.into()))
    }

    /// The bytes.
    pub fn payload(&self) -> &Payload {
        self.0.payload()
    }

    /// Whether the data is bytes rather than text.
    pub fn is_binary(&self) -> bool {
        matches!(self.0, Form::Binary(_))
    }
}

impl From<&'static str> for Data {
    fn from(s: &'static str) -> Self {
        Data(Form::Text(Payload::from(s)))
    }
}

impl From<String> for Data {
    fn from(s: String) -> Self {
        Data(Form::Text(Payload::from(s)))
    }
}

impl From<Payload> for Data {
    fn from(p: Payload) -> Self {
        Data(Form::Binary(p))
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Self {
        Data::binary(v)
    }
}

impl From<&'static [u8]> for Data {
    fn from(s: &'static [u8]) -> Self {
        Data::binary(s)
    }
}

impl From<Bytes> for Data {
    fn from(b: Bytes) -> Self {
        Data::binary(b)
    }
}
