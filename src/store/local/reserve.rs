//! The file a local store keeps in reserve, and what the disk it is on holds.

use std::path::Path;

use super::{INTERNAL, LocalStore};

/// The file a local store keeps in reserve (`.driftless-store/reserve`): space given back
/// to `gc` when the disk is full, so that it can write its lock and records to free more.
pub(super) const RESERVE: &str = "reserve";

/// The size of the file system of `dir` and the bytes free on it, if it can tell.
pub(super) fn disk(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs only writes into the struct it is given.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &raw mut st) } != 0 {
            return None;
        }
        // (The fields' widths differ between platforms: 32 bits on some.)
        #[allow(clippy::useless_conversion)]
        let (unit, blocks, avail) = (
            u64::from(st.f_frsize),
            u64::from(st.f_blocks),
            u64::from(st.f_bavail),
        );
        Some((blocks.saturating_mul(unit), avail.saturating_mul(unit)))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// How much to keep in reserve on the file system of `dir`: 1% of it, at least 64 KiB
/// and at most 1 MiB.
pub(super) fn reserve_size(dir: &Path) -> u64 {
    const MIN: u64 = 64 * 1024;
    const MAX: u64 = 1024 * 1024;
    disk(dir).map_or(MIN, |(total, _)| (total / 100).clamp(MIN, MAX))
}

impl LocalStore {
    /// Write the reserve file if it is missing (best effort: a disk without the room
    /// for it simply has none).
    pub(super) fn make_reserve(&self) {
        let dir = self.root.join(INTERNAL);
        let path = dir.join(RESERVE);
        if path.exists() {
            return;
        }
        let tmp = dir.join(format!("{RESERVE}.tmp{}", std::process::id()));
        let size = usize::try_from(reserve_size(&dir)).unwrap_or(64 * 1024);
        // Real zeros, not a sparse file: the blocks must be taken to be given back.
        let written =
            std::fs::write(&tmp, vec![0u8; size]).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}
