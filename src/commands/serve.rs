//! `driftless serve`: a local preview of an environment's live release (following HEAD)
//! or of a directory, applying exactly the edge rules. It is also the stand-in CDN that
//! the `verify` tests run against. It never serves the state prefix.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, header};
use bytes::Bytes;
use tokio::sync::Mutex;

use super::Ctx;
use crate::Error;
use crate::config::EdgeConfig;
use crate::config::Rule;
use crate::edge::{Outcome, resolve};
use crate::ledger::{Entry, Ledger, Manifest};
use crate::store::Attributes;

/// One release as `serve` answers for it: its files (with the assets it keeps), and the
/// `[edge]` rules it carries over the environment's config (the config's own, for a
/// release made before releases carried their rules, or a directory).
struct View {
    manifest: Manifest,
    edge: EdgeConfig,
    protected: Option<crate::edge::auth::Protected>,
}

impl View {
    fn of(
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
type Cached = (Arc<View>, Instant, Option<String>);

/// A directory's deployable files (key → path), and when they were walked.
type Walked = (Arc<BTreeMap<String, PathBuf>>, Instant);

enum Site {
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
fn deployable(
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
enum Sought {
    Live,
    /// A preview (the first label of a preview host).
    Preview(String),
}

/// What a preview's name leads to.
enum Found {
    Manifest(Arc<View>),
    /// No such preview (never made, deleted, or its first fill is still under way).
    Unknown,
    Expired,
}

struct Served {
    edge: EdgeConfig,
    site: Site,
    /// Host suffixes whose first label names a preview (".localhost", and the
    /// environment's `preview_url` host after `{name}`).
    preview_hosts: Vec<String>,
    /// Views of previews and canaries by release (a release never changes its files).
    releases: Mutex<std::collections::HashMap<String, Arc<View>>>,
    hidden: Vec<String>,
    /// The exact `Authorization` header value expected, if basic auth is on.
    auth: Option<String>,
    /// `[edge.auth] jwt`: the rules and secrets a token is checked against.
    jwt: Option<crate::edge::auth::JwtRules>,
    /// `[edge.auth] signed_cookies`: the public key CloudFront verifies with.
    signed: Option<rsa::RsaPublicKey>,
    /// `[retention] removed_releases` (kept keys are served until they expire).
    removed_releases: u32,
    /// A directory's rules: the config's.
    dir_view: Arc<View>,
}

impl Served {
    /// Which site a `Host` header names: a preview when its first label is followed by
    /// a preview host suffix (on an environment only).
    fn sought(&self, host: Option<&str>) -> Sought {
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
    async fn preview(&self, name: &str) -> Result<Found, Error> {
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
    async fn release(
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
    fn served(&self, mut live: crate::ledger::Release) -> View {
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
    async fn canary(&self, asked: &Asked) -> Result<(Option<Arc<View>>, Option<u8>), Error> {
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

    async fn manifest(&self) -> Result<Option<Arc<View>>, Error> {
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
    async fn dir_files(&self) -> Result<Option<Arc<BTreeMap<String, PathBuf>>>, Error> {
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

    fn dir_path(&self, key: &str, files: &BTreeMap<String, PathBuf>) -> Option<PathBuf> {
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
    async fn content(
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

/// A file to answer with: its length, headers, validator, and where its bytes are.
struct Content {
    len: u64,
    attrs: Attributes,
    /// A strong ETag (the SHA-256) for a release's file; a weak one (size, mtime) for a
    /// file of a directory.
    etag: String,
    reader: Reader,
}

enum Reader {
    File(PathBuf),
    Store {
        store: Arc<dyn crate::store::Store>,
        key: String,
    },
    Bytes(Bytes),
}

/// How much of a file one read brings into memory.
const CHUNK: u64 = 1 << 20;

impl Reader {
    async fn read(&self, offset: u64, len: u64) -> Result<Bytes, Error> {
        match self {
            Self::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || crate::store::read_region(&path, offset, len))
                    .await
                    .map_err(|e| Error::Other(format!("serve: {e}")))?
                    .map_err(Error::from)
            }
            Self::Store { store, key } => store
                .get_range(key, offset, len)
                .await?
                .ok_or_else(|| Error::Other(format!("{key}: gone from the store while served"))),
            Self::Bytes(b) => Ok(slice(b, offset, len)),
        }
    }

    /// `len` bytes from `start`, as a body read a chunk at a time.
    fn body(self, start: u64, len: u64) -> Body {
        if let Self::Bytes(b) = &self {
            return Body::from(slice(b, start, len));
        }
        let stream = futures::stream::try_unfold((self, start, len), |(r, at, left)| async move {
            if left == 0 {
                return Ok::<_, Error>(None);
            }
            let chunk = r.read(at, left.min(CHUNK)).await?;
            if chunk.is_empty() {
                return Err(Error::Other("the file ended early while served".into()));
            }
            let n = chunk.len() as u64;
            Ok(Some((chunk, (r, at + n, left - n))))
        });
        Body::from_stream(stream)
    }
}

/// `len` bytes of `b` from `start` (fewer at its end).
/// A single byte range that reaches past the end, as RFC 9110 §14.1.2 reads it: a
/// suffix longer than the body selects all of it, a last position past the end stops at
/// the end. Anything else is left to the parser.
fn clamp_range(header: &str, total: u64) -> String {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return header.to_owned();
    };
    if total == 0 || spec.contains(',') {
        return header.to_owned();
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return header.to_owned();
    };
    let end = total - 1;
    match (first.trim().parse::<u64>(), last.trim().parse::<u64>()) {
        (Err(_), Ok(suffix)) if first.trim().is_empty() && suffix > total => {
            format!("bytes=0-{end}")
        }
        (Ok(a), Ok(b)) if b > end && a <= end => format!("bytes={a}-{end}"),
        _ => header.to_owned(),
    }
}

fn slice(b: &Bytes, start: u64, len: u64) -> Bytes {
    let s = usize::try_from(start).unwrap_or(usize::MAX).min(b.len());
    let e = usize::try_from(start.saturating_add(len))
        .unwrap_or(usize::MAX)
        .min(b.len());
    b.slice(s..e)
}

/// Does `If-None-Match` match `etag` (weak comparison, as RFC 9110 asks for GET)?
fn none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A `Host` header's host, without the port.
fn without_port(host: &str) -> &str {
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// `[edge.auth]`: the answer to a request for a protected path without a token that
/// holds, as the function gives it (a path that does not decode, or asks for `//`, is
/// left to the rules: 400 or a redirect, before any auth).
fn token_refusal(s: &Served, view: &View, asked: &Asked) -> Option<Response<Body>> {
    use crate::edge::auth;
    let (rules, protected) = (view.edge.auth.as_ref()?, view.protected.as_ref()?);
    let path = crate::edge::decode_uri_component(&asked.path)?;
    if asked.path.contains("//") || !protected.covers(&path) {
        return None;
    }
    if let Some(key) = &s.signed {
        // As CloudFront: the three cookies, for this URL (no port: CloudFront's URLs
        // have none), now; else 403.
        let host = without_port(asked.host.as_deref().unwrap_or("localhost"));
        let url = format!("http://{host}{}", asked.path);
        let now = jiff::Timestamp::now().as_second();
        if asked
            .cookie
            .as_deref()
            .is_some_and(|c| crate::edge::signed::grants(c, key, &url, now))
        {
            return None;
        }
        let mut r = plain(
            StatusCode::FORBIDDEN,
            "forbidden: no valid CloudFront signed cookies\n",
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Some(r);
    }
    let token = auth::token(rules, asked.auth.as_deref(), asked.cookie.as_deref());
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let holds = match (&s.jwt, token) {
        (Some(jwt), Some(t)) => auth::token_holds(t, jwt, now),
        _ => false,
    };
    if holds {
        return None;
    }
    let raw = match &asked.query {
        Some(q) => format!("{}?{q}", asked.path),
        None => asked.path.clone(),
    };
    let mut r = match auth::refusal(rules, asked.accept.as_deref(), &raw) {
        auth::Refused::Login(location) => {
            let mut r = plain(StatusCode::FOUND, "");
            if let Ok(v) = HeaderValue::try_from(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        auth::Refused::Unauthorized => {
            let mut r = Response::new(Body::from(auth::UNAUTHORIZED_BODY));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"driftless\""),
            );
            r
        }
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

/// `r` with the canary cookie holding `bucket`, if there is one to set.
fn pinned(mut r: Response<Body>, bucket: Option<u8>) -> Response<Body> {
    if let Some(b) = bucket {
        let cookie = format!(
            "{}={b}; {}",
            crate::edge::CANARY_COOKIE,
            crate::edge::CANARY_COOKIE_ATTRIBUTES
        );
        if let Ok(v) = HeaderValue::try_from(cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// What `answer` needs of a request: owned values only (a request body is not `Sync`).
struct Asked {
    method: Method,
    host: Option<String>,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    accept: Option<String>,
    range: Option<String>,
    if_none_match: Option<String>,
    /// The visitor's address, user agent and cookies: their canary bucket.
    ip: String,
    user_agent: String,
    cookie: Option<String>,
}

fn asked(req: &Request, peer: std::net::SocketAddr) -> Asked {
    let header_text = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    Asked {
        method: req.method().clone(),
        // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in `Host`.
        host: req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| header_text(header::HOST)),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        auth: header_text(header::AUTHORIZATION),
        accept: header_text(header::ACCEPT),
        range: header_text(header::RANGE),
        if_none_match: header_text(header::IF_NONE_MATCH),
        ip: peer.ip().to_string(),
        user_agent: header_text(header::USER_AGENT).unwrap_or_default(),
        cookie: header_text(header::COOKIE),
    }
}

async fn handle(
    State(s): State<Arc<Served>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Response<Body> {
    let asked = asked(&req, peer);
    drop(req);
    let sought = s.sought(asked.host.as_deref());
    let (mut resp, view) = match answer(&s, &asked, &sought).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("driftless serve: {e}");
            let failed = plain(
                StatusCode::BAD_GATEWAY,
                "driftless serve: the store could not be read\n",
            );
            (failed, None)
        }
    };
    // The headers of the release answered for (the config's, before one is known).
    let headers = view.as_ref().map_or(&s.edge.headers, |v| &v.edge.headers);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    if matches!(sought, Sought::Preview(_)) {
        // A preview is never to be found by a search engine.
        resp.headers_mut().insert(
            HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex"),
        );
    }
    resp
}

/// The answer to one request, and the release view it was answered from (`None`:
/// refused before one was chosen, or a directory).
async fn answer(
    s: &Served,
    asked: &Asked,
    sought: &Sought,
) -> Result<(Response<Body>, Option<Arc<View>>), Error> {
    let (method, auth) = (&asked.method, asked.auth.as_deref());
    if method != Method::GET && method != Method::HEAD {
        return Ok((
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            None,
        ));
    }
    let previewing = matches!(sought, Sought::Preview(_));
    if let Some(expected) = &s.auth
        && (previewing || !s.edge.basic_auth.as_ref().is_some_and(|a| a.previews_only))
        && auth.map(crate::edge::canonical_authorization).as_deref() != Some(expected.as_str())
    {
        let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"driftless\""),
        );
        return Ok((r, None));
    }
    // A canary's visitors without the cookie get it on an answer from the store (what
    // the edge's viewer-response function sees), never on one the rules made.
    let mut pin = None;
    let manifest = match sought {
        Sought::Live => match s.canary(asked).await? {
            (Some(m), p) => {
                pin = p;
                Some(m)
            }
            (None, p) => {
                pin = p;
                s.manifest().await?
            }
        },
        Sought::Preview(name) => match s.preview(name).await? {
            Found::Manifest(m) => Some(m),
            Found::Unknown => {
                let r = plain(StatusCode::NOT_FOUND, &format!("no preview {name} here\n"));
                return Ok((r, None));
            }
            Found::Expired => {
                let mut r = Response::new(Body::from(crate::edge::expired_preview_page(name)));
                *r.status_mut() = StatusCode::GONE;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Ok((r, None));
            }
        },
    };
    let view = manifest.clone().unwrap_or_else(|| s.dir_view.clone());
    // The release's rules decide which paths need a token, as they decide the rest.
    if let Some(refused) = token_refusal(s, &view, asked) {
        return Ok((refused, Some(view)));
    }
    let r = route(
        s,
        asked,
        &view,
        manifest.as_deref().map(|v| &v.manifest),
        pin,
    )
    .await?;
    Ok((r, Some(view)))
}

/// What the rules of `view` make of the request, and the bytes they point at.
async fn route(
    s: &Served,
    asked: &Asked,
    view: &View,
    manifest: Option<&Manifest>,
    pin: Option<u8>,
) -> Result<Response<Body>, Error> {
    let (method, path) = (&asked.method, asked.path.as_str());
    let files = match manifest {
        Some(_) => None,
        None => s.dir_files().await?,
    };
    let exists = |key: &str| match (&manifest, &files) {
        (Some(m), _) => m.contains_key(key),
        (None, Some(f)) => s.dir_path(key, f).is_some(),
        (None, None) => false,
    };
    let hidden: Vec<&str> = s.hidden.iter().map(String::as_str).collect();
    match resolve(&view.edge, path, asked.query.as_deref(), &exists, &hidden) {
        Outcome::BadRequest => Ok(plain(StatusCode::BAD_REQUEST, "bad request\n")),
        Outcome::NotFound => Ok(pinned(plain(StatusCode::NOT_FOUND, "not found\n"), pin)),
        Outcome::Redirect { status, location } => {
            let mut r = plain(
                StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                "",
            );
            if let Ok(v) = HeaderValue::try_from(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
        Outcome::Serve { key, status } => {
            let Some(content) = s.content(&key, manifest).await? else {
                return Ok(pinned(plain(StatusCode::NOT_FOUND, "not found\n"), pin));
            };
            let total = content.len;
            let mut r = if status == 200
                && asked
                    .if_none_match
                    .as_deref()
                    .is_some_and(|h| none_match(h, &content.etag))
            {
                // The client has these bytes: no body (If-None-Match wins over Range).
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                r
            } else {
                // A single byte range, as real servers answer it (multiple ranges: the
                // whole body, which HTTP allows).
                let range = match (&asked.range, status) {
                    (Some(r), 200) => {
                        let r = clamp_range(r, total);
                        match http_range_header::parse_range_header(&r)
                            .and_then(|p| p.validate(total))
                        {
                            Ok(ranges) if ranges.len() == 1 => Some(Ok(ranges[0].clone())),
                            Ok(_) => None,
                            Err(_) => Some(Err(())),
                        }
                    }
                    _ => None,
                };
                let (code, start, len) = match range {
                    Some(Err(())) => {
                        let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "");
                        if let Ok(v) = HeaderValue::try_from(format!("bytes */{total}")) {
                            r.headers_mut().insert(header::CONTENT_RANGE, v);
                        }
                        return Ok(r);
                    }
                    Some(Ok(span)) => (
                        StatusCode::PARTIAL_CONTENT,
                        *span.start(),
                        *span.end() - *span.start() + 1,
                    ),
                    None => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        0,
                        total,
                    ),
                };
                let body = if *method == Method::HEAD {
                    Body::empty()
                } else {
                    content.reader.body(start, len)
                };
                let mut r = Response::new(body);
                *r.status_mut() = code;
                if code == StatusCode::PARTIAL_CONTENT
                    && let Ok(v) =
                        HeaderValue::try_from(format!("bytes {start}-{}/{total}", start + len - 1))
                {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                r
            };
            let h = r.headers_mut();
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if status == 200
                && let Ok(v) = HeaderValue::try_from(content.etag.as_str())
            {
                h.insert(header::ETAG, v);
            }
            for (name, value) in [
                (header::CONTENT_TYPE, content.attrs.content_type),
                (header::CACHE_CONTROL, content.attrs.cache_control),
                (header::CONTENT_ENCODING, content.attrs.content_encoding),
            ] {
                if let Some(v) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                    h.insert(name, v);
                }
            }
            Ok(pinned(r, pin))
        }
    }
}

pub(super) async fn serve(
    ctx: &Ctx,
    target: Option<&str>,
    bind: &str,
    port: u16,
) -> Result<(), Error> {
    let config = &ctx.config;
    let (site, what, hidden) = match target {
        Some(name) if config.envs.contains_key(name) => {
            let ec = ctx.env(name).await?;
            let hidden = vec![ec.cfg.state_prefix.clone(), ".driftless-store/".into()];
            (
                Site::Env {
                    ledger: ec.ledger.clone(),
                    cache: Mutex::new(None),
                },
                format!(
                    "the live release of {name} ({})",
                    ec.ledger.store().location()
                ),
                hidden,
            )
        }
        other => {
            let dir = other.map_or_else(|| config.site.clone(), PathBuf::from);
            let root = dir.canonicalize().map_err(|_| {
                Error::Usage(format!(
                    "{}: not an environment ({}) or a directory",
                    dir.display(),
                    config.envs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let mut hidden = vec![
                ".driftless/".into(),
                ".driftless-store/".into(),
                ".git/".into(),
            ];
            // The project folder itself as the site (`site = "."`): its config is not a page.
            if config.dir.canonicalize().is_ok_and(|d| d == root) {
                hidden.push(crate::config::FILE_NAME.into());
                hidden.push(crate::config::SCHEMA_FILE.into());
            }
            let what = format!("the directory {}", root.display());
            // What a deploy of it would refuse, `serve` refuses to start on.
            let files = deployable(&root, config)?;
            (
                Site::Dir {
                    root,
                    rules: config.rules.clone(),
                    config: Box::new(config.clone()),
                    files: Mutex::new(Some((Arc::new(files), Instant::now()))),
                },
                what,
                hidden,
            )
        }
    };
    let auth = config.edge.auth_header().map_err(Error::Usage)?;
    let jwt = match config.edge.jwt() {
        Some(j) => Some(crate::edge::auth::JwtRules::of(j).map_err(Error::Usage)?),
        None => None,
    };
    let signed = crate::apply::edge::environment::signed_public_key(config)?.map(|(_, key)| key);
    let mut preview_hosts = Vec::new();
    if let Some(env) = target.and_then(|t| config.envs.get(t)) {
        preview_hosts.push(".localhost".to_owned());
        if let Some(host) = env.preview_host() {
            preview_hosts.insert(0, host);
        }
    }
    let served = Arc::new(Served {
        edge: config.edge.clone(),
        site,
        preview_hosts,
        releases: Mutex::new(std::collections::HashMap::new()),
        hidden,
        auth,
        dir_view: Arc::new(View::of(&config.edge, None, Manifest::new())),
        jwt,
        signed,
        removed_releases: config.retention.removed_releases,
    });
    let mut app = Router::new().fallback(handle).with_state(served);
    if config.edge.compress {
        use tower_http::compression::predicate::{DefaultPredicate, Predicate as _};
        // A byte range is of the identity encoding: never compress a partial answer.
        let whole =
            |status: StatusCode,
             _: axum::http::Version,
             _: &axum::http::HeaderMap,
             _: &axum::http::Extensions| { status != StatusCode::PARTIAL_CONTENT };
        app = app.layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(whole)),
        );
    }
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {bind}:{port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Other(format!("serve: {e}")))?;
    let url = format!("http://{addr}/");
    ctx.out.say(format!(
        "Serving {what} on {url} with the [edge] rules (Ctrl-C to stop)"
    ));
    if ctx.out.json {
        // One line, at once: a script starting `serve --port 0 --json` reads the port.
        crate::ui::stdout_line(
            &serde_json::json!({ "url": url, "port": addr.port(), "bind": bind, "serving": what })
                .to_string(),
        );
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| Error::Other(format!("serve: {e}")))
}
