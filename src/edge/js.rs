//! The pieces of CloudFront Functions code (`cloudfront-js-2.0`) that both generated
//! functions share: the runtime's limits, string literals, the compaction that keeps the
//! code inside the budget, the token checks and the canary bucket.

/// CloudFront's limit on a function's code.
pub const CODE_BUDGET: usize = 10 * 1024;
pub const RUNTIME: &str = "cloudfront-js-2.0";

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
pub(super) const CWT: &str = r#"function cbor(b, s) {
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
pub(super) const TOKEN: &str = r#"function guarded(path) {
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

/// An answer the function makes itself, and the query string as the viewer sent it.
pub(super) const ANSWER: &str = r#"function answer(code, text, headers) {
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
"#;

/// A visitor's canary bucket, as [`super::visitor_bucket`] computes it: the cookie's, else
/// from SHA-256 of address and user agent.
pub(super) const BUCKET: &str = r#"function bucket(event) {
  var req = event.request, c = req.cookies && req.cookies[COOKIE], ua = req.headers['user-agent'];
  if (c && /^\d{1,2}$/.test(c.value)) return +c.value;
  var h = crypto.createHash('sha256').update(event.viewer.ip + ' ' + (ua ? ua.value : '')).digest('hex');
  return parseInt(h.slice(0, 8), 16) % 100;
}
"#;

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
}
