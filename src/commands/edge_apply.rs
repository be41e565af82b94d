//! `driftless edge ENV --apply`: publish the compiled `[edge]` through the CloudFront
//! API — the function created or updated with `If-Match` on its ETag and published, the
//! headers policy created or updated, both attached to the distribution's default cache
//! behavior with the custom error responses, `If-Match` on the distribution config — and
//! edge drift: which side moved since driftless last published.

use crate::aws::cloudfront::{CloudFront, Distribution, LiveFunction};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::EnvCtx;
use crate::Error;
use crate::edge::Compiled;
use crate::ui::Style;

/// What driftless last published, kept in the environment's state (`edge.json`): edge
/// drift is judged against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Published {
    pub(crate) function: String,
    pub(crate) sha256: String,
    pub(crate) distribution: String,
    pub(crate) by: crate::ledger::Actor,
    pub(crate) at: jiff::Timestamp,
}

fn sha(code: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(code.as_bytes()))
}

/// Publish `c` to the environment's distribution. Returns what was done, for `--json`.
pub(super) async fn apply(
    ec: &EnvCtx<'_>,
    c: &Compiled,
    yes: bool,
) -> Result<serde_json::Value, Error> {
    let out = &ec.ctx.out;
    let env = &ec.cfg.name;
    let Some(cdn) = &ec.cfg.cdn else {
        return Err(Error::Usage(format!(
            "env.{env} has no `cdn`: add `cdn = {{ cloudfront = \"E…\" }}` to publish the edge rules, or use `--export DIR`"
        )));
    };
    let cf = CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let live = cf.live_function(&c.name).await?;
    let dist = cf.distribution().await?;
    let pointer = match &c.atomic {
        Some(a) => Some(pointer_plan(ec, a).await?),
        None => None,
    };
    let code_changed = live
        .as_ref()
        .and_then(|l| l.code.as_deref())
        .is_none_or(|code| sha(code) != c.function.digest);
    // The policy is attached by id, which exists only once created: plan with a marker.
    let policy_id = match &c.policy {
        Some(_) => Some(
            cf.find_policy(&c.name)
                .await?
                .map_or_else(|| "(new)".to_owned(), |(id, _)| id),
        ),
        None => None,
    };
    let arn_guess = live.as_ref().map_or_else(
        || format!("arn:aws:cloudfront::(account):function/{}", c.name),
        |l| l.arn.clone(),
    );
    // A store is associated by a function update: a new one, or one the function lost.
    let store_lost = |live: Option<&LiveFunction>| {
        pointer.as_ref().is_some_and(|p| {
            p.arn
                .as_ref()
                .is_none_or(|arn| live.is_some_and(|l| !l.key_value_stores.contains(arn)))
        })
    };
    // The viewer-response function: the canary cookie, noindex on previews.
    let response_name = format!("{}-response", c.name);
    let response = match &c.response {
        Some(f) => {
            let live = cf.live_function(&response_name).await?;
            let changed = live
                .as_ref()
                .and_then(|l| l.code.as_deref())
                .is_none_or(|code| sha(code) != f.digest)
                || store_lost(live.as_ref());
            Some((live, changed))
        }
        None => None,
    };
    let response_guess = response.as_ref().map(|(live, _)| {
        live.as_ref().map_or_else(
            || format!("arn:aws:cloudfront::(account):function/{response_name}"),
            |l| l.arn.clone(),
        )
    });
    // The atomic layout's release parameter joins the cache key: through driftless's
    // cache policy where the behavior uses one (planned with a marker until it exists).
    let param = crate::edge::cloudfront::RELEASE_PARAM;
    let release_key = c.atomic.as_ref().map(|_| ("(new)", param));
    let dist_change = dist.with_edge(
        &arn_guess,
        policy_id.as_deref(),
        &c.name,
        &c.errors,
        release_key,
        response_guess.as_deref(),
    )?;
    let mut steps = Vec::new();
    if let Some(p) = &pointer {
        if p.arn.is_none() {
            steps.push(format!(
                "create CloudFront KeyValueStore {} (the live pointer the function reads)",
                c.name
            ));
        }
        if let Some((slot, release)) = &p.first {
            steps.push(format!(
                "write the first live pointer: slot {slot}, release {release} (nothing else is served)"
            ));
        }
    }
    let code_changed = code_changed || store_lost(live.as_ref());
    match (&live, code_changed) {
        (None, _) => steps.push(format!(
            "create CloudFront Function {} ({} bytes) and publish it",
            c.name,
            c.function.size()
        )),
        (Some(_), true) => steps.push(format!(
            "update CloudFront Function {} (If-Match its ETag) and publish it",
            c.name
        )),
        (Some(_), false) => {}
    }
    match &response {
        Some((None, _)) => steps.push(format!(
            "create CloudFront Function {response_name} (viewer response: the canary cookie, noindex on previews) and publish it"
        )),
        Some((Some(_), true)) => steps.push(format!(
            "update CloudFront Function {response_name} (If-Match its ETag) and publish it"
        )),
        _ => {}
    }
    if c.policy.is_some() {
        steps.push(format!(
            "create or update response headers policy {}",
            c.name
        ));
    }
    if c.atomic.is_some() && dist.uses_cache_policy() {
        steps.push(format!(
            "create or update cache policy {} (the release in the cache key: no invalidation on a switch)",
            c.name
        ));
    }
    if dist_change.is_some() {
        steps.push(format!(
            "attach them to distribution {}'s default cache behavior (viewer request){} (If-Match its config ETag)",
            cdn.cloudfront,
            if c.errors.is_empty() { String::new() } else { ", with the 403/404 error responses".into() }
        ));
    }
    // The token secrets of `[edge.auth.jwt]`, one KeyValueStore key per key id (stale
    // ids removed): never in the function's code.
    let secrets = match &pointer {
        Some(p) => Some((auth_secrets(ec)?, p.arn.is_some())),
        None => None,
    };
    let secret_changes = match &secrets {
        Some((wanted, true)) => {
            let held: BTreeMap<String, String> = super::context::key_value_store(ec.cfg)
                .keys(crate::edge::auth::KEY_PREFIX)
                .await
                .map_err(crate::store::StoreError::from)?
                .into_iter()
                .collect();
            (held != *wanted).then(|| {
                wanted
                    .keys()
                    .chain(held.keys().filter(|k| !wanted.contains_key(*k)))
                    .filter(|k| wanted.get(*k) != held.get(*k))
                    .count()
            })
        }
        Some((wanted, false)) => (!wanted.is_empty()).then_some(wanted.len()),
        None => None,
    };
    if let (Some(n), Some((wanted, _))) = (secret_changes, &secrets) {
        steps.push(format!(
            "write the token secrets to the KeyValueStore ({n} key(s) to change; key ids now: {})",
            if wanted.is_empty() {
                "none".to_owned()
            } else {
                wanted
                    .keys()
                    .map(|k| k.trim_start_matches(crate::edge::auth::KEY_PREFIX))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    if steps.is_empty() {
        out.say(format!(
            "Edge of {env} is up to date: CloudFront Function {} is live with this code and attached.",
            c.name
        ));
        return Ok(serde_json::json!({ "result": "up-to-date" }));
    }
    out.say(format!(
        "{} publish the edge of {env}:",
        out.paint("Plan", Style::Strong)
    ));
    for s in &steps {
        out.say(format!("  - {s}"));
    }
    if !out.confirm(&format!("Publish the edge rules of {env}?"), yes)? {
        return Err(Error::Other("not confirmed; nothing was published".into()));
    }
    let lease = ec.lock("edge").await?;
    let result = publish(
        ec,
        &cf,
        c,
        (live, code_changed),
        response,
        dist,
        pointer.as_ref(),
        secrets
            .as_ref()
            .filter(|_| secret_changes.is_some())
            .map(|(w, _)| w),
    )
    .await;
    lease.release(&ec.ledger).await?;
    let arn = result?;
    let published = Published {
        function: c.name.clone(),
        sha256: c.function.digest.clone(),
        distribution: cdn.cloudfront.clone(),
        by: ec.ctx.actor.clone(),
        at: jiff::Timestamp::now(),
    };
    ec.ledger.put_state_json("edge.json", &published).await?;
    ec.journal(
        "edge-published",
        None,
        serde_json::json!({ "function": arn, "sha256": c.function.digest, "steps": steps }),
    )
    .await;
    out.say(format!("Published the edge rules of {env}: {arn}."));
    Ok(serde_json::json!({ "result": "published", "function_arn": arn, "steps": steps }))
}

/// The writes, in order: the function (created or updated, then published), the headers
/// policy, and the distribution config that attaches both.
async fn publish(
    ec: &EnvCtx<'_>,
    cf: &CloudFront,
    c: &Compiled,
    (live, code_changed): (Option<LiveFunction>, bool),
    response: Option<(Option<LiveFunction>, bool)>,
    dist: Distribution,
    pointer: Option<&PointerPlan>,
    secrets: Option<&BTreeMap<String, String>>,
) -> Result<String, Error> {
    let comment = format!("[edge] rules of driftless.toml for {}", ec.cfg.name);
    // The store and the first pointer come first: the function, once attached, reads it.
    let kvs_arn = match pointer {
        Some(p) => {
            let arn = match &p.arn {
                Some(a) => a.clone(),
                None => ensure_key_value_store(ec).await?,
            };
            if let Some((slot, release)) = &p.first {
                crate::apply::migrate::first_pointer(&ec.ledger, slot, release).await?;
            }
            // The secrets before the function that reads them.
            if let Some(wanted) = secrets {
                super::context::key_value_store(ec.cfg)
                    .sync(crate::edge::auth::KEY_PREFIX, wanted)
                    .await
                    .map_err(crate::store::StoreError::from)?;
            }
            Some(arn)
        }
        None => None,
    };
    let arn = cf
        .publish_function(
            &c.name,
            &c.function.code,
            comment,
            live,
            code_changed,
            kvs_arn.as_deref(),
        )
        .await?;
    let response_arn = match (&c.response, response) {
        (Some(f), Some((live, changed))) => Some(
            cf.publish_function(
                &format!("{}-response", c.name),
                &f.code,
                format!(
                    "the canary cookie of {}, previews never indexed (driftless)",
                    ec.cfg.name
                ),
                live,
                changed,
                kvs_arn.as_deref(),
            )
            .await?,
        ),
        _ => None,
    };
    let policy_id = match &c.policy {
        Some(p) => Some(cf.put_policy(&c.name, p).await?),
        None => None,
    };
    let release_key = match &c.atomic {
        Some(_) if dist.uses_cache_policy() => Some(
            cf.ensure_cache_policy(&c.name, crate::edge::cloudfront::RELEASE_PARAM)
                .await?,
        ),
        Some(_) => Some(String::new()),
        None => None,
    };
    if let Some(changed) = dist.with_edge(
        &arn,
        policy_id.as_deref(),
        &c.name,
        &c.errors,
        release_key
            .as_deref()
            .map(|k| (k, crate::edge::cloudfront::RELEASE_PARAM)),
        response_arn.as_deref(),
    )? {
        let again = format!("driftless edge {} --apply", ec.cfg.name);
        cf.update_distribution(changed, &again).await?;
    }
    Ok(arn)
}

/// The KeyValueStore side of publishing an atomic layout's function.
pub(super) struct PointerPlan {
    /// The store's ARN, if it exists.
    arn: Option<String>,
    /// The first pointer to write (the slot holding the live release), if there is none.
    first: Option<(String, String)>,
}

/// The KeyValueStore keys of `[edge.auth.jwt]`: `auth:KID` → the secret, read from the
/// environment variables the config names (an error names the one to set).
fn auth_secrets(ec: &EnvCtx<'_>) -> Result<BTreeMap<String, String>, Error> {
    let Some(jwt) = ec
        .ctx
        .config
        .edge
        .auth
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
    else {
        return Ok(BTreeMap::new());
    };
    Ok(jwt
        .secrets()
        .map_err(Error::Usage)?
        .into_iter()
        .map(|(kid, secret)| (format!("{}{kid}", crate::edge::auth::KEY_PREFIX), secret))
        .collect())
}

/// What publishing the function of an atomic layout needs first: the KeyValueStore,
/// and a pointer naming the live release's slot. Refuses where the function would have
/// nothing to serve: a live release still in place (not moved into a slot).
async fn pointer_plan(
    ec: &EnvCtx<'_>,
    a: &crate::edge::cloudfront::Atomic,
) -> Result<PointerPlan, Error> {
    let env = &ec.cfg.name;
    let arn = super::context::key_value_store(ec.cfg)
        .find()
        .await
        .map_err(crate::store::StoreError::from)?;
    let head = ec.ledger.head().await?.release;
    if let (Some(live), None) = (&head, &a.last_known_good) {
        return Err(Error::Refused(format!(
            "env.{env}'s live release {live} is served in place, not from a slot: a function reading the live pointer would have nothing to serve; nothing was published\n  → move it first with `driftless migrate {env} --layout atomic`, then run `driftless edge {env} --apply`"
        )));
    }
    let existing = match &arn {
        Some(_) => ec.ledger.pointer().await?,
        None => None,
    };
    let first = match existing {
        Some(_) => None,
        None => a.last_known_good.clone(),
    };
    Ok(PointerPlan { arn, first })
}

/// The environment's KeyValueStore, created if it does not exist yet (`migrate` writes
/// the pointer before a function reads it). Returns its ARN.
pub(super) async fn ensure_key_value_store(ec: &EnvCtx<'_>) -> Result<String, Error> {
    let env = &ec.cfg.name;
    let name = crate::edge::resource_name(env);
    let kvs = super::context::key_value_store(ec.cfg);
    if let Some(arn) = kvs.find().await.map_err(crate::store::StoreError::from)? {
        return Ok(arn);
    }
    let Some(cdn) = &ec.cfg.cdn else {
        return Err(Error::Usage(format!("env.{env} has no `cdn`")));
    };
    let cf = CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let arn = cf
        .create_key_value_store(&name, &format!("live pointer of driftless env {env}"))
        .await?;
    ec.ctx
        .out
        .say(format!("Created CloudFront KeyValueStore {name}."));
    Ok(arn)
}

/// A canary needs the published functions to know canaries: a function from before
/// them would serve everyone live while driftless says N% get the canary. Refused
/// (naming `edge --apply`) unless both, as CloudFront has them live, read the split and
/// set the cookie; a CloudFront that cannot be asked refuses too.
pub(crate) async fn canary_ready(ec: &EnvCtx<'_>) -> Result<(), Error> {
    let Some(cdn) = &ec.cfg.cdn else {
        return Ok(());
    };
    let env = &ec.cfg.name;
    let cf = CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let name = crate::edge::resource_name(env);
    let marker = format!("COOKIE = \"{}\"", crate::edge::CANARY_COOKIE);
    for function in [name.clone(), format!("{name}-response")] {
        let live = cf.live_function(&function).await?;
        if !live
            .and_then(|l| l.code)
            .is_some_and(|code| code.contains(&marker))
        {
            return Err(Error::Refused(format!(
                "CloudFront Function {function} as published does not split visitors for a canary (it predates canaries, or was changed by hand): everyone would get live: nothing was changed\n  → driftless edge {env} --apply"
            )));
        }
    }
    Ok(())
}

/// Edge drift of one environment, in words; `None` when driftless does not manage its
/// edge (no `cdn`, nothing published, and no function by driftless's name).
pub(crate) async fn drift(ec: &EnvCtx<'_>, c: &Compiled) -> Result<Option<(bool, String)>, Error> {
    let Some(cdn) = &ec.cfg.cdn else {
        return Ok(None);
    };
    let env = &ec.cfg.name;
    let published: Option<Published> = ec.ledger.state_json("edge.json").await?.map(|(p, _)| p);
    let cf = CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let live = cf.live_function(&c.name).await?;
    let live_code = live.as_ref().and_then(|l| l.code.as_deref());
    let live_sha = live_code.map(sha);
    // The release compiled in as the fallback moves with every deploy: not a rule.
    let same_rules = live_code.is_some_and(|l| {
        crate::edge::cloudfront::without_fallback(l)
            == crate::edge::cloudfront::without_fallback(&c.function.code)
    });
    Ok(match (live_sha, published) {
        (None, None) => None,
        (None, Some(p)) => Some((
            true,
            format!(
                "CloudFront Function {} published by {} at {} is gone from CloudFront: changed outside driftless\n  → driftless edge {env} --apply",
                p.function,
                crate::text::esc(&p.by.author),
                crate::text::short_time(p.at)
            ),
        )),
        (Some(_), _) if same_rules => Some((
            false,
            format!(
                "CloudFront Function {} is live with the rules of driftless.toml",
                c.name
            ),
        )),
        (Some(l), Some(p)) if l == p.sha256 => Some((
            true,
            format!(
                "config changed since driftless published the edge ({}, by {}): run `driftless edge {env} --apply`",
                crate::text::short_time(p.at),
                crate::text::esc(&p.by.author)
            ),
        )),
        (Some(l), p) => Some((
            true,
            format!(
                "edge rules changed outside driftless: CloudFront Function {} runs code sha256 {}…, not what driftless published{}\n  → see it with `aws cloudfront get-function --name {}`; `driftless edge {env} --apply` puts the config's rules back",
                c.name,
                &l[..12],
                p.map(|p| format!(
                    " ({}… at {})",
                    &p.sha256[..12],
                    crate::text::short_time(p.at)
                ))
                .unwrap_or_default(),
                c.name
            ),
        )),
    })
}
