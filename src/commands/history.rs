//! Commands that take history away, on purpose: `gc` (the retention policy) and `yank`
//! (a release that leaked a secret). Both show what goes first, ask, and decide again
//! under the environment's lock before deleting anything.

use jiff::Timestamp;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::ledger::{Collection, Policy, Yank};
use crate::text::bytes;
use crate::text::esc;
use crate::text::short_time;
use crate::ui::Style;

/// Lines listed before "… and N more" (`--full` lists all).
const LISTED: usize = 10;

pub(super) async fn gc(ctx: &Ctx, env: &str, keep: Option<usize>, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let retention = &ctx.config.retention;
    let now = Timestamp::now();
    let policy = Policy {
        keep_releases: keep.unwrap_or(retention.keep_releases),
        keep_since: retention.keep_days.and_then(|d| now.checked_sub(d).ok()),
        removed_releases: retention.removed_releases,
    };
    // A full disk cannot even be read (the local store's metadata needs a little room
    // to open): the reserve is given back first, and put back when gc is done.
    let store = ec.ledger.store().clone();
    let full = store.room().await.is_some_and(|free| free < 64 * 1024);
    let mut reserve_used = false;
    if full {
        let freed = store.free_reserve().await?;
        if freed > 0 {
            reserve_used = true;
            ctx.out.say(format!(
                "The disk of {env}'s store is full: used driftless's reserve ({}) to read and write what gc needs.",
                bytes(freed)
            ));
        }
    }
    let result = collect_garbage(ctx, &ec, policy, now, yes, &mut reserve_used).await;
    store.keep_reserve().await;
    result
}

async fn collect_garbage(
    ctx: &Ctx,
    ec: &super::EnvCtx<'_>,
    policy: Policy,
    now: Timestamp,
    yes: bool,
    reserve_used: &mut bool,
) -> Result<(), Error> {
    let env = ec.cfg.name.as_str();
    let shown = ec.ledger.plan_collection(policy, now).await?;
    show_collection(ec, &policy, &shown);
    if shown.is_empty() {
        ctx.out.say(format!("Nothing to collect on {env}."));
        ctx.out.document_with(
            || serde_json::json!({ "plan": &shown, "result": "nothing-to-do", "freed": 0 }),
        );
        return Ok(());
    }
    if !ctx.out.confirm(
        &format!(
            "Collect on {env}: {} release(s) can no longer be restored, {} freed?",
            shown.collect.len(),
            bytes(shown.freed())
        ),
        yes,
    )? {
        return Err(Error::Other("not confirmed; nothing was collected".into()));
    }
    // On a full disk the lock and the tombstones could not be written: the store's
    // reserve is given back first (once), so that gc can free what it planned.
    let mut use_reserve = async |e: Error| -> Result<(), Error> {
        if *reserve_used || !e.out_of_space() {
            return Err(e);
        }
        let freed = ec.ledger.store().free_reserve().await?;
        if freed == 0 {
            return Err(Error::Other(format!(
                "{e}\n  the disk of {} is full and it has no reserve left: free some space on it (nothing of the store was changed), then run `driftless gc {env}` again",
                ec.ledger.store().location()
            )));
        }
        *reserve_used = true;
        ctx.out.say(format!(
            "The disk of {env}'s store is full: used driftless's reserve ({}) to write what gc needs.",
            bytes(freed)
        ));
        Ok(())
    };
    let lease = match ec.lock("gc").await {
        Ok(l) => l,
        Err(e) => {
            use_reserve(e).await?;
            ec.lock("gc").await?
        }
    };
    // Decided again from what the store holds under the lock; only what was shown goes.
    let collect = async || {
        let fresh = ec.ledger.plan_collection(policy, Timestamp::now()).await?;
        let doing = fresh.within(&shown);
        // The edge data of the previews that go (behind CloudFront), removed after them.
        let (previews, _) = ec.ledger.previews().await?;
        let gone: Vec<serde_json::Value> = doing
            .expired_previews
            .iter()
            .filter_map(|(name, _)| previews.0.get(name).and_then(|p| p.edge.clone()))
            .collect();
        let freed = ec.ledger.collect(&doing, &ctx.actor).await?;
        crate::apply::edge::prune(&ec.ledger, &gone).await;
        Ok::<_, Error>((doing, freed))
    };
    let result = match collect().await {
        Err(e) if e.out_of_space() => match use_reserve(e).await {
            // Tombstones and deletes are idempotent: the collection runs again.
            Ok(()) => collect().await,
            Err(e) => Err(e),
        },
        other => other,
    };
    lease.release(&ec.ledger).await?;
    let (done, freed) = result?;
    ec.journal(
        "gc",
        None,
        serde_json::json!({
            "collected": done.collect.iter().map(|r| &r.id).collect::<Vec<_>>(),
            "freed": freed,
            "expired_kept": done.expired_kept.len(),
            "expired_previews": done.expired_previews.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        }),
    )
    .await;
    ctx.out.say(format!(
        "Collected {} release(s) and {} expired preview(s) on {env}; freed {}{}.",
        done.collect.len(),
        done.expired_previews.len(),
        bytes(freed),
        if done.expired_kept.is_empty() {
            String::new()
        } else {
            format!(
                "; deleted {} kept asset(s) whose grace was over",
                done.expired_kept.len()
            )
        }
    ));
    ctx.out.document_with(
        || serde_json::json!({ "plan": &shown, "result": "collected", "collected": &done, "freed": freed, "used_reserve": *reserve_used }),
    );
    Ok(())
}

/// The proof block of a collection.
fn show_collection(ec: &EnvCtx<'_>, policy: &Policy, c: &Collection) {
    let out = &ec.ctx.out;
    let env = &ec.cfg.name;
    out.say(format!(
        "{} gc {env}: keep the {} newest restorable release(s){}",
        out.paint("Plan", Style::Strong),
        policy.keep_releases,
        policy
            .keep_since
            .map(|t| format!(" and every release made since {}", short_time(t)))
            .unwrap_or_default()
    ));
    out.say(format!(
        "  keep      {} release(s): {}",
        c.retained.len(),
        listed(&c.retained, out.full)
    ));
    if c.collect.is_empty() {
        out.say("  collect   no release (every release of the history is retained or collected already)");
    } else {
        out.say(format!(
            "  collect   {} release(s) can no longer be restored (they stay in `driftless log {env}`, marked):",
            c.collect.len()
        ));
        let cap = if out.full { usize::MAX } else { LISTED };
        for r in c.collect.iter().take(cap) {
            out.say(format!("            {r}"));
        }
        if c.collect.len() > cap {
            out.say(format!(
                "            … and {} more (--full lists all)",
                c.collect.len() - cap
            ));
        }
    }
    let record_bytes: u64 = c.records.iter().map(|p| p.size).sum();
    out.say(format!(
        "  records   {} deleted ({}){}",
        c.records.len(),
        bytes(record_bytes),
        if c.checkpoints_kept > 0 {
            format!(
                "; {} kept: retained releases are stored as changes since them",
                c.checkpoints_kept
            )
        } else {
            String::new()
        }
    ));
    let packs = c
        .snapshots
        .iter()
        .filter(|p| p.key.ends_with(".pack"))
        .count();
    let objects = c
        .snapshots
        .iter()
        .filter(|p| !p.key.ends_with(".pack") && !p.key.ends_with(".idx"))
        .count();
    let snapshot_bytes: u64 = c.snapshots.iter().map(|p| p.size).sum();
    out.say(format!(
        "  snapshots {packs} pack(s) and {objects} object(s) no retained release needs ({}){}{}",
        bytes(snapshot_bytes),
        if c.shared_packs > 0 {
            format!(
                "; {} pack(s) ({}) stay whole: they also hold content a retained release needs",
                c.shared_packs,
                bytes(c.shared_bytes)
            )
        } else {
            String::new()
        },
        if c.unindexed_packs > 0 {
            format!(
                "; {} pack(s) without an index (an upload in progress or interrupted) left alone",
                c.unindexed_packs
            )
        } else {
            String::new()
        }
    ));
    if !c.expired_kept.is_empty() {
        let keys: Vec<String> = c.expired_kept.iter().map(|(k, _)| k.clone()).collect();
        out.say(format!(
            "  kept      {} removed asset(s) past their grace, deleted: {}",
            keys.len(),
            listed(&keys, out.full)
        ));
    }
    if !c.expired_previews.is_empty() {
        let names: Vec<String> = c.expired_previews.iter().map(|(n, _)| n.clone()).collect();
        out.say(format!(
            "  previews  {} expired, removed with their {} file(s) ({}): {}",
            names.len(),
            c.preview_files.len(),
            bytes(c.preview_files.iter().map(|p| p.size).sum()),
            listed(&names, out.full)
        ));
    }
    out.say(format!(
        "  frees     {}",
        out.paint(&bytes(c.freed()), Style::Strong)
    ));
}

/// Up to [`LISTED`] items, then how many more.
fn listed(items: &[String], full: bool) -> String {
    let cap = if full { usize::MAX } else { LISTED };
    let mut s = items
        .iter()
        .take(cap)
        .map(|i| esc(i))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > cap {
        s.push_str(&format!(" … and {} more", items.len() - cap));
    }
    s
}

pub(super) async fn yank(
    ctx: &Ctx,
    env: &str,
    id: &str,
    reason: &str,
    yes: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "--reason must say why (it stays with the release in `driftless log`)".into(),
        ));
    }
    let id = &ec.release_named(id).await?;
    let shown = ec.ledger.plan_yank(id).await?.map_err(Error::Refused)?;
    let inv = invalidation(&ec, &shown);
    show_yank(&ec, &shown, inv.as_ref());
    if !ctx.out.confirm(
        &format!(
            "Yank release {id} on {env}: remove the bytes of {} file(s) for good?",
            shown.removed.len()
        ),
        yes,
    )? {
        return Err(Error::Other("not confirmed; nothing was removed".into()));
    }
    let lease = ec.lock("yank").await?;
    let result = async {
        let fresh = ec.ledger.plan_yank(id).await?.map_err(Error::Refused)?;
        if fresh.removed != shown.removed || fresh.kept_keys != shown.kept_keys {
            return Err(Error::Refused(format!(
                "the history of {env} changed since the plan: nothing was removed\n  → run `driftless yank {env} {id}` again"
            )));
        }
        let tmp = ctx.config.workdir_state().join("tmp");
        ec.ledger.yank(&fresh, reason, &ctx.actor, &tmp).await?;
        Ok::<_, Error>(fresh)
    }
    .await;
    lease.release(&ec.ledger).await?;
    let done = result?;
    ec.journal("yank",
            Some(id),
            serde_json::json!({ "reason": reason, "removed": done.removed, "packs_rewritten": done.packs.len() }),
        )
        .await;
    ctx.out.say(format!(
        "Yanked release {id} on {env}: the bytes of {} file(s) are gone from the store; rollback and promotion to it are refused.",
        done.removed.len()
    ));
    let invalidated = ec.invalidate_after(inv.as_ref(), id).await;
    ctx.out.document_with(|| {
        serde_json::json!({
            "result": "yanked",
            "yank": &done,
            "reason": reason,
            "invalidation": invalidated.as_ref().ok(),
        })
    });
    invalidated.map(|_| ())
}

/// The CDN paths that served the removed bytes (and kept keys deleted).
fn invalidation(ec: &EnvCtx<'_>, y: &Yank) -> Option<crate::plan::invalidation::Invalidation> {
    let cdn = ec.cfg.cdn.as_ref()?;
    if ec.cfg.edge_reads_pointer() {
        // CloudFront caches by the URI the function rewrote (`/slots/<slot>/…`), so the
        // visitors' paths would match nothing: the slots, whole (one wildcard path).
        return (!y.removed.is_empty() || !y.kept_keys.is_empty())
            .then(|| {
                crate::plan::invalidation::invalidation_of(
                    vec!["/slots/*".to_owned()],
                    cdn.wildcard_threshold,
                )
            })
            .flatten();
    }
    let keys = y
        .removed
        .iter()
        .chain(y.kept_keys.iter().map(|(k, _)| k))
        .map(String::as_str);
    crate::plan::invalidation::invalidation_for_keys(keys, cdn.wildcard_threshold)
}

fn show_yank(ec: &EnvCtx<'_>, y: &Yank, inv: Option<&crate::plan::invalidation::Invalidation>) {
    let out = &ec.ctx.out;
    out.say(format!(
        "{} yank {}: release {}",
        out.paint("Plan", Style::Strong),
        ec.cfg.name,
        y.release
    ));
    if y.removed.is_empty() {
        out.say(format!(
            "  remove    {}: every file of it is also in another restorable release (yank those too, `driftless log {}` lists them); it is only marked yanked",
            out.paint("nothing", Style::Warn),
            ec.cfg.name
        ));
    } else {
        out.say(format!(
            "  remove    the bytes of {} file(s) no other restorable release has: {}",
            y.removed.len(),
            listed(&y.removed, out.full)
        ));
    }
    if y.shared > 0 {
        out.say(format!(
            "  keep      {} file(s) whose bytes other restorable releases also have",
            y.shared
        ));
    }
    if !y.packs.is_empty() || !y.objects.is_empty() {
        out.say(format!(
            "  store     {} object(s) deleted, {} pack(s) rewritten without them",
            y.objects.len(),
            y.packs.len()
        ));
    }
    if !y.kept_keys.is_empty() {
        let keys: Vec<String> = y.kept_keys.iter().map(|(k, _)| k.clone()).collect();
        out.say(format!(
            "  site      {} kept key(s) still serving those bytes, deleted: {}",
            keys.len(),
            listed(&keys, out.full)
        ));
    }
    if !y.previews.is_empty() {
        out.say(format!(
            "  previews  {} preview(s) serving those bytes, deleted: {}",
            y.previews.len(),
            listed(&y.previews, out.full)
        ));
    }
    if let Some(inv) = inv {
        out.say(format!("  {}", inv.describe()));
    }
}
