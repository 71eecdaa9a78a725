//! Signals: immutable CloudEvents 1.0 envelopes, how to build them, and their
//! CloudEvents JSON (structured mode) form.
//!
//! A [`Signal`] is validated once, when built or decoded, and is immutable
//! afterwards, so every agent that receives a clone can trust its attributes
//! without re-checking. It is small (it is queued in mailboxes) and cheap to
//! clone (strings are shared [`Text`], extensions sit behind one `Arc`).
//!
//! ```
//! use agentry::{Signal, ExtensionValue};
//! let signal = Signal::builder("order.created", "/shop/checkout")
//!     .subject("order-42")
//!     .extension("tenant", "acme")
//!     .json_data(&[1, 2, 3])
//!     .build()?;
//! assert_eq!(signal.ty(), "order.created");
//! assert_eq!(signal.datacontenttype(), Some("application/json"));
//! assert_eq!(signal.extension("tenant"), Some(&ExtensionValue::from("acme")));
//!
//! let json = signal.to_json();
//! assert_eq!(Signal::from_json(json.as_bytes())?, signal);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Data in CloudEvents JSON
//!
//! A signal carries no data, or data that is text or bytes ([`Data`]):
//! `&str`/`String` and [`SignalBuilder::json_data`] give text, anything else
//! bytes. Empty data is still data ([`Signal::has_data`]). One rule decides
//! the JSON form, and decoding it gives back the same signal, so
//! decode → encode returns the same form (CloudEvents JSON format 3.1):
//!
//! | data | `datacontenttype` | written as |
//! |------|-------------------|------------|
//! | none | any | no `data` member |
//! | bytes | any | `"data_base64": "..."` |
//! | text | JSON (`*/json`, `*/*+json`, parameters ignored) or absent | `"data": <the JSON value>` |
//! | text | any other | `"data": "<the text>"` |
//!
//! - Text without a content type gets [`TEXT_PLAIN_UTF8`] at `build()`, so
//!   `Signal::new(ty, source, "1.50")` goes out as the string `"1.50"`, not
//!   as a number another reader would turn into `1.5`.
//! - Text under a JSON content type must be one JSON value, else `build()`
//!   refuses it ([`Rule::NotJson`]): the format requires JSON there, and
//!   writing anything else is lossy. Surrounding whitespace is dropped.
//!   Bytes under a JSON type are fine: they go as `data_base64`.
//! - Decoding: `data_base64` gives bytes; `data` gives text: under a JSON or
//!   absent content type the exact JSON text of the value (a string keeps its
//!   quotes, `null` is the 4-byte JSON value, not "no data"); under any other,
//!   a string's UTF-8 content, `null` no data, and other values are refused.
//!
//! ```
//! use agentry::Signal;
//! let text = Signal::new("price.quoted", "/shop", "1.50")?;
//! assert!(text.to_json().ends_with(r#""datacontenttype":"text/plain; charset=utf-8","data":"1.50"}"#));
//! let json = Signal::json("price.quoted", "/shop", &1.5)?;
//! assert!(json.to_json().ends_with(r#""data":1.5}"#));
//! let bytes = Signal::new("price.quoted", "/shop", vec![1, 2])?;
//! assert!(bytes.to_json().ends_with(r#""data_base64":"AQI="}"#));
//! let empty = Signal::new("price.quoted", "/shop", "")?;
//! assert!(empty.has_data() && empty.to_json().ends_with(r#""data":""}"#));
//! # Ok::<(), agentry::SignalError>(())
//! ```
//!
//! # Deliberate restrictions
//!
//! Two rules are stricter than CloudEvents 1.0, so a conformant event can be
//! refused, building or decoding, with a [`SignalError`] naming the attribute
//! and the [`Rule`]:
//!
//! - `type` must be 1 to 64 dot-separated segments of `[A-Za-z0-9_-]+`
//!   (CloudEvents allows any non-empty string): routing patterns match
//!   segments, so a type must have them. A free-form type such as
//!   `"order created"` or `"a/b"` is refused with
//!   [`Rule::InvalidCharacter`], `"a..b"` with [`Rule::EmptySegment`].
//! - An extension name must be at most 20 characters (CloudEvents says it
//!   SHOULD NOT be longer; here it must not): a longer name is refused with
//!   [`Rule::InvalidName`].
//!
//! ```
//! use agentry::Signal;
//! use agentry::signal::{Attribute, Rule};
//! let free_form = br#"{"specversion":"1.0","id":"1","source":"/s","type":"order created"}"#;
//! let err = Signal::from_json(free_form).unwrap_err();
//! assert!(err.to_string().contains("segments"), "{err}");
//! let long_name = Signal::builder("order.created", "/shop")
//!     .extension("abcdefghijklmnopqrstu", 1)
//!     .build()
//!     .unwrap_err();
//! assert_eq!(long_name.rule(), &Rule::InvalidName);
//! assert_eq!(long_name.attribute(), &Attribute::Extension("abcdefghijklmnopqrstu".into()));
//! ```

mod data;
mod error;
mod extension;
mod id;
mod json;
mod limits;
mod payload;
mod text;
mod timestamp;
mod validate;

pub use data::Data;
pub use error::{Attribute, DecodeError, Rule, SignalError};
pub use extension::ExtensionValue;
pub use id::SignalId;
pub use limits::Limits;
pub use payload::Payload;
pub use text::Text;

use data::Form;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use validate::is_json_content_type;

impl crate::imp::observe::SignalView for Signal {
    fn id(&self) -> &dyn std::fmt::Display {
        &self.id
    }
    fn ty(&self) -> &str {
        &self.ty
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn traceparent(&self) -> Option<&str> {
        self.extension("traceparent")
            .and_then(ExtensionValue::as_str)
    }
}

/// The content type text data gets when none is set.
pub const TEXT_PLAIN_UTF8: &str = "text/plain; charset=utf-8";

/// A CloudEvents 1.0 event: the unit agents send, route and receive.
///
/// Built with [`Signal::builder`] (or [`Signal::new`]), or decoded with
/// [`Signal::from_json`]; both apply the same validation (see
/// [`SignalBuilder::build`]), and nothing can change a signal afterwards.
///
/// Size: 80 bytes plus the payload handle (104 bytes, or 112 with
/// `zero-copy`): the id, type and source inline, and one pointer to a shared
/// side allocation holding the optional attributes (`subject`, `time`,
/// `datacontenttype`, `dataschema`, extensions). A signal with none of them
/// builds without allocating; setting any costs one allocation at build, and
/// clones share it.
///
/// Equality compares every attribute, the id included, and the payload bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    id: SignalId,
    source: Text,
    ty: Text,
    /// `None` when the signal has none of the optional attributes (never an
    /// empty `Extras`, so equality is structural).
    extras: Option<Arc<Extras>>,
    /// `None` when the signal carries no data (distinct from empty data).
    data: Option<Payload>,
}

/// The optional attributes, kept out of line so `Signal` stays small: a
/// queued signal costs its envelope, and most signals are type, source, id
/// and data only.
#[derive(Debug, PartialEq)]
struct Extras {
    subject: Option<Text>,
    datacontenttype: Option<Text>,
    time: Option<SystemTime>,
    dataschema: Option<Text>,
    /// Sorted by name, names unique.
    extensions: Box<[(Text, ExtensionValue)]>,
    /// The data is text (written as `data`), not bytes (`data_base64`).
    /// Kept here, not in `Signal`, so the flag costs a bare signal nothing;
    /// text data always comes with a content type or from decoding.
    text_data: bool,
}

/// The extras of text data with nothing but the default content type (what
/// `Signal::new(ty, source, "text")` makes), shared so such a signal costs
/// no allocation of its own.
fn text_plain_extras() -> Arc<Extras> {
    static SHARED: OnceLock<Arc<Extras>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            Arc::new(Extras {
                subject: None,
                datacontenttype: Some(Text::from_static(TEXT_PLAIN_UTF8)),
                time: None,
                dataschema: None,
                extensions: Box::new([]),
                text_data: true,
            })
        })
        .clone()
}

/// What `Signal::data` returns for a signal without data.
fn no_payload() -> &'static Payload {
    static EMPTY: OnceLock<Payload> = OnceLock::new();
    EMPTY.get_or_init(Payload::new)
}

impl Signal {
    /// The CloudEvents version this crate reads and writes.
    pub const SPECVERSION: &str = "1.0";

    /// Starts a signal of CloudEvents `type` `ty` from `source`.
    ///
    /// Literals are kept as `&'static str`, so building from them allocates
    /// nothing.
    pub fn builder(ty: impl Into<Text>, source: impl Into<Text>) -> SignalBuilder {
        SignalBuilder {
            id: None,
            source: source.into(),
            ty: ty.into(),
            subject: None,
            time: None,
            datacontenttype: None,
            dataschema: None,
            extensions: Vec::new(),
            data: None,
            data_error: None,
            limits: Limits::default(),
        }
    }

    /// A signal with just a type, a source and data (a fresh UUIDv7 id), for
    /// the common case; validated with default [`Limits`]. Text data (`&str`,
    /// `String`) gets the content type [`TEXT_PLAIN_UTF8`]; bytes get none.
    ///
    /// ```
    /// let s = agentry::Signal::new("order.created", "/shop", "hello")?;
    /// assert_eq!(s.data().as_bytes(), b"hello");
    /// assert_eq!(s.datacontenttype(), Some("text/plain; charset=utf-8"));
    /// # Ok::<(), agentry::SignalError>(())
    /// ```
    pub fn new(
        ty: impl Into<Text>,
        source: impl Into<Text>,
        data: impl Into<Data>,
    ) -> Result<Signal, SignalError> {
        Signal::builder(ty, source).data(data).build()
    }

    /// A signal whose data is `value` serialized as JSON, with content type
    /// `application/json` (see [`SignalBuilder::json_data`]).
    ///
    /// ```
    /// let s = agentry::Signal::json("order.created", "/shop", &[1, 2])?;
    /// assert_eq!(s.data().as_bytes(), b"[1,2]");
    /// assert_eq!(s.datacontenttype(), Some("application/json"));
    /// # Ok::<(), agentry::SignalError>(())
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(
        ty: impl Into<Text>,
        source: impl Into<Text>,
        value: &T,
    ) -> Result<Signal, SignalError> {
        Signal::builder(ty, source).json_data(value).build()
    }

    /// A copy with a fresh id: each firing of an interval is a new event
    /// (a receiver that deduplicates by id must see each one).
    pub(crate) fn renewed(&self) -> Signal {
        let mut copy = self.clone();
        copy.id = SignalId::now_v7();
        copy
    }

    /// The event id; with `source` it identifies the event (for deduplication).
    pub fn id(&self) -> &SignalId {
        &self.id
    }

    /// The CloudEvents `source`: who emitted the event (a URI-reference).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `source` as a shared [`Text`], to reuse it without copying.
    pub fn source_text(&self) -> &Text {
        &self.source
    }

    /// The CloudEvents `type` (`ty` because `type` is a keyword): what
    /// happened, and what routing patterns match on.
    pub fn ty(&self) -> &str {
        &self.ty
    }

    /// The `type` as a shared [`Text`], to reuse it without copying.
    pub fn type_text(&self) -> &Text {
        &self.ty
    }

    /// The `subject`: what the event is about, within the source.
    pub fn subject(&self) -> Option<&str> {
        self.extras.as_ref()?.subject.as_deref()
    }

    /// The `time` the event happened, if the producer set it.
    pub fn time(&self) -> Option<SystemTime> {
        self.extras.as_ref()?.time
    }

    /// The `datacontenttype`: how to read [`data`](Signal::data).
    pub fn datacontenttype(&self) -> Option<&str> {
        self.extras.as_ref()?.datacontenttype.as_deref()
    }

    /// The `dataschema`: an absolute URI of the schema the data follows.
    pub fn dataschema(&self) -> Option<&str> {
        self.extras.as_ref()?.dataschema.as_deref()
    }

    /// The value of extension `name`, if present.
    pub fn extension(&self, name: &str) -> Option<&ExtensionValue> {
        let extensions = &self.extras.as_ref()?.extensions;
        let i = extensions
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        extensions.get(i).map(|(_, v)| v)
    }

    /// Every extension, sorted by name (so iteration order is deterministic).
    pub fn extensions(&self) -> impl Iterator<Item = (&str, &ExtensionValue)> {
        self.extension_slice().iter().map(|(n, v)| (n.as_str(), v))
    }

    fn extension_slice(&self) -> &[(Text, ExtensionValue)] {
        match &self.extras {
            Some(extras) => &extras.extensions,
            None => &[],
        }
    }

    /// The payload; empty when the signal carries no data or empty data
    /// ([`has_data`](Signal::has_data) tells which).
    pub fn data(&self) -> &Payload {
        self.data.as_ref().unwrap_or_else(|| no_payload())
    }

    /// Whether the signal carries data, even empty data: CloudEvents JSON
    /// writes `"data": ""` for empty text and no `data` member for none.
    pub fn has_data(&self) -> bool {
        self.data.is_some()
    }

    /// Whether the data is bytes (written as `data_base64`) rather than text
    /// or JSON (written as `data`); false without data. See
    /// [`Data`].
    pub fn data_is_binary(&self) -> bool {
        self.data.is_some() && !self.extras.as_ref().is_some_and(|e| e.text_data)
    }

    /// Takes the payload out, for a consumer that owns the signal (no copy).
    pub fn into_data(self) -> Payload {
        self.data.unwrap_or_default()
    }

    /// The data with its kind, as the builder takes it back.
    fn data_form(&self) -> Option<Form> {
        let payload = self.data.clone()?;
        let extras = self.extras.as_deref();
        Some(match extras {
            Some(e) if e.text_data => {
                if e.datacontenttype
                    .as_deref()
                    .is_none_or(is_json_content_type)
                {
                    Form::Json(payload)
                } else {
                    Form::Text(payload)
                }
            }
            _ => Form::Binary(payload),
        })
    }

    /// A builder holding a copy of every attribute and the data, except the
    /// id: `build()` gives the copy a fresh UUIDv7 unless
    /// [`SignalBuilder::id`] / [`SignalBuilder::signal_id`] sets one. Limits
    /// start at their defaults.
    ///
    /// This is how to derive a new event from an old one (a copy is a
    /// different event, so it needs a different id).
    ///
    /// ```
    /// let a = agentry::Signal::new("order.created", "/shop", "x")?;
    /// let b = a.to_builder().subject("retry").build()?;
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!((b.ty(), b.data()), (a.ty(), a.data()));
    /// # Ok::<(), agentry::SignalError>(())
    /// ```
    pub fn to_builder(&self) -> SignalBuilder {
        SignalBuilder {
            id: None,
            source: self.source.clone(),
            ty: self.ty.clone(),
            subject: self.extras.as_ref().and_then(|e| e.subject.clone()),
            time: self.time(),
            datacontenttype: self.extras.as_ref().and_then(|e| e.datacontenttype.clone()),
            dataschema: self.extras.as_ref().and_then(|e| e.dataschema.clone()),
            extensions: self.extension_slice().to_vec(),
            data: self.data_form(),
            data_error: None,
            limits: Limits::default(),
        }
    }
}

/// Assembles and validates a [`Signal`]; from [`Signal::builder`] or
/// [`Signal::to_builder`].
///
/// Setters take and return the builder, so a signal is one expression; every
/// check happens in [`build`](SignalBuilder::build), which reports the first
/// broken rule.
///
/// Building from `&'static str` attributes without extensions, with a payload
/// from `bytes::Bytes` (feature `zero-copy`) or no payload, performs no heap
/// allocation: no setter or check formats a string or grows a `Vec` on that
/// path, and the id is a UUID held inline.
#[derive(Clone, Debug)]
#[must_use = "a builder makes nothing until `build()` is called"]
pub struct SignalBuilder {
    id: Option<SignalId>,
    source: Text,
    ty: Text,
    subject: Option<Text>,
    time: Option<SystemTime>,
    datacontenttype: Option<Text>,
    dataschema: Option<Text>,
    /// Sorted by name, names unique; stays unallocated until an extension is
    /// added.
    extensions: Vec<(Text, ExtensionValue)>,
    data: Option<Form>,
    /// Why `json_data` failed, reported by `build()`.
    data_error: Option<Text>,
    limits: Limits,
}

impl SignalBuilder {
    /// Sets the id (by default a fresh UUIDv7 is generated at `build()`).
    /// Text that is a canonical lowercase hyphenated UUID is stored as a
    /// [`SignalId::Uuid`].
    pub fn id(mut self, id: impl Into<Text>) -> Self {
        self.id = Some(SignalId::from_text(id));
        self
    }

    /// Sets the id from a [`SignalId`], e.g. to keep the id of the signal a
    /// builder was copied from (`s.to_builder().signal_id(s.id().clone())`).
    pub fn signal_id(mut self, id: SignalId) -> Self {
        self.id = Some(match id {
            SignalId::Text(t) => SignalId::from_text(t),
            uuid => uuid,
        });
        self
    }

    /// Sets the `subject`: what the event is about, within the source.
    pub fn subject(mut self, subject: impl Into<Text>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets when the event happened (years 0000 to 9999).
    pub fn time(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets the time to now.
    pub fn time_now(self) -> Self {
        self.time(SystemTime::now())
    }

    /// Sets the `datacontenttype` (a media type such as `application/json`),
    /// which also decides how JSON encoding writes text data (see the
    /// [module docs](self#data-in-cloudevents-json)).
    pub fn datacontenttype(mut self, content_type: impl Into<Text>) -> Self {
        self.datacontenttype = Some(content_type.into());
        self
    }

    /// Sets the `dataschema` (an absolute URI).
    pub fn dataschema(mut self, schema: impl Into<Text>) -> Self {
        self.dataschema = Some(schema.into());
        self
    }

    /// Adds extension attribute `name`; setting the same name again replaces
    /// the value (last wins). Names are checked at `build()`.
    pub fn extension(mut self, name: impl Into<Text>, value: impl Into<ExtensionValue>) -> Self {
        let name = name.into();
        let value = value.into();
        match self
            .extensions
            .binary_search_by(|(n, _)| n.as_str().cmp(name.as_str()))
        {
            Ok(i) => {
                if let Some(slot) = self.extensions.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.extensions.insert(i, (name, value)),
        }
        self
    }

    /// Sets the data (replacing any earlier `data` or `json_data`): text
    /// from `&str`/`String` (content type [`TEXT_PLAIN_UTF8`] at `build()`
    /// unless one is set), bytes from anything else (see [`Data`]). Empty
    /// data is still data.
    pub fn data(mut self, data: impl Into<Data>) -> Self {
        self.data = Some(data.into().0);
        self.data_error = None;
        self
    }

    /// Sets the data to `value` serialized as JSON, and the
    /// `datacontenttype` to `application/json` unless one was already set.
    /// A serialization failure is reported by `build()` as a
    /// [`Rule::Serialization`] error on [`Attribute::Data`].
    pub fn json_data<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.data = Some(Form::Json(Payload::from(bytes)));
                self.data_error = None;
            }
            Err(e) => {
                self.data = None;
                self.data_error = Some(Text::from(e.to_string()));
            }
        }
        if self.datacontenttype.is_none() {
            self.datacontenttype = Some(Text::from_static("application/json"));
        }
        self
    }

    /// Sets the limits `build()` enforces (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Validates every attribute and makes the signal.
    ///
    /// Rules (the first broken one is reported, as a [`SignalError`] naming
    /// the attribute and the [`Rule`]):
    /// - `type`: 1 to 64 dot-separated segments of `[A-Za-z0-9_-]+` (stricter
    ///   than CloudEvents, see the [module docs](self#deliberate-restrictions));
    /// - `source`: a non-empty URI-reference (light check: no whitespace,
    ///   control characters, Unicode noncharacters or ``<>"{}|\^` ``, `%`
    ///   starts `%XX`);
    /// - `id` (when set as text that is not a UUID), `subject`: non-empty
    ///   CloudEvents Strings (no control characters, no Unicode
    ///   noncharacters);
    /// - `time`: years 0000 to 9999;
    /// - `datacontenttype`: an RFC 2046 media type;
    /// - `dataschema`: an absolute URI (`scheme:` + the source rules);
    /// - extensions: names of 1 to 20 `[a-z0-9]` (the 20 is enforced, see the
    ///   [module docs](self#deliberate-restrictions)), not a CloudEvents
    ///   attribute name, at most `max_extensions`; string values are
    ///   CloudEvents Strings;
    /// - every string at most `max_attribute_len` bytes, except a UUID id
    ///   (always the 36 bytes of its text, so a generated id never fails a
    ///   small limit); the payload at most `max_payload` bytes;
    /// - text data under a JSON `datacontenttype`: exactly one JSON value
    ///   ([`Rule::NotJson`]; surrounding whitespace is dropped).
    pub fn build(self) -> Result<Signal, SignalError> {
        self.validate()?;
        let mut datacontenttype = self.datacontenttype;
        let (data, text_data) = match self.data {
            None => (None, false),
            Some(Form::Binary(p)) => (Some(p), false),
            Some(Form::Json(p)) => (Some(trim_json_whitespace(p)), true),
            Some(Form::Text(p)) => match &datacontenttype {
                None => {
                    datacontenttype = Some(Text::from_static(TEXT_PLAIN_UTF8));
                    (Some(p), true)
                }
                Some(ct) if is_json_content_type(ct) => (Some(checked_json(p)?), true),
                Some(_) => (Some(p), true),
            },
        };
        let bare = self.subject.is_none()
            && self.time.is_none()
            && self.dataschema.is_none()
            && self.extensions.is_empty();
        let extras = if bare && datacontenttype.is_none() && !text_data {
            None
        } else if bare && text_data && datacontenttype.as_deref() == Some(TEXT_PLAIN_UTF8) {
            Some(text_plain_extras())
        } else {
            Some(Arc::new(Extras {
                subject: self.subject,
                datacontenttype,
                time: self.time,
                dataschema: self.dataschema,
                extensions: self.extensions.into_boxed_slice(),
                text_data,
            }))
        };
        Ok(Signal {
            id: self.id.unwrap_or_else(SignalId::now_v7),
            source: self.source,
            ty: self.ty,
            extras,
            data,
        })
    }
}

/// Whether `b` is JSON whitespace (RFC 8259: space, tab, LF, CR).
fn is_json_whitespace(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The payload without surrounding JSON whitespace (no copy when there is
/// none, the usual case).
fn trim_json_whitespace(p: Payload) -> Payload {
    let bytes = p.as_bytes();
    let start = bytes.iter().position(|b| !is_json_whitespace(b));
    let end = bytes.iter().rposition(|b| !is_json_whitespace(b));
    match (start, end) {
        (Some(0), Some(e)) if e + 1 == bytes.len() => p,
        (Some(s), Some(e)) => p.slice(s..=e).unwrap_or(p),
        _ => p,
    }
}

/// Text data under a JSON content type: exactly one JSON value, trimmed.
fn checked_json(p: Payload) -> Result<Payload, SignalError> {
    let p = trim_json_whitespace(p);
    // Text data comes from a `str`, so it is UTF-8; `RawValue` skips nested
    // values without recursion, so deep input is no risk.
    let text = std::str::from_utf8(p.as_bytes()).unwrap_or_default();
    let checked = serde_json::from_str::<&serde_json::value::RawValue>(text).map(|_| ());
    match checked {
        Ok(()) => Ok(p),
        Err(e) => {
            let rule = Rule::NotJson {
                message: Text::from(e.to_string()),
            };
            Err(SignalError::new(Attribute::Data, rule, None))
        }
    }
}

impl SignalBuilder {
    /// The payload set so far, for the size check.
    pub(super) fn payload_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.payload().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn signal_stays_small() {
        // SignalId + 2 x Text (24 each) + Option<Arc<Extras>> (8) + the
        // payload (Vec 24, Bytes 32): a queued signal is mostly this.
        assert_eq!(size_of::<SignalId>(), 24);
        assert_eq!(size_of::<Signal>(), 80 + size_of::<Payload>());
        assert!(size_of::<Signal>() <= 112);
    }

    #[test]
    fn accessors_return_what_was_built() {
        let t = UNIX_EPOCH + Duration::new(1_522_949_460, 5);
        let s = Signal::builder("order.created", "/shop")
            .id("A234-1234-1234")
            .subject("order-1")
            .time(t)
            .datacontenttype("text/plain")
            .dataschema("https://example.com/s")
            .extension("b", true)
            .extension("a", 1)
            .extension("c", "x")
            .data("hi")
            .build()
            .unwrap();
        assert_eq!(s.id(), &SignalId::from("A234-1234-1234"));
        assert_eq!((s.ty(), s.source()), ("order.created", "/shop"));
        assert_eq!(
            (s.type_text().as_str(), s.source_text().as_str()),
            ("order.created", "/shop")
        );
        assert_eq!(s.subject(), Some("order-1"));
        assert_eq!(s.time(), Some(t));
        assert_eq!(s.datacontenttype(), Some("text/plain"));
        assert_eq!(s.dataschema(), Some("https://example.com/s"));
        let names: Vec<_> = s.extensions().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(s.extension("a"), Some(&ExtensionValue::Integer(1)));
        assert_eq!(s.extension("b"), Some(&ExtensionValue::Bool(true)));
        assert_eq!(s.extension("c").and_then(ExtensionValue::as_str), Some("x"));
        assert_eq!(s.extension("d"), None);
        assert_eq!(s.data().as_bytes(), b"hi");
        assert_eq!(s.clone().into_data().as_bytes(), b"hi");
        assert_eq!(Signal::SPECVERSION, "1.0");
    }

    #[test]
    fn defaults_are_absent() {
        let s = Signal::builder("t", "/s").build().unwrap();
        assert!(s.id().as_uuid().is_some());
        assert_eq!(s.subject(), None);
        assert_eq!(s.time(), None);
        assert_eq!(s.datacontenttype(), None);
        assert_eq!(s.dataschema(), None);
        assert_eq!(s.extensions().count(), 0);
        assert!(s.data().is_empty() && !s.has_data());
        assert!(s.extras.is_none());
        // Bytes add nothing either; text gets the shared text/plain extras.
        assert!(Signal::new("t", "/s", vec![1]).unwrap().extras.is_none());
        let (a, b) = (
            Signal::new("t", "/s", "a").unwrap(),
            Signal::new("t", "/s", "b").unwrap(),
        );
        assert!(Arc::ptr_eq(
            a.extras.as_ref().unwrap(),
            b.extras.as_ref().unwrap()
        ));
        assert_eq!(a.datacontenttype(), Some(TEXT_PLAIN_UTF8));
    }

    #[test]
    fn same_extension_twice_last_wins() {
        let s = Signal::builder("t", "/s")
            .extension("x", 1)
            .extension("y", 2)
            .extension("x", "again")
            .build()
            .unwrap();
        assert_eq!(s.extensions().count(), 2);
        assert_eq!(s.extension("x"), Some(&ExtensionValue::from("again")));
    }

    #[test]
    fn uuid_text_ids_are_normalized() {
        let u = uuid::Uuid::now_v7();
        let s = Signal::builder("t", "/s")
            .id(u.to_string())
            .build()
            .unwrap();
        assert_eq!(s.id().as_uuid(), Some(u));
        let s = Signal::builder("t", "/s")
            .signal_id(SignalId::Text(Text::from(u.to_string())))
            .build()
            .unwrap();
        assert_eq!(s.id().as_uuid(), Some(u));
    }

    #[test]
    fn ten_thousand_default_ids_strictly_increase() {
        let mut previous = None;
        for _ in 0..10_000 {
            let s = Signal::builder("t", "/s").build().unwrap();
            let id = s.id().as_uuid().unwrap();
            assert_eq!(id.get_version_num(), 7);
            if let Some(p) = previous {
                assert!(id > p, "{id} after {p}");
            }
            previous = Some(id);
        }
    }

    #[test]
    fn to_builder_copies_everything_but_the_id() {
        let s = Signal::builder("t", "/s")
            .subject("x")
            .time_now()
            .datacontenttype("application/json")
            .dataschema("urn:x")
            .extension("e", 1)
            .data("1")
            .build()
            .unwrap();
        let copy = s.to_builder().build().unwrap();
        assert_ne!(copy.id(), s.id());
        let same = s.to_builder().signal_id(s.id().clone()).build().unwrap();
        assert_eq!(same, s);
    }

    #[test]
    fn json_data_sets_content_type_unless_set() {
        let s = Signal::builder("t", "/s")
            .json_data(&("a", 1))
            .build()
            .unwrap();
        assert_eq!(s.data().as_bytes(), br#"["a",1]"#);
        assert_eq!(s.datacontenttype(), Some("application/json"));
        let s = Signal::builder("t", "/s")
            .datacontenttype("application/vnd.x+json")
            .json_data(&1)
            .build()
            .unwrap();
        assert_eq!(s.datacontenttype(), Some("application/vnd.x+json"));
        // A later `data` replaces a failed `json_data` (bytes here: text
        // under the JSON content type it set would have to be JSON).
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1], 1);
        let s = Signal::builder("t", "/s")
            .json_data(&bad)
            .data(b"ok".to_vec())
            .build();
        assert_eq!(s.unwrap().data().as_bytes(), b"ok");
        let err = Signal::builder("t", "/s")
            .json_data(&bad)
            .build()
            .unwrap_err();
        assert!(matches!(err.rule(), Rule::Serialization { .. }), "{err}");
        assert!(!Signal::json("t", "/s", &1).unwrap().data_is_binary());
        assert!(Signal::json("t", "/s", &bad).is_err());
    }

    #[test]
    fn clones_share_strings_and_extras() {
        let s = Signal::builder(String::from("t"), String::from("/s"))
            .extension("e", String::from("v"))
            .build()
            .unwrap();
        let c = s.clone();
        assert_eq!(c, s);
        assert_eq!(c.ty().as_ptr(), s.ty().as_ptr());
        assert_eq!(c.source().as_ptr(), s.source().as_ptr());
        let (a, b) = (s.extras.as_ref().unwrap(), c.extras.as_ref().unwrap());
        assert!(Arc::ptr_eq(a, b));
    }
}
