//! Settling an apply that was interrupted (the process died) from its pending record:
//! dropped if nothing of it was ever served (atomic layout, pointer never moved), else
//! finished — every byte the release needs is in the snapshots, so no local file is needed.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};

use super::{CONCURRENCY, delete_keys};
use crate::Error;
use crate::ledger::{Actor, Entry, Ledger, Pending, Release};
use crate::store::PutMode;

/// What became of an interrupted apply.
pub(crate) enum Recovered {
    /// Finished: the release is live.
    Finished(Release),
    /// Dropped (atomic layout, the pointer never moved to its slot): nothing of it was
    /// ever served, so nothing is published.
    Dropped(Release),
}

/// Settle an apply that was interrupted (the process died), from its pending record:
/// on an atomic layout whose pointer never moved, drop it; otherwise finish it. Every
/// byte the release needs is in `objects/`, so this needs no local files.
pub(crate) async fn recover(
    ledger: &Ledger,
    pending: Pending,
    pending_etag: &str,
    actor: &Actor,
) -> Result<Recovered, Error> {
    if let Some(slot) = &pending.slot {
        let live = ledger.pointer().await?.map(|p| p.slot);
        if live.as_deref() != Some(slot.as_str()) {
            ledger.clear_pending(pending_etag).await?;
            ledger
                .journal(
                    actor,
                    "apply-dropped",
                    Some(&pending.release.id),
                    serde_json::json!({ "slot": slot, "by": pending.release.actor }),
                )
                .await;
            return Ok(Recovered::Dropped(pending.release));
        }
        ledger.project(slot).await?;
    }
    finish(ledger, pending, pending_etag, actor)
        .await
        .map(Recovered::Finished)
}

async fn finish(
    ledger: &Ledger,
    pending: Pending,
    pending_etag: &str,
    actor: &Actor,
) -> Result<Release, Error> {
    let mut release = pending.release;
    let head = ledger.head().await?;
    let already_written = match ledger.release(&release.id).await {
        Ok(r) => Some(r),
        Err(crate::ledger::LedgerError::MissingRelease { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(written) = already_written {
        // Died after writing the release record: only HEAD may be left to move.
        release = written;
        if head.release.as_deref() != Some(release.id.as_str()) {
            if head != pending.head {
                return Err(Error::Other(format!(
                    "an interrupted apply of release {} is pending, but HEAD has moved since; inspect with `driftless status {}`",
                    release.id, release.env
                )));
            }
            ledger.swap_head(&head, &release.id).await?;
        }
    } else {
        if head != pending.head {
            return Err(Error::Other(format!(
                "an interrupted apply of release {} is pending, but HEAD has moved since; inspect with `driftless status {}`",
                release.id, release.env
            )));
        }
        // Only the keys this release changes were (maybe) written; the rest are the
        // parent's, as it left them.
        let parent = match &pending.head.release {
            Some(id) => Some(ledger.release(id).await?),
            None => None,
        };
        let changed: Vec<(String, Entry)> = release
            .manifest
            .iter()
            .filter(|(k, e)| {
                parent
                    .as_ref()
                    .and_then(|p| p.manifest.get(*k))
                    .is_none_or(|p| !p.same_as(e))
            })
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let etags: BTreeMap<String, String> = futures::stream::iter(changed)
            .map(|(key, entry)| async move {
                let now = ledger.store().head(&key).await?;
                let etag = match now {
                    Some(o) if !entry.etag.is_empty() && o.meta.etag == entry.etag => o.meta.etag,
                    Some(o) if o.attrs == entry.attributes() => o.meta.etag,
                    other => {
                        let mode = other.map_or(PutMode::Create, |o| PutMode::IfMatch(o.meta.etag));
                        ledger
                            .content_to_key(&entry.sha256, &key, &entry.attributes(), mode)
                            .await?
                    }
                };
                Ok::<_, Error>((key, etag))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for (k, etag) in etags {
            if let Some(e) = release.manifest.get_mut(&k) {
                e.etag = etag;
            }
        }
        ledger.write_release(&release, parent.as_ref()).await?;
        ledger.swap_head(&head, &release.id).await?;
    }
    let kept = delete_keys(ledger, &pending.deletes).await;
    ledger.clear_pending(pending_etag).await?;
    ledger
        .journal(
            actor,
            "recovered",
            Some(&release.id),
            serde_json::json!({ "interrupted_by": release.actor, "kept": kept }),
        )
        .await;
    Ok(release)
}
