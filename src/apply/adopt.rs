//! Recording the store's objects as a new release (first use on an existing bucket, or
//! out-of-band drift accepted after review): the release record, then HEAD moved by
//! compare-and-swap from what the adoption saw.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::Error;
use crate::digest::hash_bytes;
use crate::ledger::{
    Actor, Entry, Head, Ledger, LedgerError, Manifest, Release, ReleaseKind, new_release_id,
};
use crate::plan::RemoteObject;
use crate::store::StoreError;

/// What the store holds at the site keys (`remote`), as a manifest: the live release's
/// entries where the object is still the one driftless wrote; anything else snapshotted
/// (its bytes kept in the environment's objects) with the headers it is served with.
pub(crate) async fn snapshot_store(
    ledger: &Ledger,
    live: &Manifest,
    remote: &BTreeMap<String, RemoteObject>,
) -> Result<Manifest, Error> {
    let mut manifest = Manifest::new();
    let prefix = ledger.live_prefix().await?.unwrap_or_default();
    for (key, r) in remote {
        let known = live
            .get(key)
            .filter(|e| e.etag == r.etag && Some(&e.sha256) == r.sha256.as_ref());
        if let Some(e) = known {
            manifest.insert(key.clone(), e.clone());
            continue;
        }
        // Not what driftless wrote: snapshot its bytes and record its headers.
        let Some((obj, body)) = ledger.store().get(&format!("{prefix}{key}")).await? else {
            continue;
        };
        let sha = hash_bytes(&body);
        ledger.put_object(&sha, body).await?;
        manifest.insert(
            key.clone(),
            Entry::from_attributes(&sha, obj.meta.size, &obj.attrs, &obj.meta.etag),
        );
    }
    Ok(manifest)
}

/// Why an adoption did not become live.
pub(crate) enum Adopted {
    /// HEAD moved since the store was read: nothing was adopted.
    Moved,
    Failed(Error),
}

/// Make `manifest` (what the store holds, its bytes already in the snapshots) the live
/// release, on top of `live` as `head` named it.
pub(crate) async fn adopt(
    ledger: &Ledger,
    actor: &Actor,
    head: &Head,
    live: Option<&Release>,
    manifest: Manifest,
    message: Option<String>,
) -> Result<Release, Adopted> {
    let release = Release {
        id: new_release_id(Timestamp::now()),
        parent: head.release.clone(),
        env: ledger.env().to_owned(),
        kind: ReleaseKind::Adopt,
        created_at: Timestamp::now(),
        actor: actor.clone(),
        git: None,
        message,
        overrides: Vec::new(),
        tag: None,
        manifest,
        kept: std::collections::BTreeMap::new(),
        delta: None,
        files_if_dropped: None,
        base: None,
        // The store's bytes, served with the rules live was served with.
        edge: live.and_then(|l| l.edge.clone()),
    };
    ledger
        .write_release(&release, live)
        .await
        .map_err(|e| Adopted::Failed(e.into()))?;
    // Atomic layout: the live slot holds what was adopted (it was read from there).
    if let Some(p) = ledger
        .pointer()
        .await
        .map_err(|e| Adopted::Failed(e.into()))?
    {
        let record = async {
            let (mut slots, etag) = ledger.slots().await?;
            slots.set(
                &p.slot,
                Some(crate::ledger::Held {
                    release: release.id.clone(),
                    complete: true,
                    cache: None,
                    edge: None,
                }),
            );
            ledger.set_slots(&slots, etag.as_deref()).await
        };
        record.await.map_err(|e| Adopted::Failed(e.into()))?;
    }
    ledger
        .swap_head(head, &release.id)
        .await
        .map_err(|e| match e {
            LedgerError::Store(StoreError::Precondition { .. }) => Adopted::Moved,
            other => Adopted::Failed(other.into()),
        })?;
    Ok(release)
}
