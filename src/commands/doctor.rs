//! `driftless doctor ENV`: audit what a deploy relies on — the bucket (reachable,
//! conditional writes honoured, public access blocked, only CloudFront may read, the
//! site and state not readable anonymously, versioning, encryption), the distribution
//! (enabled and deployed, this bucket as origin, HTTPS, compression, TLS minimum, no
//! 403/404 → 200 trap, the driftless edge attached), the URL (DNS, HTTP → HTTPS, HSTS),
//! monitoring (alarms on the error rates) and the identity. One line per check with
//! what was seen and how to fix it; exit 1 on any failure.

use serde::Serialize;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::config::StoreUrl;
use crate::output::Style;
use crate::text::esc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) level: Level,
    pub(crate) seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fix: Option<String>,
}

fn pass(id: &'static str, seen: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Pass,
        seen: seen.into(),
        fix: None,
    }
}

fn warn(id: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Warn,
        seen: seen.into(),
        fix: Some(fix.into()),
    }
}

fn fail(id: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Fail,
        seen: seen.into(),
        fix: Some(fix.into()),
    }
}

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
        cdn_checks(&ec, &cdn.cloudfront, &mut checks).await;
        monitoring_checks(&ec, &cdn.cloudfront, &mut checks).await;
    }
    if let Some(url) = &ec.cfg.url {
        url_checks(url, &mut checks).await;
    }
    let (_, line) = crate::identity::describe(ec.cfg).await;
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
    ec.ledger
        .journal(
            &ctx.actor,
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

/// The AWS error code of an SDK error, if the service answered.
fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> Option<String> {
    e.code().map(str::to_owned)
}

async fn store_checks(
    ec: &EnvCtx<'_>,
    bucket: &str,
    prefix: &str,
    checks: &mut Vec<Check>,
) -> Result<(), Error> {
    let s3 = super::s3_client(ec.cfg).await;
    let tf = "Terraform";
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(h) => checks.push(pass(
            "store.reachable",
            format!(
                "bucket {bucket} answers{}",
                h.bucket_region()
                    .map(|r| format!(" (region {r})"))
                    .unwrap_or_default()
            ),
        )),
        Err(e) => {
            checks.push(fail(
                "store.reachable",
                crate::sdk_error::one_line(&e, &format!("bucket {bucket}"), ec.cfg.profile.as_deref()),
                "check the bucket name, region, endpoint and credentials (`driftless status` names them)",
            ));
            return Ok(());
        }
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
    let bpa_fix = format!(
        "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true ({tf}: aws_s3_bucket_public_access_block with all four = true)"
    );
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(r) => {
            let c = r.public_access_block_configuration();
            let off: Vec<&str> = [
                ("BlockPublicAcls", c.and_then(|c| c.block_public_acls())),
                ("IgnorePublicAcls", c.and_then(|c| c.ignore_public_acls())),
                ("BlockPublicPolicy", c.and_then(|c| c.block_public_policy())),
                (
                    "RestrictPublicBuckets",
                    c.and_then(|c| c.restrict_public_buckets()),
                ),
            ]
            .into_iter()
            .filter(|(_, v)| *v != Some(true))
            .map(|(n, _)| n)
            .collect();
            checks.push(if off.is_empty() {
                pass(
                    "store.public-access-block",
                    "all four public-access blocks are on",
                )
            } else {
                fail(
                    "store.public-access-block",
                    format!("public access not blocked: {} off", off.join(", ")),
                    bpa_fix,
                )
            });
        }
        Err(e) => checks.push(fail(
            "store.public-access-block",
            match e.as_service_error().and_then(code).as_deref() {
                Some("NoSuchPublicAccessBlockConfiguration") => {
                    "no public access block on the bucket".to_owned()
                }
                _ => crate::sdk_error::one_line(&e, "GetPublicAccessBlock", None),
            },
            bpa_fix,
        )),
    }
    policy_check(ec, &s3, bucket, checks).await;
    anonymous_checks(ec, bucket, prefix, checks).await?;
    let versioning_fix = format!(
        "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled ({tf}: aws_s3_bucket_versioning)"
    );
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) if v.status().map(|s| s.as_str()) == Some("Enabled") => {
            checks.push(pass("store.versioning", "versioning is on"));
        }
        Ok(_) => checks.push(warn(
            "store.versioning",
            "versioning is off: driftless keeps every release itself, but versioning also guards against deletes made outside it",
            versioning_fix,
        )),
        Err(e) => checks.push(warn(
            "store.versioning",
            format!(
                "versioning could not be read ({}): it is probably off",
                crate::sdk_error::one_line(&e, "GetBucketVersioning", None)
            ),
            versioning_fix,
        )),
    }
    match s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(r) if r
            .server_side_encryption_configuration()
            .is_some_and(|c| !c.rules().is_empty()) =>
        {
            checks.push(pass("store.encryption", "default encryption is configured"));
        }
        Ok(_) | Err(_) => checks.push(warn(
            "store.encryption",
            "no default encryption configuration was found",
            format!("aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}' ({tf}: aws_s3_bucket_server_side_encryption_configuration)"),
        )),
    }
    Ok(())
}

/// Reads only by CloudFront: OAC (service principal, for this distribution) or OAI.
async fn policy_check(
    ec: &EnvCtx<'_>,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    checks: &mut Vec<Check>,
) {
    let dist = ec.cfg.cdn.as_ref().map(|c| c.cloudfront.as_str());
    let oac_fix = format!(
        "grant s3:GetObject only to the service principal cloudfront.amazonaws.com with a condition AWS:SourceArn = arn:aws:cloudfront::ACCOUNT:distribution/{} (Terraform: aws_s3_bucket_policy, as the CloudFront console's OAC policy)",
        dist.unwrap_or("DISTRIBUTION")
    );
    let policy = match s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(p) => p.policy().unwrap_or_default().to_owned(),
        Err(e) => {
            let no_policy =
                e.as_service_error().and_then(code).as_deref() == Some("NoSuchBucketPolicy");
            checks.push(warn(
                "store.bucket-policy",
                if no_policy {
                    "no bucket policy: CloudFront cannot read the bucket through origin access control".to_owned()
                } else {
                    crate::sdk_error::one_line(&e, "GetBucketPolicy", None)
                },
                oac_fix,
            ));
            return;
        }
    };
    let doc: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
    let statements: Vec<serde_json::Value> = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    let mut public = Vec::new();
    let mut cloudfront = false;
    for (i, s) in statements.iter().enumerate() {
        if s["Effect"] != "Allow" {
            continue;
        }
        let p = &s["Principal"];
        let everyone = p == "*"
            || p["AWS"] == "*"
            || p["AWS"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "*"));
        let service_cf = p["Service"] == "cloudfront.amazonaws.com";
        let oai = p["AWS"]
            .as_str()
            .is_some_and(|a| a.contains("CloudFront Origin Access Identity"));
        if everyone {
            public.push(format!(
                "statement {} ({}) grants it to everyone",
                i,
                s["Sid"].as_str().unwrap_or("no Sid")
            ));
        } else if service_cf {
            let scoped = dist.is_none_or(|d| s["Condition"].to_string().contains(d));
            if scoped {
                cloudfront = true;
            } else {
                public.push(format!(
                    "statement {i} grants CloudFront without tying it to distribution {}",
                    dist.unwrap_or_default()
                ));
            }
        } else if oai {
            cloudfront = true;
        }
    }
    checks.push(if !public.is_empty() {
        fail("store.bucket-policy", public.join("; "), oac_fix)
    } else if cloudfront {
        pass(
            "store.bucket-policy",
            "only CloudFront may read (origin access control or identity)",
        )
    } else {
        warn(
            "store.bucket-policy",
            "the policy grants no read to CloudFront",
            oac_fix,
        )
    });
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

async fn cdn_checks(ec: &EnvCtx<'_>, id: &str, checks: &mut Vec<Check>) {
    let cf = crate::cdn::CloudFront::connect(id, ec.cfg.profile.as_deref()).await;
    let got = match cf.client().get_distribution().id(id).send().await {
        Ok(d) => d,
        Err(e) => {
            checks.push(fail(
                "cdn.reachable",
                format!(
                    "distribution {id}: {}",
                    aws_sdk_cloudfront::error::DisplayErrorContext(&e)
                ),
                "check `cdn.cloudfront` and the credentials' cloudfront:GetDistribution",
            ));
            return;
        }
    };
    let Some(d) = got.distribution() else { return };
    let Some(cfg) = d.distribution_config() else {
        return;
    };
    let tf = "Terraform aws_cloudfront_distribution";
    checks.push(if cfg.enabled() && d.status() == "Deployed" {
        pass(
            "cdn.deployed",
            format!("distribution {id} is enabled and Deployed"),
        )
    } else {
        warn(
            "cdn.deployed",
            format!(
                "distribution {id}: enabled = {}, status {}",
                cfg.enabled(),
                d.status()
            ),
            "wait for the deployment to finish, or enable the distribution",
        )
    });
    if let StoreUrl::S3 { bucket, prefix } = &ec.cfg.store {
        let origins = cfg.origins().map(|o| o.items()).unwrap_or_default();
        let want_path = format!("/{}", prefix.trim_end_matches('/'));
        let ours = origins
            .iter()
            .find(|o| o.domain_name().starts_with(&format!("{bucket}.")));
        checks.push(match ours {
            Some(o) if prefix.is_empty() || o.origin_path() == Some(want_path.as_str()) => {
                pass("cdn.origin", format!("origin {} is this bucket{}", o.domain_name(), if prefix.is_empty() { String::new() } else { format!(" at {want_path}") }))
            }
            Some(o) => fail(
                "cdn.origin",
                format!("origin {} has path {:?}, the site is under {want_path}", o.domain_name(), o.origin_path().unwrap_or("")),
                format!("set the origin's OriginPath to {want_path} ({tf}: origin.origin_path)"),
            ),
            None => fail(
                "cdn.origin",
                format!("no origin of distribution {id} is bucket {bucket}"),
                format!("point the origin at {bucket} ({tf}: origin.domain_name = aws_s3_bucket.x.bucket_regional_domain_name)"),
            ),
        });
    }
    if let Some(dcb) = cfg.default_cache_behavior() {
        let vpp = dcb.viewer_protocol_policy().as_str();
        checks.push(if vpp == "redirect-to-https" || vpp == "https-only" {
            pass("cdn.https", format!("viewer protocol policy {vpp}"))
        } else {
            fail(
                "cdn.https",
                format!("viewer protocol policy {vpp}: visitors may stay on plain HTTP"),
                format!("set it to redirect-to-https ({tf}: default_cache_behavior.viewer_protocol_policy)"),
            )
        });
        checks.push(if dcb.compress() == Some(true) {
            pass("cdn.compress", "compression is on")
        } else {
            warn(
                "cdn.compress",
                "compression is off",
                format!("turn it on ({tf}: default_cache_behavior.compress = true)"),
            )
        });
        let name = super::edge::resource_name(&ec.cfg.name);
        let attached = dcb
            .function_associations()
            .map(|f| f.items())
            .unwrap_or_default()
            .iter()
            .any(|a| a.function_arn().ends_with(&format!("function/{name}")));
        checks.push(if attached {
            pass("cdn.edge", format!("the driftless edge function {name} is attached"))
        } else {
            warn(
                "cdn.edge",
                format!("the driftless edge function {name} is not attached: production may not answer like the preview"),
                format!("driftless edge {} --apply (or --export for Terraform)", ec.cfg.name),
            )
        });
    }
    checks.push(match cfg.default_root_object().filter(|o| !o.is_empty()) {
        Some(o) => pass(
            "cdn.default-root-object",
            format!("default root object {o}"),
        ),
        None => warn(
            "cdn.default-root-object",
            "no default root object",
            format!("set it to index.html ({tf}: default_root_object)"),
        ),
    });
    let traps: Vec<String> = cfg
        .custom_error_responses()
        .map(|c| c.items())
        .unwrap_or_default()
        .iter()
        .filter(|e| [403, 404].contains(&e.error_code()) && e.response_code() == Some("200"))
        .map(|e| {
            format!(
                "{} → 200 {}",
                e.error_code(),
                e.response_page_path().unwrap_or("")
            )
        })
        .collect();
    checks.push(if traps.is_empty() {
        pass("cdn.error-responses", "no custom error response turns 403/404 into 200")
    } else {
        fail(
            "cdn.error-responses",
            format!("{}: missing assets and API errors are served as the page with 200 (the SPA trap)", traps.join(", ")),
            format!("remove them and let `[edge] spa_fallback` route navigations only (`driftless edge {} --apply`)", ec.cfg.name),
        )
    });
    if let Some(url_host) = ec
        .cfg
        .url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        let aliases = cfg.aliases().map(|a| a.items()).unwrap_or_default();
        checks.push(
            if aliases.contains(&url_host) || url_host.ends_with(".cloudfront.net") {
                pass(
                    "cdn.alias",
                    format!("{url_host} is served by this distribution"),
                )
            } else {
                warn(
                    "cdn.alias",
                    format!("{url_host} is not among the distribution's aliases"),
                    format!("add it ({tf}: aliases) with a certificate that covers it"),
                )
            },
        );
    }
    let cert = cfg.viewer_certificate();
    let min = cert
        .and_then(|c| c.minimum_protocol_version())
        .map(|m| m.as_str().to_owned());
    checks.push(match (cert.and_then(|c| c.cloud_front_default_certificate()), &min) {
        (Some(true), _) => warn("cdn.tls-minimum", "the default *.cloudfront.net certificate (TLS minimum not configurable)", format!("use your certificate with minimum_protocol_version TLSv1.2_2021 ({tf}: viewer_certificate)")),
        (_, Some(m)) if m.starts_with("TLSv1.2") || m.starts_with("TLSv1.3") => pass("cdn.tls-minimum", format!("TLS minimum {m}")),
        (_, m) => fail("cdn.tls-minimum", format!("TLS minimum {}", m.as_deref().unwrap_or("unset")), format!("set minimum_protocol_version = TLSv1.2_2021 ({tf}: viewer_certificate)")),
    });
}

async fn monitoring_checks(ec: &EnvCtx<'_>, id: &str, checks: &mut Vec<Check>) {
    let client = super::watch::cloudwatch(ec).await;
    let fix = format!(
        "aws cloudwatch put-metric-alarm --region us-east-1 --alarm-name {env}-5xx --namespace AWS/CloudFront --metric-name 5xxErrorRate --dimensions Name=DistributionId,Value={id} Name=Region,Value=Global --statistic Average --period 300 --evaluation-periods 1 --threshold 5 --comparison-operator GreaterThanThreshold (and 4xxErrorRate above 20; Terraform: aws_cloudwatch_metric_alarm); name them in [env.{env}.watch] alarms",
        env = ec.cfg.name
    );
    match client.describe_alarms().send().await {
        Ok(a) => {
            let ours: Vec<String> = a
                .metric_alarms()
                .iter()
                .filter(|m| {
                    m.namespace() == Some("AWS/CloudFront")
                        && m.dimensions().iter().any(|d| d.value() == Some(id))
                })
                .map(|m| {
                    format!(
                        "{} ({})",
                        m.alarm_name().unwrap_or_default(),
                        m.metric_name().unwrap_or_default()
                    )
                })
                .collect();
            checks.push(if ours.is_empty() {
                warn(
                    "monitoring.alarms",
                    format!("no CloudWatch alarm watches distribution {id}'s error rates"),
                    fix,
                )
            } else {
                pass(
                    "monitoring.alarms",
                    format!("alarms on distribution {id}: {}", ours.join(", ")),
                )
            });
        }
        Err(e) => checks.push(warn(
            "monitoring.alarms",
            crate::sdk_error::one_line(&e, "CloudWatch", None),
            fix,
        )),
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
        checks.push(match crate::tls::certificate(&host, port).await {
            Ok(c) if c.expiring() => warn(
                "url.tls",
                format!("the certificate for {host} is {}", c.describe()),
                "renew it (ACM renews the certificates it issued and validated by DNS by itself)",
            ),
            Ok(c) => pass(
                "url.tls",
                format!("the certificate for {host} is {}", c.describe()),
            ),
            Err(e) => fail(
                "url.tls",
                e,
                format!("serve a valid certificate for {host} (for CloudFront: ACM in us-east-1, and viewer_certificate)"),
            ),
        });
        checks.push(match crate::tls::plain_http(url) {
            None => warn(
                "url.https-redirect",
                format!(
                    "not checked: {url} names a port, so there is no plain-HTTP address to try"
                ),
                "check the HTTP listener by hand",
            ),
            Some(plain) => match client.get(&plain).send().await {
                Ok(r) if crate::tls::redirects_to_https(&r) => pass(
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
