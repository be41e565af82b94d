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

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::git::GitInfo;
use crate::store::{Attributes, PutMode, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: corrupt state record: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("release {id} is not in the store (looked for {key})")]
    MissingRelease { id: String, key: String },
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
}

/// How one object reached another environment's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Present,
    Copied,
    Streamed,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// The ETag the store returned when this key was written (empty while planned).
    #[serde(default)]
    pub etag: String,
}

impl Entry {
    pub fn attributes(&self) -> Attributes {
        Attributes {
            content_type: self.content_type.clone(),
            cache_control: self.cache_control.clone(),
            content_encoding: self.content_encoding.clone(),
            sha256: Some(self.sha256.clone()),
        }
    }

    pub fn from_attributes(sha256: &str, size: u64, attrs: &Attributes, etag: &str) -> Self {
        Self {
            sha256: sha256.to_owned(),
            size,
            content_type: attrs.content_type.clone(),
            cache_control: attrs.cache_control.clone(),
            content_encoding: attrs.content_encoding.clone(),
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
    pub manifest: Manifest,
}

impl Release {
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
            files: self.manifest.len(),
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
}

impl std::fmt::Display for ReleaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} by {} at {}",
            crate::output::esc(&self.id),
            crate::output::esc(&self.author),
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

pub fn short_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A fresh, sortable release id: `20261121T121321Z-3fa9c1`.
pub fn new_release_id(now: Timestamp) -> String {
    let token = crate::unique_token();
    format!("{}-{}", now.strftime("%Y%m%dT%H%M%SZ"), &token[..6])
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
}

impl LockInfo {
    pub fn expired(&self, now: Timestamp) -> bool {
        now > self.expires_at
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub release: Release,
    /// HEAD as the apply saw it (compare-and-swap target).
    pub head: Head,
    /// Keys to delete once HEAD has moved, with the ETag each delete is conditional on.
    pub deletes: Vec<(String, String)>,
}

/// One environment's state, inside its store.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    prefix: String,
    env: String,
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
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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

    pub async fn release(&self, id: &str) -> Result<Release> {
        let key = self.key(&format!("releases/{id}.json"));
        self.read_json(&key)
            .await?
            .map(|(r, _)| r)
            .ok_or(LedgerError::MissingRelease {
                id: id.to_owned(),
                key,
            })
    }

    pub async fn write_release(&self, release: &Release) -> Result<()> {
        let key = self.key(&format!("releases/{}.json", release.id));
        match self
            .store
            .put(&key, json(release), &json_attrs(), PutMode::Create)
            .await
        {
            Ok(_) => Ok(()),
            // Re-written by a recovery: fine if it is the same record.
            Err(StoreError::AlreadyExists { .. })
                if self.release(&release.id).await? == *release =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
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

    /// The live release and its ancestors, newest first (at most `limit`).
    pub async fn history(&self, limit: usize) -> Result<Vec<Release>> {
        Ok(self.history_until(None, limit).await?.0)
    }

    /// Live's ancestry, newest first, stopping before release `stop` (one read per
    /// release walked, so a caller that knows where to stop reads no further). Returns
    /// whether `stop` was reached.
    pub async fn history_until(
        &self,
        stop: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Release>, bool)> {
        let mut out = Vec::new();
        let mut next = self.head().await?.release;
        while let Some(id) = next {
            if Some(id.as_str()) == stop {
                return Ok((out, true));
            }
            if out.len() >= limit {
                break;
            }
            let r = self.release(&id).await?;
            next = r.parent.clone();
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

    /// Bring content `sha256` over from another environment's `objects/`: by server-side
    /// copy when `server_side` (same service, one set of credentials) and the backend
    /// can, else streamed through this process and checked against its hash.
    pub async fn import_object(
        &self,
        from: &Ledger,
        sha256: &str,
        server_side: bool,
    ) -> Result<Transfer> {
        if self.has_object(sha256).await? {
            return Ok(Transfer::Present);
        }
        let attrs = Attributes {
            sha256: Some(sha256.to_owned()),
            ..Attributes::default()
        };
        let key = self.object_key(sha256);
        if server_side && let Some(source) = from.store.copy_source(&from.object_key(sha256)) {
            match self
                .store
                .copy_from_source(&source, &key, &attrs, PutMode::Create)
                .await
            {
                Ok(Some(_)) | Err(StoreError::AlreadyExists { .. }) => return Ok(Transfer::Copied),
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let missing = || LedgerError::Corrupt {
            key: from.object_key(sha256),
            reason: "content named by a release is missing or does not match its hash".into(),
        };
        let body = from.get_object(sha256).await?.ok_or_else(missing)?;
        if crate::scan::hash_bytes(&body) != sha256 {
            return Err(missing());
        }
        self.put_object(sha256, body).await?;
        Ok(Transfer::Streamed)
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
        info.expires_at =
            Timestamp::now() + jiff::SignedDuration::try_from(lease).unwrap_or_default();
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
            &crate::unique_token()[..8]
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
        self.read_json(&self.key("pending.json")).await
    }

    pub async fn set_pending(&self, pending: &Pending) -> Result<String> {
        Ok(self
            .store
            .put(
                &self.key("pending.json"),
                json(pending),
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
            .lock(&actor("alice"), "deploy", lease)
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
                .lock(&actor("bob"), "deploy", lease)
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
            .lock(&actor("alice"), "deploy", short)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let taken = ledger
            .lock(&actor("bob"), "deploy", Duration::from_secs(60))
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
}
