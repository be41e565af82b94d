//! The state driftless keeps in the store, per environment, under its state prefix:
//!
//! - `HEAD`: the live release id, moved only by compare-and-swap (If-Match);
//! - `releases/<id>.json`: immutable release records, created with If-None-Match;
//! - `objects/<sha256>`: content-addressed copies of every file of every release;
//! - `lock`: a lease (holder, host, expiry) created with If-None-Match;
//! - `journal/`: append-only events; `holds/`: stop signs;
//! - `pending.json`: the release an interrupted apply was writing, so the next run can
//!   finish it.
//!
//! Nothing here may write without a condition except journal events (unique keys).
//!
//! Release records are stored compactly (format 2): a *checkpoint* carries its whole
//! manifest; any other release carries only its changes since a checkpoint, so a
//! one-file deploy of a 50,000-file site writes a few hundred bytes, and reading any
//! release takes at most two records. Records are gzip-compressed JSON and, being
//! immutable, cached on this machine by id. Records of format 1 (plain JSON, whole
//! manifest) are read as checkpoints.

mod canary;
mod compact;
mod gc;
mod lock;
mod notes;
mod previews;
mod record;
mod slots;
mod snapshots;
pub use canary::{Canary, CanaryStep};
pub use gc::{Collection, Piece, Policy, Retired, Retirement, Yank};
pub use lock::{HeldLease, Lock, LockInfo};
pub use notes::{Check, Event, Hold, MIN_REQUESTS, Pending, Tally, Verification, Watched, p95};
pub use previews::{Preview, Previews, preview_prefix, slug};
pub use record::{
    Actor, Delta, Entry, Header, Kept, Manifest, RECORD_FORMAT, Record, RecordOut, Release,
    ReleaseKind, ReleaseRef, header, is_release_id, new_release_id,
};
pub use slots::{Held, Pointer, SLOTS, Slots, other as other_slot};
pub use snapshots::{
    LocalContent, Location, PACK_MAX_FILE, PACK_TARGET, StageError, Staged, Staging,
};

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::store::{Attributes, PutMode, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: corrupt state record: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("release {id} is not in the store (looked for {key})")]
    MissingRelease { id: String, key: String },
    /// The config's layout and the store's disagree.
    #[error("{0}")]
    Layout(String),
    #[error("release {} was {}: it can no longer be restored (`driftless log {env}` shows what can)", .retired.release.id, .retired.describe())]
    Retired { retired: Box<Retired>, env: String },
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// What an environment's history occupies in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Storage {
    pub releases: usize,
    pub release_bytes: u64,
    pub packs: usize,
    pub objects: usize,
    /// Packs (with their indexes) and content-addressed objects.
    pub snapshot_bytes: u64,
    /// Releases collected or yanked (their tombstones).
    pub retired: usize,
}

/// HEAD as read: which release is live and the ETag to compare-and-swap against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub release: Option<String>,
    pub etag: Option<String>,
}

/// One environment's state, inside its store.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    prefix: String,
    env: String,
    /// This machine's cache of immutable records (releases, pack indexes), if any.
    cache: Option<std::path::PathBuf>,
    /// The pack indexes this process has read.
    packs: Arc<tokio::sync::Mutex<snapshots::PackIndex>>,
    /// Where the site's files are: in place, or in slots behind a pointer (resolved
    /// from the config and the store on first use).
    layout: Arc<tokio::sync::OnceCell<crate::config::Layout>>,
    /// The layout the config sets, if any.
    configured: Option<crate::config::Layout>,
    /// The layout of a store that has no release yet, when the config sets none.
    fresh: crate::config::Layout,
    /// Where the live pointer of the atomic layout is kept (the store itself unless a
    /// CDN reads it from elsewhere).
    live_pointer: Arc<dyn crate::store::LivePointer>,
    /// Keys of the live slot copied to the store's root after each switch (the error
    /// page CloudFront fetches without running the function).
    projected: Vec<String>,
}

/// Gzip a record (state records are compressed: a checkpoint of a large site is MBs of
/// JSON, mostly hashes and repeated headers).
pub(crate) fn gzip(json: &[u8]) -> Bytes {
    use std::io::Write as _;
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    w.write_all(json).expect("writing to memory");
    Bytes::from(w.finish().expect("writing to memory"))
}

/// A value as gzipped JSON, serialised straight into the compressor (a checkpoint of a
/// large site never exists as uncompressed text in memory).
pub(crate) fn gzip_json<T: Serialize>(value: &T) -> Bytes {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut w, value).expect("state records serialise");
    Bytes::from(w.finish().expect("writing to memory"))
}

/// The JSON of a record, whether stored gzipped (format 2) or plain (format 1).
pub(crate) fn gunzip_if_needed(raw: &[u8]) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
    use std::io::Read as _;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw).read_to_end(&mut out)?;
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(raw))
    }
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

fn json<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(v).expect("state records serialise"))
}

fn json_attrs() -> Attributes {
    Attributes {
        content_type: Some("application/json".into()),
        ..Attributes::default()
    }
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>, prefix: &str, env: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            env: env.to_owned(),
            cache: None,
            packs: Arc::default(),
            layout: Arc::default(),
            configured: None,
            fresh: crate::config::Layout::InPlace,
            live_pointer: Arc::new(crate::store::StorePointer(store.clone())),
            projected: Vec::new(),
            store,
        }
    }

    /// Keep the live pointer in `pointer` (a CloudFront KeyValueStore) instead of the
    /// store.
    #[must_use]
    pub fn with_pointer(mut self, pointer: Arc<dyn crate::store::LivePointer>) -> Self {
        self.live_pointer = pointer;
        self
    }

    /// Copy `keys` of the live slot to the store's root after every switch.
    #[must_use]
    pub fn with_projected(mut self, keys: Vec<String>) -> Self {
        self.projected = keys;
        self
    }

    /// The keys copied to the store's root after every switch (never in-place leftovers).
    pub fn projected(&self) -> &[String] {
        &self.projected
    }

    /// Where the live pointer is kept, for people.
    pub fn pointer_location(&self) -> String {
        self.live_pointer.describe()
    }

    /// The layout the config sets (`None`: the store's own), and the one a store with no
    /// release yet gets when it sets none.
    #[must_use]
    pub fn with_layout(
        mut self,
        configured: Option<crate::config::Layout>,
        fresh: crate::config::Layout,
    ) -> Self {
        self.configured = configured;
        self.fresh = fresh;
        self
    }

    /// Cache immutable records (releases, pack indexes) under `dir` on this machine.
    #[must_use]
    pub fn with_cache(mut self, dir: std::path::PathBuf) -> Self {
        self.cache = Some(dir);
        self
    }

    pub(super) fn release_cache(&self, id: &str) -> Option<std::path::PathBuf> {
        self.cache
            .as_ref()
            .map(|c| c.join("releases").join(format!("{id}.json.gz")))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The environment this ledger belongs to.
    pub fn env(&self) -> &str {
        &self.env
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    pub fn object_key(&self, sha256: &str) -> String {
        self.key(&format!("objects/{sha256}"))
    }

    pub(super) async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<(T, String)>> {
        let Some((obj, body)) = self.store.get(key).await? else {
            return Ok(None);
        };
        let v = serde_json::from_slice(&body).map_err(|e| corrupt(key, e))?;
        Ok(Some((v, obj.meta.etag)))
    }

    pub async fn head(&self) -> Result<Head> {
        let key = self.key("HEAD");
        Ok(match self.store.get(&key).await? {
            None => Head::default(),
            Some((obj, body)) => {
                let id = std::str::from_utf8(&body)
                    .map_err(|e| corrupt(&key, e))?
                    .trim();
                Head {
                    release: (!id.is_empty()).then(|| id.to_owned()),
                    etag: Some(obj.meta.etag),
                }
            }
        })
    }

    /// Move HEAD from what `seen` says to `id`. Fails with `Precondition` if it moved.
    pub async fn swap_head(&self, seen: &Head, id: &str) -> Result<()> {
        let mode = match &seen.etag {
            Some(e) => PutMode::IfMatch(e.clone()),
            None => PutMode::Create,
        };
        let key = self.key("HEAD");
        let attrs = Attributes {
            content_type: Some("text/plain".into()),
            ..Attributes::default()
        };
        match self
            .store
            .put(&key, Bytes::from(format!("{id}\n")), &attrs, mode)
            .await
        {
            Ok(_) => Ok(()),
            // A Create that lost the race is the same as a moved HEAD.
            Err(StoreError::AlreadyExists { key }) => Err(StoreError::Precondition {
                key,
                expected: "no HEAD".into(),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The raw record of release `id`: from this machine's cache, else from the store
    /// (and then cached: records never change).
    pub async fn has_object(&self, sha256: &str) -> Result<bool> {
        Ok(self.store.head(&self.object_key(sha256)).await?.is_some())
    }

    /// Store content under its hash; already there is success (content-addressed).
    pub async fn put_object(&self, sha256: &str, body: Bytes) -> Result<()> {
        let attrs = Attributes {
            sha256: Some(sha256.to_owned()),
            ..Attributes::default()
        };
        match self
            .store
            .put(&self.object_key(sha256), body, &attrs, PutMode::Create)
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Copy content `sha256` from another environment's `objects/` into this one's,
    /// server-side (same service, one set of credentials). `Ok(false)`: it cannot be
    /// copied that way (not an object there, or the backend cannot); the caller streams.
    pub async fn copy_object_from(&self, from: &Ledger, sha256: &str) -> Result<bool> {
        if from.locate(sha256).await? != Some(Location::Object) {
            return Ok(false);
        }
        let Some(source) = from.store.copy_source(&from.object_key(sha256)) else {
            return Ok(false);
        };
        let attrs = Attributes {
            sha256: Some(sha256.to_owned()),
            ..Attributes::default()
        };
        match self
            .store
            .copy_from_source(&source, &self.object_key(sha256), &attrs, PutMode::Create)
            .await
        {
            Ok(Some(_)) | Err(StoreError::AlreadyExists { .. }) => Ok(true),
            Ok(None) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_object(&self, sha256: &str) -> Result<Option<Bytes>> {
        Ok(self
            .store
            .get(&self.object_key(sha256))
            .await?
            .map(|(_, b)| b))
    }

    // --- storage ----------------------------------------------------------------

    /// What the environment's history occupies: release records, and the snapshot bytes
    /// (packs and content-addressed objects). Four listings (tombstones too), no reads.
    pub async fn storage(&self) -> Result<Storage> {
        let (r, p, o, t) = (
            self.key("releases/"),
            self.key("packs/"),
            self.key("objects/"),
            self.key("retired/"),
        );
        let (releases, packs, objects, retired) = tokio::try_join!(
            self.store.list(&r),
            self.store.list(&p),
            self.store.list(&o),
            self.store.list(&t)
        )?;
        Ok(Storage {
            releases: releases.len(),
            release_bytes: releases.iter().map(|m| m.size).sum(),
            packs: packs.iter().filter(|m| m.key.ends_with(".pack")).count(),
            objects: objects.len(),
            snapshot_bytes: packs.iter().chain(&objects).map(|m| m.size).sum(),
            retired: retired.len(),
        })
    }

    // --- small state records ----------------------------------------------------

    /// A JSON record `name` under the state prefix, with its ETag.
    pub async fn state_json<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Option<(T, String)>> {
        self.read_json(&self.key(name)).await
    }

    /// Write the JSON record `name`, conditional on what was read just before (created
    /// if absent, else replaced only if unchanged since).
    pub async fn put_state_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let key = self.key(name);
        let mode = match self.store.head(&key).await? {
            Some(o) => PutMode::IfMatch(o.meta.etag),
            None => PutMode::Create,
        };
        self.store
            .put(&key, json(value), &json_attrs(), mode)
            .await?;
        Ok(())
    }

    // --- store probe --------------------------------------------------------------

    /// The cached probe result, if this store was probed and trusted before; applies
    /// what it learned (e.g. emulated conditional copies) to the store. Read-only.
    pub async fn load_probe(&self) -> Result<Option<crate::store::ProbeReport>> {
        let cached = self
            .read_json::<crate::store::ProbeReport>(&self.key("store-probe.json"))
            .await?
            .map(|(r, _)| r)
            .filter(crate::store::ProbeReport::trusted);
        for w in cached.iter().flat_map(|r| &r.workarounds) {
            self.store.apply_workaround(*w);
        }
        Ok(cached)
    }

    /// Prove the store honours conditional writes before trusting it with
    /// compare-and-swap (once per store: a trusted result is cached in the state; a
    /// negative one is not, so fixing the server is noticed on the next run).
    pub async fn probe(&self) -> Result<crate::store::ProbeReport> {
        if let Some(cached) = self.load_probe().await? {
            return Ok(cached);
        }
        let report = crate::store::probe(self.store.as_ref(), &self.key("probe/")).await?;
        if report.trusted() {
            self.store
                .put(
                    &self.key("store-probe.json"),
                    json(&report),
                    &json_attrs(),
                    PutMode::Overwrite,
                )
                .await?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::MemoryStore;

    pub(super) fn actor(name: &str) -> Actor {
        Actor {
            author: name.into(),
            host: "test-host".into(),
            pid: 0,
        }
    }

    #[tokio::test]
    pub(super) async fn a_held_lease_is_renewed_and_notices_when_broken() {
        let ledger = Ledger::new(Arc::new(MemoryStore::new()), ".driftless/", "prod");
        let lease = Duration::from_millis(300);
        let lock = ledger
            .lock(&actor("alice"), "deploy", None, lease)
            .await
            .unwrap()
            .unwrap();
        let first_expiry = lock.info.expires_at;
        let held = ledger.hold_lease(lock, lease);
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Past the original expiry, the lease is still alive and still refuses others.
        let (now, _) = ledger.read_lock().await.unwrap().unwrap();
        assert!(now.expires_at > first_expiry, "the lease was not renewed");
        assert!(
            ledger
                .lock(&actor("bob"), "deploy", None, lease)
                .await
                .unwrap()
                .is_err()
        );
        assert!(!held.lost());

        // Someone breaks it: the holder finds out at its next renewal.
        let (_, etag) = ledger.read_lock().await.unwrap().unwrap();
        ledger.break_lock(&etag).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(held.lost(), "a broken lease went unnoticed");
        held.release(&ledger).await.unwrap();
    }

    #[tokio::test]
    pub(super) async fn an_expired_lease_is_taken_over_and_head_moves_only_by_cas() {
        let ledger = Ledger::new(Arc::new(MemoryStore::new()), ".driftless/", "prod");
        let short = Duration::from_millis(10);
        let _stale = ledger
            .lock(&actor("alice"), "deploy", None, short)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let taken = ledger
            .lock(&actor("bob"), "deploy", None, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(taken.unwrap().info.holder.author, "bob");

        let seen = ledger.head().await.unwrap();
        ledger.swap_head(&seen, "r1").await.unwrap();
        assert!(
            ledger.swap_head(&seen, "r2").await.is_err(),
            "a stale HEAD swap succeeded"
        );
        assert_eq!(ledger.head().await.unwrap().release.as_deref(), Some("r1"));
    }

    /// Stores written by earlier versions keep working: a format 1 record (plain JSON,
    /// whole manifest) reads as a checkpoint, and the next release is a delta over it.
    #[tokio::test]
    pub(super) async fn format_1_records_read_and_grow_deltas() {
        let store = Arc::new(MemoryStore::new());
        let ledger = Ledger::new(store.clone(), ".driftless/", "prod");
        let v1 = r#"{"id":"r1","parent":null,"env":"prod","kind":{"type":"deploy"},
            "created_at":"2026-01-01T00:00:00Z","actor":{"author":"old","host":"h","pid":1},
            "manifest":{"index.html":{"sha256":"aa","size":2,"content_type":"text/html","etag":"e1"},
                        "a.css":{"sha256":"bb","size":3,"etag":"e2"}}}"#;
        store
            .put(
                ".driftless/releases/r1.json",
                Bytes::from(v1),
                &json_attrs(),
                PutMode::Create,
            )
            .await
            .unwrap();
        let r1 = ledger.release("r1").await.unwrap();
        assert_eq!(r1.manifest.len(), 2);
        assert_eq!(ledger.release_ref("r1").await.unwrap().0.files, 2);

        let mut r2 = r1.clone();
        r2.id = "r2".into();
        r2.parent = Some("r1".into());
        r2.delta = None;
        r2.manifest.get_mut("a.css").unwrap().sha256 = "cc".into();
        ledger.write_release(&r2, Some(&r1)).await.unwrap();
        let (_, body) = store
            .get(".driftless/releases/r2.json")
            .await
            .unwrap()
            .unwrap();
        let json = String::from_utf8(gunzip_if_needed(&body).unwrap().into_owned()).unwrap();
        assert!(
            json.contains("\"checkpoint\":\"r1\"") && !json.contains("index.html"),
            "{json}"
        );
        let back = ledger.release("r2").await.unwrap();
        assert_eq!(back.manifest, r2.manifest);
    }
}
