//! Manifests as release records store them: a table of the distinct header sets, and one
//! array per key (`[key, sha256, size, headers, etag]`) — half the size of one object per
//! key and much faster to read, which is what a no-op deploy of a large site waits on.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::Deserializer;
use serde::ser::Serializer;

use super::{Entry, Manifest};

type Headers = (Option<String>, Option<String>, Option<String>);
type Shared = (
    Option<super::Header>,
    Option<super::Header>,
    Option<super::Header>,
);
/// A header set as borrowed from an entry: content type, cache control, encoding.
type HeaderRef<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

#[derive(Serialize)]
struct Out<'a> {
    headers: Vec<HeaderRef<'a>>,
    entries: Vec<(&'a str, &'a str, u64, usize, &'a str)>,
}

fn out(m: &Manifest) -> Out<'_> {
    let mut index: HashMap<HeaderRef<'_>, usize> = HashMap::new();
    let mut headers = Vec::new();
    let mut entries = Vec::with_capacity(m.len());
    for (k, e) in m {
        let h = (
            e.content_type.as_deref(),
            e.cache_control.as_deref(),
            e.content_encoding.as_deref(),
        );
        let i = *index.entry(h).or_insert_with(|| {
            headers.push(h);
            headers.len() - 1
        });
        entries.push((k.as_str(), e.sha256.as_str(), e.size, i, e.etag.as_str()));
    }
    Out { headers, entries }
}

/// Rows are read straight into the manifest (no intermediate list: a checkpoint of a
/// 50,000-file site is read on every deploy); the header table comes first.
struct Visit;

impl<'de> serde::de::Visitor<'de> for Visit {
    type Value = Manifest;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a compact manifest {headers, entries}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Manifest, A::Error> {
        use serde::de::Error as _;
        let mut headers: Option<Vec<Shared>> = None;
        let mut manifest = None;
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "headers" => {
                    let raw: Vec<Headers> = map.next_value()?;
                    let h = |v: Option<String>| v.as_deref().map(super::header);
                    headers = Some(
                        raw.into_iter()
                            .map(|(a, b, c)| (h(a), h(b), h(c)))
                            .collect(),
                    );
                }
                "entries" => {
                    let table = headers
                        .as_deref()
                        .ok_or_else(|| A::Error::custom("entries before the header table"))?;
                    manifest = Some(map.next_value_seed(Rows(table))?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        manifest.ok_or_else(|| A::Error::missing_field("entries"))
    }
}

struct Rows<'t>(&'t [Shared]);

impl<'de> serde::de::DeserializeSeed<'de> for Rows<'_> {
    type Value = Manifest;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Manifest, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Rows<'_> {
    type Value = Manifest;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rows [key, sha256, size, header set, etag]")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Manifest, A::Error> {
        use serde::de::Error as _;
        let mut m = Manifest::new();
        while let Some((key, sha256, size, h, etag)) =
            seq.next_element::<(String, String, u64, usize, String)>()?
        {
            let (content_type, cache_control, content_encoding) =
                self.0.get(h).cloned().ok_or_else(|| {
                    A::Error::custom(format!("{key}: header set {h} is not in the table"))
                })?;
            m.insert(
                key,
                Entry {
                    sha256,
                    size,
                    content_type,
                    cache_control,
                    content_encoding,
                    etag,
                },
            );
        }
        Ok(m)
    }
}

pub(super) fn serialize<S: Serializer>(m: &Manifest, s: S) -> Result<S::Ok, S::Error> {
    out(m).serialize(s)
}

pub(super) mod option {
    use super::{Deserializer, Manifest, Serialize as _, Serializer};

    pub(in crate::ledger) fn serialize<S: Serializer>(
        m: &Option<&Manifest>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.map(super::out).serialize(s)
    }

    pub(in crate::ledger) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Manifest>, D::Error> {
        struct Opt;
        impl<'de> serde::de::Visitor<'de> for Opt {
            type Value = Option<Manifest>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a compact manifest or null")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(super::Visit).map(Some)
            }
        }
        d.deserialize_option(Opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = |sha: &str, cc: Option<&str>| Entry {
            sha256: sha.into(),
            size: 3,
            content_type: Some("text/html".into()),
            cache_control: cc.map(super::super::header),
            content_encoding: None,
            etag: format!("e{sha}"),
        };
        let m: Manifest = [
            ("a.html".to_owned(), e("1", Some("no-cache"))),
            ("b.html".to_owned(), e("2", Some("no-cache"))),
            ("c.js".to_owned(), e("3", None)),
        ]
        .into_iter()
        .collect();
        let json = serde_json::to_string(&out(&m)).unwrap();
        assert_eq!(
            json.matches("no-cache").count(),
            1,
            "headers are shared: {json}"
        );
        let mut de = serde_json::Deserializer::from_str(&json);
        let back: Manifest = serde::Deserializer::deserialize_map(&mut de, Visit).unwrap();
        assert_eq!(back, m);
    }
}
