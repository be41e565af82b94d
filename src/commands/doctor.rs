//! `driftless doctor ENV`: audit what a deploy relies on — the bucket (reachable,
//! conditional writes honoured, public access blocked, only CloudFront may read, the
//! site and state not readable anonymously, versioning, encryption), the distribution
//! (enabled and deployed, this bucket as origin, HTTPS, compression, TLS minimum, no
//! 403/404 → 200 trap, the driftless edge attached), the URL (DNS, HTTP → HTTPS, HSTS),
//! monitoring (alarms on the error rates) and the identity. One line per check with
//! what was seen and how to fix it; exit 1 on any failure.

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::config::StoreUrl;
use crate::text::esc;
use crate::ui::Style;
use crate::verdict::{Check, Level, fail, pass, warn};

pub(super) async fn doctor(ctx: &Ctx, env: &str) -> Result<(), Error> {
    // An audit must run with a wrong identity too: it is one of the things it reports.
    let ec = ctx.env_unchecked(env).await?;
    let mut checks = Vec::new();
    if let StoreUrl::S3 { bucket, prefix } = &ec.cfg.store {
        store_checks(&ec, bucket, prefix, &mut checks).await?;
    } else {
        checks.push(pass(
            "store.local",
            "a local directory: no bucket, CDN or public access to audit",
        ));
    }
    if let Some(cdn) = &ec.cfg.cdn {
        let function = crate::edge::resource_name(&ec.cfg.name);
        crate::aws::audit::distribution(ec.cfg, &cdn.cloudfront, &function, &mut checks).await;
        crate::aws::audit::alarms(ec.cfg, &cdn.cloudfront, &mut checks).await;
        if ec.cfg.edge_reads_pointer() {
            pointer_checks(&ec, &cdn.cloudfront, &function, &mut checks).await;
        }
        if ctx.config.edge.signed_cookies().is_some() {
            signed_cookie_checks(&ec, &cdn.cloudfront, &mut checks).await;
        }
    }
    if let Some(url) = &ec.cfg.url {
        url_checks(url, &mut checks).await;
    }
    if let Some(suffix) = ec.cfg.preview_host() {
        preview_tls(ec.cfg, &suffix, &mut checks).await;
    }
    let (_, line) = crate::aws::sts::describe(ec.cfg).await;
    checks.push(if line.contains("MISMATCH") {
        fail(
            "identity.account",
            line,
            "use the credentials of the declared account (AWS_PROFILE, or `profile` in driftless.toml)",
        )
    } else if line.starts_with("account ") || line.starts_with("local") {
        pass("identity.account", line)
    } else {
        warn(
            "identity.account",
            line,
            "set `account` in driftless.toml and make STS reachable so the account is checked",
        )
    });

    let out = &ctx.out;
    out.say(format!("{} {env}", out.paint("Doctor", Style::Strong)));
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for c in &checks {
        let (word, style) = match c.level {
            Level::Pass => ("pass", Style::Good),
            Level::Warn => ("warn", Style::Warn),
            Level::Fail => ("FAIL", Style::Bad),
        };
        out.say(format!(
            "  {}  {:<width$}  {}",
            out.paint(word, style),
            c.id,
            esc(&c.seen)
        ));
        if let Some(f) = &c.fix {
            out.say(format!("  {:4}  {:<width$}  → {f}", "", ""));
        }
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
    out.say(format!(
        "{} check(s): {} passed, {warned} warning(s), {failed} failed",
        checks.len(),
        checks.len() - failed - warned
    ));
    ec.journal(
        "doctor",
        None,
        serde_json::json!({ "failed": failed, "warned": warned, "checks": checks }),
    )
    .await;
    ec.ledger
        .put_state_json(
            "doctor.json",
            &serde_json::json!({
                "at": jiff::Timestamp::now(),
                "by": ctx.actor,
                "failed": failed,
                "warned": warned,
                "checks": checks,
            }),
        )
        .await?;
    out.document(
        &serde_json::json!({ "env": env, "failed": failed, "warned": warned, "checks": checks }),
    );
    if failed > 0 {
        return Err(Error::Other(format!(
            "{failed} check(s) failed on {env}: see the fixes above"
        )));
    }
    Ok(())
}

/// The atomic layout behind CloudFront: the KeyValueStore exists and is associated with
/// the function, the pointer names the slot holding HEAD's release, and the release the
/// function adds to the query string is in the cache key.
async fn pointer_checks(
    ec: &EnvCtx<'_>,
    distribution: &str,
    function: &str,
    checks: &mut Vec<Check>,
) {
    let env = &ec.cfg.name;
    let apply = format!("driftless edge {env} --apply");
    let kvs = crate::apply::edge::key_value_store(ec.cfg);
    let arn = match kvs.find().await {
        Ok(Some(arn)) => arn,
        Ok(None) => {
            checks.push(fail(
                "edge.pointer_store",
                format!("CloudFront KeyValueStore {function} does not exist: nothing holds the live pointer"),
                apply,
            ));
            return;
        }
        Err(e) => {
            checks.push(warn(
                "edge.pointer_store",
                format!("could not tell whether KeyValueStore {function} exists: {e}"),
                "check the credentials' cloudfront:DescribeKeyValueStore permission",
            ));
            return;
        }
    };
    let cf =
        crate::aws::cloudfront::CloudFront::connect(distribution, ec.cfg.profile.as_deref()).await;
    match cf.client().describe_function().name(function).send().await {
        Ok(d) => {
            let associated = d
                .function_summary()
                .and_then(|s| s.function_config())
                .and_then(|c| c.key_value_store_associations())
                .is_some_and(|a| a.items().iter().any(|i| i.key_value_store_arn() == arn));
            checks.push(if associated {
                pass("edge.pointer_store", format!("function {function} reads KeyValueStore {function}"))
            } else {
                fail(
                    "edge.pointer_store",
                    format!("function {function} is not associated with KeyValueStore {function}: it cannot read the live pointer"),
                    apply.clone(),
                )
            });
        }
        Err(e) => checks.push(warn(
            "edge.pointer_store",
            format!(
                "could not read function {function}: {}",
                crate::aws::error::chain(&e)
            ),
            apply.clone(),
        )),
    }
    let pointer = ec.ledger.pointer().await;
    let head = ec.ledger.head().await;
    let slots = ec.ledger.slots().await;
    checks.push(match (pointer, head, slots) {
        (Ok(Some(p)), Ok(h), Ok((slots, _))) => {
            let held = slots.get(&p.slot).filter(|h| h.complete).map(|h| h.release.clone());
            if held.is_some() && held == h.release {
                pass("edge.pointer", format!("the live pointer names slot {}, which holds HEAD's release {}", p.slot, held.unwrap_or_default()))
            } else {
                fail(
                    "edge.pointer",
                    format!(
                        "the live pointer names slot {} (holding {}), but HEAD is {}",
                        p.slot,
                        held.as_deref().unwrap_or("no whole release"),
                        h.release.as_deref().unwrap_or("(none)")
                    ),
                    format!("`driftless status {env}`; the next `driftless deploy {env}` or `rollback` repairs it"),
                )
            }
        }
        (Ok(None), Ok(h), _) if h.release.is_none() => pass("edge.pointer", "no release yet: the first deploy writes the pointer"),
        (Ok(None), Ok(h), _) => fail(
            "edge.pointer",
            format!("HEAD is {} but no live pointer exists: CloudFront serves nothing", h.release.unwrap_or_default()),
            format!("`driftless migrate {env} --layout atomic` (a store still in place), else {apply}"),
        ),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => warn(
            "edge.pointer",
            format!("could not compare the live pointer with HEAD: {e}"),
            format!("`driftless status {env}`"),
        ),
    });
    match cf.distribution().await {
        Ok(d) => {
            let param = crate::edge::cloudfront::RELEASE_PARAM;
            let keyed = d.release_in_cache_key(&cf, function, param).await;
            checks.push(match keyed {
                Ok(true) => pass("edge.cache_key", format!("the cache key carries the release ({param}): a switch needs no invalidation")),
                Ok(false) => fail(
                    "edge.cache_key",
                    format!("the default cache behavior's cache key leaves out {param}: after a slot is refilled CloudFront could serve the copy it cached for the release before"),
                    apply,
                ),
                Err(e) => warn("edge.cache_key", format!("could not read the cache key settings: {e}"), apply),
            });
        }
        Err(e) => checks.push(warn(
            "edge.cache_key",
            format!("could not read the distribution: {e}"),
            apply,
        )),
    }
}

async fn store_checks(
    ec: &EnvCtx<'_>,
    bucket: &str,
    prefix: &str,
    checks: &mut Vec<Check>,
) -> Result<(), Error> {
    let b = crate::aws::audit::Bucket::connect(ec.cfg, bucket).await;
    if !b.reachable(ec.cfg.profile.as_deref(), checks).await {
        return Ok(());
    }
    match ec.ledger.probe().await {
        Ok(r) if r.trusted() => checks.push(pass(
            "store.conditional-writes",
            "conditional writes (If-Match, If-None-Match) are honoured",
        )),
        Ok(r) => checks.push(fail(
            "store.conditional-writes",
            format!("the store ignores: {}", r.ignored.join(", ")),
            "use a store that honours conditional writes (AWS S3, SeaweedFS, MinIO ≥ 2024-08)",
        )),
        Err(e) => checks.push(fail(
            "store.conditional-writes",
            e.to_string(),
            "see the error",
        )),
    }
    b.public_access_block(checks).await;
    b.policy(ec.cfg.cdn.as_ref().map(|c| c.cloudfront.as_str()), checks)
        .await;
    anonymous_checks(ec, bucket, prefix, checks).await?;
    b.versioning(checks).await;
    b.encryption(checks).await;
    Ok(())
}

/// An unsigned GET of a live key and of the state: both must be refused.
async fn anonymous_checks(
    ec: &EnvCtx<'_>,
    bucket: &str,
    prefix: &str,
    checks: &mut Vec<Check>,
) -> Result<(), Error> {
    let (_, live) = ec.ledger.live().await?;
    let base = match &ec.cfg.endpoint {
        Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
        None => format!(
            "https://{bucket}.s3.{}.amazonaws.com/",
            ec.cfg.region.as_deref().unwrap_or("us-east-1")
        ),
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Other(e.to_string()))?;
    let mut targets = Vec::new();
    if let Some(key) = live.as_ref().and_then(|l| l.manifest.keys().next()) {
        targets.push(("store.anonymous-read", key.clone()));
    }
    targets.push((
        "store.state-private",
        format!("{}HEAD", ec.cfg.state_prefix),
    ));
    // A file `[edge.auth]` protects: CloudFront's check means nothing if the bucket
    // hands it out.
    let protected = ec
        .ctx
        .config
        .edge
        .auth
        .as_ref()
        .map(crate::edge::auth::Protected::of);
    if let (Some(protected), Some(live)) = (&protected, &live)
        && let Some(key) = live
            .manifest
            .keys()
            .find(|k| protected.covers(&format!("/{k}")))
    {
        let at = ec.ledger.live_prefix().await?.unwrap_or_default();
        targets.push(("store.protected-private", format!("{at}{key}")));
    }
    for (id, key) in targets {
        // The probe means something only for a key that exists: S3 answers 403 to an
        // unsigned GET of a missing key whatever the policy, which would pass falsely.
        match ec.ledger.store().head(&key).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                checks.push(warn(
                    id,
                    format!("{key} is not in the store, so an unsigned read of it could not be told apart from a refusal"),
                    "deploy first, then re-run doctor",
                ));
                continue;
            }
            Err(e) => {
                checks.push(warn(
                    id,
                    format!("{key} could not be read with the credentials: {e}"),
                    "see the error",
                ));
                continue;
            }
        }
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}/{key}")
        };
        let url = format!("{base}{}", crate::store::encode_key(&full));
        checks.push(match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => fail(
                id,
                format!("an unsigned GET of {key} straight from the bucket answered {}", r.status().as_u16()),
                "block public access and keep reads to CloudFront (see store.public-access-block and store.bucket-policy)",
            ),
            Ok(r) if [401, 403].contains(&r.status().as_u16()) => pass(
                id,
                format!("an unsigned GET of {key} straight from the bucket is refused ({})", r.status().as_u16()),
            ),
            Ok(r) => warn(
                id,
                format!("an unsigned GET of {key} at {url} answered {}: neither served nor refused, so this could not be told", r.status().as_u16()),
                "check that the endpoint serves the bucket at this address",
            ),
            Err(e) => warn(id, format!("{url} did not answer: {e}"), "check the endpoint"),
        });
    }
    Ok(())
}

/// `[edge.auth.signed_cookies]`: CloudFront has the public key and key group, and the
/// first cache behavior a request for each protected pattern reaches trusts that group
/// (another behavior before it, or the default one, would serve it unsigned).
async fn signed_cookie_checks(ec: &EnvCtx<'_>, distribution: &str, checks: &mut Vec<Check>) {
    let env = &ec.cfg.name;
    let id = "edge.signed_cookies";
    let apply = format!("driftless edge {env} --apply");
    let p = match crate::apply::edge::environment::protection(&ec.edge()).await {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            checks.push(fail(id, e.to_string(), "fix [edge.auth.signed_cookies]"));
            return;
        }
    };
    let cf =
        crate::aws::cloudfront::CloudFront::connect(distribution, ec.cfg.profile.as_deref()).await;
    let signer = match cf.find_signer(&p.name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            checks.push(fail(
                id,
                format!("CloudFront has no public key and key group {} (the public key of [edge.auth.signed_cookies])", p.name),
                apply,
            ));
            return;
        }
        Err(e) => {
            checks.push(warn(id, format!("could not tell: {e}"), "see the error"));
            return;
        }
    };
    let dist = match cf.distribution().await {
        Ok(d) => d,
        Err(e) => {
            checks.push(warn(id, format!("could not tell: {e}"), "see the error"));
            return;
        }
    };
    let behaviors = dist.behaviors();
    let protect = ec
        .ctx
        .config
        .edge
        .auth
        .as_ref()
        .map(|a| a.protect.clone())
        .unwrap_or_default();
    let mut covered = Vec::new();
    for glob in &protect {
        for pattern in crate::aws::cloudfront::path_patterns(glob) {
            let sample = pattern.replace(['*', '?'], "x");
            let (reached, groups) = behaviors
                .iter()
                .find(|(p, _)| crate::edge::signed::matches(p, &sample))
                .map_or_else(
                    || ("the default behavior".to_owned(), dist.default_trusts()),
                    |(p, g)| (format!("behavior {p}"), g.clone()),
                );
            if !groups.contains(&signer.key_group) {
                checks.push(fail(
                    id,
                    format!("{sample} (protected by {glob}) reaches {reached}, which does not require signed cookies of key group {}", signer.key_group),
                    apply,
                ));
                return;
            }
            covered.push(pattern);
        }
    }
    checks.push(pass(
        id,
        format!(
            "{} require signed cookies of key group {} (public key {})",
            covered.join(", "),
            signer.key_group,
            signer.public_key
        ),
    ));
}

/// The certificate a preview host is served with covers it (a name no preview has is as
/// good as any: the wildcard covers them all). A host that does not resolve cannot tell.
async fn preview_tls(cfg: &crate::config::EnvConfig, suffix: &str, checks: &mut Vec<Check>) {
    let Some(url) = cfg.preview_url("driftless-doctor") else {
        return;
    };
    let Ok(parsed) = reqwest::Url::parse(&url) else {
        return;
    };
    if parsed.scheme() != "https" || suffix == ".localhost" {
        return;
    }
    let host = format!("driftless-doctor{suffix}");
    let port = parsed.port_or_known_default().unwrap_or(443);
    let resolves = tokio::net::lookup_host((host.as_str(), port))
        .await
        .is_ok_and(|mut a| a.next().is_some());
    checks.push(if !resolves {
        warn(
            "edge.preview_tls",
            format!("could not tell: {host} does not resolve, so no preview is reachable yet"),
            format!("add the DNS record *{suffix} → the distribution"),
        )
    } else {
        certificate_check(
            "edge.preview_tls",
            &host,
            port,
            &format!(
                "serve a certificate covering *{suffix} (ACM in us-east-1, viewer_certificate)"
            ),
        )
        .await
    });
}

/// The certificate `host` is served with: valid (pass), expiring (warn) or not (fail, with
/// `fix`).
async fn certificate_check(id: &'static str, host: &str, port: u16, fix: &str) -> Check {
    match crate::check::tls::certificate(host, port).await {
        Ok(c) if c.expiring() => warn(
            id,
            format!("the certificate for {host} is {}", c.describe()),
            "renew it (ACM renews the certificates it issued and validated by DNS by itself)",
        ),
        Ok(c) => pass(
            id,
            format!("the certificate for {host} is {}", c.describe()),
        ),
        Err(e) => fail(id, e, fix),
    }
}

async fn url_checks(url: &str, checks: &mut Vec<Check>) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return;
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return;
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => checks.push(pass("url.dns", format!("{host} resolves ({})", a.ip()))),
            None => checks.push(fail(
                "url.dns",
                format!("{host} resolves to nothing"),
                "add the DNS record (an alias to the distribution)",
            )),
        },
        Err(e) => {
            checks.push(fail(
                "url.dns",
                format!("{host}: {e}"),
                "add the DNS record (an alias to the distribution)",
            ));
            return;
        }
    }
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    if parsed.scheme() == "https" {
        checks.push(
            certificate_check(
                "url.tls",
                &host,
                port,
                &format!("serve a valid certificate for {host} (for CloudFront: ACM in us-east-1, and viewer_certificate)"),
            )
            .await,
        );
        checks.push(match crate::check::tls::plain_http(url) {
            None => warn(
                "url.https-redirect",
                format!(
                    "not checked: {url} names a port, so there is no plain-HTTP address to try"
                ),
                "check the HTTP listener by hand",
            ),
            Some(plain) => match client.get(&plain).send().await {
                Ok(r) if crate::check::tls::redirects_to_https(&r) => pass(
                    "url.https-redirect",
                    format!("{plain} answers {} to HTTPS", r.status().as_u16()),
                ),
                Ok(r) => fail(
                    "url.https-redirect",
                    format!(
                        "{plain} answers {} without redirecting to HTTPS",
                        r.status().as_u16()
                    ),
                    "set the viewer protocol policy to redirect-to-https",
                ),
                Err(e) => warn(
                    "url.https-redirect",
                    format!("{plain}: {e}"),
                    "make port 80 answer with a redirect to HTTPS",
                ),
            },
        });
    }
    checks.push(match client.get(url).send().await {
        Ok(r) if r.headers().contains_key("strict-transport-security") => pass("url.hsts", "Strict-Transport-Security is sent"),
        Ok(_) => warn("url.hsts", "no Strict-Transport-Security header", "add it to [edge] headers (e.g. \"max-age=63072000; includeSubDomains\") and `driftless edge ENV --apply`"),
        Err(e) => fail("url.hsts", format!("{url}: {e}"), "make the URL answer"),
    });
}

/// `driftless doctor` with no environment: which driftless, which config file, and per
/// environment where its store is and — for S3 — the endpoint, region and credential
/// source the AWS SDK resolves (the credentials are resolved, never used). Exit 1 when an
/// S3 environment has no credentials; a config that cannot be read is its usual error.
pub(super) async fn self_check(
    out: &crate::ui::Output,
    config: Option<&std::path::Path>,
) -> Result<(), Error> {
    let version = env!("DRIFTLESS_VERSION");
    out.say(format!("driftless {version}"));
    let path = match config {
        Some(p) => Ok(p.to_path_buf()),
        None => crate::config::Config::discover(&std::env::current_dir()?),
    };
    let path = match path {
        Ok(p) => p,
        Err(e) => {
            out.say(format!("  config       {}", out.paint("none", Style::Warn)));
            out.document(&serde_json::json!({ "version": version, "config": null }));
            return Err(e.into());
        }
    };
    let config = crate::config::Config::load(&path)?;
    let shown = std::path::absolute(&path).unwrap_or(path);
    out.say(format!(
        "  config       {}",
        esc(&shown.display().to_string())
    ));
    let mut envs = Vec::new();
    let mut missing = Vec::new();
    for cfg in config.envs.values() {
        out.say(format!(
            "  {}",
            out.paint(&format!("env {}", cfg.name), Style::Strong)
        ));
        out.say(format!("    store        {}", esc(&cfg.store.to_string())));
        let StoreUrl::S3 { .. } = &cfg.store else {
            out.say("    credentials  none needed (a local directory)");
            envs.push(serde_json::json!({ "env": cfg.name, "store": cfg.store.to_string() }));
            continue;
        };
        let chain = crate::aws::chain::resolve(
            cfg.region.as_deref(),
            cfg.profile.as_deref(),
            cfg.endpoint.as_deref(),
        )
        .await;
        out.say(format!("    endpoint     {}", esc(&chain.endpoint)));
        out.say(format!("    region       {}", esc(&chain.region)));
        if let Some(p) = &cfg.profile {
            out.say(format!("    profile      {} (driftless.toml)", esc(p)));
        }
        match &chain.credentials {
            Ok(source) => out.say(format!("    credentials  {}", esc(source))),
            Err(why) => {
                out.say(format!(
                    "    credentials  {} {}",
                    out.paint("NONE:", Style::Bad),
                    esc(why)
                ));
                out.say(format!(
                    "                 → set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run `aws sso login{}`",
                    cfg.profile
                        .as_deref()
                        .map(|p| format!(" --profile {p}"))
                        .unwrap_or_default()
                ));
                missing.push(cfg.name.clone());
            }
        }
        envs.push(serde_json::json!({
            "env": cfg.name,
            "store": cfg.store.to_string(),
            "endpoint": chain.endpoint,
            "region": chain.region,
            "profile": cfg.profile,
            "credentials": match &chain.credentials {
                Ok(source) => serde_json::json!({ "source": source }),
                Err(why) => serde_json::json!({ "error": why }),
            },
        }));
    }
    out.document(&serde_json::json!({
        "version": version,
        "config": shown,
        "envs": envs,
    }));
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "no AWS credentials for {}: `driftless doctor ENV` then audits the rest",
            missing.join(", ")
        )))
    }
}
