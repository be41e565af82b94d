//! Apply a preview plan: the release goes into the preview's own prefix
//! (`previews/NAME/`), live is never touched.
//!
//! content into `objects/` (so the release can go live later without an upload) →
//! `previews.json` names the release, marked incomplete → the prefix made to hold exactly
//! the release (writes and deletes where it differs, nothing else) → release record →
//! `previews.json` marks it complete, with the id the CDN's cache key carries.
//!
//! A preview is updated in place: while a second deploy of the same name fills its
//! prefix, a reviewer may see a mix of the two — never live, which has its own slots.

use jiff::Timestamp;

use super::atomic::{Filling, fill};
use super::{Provenance, Report, Transfer, new_release, store_content};
use crate::Error;
use crate::ledger::{Ledger, Preview, Release, Staged, preview_prefix};
use crate::plan::Plan;

/// What a preview apply needs besides the plan.
pub(super) struct Target<'a> {
    pub(super) name: &'a str,
    pub(super) expires_at: Timestamp,
    pub(super) given: Option<&'a str>,
}

pub(super) async fn apply(
    ledger: &Ledger,
    plan: &Plan,
    who: &Provenance<'_>,
    target: &Target<'_>,
    out: &dyn Report,
    mut staged: Staged,
    tmp: &std::path::Path,
) -> Result<(Release, Transfer), Error> {
    let name = target.name;
    if ledger.layout().await? != crate::config::Layout::Atomic {
        return Err(Error::Refused(format!(
            "previews need the atomic layout (the site's keys under slots/, so previews/ is free): env.{} is in place — nothing was changed\n  → driftless migrate {} --layout atomic",
            plan.env, plan.env
        )));
    }
    let (head, live) = ledger.live().await?;
    let transfer = store_content(ledger, plan, live.as_ref(), out, &mut staged, tmp).await?;
    if crate::interrupt::requested() {
        return Err(Error::Interrupted(format!(
            "Interrupted: nothing changed on {} (live, and preview {name}). The {} object(s) uploaded so far are kept: re-run `driftless deploy {} --preview {name}` to resume without uploading them again.",
            plan.env, transfer.objects_uploaded, plan.env
        )));
    }
    let mut release = new_release(plan, &head, who);
    let (previews, _) = ledger.previews().await?;
    let before = previews.0.get(name).cloned();
    let now = Timestamp::now();
    let record = |release: &str, complete: bool, cache: Option<String>| Preview {
        release: release.to_owned(),
        complete,
        cache,
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
        expires_at: target.expires_at,
        author: who.actor.author.clone(),
        commit: plan.git.as_ref().map(|g| g.commit.clone()),
        branch: plan.git.as_ref().and_then(|g| g.branch.clone()),
        given: target.given.map(str::to_owned),
        edge: None,
    };
    let incomplete = record(&release.id, false, None);
    ledger
        .update_preview(name, |_| Some(incomplete.clone()))
        .await?;
    let from_live = live_copies(ledger, live.as_ref()).await?;
    let fill = fill(
        &Filling {
            ledger,
            staged: &staged,
            out,
            prefix: preview_prefix(name),
            what: format!("preview {name}"),
            source: from_live.as_ref(),
        },
        before.as_ref().map(|b| b.release.as_str()),
        &mut release,
    )
    .await
    .map_err(|e| match e {
        Error::Interrupted(_) => Error::Interrupted(format!(
            "Interrupted: preview {name} of {} is half-written (live is untouched); re-run the same `driftless deploy {} --preview {name}` to finish it.",
            plan.env, plan.env
        )),
        other => other,
    })?;
    out.say(format!(
        "preview {name}: {} written ({} copied from live), {} removed, {} already in place",
        fill.written, fill.copied, fill.deleted, fill.kept
    ));
    ledger.write_release(&release, live.as_ref()).await?;
    // Same bytes as before (a re-deploy of an unchanged build): the CDN's copies stay good.
    let cache = before
        .as_ref()
        .filter(|b| b.complete && fill.written == 0 && fill.deleted == 0)
        .map(|b| b.cache_id().to_owned())
        .filter(|c| *c != release.id);
    let mut done = record(&release.id, true, cache);
    // Behind CloudFront its rules go to the edge first (its value will name them),
    // cut like live's table so that it shares live's keys where it can.
    if let (Some(rules), true) = (&plan.edge, ledger.edge_carried()) {
        done.edge = publish_edge(ledger, &release, rules, out).await?;
    }
    ledger.update_preview(name, |_| Some(done.clone())).await?;
    // Behind CloudFront the function learns the preview's release from here on.
    ledger.publish_preview(name, Some(&done)).await?;
    if let Some(old) = before.and_then(|b| b.edge) {
        super::edge::prune(ledger, &[old]).await;
    }
    Ok((release, transfer))
}

/// A preview's edge data, written beside the pointer (conditional on the store's token,
/// read again when another run wrote in between).
async fn publish_edge(
    ledger: &Ledger,
    release: &Release,
    rules: &crate::config::EdgeRules,
    out: &dyn Report,
) -> Result<Option<serde_json::Value>, Error> {
    let mut tries = 0;
    loop {
        let pointer = ledger.pointer().await?;
        let (slots, _) = ledger.slots().await?;
        let base = pointer
            .as_ref()
            .and_then(|p| slots.get(&p.slot))
            .and_then(|h| h.edge.clone());
        let Some(token) = pointer.map(|p| p.token) else {
            return Ok(None);
        };
        match super::edge::publish(ledger, release, rules, base.as_ref(), &token).await {
            Ok(done) => {
                if let Some(d) = &done
                    && d.written > 0
                {
                    out.say(format!(
                        "edge: {} KeyValueStore key(s) written ({}) for the preview's rules",
                        d.written,
                        crate::text::bytes(d.bytes as u64)
                    ));
                }
                return Ok(done.map(|d| d.held));
            }
            Err(Error::Ledger(crate::ledger::LedgerError::Store(
                crate::store::StoreError::Precondition { .. },
            ))) if tries < 5 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Live's files, to fill a preview from by server-side copy where the bytes are the
/// same (a first preview of a large site copies it instead of sending it again): only
/// those still as live's fill wrote them (one listing of the live slot).
async fn live_copies(
    ledger: &Ledger,
    live: Option<&Release>,
) -> Result<Option<super::atomic::Copies>, Error> {
    let (Some(live), Some(prefix)) = (live, ledger.live_prefix().await?) else {
        return Ok(None);
    };
    let there = crate::plan::facts::list_under(ledger, &prefix).await?;
    let manifest = live
        .manifest
        .iter()
        .filter(|(k, e)| there.get(*k).is_some_and(|r| r.etag == e.etag))
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    Ok(Some(super::atomic::Copies {
        what: "live",
        prefix,
        manifest,
    }))
}

/// The files of preview `name`, to make its release `release` live from: only while the
/// preview still is that release, whole and not expired (checked under the lock).
pub(super) async fn reviewed(
    ledger: &Ledger,
    name: &str,
    release: &str,
) -> Result<super::atomic::Copies, Error> {
    let (previews, _) = ledger.previews().await?;
    let env = ledger.env();
    match previews.0.get(name) {
        Some(p) if p.release == release && p.complete && !p.expired(Timestamp::now()) => {}
        Some(p) if p.release != release => {
            return Err(Error::Refused(format!(
                "preview {name} was deployed again since the plan (it is now release {}): nothing was changed\n  → review it, then: driftless deploy {env} --from-preview {name}",
                p.release
            )));
        }
        _ => {
            return Err(Error::Refused(format!(
                "preview {name} was deleted, expired or is being deployed since the plan: nothing was changed\n  → driftless previews {env}"
            )));
        }
    }
    // Every file as the preview's fill wrote it (one listing): a hand edit since would
    // go live unreviewed.
    let manifest = ledger.release(release).await?.manifest;
    let prefix = preview_prefix(name);
    let there = crate::plan::facts::list_under(ledger, &prefix).await?;
    if let Some((key, _)) = manifest
        .iter()
        .find(|(k, e)| there.get(*k).is_none_or(|r| r.etag != e.etag))
    {
        return Err(Error::Refused(format!(
            "{prefix}{key} changed outside driftless since preview {name} was deployed: what would go live is not what was reviewed — nothing was changed\n  → deploy the preview again (`driftless deploy {env} --preview {name}`) and review it"
        )));
    }
    Ok(super::atomic::Copies {
        what: "the preview",
        prefix,
        manifest,
    })
}

/// Remove preview `name`: its entry first (from then on the edge answers 404, never half
/// a preview), then its files. Returns how many files went. Its bytes in the snapshots
/// go with the next `gc`.
pub(crate) async fn delete(ledger: &Ledger, name: &str) -> Result<usize, Error> {
    let (previews, _) = ledger.previews().await?;
    let gone = previews.0.get(name).and_then(|p| p.edge.clone());
    ledger.publish_preview(name, None).await?;
    ledger.update_preview(name, |_| None).await?;
    if let Some(e) = gone {
        super::edge::prune(ledger, &[e]).await;
    }
    let files = ledger.store().list(&preview_prefix(name)).await?;
    super::migrate::delete_all(ledger, files.iter().map(|m| (m.key.as_str(), None))).await?;
    Ok(files.len())
}
