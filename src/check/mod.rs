//! After a release goes live: what visitors get through the environment's URL (`verify`),
//! whether it stays healthy (`watch`: when to roll back), and the TLS behind the URL.
//! Both start from the same [`Target`].

pub mod tls;
pub mod verify;
pub mod watch;

use crate::Error;
use crate::config::EnvConfig;
use crate::ledger::{Entry, Ledger, LedgerError, Manifest, Release};

/// What a check of an environment looks at: its URL, its live release and the release
/// before (to know what changed).
pub struct Target {
    /// The environment's `url` as configured.
    pub url: String,
    /// The URL without a trailing slash.
    pub base: String,
    pub live: Release,
    /// The previous release's manifest: `None` for the first release, or when gc
    /// collected it (then every file counts as changed).
    pub parent: Option<Manifest>,
    /// A preview's name when the target is a preview (at its `preview_url`, against
    /// live), not live.
    pub preview: Option<String>,
}

impl Target {
    /// Read it for `env`; `what` names the check for the errors ("verify", "watch").
    pub async fn read(ledger: &Ledger, env: &EnvConfig, what: &str) -> Result<Self, Error> {
        let name = &env.name;
        let Some(url) = &env.url else {
            return Err(Error::Usage(format!(
                "env.{name} has no `url`: {what} sends its requests through the URL visitors use; add it, e.g. url = \"https://{name}.example.com\""
            )));
        };
        let (_, live) = ledger.live().await?;
        let Some(live) = live else {
            return Err(Error::Usage(format!(
                "{name} has no live release to {what}"
            )));
        };
        let parent = match &live.parent {
            Some(p) => match ledger.release(p).await {
                Ok(r) => Some(r.manifest),
                Err(LedgerError::Retired { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        Ok(Self {
            url: url.clone(),
            base: url.trim_end_matches('/').to_owned(),
            live,
            parent,
            preview: None,
        })
    }

    /// Preview `name` at its `preview_url`; what changed is what differs from live.
    /// `Ok(Err(why))` when there is nothing to check it through.
    pub async fn preview(
        ledger: &Ledger,
        env: &EnvConfig,
        name: &str,
        release: &str,
    ) -> Result<std::result::Result<Self, String>, Error> {
        let Some(url) = env.preview_url(name) else {
            return Ok(Err(format!(
                "env.{} has no preview_url, so preview {name} cannot be checked where reviewers saw it",
                env.name
            )));
        };
        let live = ledger.release(release).await?;
        let parent = ledger.live().await?.1.map(|l| l.manifest);
        Ok(Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            url,
            live,
            parent,
            preview: Some(name.to_owned()),
        }))
    }

    /// A canary's release, through the environment's URL, against the live release it
    /// shares visitors with: what changed is what differs from live.
    pub async fn canary(
        ledger: &Ledger,
        env: &EnvConfig,
        canary: &crate::ledger::Canary,
    ) -> Result<Self, Error> {
        let live = Self::read(ledger, env, "watch").await?;
        Ok(Self {
            parent: Some(live.live.manifest),
            live: ledger.release(&canary.release).await?,
            ..live
        })
    }

    /// Paths whose content or headers changed in the live release since its parent (all
    /// of them for a first release, or when the parent was collected).
    pub fn changed(&self) -> Vec<(String, Entry)> {
        self.live
            .manifest
            .iter()
            .filter(|(k, e)| {
                self.parent
                    .as_ref()
                    .and_then(|p| p.get(*k))
                    .is_none_or(|p| p.sha256 != e.sha256 || !p.same_headers(e))
            })
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }
}
