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

mod compact;
mod gc;
mod snapshots;
pub use gc::{Collection, Piece, Policy, Retired, Retirement, Yank};
pub use snapshots::{
    LocalContent, Location, PACK_MAX_FILE, PACK_TARGET, StageError, Staged, Staging,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::git::GitInfo;
use crate::store::{Attributes, PutMode, Store, StoreError};
use crate::text::short_time;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: corrupt state record: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("release {id} is not in the store (looked for {key})")]
    MissingRelease { id: String, key: String },
    #[error("release {} was {}: it can no longer be restored (`driftless log {env}` shows what can)", .retired.release.id, .retired.describe())]
    Retired { retired: Box<Retired>, env: String },
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// What `verify` found for one release, kept in `verifications/<release>.json`; the
/// promotion gate and the pipeline view read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub release: String,
    pub url: String,
    pub at: Timestamp,
    pub by: String,
    pub passed: usize,
    pub failed: Vec<Check>,
    /// Every check run, passed or not (records written before this field have none).
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// One HTTP check of `verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub path: String,
    pub ok: bool,
    pub detail: String,
    /// How long the request took (records written before this field have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

/// Who did something, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub author: String,
    pub host: String,
    pub pid: u32,
}

impl Actor {
    pub fn current(dir: &std::path::Path) -> Self {
        Self {
            author: crate::git::author(dir),
            host: crate::git::hostname(),
            pid: std::process::id(),
        }
    }
}

/// One key of a release: its content and the headers it is served with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub sha256: String,
    pub size: u64,
    // Headers are shared between the entries that have them (a site has a few header
    // sets and many thousands of files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<Header>,
    /// The ETag the store returned when this key was written (empty while planned).
    #[serde(default)]
    pub etag: String,
}

impl Entry {
    pub fn attributes(&self) -> Attributes {
        Attributes {
            content_type: self.content_type.as_deref().map(str::to_owned),
            cache_control: self.cache_control.as_deref().map(str::to_owned),
            content_encoding: self.content_encoding.as_deref().map(str::to_owned),
            sha256: Some(self.sha256.clone()),
        }
    }

    pub fn from_attributes(sha256: &str, size: u64, attrs: &Attributes, etag: &str) -> Self {
        Self {
            sha256: sha256.to_owned(),
            size,
            content_type: attrs.content_type.as_deref().map(header),
            cache_control: attrs.cache_control.as_deref().map(header),
            content_encoding: attrs.content_encoding.as_deref().map(header),
            etag: etag.to_owned(),
        }
    }

    /// Same bytes and same headers (the ETag is not content).
    pub fn same_as(&self, other: &Self) -> bool {
        self.sha256 == other.sha256 && self.same_headers(other)
    }

    pub fn same_headers(&self, other: &Self) -> bool {
        self.content_type == other.content_type
            && self.cache_control == other.cache_control
            && self.content_encoding == other.content_encoding
    }
}

pub type Manifest = BTreeMap<String, Entry>;

/// A header value, shared by every entry that has it.
pub type Header = Arc<str>;

/// The one shared copy of header value `v`.
pub fn header(v: &str) -> Header {
    static SEEN: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<Header>>> =
        std::sync::LazyLock::new(Default::default);
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(h) = seen.get(v) {
        return h.clone();
    }
    let h: Header = Arc::from(v);
    seen.insert(h.clone());
    h
}

/// The format of release records this version writes.
pub const RECORD_FORMAT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ReleaseKind {
    Deploy,
    Adopt,
    Rollback {
        to: String,
    },
    /// Release `release` of environment `from`, copied byte for byte.
    Promote {
        from: String,
        release: String,
    },
}

impl std::fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deploy => f.write_str("deploy"),
            Self::Adopt => f.write_str("adopt"),
            Self::Rollback { to } => write!(f, "rollback to {to}"),
            Self::Promote { from, release } => write!(f, "promotion of {from} {release}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub parent: Option<String>,
    pub env: String,
    pub kind: ReleaseKind,
    pub created_at: Timestamp,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Guards that were explicitly overridden to make this release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// A name given at deploy (`--tag v1.4`), usable wherever a release id is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub manifest: Manifest,
    /// Keys a deploy removed from the site but leaves served for a grace period (skew
    /// protection: pages loaded from an earlier release still find their assets). Not
    /// part of the manifest; not drift while they hold the bytes recorded here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, Kept>,
    /// How the record of this release is stored, when it was read from the store: its
    /// changes since a checkpoint (`None`: it is a checkpoint, or not stored yet).
    #[serde(skip)]
    pub delta: Option<Delta>,
    /// How many files it has, when its manifest was dropped to save memory.
    #[serde(skip)]
    pub files_if_dropped: Option<usize>,
}

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

/// A removed key kept served for open pages, until its grace ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// What the key holds (and the ETag the store gave it): deleted after the grace
    /// only if it still holds exactly this.
    pub entry: Entry,
    /// Served until then at least; the first deploy after it deletes the key.
    pub until: Timestamp,
    /// The release that removed the key from the site.
    pub removed_in: String,
    /// Releases made live since that one (for `[retention] removed_releases`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub later: u32,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Kept {
    /// Whether the key may go now: its grace is over, and at least `releases` releases
    /// have gone live since the one that removed it (`making`: counting the release a
    /// deploy is about to make).
    pub fn expired(&self, now: Timestamp, releases: u32, making: bool) -> bool {
        self.until <= now && self.later + u32::from(making) >= releases
    }
}

/// A release's changes since its checkpoint (a release stored with its whole manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delta {
    pub checkpoint: String,
    #[serde(serialize_with = "compact::serialize")]
    pub changes: Manifest,
    #[serde(skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub removed: std::collections::BTreeSet<String>,
}

/// A release as stored: header, and either the whole manifest (a checkpoint) or the
/// changes since one.
#[derive(Debug, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub format: u32,
    pub id: String,
    pub parent: Option<String>,
    pub env: String,
    pub kind: ReleaseKind,
    pub created_at: Timestamp,
    pub actor: Actor,
    #[serde(default)]
    pub git: Option<GitInfo>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub overrides: Vec<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// How many files the release has (so `log` needs no manifest).
    #[serde(default)]
    pub files: Option<usize>,
    /// Format 1: the whole manifest, one object per key.
    #[serde(default)]
    pub manifest: Option<Manifest>,
    /// Format 2 checkpoint: the whole manifest, compact.
    #[serde(default, deserialize_with = "compact::option::deserialize")]
    pub entries: Option<Manifest>,
    #[serde(default)]
    pub checkpoint: Option<String>,
    #[serde(default, deserialize_with = "compact::option::deserialize")]
    pub changes: Option<Manifest>,
    #[serde(default)]
    pub removed: std::collections::BTreeSet<String>,
    #[serde(default)]
    pub kept: BTreeMap<String, Kept>,
}

/// A record being written: borrows the release it describes.
#[derive(Debug, Serialize)]
pub struct RecordOut<'a> {
    format: u32,
    id: &'a str,
    parent: Option<&'a str>,
    env: &'a str,
    kind: &'a ReleaseKind,
    created_at: Timestamp,
    actor: &'a Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    git: Option<&'a GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    overrides: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    files: usize,
    #[serde(
        rename = "entries",
        serialize_with = "compact::option::serialize",
        skip_serializing_if = "Option::is_none"
    )]
    manifest: Option<&'a Manifest>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    delta: Option<Delta>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    kept: &'a BTreeMap<String, Kept>,
}

/// A record's header alone: what `log` and promotion batches read.
#[derive(Debug, Deserialize)]
struct RecordHead {
    id: String,
    parent: Option<String>,
    kind: ReleaseKind,
    created_at: Timestamp,
    actor: Actor,
    #[serde(default)]
    git: Option<GitInfo>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    files: Option<usize>,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    tag: Option<String>,
}

/// A checkpoint is written when the changes since the last one pass this share of the
/// manifest (and this many entries), so a delta stays small and reading stays two records.
const CHECKPOINT_SHARE: usize = 4;
const CHECKPOINT_MIN: usize = 256;

impl Release {
    /// The record to store for this release, given its parent as read from the store:
    /// its changes since the parent's checkpoint, or a checkpoint of its own. Borrows
    /// the manifest (a checkpoint of a large site is not copied to be written).
    pub fn record<'a>(&'a self, parent: Option<&Release>) -> RecordOut<'a> {
        let delta = parent.map(|p| {
            let mut d = p.delta.clone().unwrap_or_else(|| Delta {
                checkpoint: p.id.clone(),
                ..Delta::default()
            });
            for (k, e) in &self.manifest {
                if p.manifest.get(k) != Some(e) {
                    d.removed.remove(k);
                    d.changes.insert(k.clone(), e.clone());
                }
            }
            for k in p.manifest.keys() {
                if !self.manifest.contains_key(k) {
                    d.changes.remove(k);
                    d.removed.insert(k.clone());
                }
            }
            d
        });
        let large = |d: &Delta| {
            let n = d.changes.len() + d.removed.len();
            n > CHECKPOINT_MIN && n > self.manifest.len() / CHECKPOINT_SHARE
        };
        let delta = delta.filter(|d| !large(d));
        RecordOut {
            format: RECORD_FORMAT,
            id: &self.id,
            parent: self.parent.as_deref(),
            env: &self.env,
            kind: &self.kind,
            created_at: self.created_at,
            actor: &self.actor,
            git: self.git.as_ref(),
            message: self.message.as_deref(),
            overrides: &self.overrides,
            tag: self.tag.as_deref(),
            files: self.manifest.len(),
            manifest: delta.is_none().then_some(&self.manifest),
            delta,
            kept: &self.kept,
        }
    }

    /// The delta a stored record describes (`None` for a checkpoint), moved out of it.
    fn delta_of(record: &mut Record) -> Option<Delta> {
        let checkpoint = record.checkpoint.take()?;
        Some(Delta {
            checkpoint,
            changes: record.changes.take().unwrap_or_default(),
            removed: std::mem::take(&mut record.removed),
        })
    }

    pub fn summary(&self) -> ReleaseRef {
        ReleaseRef {
            id: self.id.clone(),
            kind: self.kind.clone(),
            author: self.actor.author.clone(),
            host: self.actor.host.clone(),
            created_at: self.created_at,
            commit: self.git.as_ref().map(|g| g.commit.clone()),
            dirty: self.git.as_ref().is_some_and(|g| g.dirty),
            message: self.message.clone(),
            files: self.files_if_dropped.unwrap_or(self.manifest.len()),
            overrides: self.overrides.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// What people need to know about a release, without its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    pub id: String,
    pub kind: ReleaseKind,
    pub author: String,
    pub host: String,
    pub created_at: Timestamp,
    pub commit: Option<String>,
    #[serde(default)]
    pub dirty: bool,
    pub message: Option<String>,
    pub files: usize,
    /// Guards overridden to make it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl std::fmt::Display for ReleaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", crate::text::esc(&self.id))?;
        if let Some(t) = &self.tag {
            write!(f, " [{}]", crate::text::esc(t))?;
        }
        write!(
            f,
            " by {} at {}",
            crate::text::esc(&self.author),
            short_time(self.created_at)
        )?;
        if let Some(c) = &self.commit {
            write!(
                f,
                " (commit {}{})",
                &c[..c.len().min(10)],
                if self.dirty { ", dirty" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// A fresh, sortable release id: `20261121T121321Z-3fa9c1`.
pub fn new_release_id(now: Timestamp) -> String {
    let token = crate::digest::unique_token();
    format!("{}-{}", now.strftime("%Y%m%dT%H%M%SZ"), &token[..6])
}

/// Is `s` shaped like a release id (`20261121T101500Z-3fa9c1`)?
pub fn is_release_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(|c| c.is_ascii_hexdigit())
}

/// HEAD as read: which release is live and the ETag to compare-and-swap against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub release: Option<String>,
    pub etag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: Actor,
    pub operation: String,
    pub started_at: Timestamp,
    pub expires_at: Timestamp,
    /// The release the holder is making live, once it knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// When the holder last renewed the lease (it does every tenth of the lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<Timestamp>,
}

impl LockInfo {
    pub fn expired(&self, now: Timestamp) -> bool {
        now > self.expires_at
    }

    /// How long since the holder last showed it was alive (took or renewed the lease).
    pub fn silent_for(&self, now: Timestamp) -> jiff::SignedDuration {
        now.duration_since(self.renewed_at.unwrap_or(self.started_at))
    }

    /// Held by a process on this host that no longer exists (Linux: no /proc entry).
    pub fn holder_is_dead_here(&self) -> bool {
        cfg!(target_os = "linux")
            && self.holder.host == crate::git::hostname()
            && !std::path::Path::new(&format!("/proc/{}", self.holder.pid)).exists()
    }
}

/// A lease held while work runs: renewed in the background (every tenth of the lease),
/// so a long apply never outlives it. If a renewal is refused — someone broke the lock —
/// `lost()` says so, and the work must not move HEAD.
#[derive(Debug)]
pub struct HeldLease {
    lock: std::sync::Arc<tokio::sync::Mutex<Lock>>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop renewing and release the lease (if it is still ours).
    pub async fn release(self, ledger: &Ledger) -> Result<()> {
        self.task.abort();
        let _ = self.task.await;
        let lock = std::sync::Arc::try_unwrap(self.lock)
            .map(tokio::sync::Mutex::into_inner)
            .map_err(|_| corrupt("lock", "lease still in use"))?;
        ledger.unlock(lock).await
    }
}

/// A lease we hold; its ETag is what renew and release are conditional on.
#[derive(Debug)]
pub struct Lock {
    pub info: LockInfo,
    etag: String,
    /// The dead or expired lease this one replaced, if any (to say so).
    pub taken_over: Option<LockInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub reason: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub env: String,
    pub actor: Actor,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The release an apply is in the middle of writing.
#[derive(Debug, Clone)]
pub struct Pending {
    pub release: Release,
    /// HEAD as the apply saw it (compare-and-swap target).
    pub head: Head,
    /// Keys to delete once HEAD has moved, with the ETag each delete is conditional on.
    pub deletes: Vec<(String, String)>,
}

/// `pending.json` as stored: the release as a record (a delta over its parent's
/// checkpoint, so it stays small); older versions stored the whole release.
#[derive(Deserialize)]
struct PendingRecord {
    #[serde(default)]
    record: Option<Record>,
    #[serde(default)]
    release: Option<Release>,
    head: Head,
    deletes: Vec<(String, String)>,
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
            store,
            prefix: prefix.to_owned(),
            env: env.to_owned(),
            cache: None,
            packs: Arc::default(),
        }
    }

    /// Cache immutable records (releases, pack indexes) under `dir` on this machine.
    #[must_use]
    pub fn with_cache(mut self, dir: std::path::PathBuf) -> Self {
        self.cache = Some(dir);
        self
    }

    fn release_cache(&self, id: &str) -> Option<std::path::PathBuf> {
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

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    pub fn object_key(&self, sha256: &str) -> String {
        self.key(&format!("objects/{sha256}"))
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(
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
    async fn record_bytes(&self, id: &str) -> Result<Bytes> {
        let key = self.key(&format!("releases/{id}.json"));
        if let Some(b) = self.release_cache(id).and_then(|p| std::fs::read(p).ok()) {
            return Ok(Bytes::from(b));
        }
        let (_, body) = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| LedgerError::MissingRelease {
                id: id.to_owned(),
                key: key.clone(),
            })?;
        if let Some(p) = self.release_cache(id) {
            // Cache it compressed, whatever format the store holds.
            let zipped = if body.starts_with(&[0x1f, 0x8b]) {
                body.clone()
            } else {
                gzip(&body)
            };
            snapshots::write_cache(&p, &zipped);
        }
        Ok(body)
    }

    /// Release `id`'s record read as `T`: the whole [`Record`], or only its header.
    async fn parse_record<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T> {
        let key = self.key(&format!("releases/{id}.json"));
        let raw = self.record_bytes(id).await?;
        let json = gunzip_if_needed(&raw).map_err(|e| corrupt(&key, e))?;
        serde_json::from_slice(&json).map_err(|e| corrupt(&key, e))
    }

    async fn record(&self, id: &str) -> Result<Record> {
        self.parse_record(id).await
    }

    pub async fn release(&self, id: &str) -> Result<Release> {
        let record = match self.record(id).await {
            Err(LedgerError::MissingRelease { id, key }) => {
                return Err(match self.retired(&id).await? {
                    Some(r) => LedgerError::Retired {
                        retired: Box::new(r),
                        env: self.env.clone(),
                    },
                    None => LedgerError::MissingRelease { id, key },
                });
            }
            other => other?,
        };
        self.materialize(record).await
    }

    /// A whole release from its record: a checkpoint as it is, a delta applied to its
    /// checkpoint.
    async fn materialize(&self, mut record: Record) -> Result<Release> {
        let delta = Release::delta_of(&mut record);
        let manifest = match (record.entries.or(record.manifest), &delta) {
            (Some(m), _) => m,
            (None, Some(d)) => {
                let base = self.record(&d.checkpoint).await?;
                let key = self.key(&format!("releases/{}.json", d.checkpoint));
                let mut m = base
                    .entries
                    .or(base.manifest)
                    .ok_or_else(|| corrupt(&key, "a delta's checkpoint has no manifest"))?;
                for k in &d.removed {
                    m.remove(k);
                }
                m.extend(d.changes.clone());
                m
            }
            (None, None) => Manifest::new(),
        };
        Ok(Release {
            id: record.id,
            parent: record.parent,
            env: record.env,
            kind: record.kind,
            created_at: record.created_at,
            actor: record.actor,
            git: record.git,
            message: record.message,
            overrides: record.overrides,
            tag: record.tag,
            manifest,
            kept: record.kept,
            delta,
            files_if_dropped: None,
        })
    }

    /// Who made release `id`, when and why, and its parent — without its manifest.
    /// A release collected with its record is known by its tombstone.
    pub async fn release_ref(&self, id: &str) -> Result<(ReleaseRef, Option<String>)> {
        let head: RecordHead = match self.parse_record(id).await {
            Err(e @ LedgerError::MissingRelease { .. }) => {
                return match self.retired(id).await? {
                    Some(r) => Ok((r.release, r.parent)),
                    None => Err(e),
                };
            }
            other => other?,
        };
        let files = match head.files {
            Some(n) => n,
            // Format 1 records carry no count: read the manifest once.
            None => self.release(id).await?.manifest.len(),
        };
        let r = ReleaseRef {
            id: head.id,
            kind: head.kind,
            author: head.actor.author,
            host: head.actor.host,
            created_at: head.created_at,
            commit: head.git.as_ref().map(|g| g.commit.clone()),
            dirty: head.git.as_ref().is_some_and(|g| g.dirty),
            message: head.message,
            files,
            overrides: head.overrides,
            tag: head.tag,
        };
        Ok((r, head.parent))
    }

    /// Store `release`, as a delta over its parent's checkpoint (or a checkpoint).
    pub async fn write_release(&self, release: &Release, parent: Option<&Release>) -> Result<()> {
        let key = self.key(&format!("releases/{}.json", release.id));
        let body = gzip_json(&release.record(parent));
        let attrs = Attributes {
            content_type: Some("application/json".into()),
            content_encoding: Some("gzip".into()),
            ..Attributes::default()
        };
        match self
            .store
            .put(&key, body.clone(), &attrs, PutMode::Create)
            .await
        {
            Ok(_) => {}
            // Re-written by a recovery: fine if it is the same record.
            Err(StoreError::AlreadyExists { .. }) => {
                let existing = self.release(&release.id).await?;
                if existing.manifest != release.manifest {
                    return Err(corrupt(&key, "a different record with this id exists"));
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(p) = self.release_cache(&release.id) {
            snapshots::write_cache(&p, &body);
        }
        Ok(())
    }

    /// HEAD and the live release it names.
    pub async fn live(&self) -> Result<(Head, Option<Release>)> {
        let head = self.head().await?;
        let live = match &head.release {
            Some(id) => Some(self.release(id).await?),
            None => None,
        };
        Ok((head, live))
    }

    /// Live's ancestry as summaries (no manifests: one header read per release walked),
    /// newest first, stopping before release `stop`; returns whether `stop` was reached.
    pub async fn history_refs(
        &self,
        stop: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ReleaseRef>, bool)> {
        let mut out = Vec::new();
        let mut next = self.head().await?.release;
        while let Some(id) = next {
            if Some(id.as_str()) == stop {
                return Ok((out, true));
            }
            if out.len() >= limit {
                break;
            }
            let (r, parent) = self.release_ref(&id).await?;
            next = parent;
            out.push(r);
        }
        Ok((out, false))
    }

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

    // --- lock -------------------------------------------------------------------

    pub async fn read_lock(&self) -> Result<Option<(LockInfo, String)>> {
        self.read_json(&self.key("lock")).await
    }

    /// Take the lease, or return who holds it. An expired lease, or one whose holder
    /// process is gone from this host, is taken over by compare-and-swap.
    pub async fn lock(
        &self,
        actor: &Actor,
        operation: &str,
        release: Option<&str>,
        lease: std::time::Duration,
    ) -> Result<Result<Lock, LockInfo>> {
        let key = self.key("lock");
        for _ in 0..5 {
            let now = Timestamp::now();
            let info = LockInfo {
                holder: actor.clone(),
                operation: operation.to_owned(),
                started_at: now,
                expires_at: now + jiff::SignedDuration::try_from(lease).unwrap_or_default(),
                release: release.map(str::to_owned),
                renewed_at: None,
            };
            match self
                .store
                .put(&key, json(&info), &json_attrs(), PutMode::Create)
                .await
            {
                Ok(etag) => {
                    return Ok(Ok(Lock {
                        info,
                        etag,
                        taken_over: None,
                    }));
                }
                Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let Some((held, etag)) = self.read_lock().await? else {
                continue; // released meanwhile
            };
            if !(held.expired(now) || held.holder_is_dead_here()) {
                return Ok(Err(held));
            }
            match self
                .store
                .put(&key, json(&info), &json_attrs(), PutMode::IfMatch(etag))
                .await
            {
                Ok(etag) => {
                    self.journal(
                        actor,
                        "lock-taken-over",
                        None,
                        serde_json::json!({ "previous": held }),
                    )
                    .await;
                    return Ok(Ok(Lock {
                        info,
                        etag,
                        taken_over: Some(held),
                    }));
                }
                Err(StoreError::Precondition { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Err(self.read_lock().await?.map(|(i, _)| i).ok_or_else(
            || corrupt(&key, "lock kept changing while being taken"),
        )?))
    }

    /// Keep `lock` alive in the background until released.
    pub fn hold_lease(&self, lock: Lock, lease: std::time::Duration) -> HeldLease {
        let lock = std::sync::Arc::new(tokio::sync::Mutex::new(lock));
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ledger, l, flag) = (self.clone(), lock.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 10).await;
                let mut guard = l.lock().await;
                if ledger.renew(&mut guard, lease).await.is_err() {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        });
        HeldLease { lock, lost, task }
    }

    /// Extend our lease; fails if someone broke it.
    pub async fn renew(&self, lock: &mut Lock, lease: std::time::Duration) -> Result<()> {
        let mut info = lock.info.clone();
        let now = Timestamp::now();
        info.expires_at = now + jiff::SignedDuration::try_from(lease).unwrap_or_default();
        info.renewed_at = Some(now);
        let etag = self
            .store
            .put(
                &self.key("lock"),
                json(&info),
                &json_attrs(),
                PutMode::IfMatch(lock.etag.clone()),
            )
            .await?;
        lock.info = info;
        lock.etag = etag;
        Ok(())
    }

    /// Release our lease (only if it is still ours).
    pub async fn unlock(&self, lock: Lock) -> Result<()> {
        match self.store.delete(&self.key("lock"), Some(&lock.etag)).await {
            Ok(()) | Err(StoreError::NotFound { .. } | StoreError::Precondition { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Break whatever lease is there, if it is still the one that was shown.
    pub async fn break_lock(&self, etag: &str) -> Result<()> {
        Ok(self.store.delete(&self.key("lock"), Some(etag)).await?)
    }

    // --- journal ----------------------------------------------------------------

    /// Append an event. Journalling is best effort: it must never turn a successful
    /// deploy into a failure, so errors are reported on stderr and swallowed.
    pub async fn journal(
        &self,
        actor: &Actor,
        event: &str,
        release: Option<&str>,
        detail: serde_json::Value,
    ) {
        let at = Timestamp::now();
        let ev = Event {
            at,
            env: self.env.clone(),
            actor: actor.clone(),
            event: event.to_owned(),
            release: release.map(str::to_owned),
            detail,
        };
        let key = self.key(&format!(
            "journal/{}-{}.json",
            at.strftime("%Y%m%dT%H%M%S%.6fZ"),
            &crate::digest::unique_token()[..8]
        ));
        if let Err(e) = self
            .store
            .put(&key, json(&ev), &json_attrs(), PutMode::Create)
            .await
        {
            eprintln!("warning: could not write journal event {event}: {e}");
        }
    }

    pub async fn journal_events(&self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for m in self.store.list(&self.key("journal/")).await? {
            if let Some((ev, _)) = self.read_json::<Event>(&m.key).await? {
                out.push(ev);
            }
        }
        Ok(out)
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

    // --- watches ----------------------------------------------------------------

    /// Keep what a watch of a release found (a later watch of it replaces it).
    pub async fn record_watch(&self, w: &crate::watch::Watched) -> Result<()> {
        self.put_state_json(&format!("watches/{}.json", w.release), w)
            .await
    }

    /// The names of the `DIR/<name>.json` records under the state prefix (one listing).
    pub(crate) async fn record_names(
        &self,
        dir: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let prefix = self.key(&format!("{dir}/"));
        Ok(self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|m| {
                m.key
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect())
    }

    /// The releases with a recorded watch.
    pub async fn watched_ids(&self) -> Result<std::collections::HashSet<String>> {
        self.record_names("watches").await
    }

    pub async fn watched(&self, release: &str) -> Result<Option<crate::watch::Watched>> {
        Ok(self
            .state_json(&format!("watches/{release}.json"))
            .await?
            .map(|(w, _)| w))
    }

    // --- holds ------------------------------------------------------------------

    pub async fn holds(&self) -> Result<Vec<(Hold, String)>> {
        let mut out = Vec::new();
        for m in self.store.list(&self.key("holds/")).await? {
            if let Some((h, _)) = self.read_json::<Hold>(&m.key).await? {
                out.push((h, m.etag));
            }
        }
        Ok(out)
    }

    pub async fn set_hold(&self, hold: &Hold) -> Result<()> {
        let key = self.key(&format!("holds/{}.json", hold.id));
        self.store
            .put(&key, json(hold), &json_attrs(), PutMode::Create)
            .await?;
        Ok(())
    }

    pub async fn lift_hold(&self, hold: &Hold, etag: &str) -> Result<()> {
        let key = self.key(&format!("holds/{}.json", hold.id));
        Ok(self.store.delete(&key, Some(etag)).await?)
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

    // --- verification ---------------------------------------------------------------

    /// Record what `verify` found for a release (the promotion gate reads it).
    pub async fn record_verification(&self, result: &Verification) -> Result<()> {
        let key = self.key(&format!("verifications/{}.json", result.release));
        self.store
            .put(&key, json(result), &json_attrs(), PutMode::Overwrite)
            .await?;
        Ok(())
    }

    pub async fn verification(&self, release: &str) -> Result<Option<Verification>> {
        Ok(self
            .read_json(&self.key(&format!("verifications/{release}.json")))
            .await?
            .map(|(v, _)| v))
    }

    // --- pending apply ------------------------------------------------------------

    pub async fn pending(&self) -> Result<Option<(Pending, String)>> {
        let key = self.key("pending.json");
        let Some((p, etag)) = self.read_json::<PendingRecord>(&key).await? else {
            return Ok(None);
        };
        let release = match (p.record, p.release) {
            (Some(record), _) => self.materialize(record).await?,
            (None, Some(release)) => release,
            (None, None) => return Err(corrupt(&key, "no release in the pending record")),
        };
        Ok(Some((
            Pending {
                release,
                head: p.head,
                deletes: p.deletes,
            },
            etag,
        )))
    }

    /// Record the release an apply is about to write (`parent`: the live release).
    pub async fn set_pending(&self, pending: &Pending, parent: Option<&Release>) -> Result<String> {
        #[derive(Serialize)]
        struct PendingOut<'a> {
            record: RecordOut<'a>,
            head: &'a Head,
            deletes: &'a [(String, String)],
        }
        let record = PendingOut {
            record: pending.release.record(parent),
            head: &pending.head,
            deletes: &pending.deletes,
        };
        Ok(self
            .store
            .put(
                &self.key("pending.json"),
                json(&record),
                &json_attrs(),
                PutMode::Create,
            )
            .await?)
    }

    pub async fn clear_pending(&self, etag: &str) -> Result<()> {
        Ok(self
            .store
            .delete(&self.key("pending.json"), Some(etag))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::MemoryStore;

    fn actor(name: &str) -> Actor {
        Actor {
            author: name.into(),
            host: "test-host".into(),
            pid: 0,
        }
    }

    #[tokio::test]
    async fn a_held_lease_is_renewed_and_notices_when_broken() {
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
    async fn an_expired_lease_is_taken_over_and_head_moves_only_by_cas() {
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
    async fn format_1_records_read_and_grow_deltas() {
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
