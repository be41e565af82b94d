//! The headers a site file is served with: the first matching rule, then defaults by
//! extension (including wasm, woff2, webp, avif, mjs).

use crate::config::Rule;
use crate::store::Attributes;

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
