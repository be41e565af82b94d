//! The AWS side of `doctor`: the bucket's settings (reachable, public access block,
//! policy, versioning, encryption), the distribution's, and the alarms on it — each one
//! line with what was seen and its fix (a CLI command or the Terraform attribute).

use crate::config::{EnvConfig, StoreUrl};
use crate::verdict::{Check, fail, pass, warn};

/// The AWS error code of an SDK error, if the service answered.
fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> Option<String> {
    e.code().map(str::to_owned)
}

/// A bucket to audit, with an S3 client for the environment's credentials.
pub struct Bucket {
    s3: aws_sdk_s3::Client,
    name: String,
}

const TF: &str = "Terraform";

impl Bucket {
    pub async fn connect(env: &EnvConfig, bucket: &str) -> Self {
        Self {
            s3: super::s3::client_for(env).await,
            name: bucket.to_owned(),
        }
    }

    /// Does the bucket answer? (Nothing else can be audited if not.)
    pub async fn reachable(&self, profile: Option<&str>, checks: &mut Vec<Check>) -> bool {
        let (s3, bucket) = (&self.s3, self.name.as_str());
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
                    super::error::one_line(&e, &format!("bucket {bucket}"), profile),
                    "check the bucket name, region, endpoint and credentials (`driftless status` names them)",
                ));
                return false;
            }
        }
        true
    }

    pub async fn public_access_block(&self, checks: &mut Vec<Check>) {
        let (s3, bucket, tf) = (&self.s3, self.name.as_str(), TF);
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
                    _ => crate::aws::error::one_line(&e, "GetPublicAccessBlock", None),
                },
                bpa_fix,
            )),
        }
    }

    /// Reads only by CloudFront: OAC (service principal, for this distribution) or OAI.
    pub async fn policy(&self, dist: Option<&str>, checks: &mut Vec<Check>) {
        let (s3, bucket) = (&self.s3, self.name.as_str());

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
                        crate::aws::error::one_line(&e, "GetBucketPolicy", None)
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

    pub async fn versioning(&self, checks: &mut Vec<Check>) {
        let (s3, bucket, tf) = (&self.s3, self.name.as_str(), TF);
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
                    crate::aws::error::one_line(&e, "GetBucketVersioning", None)
                ),
                versioning_fix,
            )),
        }
    }

    pub async fn encryption(&self, checks: &mut Vec<Check>) {
        let (s3, bucket, tf) = (&self.s3, self.name.as_str(), TF);
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
    }
}

/// Distribution `id` of `env`: deployed, origin, HTTPS, compression, the driftless edge
/// function (named `function`) attached, root object, no SPA trap, alias, TLS minimum.
pub async fn distribution(env: &EnvConfig, id: &str, function: &str, checks: &mut Vec<Check>) {
    let cf = super::cloudfront::CloudFront::connect(id, env.profile.as_deref()).await;
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
    if let StoreUrl::S3 { bucket, prefix } = &env.store {
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
        let name = function;
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
                format!("driftless edge {} --apply (or --export for Terraform)", env.name),
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
            format!("remove them and let `[edge] spa_fallback` route navigations only (`driftless edge {} --apply`)", env.name),
        )
    });
    if let Some(url_host) = env
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
    if let Some(suffix) = env.preview_host() {
        // Previews: NAME.preview.example.com reaches this distribution only by a wildcard
        // alias (one per preview would mean a distribution update per preview).
        let wildcard = format!("*{suffix}");
        let aliases = cfg.aliases().map(|a| a.items()).unwrap_or_default();
        let default_cert = cfg
            .viewer_certificate()
            .and_then(|c| c.cloud_front_default_certificate())
            == Some(true);
        checks.push(if !aliases.contains(&wildcard) {
            fail(
                "edge.preview_alias",
                format!("{wildcard} is not among the distribution's aliases: previews ({}) do not reach it", env.preview_url.as_deref().unwrap_or_default()),
                format!("add the alias {wildcard} ({tf}: aliases) with a certificate that covers it (ACM in us-east-1: {wildcard}), and a DNS record {wildcard} → the distribution"),
            )
        } else if default_cert {
            fail(
                "edge.preview_alias",
                format!("{wildcard} is an alias, but the distribution serves the default *.cloudfront.net certificate"),
                format!("attach an ACM certificate (us-east-1) covering {wildcard} ({tf}: viewer_certificate.acm_certificate_arn)"),
            )
        } else {
            pass("edge.preview_alias", format!("{wildcard} is an alias of the distribution, with its own certificate"))
        });
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

/// Alarms on the distribution's error rates.
pub async fn alarms(env: &EnvConfig, id: &str, checks: &mut Vec<Check>) {
    let client = super::cloudwatch::client(env).await;
    let fix = format!(
        "aws cloudwatch put-metric-alarm --region us-east-1 --alarm-name {env}-5xx --namespace AWS/CloudFront --metric-name 5xxErrorRate --dimensions Name=DistributionId,Value={id} Name=Region,Value=Global --statistic Average --period 300 --evaluation-periods 1 --threshold 5 --comparison-operator GreaterThanThreshold (and 4xxErrorRate above 20; Terraform: aws_cloudwatch_metric_alarm); name them in [env.{env}.watch] alarms",
        env = env.name
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
            crate::aws::error::one_line(&e, "CloudWatch", None),
            fix,
        )),
    }
}
