//! [`ExtensionValue`]: the value of a CloudEvents extension attribute.

use super::Text;
use std::fmt;

/// The value of an extension attribute: one of the three CloudEvents types that
/// have a lossless JSON form.
///
/// Extensions carry routing and tracing context (`traceparent`, `tenant`,
/// `priority`, ...) next to the standard attributes without touching the data.
///
/// ```
/// use agentry::ExtensionValue;
/// assert_eq!(ExtensionValue::from(3), ExtensionValue::Integer(3));
/// assert_eq!(ExtensionValue::from("eu-west").as_str(), Some("eu-west"));
/// assert_eq!(ExtensionValue::from(true).to_string(), "true");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExtensionValue {
    /// A CloudEvents Boolean (JSON `true` / `false`).
    Bool(bool),
    /// A CloudEvents Integer: 32-bit signed, as the spec defines it.
    Integer(i32),
    /// A CloudEvents String (no control characters or Unicode noncharacters,
    /// at most [`Limits::max_attribute_len`](super::Limits::max_attribute_len)
    /// bytes).
    String(Text),
}

impl ExtensionValue {
    /// The boolean, if this is one; saves a `match` at call sites.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ExtensionValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one; saves a `match` at call sites.
    pub fn as_integer(&self) -> Option<i32> {
        match self {
            ExtensionValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is one; saves a `match` at call sites.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ExtensionValue::String(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

impl From<bool> for ExtensionValue {
    fn from(b: bool) -> Self {
        ExtensionValue::Bool(b)
    }
}

impl From<i32> for ExtensionValue {
    fn from(i: i32) -> Self {
        ExtensionValue::Integer(i)
    }
}

impl From<&'static str> for ExtensionValue {
    fn from(s: &'static str) -> Self {
        ExtensionValue::String(Text::from(s))
    }
}

impl From<String> for ExtensionValue {
    fn from(s: String) -> Self {
        ExtensionValue::String(Text::from(s))
    }
}

impl From<Text> for ExtensionValue {
    fn from(s: Text) -> Self {
        ExtensionValue::String(s)
    }
}

/// Writes the value as CloudEvents' canonical string form (`true`, `42`, the
/// text itself), as used by binary-mode headers.
impl fmt::Display for ExtensionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionValue::Bool(b) => fmt::Display::fmt(b, f),
            ExtensionValue::Integer(i) => fmt::Display::fmt(i, f),
            ExtensionValue::String(s) => f.write_str(s),
        }
    }
}
