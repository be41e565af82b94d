//! The hash cache: a file's SHA-256 by (size, mtime, ctime, inode), so an unchanged site is
//! not read again. Stored as compact rows; a file changed within the clock's granularity
//! of a scan is never cached ("racy git").

use crate::site::HashMap;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
pub(super) struct HashCache {
    pub(super) entries: HashMap<String, CacheEntry>,
}

/// Stored as a compact row `[size, mtime, ctime, inode, sha256]`: the cache of a 50,000
/// file site is read on every deploy.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(from = "CacheRow", into = "CacheRow")]
pub(super) struct CacheEntry {
    pub(super) size: u64,
    pub(super) mtime_ns: i128,
    pub(super) ctime_ns: i128,
    pub(super) inode: u64,
    pub(super) sha256: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct CacheRow(
    pub(super) u64,
    pub(super) i128,
    pub(super) i128,
    pub(super) u64,
    pub(super) String,
);

impl From<CacheRow> for CacheEntry {
    fn from(CacheRow(size, mtime_ns, ctime_ns, inode, sha256): CacheRow) -> Self {
        Self {
            size,
            mtime_ns,
            ctime_ns,
            inode,
            sha256,
        }
    }
}

impl From<CacheEntry> for CacheRow {
    fn from(e: CacheEntry) -> Self {
        Self(e.size, e.mtime_ns, e.ctime_ns, e.inode, e.sha256)
    }
}

pub(super) fn stamp(meta: &std::fs::Metadata) -> CacheEntry {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        CacheEntry {
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            sha256: String::new(),
        }
    }
    #[cfg(not(unix))]
    {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        CacheEntry {
            size: meta.len(),
            mtime_ns,
            ctime_ns: 0,
            inode: 0,
            sha256: String::new(),
        }
    }
}

pub(super) fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}
