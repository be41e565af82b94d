//! AWS Secrets Manager: the private key `driftless sign` signs CloudFront cookies with,
//! when `[edge.auth.signed_cookies] private_key_secret` names a secret.

use crate::Error;
use crate::config::EnvConfig;

/// The string value of secret `id` (a name or an ARN), with the environment's
/// credentials and region.
pub async fn secret_string(cfg: &EnvConfig, id: &str) -> Result<String, Error> {
    let sdk = super::loader_for(cfg.profile.as_deref(), cfg.region.as_deref())
        .await
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            Error::Other(format!(
                "the private key of [edge.auth.signed_cookies]: {}",
                super::error::one_line(
                    &e,
                    &format!("AWS Secrets Manager (GetSecretValue {id})"),
                    cfg.profile.as_deref()
                )
            ))
        })?;
    out.secret_string().map(str::to_owned).ok_or_else(|| {
        Error::Usage(format!(
            "secret {id} holds no string (the PEM of the private key)"
        ))
    })
}
