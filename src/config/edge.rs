//! `[edge]`: what visitors get — response headers, directory index, SPA fallback, 404
//! page, redirects (compiled to [`Pattern`]s) and basic auth — as read from
//! driftless.toml and checked. What a request resolves to is `edge::resolve`.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use super::{Invalid, Key, check_header_value};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    pub from: String,
    pub to: String,
    #[serde(default = "default_redirect_status")]
    pub status: u16,
}

fn default_redirect_status() -> u16 {
    301
}

/// A redirect's `from`, compiled: literal segments, `:name` placeholders (one segment
/// each) and an optional trailing `*` splat — the `_redirects` syntax of Netlify that
/// users know. Matched against the percent-decoded path, segment by segment, a trailing
/// slash ignored on both sides (`/old` and `/old/` are one rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Each segment: literal text, or `:name`.
    pub parts: Vec<Part>,
    pub splat: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Param(String),
}

/// The segments of a decoded path, without the leading and a trailing slash: `/a/b/` →
/// `a`, `b`; `/` → none.
fn path_segments(path: &str) -> Vec<&str> {
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    }
}

fn placeholder_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

impl Pattern {
    /// Compile `from`; the error says what is not supported and how to write it.
    pub fn parse(from: &str) -> Result<Self, String> {
        if !from.starts_with('/') {
            return Err(format!("must be a path starting with '/': {from:?}"));
        }
        if from.contains('?') || from.contains('#') {
            return Err(format!(
                "{from:?}: query-string and fragment conditions are not supported; match the path only"
            ));
        }
        let decoded = percent_decode_str(from)
            .decode_utf8()
            .map_err(|_| format!("{from:?} is not valid UTF-8 once percent-decoded"))?;
        let segs = path_segments(&decoded);
        let mut parts = Vec::new();
        let mut splat = false;
        for (i, seg) in segs.iter().enumerate() {
            if seg.is_empty() || *seg == "." || *seg == ".." {
                return Err(format!(
                    "{from:?}: empty, '.' and '..' segments never match a request"
                ));
            }
            if *seg == "*" {
                if i + 1 != segs.len() {
                    return Err(format!(
                        "{from:?}: '*' (the splat) is supported only as the last segment, e.g. \"/blog/*\""
                    ));
                }
                splat = true;
            } else if seg.contains('*') {
                return Err(format!(
                    "{from:?}: '*' must be a whole segment (\"/blog/*\"); partial wildcards such as \"*.html\" are not supported"
                ));
            } else if let Some(name) = seg.strip_prefix(':') {
                if !placeholder_name(name) || name == "splat" {
                    return Err(format!(
                        "{from:?}: {seg:?} is not a placeholder name (letters, digits, '_'; \"splat\" is the '*')"
                    ));
                }
                if parts.contains(&Part::Param(name.to_owned())) {
                    return Err(format!("{from:?}: placeholder :{name} appears twice"));
                }
                parts.push(Part::Param(name.to_owned()));
            } else if seg.contains(':') && seg.split(':').skip(1).any(placeholder_name) {
                return Err(format!(
                    "{from:?}: a placeholder must be a whole segment (\"/:year/:slug\"), not part of {seg:?}"
                ));
            } else {
                parts.push(Part::Literal((*seg).to_owned()));
            }
        }
        Ok(Self { parts, splat })
    }

    /// The placeholders a match binds (`splat` included when there is a `*`).
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Param(n) => Some(n.as_str()),
                Part::Literal(_) => None,
            })
            .collect();
        if self.splat {
            out.push("splat");
        }
        out
    }

    /// The placeholders' values when the decoded `path` matches.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let segs = path_segments(path);
        let n = self.parts.len();
        if (self.splat && segs.len() < n) || (!self.splat && segs.len() != n) {
            return None;
        }
        let mut bound = Vec::new();
        for (part, seg) in self.parts.iter().zip(&segs) {
            match part {
                Part::Literal(l) if l == seg => {}
                Part::Param(name) if !seg.is_empty() => {
                    bound.push((name.clone(), (*seg).to_owned()));
                }
                _ => return None,
            }
        }
        if self.splat {
            // The rest of the path as it was asked for, a trailing slash included: a
            // directory's URL redirected to a directory's URL, in one hop.
            let mut rest = segs[n..].join("/");
            if !rest.is_empty() && path.ends_with('/') {
                rest.push('/');
            }
            bound.push(("splat".into(), rest));
        }
        Some(bound)
    }
}

/// The placeholders `to` uses (`:name` followed by anything but a name character).
fn used_placeholders(to: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = to;
    while let Some(i) = rest.find(':') {
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && placeholder_name(&after[..len]) {
            out.push(&after[..len]);
        }
        rest = &after[len..];
    }
    out
}

/// What `encodeURIComponent` leaves alone: the rest is percent-encoded, so a value bound
/// from the path is encoded the same by `serve` and by the CloudFront Function.
pub(crate) const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `to` as typed, made a valid header value: bytes outside visible ASCII (non-ASCII,
/// spaces) percent-encoded; escapes already there are kept.
pub fn location_literal(to: &str) -> String {
    const OUTSIDE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b' ');
    percent_encoding::utf8_percent_encode(to, OUTSIDE).to_string()
}

/// The `Location` for a match: `to` with its placeholders filled, each value encoded as
/// `encodeURIComponent` does (the splat keeps its slashes).
pub fn fill(to: &str, bound: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = to;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        match bound.iter().find(|(n, _)| *n == after[..len]) {
            Some((name, value)) if len > 0 => {
                let enc = |v: &str| percent_encoding::utf8_percent_encode(v, COMPONENT).to_string();
                if name == "splat" {
                    out.push_str(&value.split('/').map(enc).collect::<Vec<_>>().join("/"));
                } else {
                    out.push_str(&enc(value));
                }
            }
            _ => {
                out.push(':');
                out.push_str(&after[..len]);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    location_literal(&out)
}

/// Passwords shorter than this get a warning: basic auth is all that stands between a
/// preview and everyone.
pub const SHORT_PASSWORD: usize = 12;

/// Basic auth for previews; the password comes from an environment variable, never
/// from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
    /// Ask for it on previews only (`deploy --preview`); live stays public.
    #[serde(default)]
    pub previews_only: bool,
}

impl BasicAuth {
    /// The exact `Authorization` header value, with the password read from
    /// `password_env` (an error names the variable to set).
    pub fn header_value(&self) -> Result<String, String> {
        use base64::Engine as _;
        let password = std::env::var(&self.password_env).map_err(|_| {
            format!(
                "edge.basic_auth: set the password in the environment variable {}",
                self.password_env
            )
        })?;
        if password.chars().count() < SHORT_PASSWORD {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "driftless: warning: edge.basic_auth: the password in {} is {} character(s); use {SHORT_PASSWORD} or more (a short one is guessed quickly)",
                    self.password_env,
                    password.chars().count()
                );
            });
        }
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.user));
        Ok(format!("Basic {token}"))
    }
}

/// Token auth for path patterns (`[edge.auth]`): a JWT signed with a shared secret,
/// checked by `serve` and by the CloudFront function alike; or CloudFront signed
/// cookies, checked by CloudFront itself (and `serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Paths that need a token: `*` is one path segment (or part of one), `**` any
    /// number of segments (`/app/**` covers `/app` and everything under it).
    pub protect: Vec<String>,
    /// Paths inside `protect` that stay open (a login page).
    #[serde(default)]
    pub public: Vec<String>,
    /// Where a navigation without a valid token is sent (`?next=` the path it asked
    /// for); without it, or for a request that accepts JSON, the answer is 401.
    #[serde(default)]
    pub login_url: Option<String>,
    /// Read the token from this cookie too (`Authorization: Bearer` comes first).
    #[serde(default)]
    pub cookie: Option<String>,
    /// JWTs signed with a shared secret (HS256/HS384/HS512).
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// CloudFront signed cookies: for identity providers that sign with RSA.
    #[serde(default)]
    pub signed_cookies: Option<SignedCookiesConfig>,
}

/// `[edge.auth.jwt]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The accepted algorithms (default `["HS256"]`); anything else, `none` included,
    /// is refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// `iss` must be exactly this, when set.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` must be (or contain) this, when set.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default "60s").
    #[serde(default = "default_leeway")]
    pub leeway: String,
    /// Key id (the token header's `kid`; `default` for tokens without one) → the
    /// environment variable holding its secret. Two ids during a rotation's grace.
    pub keys: BTreeMap<String, String>,
    /// Also accept CBOR Web Tokens (RFC 8392: COSE_Mac0, HMAC 256/256) MACed with the
    /// same keys; the CloudFront function checks their MAC with the runtime's `cf.cwt`.
    #[serde(default)]
    pub cwt: bool,
}

fn default_algorithms() -> Vec<String> {
    vec!["HS256".into()]
}

fn default_leeway() -> String {
    "60s".into()
}

/// `[edge.auth.signed_cookies]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCookiesConfig {
    /// The RSA public key (PEM file, relative to driftless.toml) CloudFront verifies
    /// with: `edge --apply` uploads it into a key group.
    pub public_key: String,
    /// Where `driftless sign` finds the private key: an environment variable holding
    /// the PEM, a file, or an AWS Secrets Manager secret (its id or ARN).
    #[serde(default)]
    pub private_key_env: Option<String>,
    #[serde(default)]
    pub private_key_file: Option<String>,
    #[serde(default)]
    pub private_key_secret: Option<String>,
}

impl JwtConfig {
    /// The leeway in seconds.
    pub fn leeway_seconds(&self) -> i64 {
        crate::text::parse_duration(&self.leeway).map_or(60, |d| d.as_secs())
    }

    /// The fewest characters a secret may have: the output of the strongest hash the
    /// accepted algorithms use (RFC 7518 §3.2: 32 for HS256, 48 for HS384, 64 for HS512;
    /// CWTs are HMAC 256/256). Counted in UTF-16 units, as the function's
    /// `secret.length` counts them (never fewer than the bytes HMAC is keyed with).
    pub fn min_secret_len(&self) -> usize {
        let hashes = self.algorithms.iter().filter_map(|a| secret_len_for(a));
        hashes.chain(self.cwt.then_some(32)).max().unwrap_or(32)
    }

    /// Every key id and its secret, read from the environment (an error names the
    /// variable to set). A secret shorter than [`Self::min_secret_len`] — the empty one
    /// a CI secret that is not set expands to, above all — is refused: anyone could
    /// forge a token signed with it.
    pub fn secrets(&self) -> Result<BTreeMap<String, String>, String> {
        let min = self.min_secret_len();
        self.keys
            .iter()
            .map(|(kid, var)| {
                let secret = std::env::var(var).map_err(|_| {
                    format!(
                        "edge.auth.jwt.keys.{kid}: set the secret in the environment variable {var}"
                    )
                })?;
                let len = secret.encode_utf16().count();
                if len < min {
                    let strongest = self
                        .algorithms
                        .iter()
                        .filter(|a| secret_len_for(a) == Some(min))
                        .cloned()
                        .chain(self.cwt.then(|| "CWT (HMAC 256/256)".to_owned()))
                        .next()
                        .unwrap_or_else(|| "HS256".into());
                    let what = if secret.is_empty() {
                        format!("the environment variable {var} is empty (what a CI secret that is not set expands to)")
                    } else {
                        format!("the secret in {var} is {len} characters long")
                    };
                    return Err(format!(
                        "edge.auth.jwt.keys.{kid}: {what}; {strongest} needs a secret of at least {min} characters (RFC 7518 §3.2), or anyone could forge a token\n  → a new secret: `openssl rand -base64 {}`",
                        min * 3 / 4 + 3
                    ));
                }
                Ok((kid.clone(), secret))
            })
            .collect()
    }
}

/// The shortest secret algorithm `alg` may be keyed with: its hash's output in bytes.
pub fn secret_len_for(alg: &str) -> Option<usize> {
    match alg {
        "HS256" => Some(32),
        "HS384" => Some(48),
        "HS512" => Some(64),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Response headers on every answer (HSTS, X-Content-Type-Options, CSP, ...).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Served for a directory path (`/docs/` → `docs/index.html`).
    #[serde(default = "default_index")]
    pub directory_index: String,
    /// Served (200) for extension-less paths that match no file: client-side routes.
    #[serde(default)]
    pub spa_fallback: Option<String>,
    /// Served with status 404 when nothing matches.
    #[serde(default)]
    pub not_found: Option<String>,
    #[serde(default)]
    pub redirects: Vec<Redirect>,
    /// Offer gzip/brotli to clients that accept it.
    #[serde(default)]
    pub compress: bool,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Token auth for path patterns.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
}

fn default_index() -> String {
    "index.html".into()
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            headers: BTreeMap::new(),
            directory_index: default_index(),
            spa_fallback: None,
            not_found: None,
            redirects: Vec::new(),
            compress: false,
            basic_auth: None,
            auth: None,
        }
    }
}

/// The rules of `[edge]` that shape what visitors get of one release, recorded with it:
/// they go live with its content, roll back with it, show in its preview and travel in
/// its promotion. What belongs to the environment instead — how tokens are checked (and
/// their secrets), basic auth (its password hash), compression, the login page — stays
/// in `driftless.toml`. No secret and no password hash is ever part of it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
pub struct EdgeRules {
    pub directory_index: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spa_fallback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `[edge.auth] protect` and `public`: the paths that need a token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protect: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public: Vec<String>,
}

impl EdgeRules {
    /// The release-level rules `edge` declares.
    pub fn of(edge: &EdgeConfig) -> Self {
        let (protect, public) = edge.auth.as_ref().map_or((Vec::new(), Vec::new()), |a| {
            (a.protect.clone(), a.public.clone())
        });
        Self {
            directory_index: edge.directory_index.clone(),
            spa_fallback: edge.spa_fallback.clone(),
            not_found: edge.not_found.clone(),
            redirects: edge.redirects.clone(),
            headers: edge.headers.clone(),
            protect,
            public,
        }
    }

    /// SHA-256 of the rules (of their canonical JSON): what "identical rules" means.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(
            serde_json::to_vec(self).expect("rules serialise"),
        ))
    }

    /// What changes from `before` to these rules, one line each, for people: redirects
    /// added and removed, header values changed, paths newly protected or opened, the
    /// directory index, SPA fallback and not-found page.
    pub fn changes_from(&self, before: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let shown = |r: &Redirect| format!("{} → {} ({})", r.from, r.to, r.status);
        for r in &self.redirects {
            if !before.redirects.contains(r) {
                out.push(format!("redirect added: {}", shown(r)));
            }
        }
        for r in &before.redirects {
            if !self.redirects.contains(r) {
                out.push(format!("redirect removed: {}", shown(r)));
            }
        }
        let moved = self
            .redirects
            .iter()
            .filter(|r| before.redirects.contains(r));
        let kept: Vec<&Redirect> = before
            .redirects
            .iter()
            .filter(|r| self.redirects.contains(r))
            .collect();
        if !moved.clone().eq(kept.iter().copied()) {
            out.push("redirects reordered (the first match wins)".into());
        }
        for (name, value) in &self.headers {
            match before.headers.get(name) {
                None => out.push(format!("header added: {name}: {value}")),
                Some(v) if v != value => out.push(format!("header changed: {name}: {v} → {value}")),
                Some(_) => {}
            }
        }
        for name in before.headers.keys() {
            if !self.headers.contains_key(name) {
                out.push(format!("header removed: {name}"));
            }
        }
        for p in &self.protect {
            if !before.protect.contains(p) {
                out.push(format!("newly protected: {p}"));
            }
        }
        for p in &before.protect {
            if !self.protect.contains(p) {
                out.push(format!("no longer protected: {p}"));
            }
        }
        for p in &self.public {
            if !before.public.contains(p) {
                out.push(format!("opened (public): {p}"));
            }
        }
        for p in &before.public {
            if !self.public.contains(p) {
                out.push(format!("no longer public: {p}"));
            }
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        if self.directory_index != before.directory_index {
            out.push(format!(
                "directory index: {} → {}",
                before.directory_index, self.directory_index
            ));
        }
        if self.spa_fallback != before.spa_fallback {
            out.push(format!(
                "SPA fallback: {} → {}",
                opt(&before.spa_fallback),
                opt(&self.spa_fallback)
            ));
        }
        if self.not_found != before.not_found {
            out.push(format!(
                "not-found page: {} → {}",
                opt(&before.not_found),
                opt(&self.not_found)
            ));
        }
        out
    }
}

impl EdgeConfig {
    /// This environment's `[edge]` with a release's rules in place of the config's own:
    /// what visitors of that release get. Protected paths stay protected even where the
    /// environment no longer says how to check a token (every such request is refused).
    pub fn with_rules(&self, rules: &EdgeRules) -> Self {
        let mut out = self.clone();
        out.directory_index.clone_from(&rules.directory_index);
        out.spa_fallback.clone_from(&rules.spa_fallback);
        out.not_found.clone_from(&rules.not_found);
        out.redirects.clone_from(&rules.redirects);
        out.headers.clone_from(&rules.headers);
        match (&mut out.auth, rules.protect.is_empty()) {
            (Some(a), _) => {
                a.protect.clone_from(&rules.protect);
                a.public.clone_from(&rules.public);
            }
            (None, true) => {}
            (None, false) => {
                out.auth = Some(AuthConfig {
                    protect: rules.protect.clone(),
                    public: rules.public.clone(),
                    login_url: None,
                    cookie: None,
                    jwt: None,
                    signed_cookies: None,
                });
            }
        }
        out
    }

    /// `[edge.auth.jwt]`, if tokens are checked with a shared secret.
    pub fn jwt(&self) -> Option<&JwtConfig> {
        self.auth.as_ref().and_then(|a| a.jwt.as_ref())
    }

    /// `[edge.auth.signed_cookies]`, if CloudFront signed cookies are checked.
    pub fn signed_cookies(&self) -> Option<&SignedCookiesConfig> {
        self.auth.as_ref().and_then(|a| a.signed_cookies.as_ref())
    }

    /// The exact `Authorization` header value basic auth expects, if it is on.
    pub fn auth_header(&self) -> Result<Option<String>, String> {
        self.basic_auth
            .as_ref()
            .map(BasicAuth::header_value)
            .transpose()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let edge = Key::of("edge");
        for (name, value) in &self.headers {
            let at = edge.clone().then("headers").then(name);
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Invalid::new(
                    at,
                    format!(
                        "edge.headers: {name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
                    ),
                ));
            }
            check_header_value(value)
                .map_err(|why| Invalid::new(at, format!("edge.headers.{name}: {why}")))?;
        }
        for (i, r) in self.redirects.iter().enumerate() {
            let at = edge.clone().then("redirects").at(i);
            if ![301, 302, 303, 307, 308].contains(&r.status) {
                return Err(Invalid::new(
                    at.then("status"),
                    format!(
                        "edge.redirects[{i}]: {} → {}: status {} is not a redirect (301, 302, 303, 307 or 308)",
                        r.from, r.to, r.status
                    ),
                ));
            }
            let pattern = Pattern::parse(&r.from).map_err(|why| {
                Invalid::new(
                    at.clone().then("from"),
                    format!("edge.redirects[{i}].from: {why}"),
                )
            })?;
            if let Some(c) = r.to.chars().find(|c| c.is_control()) {
                return Err(Invalid::new(
                    at.then("to"),
                    format!(
                        "edge.redirects[{i}].to: {:?} contains the control character {c:?}",
                        r.to
                    ),
                ));
            }
            if r.to.trim().is_empty() {
                return Err(Invalid::new(
                    at.then("to"),
                    format!("edge.redirects[{i}].to: is empty"),
                ));
            }
            let names = pattern.names();
            if let Some(unknown) = used_placeholders(&r.to)
                .into_iter()
                .find(|u| !names.contains(u))
            {
                return Err(Invalid::new(
                    at.then("to"),
                    format!(
                        "edge.redirects[{i}].to: :{unknown} is not bound by from = {:?} (it binds: {}); write a literal ':' as %3A",
                        r.from,
                        if names.is_empty() {
                            "nothing".to_owned()
                        } else {
                            names
                                .iter()
                                .map(|n| format!(":{n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
        }
        if let Some(auth) = &self.auth {
            auth.validate(&edge.clone().then("auth"))?;
        }
        if let Some(auth) = &self.basic_auth {
            let at = edge.clone().then("basic_auth").then("user");
            if auth.user.contains(':') || auth.user.chars().any(char::is_control) {
                return Err(Invalid::new(
                    at,
                    format!(
                        "edge.basic_auth.user: {:?} may not contain ':' or control characters",
                        auth.user
                    ),
                ));
            }
            // Both want the `Authorization` header: a visitor sends one of them.
            if let Some(a) = &self.auth
                && a.jwt.is_some()
                && a.cookie.is_none()
            {
                let why = "[edge.basic_auth] and [edge.auth.jwt] both read the Authorization header, and a visitor sends one";
                let fix = "→ let tokens travel in a cookie: cookie = \"session\" in [edge.auth]";
                if !auth.previews_only {
                    return Err(Invalid::new(
                        edge.clone().then("auth"),
                        format!("edge.auth: {why}: every protected path would answer 401\n  {fix}"),
                    ));
                }
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    eprintln!(
                        "driftless: warning: edge.auth: {why}: on previews (basic auth, previews_only) every protected path answers 401\n  {fix}"
                    );
                });
            }
        }
        Ok(())
    }
}

impl AuthConfig {
    fn validate(&self, at: &Key) -> Result<(), Invalid> {
        let bad = |k: &str, why: String| Err(Invalid::new(at.clone().then(k), why));
        if self.protect.is_empty() {
            return bad(
                "protect",
                "edge.auth.protect: name at least one path pattern, e.g. [\"/app/**\"]".into(),
            );
        }
        for (k, list) in [("protect", &self.protect), ("public", &self.public)] {
            for p in list {
                if let Err(why) = PathGlob::parse(p) {
                    return bad(k, format!("edge.auth.{k}: {why}"));
                }
            }
        }
        if let Some(u) = &self.login_url
            && (!u.starts_with('/') && !u.starts_with("https://")
                || u.chars().any(char::is_control))
        {
            return bad(
                "login_url",
                format!("edge.auth.login_url: {u:?} is not a path (\"/login\") or an https URL"),
            );
        }
        if let Some(c) = &self.cookie
            && (c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return bad(
                "cookie",
                format!(
                    "edge.auth.cookie: {c:?} is not a cookie name (letters, digits, '-', '_', '.')"
                ),
            );
        }
        match (&self.jwt, &self.signed_cookies) {
            (None, None) => bad("jwt", "edge.auth: choose how tokens are checked: [edge.auth.jwt] (a shared secret) or [edge.auth.signed_cookies] (CloudFront signed cookies)".into()),
            (Some(_), Some(_)) => bad("signed_cookies", "edge.auth: [edge.auth.jwt] and [edge.auth.signed_cookies] are two ways to check one token; keep one (see docs/decisions.md)".into()),
            (Some(j), None) => {
                for a in &j.algorithms {
                    if !["HS256", "HS384", "HS512"].contains(&a.as_str()) {
                        return bad("jwt", format!("edge.auth.jwt.algorithms: {a:?} cannot be checked at the edge; HS256, HS384 or HS512 (for RS256/ES256 use [edge.auth.signed_cookies])"));
                    }
                }
                if j.algorithms.is_empty() {
                    return bad("jwt", "edge.auth.jwt.algorithms: name at least one of HS256, HS384, HS512".into());
                }
                if crate::text::parse_duration(&j.leeway).is_none() {
                    return bad("jwt", format!("edge.auth.jwt.leeway: {:?} is not a duration (e.g. \"60s\")", j.leeway));
                }
                if j.keys.is_empty() {
                    return bad("jwt", "edge.auth.jwt.keys: name at least one key id and the environment variable holding its secret, e.g. { default = \"DRIFTLESS_JWT_SECRET\" }".into());
                }
                if let Some(kid) = j.keys.keys().find(|k| !key_id_ok(k)) {
                    return bad("jwt", format!("edge.auth.jwt.keys: {kid:?} is not a key id (1-64 letters, digits, '-', '_', '.')"));
                }
                Ok(())
            }
            (None, Some(s)) => {
                if [&s.private_key_env, &s.private_key_file, &s.private_key_secret].iter().filter(|x| x.is_some()).count() > 1 {
                    return bad("signed_cookies", "edge.auth.signed_cookies: the private key comes from one place: private_key_env, private_key_file or private_key_secret".into());
                }
                Ok(())
            }
        }
    }
}

/// A key id: what `kid` may name, and the KeyValueStore key `auth:KID` holds its secret.
pub fn key_id_ok(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// One path pattern of `protect` or `public`: `*` within a segment, `**` as a whole
/// segment (any number of segments, none included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob(Vec<Tok>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    /// `*`: any characters but `/`.
    Star,
    /// `/**`: nothing, or `/` and anything.
    Tail,
}

impl PathGlob {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(format!("{pattern:?} must be a path starting with '/'"));
        };
        if pattern.chars().any(char::is_control) || pattern.contains(['?', '#']) {
            return Err(format!(
                "{pattern:?}: a path pattern has no query, fragment or control characters"
            ));
        }
        let mut toks = Vec::new();
        for seg in rest.split('/') {
            if seg == "**" {
                toks.push(Tok::Tail);
                continue;
            }
            if seg.contains("**") {
                return Err(format!(
                    "{pattern:?}: `**` stands for whole segments only (`/app/**`)"
                ));
            }
            toks.push(Tok::Char('/'));
            toks.extend(
                seg.chars()
                    .map(|c| if c == '*' { Tok::Star } else { Tok::Char(c) }),
            );
        }
        Ok(Self(toks))
    }

    /// Does the decoded path `path` match?
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        matches_at(&self.0, &chars)
    }

    /// The same pattern as a JavaScript regular expression's source (anchored).
    pub fn js_regex(&self) -> String {
        let mut out = String::from("^");
        for t in &self.0 {
            match t {
                Tok::Char(c) if c.is_ascii_alphanumeric() || *c == '/' => out.push(*c),
                Tok::Char(c) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                Tok::Star => out.push_str("[^/]*"),
                Tok::Tail => out.push_str("(?:/[\\s\\S]*)?"),
            }
        }
        out.push('$');
        out
    }
}

fn matches_at(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Char(c), rest)) => s.first() == Some(c) && matches_at(rest, &s[1..]),
        Some((Tok::Star, rest)) => {
            let run = s.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|k| matches_at(rest, &s[k..]))
        }
        Some((Tok::Tail, rest)) => {
            matches_at(rest, s)
                || (s.first() == Some(&'/') && (1..=s.len()).any(|k| matches_at(rest, &s[k..])))
        }
    }
}
