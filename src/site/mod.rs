//! Walk the site, decide each file's key and headers, and hash it.
//!
//! Hashing is parallel and cached by (key, size, mtime, ctime, inode), so a no-op
//! deploy of an unchanged site reads no file contents. The scan must never follow a
//! symlink out of the site, never include secrets the defaults exclude, and never
//! produce two files with one key.

mod cache;
mod compress;
mod headers;
mod ignore_rules;
mod walk;

use crate::site::cache::CacheEntry;
use crate::site::cache::HashCache;
use crate::site::cache::now_ns;
use crate::site::cache::stamp;
use crate::site::compress::Packed;
use crate::site::compress::precompressed;
use crate::site::ignore_rules::OWN_FILES;
use crate::site::walk::escape_bytes;
use crate::site::walk::rel_key;
use crate::site::walk::special_kind;
use crate::site::walk::unsafe_site;
use crate::site::walk::walk_problem;
pub use compress::{compress, decompress};
pub use headers::{attributes, content_type};
pub use ignore_rules::{DEFAULT_IGNORES, IGNORE_FILE};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::config::Rule;
use crate::digest::hash_file;
use crate::store::Attributes;

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

/// What a walk found: files to hash, problems, and what the built-in exclusions kept back.
type Walked = (Vec<Candidate>, Vec<SiteProblem>, Vec<String>);

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
    /// The files a deploy of the site would upload (key → path), walked as [`Self::scan`]
    /// walks them but nothing read: what `serve DIR` may answer, and nothing more.
    pub fn keys(&self) -> Result<BTreeMap<String, PathBuf>, ScanError> {
        let (site, root) = self.root()?;
        let (candidates, _, _) = self.walk(site, &root)?;
        Ok(candidates.into_iter().map(|c| (c.key, c.path)).collect())
    }

    /// The site directory and its canonical path, refused when it is none or unsafe.
    fn root(&self) -> Result<(&Path, PathBuf), ScanError> {
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
        Ok((site, root))
    }

    pub fn scan(&self) -> Result<Scan, ScanError> {
        let (site, root) = self.root()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hash_bytes;

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
