//! The atomic layout: two slots (`slots/a/`, `slots/b/`), each holding at most one
//! release, and the live pointer naming the slot visitors are served.
//!
//! A release is written into the slot the pointer does not name, then made live by one
//! conditional pointer write; the slot it replaced keeps the previous release, so going
//! back to it is one write too. `slots.json` under the state prefix says which release
//! each slot holds and whether it holds all of it: a slot being filled is marked
//! incomplete first, so a slot an interrupted apply left half-written is never switched
//! to as if it were whole.

use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError, Result, json, json_attrs};
use crate::config::Layout;
use crate::store::PutMode;

/// The two slots.
pub const SLOTS: [&str; 2] = ["a", "b"];

/// The slot that is not `slot`.
pub fn other(slot: &str) -> &'static str {
    if slot == "a" { "b" } else { "a" }
}

/// What one slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub release: String,
    /// Every object of the release (and the removed assets it keeps) is in place.
    pub complete: bool,
    /// The release whose fill last changed the slot's bytes, when not `release` (a
    /// rollback to the release the slot already held writes nothing): the part of the
    /// CDN's cache key, so what was cached for these bytes stays good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Where the pointer carries the rules (behind CloudFront), the release's edge data
    /// as published with it: `{"root": …, "layout": …}` (see `edge::table`). The
    /// pointer names this root when it names the slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<serde_json::Value>,
}

impl Held {
    /// Does the slot hold the release the cache id `id` names?
    fn release_cache_matches(&self, id: &str) -> bool {
        self.cache_id() == id || self.release == id
    }

    /// The root of the edge rules published with the slot's release.
    pub fn edge_root(&self) -> Option<&serde_json::Value> {
        self.edge.as_ref().and_then(|e| e.get("root"))
    }

    /// The id the CDN's cache key carries for this slot's bytes.
    pub fn cache_id(&self) -> &str {
        self.cache.as_deref().unwrap_or(&self.release)
    }
}

/// `slots.json`: what each slot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slots {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<Held>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<Held>,
    /// The release whose in-place copies are still in the store after a move to the
    /// atomic layout (removed by `driftless migrate ENV --layout atomic --finish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place: Option<String>,
    /// The release copied back to the keys visitors read by a move to the in-place
    /// layout (`driftless migrate ENV --layout in-place`), until `--finish` removes the
    /// slots and the pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaving: Option<String>,
}

impl Slots {
    pub fn get(&self, slot: &str) -> Option<&Held> {
        if slot == "a" {
            self.a.as_ref()
        } else {
            self.b.as_ref()
        }
    }

    pub fn set(&mut self, slot: &str, held: Option<Held>) {
        if slot == "a" {
            self.a = held;
        } else {
            self.b = held;
        }
    }

    /// Every release a slot holds (whole or not): what `gc` and `yank` must keep.
    pub fn releases(&self) -> impl Iterator<Item = &str> {
        [&self.a, &self.b]
            .into_iter()
            .flatten()
            .map(|h| h.release.as_str())
    }
}

/// The live pointer as read: the slot visitors get, and the token a switch is
/// conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub slot: String,
    pub token: String,
}

impl Ledger {
    /// This environment's layout: the store's (a live pointer means atomic, releases
    /// without one in place), which the config must agree with; a store with no
    /// release yet takes the config's, else the default.
    pub async fn layout(&self) -> Result<Layout> {
        self.layout
            .get_or_try_init(|| async {
                let pointer = self.pointer().await?;
                // HEAD only where it changes the answer: an in-place run (the S3
                // default) pays one pointer read, nothing more.
                let wanted = self.configured.unwrap_or(self.fresh) == Layout::Atomic;
                let head = if pointer.is_none() && wanted {
                    self.head().await?.release
                } else {
                    None
                };
                let env = &self.env;
                match (self.configured, pointer, head) {
                    (Some(Layout::InPlace), Some(p), _) => Err(LedgerError::Layout(
                        match self.slots().await?.0.leaving {
                            Some(release) => format!(
                                "env.{env} is moving back to the in-place layout (release {release} is copied to the keys visitors read; the slots and the live pointer are still there): nothing was read or written\n  → once your web server (or `driftless edge {env} --apply`) serves the in-place copies: driftless migrate {env} --layout in-place --finish"
                            ),
                            None => format!(
                                "env.{env} says layout = \"in-place\", but its store has an atomic layout (the live pointer names slot {}): nothing was read or written\n  → set layout = \"atomic\" for env.{env} in driftless.toml, or move it back with `driftless migrate {env} --layout in-place`",
                                p.slot
                            ),
                        },
                    )),
                    (Some(Layout::Atomic), None, Some(live)) => Err(LedgerError::Layout(format!(
                        "env.{env} says layout = \"atomic\", but its store holds release {live} in place (no live pointer): nothing was read or written\n  → move it with `driftless migrate {env} --layout atomic`, or set layout = \"in-place\""
                    ))),
                    (_, Some(_), _) => Ok(Layout::Atomic),
                    (_, None, Some(_)) => Ok(Layout::InPlace),
                    (configured, None, None) => Ok(configured.unwrap_or(self.fresh)),
                }
            })
            .await
            .copied()
    }

    /// What each slot holds, and the record's ETag (`None`: no record yet).
    pub async fn slots(&self) -> Result<(Slots, Option<String>)> {
        Ok(
            match self.read_json::<Slots>(&self.key("slots.json")).await? {
                Some((s, etag)) => (s, Some(etag)),
                None => (Slots::default(), None),
            },
        )
    }

    /// Replace `slots.json`, only if it is still the one read with `etag`. Returns the
    /// new ETag.
    pub async fn set_slots(&self, slots: &Slots, etag: Option<&str>) -> Result<String> {
        let mode = etag.map_or(PutMode::Create, |e| PutMode::IfMatch(e.to_owned()));
        Ok(self
            .store
            .put(&self.key("slots.json"), json(slots), &json_attrs(), mode)
            .await?)
    }

    /// Where the live site's keys are in the store: in place (`""`), in the slot the
    /// live pointer names, or nowhere yet (an atomic store before its first release).
    pub async fn live_prefix(&self) -> Result<Option<String>> {
        Ok(match self.layout().await? {
            Layout::InPlace => Some(String::new()),
            Layout::Atomic => self
                .pointer()
                .await?
                .map(|p| crate::store::slot_prefix(&p.slot)),
        })
    }

    /// The live pointer, if this store has one.
    pub async fn pointer(&self) -> Result<Option<Pointer>> {
        Ok(self
            .live_pointer
            .read()
            .await?
            .map(|(slot, token)| Pointer { slot, token }))
    }

    /// The token edge data is written under: the pointer's, or (no pointer yet) the
    /// store's.
    pub async fn edge_token(&self) -> Result<String> {
        Ok(match self.pointer().await? {
            Some(p) => p.token,
            None => self.live_pointer.token().await?,
        })
    }

    /// The bytes the edge data beside the pointer takes, and its limit (behind
    /// CloudFront).
    pub async fn edge_room(&self) -> Result<Option<(u64, u64)>> {
        Ok(self.live_pointer.room().await?)
    }

    /// Does the pointer carry each release's edge rules (behind CloudFront)?
    pub fn edge_carried(&self) -> bool {
        self.live_pointer.carries_edge()
    }

    /// Write edge data beside the pointer, conditional on `token` (the pointer's, as
    /// read); returns the token the pointer's next write is conditional on.
    pub async fn put_edge_values(
        &self,
        values: &[(String, String)],
        token: &str,
    ) -> Result<String> {
        Ok(self.live_pointer.put_values(values, token).await?)
    }

    /// Remove edge data nothing names any more.
    pub async fn delete_edge_values(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        Ok(self.live_pointer.delete_values(keys).await?)
    }

    /// Remove the live pointer, only if it is still `seen` (a move back in place).
    pub async fn remove_pointer(&self, seen: &Pointer) -> Result<()> {
        Ok(self.live_pointer.remove(&seen.token).await?)
    }

    /// Forget the slots (a move back in place, once their files are gone).
    pub async fn clear_slots(&self) -> Result<()> {
        match self.store.delete(&self.key("slots.json"), None).await {
            Ok(()) | Err(crate::store::StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Point visitors at `slot` (holding `release`), only if the pointer is still `seen`.
    pub async fn switch_pointer(
        &self,
        slot: &str,
        release: &str,
        seen: Option<&Pointer>,
    ) -> Result<Pointer> {
        // The rules switch with the content: the root published with the slot's release.
        let edge = if self.live_pointer.carries_edge() {
            self.slots()
                .await?
                .0
                .get(slot)
                .filter(|h| h.release_cache_matches(release))
                .and_then(Held::edge_root)
                .cloned()
        } else {
            None
        };
        let token = self
            .live_pointer
            .write(slot, release, edge.as_ref(), seen.map(|p| p.token.as_str()))
            .await?;
        Ok(Pointer {
            slot: slot.to_owned(),
            token,
        })
    }
}

impl Ledger {
    /// Copy the projected keys (the error page) from `slot` to the store's root where
    /// the root's copy differs: CloudFront fetches a custom error page by its own path,
    /// without the function, so it cannot follow the pointer. Server-side copies, only of
    /// what changed (a rollback whose releases share the page copies nothing). Returns
    /// the keys copied.
    pub async fn project(&self, slot: &str) -> Result<Vec<String>> {
        let mut copied = Vec::new();
        for key in &self.projected {
            let from = format!("{}{key}", crate::store::slot_prefix(slot));
            let Some(src) = self.store.head(&from).await? else {
                continue;
            };
            let root = self.store.head(key).await?;
            // A server-side copy keeps the ETag (an MD5 of the bytes) and the headers.
            if root
                .as_ref()
                .is_some_and(|r| r.meta.etag == src.meta.etag && r.attrs == src.attrs)
            {
                continue;
            }
            self.store
                .copy(&from, key, &src.attrs, PutMode::Overwrite)
                .await?;
            copied.push(key.clone());
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_name_the_releases_they_hold() {
        let mut s = Slots::default();
        s.set(
            "a",
            Some(Held {
                release: "r1".into(),
                complete: true,
                cache: None,
                edge: None,
            }),
        );
        s.set(
            "b",
            Some(Held {
                release: "r2".into(),
                complete: false,
                cache: None,
                edge: None,
            }),
        );
        assert_eq!(s.releases().collect::<Vec<_>>(), ["r1", "r2"]);
        assert_eq!(other("a"), "b");
        assert_eq!(other("b"), "a");
    }
}
