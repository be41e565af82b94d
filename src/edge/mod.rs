//! Edge behaviour (`[edge]`): what a visitor's request for a URL path resolves to —
//! redirects, directory index, SPA fallback, custom 404 — plus response headers.
//!
//! One pure function decides, so the preview server and `verify` agree by construction.
//! It must never serve the state prefix (or the local store's internals), whatever the
//! request looks like.

pub mod auth;
pub mod cloudfront;
pub mod function;
pub mod js;
pub mod signed;
pub mod table;
pub mod terraform;

use crate::config::EdgeConfig;
use crate::config::Pattern;
use crate::config::fill;
use crate::edge::cloudfront::Function;
use crate::edge::cloudfront::SiteShape;

use percent_encoding::percent_decode_str;

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

/// What an expired preview answers (410 Gone), on `serve` and at the edge alike. `name`
/// is a preview name (a DNS label: nothing to escape).
pub fn expired_preview_page(name: &str) -> String {
    format!(
        "<!doctype html><title>Preview expired</title><h1>Preview {name} has expired</h1><p>Deploy it again to bring it back.</p>\n"
    )
}

/// The cookie that pins a visitor to their side of a canary: their bucket, 0–99.
pub const CANARY_COOKIE: &str = "driftless-bucket";

/// The attributes of the canary cookie: the whole site, 30 days.
pub const CANARY_COOKIE_ATTRIBUTES: &str = "Path=/; Max-Age=2592000; SameSite=Lax";

/// A visitor's canary bucket (0–99) as `serve` and the CloudFront function both compute
/// it: the cookie's when it holds one, else from the first 32 bits of
/// SHA-256(address, space, user agent). Buckets below the canary's share get the canary;
/// raising the share only moves more visitors over.
pub fn visitor_bucket(cookie: Option<u8>, ip: &str, user_agent: &str) -> u8 {
    if let Some(b) = cookie {
        return b;
    }
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{ip} {user_agent}").as_bytes());
    let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    u8::try_from(n % 100).expect("below 100")
}

/// The value of the first cookie `name` in a `Cookie` header, trimmed (as CloudFront
/// hands cookies to a function: the first of a name).
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// The bucket a `Cookie` header pins (its first `driftless-bucket`, one or two digits).
pub fn bucket_cookie(header: &str) -> Option<u8> {
    let value = cookie(header, CANARY_COOKIE)?;
    (!value.is_empty() && value.len() <= 2 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// Everything `[edge]` compiles to for one environment.
pub struct Compiled {
    pub name: String,
    pub function: Function,
    pub policy: Option<serde_json::Value>,
    pub errors: Vec<serde_json::Value>,
    pub shape: SiteShape,
    /// The keys the function was compiled for (the live release's, or the local build's).
    pub keys: std::collections::BTreeSet<String>,
    pub from: String,
    /// The function reads the live pointer from the environment's KeyValueStore.
    pub atomic: Option<cloudfront::Atomic>,
    /// The viewer-response function (`NAME-response`) of an atomic layout: the canary
    /// cookie, and noindex on previews.
    pub response: Option<Function>,
}

/// The CloudFront names driftless gives an environment's function and policy.
pub fn resource_name(env: &str) -> String {
    let clean: String = env
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("driftless-{clean}").chars().take(64).collect()
}

/// Compile `[edge]` for a site of `keys` (described by `from`, for people), as the
/// environment `env`'s function and policy; `hidden`: key prefixes never served.
pub fn compile_for(
    edge: &EdgeConfig,
    env: &str,
    keys: std::collections::BTreeSet<String>,
    from: String,
    hidden: &[String],
    atomic: Option<&cloudfront::Atomic>,
) -> Result<Compiled, String> {
    use cloudfront::{SiteShape, compile, error_responses, headers_policy};
    let shape = SiteShape::of(edge, keys.iter().map(String::as_str));
    let auth = match &edge.basic_auth {
        Some(b) => {
            use sha2::Digest as _;
            let value = b.header_value()?;
            Some(hex::encode(sha2::Sha256::digest(value.as_bytes())))
        }
        None => None,
    };
    let function = compile(edge, &shape, hidden, auth.as_deref(), atomic)?;
    let name = resource_name(env);
    // On the atomic layout the headers are each release's (the viewer-response function
    // adds them); the policy, one per cache behavior, only fills in where none is set.
    let policy = headers_policy(edge, &name, atomic.is_some())?;
    let errors = error_responses(edge, &shape);
    Ok(Compiled {
        name,
        function,
        policy,
        errors,
        shape,
        keys,
        from,
        atomic: atomic.cloned(),
        response: atomic.map(function::viewer_response),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Serve { key: String, status: u16 },
    Redirect { status: u16, location: String },
    NotFound,
    BadRequest,
}

/// A URL path decoded as `decodeURIComponent` (what the CloudFront function uses) does:
/// an escape is `%` and two hex digits, and the bytes must be UTF-8; `None` otherwise.
pub fn decode_uri_component(url_path: &str) -> Option<std::borrow::Cow<'_, str>> {
    let escapes_ok = url_path
        .split('%')
        .skip(1)
        .all(|s| s.len() >= 2 && s.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
    escapes_ok.then_some(decoded)
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
    let Some(decoded) = decode_uri_component(url_path) else {
        return Outcome::BadRequest;
    };
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
    use crate::config::Redirect;

    /// The bucket cookie is read as the function reads it (the first `driftless-bucket`,
    /// one or two digits), and wins over the hash; without it the hash spreads visitors
    /// over 0–99, the same for the same address and user agent.
    #[test]
    fn a_visitors_bucket_is_the_cookies_else_the_hash() {
        assert_eq!(bucket_cookie("driftless-bucket=7"), Some(7));
        assert_eq!(bucket_cookie("a=1; driftless-bucket=42; b=2"), Some(42));
        assert_eq!(
            bucket_cookie("driftless-bucket=3; driftless-bucket=9"),
            Some(3)
        );
        for bad in [
            "driftless-bucket=",
            "driftless-bucket=100",
            "driftless-bucket=-1",
            "driftless-bucket=1a",
            "xdriftless-bucket=5",
            "other=5",
        ] {
            assert_eq!(bucket_cookie(bad), None, "{bad}");
        }
        assert_eq!(visitor_bucket(Some(99), "10.0.0.1", "ua"), 99);
        let a = visitor_bucket(None, "10.0.0.1", "Mozilla/5.0");
        assert_eq!(a, visitor_bucket(None, "10.0.0.1", "Mozilla/5.0"));
        let mut seen = [0u32; 100];
        for i in 0..10_000 {
            seen[usize::from(visitor_bucket(
                None,
                &format!("10.0.{}.{}", i / 256, i % 256),
                "ua",
            ))] += 1;
        }
        // Every bucket gets about 100 of 10,000 visitors.
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
    }

    /// Regression (issue 20.10): `from = "/blog/*"` was taken literally; what is not
    /// supported is now refused, naming it.
    #[test]
    fn redirect_patterns_supported_and_refused() {
        let p = Pattern::parse("/blog/:year/*").unwrap();
        assert_eq!(
            p.matches("/blog/2024/a/b/"),
            Some(vec![
                ("year".into(), "2024".into()),
                ("splat".into(), "a/b/".into())
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
