//! Amazon Web Services through their SDKs, and nothing above this reaches an SDK (but the
//! S3 store backend, which is built on the S3 client made here): clients for the
//! environment's credentials (the standard chain: variables, profiles, SSO), CloudFront,
//! CloudWatch, STS, the bucket settings `doctor` audits, and SDK errors in one line.

pub mod audit;
pub mod chain;
pub mod cloudfront;
pub mod cloudwatch;
pub mod error;
pub mod s3;
pub mod sts;

/// The SDK's config loader with driftless's HTTPS client: rustls on *ring*, the crypto
/// the rest of driftless uses, so the AWS-LC C library (and its cmake build, which makes
/// cross-compiling the static release binaries hard) is not linked. Every client — S3,
/// CloudFront, CloudWatch, STS, and the SSO and web-identity credential providers — is
/// built from it. One client per loader, as the SDK's default: a pool shared across
/// loaders could outlive the tokio runtime its connections run on.
pub(crate) fn loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(client)
}
