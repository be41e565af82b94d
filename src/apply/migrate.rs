//! Moving an environment from in place to the atomic layout, with no moment where
//! visitors get an error: the live release is copied into slot `a` (server-side, from
//! the keys it is served from), the slot marked whole, then the pointer created. The
//! in-place copies stay served until the web server is rooted at `current`; `--finish`
//! removes them afterwards, each only if it still holds what the release put there.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};

use super::{CONCURRENCY, Report};
use crate::Error;
use crate::ledger::{Held, Ledger, Release};
use crate::store::{PutMode, StoreError, slot_prefix};

/// Create the pointer of a store whose live release a slot already holds whole (the
/// first pointer in a KeyValueStore created after the move): only if there is none.
pub(crate) async fn first_pointer(
    ledger: &Ledger,
    slot: &str,
    cache_id: &str,
) -> Result<(), Error> {
    ledger.switch_pointer(slot, cache_id, None).await?;
    Ok(())
}

/// Copy `live` into slot `a` and create the pointer. Returns the objects copied.
pub(crate) async fn to_atomic(
    ledger: &Ledger,
    live: &Release,
    out: &dyn Report,
) -> Result<usize, Error> {
    if let Some(p) = ledger.pointer().await? {
        return Err(Error::Refused(format!(
            "{} already has the atomic layout (the live pointer names slot {}): nothing was changed",
            ledger.env(),
            p.slot
        )));
    }
    let slot = "a";
    let prefix = slot_prefix(slot);
    let (mut slots, etag) = ledger.slots().await?;
    slots.set(
        slot,
        Some(Held {
            release: live.id.clone(),
            complete: false,
            cache: None,
            edge: None,
        }),
    );
    slots.in_place = Some(live.id.clone());
    let etag = ledger.set_slots(&slots, etag.as_deref()).await?;
    // One listing: the keys served in place now, and what an earlier, interrupted move
    // left in the slot.
    let (there, in_place): (BTreeMap<String, String>, BTreeMap<String, String>) = ledger
        .store()
        .list_except(ledger.prefix())
        .await?
        .into_iter()
        .map(|m| (m.key, m.etag))
        .partition(|(k, _)| k.starts_with(&prefix));
    let bar = out.bar(live.served().count() as u64, "copying");
    let copied: Vec<()> = futures::stream::iter(live.served())
        .map(|(key, entry)| {
            let (dest, bar, there, in_place) = (format!("{prefix}{key}"), &bar, &there, &in_place);
            async move {
                let mode = there
                    .get(&dest)
                    .map_or(PutMode::Create, |e| PutMode::IfMatch(e.clone()));
                let attrs = entry.attributes();
                // From the key it is served from, if it still holds the release's bytes;
                // else from the snapshots.
                if in_place.get(key) == Some(&entry.etag) {
                    ledger.store().copy(key, &dest, &attrs, mode).await?;
                } else {
                    ledger
                        .content_to_key(&entry.sha256, &dest, &attrs, mode)
                        .await?;
                }
                bar.inc(1);
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    slots.set(
        slot,
        Some(Held {
            release: live.id.clone(),
            complete: true,
            cache: None,
            edge: None,
        }),
    );
    ledger.set_slots(&slots, Some(&etag)).await?;
    ledger.switch_pointer(slot, &live.id, None).await?;
    Ok(copied.len())
}

/// Remove the in-place copies a move to the atomic layout left. Returns the keys
/// removed and those left (changed since by someone else).
pub(crate) async fn finish(ledger: &Ledger) -> Result<(usize, Vec<String>), Error> {
    let (mut slots, etag) = ledger.slots().await?;
    let Some(id) = slots.in_place.clone() else {
        return Ok((0, Vec::new()));
    };
    let release = ledger.release(&id).await?;
    let listed = ledger.store().list_except(ledger.prefix()).await?;
    let in_place: Vec<(String, String)> = listed
        .into_iter()
        .filter(|m| {
            !m.key.starts_with("slots/")
                && m.key != crate::store::POINTER_KEY
                && !ledger.projected().contains(&m.key)
        })
        .map(|m| (m.key, m.etag))
        .collect();
    let (mut ours, unsure): (Vec<_>, Vec<_>) = in_place.into_iter().partition(|(k, e)| {
        release
            .served_entry(k)
            .is_some_and(|entry| &entry.etag == e)
    });
    // An ETag other than the release's is not proof of a hand edit: the copies a move
    // back in place made (`to_in_place`) got ETags of their own. Judged by their bytes,
    // the ones that hold exactly the release's content are driftless's own.
    let store = ledger.store();
    let judged: Vec<(String, String, bool)> = futures::stream::iter(unsure)
        .map(|(key, etag)| {
            let release = &release;
            async move {
                let same = match release.served_entry(&key) {
                    Some(entry) => store
                        .hash(&key)
                        .await?
                        .filter(|(obj, _)| obj.meta.etag == etag)
                        .is_some_and(|(_, sha)| sha == entry.sha256),
                    None => false,
                };
                Ok::<_, Error>((key, etag, same))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut left = Vec::new();
    for (key, etag, same) in judged {
        if same {
            ours.push((key, etag));
        } else {
            left.push((key, etag));
        }
    }
    left.sort();
    delete_all(
        ledger,
        ours.iter().map(|(k, e)| (k.as_str(), Some(e.as_str()))),
    )
    .await?;
    slots.in_place = None;
    ledger.set_slots(&slots, etag.as_deref()).await?;
    Ok((ours.len(), left.into_iter().map(|(k, _)| k).collect()))
}

/// Move back to the in-place layout, first half: copy the live release from the slot the
/// pointer names to the keys it is served from in place (server-side; only where they
/// differ), and record the move. The slots and the pointer stay, so whatever serves them
/// keeps serving the same bytes until `finish_in_place`. Returns the objects copied.
pub(crate) async fn to_in_place(
    ledger: &Ledger,
    live: &Release,
    out: &dyn Report,
) -> Result<usize, Error> {
    let env = ledger.env();
    let Some(pointer) = ledger.pointer().await? else {
        return Err(Error::Refused(format!(
            "{env} has no live pointer: it is in place already (nothing was changed)"
        )));
    };
    let (mut slots, etag) = ledger.slots().await?;
    let whole = slots
        .get(&pointer.slot)
        .is_some_and(|h| h.complete && h.release == live.id);
    if !whole {
        return Err(Error::Refused(format!(
            "the live pointer of {env} names slot {}, which does not hold live release {} whole: nothing was changed\n  → `driftless status {env}`; the next deploy or rollback repairs it",
            pointer.slot, live.id
        )));
    }
    let prefix = slot_prefix(&pointer.slot);
    let (in_slot, at_root): (BTreeMap<String, String>, BTreeMap<String, String>) = ledger
        .store()
        .list_except(ledger.prefix())
        .await?
        .into_iter()
        .map(|m| (m.key, m.etag))
        .partition(|(k, _)| k.starts_with("slots/"));
    let bar = out.bar(live.served().count() as u64, "copying");
    let copied: Vec<bool> = futures::stream::iter(live.served())
        .map(|(key, entry)| {
            let (from, bar, in_slot, at_root) =
                (format!("{prefix}{key}"), &bar, &in_slot, &at_root);
            async move {
                let now = at_root.get(key);
                let copied = if now.is_some() && now == in_slot.get(&from) {
                    false
                } else {
                    let mode = now.map_or(PutMode::Create, |e| PutMode::IfMatch(e.clone()));
                    ledger
                        .store()
                        .copy(&from, key, &entry.attributes(), mode)
                        .await?;
                    true
                };
                bar.inc(1);
                Ok::<_, Error>(copied)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    slots.leaving = Some(live.id.clone());
    ledger.set_slots(&slots, etag.as_deref()).await?;
    Ok(copied.into_iter().filter(|c| *c).count())
}

/// Move back to the in-place layout, second half: remove the live pointer (only if it
/// has not moved), then every slot file, then the slots' record. Safe to run again after
/// an interruption. Returns the slot files removed.
pub(crate) async fn finish_in_place(ledger: &Ledger) -> Result<usize, Error> {
    if let Some(p) = ledger.pointer().await? {
        ledger.remove_pointer(&p).await?;
    }
    let files = ledger.store().list("slots/").await?;
    delete_all(ledger, files.iter().map(|m| (m.key.as_str(), None))).await?;
    ledger.clear_slots().await?;
    Ok(files.len())
}

/// Delete `keys` (each only if it still has the ETag given with it), concurrently; a key
/// already gone is no error.
pub(super) async fn delete_all<'a>(
    ledger: &Ledger,
    keys: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), Error> {
    futures::stream::iter(keys)
        .map(|(key, etag)| async move {
            match ledger.store().delete(key, etag).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
