//! `plan`, `deploy` and `apply`: gather the facts, build the plan with every guard,
//! show it, and (after confirmation) apply it.

use crate::commands::execute::confirm_and_execute;
use crate::commands::planning::parse_forces;
use crate::commands::planning::plan_from;
use crate::commands::planning::read_remote;
use crate::commands::planning::refuse;
use crate::commands::planning::refuse_early;
use crate::commands::planning::refused_summary;
use crate::commands::planning::scan_site;
use crate::commands::planning::scan_site_concurrently;
use std::collections::BTreeMap;
use std::path::Path;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::git::Repo;
use crate::plan::build::Request;
use crate::plan::facts::State;
use crate::plan::{Desired, Guard, PLAN_FORMAT, Plan, PlanKind, local_digest};

/// What a person says about the release a deploy makes.
pub(super) struct What {
    pub(super) message: Option<String>,
    pub(super) tag: Option<String>,
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
            preview: None,
            edge: Some(crate::config::EdgeRules::of(&ec.ctx.config.edge)),
        },
        state,
        remote,
    )
    .await
}

/// `[edge]` names files of the build: they must be in it.
pub(super) fn check_edge_files(
    ctx: &Ctx,
    desired: &BTreeMap<String, Desired>,
) -> Result<(), Error> {
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
    canary: Option<u8>,
    yes: bool,
    force: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    if canary.is_some() && ec.ledger.layout().await? != crate::config::Layout::Atomic {
        return Err(Error::Refused(format!(
            "a canary needs the atomic layout (two slots and a live pointer), and env.{env} is in place: nothing was changed\n  → driftless migrate {env} --layout atomic"
        )));
    }
    if canary.is_some() && ec.ledger.head().await?.release.is_none() {
        return Err(Error::Refused(format!(
            "env.{env} has no live release yet: a canary shares visitors with one; nothing was changed\n  → driftless deploy {env} (without --canary) first"
        )));
    }
    if canary.is_some() && ec.cfg.edge_reads_pointer() {
        crate::apply::edge::environment::canary_ready(&ec.edge()).await?;
    }
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    let mut plan = deploy_plan(&ec, what, force).await?;
    plan.canary = canary;
    ctx.show_plan(&plan);
    let allow_unsafe = parse_forces(force)?.contains(&Guard::UnsafeStore);
    confirm_and_execute(&ec, plan, yes, allow_unsafe).await
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
