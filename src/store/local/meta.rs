//! The local store's metadata database (`.driftless-store/meta.sqlite`): each object's
//! ETag, stat fingerprint and attributes, and the move of an earlier version's sidecar
//! files into it.

use std::path::PathBuf;

use fs_err as fs;
use serde::{Deserialize, Serialize};

use super::reserve::disk;
use super::{INTERNAL, LocalStore, fs_io, io};
use crate::store::{Attributes, Result, StoreError};

pub(super) const DB_FILE: &str = "meta.sqlite";

pub(super) fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(format!("local store metadata: {e}"))
}

impl LocalStore {
    /// [`db_err`], saying so when the disk is full (SQLite calls it an I/O error).
    pub(super) fn db_failed(&self, e: rusqlite::Error) -> StoreError {
        match disk(&self.root) {
            Some((_, 0)) => StoreError::Other(format!(
                "local store metadata: {e}: the disk of {} is full\n  → `driftless gc ENV` frees what no retained release needs (it keeps a reserve for this), or free space on the disk",
                self.root.display()
            )),
            _ => db_err(e),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Sidecar {
    pub(super) etag: String,
    pub(super) fingerprint: String,
    pub(super) attrs: Attributes,
}

impl LocalStore {
    /// Run `f` on the metadata database. `create`: open (and create) it for a write; a
    /// read of a store that has none gets `None`.
    pub(super) fn with_db<T>(
        &self,
        create: bool,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut guard = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            let path = self.root.join(INTERNAL).join(DB_FILE);
            if !create && !path.exists() {
                return Ok(None);
            }
            fs::create_dir_all(self.root.join(INTERNAL)).map_err(|e| fs_io("create", e))?;
            if create && !path.exists() {
                self.make_reserve();
            }
            let conn = rusqlite::Connection::open(&path).map_err(|e| self.db_failed(e))?;
            conn.busy_timeout(std::time::Duration::from_secs(60))
                .map_err(|e| self.db_failed(e))?;
            // WAL: readers never block the writer; NORMAL: no fsync per row (a crash of
            // the machine may lose the newest rows: those objects then read as written
            // outside driftless — refused as drift, never trusted).
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| self.db_failed(e))?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| self.db_failed(e))?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS meta (
                    key TEXT PRIMARY KEY,
                    etag TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    attrs TEXT NOT NULL
                ) WITHOUT ROWID",
            )
            .map_err(|e| self.db_failed(e))?;
            *guard = Some(conn);
        }
        let conn = guard.as_ref().expect("opened above");
        f(conn).map(Some).map_err(|e| self.db_failed(e))
    }

    pub(super) fn meta_row(&self, key: &str) -> Result<Option<Sidecar>> {
        let row = self.with_db(false, |c| {
            use rusqlite::OptionalExtension as _;
            c.prepare_cached("SELECT etag, fingerprint, attrs FROM meta WHERE key = ?1")?
                .query_row([key], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()
        })?;
        match row.flatten() {
            Some((etag, fingerprint, attrs)) => Ok(Some(Sidecar {
                etag,
                fingerprint,
                attrs: serde_json::from_str(&attrs).unwrap_or_default(),
            })),
            // A store written by an earlier version: its sidecar file.
            None => Ok(std::fs::read(self.sidecar_path(key))
                .ok()
                .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())),
        }
    }

    pub(super) fn set_meta(&self, key: &str, meta: &Sidecar) -> Result<()> {
        let attrs =
            serde_json::to_string(&meta.attrs).map_err(|e| StoreError::Other(e.to_string()))?;
        self.with_db(true, |c| {
            c.prepare_cached(
                "INSERT INTO meta (key, etag, fingerprint, attrs) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET etag = ?2, fingerprint = ?3, attrs = ?4",
            )?
            .execute((key, &meta.etag, &meta.fingerprint, &attrs))
        })?;
        Ok(())
    }

    pub(super) fn drop_meta(&self, key: &str) -> Result<()> {
        self.with_db(false, |c| {
            c.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                .execute([key])
        })?;
        let _ = std::fs::remove_file(self.sidecar_path(key));
        Ok(())
    }

    /// Move an earlier version's sidecar files into the database, once (under the
    /// write lock).
    pub(super) fn migrate_sidecars(&self) -> Result<()> {
        let dir = self.root.join(INTERNAL).join("meta");
        if !dir.is_dir() {
            return Ok(());
        }
        eprintln!(
            "driftless: moving the local store's per-object metadata into {} (once)",
            self.root.join(INTERNAL).join(DB_FILE).display()
        );
        let mut rows = Vec::new();
        let mut stack = vec![(dir.clone(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(|e| io("list", &d, e))? {
                let entry = entry.map_err(|e| io("list", &d, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry
                    .file_type()
                    .map_err(|e| io("list", &entry.path(), e))?
                    .is_dir()
                {
                    stack.push((entry.path(), format!("{prefix}{name}/")));
                } else if let Some(stem) = name.strip_suffix(".json")
                    && let Ok(sc) = std::fs::read(entry.path())
                    && let Ok(sc) = serde_json::from_slice::<Sidecar>(&sc)
                {
                    rows.push((format!("{prefix}{stem}"), sc));
                }
            }
        }
        self.with_db(true, |c| {
            let tx = c.unchecked_transaction()?;
            for (key, sc) in &rows {
                let attrs = serde_json::to_string(&sc.attrs).unwrap_or_default();
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, etag, fingerprint, attrs) VALUES (?1, ?2, ?3, ?4)",
                    (key, &sc.etag, &sc.fingerprint, &attrs),
                )?;
            }
            tx.commit()
        })?;
        std::fs::remove_dir_all(&dir).map_err(|e| io("remove", &dir, e))?;
        Ok(())
    }

    pub(super) fn sidecar_path(&self, key: &str) -> PathBuf {
        let mut p = self.root.join(INTERNAL).join("meta");
        for s in key.split('/') {
            p.push(s);
        }
        p.set_file_name(format!(
            "{}.json",
            p.file_name().unwrap_or_default().to_string_lossy()
        ));
        p
    }
}
