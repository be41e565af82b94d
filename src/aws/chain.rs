//! Which credentials, region and S3 endpoint an environment would use, as the SDK itself
//! resolves them — for `driftless doctor` with no environment (the self-check). The
//! credentials are resolved (not used): the SDK tags them with the provider that supplied
//! them (environment variables, a profile's keys, SSO, assume-role, web identity, a
//! process, a container or instance role).

use std::time::Duration;

use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::ProvideCredentials as _;
use serde::Serialize;

/// Where an environment's requests would go, and as whom.
#[derive(Debug, Clone, Serialize)]
pub struct Chain {
    /// The S3 endpoint and what set it.
    pub endpoint: String,
    pub region: String,
    /// The credential source, or why none was found.
    pub credentials: Result<String, String>,
}

/// Resolve the chain for a store with these settings (`region`, `profile`, `endpoint` as
/// driftless.toml gives them).
pub async fn resolve(region: Option<&str>, profile: Option<&str>, endpoint: Option<&str>) -> Chain {
    let sdk = crate::aws::loader_for(profile, region).await.load().await;
    let region = match (region, sdk.region()) {
        (Some(r), _) => format!("{r} (driftless.toml)"),
        (None, Some(r)) if env_set("AWS_REGION") || env_set("AWS_DEFAULT_REGION") => {
            format!("{r} (AWS_REGION)")
        }
        (None, Some(r)) => format!("{r} (AWS profile {})", profile.unwrap_or("default")),
        (None, None) => "us-east-1 (driftless's default: no region configured)".to_owned(),
    };
    let endpoint = match crate::aws::s3::endpoint(endpoint) {
        Some((e, from)) => format!("{e} ({from})"),
        None => "Amazon S3 (the region's endpoint)".to_owned(),
    };
    let credentials = match sdk.credentials_provider() {
        None => Err("no credential provider configured".to_owned()),
        Some(provider) => {
            match tokio::time::timeout(Duration::from_secs(20), provider.provide_credentials())
                .await
            {
                Err(_) => Err("no answer within 20 s (an SSO login or role to assume?)".to_owned()),
                Ok(Err(e)) => Err(crate::aws::error::chain(&e)),
                Ok(Ok(c)) => {
                    let features = c
                        .get_property::<Vec<AwsCredentialFeature>>()
                        .cloned()
                        .unwrap_or_default();
                    // Enough to tell two keys apart, never the whole key.
                    let key: Vec<char> = c.access_key_id().chars().collect();
                    let shown = if key.len() > 8 {
                        let (head, tail) = (&key[..4], &key[key.len() - 4..]);
                        format!("{}…{}", String::from_iter(head), String::from_iter(tail))
                    } else {
                        "…".to_owned()
                    };
                    Ok(format!(
                        "{} (access key {shown}{})",
                        source(&features, profile),
                        if c.session_token().is_some() {
                            ", temporary"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
    };
    Chain {
        endpoint,
        region,
        credentials,
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_set(name: &str) -> bool {
    var(name).is_some()
}

/// The provider that supplied credentials, in the words of the AWS CLI's documentation.
fn source(features: &[AwsCredentialFeature], profile: Option<&str>) -> String {
    use AwsCredentialFeature as F;
    let profile = profile
        .map(str::to_owned)
        .or_else(|| var("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_owned());
    let has = |f: F| features.contains(&f);
    if has(F::CredentialsEnvVars) {
        "environment variables (AWS_ACCESS_KEY_ID)".to_owned()
    } else if has(F::CredentialsEnvVarsStsWebIdToken)
        || has(F::CredentialsStsAssumeRoleWebId)
        // aws-config 1.13 tags the environment's web identity like a profile's.
        || has(F::CredentialsProfileStsWebIdToken)
    {
        "web identity (a token file and a role: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN as GitHub Actions' OIDC sets them, or a profile's web_identity_token_file)".to_owned()
    } else if has(F::CredentialsProfileSso) || has(F::CredentialsSso) {
        format!("SSO (profile {profile}; `aws sso login --profile {profile}` when it expires)")
    } else if has(F::CredentialsStsAssumeRole) {
        format!("a role assumed from profile {profile}")
    } else if has(F::CredentialsProfileProcess) || has(F::CredentialsProcess) {
        format!("credential_process of profile {profile}")
    } else if has(F::CredentialsProfile) {
        format!("keys in profile {profile} (~/.aws/credentials or ~/.aws/config)")
    } else if has(F::CredentialsHttp)
        || env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        "the container's role (ECS/EKS credentials endpoint)".to_owned()
    } else if has(F::CredentialsImds) {
        "the EC2 instance's role (instance metadata)".to_owned()
    } else {
        "the AWS default chain".to_owned()
    }
}
