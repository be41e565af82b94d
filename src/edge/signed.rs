//! CloudFront signed cookies and signed URLs (custom policy), minted by
//! `driftless sign` and checked by `serve` as CloudFront checks them on the cache
//! behaviors of `[edge.auth] protect`: the policy JSON, RSA-SHA1 (PKCS #1 v1.5) over it,
//! both in CloudFront's URL-safe base64 (`+` → `-`, `=` → `_`, `/` → `~`).

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};

/// The three cookies of a custom policy.
pub const POLICY: &str = "CloudFront-Policy";
pub const SIGNATURE: &str = "CloudFront-Signature";
pub const KEY_PAIR_ID: &str = "CloudFront-Key-Pair-Id";

/// CloudFront's base64.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .replace('+', "-")
        .replace('=', "_")
        .replace('/', "~")
}

fn decode(s: &str) -> Option<Vec<u8>> {
    let std: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD.decode(std).ok()
}

/// A custom policy: `resource` (with `*` and `?` wildcards) until `expires` (unix
/// seconds), compact as CloudFront wants it.
pub fn policy(resource: &str, expires: i64) -> String {
    serde_json::json!({
        "Statement": [{
            "Resource": resource,
            "Condition": { "DateLessThan": { "AWS:EpochTime": expires } }
        }]
    })
    .to_string()
}

/// A private key from PEM (PKCS #1 `RSA PRIVATE KEY`, as `openssl genrsa` writes it, or
/// PKCS #8 `PRIVATE KEY`).
pub fn private_key(pem: &str) -> Result<rsa::RsaPrivateKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|e| format!("not an RSA private key in PEM ({e})"))
}

/// A public key from PEM (`PUBLIC KEY`, as `openssl rsa -pubout` writes it, or PKCS #1).
pub fn public_key(pem: &str) -> Result<rsa::RsaPublicKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| format!("not an RSA public key in PEM ({e})"))
}

/// The policy's signature, in CloudFront's base64.
pub fn sign(policy: &str, key: &rsa::RsaPrivateKey) -> String {
    let signer = SigningKey::<sha1::Sha1>::new(key.clone());
    encode(&signer.sign(policy.as_bytes()).to_bytes())
}

/// The three cookies (name, value) for `policy`.
pub fn cookies(policy: &str, key: &rsa::RsaPrivateKey, key_pair_id: &str) -> [(String, String); 3] {
    [
        (POLICY.to_owned(), encode(policy.as_bytes())),
        (SIGNATURE.to_owned(), sign(policy, key)),
        (KEY_PAIR_ID.to_owned(), key_pair_id.to_owned()),
    ]
}

/// Does `text` match `pattern` (`*`: any run, `?`: one character), as CloudFront
/// matches a policy's resource and a cache behavior's path pattern?
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    wildcard(&p, &t)
}

fn wildcard(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|k| wildcard(rest, &text[k..])),
        Some(('?', rest)) => !text.is_empty() && wildcard(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && wildcard(rest, &text[1..]),
    }
}

/// Do the cookies of `cookie_header` grant `url` at `now` under `key`? A custom policy
/// only (what `sign` writes); a canned one, or a policy with an address condition, is
/// not checked here and refuses.
pub fn grants(cookie_header: &str, key: &rsa::RsaPublicKey, url: &str, now: i64) -> bool {
    let get = |name: &str| super::cookie(cookie_header, name);
    let (Some(policy), Some(signature), Some(_)) = (get(POLICY), get(SIGNATURE), get(KEY_PAIR_ID))
    else {
        return false;
    };
    let (Some(policy), Some(signature)) = (decode(policy), decode(signature)) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature.as_slice()) else {
        return false;
    };
    if VerifyingKey::<sha1::Sha1>::new(key.clone())
        .verify(&policy, &signature)
        .is_err()
    {
        return false;
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&policy) else {
        return false;
    };
    let Some([statement]) = doc["Statement"].as_array().map(Vec::as_slice) else {
        return false;
    };
    let condition = &statement["Condition"];
    if !condition["IpAddress"].is_null() {
        return false;
    }
    let resource: Vec<char> = statement["Resource"]
        .as_str()
        .unwrap_or("*")
        .chars()
        .collect();
    let url: Vec<char> = url.chars().collect();
    let before = condition["DateLessThan"]["AWS:EpochTime"].as_i64();
    let after = condition["DateGreaterThan"]["AWS:EpochTime"].as_i64();
    wildcard(&resource, &url) && before.is_some_and(|b| now < b) && after.is_none_or(|a| now >= a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudfront_base64_and_wildcards() {
        assert_eq!(encode(&[0xfb, 0xff]), "-~8_");
        assert_eq!(decode("-~8_").unwrap(), vec![0xfb, 0xff]);
        let w = |p: &str, t: &str| {
            wildcard(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        };
        assert!(w("http*://a.example/*", "https://a.example/app/x"));
        assert!(w("*", "anything"));
        assert!(!w("https://a.example/app/*", "https://b.example/app/x"));
        assert!(w("https://a.example/?.txt", "https://a.example/1.txt"));
    }
}
