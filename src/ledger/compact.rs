//! Manifests as release records store them: a table of the distinct header sets, and one
//! array per key (`[key, sha256, size, headers, etag]`) — half the size of one object per
//! key and much faster to read, which is what a no-op deploy of a large site waits on.

use std::collections::HashMap;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{Entry, Manifest};

type Headers = (Option<String>, Option<String>, Option<String>);
/// A header set as borrowed from an entry: content type, cache control, encoding.
type HeaderRef<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

#[derive(Serialize)]
struct Out<'a> {
    headers: Vec<HeaderRef<'a>>,
    entries: Vec<(&'a str, &'a str, u64, usize, &'a str)>,
}

#[derive(Deserialize)]
struct In {
    headers: Vec<Headers>,
    entries: Vec<(String, String, u64, usize, String)>,
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

fn into_manifest<E: serde::de::Error>(raw: In) -> Result<Manifest, E> {
    raw.entries
        .into_iter()
        .map(|(key, sha256, size, h, etag)| {
            let (content_type, cache_control, content_encoding) =
                raw.headers.get(h).cloned().ok_or_else(|| {
                    E::custom(format!("{key}: header set {h} is not in the table"))
                })?;
            Ok((
                key,
                Entry {
                    sha256,
                    size,
                    content_type,
                    cache_control,
                    content_encoding,
                    etag,
                },
            ))
        })
        .collect()
}

pub(super) fn serialize<S: Serializer>(m: &Manifest, s: S) -> Result<S::Ok, S::Error> {
    out(m).serialize(s)
}

pub(super) mod option {
    use super::{Deserialize as _, Deserializer, In, Manifest, Serialize as _, Serializer};

    pub(in crate::ledger) fn serialize<S: Serializer>(
        m: &Option<&Manifest>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.map(super::out).serialize(s)
    }

    pub(in crate::ledger) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Manifest>, D::Error> {
        Option::<In>::deserialize(d)?
            .map(super::into_manifest)
            .transpose()
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
            cache_control: cc.map(str::to_owned),
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
        let back: Manifest =
            into_manifest::<serde_json::Error>(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
