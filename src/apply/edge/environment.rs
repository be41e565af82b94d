//! `driftless edge ENV --apply`: what is the environment's at CloudFront, not a
//! release's — the functions (created or updated with `If-Match` on their ETags, then
//! published), the KeyValueStore and what it holds before the function reads it (the
//! first pointer, each held release's rules, the token secrets), the policies, the
//! signed-cookie signer and behaviors, and the distribution config that attaches them
//! (`If-Match` on its ETag) — planned first (nothing written), then written in that
//! order; and edge drift: which side moved since driftless last published.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Env;
use crate::Error;
use crate::apply::Report;
use crate::aws::cloudfront::{CloudFront, Distribution, LiveFunction};
use crate::edge::Compiled;

/// What driftless last published, kept in the environment's state (`edge.json`): edge
/// drift is judged against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Published {
    pub(crate) function: String,
    pub(crate) sha256: String,
    pub(crate) distribution: String,
    pub(crate) by: crate::ledger::Actor,
    pub(crate) at: jiff::Timestamp,
    /// The cache behaviors driftless made for `[edge.auth]` signed cookies (their path
    /// patterns): replaced by the next publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) behaviors: Vec<String>,
    /// The driftless version that compiled the functions (their code is its).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) version: String,
    /// The environment-level features the functions were compiled with ([`features`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) features: Vec<String>,
}

/// The environment-level settings the functions' code depends on, by name: what `status`
/// names when one is switched on or off since the last `edge --apply`.
fn features(e: &Env<'_>, c: &Compiled) -> Vec<String> {
    let edge = &e.config.edge;
    let mut out = Vec::new();
    let mut on = |yes: bool, name: &str| {
        if yes {
            out.push(name.to_owned());
        }
    };
    on(c.atomic.is_some(), "the atomic layout");
    on(
        c.atomic.as_ref().is_some_and(|a| a.preview_host.is_some()),
        "previews (preview_url)",
    );
    on(edge.basic_auth.is_some(), "[edge.basic_auth]");
    on(edge.jwt().is_some(), "[edge.auth.jwt]");
    on(edge.jwt().is_some_and(|j| j.cwt), "CWT tokens");
    on(
        edge.signed_cookies().is_some(),
        "[edge.auth.signed_cookies]",
    );
    on(c.policy.is_some(), "a response headers policy");
    on(!c.errors.is_empty(), "custom error responses (not_found)");
    out
}

fn sha(code: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(code.as_bytes()))
}

/// What `edge --apply` would do, as read from CloudFront and the environment's state, and
/// what doing it needs.
pub(crate) struct Plan {
    cf: CloudFront,
    /// The steps in words, in the order they are written; none when the edge is up to
    /// date.
    pub(crate) steps: Vec<String>,
    live: Option<LiveFunction>,
    code_changed: bool,
    /// The live function differs from the compiled one only in the release it falls
    /// back to (which follows every deploy): updating it is not needed.
    fallback_only: bool,
    response: Option<(Option<LiveFunction>, bool)>,
    dist: Distribution,
    protection: Option<Protection>,
    previous: Vec<String>,
    pointer: Option<PointerPlan>,
}

/// Plan publishing `c` to the environment's distribution: nothing is written.
pub(crate) async fn plan(e: &Env<'_>, c: &Compiled) -> Result<Plan, Error> {
    let env = &e.cfg.name;
    let Some(cdn) = &e.cfg.cdn else {
        return Err(Error::Usage(format!(
            "env.{env} has no `cdn`: add `cdn = {{ cloudfront = \"E…\" }}` to publish the edge rules, or use `--export DIR`"
        )));
    };
    let cf = CloudFront::connect(&cdn.cloudfront, e.cfg.profile.as_deref()).await;
    let live = cf.live_function(&c.name).await?;
    let dist = cf.distribution().await?;
    let mut pointer = match &c.atomic {
        Some(a) => Some(pointer_plan(e, a).await?),
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
    // Headers that now come with each release: driftless's own policy comes off.
    // (Only asked when the behavior has a policy: CloudFront emulators may not know them.)
    let own_policy = match (&c.atomic, &c.policy, dist.headers_policy_id()) {
        (Some(_), None, Some(_)) => cf.find_policy(&c.name).await?.map(|(id, _)| id),
        _ => None,
    };
    let dist_change = match &own_policy {
        Some(id) => match dist_change.as_ref().unwrap_or(&dist).without_policy(id) {
            Some(d) => {
                steps.push(format!(
                    "detach response headers policy {}: each release's [edge] headers are added by the viewer-response function, so they switch and roll back with it",
                    c.name
                ));
                Some(d)
            }
            None => dist_change,
        },
        None => dist_change,
    };
    // `[edge.auth.signed_cookies]`: the public key and key group CloudFront verifies
    // with, trusted by a cache behavior per protected pattern.
    let protection = protection(e).await?;
    let signer = match &protection {
        Some(p) => cf.find_signer(&p.name).await?,
        None => None,
    };
    if let (Some(p), None) = (&protection, &signer) {
        steps.push(format!(
            "create CloudFront public key and key group {} (the public key of [edge.auth.signed_cookies])",
            p.name
        ));
    }
    let previous = previous_behaviors(e).await?;
    let group_guess = protection
        .as_ref()
        .map(|_| signer.as_ref().map_or("(new)", |s| s.key_group.as_str()));
    let (protect, public) = protected_globs(e);
    let behaviors_change = dist_change.as_ref().unwrap_or(&dist).with_protected(
        &protect,
        &public,
        group_guess,
        &previous,
    )?;
    if let Some(d) = &behaviors_change {
        steps.push(format!(
            "set the distribution's cache behaviors for [edge.auth]: {}",
            describe_behaviors(&d.behaviors(), &previous, group_guess)
        ));
    }
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
        if p.backfill > 0 {
            steps.push(format!(
                "write the [edge] rules of {} release(s) the slots and previews hold to the KeyValueStore, and name them in their pointers (from here on each release's rules go live with it)",
                p.backfill
            ));
        }
    }
    let fallback_only = !store_lost(live.as_ref())
        && live
            .as_ref()
            .and_then(|l| l.code.as_deref())
            .is_some_and(|l| {
                crate::edge::cloudfront::without_fallback(l)
                    == crate::edge::cloudfront::without_fallback(&c.function.code)
            });
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
        Some(p) => Some((auth_secrets(e)?, p.arn.is_some())),
        None => None,
    };
    let secret_changes = match &secrets {
        Some((wanted, true)) => {
            let held: BTreeMap<String, String> = super::key_value_store(e.cfg)
                .keys(crate::edge::auth::KEY_PREFIX)
                .await
                .map_err(crate::store::StoreError::from)?
                .into_iter()
                .collect();
            let keys: std::collections::BTreeSet<&String> =
                wanted.keys().chain(held.keys()).collect();
            let n = keys
                .into_iter()
                .filter(|k| wanted.get(*k) != held.get(*k))
                .count();
            (n > 0).then_some(n)
        }
        Some((wanted, false)) => (!wanted.is_empty()).then_some(wanted.len()),
        None => None,
    };
    if let (Some(p), Some(_), Some((wanted, _))) = (&mut pointer, secret_changes, &secrets) {
        p.secrets = Some(wanted.clone());
    }
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
    Ok(Plan {
        cf,
        steps,
        live,
        code_changed,
        fallback_only,
        response,
        dist,
        protection,
        previous,
        pointer,
    })
}

impl Plan {
    /// The steps that are needed, not a refresh: all but an update of the function whose
    /// only change is the release it falls back to.
    pub(crate) fn needed(&self, c: &Compiled) -> Vec<&str> {
        let refresh = format!("update CloudFront Function {} (If-Match", c.name);
        self.steps
            .iter()
            .map(String::as_str)
            .filter(|s| !(self.fallback_only && s.starts_with(&refresh)))
            .collect()
    }

    /// The writes, in the order the module's overview gives, under the environment's
    /// lock; then what was published is kept in the environment's state (`edge.json`).
    /// Returns the function's ARN.
    pub(crate) async fn execute(
        self,
        e: &Env<'_>,
        c: &Compiled,
        by: &crate::ledger::Actor,
        out: &dyn Report,
    ) -> Result<String, Error> {
        let (arn, behaviors) = publish(e, c, self, out).await?;
        let distribution = e
            .cfg
            .cdn
            .as_ref()
            .map(|d| d.cloudfront.clone())
            .unwrap_or_default();
        let published = Published {
            function: c.name.clone(),
            sha256: c.function.digest.clone(),
            distribution,
            by: by.clone(),
            at: jiff::Timestamp::now(),
            behaviors,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            features: features(e, c),
        };
        e.ledger.put_state_json("edge.json", &published).await?;
        Ok(arn)
    }
}

/// The writes, in order: the function (created or updated, then published), the headers
/// policy, and the distribution config that attaches both.
async fn publish(
    e: &Env<'_>,
    c: &Compiled,
    plan: Plan,
    out: &dyn Report,
) -> Result<(String, Vec<String>), Error> {
    let Plan {
        cf,
        live,
        code_changed,
        response,
        dist,
        protection,
        previous,
        pointer,
        ..
    } = plan;
    let (cf, protection, previous, pointer) = (
        &cf,
        protection.as_ref(),
        previous.as_slice(),
        pointer.as_ref(),
    );
    let comment = format!("[edge] rules of driftless.toml for {}", e.cfg.name);
    // The store and the first pointer come first: the function, once attached, reads it.
    let kvs_arn = match pointer {
        Some(p) => {
            let arn = match &p.arn {
                Some(a) => a.clone(),
                None => ensure_key_value_store(e, out).await?,
            };
            if let Some((slot, release)) = &p.first {
                crate::apply::migrate::first_pointer(e.ledger, slot, release).await?;
            }
            // Each release's rules beside the pointer before the function that reads
            // them from it.
            if p.backfill > 0 || p.first.is_some() {
                super::backfill(e.ledger, &crate::config::EdgeRules::of(&e.config.edge)).await?;
            }
            // The secrets before the function that reads them.
            if let Some(wanted) = &p.secrets {
                super::key_value_store(e.cfg)
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
                    e.cfg.name
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
    let signer = match protection {
        Some(p) => Some(cf.ensure_signer(&p.name, &p.pem).await?),
        None => None,
    };
    let edged = dist.with_edge(
        &arn,
        policy_id.as_deref(),
        &c.name,
        &c.errors,
        release_key
            .as_deref()
            .map(|k| (k, crate::edge::cloudfront::RELEASE_PARAM)),
        response_arn.as_deref(),
    )?;
    // Each release's headers come with it (the viewer-response function): driftless's
    // own policy comes off the behavior.
    // (Only asked when the behavior has a policy: CloudFront emulators may not know them.)
    let own_policy = match (&c.atomic, &c.policy, dist.headers_policy_id()) {
        (Some(_), None, Some(_)) => cf.find_policy(&c.name).await?.map(|(id, _)| id),
        _ => None,
    };
    let edged = match &own_policy {
        Some(id) => edged.as_ref().unwrap_or(&dist).without_policy(id).or(edged),
        None => edged,
    };
    let (protect, public) = protected_globs(e);
    let base = edged.as_ref().unwrap_or(&dist);
    let guarded = base.with_protected(
        &protect,
        &public,
        signer.as_ref().map(|s| s.key_group.as_str()),
        previous,
    )?;
    let behaviors: Vec<String> = guarded
        .as_ref()
        .unwrap_or(base)
        .behaviors()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            signer.is_some()
                && protect
                    .iter()
                    .chain(&public)
                    .any(|g| crate::aws::cloudfront::path_patterns(g).contains(p))
        })
        .collect();
    if let Some(changed) = guarded.or(edged) {
        let again = format!("driftless edge {} --apply", e.cfg.name);
        cf.update_distribution(changed, &again).await?;
    }
    Ok((arn, behaviors))
}

/// `[edge.auth.signed_cookies]` of an environment: the signer's CloudFront name and the
/// public key it holds.
pub(crate) struct Protection {
    pub(crate) name: String,
    pub(crate) pem: String,
}

/// The signer `[edge.auth.signed_cookies]` asks for, its public key read from the file.
pub(crate) async fn protection(e: &Env<'_>) -> Result<Option<Protection>, Error> {
    let Some((pem, _)) = signed_public_key(e.config)? else {
        return Ok(None);
    };
    Ok(Some(Protection {
        name: crate::aws::cloudfront::signer_name(&crate::edge::resource_name(&e.cfg.name), &pem),
        pem,
    }))
}

/// `[edge.auth.signed_cookies]`'s public key, as PEM and parsed, from the file the config
/// names (an error says how to make it).
pub(crate) fn signed_public_key(
    config: &crate::config::Config,
) -> Result<Option<(String, rsa::RsaPublicKey)>, Error> {
    let Some(signed) = config.edge.signed_cookies() else {
        return Ok(None);
    };
    let path = config.dir.join(&signed.public_key);
    let pem = fs_err::read_to_string(&path).map_err(|e| {
        Error::Usage(format!(
            "edge.auth.signed_cookies.public_key: {e}\n  → openssl rsa -pubout -in private_key.pem -out {}",
            signed.public_key
        ))
    })?;
    let key = crate::edge::signed::public_key(&pem)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok(Some((pem, key)))
}

/// `[edge.auth]`'s protect and public patterns, when signed cookies check them.
fn protected_globs(e: &Env<'_>) -> (Vec<String>, Vec<String>) {
    match &e.config.edge.auth {
        Some(a) if a.signed_cookies.is_some() => (a.protect.clone(), a.public.clone()),
        _ => (Vec::new(), Vec::new()),
    }
}

/// The cache behaviors the last publish made for signed cookies.
async fn previous_behaviors(e: &Env<'_>) -> Result<Vec<String>, Error> {
    Ok(e.ledger
        .state_json::<Published>("edge.json")
        .await?
        .map(|(p, _)| p.behaviors)
        .unwrap_or_default())
}

/// The behaviors in words: "/app/* and /app trust key group G (before them /app/login
/// trusts none)".
fn describe_behaviors(
    all: &[(String, Vec<String>)],
    previous: &[String],
    group: Option<&str>,
) -> String {
    let Some(group) = group else {
        return format!("remove {}", previous.join(", "));
    };
    let trusted: Vec<&str> = all
        .iter()
        .filter(|(_, g)| g.iter().any(|x| x == group))
        .map(|(p, _)| p.as_str())
        .collect();
    let open: Vec<&str> = all
        .iter()
        .take_while(|(_, g)| !g.iter().any(|x| x == group))
        .map(|(p, _)| p.as_str())
        .collect();
    format!(
        "{} trust key group {group}{}",
        trusted.join(", "),
        if open.is_empty() {
            String::new()
        } else {
            format!(" (before them, open: {})", open.join(", "))
        }
    )
}

/// The KeyValueStore side of publishing an atomic layout's function.
pub(crate) struct PointerPlan {
    /// The store's ARN, if it exists.
    arn: Option<String>,
    /// The first pointer to write (the slot holding the live release), if there is none.
    first: Option<(String, String)>,
    /// The token secrets' keys to make the store hold, when they differ.
    secrets: Option<BTreeMap<String, String>>,
    /// Releases the slots and previews hold whose rules the edge does not have yet
    /// (an environment moving to per-release rules).
    backfill: usize,
}

/// The KeyValueStore keys of `[edge.auth.jwt]`: `auth:KID` → the secret, read from the
/// environment variables the config names (an error names the one to set).
fn auth_secrets(e: &Env<'_>) -> Result<BTreeMap<String, String>, Error> {
    let Some(jwt) = e.config.edge.jwt() else {
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
    e: &Env<'_>,
    a: &crate::edge::cloudfront::Atomic,
) -> Result<PointerPlan, Error> {
    let env = &e.cfg.name;
    let arn = super::key_value_store(e.cfg)
        .find()
        .await
        .map_err(crate::store::StoreError::from)?;
    let head = e.ledger.head().await?.release;
    if let (Some(live), None) = (&head, &a.last_known_good) {
        return Err(Error::Refused(format!(
            "env.{env}'s live release {live} is served in place, not from a slot: a function reading the live pointer would have nothing to serve; nothing was published\n  → move it first with `driftless migrate {env} --layout atomic`, then run `driftless edge {env} --apply`"
        )));
    }
    let existing = match &arn {
        Some(_) => e.ledger.pointer().await?,
        None => None,
    };
    let first = match existing {
        Some(_) => None,
        None => a.last_known_good.clone(),
    };
    // What the slots and previews hold without their edge data (a first pointer names
    // a slot without any).
    let (slots, _) = e.ledger.slots().await?;
    let (previews, _) = e.ledger.previews().await?;
    let backfill = crate::ledger::SLOTS
        .iter()
        .filter_map(|s| slots.get(s))
        .filter(|h| h.complete && h.edge.is_none())
        .count()
        + previews
            .0
            .values()
            .filter(|p| p.complete && p.edge.is_none())
            .count();
    Ok(PointerPlan {
        arn,
        first,
        secrets: None,
        backfill,
    })
}

/// The environment's KeyValueStore, created if it does not exist yet (`migrate` writes
/// the pointer before a function reads it). Returns its ARN.
pub(crate) async fn ensure_key_value_store(e: &Env<'_>, out: &dyn Report) -> Result<String, Error> {
    let env = &e.cfg.name;
    let name = crate::edge::resource_name(env);
    let kvs = super::key_value_store(e.cfg);
    if let Some(arn) = kvs.find().await.map_err(crate::store::StoreError::from)? {
        return Ok(arn);
    }
    let Some(cdn) = &e.cfg.cdn else {
        return Err(Error::Usage(format!("env.{env} has no `cdn`")));
    };
    let cf = CloudFront::connect(&cdn.cloudfront, e.cfg.profile.as_deref()).await;
    let arn = cf
        .create_key_value_store(&name, &format!("live pointer of driftless env {env}"))
        .await?;
    out.say(format!("Created CloudFront KeyValueStore {name}."));
    Ok(arn)
}

/// A canary needs the published functions to know canaries: a function from before
/// them would serve everyone live while driftless says N% get the canary. Refused
/// (naming `edge --apply`) unless both, as CloudFront has them live, read the split and
/// set the cookie; a CloudFront that cannot be asked refuses too.
pub(crate) async fn canary_ready(e: &Env<'_>) -> Result<(), Error> {
    let Some(cdn) = &e.cfg.cdn else {
        return Ok(());
    };
    let env = &e.cfg.name;
    let cf = CloudFront::connect(&cdn.cloudfront, e.cfg.profile.as_deref()).await;
    let name = crate::edge::resource_name(env);
    // Spaces aside: the viewer-request function is published compacted.
    let marker = format!("COOKIE=\"{}\"", crate::edge::CANARY_COOKIE);
    for function in [name.clone(), format!("{name}-response")] {
        let live = cf.live_function(&function).await?;
        if !live
            .and_then(|l| l.code)
            .is_some_and(|code| code.replace(' ', "").contains(&marker))
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
pub(crate) async fn drift(e: &Env<'_>, c: &Compiled) -> Result<Option<(bool, String)>, Error> {
    let Some(cdn) = &e.cfg.cdn else {
        return Ok(None);
    };
    let env = &e.cfg.name;
    let published: Option<Published> = e.ledger.state_json("edge.json").await?.map(|(p, _)| p);
    let cf = CloudFront::connect(&cdn.cloudfront, e.cfg.profile.as_deref()).await;
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
        (Some(_), _) if same_rules => Some(match plan(e, c).await {
            Ok(plan) if plan.needed(c).is_empty() => (
                false,
                format!(
                    "CloudFront Function {} is live with the rules of driftless.toml",
                    c.name
                ),
            ),
            Ok(plan) => (
                true,
                format!(
                    "the environment's settings at CloudFront changed: `driftless edge {env} --apply` would {}",
                    plan.needed(c).join("; ")
                ),
            ),
            Err(err) => (
                true,
                format!("could not tell whether `driftless edge {env} --apply` is needed: {err}"),
            ),
        }),
        (Some(l), Some(p)) if l == p.sha256 => {
            let now = features(e, c);
            let mut why = Vec::new();
            let version = env!("CARGO_PKG_VERSION");
            if !p.version.is_empty() && p.version != version {
                why.push(format!(
                    "driftless {version} makes other function code than {} did",
                    p.version
                ));
            }
            if !p.version.is_empty() {
                for f in now.iter().filter(|f| !p.features.contains(f)) {
                    why.push(format!("{f} switched on"));
                }
                for f in p.features.iter().filter(|f| !now.contains(f)) {
                    why.push(format!("{f} switched off"));
                }
            }
            if why.is_empty() {
                why.push(if c.atomic.is_some() {
                    "an environment-level [edge] setting changed (auth, previews, basic auth, what is never served)".to_owned()
                } else {
                    "the [edge] rules changed (in place they go live by `edge --apply`, not with a release)".to_owned()
                });
            }
            Some((
                true,
                format!(
                    "`driftless edge {env} --apply` needed: {} (last published {}, by {})",
                    why.join("; "),
                    crate::text::short_time(p.at),
                    crate::text::esc(&p.by.author)
                ),
            ))
        }
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
