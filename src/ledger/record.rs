//! The release record: what one release is (id, parent, kind, author, git commit,
//! message, overrides, tag, manifest, kept assets), how it is stored (a checkpoint or a
//! delta over one, gzip JSON, cached by id) and read back (whole, or its header alone).

use crate::ledger::gunzip_if_needed;
use crate::ledger::gzip;
use crate::ledger::gzip_json;
use crate::ledger::snapshots;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Head, Ledger, LedgerError, Result, compact, corrupt};
use crate::git::GitInfo;
use crate::store::{Attributes, PutMode, StoreError};
use crate::text::short_time;

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
    /// Preview `name`: made for its own URL, never live (until `--from-preview`).
    Preview {
        name: String,
    },
    /// Preview `name`'s release `release`, made live byte for byte.
    FromPreview {
        name: String,
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
            Self::Preview { name } => write!(f, "preview {name}"),
            Self::FromPreview { name, release } => {
                write!(f, "preview {name} ({release}) made live")
            }
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
    /// The release the build was derived from (as a deploy resolves it: git ancestry,
    /// else the working copy), when it differs from `parent`'s meaning: recorded for
    /// previews, whose parent is merely what was live, so that making one live later is
    /// judged against what its build knew (stale base, reverts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The `[edge]` rules the release is served with (`None`: made before releases
    /// carried their rules; the environment's config applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<crate::config::EdgeRules>,
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
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub edge: Option<crate::config::EdgeRules>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<&'a crate::config::EdgeRules>,
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
    #[serde(default)]
    edge: Option<crate::config::EdgeRules>,
}

/// A checkpoint is written when the changes since the last one pass this share of the
/// manifest (and this many entries), so a delta stays small and reading stays two records.
const CHECKPOINT_SHARE: usize = 4;

const CHECKPOINT_MIN: usize = 256;

impl Release {
    /// Every key the release serves: its files, then the removed assets it keeps (skew
    /// protection), each with its entry.
    pub fn served(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.manifest
            .iter()
            .chain(self.kept.iter().map(|(k, kept)| (k, &kept.entry)))
    }

    /// The entry the release serves at `key`: a file, or a removed asset it keeps.
    pub fn served_entry(&self, key: &str) -> Option<&Entry> {
        self.manifest
            .get(key)
            .or_else(|| self.kept.get(key).map(|k| &k.entry))
    }

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
            base: self.base.as_deref(),
            edge: self.edge.as_ref(),
            manifest: delta.is_none().then_some(&self.manifest),
            delta,
            kept: &self.kept,
        }
    }

    /// The delta a stored record describes (`None` for a checkpoint), moved out of it.
    pub(super) fn delta_of(record: &mut Record) -> Option<Delta> {
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
            edge: self.edge.as_ref().map(crate::config::EdgeRules::digest),
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
    /// SHA-256 of the `[edge]` rules it carries, if it carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
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

impl Ledger {
    pub(super) async fn record_bytes(&self, id: &str) -> Result<Bytes> {
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
    pub(super) async fn parse_record<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T> {
        let key = self.key(&format!("releases/{id}.json"));
        let raw = self.record_bytes(id).await?;
        let json = gunzip_if_needed(&raw).map_err(|e| corrupt(&key, e))?;
        serde_json::from_slice(&json).map_err(|e| corrupt(&key, e))
    }

    pub(super) async fn record(&self, id: &str) -> Result<Record> {
        self.parse_record(id).await
    }

    /// Whether release `id` has a record (a preview whose first fill was interrupted
    /// names a release that never got one).
    pub async fn release_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .store
            .head(&self.key(&format!("releases/{id}.json")))
            .await?
            .is_some())
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
    pub(super) async fn materialize(&self, mut record: Record) -> Result<Release> {
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
            base: record.base,
            edge: record.edge,
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
            edge: head.edge.as_ref().map(crate::config::EdgeRules::digest),
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
}
