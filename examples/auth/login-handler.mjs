// A login handler for [edge.auth.signed_cookies], with no dependencies (Node 18+):
// POST /login {"id_token": "..."} from your identity provider (Cognito, or any OIDC
// provider signing RS256) → the token is checked against the provider's JWKS, then the
// answer sets CloudFront signed cookies for the protected paths. Route /login to it
// (a Lambda function URL, a container, ...) on the site's own domain.
//
//   OIDC_ISSUER             https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_XXXX
//   OIDC_CLIENT_ID          the app client id (the ID token's `aud`)
//   CLOUDFRONT_KEY_PAIR_ID  the public key's id (`driftless sign ENV --cookie --json`)
//   CLOUDFRONT_PRIVATE_KEY  the private key (PEM) whose public key driftless uploaded
//   SITE                    https://www.example.com
//   PROTECTED               /members/*   (the resource the cookies grant)
import { createPublicKey, createSign, verify } from 'node:crypto';
import { createServer } from 'node:http';

const env = (name) => process.env[name] ?? (() => { throw new Error(`set ${name}`); })();
const [ISSUER, CLIENT, KEY_PAIR_ID, PRIVATE_KEY, SITE] = ['OIDC_ISSUER', 'OIDC_CLIENT_ID',
  'CLOUDFRONT_KEY_PAIR_ID', 'CLOUDFRONT_PRIVATE_KEY', 'SITE'].map(env);
const PROTECTED = process.env.PROTECTED ?? '/*';
const HOURS = 8;

const part = (s) => Buffer.from(s, 'base64url');
// CloudFront's base64: + → -, = → _, / → ~
const cf64 = (b) => Buffer.from(b).toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');

async function identity(token) {
  const [h, p, s] = String(token).split('.');
  const header = JSON.parse(part(h)), claims = JSON.parse(part(p));
  if (header.alg !== 'RS256') throw new Error('not RS256');
  const { keys } = await (await fetch(`${ISSUER}/.well-known/jwks.json`)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  const key = jwk && createPublicKey({ key: jwk, format: 'jwk' });
  if (!key || !verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, part(s))) throw new Error('bad signature');
  if (claims.iss !== ISSUER || claims.aud !== CLIENT || !(claims.exp > Date.now() / 1000)) throw new Error('bad claims');
  return claims;
}

function signedCookies() {
  const expires = Math.floor(Date.now() / 1000) + HOURS * 3600;
  const policy = JSON.stringify({ Statement: [{ Resource: `${SITE}${PROTECTED}`,
    Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }] });
  const signature = createSign('RSA-SHA1').update(policy).sign(PRIVATE_KEY);
  const attrs = `Path=/; Max-Age=${HOURS * 3600}; Secure; HttpOnly; SameSite=Lax`;
  return [['CloudFront-Policy', cf64(policy)], ['CloudFront-Signature', cf64(signature)],
    ['CloudFront-Key-Pair-Id', KEY_PAIR_ID]].map(([n, v]) => `${n}=${v}; ${attrs}`);
}

createServer(async (req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/login')) return res.writeHead(404).end();
  let body = '';
  for await (const chunk of req) body += chunk;
  try {
    const who = await identity(JSON.parse(body).id_token);
    res.writeHead(200, { 'set-cookie': signedCookies(), 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ sub: who.sub }));
  } catch (e) {
    res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ error: 'unauthorized' }));
  }
}).listen(Number(process.env.PORT ?? 8787), '127.0.0.1');
