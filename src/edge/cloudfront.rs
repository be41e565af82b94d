//! `[edge]` compiled for CloudFront: a viewer-request CloudFront Function
//! (`cloudfront-js-2.0`) that makes the same decisions as [`super::resolve`], a response
//! headers policy for `[edge] headers` (so they reach error responses too), and the custom
//! error responses for `not_found` (404 stays 404).
//!
//! The function cannot ask the origin whether a key exists, so what `resolve` asks of the
//! site is compiled into it: the directories that have an index page (for `/dir` → 301
//! `/dir/`) and the files without an extension (which are not client-side routes). Both
//! lists are inlined; a site whose lists do not fit the 10 KB code budget is refused,
//! naming the budget and what took it (see docs/decisions.md).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use crate::config::EdgeConfig;

/// CloudFront's limit on a function's code.
pub const CODE_BUDGET: usize = 10 * 1024;
pub const RUNTIME: &str = "cloudfront-js-2.0";

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

/// What the function of an atomic layout needs: where the slots are, and the release to
/// serve when the KeyValueStore cannot be read (the live one when it was compiled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atomic {
    /// The KeyValueStore key of the live pointer.
    pub pointer_key: String,
    /// The slot and release live when the function was compiled, if any.
    pub last_known_good: Option<(String, String)>,
    /// The host suffix after a preview's name (".preview.example.com"), when the
    /// environment has a `preview_url`: such hosts are served preview NAME.
    pub preview_host: Option<String>,
    /// The rules of `last_known_good` (its root, see [`super::table`]), served with it.
    pub last_root: Option<serde_json::Value>,
    /// Its table's buckets, when they fit beside the code: routed right even when the
    /// KeyValueStore cannot be read.
    pub last_cells: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The query-string parameter that carries the release into the cache key.
pub const RELEASE_PARAM: &str = "driftless-release";

/// The generated function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub code: String,
    /// SHA-256 of the code: what edge drift compares.
    pub digest: String,
}

impl Function {
    pub fn size(&self) -> usize {
        self.code.len()
    }
}

/// A JavaScript string literal (JSON, with the two line separators JSON allows raw
/// escaped, so any ES version parses it).
pub(super) fn js(s: &str) -> String {
    serde_json::to_string(s)
        .expect("strings serialise")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
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
        Some(a) if a.jwt.is_some() && atomic.is_none() => {
            return Err(
                "[edge.auth.jwt] at CloudFront keeps its secrets in the environment's KeyValueStore (never in the function's code), which an environment has behind CloudFront with layout = \"atomic\" (an S3 store and a `cdn`; `driftless migrate ENV --layout atomic` moves an in-place one); `driftless serve` checks the tokens either way, or use [edge.auth.signed_cookies]"
                    .into(),
            );
        }
        Some(a) => Some(token_js(a)?),
        None => None,
    };
    let mut code = String::new();
    if atomic.is_some() {
        // The runtime wants the KeyValueStore module imported on the first lines.
        code.push_str("import cf from 'cloudfront';\n");
    }
    let _ = writeln!(
        code,
        "// Generated by driftless from [edge] in driftless.toml: do not edit here; change the\n\
         // config and run `driftless edge ENV --apply` (or `--export`). Runtime {RUNTIME}."
    );
    if auth_sha256.is_some() || atomic.is_some() {
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
    code.push_str(BODY);
    if let Some(t) = &token {
        code.push_str(t);
        code = code.replacen(
            "  var to = redirect(path);\n",
            "  if (guarded(path) && !holds(req, event.authKey)) return refuse(req);\n  var to = redirect(path);\n",
            1,
        );
    }
    if let Some(a) = atomic {
        let last = a.last_known_good.as_ref().map_or_else(
            || "null".to_owned(),
            |(slot, release)| serde_json::json!({ "slot": slot, "release": release }).to_string(),
        );
        let _ = writeln!(
            code,
            "var POINTER = {}, PARAM = {}, COOKIE = {}, LAST = {last};",
            js(&a.pointer_key),
            js(RELEASE_PARAM),
            js(super::CANARY_COOKIE)
        );
        code.push_str(BUCKET);
        code.push_str(ATOMIC);
        if let Some(suffix) = &a.preview_host {
            let _ = writeln!(
                code,
                "var PREVIEWS = {}, PREVIEW_AUTH = {auth}, PREVIEW_KEY = {}, EXPIRED = {};",
                js(suffix),
                js(crate::store::PREVIEW_KEY_PREFIX),
                js(&super::expired_preview_page("{name}"))
            );
            code.push_str(PREVIEW);
            code = code.replacen(
                "  var r = route(event);\n  if (r.statusCode !== undefined) return r;\n  var p = null;",
                "  var name = previewing(event.request);\n  if (name !== null) return preview(event, name);\n  var r = route(event);\n  if (r.statusCode !== undefined) return r;\n  var p = null;",
                1,
            );
        }
        code = code.replacen("function handler(event) {", "function route(event) {", 1);
        if token.is_some() {
            code = code.replacen(
                "async function handler(event) {\n",
                "async function handler(event) {\n  event.authKey = await tokenKey(event);\n",
                1,
            );
        }
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

/// The code without what the runtime does not need: indentation, blank lines, and the
/// spaces that separate no two words, outside string, regex and comment text (and the
/// import line). No string literal of the function spans lines, so each line is read
/// alone.
pub(super) fn compact(code: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(code.len());
    for line in code.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // The runtime's import, in the form its documentation gives, as is.
        if line.starts_with("import ") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let start = out.len();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' | '"' => {
                    out.push(c);
                    copy_literal(&mut chars, &mut out, c);
                }
                '/' if chars.peek() == Some(&'/') => {
                    out.push(c);
                    out.extend(chars.by_ref());
                }
                '/' if regex_may_start(&out[start..]) => {
                    out.push(c);
                    copy_literal(&mut chars, &mut out, '/');
                }
                ' ' | '\t' => {
                    while chars.next_if(|n| *n == ' ' || *n == '\t').is_some() {}
                    let (Some(before), Some(&after)) = (out[start..].chars().last(), chars.peek())
                    else {
                        continue;
                    };
                    if (word(before) && word(after)) || (before == after && "+-".contains(after)) {
                        out.push(' ');
                    }
                }
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    join_braces(&out)
}

/// Lines that open or close a block joined to their neighbour (`{` at the end of one,
/// `}` at the start of the next) — never a line with `//` in it, whose comment would
/// swallow what follows.
fn join_braces(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut last_safe = false;
    for line in code.lines() {
        let safe = !line.contains("//") && !line.starts_with("import ");
        // Every statement of the generated code ends with `;` or a brace: a line may
        // follow the one before on the same line.
        let ends = out.ends_with(";\n") || out.ends_with("{\n") || out.ends_with("}\n");
        if last_safe && safe && ends {
            out.pop(); // the newline
        }
        out.push_str(line);
        out.push('\n');
        last_safe = safe;
    }
    out
}

/// Copy a string (or regex) literal's rest, up to its unescaped closing `end` (a regex's
/// `/` inside a character class does not close it).
fn copy_literal(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String, end: char) {
    let mut class = false;
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\\' => out.extend(chars.next()),
            '[' if end == '/' => class = true,
            ']' if end == '/' => class = false,
            c if c == end && !class => return,
            _ => {}
        }
    }
}

/// Would a `/` after `before` (this line's output so far) start a regex literal rather
/// than divide? After an operator, an opening bracket, or `return`/`typeof`.
fn regex_may_start(before: &str) -> bool {
    let t = before.trim_end();
    match t.chars().last() {
        None => true,
        Some(c) if "(,=:[!&|?{};+-*%<>~^".contains(c) => true,
        Some(_) => t.ends_with("return") || t.ends_with("typeof"),
    }
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

/// [`TOKEN`] with CBOR Web Tokens accepted too.
pub(super) fn with_cwt(code: &str) -> String {
    code.replacen(
        "h = p.length === 3 ? obj(p[0]) : null;",
        "h = p.length === 3 ? obj(p[0]) : p.length === 1 ? cwtOf(t) : null;",
        1,
    )
    .replacen(
        "try { return await cf.kvs().get(AUTH_KEY + k); }",
        "try { p = await cf.kvs().get(AUTH_KEY + k); if (t.indexOf('.') < 0) await cf.cwt.validateToken(h.mac, { key: p }); return p; }",
        1,
    )
    .replacen(
        "  if (p.length !== 3 || typeof secret !== 'string') return false;",
        "  if (p.length === 1) return typeof secret === 'string' && secret.length >= 32 && cwtHolds(t);\n  if (p.length !== 3 || typeof secret !== 'string') return false;",
        1,
    )
}

/// [`TOKEN`] for the atomic layout's function: which paths are guarded is the release's
/// (`guarded(R, path)`, defined with the function's other helpers).
pub(super) fn token_code() -> String {
    let start = TOKEN
        .find("function bearer(")
        .expect("TOKEN defines bearer");
    TOKEN[start..]
        .replacen(
            "async function tokenKey(event) {",
            "async function tokenKey(event, R) {",
            1,
        )
        .replacen("!guarded(path)", "!guarded(R, path)", 1)
}

pub(super) fn cwt_code() -> &'static str {
    CWT
}

/// CBOR Web Tokens at the edge, as [`super::auth::cwt_holds`] checks them. The runtime's
/// `cf.cwt.validateToken` checks the MAC (and the tags and the size) in `tokenKey`, right
/// after the key is read: the key id must be found first, and the module checks no
/// claim, so a small CBOR reader here finds the kid and the claims. (The module's call is
/// synchronous; `await` on its answer changes nothing there and lets a test stand in an
/// asynchronous COSE library.)
const CWT: &str = r#"function cbor(b, s) {
  var c = b[s.i++], m = c >> 5, n = c & 31, v, k;
  if (c === undefined || n > 27) throw 0;
  if (n > 23) for (k = 1 << (n - 24), n = 0; k--;) n = n * 256 + b[s.i++];
  if (m === 6) return cbor(b, s);
  if (m === 7) return null;
  if (m < 2) return m ? -1 - n : n;
  if (!(n <= b.length)) throw 0;
  if (m < 4) { v = b.slice(s.i, s.i += n); return m === 3 ? v.toString('utf8') : v; }
  for (v = m === 4 ? [] : {}; n--;) { k = m === 4 ? v.length : cbor(b, s); v[k] = cbor(b, s); }
  return v;
}
function kidIn(h) { var k = h && h[4]; return k && k.length ? k : undefined; }
function cwtOf(t) {
  var b = b64(t), o, s, x, p, k;
  if (!b || b.length > CWT_MAX) return null;
  o = b[0] === 0xd8 && b[1] === 61 ? 2 : 0; s = { i: o };
  if (b[o] !== 0xd1) return null;
  try { x = cbor(b, s); p = cbor(x[0], { i: 0 }); } catch (e) { return null; }
  if (s.i !== b.length || !Array.isArray(x) || x.length !== 4 || !p || p[1] !== 5) return null;
  k = kidIn(x[1]) || kidIn(p);
  return { mac: b, x: x, kid: k === undefined ? k : Buffer.isBuffer(k) ? k.toString('utf8') : 0 };
}
function cwtHolds(t) {
  var c = cwtOf(t), y;
  try { y = cbor(c.x[2], { i: 0 }); } catch (e) { return false; }
  return !!y && typeof y === 'object' && !Array.isArray(y) && claims({ iss: y[1], aud: typeof y[3] === 'string' ? y[3] : null, exp: y[4], nbf: y[5] });
}
"#;

/// JWTs at the edge, as [`super::auth::jwt_holds`] checks them: the key is read from
/// the KeyValueStore (`auth:KID`) by the handler before routing, only for a protected
/// path that carries a token; the check itself is synchronous.
const TOKEN: &str = r#"function guarded(path) {
  var i;
  for (i = 0; i < AUTH_PUBLIC.length; i++) if (AUTH_PUBLIC[i].test(path)) return false;
  for (i = 0; i < AUTH_PROTECT.length; i++) if (AUTH_PROTECT[i].test(path)) return true;
  return false;
}
function bearer(req) {
  var h = req.headers.authorization, v = h ? h.value.trim() : '';
  if (v.length > 7 && v.slice(0, 7).toLowerCase() === 'bearer ') return v.slice(7).trim();
  var c = AUTH_COOKIE !== null && req.cookies ? req.cookies[AUTH_COOKIE] : null;
  return c ? c.value.trim() : null;
}
function b64(p) {
  if (!/^[A-Za-z0-9_-]+$/.test(p) || p.length % 4 === 1) return null;
  return Buffer.from(p.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
function obj(p) {
  var b = b64(p), v;
  if (!b) return null;
  try { v = JSON.parse(b.toString('utf8')); } catch (e) { return null; }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
}
function kidOf(h) {
  var k = h.kid === undefined ? 'default' : h.kid;
  return typeof k === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(k) ? k : null;
}
async function tokenKey(event) {
  var req = event.request, path, t, p, h, k;
  try { path = decodeURIComponent(req.uri); } catch (e) { return null; }
  if (req.uri.indexOf('//') >= 0 || !guarded(path)) return null;
  t = bearer(req); p = t ? t.split('.') : [];
  h = p.length === 3 ? obj(p[0]) : null; k = h ? kidOf(h) : null;
  if (k === null) return null;
  try { return await cf.kvs().get(AUTH_KEY + k); } catch (e) { return null; }
}
function holds(req, secret) {
  var t = bearer(req), p = t ? t.split('.') : [], h, b, sig, d = 0, i;
  if (p.length !== 3 || typeof secret !== 'string') return false;
  h = obj(p[0]); b = obj(p[1]);
  if (!h || !b || !b64(p[2]) || typeof h.alg !== 'string' || !Object.prototype.hasOwnProperty.call(JWT_ALGS, h.alg) || kidOf(h) === null) return false;
  if (secret.length < JWT_ALGS[h.alg].slice(3) / 8) return false;
  sig = crypto.createHmac(JWT_ALGS[h.alg], secret).update(p[0] + '.' + p[1]).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  if (sig.length !== p[2].length) return false;
  for (i = 0; i < sig.length; i++) d |= sig.charCodeAt(i) ^ p[2].charCodeAt(i);
  return d === 0 && claims(b);
}
function claims(b) {
  var now = Date.now() / 1000;
  if (typeof b.exp !== 'number' || !(now < b.exp + JWT_LEEWAY)) return false;
  if (b.nbf !== undefined && (typeof b.nbf !== 'number' || !(now >= b.nbf - JWT_LEEWAY))) return false;
  if (JWT_ISS !== null && b.iss !== JWT_ISS) return false;
  if (JWT_AUD !== null && b.aud !== JWT_AUD && !(Array.isArray(b.aud) && b.aud.indexOf(JWT_AUD) >= 0)) return false;
  return true;
}
function refuse(req) {
  var a = req.headers.accept, json = a ? a.value.toLowerCase().indexOf('application/json') >= 0 : false, r;
  if (AUTH_LOGIN !== null && !json) {
    return answer(302, 'Found', { location: AUTH_LOGIN + (AUTH_LOGIN.indexOf('?') >= 0 ? '&' : '?') + 'next=' + encodeURIComponent(req.uri + query(req.querystring)), 'cache-control': 'no-store' });
  }
  r = answer(401, 'Unauthorized', { 'www-authenticate': 'Bearer realm="driftless"', 'content-type': 'application/json', 'cache-control': 'no-store' });
  r.body = { encoding: 'text', data: UNAUTHORIZED };
  return r;
}
"#;

/// The decisions of [`super::resolve`], in the CloudFront Functions runtime.
const BODY: &str = r#"
function answer(code, text, headers) {
  var r = { statusCode: code, statusDescription: text, headers: {} };
  for (var k in headers) r.headers[k] = { value: headers[k] };
  return r;
}
function query(q) {
  var parts = [];
  for (var k in q) {
    var v = q[k], all = v.multiValue ? v.multiValue : [v];
    for (var i = 0; i < all.length; i++) parts.push(all[i].value === '' ? k : k + '=' + all[i].value);
  }
  return parts.length ? '?' + parts.join('&') : '';
}
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

/// The code with the fallback release (`LAST = …;`) left out: two functions that differ
/// only there have the same rules (the fallback follows every deploy).
pub fn without_fallback(code: &str) -> std::borrow::Cow<'_, str> {
    let mut code: std::borrow::Cow<'_, str> = code.into();
    // The fallback's table (`var LAST_CELLS={…};`, atomic layout) and the release itself
    // (`,LAST={…}`; spaced as published before CWTs): each value is JSON, cut exactly.
    for marker in [
        "var LAST_CELLS=",
        "var LAST_CELLS = ",
        ",LAST=",
        ", LAST = ",
    ] {
        let Some(at) = code.find(marker) else {
            continue;
        };
        let value = at + marker.len();
        let mut json =
            serde_json::Deserializer::from_str(&code[value..]).into_iter::<serde_json::Value>();
        // (`null` is no self-delimiting value to the stream reader: taken as it is.)
        let len = if code[value..].starts_with("null") {
            4
        } else {
            match json.next() {
                Some(Ok(_)) => json.byte_offset(),
                _ => continue,
            }
        };
        // A declaration of its own goes with its `;`; a part of one only with its comma.
        let end = if marker.starts_with("var") && code[value + len..].starts_with(';') {
            value + len + 1
        } else {
            value + len
        };
        code = format!("{}{}", &code[..at], &code[end..]).into();
    }
    code
}

/// A visitor's canary bucket, as [`super::visitor_bucket`] computes it: the cookie's, else
/// from SHA-256 of address and user agent.
pub(super) const BUCKET: &str = r#"function bucket(event) {
  var req = event.request, c = req.cookies && req.cookies[COOKIE], ua = req.headers['user-agent'];
  if (c && /^\d{1,2}$/.test(c.value)) return +c.value;
  var h = crypto.createHash('sha256').update(event.viewer.ip + ' ' + (ua ? ua.value : '')).digest('hex');
  return parseInt(h.slice(0, 8), 16) % 100;
}
"#;

/// The atomic layout's handler: route as above, then serve the request from the slot the
/// live pointer names — or, for a visitor whose bucket is below a canary's share, the
/// canary's slot — with the release in the query string (the cache key's part), so a
/// switch never meets the other release's cached copy. A failed read serves the release
/// compiled in, never the bare URI (nothing is there).
const ATOMIC: &str = r#"async function handler(event) {
  var r = route(event);
  if (r.statusCode !== undefined) return r;
  var p = null;
  try { p = await cf.kvs().get(POINTER, { format: 'json' }); } catch (e) { p = null; }
  if (!p || (p.slot !== 'a' && p.slot !== 'b') || typeof p.release !== 'string') p = LAST;
  if (!p) return answer(503, 'Service Unavailable', { 'retry-after': '5' });
  var c = p.canary;
  if (c && (c.slot === 'a' || c.slot === 'b') && typeof c.release === 'string' && bucket(event) < c.percent) p = c;
  r.uri = '/slots/' + p.slot + r.uri;
  r.querystring = {};
  r.querystring[PARAM] = { value: p.release };
  return r;
}
"#;

/// Previews: a host `NAME` + `PREVIEWS` is served preview NAME from `previews/NAME/`,
/// with its release (its KeyValueStore key) in the cache key — after basic auth (which
/// may guard previews only), 404 for an unknown preview, 410 once expired; one
/// KeyValueStore read per request, as for live.
const PREVIEW: &str = r#"function previewing(req) {
  var h = req.headers.host, host = h ? h.value.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '') : '';
  if (host.length <= PREVIEWS.length || host.slice(-PREVIEWS.length) !== PREVIEWS) return null;
  var name = host.slice(0, -PREVIEWS.length);
  return name.indexOf('.') < 0 ? name : null;
}
async function preview(event, name) {
  var noindex = { 'x-robots-tag': 'noindex' }, v = null;
  if (PREVIEW_AUTH) {
    var d = denied(event.request, PREVIEW_AUTH);
    if (d) { d.headers['x-robots-tag'] = { value: 'noindex' }; return d; }
  }
  try { v = await cf.kvs().get(PREVIEW_KEY + name, { format: 'json' }); } catch (e) { v = null; }
  if (!v || typeof v.release !== 'string') return answer(404, 'Not Found', noindex);
  if (!(v.expires > Date.now() / 1000)) {
    var g = answer(410, 'Gone', { 'x-robots-tag': 'noindex', 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    g.body = { encoding: 'text', data: EXPIRED.replace('{name}', name) };
    return g;
  }
  event.preview = name;
  var r = route(event);
  if (r.statusCode !== undefined) { r.headers['x-robots-tag'] = { value: 'noindex' }; return r; }
  r.uri = '/previews/' + name + r.uri;
  r.querystring = {};
  r.querystring[PARAM] = { value: v.release };
  return r;
}
"#;

/// The viewer-response function of an atomic layout. While a canary runs, a visitor
/// without the canary cookie is given one holding their bucket (computed as the
/// viewer-request function did, from the request as the viewer sent it), so they stay on
/// their side; one KeyValueStore read, only for such visitors. With previews, every
/// answer to a preview host gets `X-Robots-Tag: noindex` (what the origin sends cannot
/// be marked by the viewer-request function, and a response headers policy applies to
/// all hosts).
pub fn response_function(atomic: &Atomic) -> Function {
    let previews = atomic
        .preview_host
        .as_deref()
        .map_or_else(|| "null".to_owned(), js);
    let code = format!(
        "import cf from 'cloudfront';
// Generated by driftless: the canary cookie, and previews never indexed. Runtime {RUNTIME}.
var crypto = require('crypto');
var PREVIEWS = {previews}, POINTER = {}, COOKIE = {}, ATTRIBUTES = {};
{BUCKET}{RESPONSE}",
        js(&atomic.pointer_key),
        js(super::CANARY_COOKIE),
        js(super::CANARY_COOKIE_ATTRIBUTES),
    );
    let digest = hex::encode(Sha256::digest(code.as_bytes()));
    Function { code, digest }
}

const RESPONSE: &str = r#"async function handler(event) {
  var r = event.response, req = event.request, h = req.headers.host, p = null;
  var host = h ? h.value.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '') : '';
  if (PREVIEWS && host.length > PREVIEWS.length && host.slice(-PREVIEWS.length) === PREVIEWS) {
    r.headers['x-robots-tag'] = { value: 'noindex' };
    return r;
  }
  var c = req.cookies && req.cookies[COOKIE];
  if (c && /^\d{1,2}$/.test(c.value)) return r;
  try { p = await cf.kvs().get(POINTER, { format: 'json' }); } catch (e) { return r; }
  if (p && p.canary && p.canary.percent > 0) {
    r.cookies = r.cookies || {};
    r.cookies[COOKIE] = { value: String(bucket(event)), attributes: ATTRIBUTES };
  }
  return r;
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

/// A Terraform string literal.
fn hcl(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `driftless-edge.tf`: the function and the headers policy as Terraform resources.
pub fn terraform(
    name: &str,
    policy: Option<&serde_json::Value>,
    atomic: bool,
    response: bool,
) -> String {
    let id = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let kvs = if atomic {
        format!("\n  key_value_store_associations = [aws_cloudfront_key_value_store.{id}.arn]")
    } else {
        String::new()
    };
    let mut tf = format!(
        "# Generated by driftless (`driftless edge ENV --export DIR`) from [edge] in driftless.toml.\n\
         # Associate them with your distribution as in distribution.snippet.hcl.\n\n\
         resource \"aws_cloudfront_function\" \"{id}\" {{\n  name    = {}\n  runtime = \"{RUNTIME}\"\n  comment = \"[edge] rules of driftless.toml\"\n  publish = true\n  code    = file(\"${{path.module}}/function.js\"){kvs}\n}}\n",
        hcl(name)
    );
    if atomic {
        let _ = write!(
            tf,
            "\n# The live pointer (layout = \"atomic\"). Its key `current` is written by driftless on\n\
             # every deploy and rollback: do not manage keys of this store in Terraform.\n\
             resource \"aws_cloudfront_key_value_store\" \"{id}\" {{\n  name    = {}\n  comment = \"live pointer of driftless\"\n}}\n\n\
             # The release the function adds to the query string, in the cache key: a switch\n\
             # (deploy, rollback, promotion) needs no invalidation.\n\
             resource \"aws_cloudfront_cache_policy\" \"{id}\" {{\n  name        = {}\n  comment     = \"driftless: the release in the cache key\"\n  min_ttl     = 0\n  default_ttl = 86400\n  max_ttl     = 31536000\n\n  parameters_in_cache_key_and_forwarded_to_origin {{\n    enable_accept_encoding_gzip   = true\n    enable_accept_encoding_brotli = true\n    headers_config {{\n      header_behavior = \"none\"\n    }}\n    cookies_config {{\n      cookie_behavior = \"none\"\n    }}\n    query_strings_config {{\n      query_string_behavior = \"whitelist\"\n      query_strings {{\n        items = [\"{RELEASE_PARAM}\"]\n      }}\n    }}\n  }}\n}}\n",
            hcl(name),
            hcl(name)
        );
    }
    if response {
        let _ = write!(
            tf,
            "\n# The viewer response: the canary cookie that keeps a visitor on their side, and\n\
             # X-Robots-Tag: noindex on every answer to a preview host.\n\
             resource \"aws_cloudfront_function\" \"{id}_response\" {{\n  name    = {}\n  runtime = \"{RUNTIME}\"\n  comment = \"driftless: the canary cookie, previews never indexed\"\n  publish = true\n  code    = file(\"${{path.module}}/response-function.js\"){kvs}\n}}\n",
            hcl(&format!("{name}-response"))
        );
    }
    let Some(p) = policy else {
        return tf;
    };
    let _ = write!(
        tf,
        "\nresource \"aws_cloudfront_response_headers_policy\" \"{id}\" {{\n  name    = {}\n  comment = \"[edge] headers of driftless.toml\"\n",
        hcl(name)
    );
    if let Some(s) = p.get("SecurityHeadersConfig") {
        tf.push_str("\n  security_headers_config {\n");
        let b = |v: &serde_json::Value| v.as_bool().unwrap_or(false);
        if let Some(h) = s.get("StrictTransportSecurity") {
            let _ = write!(
                tf,
                "    strict_transport_security {{\n      override                   = true\n      access_control_max_age_sec = {}\n      include_subdomains         = {}\n      preload                    = {}\n    }}\n",
                h["AccessControlMaxAgeSec"],
                b(&h["IncludeSubdomains"]),
                b(&h["Preload"])
            );
        }
        if s.get("ContentTypeOptions").is_some() {
            tf.push_str("    content_type_options {\n      override = true\n    }\n");
        }
        if let Some(h) = s.get("FrameOptions") {
            let _ = write!(
                tf,
                "    frame_options {{\n      override     = true\n      frame_option = {}\n    }}\n",
                hcl(h["FrameOption"].as_str().unwrap_or_default())
            );
        }
        if let Some(h) = s.get("ReferrerPolicy") {
            let _ = write!(
                tf,
                "    referrer_policy {{\n      override        = true\n      referrer_policy = {}\n    }}\n",
                hcl(h["ReferrerPolicy"].as_str().unwrap_or_default())
            );
        }
        if let Some(h) = s.get("ContentSecurityPolicy") {
            let _ = write!(
                tf,
                "    content_security_policy {{\n      override                = true\n      content_security_policy = {}\n    }}\n",
                hcl(h["ContentSecurityPolicy"].as_str().unwrap_or_default())
            );
        }
        if let Some(h) = s.get("XSSProtection") {
            let _ = write!(
                tf,
                "    xss_protection {{\n      override   = true\n      protection = {}\n      mode_block = {}\n    }}\n",
                b(&h["Protection"]),
                b(&h["ModeBlock"])
            );
        }
        tf.push_str("  }\n");
    }
    if let Some(items) = p["CustomHeadersConfig"]["Items"].as_array() {
        tf.push_str("\n  custom_headers_config {\n");
        for i in items {
            let _ = write!(
                tf,
                "    items {{\n      header   = {}\n      value    = {}\n      override = true\n    }}\n",
                hcl(i["Header"].as_str().unwrap_or_default()),
                hcl(i["Value"].as_str().unwrap_or_default())
            );
        }
        tf.push_str("  }\n");
    }
    tf.push_str("}\n");
    tf
}

/// `distribution.snippet.hcl`: what goes into the `aws_cloudfront_distribution`.
pub fn terraform_snippet(
    name: &str,
    policy: bool,
    errors: &[serde_json::Value],
    atomic: bool,
    response: bool,
) -> String {
    let id = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let mut s = format!(
        "# Inside your aws_cloudfront_distribution (generated by driftless).\n\
         default_cache_behavior {{\n  # ...your existing settings...\n  function_association {{\n    event_type   = \"viewer-request\"\n    function_arn = aws_cloudfront_function.{id}.arn\n  }}\n"
    );
    if response {
        let _ = writeln!(
            s,
            "  function_association {{\n    event_type   = \"viewer-response\"\n    function_arn = aws_cloudfront_function.{id}_response.arn\n  }}"
        );
    }
    if policy {
        let _ = writeln!(
            s,
            "  response_headers_policy_id = aws_cloudfront_response_headers_policy.{id}.id"
        );
    }
    if atomic {
        let _ = writeln!(
            s,
            "  cache_policy_id            = aws_cloudfront_cache_policy.{id}.id"
        );
    }
    s.push_str("}\n");
    for e in errors {
        let _ = write!(
            s,
            "\ncustom_error_response {{\n  error_code            = {}\n  response_code         = {}\n  response_page_path    = {}\n  error_caching_min_ttl = {}\n}}\n",
            e["ErrorCode"],
            e["ResponseCode"].as_str().unwrap_or("404"),
            hcl(e["ResponsePagePath"].as_str().unwrap_or_default()),
            e["ErrorCachingMinTTL"]
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback release is left out of the published code as of now (compacted) and
    /// of before (spaced), so a deploy alone is never edge drift.
    #[test]
    fn the_fallback_is_left_out_of_either_form() {
        let spaced = "var POINTER = \"current\", LAST = {\"slot\":\"a\"};\nfunction f() {}\n";
        assert_eq!(
            without_fallback(spaced),
            "var POINTER = \"current\";\nfunction f() {}\n"
        );
        let compacted = compact(spaced);
        assert_eq!(
            without_fallback(&compacted),
            "var POINTER=\"current\";function f(){}\n"
        );
        // The atomic layout's fallback table too; nothing after it is cut.
        let atomic = compact(
            "var LAST_CELLS = {\"t:x:0\": {\"d\": \"a;b\"}};\nvar A = 1, LAST = {\"e\": {\"p\": [\";\"]}};\nfunction g() {}\n",
        );
        assert_eq!(without_fallback(&atomic), "var A=1;function g(){}\n");
        assert_eq!(
            without_fallback("var A=1,LAST=null;f();\n"),
            "var A=1;f();\n"
        );
    }

    /// Spaces go only where they separate no two words; strings, regexes, comments and
    /// the import line are kept as written.
    #[test]
    fn compact_keeps_what_the_code_means() {
        let code = "import cf from 'cloudfront';\n  // a comment  with  spaces\n  var a = b + +c, d = e - -f, s = 'x  y' + \"p  q\";\n\n  if (/a b\\/[/ ]c/.test(s)) return /x y/;\n  var n = Date.now() / 1000, t = typeof a === 'string';\n  return n / 2 / 3;\n";
        assert_eq!(
            compact(code),
            "import cf from 'cloudfront';\n// a comment  with  spaces\nvar a=b+ +c,d=e- -f,s='x  y'+\"p  q\";if(/a b\\/[/ ]c/.test(s))return/x y/;var n=Date.now()/1000,t=typeof a==='string';return n/2/3;\n"
        );
    }

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
