//! Walking the site: keys from paths, the problems a walk finds (symlinks leaving the
//! site, special files, names that are not UTF-8), and sites that are not build output.

use std::path::{Path, PathBuf};

use super::SiteProblem;

/// A site-relative path as a key-like string (`/`-separated).
pub(super) fn rel_key(rel: &Path) -> String {
    rel.to_string_lossy()
        .split(std::path::MAIN_SEPARATOR)
        .collect::<Vec<_>>()
        .join("/")
}

/// One clean line for an error the walk met: a symlink loop, an unreadable directory.
pub(super) fn walk_problem(site: &Path, e: &ignore::Error) -> SiteProblem {
    let mut err = e;
    let mut path = None;
    loop {
        match err {
            ignore::Error::WithPath {
                path: p,
                err: inner,
            } => {
                path = Some(p.clone());
                err = inner;
            }
            ignore::Error::WithDepth { err: inner, .. }
            | ignore::Error::WithLineNumber { err: inner, .. } => {
                err = inner;
            }
            _ => break,
        }
    }
    let rel = |p: &Path| rel_key(p.strip_prefix(site).unwrap_or(p));
    match err {
        ignore::Error::Loop { ancestor, child } => SiteProblem {
            path: rel(child),
            problem: format!(
                "symlink loop: it points back to {} (an ancestor of itself)",
                if rel(ancestor).is_empty() {
                    "the site root".to_owned()
                } else {
                    rel(ancestor)
                }
            ),
        },
        ignore::Error::Io(io) => match path.as_deref().map(|p| (p, std::fs::read_link(p))) {
            Some((p, Ok(target))) => SiteProblem {
                path: rel(p),
                problem: format!(
                    "broken symlink (points to {}, which does not exist)",
                    target.display()
                ),
            },
            _ => SiteProblem {
                path: path.as_deref().map(rel).unwrap_or_default(),
                problem: format!("cannot read: {io}"),
            },
        },
        other => SiteProblem {
            path: path.as_deref().map(rel).unwrap_or_default(),
            problem: other.to_string(),
        },
    }
}

#[cfg(unix)]
pub(super) fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_fifo() {
        "FIFO (named pipe)"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
pub(super) fn special_kind(_: &std::fs::FileType) -> &'static str {
    "special file"
}

/// A directory that holds far more than a website: the whole file system, the system's
/// directories, a home directory, or the project's git repository.
pub(super) fn unsafe_site(root: &Path, project: Option<&Path>) -> Option<String> {
    if root.parent().is_none() {
        return Some("is the whole file system".into());
    }
    const SYSTEM: [&str; 14] = [
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
        "/sys", "/usr", "/var", "/home",
    ];
    if let Some(sys) = SYSTEM.iter().find(|s| root == Path::new(s)) {
        return Some(format!("is the system directory {sys}"));
    }
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|s| root.starts_with(s))
    {
        return Some("is inside a system pseudo file system".into());
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| h.canonicalize().ok());
    if let Some(home) = home {
        if home == root {
            return Some(format!("is your home directory ({})", home.display()));
        }
        if home.starts_with(root) {
            return Some(format!("holds your home directory ({})", home.display()));
        }
    }
    // The repository the project (driftless.toml) lives in is a project, not a build.
    let repo = project.and_then(|p| p.canonicalize().ok()).and_then(|p| {
        p.ancestors()
            .find(|a| a.join(".git").exists())
            .map(Path::to_path_buf)
    });
    if let Some(repo) = repo
        && repo.starts_with(root)
    {
        return Some(format!(
            "holds the project's git repository ({}): it is a project, not its build output",
            repo.join(".git").display()
        ));
    }
    None
}

/// A file name that is not UTF-8, shown with its bad bytes escaped (`bad\xff.html`), so
/// the person can find the file (a replacement character `�` names none).
pub(super) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
