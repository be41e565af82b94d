//! `driftless sign ENV [PATH] [--cookie]`: a token `[edge.auth]` accepts, for tests, CI
//! and preview links — a JWT (or a CWT) signed with a configured secret, or CloudFront signed
//! cookies (or a signed URL) from the private key.

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::config::{AuthConfig, JwtConfig, SignedCookiesConfig};

/// What `sign` was asked for.
pub(super) struct Ask<'a> {
    pub(super) path: Option<&'a str>,
    pub(super) cookie: bool,
    pub(super) expires: &'a str,
    pub(super) kid: Option<&'a str>,
    pub(super) subject: &'a str,
    pub(super) cwt: bool,
}

pub(super) async fn sign(ctx: &Ctx, env: &str, ask: &Ask<'_>) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let Some(auth) = &ctx.config.edge.auth else {
        return Err(Error::Usage(
            "there is no [edge.auth] in driftless.toml: nothing to sign for".into(),
        ));
    };
    let ttl = crate::text::parse_duration(ask.expires)
        .filter(|d| d.is_positive())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--expires {:?} is not a duration (e.g. \"1h\")",
                ask.expires
            ))
        })?;
    let expires = jiff::Timestamp::now().as_second() + ttl.as_secs();
    match (&auth.jwt, ask.cwt) {
        (Some(jwt), true) if !jwt.cwt => {
            return Err(Error::Usage(
                "--cwt: [edge.auth.jwt] does not accept CBOR Web Tokens; add `cwt = true` to it (or drop --cwt for a JWT)".into(),
            ));
        }
        (None, true) => {
            return Err(Error::Usage(
                "--cwt: CBOR Web Tokens are checked with a shared secret ([edge.auth.jwt] with `cwt = true`); this [edge.auth] uses signed cookies: drop --cwt".into(),
            ));
        }
        _ => {}
    }
    let minted = match (&auth.jwt, &auth.signed_cookies) {
        (Some(jwt), _) => jwt_token(auth, jwt, ask, expires)?,
        (None, Some(signed)) => signed_cookies(&ec, signed, ask, expires).await?,
        (None, None) => unreachable!("the config refuses [edge.auth] without either"),
    };
    // The token alone on stdout (for `$(driftless sign ENV)`), or the JSON document.
    if ctx.out.json {
        ctx.out.document(&minted.json);
    } else {
        crate::ui::stdout_line(&minted.text);
    }
    Ok(())
}

struct Minted {
    /// What is printed: the token, a Cookie header's value, or a URL.
    text: String,
    json: serde_json::Value,
}

fn jwt_token(
    auth: &AuthConfig,
    jwt: &JwtConfig,
    ask: &Ask<'_>,
    expires: i64,
) -> Result<Minted, Error> {
    if ask.path.is_some() {
        return Err(Error::Usage(
            "a JWT or CWT is not bound to a path: drop PATH (the token goes in `Authorization: Bearer`, or the cookie with --cookie)".into(),
        ));
    }
    let secrets = jwt.secrets().map_err(Error::Usage)?;
    let kid = match (ask.kid, secrets.len()) {
        (Some(k), _) => k.to_owned(),
        (None, 1) => secrets.keys().next().cloned().unwrap_or_default(),
        (None, _) => {
            return Err(Error::Usage(format!(
                "edge.auth.jwt has {} keys: name the one to sign with, --kid {}",
                secrets.len(),
                secrets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | --kid ")
            )));
        }
    };
    let Some(secret) = secrets.get(&kid) else {
        return Err(Error::Usage(format!(
            "--kid {kid}: edge.auth.jwt.keys has no such key id ({})",
            secrets.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    let now = jiff::Timestamp::now().as_second();
    let (kind, alg, token) = if ask.cwt {
        use coset::cbor::value::Value;
        // CWT claim labels (RFC 8392): iss 1, sub 2, aud 3, exp 4, iat 6.
        let mut claims = vec![
            (2, Value::from(ask.subject)),
            (4, Value::from(expires)),
            (6, Value::from(now)),
        ];
        if let Some(iss) = &jwt.issuer {
            claims.push((1, Value::from(iss.as_str())));
        }
        if let Some(aud) = &jwt.audience {
            claims.push((3, Value::from(aud.as_str())));
        }
        let token = crate::edge::auth::mint_cwt(&kid, secret, claims)
            .ok_or_else(|| Error::Other("cannot encode the CWT".into()))?;
        ("cwt", "HMAC 256/256", token)
    } else {
        let mut claims = serde_json::json!({ "sub": ask.subject, "iat": now, "exp": expires });
        if let Some(iss) = &jwt.issuer {
            claims["iss"] = iss.clone().into();
        }
        if let Some(aud) = &jwt.audience {
            claims["aud"] = aud.clone().into();
        }
        let alg = jwt.algorithms.first().map_or("HS256", String::as_str);
        let token = crate::edge::auth::mint_jwt(alg, &kid, secret, &claims)
            .ok_or_else(|| Error::Other(format!("{alg}: cannot sign")))?;
        ("jwt", alg, token)
    };
    let cookie = auth.cookie.as_ref().map(|c| format!("{c}={token}"));
    let text = if ask.cookie {
        cookie.clone().ok_or_else(|| {
            Error::Usage(
                "--cookie: [edge.auth] names no `cookie` to carry the token; send it as `Authorization: Bearer TOKEN` instead".into(),
            )
        })?
    } else {
        token.clone()
    };
    Ok(Minted {
        text,
        json: serde_json::json!({
            "kind": kind, "token": token, "kid": kid, "alg": alg, "expires": expires,
            "authorization": format!("Bearer {token}"), "cookie": cookie,
        }),
    })
}

async fn signed_cookies(
    ec: &EnvCtx<'_>,
    signed: &SignedCookiesConfig,
    ask: &Ask<'_>,
    expires: i64,
) -> Result<Minted, Error> {
    let pem = private_key_pem(ec, signed).await?;
    let key = crate::edge::signed::private_key(&pem).map_err(Error::Usage)?;
    let env = &ec.cfg.name;
    // The Key-Pair-Id: the public key's id in CloudFront (what `edge --apply` made).
    let key_pair_id = match &ec.cfg.cdn {
        Some(cdn) => {
            let p = crate::apply::edge::environment::protection(&ec.edge())
                .await?
                .expect("signed cookies are configured");
            let cf = crate::aws::cloudfront::CloudFront::connect(
                &cdn.cloudfront,
                ec.cfg.profile.as_deref(),
            )
            .await;
            cf.find_signer(&p.name)
                .await?
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "CloudFront has no public key {} yet: `driftless edge {env} --apply` creates it",
                        p.name
                    ))
                })?
                .public_key
        }
        None => "driftless-serve".to_owned(),
    };
    let host = ec
        .cfg
        .url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    match ask.path {
        Some(path) if !ask.cookie => {
            let Some(url) = &ec.cfg.url else {
                return Err(Error::Usage(format!(
                    "a signed URL needs env.{env}'s `url`; or sign a cookie with --cookie"
                )));
            };
            let url = format!(
                "{}/{}",
                url.trim_end_matches('/'),
                path.trim_start_matches('/')
            );
            let policy = crate::edge::signed::policy(&url, expires);
            let [(_, p), (_, s), (_, k)] =
                crate::edge::signed::cookies(&policy, &key, &key_pair_id);
            let sep = if url.contains('?') { '&' } else { '?' };
            let signed = format!("{url}{sep}Policy={p}&Signature={s}&Key-Pair-Id={k}");
            Ok(Minted {
                text: signed.clone(),
                json: serde_json::json!({ "kind": "signed-url", "url": signed, "expires": expires, "key_pair_id": key_pair_id }),
            })
        }
        _ => {
            let resource = match (&host, ask.path) {
                (Some(h), Some(p)) => format!("http*://{h}/{}", p.trim_start_matches('/')),
                (Some(h), None) => format!("http*://{h}/*"),
                (None, _) => "*".to_owned(),
            };
            let policy = crate::edge::signed::policy(&resource, expires);
            let cookies = crate::edge::signed::cookies(&policy, &key, &key_pair_id);
            let header = cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let set: Vec<String> = cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}; Path=/; Secure; HttpOnly; SameSite=Lax"))
                .collect();
            Ok(Minted {
                text: header.clone(),
                json: serde_json::json!({
                    "kind": "signed-cookies", "cookie": header, "set_cookie": set,
                    "resource": resource, "expires": expires, "key_pair_id": key_pair_id,
                }),
            })
        }
    }
}

/// The PEM of the private key: from an environment variable, a file, or AWS Secrets
/// Manager, as configured.
async fn private_key_pem(ec: &EnvCtx<'_>, signed: &SignedCookiesConfig) -> Result<String, Error> {
    if let Some(var) = &signed.private_key_env {
        return std::env::var(var).map_err(|_| {
            Error::Usage(format!(
                "edge.auth.signed_cookies: set the private key (PEM) in the environment variable {var}"
            ))
        });
    }
    if let Some(file) = &signed.private_key_file {
        return Ok(fs_err::read_to_string(ec.ctx.config.dir.join(file))?);
    }
    if let Some(id) = &signed.private_key_secret {
        return crate::aws::secrets::secret_string(ec.cfg, id).await;
    }
    Err(Error::Usage(
        "edge.auth.signed_cookies: say where the private key is: private_key_env, private_key_file or private_key_secret".into(),
    ))
}

/// The header a check carries through `[edge.auth]` (`verify`): a JWT in
/// `Authorization: Bearer` (or its cookie, when basic auth takes that header), or the
/// signed cookies; `None` without `[edge.auth]`.
pub(super) async fn credential(ec: &EnvCtx<'_>) -> Result<Option<(String, String)>, Error> {
    let Some(auth) = &ec.ctx.config.edge.auth else {
        return Ok(None);
    };
    let expires = jiff::Timestamp::now().as_second() + 900;
    let basic = ec.ctx.config.edge.basic_auth.is_some();
    let mut ask = Ask {
        path: None,
        cookie: basic,
        expires: "15m",
        kid: None,
        subject: "driftless-verify",
        cwt: false,
    };
    Ok(Some(match (&auth.jwt, &auth.signed_cookies) {
        (Some(jwt), _) => {
            let first = jwt.keys.keys().next().cloned();
            ask.kid = first.as_deref();
            let minted = jwt_token(auth, jwt, &ask, expires)?;
            if basic {
                ("Cookie".to_owned(), minted.text)
            } else {
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", minted.text),
                )
            }
        }
        (None, Some(signed)) => {
            ask.cookie = true;
            (
                "Cookie".to_owned(),
                signed_cookies(ec, signed, &ask, expires).await?.text,
            )
        }
        (None, None) => return Ok(None),
    }))
}
