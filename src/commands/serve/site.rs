//! What `serve` answers from: an environment's live release (re-read at most once a
//! second, with the rules it carries) or a directory's deployable files, and the file a
//! key names in it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::Error;
use crate::config::EdgeConfig;
use crate::config::Rule;
use crate::ledger::{Entry, Ledger, Manifest};

use super::body::{Content, Reader};
use super::{Asked, without_port};

/// One release as `serve` answers for it: its files (with the assets it keeps), and the
/// `[edge]` rules it carries over the environment's config (the config's own, for a
/// release made before releases carried their rules, or a directory).
pub(super) struct View {
    pub(super) manifest: Manifest,
    pub(super) edge: EdgeConfig,
    pub(super) protected: Option<crate::edge::auth::Protected>,
}

impl View {
    pub(super) fn of(
        config: &EdgeConfig,
        release: Option<&crate::ledger::Release>,
        manifest: Manifest,
    ) -> Self {
        let edge = match release.and_then(|r| r.edge.as_ref()) {
            Some(rules) => config.with_rules(rules),
            None => config.clone(),
        };
        let protected = edge.auth.as_ref().map(crate::edge::auth::Protected::of);
        Self {
            manifest,
            edge,
            protected,
        }
    }
}

/// The live view, when it was read, and the pointer it was read under.
pub(super) type Cached = (Arc<View>, Instant, Option<String>);

/// A directory's deployable files (key → path), and when they were walked.
pub(super) type Walked = (Arc<BTreeMap<String, PathBuf>>, Instant);

pub(super) enum Site {
    /// An environment's live release, re-read at most once a second.
    Env {
        ledger: Ledger,
        cache: Mutex<Option<Cached>>,
    },
    /// A directory on disk, with the config's header rules: only the files a deploy of
    /// it would upload are answered (walked with the deploy's exclusions, again at most
    /// once a second as the build changes).
    Dir {
        root: PathBuf,
        rules: Vec<Rule>,
        config: Box<crate::config::Config>,
        files: Mutex<Option<Walked>>,
    },
}

/// The files a deploy of directory `root` under `config` would upload: key → path.
pub(super) fn deployable(
    root: &std::path::Path,
    config: &crate::config::Config,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let skip = [
        config.path.clone(),
        config.dir.join(crate::config::SCHEMA_FILE),
    ];
    let scanner = crate::site::Scanner {
        site: root,
        ignore: &config.ignore,
        include: &config.include,
        skip: &skip,
        project: Some(&config.dir),
        rules: &config.rules,
        cache: None,
        progress: &|_, _| {},
    };
    Ok(scanner.keys()?)
}

/// What a request's `Host` asks for.
pub(super) enum Sought {
    Live,
    /// A preview (the first label of a preview host).
    Preview(String),
}

/// What a preview's name leads to.
pub(super) enum Found {
    Manifest(Arc<View>),
    /// No such preview (never made, deleted, or its first fill is still under way).
    Unknown,
    Expired,
}

pub(super) struct Served {
    pub(super) edge: EdgeConfig,
    pub(super) site: Site,
    /// Host suffixes whose first label names a preview (".localhost", and the
    /// environment's `preview_url` host after `{name}`).
    pub(super) preview_hosts: Vec<String>,
    /// Views of previews and canaries by release (a release never changes its files).
    pub(super) releases: Mutex<std::collections::HashMap<String, Arc<View>>>,
    pub(super) hidden: Vec<String>,
    /// The exact `Authorization` header value expected, if basic auth is on.
    pub(super) auth: Option<String>,
    /// `[edge.auth] jwt`: the rules and secrets a token is checked against.
    pub(super) jwt: Option<crate::edge::auth::JwtRules>,
    /// `[edge.auth] signed_cookies`: the public key CloudFront verifies with.
    pub(super) signed: Option<rsa::RsaPublicKey>,
    /// `[retention] removed_releases` (kept keys are served until they expire).
    pub(super) removed_releases: u32,
    /// A directory's rules: the config's.
    pub(super) dir_view: Arc<View>,
}

impl Served {
    /// Which site a `Host` header names: a preview when its first label is followed by
    /// a preview host suffix (on an environment only).
    pub(super) fn sought(&self, host: Option<&str>) -> Sought {
        let Some(host) = host else {
            return Sought::Live;
        };
        // (An IPv6 literal keeps its brackets: it has no preview.)
        let host = without_port(host)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !matches!(self.site, Site::Env { .. }) {
            return Sought::Live;
        }
        for suffix in &self.preview_hosts {
            if let Some(name) = host.strip_suffix(suffix.as_str())
                && !name.is_empty()
                && !name.contains('.')
            {
                return Sought::Preview(name.to_owned());
            }
        }
        Sought::Live
    }

    /// The manifest of preview `name`, as `previews.json` says now.
    pub(super) async fn preview(&self, name: &str) -> Result<Found, Error> {
        let Site::Env { ledger, .. } = &self.site else {
            return Ok(Found::Unknown);
        };
        let (all, _) = ledger.previews().await?;
        let Some(p) = all.0.get(name) else {
            return Ok(Found::Unknown);
        };
        if p.expired(jiff::Timestamp::now()) {
            return Ok(Found::Expired);
        }
        Ok(match self.release(ledger, &p.release, false).await? {
            Some(m) => Found::Manifest(m),
            None => Found::Unknown,
        })
    }

    /// What release `id` serves (with the removed assets it keeps, if `kept`), from the
    /// cache when it was read before; `None` if it is not in the store.
    pub(super) async fn release(
        &self,
        ledger: &Ledger,
        id: &str,
        kept: bool,
    ) -> Result<Option<Arc<View>>, Error> {
        let mut cache = self.releases.lock().await;
        if let Some(m) = cache.get(id) {
            return Ok(Some(m.clone()));
        }
        let release = match ledger.release(id).await {
            Ok(r) => r,
            Err(crate::ledger::LedgerError::MissingRelease { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if cache.len() >= 64 {
            cache.clear();
        }
        let m = Arc::new(if kept {
            self.served(release)
        } else {
            let mut release = release;
            let manifest = std::mem::take(&mut release.manifest);
            View::of(&self.edge, Some(&release), manifest)
        });
        cache.insert(id.to_owned(), m.clone());
        Ok(Some(m))
    }

    /// What the store serves of a live release: its files and the removed assets it
    /// keeps for open pages, while their grace lasts (after it, `gc` or the next deploy
    /// deletes them).
    pub(super) fn served(&self, mut live: crate::ledger::Release) -> View {
        let now = jiff::Timestamp::now();
        let mut m = std::mem::take(&mut live.manifest);
        let min = self.removed_releases;
        for (k, kept) in std::mem::take(&mut live.kept)
            .into_iter()
            .filter(|(_, k)| !k.expired(now, min, false))
        {
            m.entry(k).or_insert(kept.entry);
        }
        View::of(&self.edge, Some(&live), m)
    }

    /// The canary side of a live request, when a canary runs: the canary's manifest for
    /// a visitor whose bucket is below its share (`None`: live's), and the bucket to pin
    /// in a cookie when the visitor has none yet.
    pub(super) async fn canary(
        &self,
        asked: &Asked,
    ) -> Result<(Option<Arc<View>>, Option<u8>), Error> {
        let Site::Env { ledger, .. } = &self.site else {
            return Ok((None, None));
        };
        if ledger.layout().await? != crate::config::Layout::Atomic {
            return Ok((None, None));
        }
        let Some((canary, _)) = ledger.canary().await? else {
            return Ok((None, None));
        };
        let cookie = asked.cookie.as_deref().and_then(crate::edge::bucket_cookie);
        let bucket = crate::edge::visitor_bucket(cookie, &asked.ip, &asked.user_agent);
        let pin = cookie.is_none().then_some(bucket);
        if bucket >= canary.percent {
            return Ok((None, pin));
        }
        Ok((self.release(ledger, &canary.release, true).await?, pin))
    }

    pub(super) async fn manifest(&self) -> Result<Option<Arc<View>>, Error> {
        let Site::Env { ledger, cache } = &self.site else {
            return Ok(None);
        };
        // On an atomic layout the pointer is read on every request (what visitors of
        // a web server rooted at `current` get); in place, HEAD at most once a second.
        // The layout is the store's as it is now, not as it was when `serve` started: a
        // `migrate` either way is followed without a restart.
        let mut cache = cache.lock().await;
        if let Some((m, at, None)) = cache.as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(Some(m.clone()));
        }
        let read = ledger.pointer().await?;
        let atomic = read.is_some();
        let pointer = read.as_ref().map(|p| p.token.clone());
        if let Some((m, _, token)) = cache.as_ref()
            && atomic
            && *token == pointer
        {
            return Ok(Some(m.clone()));
        }
        let live = if atomic {
            let (slots, _) = ledger.slots().await?;
            match read.and_then(|p| slots.get(&p.slot).cloned()) {
                Some(held) => Some(ledger.release(&held.release).await?),
                None => None,
            }
        } else {
            ledger.live().await?.1
        };
        let m = Arc::new(live.map_or_else(
            || View::of(&self.edge, None, Manifest::new()),
            |l| self.served(l),
        ));
        *cache = Some((m.clone(), Instant::now(), pointer));
        Ok(Some(m))
    }

    /// The deployable files of a directory site, walked again when a second old.
    pub(super) async fn dir_files(&self) -> Result<Option<Arc<BTreeMap<String, PathBuf>>>, Error> {
        let Site::Dir {
            root,
            config,
            files,
            ..
        } = &self.site
        else {
            return Ok(None);
        };
        let mut files = files.lock().await;
        if let Some((f, at)) = files.as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Ok(Some(f.clone()));
        }
        let (root, config) = (root.clone(), config.clone());
        let walked = tokio::task::spawn_blocking(move || deployable(&root, &config))
            .await
            .map_err(|e| Error::Other(format!("serve: {e}")))??;
        let walked = Arc::new(walked);
        *files = Some((walked.clone(), Instant::now()));
        Ok(Some(walked))
    }

    pub(super) fn dir_path(&self, key: &str, files: &BTreeMap<String, PathBuf>) -> Option<PathBuf> {
        let Site::Dir { root, .. } = &self.site else {
            return None;
        };
        let path = files.get(key)?.clone();
        // Never follow a symlink out of the directory.
        let real = path.canonicalize().ok()?;
        (real.starts_with(root) && real.is_file()).then_some(real)
    }

    /// Where the bytes of `key` are, their length, headers and validator — nothing read
    /// yet: a file is streamed, never held whole (a range of a 1 GB file reads that range).
    pub(super) async fn content(
        &self,
        key: &str,
        manifest: Option<&Manifest>,
    ) -> Result<Option<Content>, Error> {
        match (&self.site, manifest) {
            (Site::Env { ledger, .. }, Some(m)) => {
                let Some(entry) = m.get(key) else {
                    return Ok(None);
                };
                let reader = match ledger.locate(&entry.sha256).await? {
                    Some(at @ crate::ledger::Location::Pack { .. }) => {
                        // A small file (packs hold files up to 8 MiB), checked against its hash.
                        match ledger.read_content_at(&entry.sha256, at).await? {
                            Some(b) => Reader::Bytes(b),
                            None => return Ok(None),
                        }
                    }
                    Some(crate::ledger::Location::Object) => Reader::Store {
                        store: ledger.store().clone(),
                        key: ledger.object_key(&entry.sha256),
                    },
                    None => Reader::Store {
                        store: ledger.store().clone(),
                        key: key.to_owned(),
                    },
                };
                Ok(Some(Content {
                    len: entry.size,
                    attrs: Entry::attributes(entry),
                    etag: format!("\"{}\"", entry.sha256),
                    reader,
                }))
            }
            (Site::Dir { rules, .. }, _) => {
                let Some(files) = self.dir_files().await? else {
                    return Ok(None);
                };
                let Some(path) = self.dir_path(key, &files) else {
                    return Ok(None);
                };
                let meta = fs_err::metadata(&path)?;
                let mut attrs = crate::site::attributes(key, rules, "");
                // A directory holds the uncompressed source of a precompressed rule.
                if rules
                    .iter()
                    .find(|r| r.matches(key))
                    .is_some_and(|r| r.precompress.is_some())
                {
                    attrs.content_encoding = None;
                }
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                Ok(Some(Content {
                    len: meta.len(),
                    attrs,
                    etag: format!("W/\"{:x}-{mtime:x}\"", meta.len()),
                    reader: Reader::File(path),
                }))
            }
            (Site::Env { .. }, None) => Ok(None),
        }
    }
}
