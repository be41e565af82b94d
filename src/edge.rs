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
use unicode_normalization::UnicodeNormalization as _;

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

/// Basic auth for previews; the password comes from an environment variable, never
/// from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
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
            if !r.from.starts_with('/') {
                return Err(Invalid::new(
                    at.then("from"),
                    format!(
                        "edge.redirects[{i}].from: must be a path starting with '/': {:?}",
                        r.from
                    ),
                ));
            }
            check_header_value(&r.to).map_err(|why| {
                Invalid::new(at.then("to"), format!("edge.redirects[{i}].to: {why}"))
            })?;
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

fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
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
    let Ok(decoded) = percent_decode_str(url_path).decode_utf8() else {
        return Outcome::BadRequest;
    };
    let with_query = |location: String| match query.filter(|q| !q.is_empty()) {
        Some(q) if !location.contains('?') => format!("{location}?{q}"),
        _ => location,
    };
    if let Some(r) = edge.redirects.iter().find(|r| r.from == decoded) {
        return Outcome::Redirect {
            status: r.status,
            location: with_query(r.to.clone()),
        };
    }
    let rel: String = decoded.trim_start_matches('/').nfc().collect();
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
        && !has_extension(&rel)
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
