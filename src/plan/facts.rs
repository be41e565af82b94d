//! Read what an environment's store actually holds at the site keys.
//!
//! A key whose ETag matches the live manifest takes its content hash from the manifest;
//! any other key is downloaded and hashed, so drift is judged on content, never on an
//! ETag format (multipart, copies, or a store that re-tags on metadata changes).

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};

use crate::Error;
use crate::ledger::{Ledger, Release};
use crate::plan::RemoteObject;

/// Requests in flight at once. High enough to hide a region's round trip (64 writes of
/// 25 ms each in flight ≈ 2,500 files a second); a store that cannot take it throttles, and
/// the S3 client's adaptive retry mode then paces the requests.
pub(crate) const CONCURRENCY: usize = 64;

/// The site objects in the store (state prefix excluded), by key, without content
/// hashes: enough for the listing digest.
pub(crate) async fn list_site(ledger: &Ledger) -> Result<BTreeMap<String, RemoteObject>, Error> {
    Ok(ledger
        .store()
        .list_except(ledger.prefix())
        .await?
        .into_iter()
        .map(|m| {
            (
                m.key,
                RemoteObject {
                    size: m.size,
                    etag: m.etag,
                    sha256: None,
                },
            )
        })
        .collect())
}

/// The site objects with their content hashes.
pub(crate) async fn read_site(
    ledger: &Ledger,
    live: Option<&Release>,
) -> Result<BTreeMap<String, RemoteObject>, Error> {
    let listed = list_site(ledger).await?;
    let store = ledger.store();
    let resolved: Vec<Option<(String, RemoteObject)>> = futures::stream::iter(listed)
        .map(|(key, r)| async move {
            let known = live
                .and_then(|l| l.manifest.get(&key))
                .filter(|e| e.etag == r.etag && e.size == r.size)
                .map(|e| e.sha256.clone());
            if let Some(sha) = known {
                return Ok::<_, Error>(Some((
                    key,
                    RemoteObject {
                        sha256: Some(sha),
                        ..r
                    },
                )));
            }
            // Unknown to the live release: judge it by its bytes (streamed).
            Ok(store.hash(&key).await?.map(|(obj, sha)| {
                let remote = RemoteObject {
                    size: obj.meta.size,
                    etag: obj.meta.etag,
                    sha256: Some(sha),
                };
                (key, remote)
            }))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(resolved.into_iter().flatten().collect())
}
