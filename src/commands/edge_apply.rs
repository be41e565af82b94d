//! `driftless edge ENV --apply`: publish the compiled `[edge]` through the CloudFront
//! API — the function created or updated with `If-Match` on its ETag and published, the
//! headers policy created or updated, both attached to the distribution's default cache
//! behavior with the custom error responses, `If-Match` on the distribution config — and
//! edge drift: which side moved since driftless last published.

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{
    CustomErrorResponse, CustomErrorResponses, DistributionConfig, EventType, FunctionAssociation,
    FunctionAssociations, FunctionConfig, FunctionRuntime, FunctionStage,
};
use serde::{Deserialize, Serialize};

use super::EnvCtx;
use super::edge::Compiled;
use crate::Error;
use crate::output::Style;

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

fn failed(what: &str, e: &impl ProvideErrorMetadata) -> Error {
    Error::Other(format!(
        "CloudFront {what} failed: {}",
        e.message()
            .or(e.code())
            .unwrap_or("no answer (see `driftless status` for the identity and endpoint)")
    ))
}

use aws_sdk_cloudfront::error::ProvideErrorMetadata;

/// The function as CloudFront has it: its ETag (DEVELOPMENT stage) and LIVE code.
struct Live {
    etag: String,
    code: Option<String>,
    arn: String,
}

async fn live_function(client: &Client, name: &str) -> Result<Option<Live>, Error> {
    let described = match client.describe_function().name(name).send().await {
        Ok(d) => d,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_function_exists()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(failed("DescribeFunction", &e)),
    };
    let arn = described
        .function_summary()
        .and_then(|s| s.function_metadata())
        .map(|m| m.function_arn().to_owned())
        .unwrap_or_default();
    let code = match client
        .get_function()
        .name(name)
        .stage(FunctionStage::Live)
        .send()
        .await
    {
        Ok(g) => g
            .function_code()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_function_exists()) =>
        {
            None
        }
        Err(e) => return Err(failed("GetFunction", &e)),
    };
    Ok(Some(Live {
        etag: described.e_tag().unwrap_or_default().to_owned(),
        code,
        arn,
    }))
}

fn sha(code: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(code.as_bytes()))
}

/// The distribution config with the function, policy and error responses of `c`
/// attached; `None` when it already has them. Refuses to replace another viewer-request
/// function.
fn attached(
    mut cfg: DistributionConfig,
    arn: &str,
    policy_id: Option<&str>,
    c: &Compiled,
) -> Result<Option<DistributionConfig>, Error> {
    let before = cfg.clone();
    let dcb = cfg
        .default_cache_behavior
        .as_mut()
        .ok_or_else(|| Error::Other("the distribution has no default cache behavior".into()))?;
    let mut items: Vec<FunctionAssociation> = dcb
        .function_associations
        .as_ref()
        .and_then(|f| f.items.clone())
        .unwrap_or_default();
    if let Some(other) = items.iter().find(|a| {
        a.event_type == EventType::ViewerRequest
            && !a.function_arn.ends_with(&format!("/{}", c.name))
    }) {
        return Err(Error::Refused(format!(
            "the distribution's default cache behavior runs another viewer-request function ({}); driftless will not replace it\n  → detach it (or fold its logic into [edge]) and run `driftless edge ENV --apply` again",
            other.function_arn
        )));
    }
    items.retain(|a| a.event_type != EventType::ViewerRequest);
    items.push(
        FunctionAssociation::builder()
            .function_arn(arn)
            .event_type(EventType::ViewerRequest)
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    dcb.function_associations = Some(
        FunctionAssociations::builder()
            .quantity(i32::try_from(items.len()).unwrap_or(i32::MAX))
            .set_items(Some(items))
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    if let Some(id) = policy_id {
        dcb.response_headers_policy_id = Some(id.to_owned());
    }
    if !c.errors.is_empty() {
        let mut errs: Vec<CustomErrorResponse> = cfg
            .custom_error_responses
            .as_ref()
            .and_then(|e| e.items.clone())
            .unwrap_or_default();
        errs.retain(|e| e.error_code != 403 && e.error_code != 404);
        for e in &c.errors {
            errs.push(
                CustomErrorResponse::builder()
                    .error_code(
                        e["ErrorCode"]
                            .as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .unwrap_or(404),
                    )
                    .response_page_path(e["ResponsePagePath"].as_str().unwrap_or_default())
                    .response_code(e["ResponseCode"].as_str().unwrap_or("404"))
                    .error_caching_min_ttl(e["ErrorCachingMinTTL"].as_i64().unwrap_or(10))
                    .build()
                    .map_err(|e| Error::Other(e.to_string()))?,
            );
        }
        errs.sort_by_key(|e| e.error_code);
        cfg.custom_error_responses = Some(
            CustomErrorResponses::builder()
                .quantity(i32::try_from(errs.len()).unwrap_or(i32::MAX))
                .set_items(Some(errs))
                .build()
                .map_err(|e| Error::Other(e.to_string()))?,
        );
    }
    Ok((cfg != before).then_some(cfg))
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
    let cf = crate::cdn::CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let client = cf.client();
    let live = live_function(client, &c.name).await?;
    let got = client
        .get_distribution_config()
        .id(&cdn.cloudfront)
        .send()
        .await
        .map_err(|e| failed("GetDistributionConfig", &e))?;
    let dist_etag = got.e_tag().unwrap_or_default().to_owned();
    let dist_cfg = got
        .distribution_config
        .ok_or_else(|| Error::Other("GetDistributionConfig returned no config".into()))?;
    let code_changed = live
        .as_ref()
        .and_then(|l| l.code.as_deref())
        .is_none_or(|code| sha(code) != c.function.digest);
    // The policy is attached by id, which exists only once created: plan with a marker.
    let policy_id = match &c.policy {
        Some(_) => Some(
            find_policy(client, &c.name)
                .await?
                .map_or_else(|| "(new)".to_owned(), |(id, _)| id),
        ),
        None => None,
    };
    let arn_guess = live.as_ref().map_or_else(
        || format!("arn:aws:cloudfront::(account):function/{}", c.name),
        |l| l.arn.clone(),
    );
    let dist_change = attached(dist_cfg.clone(), &arn_guess, policy_id.as_deref(), c)?;
    let mut steps = Vec::new();
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
    if c.policy.is_some() {
        steps.push(format!(
            "create or update response headers policy {}",
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
        client,
        c,
        live,
        code_changed,
        &cdn.cloudfront,
        dist_cfg,
        &dist_etag,
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
    ec.ledger
        .journal(
            &ec.ctx.actor,
            "edge-published",
            None,
            serde_json::json!({ "function": arn, "sha256": c.function.digest, "steps": steps }),
        )
        .await;
    out.say(format!("Published the edge rules of {env}: {arn}."));
    Ok(serde_json::json!({ "result": "published", "function_arn": arn, "steps": steps }))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the steps in order"
)]
async fn publish(
    ec: &EnvCtx<'_>,
    client: &Client,
    c: &Compiled,
    live: Option<Live>,
    code_changed: bool,
    distribution: &str,
    dist_cfg: DistributionConfig,
    dist_etag: &str,
) -> Result<String, Error> {
    let config = FunctionConfig::builder()
        .comment(format!(
            "[edge] rules of driftless.toml for {}",
            ec.cfg.name
        ))
        .runtime(FunctionRuntime::CloudfrontJs20)
        .build()
        .map_err(|e| Error::Other(e.to_string()))?;
    let code = Blob::new(c.function.code.as_bytes());
    let (etag, arn) = match live {
        None => {
            let made = client
                .create_function()
                .name(&c.name)
                .function_config(config)
                .function_code(code)
                .send()
                .await
                .map_err(|e| failed("CreateFunction", &e))?;
            let arn = made
                .function_summary()
                .and_then(|s| s.function_metadata())
                .map(|m| m.function_arn().to_owned())
                .unwrap_or_default();
            (made.e_tag().unwrap_or_default().to_owned(), arn)
        }
        Some(l) if code_changed => {
            let updated = client
                .update_function()
                .name(&c.name)
                .if_match(&l.etag)
                .function_config(config)
                .function_code(code)
                .send()
                .await
                .map_err(|e| failed("UpdateFunction (If-Match)", &e))?;
            (updated.e_tag().unwrap_or_default().to_owned(), l.arn)
        }
        Some(l) => (String::new(), l.arn),
    };
    if !etag.is_empty() {
        client
            .publish_function()
            .name(&c.name)
            .if_match(&etag)
            .send()
            .await
            .map_err(|e| failed("PublishFunction (If-Match)", &e))?;
    }
    let policy_id = match &c.policy {
        Some(p) => Some(put_policy(client, &c.name, p).await?),
        None => None,
    };
    if let Some(cfg) = attached(dist_cfg, &arn, policy_id.as_deref(), c)? {
        client
            .update_distribution()
            .id(distribution)
            .if_match(dist_etag)
            .distribution_config(cfg)
            .send()
            .await
            .map_err(|e| {
                if e.code() == Some("PreconditionFailed") {
                    Error::Refused(format!(
                        "distribution {distribution} changed since driftless read it; nothing of it was changed\n  → run `driftless edge {} --apply` again",
                        ec.cfg.name
                    ))
                } else {
                    failed("UpdateDistribution (If-Match)", &e)
                }
            })?;
    }
    Ok(arn)
}

/// The custom response headers policy named `name`: its id and ETag.
async fn find_policy(client: &Client, name: &str) -> Result<Option<(String, String)>, Error> {
    use aws_sdk_cloudfront::types::ResponseHeadersPolicyType;
    let list = client
        .list_response_headers_policies()
        .r#type(ResponseHeadersPolicyType::Custom)
        .send()
        .await
        .map_err(|e| failed("ListResponseHeadersPolicies", &e))?;
    let found = list
        .response_headers_policy_list()
        .and_then(|l| l.items.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|s| s.response_headers_policy.as_ref())
        .find(|p| {
            p.response_headers_policy_config
                .as_ref()
                .is_some_and(|c| c.name == name)
        })
        .map(|p| p.id.clone());
    let Some(id) = found else { return Ok(None) };
    let got = client
        .get_response_headers_policy_config()
        .id(&id)
        .send()
        .await
        .map_err(|e| failed("GetResponseHeadersPolicyConfig", &e))?;
    Ok(Some((id, got.e_tag().unwrap_or_default().to_owned())))
}

/// Create or update (If-Match) the policy; returns its id.
async fn put_policy(client: &Client, name: &str, p: &serde_json::Value) -> Result<String, Error> {
    let config = policy_config(name, p)?;
    match find_policy(client, name).await? {
        Some((id, etag)) => {
            client
                .update_response_headers_policy()
                .id(&id)
                .if_match(etag)
                .response_headers_policy_config(config)
                .send()
                .await
                .map_err(|e| failed("UpdateResponseHeadersPolicy (If-Match)", &e))?;
            Ok(id)
        }
        None => {
            let made = client
                .create_response_headers_policy()
                .response_headers_policy_config(config)
                .send()
                .await
                .map_err(|e| failed("CreateResponseHeadersPolicy", &e))?;
            Ok(made
                .response_headers_policy()
                .map(|p| p.id.clone())
                .unwrap_or_default())
        }
    }
}

/// The SDK's `ResponseHeadersPolicyConfig` from the API JSON [`headers_policy`] made.
///
/// [`headers_policy`]: crate::edge::cloudfront::headers_policy
fn policy_config(
    name: &str,
    p: &serde_json::Value,
) -> Result<aws_sdk_cloudfront::types::ResponseHeadersPolicyConfig, Error> {
    use aws_sdk_cloudfront::types as t;
    let bad = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
    let mut b = t::ResponseHeadersPolicyConfig::builder()
        .name(name)
        .comment(p["Comment"].as_str().unwrap_or_default());
    if let Some(s) = p.get("SecurityHeadersConfig") {
        let mut sb = t::ResponseHeadersPolicySecurityHeadersConfig::builder();
        if let Some(h) = s.get("StrictTransportSecurity") {
            sb = sb.strict_transport_security(
                t::ResponseHeadersPolicyStrictTransportSecurity::builder()
                    .r#override(true)
                    .access_control_max_age_sec(
                        i32::try_from(h["AccessControlMaxAgeSec"].as_u64().unwrap_or(0))
                            .unwrap_or(i32::MAX),
                    )
                    .include_subdomains(h["IncludeSubdomains"].as_bool().unwrap_or(false))
                    .preload(h["Preload"].as_bool().unwrap_or(false))
                    .build()
                    .map_err(bad)?,
            );
        }
        if s.get("ContentTypeOptions").is_some() {
            sb = sb.content_type_options(
                t::ResponseHeadersPolicyContentTypeOptions::builder()
                    .r#override(true)
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("FrameOptions") {
            sb = sb.frame_options(
                t::ResponseHeadersPolicyFrameOptions::builder()
                    .r#override(true)
                    .frame_option(t::FrameOptionsList::from(
                        h["FrameOption"].as_str().unwrap_or("DENY"),
                    ))
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("ReferrerPolicy") {
            sb = sb.referrer_policy(
                t::ResponseHeadersPolicyReferrerPolicy::builder()
                    .r#override(true)
                    .referrer_policy(t::ReferrerPolicyList::from(
                        h["ReferrerPolicy"].as_str().unwrap_or("no-referrer"),
                    ))
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("ContentSecurityPolicy") {
            sb = sb.content_security_policy(
                t::ResponseHeadersPolicyContentSecurityPolicy::builder()
                    .r#override(true)
                    .content_security_policy(
                        h["ContentSecurityPolicy"].as_str().unwrap_or_default(),
                    )
                    .build()
                    .map_err(bad)?,
            );
        }
        if let Some(h) = s.get("XSSProtection") {
            let mut xb = t::ResponseHeadersPolicyXssProtection::builder()
                .r#override(true)
                .protection(h["Protection"].as_bool().unwrap_or(false))
                .mode_block(h["ModeBlock"].as_bool().unwrap_or(false));
            if let Some(u) = h["ReportUri"].as_str() {
                xb = xb.report_uri(u);
            }
            sb = sb.xss_protection(xb.build().map_err(bad)?);
        }
        b = b.security_headers_config(sb.build());
    }
    if let Some(items) = p["CustomHeadersConfig"]["Items"].as_array() {
        let mut cb = t::ResponseHeadersPolicyCustomHeadersConfig::builder()
            .quantity(i32::try_from(items.len()).unwrap_or(i32::MAX));
        for i in items {
            cb = cb.items(
                t::ResponseHeadersPolicyCustomHeader::builder()
                    .header(i["Header"].as_str().unwrap_or_default())
                    .value(i["Value"].as_str().unwrap_or_default())
                    .r#override(true)
                    .build()
                    .map_err(bad)?,
            );
        }
        b = b.custom_headers_config(cb.build().map_err(bad)?);
    }
    b.build().map_err(bad)
}

/// Edge drift of one environment, in words; `None` when driftless does not manage its
/// edge (no `cdn`, nothing published, and no function by driftless's name).
pub(crate) async fn drift(ec: &EnvCtx<'_>, c: &Compiled) -> Result<Option<(bool, String)>, Error> {
    let Some(cdn) = &ec.cfg.cdn else {
        return Ok(None);
    };
    let env = &ec.cfg.name;
    let published: Option<Published> = ec.ledger.state_json("edge.json").await?.map(|(p, _)| p);
    let cf = crate::cdn::CloudFront::connect(&cdn.cloudfront, ec.cfg.profile.as_deref()).await;
    let live = live_function(cf.client(), &c.name).await?;
    let live_sha = live.as_ref().and_then(|l| l.code.as_deref()).map(sha);
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
        (Some(l), _) if l == c.function.digest => Some((
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
