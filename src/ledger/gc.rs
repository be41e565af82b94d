//! Which releases stay restorable, and taking the rest away: `gc` collects what no
//! retained release needs; `yank` removes the bytes only one release has (a leaked
//! secret).
//!
//! A release that can no longer be restored keeps a *tombstone*, `retired/<id>.json`
//! (its header, how and by whom it was retired), written before anything is deleted:
//! `log` still shows it, marked, and `rollback`/`promote` refuse it by name. Its record
//! goes too unless it is the checkpoint a retained release's record is a delta of.
//!
//! Both run under the environment's lock and decide from what they read under it, so a
//! deploy never interleaves with them; content a deploy brought into the snapshots
//! *before* taking the lock (a promotion stages early) is checked again under the lock
//! by the apply, which refuses rather than reference a collected byte. A pack without
//! an index (an upload in progress, or interrupted) is never touched.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::{StreamExt as _, TryStreamExt as _};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Actor, Ledger, LedgerError, Location, ReleaseRef, Result, corrupt, json, json_attrs};
use crate::store::{PutMode, StoreError};

/// Deletes in flight at once.
const DELETES: usize = 32;

/// Why a release can no longer be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Retirement {
    /// Outside the retention window: `driftless gc` took its snapshots.
    Collected,
    /// `driftless yank`: its own bytes were removed on purpose.
    Yanked { reason: String },
}

/// The tombstone of a release that can no longer be restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retired {
    pub release: ReleaseRef,
    pub parent: Option<String>,
    #[serde(flatten)]
    pub how: Retirement,
    pub by: Actor,
    pub at: Timestamp,
}

impl Retired {
    /// "collected by gc (ana, 2026-11-22 10:00:00 UTC)" / "yanked by ana at …: why".
    pub fn describe(&self) -> String {
        let (who, when) = (
            crate::text::esc(&self.by.author),
            crate::text::short_time(self.at),
        );
        match &self.how {
            Retirement::Collected => format!("collected by `driftless gc` ({who}, {when})"),
            Retirement::Yanked { reason } => {
                format!("yanked by {who} at {when}: {}", crate::text::esc(reason))
            }
        }
    }

    pub fn yanked(&self) -> bool {
        matches!(self.how, Retirement::Yanked { .. })
    }
}

/// What `gc` keeps.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Restorable releases kept, newest first, live included (at least 1).
    pub keep_releases: usize,
    /// Releases made after this are kept too.
    pub keep_since: Option<Timestamp>,
    /// `[retention] removed_releases`: kept keys outlive their grace until this many
    /// releases went live after their removal.
    pub removed_releases: u32,
}

/// One piece of the store a collection deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub key: String,
    pub size: u64,
}

/// What `gc` would do, as read from the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Collection {
    /// Releases that stay restorable, newest first.
    pub retained: Vec<String>,
    /// Releases of live's history that become unrestorable now, newest first.
    pub collect: Vec<ReleaseRef>,
    /// Release records deleted (collected releases, and records never made live).
    pub records: Vec<Piece>,
    /// Records of collected releases kept: retained releases are stored as changes
    /// since them.
    pub checkpoints_kept: usize,
    /// Packs (with their indexes) and objects no retained release needs.
    pub snapshots: Vec<Piece>,
    /// Packs kept whole because they also hold content a retained release needs.
    pub shared_packs: usize,
    pub shared_bytes: u64,
    /// Packs without an index: an upload in progress or interrupted; left alone.
    pub unindexed_packs: usize,
    /// Kept keys (skew protection) whose grace is over: `(key, etag)`.
    pub expired_kept: Vec<(String, String)>,
    /// Previews past their expiry, `(name, release)`: their files go, and their bytes
    /// unless a kept release has them too.
    pub expired_previews: Vec<(String, String)>,
    /// The files of the expired previews.
    pub preview_files: Vec<Piece>,
}

impl Collection {
    pub fn freed(&self) -> u64 {
        self.records
            .iter()
            .chain(&self.snapshots)
            .chain(&self.preview_files)
            .map(|p| p.size)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.collect.is_empty()
            && self.records.is_empty()
            && self.snapshots.is_empty()
            && self.expired_kept.is_empty()
            && self.expired_previews.is_empty()
    }

    /// Only what both `self` (decided under the lock) and `shown` (confirmed by the
    /// user) delete: nothing new is collected without being shown, nothing retained
    /// since is lost.
    #[must_use]
    pub fn within(mut self, shown: &Self) -> Self {
        let ids: HashSet<&str> = shown.collect.iter().map(|r| r.id.as_str()).collect();
        self.collect.retain(|r| ids.contains(r.id.as_str()));
        let keys: HashSet<&str> = shown
            .records
            .iter()
            .chain(&shown.snapshots)
            .map(|p| p.key.as_str())
            .collect();
        self.records.retain(|p| keys.contains(p.key.as_str()));
        self.snapshots.retain(|p| keys.contains(p.key.as_str()));
        let kept: HashSet<&(String, String)> = shown.expired_kept.iter().collect();
        self.expired_kept.retain(|k| kept.contains(k));
        self.expired_previews
            .retain(|p| shown.expired_previews.contains(p));
        let names: Vec<&str> = self
            .expired_previews
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        self.preview_files.retain(|p| {
            keys.contains(p.key.as_str())
                || names
                    .iter()
                    .any(|n| p.key.starts_with(&super::preview_prefix(n)))
        });
        self
    }
}

/// A release of live's history, as `gc` and `yank` see it.
struct Walked {
    r: ReleaseRef,
    retired: Option<Retirement>,
}

/// What `yank` would do.
#[derive(Debug, Clone, Serialize)]
pub struct Yank {
    pub release: ReleaseRef,
    /// Keys of the release whose bytes no other restorable release has: removed.
    pub removed: Vec<String>,
    /// How many of its files other restorable releases share (their bytes stay).
    pub shared: usize,
    /// Keys of the release the live release still serves with the same bytes.
    pub still_live: Vec<String>,
    /// Kept keys (skew protection) serving removed bytes: deleted, `(key, etag)`.
    pub kept_keys: Vec<(String, String)>,
    /// Objects deleted, and packs rewritten without the removed content.
    pub objects: Vec<Piece>,
    pub packs: Vec<String>,
    /// The slot (atomic layout) that still held the release: emptied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_slot: Option<String>,
    /// Previews serving any of the removed bytes: deleted with them (their URL would
    /// go on serving the leak).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previews: Vec<String>,
    #[serde(skip)]
    shas: HashSet<String>,
}

impl Ledger {
    fn retired_key(&self, id: &str) -> String {
        self.key(&format!("retired/{id}.json"))
    }

    /// The tombstone of release `id`, if it was collected or yanked.
    pub async fn retired(&self, id: &str) -> Result<Option<Retired>> {
        Ok(self
            .read_json::<Retired>(&self.retired_key(id))
            .await?
            .map(|(r, _)| r))
    }

    /// The ids of every retired release (one listing).
    pub async fn retired_ids(&self) -> Result<HashSet<String>> {
        self.record_names("retired").await
    }

    /// Refuse a release that can no longer be restored, naming who retired it.
    pub async fn restorable(&self, id: &str) -> Result<std::result::Result<(), Retired>> {
        Ok(match self.retired(id).await? {
            Some(r) => Err(r),
            None => Ok(()),
        })
    }

    async fn retire(&self, r: &Retired) -> Result<()> {
        match self
            .store
            .put(
                &self.retired_key(&r.release.id),
                json(r),
                &json_attrs(),
                PutMode::Create,
            )
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Live's whole history, newest first, with what is already retired.
    async fn walk_history(&self) -> Result<Vec<Walked>> {
        let retired = self.retired_ids().await?;
        let mut out = Vec::new();
        let mut next = self.head().await?.release;
        while let Some(id) = next {
            let (r, parent) = self.release_ref(&id).await?;
            let retired = if retired.contains(&id) {
                self.retired(&id).await?.map(|t| t.how)
            } else {
                None
            };
            out.push(Walked { r, retired });
            next = parent;
        }
        Ok(out)
    }

    /// Every content hash the releases `ids` reference, and the checkpoints their
    /// records are stored as changes of. One manifest in memory at a time.
    async fn needs(&self, ids: &[&str]) -> Result<(HashSet<String>, HashSet<String>)> {
        let mut shas = HashSet::new();
        let mut checkpoints = HashSet::new();
        for id in ids {
            let r = self.release(id).await?;
            if let Some(d) = &r.delta {
                checkpoints.insert(d.checkpoint.clone());
            }
            shas.extend(r.manifest.into_values().map(|e| e.sha256));
        }
        Ok((shas, checkpoints))
    }

    /// What `gc` would do under `policy` now.
    pub async fn plan_collection(&self, policy: Policy, now: Timestamp) -> Result<Collection> {
        let history = self.walk_history().await?;
        let pending = self.pending().await?.map(|(p, _)| p);
        let mut out = Collection::default();
        let mut restorable = 0;
        // On an atomic layout the releases the slots hold stay restorable: going back to
        // the other slot's release is one pointer write.
        let (slots, _) = self.slots().await?;
        let held: HashSet<&str> = slots.releases().collect();
        for (i, w) in history.iter().enumerate() {
            if w.retired.is_some() {
                continue;
            }
            let young = policy.keep_since.is_some_and(|t| w.r.created_at >= t);
            if i == 0
                || restorable < policy.keep_releases
                || young
                || held.contains(w.r.id.as_str())
            {
                restorable += 1;
                out.retained.push(w.r.id.clone());
            } else {
                out.collect.push(w.r.clone());
            }
        }
        // Previews keep their releases until they expire; then `gc` removes them.
        let (previews, _) = self.previews().await?;
        let mut alive: Vec<String> = Vec::new();
        for (name, p) in &previews.0 {
            if p.expired(now) {
                out.expired_previews.push((name.clone(), p.release.clone()));
                out.preview_files
                    .extend(self.pieces_under(&super::preview_prefix(name)).await?);
            } else if self.release_exists(&p.release).await? {
                alive.push(p.release.clone());
            }
        }
        let mut ids: Vec<&str> = out.retained.iter().map(String::as_str).collect();
        ids.extend(alive.iter().map(String::as_str));
        let (mut needed, mut checkpoints) = self.needs(&ids).await?;
        if let Some(p) = &pending {
            ids.push(&p.release.id);
            needed.extend(p.release.manifest.values().map(|e| e.sha256.clone()));
            // Its record (if written) is a delta of live's checkpoint, kept above.
        }
        // Records: every stored one that no kept release is, or is stored as changes of.
        let prefix = self.key("releases/");
        for m in self.store.list(&prefix).await? {
            let Some(id) = m
                .key
                .strip_prefix(&prefix)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            if ids.contains(&id) {
                continue;
            }
            if checkpoints.remove(id) {
                out.checkpoints_kept += 1;
                continue;
            }
            out.records.push(Piece {
                key: m.key.clone(),
                size: m.size,
            });
        }
        self.unneeded_snapshots(&needed, &mut out).await?;
        // In slots, expired kept keys go with the next fill of a slot (the release it
        // gets no longer keeps them); only an in-place store deletes them here.
        if self.layout().await? == crate::config::Layout::InPlace
            && let (_, Some(live)) = self.live().await?
        {
            out.expired_kept = self
                .expired_kept(&live, now, policy.removed_releases)
                .await?;
        }
        Ok(out)
    }

    /// Packs and objects holding nothing in `needed`.
    async fn unneeded_snapshots(
        &self,
        needed: &HashSet<String>,
        out: &mut Collection,
    ) -> Result<()> {
        let for_packs = self.pack_contents().await?;
        for p in for_packs {
            if !p.indexed {
                out.unindexed_packs += 1;
            } else if p.shas.iter().any(|s| needed.contains(s)) {
                out.shared_packs += 1;
                out.shared_bytes += p.size;
            } else {
                // The index first: a pack without one is never read.
                out.snapshots.push(Piece {
                    key: self.pack_key(&p.id, "idx"),
                    size: p.idx_size,
                });
                out.snapshots.push(Piece {
                    key: self.pack_key(&p.id, "pack"),
                    size: p.size,
                });
            }
        }
        let prefix = self.object_key("");
        for m in self.store.list(&prefix).await? {
            if m.key
                .strip_prefix(&prefix)
                .is_some_and(|sha| !needed.contains(sha))
            {
                out.snapshots.push(Piece {
                    key: m.key,
                    size: m.size,
                });
            }
        }
        Ok(())
    }

    /// Every pack in the store with what its index says it holds.
    async fn pack_contents(&self) -> Result<Vec<PackContents>> {
        let prefix = self.key("packs/");
        let mut packs: BTreeMap<String, PackContents> = BTreeMap::new();
        for m in self.store.list(&prefix).await? {
            let Some(name) = m.key.strip_prefix(&prefix) else {
                continue;
            };
            let (id, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let p = packs.entry(id.to_owned()).or_insert_with(|| PackContents {
                id: id.to_owned(),
                ..PackContents::default()
            });
            match ext {
                "pack" => p.size = m.size,
                "idx" => {
                    p.indexed = true;
                    p.idx_size = m.size;
                }
                _ => {}
            }
        }
        futures::stream::iter(packs.into_values())
            .map(|mut p| async move {
                if p.indexed {
                    p.entries = self.read_idx(&p.id).await?.entries;
                    p.shas = p.entries.iter().map(|(s, _, _)| s.clone()).collect();
                }
                Ok::<_, LedgerError>(p)
            })
            .buffer_unordered(16)
            .try_collect()
            .await
    }

    /// Live's kept keys past their grace that still hold what was kept.
    async fn expired_kept(
        &self,
        live: &super::Release,
        now: Timestamp,
        releases: u32,
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (key, k) in live
            .kept
            .iter()
            .filter(|(_, k)| k.expired(now, releases, false))
        {
            if let Some(o) = self.store.head(key).await?
                && o.meta.etag == k.entry.etag
            {
                out.push((key.clone(), o.meta.etag));
            }
        }
        Ok(out)
    }

    /// Carry out `c`: tombstones first (a collected release is refused from then on),
    /// then pack indexes, packs, objects, records, and expired kept keys (each only if
    /// it still holds what was kept). Returns the bytes freed.
    pub async fn collect(&self, c: &Collection, by: &Actor) -> Result<u64> {
        let at = Timestamp::now();
        for r in &c.collect {
            let parent = self.release_ref(&r.id).await?.1;
            self.retire(&Retired {
                release: r.clone(),
                parent,
                how: Retirement::Collected,
                by: by.clone(),
                at,
            })
            .await?;
        }
        let (idx, rest): (Vec<&Piece>, Vec<&Piece>) =
            c.snapshots.iter().partition(|p| p.key.ends_with(".idx"));
        let mut freed = self.delete_pieces(&idx).await?;
        freed += self.delete_pieces(&rest).await?;
        let records: Vec<&Piece> = c.records.iter().collect();
        freed += self.delete_pieces(&records).await?;
        for p in &c.records {
            if let Some(id) = p
                .key
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".json"))
                && let Some(path) = self.release_cache(id)
            {
                let _ = std::fs::remove_file(path);
            }
        }
        let files: Vec<&Piece> = c.preview_files.iter().collect();
        freed += self.delete_pieces(&files).await?;
        for (name, release) in &c.expired_previews {
            self.publish_preview(name, None).await?;
            // Only the expired preview read: one deployed again since stays.
            self.update_preview(name, |p| {
                p.filter(|p| p.release != *release || !p.expired(at))
                    .cloned()
            })
            .await?;
        }
        for (key, etag) in &c.expired_kept {
            match self.store.delete(key, Some(etag)).await {
                Ok(()) | Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.refresh_pack_index().await?;
        Ok(freed)
    }

    /// Every object under `prefix`, as pieces to delete.
    async fn pieces_under(&self, prefix: &str) -> Result<Vec<Piece>> {
        Ok(self
            .store
            .list(prefix)
            .await?
            .into_iter()
            .map(|m| Piece {
                key: m.key,
                size: m.size,
            })
            .collect())
    }

    async fn delete_pieces(&self, pieces: &[&Piece]) -> Result<u64> {
        let sizes: Vec<u64> = futures::stream::iter(pieces)
            .map(|p| async move {
                match self.store.delete(&p.key, None).await {
                    Ok(()) => {}
                    Err(StoreError::NotFound { .. }) => return Ok(0),
                    Err(e) => return Err(LedgerError::from(e)),
                }
                if let Some(id) = p
                    .key
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.strip_suffix(".idx"))
                    && let Some(path) = self.idx_cache(id)
                {
                    let _ = std::fs::remove_file(path);
                }
                Ok(p.size)
            })
            .buffer_unordered(DELETES)
            .try_collect()
            .await?;
        Ok(sizes.into_iter().sum())
    }

    /// What yanking release `id` would remove. Refused (as a message) for the live
    /// release, a pending one, one that was never live here, or one already yanked.
    pub async fn plan_yank(&self, id: &str) -> Result<std::result::Result<Yank, String>> {
        if let Some((c, _)) = self.canary().await?
            && c.release == id
        {
            return Ok(Err(format!(
                "release {id} is the canary on {} ({}% of visitors get it): abort it first (`driftless canary {} --abort`), then yank it",
                self.env, c.percent, self.env
            )));
        }
        let history = self.walk_history().await?;
        let Some(pos) = history.iter().position(|w| w.r.id == id) else {
            return Ok(Err(format!(
                "{id} is not a release that was live on {}; see `driftless log {}`",
                self.env, self.env
            )));
        };
        if pos == 0 {
            return Ok(Err(format!(
                "release {id} is live on {}: deploy a site without the leaked file (or roll back) first, then yank it",
                self.env
            )));
        }
        if let Some(Retirement::Yanked { .. }) = &history[pos].retired {
            let t = self
                .retired(id)
                .await?
                .ok_or_else(|| corrupt(id, "tombstone vanished"))?;
            return Ok(Err(format!("release {id} was already {}", t.describe())));
        }
        let pending = self.pending().await?.map(|(p, _)| p);
        if pending.as_ref().is_some_and(|p| p.release.id == id) {
            return Ok(Err(format!(
                "release {id} is being applied on {}: finish it first (`driftless deploy {}`)",
                self.env, self.env
            )));
        }
        // On an atomic layout the slot that still holds it (never the live one: that is
        // refused above) is emptied with it.
        let pointer = self.pointer().await?;
        let (slots, _) = self.slots().await?;
        let idle_slot = crate::ledger::SLOTS
            .into_iter()
            .filter(|s| pointer.as_ref().is_none_or(|p| p.slot != *s))
            .find(|s| slots.get(s).is_some_and(|h| h.release == id))
            .map(str::to_owned);
        let live_prefix = self.live_prefix().await?.unwrap_or_default();
        let target = self.release(id).await?;
        let others: Vec<&str> = history
            .iter()
            .filter(|w| w.r.id != id && w.retired.is_none())
            .map(|w| w.r.id.as_str())
            .collect();
        let (mut needed, _) = self.needs(&others).await?;
        if let Some(p) = &pending {
            needed.extend(p.release.manifest.values().map(|e| e.sha256.clone()));
        }
        let (_, live) = self.live().await?;
        let live = live.ok_or_else(|| corrupt("HEAD", "history without a live release"))?;
        let mut y = Yank {
            release: target.summary(),
            removed: Vec::new(),
            shared: 0,
            still_live: Vec::new(),
            kept_keys: Vec::new(),
            objects: Vec::new(),
            packs: Vec::new(),
            idle_slot,
            previews: Vec::new(),
            shas: HashSet::new(),
        };
        for (key, e) in &target.manifest {
            if live.manifest.get(key).is_some_and(|l| l.sha256 == e.sha256) {
                y.still_live.push(key.clone());
            }
            if needed.contains(&e.sha256) {
                y.shared += 1;
            } else {
                y.removed.push(key.clone());
                y.shas.insert(e.sha256.clone());
            }
        }
        for (key, k) in &live.kept {
            let key = format!("{live_prefix}{key}");
            if y.shas.contains(&k.entry.sha256)
                && let Some(o) = self.store.head(&key).await?
                && o.meta.etag == k.entry.etag
            {
                y.kept_keys.push((key, o.meta.etag));
            }
        }
        let prefix = self.object_key("");
        for m in self.store.list(&prefix).await? {
            if m.key
                .strip_prefix(&prefix)
                .is_some_and(|sha| y.shas.contains(sha))
            {
                y.objects.push(Piece {
                    key: m.key,
                    size: m.size,
                });
            }
        }
        for p in self.pack_contents().await? {
            if p.shas.iter().any(|s| y.shas.contains(s)) {
                y.packs.push(p.id);
            }
        }
        let (previews, _) = self.previews().await?;
        for (name, p) in &previews.0 {
            if !self.release_exists(&p.release).await? {
                continue;
            }
            let r = self.release(&p.release).await?;
            if r.manifest.values().any(|e| y.shas.contains(&e.sha256)) {
                y.previews.push(name.clone());
            }
        }
        Ok(Ok(y))
    }

    /// Carry out `y`: the tombstone first, then every pack holding removed content is
    /// rewritten without it (the rest of its content into a new pack, written and
    /// indexed before the old one goes), objects and kept keys deleted.
    pub async fn yank(
        &self,
        y: &Yank,
        reason: &str,
        by: &Actor,
        tmp: &std::path::Path,
    ) -> Result<()> {
        let parent = self.release_ref(&y.release.id).await?.1;
        self.retire(&Retired {
            release: y.release.clone(),
            parent,
            how: Retirement::Yanked {
                reason: reason.to_owned(),
            },
            by: by.clone(),
            at: Timestamp::now(),
        })
        .await?;
        let packs: HashMap<String, PackContents> = self
            .pack_contents()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        for id in &y.packs {
            if let Some(p) = packs.get(id) {
                self.rewrite_pack_without(p, &y.shas, tmp).await?;
            }
        }
        if let Some(slot) = &y.idle_slot {
            // Nothing may take the slot for whole while it is emptied.
            let (mut slots, etag) = self.slots().await?;
            if slots.get(slot).is_some_and(|h| h.release == y.release.id) {
                slots.set(slot, None);
                self.set_slots(&slots, etag.as_deref()).await?;
            }
            let pieces = self.pieces_under(&crate::store::slot_prefix(slot)).await?;
            self.delete_pieces(&pieces.iter().collect::<Vec<_>>())
                .await?;
        }
        for name in &y.previews {
            self.publish_preview(name, None).await?;
            self.update_preview(name, |_| None).await?;
            let pieces = self.pieces_under(&super::preview_prefix(name)).await?;
            self.delete_pieces(&pieces.iter().collect::<Vec<_>>())
                .await?;
        }
        let objects: Vec<&Piece> = y.objects.iter().collect();
        self.delete_pieces(&objects).await?;
        for (key, etag) in &y.kept_keys {
            match self.store.delete(key, Some(etag)).await {
                Ok(()) | Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.refresh_pack_index().await?;
        Ok(())
    }

    /// Replace pack `p` by one holding its content except `drop`.
    async fn rewrite_pack_without(
        &self,
        p: &PackContents,
        drop: &HashSet<String>,
        tmp: &std::path::Path,
    ) -> Result<()> {
        let keep: Vec<&(String, u64, u64)> = p
            .entries
            .iter()
            .filter(|(s, _, _)| !drop.contains(s))
            .collect();
        if !keep.is_empty() {
            std::fs::create_dir_all(tmp).map_err(|e| corrupt(&tmp.display().to_string(), e))?;
            let dir = tempfile::Builder::new()
                .prefix("repack-")
                .tempdir_in(tmp)
                .map_err(|e| corrupt(&tmp.display().to_string(), e))?;
            let mut files = Vec::new();
            let mut seen = BTreeSet::new();
            for (sha, offset, len) in keep {
                if !seen.insert(sha.clone()) {
                    continue;
                }
                let at = Location::Pack {
                    pack: std::sync::Arc::from(p.id.as_str()),
                    offset: *offset,
                    len: *len,
                };
                let body = self
                    .read_at(sha, at)
                    .await?
                    .ok_or_else(|| corrupt(&self.pack_key(&p.id, "pack"), "missing"))?;
                let path = dir.path().join(sha);
                std::fs::write(&path, &body)
                    .map_err(|e| corrupt(&path.display().to_string(), e))?;
                files.push(super::LocalContent {
                    sha256: sha.clone(),
                    path,
                    size: *len,
                });
            }
            self.stage_files(files, dir.path(), &|_| {})
                .await
                .map_err(|e| corrupt(&self.pack_key(&p.id, "pack"), e))?;
        }
        let idx = Piece {
            key: self.pack_key(&p.id, "idx"),
            size: p.idx_size,
        };
        let pack = Piece {
            key: self.pack_key(&p.id, "pack"),
            size: p.size,
        };
        self.delete_pieces(&[&idx]).await?;
        self.delete_pieces(&[&pack]).await?;
        Ok(())
    }
}

/// One pack as listed, with its index's entries.
#[derive(Debug, Default)]
struct PackContents {
    id: String,
    size: u64,
    idx_size: u64,
    indexed: bool,
    entries: Vec<(String, u64, u64)>,
    shas: HashSet<String>,
}
