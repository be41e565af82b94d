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

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::Mac as _;

use crate::config::{AuthConfig, JwtConfig};
pub use crate::config::{PathGlob, key_id_ok};

/// The key id of a token without `kid`.
pub const DEFAULT_KID: &str = "default";

/// What the KeyValueStore key of key id KID starts with.
pub const KEY_PREFIX: &str = "auth:";

/// Does the decoded path need a token?
pub fn protected(auth: &AuthConfig, path: &str) -> bool {
    let any = |list: &[String]| {
        list.iter()
            .filter_map(|p| PathGlob::parse(p).ok())
            .any(|g| g.matches(path))
    };
    any(&auth.protect) && !any(&auth.public)
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
    let Some(secret) = rules.keys.get(kid) else {
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
    let leeway = rules.leeway as f64;
    match payload.get("exp").and_then(serde_json::Value::as_f64) {
        Some(exp) if now < exp + leeway => {}
        _ => return false,
    }
    match payload.get("nbf") {
        None => {}
        Some(n) => match n.as_f64() {
            Some(nbf) if now >= nbf - leeway => {}
            _ => return false,
        },
    }
    if let Some(iss) = &rules.issuer
        && payload.get("iss").and_then(|v| v.as_str()) != Some(iss.as_str())
    {
        return false;
    }
    if let Some(aud) = &rules.audience {
        let ok = match payload.get("aud") {
            Some(serde_json::Value::String(a)) => a == aud,
            Some(serde_json::Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
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

    #[test]
    fn a_minted_token_holds_until_it_expires() {
        let rules = JwtRules {
            algorithms: vec!["HS256".into()],
            issuer: Some("me".into()),
            audience: Some("site".into()),
            leeway: 60,
            keys: [("k1".to_owned(), "s3cret".to_owned())].into(),
        };
        let t = mint_jwt(
            "HS256",
            "k1",
            "s3cret",
            &serde_json::json!({ "exp": 1000, "iss": "me", "aud": ["x", "site"] }),
        )
        .unwrap();
        assert!(jwt_holds(&t, &rules, 1000.0));
        assert!(jwt_holds(&t, &rules, 1059.0));
        assert!(!jwt_holds(&t, &rules, 1060.0));
        let other = mint_jwt(
            "HS256",
            "k1",
            "wrong",
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
}
