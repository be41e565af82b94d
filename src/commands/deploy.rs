//! `plan`, `deploy` and `apply`: gather the facts, build the plan with every guard,
//! show it, and (after confirmation) apply it.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::apply::{Provenance, apply};
use crate::git::Repo;
use crate::ledger::{Entry, Release};
use crate::plan::base::{self, BaseResolution};
use crate::plan::build::{Request, build};
use crate::plan::facts::{self, Facts, State, read_site};
use crate::plan::{
    Desired, Guard, PLAN_FORMAT, Plan, PlanKind, Refusal, Source, guards, local_digest,
};
use crate::site::{ScanStats, Scanner};

pub(super) fn parse_forces(names: &[String]) -> Result<Vec<Guard>, Error> {
    names
        .iter()
        .map(|n| {
            Guard::parse(n).ok_or_else(|| {
                Error::Usage(format!(
                    "--force {n}: not a guard that can be overridden; choose from: {}",
                    Guard::FORCEABLE.map(Guard::name).join(", ")
                ))
            })
        })
        .collect()
}

/// The local site as a desired state, with its problems as refusals.
pub(super) struct SiteScan {
    pub(super) desired: BTreeMap<String, Desired>,
    pub(super) stats: ScanStats,
    pub(super) refusals: Vec<Refusal>,
}

/// Scan the local site into the desired state, with site problems as refusals.
pub(super) fn scan_site(ctx: &Ctx) -> Result<SiteScan, Error> {
    scan_config(&ctx.config, &ctx.out)
}

/// [`scan_site`] on a blocking thread, so the store can be read meanwhile.
async fn scan_site_concurrently(ctx: &Ctx) -> Result<SiteScan, Error> {
    let (config, out) = (ctx.config.clone(), ctx.out);
    tokio::task::spawn_blocking(move || scan_config(&config, &out))
        .await
        .map_err(|e| Error::Other(format!("scanning the site: {e}")))?
}

fn scan_config(config: &crate::config::Config, out: &crate::ui::Output) -> Result<SiteScan, Error> {
    let bar = out.bar_later("hashing");
    let progress = |done: u64, total: u64| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    // The config and its schema, when the site is the project folder itself (`site = ".").
    let skip = [
        config.path.clone(),
        config.dir.join(super::init::SCHEMA_FILE),
    ];
    let scanner = Scanner {
        site: &config.site,
        ignore: &config.ignore,
        include: &config.include,
        skip: &skip,
        project: Some(&config.dir),
        rules: &config.rules,
        cache: Some(config.workdir_state().join("cache")),
        progress: &progress,
    };
    let scan = scanner.scan()?;
    bar.finish_and_clear();
    let refusals = crate::plan::guards::site(&scan.problems, scan.files.len(), &config.site);
    let desired = scan
        .files
        .into_values()
        .map(|f| {
            let entry = Entry::from_attributes(&f.sha256, f.size, &f.attrs, "");
            (
                f.key,
                Desired {
                    entry,
                    source: Source::Local(f.path),
                },
            )
        })
        .collect();
    Ok(SiteScan {
        desired,
        stats: scan.stats,
        refusals,
    })
}

/// What the store holds at the site keys, read with a spinner on a terminal.
pub(super) async fn read_remote(
    ec: &EnvCtx<'_>,
    live: Option<&Release>,
) -> Result<BTreeMap<String, crate::plan::RemoteObject>, Error> {
    let reading = ec.ctx.out.spinner("reading the store");
    let remote = read_site(&ec.ledger, live).await?;
    reading.finish_and_clear();
    Ok(remote)
}

/// Read the rest of what a plan of `req` decides on (the base, a deploy's features) and
/// build it.
pub(super) async fn plan_from(
    ec: &EnvCtx<'_>,
    req: Request,
    state: State,
    remote: BTreeMap<String, crate::plan::RemoteObject>,
) -> Result<Plan, Error> {
    let deploy = req.kind == PlanKind::Deploy;
    let mut base = if deploy {
        base::resolve(&ec.working(), state.live.as_ref()).await?
    } else {
        BaseResolution::of(state.live.clone())
    };
    let history_reverts = match &state.live {
        Some(live) if deploy && base.base.is_none() => {
            base::history_reverts(&ec.working(), live, &req.desired, &mut base).await?
        }
        _ => Vec::new(),
    };
    let features = if deploy {
        facts::features(
            &ec.ledger,
            &ec.ctx.config.features,
            &req.desired,
            state.live.as_deref(),
        )
        .await?
    } else {
        Vec::new()
    };
    let facts = Facts {
        state,
        remote,
        base,
        history_reverts,
        features,
    };
    Ok(build(&ec.plan_inputs(), req, facts))
}

/// A plan with no scan (rollback, promotion): the state and the store, then the plan.
pub(super) async fn plan_of(ec: &EnvCtx<'_>, req: Request) -> Result<Plan, Error> {
    let state = State::read(&ec.ledger).await?;
    let remote = read_remote(ec, state.live.as_deref()).await?;
    plan_from(ec, req, state, remote).await
}

/// What a person says about the release a deploy makes.
pub(super) struct What {
    pub(super) message: Option<String>,
    pub(super) tag: Option<String>,
}

/// Refuse at once, before scanning the site, when a guard that needs no scan refuses:
/// a hold, the lock, a protected environment, an interrupted apply.
pub(super) async fn refuse_early(
    ec: &EnvCtx<'_>,
    kind: &PlanKind,
    state: &State,
) -> Result<(), Error> {
    let refusals = guards::early(ec.cfg, kind, state);
    if refusals.is_empty() {
        return Ok(());
    }
    let out = &ec.ctx.out;
    out.say(format!(
        "{} {} → {}\n\n{}\n{}",
        out.paint("Plan:", crate::ui::Style::Strong),
        kind.name(),
        out.paint(&ec.cfg.name, crate::ui::Style::Strong),
        out.paint("REFUSED — nothing will be changed:", crate::ui::Style::Bad),
        crate::ui::proof::refusals(out, &refusals).trim_end()
    ));
    crate::ui::github::refusals(out, &refusals, &ec.ctx.config.site);
    out.document_with(|| {
        serde_json::json!({
            "env": ec.cfg.name,
            "kind": kind,
            "refusals": refusals,
            "result": "refused",
        })
    });
    ec.ledger
        .journal(
            &ec.ctx.actor,
            "refused",
            None,
            serde_json::json!({ "kind": kind, "refusals": refusals }),
        )
        .await;
    let summary = refusal_summary(kind, &ec.cfg.name, &refusals);
    crate::ui::github::early_refusal_summary(out, kind, &ec.cfg.name, &refusals);
    ec.notify("refused", None, summary.clone()).await;
    Err(Error::Refused(summary))
}

async fn deploy_plan(ec: &EnvCtx<'_>, what: What, force: &[String]) -> Result<Plan, Error> {
    let forced = parse_forces(force)?;
    if let Some(tag) = &what.tag {
        ec.check_new_tag(tag).await?;
    }
    let state = State::read(&ec.ledger).await?;
    refuse_early(ec, &PlanKind::Deploy, &state).await?;
    // Hash the site while the store is read: a no-op deploy waits on whichever is longer.
    let (site, remote) = tokio::try_join!(
        scan_site_concurrently(ec.ctx),
        read_remote(ec, state.live.as_deref())
    )?;
    check_edge_files(ec.ctx, &site.desired)?;
    let git = Repo::discover(&ec.ctx.config.dir).and_then(|r| r.head_for(&ec.ctx.config.dir));
    plan_from(
        ec,
        Request {
            kind: PlanKind::Deploy,
            desired: site.desired,
            scan: Some(site.stats),
            refusals: site.refusals,
            forced,
            message: what.message,
            git,
            tag: what.tag,
        },
        state,
        remote,
    )
    .await
}

/// `[edge]` names files of the build: they must be in it.
fn check_edge_files(ctx: &Ctx, desired: &BTreeMap<String, Desired>) -> Result<(), Error> {
    let edge = &ctx.config.edge;
    for (key, file) in [
        ("edge.not_found", &edge.not_found),
        ("edge.spa_fallback", &edge.spa_fallback),
    ] {
        if let Some(f) = file
            && !desired.contains_key(f.trim_start_matches('/'))
        {
            return Err(Error::Usage(format!(
                "{}: {key} = {f:?} is not in the build ({})\n  → build it, or fix {key} in driftless.toml",
                ctx.config.locate(&crate::config::Key::of(key)),
                ctx.config.site.display()
            )));
        }
    }
    Ok(())
}

/// The one line a refusal ends with (exit status 3), and what a notification says.
fn refusal_summary(kind: &PlanKind, env: &str, refusals: &[Refusal]) -> String {
    let first = &refusals[0];
    format!(
        "{} guard(s) refused the {} to {env} — nothing was changed. First: [{}] {}",
        refusals.len(),
        kind.name(),
        first.guard.name(),
        first.message
    )
}

fn refused_summary(plan: &Plan) -> String {
    refusal_summary(&plan.kind, &plan.env, &plan.refusals)
}

/// Journal a refusal and turn it into the exit-3 error.
pub(super) async fn refuse(ec: &EnvCtx<'_>, plan: &Plan) -> Error {
    // An environment that was never deployed has no history to audit: write nothing.
    if plan.live.is_some() {
        ec.ledger
            .journal(
                &ec.ctx.actor,
                "refused",
                None,
                serde_json::json!({ "kind": plan.kind, "refusals": plan.refusals }),
            )
            .await;
    }
    let summary = refused_summary(plan);
    ec.notify("refused", None, summary.clone()).await;
    Error::Refused(summary)
}

pub(super) async fn plan(
    ctx: &Ctx,
    env: &str,
    out_file: Option<&Path>,
    message: Option<String>,
    force: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let what = What { message, tag: None };
    let mut plan = deploy_plan(&ec, what, force).await?;
    if out_file.is_some() {
        // What `apply` compares the local site with: the new manifest holds exactly the
        // desired keys, contents and headers.
        plan.seen.local_digest = local_digest(&plan.manifest);
    }
    ctx.show_plan(&plan);
    ctx.out.document(&ctx.out.plan_view(&plan));
    if let Some(path) = out_file {
        let json = serde_json::to_vec_pretty(&plan).expect("plans serialise");
        fs_err::write(path, json)?;
        ctx.out.say(format!(
            "Saved the plan to {}; apply it with: driftless apply {}",
            path.display(),
            path.display()
        ));
    }
    if plan.refused() {
        return Err(Error::Refused(refused_summary(&plan)));
    }
    Ok(())
}

pub(super) async fn deploy(
    ctx: &Ctx,
    env: &str,
    what: What,
    yes: bool,
    force: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    let plan = deploy_plan(&ec, what, force).await?;
    ctx.show_plan(&plan);
    let allow_unsafe = parse_forces(force)?.contains(&Guard::UnsafeStore);
    confirm_and_execute(&ec, plan, yes, allow_unsafe).await
}

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
    if plan.is_noop() {
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
        PlanKind::Deploy => format!("Apply {changes} to {env}?"),
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
        ec.work.set_pending(&plan.new_release)?;
    }
    crate::interrupt::install();
    let (release, transfer) = execute(ec, &plan, staged).await?;
    match plan.kind {
        PlanKind::Deploy => ec.work.set_base(&release.id)?,
        PlanKind::Rollback { .. } => {
            ec.work
                .record_made(plan.live.as_ref().map(|l| l.id.as_str()), &release.id)?;
        }
        PlanKind::Promote { .. } => {}
    }
    ctx.out.say(format!(
        "{} release {} is live on {env}: {} created, {} updated, {} header-only, {} deleted.",
        ctx.out.paint("✓", crate::ui::Style::Good),
        release.id,
        t.create,
        t.update,
        t.header_update,
        t.delete
    ));
    let invalidated = ec
        .invalidate_after(plan.invalidation.as_ref(), &release.id)
        .await;
    let summary = match &plan.kind {
        PlanKind::Deploy => format!("release {} is live", release.id),
        PlanKind::Rollback { to } => {
            format!("rolled back to {to}: release {} is live", release.id)
        }
        PlanKind::Promote { from, release: r } => {
            format!(
                "promoted {from} release {r}: release {} is live",
                release.id
            )
        }
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
    crate::ui::github::summary(
        &ctx.out,
        &format!(
            "**Result:** ✅ release `{}` is live on {env}{}\n\n",
            release.id,
            ec.cfg
                .url
                .as_deref()
                .map(|u| format!(" — {u}"))
                .unwrap_or_default()
        ),
    );
    ec.notify(plan.kind.name(), Some(&release.summary()), summary)
        .await;
    ctx.out.document_with(|| {
        serde_json::json!({
            "plan": ctx.out.plan_view(&plan),
            "result": "applied",
            "release": release.summary(),
            "transfer": transfer,
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
        if matches!(plan.kind, PlanKind::Deploy | PlanKind::Promote { .. })
            && let Some((hold, _)) = ec.ledger.holds().await?.into_iter().next()
        {
            return Err(Error::Refused(format!(
                "{} was put on hold by {} since the plan: {}\n  → driftless unhold {}",
                ec.cfg.name, hold.by.author, hold.reason, ec.cfg.name
            )));
        }
        // gc or yank may have taken the target since the plan.
        if let PlanKind::Rollback { to } = &plan.kind
            && let Err(gone) = ec.ledger.restorable(to).await?
        {
            return Err(super::content::unrestorable(&ec.cfg.name, &gone));
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
            let detail = serde_json::json!({ "totals": plan.totals, "overrides": plan.overrides });
            ec.ledger
                .journal(&ec.ctx.actor, operation, Some(&release.id), detail)
                .await;
            if !plan.overrides.is_empty() {
                ec.ledger
                    .journal(
                        &ec.ctx.actor,
                        "forced",
                        Some(&release.id),
                        serde_json::json!(plan.overrides),
                    )
                    .await;
            }
        }
        Err(Error::Refused(why)) => {
            ec.ledger
                .journal(
                    &ec.ctx.actor,
                    "refused",
                    None,
                    serde_json::json!({ "at": "apply", "why": why }),
                )
                .await;
            ec.notify("refused", None, why.clone()).await;
        }
        Err(Error::Interrupted(why)) => {
            ec.ledger
                .journal(
                    &ec.ctx.actor,
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

/// `driftless apply FILE`: a saved plan, only if nothing it saw has moved.
pub(super) async fn apply_saved(ctx: &Ctx, file: &Path, yes: bool) -> Result<(), Error> {
    let text = fs_err::read(file)?;
    let plan: Plan = serde_json::from_slice(&text)
        .map_err(|e| Error::Usage(format!("{}: not a driftless plan: {e}", file.display())))?;
    if plan.format != PLAN_FORMAT {
        return Err(Error::Usage(format!(
            "{}: plan format {} is not supported by this driftless (expects {PLAN_FORMAT})",
            file.display(),
            plan.format
        )));
    }
    let ec = ctx.env(&plan.env).await?;
    // Applied already (a re-run in CI, a second terminal): say so, not "it moved".
    if let Ok((made, _)) = ec.ledger.release_ref(&plan.new_release).await {
        let live = ec.ledger.head().await?.release;
        if live.as_deref() == Some(plan.new_release.as_str()) {
            ctx.out.say(format!(
                "{} was already applied: release {made} is live on {}; nothing to do.",
                file.display(),
                plan.env
            ));
            ctx.out.document_with(
                || serde_json::json!({ "result": "already-applied", "release": made }),
            );
            return Ok(());
        }
        return Err(Error::Refused(format!(
            "{} was already applied as release {made}, and {} has moved on since (live: {}) — nothing was changed\n  → plan again: driftless plan {} --out {}",
            file.display(),
            plan.env,
            live.as_deref().unwrap_or("(none)"),
            plan.env,
            file.display()
        )));
    }
    ctx.show_plan(&plan);
    if plan.refused() {
        return Err(refuse(&ec, &plan).await);
    }
    if plan.kind == PlanKind::Deploy {
        let site = scan_site(ctx)?;
        if !site.refusals.is_empty() || local_digest(&site.desired) != plan.seen.local_digest {
            return Err(Error::Refused(format!(
                "the local site changed since the plan was saved — nothing was changed\n  → re-plan: driftless plan {} --out {}",
                plan.env,
                file.display()
            )));
        }
    }
    confirm_and_execute(&ec, plan, yes, false).await
}
