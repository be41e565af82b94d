//! `[edge.basic_auth]` and `[edge.auth]` (protected paths, JWT/CWT keys, CloudFront signed
//! cookies) as read from driftless.toml and checked: never a secret in the file, only the
//! names of the environment variables (or files) that hold them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Invalid, Key};

/// Passwords shorter than this get a warning: basic auth is all that stands between a
/// preview and everyone.
pub const SHORT_PASSWORD: usize = 12;

/// Basic auth for previews; the password comes from an environment variable, never
/// from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
    /// Ask for it on previews only (`deploy --preview`); live stays public.
    #[serde(default)]
    pub previews_only: bool,
}

impl BasicAuth {
    /// The exact `Authorization` header value, with the password read from
    /// `password_env` (an error names the variable to set).
    pub fn header_value(&self) -> Result<String, String> {
        use base64::Engine as _;
        let password = std::env::var(&self.password_env).map_err(|_| {
            format!(
                "edge.basic_auth: set the password in the environment variable {}",
                self.password_env
            )
        })?;
        if password.chars().count() < SHORT_PASSWORD {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "driftless: warning: edge.basic_auth: the password in {} is {} character(s); use {SHORT_PASSWORD} or more (a short one is guessed quickly)",
                    self.password_env,
                    password.chars().count()
                );
            });
        }
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", self.user));
        Ok(format!("Basic {token}"))
    }
}

/// Token auth for path patterns (`[edge.auth]`): a JWT signed with a shared secret,
/// checked by `serve` and by the CloudFront function alike; or CloudFront signed
/// cookies, checked by CloudFront itself (and `serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Paths that need a token: `*` is one path segment (or part of one), `**` any
    /// number of segments (`/app/**` covers `/app` and everything under it).
    pub protect: Vec<String>,
    /// Paths inside `protect` that stay open (a login page).
    #[serde(default)]
    pub public: Vec<String>,
    /// Where a navigation without a valid token is sent (`?next=` the path it asked
    /// for); without it, or for a request that accepts JSON, the answer is 401.
    #[serde(default)]
    pub login_url: Option<String>,
    /// Read the token from this cookie too (`Authorization: Bearer` comes first).
    #[serde(default)]
    pub cookie: Option<String>,
    /// JWTs signed with a shared secret (HS256/HS384/HS512).
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// CloudFront signed cookies: for identity providers that sign with RSA.
    #[serde(default)]
    pub signed_cookies: Option<SignedCookiesConfig>,
}

/// `[edge.auth.jwt]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The accepted algorithms (default `["HS256"]`); anything else, `none` included,
    /// is refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// `iss` must be exactly this, when set.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` must be (or contain) this, when set.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default "60s").
    #[serde(default = "default_leeway")]
    pub leeway: String,
    /// Key id (the token header's `kid`; `default` for tokens without one) → the
    /// environment variable holding its secret. Two ids during a rotation's grace.
    pub keys: BTreeMap<String, String>,
    /// Also accept CBOR Web Tokens (RFC 8392: COSE_Mac0, HMAC 256/256) MACed with the
    /// same keys; the CloudFront function checks their MAC with the runtime's `cf.cwt`.
    #[serde(default)]
    pub cwt: bool,
}

fn default_algorithms() -> Vec<String> {
    vec!["HS256".into()]
}

fn default_leeway() -> String {
    "60s".into()
}

/// `[edge.auth.signed_cookies]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCookiesConfig {
    /// The RSA public key (PEM file, relative to driftless.toml) CloudFront verifies
    /// with: `edge --apply` uploads it into a key group.
    pub public_key: String,
    /// Where `driftless sign` finds the private key: an environment variable holding
    /// the PEM, a file, or an AWS Secrets Manager secret (its id or ARN).
    #[serde(default)]
    pub private_key_env: Option<String>,
    #[serde(default)]
    pub private_key_file: Option<String>,
    #[serde(default)]
    pub private_key_secret: Option<String>,
}

impl JwtConfig {
    /// The leeway in seconds.
    pub fn leeway_seconds(&self) -> i64 {
        crate::text::parse_duration(&self.leeway).map_or(60, |d| d.as_secs())
    }

    /// The fewest characters a secret may have: the output of the strongest hash the
    /// accepted algorithms use (RFC 7518 §3.2: 32 for HS256, 48 for HS384, 64 for HS512;
    /// CWTs are HMAC 256/256). Counted in UTF-16 units, as the function's
    /// `secret.length` counts them (never fewer than the bytes HMAC is keyed with).
    pub fn min_secret_len(&self) -> usize {
        let hashes = self.algorithms.iter().filter_map(|a| secret_len_for(a));
        hashes.chain(self.cwt.then_some(32)).max().unwrap_or(32)
    }

    /// Every key id and its secret, read from the environment (an error names the
    /// variable to set). A secret shorter than [`Self::min_secret_len`] — the empty one
    /// a CI secret that is not set expands to, above all — is refused: anyone could
    /// forge a token signed with it.
    pub fn secrets(&self) -> Result<BTreeMap<String, String>, String> {
        let min = self.min_secret_len();
        self.keys
            .iter()
            .map(|(kid, var)| {
                let secret = std::env::var(var).map_err(|_| {
                    format!(
                        "edge.auth.jwt.keys.{kid}: set the secret in the environment variable {var}"
                    )
                })?;
                let len = secret.encode_utf16().count();
                if len < min {
                    let strongest = self
                        .algorithms
                        .iter()
                        .filter(|a| secret_len_for(a) == Some(min))
                        .cloned()
                        .chain(self.cwt.then(|| "CWT (HMAC 256/256)".to_owned()))
                        .next()
                        .unwrap_or_else(|| "HS256".into());
                    let what = if secret.is_empty() {
                        format!("the environment variable {var} is empty (what a CI secret that is not set expands to)")
                    } else {
                        format!("the secret in {var} is {len} characters long")
                    };
                    return Err(format!(
                        "edge.auth.jwt.keys.{kid}: {what}; {strongest} needs a secret of at least {min} characters (RFC 7518 §3.2), or anyone could forge a token\n  → a new secret: `openssl rand -base64 {}`",
                        min * 3 / 4 + 3
                    ));
                }
                Ok((kid.clone(), secret))
            })
            .collect()
    }
}

/// The shortest secret algorithm `alg` may be keyed with: its hash's output in bytes.
pub fn secret_len_for(alg: &str) -> Option<usize> {
    match alg {
        "HS256" => Some(32),
        "HS384" => Some(48),
        "HS512" => Some(64),
        _ => None,
    }
}

impl AuthConfig {
    pub(super) fn validate(&self, at: &Key) -> Result<(), Invalid> {
        let bad = |k: &str, why: String| Err(Invalid::new(at.clone().then(k), why));
        if self.protect.is_empty() {
            return bad(
                "protect",
                "edge.auth.protect: name at least one path pattern, e.g. [\"/app/**\"]".into(),
            );
        }
        for (k, list) in [("protect", &self.protect), ("public", &self.public)] {
            for p in list {
                if let Err(why) = PathGlob::parse(p) {
                    return bad(k, format!("edge.auth.{k}: {why}"));
                }
            }
        }
        if let Some(u) = &self.login_url
            && (!u.starts_with('/') && !u.starts_with("https://")
                || u.chars().any(char::is_control))
        {
            return bad(
                "login_url",
                format!("edge.auth.login_url: {u:?} is not a path (\"/login\") or an https URL"),
            );
        }
        if let Some(c) = &self.cookie
            && (c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return bad(
                "cookie",
                format!(
                    "edge.auth.cookie: {c:?} is not a cookie name (letters, digits, '-', '_', '.')"
                ),
            );
        }
        match (&self.jwt, &self.signed_cookies) {
            (None, None) => bad("jwt", "edge.auth: choose how tokens are checked: [edge.auth.jwt] (a shared secret) or [edge.auth.signed_cookies] (CloudFront signed cookies)".into()),
            (Some(_), Some(_)) => bad("signed_cookies", "edge.auth: [edge.auth.jwt] and [edge.auth.signed_cookies] are two ways to check one token; keep one (see docs/decisions.md)".into()),
            (Some(j), None) => {
                for a in &j.algorithms {
                    if !["HS256", "HS384", "HS512"].contains(&a.as_str()) {
                        return bad("jwt", format!("edge.auth.jwt.algorithms: {a:?} cannot be checked at the edge; HS256, HS384 or HS512 (for RS256/ES256 use [edge.auth.signed_cookies])"));
                    }
                }
                if j.algorithms.is_empty() {
                    return bad("jwt", "edge.auth.jwt.algorithms: name at least one of HS256, HS384, HS512".into());
                }
                if crate::text::parse_duration(&j.leeway).is_none() {
                    return bad("jwt", format!("edge.auth.jwt.leeway: {:?} is not a duration (e.g. \"60s\")", j.leeway));
                }
                if j.keys.is_empty() {
                    return bad("jwt", "edge.auth.jwt.keys: name at least one key id and the environment variable holding its secret, e.g. { default = \"DRIFTLESS_JWT_SECRET\" }".into());
                }
                if let Some(kid) = j.keys.keys().find(|k| !key_id_ok(k)) {
                    return bad("jwt", format!("edge.auth.jwt.keys: {kid:?} is not a key id (1-64 letters, digits, '-', '_', '.')"));
                }
                Ok(())
            }
            (None, Some(s)) => {
                if [&s.private_key_env, &s.private_key_file, &s.private_key_secret].iter().filter(|x| x.is_some()).count() > 1 {
                    return bad("signed_cookies", "edge.auth.signed_cookies: the private key comes from one place: private_key_env, private_key_file or private_key_secret".into());
                }
                Ok(())
            }
        }
    }
}

/// A key id: what `kid` may name, and the KeyValueStore key `auth:KID` holds its secret.
pub fn key_id_ok(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// One path pattern of `protect` or `public`: `*` within a segment, `**` as a whole
/// segment (any number of segments, none included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob(Vec<Tok>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    /// `*`: any characters but `/`.
    Star,
    /// `/**`: nothing, or `/` and anything.
    Tail,
}

impl PathGlob {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(format!("{pattern:?} must be a path starting with '/'"));
        };
        if pattern.chars().any(char::is_control) || pattern.contains(['?', '#']) {
            return Err(format!(
                "{pattern:?}: a path pattern has no query, fragment or control characters"
            ));
        }
        let mut toks = Vec::new();
        for seg in rest.split('/') {
            if seg == "**" {
                toks.push(Tok::Tail);
                continue;
            }
            if seg.contains("**") {
                return Err(format!(
                    "{pattern:?}: `**` stands for whole segments only (`/app/**`)"
                ));
            }
            toks.push(Tok::Char('/'));
            toks.extend(
                seg.chars()
                    .map(|c| if c == '*' { Tok::Star } else { Tok::Char(c) }),
            );
        }
        Ok(Self(toks))
    }

    /// Does the decoded path `path` match?
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        matches_at(&self.0, &chars)
    }

    /// The same pattern as a JavaScript regular expression's source (anchored).
    pub fn js_regex(&self) -> String {
        let mut out = String::from("^");
        for t in &self.0 {
            match t {
                Tok::Char(c) if c.is_ascii_alphanumeric() || *c == '/' => out.push(*c),
                Tok::Char(c) => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                Tok::Star => out.push_str("[^/]*"),
                Tok::Tail => out.push_str("(?:/[\\s\\S]*)?"),
            }
        }
        out.push('$');
        out
    }
}

fn matches_at(toks: &[Tok], s: &[char]) -> bool {
    match toks.split_first() {
        None => s.is_empty(),
        Some((Tok::Char(c), rest)) => s.first() == Some(c) && matches_at(rest, &s[1..]),
        Some((Tok::Star, rest)) => {
            let run = s.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|k| matches_at(rest, &s[k..]))
        }
        Some((Tok::Tail, rest)) => {
            matches_at(rest, s)
                || (s.first() == Some(&'/') && (1..=s.len()).any(|k| matches_at(rest, &s[k..])))
        }
    }
}
