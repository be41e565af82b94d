//! The narrow object-store interface driftless needs, and its backends.
//!
//! Everything above this module (ledger, plan, apply) talks to a `dyn Store`, so a
//! guarantee proven on one backend holds on all of them. Every backend must pass
//! [`conformance::run`]; in particular a backend must never turn a conditional write
//! (`PutMode::Create`, `PutMode::IfMatch`) into an unconditional one: those conditions
//! are what order two concurrent deployers.
//!
//! ETags are opaque change tokens, returned unquoted. Content identity is driftless's
//! own SHA-256 (stored in [`Attributes::sha256`]), never the ETag.

pub mod conformance;
mod kvs;
mod local;
mod memory;
mod probe;
mod s3;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use kvs::KvsPointer;
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use probe::{ProbeReport, probe};
pub use s3::{S3Settings, S3Store};

/// Headers and metadata stored with an object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// driftless's content identity (hex SHA-256 of the stored bytes), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a listing says about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub etag: String,
}

/// What a `head` says about one object: the listing facts plus its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub meta: ObjectMeta,
    pub attrs: Attributes,
}

/// How a write treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write whatever is there (only for keys nobody else writes, e.g. journal events
    /// with unique names).
    Overwrite,
    /// Only if the key does not exist (`If-None-Match: *`).
    Create,
    /// Only if the key exists with exactly this ETag (`If-Match`).
    IfMatch(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: no such object")]
    NotFound { key: String },
    #[error("{key}: already exists")]
    AlreadyExists { key: String },
    #[error("{key}: changed since it was read (expected ETag {expected})")]
    Precondition { key: String, expected: String },
    /// A conflicting conditional write raced this one (S3 409); safe to retry.
    #[error("{key}: a concurrent conditional write conflicted")]
    Conflict { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("{op}{}: {source}", if path.is_empty() { String::new() } else { format!(" {path}") })]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// Something the store needs is missing and a command creates it (the message
    /// names it): a refusal, not a failure.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// A human-readable location, e.g. `file:///srv/site` (never with credentials).
    fn location(&self) -> String;

    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Every object except those under `exclude` (a prefix ending in `/`), sorted.
    /// Backends override this to skip the excluded range instead of listing it.
    async fn list_except(&self, exclude: &str) -> Result<Vec<ObjectMeta>> {
        let mut all = self.list("").await?;
        all.retain(|m| !m.key.starts_with(exclude));
        Ok(all)
    }

    async fn head(&self, key: &str) -> Result<Option<Object>>;

    async fn get(&self, key: &str) -> Result<Option<(Object, Bytes)>>;

    /// Write `body` under `key`; returns the new ETag.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String>;

    /// Server-side copy `from` → `to`, replacing the attributes; `mode` applies to `to`.
    async fn copy(&self, from: &str, to: &str, attrs: &Attributes, mode: PutMode)
    -> Result<String>;

    /// Where `key` is, as another store of the same service names it for a server-side
    /// copy (`bucket/encoded-key` on S3); `None` if this backend cannot be a copy source.
    fn copy_source(&self, _key: &str) -> Option<String> {
        None
    }

    /// Server-side copy from another store's [`Store::copy_source`] on the same service,
    /// replacing the attributes. `Ok(None)`: this backend cannot (the caller streams).
    async fn copy_from_source(
        &self,
        _source: &str,
        _to: &str,
        _attrs: &Attributes,
        _mode: PutMode,
    ) -> Result<Option<String>> {
        Ok(None)
    }

    /// Work around a store that ignores some conditions (found by [`probe`]). Returns
    /// false if the backend cannot.
    fn apply_workaround(&self, _workaround: Workaround) -> bool {
        false
    }

    /// Do writes large enough to be uploaded in parts honour their conditions? Backends
    /// without multipart uploads have nothing to prove.
    async fn probe_large_writes(&self, _scratch_key: &str) -> Result<bool> {
        Ok(true)
    }

    /// Give back the space the store keeps in reserve for a full disk (a `file://`
    /// store's; object stores have none): what lets `gc` write its lock and records on a
    /// full disk, to free space. Returns the bytes freed (0: there was none).
    async fn free_reserve(&self) -> Result<u64> {
        Ok(0)
    }

    /// Put the reserve back, if it is gone and there is room (best effort).
    async fn keep_reserve(&self) {}

    /// The bytes free where the store keeps its objects, when that is a disk.
    async fn room(&self) -> Option<u64> {
        None
    }

    /// Delete `key`. Without `if_match` a missing key is not an error (as on S3); with
    /// it, the key must exist with that ETag.
    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()>;

    /// Write `len` bytes of the local file `path` from `offset` under `key`, streamed:
    /// never the whole file in memory (backends override the default, which reads it).
    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        offset: u64,
        len: u64,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        let body = read_region(path, offset, len)?;
        self.put(key, body, attrs, mode).await
    }

    /// `len` bytes of `key` from `offset` (fewer at the end of the object); `None` if the
    /// key does not exist.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Bytes>> {
        Ok(self.get(key).await?.map(|(_, body)| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(body.len());
            let end = usize::try_from(offset.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(body.len());
            body.slice(start..end)
        }))
    }

    /// The object and the SHA-256 of its bytes, streamed (an object someone put there may
    /// be large).
    async fn hash(&self, key: &str) -> Result<Option<(Object, String)>> {
        Ok(self
            .get(key)
            .await?
            .map(|(obj, body)| (obj, crate::digest::hash_bytes(&body))))
    }

    /// Write the whole object to the local file `to`, streamed.
    async fn get_to_file(&self, key: &str, to: &std::path::Path) -> Result<Option<Object>> {
        let Some((obj, body)) = self.get(key).await? else {
            return Ok(None);
        };
        std::fs::write(to, &body).map_err(|e| StoreError::Io {
            op: "write",
            path: to.display().to_string(),
            source: e,
        })?;
        Ok(Some(obj))
    }

    /// The live pointer of an atomic layout: the slot visitors are served (`a`, `b`), and
    /// a token to compare-and-swap against. Stored as the object [`POINTER_KEY`] holding
    /// the slot's name; a local directory overrides it with a symlink.
    async fn pointer(&self) -> Result<Option<(String, String)>> {
        Ok(match self.get(POINTER_KEY).await? {
            Some((obj, body)) => Some((
                String::from_utf8_lossy(&body).trim().to_owned(),
                obj.meta.etag,
            )),
            None => None,
        })
    }

    /// Point visitors at `slot`, only if the pointer is still `expected` (its token from
    /// [`Store::pointer`]; `None`: only if there is no pointer yet). One write: visitors
    /// get either the old slot or the new one, never a mix. Returns the new token.
    async fn set_pointer(&self, slot: &str, expected: Option<&str>) -> Result<String> {
        let mode = expected.map_or(PutMode::Create, |e| PutMode::IfMatch(e.to_owned()));
        let attrs = Attributes {
            content_type: Some("text/plain".into()),
            cache_control: Some("no-store".into()),
            ..Attributes::default()
        };
        self.put(POINTER_KEY, Bytes::from(slot.to_owned()), &attrs, mode)
            .await
    }

    /// Remove the live pointer, only if it is still `expected` (moving an environment
    /// back to the in-place layout).
    async fn remove_pointer(&self, expected: &str) -> Result<()> {
        self.delete(POINTER_KEY, Some(expected)).await
    }

    /// Are small files better written many to one object? True where every request is
    /// priced and slow (S3); a local directory has no such cost.
    fn prefers_packs(&self) -> bool {
        false
    }
}

/// Where the live pointer of an atomic layout is kept: in the store itself
/// ([`StorePointer`]), or where a CDN reads it (a CloudFront KeyValueStore). One
/// compare-and-swap cell: `read` gives the slot and a token, `write` moves it only if
/// the token is still current.
#[async_trait]
pub trait LivePointer: Send + Sync + fmt::Debug {
    /// Where the pointer is, for people (`file:///srv/site/current`, `CloudFront
    /// KeyValueStore driftless-prod`).
    fn describe(&self) -> String;

    /// The slot visitors are served and the token to compare-and-swap against.
    async fn read(&self) -> Result<Option<(String, String)>>;

    /// Point visitors at `slot` (holding `release`, with its edge rules `edge` where the
    /// pointer carries them), only if the pointer is still `expected` (`None`: only if
    /// there is none yet). Returns the new token.
    async fn write(
        &self,
        slot: &str,
        release: &str,
        edge: Option<&serde_json::Value>,
        expected: Option<&str>,
    ) -> Result<String>;

    /// Does this pointer carry each release's edge rules (its root), with their data
    /// beside it (a KeyValueStore read by the CloudFront function)? A pointer in the
    /// store itself does not: `serve` reads the rules from the release.
    fn carries_edge(&self) -> bool {
        false
    }

    /// The bytes the edge data beside the pointer takes now, and the most it may take
    /// (a KeyValueStore holds 5 MB); `None` where the pointer carries none.
    async fn room(&self) -> Result<Option<(u64, u64)>> {
        Ok(None)
    }

    /// The token a write of edge data is conditional on when there is no pointer yet.
    async fn token(&self) -> Result<String> {
        Ok(String::new())
    }

    /// Write the edge data `values` (key → value) beside the pointer, only if nothing
    /// was written since `expected`; returns the new token (the pointer's next write is
    /// conditional on it).
    async fn put_values(&self, values: &[(String, String)], expected: &str) -> Result<String> {
        let _ = values;
        Ok(expected.to_owned())
    }

    /// Remove edge data no pointer, split or preview names any more (best effort: a
    /// key left behind only takes room).
    async fn delete_values(&self, keys: &[String]) -> Result<()> {
        let _ = keys;
        Ok(())
    }

    /// Remove the pointer, only if it is still `expected`.
    async fn remove(&self, expected: &str) -> Result<()>;

    /// Tell the edge about preview `name`: the id in its cache key, when it expires
    /// (unix seconds) and its rules' root, or `None` once it is gone. Where the pointer is
    /// the store's own, there is nothing to tell: `serve` reads the previews' record.
    async fn publish_preview(
        &self,
        name: &str,
        edge: Option<(&str, i64, Option<&serde_json::Value>)>,
    ) -> Result<()> {
        let _ = (name, edge);
        Ok(())
    }

    /// Serve `split` (a canary) beside the pointer to `slot` (holding `release`), or
    /// stop (`None`), only if the pointer is still `expected`; the pointer itself stays.
    /// Where the pointer is the store's own there is nothing to write (`serve` reads
    /// the canary's record itself): the token stays as it was.
    async fn write_split(
        &self,
        slot: &str,
        release: &str,
        edge: Option<&serde_json::Value>,
        split: Option<&Split>,
        expected: &str,
    ) -> Result<String> {
        let _ = (slot, release, edge, split);
        Ok(expected.to_owned())
    }
}

/// A canary as the edge sees it: `percent` of visitors are served `slot`, which holds
/// the release whose id (the cache key's part) is `release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub slot: String,
    pub release: String,
    pub percent: u8,
    /// The canary release's edge rules (its root), where the pointer carries them.
    #[serde(default, rename = "e", skip_serializing_if = "Option::is_none")]
    pub edge: Option<serde_json::Value>,
}

/// The pointer kept in the store itself ([`Store::pointer`]), whether the store is
/// shared (`Arc<dyn Store>`, the ledger's) or borrowed (`&dyn Store`, the conformance run).
#[derive(Debug, Clone)]
pub struct StorePointer<S>(pub S);

#[async_trait]
impl<'a, S> LivePointer for StorePointer<S>
where
    S: std::ops::Deref<Target = dyn Store + 'a> + Send + Sync + fmt::Debug,
{
    fn describe(&self) -> String {
        format!("{}/{POINTER_KEY}", self.0.location().trim_end_matches('/'))
    }

    async fn read(&self) -> Result<Option<(String, String)>> {
        self.0.pointer().await
    }

    async fn write(
        &self,
        slot: &str,
        _release: &str,
        _edge: Option<&serde_json::Value>,
        expected: Option<&str>,
    ) -> Result<String> {
        self.0.set_pointer(slot, expected).await
    }

    async fn remove(&self, expected: &str) -> Result<()> {
        self.0.remove_pointer(expected).await
    }
}

/// The key of the live pointer of an atomic layout (on a local store, a symlink to
/// `slots/<slot>` that a web server can take as its root).
pub const POINTER_KEY: &str = "current";

/// What the KeyValueStore key of every preview starts with; preview NAME's holds
/// `{"release": <the id in its cache key>, "expires": <unix seconds>}`.
pub const PREVIEW_KEY_PREFIX: &str = "preview:";

/// Where slot `slot` of an atomic layout keeps its files.
pub fn slot_prefix(slot: &str) -> String {
    format!("slots/{slot}/")
}

/// `len` bytes of a local file from `offset`, read into memory (small regions only).
pub(crate) fn read_region(path: &std::path::Path, offset: u64, len: u64) -> Result<Bytes> {
    use std::io::{Read as _, Seek as _};
    let io = |op, source| StoreError::Io {
        op,
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(|e| io("open", e))?;
    f.seek(std::io::SeekFrom::Start(offset))
        .map_err(|e| io("seek", e))?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| io("read", e))?;
    if buf.len() as u64 != len {
        return Err(io(
            "read",
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file is shorter than expected",
            ),
        ));
    }
    Ok(Bytes::from(buf))
}

/// How a backend works around a store that ignores some conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workaround {
    /// CopyObject ignores If-None-Match/If-Match: copy by GET + conditional PUT.
    EmulateConditionalCopy,
    /// CompleteMultipartUpload ignores its conditions: write conditional objects in one
    /// part (S3 allows up to 5 GiB).
    ConditionalWritesInOnePart,
}

/// Keys are `/`-separated relative paths: no empty, `.` or `..` segments, no NUL.
pub fn validate_key(key: &str) -> Result<()> {
    match crate::keys::key_problem(key) {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        }),
    }
}

pub use crate::keys::encode_key;

/// S3 and friends quote ETags in some places and not in others.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in [
            "index.html",
            "a/b/c.js",
            "ü/é.html",
            "with space.txt",
            ".well-known/x",
        ] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "dir/", "a\0b"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn etags_are_normalized() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("abc-3"), "abc-3");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
    }
}
