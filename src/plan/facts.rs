//! Everything a plan decides on, read once: the environment's state (HEAD, the live
//! release, an interrupted apply, holds, the lock), what the store holds at the site keys,
//! the base, and whether the registered features are in the build and live. Reading is
//! the plan's only I/O; the guards and the plan built from these are pure.
//!
//! A store key whose ETag matches the live manifest takes its content hash from the
//! manifest; any other key is downloaded and hashed, so drift is judged on content,
//! never on an ETag format (multipart, copies, or a store that re-tags on metadata
//! changes).

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};

use crate::Error;
use crate::ledger::{Ledger, Release, ReleaseKind, ReleaseRef};
use crate::plan::RemoteObject;

/// Requests in flight at once. High enough to hide a region's round trip (64 writes of
/// 25 ms each in flight ≈ 2,500 files a second); a store that cannot take it throttles, and
/// the S3 client's adaptive retry mode then paces the requests.
pub(crate) const CONCURRENCY: usize = 64;

/// The site objects in the store (state prefix excluded), by key, without content
/// hashes: enough for the listing digest. On an atomic layout, the live slot's.
pub(crate) async fn list_site(ledger: &Ledger) -> Result<BTreeMap<String, RemoteObject>, Error> {
    list_at(ledger, ledger.live_prefix().await?.as_deref()).await
}

/// The site objects where `prefix` ([`Ledger::live_prefix`]) says they are.
async fn list_at(
    ledger: &Ledger,
    prefix: Option<&str>,
) -> Result<BTreeMap<String, RemoteObject>, Error> {
    Ok(match prefix {
        None => BTreeMap::new(),
        Some("") => unhashed(ledger.store().list_except(ledger.prefix()).await?),
        Some(prefix) => list_under(ledger, prefix).await?,
    })
}

/// The objects under `prefix`, keyed without it, without content hashes.
pub(crate) async fn list_under(
    ledger: &Ledger,
    prefix: &str,
) -> Result<BTreeMap<String, RemoteObject>, Error> {
    let mut listed = ledger.store().list(prefix).await?;
    for m in &mut listed {
        m.key = m.key[prefix.len()..].to_owned();
    }
    Ok(unhashed(listed))
}

fn unhashed(listed: Vec<crate::store::ObjectMeta>) -> BTreeMap<String, RemoteObject> {
    listed
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
        .collect()
}

/// The site objects with their content hashes.
pub(crate) async fn read_site(
    ledger: &Ledger,
    live: Option<&Release>,
) -> Result<BTreeMap<String, RemoteObject>, Error> {
    let prefix = ledger.live_prefix().await?;
    let listed = list_at(ledger, prefix.as_deref()).await?;
    hash_listed(ledger, prefix.as_deref().unwrap_or_default(), listed, live).await
}

/// Content hashes for listed objects under `prefix`: from `known`'s manifest (and the
/// removed assets it keeps) where the ETag matches, else from the bytes (streamed).
pub(crate) async fn hash_listed(
    ledger: &Ledger,
    prefix: &str,
    listed: BTreeMap<String, RemoteObject>,
    known: Option<&Release>,
) -> Result<BTreeMap<String, RemoteObject>, Error> {
    let store = ledger.store();
    let resolved: Vec<Option<(String, RemoteObject)>> = futures::stream::iter(listed)
        .map(|(key, r)| async move {
            let known = known
                .and_then(|l| l.served_entry(&key))
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
            // Unknown to the release: judge it by its bytes (streamed).
            Ok(store
                .hash(&format!("{prefix}{key}"))
                .await?
                .map(|(obj, sha)| {
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

/// The environment's state: read first, enough for the guards that need no scan.
#[derive(Debug, Clone)]
pub struct State {
    pub head: crate::ledger::Head,
    pub live: Option<std::sync::Arc<Release>>,
    /// An apply that was interrupted.
    pub pending: Option<crate::ledger::Pending>,
    pub holds: Vec<crate::ledger::Hold>,
    /// The lease, unless its holder is a process of this host that no longer exists
    /// (such a lease is taken over at once, expired or not).
    pub lock: Option<crate::ledger::LockInfo>,
    /// The canary running on an atomic layout.
    pub canary: Option<crate::ledger::Canary>,
}

impl State {
    pub async fn read(ledger: &Ledger) -> Result<Self, Error> {
        let (head, live) = ledger.live().await?;
        let pending = ledger.pending().await?.map(|(p, _)| p);
        let holds = ledger.hold_list().await?;
        let lock = ledger
            .read_lock()
            .await?
            .map(|(l, _)| l)
            .filter(|l| !l.holder_is_dead_here());
        let canary = if ledger.layout().await? == crate::config::Layout::Atomic {
            ledger.canary().await?.map(|(c, _)| c)
        } else {
            None
        };
        Ok(Self {
            head,
            live: live.map(std::sync::Arc::new),
            pending,
            holds,
            lock,
            canary,
        })
    }
}

/// Everything a plan decides on.
pub struct Facts {
    pub state: State,
    /// Every site object in the store, with its content hash.
    pub remote: BTreeMap<String, RemoteObject>,
    /// The base the new site derives from (a deploy's; live for a rollback or promotion).
    pub base: super::base::BaseResolution,
    /// Files live's history replaced that the new site would bring back, found when no
    /// base is known (the per-file guard's view without one).
    pub history_reverts: Vec<super::FileConflict>,
    /// Per `[[features]]` entry, in order: in the build, there, and live.
    pub features: Vec<FeatureFact>,
}

/// What is known of one registered feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureFact {
    /// Its file is in the new site.
    pub in_build: bool,
    /// That file holds the token.
    pub local_has: bool,
    /// The live release's copy holds it (read only when the build's does not).
    pub live_has: bool,
}

/// Read, for each registered feature, whether the new site and the live release have it.
pub async fn features(
    ledger: &Ledger,
    features: &[crate::config::Feature],
    desired: &BTreeMap<String, super::Desired>,
    live: Option<&Release>,
) -> Result<Vec<FeatureFact>, Error> {
    let mut out = Vec::new();
    for f in features {
        let local = desired.get(&f.file).map(|d| &d.source);
        let local_has = match local {
            Some(super::Source::Local(path)) => {
                std::fs::read(path).is_ok_and(|b| contains(&b, f.contains.as_bytes()))
            }
            _ => false,
        };
        let live_has = match live.and_then(|l| l.manifest.get(&f.file)) {
            Some(e) if !local_has => ledger
                .read_content(&e.sha256)
                .await?
                .is_some_and(|b| contains(&b, f.contains.as_bytes())),
            _ => false,
        };
        out.push(FeatureFact {
            in_build: local.is_some(),
            local_has,
            live_has,
        });
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// FROM's releases, newest first, that TO (whose live release is of `to_live` kind) has
/// not had yet. Reads FROM's history only back to the release TO last received.
pub async fn promotion_batch(
    from_ledger: &Ledger,
    to_ledger: &Ledger,
    to_live: Option<&ReleaseKind>,
    from: &str,
) -> Result<Vec<ReleaseRef>, Error> {
    let since = match to_live {
        Some(kind) => promoted_from(to_ledger, kind, from).await?,
        None => None,
    };
    Ok(from_ledger.history_refs(since.as_deref(), 100_000).await?.0)
}

/// The FROM release whose content a TO release of this `kind` carries, following
/// rollbacks back to the promotion they restored.
async fn promoted_from(
    ledger: &Ledger,
    kind: &ReleaseKind,
    from: &str,
) -> Result<Option<String>, Error> {
    let mut kind = kind.clone();
    for _ in 0..100 {
        match kind {
            ReleaseKind::Promote { from: f, release } if f == from => return Ok(Some(release)),
            ReleaseKind::Rollback { to } => kind = ledger.release_ref(&to).await?.0.kind,
            _ => return Ok(None),
        }
    }
    Ok(None)
}
