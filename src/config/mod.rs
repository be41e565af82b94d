//! `driftless.toml`: parsed, validated and resolved into plain values.
//!
//! Every error names the file, the line and the key, because a deploy tool that
//! guesses at a broken config is how the wrong thing reaches production.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use toml::Spanned;

mod auth;
mod edge;
mod key;
mod notify;
mod retention;
mod store_url;
#[cfg(test)]
mod tests;
mod watch;

pub use auth::{
    AuthConfig, BasicAuth, JwtConfig, PathGlob, SHORT_PASSWORD, SignedCookiesConfig, key_id_ok,
    secret_len_for,
};
pub(crate) use edge::COMPONENT;
pub use edge::{EdgeConfig, EdgeRules, Part, Pattern, Redirect, fill, location_literal};
pub use key::{Invalid, Key};
pub use notify::{EVENTS, Format, Webhook};
pub use retention::{DEFAULT_GRACE, DEFAULT_KEEP_RELEASES, RawRetention, Retention};
pub use store_url::{StoreUrl, parse_store_url};
use store_url::{normalize, stores_overlap};
pub use watch::{RawWatch, Watch};

pub const FILE_NAME: &str = "driftless.toml";
/// The config's JSON Schema (`driftless schema`), beside it, named in its `#:schema` line.
pub const SCHEMA_FILE: &str = "driftless.schema.json";
pub const DEFAULT_STATE_PREFIX: &str = ".driftless/";

/// A header value S3 and browsers accept: visible ASCII, spaces and tabs, not empty.
pub fn check_header_value(value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "{value:?} contains the control character {c:?}: a header value is one line of visible ASCII"
        ));
    }
    if value.trim().is_empty() {
        return Err("is empty: remove the key instead".into());
    }
    if !value.is_ascii() || axum::http::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "{value:?} is not a valid header value: use visible ASCII only (S3 stores header values as ASCII)"
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no {FILE_NAME} in {dir} or any parent directory\n  → create one with: driftless init")]
    NotFound { dir: String },
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("unknown environment {name:?}; {FILE_NAME} defines: {known}")]
    UnknownEnv { name: String, known: String },
}

/// `driftless.toml`: what to deploy, where, and the rules it is served with.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "driftless.toml")]
pub(crate) struct RawConfig {
    /// The build directory to deploy, relative to this file (e.g. "dist").
    #[schemars(with = "Option<String>")]
    site: Option<Spanned<String>>,
    /// Environments by name: where files go, their state, CDN, URL and policy.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawEnv>")]
    env: BTreeMap<String, Spanned<RawEnv>>,
    /// Headers by path; the first matching rule wins.
    #[serde(default)]
    #[schemars(with = "Vec<RawRule>")]
    rules: Vec<Spanned<RawRule>>,
    /// Content that must never silently disappear from the site.
    #[serde(default)]
    #[schemars(with = "Vec<Feature>")]
    features: Vec<Spanned<Feature>>,
    /// Limits on deletes, for every environment (override per environment).
    #[serde(default)]
    limits: Limits,
    /// Globs never deployed, on top of the built-in exclusions.
    #[serde(default)]
    ignore: Vec<String>,
    /// Globs that bring back files the built-in exclusions (secrets, VCS) keep back.
    #[serde(default)]
    include: Vec<String>,
    /// What visitors get: headers, directory index, SPA fallback, 404 page, redirects.
    #[serde(default)]
    edge: EdgeConfig,
    /// Webhooks told about deploys, promotions, rollbacks, refusals and holds.
    #[serde(default)]
    notify: Vec<Webhook>,
    /// What happens to files a deploy removes: fingerprinted assets stay served for open
    /// pages during a grace period.
    #[serde(default)]
    retention: RawRetention,
}

/// One environment.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    /// Where its files go: file://DIR (a local directory) or s3://BUCKET[/PREFIX].
    #[schemars(with = "String")]
    store: Option<Spanned<String>>,
    /// Protected: only promotions of what this environment verified are accepted.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    promote_from: Option<Spanned<String>>,
    /// Where driftless keeps its state in the store (default ".driftless/").
    #[serde(default)]
    state_prefix: Option<String>,
    /// The bucket's AWS region (default: AWS_REGION, the profile's, or us-east-1).
    #[serde(default)]
    region: Option<String>,
    /// An S3-compatible endpoint (MinIO, R2, SeaweedFS, Ceph); path-style addressing.
    #[serde(default)]
    endpoint: Option<String>,
    /// The AWS profile whose credentials this environment uses.
    #[serde(default)]
    profile: Option<String>,
    /// The AWS account the credentials must resolve to (checked with STS).
    #[serde(default)]
    account: Option<String>,
    /// The public URL visitors use: what `verify` checks.
    #[serde(default)]
    url: Option<String>,
    /// The URL of a preview, with `{name}` where its name goes, e.g.
    /// "https://{name}.preview.example.com" (a wildcard alias of the distribution).
    #[serde(default)]
    preview_url: Option<String>,
    /// The CDN in front of it.
    #[serde(default)]
    cdn: Option<CdnConfig>,
    /// Limits on deletes for this environment.
    #[serde(default)]
    limits: Option<Limits>,
    /// What `watch` (and `deploy`/`promote --watch`) rolls back on.
    #[serde(default)]
    watch: Option<RawWatch>,
    /// What `verify` also demands.
    #[serde(default)]
    verify: Option<RawVerify>,
    /// "atomic": each release is written where nothing serves it and made live by one
    /// pointer write; "in-place": releases are written into the keys visitors read
    /// (default: atomic for a new local store, in-place where nothing reads a pointer).
    #[serde(default)]
    layout: Option<Layout>,
}

/// How an environment's releases are laid out in its store.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Two slots and a live pointer: a release is written into the slot nothing serves,
    /// then made live by one pointer write.
    Atomic,
    /// Releases are written into the keys visitors read (assets, then HTML).
    InPlace,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Self::Atomic => "atomic",
            Self::InPlace => "in-place",
        }
    }
}

/// `[env.NAME.verify]`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    /// Fail when the 95th-percentile latency of verify's requests is above this (ms).
    #[serde(default)]
    p95_ms: Option<u64>,
}

/// A header rule.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Glob over keys ("assets/**", "**.html").
    #[serde(rename = "match")]
    pattern: String,
    /// Cache-Control for matching keys.
    #[serde(default)]
    cache_control: Option<String>,
    /// Content-Type (default: by extension).
    #[serde(default)]
    content_type: Option<String>,
    /// Content-Encoding to declare (files already encoded by the build).
    #[serde(default)]
    content_encoding: Option<String>,
    /// Compress once before upload ("gzip" or "br"); sets Content-Encoding.
    #[serde(default)]
    precompress: Option<Precompress>,
    /// Only files whose name carries a content hash (app-1a2b3c4d.js).
    #[serde(default)]
    fingerprinted: bool,
}

/// Compression done once by driftless before upload: the object holds the compressed
/// bytes (hashed as uploaded) with the matching `Content-Encoding`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precompress {
    Gzip,
    Br,
}

impl Precompress {
    /// The `Content-Encoding` token, also the cache file suffix.
    pub fn token(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Br => "br",
        }
    }
}

/// A feature that must never silently disappear from the site.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// A name people know it by ("checkout").
    pub name: String,
    /// The file that holds it ("index.html").
    pub file: String,
    /// Text that must stay in that file ('id="stripe-checkout"').
    pub contains: String,
}

/// The CDN in front of an environment: `cdn = { cloudfront = "E2EXAMPLE" }`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdnConfig {
    /// CloudFront distribution id.
    pub cloudfront: String,
    /// Above this many paths, invalidate by directory wildcards (at most 3,000).
    #[serde(default = "default_wildcard_threshold")]
    pub wildcard_threshold: usize,
    /// How long a deploy waits for the invalidation to complete (it never fails on it).
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: u64,
}

fn default_wildcard_threshold() -> usize {
    100
}
fn default_wait_seconds() -> u64 {
    120
}

/// Guard thresholds for deletes.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Refuse a deploy deleting more than this many files.
    #[serde(default = "default_max_deletes")]
    pub max_deletes: usize,
    /// Refuse a deploy deleting more than this share (0–1) of the live files.
    #[serde(default = "default_max_delete_share")]
    pub max_delete_share: f64,
}

fn default_max_deletes() -> usize {
    256
}
fn default_max_delete_share() -> f64 {
    0.5
}

impl Limits {
    /// `at`: where this table is (`limits`, `env.prod.limits`).
    fn validate(&self, at: &Key) -> Result<(), Invalid> {
        let share = self.max_delete_share;
        if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
            return Err(Invalid::new(
                at.clone().then("max_delete_share"),
                format!(
                    "{at}.max_delete_share = {share}: must be a share between 0 and 1 (0.5 = half the live files)"
                ),
            ));
        }
        Ok(())
    }
}

impl CdnConfig {
    /// `at`: where this table is (`env.prod.cdn`).
    fn validate(&self, at: &Key) -> Result<(), Invalid> {
        let bad = |field: &str, why: String| {
            Err(Invalid::new(
                at.clone().then(field),
                format!("{at}.{field}{why}"),
            ))
        };
        if !(1..=3000).contains(&self.wildcard_threshold) {
            return bad(
                "wildcard_threshold",
                format!(
                    " = {}: must be between 1 and 3000 (CloudFront's limit of paths in progress)",
                    self.wildcard_threshold
                ),
            );
        }
        if self.wait_seconds > 3600 {
            return bad(
                "wait_seconds",
                format!(
                    " = {}: at most 3600 (an invalidation still running is reported, not waited for)",
                    self.wait_seconds
                ),
            );
        }
        if self.cloudfront.trim().is_empty() {
            return bad(
                "cloudfront",
                ": the distribution id, e.g. \"E2EXAMPLE\"".into(),
            );
        }
        Ok(())
    }
}

/// A public URL visitors use: http or https, with a host.
/// A preview URL: an http(s) URL whose host starts with the label `{name}`, the one place
/// the name may go (the edge finds the preview from the first label of `Host`).
fn check_preview_url(url: &str) -> Result<(), String> {
    let example = "use the address of a preview with {name} as its first label, e.g. \"https://{name}.preview.example.com\"";
    let Some((scheme, rest)) = url.split_once("://{name}.") else {
        return Err(format!(
            "{url:?} does not start with http(s)://{{name}}.; {example}"
        ));
    };
    if rest.contains("{name}") || !matches!(scheme, "http" | "https") {
        return Err(format!(
            "{url:?}: {{name}} must be the first label of the host, once; {example}"
        ));
    }
    check_url(&url.replace("{name}", "x")).map_err(|_| format!("{url:?} is not a URL; {example}"))
}

impl EnvConfig {
    /// The host suffix after a preview's name in `preview_url` (".preview.example.com").
    pub fn preview_host(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.preview_url.as_ref()?.replace("{name}", "x")).ok()?;
        url.host_str()?.strip_prefix('x').map(str::to_owned)
    }

    /// Preview `name`'s URL, if the environment has a `preview_url`.
    pub fn preview_url(&self, name: &str) -> Option<String> {
        self.preview_url.as_ref().map(|u| u.replace("{name}", name))
    }
}

fn check_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "{url:?} is not an http(s) URL (scheme {:?}); use the address visitors open, e.g. \"https://www.example.com\"",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{url:?} is not a URL ({e}); use the address visitors open, e.g. \"https://www.example.com\""
        )),
    }
}

/// A bare word where TOML expects a value (`region = eu-west-1`): say that text needs
/// quotes, with the corrected line.
fn unquoted_hint(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, value) = line.split_once('=')?;
    let (key, value) = (key.trim(), value.split('#').next()?.trim());
    let bare = !value.is_empty()
        && !value.starts_with(['"', '\'', '[', '{', '+', '-'])
        && !value.starts_with(|c: char| c.is_ascii_digit())
        && !["true", "false", "inf", "nan"].contains(&value)
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./:@".contains(c));
    bare.then(|| format!("{key} = {value}: text values need quotes: {key} = \"{value}\""))
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_deletes: default_max_deletes(),
            max_delete_share: default_max_delete_share(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EnvConfig {
    pub name: String,
    pub store: StoreUrl,
    pub promote_from: Option<String>,
    pub state_prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    pub account: Option<String>,
    pub url: Option<String>,
    /// `preview_url`: a preview's address, `{name}` standing for its name.
    pub preview_url: Option<String>,
    pub cdn: Option<CdnConfig>,
    pub limits: Limits,
    pub watch: Watch,
    /// `[env.NAME.verify] p95_ms`.
    pub verify_p95_ms: Option<u64>,
    /// `layout`, if the config sets it (else the store's own, or the default).
    pub layout: Option<Layout>,
}

impl EnvConfig {
    /// Whether the live pointer of this environment is kept where its CDN reads it (a
    /// CloudFront KeyValueStore): the atomic layout on an S3 store behind CloudFront.
    pub fn edge_reads_pointer(&self) -> bool {
        self.layout == Some(Layout::Atomic) && self.behind_cloudfront()
    }

    /// An S3 store with a CloudFront distribution in front.
    pub fn behind_cloudfront(&self) -> bool {
        self.cdn.is_some() && !matches!(self.store, StoreUrl::File(_))
    }
}

/// Header rule: the first whose glob matches a key sets its headers.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    matcher: GlobMatcher,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub precompress: Option<Precompress>,
    /// Only files whose name carries a content hash (`app-1a2b3c4d.js`).
    pub fingerprinted: bool,
}

impl Rule {
    pub fn matches(&self, key: &str) -> bool {
        self.matcher.is_match(key) && (!self.fingerprinted || crate::keys::has_fingerprint(key))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The directory holding `driftless.toml`; relative paths are resolved against it.
    pub dir: PathBuf,
    pub site: PathBuf,
    pub envs: BTreeMap<String, EnvConfig>,
    pub rules: Vec<Rule>,
    pub features: Vec<Feature>,
    pub ignore: Vec<String>,
    /// Globs that bring back files the built-in exclusions (secrets, VCS) keep back.
    pub include: Vec<String>,
    pub edge: EdgeConfig,
    pub notify: Vec<Webhook>,
    pub retention: Retention,
    /// The file as read, to name the line of a value found unusable later (a file the
    /// config names that is not in the build).
    text: String,
}

/// The JSON Schema of `driftless.toml`, from the types it is read into.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).expect("schemas serialise")
}

impl Config {
    /// Find `driftless.toml` in `start` or its parents.
    pub fn discover(start: &Path) -> Result<PathBuf, ConfigError> {
        start
            .ancestors()
            .map(|d| d.join(FILE_NAME))
            .find(|p| p.is_file())
            .ok_or_else(|| ConfigError::NotFound {
                dir: start.display().to_string(),
            })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Self::parse(&text, path, &dir)
    }

    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, col) = line_col(text, span.map_or(0, |s| s.start));
            ConfigError::Invalid {
                path: shown.clone(),
                line,
                col,
                message,
            }
        };
        let invalid = |i: Invalid| at(i.key.span(text), i.message);
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let mut message = e.message().trim().to_owned();
            if let Some(hint) = e.span().and_then(|s| unquoted_hint(text, s.start)) {
                message = hint;
            }
            at(e.span(), message)
        })?;

        let Some(raw_site) = &raw.site else {
            return Err(at(
                None,
                "missing `site`: the build directory to deploy, e.g. site = \"dist\"".into(),
            ));
        };
        if raw_site.get_ref().trim().is_empty() {
            return Err(at(
                Some(raw_site.span()),
                "site: must name the build directory".into(),
            ));
        }
        let site = normalize(&dir.join(raw_site.get_ref()));
        if site.parent().is_none() {
            return Err(at(
                Some(raw_site.span()),
                format!(
                    "site = {:?} is the whole file system: point `site` at the build output directory (dist, build, public, ...)",
                    raw_site.get_ref()
                ),
            ));
        }

        // The top-level limits first: an environment without its own inherits them, and an
        // error in them is theirs, not the environment's.
        raw.limits.validate(&Key::of("limits")).map_err(invalid)?;
        let mut envs = BTreeMap::new();
        for (name, env) in &raw.env {
            let span = env.span();
            let env = env.get_ref();
            if !valid_env_name(name) {
                return Err(at(
                    Some(span),
                    format!("env.{name}: environment names use letters, digits, '-' and '_'"),
                ));
            }
            let Some(raw_store) = &env.store else {
                return Err(at(
                    Some(span),
                    format!(
                        "env.{name}: missing `store`: where this environment's files go, e.g. store = \"s3://my-bucket\" or store = \"file://.driftless/{name}\""
                    ),
                ));
            };
            let store = parse_store_url(raw_store.get_ref(), dir)
                .map_err(|m| at(Some(raw_store.span()), format!("env.{name}.store: {m}")))?;
            if let StoreUrl::File(root) = &store {
                let root = normalize(root);
                // `.driftless/` in the site is never scanned: a store there is not published.
                let clash = if root.starts_with(&site) && !root.starts_with(site.join(".driftless"))
                {
                    Some("is inside the site: every deploy would publish the store into itself")
                } else if site.starts_with(&root) {
                    Some("holds the site: the store would list the build as its own objects")
                } else {
                    None
                };
                if let Some(why) = clash {
                    return Err(at(
                        Some(raw_store.span()),
                        format!(
                            "env.{name}.store: {} {why} (site = {:?})\n  → keep the store outside the site, e.g. store = \"file://.driftless/{name}\"",
                            raw_store.get_ref(),
                            raw_site.get_ref()
                        ),
                    ));
                }
            }
            if let Some(url) = &env.url {
                check_url(url).map_err(|m| {
                    invalid(Invalid::new(
                        Key::of("env").then(name).then("url"),
                        format!("env.{name}.url: {m}"),
                    ))
                })?;
            }
            if let Some(url) = &env.preview_url {
                check_preview_url(url).map_err(|m| {
                    invalid(Invalid::new(
                        Key::of("env").then(name).then("preview_url"),
                        format!("env.{name}.preview_url: {m}"),
                    ))
                })?;
            }
            let env_key = Key::of("env").then(name);
            if let Some(own) = &env.limits {
                own.validate(&env_key.clone().then("limits"))
                    .map_err(invalid)?;
            }
            let limits = env.limits.unwrap_or(raw.limits);
            if let Some(cdn) = &env.cdn {
                cdn.validate(&env_key.clone().then("cdn"))
                    .map_err(invalid)?;
            }
            let state_prefix = match &env.state_prefix {
                None => DEFAULT_STATE_PREFIX.to_owned(),
                Some(p) => {
                    let p = p.trim_matches('/');
                    if p.is_empty() || crate::keys::key_problem(p).is_some() {
                        return Err(at(
                            Key::of("env").then(name).then("state_prefix").span(text),
                            format!("env.{name}.state_prefix: {p:?} is not a relative key prefix"),
                        ));
                    }
                    format!("{p}/")
                }
            };
            let watch = env
                .watch
                .as_ref()
                .map(|w| w.validate(&env_key.clone().then("watch")))
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default();
            envs.insert(
                name.clone(),
                EnvConfig {
                    name: name.clone(),
                    store,
                    promote_from: env.promote_from.as_ref().map(|p| p.get_ref().clone()),
                    state_prefix,
                    region: env.region.clone(),
                    endpoint: env.endpoint.clone(),
                    profile: env.profile.clone(),
                    account: env.account.clone(),
                    url: env.url.clone(),
                    preview_url: env.preview_url.clone(),
                    cdn: env.cdn.clone(),
                    limits,
                    watch,
                    verify_p95_ms: env.verify.as_ref().and_then(|v| v.p95_ms),
                    layout: env.layout,
                },
            );
        }
        for (name, env) in &raw.env {
            if let Some(from) = &env.get_ref().promote_from {
                let f = from.get_ref();
                if f == name || !raw.env.contains_key(f) {
                    return Err(at(
                        Some(from.span()),
                        format!(
                            "env.{name}.promote_from: {f:?} is not another environment (known: {})",
                            raw.env.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }

        // A promotion cycle: each environment would only take what the other verified,
        // and nothing could ever be deployed into either.
        for start in raw.env.keys() {
            let mut chain = vec![start.as_str()];
            let mut at = start.as_str();
            while let Some(from) = envs
                .get(at)
                .and_then(|e: &EnvConfig| e.promote_from.as_deref())
            {
                if from == start {
                    chain.push(from);
                    let links: Vec<String> = chain
                        .windows(2)
                        .map(|w| format!("env.{}.promote_from = {:?}", w[0], w[1]))
                        .collect();
                    return Err(invalid(Invalid::new(
                        Key::of("env").then(start).then("promote_from"),
                        format!(
                            "{}: the environments promote from each other, so none of them can ever receive a release\n  → remove promote_from from the one deployed directly (the first in the pipeline)",
                            links.join(", ")
                        ),
                    )));
                }
                if chain.contains(&from) {
                    break; // a cycle that does not pass through `start`: found from its own start
                }
                chain.push(from);
                at = from;
            }
        }
        // Two environments on one store would share one HEAD and one set of files.
        let names: Vec<&String> = envs.keys().collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let (ea, eb) = (&envs[*a], &envs[*b]);
                let (sa, sb) = (&ea.store, &eb.store);
                let one_service = ea.endpoint == eb.endpoint;
                if let Some(how) = stores_overlap(sa, sb).filter(|_| one_service) {
                    return Err(invalid(Invalid::new(
                        Key::of("env").then(b.as_str()).then("store"),
                        format!(
                            "env.{a}.store ({sa}) and env.{b}.store ({sb}) {how}: they would share one live release and overwrite each other's files\n  → give each environment a store of its own (another bucket, prefix or directory)"
                        ),
                    )));
                }
            }
        }

        let mut rules = Vec::new();
        for (i, rule) in raw.rules.iter().enumerate() {
            let span = rule.span();
            let r = rule.get_ref();
            let glob = Glob::new(&r.pattern).map_err(|e| {
                invalid(Invalid::new(
                    Key::of("rules").at(i).then("match"),
                    format!("rules[{i}].match: {e}"),
                ))
            })?;
            if let (Some(p), Some(e)) = (r.precompress, &r.content_encoding)
                && p.token() != e
            {
                return Err(at(
                    Some(span.clone()),
                    format!(
                        "rules[{i}]: precompress = {:?} uploads {0}-encoded bytes, but content_encoding = {e:?}; drop content_encoding (precompress sets it)",
                        p.token()
                    ),
                ));
            }
            for (field, value) in [
                ("cache_control", &r.cache_control),
                ("content_type", &r.content_type),
                ("content_encoding", &r.content_encoding),
            ] {
                if let Some(v) = value {
                    check_header_value(v).map_err(|why| {
                        invalid(Invalid::new(
                            Key::of("rules").at(i).then(field),
                            format!("rules[{i}].{field}: {why}"),
                        ))
                    })?;
                }
            }
            rules.push(Rule {
                pattern: r.pattern.clone(),
                matcher: glob.compile_matcher(),
                cache_control: r.cache_control.clone(),
                content_type: r.content_type.clone(),
                content_encoding: r
                    .precompress
                    .map(|p| p.token().to_owned())
                    .or_else(|| r.content_encoding.clone()),
                precompress: r.precompress,
                fingerprinted: r.fingerprinted,
            });
        }

        let mut features = Vec::new();
        for (i, f) in raw.features.iter().enumerate() {
            let feature = f.get_ref();
            if crate::keys::key_problem(&feature.file).is_some() || feature.contains.is_empty() {
                return Err(at(
                    Some(f.span()),
                    format!(
                        "features[{i}] ({}): `file` must be a path inside the site and `contains` non-empty",
                        feature.name
                    ),
                ));
            }
            features.push(feature.clone());
        }
        for (list, patterns) in [("ignore", &raw.ignore), ("include", &raw.include)] {
            for (i, pattern) in patterns.iter().enumerate() {
                Glob::new(pattern).map_err(|e| {
                    invalid(Invalid::new(
                        Key::of(list).at(i),
                        format!("{list}: {pattern:?}: {e}"),
                    ))
                })?;
            }
        }
        for (i, hook) in raw.notify.iter().enumerate() {
            hook.validate(i).map_err(invalid)?;
        }
        let retention = raw.retention.validate().map_err(invalid)?;
        raw.edge.validate().map_err(invalid)?;
        Ok(Self {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            site,
            envs,
            rules,
            features,
            ignore: raw.ignore,
            include: raw.include,
            edge: raw.edge,
            notify: raw.notify,
            retention,
            text: text.to_owned(),
        })
    }

    pub fn env(&self, name: &str) -> Result<&EnvConfig, ConfigError> {
        self.envs.get(name).ok_or_else(|| ConfigError::UnknownEnv {
            name: name.to_owned(),
            known: if self.envs.is_empty() {
                "(none; add an [env.NAME] table)".to_owned()
            } else {
                self.envs.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// `driftless.toml:LINE:COL` of `key` (or of the nearest table above it).
    pub fn locate(&self, key: &Key) -> String {
        let (line, col) = line_col(&self.text, key.span(&self.text).map_or(0, |s| s.start));
        format!("{}:{line}:{col}", self.path.display())
    }

    /// Where this working copy keeps its own (never shared) state.
    pub fn workdir_state(&self) -> PathBuf {
        self.dir.join(".driftless")
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}
