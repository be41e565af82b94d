// Runs a generated CloudFront Function the way CloudFront would, for the conformance
// table: a viewer-request event built as the CloudFront Functions documentation shows it
// (lower-case headers as { value }, querystring as { name: { value } } or
// { multiValue: [...] }, values as they appear in the URL), the function's answer or the
// request it returns, then S3 behind it (a key is the URL path, percent-decoded), the
// distribution's custom error responses, and the response headers policy on every answer.
//
// The `cloudfront` module's KeyValueStore answers from `kvs` (key → string value; a case
// may bring its own, or "throw" to make every read fail), as `cf.kvs().get` does: a
// missing key throws, `{ format: 'json' }` parses.
//
// `cf.cwt.validateToken` is cose-js (npm, from NODE_DIR) behind the rules CloudFront
// documents for its module: a Buffer of at most 1 KB, the CWT tag (61) optional, the
// COSE_Mac0 tag (17) required, the MAC checked with `key`, no claim checked; it throws
// when the token does not hold and answers the decoded token. cose-js is asynchronous
// where the module is not (the function awaits the answer, which the runtime allows).
//
// `node harness.cjs mint` instead reads [{ key, kid, alg, claims: [[label, value]], cwtTag,
// coseTag }] and writes each as a CWT (base64url), MACed by cose-js: tokens made by
// another implementation than driftless's.
//
// A viewer-response function (`response`, optional) runs on the answers that came from
// the origin (an answer the viewer-request function made itself carries its own headers),
// with the request as the viewer sent it (a Cookie header arrives parsed, in `cookies`).
//
// stdin: { code, response, policy, errors, site: [keys], state: [keys], kvs, cases: [{ method, path, headers, ip, kvs }] }
// stdout: [{ status, location, key, query, uri, headers, own, body, cookies, reads }] (uri, query:
// the request the function passed on to the origin, if it did; own, body: the headers and
// body of an answer the function made itself, or the headers the response function added;
// cookies: what the response function set, "value; attributes"; reads: KeyValueStore
// reads of the viewer-request function)
'use strict';
const crypto = require('crypto');

// The KeyValueStore the running case reads.
let store = {};

// KeyValueStore reads of the running case.
let reads = 0;

const kvs = {
  async get(key, options) {
    reads += 1;
    if (store === 'throw') throw new Error('KeyValueStore read failed');
    if (!Object.prototype.hasOwnProperty.call(store, key)) throw new Error(`key ${key} not found`);
    const v = store[key];
    return options && options.format === 'json' ? JSON.parse(v) : v;
  },
};

function cose() {
  const dir = require('path').join(process.env.NODE_DIR || '', 'node_modules');
  return { cose: require(require('path').join(dir, 'cose-js')), cbor: require(require('path').join(dir, 'cbor')) };
}

const cwt = {
  async validateToken(token, context) {
    if (!Buffer.isBuffer(token)) throw new Error('the token must be a Buffer');
    if (token.length > 1024) throw new Error('the token is over 1 KB');
    let b = token[0] === 0xd8 && token[1] === 0x3d ? token.subarray(2) : token;
    if (b[0] !== 0xd1) throw new Error('not a COSE_Mac0 structure');
    const { cose: c, cbor } = cose();
    const payload = await c.mac.read(b, Buffer.from(context.key, 'utf8'));
    return { payload: cbor.decodeFirstSync(payload) };
  },
};

async function mint(specs) {
  const { cose: c, cbor } = cose();
  const out = [];
  for (const s of specs) {
    const u = s.kid === undefined ? {} : { kid: s.kid };
    let t = await c.mac.create({ p: { alg: s.alg || 'HS256' }, u }, cbor.encode(new Map(s.claims)), { key: Buffer.from(s.key, 'utf8') }, undefined, { excludetag: s.coseTag === false });
    if (s.cwtTag !== false) t = Buffer.concat([Buffer.from([0xd8, 0x3d]), t]);
    out.push(t.toString('base64url'));
  }
  return out;
}

function load(code) {
  // Only what cloudfront-js-2.0 offers: `crypto` and `cloudfront`; no other module. The
  // runtime's `import cf from 'cloudfront';` (ES module syntax) becomes a require here.
  const allowed = { crypto, cloudfront: { kvs: () => kvs, cwt } };
  code = code.replace(/^import (\w+) from '(\w+)';$/m, "var $1 = require('$2');");
  const req = (name) => {
    if (!(name in allowed)) throw new Error(`require('${name}') is not available in CloudFront Functions`);
    return allowed[name];
  };
  return new Function('require', `${code}\nreturn handler;`)(req);
}

function event(c) {
  const [path, query] = c.path.split(/\?(.*)/s);
  const querystring = {};
  for (const part of (query || '').split('&').filter((p) => p !== '')) {
    const i = part.indexOf('=');
    const [k, v] = i < 0 ? [part, ''] : [part.slice(0, i), part.slice(i + 1)];
    if (querystring[k]) {
      const prev = querystring[k];
      querystring[k] = { value: prev.value, multiValue: (prev.multiValue || [{ value: prev.value }]).concat([{ value: v }]) };
    } else {
      querystring[k] = { value: v };
    }
  }
  const headers = { host: { value: 'edge.test' } };
  const cookies = {};
  for (const [k, v] of Object.entries(c.headers || {})) {
    if (k.toLowerCase() !== 'cookie') { headers[k.toLowerCase()] = { value: v }; continue; }
    // CloudFront hands a function the Cookie header parsed, in `cookies`, not in `headers`.
    for (const part of v.split(';')) {
      const i = part.indexOf('=');
      if (i < 0) continue;
      const name = part.slice(0, i).trim(), value = part.slice(i + 1).trim();
      if (!cookies[name]) cookies[name] = { value };
    }
  }
  return {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionId: 'ETEST', requestId: 'r' },
    viewer: { ip: c.ip || '127.0.0.1' },
    request: { method: c.method || 'GET', uri: path, querystring, headers, cookies },
  };
}

// The response headers policy's headers, as CloudFront writes them.
function policyHeaders(p) {
  const out = {};
  if (!p) return out;
  const s = p.SecurityHeadersConfig || {};
  if (s.StrictTransportSecurity) {
    const h = s.StrictTransportSecurity;
    out['strict-transport-security'] = `max-age=${h.AccessControlMaxAgeSec}` +
      (h.IncludeSubdomains ? '; includeSubDomains' : '') + (h.Preload ? '; preload' : '');
  }
  if (s.ContentTypeOptions) out['x-content-type-options'] = 'nosniff';
  if (s.FrameOptions) out['x-frame-options'] = s.FrameOptions.FrameOption;
  if (s.ReferrerPolicy) out['referrer-policy'] = s.ReferrerPolicy.ReferrerPolicy;
  if (s.ContentSecurityPolicy) out['content-security-policy'] = s.ContentSecurityPolicy.ContentSecurityPolicy;
  if (s.XSSProtection) {
    const x = s.XSSProtection;
    out['x-xss-protection'] = (x.Protection ? '1' : '0') + (x.ModeBlock ? '; mode=block' : '') + (x.ReportUri ? `; report=${x.ReportUri}` : '');
  }
  for (const h of ((p.CustomHeadersConfig || {}).Items || [])) out[h.Header.toLowerCase()] = h.Value;
  return out;
}

async function main() {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  if (process.argv[2] === 'mint') {
    process.stdout.write(JSON.stringify(await mint(input)));
    return;
  }
  const handler = load(input.code);
  const responder = input.response ? load(input.response) : null;
  const bucket = new Set(input.site.concat(input.state));
  const errors = {};
  for (const e of input.errors || []) errors[e.ErrorCode] = e;
  const extra = policyHeaders(input.policy);
  const results = [];
  for (const c of input.cases) {
    store = c.kvs !== undefined ? c.kvs : (input.kvs || {});
    reads = 0;
    const ev = event(c);
    const r = await handler(ev);
    const requestReads = reads;
    let out;
    if (r && r.statusCode !== undefined) {
      const loc = r.headers && r.headers.location;
      out = { status: r.statusCode, location: loc ? loc.value : null, key: null };
    } else {
      let key;
      try { key = decodeURIComponent(r.uri).replace(/^\//, ''); } catch (e) { key = null; }
      if (key !== null && bucket.has(key)) {
        out = { status: 200, location: null, key };
      } else if (errors[404]) {
        // S3 answers 404 (403 without s3:ListBucket); the custom error response serves the page.
        const page = decodeURIComponent(errors[404].ResponsePagePath).replace(/^\//, '');
        out = { status: Number(errors[404].ResponseCode), location: null, key: page };
      } else {
        out = { status: 404, location: null, key: null };
      }
    }
    const made = r && r.statusCode !== undefined;
    out.own = {};
    if (made) for (const [k, v] of Object.entries(r.headers || {})) out.own[k] = v.value;
    out.body = made && r.body ? r.body.data : null;
    out.cookies = {};
    if (!made && responder) {
      // The viewer-response event carries the request as the viewer sent it.
      const seen = event(c);
      const resp = await responder({ ...seen, context: { ...seen.context, eventType: 'viewer-response' }, response: { statusCode: out.status, headers: {}, cookies: {} } });
      for (const [k, v] of Object.entries(resp.headers || {})) out.own[k] = v.value;
      for (const [k, v] of Object.entries(resp.cookies || {})) out.cookies[k] = v.attributes ? `${v.value}; ${v.attributes}` : v.value;
    }
    out.query = r && r.statusCode === undefined ? r.querystring : null;
    out.uri = r && r.statusCode === undefined ? r.uri : null;
    out.headers = extra;
    out.reads = requestReads;
    results.push(out);
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
