//! CloudFront through its API: invalidations (behind the [`Cdn`] trait, so tests can fake
//! them), the edge function and response headers policy `edge --apply` publishes, and the
//! distribution config it attaches them to — every write conditional (`If-Match`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::error::ProvideErrorMetadata;
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{
    CustomErrorResponse, CustomErrorResponses, DistributionConfig, EventType, FunctionAssociation,
    FunctionAssociations, FunctionConfig, FunctionRuntime, FunctionStage,
};

use crate::Error;

#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    #[error("CloudFront distribution {distribution}: {message}")]
    Failed {
        distribution: String,
        message: String,
    },
}

/// What driftless needs from a CDN, cut down so tests can fake it.
#[async_trait]
pub trait Cdn: Send + Sync {
    /// Request an invalidation; returns its id. Idempotent per `reference`.
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, CdnError>;
    /// Whether the invalidation has completed.
    async fn completed(&self, id: &str) -> Result<bool, CdnError>;
}

pub struct CloudFront {
    client: aws_sdk_cloudfront::Client,
    distribution: String,
}

impl CloudFront {
    /// Uses the standard AWS chain; `AWS_ENDPOINT_URL_CLOUDFRONT` / `AWS_ENDPOINT_URL`
    /// point it at an emulator.
    pub async fn connect(distribution: &str, profile: Option<&str>) -> Self {
        // CloudFront is a global service, signed in us-east-1.
        let sdk = crate::aws::loader_for(profile, Some("us-east-1"))
            .await
            .load()
            .await;
        Self {
            client: aws_sdk_cloudfront::Client::new(&sdk),
            distribution: distribution.to_owned(),
        }
    }

    /// The SDK client (edge functions and distribution config use it directly).
    pub fn client(&self) -> &aws_sdk_cloudfront::Client {
        &self.client
    }

    fn fail(&self, e: impl std::fmt::Display) -> CdnError {
        CdnError::Failed {
            distribution: self.distribution.clone(),
            message: e.to_string().lines().next().unwrap_or_default().to_owned(),
        }
    }
}

#[async_trait]
impl Cdn for CloudFront {
    async fn invalidate(&self, paths: &[String], reference: &str) -> Result<String, CdnError> {
        use aws_sdk_cloudfront::error::ProvideErrorMetadata as _;
        use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
        let batch = InvalidationBatch::builder()
            .caller_reference(reference)
            .paths(
                Paths::builder()
                    .quantity(i32::try_from(paths.len()).unwrap_or(i32::MAX))
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| self.fail(e))?,
            )
            .build()
            .map_err(|e| self.fail(e))?;
        let mut backoff = Duration::from_secs(2);
        let mut waited = Duration::ZERO;
        loop {
            let sent = self
                .client
                .create_invalidation()
                .distribution_id(&self.distribution)
                .invalidation_batch(batch.clone())
                .send()
                .await;
            match sent {
                Ok(out) => {
                    return Ok(out
                        .invalidation()
                        .map(|i| i.id().to_owned())
                        .unwrap_or_default());
                }
                Err(e)
                    if e.code() == Some("TooManyInvalidationsInProgress")
                        && waited < Duration::from_secs(300) =>
                {
                    tokio::time::sleep(backoff).await;
                    waited += backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    return Err(self.fail(crate::aws::error::one_line(&e, "CloudFront", None)));
                }
            }
        }
    }

    async fn completed(&self, id: &str) -> Result<bool, CdnError> {
        let out = self
            .client
            .get_invalidation()
            .distribution_id(&self.distribution)
            .id(id)
            .send()
            .await
            .map_err(|e| self.fail(crate::aws::error::one_line(&e, "CloudFront", None)))?;
        // The API says "Completed"; emulators have said "COMPLETED".
        Ok(out
            .invalidation()
            .is_some_and(|i| i.status().eq_ignore_ascii_case("completed")))
    }
}

/// Request the invalidation of `paths` and wait (at most `wait`) for it to complete. Returns the id and
/// whether it completed in time.
pub async fn run(
    cdn: &dyn Cdn,
    paths: &[String],
    reference: &str,
    wait: Duration,
) -> Result<(String, bool), CdnError> {
    let id = cdn.invalidate(paths, reference).await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if cdn.completed(&id).await? {
            return Ok((id, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((id, false));
        }
        tokio::time::sleep(Duration::from_secs(2).min(wait)).await;
    }
}

fn failed(what: &str, e: &impl ProvideErrorMetadata) -> Error {
    Error::Other(format!(
        "CloudFront {what} failed: {}",
        e.message()
            .or(e.code())
            .unwrap_or("no answer (see `driftless status` for the identity and endpoint)")
    ))
}

/// An edge function as CloudFront has it: its ETag (DEVELOPMENT stage), LIVE code and ARN.
pub struct LiveFunction {
    pub etag: String,
    pub code: Option<String>,
    pub arn: String,
    /// The KeyValueStores associated with it (ARNs).
    pub key_value_stores: Vec<String>,
}

/// A distribution's config as read, with the ETag its update is conditional on.
pub struct Distribution {
    pub etag: String,
    config: DistributionConfig,
}

impl Distribution {
    /// The response headers policy on the default cache behavior, if any.
    pub fn headers_policy_id(&self) -> Option<&str> {
        self.config
            .default_cache_behavior
            .as_ref()?
            .response_headers_policy_id
            .as_deref()
            .filter(|id| !id.is_empty())
    }

    /// This config without response headers policy `id` on the default cache behavior
    /// (driftless's own, once headers come with each release); `None` when it has none.
    pub fn without_policy(&self, id: &str) -> Option<Distribution> {
        let mut config = self.config.clone();
        let dcb = config.default_cache_behavior.as_mut()?;
        if dcb.response_headers_policy_id.as_deref() != Some(id) {
            return None;
        }
        dcb.response_headers_policy_id = None;
        Some(Distribution {
            etag: self.etag.clone(),
            config,
        })
    }

    /// This config with the edge function `arn` (named `function`), the headers policy and
    /// the custom error responses (CloudFront API JSON) attached to the default cache
    /// behavior; `None` when it has them already. Refuses to replace another
    /// viewer-request function.
    pub fn with_edge(
        &self,
        arn: &str,
        policy_id: Option<&str>,
        function: &str,
        errors: &[serde_json::Value],
        release_key: Option<(&str, &str)>,
        response_arn: Option<&str>,
    ) -> Result<Option<Distribution>, Error> {
        Ok(attached(
            self.config.clone(),
            arn,
            policy_id,
            function,
            errors,
            release_key,
            response_arn,
        )?
        .map(|config| Distribution {
            etag: self.etag.clone(),
            config,
        }))
    }
}

impl Distribution {
    /// Whether the default cache behavior's cache key includes the query-string
    /// parameter `param`: through driftless's cache policy `policy` (its config read),
    /// or the legacy settings' cache keys.
    #[allow(deprecated)]
    pub async fn release_in_cache_key(
        &self,
        cf: &CloudFront,
        policy: &str,
        param: &str,
    ) -> Result<bool, Error> {
        let Some(dcb) = self.config.default_cache_behavior.as_ref() else {
            return Ok(false);
        };
        match dcb.cache_policy_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => {
                let got = cf
                    .client
                    .get_cache_policy()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| failed("GetCachePolicy", &e))?;
                let config = got.cache_policy().and_then(|p| p.cache_policy_config());
                Ok(config.is_some_and(|c| {
                    c.name() == policy
                        && c.parameters_in_cache_key_and_forwarded_to_origin()
                            .and_then(|p| p.query_strings_config())
                            .and_then(|q| q.query_strings())
                            .is_some_and(|q| q.items().iter().any(|i| i == param))
                }))
            }
            None => Ok(dcb.forwarded_values.as_ref().is_some_and(|fv| {
                fv.query_string
                    && fv
                        .query_string_cache_keys
                        .as_ref()
                        .and_then(|k| k.items.as_ref())
                        .is_some_and(|i| i.iter().any(|i| i == param))
            })),
        }
    }

    /// Whether the default cache behavior takes its cache key from a cache policy (the
    /// modern settings) rather than legacy `ForwardedValues`.
    pub fn uses_cache_policy(&self) -> bool {
        self.config
            .default_cache_behavior
            .as_ref()
            .and_then(|d| d.cache_policy_id.as_deref())
            .is_some_and(|id| !id.is_empty())
    }
}

impl CloudFront {
    /// Driftless's cache policy `name`: the query-string parameter `param` (the release)
    /// in the cache key and nothing else of the request, compressed variants, TTLs taken
    /// from the objects' Cache-Control (a day when they set none, a year at most).
    /// Created if missing, put right if changed. Returns its id.
    pub async fn ensure_cache_policy(&self, name: &str, param: &str) -> Result<String, Error> {
        use aws_sdk_cloudfront::types::{
            CachePolicyConfig, CachePolicyCookieBehavior, CachePolicyCookiesConfig,
            CachePolicyHeaderBehavior, CachePolicyHeadersConfig, CachePolicyQueryStringBehavior,
            CachePolicyQueryStringsConfig, CachePolicyType,
            ParametersInCacheKeyAndForwardedToOrigin, QueryStringNames,
        };
        let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
        let config = CachePolicyConfig::builder()
            .name(name)
            .comment("driftless: the release in the cache key")
            .min_ttl(0)
            .default_ttl(86_400)
            .max_ttl(31_536_000)
            .parameters_in_cache_key_and_forwarded_to_origin(
                ParametersInCacheKeyAndForwardedToOrigin::builder()
                    .enable_accept_encoding_gzip(true)
                    .enable_accept_encoding_brotli(true)
                    .headers_config(
                        CachePolicyHeadersConfig::builder()
                            .header_behavior(CachePolicyHeaderBehavior::None)
                            .build()
                            .map_err(e)?,
                    )
                    .cookies_config(
                        CachePolicyCookiesConfig::builder()
                            .cookie_behavior(CachePolicyCookieBehavior::None)
                            .build()
                            .map_err(e)?,
                    )
                    .query_strings_config(
                        CachePolicyQueryStringsConfig::builder()
                            .query_string_behavior(CachePolicyQueryStringBehavior::Whitelist)
                            .query_strings(
                                QueryStringNames::builder()
                                    .quantity(1)
                                    .items(param)
                                    .build()
                                    .map_err(e)?,
                            )
                            .build()
                            .map_err(e)?,
                    )
                    .build()
                    .map_err(e)?,
            )
            .build()
            .map_err(e)?;
        let listed = self
            .client
            .list_cache_policies()
            .r#type(CachePolicyType::Custom)
            .send()
            .await
            .map_err(|e| failed("ListCachePolicies", &e))?;
        let found = listed
            .cache_policy_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.cache_policy())
            .find(|p| p.cache_policy_config().is_some_and(|c| c.name() == name))
            .cloned();
        match found {
            Some(p) if p.cache_policy_config() == Some(&config) => Ok(p.id().to_owned()),
            Some(p) => {
                let got = self
                    .client
                    .get_cache_policy()
                    .id(p.id())
                    .send()
                    .await
                    .map_err(|e| failed("GetCachePolicy", &e))?;
                self.client
                    .update_cache_policy()
                    .id(p.id())
                    .if_match(got.e_tag().unwrap_or_default())
                    .cache_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("UpdateCachePolicy (If-Match)", &e))?;
                Ok(p.id().to_owned())
            }
            None => {
                let made = self
                    .client
                    .create_cache_policy()
                    .cache_policy_config(config)
                    .send()
                    .await
                    .map_err(|e| failed("CreateCachePolicy", &e))?;
                Ok(made
                    .cache_policy()
                    .map(|p| p.id().to_owned())
                    .unwrap_or_default())
            }
        }
    }

    /// The edge function `name` as CloudFront has it (`None`: there is none).
    pub async fn live_function(&self, name: &str) -> Result<Option<LiveFunction>, Error> {
        let client = &self.client;
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
        let key_value_stores = described
            .function_summary()
            .and_then(|s| s.function_config())
            .and_then(|c| c.key_value_store_associations())
            .map(|a| {
                a.items()
                    .iter()
                    .map(|i| i.key_value_store_arn().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(LiveFunction {
            etag: described.e_tag().unwrap_or_default().to_owned(),
            code,
            arn,
            key_value_stores,
        }))
    }

    /// The distribution's config and its ETag.
    pub async fn distribution(&self) -> Result<Distribution, Error> {
        let got = self
            .client
            .get_distribution_config()
            .id(&self.distribution)
            .send()
            .await
            .map_err(|e| failed("GetDistributionConfig", &e))?;
        Ok(Distribution {
            etag: got.e_tag().unwrap_or_default().to_owned(),
            config: got
                .distribution_config
                .ok_or_else(|| Error::Other("GetDistributionConfig returned no config".into()))?,
        })
    }

    /// Write `d` back, conditional on the ETag it was read with; `again` is the command
    /// that re-reads it (named in the refusal when someone changed it meanwhile).
    pub async fn update_distribution(&self, d: Distribution, again: &str) -> Result<(), Error> {
        self.client
            .update_distribution()
            .id(&self.distribution)
            .if_match(&d.etag)
            .distribution_config(d.config)
            .send()
            .await
            .map_err(|e| {
                if e.code() == Some("PreconditionFailed") {
                    Error::Refused(format!(
                        "distribution {} changed since driftless read it; nothing of it was changed\n  → run `{again}` again",
                        self.distribution
                    ))
                } else {
                    failed("UpdateDistribution (If-Match)", &e)
                }
            })?;
        Ok(())
    }

    /// Create the function `name` (or update it, If-Match, when its code changed) and
    /// publish it; returns its ARN.
    pub async fn publish_function(
        &self,
        name: &str,
        code: &str,
        comment: String,
        live: Option<LiveFunction>,
        code_changed: bool,
        kvs_arn: Option<&str>,
    ) -> Result<String, Error> {
        use aws_sdk_cloudfront::types::{KeyValueStoreAssociation, KeyValueStoreAssociations};
        let client = &self.client;
        let mut config = FunctionConfig::builder()
            .comment(comment)
            .runtime(FunctionRuntime::CloudfrontJs20);
        if let Some(arn) = kvs_arn {
            let assoc = KeyValueStoreAssociation::builder()
                .key_value_store_arn(arn)
                .build()
                .map_err(|e| Error::Other(e.to_string()))?;
            config = config.key_value_store_associations(
                KeyValueStoreAssociations::builder()
                    .quantity(1)
                    .items(assoc)
                    .build()
                    .map_err(|e| Error::Other(e.to_string()))?,
            );
        }
        let config = config.build().map_err(|e| Error::Other(e.to_string()))?;
        let code = Blob::new(code.as_bytes());
        let (etag, arn) = match live {
            None => {
                let made = client
                    .create_function()
                    .name(name)
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
                    .name(name)
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
                .name(name)
                .if_match(&etag)
                .send()
                .await
                .map_err(|e| failed("PublishFunction (If-Match)", &e))?;
        }
        Ok(arn)
    }

    /// Create the KeyValueStore `name` and wait until CloudFront says it is ready (a new
    /// store is PROVISIONING for a few seconds). Returns its ARN.
    pub async fn create_key_value_store(&self, name: &str, comment: &str) -> Result<String, Error> {
        let made = self
            .client
            .create_key_value_store()
            .name(name)
            .comment(comment)
            .send()
            .await
            .map_err(|e| failed("CreateKeyValueStore", &e))?;
        let arn = made
            .key_value_store()
            .map(|s| s.arn().to_owned())
            .unwrap_or_default();
        for _ in 0..60 {
            let d = self
                .client
                .describe_key_value_store()
                .name(name)
                .send()
                .await
                .map_err(|e| failed("DescribeKeyValueStore", &e))?;
            let status = d
                .key_value_store()
                .and_then(|s| s.status())
                .unwrap_or("READY");
            if status == "READY" {
                return Ok(arn);
            }
            if status == "PROVISIONING_FAILED" {
                return Err(Error::Other(format!(
                    "CloudFront could not provision KeyValueStore {name} ({status})"
                )));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Err(Error::Other(format!(
            "KeyValueStore {name} was not ready after two minutes: run the command again"
        )))
    }

    /// The custom response headers policy named `name`: its id and ETag.
    pub async fn find_policy(&self, name: &str) -> Result<Option<(String, String)>, Error> {
        let client = &self.client;
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
    pub async fn put_policy(&self, name: &str, p: &serde_json::Value) -> Result<String, Error> {
        let client = &self.client;
        let config = policy_config(name, p)?;
        match self.find_policy(name).await? {
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
}

/// The distribution config with the function, policy and error responses of `c`
/// attached; `None` when it already has them. Refuses to replace another viewer-request
/// function.
/// The release parameter in the cache key of a behavior on the legacy cache settings
/// (`ForwardedValues`: deprecated in the API, still on many distributions).
#[allow(deprecated)]
fn legacy_release_key(
    dcb: &mut aws_sdk_cloudfront::types::DefaultCacheBehavior,
    param: &str,
) -> Result<(), Error> {
    use aws_sdk_cloudfront::types::{
        CookiePreference, ForwardedValues, ItemSelection, QueryStringCacheKeys,
    };
    let e = |e: aws_sdk_cloudfront::error::BuildError| Error::Other(e.to_string());
    let mut fv = match dcb.forwarded_values.clone() {
        Some(fv) => fv,
        None => ForwardedValues::builder()
            .cookies(
                CookiePreference::builder()
                    .forward(ItemSelection::None)
                    .build()
                    .map_err(e)?,
            )
            .query_string(true)
            .build()
            .map_err(e)?,
    };
    fv.query_string = true;
    fv.query_string_cache_keys = Some(
        QueryStringCacheKeys::builder()
            .quantity(1)
            .items(param)
            .build()
            .map_err(e)?,
    );
    dcb.forwarded_values = Some(fv);
    Ok(())
}

/// Make `items` run `arn` on `event` in place of ours (a function ARN ending in
/// `ours`), or (`None`) drop ours; someone else's function there is refused.
fn attach(
    items: &mut Vec<FunctionAssociation>,
    event: EventType,
    arn: Option<&str>,
    ours: &str,
    alternative: &str,
) -> Result<(), Error> {
    let Some(arn) = arn else {
        items.retain(|a| !(a.event_type == event && a.function_arn.ends_with(ours)));
        return Ok(());
    };
    if let Some(other) = items
        .iter()
        .find(|a| a.event_type == event && !a.function_arn.ends_with(ours))
    {
        return Err(Error::Refused(format!(
            "the distribution's default cache behavior runs another {} function ({}); driftless will not replace it\n  → detach it ({alternative}) and run `driftless edge ENV --apply` again",
            event.as_str(),
            other.function_arn
        )));
    }
    items.retain(|a| a.event_type != event);
    items.push(
        FunctionAssociation::builder()
            .function_arn(arn)
            .event_type(event)
            .build()
            .map_err(|e| Error::Other(e.to_string()))?,
    );
    Ok(())
}

fn attached(
    mut cfg: DistributionConfig,
    arn: &str,
    policy_id: Option<&str>,
    function: &str,
    errors: &[serde_json::Value],
    release_key: Option<(&str, &str)>,
    response_arn: Option<&str>,
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
    attach(
        &mut items,
        EventType::ViewerRequest,
        Some(arn),
        &format!("/{function}"),
        "or fold its logic into [edge]",
    )?;
    // The viewer-response function of the atomic layout (the canary cookie, noindex on
    // previews): attached with it, detached (only ours) in place.
    attach(
        &mut items,
        EventType::ViewerResponse,
        response_arn,
        &format!("/{function}-response"),
        "its headers can go in [edge] headers",
    )?;
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
    // The atomic layout's function puts the release in the query string: it must be in
    // the cache key (driftless's cache policy, or the legacy settings' cache keys).
    if let Some((policy, param)) = release_key {
        if dcb
            .cache_policy_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
        {
            dcb.cache_policy_id = Some(policy.to_owned());
        } else {
            legacy_release_key(dcb, param)?;
        }
    }
    if !errors.is_empty() {
        let mut errs: Vec<CustomErrorResponse> = cfg
            .custom_error_responses
            .as_ref()
            .and_then(|e| e.items.clone())
            .unwrap_or_default();
        errs.retain(|e| e.error_code != 403 && e.error_code != 404);
        for e in errors {
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

/// The SDK's `ResponseHeadersPolicyConfig` from the API JSON of `[edge] headers`.
///
/// (`edge::cloudfront::headers_policy` makes that JSON.)
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudfront::types::{DefaultCacheBehavior, ViewerProtocolPolicy};

    fn config(cache_policy: Option<&str>) -> DistributionConfig {
        let mut dcb = DefaultCacheBehavior::builder()
            .target_origin_id("s3")
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps);
        if let Some(id) = cache_policy {
            dcb = dcb.cache_policy_id(id);
        }
        DistributionConfig::builder()
            .caller_reference("r")
            .comment("")
            .enabled(true)
            .default_cache_behavior(dcb.build().unwrap())
            .build()
            .unwrap()
    }

    /// The release parameter reaches the cache key whichever settings the behavior has:
    /// driftless's cache policy replaces the one it used (a managed policy such as
    /// CachingOptimized keeps no query string), legacy settings get it as a cache key.
    #[test]
    #[allow(deprecated)]
    fn the_release_joins_the_cache_key() {
        let arn = "arn:aws:cloudfront::1:function/driftless-prod";
        let modern = attached(
            config(Some("658327ea-f89d-4fab-a63d-7e88639e58f6")),
            arn,
            None,
            "driftless-prod",
            &[],
            Some(("our-policy", "driftless-release")),
            None,
        )
        .unwrap()
        .unwrap();
        let dcb = modern.default_cache_behavior.unwrap();
        assert_eq!(dcb.cache_policy_id.as_deref(), Some("our-policy"));
        assert!(dcb.forwarded_values.is_none());

        let legacy = attached(
            config(None),
            arn,
            None,
            "driftless-prod",
            &[],
            Some(("", "driftless-release")),
            None,
        )
        .unwrap()
        .unwrap();
        let fv = legacy
            .default_cache_behavior
            .unwrap()
            .forwarded_values
            .unwrap();
        assert!(fv.query_string);
        assert_eq!(
            fv.query_string_cache_keys.unwrap().items.unwrap(),
            ["driftless-release"]
        );

        // In place: the cache key is left alone.
        let in_place = attached(config(None), arn, None, "driftless-prod", &[], None, None)
            .unwrap()
            .unwrap();
        assert!(
            in_place
                .default_cache_behavior
                .unwrap()
                .forwarded_values
                .is_none()
        );
    }

    /// Previews bring the viewer-response function; without them only ours is detached,
    /// and another one is never replaced.
    #[test]
    fn the_preview_response_function_is_attached_and_detached_alone() {
        let arn = "arn:aws:cloudfront::1:function/driftless-prod";
        let response = "arn:aws:cloudfront::1:function/driftless-prod-response";
        let with = attached(
            config(None),
            arn,
            None,
            "driftless-prod",
            &[],
            None,
            Some(response),
        )
        .unwrap()
        .unwrap();
        let events = |c: &DistributionConfig| -> Vec<(EventType, String)> {
            c.default_cache_behavior
                .as_ref()
                .and_then(|d| d.function_associations.as_ref())
                .and_then(|f| f.items.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.event_type, a.function_arn))
                .collect()
        };
        assert_eq!(
            events(&with),
            [
                (EventType::ViewerRequest, arn.to_owned()),
                (EventType::ViewerResponse, response.to_owned())
            ]
        );
        let without = attached(with, arn, None, "driftless-prod", &[], None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            events(&without),
            [(EventType::ViewerRequest, arn.to_owned())]
        );
        let mut foreign = config(None);
        foreign
            .default_cache_behavior
            .as_mut()
            .unwrap()
            .function_associations = Some(
            FunctionAssociations::builder()
                .quantity(1)
                .items(
                    FunctionAssociation::builder()
                        .function_arn("arn:aws:cloudfront::1:function/someone-elses")
                        .event_type(EventType::ViewerResponse)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        let refused = attached(
            foreign,
            arn,
            None,
            "driftless-prod",
            &[],
            None,
            Some(response),
        );
        assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    }
}

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
