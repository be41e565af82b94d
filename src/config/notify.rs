//! `[[notify]]`: the webhooks told about deploys, promotions, rollbacks, refusals and
//! holds. Sending them is `notify`.

use serde::{Deserialize, Serialize};

/// One webhook, from `[[notify]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST (https in production; any URL works).
    pub url: String,
    /// `json` (the event, signed when `secret_env` is set) or `slack` (an incoming
    /// webhook's message).
    #[serde(default)]
    pub format: Format,
    /// Environment variable holding the HMAC secret for `json` webhooks.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Which events (default: all): deploy, promote, rollback, auto-rollback, refused,
    /// hold, unhold.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only these environments (default: all).
    #[serde(default)]
    pub envs: Vec<String>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Slack,
}

/// The events a webhook can ask for.
pub const EVENTS: [&str; 7] = [
    "deploy",
    "promote",
    "rollback",
    "auto-rollback",
    "refused",
    "hold",
    "unhold",
];

impl Webhook {
    pub fn validate(&self, i: usize) -> Result<(), crate::config::Invalid> {
        use crate::config::{Invalid, Key};
        let at = |field: &str| Key::of("notify").at(i).then(field);
        let u = reqwest::Url::parse(&self.url).map_err(|e| {
            Invalid::new(
                at("url"),
                format!("notify[{i}].url: {:?} is not a URL ({e})", self.url),
            )
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Invalid::new(
                at("url"),
                format!("notify[{i}].url: {:?} is not http(s)", self.url),
            ));
        }
        if let Some(e) = self.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(Invalid::new(
                at("events"),
                format!(
                    "notify[{i}].events: {e:?} is not an event; choose from {}",
                    EVENTS.join(", ")
                ),
            ));
        }
        if self.format == Format::Slack && self.secret_env.is_some() {
            return Err(Invalid::new(
                at("secret_env"),
                format!(
                    "notify[{i}]: a Slack webhook is not signed; drop secret_env (the URL is the secret)"
                ),
            ));
        }
        Ok(())
    }
}
