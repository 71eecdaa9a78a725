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

mod error;
mod extension;
mod id;
mod json;
mod limits;
mod payload;
mod text;
mod timestamp;
mod validate;

pub use error::{Attribute, DecodeError, Rule, SignalError};
pub use extension::ExtensionValue;
pub use id::SignalId;
pub use limits::Limits;
pub use payload::Payload;
pub use text::Text;

use std::sync::Arc;
use std::time::SystemTime;

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
    data: Payload,
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
            data: Payload::new(),
            data_error: None,
            limits: Limits::default(),
        }
    }

    /// A signal with just a type, a source and data (a fresh UUIDv7 id, no
    /// content type), for the common case; validated with default [`Limits`].
    ///
    /// ```
    /// let s = agentry::Signal::new("order.created", "/shop", "hello")?;
    /// assert_eq!(s.data().as_bytes(), b"hello");
    /// # Ok::<(), agentry::SignalError>(())
    /// ```
    pub fn new(
        ty: impl Into<Text>,
        source: impl Into<Text>,
        data: impl Into<Payload>,
    ) -> Result<Signal, SignalError> {
        Signal::builder(ty, source).data(data).build()
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

    /// The payload; empty means the signal carries no data.
    pub fn data(&self) -> &Payload {
        &self.data
    }

    /// Takes the payload out, for a consumer that owns the signal (no copy).
    pub fn into_data(self) -> Payload {
        self.data
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
            data: self.data.clone(),
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
    data: Payload,
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
    /// which also decides whether JSON encoding writes the data inline.
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

    /// Sets the payload (replacing any earlier `data` or `json_data`).
    pub fn data(mut self, data: impl Into<Payload>) -> Self {
        self.data = data.into();
        self.data_error = None;
        self
    }

    /// Sets the payload to `value` serialized as JSON, and the
    /// `datacontenttype` to `application/json` unless one was already set.
    /// A serialization failure is reported by `build()` as a
    /// [`Rule::Serialization`] error on [`Attribute::Data`].
    pub fn json_data<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.data = Payload::from(bytes);
                self.data_error = None;
            }
            Err(e) => {
                self.data = Payload::new();
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
    ///   small limit); the payload at most `max_payload` bytes.
    pub fn build(self) -> Result<Signal, SignalError> {
        self.validate()?;
        let bare = self.subject.is_none()
            && self.datacontenttype.is_none()
            && self.time.is_none()
            && self.dataschema.is_none()
            && self.extensions.is_empty();
        let extras = (!bare).then(|| {
            Arc::new(Extras {
                subject: self.subject,
                datacontenttype: self.datacontenttype,
                time: self.time,
                dataschema: self.dataschema,
                extensions: self.extensions.into_boxed_slice(),
            })
        });
        Ok(Signal {
            id: self.id.unwrap_or_else(SignalId::now_v7),
            source: self.source,
            ty: self.ty,
            extras,
            data: self.data,
        })
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
        assert!(s.data().is_empty());
        assert!(s.extras.is_none());
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
        // A later `data` replaces a failed `json_data`.
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1], 1);
        let s = Signal::builder("t", "/s")
            .json_data(&bad)
            .data("ok")
            .build();
        assert_eq!(s.unwrap().data().as_bytes(), b"ok");
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
