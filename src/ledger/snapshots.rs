//! Where every byte of every release is kept, content-addressed by SHA-256 — what
//! rollback, promotion and crash recovery restore from, even after someone overwrote a
//! live file.
//!
//! On a store where every request is priced and slow (S3), small files are written many
//! to one *pack* (`packs/<id>.pack`, with its index `packs/<id>.idx`: sha → offset,
//! length), so a first deploy costs one request per file (the site key) plus one per
//! pack, not two per file. Large files, and every file on a local directory, are one
//! object each (`objects/<sha256>`, the layout of earlier versions, which stays readable).
//!
//! A pack is written before its index, both create-only and immutable; a pack without an
//! index is never read (an interrupted upload) and can be collected. Indexes are cached
//! on this machine by pack id.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Ledger, LedgerError, Result, corrupt};
use crate::store::{Attributes, PutMode, StoreError};

/// A pack is closed once it holds this many bytes.
pub const PACK_TARGET: u64 = 16 * 1024 * 1024;
/// Files above this size are objects of their own (streamed, copied server-side).
pub const PACK_MAX_FILE: u64 = 8 * 1024 * 1024;
/// Packs uploaded at once.
const PACK_UPLOADS: usize = 4;

/// Where one piece of content is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `objects/<sha256>`.
    Object,
    Pack {
        pack: Arc<str>,
        offset: u64,
        len: u64,
    },
}

/// The on-store index of one pack.
#[derive(Serialize, Deserialize)]
pub(super) struct PackIdx {
    format: u32,
    pub(super) pack: String,
    /// `[sha256, offset, length]`, in pack order.
    pub(super) entries: Vec<(String, u64, u64)>,
}

/// Every pack's entries, as this process knows them.
#[derive(Debug, Default)]
pub(super) struct PackIndex {
    entries: HashMap<String, Location>,
    /// The packs whose indexes are in `entries`.
    packs: HashSet<Arc<str>>,
    loaded: bool,
}

/// Content this apply put in the store from local files, and where a site key can be
/// written from cheaply: a region of a local pack file (one streamed PUT, bytes already
/// verified), or `objects/<sha256>` (a server-side copy).
#[derive(Debug, Default)]
pub struct Staged {
    pub by_sha: HashMap<String, Staging>,
    /// Hold the local pack files until the site keys are written.
    pub dirs: Vec<tempfile::TempDir>,
    pub uploaded_objects: usize,
    pub uploaded_bytes: u64,
    pub packs: usize,
}

#[derive(Debug, Clone)]
pub enum Staging {
    Range {
        path: Arc<Path>,
        offset: u64,
        len: u64,
    },
    Object,
}

/// One local file to keep, by the hash the plan gave it.
#[derive(Debug, Clone)]
pub struct LocalContent {
    pub sha256: String,
    pub path: PathBuf,
    pub size: u64,
}

/// A local file no longer has the content the plan hashed.
#[derive(Debug)]
pub struct Changed(pub PathBuf);

impl Ledger {
    pub(super) fn pack_key(&self, id: &str, ext: &str) -> String {
        self.key(&format!("packs/{id}.{ext}"))
    }

    pub(super) fn idx_cache(&self, id: &str) -> Option<PathBuf> {
        self.cache
            .as_ref()
            .map(|c| c.join("packs").join(format!("{id}.idx")))
    }

    /// Load every pack index (once per process): one listing of `packs/`, and each index
    /// not already cached on this machine.
    async fn load_pack_index(&self) -> Result<()> {
        if self.packs.lock().await.loaded {
            return Ok(());
        }
        self.refresh_pack_index().await
    }

    /// Re-list `packs/` and read the indexes this process has not seen.
    pub(super) async fn refresh_pack_index(&self) -> Result<()> {
        let prefix = self.key("packs/");
        let listed = self.store.list(&prefix).await?;
        let ids: Vec<String> = listed
            .iter()
            .filter_map(|m| m.key.strip_prefix(&prefix)?.strip_suffix(".idx"))
            .map(str::to_owned)
            .collect();
        let new: Vec<String> = {
            let mut idx = self.packs.lock().await;
            // A pack collected (gc, yank) since this process read it: forget it, and
            // re-read the rest (from this machine's cache), since an entry may have
            // named the vanished pack where another pack holds the same content.
            let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
            if idx.packs.iter().any(|p| !listed.contains(&**p)) {
                idx.packs.clear();
                idx.entries.clear();
            }
            ids.iter()
                .filter(|id| !idx.packs.contains(id.as_str()))
                .cloned()
                .collect()
        };
        let read: Vec<PackIdx> = futures::stream::iter(new)
            .map(|id| async move { self.read_idx(&id).await })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let mut idx = self.packs.lock().await;
        for p in read {
            let pack: Arc<str> = Arc::from(p.pack.as_str());
            idx.packs.insert(pack.clone());
            for (sha, offset, len) in p.entries {
                idx.entries.entry(sha).or_insert(Location::Pack {
                    pack: pack.clone(),
                    offset,
                    len,
                });
            }
        }
        idx.loaded = true;
        Ok(())
    }

    pub(super) async fn read_idx(&self, id: &str) -> Result<PackIdx> {
        let cached = self.idx_cache(id).and_then(|p| std::fs::read(p).ok());
        let raw = match cached {
            Some(b) => Bytes::from(b),
            None => {
                let key = self.pack_key(id, "idx");
                let (_, body) = self
                    .store
                    .get(&key)
                    .await?
                    .ok_or_else(|| corrupt(&key, "pack index listed but missing"))?;
                if let Some(p) = self.idx_cache(id) {
                    write_cache(&p, &body);
                }
                body
            }
        };
        let key = self.pack_key(id, "idx");
        let json = super::gunzip_if_needed(&raw).map_err(|e| corrupt(&key, e))?;
        serde_json::from_slice(&json).map_err(|e| corrupt(&key, e))
    }

    /// Where `sha` is kept, if anywhere: a pack, or `objects/`.
    pub async fn locate(&self, sha: &str) -> Result<Option<Location>> {
        self.load_pack_index().await?;
        if let Some(l) = self.packs.lock().await.entries.get(sha) {
            return Ok(Some(l.clone()));
        }
        if self.store.head(&self.object_key(sha)).await?.is_some() {
            return Ok(Some(Location::Object));
        }
        // Written by another process since this one listed the packs?
        self.refresh_pack_index().await?;
        Ok(self.packs.lock().await.entries.get(sha).cloned())
    }

    /// Which of `shas` are kept already: packs first (one listing), then `objects/`
    /// (one listing when many are asked about, else one HEAD each).
    pub async fn present(&self, shas: &[&str]) -> Result<HashSet<String>> {
        if shas.is_empty() {
            return Ok(HashSet::new());
        }
        self.refresh_pack_index().await?;
        let mut found = HashSet::new();
        let mut rest = Vec::new();
        {
            let idx = self.packs.lock().await;
            for sha in shas {
                if idx.entries.contains_key(*sha) {
                    found.insert((*sha).to_owned());
                } else {
                    rest.push(*sha);
                }
            }
        }
        if rest.len() > 64 {
            let prefix = self.object_key("");
            let wanted: HashSet<&str> = rest.iter().copied().collect();
            for m in self.store.list(&prefix).await? {
                if let Some(sha) = m.key.strip_prefix(&prefix)
                    && wanted.contains(sha)
                {
                    found.insert(sha.to_owned());
                }
            }
        } else {
            let there: Vec<Option<String>> = futures::stream::iter(rest)
                .map(|sha| async move {
                    Ok::<_, LedgerError>(self.has_object(sha).await?.then(|| sha.to_owned()))
                })
                .buffer_unordered(32)
                .try_collect()
                .await?;
            found.extend(there.into_iter().flatten());
        }
        Ok(found)
    }

    /// The bytes of `sha`, from its pack or its object.
    pub async fn read_content(&self, sha: &str) -> Result<Option<Bytes>> {
        match self.locate(sha).await? {
            None => Ok(None),
            Some(at) => self.read_at(sha, at).await,
        }
    }

    /// The bytes of `sha` where [`Ledger::locate`] found them (for `serve`, which reads
    /// small packed files whole and streams objects).
    pub async fn read_content_at(&self, sha: &str, at: Location) -> Result<Option<Bytes>> {
        self.read_at(sha, at).await
    }

    /// The bytes of `sha` where [`Ledger::locate`] found them, checked against the hash
    /// when read from a pack.
    pub(super) async fn read_at(&self, sha: &str, at: Location) -> Result<Option<Bytes>> {
        match at {
            Location::Object => self.get_object(sha).await,
            Location::Pack { pack, offset, len } => {
                let key = self.pack_key(&pack, "pack");
                let body = self
                    .store
                    .get_range(&key, offset, len)
                    .await?
                    .ok_or_else(|| corrupt(&key, "pack listed in its index but missing"))?;
                if body.len() as u64 != len || crate::digest::hash_bytes(&body) != sha {
                    return Err(corrupt(
                        &key,
                        format!("content {sha} does not match its hash"),
                    ));
                }
                Ok(Some(body))
            }
        }
    }

    /// Write the kept content `sha` under the site key `key` (a restore): a server-side
    /// copy from `objects/`, or the pack's bytes (checked against the hash) put there.
    pub async fn content_to_key(
        &self,
        sha: &str,
        key: &str,
        attrs: &Attributes,
        mode: PutMode,
    ) -> std::result::Result<String, StoreError> {
        let missing = || StoreError::NotFound {
            key: self.object_key(sha),
        };
        match self.locate(sha).await.map_err(ledger_to_store)? {
            None => Err(missing()),
            Some(Location::Object) => {
                self.store
                    .copy(&self.object_key(sha), key, attrs, mode)
                    .await
            }
            Some(at @ Location::Pack { .. }) => {
                let body = self
                    .read_at(sha, at)
                    .await
                    .map_err(ledger_to_store)?
                    .ok_or_else(missing)?;
                self.store.put(key, body, attrs, mode).await
            }
        }
    }

    /// Keep the content of local files (verified against the hashes the plan gave them),
    /// and say how each site key can be written from it.
    pub async fn stage_files(
        &self,
        files: Vec<LocalContent>,
        tmp_in: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> std::result::Result<Staged, StageError> {
        let mut staged = Staged::default();
        if files.is_empty() {
            return Ok(staged);
        }
        let (small, large): (Vec<LocalContent>, Vec<LocalContent>) = files
            .into_iter()
            .partition(|f| self.store.prefers_packs() && f.size <= PACK_MAX_FILE);
        if !small.is_empty() {
            std::fs::create_dir_all(tmp_in).map_err(|e| StageError::Io(tmp_in.to_path_buf(), e))?;
            let dir = tempfile::Builder::new()
                .prefix("packs-")
                .tempdir_in(tmp_in)
                .map_err(|e| StageError::Io(tmp_in.to_path_buf(), e))?;
            self.write_packs(small, dir.path(), &mut staged, progress)
                .await?;
            staged.dirs.push(dir);
        }
        let (objects, _) = crate::interrupt::run_bounded(
            large,
            8,
            crate::interrupt::InFlight::Abandon,
            "upload",
            |f| async move {
                self.put_object_file(&f).await?;
                progress(1);
                Ok::<_, StageError>((f.sha256, f.size))
            },
        )
        .await;
        for r in objects {
            let (sha, size) = r?;
            staged.uploaded_objects += 1;
            staged.uploaded_bytes += size;
            staged.by_sha.insert(sha, Staging::Object);
        }
        Ok(staged)
    }

    /// `objects/<sha256>` from a local file, streamed; the stored copy is hashed back, so
    /// a file that changed since the plan never enters the store under the old hash.
    async fn put_object_file(&self, f: &LocalContent) -> std::result::Result<(), StageError> {
        let key = self.object_key(&f.sha256);
        let attrs = Attributes {
            sha256: Some(f.sha256.clone()),
            ..Attributes::default()
        };
        match self
            .store
            .put_file(&key, &f.path, 0, f.size, &attrs, PutMode::Create)
            .await
        {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => return Ok(()),
            Err(e) => return Err(StageError::Store(e)),
        }
        let back = self.store.hash(&key).await.map_err(StageError::Store)?;
        if back.as_ref().map(|(_, sha)| sha.as_str()) != Some(f.sha256.as_str()) {
            let _ = self.store.delete(&key, None).await;
            return Err(StageError::Changed(Changed(f.path.clone())));
        }
        Ok(())
    }

    /// Group small files into packs: each pack is written locally (copying and hashing
    /// every file, refusing one whose bytes changed), uploaded, then indexed.
    async fn write_packs(
        &self,
        files: Vec<LocalContent>,
        dir: &Path,
        staged: &mut Staged,
        progress: &(dyn Fn(u64) + Sync),
    ) -> std::result::Result<(), StageError> {
        let mut groups: Vec<Vec<LocalContent>> = Vec::new();
        let mut size = 0;
        for f in files {
            if groups.is_empty() || size + f.size > PACK_TARGET {
                groups.push(Vec::new());
                size = 0;
            }
            size += f.size;
            groups.last_mut().expect("pushed").push(f);
        }
        // Ctrl-C abandons the packs in flight: a pack no release references is collected.
        let (built, stopped) = crate::interrupt::run_bounded(
            groups.into_iter().enumerate(),
            PACK_UPLOADS,
            crate::interrupt::InFlight::Abandon,
            "pack upload",
            |(n, group)| {
                let path = dir.join(format!("{n}.pack"));
                async move {
                    let count = group.len() as u64;
                    let pack = tokio::task::spawn_blocking(move || build_pack(&path, &group))
                        .await
                        .map_err(|e| StageError::Io(PathBuf::new(), std::io::Error::other(e)))??;
                    crate::failpoint::failpoint("pack-upload").await;
                    self.upload_pack(&pack).await?;
                    progress(count);
                    Ok::<_, StageError>(pack)
                }
            },
        )
        .await;
        // Stopped by Ctrl-C: a pack that failed did so because its build was cut short.
        let built: Vec<BuiltPack> = if stopped {
            built.into_iter().filter_map(Result::ok).collect()
        } else {
            built.into_iter().collect::<Result<_, _>>()?
        };
        let mut idx = self.packs.lock().await;
        for pack in built {
            let path: Arc<Path> = Arc::from(pack.path.as_path());
            let id: Arc<str> = Arc::from(pack.id.as_str());
            idx.packs.insert(id.clone());
            staged.packs += 1;
            staged.uploaded_bytes += pack.size;
            for (sha, offset, len) in pack.entries {
                staged.uploaded_objects += 1;
                idx.entries.entry(sha.clone()).or_insert(Location::Pack {
                    pack: id.clone(),
                    offset,
                    len,
                });
                staged.by_sha.insert(
                    sha,
                    Staging::Range {
                        path: path.clone(),
                        offset,
                        len,
                    },
                );
            }
        }
        Ok(())
    }

    async fn upload_pack(&self, pack: &BuiltPack) -> std::result::Result<(), StageError> {
        let attrs = Attributes {
            content_type: Some("application/octet-stream".into()),
            sha256: Some(pack.sha256.clone()),
            ..Attributes::default()
        };
        let key = self.pack_key(&pack.id, "pack");
        match self
            .store
            .put_file(&key, &pack.path, 0, pack.size, &attrs, PutMode::Create)
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(StageError::Store(e)),
        }
        let idx = PackIdx {
            format: 1,
            pack: pack.id.clone(),
            entries: pack.entries.clone(),
        };
        let body = super::gzip(&serde_json::to_vec(&idx).expect("indexes serialise"));
        if let Some(p) = self.idx_cache(&pack.id) {
            write_cache(&p, &body);
        }
        let idx_attrs = Attributes {
            content_type: Some("application/json".into()),
            content_encoding: Some("gzip".into()),
            ..Attributes::default()
        };
        match self
            .store
            .put(
                &self.pack_key(&pack.id, "idx"),
                body,
                &idx_attrs,
                PutMode::Create,
            )
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(StageError::Store(e)),
        }
    }
}

/// Why staging content failed.
#[derive(Debug)]
pub enum StageError {
    Changed(Changed),
    Io(PathBuf, std::io::Error),
    Store(StoreError),
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Changed(Changed(p)) => {
                write!(f, "{}: the local file changed since the plan", p.display())
            }
            Self::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

fn ledger_to_store(e: LedgerError) -> StoreError {
    match e {
        LedgerError::Store(s) => s,
        other => StoreError::Other(other.to_string()),
    }
}

/// A pack written locally, ready to upload.
struct BuiltPack {
    id: String,
    sha256: String,
    path: PathBuf,
    size: u64,
    entries: Vec<(String, u64, u64)>,
}

/// Concatenate `files` into `path`, hashing each as it is copied (a file whose bytes no
/// longer match the plan is refused) and the whole pack (its id).
fn build_pack(path: &Path, files: &[LocalContent]) -> std::result::Result<BuiltPack, StageError> {
    let io = |p: &Path, e| StageError::Io(p.to_path_buf(), e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| io(path, e))?);
    let mut whole = Sha256::new();
    let mut entries = Vec::with_capacity(files.len());
    let mut offset = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    // The same content twice (two keys, one sha) is packed once.
    let mut seen = HashSet::new();
    for f in files {
        if !seen.insert(f.sha256.as_str()) {
            continue;
        }
        if crate::interrupt::requested() {
            // The upload it was for is abandoned: stop reading.
            return Err(io(path, std::io::Error::other("interrupted")));
        }
        let mut file = std::fs::File::open(&f.path).map_err(|e| io(&f.path, e))?;
        let mut h = Sha256::new();
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| io(&f.path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            whole.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| io(path, e))?;
            len += n as u64;
        }
        if hex::encode(h.finalize()) != f.sha256 || len != f.size {
            return Err(StageError::Changed(Changed(f.path.clone())));
        }
        entries.push((f.sha256.clone(), offset, len));
        offset += len;
    }
    out.flush().map_err(|e| io(path, e))?;
    let sha256 = hex::encode(whole.finalize());
    Ok(BuiltPack {
        id: sha256[..32].to_owned(),
        sha256,
        path: path.to_path_buf(),
        size: offset,
        entries,
    })
}

/// Cache an immutable record on this machine (best effort).
pub(super) fn write_cache(path: &Path, body: &[u8]) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension(format!("tmp{}", crate::digest::unique_token()));
    if std::fs::write(&tmp, body).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
