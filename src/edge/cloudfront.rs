//! `[edge]` compiled for CloudFront: the in-place layout's viewer-request CloudFront
//! Function (`cloudfront-js-2.0`), which makes the same decisions as [`super::resolve`];
//! the response headers policy for `[edge] headers` (so they reach error responses too);
//! and the custom error responses for `not_found` (404 stays 404). The atomic layout's
//! function, which reads each release's rules from the KeyValueStore, is
//! [`super::function`]'s; both are built of [`super::js`]'s pieces.
//!
//! The in-place function cannot ask the origin whether a key exists, so what `resolve`
//! asks of the site is compiled into it: the directories that have an index page (for
//! `/dir` → 301 `/dir/`) and the files without an extension (which are not client-side
//! routes). Both lists are inlined; a site whose lists do not fit the 10 KB code budget
//! is refused, naming the budget and what took it (see docs/decisions.md).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use super::js::{ANSWER, CWT, TOKEN, compact, js, with_cwt};
use crate::config::EdgeConfig;

pub use super::function::Atomic;
pub use super::js::{CODE_BUDGET, Function, RELEASE_PARAM, RUNTIME, without_fallback};

/// What the function needs to know about the site, from its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteShape {
    /// Directories with an index page, without slashes ("" is the root).
    pub dirs: BTreeSet<String>,
    /// Keys whose last segment has no extension (served as files, never as routes).
    pub bare_files: BTreeSet<String>,
    /// Every key named by the config (spa_fallback, not_found) that the site has.
    pub has_spa: bool,
    pub has_not_found: bool,
}

impl SiteShape {
    pub fn of<'a>(edge: &EdgeConfig, keys: impl Iterator<Item = &'a str>) -> Self {
        let mut s = Self::default();
        let index = edge.directory_index.as_str();
        for k in keys {
            if let Some(dir) = k.strip_suffix(index)
                && (dir.is_empty() || dir.ends_with('/'))
            {
                s.dirs.insert(dir.trim_end_matches('/').to_owned());
            }
            if !crate::keys::has_extension(k) {
                s.bare_files.insert(k.to_owned());
            }
            s.has_spa |= edge.spa_fallback.as_deref() == Some(k);
            s.has_not_found |= edge.not_found.as_deref() == Some(k);
        }
        s
    }
}

/// A newline-delimited list, looked up with `indexOf("\n" + x + "\n")`.
fn nl_list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        return js("");
    }
    let mut s = String::from("\n");
    for i in items {
        s.push_str(i);
        s.push('\n');
    }
    js(&s)
}

/// Compile `[edge]` for a site of shape `shape`. `hidden`: key prefixes never served
/// (the state prefix); `auth_sha256`: SHA-256 (hex) of the exact `Authorization` header
/// value basic auth accepts (the password never appears in the code).
pub fn compile(
    edge: &EdgeConfig,
    shape: &SiteShape,
    hidden: &[String],
    auth_sha256: Option<&str>,
    atomic: Option<&Atomic>,
) -> Result<Function, String> {
    // An atomic layout's function depends on no release: the rules come with the pointer.
    if let Some(a) = atomic {
        return super::function::viewer_request(edge, hidden, auth_sha256, a);
    }
    // Keys in these lists are matched against the decoded path: a newline in a key
    // would split it (keys with control characters are refused at deploy anyway).
    if let Some(bad) = shape
        .dirs
        .iter()
        .chain(&shape.bare_files)
        .find(|k| k.contains('\n'))
    {
        return Err(format!(
            "{bad:?}: a key with a newline cannot be routed at the edge"
        ));
    }
    // [[segments, splat, status, to], ...]: a segment ":name" is a placeholder (a literal
    // segment never starts with ':'; the config refuses it).
    let mut redirects = String::from("[");
    for (i, r) in edge.redirects.iter().enumerate() {
        let pattern = crate::config::Pattern::parse(&r.from)
            .map_err(|e| format!("edge.redirects[{i}].from: {e}"))?;
        if i > 0 {
            redirects.push(',');
        }
        let parts: Vec<String> = pattern
            .parts
            .iter()
            .map(|p| match p {
                crate::config::Part::Literal(l) => js(l),
                crate::config::Part::Param(n) => js(&format!(":{n}")),
            })
            .collect();
        let _ = write!(
            redirects,
            "[[{}],{},{},{}]",
            parts.join(","),
            u8::from(pattern.splat),
            r.status,
            js(&crate::config::location_literal(&r.to))
        );
    }
    redirects.push(']');
    let hidden_js = format!(
        "[{}]",
        hidden.iter().map(|h| js(h)).collect::<Vec<_>>().join(",")
    );
    let spa = match (&edge.spa_fallback, shape.has_spa) {
        (Some(k), true) => js(&format!("/{}", crate::store::encode_key(k))),
        _ => "null".into(),
    };
    let auth = auth_sha256.map_or_else(|| "null".into(), js);
    // Basic auth on previews only: live's routing asks for none.
    let previews_only = edge.basic_auth.as_ref().is_some_and(|a| a.previews_only);
    let live_auth = if previews_only {
        "null".to_owned()
    } else {
        auth.clone()
    };
    let token = match &edge.auth {
        Some(a) if a.jwt.is_some() => {
            return Err(
                "[edge.auth.jwt] at CloudFront keeps its secrets in the environment's KeyValueStore (never in the function's code), which an environment has behind CloudFront with layout = \"atomic\" (an S3 store and a `cdn`; `driftless migrate ENV --layout atomic` moves an in-place one); `driftless serve` checks the tokens either way, or use [edge.auth.signed_cookies]"
                    .into(),
            );
        }
        Some(a) => Some(token_js(a)?),
        None => None,
    };
    let mut code = String::new();
    let _ = writeln!(
        code,
        "// Generated by driftless from [edge] in driftless.toml: do not edit here; change the\n\
         // config and run `driftless edge ENV --apply` (or `--export`). Runtime {RUNTIME}."
    );
    if auth_sha256.is_some() {
        code.push_str("var crypto = require('crypto');\n");
    }
    let _ = writeln!(code, "var REDIRECTS = {redirects};");
    let _ = writeln!(code, "var DIRS = {};", nl_list(&shape.dirs));
    let _ = writeln!(code, "var FILES = {};", nl_list(&shape.bare_files));
    let _ = writeln!(
        code,
        "var INDEX = {}, SPA = {spa}, HIDDEN = {hidden_js}, AUTH = {live_auth};",
        js(&edge.directory_index)
    );
    code.push_str(ANSWER);
    code.push_str(BODY);
    if let Some(t) = &token {
        code.push_str(t);
        code = code.replacen(
            "  var to = redirect(path);\n",
            "  if (guarded(path) && !holds(req, event.authKey)) return refuse(req);\n  var to = redirect(path);\n",
            1,
        );
    }
    // Indentation is for people reading this source: the budget is the runtime's.
    let code = compact(&code);
    let digest = hex::encode(Sha256::digest(code.as_bytes()));
    let f = Function { code, digest };
    if f.size() > CODE_BUDGET {
        return Err(format!(
            "the CloudFront Function for this site is {} bytes, over CloudFront's {CODE_BUDGET}-byte budget ({} directories with an index page, {} files without an extension, {} redirects are inlined); fewer redirects or a flatter site fit, or keep edge rules in Terraform by hand",
            f.size(),
            shape.dirs.len(),
            shape.bare_files.len(),
            edge.redirects.len()
        ));
    }
    Ok(f)
}

/// `[edge.auth]` for the function: its rules as constants, then [`TOKEN`] (JWTs) or
/// nothing more (signed cookies: CloudFront checks them before the function runs, on
/// the behaviors `edge --apply` makes for the protected patterns).
fn token_js(a: &crate::config::AuthConfig) -> Result<String, String> {
    use super::auth::PathGlob;
    let regexes = |list: &[String]| -> Result<String, String> {
        let all: Result<Vec<String>, String> = list
            .iter()
            .map(|p| PathGlob::parse(p).map(|g| format!("new RegExp({})", js(&g.js_regex()))))
            .collect();
        Ok(format!("[{}]", all?.join(",")))
    };
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), js);
    let mut out = format!(
        "var AUTH_PROTECT = {}, AUTH_PUBLIC = {}, AUTH_COOKIE = {}, AUTH_LOGIN = {}, UNAUTHORIZED = {};\n",
        regexes(&a.protect)?,
        regexes(&a.public)?,
        opt(&a.cookie),
        opt(&a.login_url),
        js(super::auth::UNAUTHORIZED_BODY)
    );
    let Some(j) = &a.jwt else {
        out.push_str("function guarded() { return false; }\nfunction holds() { return true; }\nfunction refuse() { return null; }\nasync function tokenKey() { return null; }\n");
        return Ok(out);
    };
    let algs: Vec<String> = j
        .algorithms
        .iter()
        .map(|a| format!("{}:{}", js(a), js(&format!("sha{}", &a[2..]))))
        .collect();
    out.push_str(&format!(
        "var JWT_ALGS = {{{}}}, JWT_ISS = {}, JWT_AUD = {}, JWT_LEEWAY = {}, AUTH_KEY = {};\n",
        algs.join(","),
        opt(&j.issuer),
        opt(&j.audience),
        j.leeway_seconds(),
        js(super::auth::KEY_PREFIX)
    ));
    out.push_str(TOKEN);
    if j.cwt {
        let _ = writeln!(out, "var CWT_MAX = {};", super::auth::CWT_MAX_BYTES);
        out.push_str(CWT);
        out = with_cwt(&out);
    }
    Ok(out)
}

/// The decisions of [`super::resolve`], in the CloudFront Functions runtime.
const BODY: &str = r#"
function has(list, key) { return list.indexOf('\n' + key + '\n') >= 0; }
function denied(req, hash) {
  var given = req.headers.authorization, m = given && /^\s*basic\s+(.*)$/i.exec(given.value);
  if (!m || crypto.createHash('sha256').update('Basic ' + m[1].replace(/\s+$/, '')).digest('hex') !== hash) {
    return answer(401, 'Unauthorized', { 'www-authenticate': 'Basic realm="driftless"' });
  }
  return null;
}
function redirect(path) {
  var p = path.replace(/^\//, '').replace(/\/$/, ''), segs = p === '' ? [] : p.split('/');
  for (var i = 0; i < REDIRECTS.length; i++) {
    var r = REDIRECTS[i], parts = r[0], n = parts.length, b = {};
    var ok = r[1] ? segs.length >= n : segs.length === n;
    for (var j = 0; ok && j < n; j++) {
      if (parts[j].charAt(0) === ':') { ok = segs[j] !== ''; b[parts[j].slice(1)] = encodeURIComponent(segs[j]); }
      else ok = parts[j] === segs[j];
    }
    if (!ok) continue;
    if (r[1]) b.splat = segs.slice(n).map(encodeURIComponent).join('/') + (segs.length > n && path.slice(-1) === '/' ? '/' : '');
    return [r[2], r[3].replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, function (m, k) {
      return Object.prototype.hasOwnProperty.call(b, k) ? b[k] : m;
    })];
  }
  return null;
}
function handler(event) {
  var req = event.request, uri = req.uri, path;
  if (AUTH && !event.preview) {
    var d = denied(req, AUTH);
    if (d) return d;
  }
  try { path = decodeURIComponent(uri); } catch (e) { return answer(400, 'Bad Request', {}); }
  if (uri.indexOf('//') >= 0) {
    return answer(301, 'Moved Permanently', { location: uri.replace(/\/\/+/g, '/') + query(req.querystring) });
  }
  var to = redirect(path);
  if (to) {
    return answer(to[0], 'Redirect', { location: to[1].indexOf('?') < 0 ? to[1] + query(req.querystring) : to[1] });
  }
  var rel = path.replace(/^\/+/, '');
  if (/(^|\/)\.\.?(\/|$)/.test(rel) || rel.indexOf('\0') >= 0 || rel.indexOf('//') >= 0) {
    return answer(400, 'Bad Request', {});
  }
  for (var i = 0; i < HIDDEN.length; i++) {
    var h = HIDDEN[i];
    if (rel.indexOf(h) === 0 || rel === h.replace(/\/$/, '')) return answer(404, 'Not Found', {});
  }
  if (rel === '' || rel.charAt(rel.length - 1) === '/') {
    if (has(DIRS, rel.replace(/\/$/, '')) || !SPA) { req.uri = uri + INDEX; return req; }
    req.uri = SPA;
    return req;
  }
  if (has(FILES, rel)) return req;
  if (has(DIRS, rel)) {
    return answer(301, 'Moved Permanently', { location: uri + '/' + query(req.querystring) });
  }
  var last = rel.slice(rel.lastIndexOf('/') + 1);
  if (last.indexOf('.') < 0 && SPA) req.uri = SPA;
  return req;
}
"#;

/// A CloudFront security header `[edge] headers` may set, and how the policy says it.
fn security_header(
    name: &str,
    value: &str,
) -> Option<Result<(&'static str, serde_json::Value), String>> {
    let lower = name.to_ascii_lowercase();
    let v = value.trim();
    Some(Ok(match lower.as_str() {
        "strict-transport-security" => {
            let mut max_age = None;
            let (mut sub, mut preload) = (false, false);
            for part in v.split(';').map(str::trim) {
                let p = part.to_ascii_lowercase();
                if let Some(n) = p.strip_prefix("max-age=") {
                    max_age = n.trim_matches('"').parse::<u64>().ok();
                } else if p == "includesubdomains" {
                    sub = true;
                } else if p == "preload" {
                    preload = true;
                } else if !p.is_empty() {
                    return Some(Err(format!(
                        "{name}: {part:?} is not a Strict-Transport-Security directive"
                    )));
                }
            }
            let Some(max_age) = max_age else {
                return Some(Err(format!("{name}: {value:?} has no max-age")));
            };
            (
                "StrictTransportSecurity",
                serde_json::json!({ "Override": true, "AccessControlMaxAgeSec": max_age, "IncludeSubdomains": sub, "Preload": preload }),
            )
        }
        "x-content-type-options" => {
            if !v.eq_ignore_ascii_case("nosniff") {
                return Some(Err(format!("{name}: CloudFront only sends \"nosniff\"")));
            }
            (
                "ContentTypeOptions",
                serde_json::json!({ "Override": true }),
            )
        }
        "x-frame-options" => {
            let option = v.to_ascii_uppercase();
            if option != "DENY" && option != "SAMEORIGIN" {
                return Some(Err(format!(
                    "{name}: CloudFront sends DENY or SAMEORIGIN, not {value:?}"
                )));
            }
            (
                "FrameOptions",
                serde_json::json!({ "Override": true, "FrameOption": option }),
            )
        }
        "referrer-policy" => (
            "ReferrerPolicy",
            serde_json::json!({ "Override": true, "ReferrerPolicy": v.to_ascii_lowercase() }),
        ),
        "content-security-policy" => (
            "ContentSecurityPolicy",
            serde_json::json!({ "Override": true, "ContentSecurityPolicy": v }),
        ),
        "x-xss-protection" => {
            let mut parts = v.split(';').map(str::trim);
            let protection = parts.next() == Some("1");
            let mut x = serde_json::json!({ "Override": true, "Protection": protection });
            for p in parts {
                if p.eq_ignore_ascii_case("mode=block") {
                    x["ModeBlock"] = true.into();
                } else if let Some(uri) = p.strip_prefix("report=") {
                    x["ReportUri"] = uri.into();
                }
            }
            ("XSSProtection", x)
        }
        _ => return None,
    }))
}

/// The response headers policy (`ResponseHeadersPolicyConfig`, as the CloudFront API
/// takes it) for `[edge] headers`; `None` without headers.
///
/// With `defer` (the atomic layout) the policy sets a header only where the answer has
/// none: each release's own headers, set by the viewer-response function, win; the
/// policy's — the environment's — are for what no function touches (CloudFront's error
/// pages, the answers the viewer-request function makes itself).
pub fn headers_policy(
    edge: &EdgeConfig,
    name: &str,
    defer: bool,
) -> Result<Option<serde_json::Value>, String> {
    if edge.headers.is_empty() {
        return Ok(None);
    }
    let mut security = serde_json::Map::new();
    let mut custom = Vec::new();
    for (h, v) in &edge.headers {
        match security_header(h, v) {
            Some(r) => {
                let (field, value) = r.map_err(|e| format!("edge.headers: {e}"))?;
                security.insert(field.into(), value);
            }
            None => custom.push(serde_json::json!({ "Header": h, "Value": v, "Override": true })),
        }
    }
    if defer {
        for v in security.values_mut() {
            v["Override"] = false.into();
        }
        for c in &mut custom {
            c["Override"] = false.into();
        }
    }
    let mut config = serde_json::json!({
        "Name": name,
        "Comment": "[edge] headers of driftless.toml (managed by driftless)",
    });
    if !security.is_empty() {
        config["SecurityHeadersConfig"] = serde_json::Value::Object(security);
    }
    if !custom.is_empty() {
        config["CustomHeadersConfig"] =
            serde_json::json!({ "Quantity": custom.len(), "Items": custom });
    }
    Ok(Some(config))
}

/// The distribution's custom error responses for `not_found`: S3 answers a missing key
/// 404 (or 403 when CloudFront may not list the bucket); both become the page, as 404.
pub fn error_responses(edge: &EdgeConfig, shape: &SiteShape) -> Vec<serde_json::Value> {
    let Some(page) = edge.not_found.as_deref().filter(|_| shape.has_not_found) else {
        return Vec::new();
    };
    [403, 404]
        .iter()
        .map(|code| {
            serde_json::json!({
                "ErrorCode": code,
                "ResponsePagePath": format!("/{}", crate::store::encode_key(page)),
                "ResponseCode": "404",
                "ErrorCachingMinTTL": 10,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the function can carry at once — basic auth on previews, token auth
    /// (JWTs and CWTs), previews, the canary, redirects, a SPA fallback — fits CloudFront's 10 KB (with
    /// about 600 bytes left for the site's directory lists: a larger site is refused by
    /// the budget check, naming it).
    #[test]
    fn every_feature_at_once_fits_the_budget() {
        let edge: EdgeConfig = toml::from_str(
            r#"
spa_fallback = "index.html"
not_found = "404.html"
redirects = [
  { from = "/old", to = "/new" },
  { from = "/blog/:year/:slug", to = "/posts/:slug" },
  { from = "/docs/*", to = "/manual/:splat", status = 302 },
]
[basic_auth]
user = "review"
password_env = "X"
previews_only = true
[auth]
protect = ["/app/**", "/api/**"]
public = ["/app/login.html", "/api/health"]
login_url = "/app/login.html"
cookie = "session"
[auth.jwt]
algorithms = ["HS256", "HS384", "HS512"]
issuer = "https://auth.example.com"
audience = "site"
keys = { k1 = "A", k0 = "B" }
cwt = true
"#,
        )
        .unwrap();
        let shape = SiteShape::of(
            &edge,
            [
                "index.html",
                "404.html",
                "docs/index.html",
                "app/index.html",
            ]
            .into_iter(),
        );
        let atomic = Atomic {
            pointer_key: "current".into(),
            last_known_good: Some(("a".into(), "20261206T000000Z-abcdef".into())),
            preview_host: Some(".preview.example.com".into()),
            last_root: None,
            last_cells: std::collections::BTreeMap::new(),
        };
        let f = compile(
            &edge,
            &shape,
            &[".driftless/".into()],
            Some(&"0".repeat(64)),
            Some(&atomic),
        )
        .unwrap();
        println!("every feature: {} of {CODE_BUDGET} bytes", f.size());
        assert!(f.size() < CODE_BUDGET, "{} bytes", f.size());
    }
}
