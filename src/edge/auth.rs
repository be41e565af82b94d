//! `[edge.auth]` as one decision procedure, the one `serve` runs and the CloudFront
//! function mirrors line for line ([`super::cloudfront`]): which paths need a token,
//! where the token is, whether a JWT signed with a shared secret holds, and what a
//! request without a valid one gets (401, or a redirect to the login page).
//!
//! A JWT holds when: it is three base64url parts; its header is a JSON object whose `alg`
//! is one of the configured HMAC algorithms (so `none`, and any switch to another family,
//! is refused) and whose `kid` (or `default`) names a configured key; its signature is
//! the HMAC of the first two parts with that key; its payload is a JSON object with a
//! numeric `exp` after now (less the leeway), a numeric `nbf` (if any) not after now
//! (plus the leeway), `iss` equal to the configured issuer and `aud` equal to (or, as an
//! array, containing) the configured audience, when those are configured.
//!
//! With `cwt = true`, a token without a dot is read as a CBOR Web Token (RFC 8392), the
//! form CloudFront's `cf.cwt` module checks: at most 1 KB; the CWT tag (61) optional,
//! the COSE_Mac0 tag (17) required, nothing after it; `alg` 5 (HMAC 256/256) in the
//! protected header; the key id (`kid`, a byte string, unprotected first, else
//! protected, else `default`) naming a configured key; the MAC over the COSE
//! `MAC_structure` with that key; then the same claims as a JWT's, by their CWT labels
//! (`iss` 1, `aud` 3 — a text string —, `exp` 4 and `nbf` 5 — whole seconds).

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::Mac as _;

use crate::config::{AuthConfig, JwtConfig};
pub use crate::config::{PathGlob, key_id_ok};

/// The key id of a token without `kid`.
pub const DEFAULT_KID: &str = "default";

/// What the KeyValueStore key of key id KID starts with.
pub const KEY_PREFIX: &str = "auth:";

/// `[edge.auth]`'s `protect` and `public` patterns, parsed once: which decoded paths
/// need a token.
#[derive(Debug, Clone)]
pub struct Protected {
    protect: Vec<PathGlob>,
    public: Vec<PathGlob>,
}

impl Protected {
    /// The patterns of `auth` (checked when the config was read; one that does not parse
    /// protects nothing).
    pub fn of(auth: &AuthConfig) -> Self {
        let parse = |list: &[String]| {
            list.iter()
                .filter_map(|p| PathGlob::parse(p).ok())
                .collect()
        };
        Self {
            protect: parse(&auth.protect),
            public: parse(&auth.public),
        }
    }

    /// Does the decoded path need a token?
    pub fn covers(&self, path: &str) -> bool {
        self.protect.iter().any(|g| g.matches(path)) && !self.public.iter().any(|g| g.matches(path))
    }
}

/// The token a request carries: `Authorization: Bearer …` first, else the configured
/// cookie (its first occurrence).
pub fn token<'a>(
    auth: &AuthConfig,
    authorization: Option<&'a str>,
    cookies: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(h) = authorization {
        let h = h.trim();
        if h.len() > 7
            && let (Some(scheme), Some(rest)) = (h.get(..7), h.get(7..))
            && scheme.eq_ignore_ascii_case("bearer ")
        {
            return Some(rest.trim());
        }
    }
    super::cookie(cookies?, auth.cookie.as_deref()?)
}

/// What a request that needs a token and has no valid one gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 401 (`WWW-Authenticate: Bearer`), a JSON body.
    Unauthorized,
    /// 302 to the login page, the asked path and query in `next`.
    Login(String),
}

/// The body of a 401 for a missing or invalid token.
pub const UNAUTHORIZED_BODY: &str = "{\"error\":\"unauthorized\"}";

/// 401 for requests that accept JSON (or where there is no login page), else the login
/// page with `next` = the raw path and query asked for.
pub fn refusal(auth: &AuthConfig, accept: Option<&str>, raw_path_and_query: &str) -> Refused {
    let json = accept.is_some_and(|a| a.to_ascii_lowercase().contains("application/json"));
    match &auth.login_url {
        Some(login) if !json => {
            let next =
                percent_encoding::utf8_percent_encode(raw_path_and_query, crate::config::COMPONENT);
            let sep = if login.contains('?') { '&' } else { '?' };
            Refused::Login(format!("{login}{sep}next={next}"))
        }
        _ => Refused::Unauthorized,
    }
}

/// The rules a JWT is checked against, with the secrets by key id.
#[derive(Debug, Clone)]
pub struct JwtRules {
    pub algorithms: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: i64,
    pub keys: BTreeMap<String, String>,
    /// CBOR Web Tokens are accepted too.
    pub cwt: bool,
}

impl JwtRules {
    /// The rules of `[edge.auth.jwt]`, the secrets read from the environment.
    pub fn of(jwt: &JwtConfig) -> Result<Self, String> {
        Ok(Self {
            algorithms: jwt.algorithms.clone(),
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            leeway: jwt.leeway_seconds(),
            keys: jwt.secrets()?,
            cwt: jwt.cwt,
        })
    }
}

/// base64url without padding, as the function decodes it (non-canonical trailing bits
/// allowed, as Node's decoder does).
fn b64url(part: &str) -> Option<Vec<u8>> {
    if part.is_empty()
        || part.len() % 4 == 1
        || !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    engine.decode(part).ok()
}

fn json_object(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = b64url(part)?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// HMAC of `data` with `key` by `alg` (HS256/384/512), base64url without padding.
pub fn hmac_b64url(alg: &str, key: &[u8], data: &[u8]) -> Option<String> {
    macro_rules! mac {
        ($h:ty) => {{
            let mut m = hmac::Hmac::<$h>::new_from_slice(key).ok()?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }};
    }
    let sig = match alg {
        "HS256" => mac!(sha2::Sha256),
        "HS384" => mac!(sha2::Sha384),
        "HS512" => mac!(sha2::Sha512),
        _ => return None,
    };
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig))
}

/// Does `token` hold at `now` (unix seconds)? See the module's documentation.
pub fn jwt_holds(token: &str, rules: &JwtRules, now: f64) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let [head, body, sig] = parts[..] else {
        return false;
    };
    let (Some(header), Some(payload)) = (json_object(head), json_object(body)) else {
        return false;
    };
    if b64url(sig).is_none() {
        return false;
    }
    let Some(alg) = header.get("alg").and_then(|a| a.as_str()) else {
        return false;
    };
    if !rules.algorithms.iter().any(|a| a == alg) {
        return false;
    }
    let kid = match header.get("kid") {
        None => DEFAULT_KID,
        Some(serde_json::Value::String(k)) if key_id_ok(k) => k.as_str(),
        Some(_) => return false,
    };
    // A secret shorter than the hash's output is refused (RFC 7518 §3.2), as the
    // function refuses one in the KeyValueStore: a bad value fails closed.
    let Some(secret) = rules.keys.get(kid).filter(|s| {
        crate::config::secret_len_for(alg).is_some_and(|n| s.encode_utf16().count() >= n)
    }) else {
        return false;
    };
    let Some(expected) = hmac_b64url(alg, secret.as_bytes(), format!("{head}.{body}").as_bytes())
    else {
        return false;
    };
    // Compared in constant time: the difference of every byte, accumulated.
    if expected.len() != sig.len()
        || expected
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return false;
    }
    let number = |v: &serde_json::Value| v.as_f64();
    claims_hold(
        &Claims {
            exp: payload.get("exp").and_then(number),
            nbf: payload.get("nbf").map(number),
            iss: payload
                .get("iss")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            aud: match payload.get("aud") {
                Some(serde_json::Value::String(a)) => vec![a.clone()],
                Some(serde_json::Value::Array(all)) => all
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
        },
        rules,
        now,
    )
}

/// The claims a token is judged on, read from either form.
struct Claims {
    /// `exp`, if it is a number.
    exp: Option<f64>,
    /// `nbf`: absent, or present and a number (or not).
    nbf: Option<Option<f64>>,
    iss: Option<String>,
    /// The audiences it names.
    aud: Vec<String>,
}

/// `exp` after now (less the leeway), `nbf` (if any) not after now (plus the leeway),
/// the issuer and the audience when configured.
fn claims_hold(c: &Claims, rules: &JwtRules, now: f64) -> bool {
    let leeway = rules.leeway as f64;
    let exp_ok = c.exp.is_some_and(|exp| now < exp + leeway);
    let nbf_ok = match c.nbf {
        None => true,
        Some(nbf) => nbf.is_some_and(|nbf| now >= nbf - leeway),
    };
    let iss_ok = rules
        .issuer
        .as_ref()
        .is_none_or(|iss| c.iss.as_ref() == Some(iss));
    let aud_ok = rules
        .audience
        .as_ref()
        .is_none_or(|aud| c.aud.contains(aud));
    exp_ok && nbf_ok && iss_ok && aud_ok
}

/// Does `token` hold: a JWT (it has dots), else a CWT when those are accepted?
pub fn token_holds(token: &str, rules: &JwtRules, now: f64) -> bool {
    if token.contains('.') {
        jwt_holds(token, rules, now)
    } else {
        rules.cwt && cwt_holds(token, rules, now)
    }
}

/// The fewest characters of a CWT's secret (HMAC 256/256: the hash's 32 bytes).
pub const CWT_MIN_SECRET: usize = 32;

/// The most bytes of a CWT CloudFront's `cf.cwt` module takes.
pub const CWT_MAX_BYTES: usize = 1024;

/// The CWT tag (61) a token may start with, before the COSE_Mac0 tag.
const CWT_TAG: [u8; 2] = [0xd8, 0x3d];

/// Does the CWT `token` hold at `now`? See the module's documentation.
pub fn cwt_holds(token: &str, rules: &JwtRules, now: f64) -> bool {
    use coset::TaggedCborSerializable as _;
    use coset::cbor::value::Value;
    let Some(bytes) = b64url(token).filter(|b| b.len() <= CWT_MAX_BYTES) else {
        return false;
    };
    let untagged = bytes.strip_prefix(&CWT_TAG[..]).unwrap_or(&bytes);
    // The COSE_Mac0 tag in its one-byte form, as the function looks for it.
    if untagged.first() != Some(&0xd1) {
        return false;
    }
    let Ok(mac0) = coset::CoseMac0::from_tagged_slice(untagged) else {
        return false;
    };
    let hmac_256 = coset::Algorithm::Assigned(coset::iana::Algorithm::HMAC_256_256);
    if mac0.protected.header.alg.as_ref() != Some(&hmac_256) {
        return false;
    }
    let kid = [&mac0.unprotected.key_id, &mac0.protected.header.key_id]
        .into_iter()
        .find(|k| !k.is_empty());
    let kid = match kid {
        None => DEFAULT_KID,
        Some(k) => match std::str::from_utf8(k) {
            Ok(k) if key_id_ok(k) => k,
            _ => return false,
        },
    };
    let Some(secret) = rules
        .keys
        .get(kid)
        .filter(|s| s.encode_utf16().count() >= CWT_MIN_SECRET)
    else {
        return false;
    };
    // `verify_slice` compares in constant time.
    let verified = mac0.verify_payload_tag(
        b"",
        || (),
        |tag, data| cwt_mac(secret, data).verify_slice(tag).map_err(|_| ()),
    );
    let (Ok(()), Some(payload)) = (verified, mac0.payload.as_deref()) else {
        return false;
    };
    let Ok(Value::Map(claims)) = coset::cbor::de::from_reader::<Value, _>(payload) else {
        return false;
    };
    let claim = |label: i64| {
        claims
            .iter()
            .find(|(k, _)| k.as_integer() == Some(label.into()))
            .map(|(_, v)| v)
    };
    // Whole seconds only: the function's reader has no floats.
    let seconds = |v: &Value| v.as_integer().map(|i| i128::from(i) as f64);
    let text = |v: &Value| v.as_text().map(str::to_owned);
    claims_hold(
        &Claims {
            exp: claim(4).and_then(seconds),
            nbf: claim(5).map(seconds),
            iss: claim(1).and_then(text),
            aud: claim(3).and_then(text).into_iter().collect(),
        },
        rules,
        now,
    )
}

/// HMAC 256/256 of a CWT's `MAC_structure` with `secret`, ready to finalize or verify.
fn cwt_mac(secret: &str, data: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    m.update(data);
    m
}

/// A CWT MACed with key `kid`'s `secret` (HMAC 256/256, both tags, the kid unprotected
/// unless it is `default`) carrying `claims` (label → value). What `driftless sign ENV
/// --cwt` mints.
pub fn mint_cwt(
    kid: &str,
    secret: &str,
    claims: Vec<(i64, coset::cbor::value::Value)>,
) -> Option<String> {
    use coset::TaggedCborSerializable as _;
    use coset::cbor::value::Value;
    let mut payload = Vec::new();
    let map = Value::Map(
        claims
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    );
    coset::cbor::ser::into_writer(&map, &mut payload).ok()?;
    let mut unprotected = coset::HeaderBuilder::new();
    if kid != DEFAULT_KID {
        unprotected = unprotected.key_id(kid.as_bytes().to_vec());
    }
    let mac0 = coset::CoseMac0Builder::new()
        .protected(
            coset::HeaderBuilder::new()
                .algorithm(coset::iana::Algorithm::HMAC_256_256)
                .build(),
        )
        .unprotected(unprotected.build())
        .payload(payload)
        .create_tag(b"", |data| {
            cwt_mac(secret, data).finalize().into_bytes().to_vec()
        })
        .build();
    let mut bytes = CWT_TAG.to_vec();
    bytes.extend(mac0.to_tagged_vec().ok()?);
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A JWT signed with key `kid`'s `secret` by `alg`: header `{"alg","typ","kid"}`, the
/// payload as given. What `driftless sign ENV --jwt` mints (tests, CI, preview links).
pub fn mint_jwt(alg: &str, kid: &str, secret: &str, payload: &serde_json::Value) -> Option<String> {
    let enc = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
    if kid != DEFAULT_KID {
        header["kid"] = kid.into();
    }
    let signing = format!("{}.{}", enc(&header), enc(payload));
    let sig = hmac_b64url(alg, secret.as_bytes(), signing.as_bytes())?;
    Some(format!("{signing}.{sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret as long as HS256 needs (RFC 7518 §3.2).
    const SECRET: &str = "s3cret-s3cret-s3cret-s3cret-s3cret";

    #[test]
    fn globs_match_segments() {
        let g = |p: &str| PathGlob::parse(p).unwrap();
        assert!(g("/app/**").matches("/app"));
        assert!(g("/app/**").matches("/app/"));
        assert!(g("/app/**").matches("/app/a/b.html"));
        assert!(!g("/app/**").matches("/apple"));
        assert!(g("/docs/*.pdf").matches("/docs/a.pdf"));
        assert!(!g("/docs/*.pdf").matches("/docs/x/a.pdf"));
        assert!(g("/a/**/b").matches("/a/b"));
        assert!(g("/a/**/b").matches("/a/x/y/b"));
        assert!(g("/**").matches("/"));
        assert!(PathGlob::parse("app").is_err());
        assert!(PathGlob::parse("/a**").is_err());
        assert_eq!(g("/app/**").js_regex(), "^/app(?:/[\\s\\S]*)?$");
    }

    /// Key k1 = SECRET, issuer "me", audience "site", a minute's leeway.
    fn rules(cwt: bool) -> JwtRules {
        JwtRules {
            algorithms: vec!["HS256".into()],
            issuer: Some("me".into()),
            audience: Some("site".into()),
            leeway: 60,
            keys: [("k1".to_owned(), SECRET.to_owned())].into(),
            cwt,
        }
    }

    #[test]
    fn a_minted_token_holds_until_it_expires() {
        let rules = rules(false);
        let t = mint_jwt(
            "HS256",
            "k1",
            SECRET,
            &serde_json::json!({ "exp": 1000, "iss": "me", "aud": ["x", "site"] }),
        )
        .unwrap();
        assert!(jwt_holds(&t, &rules, 1000.0));
        assert!(jwt_holds(&t, &rules, 1059.0));
        assert!(!jwt_holds(&t, &rules, 1060.0));
        let other = mint_jwt(
            "HS256",
            "k1",
            "wrong-secret-of-the-right-length-for-hs256",
            &serde_json::json!({ "exp": 1000, "iss": "me", "aud": "site" }),
        )
        .unwrap();
        assert!(!jwt_holds(&other, &rules, 0.0));
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            t.split('.').nth(1).unwrap()
        );
        assert!(!jwt_holds(&none, &rules, 0.0));
    }

    #[test]
    fn a_minted_cwt_holds_until_it_expires_and_only_when_accepted() {
        use coset::cbor::value::Value;
        let mut rules = rules(true);
        let claims = |exp: i64, aud: &str| {
            vec![
                (1, Value::from("me")),
                (3, Value::from(aud)),
                (4, Value::from(exp)),
            ]
        };
        let t = mint_cwt("k1", SECRET, claims(1000, "site")).unwrap();
        assert!(!t.contains('.'));
        assert!(token_holds(&t, &rules, 1000.0));
        assert!(token_holds(&t, &rules, 1059.0));
        assert!(!token_holds(&t, &rules, 1060.0));
        // The CWT tag is optional; the COSE_Mac0 tag is not.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .unwrap();
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        assert!(cwt_holds(&enc(&raw[2..]), &rules, 0.0));
        assert!(!cwt_holds(&enc(&raw[3..]), &rules, 0.0));
        // Another secret, another audience, trailing bytes.
        assert!(!token_holds(
            &mint_cwt(
                "k1",
                "wrong-secret-of-the-right-length-for-hs256",
                claims(1000, "site")
            )
            .unwrap(),
            &rules,
            0.0
        ));
        assert!(!token_holds(
            &mint_cwt("k1", SECRET, claims(1000, "x")).unwrap(),
            &rules,
            0.0
        ));
        assert!(!cwt_holds(
            &enc(&[raw.as_slice(), &[0]].concat()),
            &rules,
            0.0
        ));
        rules.cwt = false;
        assert!(!token_holds(&t, &rules, 0.0));
    }
}
