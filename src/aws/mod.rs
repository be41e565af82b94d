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
