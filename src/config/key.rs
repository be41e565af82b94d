//! A place in `driftless.toml` (`edge.redirects[0].from`) and a value there that cannot be
//! used: what every config error names, with its line.

use std::fmt;
use std::ops::Range;

use toml::Spanned;

/// A place in `driftless.toml` (`edge.redirects[0].from`), to name its line in an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Name(String),
    Index(usize),
}

impl Key {
    /// `a.b.c` (names only; use [`Key::at`] for array elements).
    pub fn of(dotted: &str) -> Self {
        Self(dotted.split('.').map(|s| Seg::Name(s.to_owned())).collect())
    }

    /// This key, then `name`.
    #[must_use]
    pub fn then(mut self, name: &str) -> Self {
        self.0.push(Seg::Name(name.to_owned()));
        self
    }

    /// This key's element `i`.
    #[must_use]
    pub fn at(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    /// Where the value at this key is in `text` (or, when the file does not set it, the
    /// deepest table above it that it does).
    pub(super) fn span(&self, text: &str) -> Option<Range<usize>> {
        use toml::de::DeValue;
        let doc = toml::de::DeTable::parse(text).ok()?;
        let mut found = None;
        let mut table = Some(doc.get_ref());
        let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
        for seg in &self.0 {
            let value = match (seg, table, array) {
                (Seg::Name(n), Some(t), _) => t
                    .iter()
                    .find(|(k, _)| k.get_ref() == n.as_str())
                    .map(|(k, v)| (k.span(), v)),
                (Seg::Index(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
                _ => None,
            };
            let Some((key_span, value)) = value else {
                break;
            };
            (table, array) = (None, None);
            found = Some(match value.get_ref() {
                DeValue::Table(t) => {
                    table = Some(t);
                    key_span
                }
                DeValue::Array(a) => {
                    array = Some(a);
                    value.span()
                }
                _ => value.span(),
            });
        }
        found
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Name(n) if i == 0 => write!(f, "{n}")?,
                Seg::Name(n) => write!(f, ".{n}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A value `driftless.toml` holds that cannot be used: where, and why (the message names
/// the key as people write it).
#[derive(Debug, Clone)]
pub struct Invalid {
    pub key: Key,
    pub message: String,
}

impl Invalid {
    pub fn new(key: Key, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}
