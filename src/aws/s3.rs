//! S3 clients: the one the S3 store runs on, and the reads `doctor` makes of a bucket's
//! settings.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};

/// Where and how to reach one bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    /// Fixed credentials, for embedding driftless as a library (and its tests). The CLI
    /// never sets these: it always uses the standard AWS credential chain.
    pub static_credentials: Option<(String, String)>,
}

/// An S3 client for `s`: the standard credential chain (or fixed credentials), the
/// environment's region, profile and endpoint; checksums only when required (some
/// S3-compatible servers reject streaming trailers), adaptive retries, path-style
/// addressing for custom endpoints.
pub async fn client(s: &S3Settings) -> Client {
    let mut loader = crate::aws::loader_for(s.profile.as_deref(), s.region.as_deref()).await;
    if let Some(e) = &s.endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some((id, secret)) = &s.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "driftless-static",
        ));
    }
    let sdk = loader.load().await;
    let endpoint = endpoint(s.endpoint.as_deref());
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        // Some S3-compatible servers reject streaming checksum trailers.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Adaptive: besides retrying with backoff, the client paces its own requests
        // when the store throttles (503 SlowDown), so many concurrent writes adapt to
        // what the store takes instead of hammering it.
        .retry_config(RetryConfig::adaptive().with_max_attempts(6))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        );
    if sdk.region().is_none() {
        conf = conf.region(Region::new("us-east-1"));
    }
    if endpoint.is_some() {
        // Custom endpoints (MinIO, SeaweedFS, loopback) need path-style addressing.
        conf = conf.force_path_style(true);
    }
    Client::from_conf(conf.build())
}

/// The S3 endpoint a client for `configured` (driftless.toml's `endpoint`) talks to, and
/// what set it: the config, then the SDK's variables; `None` for Amazon S3 itself.
pub fn endpoint(configured: Option<&str>) -> Option<(String, &'static str)> {
    let var = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| (v, name))
    };
    configured
        .map(|e| (e.to_owned(), "driftless.toml"))
        .or_else(|| var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| var("AWS_ENDPOINT_URL"))
}

/// An S3 client for `env`'s store (its region, endpoint and profile).
pub async fn client_for(env: &crate::config::EnvConfig) -> Client {
    let (bucket, prefix) = match &env.store {
        crate::config::StoreUrl::S3 { bucket, prefix } => (bucket.clone(), prefix.clone()),
        crate::config::StoreUrl::File(_) => (String::new(), String::new()),
    };
    client(&S3Settings {
        bucket,
        prefix,
        region: env.region.clone(),
        endpoint: env.endpoint.clone(),
        profile: env.profile.clone(),
        static_credentials: None,
    })
    .await
}
