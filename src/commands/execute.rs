//! The tail every plan shares (deploy, apply, rollback, promotion): refuse a refused
//! plan, report a no-op, confirm, then apply under the lock, journal, invalidate, notify
//! and report.

use super::EnvCtx;
use super::planning::refuse;
use crate::Error;
use crate::apply::{Provenance, apply};
use crate::ledger::Release;
use crate::plan::{Plan, PlanKind, guards};

/// Shared tail of deploy, apply and rollback: refuse, no-op, confirm, apply, report.
pub(super) async fn confirm_and_execute(
    ec: &EnvCtx<'_>,
    plan: Plan,
    yes: bool,
    allow_unsafe_store: bool,
) -> Result<(), Error> {
    if !confirmed(ec, &plan, yes).await? {
        return Ok(());
    }
    ec.ensure_store_trusted(allow_unsafe_store).await?;
    execute_and_report(ec, plan, crate::ledger::Staged::default()).await
}

/// Refuse a refused plan, report a no-op (false), or ask to confirm (true: go ahead).
pub(super) async fn confirmed(ec: &EnvCtx<'_>, plan: &Plan, yes: bool) -> Result<bool, Error> {
    let ctx = ec.ctx;
    let env = &ec.cfg.name;
    if plan.refused() {
        ctx.out.document_with(
            || serde_json::json!({ "plan": ctx.out.plan_view(plan), "result": "refused" }),
        );
        return Err(refuse(ec, plan).await);
    }
    // A preview that changes nothing against live is still a preview to make.
    let preview = matches!(plan.kind, PlanKind::Preview { .. });
    if plan.is_noop() && !preview {
        if plan.kind == PlanKind::Deploy
            && let Some(live) = &plan.live
        {
            ec.work.set_base(&live.id)?;
        }
        ctx.out.document_with(
            || serde_json::json!({ "plan": ctx.out.plan_view(plan), "result": "no-op" }),
        );
        return Ok(false);
    }
    let t = &plan.totals;
    let changes = format!(
        "{} change(s): {} create, {} update, {} header-only, {} delete",
        plan.actions.len(),
        t.create,
        t.update,
        t.header_update,
        t.delete
    );
    let question = match &plan.kind {
        PlanKind::Rollback { to } => format!("Roll {env} back to release {to}? ({changes})"),
        PlanKind::Promote { from, release } => {
            format!("Promote {from} release {release} to {env}? ({changes})")
        }
        PlanKind::Deploy => match plan.canary {
            Some(p) => format!("Deploy {changes} to {p}% of {env}'s visitors (a canary)?"),
            None => format!("Apply {changes} to {env}?"),
        },
        PlanKind::Preview { name, .. } => {
            format!("Deploy preview {name} of {env}? ({changes} against live)")
        }
        PlanKind::FromPreview { name, release } => {
            format!("Make preview {name} (release {release}) live on {env}? ({changes})")
        }
    };
    if !ctx.out.confirm(&question, yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    Ok(true)
}

/// Apply a confirmed plan, then invalidate the CDN and report. `staged`: content a
/// promotion already brought into the store.
pub(super) async fn execute_and_report(
    ec: &EnvCtx<'_>,
    plan: Plan,
    staged: crate::ledger::Staged,
) -> Result<(), Error> {
    let ctx = ec.ctx;
    let env = &ec.cfg.name;
    let t = &plan.totals;
    if plan.kind == PlanKind::Deploy {
        ec.work
            .set_pending(&plan.new_release, plan.live.as_ref().map(|l| l.id.as_str()))?;
    }
    crate::interrupt::install();
    let (release, transfer) = execute(ec, &plan, staged).await?;
    match plan.kind {
        // A canary's release becomes the base once it is live everywhere (the pending
        // release of this working copy, taken as base when found live).
        PlanKind::Deploy if plan.canary.is_some() => {}
        PlanKind::Deploy => ec.work.set_base(&release.id)?,
        PlanKind::Rollback { .. } => {
            ec.work
                .record_made(plan.live.as_ref().map(|l| l.id.as_str()), &release.id)?;
        }
        PlanKind::Promote { .. } | PlanKind::Preview { .. } | PlanKind::FromPreview { .. } => {}
    }
    let preview_url = match &plan.kind {
        PlanKind::Preview { name, .. } => Some(ec.cfg.preview_url(name)),
        _ => None,
    };
    if let (
        PlanKind::Preview {
            name, expires_at, ..
        },
        Some(url),
    ) = (&plan.kind, &preview_url)
    {
        ctx.out.say(format!(
            "{} preview {name} of {env} is release {} (live is untouched): {}\n  expires {}",
            ctx.out.paint("✓", crate::ui::Style::Good),
            release.id,
            url.as_deref()
                .unwrap_or("(no preview_url for this environment)"),
            crate::text::short_time(*expires_at)
        ));
    } else if let Some(p) = plan.canary {
        ctx.out.say(format!(
            "{} release {} is on {p}% of {env}'s visitors (a canary; the others stay on {}): {} created, {} updated, {} header-only, {} deleted.\n  → driftless canary {env} --finish (everyone), --abort (no one), --percent N",
            ctx.out.paint("✓", crate::ui::Style::Good),
            release.id,
            plan.live.as_ref().map_or("(none)", |l| l.id.as_str()),
            t.create,
            t.update,
            t.header_update,
            t.delete
        ));
    } else {
        ctx.out.say(format!(
            "{} release {} is live on {env}: {} created, {} updated, {} header-only, {} deleted.",
            ctx.out.paint("✓", crate::ui::Style::Good),
            release.id,
            t.create,
            t.update,
            t.header_update,
            t.delete
        ));
    }
    let invalidated = ec
        .invalidate_after(plan.invalidation.as_ref(), &release.id)
        .await;
    let summary = match &plan.kind {
        PlanKind::Deploy => match plan.canary {
            Some(p) => format!("release {} is on {p}% of visitors (canary)", release.id),
            None => format!("release {} is live", release.id),
        },
        PlanKind::Rollback { to } => {
            format!("rolled back to {to}: release {} is live", release.id)
        }
        PlanKind::Promote { from, release: r } => {
            format!(
                "promoted {from} release {r}: release {} is live",
                release.id
            )
        }
        PlanKind::FromPreview { name, release: r } => {
            format!(
                "preview {name} ({r}) went live: release {} is live",
                release.id
            )
        }
        PlanKind::Preview { name, .. } => format!(
            "preview {name} is release {}{}",
            release.id,
            preview_url
                .as_ref()
                .and_then(|u| u.as_deref())
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        ),
    };
    let summary = format!(
        "{summary} ({} created, {} updated, {} header-only, {} deleted){}",
        t.create,
        t.update,
        t.header_update,
        t.delete,
        plan.message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    let result = match (&plan.kind, &preview_url) {
        (PlanKind::Preview { name, .. }, Some(url)) => format!(
            "**Result:** ✅ preview `{name}` of {env} is release `{}`{}\n\n",
            release.id,
            url.as_deref()
                .map(|u| format!(" — {u}"))
                .unwrap_or_default()
        ),
        _ if plan.canary.is_some() => format!(
            "**Result:** ✅ release `{}` is on {}% of {env}'s visitors (canary)\n\n",
            release.id,
            plan.canary.unwrap_or_default()
        ),
        _ => format!(
            "**Result:** ✅ release `{}` is live on {env}{}\n\n",
            release.id,
            ec.cfg
                .url
                .as_deref()
                .map(|u| format!(" — {u}"))
                .unwrap_or_default()
        ),
    };
    crate::ui::github::summary(&ctx.out, &result);
    ec.notify(plan.kind.name(), Some(&release.summary()), summary)
        .await;
    ctx.out.document_with(|| {
        serde_json::json!({
            "plan": ctx.out.plan_view(&plan),
            "result": "applied",
            "release": release.summary(),
            "transfer": transfer,
            "url": preview_url.as_ref().and_then(|u| u.as_deref()),
            "invalidation": invalidated.as_ref().ok(),
        })
    });
    invalidated.map(|_| ())
}

/// Lock, re-check holds, apply, unlock, journal.
async fn execute(
    ec: &EnvCtx<'_>,
    plan: &Plan,
    staged: crate::ledger::Staged,
) -> Result<(Release, crate::apply::Transfer), Error> {
    let operation = plan.kind.name();
    crate::failpoint::failpoint("before-lock").await;
    let lease = ec.lock_for(operation, Some(&plan.new_release)).await?;
    let result = async {
        // Re-checked under the lock: a hold put since the plan, and a rollback target gc
        // or yank took since.
        if !matches!(
            plan.kind,
            PlanKind::Rollback { .. } | PlanKind::Preview { .. }
        ) {
            let holds = ec.ledger.hold_list().await?;
            if let Some(why) = guards::held_since_plan(&ec.cfg.name, &holds) {
                return Err(Error::Refused(why));
            }
        }
        if let PlanKind::Rollback { to } = &plan.kind
            && let Err(gone) = ec.ledger.restorable(to).await?
        {
            return Err(Error::Refused(guards::unrestorable(&ec.cfg.name, &gone)));
        }
        let who = Provenance {
            actor: &ec.ctx.actor,
            message: plan.message.clone(),
        };
        let tmp = ec.ctx.config.workdir_state().join("tmp");
        apply(&ec.ledger, plan, &who, &lease, &ec.ctx.out, staged, &tmp).await
    }
    .await;
    crate::failpoint::failpoint("before-unlock").await;
    lease.release(&ec.ledger).await?;
    match &result {
        Ok((release, _)) => {
            let detail = serde_json::json!({ "totals": plan.totals, "overrides": plan.overrides, "canary": plan.canary });
            ec.journal(operation, Some(&release.id), detail).await;
            if let Some(p) = plan.canary {
                ec.canary_step(&release.id, "start", p, None).await;
            }
            if !plan.overrides.is_empty() {
                ec.journal(
                    "forced",
                    Some(&release.id),
                    serde_json::json!(plan.overrides),
                )
                .await;
            }
        }
        Err(Error::Refused(why)) => {
            ec.journal(
                "refused",
                None,
                serde_json::json!({ "at": "apply", "why": why }),
            )
            .await;
            ec.notify("refused", None, why.clone()).await;
        }
        Err(Error::Interrupted(why)) => {
            ec.journal(
                "interrupted",
                None,
                serde_json::json!({ "release": plan.new_release, "why": why }),
            )
            .await;
        }
        Err(_) => {}
    }
    result
}
