//! The viewer-request and viewer-response CloudFront Functions of an atomic layout,
//! whose code depends on no release: what a release's visitors get is decided by the
//! rules that release carries, which the function reads with the pointer (the root, see
//! [`super::table`]) and, for a path that needs it, from one bucket of the release's
//! table. `edge --apply` is needed only when this code or an environment's setting
//! changes (a new driftless version, previews, token checks, basic auth); a deploy, a
//! rollback, a preview or a promotion publishes data, never code.
//!
//! The decisions are [`super::resolve`]'s, step by step; the conformance table holds both
//! to the same answers.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use super::js::{
    ANSWER, BUCKET, CODE_BUDGET, Function, RELEASE_PARAM, RUNTIME, compact, cwt_code, js,
    token_code, with_cwt,
};
use crate::config::EdgeConfig;

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

/// The viewer-request function of an atomic layout. `hidden`: key prefixes never served;
/// `auth_sha256`: SHA-256 (hex) of the `Authorization` value basic auth accepts.
pub fn viewer_request(
    edge: &EdgeConfig,
    hidden: &[String],
    auth_sha256: Option<&str>,
    atomic: &Atomic,
) -> Result<Function, String> {
    let mut code = String::from("import cf from 'cloudfront';\n");
    let _ = writeln!(code, "// By driftless (edge ENV --apply); {RUNTIME}");
    code.push_str("var crypto = require('crypto');\n");
    let hidden_js = format!(
        "[{}]",
        hidden.iter().map(|h| js(h)).collect::<Vec<_>>().join(",")
    );
    let auth = auth_sha256.map_or_else(|| "null".into(), js);
    let previews_only = edge.basic_auth.as_ref().is_some_and(|a| a.previews_only);
    let live_auth = if previews_only {
        "null".to_owned()
    } else {
        auth.clone()
    };
    let last = atomic.last_known_good.as_ref().map_or_else(
        || "null".to_owned(),
        |(slot, release)| {
            let mut v = serde_json::json!({ "slot": slot, "release": release });
            if let Some(root) = &atomic.last_root {
                v["e"] = root.clone();
            }
            v.to_string()
        },
    );
    let cells = serde_json::to_string(&atomic.last_cells).expect("json");
    let _ = writeln!(
        code,
        "var LAST_CELLS = {cells};\nvar HIDDEN = {hidden_js}, AUTH = {live_auth}, POINTER = {}, PARAM = {}, COOKIE = {}, TABLE = {}, CELL = {}, LAST = {last};",
        js(crate::store::POINTER_KEY),
        js(RELEASE_PARAM),
        js(super::CANARY_COOKIE),
        js(super::table::TABLE_PREFIX),
        js(super::table::BUCKET_PREFIX),
    );
    let jwt = match &edge.auth {
        Some(a) if a.signed_cookies.is_none() => {
            let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), js);
            let _ = writeln!(
                code,
                "var AUTH_COOKIE = {}, AUTH_LOGIN = {}, UNAUTHORIZED = {};",
                opt(&a.cookie),
                opt(&a.login_url),
                js(super::auth::UNAUTHORIZED_BODY)
            );
            a.jwt.as_ref()
        }
        _ => None,
    };
    // Token checks: JWTs (and CWTs) by the secrets in the KeyValueStore; with no way to
    // check one configured, every path a release protects is refused.
    let token = match jwt {
        Some(j) => {
            let algs: Vec<String> = j
                .algorithms
                .iter()
                .map(|a| format!("{}:{}", js(a), js(&format!("sha{}", &a[2..]))))
                .collect();
            let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), js);
            let _ = writeln!(
                code,
                "var JWT_ALGS = {{{}}}, JWT_ISS = {}, JWT_AUD = {}, JWT_LEEWAY = {}, AUTH_KEY = {};",
                algs.join(","),
                opt(&j.issuer),
                opt(&j.audience),
                j.leeway_seconds(),
                js(super::auth::KEY_PREFIX)
            );
            let mut t = token_code();
            if j.cwt {
                let _ = writeln!(code, "var CWT_MAX = {};", super::auth::CWT_MAX_BYTES);
                t.push_str(cwt_code());
                t = with_cwt(&t);
            }
            t
        }
        None if edge.signed_cookies().is_some() => NO_TOKEN_SIGNED.to_owned(),
        None => NO_TOKEN.to_owned(),
    };
    code.push_str(ANSWER);
    code.push_str(COMMON);
    code.push_str(&token);
    code.push_str(BUCKET);
    code.push_str(ROUTE);
    if let Some(suffix) = &atomic.preview_host {
        let _ = writeln!(
            code,
            "var PREVIEWS = {}, PREVIEW_AUTH = {auth}, PREVIEW_KEY = {}, EXPIRED = {};",
            js(suffix),
            js(crate::store::PREVIEW_KEY_PREFIX),
            js(&super::expired_preview_page("{name}"))
        );
        code.push_str(PREVIEW);
    } else {
        code.push_str("var PREVIEWS = null;\nfunction previewing() { return null; }\nfunction preview() { return null; }\n");
    }
    code.push_str(HANDLER);
    let code = compact(&code);
    let digest = hex::encode(Sha256::digest(code.as_bytes()));
    let f = Function { code, digest };
    if f.size() > CODE_BUDGET && !atomic.last_cells.is_empty() {
        // The fallback's table is a convenience: without it the fallback routes what
        // needs no table.
        let without = Atomic {
            last_cells: std::collections::BTreeMap::new(),
            ..atomic.clone()
        };
        return viewer_request(edge, hidden, auth_sha256, &without);
    }
    if f.size() > CODE_BUDGET {
        return Err(format!(
            "the CloudFront Function is {} bytes, over CloudFront's {CODE_BUDGET}-byte budget (with every feature switched on it fits: report this)",
            f.size()
        ));
    }
    Ok(f)
}

/// No token checks configured: a path a release protects is refused to everyone.
const NO_TOKEN: &str = r"var AUTH_COOKIE = null, AUTH_LOGIN = null, UNAUTHORIZED = '{}';
async function tokenKey() { return null; }
function holds() { return false; }
";

/// Signed cookies: CloudFront checks them on the protected behaviors before the
/// function runs; the function guards nothing itself.
const NO_TOKEN_SIGNED: &str = r"async function tokenKey() { return null; }
function holds() { return true; }
function refuse() { return null; }
";

/// What every request may need besides [`ANSWER`]: basic auth, the paths a
/// release protects, its table and its redirects.
const COMMON: &str = r#"function sha(s, e) { return crypto.createHash('sha256').update(s).digest(e); }
function denied(req, hash) {
  var given = req.headers.authorization, m = given && /^\s*basic\s+(.*)$/i.exec(given.value);
  if (!m || sha('Basic ' + m[1].replace(/\s+$/, ''), 'hex') !== hash) {
    return answer(401, 'Unauthorized', { 'www-authenticate': 'Basic realm="driftless"' });
  }
  return null;
}
function guarded(R, path) {
  var i;
  if (!R.p) return false;
  for (i = 0; R.q && i < R.q.length; i++) if (new RegExp(R.q[i]).test(path)) return false;
  for (i = 0; i < R.p.length; i++) if (new RegExp(R.p[i]).test(path)) return true;
  return false;
}
function num(s) { return parseInt(sha(s, 'hex').slice(0, 8), 16); }
function at(r, prefix, release) {
  r.uri = prefix + r.uri;
  r.querystring = {};
  r.querystring[PARAM] = { value: release };
  return r;
}
async function cell(R, k) {
  if (!R.t) return null;
  var g = k.split('/')[0], m = R.g && R.g[g], name, o;
  name = m ? sha(g, 'hex').slice(0, 10) + '.' + num(k) % m : String(num(g) % R.n);
  o = R.o ? R.o[name] : undefined;
  if (o === '') return null;
  name = o ? CELL + o : TABLE + R.t + ':' + name;
  try { return await cf.kvs().get(name, { format: 'json' }); } catch (e) { return LAST_CELLS[name] || null; }
}
function listed(list, id) {
  for (var i = 0; list && i < list.length; i += 8) if (list.substr(i, 8) === id) return true;
  return false;
}
function match(r, segs, path) {
  var parts = r[1], n = parts.length, b = {}, ok = r[2] ? segs.length >= n : segs.length === n;
  for (var j = 0; ok && j < n; j++) {
    if (parts[j].charAt(0) === ':') { ok = segs[j] !== ''; b[parts[j].slice(1)] = encodeURIComponent(segs[j]); }
    else ok = parts[j] === segs[j];
  }
  if (!ok) return null;
  if (r[2]) b.splat = segs.slice(n).map(encodeURIComponent).join('/') + (segs.length > n && path.slice(-1) === '/' ? '/' : '');
  return [r[3], r[4].replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, function (m, k) {
    return Object.prototype.hasOwnProperty.call(b, k) ? b[k] : m;
  })];
}
function redirect(R, b, path, id) {
  var p = path.replace(/^\//, '').replace(/\/$/, ''), segs = p === '' ? [] : p.split('/');
  var x = b && b.x ? b.x[id] : null, best = x ? x : null, all = (R.r || []).concat(b && b.p ? b.p : []), m;
  for (var i = 0; i < all.length; i++) {
    if (best && all[i][0] >= best[0]) continue;
    m = match(all[i], segs, path);
    if (m) best = [all[i][0], m[0], m[1]];
  }
  return best ? [best[1], best[2]] : null;
}
"#;

/// The decisions of [`super::resolve`] under release rules `R`.
const ROUTE: &str = r#"async function route(event, R) {
  var req = event.request, uri = req.uri, path, rel, k, last, ext, b = null, id = null, to, dir, i;
  if (AUTH && !event.preview) {
    var d = denied(req, AUTH);
    if (d) return d;
  }
  try { path = decodeURIComponent(uri); } catch (e) { return answer(400, 'Bad Request', {}); }
  if (uri.indexOf('//') >= 0) {
    return answer(301, 'Moved Permanently', { location: uri.replace(/\/\/+/g, '/') + query(req.querystring) });
  }
  if (guarded(R, path) && !holds(req, event.authKey)) return refuse(req);
  rel = path.replace(/^\/+/, ''); k = rel.replace(/\/$/, '');
  last = rel.slice(rel.lastIndexOf('/') + 1); ext = last.indexOf('.') >= 0;
  if (R.t && (R.x || R.d || !ext)) { b = await cell(R, k); id = sha(k, 'base64').slice(0, 8); }
  to = redirect(R, b, path, id);
  if (to) {
    return answer(to[0], 'Redirect', { location: to[1].indexOf('?') < 0 ? to[1] + query(req.querystring) : to[1] });
  }
  if (/(^|\/)\.\.?(\/|$)/.test(rel) || rel.indexOf('\0') >= 0 || rel.indexOf('//') >= 0) {
    return answer(400, 'Bad Request', {});
  }
  for (i = 0; i < HIDDEN.length; i++) {
    if (rel.indexOf(HIDDEN[i]) === 0 || rel === HIDDEN[i].replace(/\/$/, '')) return answer(404, 'Not Found', {});
  }
  dir = !!b && listed(b.d, id);
  if (rel === '' || rel.charAt(rel.length - 1) === '/') {
    req.uri = dir || !R.s ? uri + (R.i || 'index.html') : R.s;
    return req;
  }
  if (b && listed(b.f, id)) return req;
  if (dir) return answer(301, 'Moved Permanently', { location: uri + '/' + query(req.querystring) });
  if (!ext && R.s) req.uri = R.s;
  return req;
}
"#;

/// Previews: a host `NAME` + `PREVIEWS` is preview NAME, from `previews/NAME/`, by the
/// rules its release carries (in its KeyValueStore value).
const PREVIEW: &str = r#"function previewing(req) {
  var h = req.headers.host, host = h ? h.value.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '') : '';
  if (host.length <= PREVIEWS.length || host.slice(-PREVIEWS.length) !== PREVIEWS) return null;
  var name = host.slice(0, -PREVIEWS.length);
  return name.indexOf('.') < 0 ? name : null;
}
async function preview(event, name) {
  var noindex = { 'x-robots-tag': 'noindex' }, v = null, R, r;
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
  R = v.e || {};
  event.authKey = await tokenKey(event, R);
  r = await route(event, R);
  if (r.statusCode !== undefined) { r.headers['x-robots-tag'] = { value: 'noindex' }; return r; }
  return at(r, '/previews/' + name, v.release);
}
"#;

/// Live (or the canary, for a visitor whose bucket is below its share), by the pointer:
/// its slot, its cache id and its rules in one read. A failed read serves the release
/// live when the function was published, never the bare URI (nothing is there).
const HANDLER: &str = r#"async function handler(event) {
  var name = previewing(event.request), p = null, c, R, r;
  if (name !== null) return preview(event, name);
  try { p = await cf.kvs().get(POINTER, { format: 'json' }); } catch (e) { p = null; }
  if (!p || (p.slot !== 'a' && p.slot !== 'b') || typeof p.release !== 'string') p = LAST;
  if (!p) return answer(503, 'Service Unavailable', { 'retry-after': '5' });
  c = p.canary;
  if (c && (c.slot === 'a' || c.slot === 'b') && typeof c.release === 'string' && bucket(event) < c.percent) p = c;
  R = p.e || {};
  event.authKey = await tokenKey(event, R);
  r = await route(event, R);
  if (r.statusCode !== undefined) return r;
  return at(r, '/slots/' + p.slot, p.release);
}
"#;

/// The viewer-response function of an atomic layout: the `[edge] headers` of the release
/// the visitor got (their values read from the KeyValueStore), the canary cookie that
/// keeps a visitor on their side, and noindex on every answer to a preview host.
pub fn viewer_response(atomic: &Atomic) -> Function {
    let previews = atomic
        .preview_host
        .as_deref()
        .map_or_else(|| "null".to_owned(), js);
    let code = format!(
        "import cf from 'cloudfront';
// Generated by driftless: each release's [edge] headers, the canary cookie, previews
// never indexed. Runtime {RUNTIME}.
var crypto = require('crypto');
var PREVIEWS = {previews}, PREVIEW_KEY = {}, POINTER = {}, HEADERS = {}, COOKIE = {}, ATTRIBUTES = {};
{}{RESPONSE}",
        js(crate::store::PREVIEW_KEY_PREFIX),
        js(crate::store::POINTER_KEY),
        js(super::table::HEADERS_PREFIX),
        js(super::CANARY_COOKIE),
        js(super::CANARY_COOKIE_ATTRIBUTES),
        BUCKET,
    );
    let code = compact(&code);
    let digest = hex::encode(Sha256::digest(code.as_bytes()));
    Function { code, digest }
}

const RESPONSE: &str = r#"async function handler(event) {
  var r = event.response, req = event.request, h = req.headers.host, p = null, side, c, b, hs, k, name = null;
  var host = h ? h.value.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '') : '';
  if (PREVIEWS && host.length > PREVIEWS.length && host.slice(-PREVIEWS.length) === PREVIEWS) {
    name = host.slice(0, -PREVIEWS.length);
    r.headers['x-robots-tag'] = { value: 'noindex' };
  }
  try { p = await cf.kvs().get(name !== null ? PREVIEW_KEY + name : POINTER, { format: 'json' }); } catch (e) { p = null; }
  side = p;
  if (p && name === null && p.canary && p.canary.percent > 0) {
    c = req.cookies && req.cookies[COOKIE];
    b = bucket(event);
    if (b < p.canary.percent) side = p.canary;
    if (!(c && /^\d{1,2}$/.test(c.value))) {
      r.cookies = r.cookies || {};
      r.cookies[COOKIE] = { value: String(b), attributes: ATTRIBUTES };
    }
  }
  if (side && side.e && side.e.h) {
    try { hs = await cf.kvs().get(HEADERS + side.e.h, { format: 'json' }); } catch (e) { hs = null; }
    for (k in hs) r.headers[k.toLowerCase()] = { value: hs[k] };
  }
  return r;
}
"#;
