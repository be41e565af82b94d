//! Walk the site, decide each file's key and headers, and hash it.
//!
//! Hashing is parallel and cached by (key, size, mtime, ctime, inode), so a no-op
//! deploy of an unchanged site reads no file contents. The scan must never follow a
//! symlink out of the site, never include secrets the defaults exclude, and never
//! produce two files with one key.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::config::{Precompress, Rule};
use crate::digest::{hash_bytes, hash_file};
use crate::store::Attributes;

/// Excluded from every scan (on top of the config's `ignore` and `.driftlessignore`),
/// with gitignore semantics: version control, secrets and credentials a build directory
/// should never publish, and OS junk. Each exclusion is reported in the plan; the
/// config's `include` globs bring back a file these would keep back.
pub const DEFAULT_IGNORES: &[&str] = &[
    // version control
    ".git/",
    ".hg/",
    ".svn/",
    // environment and package-manager credentials
    ".env",
    ".env.*",
    ".npmrc",
    ".pypirc",
    ".yarnrc.yml",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".htpasswd",
    // cloud and cluster credentials
    ".aws/",
    ".azure/",
    ".gcloud/",
    ".kube/",
    ".docker/",
    ".ssh/",
    ".gnupg/",
    "credentials.json",
    "client_secret*.json",
    // keys and certificates
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    // infrastructure state and database dumps
    "*.tfstate",
    "*.tfstate.*",
    ".terraform/",
    "*.sql",
    "*.sql.gz",
    "*.dump",
    // OS and editor junk
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "*.swp",
    "*~",
];

/// Driftless's own files: never deployed, and not worth reporting.
const OWN_FILES: &[&str] = &[".driftless/", IGNORE_FILE];

pub const IGNORE_FILE: &str = ".driftlessignore";

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "site directory {path} does not exist\n  → build the site first, or fix `site` in driftless.toml"
    )]
    SiteMissing { path: String },
    #[error("site {path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("walking the site: {0}")]
    Walk(#[from] ignore::Error),
    #[error(
        "site = {path:?} {why}: deploying it would publish far more than a website\n  → point `site` in driftless.toml at the build output directory (dist, build, public, ...)"
    )]
    UnsafeSite { path: String, why: String },
}

/// Problems with the site's content: refused (exit 3), naming every culprit.
#[derive(Debug, Clone, Serialize)]
pub struct SiteProblem {
    pub path: String,
    pub problem: String,
}

/// One file of the local site, ready to upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalFile {
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub attrs: Attributes,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanStats {
    pub files: usize,
    pub bytes: u64,
    /// Files whose contents were read and hashed in this scan.
    pub hashed: usize,
    /// Files whose hash came from the cache without reading them.
    pub cached: usize,
    /// What the built-in exclusions kept back (site-relative; directories end in `/`).
    #[serde(default)]
    pub excluded: Vec<String>,
}

#[derive(Debug)]
pub struct Scan {
    pub files: BTreeMap<String, LocalFile>,
    pub problems: Vec<SiteProblem>,
    pub stats: ScanStats,
}

#[derive(Serialize, Deserialize, Default)]
struct HashCache {
    entries: HashMap<String, CacheEntry>,
}

/// Stored as a compact row `[size, mtime, ctime, inode, sha256]`: the cache of a 50,000
/// file site is read on every deploy.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(from = "CacheRow", into = "CacheRow")]
struct CacheEntry {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    sha256: String,
}

/// What a walk found: files to hash, problems, and what the built-in exclusions kept back.
type Walked = (Vec<Candidate>, Vec<SiteProblem>, Vec<String>);

#[derive(Serialize, Deserialize)]
struct CacheRow(u64, i128, i128, u64, String);

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

struct Candidate {
    key: String,
    path: PathBuf,
    stamp: CacheEntry, // sha256 empty until known
}

pub struct Scanner<'a> {
    pub site: &'a Path,
    pub ignore: &'a [String],
    /// Globs that bring back files the built-in exclusions would keep back.
    pub include: &'a [String],
    /// Files never deployed whatever the rules say (the project's `driftless.toml`).
    pub skip: &'a [PathBuf],
    /// The project directory (where `driftless.toml` is): a site holding its git
    /// repository is refused.
    pub project: Option<&'a Path>,
    pub rules: &'a [Rule],
    /// Where the hash cache lives (`None`: no cache).
    pub cache: Option<PathBuf>,
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Scanner<'_> {
    pub fn scan(&self) -> Result<Scan, ScanError> {
        let site = match std::fs::metadata(self.site) {
            Ok(m) if m.is_dir() => self.site,
            Ok(_) => {
                return Err(ScanError::NotADirectory {
                    path: self.site.display().to_string(),
                });
            }
            Err(_) => {
                return Err(ScanError::SiteMissing {
                    path: self.site.display().to_string(),
                });
            }
        };
        let root = site.canonicalize().map_err(|source| ScanError::Io {
            path: site.display().to_string(),
            source,
        })?;
        if let Some(why) = unsafe_site(&root, self.project) {
            return Err(ScanError::UnsafeSite {
                path: self.site.display().to_string(),
                why,
            });
        }
        let (candidates, mut problems, excluded) = self.walk(site, &root)?;

        let cache_file = self.cache.as_ref().map(|c| c.join("hashes-v2.json"));
        let cache: HashCache = cache_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();

        let total = candidates.len() as u64;
        let done = AtomicU64::new(0);
        let hashed = AtomicU64::new(0);
        let compressed_dir = self.cache.as_ref().map_or_else(
            || std::env::temp_dir().join("driftless-compressed"),
            |c| c.join("compressed"),
        );
        type Hashed = (Candidate, String, Option<Packed>);
        let results: Vec<Result<Hashed, SiteProblem>> = candidates
            .into_par_iter()
            .map(|c| {
                let cached = cache.entries.get(&c.key).filter(|e| {
                    let mut want = c.stamp.clone();
                    want.sha256.clone_from(&e.sha256);
                    **e == want
                });
                let sha = match cached {
                    Some(e) => e.sha256.clone(),
                    None => {
                        hashed.fetch_add(1, Ordering::Relaxed);
                        hash_file(&c.path).map_err(|e| SiteProblem {
                            path: c.key.clone(),
                            problem: format!("cannot read: {e}"),
                        })?
                    }
                };
                let packed = match self.rules.iter().find(|r| r.matches(&c.key)) {
                    Some(Rule {
                        precompress: Some(enc),
                        ..
                    }) => Some(precompressed(&compressed_dir, &c.path, &sha, *enc).map_err(
                        |e| SiteProblem {
                            path: c.key.clone(),
                            problem: format!("cannot precompress ({}): {e}", enc.token()),
                        },
                    )?),
                    _ => None,
                };
                (self.progress)(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok((c, sha, packed))
            })
            .collect();

        let now_ns = now_ns();
        // The cache is updated in place (one map, not two): stale rows are dropped below.
        let mut new_cache = cache;
        let mut files = BTreeMap::new();
        let mut stats = ScanStats::default();
        for r in results {
            match r {
                Err(p) => problems.push(p),
                Ok((c, sha, packed)) => {
                    // A file modified within the clock's granularity of this scan could
                    // change again without changing its stamp: never cache it ("racy git").
                    if now_ns - c.stamp.mtime_ns > 2_000_000_000 {
                        let fresh = new_cache.entries.get(&c.key).is_some_and(|e| {
                            e.sha256 == sha
                                && e.size == c.stamp.size
                                && e.mtime_ns == c.stamp.mtime_ns
                                && e.ctime_ns == c.stamp.ctime_ns
                                && e.inode == c.stamp.inode
                        });
                        if !fresh {
                            let mut e = c.stamp.clone();
                            e.sha256.clone_from(&sha);
                            new_cache.entries.insert(c.key.clone(), e);
                        }
                    } else {
                        new_cache.entries.remove(&c.key);
                    }
                    stats.files += 1;
                    stats.bytes += c.stamp.size;
                    // A precompressed file is uploaded (and hashed) as its compressed copy.
                    let (path, size, sha) = match packed {
                        Some(p) => (p.path, p.size, p.sha256),
                        None => (c.path, c.stamp.size, sha),
                    };
                    let attrs = attributes(&c.key, self.rules, &sha);
                    files.insert(
                        c.key.clone(),
                        LocalFile {
                            key: c.key,
                            path,
                            size,
                            sha256: sha,
                            attrs,
                        },
                    );
                }
            }
        }
        new_cache.entries.retain(|k, _| files.contains_key(k));
        stats.hashed = usize::try_from(hashed.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        stats.excluded = excluded;
        stats.cached = stats.files - stats.hashed.min(stats.files);
        if let Some(p) = &cache_file {
            // The cache is an optimisation: failing to write it must not fail a deploy.
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(json) = serde_json::to_vec(&new_cache) {
                let tmp = p.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, json).is_ok() {
                    let _ = std::fs::rename(&tmp, p);
                }
            }
        }
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Scan {
            files,
            problems,
            stats,
        })
    }

    fn walk(&self, site: &Path, root: &Path) -> Result<Walked, ScanError> {
        let mut ob = OverrideBuilder::new(site);
        for pattern in OWN_FILES
            .iter()
            .copied()
            .chain(self.ignore.iter().map(String::as_str))
        {
            ob.add(&format!("!{pattern}"))?;
        }
        let overrides = ob.build()?;
        let defaults = {
            let mut b = ignore::gitignore::GitignoreBuilder::new(site);
            for pattern in DEFAULT_IGNORES {
                b.add_line(None, pattern)?;
            }
            b.build()?
        };
        let include = {
            let mut b = globset::GlobSetBuilder::new();
            for pattern in self.include {
                b.add(globset::Glob::new(pattern).map_err(|e| {
                    ScanError::Walk(ignore::Error::Glob {
                        glob: Some(pattern.clone()),
                        err: e.to_string(),
                    })
                })?);
            }
            b.build().map_err(|e| {
                ScanError::Walk(ignore::Error::Glob {
                    glob: None,
                    err: e.to_string(),
                })
            })?
        };
        let excluded = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Files to skip, as paths relative to the site (resolved once, not per entry).
        let skip: Vec<PathBuf> = self
            .skip
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        let walker = {
            let excluded = excluded.clone();
            let site_dir = site.to_path_buf();
            WalkBuilder::new(site)
                .standard_filters(false)
                .hidden(false)
                .follow_links(true)
                .add_custom_ignore_filename(IGNORE_FILE)
                .overrides(overrides)
                .sort_by_file_name(std::cmp::Ord::cmp)
                .filter_entry(move |e| {
                    if e.depth() == 0 {
                        return true;
                    }
                    let rel = e.path().strip_prefix(&site_dir).unwrap_or(e.path());
                    if skip.iter().any(|s| s == rel) {
                        return false;
                    }
                    let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                    if !defaults.matched(rel, is_dir).is_ignore() {
                        return true;
                    }
                    let shown = rel_key(rel);
                    if include.is_match(&shown) {
                        return true;
                    }
                    if let Ok(mut x) = excluded.lock() {
                        x.push(if is_dir { format!("{shown}/") } else { shown });
                    }
                    false
                })
                .build()
        };

        let mut out = Vec::new();
        let mut problems = Vec::new();
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push(walk_problem(site, &e));
                    continue;
                }
            };
            let path = entry.path();
            if path == site {
                continue;
            }
            let rel = path.strip_prefix(site).unwrap_or(path);
            if entry.path_is_symlink() {
                match path.canonicalize() {
                    Ok(target) if target.starts_with(root) => {}
                    Ok(target) => {
                        problems.push(SiteProblem {
                            path: rel_key(rel),
                            problem: format!(
                                "symlink leaves the site (points to {})",
                                target.display()
                            ),
                        });
                        continue;
                    }
                    Err(_) => {
                        let to = std::fs::read_link(path)
                            .map(|t| format!(" (points to {}, which does not exist)", t.display()))
                            .unwrap_or_default();
                        problems.push(SiteProblem {
                            path: rel_key(rel),
                            problem: format!("broken symlink{to}"),
                        });
                        continue;
                    }
                }
            }
            let Some(ft) = entry.file_type() else {
                continue;
            };
            if ft.is_dir() {
                continue;
            }
            if !ft.is_file() {
                // Opening a FIFO would wait forever; a socket or device is not content.
                problems.push(SiteProblem {
                    path: rel_key(rel),
                    problem: format!(
                        "is a {}, not a regular file: remove it from the build",
                        special_kind(&ft)
                    ),
                });
                continue;
            }
            let Some(rel_str) = rel.to_str() else {
                problems.push(SiteProblem {
                    path: escape_bytes(rel.as_os_str().as_encoded_bytes()),
                    problem: "file name is not valid UTF-8; rename it (object keys are UTF-8)"
                        .into(),
                });
                continue;
            };
            let key: String = rel_key(rel).nfc().collect();
            if key.chars().any(char::is_control) {
                problems.push(SiteProblem {
                    path: rel_str.to_owned(),
                    problem: "file name contains a control character (shown escaped): rename it"
                        .into(),
                });
                continue;
            }
            if let Err(e) = crate::store::validate_key(&key) {
                problems.push(SiteProblem {
                    path: rel_str.to_owned(),
                    problem: e.to_string(),
                });
                continue;
            }
            if let Some(other) = seen.insert(key.clone(), rel.to_path_buf()) {
                problems.push(SiteProblem {
                    path: rel_str.to_owned(),
                    problem: format!(
                        "has the same key {key:?} as {} after Unicode NFC normalisation",
                        other.display()
                    ),
                });
                continue;
            }
            let meta = std::fs::metadata(path).map_err(|source| ScanError::Io {
                path: path.display().to_string(),
                source,
            })?;
            out.push(Candidate {
                key,
                path: path.to_path_buf(),
                stamp: stamp(&meta),
            });
        }
        let mut excluded = std::mem::take(
            &mut *excluded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        excluded.sort();
        Ok((out, problems, excluded))
    }
}

/// A site-relative path as a key-like string (`/`-separated).
fn rel_key(rel: &Path) -> String {
    rel.to_string_lossy()
        .split(std::path::MAIN_SEPARATOR)
        .collect::<Vec<_>>()
        .join("/")
}

/// One clean line for an error the walk met: a symlink loop, an unreadable directory.
fn walk_problem(site: &Path, e: &ignore::Error) -> SiteProblem {
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
fn special_kind(ft: &std::fs::FileType) -> &'static str {
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
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "special file"
}

/// A directory that holds far more than a website: the whole file system, the system's
/// directories, a home directory, or the project's git repository.
fn unsafe_site(root: &Path, project: Option<&Path>) -> Option<String> {
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

fn stamp(meta: &std::fs::Metadata) -> CacheEntry {
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

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// The compressed copy of a site file, as uploaded.
struct Packed {
    path: PathBuf,
    size: u64,
    sha256: String,
}

/// Compress the file whose content hash is `sha` once: the result is kept in `dir` under
/// that hash, so later scans (and re-runs) reuse it without compressing again. Output is
/// deterministic (no timestamp in the gzip header), so its hash is stable across machines.
fn precompressed(dir: &Path, path: &Path, sha: &str, enc: Precompress) -> std::io::Result<Packed> {
    let out = dir.join(format!("{sha}.{}", enc.token()));
    let sum = dir.join(format!("{sha}.{}.sha256", enc.token()));
    if let (Ok(meta), Ok(h)) = (std::fs::metadata(&out), std::fs::read_to_string(&sum))
        && h.len() == 64
    {
        return Ok(Packed {
            path: out,
            size: meta.len(),
            sha256: h,
        });
    }
    let input = std::fs::read(path)?;
    if hash_bytes(&input) != sha {
        return Err(std::io::Error::other(
            "the file changed while it was being scanned",
        ));
    }
    let bytes = compress(&input, enc)?;
    let sha256 = hash_bytes(&bytes);
    std::fs::create_dir_all(dir)?;
    let tmp = |p: &Path| p.with_extension(format!("tmp{}", crate::digest::unique_token()));
    for (target, contents) in [(&out, &bytes[..]), (&sum, sha256.as_bytes())] {
        let t = tmp(target);
        std::fs::write(&t, contents)?;
        std::fs::rename(&t, target)?;
    }
    Ok(Packed {
        path: out,
        size: bytes.len() as u64,
        sha256,
    })
}

/// Compress with the strongest setting: it is done once per content, not per request.
pub fn compress(input: &[u8], enc: Precompress) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    match enc {
        Precompress::Gzip => {
            let mut w = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            w.write_all(input)?;
            w.finish()
        }
        Precompress::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 64 * 1024, 11, 22);
                w.write_all(input)?;
            }
            Ok(out)
        }
    }
}

/// The inverse of [`compress`]: `pull` gives back the source a precompressed object was
/// made from, so a pulled site re-deploys to the same bytes.
pub fn decompress(input: &[u8], enc: Precompress) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match enc {
        Precompress::Gzip => {
            flate2::read::GzDecoder::new(input).read_to_end(&mut out)?;
        }
        Precompress::Br => {
            brotli::Decompressor::new(input, 64 * 1024).read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// Headers for `key`: the first matching rule, then defaults by extension.
pub fn attributes(key: &str, rules: &[Rule], sha256: &str) -> Attributes {
    let rule = rules.iter().find(|r| r.matches(key));
    Attributes {
        content_type: rule
            .and_then(|r| r.content_type.clone())
            .or_else(|| Some(content_type(key))),
        cache_control: rule.and_then(|r| r.cache_control.clone()),
        content_encoding: rule.and_then(|r| r.content_encoding.clone()),
        sha256: Some(sha256.to_owned()),
    }
}

/// Content-Type by extension. Web-critical types are pinned here because generic MIME
/// tables get them wrong or old (`application/javascript` for modules, no avif, ...).
pub fn content_type(key: &str) -> String {
    let ext = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let pinned = match ext.as_str() {
        "html" | "htm" => Some("text/html; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "js" | "mjs" | "cjs" => Some("text/javascript; charset=utf-8"),
        "json" | "map" => Some("application/json"),
        "webmanifest" => Some("application/manifest+json"),
        "txt" => Some("text/plain; charset=utf-8"),
        "xml" => Some("application/xml"),
        "svg" => Some("image/svg+xml"),
        "wasm" => Some("application/wasm"),
        "woff2" => Some("font/woff2"),
        "woff" => Some("font/woff"),
        "ttf" => Some("font/ttf"),
        "otf" => Some("font/otf"),
        "webp" => Some("image/webp"),
        "avif" => Some("image/avif"),
        "ico" => Some("image/x-icon"),
        "md" => Some("text/markdown; charset=utf-8"),
        _ => None,
    };
    if let Some(t) = pinned {
        return t.to_owned();
    }
    match mime_guess::from_ext(&ext).first() {
        Some(m) if m.type_() == mime_guess::mime::TEXT => format!("{m}; charset=utf-8"),
        Some(m) => m.to_string(),
        None => "application/octet-stream".to_owned(),
    }
}

/// A file name that is not UTF-8, shown with its bad bytes escaped (`bad\xff.html`), so
/// the person can find the file (a replacement character `�` names none).
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner<'a>(site: &'a Path, cache: Option<PathBuf>) -> Scanner<'a> {
        Scanner {
            site,
            ignore: &[],
            include: &[],
            skip: &[],
            project: None,
            rules: &[],
            cache,
            progress: &|_, _| {},
        }
    }

    #[test]
    fn content_types_for_the_modern_web() {
        for (k, t) in [
            ("a.wasm", "application/wasm"),
            ("f/x.woff2", "font/woff2"),
            ("i.webp", "image/webp"),
            ("i.AVIF", "image/avif"),
            ("m.mjs", "text/javascript; charset=utf-8"),
            ("s.svg", "image/svg+xml"),
            ("d.json", "application/json"),
            ("index.html", "text/html; charset=utf-8"),
            ("p.png", "image/png"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(k), t, "{k}");
        }
    }

    #[test]
    fn ignores_secrets_and_junk_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path();
        for f in [
            "index.html",
            ".env",
            ".env.production",
            "certs/site.pem",
            ".DS_Store",
            ".git/config",
            "a/.well-known/x.txt",
            "skip.log",
            "notes.tmp",
        ] {
            let p = s.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::write(s.join(IGNORE_FILE), "*.log\n").unwrap();
        let ignore = vec!["*.tmp".to_owned()];
        let mut sc = scanner(s, None);
        sc.ignore = &ignore;
        let scan = sc.scan().unwrap();
        let keys: Vec<_> = scan.files.keys().cloned().collect();
        assert_eq!(keys, ["a/.well-known/x.txt", "index.html"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_leaving_the_site_is_a_named_problem() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir(&site).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        std::fs::write(site.join("index.html"), "i").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), site.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(site.join("index.html"), site.join("alias.html")).unwrap();
        let scan = scanner(&site, None).scan().unwrap();
        assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
        assert_eq!(scan.problems[0].path, "leak.txt");
        assert!(scan.problems[0].problem.contains("leaves the site"));
        assert!(
            scan.files.contains_key("alias.html"),
            "in-site symlinks are fine"
        );
    }

    #[test]
    fn keys_are_nfc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cafe\u{301}.html"), "x").unwrap();
        let scan = scanner(dir.path(), None).scan().unwrap();
        assert!(
            scan.files.contains_key("caf\u{e9}.html"),
            "{:?}",
            scan.files.keys()
        );
    }

    #[test]
    fn cache_skips_reading_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir(&site).unwrap();
        for i in 0..20 {
            std::fs::write(site.join(format!("{i}.html")), format!("page {i}")).unwrap();
        }
        // Backdate so the entries are not "racy" and get cached.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for i in 0..20 {
            let f = std::fs::File::options()
                .write(true)
                .open(site.join(format!("{i}.html")))
                .unwrap();
            f.set_modified(old).unwrap();
        }
        let cache = Some(dir.path().join("cache"));
        let first = scanner(&site, cache.clone()).scan().unwrap();
        assert_eq!(first.stats.hashed, 20);
        let second = scanner(&site, cache.clone()).scan().unwrap();
        assert_eq!((second.stats.hashed, second.stats.cached), (0, 20));
        std::fs::write(site.join("3.html"), "changed").unwrap();
        let third = scanner(&site, cache).scan().unwrap();
        assert_eq!(third.stats.hashed, 1);
        assert_eq!(third.files["3.html"].sha256, hash_bytes(b"changed"));
    }
}
