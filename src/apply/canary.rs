//! Ending or changing a running canary, under the environment's lock.
//!
//! - **finish**: the live pointer moves to the canary's slot (one conditional write,
//!   which drops the split), then HEAD follows and the record goes. Interrupted after the
//!   pointer moved, everyone is already served the canary; running it again completes it.
//! - **abort**: the split is dropped beside the pointer, which never moved (one write
//!   where the edge reads it), then the record goes. Everyone is back on live; nothing
//!   cached needs invalidating (each release has its own cache key).
//! - **share**: the record and the split get the new share.

use super::moved;
use crate::Error;
use crate::ledger::{Canary, Ledger, LedgerError, Pointer, Release};
use crate::store::StoreError;

/// The running canary, its record's ETag, and the live pointer beside it.
async fn running(ledger: &Ledger, env: &str) -> Result<(Canary, String, Pointer), Error> {
    let Some((canary, etag)) = ledger.canary().await? else {
        return Err(Error::Usage(format!(
            "no canary is running on {env}\n  → start one with `driftless deploy {env} --canary 10`"
        )));
    };
    let Some(pointer) = ledger.pointer().await? else {
        return Err(Error::Other(format!(
            "{env}: a canary record without a live pointer ({})",
            canary.describe()
        )));
    };
    Ok((canary, etag, pointer))
}

fn switched(e: LedgerError) -> Error {
    match e {
        LedgerError::Store(StoreError::Precondition { .. }) => moved(
            "the live pointer was switched by someone else meanwhile (was the lock broken?)".into(),
        ),
        other => other.into(),
    }
}

/// The id the cache key carries for what `slot` holds.
async fn cache_of(ledger: &Ledger, slot: &str) -> Result<String, Error> {
    let (slots, _) = ledger.slots().await?;
    slots
        .get(slot)
        .map(|h| h.cache_id().to_owned())
        .ok_or_else(|| Error::Other(format!("slot {slot} holds no release (slots.json)")))
}

/// Make the canary live for everyone. Returns it.
pub(crate) async fn finish(ledger: &Ledger, env: &str) -> Result<(Canary, Release), Error> {
    let (canary, etag, pointer) = running(ledger, env).await?;
    let head = ledger.head().await?;
    let at_live = head.release.as_deref() == Some(canary.live.as_str());
    let at_canary = head.release.as_deref() == Some(canary.release.as_str());
    if !at_live && !at_canary {
        return Err(moved(format!(
            "HEAD names release {} since the canary started from {}",
            head.release.as_deref().unwrap_or("(none)"),
            canary.live
        )));
    }
    let (slots, _) = ledger.slots().await?;
    if !slots
        .get(&canary.slot)
        .is_some_and(|h| h.release == canary.release && h.complete)
    {
        return Err(Error::Other(format!(
            "slot {} no longer holds the whole canary release {} (slots.json): nothing was changed\n  → driftless canary {env} --abort",
            canary.slot, canary.release
        )));
    }
    let release = ledger.release(&canary.release).await?;
    // The switch: the pointer names the canary's slot, without a split.
    ledger
        .switch_pointer(&canary.slot, &canary.cache, Some(&pointer))
        .await
        .map_err(switched)?;
    crate::failpoint::failpoint("after-canary-pointer").await;
    ledger.project(&canary.slot).await?;
    if at_live {
        ledger
            .swap_head(&head, &canary.release)
            .await
            .map_err(|e| match e {
                LedgerError::Store(StoreError::Precondition { .. }) => {
                    moved("HEAD was moved by someone else meanwhile (was the lock broken?)".into())
                }
                other => other.into(),
            })?;
    }
    ledger.clear_canary(&etag).await?;
    Ok((canary, release))
}

/// Take the canary back: everyone is served live. Returns it.
pub(crate) async fn abort(ledger: &Ledger, env: &str) -> Result<Canary, Error> {
    let (canary, etag, pointer) = running(ledger, env).await?;
    if pointer.slot == canary.slot {
        return Err(Error::Refused(format!(
            "a finish of the canary ({}) was interrupted after the pointer moved: everyone is served it already; nothing was changed\n  → driftless canary {env} --finish",
            canary.describe()
        )));
    }
    let live = cache_of(ledger, &pointer.slot).await?;
    ledger
        .publish_split(&pointer, &live, None)
        .await
        .map_err(switched)?;
    ledger.clear_canary(&etag).await?;
    Ok(canary)
}

/// Serve the canary to `percent`% of visitors from now on. Returns it as it was.
pub(crate) async fn share(ledger: &Ledger, env: &str, percent: u8) -> Result<Canary, Error> {
    let (canary, etag, pointer) = running(ledger, env).await?;
    let mut changed = canary.clone();
    changed.percent = percent;
    let live = cache_of(ledger, &pointer.slot).await?;
    ledger.set_canary(&changed, Some(&etag)).await?;
    ledger
        .publish_split(&pointer, &live, Some(&changed.split()))
        .await
        .map_err(switched)?;
    Ok(canary)
}
