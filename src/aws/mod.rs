//! Amazon Web Services through their SDKs, and nothing above this reaches an SDK (but the
//! S3 store backend, which is built on the S3 client made here): clients for the
//! environment's credentials (the standard chain: variables, profiles, SSO), CloudFront,
//! CloudWatch, STS, the bucket settings `doctor` audits, and SDK errors in one line.

pub mod audit;
pub mod chain;
pub mod cloudfront;
pub mod cloudwatch;
pub mod error;
pub mod kvs;
pub mod s3;
pub mod secrets;
pub mod sts;

/// driftless's HTTPS client for the SDK: rustls on *ring*, the crypto the rest of
/// driftless uses, so the AWS-LC C library (and its cmake build, which makes
/// cross-compiling the static release binaries hard) is not linked. One client per
/// loader, as the SDK's default: a pool shared across loaders could outlive the tokio
/// runtime its connections run on.
fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK's config loader for an environment's `profile` and `region`, on driftless's
/// HTTPS client; every client — S3, CloudFront, CloudWatch, STS — is built from it. A
/// profile named in driftless.toml is what the environment's credentials come from, as
/// with `aws --profile NAME`: credentials in the environment variables (which a CI job
/// may have exported for another account) are not used for it. Without one, the standard chain (variables,
/// `AWS_PROFILE`, SSO, web identity, container, instance).
pub(crate) async fn loader_for(
    profile: Option<&str>,
    region: Option<&str>,
) -> aws_config::ConfigLoader {
    let region = region.map(|r| aws_config::Region::new(r.to_owned()));
    // One client for the SDK and the profile's own providers (SSO, a role to assume).
    let client = https_client();
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(client.clone());
    if let Some(r) = &region {
        loader = loader.region(r.clone());
    }
    let Some(profile) = profile else {
        return loader;
    };
    // The profile's own providers (SSO, a role to assume) call AWS in its region.
    let region = match region {
        Some(r) => Some(r),
        None => {
            use aws_config::meta::region::ProvideRegion as _;
            aws_config::profile::ProfileFileRegionProvider::builder()
                .profile_name(profile)
                .build()
                .region()
                .await
        }
    };
    let config = aws_config::provider_config::ProviderConfig::without_region()
        .with_region(region)
        .with_http_client(client)
        .with_behavior_version(Some(aws_config::BehaviorVersion::latest()));
    let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .configure(&config)
        .profile_name(profile)
        .build();
    loader
        .profile_name(profile)
        .credentials_provider(credentials)
}
