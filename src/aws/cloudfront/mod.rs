//! CloudFront through its API: invalidations (behind the [`Cdn`] trait, so tests can fake
//! them), the edge functions and the KeyValueStore `edge --apply` publishes, and reading
//! and writing the distribution config — every write conditional (`If-Match`). What is
//! changed in that config is [`distribution`]'s; the cache and response headers policies
//! [`policies`]'; the signed-cookie public key, key group and protected behaviors
//! [`signers`]'.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::error::ProvideErrorMetadata;
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{FunctionConfig, FunctionRuntime, FunctionStage};

use crate::Error;

mod distribution;
mod policies;
mod signers;

pub use distribution::Distribution;
pub use signers::{Signer, path_patterns, signer_name};

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

impl CloudFront {
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
}
