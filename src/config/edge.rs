//! `[edge]`: what visitors get — response headers, directory index, SPA fallback, 404
//! page, redirects (compiled to [`Pattern`]s), and which of them a release carries
//! ([`EdgeRules`]) — as read from
//! driftless.toml and checked. What a request resolves to is `edge::resolve`.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use super::auth::{AuthConfig, BasicAuth, JwtConfig, SignedCookiesConfig};
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
