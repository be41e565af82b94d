//! `[edge.auth.signed_cookies]` at CloudFront: the public key and key group it verifies
//! with, and a cache behavior per protected pattern trusting them (public exceptions
//! first).

use super::distribution::Distribution;
use super::{CloudFront, failed};
use crate::Error;

/// The signer of `[edge.auth.signed_cookies]` as CloudFront holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The public key's id: the `Key-Pair-Id` of signed cookies and URLs.
    pub public_key: String,
    pub key_group: String,
}

/// The CloudFront names of the signer for the public key `pem` of the environment whose
/// resources are named `resource`: the key's hash in them, so a new key is a new public
/// key and key group (CloudFront never edits a public key's bytes).
pub fn signer_name(resource: &str, pem: &str) -> String {
    use sha2::Digest as _;
    let normal: String = pem.split_whitespace().collect();
    let hash = hex::encode(sha2::Sha256::digest(normal.as_bytes()));
    format!("{resource}-{}", &hash[..8])
}

impl CloudFront {
    /// The id of the public key named `name`, if CloudFront has it.
    async fn public_key_id(&self, name: &str) -> Result<Option<String>, Error> {
        let keys = self
            .client
            .list_public_keys()
            .send()
            .await
            .map_err(|e| failed("ListPublicKeys", &e))?;
        Ok(keys
            .public_key_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .find(|k| k.name() == name)
            .map(|k| k.id().to_owned()))
    }

    /// The public key and key group named `name`, if CloudFront has both.
    pub async fn find_signer(&self, name: &str) -> Result<Option<Signer>, Error> {
        let Some(key) = self.public_key_id(name).await? else {
            return Ok(None);
        };
        let groups = self
            .client
            .list_key_groups()
            .send()
            .await
            .map_err(|e| failed("ListKeyGroups", &e))?;
        let group = groups
            .key_group_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.key_group())
            .find(|g| g.key_group_config().is_some_and(|c| c.name() == name))
            .map(|g| g.id().to_owned());
        Ok(group.map(|key_group| Signer {
            public_key: key,
            key_group,
        }))
    }

    /// Create what of the signer `name` (public key `pem`, then a key group holding it)
    /// CloudFront does not have yet.
    pub async fn ensure_signer(&self, name: &str, pem: &str) -> Result<Signer, Error> {
        use aws_sdk_cloudfront::types::{KeyGroupConfig, PublicKeyConfig};
        let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
        if let Some(s) = self.find_signer(name).await? {
            return Ok(s);
        }
        let key = match self.public_key_id(name).await? {
            Some(id) => id,
            None => self
                .client
                .create_public_key()
                .public_key_config(
                    PublicKeyConfig::builder()
                        .caller_reference(name)
                        .name(name)
                        .encoded_key(pem)
                        .comment("driftless: verifies [edge.auth] signed cookies")
                        .build()
                        .map_err(e)?,
                )
                .send()
                .await
                .map_err(|e| failed("CreatePublicKey", &e))?
                .public_key()
                .map(|k| k.id().to_owned())
                .unwrap_or_default(),
        };
        let group = self
            .client
            .create_key_group()
            .key_group_config(
                KeyGroupConfig::builder()
                    .name(name)
                    .items(&key)
                    .comment("driftless: trusted on [edge.auth] protected paths")
                    .build()
                    .map_err(e)?,
            )
            .send()
            .await
            .map_err(|e| failed("CreateKeyGroup", &e))?
            .key_group()
            .map(|g| g.id().to_owned())
            .unwrap_or_default();
        Ok(Signer {
            public_key: key,
            key_group: group,
        })
    }
}

/// The CloudFront path patterns of one `[edge.auth]` glob: `**` becomes `*` (which
/// crosses `/` at CloudFront), and `/dir/**` also covers `/dir` itself.
pub fn path_patterns(glob: &str) -> Vec<String> {
    let mut out = vec![glob.replace("**", "*")];
    if let Some(base) = glob.strip_suffix("/**")
        && !base.is_empty()
    {
        out.push(base.to_owned());
    }
    out
}

impl Distribution {
    /// This config with a cache behavior per protected pattern trusting `key_group`
    /// (after one per public pattern, trusting none: CloudFront takes the first
    /// behavior whose pattern matches), each a copy of the default behavior; the
    /// behaviors driftless made before (`previous` patterns) replaced. `None` when it
    /// has exactly these already.
    pub fn with_protected(
        &self,
        protect: &[String],
        public: &[String],
        key_group: Option<&str>,
        previous: &[String],
    ) -> Result<Option<Self>, Error> {
        let mut cfg = self.config.clone();
        let before = cfg.clone();
        let dcb = cfg
            .default_cache_behavior
            .clone()
            .ok_or_else(|| Error::Other("the distribution has no default cache behavior".into()))?;
        let mut ours: Vec<String> = Vec::new();
        let mut made = Vec::new();
        if let Some(group) = key_group {
            for (globs, trusted) in [(public, None), (protect, Some(group))] {
                for glob in globs {
                    for pattern in path_patterns(glob) {
                        if ours.contains(&pattern) {
                            continue;
                        }
                        made.push(behavior_like(&dcb, &pattern, trusted)?);
                        ours.push(pattern);
                    }
                }
            }
        }
        let mut items: Vec<aws_sdk_cloudfront::types::CacheBehavior> = cfg
            .cache_behaviors
            .as_ref()
            .and_then(|c| c.items.clone())
            .unwrap_or_default();
        items.retain(|b| !previous.contains(&b.path_pattern) && !ours.contains(&b.path_pattern));
        made.extend(items);
        cfg.cache_behaviors = Some(
            aws_sdk_cloudfront::types::CacheBehaviors::builder()
                .quantity(i32::try_from(made.len()).unwrap_or(i32::MAX))
                .set_items((!made.is_empty()).then_some(made))
                .build()
                .map_err(|e| Error::Other(e.to_string()))?,
        );
        Ok((cfg != before).then(|| Self {
            etag: self.etag.clone(),
            config: cfg,
        }))
    }

    /// The cache behaviors in order: path pattern, and the key groups they trust.
    pub fn behaviors(&self) -> Vec<(String, Vec<String>)> {
        self.config
            .cache_behaviors
            .as_ref()
            .and_then(|c| c.items.as_ref())
            .map(|items| {
                items
                    .iter()
                    .map(|b| {
                        let groups = b
                            .trusted_key_groups
                            .as_ref()
                            .filter(|g| g.enabled)
                            .and_then(|g| g.items.clone())
                            .unwrap_or_default();
                        (b.path_pattern.clone(), groups)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The key groups the default behavior trusts.
    pub fn default_trusts(&self) -> Vec<String> {
        self.config
            .default_cache_behavior
            .as_ref()
            .and_then(|d| d.trusted_key_groups.as_ref())
            .filter(|g| g.enabled)
            .and_then(|g| g.items.clone())
            .unwrap_or_default()
    }
}

/// A cache behavior for `pattern` as the default one is, trusting `key_group` if given.
#[allow(deprecated)]
fn behavior_like(
    d: &aws_sdk_cloudfront::types::DefaultCacheBehavior,
    pattern: &str,
    key_group: Option<&str>,
) -> Result<aws_sdk_cloudfront::types::CacheBehavior, Error> {
    use aws_sdk_cloudfront::types::{CacheBehavior, TrustedKeyGroups};
    let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
    let groups = match key_group {
        Some(g) => TrustedKeyGroups::builder()
            .enabled(true)
            .quantity(1)
            .items(g)
            .build()
            .map_err(e)?,
        None => TrustedKeyGroups::builder()
            .enabled(false)
            .quantity(0)
            .build()
            .map_err(e)?,
    };
    CacheBehavior::builder()
        .path_pattern(pattern)
        .target_origin_id(&d.target_origin_id)
        .set_trusted_signers(d.trusted_signers.clone())
        .trusted_key_groups(groups)
        .viewer_protocol_policy(d.viewer_protocol_policy.clone())
        .set_allowed_methods(d.allowed_methods.clone())
        .set_smooth_streaming(d.smooth_streaming)
        .set_compress(d.compress)
        .set_lambda_function_associations(d.lambda_function_associations.clone())
        .set_function_associations(d.function_associations.clone())
        .set_field_level_encryption_id(d.field_level_encryption_id.clone())
        .set_realtime_log_config_arn(d.realtime_log_config_arn.clone())
        .set_cache_policy_id(d.cache_policy_id.clone())
        .set_origin_request_policy_id(d.origin_request_policy_id.clone())
        .set_response_headers_policy_id(d.response_headers_policy_id.clone())
        .set_forwarded_values(d.forwarded_values.clone())
        .set_min_ttl(d.min_ttl)
        .set_default_ttl(d.default_ttl)
        .set_max_ttl(d.max_ttl)
        .build()
        .map_err(e)
}
