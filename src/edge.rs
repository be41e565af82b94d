//! Edge behaviour (`[edge]`): what a visitor's request for a URL path resolves to —
//! redirects, directory index, SPA fallback, custom 404 — plus response headers.
//!
//! One pure function decides, so the preview server and `verify` agree by construction.
//! It must never serve the state prefix (or the local store's internals), whatever the
//! request looks like.

pub mod cloudfront;

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::config::{Invalid, Key, check_header_value};

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
            bound.push(("splat".into(), segs[n..].join("/")));
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
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
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

/// Basic auth for previews; the password comes from an environment variable, never
/// from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
}

/// An `Authorization` header value with its scheme in the canonical case (`basic xyz` →
/// `Basic xyz`): schemes are case-insensitive (RFC 9110 §11.1), credentials are not.
/// Other schemes are returned as they are (and never match).
pub fn canonical_authorization(value: &str) -> String {
    let value = value.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
            format!("Basic {}", rest.trim_start())
        }
        _ => value.to_owned(),
    }
}

/// Passwords shorter than this get a warning: basic auth is all that stands between a
/// preview and everyone.
pub const SHORT_PASSWORD: usize = 12;

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
        }
    }
}

impl EdgeConfig {
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
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Serve { key: String, status: u16 },
    Redirect { status: u16, location: String },
    NotFound,
    BadRequest,
}

/// Resolve a request path (and its query string, kept on redirects). `exists` says
/// whether a key is in the site; keys under any of `hidden` are never served.
///
/// Directories behave as on S3 website endpoints and nginx: `/docs/` serves
/// `docs/index.html`, and `/docs` (no slash) answers 301 to `/docs/` when that index
/// exists, so relative links in the page resolve against the directory.
pub fn resolve(
    edge: &EdgeConfig,
    url_path: &str,
    query: Option<&str>,
    exists: &dyn Fn(&str) -> bool,
    hidden: &[&str],
) -> Outcome {
    // As decodeURIComponent (what the CloudFront Function uses): an escape is `%` and two
    // hex digits, and the bytes must be UTF-8.
    let escapes_ok = url_path
        .split('%')
        .skip(1)
        .all(|s| s.len() >= 2 && s.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    let Ok(decoded) = percent_decode_str(url_path).decode_utf8() else {
        return Outcome::BadRequest;
    };
    if !escapes_ok {
        return Outcome::BadRequest;
    }
    let with_query = |location: String| match query.filter(|q| !q.is_empty()) {
        Some(q) if !location.contains('?') => format!("{location}?{q}"),
        _ => location,
    };
    if url_path.contains("//") {
        // One canonical path for visitors and caches: repeated slashes merged, by a 301.
        let mut merged = String::with_capacity(url_path.len());
        for c in url_path.chars() {
            if !(c == '/' && merged.ends_with('/')) {
                merged.push(c);
            }
        }
        return Outcome::Redirect {
            status: 301,
            location: with_query(merged),
        };
    }
    for r in &edge.redirects {
        let Ok(pattern) = Pattern::parse(&r.from) else {
            continue; // refused when the config was loaded
        };
        if let Some(bound) = pattern.matches(&decoded) {
            return Outcome::Redirect {
                status: r.status,
                location: with_query(fill(&r.to, &bound)),
            };
        }
    }
    // Matched byte for byte: S3 keys are exact, so no Unicode normalisation here either
    // (keys are stored in NFC; a decomposed request is another name).
    let rel = decoded.trim_start_matches('/').to_owned();
    if rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('\0') || rel.contains("//") {
        return Outcome::BadRequest;
    }
    let is_hidden = |k: &str| {
        hidden
            .iter()
            .any(|h| k.starts_with(h) || k == h.trim_end_matches('/'))
    };
    if is_hidden(&rel) {
        return Outcome::NotFound;
    }
    let key = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}{}", edge.directory_index)
    } else {
        rel.clone()
    };
    if exists(&key) && !is_hidden(&key) {
        return Outcome::Serve { key, status: 200 };
    }
    if !rel.is_empty() && !rel.ends_with('/') {
        let index = format!("{rel}/{}", edge.directory_index);
        if exists(&index) && !is_hidden(&index) {
            return Outcome::Redirect {
                status: 301,
                location: with_query(format!("{url_path}/")),
            };
        }
    }
    if let Some(spa) = &edge.spa_fallback
        && !crate::keys::has_extension(&rel)
        && exists(spa)
    {
        return Outcome::Serve {
            key: spa.clone(),
            status: 200,
        };
    }
    if let Some(nf) = &edge.not_found
        && exists(nf)
    {
        return Outcome::Serve {
            key: nf.clone(),
            status: 404,
        };
    }
    Outcome::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 20.10): `from = "/blog/*"` was taken literally; what is not
    /// supported is now refused, naming it.
    #[test]
    fn redirect_patterns_supported_and_refused() {
        let p = Pattern::parse("/blog/:year/*").unwrap();
        assert_eq!(
            p.matches("/blog/2024/a/b/"),
            Some(vec![
                ("year".into(), "2024".into()),
                ("splat".into(), "a/b".into())
            ])
        );
        assert_eq!(p.matches("/blog"), None);
        assert_eq!(
            fill(
                "/posts/:year/:splat?x=:y",
                &p.matches("/blog/2024/é x").unwrap()
            ),
            "/posts/2024/%C3%A9%20x?x=:y"
        );
        for (from, why) in [
            ("blog/*", "starting with '/'"),
            ("/blog/*.html", "partial wildcards"),
            ("/a/*/b", "only as the last segment"),
            ("/search?q=1", "query-string"),
            ("/a/:1", "not a placeholder name"),
            ("/a/:x/:x", "appears twice"),
            ("/a/pre:x", "whole segment"),
            ("/a/../b", "'..'"),
        ] {
            let err = Pattern::parse(from).unwrap_err();
            assert!(err.contains(why), "{from}: {err}");
        }
        let edge = |from: &str, to: &str| EdgeConfig {
            redirects: vec![Redirect {
                from: from.into(),
                to: to.into(),
                status: 301,
            }],
            ..EdgeConfig::default()
        };
        let err = edge("/a/:x", "/b/:y").validate().unwrap_err();
        assert!(err.message.contains(":y is not bound"), "{}", err.message);
        assert!(
            edge("/a/*", "https://example.com:8443/:splat")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn resolution_table() {
        let edge = EdgeConfig {
            spa_fallback: Some("index.html".into()),
            not_found: Some("404.html".into()),
            redirects: vec![Redirect {
                from: "/old".into(),
                to: "/new".into(),
                status: 301,
            }],
            ..EdgeConfig::default()
        };
        let site = [
            "index.html",
            "404.html",
            "docs/index.html",
            "a b.html",
            "app.js",
            ".driftless/HEAD",
        ];
        let exists = |k: &str| site.contains(&k);
        let hidden = [".driftless/", ".driftless-store/"];
        let serve = |k: &str, status| Outcome::Serve {
            key: k.into(),
            status,
        };
        for (path, want) in [
            ("/", serve("index.html", 200)),
            ("/docs/", serve("docs/index.html", 200)),
            (
                "/docs",
                Outcome::Redirect {
                    status: 301,
                    location: "/docs/".into(),
                },
            ),
            ("/a%20b.html", serve("a b.html", 200)),
            ("/app.js", serve("app.js", 200)),
            ("/dashboard/settings", serve("index.html", 200)),
            ("/missing.css", serve("404.html", 404)),
            (
                "/old",
                Outcome::Redirect {
                    status: 301,
                    location: "/new".into(),
                },
            ),
            ("/.driftless/HEAD", Outcome::NotFound),
            ("/.driftless", Outcome::NotFound),
            ("/%2Edriftless/HEAD", Outcome::NotFound),
            ("/docs/../.driftless/HEAD", Outcome::BadRequest),
            ("/%ff", Outcome::BadRequest),
        ] {
            assert_eq!(resolve(&edge, path, None, &exists, &hidden), want, "{path}");
        }
        assert_eq!(
            resolve(&edge, "/docs", Some("lang=en"), &exists, &hidden),
            Outcome::Redirect {
                status: 301,
                location: "/docs/?lang=en".into()
            }
        );
        let bare = EdgeConfig::default();
        assert_eq!(
            resolve(&bare, "/dashboard", None, &exists, &hidden),
            Outcome::NotFound
        );
    }
}
