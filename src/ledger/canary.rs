//! A canary: a release written into the idle slot and served to a share of visitors
//! while everyone else stays on the live release, until it is finished (the pointer
//! moves to it, HEAD follows) or aborted (the share drops to nothing).
//!
//! `canary.json` under the state prefix names the release, its slot and share, who
//! started it and when. It is the record `serve` follows; behind CloudFront the same
//! split is also in the live pointer's KeyValueStore value, which the function reads in
//! the same one read as the pointer. A visitor's side comes from their bucket (0–99):
//! the `driftless-bucket` cookie when it holds one, else a hash of their address and
//! user agent ([`crate::edge::visitor_bucket`]); buckets below the share get the canary.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Ledger, Result, json, json_attrs};
use crate::store::{PutMode, Split, StoreError};

/// The canary running on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    pub release: String,
    /// The slot holding it (the one the pointer does not name).
    pub slot: String,
    /// The id in the CDN's cache key for the slot's bytes.
    pub cache: String,
    /// The share of visitors it is served to, 1–99.
    pub percent: u8,
    /// The live release when it started: the one visitors outside the share get.
    pub live: String,
    pub started_at: Timestamp,
    pub author: String,
}

impl Canary {
    /// What the edge is told.
    pub fn split(&self) -> Split {
        Split {
            slot: self.slot.clone(),
            release: self.cache.clone(),
            percent: self.percent,
            edge: None,
        }
    }

    /// One line for people: "release R on 10% of visitors since T (by A)".
    pub fn describe(&self) -> String {
        format!(
            "release {} is on {}% of visitors since {} (by {}); the others get {}",
            self.release,
            self.percent,
            crate::text::short_time(self.started_at),
            self.author,
            self.live
        )
    }
}

/// One step of a canary's life, kept in `canaries.json` for `log`: started on a share,
/// the share changed, finished (live for everyone) or aborted (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStep {
    pub release: String,
    /// "start", "share", "finish" or "abort".
    pub step: String,
    /// The share after this step (before it, for finish and abort).
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub by: String,
    pub at: Timestamp,
}

/// The steps kept: the newest this many.
const CANARY_STEPS: usize = 500;

impl Ledger {
    /// Every canary step kept, oldest first.
    pub async fn canary_steps(&self) -> Result<Vec<CanaryStep>> {
        Ok(self
            .state_json::<Vec<CanaryStep>>("canaries.json")
            .await?
            .map(|(s, _)| s)
            .unwrap_or_default())
    }

    /// Add a step (under the lock that made it; conditional on what was read).
    pub async fn record_canary_step(&self, step: CanaryStep) -> Result<()> {
        let mut steps = self.canary_steps().await?;
        steps.push(step);
        let over = steps.len().saturating_sub(CANARY_STEPS);
        steps.drain(..over);
        self.put_state_json("canaries.json", &steps).await
    }

    /// The running canary and its record's ETag, if there is one.
    pub async fn canary(&self) -> Result<Option<(Canary, String)>> {
        self.read_json::<Canary>(&self.key("canary.json")).await
    }

    /// Write the canary record: a new one only if there is none (`etag` `None`), else
    /// only if it is still the one read with `etag`. Returns the new ETag.
    pub async fn set_canary(&self, canary: &Canary, etag: Option<&str>) -> Result<String> {
        let mode = etag.map_or(PutMode::Create, |e| PutMode::IfMatch(e.to_owned()));
        Ok(self
            .store
            .put(&self.key("canary.json"), json(canary), &json_attrs(), mode)
            .await?)
    }

    /// Forget the canary, only if its record is still the one read with `etag`.
    pub async fn clear_canary(&self, etag: &str) -> Result<()> {
        match self
            .store
            .delete(&self.key("canary.json"), Some(etag))
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Tell the edge to serve `split` (`None`: live to everyone) beside the live
    /// pointer `seen`, which stays where it is. One conditional write where the edge
    /// reads the pointer itself (a KeyValueStore); nothing where it is the store's own
    /// (`serve` reads `canary.json`). Returns the pointer's new token.
    pub async fn publish_split(
        &self,
        seen: &super::Pointer,
        live_cache: &str,
        split: Option<&Split>,
    ) -> Result<super::Pointer> {
        // Both sides keep their rules: the live slot's root and the canary slot's.
        let (edge, split) = if self.live_pointer.carries_edge() {
            let (slots, _) = self.slots().await?;
            let root = |slot: &str| slots.get(slot).and_then(super::Held::edge_root).cloned();
            let split = split.map(|s| Split {
                edge: root(&s.slot),
                ..s.clone()
            });
            (root(&seen.slot), split)
        } else {
            (None, split.cloned())
        };
        let token = self
            .live_pointer
            .write_split(
                &seen.slot,
                live_cache,
                edge.as_ref(),
                split.as_ref(),
                &seen.token,
            )
            .await?;
        Ok(super::Pointer {
            slot: seen.slot.clone(),
            token,
        })
    }
}
