//! Recording the store's objects as a new release (first use on an existing bucket, or
//! out-of-band drift accepted after review): the release record, then HEAD moved by
//! compare-and-swap from what the adoption saw.

use jiff::Timestamp;

use crate::Error;
use crate::ledger::{
    Actor, Head, Ledger, LedgerError, Manifest, Release, ReleaseKind, new_release_id,
};
use crate::store::StoreError;

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
    };
    ledger
        .write_release(&release, live)
        .await
        .map_err(|e| Adopted::Failed(e.into()))?;
    ledger
        .swap_head(head, &release.id)
        .await
        .map_err(|e| match e {
            LedgerError::Store(StoreError::Precondition { .. }) => Adopted::Moved,
            other => Adopted::Failed(other.into()),
        })?;
    Ok(release)
}
