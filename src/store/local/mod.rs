//! A local directory as an object store (`file://`), the embedded default.
//!
//! It must behave like S3, including compare-and-swap that holds between two processes:
//! every write takes an exclusive `flock` on `<root>/.driftless-store/lock`, checks the
//! condition, writes a temporary file and renames it into place.
//!
//! The ETag of an object is a per-write nonce kept in the store's metadata database
//! (`.driftless-store/meta.sqlite`, one row per object) together with the file's stat
//! fingerprint (inode, ctime, size). A file changed by anything other than this backend
//! no longer matches its fingerprint, so its ETag becomes the fingerprint itself and its
//! stored attributes are dropped: an out-of-band edit is always visible as a changed
//! ETag, never mistaken for what driftless wrote.
//!
//! Earlier versions kept one JSON sidecar file per object under `.driftless-store/meta/`
//! (a 4 KB block each, on most file systems); they are read as a fallback and moved into
//! the database by the first write. Whole files are cloned where the file system offers
//! copy-on-write (btrfs, XFS, APFS), so the served files and their snapshots share
//! blocks there; never hard-linked, since an in-place edit of a hard-linked file would
//! change its snapshot too.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use fs_err as fs;

use super::{Attributes, Object, ObjectMeta, PutMode, Result, Store, StoreError, validate_key};

mod meta;
mod reserve;
#[cfg(test)]
mod tests;

use meta::Sidecar;
use reserve::{RESERVE, disk};

/// Backend-private directory inside the root; never listed, never a valid key.
const INTERNAL: &str = ".driftless-store";

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// The metadata database, opened on first use (a read never creates it).
    db: std::sync::Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// fs-err already puts the path in its message; keep the operation.
fn fs_io(op: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: String::new(),
        source,
    }
}

fn fingerprint(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        format!(
            "{:x}-{:x}.{:x}-{:x}",
            meta.ino(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.len()
        )
    }
    #[cfg(not(unix))]
    {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{mtime:x}-{:x}", meta.len())
    }
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            db: std::sync::Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check_key(key: &str) -> Result<()> {
        validate_key(key)?;
        if key == INTERNAL || key.starts_with(&format!("{INTERNAL}/")) {
            return Err(StoreError::InvalidKey {
                key: key.to_owned(),
                reason: "reserved by the local store",
            });
        }
        Ok(())
    }

    /// What the `current` symlink points at for `slot` (relative, so the store can move).
    fn slot_target(&self, slot: &str) -> String {
        super::slot_prefix(slot).trim_end_matches('/').to_owned()
    }

    /// The live pointer: the slot `current` links to, and a token naming the link.
    fn read_pointer(&self) -> Result<Option<(String, String)>> {
        let link = self.root.join(super::POINTER_KEY);
        match std::fs::read_link(&link) {
            Ok(target) => {
                let target = target.to_string_lossy().into_owned();
                let slot = target
                    .strip_prefix("slots/")
                    .filter(|s| !s.is_empty() && !s.contains('/'))
                    .ok_or_else(|| {
                        StoreError::Other(format!(
                            "{}: the live pointer links to {target:?}, not to a slot (slots/a or slots/b)",
                            link.display()
                        ))
                    })?;
                // The token names this very link (a new one is renamed in on every
                // switch), so a switch away and back is still seen as a change.
                let meta = std::fs::symlink_metadata(&link).map_err(|e| io("stat", &link, e))?;
                #[cfg(unix)]
                let ino = std::os::unix::fs::MetadataExt::ino(&meta);
                #[cfg(not(unix))]
                let ino = fingerprint(&meta);
                Ok(Some((slot.to_owned(), format!("{target}@{ino}"))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(StoreError::Other(format!(
                    "{}: expected the live pointer (a symlink), found a file or directory",
                    link.display()
                )))
            }
            Err(e) => Err(io("readlink", &link, e)),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |p, s| p.join(s))
    }

    /// Run `f` holding the store-wide write lock (an OS file lock, so it also excludes
    /// other processes; released when the file is closed, even if the process dies).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let dir = self.root.join(INTERNAL);
        fs::create_dir_all(&dir).map_err(|e| fs_io("create", e))?;
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        file.lock().map_err(|e| io("lock", &path, e))?;
        let out = self.migrate_sidecars().and_then(|()| f());
        drop(file);
        out
    }

    /// The object's current listing facts and attributes, from stat + sidecar.
    fn current(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path(key);
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(io("stat", &path, e)),
        };
        let fp = fingerprint(&meta);
        let sidecar = self.meta_row(key)?.filter(|s| s.fingerprint == fp);
        let (etag, attrs) = match sidecar {
            Some(s) => (s.etag, s.attrs),
            None => (format!("x{fp}"), Attributes::default()),
        };
        Ok(Some(Object {
            meta: ObjectMeta {
                key: key.to_owned(),
                size: meta.len(),
                etag,
            },
            attrs,
        }))
    }

    fn check_mode(&self, key: &str, mode: &PutMode) -> Result<()> {
        match mode {
            PutMode::Overwrite => Ok(()),
            PutMode::Create => match self.current(key)? {
                None => Ok(()),
                Some(_) => Err(StoreError::AlreadyExists { key: key.into() }),
            },
            PutMode::IfMatch(want) => match self.current(key)? {
                Some(o) if &o.meta.etag == want => Ok(()),
                _ => Err(StoreError::Precondition {
                    key: key.into(),
                    expected: want.clone(),
                }),
            },
        }
    }

    /// Write via a temporary file and rename, then record the sidecar. Caller holds the lock.
    fn write(&self, key: &str, body: &[u8], attrs: &Attributes) -> Result<String> {
        self.write_with(key, attrs, |tmp| {
            let mut f = fs::File::create(tmp).map_err(|e| fs_io("create", e))?;
            f.write_all(body).map_err(|e| fs_io("write", e))
        })
    }

    /// Write `len` bytes of `src` from `offset`, streamed; the whole of a file is cloned
    /// (copy-on-write where the file system offers it: btrfs, XFS, APFS), never read into
    /// memory. Caller holds the lock.
    fn write_file(
        &self,
        key: &str,
        src: &Path,
        offset: u64,
        len: u64,
        attrs: &Attributes,
    ) -> Result<String> {
        self.write_with(key, attrs, |tmp| {
            let whole = offset == 0
                && std::fs::metadata(src)
                    .map_err(|e| io("stat", src, e))?
                    .len()
                    == len;
            if whole {
                reflink_copy::reflink_or_copy(src, tmp).map_err(|e| io("copy", src, e))?;
            } else {
                use std::io::{Seek as _, SeekFrom};
                let mut from = std::fs::File::open(src).map_err(|e| io("open", src, e))?;
                from.seek(SeekFrom::Start(offset))
                    .map_err(|e| io("seek", src, e))?;
                let mut to = fs::File::create(tmp).map_err(|e| fs_io("create", e))?;
                std::io::copy(&mut std::io::Read::take(from, len), &mut to)
                    .map_err(|e| io("copy", src, e))?;
            }
            let got = std::fs::metadata(tmp)
                .map_err(|e| io("stat", tmp, e))?
                .len();
            if got != len {
                return Err(io(
                    "copy",
                    src,
                    std::io::Error::other(format!("wrote {got} bytes, expected {len}")),
                ));
            }
            Ok(())
        })
    }

    fn write_with(
        &self,
        key: &str,
        attrs: &Attributes,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<String> {
        let tmp_dir = self.root.join(INTERNAL).join("tmp");
        fs::create_dir_all(&tmp_dir).map_err(|e| fs_io("create", e))?;
        let nonce = crate::digest::unique_token();
        let tmp = tmp_dir.join(&nonce);
        if let Err(e) = fill(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            // Name what was being written, not only the temporary file.
            return Err(match e {
                StoreError::Io { op, path, source } if path.is_empty() => StoreError::Io {
                    op,
                    path: key.to_owned(),
                    source,
                },
                other => other,
            });
        }
        let dest = self.path(key);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| fs_io("create", e))?;
        }
        if key.starts_with("slots/") || key.starts_with("previews/") {
            // What a web server serves is read-only: a hand edit of a served file takes
            // a deliberate chmod (and is then seen as drift).
            let mut perms = fs::metadata(&tmp)
                .map_err(|e| fs_io("stat", e))?
                .permissions();
            perms.set_readonly(true);
            fs::set_permissions(&tmp, perms).map_err(|e| fs_io("chmod", e))?;
        }
        fs::rename(&tmp, &dest).map_err(|e| fs_io("rename", e))?;
        let meta = fs::metadata(&dest).map_err(|e| fs_io("stat", e))?;
        self.set_meta(
            key,
            &Sidecar {
                etag: nonce.clone(),
                fingerprint: fingerprint(&meta),
                attrs: attrs.clone(),
            },
        )?;
        Ok(nonce)
    }

    fn remove(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("delete", &path, e)),
        }
        self.drop_meta(key)?;
        // Remove now-empty parent directories, as S3 has no directories.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || std::fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    fn list_sync(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.walk(prefix, None)
    }

    fn walk(&self, prefix: &str, exclude: Option<&str>) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, key_prefix)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("list", &dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue; // not representable as a key; never written by driftless
                };
                if key_prefix.is_empty() && name == INTERNAL {
                    continue;
                }
                let key = format!("{key_prefix}{name}");
                let ft = entry
                    .file_type()
                    .map_err(|e| io("list", &entry.path(), e))?;
                if ft.is_dir() {
                    let dir_key = format!("{key}/");
                    if exclude.is_some_and(|x| dir_key.starts_with(x)) {
                        continue;
                    }
                    if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                        stack.push((entry.path(), dir_key));
                    }
                } else if key.starts_with(prefix)
                    && !exclude.is_some_and(|x| key.starts_with(x))
                    && let Some(o) = self.current(&key)?
                {
                    out.push(o.meta);
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(unix)]
fn symlink(target: &str, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn symlink(target: &str, at: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, at)
}

/// Make a rename in `dir` durable (best effort: not every file system can).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("local store task failed: {e}")))?
}

#[async_trait]
impl Store for LocalStore {
    async fn free_reserve(&self) -> Result<u64> {
        let path = self.root.join(INTERNAL).join(RESERVE);
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => return Ok(0),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io("remove", &path, e)),
        }
    }

    async fn keep_reserve(&self) {
        self.make_reserve();
    }

    async fn room(&self) -> Option<u64> {
        disk(&self.root).map(|(_, free)| free)
    }

    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || this.list_sync(&prefix)).await
    }

    async fn pointer(&self) -> Result<Option<(String, String)>> {
        let this = self.clone();
        blocking(move || this.read_pointer()).await
    }

    async fn remove_pointer(&self, expected: &str) -> Result<()> {
        let this = self.clone();
        let expected = expected.to_owned();
        blocking(move || {
            this.locked(|| {
                if this.read_pointer()?.map(|(_, token)| token).as_deref()
                    != Some(expected.as_str())
                {
                    return Err(StoreError::Precondition {
                        key: super::POINTER_KEY.into(),
                        expected,
                    });
                }
                let link = this.root.join(super::POINTER_KEY);
                std::fs::remove_file(&link).map_err(|e| io("remove", &link, e))
            })
        })
        .await
    }

    async fn set_pointer(&self, slot: &str, expected: Option<&str>) -> Result<String> {
        super::validate_key(slot)?;
        let this = self.clone();
        let slot = slot.to_owned();
        let expected = expected.map(str::to_owned);
        blocking(move || {
            this.locked(|| {
                let now = this.read_pointer()?.map(|(_, token)| token);
                if now.as_deref() != expected.as_deref() {
                    return Err(match expected {
                        None => StoreError::AlreadyExists {
                            key: super::POINTER_KEY.into(),
                        },
                        Some(expected) => StoreError::Precondition {
                            key: super::POINTER_KEY.into(),
                            expected,
                        },
                    });
                }
                // A new symlink beside the old one, renamed over it: rename(2) replaces
                // it atomically, so a server resolving `current` gets one slot or the
                // other.
                let target = this.slot_target(&slot);
                let tmp = this
                    .root
                    .join(INTERNAL)
                    .join(format!("current-{}", &crate::digest::unique_token()[..12]));
                symlink(&target, &tmp).map_err(|e| io("symlink", &tmp, e))?;
                let link = this.root.join(super::POINTER_KEY);
                if let Err(e) = std::fs::rename(&tmp, &link) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io("rename", &link, e));
                }
                sync_dir(&this.root);
                let (_, token) = this.read_pointer()?.ok_or_else(|| {
                    StoreError::Other(format!("{}: the live pointer vanished", link.display()))
                })?;
                Ok(token)
            })
        })
        .await
    }

    async fn list_except(&self, exclude: &str) -> Result<Vec<ObjectMeta>> {
        let this = self.clone();
        let exclude = exclude.to_owned();
        blocking(move || this.walk("", Some(&exclude))).await
    }

    async fn head(&self, key: &str) -> Result<Option<Object>> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || this.current(&key)).await
    }

    async fn get(&self, key: &str) -> Result<Option<(Object, Bytes)>> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || {
            // A missing object needs no lock (and a read must never create the store).
            if this.current(&key)?.is_none() {
                return Ok(None);
            }
            // Read under the lock so the body and its ETag belong to the same write.
            this.locked(|| {
                let Some(obj) = this.current(&key)? else {
                    return Ok(None);
                };
                let path = this.path(&key);
                match std::fs::read(&path) {
                    Ok(body) => Ok(Some((obj, Bytes::from(body)))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io("read", &path, e)),
                }
            })
        })
        .await
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        let attrs = attrs.clone();
        blocking(move || {
            this.locked(|| {
                this.check_mode(&key, &mode)?;
                this.write(&key, &body, &attrs)
            })
        })
        .await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        Self::check_key(from)?;
        Self::check_key(to)?;
        let this = self.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        let attrs = attrs.clone();
        blocking(move || {
            this.locked(|| {
                let src = this.path(&from);
                let len = match std::fs::metadata(&src) {
                    Ok(m) if m.is_file() => m.len(),
                    Ok(_) => return Err(StoreError::NotFound { key: from.clone() }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StoreError::NotFound { key: from.clone() });
                    }
                    Err(e) => return Err(io("stat", &src, e)),
                };
                this.check_mode(&to, &mode)?;
                this.write_file(&to, &src, 0, len, &attrs)
            })
        })
        .await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        offset: u64,
        len: u64,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        Self::check_key(key)?;
        let this = self.clone();
        let (key, path, attrs) = (key.to_owned(), path.to_path_buf(), attrs.clone());
        blocking(move || {
            this.locked(|| {
                this.check_mode(&key, &mode)?;
                this.write_file(&key, &path, offset, len, &attrs)
            })
        })
        .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Bytes>> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || {
            let Some(obj) = this.current(&key)? else {
                return Ok(None);
            };
            let len = len.min(obj.meta.size.saturating_sub(offset));
            super::read_region(&this.path(&key), offset.min(obj.meta.size), len).map(Some)
        })
        .await
    }

    async fn hash(&self, key: &str) -> Result<Option<(Object, String)>> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || {
            let Some(obj) = this.current(&key)? else {
                return Ok(None);
            };
            let path = this.path(&key);
            let sha = crate::digest::hash_file(&path).map_err(|e| io("read", &path, e))?;
            // Changed while hashing: judge it by what it is now.
            match this.current(&key)? {
                Some(now) if now.meta.etag == obj.meta.etag => Ok(Some((obj, sha))),
                Some(_) => Err(StoreError::Other(format!(
                    "{key}: changed while being read; try again"
                ))),
                None => Ok(None),
            }
        })
        .await
    }

    async fn get_to_file(&self, key: &str, to: &Path) -> Result<Option<Object>> {
        Self::check_key(key)?;
        let this = self.clone();
        let (key, to) = (key.to_owned(), to.to_path_buf());
        blocking(move || {
            let Some(obj) = this.current(&key)? else {
                return Ok(None);
            };
            let src = this.path(&key);
            reflink_copy::reflink_or_copy(&src, &to).map_err(|e| io("copy", &src, e))?;
            Ok(Some(obj))
        })
        .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        Self::check_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        let if_match = if_match.map(str::to_owned);
        blocking(move || {
            this.locked(|| {
                if let Some(want) = &if_match {
                    match this.current(&key)? {
                        None => return Err(StoreError::NotFound { key: key.clone() }),
                        Some(o) if &o.meta.etag != want => {
                            return Err(StoreError::Precondition {
                                key: key.clone(),
                                expected: want.clone(),
                            });
                        }
                        Some(_) => {}
                    }
                }
                this.remove(&key)
            })
        })
        .await
    }
}
