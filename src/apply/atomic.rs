//! Apply on an atomic layout: the release goes into the slot nothing serves, and becomes
//! live by one conditional write of the pointer.
//!
//! pending record (naming the slot) → slot marked incomplete → the slot made to hold
//! exactly the release (and the removed assets it keeps): writes and deletes where it
//! differs, nothing else → slot marked complete → release record → **pointer** (the
//! switch visitors see) → compare-and-swap HEAD → clear pending.
//!
//! Until the pointer moves nothing of the release is served, so a failed or killed apply
//! needs no putting back: the next run drops it (or finishes it, if the pointer had
//! moved). The slot the pointer leaves keeps the previous release whole, so going back to
//! it is one pointer write.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};

use super::{CONCURRENCY, Report, Transfer, interrupted_before, moved, put_content};
use crate::Error;
use crate::failpoint::failpoint;
use crate::ledger::{Entry, Head, Held, HeldLease, Ledger, LedgerError, Pending, Release, Staged};
use crate::plan::Plan;
use crate::plan::facts::{hash_listed, list_under};
use crate::store::{PutMode, StoreError, slot_prefix};

/// What filling a slot took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fill {
    /// Objects written into the slot (new bytes or new headers).
    pub(crate) written: usize,
    /// Of those, copied from the source prefix (a preview's files).
    pub(crate) copied: usize,
    /// Objects removed from the slot.
    pub(crate) deleted: usize,
    /// Objects already right in the slot.
    pub(crate) kept: usize,
}

pub(super) struct Switch<'a> {
    pub(super) ledger: &'a Ledger,
    pub(super) plan: &'a Plan,
    pub(super) head: &'a Head,
    pub(super) live: Option<&'a Release>,
    pub(super) staged: &'a Staged,
    pub(super) lease: &'a HeldLease,
    pub(super) out: &'a dyn Report,
    pub(super) transfer: &'a Transfer,
    /// Where the release's files already are, to copy them from (a preview).
    pub(super) source: Option<&'a Copies>,
}

/// Make `release` live on an atomic layout.
pub(super) async fn apply(s: &Switch<'_>, mut release: Release) -> Result<Release, Error> {
    let ledger = s.ledger;
    // Re-checked under the lock: a canary started since the plan.
    if let Some((c, _)) = ledger.canary().await? {
        return Err(Error::Refused(format!(
            "a canary is running on env.{}: {}: nothing was changed\n  → {}",
            s.plan.env,
            c.describe(),
            crate::plan::guards::canary_resolve(&s.plan.env)
        )));
    }
    let mut pointer = ledger.pointer().await?;
    let slot = pointer
        .as_ref()
        .map_or("a", |p| crate::ledger::other_slot(&p.slot))
        .to_owned();
    let slot = slot.as_str();
    let pending_etag = ledger
        .set_pending(
            &Pending {
                release: release.clone(),
                head: s.head.clone(),
                deletes: Vec::new(),
                slot: Some(slot.to_owned()),
            },
            s.live,
        )
        .await?;
    failpoint("after-pending").await;

    let (mut slots, slots_etag) = ledger.slots().await?;
    let before = slots.get(slot).cloned();
    slots.set(
        slot,
        Some(Held {
            release: release.id.clone(),
            complete: false,
            cache: None,
            edge: None,
        }),
    );
    let slots_etag = ledger.set_slots(&slots, slots_etag.as_deref()).await?;

    let filled = fill(
        &Filling {
            ledger,
            staged: s.staged,
            out: s.out,
            prefix: slot_prefix(slot),
            what: format!("slot {slot}"),
            source: s.source,
        },
        before.as_ref().map(|h| h.release.as_str()),
        &mut release,
    )
    .await;
    // Nothing of it is served: the pending record can go at once.
    let stop = async |e: Error, ledger: &Ledger| {
        let _ = ledger.clear_pending(&pending_etag).await;
        e
    };
    let fill = match filled {
        Ok(f) => f,
        Err(Error::Interrupted(_)) => {
            return Err(stop(interrupted_before(s.plan, s.transfer), ledger).await);
        }
        Err(e) => return Err(stop(e, ledger).await),
    };
    // A slot that was whole and needed no write or delete holds the bytes it held: the
    // cache key keeps naming them (a rollback to it finds the CDN's copies still good).
    let cache = before
        .as_ref()
        .filter(|b| b.complete && fill.written == 0 && fill.deleted == 0)
        .map(|b| b.cache_id().to_owned())
        .filter(|c| *c != release.id);
    let cache_id = cache.clone().unwrap_or_else(|| release.id.clone());
    // Behind CloudFront, the release's rules and routing facts go to the edge before
    // the switch (the pointer's value names them): a rollback to what the slot held,
    // with the same rules, reuses what was published with it.
    let live_edge = pointer
        .as_ref()
        .and_then(|p| slots.get(&p.slot))
        .and_then(|h| h.edge.clone());
    let seen = pointer.clone();
    let edge = match &s.plan.edge {
        Some(rules) if ledger.edge_carried() => {
            let token = match &seen {
                Some(p) => p.token.clone(),
                None => ledger.edge_token().await?,
            };
            let reused = before
                .as_ref()
                .filter(|_| cache.is_some())
                .and_then(|b| b.edge.clone())
                .filter(|e| super::edge::same_rules(e, rules));
            match reused {
                Some(e) => Some(e),
                None => {
                    let published = match super::edge::publish(
                        ledger,
                        &release,
                        rules,
                        live_edge.as_ref(),
                        &token,
                    )
                    .await
                    {
                        Ok(p) => p,
                        Err(e) => return Err(stop(e, ledger).await),
                    };
                    published.map(|done| {
                        if done.written > 0 {
                            s.out.say(format!(
                                "edge: {} KeyValueStore key(s) written ({}) for the release's rules",
                                done.written,
                                crate::text::bytes(done.bytes as u64)
                            ));
                        }
                        // The switch is conditional on the token after these writes.
                        if let Some(p) = &seen {
                            pointer = Some(crate::ledger::Pointer {
                                slot: p.slot.clone(),
                                token: done.token.clone(),
                            });
                        }
                        done.held
                    })
                }
            }
        }
        _ => None,
    };
    slots.set(
        slot,
        Some(Held {
            release: release.id.clone(),
            complete: true,
            cache,
            edge,
        }),
    );
    ledger.set_slots(&slots, Some(&slots_etag)).await?;
    failpoint("after-assets").await;
    if crate::interrupt::requested() {
        return Err(stop(interrupted_before(s.plan, s.transfer), ledger).await);
    }
    if s.lease.lost() {
        return Err(stop(
            moved("the deploy lock was broken by someone else during the deploy".into()),
            ledger,
        )
        .await);
    }
    s.out.say(format!(
        "slot {slot}: {} written{}, {} removed, {} already in place",
        fill.written,
        s.source
            .map(|c| format!(" ({} copied from {})", fill.copied, c.what))
            .unwrap_or_default(),
        fill.deleted,
        fill.kept
    ));

    ledger.write_release(&release, s.live).await?;
    failpoint("after-release").await;
    if let Some(percent) = s.plan.canary {
        let live_cache = pointer
            .as_ref()
            .and_then(|p| slots.get(&p.slot))
            .map(|h| h.cache_id().to_owned());
        let started = start_canary(s, pointer.as_ref(), live_cache, slot, &cache_id, percent)
            .await
            .map(|()| release);
        return match started {
            Ok(r) => {
                ledger.clear_pending(&pending_etag).await?;
                Ok(r)
            }
            Err(e) => Err(stop(e, ledger).await),
        };
    }
    // The switch: one conditional write.
    match ledger
        .switch_pointer(slot, &cache_id, pointer.as_ref())
        .await
    {
        Ok(_) => {}
        Err(LedgerError::Store(
            StoreError::Precondition { .. } | StoreError::AlreadyExists { .. },
        )) => {
            return Err(stop(
                moved(
                    "the live pointer was switched by someone else during the deploy (was the lock broken?)"
                        .into(),
                ),
                ledger,
            )
            .await);
        }
        Err(e) => return Err(e.into()),
    }
    failpoint("after-pointer").await;
    // What the slot held before is no longer served from it: its edge data goes where
    // nothing else names it.
    if let Some(old) = before.as_ref().and_then(|b| b.edge.clone()) {
        super::edge::prune(ledger, &[old]).await;
    }
    ledger.project(slot).await?;
    ledger
        .swap_head(s.head, &release.id)
        .await
        .map_err(|e| match e {
            LedgerError::Store(StoreError::Precondition { .. }) => moved(
                "HEAD was moved by someone else during the deploy (was the lock broken?)".into(),
            ),
            other => other.into(),
        })?;
    failpoint("after-head").await;
    ledger.clear_pending(&pending_etag).await?;
    Ok(release)
}

/// Serve the release just written into `slot` to `percent`% of visitors: its record
/// first (the one `serve` reads, and what stops other deploys), then the split beside
/// the live pointer, which stays where it is (one write, where the edge reads it).
async fn start_canary(
    s: &Switch<'_>,
    pointer: Option<&crate::ledger::Pointer>,
    live_cache: Option<String>,
    slot: &str,
    cache_id: &str,
    percent: u8,
) -> Result<(), Error> {
    let ledger = s.ledger;
    let (Some(seen), Some(live_cache), Some(live)) = (pointer, live_cache, &s.head.release) else {
        return Err(Error::Refused(format!(
            "env.{} has no live release yet: a canary shares visitors with one (deploy without --canary first)",
            s.plan.env
        )));
    };
    let canary = crate::ledger::Canary {
        release: s.plan.new_release.clone(),
        slot: slot.to_owned(),
        cache: cache_id.to_owned(),
        percent,
        live: live.clone(),
        started_at: jiff::Timestamp::now(),
        author: s.plan.actor.author.clone(),
    };
    let etag = match ledger.set_canary(&canary, None).await {
        Ok(e) => e,
        Err(LedgerError::Store(StoreError::AlreadyExists { .. })) => {
            return Err(moved(
                "someone else started a canary during the deploy (was the lock broken?)".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    failpoint("after-canary-record").await;
    match ledger
        .publish_split(seen, &live_cache, Some(&canary.split()))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = ledger.clear_canary(&etag).await;
            Err(match e {
                LedgerError::Store(StoreError::Precondition { .. }) => moved(
                    "the live pointer was switched by someone else during the deploy (was the lock broken?)"
                        .into(),
                ),
                e => e.into(),
            })
        }
    }
}

/// A prefix to fill with one release: a slot, or a preview's.
pub(super) struct Filling<'a> {
    pub(super) ledger: &'a Ledger,
    pub(super) staged: &'a Staged,
    pub(super) out: &'a dyn Report,
    pub(super) prefix: String,
    /// The prefix in words ("slot a", "preview pr-1").
    pub(super) what: String,
    /// Another prefix already holding the release's files (a preview made live):
    /// copied from there, server-side.
    pub(super) source: Option<&'a Copies>,
}

/// A prefix whose files a fill copies, and what each of them is.
pub(crate) struct Copies {
    /// Whose copies they are, in words ("the preview", "live").
    pub(crate) what: &'static str,
    pub(crate) prefix: String,
    pub(crate) manifest: crate::ledger::Manifest,
}

impl Copies {
    /// Where a copy of `entry` is.
    fn has(&self, key: &str, entry: &Entry) -> Option<String> {
        self.manifest
            .get(key)
            .filter(|e| e.sha256 == entry.sha256 && e.attributes() == entry.attributes())
            .map(|_| format!("{}{key}", self.prefix))
    }
}

/// Make the prefix hold exactly `release` and the removed assets it keeps: write what
/// differs, delete what it must not have, and record in `release` the ETag each object
/// has there. `before`: the release it held (its record tells each object's hash by
/// ETag; anything else is hashed).
pub(super) async fn fill(
    s: &Filling<'_>,
    before: Option<&str>,
    release: &mut Release,
) -> Result<Fill, Error> {
    let (ledger, prefix, slot) = (s.ledger, &s.prefix, &s.what);
    // What the slot holds: known from the release it held (by ETag), else hashed.
    let held = match before {
        Some(h) => match ledger.release(h).await {
            Ok(r) => Some(r),
            Err(LedgerError::MissingRelease { .. } | LedgerError::Retired { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let listed = list_under(ledger, prefix).await?;
    let there = hash_listed(ledger, prefix, listed, held.as_ref()).await?;
    let known_entry = |key: &str| held.as_ref().and_then(|h| h.served_entry(key));

    // Each key the slot must hold: (key, entry, how to write it; None: already right).
    let mut todo: Vec<(String, Entry, PutMode, bool)> = Vec::new();
    let mut unknown: Vec<(String, Entry, String)> = Vec::new();
    let mut fill = Fill::default();
    let mut etags: BTreeMap<String, String> = BTreeMap::new();
    for (key, entry) in release.served() {
        match there.get(key) {
            None => todo.push((key.clone(), entry.clone(), PutMode::Create, false)),
            Some(r) if r.sha256.as_deref() != Some(entry.sha256.as_str()) => todo.push((
                key.clone(),
                entry.clone(),
                PutMode::IfMatch(r.etag.clone()),
                false,
            )),
            Some(r) => {
                let known = known_entry(key).filter(|k| k.etag == r.etag);
                match known {
                    Some(k) if k.attributes() == entry.attributes() => {
                        fill.kept += 1;
                        etags.insert(key.clone(), r.etag.clone());
                    }
                    Some(_) => todo.push((
                        key.clone(),
                        entry.clone(),
                        PutMode::IfMatch(r.etag.clone()),
                        true,
                    )),
                    None => unknown.push((key.clone(), entry.clone(), r.etag.clone())),
                }
            }
        }
    }
    // Right bytes, headers not known from a record (a slot filled by `migrate`, or
    // by hand): asked of the store, one HEAD each, rewritten only if they differ.
    let asked: Vec<(String, Entry, String, bool)> = futures::stream::iter(unknown)
        .map(|(key, entry, etag)| async move {
            let same = ledger
                .store()
                .head(&format!("{prefix}{key}"))
                .await?
                .is_some_and(|o| o.meta.etag == etag && o.attrs == entry.attributes());
            Ok::<_, Error>((key, entry, etag, same))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for (key, entry, etag, same) in asked {
        if same {
            fill.kept += 1;
            etags.insert(key, etag);
        } else {
            todo.push((key, entry, PutMode::IfMatch(etag), true));
        }
    }
    let deletes: Vec<(String, String)> = there
        .iter()
        .filter(|(k, _)| release.served_entry(k).is_none())
        .map(|(k, r)| (format!("{prefix}{k}"), r.etag.clone()))
        .collect();

    let bar = s.out.bar((todo.len() + deletes.len()) as u64, "writing");
    let (results, stopped) = crate::interrupt::run_bounded(
        todo,
        CONCURRENCY,
        crate::interrupt::InFlight::Finish,
        "write",
        |(key, entry, mode, same_bytes)| {
            let bar = &bar;
            async move {
                failpoint("site-write").await;
                let to = format!("{prefix}{key}");
                let (r, copied) = match s.source.and_then(|c| c.has(&key, &entry)) {
                    Some(from) if !same_bytes => (
                        ledger
                            .store()
                            .copy(&from, &to, &entry.attributes(), mode)
                            .await,
                        true,
                    ),
                    _ => (
                        put_content(ledger, s.staged, &to, &entry, mode, same_bytes).await,
                        false,
                    ),
                };
                bar.inc(1);
                r.map(|etag| (key.clone(), etag, copied))
                    .map_err(|e| (key, e))
            }
        },
    )
    .await;
    for r in results {
        match r {
            Ok((key, etag, copied)) => {
                fill.written += 1;
                fill.copied += usize::from(copied);
                etags.insert(key, etag);
            }
            Err((key, e)) => {
                bar.finish_and_clear();
                return Err(Error::Other(format!(
                    "writing {key} into {slot} failed: {e} (nothing of the release is served; re-run to try again)"
                )));
            }
        }
    }
    if stopped {
        bar.finish_and_clear();
        return Err(Error::Interrupted(String::new()));
    }
    let deleted: Vec<Result<(), StoreError>> = futures::stream::iter(&deletes)
        .map(|(k, etag)| async move {
            let r = ledger.store().delete(k, Some(etag)).await;
            r.or_else(|e| match e {
                StoreError::NotFound { .. } => Ok(()),
                e => Err(e),
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    if let Some(Err(e)) = deleted.into_iter().find(Result::is_err) {
        return Err(Error::Other(format!(
            "clearing {slot} failed: {e} (nothing of the release is served; re-run to try again)"
        )));
    }
    fill.deleted = deletes.len();
    for (key, entry) in &mut release.manifest {
        if let Some(etag) = etags.get(key) {
            entry.etag.clone_from(etag);
        }
    }
    for (key, kept) in &mut release.kept {
        if let Some(etag) = etags.get(key) {
            kept.entry.etag.clone_from(etag);
        }
    }
    Ok(fill)
}
