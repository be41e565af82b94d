//! Whose credentials an environment uses: STS GetCallerIdentity through the standard
//! AWS chain (and the environment's `profile`). The standard endpoint variables
//! (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`) point it at an emulator.

use std::time::Duration;

use serde::Serialize;

use crate::config::{EnvConfig, StoreUrl};

/// The caller an environment's credentials resolve to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    /// The profile used (`None`: the default chain: environment variables, default
    /// profile, SSO, instance or container role).
    pub profile: Option<String>,
}

/// Is there an STS to ask? Real AWS (no custom S3 endpoint), or one named by the
/// standard endpoint variables.
pub fn has_sts(s3_endpoint: Option<&str>) -> bool {
    s3_endpoint.is_none()
        || std::env::var_os("AWS_ENDPOINT_URL_STS").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
}

/// Ask STS who the credentials for `profile` (in `region`) belong to.
pub async fn resolve(profile: Option<&str>, region: Option<&str>) -> Result<Identity, String> {
    let loader = crate::aws::loader_for(profile, Some(region.unwrap_or("us-east-1")))
        .await
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        );
    let sdk = loader.load().await;
    let client = aws_sdk_sts::Client::new(&sdk);
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::aws::error::one_line(&e, "STS (GetCallerIdentity)", profile))?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_owned(),
        arn: out.arn().unwrap_or_default().to_owned(),
        profile: profile.map(str::to_owned),
    })
}

/// Whose credentials an environment's S3 store uses (STS), as data and as a line;
/// flags a mismatch with the declared `account`.
pub async fn describe(cfg: &EnvConfig) -> (Option<Identity>, String) {
    match &cfg.store {
        StoreUrl::File(_) => (None, "local directory (no AWS identity)".to_owned()),
        StoreUrl::S3 { .. } if !has_sts(cfg.endpoint.as_deref()) => (
            None,
            format!(
                "not resolved: {} is not AWS and AWS_ENDPOINT_URL_STS is not set",
                cfg.endpoint.as_deref().unwrap_or_default()
            ),
        ),
        StoreUrl::S3 { .. } => match resolve(cfg.profile.as_deref(), cfg.region.as_deref()).await {
            Ok(id) => {
                let mismatch = cfg.account.as_ref().is_some_and(|a| *a != id.account);
                let line = format!(
                    "account {} ({}){}",
                    id.account,
                    id.arn,
                    if mismatch {
                        format!(
                            " — MISMATCH: env.{} declares account {}",
                            cfg.name,
                            cfg.account.as_deref().unwrap_or("")
                        )
                    } else {
                        String::new()
                    }
                );
                (Some(id), line)
            }
            Err(e) => (None, format!("unknown ({e})")),
        },
    }
}
