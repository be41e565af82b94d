//! Previews: named releases live never sees, each served from its own prefix
//! (`previews/NAME/`) at its own URL until it expires.
//!
//! `previews.json` under the state prefix names each preview's release, who made it from
//! which commit, when it expires, and whether its prefix holds all of it (a preview being
//! filled is marked incomplete first, as a slot is). It is replaced only by a conditional
//! write, so two previews deployed at once never lose one another.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Ledger, Result, json, json_attrs};
use crate::store::{PutMode, StoreError};

/// Where preview `name` keeps its files.
pub fn preview_prefix(name: &str) -> String {
    format!("previews/{name}/")
}

/// The longest name: one DNS label.
const MAX_NAME: usize = 63;

/// A preview name made of what a person typed (a branch such as `feature/Login_Page`,
/// or `pr-123`): lower-case letters, digits and single hyphens, at most one DNS label
/// long. `None` when nothing usable is left.
pub fn slug(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_ascii() {
        let mut out = out.to_owned();
        out.truncate(MAX_NAME);
        let out = out.trim_end_matches('-').to_owned();
        return (!out.is_empty()).then_some(out);
    }
    // Letters beyond ASCII are kept, as the label's punycode (`xn--…`), so that two
    // names differing in them stay two previews. One over the DNS limit has no name.
    let label = idna::domain_to_ascii(out).ok()?;
    (label.len() <= MAX_NAME && !label.contains('.')).then_some(label)
}

/// One preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub release: String,
    /// Every object of the release is in the preview's prefix.
    pub complete: bool,
    /// The release whose fill last changed the prefix's bytes, when not `release`: the
    /// part of the CDN's cache key (see [`super::Held::cache`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// When the name was first deployed.
    pub created_at: Timestamp,
    /// When it was last deployed.
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The branch it was built from, when git knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The name as it was given (`--preview feature/a_b`), when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Behind CloudFront: its release's edge data as published (see `Held::edge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<serde_json::Value>,
}

impl Preview {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// The id the CDN's cache key carries for this preview's bytes.
    pub fn cache_id(&self) -> &str {
        self.cache.as_deref().unwrap_or(&self.release)
    }
}

/// `previews.json`: every preview of one environment, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previews(pub BTreeMap<String, Preview>);

impl Ledger {
    /// Every preview, and the record's ETag (`None`: no record yet).
    pub async fn previews(&self) -> Result<(Previews, Option<String>)> {
        Ok(
            match self
                .read_json::<Previews>(&self.key("previews.json"))
                .await?
            {
                Some((p, etag)) => (p, Some(etag)),
                None => (Previews::default(), None),
            },
        )
    }

    /// Replace `previews.json`, only if it is still the one read with `etag`. Returns
    /// the new ETag.
    pub async fn set_previews(&self, previews: &Previews, etag: Option<&str>) -> Result<String> {
        let mode = etag.map_or(PutMode::Create, |e| PutMode::IfMatch(e.to_owned()));
        Ok(self
            .store
            .put(
                &self.key("previews.json"),
                json(previews),
                &json_attrs(),
                mode,
            )
            .await?)
    }

    /// Tell the edge (where the live pointer is: a CloudFront KeyValueStore) about
    /// preview `name` as `preview` says, or that it is gone.
    pub async fn publish_preview(&self, name: &str, preview: Option<&Preview>) -> Result<()> {
        let edge = preview.map(|p| {
            (
                p.cache_id(),
                p.expires_at.as_second(),
                p.edge.as_ref().and_then(|e| e.get("root")),
            )
        });
        Ok(self.live_pointer.publish_preview(name, edge).await?)
    }

    /// Change one preview (`None`: forget it), re-reading and retrying when another run
    /// changed another preview meanwhile. Returns the record as written.
    pub async fn update_preview(
        &self,
        name: &str,
        change: impl Fn(Option<&Preview>) -> Option<Preview>,
    ) -> Result<Previews> {
        loop {
            let (mut all, etag) = self.previews().await?;
            match change(all.0.get(name)) {
                Some(p) => {
                    all.0.insert(name.to_owned(), p);
                }
                None => {
                    all.0.remove(name);
                }
            }
            match self.set_previews(&all, etag.as_deref()).await {
                Ok(_) => return Ok(all),
                Err(super::LedgerError::Store(
                    StoreError::Precondition { .. } | StoreError::AlreadyExists { .. },
                )) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(slug("pr-123").as_deref(), Some("pr-123"));
        assert_eq!(
            slug("feature/Login_Page").as_deref(),
            Some("feature-login-page")
        );
        assert_eq!(slug("--a..b--").as_deref(), Some("a-b"));
        // Letters beyond ASCII stay distinct, as punycode.
        let u = slug("Ünïcode branch").unwrap();
        assert!(u.starts_with("xn--"), "{u}");
        assert_ne!(slug("ünïcødé"), slug("unicode"));
        assert_ne!(slug("ünïcødé"), slug("ünïcode"));
        assert_eq!(slug("///"), None);
        let long = slug(&"x".repeat(100)).unwrap();
        assert_eq!(long.len(), MAX_NAME);
        // Cut at the limit, never ending in a hyphen.
        let cut = slug(&format!("{}-y", "x".repeat(62))).unwrap();
        assert_eq!(cut, "x".repeat(62));
    }
}
