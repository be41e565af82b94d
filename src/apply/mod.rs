//! Apply a plan, in an order that keeps the environment whole at every instant:
//!
//! verify nothing moved → content into `objects/` (invisible to visitors) → snapshot of
//! anything about to be replaced → pending record → assets → entry points (HTML) →
//! release record → compare-and-swap HEAD → deletes → clear pending.
//!
//! Every write to a site key is conditional on exactly what the plan saw. If one is
//! refused (someone changed the key meanwhile), the keys already written are put back
//! and the run is refused: a refused run changes nothing but journal and holds. If the
//! process dies, the pending record lets the next run finish the release (every byte it
//! needs is already in `objects/`).

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};
use jiff::Timestamp;

use crate::Error;
use crate::digest::hash_bytes;
use crate::failpoint::failpoint;
use crate::ledger::{
    Actor, Entry, HeldLease, Ledger, LocalContent, Pending, Release, ReleaseKind, StageError,
    Staged, Staging,
};
use crate::plan::facts::{CONCURRENCY, list_site};
use crate::plan::{Action, ActionKind, Plan, PlanKind, Source, listing_digest};
use crate::store::{PutMode, StoreError};

mod adopt;
mod atomic;
pub(crate) mod canary;
pub(crate) mod edge;
pub(crate) mod migrate;
pub(crate) mod preview;
pub(crate) mod promote;
mod recover;

pub(crate) use adopt::{Adopted, adopt, snapshot_store};
pub(crate) use recover::{Recovered, recover};

/// How an apply shows its progress: bars on long work, a line of news. The user
/// interface implements it; an apply never prints by itself.
pub(crate) trait Report: Sync {
    /// A progress bar of `len` steps, labelled.
    fn bar(&self, len: u64, label: &str) -> indicatif::ProgressBar;
    /// One line for the person running it.
    fn say(&self, line: String);
}

pub(crate) const LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// What an apply moved into the store's `objects/` (a resumed run uploads nothing twice).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Transfer {
    pub(crate) objects_uploaded: usize,
    pub(crate) bytes_uploaded: u64,
    /// Content already in the store, not sent again.
    pub(crate) objects_present: usize,
    /// Packs written (many small files each; S3).
    pub(crate) packs: usize,
}

/// Stopped by Ctrl-C before HEAD moved: nothing visitors see has changed.
fn interrupted_before(plan: &Plan, transfer: &Transfer) -> Error {
    let live = plan.live.as_ref().map_or_else(
        || "nothing is live yet".to_owned(),
        |l| format!("release {} is still live", l.id),
    );
    Error::Interrupted(format!(
        "Interrupted: nothing changed on {} — {live}. The {} object(s) uploaded so far are kept: re-run `driftless deploy {}` to resume without uploading them again.",
        plan.env, transfer.objects_uploaded, plan.env
    ))
}

fn moved(what: String) -> Error {
    Error::Refused(format!(
        "{what}; nothing was changed — re-run the command to plan against the new state"
    ))
}

/// What the release record says about who made it and why.
pub(crate) struct Provenance<'a> {
    pub(crate) actor: &'a Actor,
    pub(crate) message: Option<String>,
}

/// The record of the release `plan` makes, before its objects are written.
fn new_release(plan: &Plan, head: &crate::ledger::Head, who: &Provenance<'_>) -> Release {
    Release {
        id: plan.new_release.clone(),
        parent: head.release.clone(),
        env: plan.env.clone(),
        kind: match &plan.kind {
            PlanKind::Deploy => ReleaseKind::Deploy,
            PlanKind::Rollback { to } => ReleaseKind::Rollback { to: to.clone() },
            PlanKind::Promote { from, release } => ReleaseKind::Promote {
                from: from.clone(),
                release: release.clone(),
            },
            PlanKind::Preview { name, .. } => ReleaseKind::Preview { name: name.clone() },
            PlanKind::FromPreview { name, release } => ReleaseKind::FromPreview {
                name: name.clone(),
                release: release.clone(),
            },
        },
        created_at: Timestamp::now(),
        actor: who.actor.clone(),
        git: plan.git.clone(),
        message: who.message.clone().or_else(|| plan.message.clone()),
        overrides: plan.overrides.iter().fold(Vec::new(), |mut names, r| {
            let name = r.guard.name().to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
            names
        }),
        tag: plan.tag.clone(),
        manifest: plan
            .manifest
            .iter()
            .map(|(k, d)| (k.clone(), d.entry.clone()))
            .collect(),
        kept: plan.retention.kept.clone(),
        delta: None,
        files_if_dropped: None,
        // A preview's parent is only what was live: its base is what its build knew.
        base: match &plan.kind {
            PlanKind::Preview { .. } => plan.base.as_ref().map(|b| b.id.clone()),
            _ => None,
        },
        edge: plan.edge.clone(),
    }
}

/// Apply `plan` while holding `lock`. `staged` is content already brought into the
/// store (a promotion's); the rest comes from the local files, staged under `tmp`.
/// Returns the release that is now live, and what was uploaded.
pub(crate) async fn apply(
    ledger: &Ledger,
    plan: &Plan,
    who: &Provenance<'_>,
    lease: &HeldLease,
    out: &dyn Report,
    mut staged: Staged,
    tmp: &std::path::Path,
) -> Result<(Release, Transfer), Error> {
    if let PlanKind::Preview {
        name,
        expires_at,
        given,
    } = &plan.kind
    {
        let target = preview::Target {
            name,
            expires_at: *expires_at,
            given: given.as_deref(),
        };
        return preview::apply(ledger, plan, who, &target, out, staged, tmp).await;
    }
    // 1. Nothing the plan saw may have moved.
    let head = ledger.head().await?;
    if head != plan.seen.head {
        let now = match &head.release {
            Some(id) => ledger.release(id).await?.summary().to_string(),
            None => "(none)".into(),
        };
        return Err(moved(format!(
            "the live release changed since the plan: it is now {now}"
        )));
    }
    if listing_digest(&list_site(ledger).await?) != plan.seen.listing_digest {
        return Err(moved(
            "objects in the store changed since the plan (see `driftless status`)".into(),
        ));
    }
    let live = match &head.release {
        Some(id) => Some(ledger.release(id).await?),
        None => None,
    };

    // 2. Content into the snapshots (packs or objects/), and a snapshot of everything
    //    about to be replaced.
    let transfer = store_content(ledger, plan, live.as_ref(), out, &mut staged, tmp).await?;
    let atomic = ledger.layout().await? == crate::config::Layout::Atomic;
    if !atomic {
        // In place, the keys about to be replaced must be restorable.
        snapshot(ledger, &plan.actions).await?;
    }
    failpoint("after-objects").await;
    if crate::interrupt::requested() {
        return Err(interrupted_before(plan, &transfer));
    }

    // 3. Pending record: from here on a crash is finished by the next run.
    let mut release = new_release(plan, &head, who);
    if atomic {
        let source = match &plan.kind {
            PlanKind::FromPreview { name, release } => {
                Some(preview::reviewed(ledger, name, release).await?)
            }
            _ => None,
        };
        let switch = atomic::Switch {
            ledger,
            plan,
            head: &head,
            live: live.as_ref(),
            staged: &staged,
            lease,
            out,
            transfer: &transfer,
            source: source.as_ref(),
        };
        let release = atomic::apply(&switch, release).await?;
        return Ok((release, transfer));
    }
    let deletes: Vec<(String, String)> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Delete)
        .filter_map(|a| a.remote.as_ref().map(|r| (a.key.clone(), r.etag.clone())))
        .collect();
    let pending_etag = ledger
        .set_pending(
            &Pending {
                release: release.clone(),
                head: head.clone(),
                deletes: deletes.clone(),
                slot: None,
            },
            live.as_ref(),
        )
        .await?;
    failpoint("after-pending").await;

    // 4–5. Site writes, release record, HEAD. Any failure here puts back what was
    // written, so a failed run leaves the old release complete.
    // Every write started: with the ETag it gave, or `None` if it failed (it may still
    // have landed). Only these keys can need putting back.
    let mut written: Vec<(&Action, Option<String>)> = Vec::new();
    let site = SiteWrites {
        ledger,
        plan,
        staged: &staged,
        live: live.as_ref(),
    };
    let swapped = write_and_swap(&site, &head, &mut release, &mut written, lease, out)
        .await
        .map_err(|e| match e {
            Error::Interrupted(_) => interrupted_before(plan, &transfer),
            other => other,
        });
    if let Err(e) = swapped {
        // A swap whose answer was lost may still have landed: never undo a live release.
        if ledger.head().await.ok().and_then(|h| h.release).as_deref() != Some(release.id.as_str())
        {
            let restored = undo(ledger, &written, live.as_ref()).await;
            if !restored || ledger.clear_pending(&pending_etag).await.is_err() {
                return Err(Error::Other(format!(
                    "{e}\n  the store could not be put back completely: the next `driftless deploy {}` finishes release {} first",
                    plan.env, release.id
                )));
            }
            return Err(match e {
                Error::Refused(m) => {
                    Error::Refused(format!("{m}; everything it wrote was put back"))
                }
                Error::Other(m) => Error::Other(format!("{m}; everything it wrote was put back")),
                other => other,
            });
        }
    }

    failpoint("after-head").await;
    if crate::interrupt::requested() {
        // Live already; the deletes stay in the pending record for the next run.
        return Err(Error::Interrupted(format!(
            "Interrupted: release {} is live on {}{}",
            release.id,
            plan.env,
            if deletes.is_empty() {
                ".".to_owned()
            } else {
                format!(
                    "; {} removed key(s) are still in the store: the next `driftless deploy {}` deletes them.",
                    deletes.len(),
                    plan.env
                )
            }
        )));
    }

    // 6. Deletes, only now that no live release references them.
    let kept = delete_keys(ledger, &deletes).await;
    ledger.clear_pending(&pending_etag).await?;
    if !kept.is_empty() {
        out.say(format!(
            "warning: {} key(s) changed in the store during the deploy and were not deleted: {}",
            kept.len(),
            kept.join(", ")
        ));
        ledger
            .journal(
                who.actor,
                "drift-seen",
                Some(&release.id),
                serde_json::json!({ "kept": kept }),
            )
            .await;
    }
    Ok((release, transfer))
}

/// What the site writes of one apply need.
struct SiteWrites<'a> {
    ledger: &'a Ledger,
    plan: &'a Plan,
    staged: &'a Staged,
    live: Option<&'a Release>,
}

/// Site writes (assets, then entry points), the release record, and the HEAD swap.
async fn write_and_swap<'p>(
    site: &SiteWrites<'p>,
    head: &crate::ledger::Head,
    release: &mut Release,
    written: &mut Vec<(&'p Action, Option<String>)>,
    lease: &HeldLease,
    out: &dyn Report,
) -> Result<(), Error> {
    let (ledger, plan) = (site.ledger, site.plan);
    let (html, assets): (Vec<&Action>, Vec<&Action>) = plan
        .actions
        .iter()
        .filter(|a| a.kind != ActionKind::Delete)
        .partition(|a| crate::keys::is_html(&a.key));
    let bar = out.bar((html.len() + assets.len()) as u64, "writing");
    for (i, group) in [assets, html].into_iter().enumerate() {
        if i == 1 {
            failpoint("after-assets").await;
        }
        if crate::interrupt::requested() {
            bar.finish_and_clear();
            return Err(Error::Interrupted(String::new()));
        }
        // Ctrl-C starts no new write; the ones in flight finish, so what was written is
        // known exactly and can be put back.
        let (results, stopped) = crate::interrupt::run_bounded(
            group,
            CONCURRENCY,
            crate::interrupt::InFlight::Finish,
            "write",
            |a| {
                let bar = &bar;
                async move {
                    failpoint("site-write").await;
                    let r = write_key(site, a).await;
                    bar.inc(1);
                    r.map(|etag| (a, etag)).map_err(|e| (a, e))
                }
            },
        )
        .await;
        let mut failure = None;
        for r in results {
            match r {
                Ok((a, etag)) => written.push((a, Some(etag))),
                Err((a, e)) => {
                    written.push((a, None));
                    failure = failure.or(Some((a.key.clone(), e)));
                }
            }
        }
        if stopped && failure.is_none() {
            bar.finish_and_clear();
            return Err(Error::Interrupted(String::new()));
        }
        if let Some((key, e)) = failure {
            bar.finish_and_clear();
            return Err(match e {
                StoreError::Precondition { .. } | StoreError::AlreadyExists { .. } => moved(
                    format!("{key} was changed in the store by someone else during the deploy"),
                ),
                other => Error::Other(format!("writing {key} failed: {other}")),
            });
        }
    }
    bar.finish_and_clear();
    for (a, etag) in written.iter() {
        if let (Some(e), Some(etag)) = (release.manifest.get_mut(&a.key), etag) {
            e.etag.clone_from(etag);
        }
    }

    // The release record, then the single linearisation point: HEAD.
    if crate::interrupt::requested() {
        return Err(Error::Interrupted(String::new()));
    }
    if lease.lost() {
        return Err(moved(
            "the deploy lock was broken by someone else during the deploy".into(),
        ));
    }
    ledger.write_release(release, site.live).await?;
    failpoint("after-release").await;
    ledger
        .swap_head(head, &release.id)
        .await
        .map_err(|e| match e {
            crate::ledger::LedgerError::Store(StoreError::Precondition { .. }) => moved(
                "HEAD was moved by someone else during the deploy (was the lock broken?)".into(),
            ),
            other => other.into(),
        })
}

/// Put every byte the new release needs into the snapshots — only what is not kept
/// there yet (live's content is; so is what an interrupted run already uploaded), so a
/// resumed run sends nothing twice.
async fn store_content(
    ledger: &Ledger,
    plan: &Plan,
    live: Option<&Release>,
    out: &dyn Report,
    staged: &mut Staged,
    tmp: &std::path::Path,
) -> Result<Transfer, Error> {
    let kept_by_live: std::collections::HashSet<&str> = live
        .map(|l| l.manifest.values().map(|e| e.sha256.as_str()).collect())
        .unwrap_or_default();
    // Content from local files that the store may not hold yet, once per sha.
    let mut wanted: BTreeMap<&str, (&Action, &std::path::Path)> = BTreeMap::new();
    for a in &plan.actions {
        if !matches!(a.kind, ActionKind::Create | ActionKind::Update) {
            continue;
        }
        let Some(entry) = &a.local else { continue };
        let sha = entry.sha256.as_str();
        if kept_by_live.contains(sha) || staged.by_sha.contains_key(sha) {
            continue;
        }
        if let Source::Local(path) = &plan.manifest[&a.key].source {
            wanted.entry(sha).or_insert((a, path.as_path()));
        }
    }
    // Content the plan takes from the snapshots (a rollback's, a promotion's staged
    // early): checked under the lock, since `gc` or `yank` may have taken it since.
    let from_snapshots: Vec<&str> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Create | ActionKind::Update))
        .filter_map(|a| a.local.as_ref().map(|e| e.sha256.as_str()))
        .filter(|sha| !kept_by_live.contains(sha) && !wanted.contains_key(sha))
        .collect::<std::collections::BTreeSet<&str>>()
        .into_iter()
        .collect();
    let there = ledger.present(&from_snapshots).await?;
    if let Some(gone) = from_snapshots.iter().find(|s| !there.contains(**s)) {
        let key = plan
            .actions
            .iter()
            .find(|a| a.local.as_ref().is_some_and(|e| e.sha256 == *gone))
            .map_or("", |a| a.key.as_str());
        return Err(moved(format!(
            "the content of {key} (sha256 {}) is no longer in the snapshots: collected by `driftless gc` or yanked since the plan",
            &gone[..gone.len().min(12)]
        )));
    }
    let shas: Vec<&str> = wanted.keys().copied().collect();
    let present = ledger.present(&shas).await?;
    let mut transfer = Transfer {
        objects_present: present.len(),
        ..Transfer::default()
    };
    let files: Vec<LocalContent> = wanted
        .iter()
        .filter(|(sha, _)| !present.contains(**sha))
        .map(|(sha, (a, path))| LocalContent {
            sha256: (*sha).to_owned(),
            path: path.to_path_buf(),
            size: a.local.as_ref().map_or(0, |e| e.size),
        })
        .collect();
    if crate::interrupt::requested() {
        return Ok(transfer);
    }
    let bar = out.bar(files.len() as u64, "uploading");
    let progress = |n: u64| bar.inc(n);
    let fresh = ledger
        .stage_files(files, tmp, &progress)
        .await
        .map_err(|e| match e {
            StageError::Changed(_) => moved(e.to_string()),
            StageError::Store(s) => Error::Store(s),
            StageError::Io(..) => Error::Other(e.to_string()),
        })?;
    bar.finish_and_clear();
    transfer.objects_uploaded = fresh.uploaded_objects;
    transfer.bytes_uploaded = fresh.uploaded_bytes;
    transfer.packs = fresh.packs;
    staged.by_sha.extend(fresh.by_sha);
    staged.dirs.extend(fresh.dirs);

    // Header-only updates: the bytes are at the key already; keep them if the snapshots
    // do not (same bytes the store holds, headers driftless did not know).
    let header_only: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::HeaderUpdate)
        .filter(|a| {
            a.local
                .as_ref()
                .is_some_and(|e| !kept_by_live.contains(e.sha256.as_str()))
        })
        .collect();
    futures::stream::iter(header_only)
        .map(|a| async move {
            let entry = a.local.as_ref().expect("writes carry the local entry");
            if ledger.locate(&entry.sha256).await?.is_some() {
                return Ok(());
            }
            snapshot_key(
                ledger,
                &a.key,
                a.remote.as_ref().map(|r| r.etag.as_str()),
                &entry.sha256,
            )
            .await
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(transfer)
}

/// Make sure the bytes every replaced or deleted key holds now are in `objects/`
/// (they are, unless they came from outside driftless).
async fn snapshot(ledger: &Ledger, actions: &[Action]) -> Result<(), Error> {
    futures::stream::iter(actions.iter().filter(|a| a.kind != ActionKind::Create))
        .map(|a| async move {
            let Some(r) = &a.remote else { return Ok(()) };
            let Some(sha) = &r.sha256 else { return Ok(()) };
            if ledger.locate(sha).await?.is_some() {
                return Ok(());
            }
            snapshot_key(ledger, &a.key, Some(&r.etag), sha).await
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn snapshot_key(
    ledger: &Ledger,
    key: &str,
    etag: Option<&str>,
    sha: &str,
) -> Result<(), Error> {
    let got = ledger.store().get(key).await?;
    match got {
        Some((obj, body))
            if etag.is_none_or(|e| e == obj.meta.etag) && hash_bytes(&body) == sha =>
        {
            ledger.put_object(sha, body).await?;
            Ok(())
        }
        _ => Err(moved(format!("{key} changed in the store since the plan"))),
    }
}

/// Write one site key, conditional on what the plan saw there: from this run's local
/// pack file (one streamed upload of bytes already checked), by server-side copy of its
/// object, or from the kept content.
async fn write_key(site: &SiteWrites<'_>, a: &Action) -> Result<String, StoreError> {
    let entry = a.local.as_ref().expect("writes carry the local entry");
    let mode = match (&a.kind, &a.remote) {
        (ActionKind::Create, _) | (_, None) => PutMode::Create,
        (_, Some(r)) => PutMode::IfMatch(r.etag.clone()),
    };
    let same_bytes = a.kind == ActionKind::HeaderUpdate && a.remote.is_some();
    put_content(site.ledger, site.staged, &a.key, entry, mode, same_bytes).await
}

/// Write `entry` under `key` (`same_bytes`: the key holds its bytes already, only the
/// headers change: copied onto itself, server-side): from this run's local pack file
/// (one streamed upload of bytes already checked), by server-side copy of its object,
/// or from the kept content.
async fn put_content(
    ledger: &Ledger,
    staged: &Staged,
    key: &str,
    entry: &Entry,
    mode: PutMode,
    same_bytes: bool,
) -> Result<String, StoreError> {
    let attrs = entry.attributes();
    if same_bytes {
        return ledger.store().copy(key, key, &attrs, mode).await;
    }
    match staged.by_sha.get(&entry.sha256) {
        Some(Staging::Range { path, offset, len }) => {
            ledger
                .store()
                .put_file(key, path, *offset, *len, &attrs, mode)
                .await
        }
        Some(Staging::Object) => {
            ledger
                .store()
                .copy(&ledger.object_key(&entry.sha256), key, &attrs, mode)
                .await
        }
        None => {
            ledger
                .content_to_key(&entry.sha256, key, &attrs, mode)
                .await
        }
    }
}

/// Put back what a failed apply wrote. Every key the apply may have touched is checked
/// in the store — a write whose answer was lost may have landed — and each put-back is
/// conditional on the store holding our write. Returns false if anything could not be
/// checked or put back (the pending record then stays for the next run to finish).
async fn undo(
    ledger: &Ledger,
    written: &[(&Action, Option<String>)],
    live: Option<&Release>,
) -> bool {
    if !written.is_empty() {
        eprintln!(
            "driftless: putting back the {} key(s) written so far (Ctrl-C again to stop at once: the next run finishes them)",
            written.len()
        );
    }
    let results: Vec<bool> = futures::stream::iter(written)
        .map(|(a, etag)| {
            let ours = etag.as_deref();
            async move {
                let result = undo_key(ledger, a, ours, live).await;
                if let Err(e) = &result {
                    eprintln!("warning: could not put back {}: {e}", a.key);
                }
                result.is_ok()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().all(|ok| ok)
}

async fn undo_key(
    ledger: &Ledger,
    a: &Action,
    ours: Option<&str>,
    live: Option<&Release>,
) -> Result<(), Error> {
    // What the key holds now, if it is ours: known from the write (one request less per
    // key — a put-back of thousands of keys is what a Ctrl-C waits for), else read.
    let etag = match ours {
        Some(etag) => etag.to_owned(),
        None => {
            let Some(now) = ledger.store().head(&a.key).await? else {
                return Ok(()); // nothing there: a create that never landed
            };
            let seen = a.remote.as_ref().map(|r| r.etag.as_str());
            let wanted = a.local.as_ref().map(|e| e.sha256.as_str());
            if Some(now.meta.etag.as_str()) == seen || now.attrs.sha256.as_deref() != wanted {
                return Ok(()); // untouched: still what the plan saw
            }
            now.meta.etag
        }
    };
    let mode = PutMode::IfMatch(etag.clone());
    match a.remote.as_ref().and_then(|r| r.sha256.as_ref()) {
        None if a.remote.is_none() => match ledger.store().delete(&a.key, Some(&etag)).await {
            // Changed by someone else since: theirs now, not ours to remove.
            Ok(()) | Err(StoreError::NotFound { .. } | StoreError::Precondition { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        },
        None => Err(Error::Other(format!("{}: previous content unknown", a.key))),
        Some(sha) => {
            let attrs = live
                .and_then(|l| l.manifest.get(&a.key))
                .filter(|e| &e.sha256 == sha)
                .map_or_else(
                    || crate::store::Attributes {
                        sha256: Some(sha.clone()),
                        ..Default::default()
                    },
                    Entry::attributes,
                );
            ledger.content_to_key(sha, &a.key, &attrs, mode).await?;
            Ok(())
        }
    }
}

/// Delete each key if it still holds what was seen; returns the keys kept.
pub(crate) async fn delete_keys(ledger: &Ledger, deletes: &[(String, String)]) -> Vec<String> {
    let results: Vec<(String, Result<(), StoreError>)> = futures::stream::iter(deletes)
        .map(|(k, etag)| async move { (k.clone(), ledger.store().delete(k, Some(etag)).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut kept: Vec<String> = results
        .into_iter()
        .filter_map(|(k, r)| match r {
            Ok(()) | Err(StoreError::NotFound { .. }) => None,
            Err(_) => Some(k),
        })
        .collect();
    kept.sort();
    kept
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_is_an_entry_point() {
        assert!(crate::keys::is_html("index.html"));
        assert!(crate::keys::is_html("docs/A.HTM"));
        assert!(!crate::keys::is_html("assets/app.js"));
    }
}
