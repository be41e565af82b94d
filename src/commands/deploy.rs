//! `plan`, `deploy` and `apply`: gather the facts, build the plan with every guard,
//! show it, and (after confirmation) apply it.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::apply::{Provenance, apply};
use crate::git::{Ancestry, GitInfo, Repo};
use crate::ledger::{Entry, Release, new_release_id};
use crate::output::proof_block;
use crate::plan::{
    ActionKind, Desired, Guard, PLAN_FORMAT, Plan, PlanKind, Refusal, Source, apply_forces,
    conflict_refusals, delete_refusal, diff, listing_digest, local_digest, totals,
};
use crate::remote::read_site;
use crate::scan::{ScanStats, Scanner};

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
    let bar = ctx.out.bar(0, "hashing");
    let progress = |done: u64, total: u64| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    let scanner = Scanner {
        site: &ctx.config.site,
        ignore: &ctx.config.ignore,
        rules: &ctx.config.rules,
        cache: Some(ctx.config.workdir_state().join("cache")),
        progress: &progress,
    };
    let scan = scanner.scan()?;
    bar.finish_and_clear();
    let mut refusals: Vec<Refusal> = scan
        .problems
        .iter()
        .map(|p| Refusal {
            guard: Guard::Site,
            message: format!("{}: {}", p.path, p.problem),
            key: Some(p.path.clone()),
            release: None,
            resolve: "fix the build output (or exclude the file in .driftlessignore) and re-run"
                .into(),
        })
        .collect();
    if scan.files.is_empty() && scan.problems.is_empty() {
        refusals.push(Refusal {
            guard: Guard::Site,
            message: format!(
                "the site directory {} is empty (after ignore rules): did the build fail?",
                ctx.config.site.display()
            ),
            key: None,
            release: None,
            resolve: "build the site, then re-run".into(),
        });
    }
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

/// Everything a plan needs besides the desired state.
pub(super) struct Request {
    pub(super) kind: PlanKind,
    pub(super) desired: BTreeMap<String, Desired>,
    pub(super) scan: Option<ScanStats>,
    pub(super) refusals: Vec<Refusal>,
    pub(super) forced: Vec<Guard>,
    pub(super) message: Option<String>,
}

/// Read the remote state, resolve the base, diff, and run every guard.
pub(super) async fn build_plan(ec: &EnvCtx<'_>, req: Request) -> Result<Plan, Error> {
    let env = &ec.cfg.name;
    let (head, live) = ec.ledger.live().await?;
    let remote = read_site(&ec.ledger, live.as_ref()).await?;
    let repo = Repo::discover(&ec.ctx.config.dir);
    let git = repo.as_ref().and_then(Repo::head);
    let deploy = req.kind == PlanKind::Deploy;
    let promote = matches!(req.kind, PlanKind::Promote { .. });
    let (base, stale) = if deploy {
        resolve_base(ec, live.as_ref(), repo.as_ref(), git.as_ref()).await?
    } else {
        (live.clone(), None)
    };
    let d = diff(
        &req.desired,
        base.as_ref().map(|b| &b.manifest),
        live.as_ref().map(|l| &l.manifest),
        &remote,
    );
    let mut refusals = req.refusals;
    let mut automatic_overrides = Vec::new();

    if deploy && let Some(from) = &ec.cfg.promote_from {
        refusals.push(Refusal {
            guard: Guard::Protected,
            message: format!(
                "{env} is protected: it only accepts promotions of what {from} verified"
            ),
            key: None,
            release: None,
            resolve: format!(
                "deploy to {from} (`driftless deploy {from}`), verify it (`driftless verify {from}`), then `driftless promote {from} {env}`"
            ),
        });
    }
    if deploy || promote {
        for (hold, _) in ec.ledger.holds().await? {
            refusals.push(Refusal {
                guard: Guard::Hold,
                message: format!(
                    "{env} is on hold since {} by {}: {}",
                    crate::ledger::short_time(hold.at),
                    hold.by.author,
                    hold.reason
                ),
                key: None,
                release: None,
                resolve: format!("when the reason is resolved: driftless unhold {env}"),
            });
        }
    }
    if let Some((lock, _)) = ec.ledger.read_lock().await?
        && !(lock.expired(Timestamp::now()) || lock.holder_is_dead_here())
    {
        refusals.push(Refusal {
            guard: Guard::Lock,
            message: format!(
                "{} on {} is running `{}` on {env} since {}",
                lock.holder.author,
                lock.holder.host,
                lock.operation,
                crate::ledger::short_time(lock.started_at)
            ),
            key: None,
            release: None,
            resolve: format!("wait for it to finish; if that run is dead: driftless unlock {env}"),
        });
    }
    if let Some((pending, _)) = ec.ledger.pending().await? {
        refusals.push(Refusal {
            guard: Guard::Pending,
            message: format!(
                "an apply of release {} by {} was interrupted",
                pending.release.id, pending.release.actor.author
            ),
            key: None,
            release: Some(pending.release.summary()),
            resolve: format!("`driftless deploy {env}` finishes it before planning anything new"),
        });
    }
    if !d.drift.is_empty() {
        let list: Vec<String> = d
            .drift
            .iter()
            .take(10)
            .map(|x| format!("{} ({:?})", x.key, x.kind).to_lowercase())
            .collect();
        let more = d.drift.len().saturating_sub(10);
        let message = format!(
            "{} object(s) in the store differ from the live release{}: {}{}",
            d.drift.len(),
            live.as_ref()
                .map(|l| format!(" {}", l.summary()))
                .unwrap_or_default(),
            list.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        let refusal = Refusal {
            guard: Guard::Drift,
            message,
            key: d.drift.first().map(|x| x.key.clone()),
            release: live.as_ref().map(Release::summary),
            resolve: format!(
                "review with `driftless diff {env} --against local`; accept the store as it is with `driftless adopt {env}`, or overwrite it with --force drift (the current bytes are kept in the store's objects/)"
            ),
        };
        if deploy || promote {
            refusals.push(refusal);
        } else {
            // Restoring a known release is what a rollback is for; the drifted bytes
            // are snapshotted before they are replaced.
            automatic_overrides.push(refusal);
        }
    }
    if deploy {
        refusals.extend(stale);
        refusals.extend(conflict_refusals(&d.conflicts, live.as_ref(), env));
        refusals.extend(feature_refusals(ec, &req.desired, live.as_ref()).await?);
        let deletes = d
            .actions
            .iter()
            .filter(|a| a.kind == ActionKind::Delete)
            .count();
        let live_files = live.as_ref().map_or(0, |l| l.manifest.len());
        refusals.extend(delete_refusal(deletes, live_files, &ec.cfg.limits, env));
    }
    let (refusals, mut overrides) = apply_forces(refusals, &req.forced);
    overrides.extend(automatic_overrides);

    let totals = totals(&d.actions, d.unchanged);
    let invalidation = ec
        .cfg
        .cdn
        .as_ref()
        .and_then(|c| crate::cdn::invalidation_for(&d.actions, c.wildcard_threshold));
    Ok(Plan {
        format: PLAN_FORMAT,
        kind: req.kind,
        env: env.clone(),
        store: ec.ledger.store().location(),
        created_at: Timestamp::now(),
        actor: ec.ctx.actor.clone(),
        git: if deploy {
            git
        } else {
            live.as_ref().and_then(|l| l.git.clone())
        },
        message: req.message,
        live: live.as_ref().map(Release::summary),
        base: base.as_ref().map(Release::summary),
        new_release: new_release_id(Timestamp::now()),
        seen: crate::plan::Seen {
            head,
            listing_digest: listing_digest(&remote),
            local_digest: local_digest(&req.desired),
        },
        actions: d.actions,
        totals,
        drift: d.drift,
        refusals,
        overrides,
        invalidation,
        manifest: d.manifest,
        scan: req.scan,
        batch: Vec::new(),
    })
}

/// Which release the local build derives from, and whether that makes it stale.
///
/// In git: live must come from a commit the checkout contains; otherwise the base is
/// the newest ancestor release whose commit it does contain. Outside git (or when no
/// release has a commit): the working copy's last-known release must be live.
async fn resolve_base(
    ec: &EnvCtx<'_>,
    live: Option<&Release>,
    repo: Option<&Repo>,
    git: Option<&GitInfo>,
) -> Result<(Option<Release>, Option<Refusal>), Error> {
    let Some(live) = live else {
        return Ok((None, None));
    };
    let env = &ec.cfg.name;
    if let (Some(repo), Some(git)) = (repo, git) {
        if let Some(commit) = live.git.as_ref().map(|g| g.commit.clone()) {
            let ancestry = repo.contains(&commit);
            if ancestry == Ancestry::Contained {
                return Ok((Some(live.clone()), None));
            }
            let base = contained_ancestor(ec, live, repo).await?;
            let why = if ancestry == Ancestry::Unknown {
                "which is not in your repository (not fetched yet?)"
            } else {
                "which your checkout does not contain"
            };
            let refusal = Refusal {
                guard: Guard::StaleBase,
                message: format!(
                    "live release {} was built from commit {commit}, {why} (you are at {}{})",
                    live.summary(),
                    &git.commit[..git.commit.len().min(10)],
                    base.as_ref()
                        .map(|b| format!("; your base is release {}", b.id))
                        .unwrap_or_default()
                ),
                key: None,
                release: Some(live.summary()),
                resolve: format!(
                    "git fetch && git merge {commit} (or git pull), rebuild, and re-run; `driftless diff {env}` shows what you would revert"
                ),
            };
            return Ok((base, Some(refusal)));
        }
        // Live has no commit (adopted, or deployed from outside git): judge per file
        // against the newest ancestor release this checkout contains.
        if let Some(base) = contained_ancestor(ec, live, repo).await? {
            return Ok((Some(base), None));
        }
    }
    match ec.working_base() {
        Some(id) if id == live.id => Ok((Some(live.clone()), None)),
        Some(id) => {
            let base = ec.ledger.release(&id).await.ok();
            Ok((
                base,
                Some(Refusal {
                    guard: Guard::StaleBase,
                    message: format!(
                        "this working copy last deployed or pulled release {id}, but live is now {}",
                        live.summary()
                    ),
                    key: None,
                    release: Some(live.summary()),
                    resolve: format!(
                        "see what changed with `driftless diff {env}`; start from live with `driftless pull {env} DIR`, or re-run with --force stale-base"
                    ),
                }),
            ))
        }
        None => Ok((
            None,
            Some(Refusal {
                guard: Guard::StaleBase,
                message: format!(
                    "this working copy has never deployed or pulled {env}, and {env} already serves release {}",
                    live.summary()
                ),
                key: None,
                release: Some(live.summary()),
                resolve: format!(
                    "start from live with `driftless pull {env} DIR` (or commit your site to git), or after `driftless diff {env}` re-run with --force stale-base"
                ),
            }),
        )),
    }
}

/// The newest release in live's ancestry (live included) built from a commit `repo` contains.
async fn contained_ancestor(
    ec: &EnvCtx<'_>,
    live: &Release,
    repo: &Repo,
) -> Result<Option<Release>, Error> {
    let mut next = Some(live.clone());
    for _ in 0..100 {
        let Some(r) = next else { break };
        if let Some(g) = &r.git
            && repo.contains(&g.commit) == Ancestry::Contained
        {
            return Ok(Some(r));
        }
        next = match &r.parent {
            Some(p) => Some(ec.ledger.release(p).await?),
            None => None,
        };
    }
    Ok(None)
}

/// Registered features must be in the new site; say whether they are live now.
async fn feature_refusals(
    ec: &EnvCtx<'_>,
    desired: &BTreeMap<String, Desired>,
    live: Option<&Release>,
) -> Result<Vec<Refusal>, Error> {
    let env = &ec.cfg.name;
    let mut out = Vec::new();
    for f in &ec.ctx.config.features {
        let local_has = match desired.get(&f.file).map(|d| &d.source) {
            Some(Source::Local(path)) => {
                std::fs::read(path).is_ok_and(|b| contains(&b, f.contains.as_bytes()))
            }
            _ => false,
        };
        if local_has {
            continue;
        }
        let live_entry = live.and_then(|l| l.manifest.get(&f.file));
        let live_has = match live_entry {
            Some(e) => ec
                .ledger
                .get_object(&e.sha256)
                .await?
                .is_some_and(|b| contains(&b, f.contains.as_bytes())),
            None => false,
        };
        let message = if live_has {
            format!(
                "feature {:?} is live ({} contains {:?} in release {}) but missing from your build",
                f.name,
                f.file,
                f.contains,
                live.map(|l| l.summary().to_string()).unwrap_or_default()
            )
        } else {
            format!(
                "feature {:?} is missing from your build ({} does not contain {:?})",
                f.name, f.file, f.contains
            )
        };
        out.push(Refusal {
            guard: Guard::Feature,
            message,
            key: Some(f.file.clone()),
            release: live.filter(|_| live_has).map(Release::summary),
            resolve: format!(
                "restore it and rebuild (`driftless diff {env} {}` shows the live version); if it was removed on purpose, update [[features]] in driftless.toml or re-run with --force feature",
                f.file
            ),
        });
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn deploy_plan(
    ec: &EnvCtx<'_>,
    message: Option<String>,
    force: &[String],
) -> Result<Plan, Error> {
    let forced = parse_forces(force)?;
    let site = scan_site(ec.ctx)?;
    build_plan(
        ec,
        Request {
            kind: PlanKind::Deploy,
            desired: site.desired,
            scan: Some(site.stats),
            refusals: site.refusals,
            forced,
            message,
        },
    )
    .await
}

fn refused_summary(plan: &Plan) -> String {
    let first = &plan.refusals[0];
    format!(
        "{} guard(s) refused the {} to {} — nothing was changed. First: [{}] {}",
        plan.refusals.len(),
        match plan.kind {
            PlanKind::Deploy => "deploy",
            PlanKind::Rollback { .. } => "rollback",
            PlanKind::Promote { .. } => "promote",
        },
        plan.env,
        first.guard.name(),
        first.message
    )
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
    Error::Refused(refused_summary(plan))
}

pub(super) async fn plan(
    ctx: &Ctx,
    env: &str,
    out_file: Option<&Path>,
    message: Option<String>,
    force: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let plan = deploy_plan(&ec, message, force).await?;
    ctx.out.say(proof_block(&ctx.out, &plan));
    ctx.out.document(&plan);
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
    message: Option<String>,
    yes: bool,
    force: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    ec.finish_interrupted().await?;
    let plan = deploy_plan(&ec, message, force).await?;
    ctx.out.say(proof_block(&ctx.out, &plan));
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
    execute_and_report(ec, plan).await
}

/// Refuse a refused plan, report a no-op (false), or ask to confirm (true: go ahead).
pub(super) async fn confirmed(ec: &EnvCtx<'_>, plan: &Plan, yes: bool) -> Result<bool, Error> {
    let ctx = ec.ctx;
    let env = &ec.cfg.name;
    if plan.refused() {
        ctx.out
            .document(&serde_json::json!({ "plan": plan, "result": "refused" }));
        return Err(refuse(ec, plan).await);
    }
    if plan.is_noop() {
        if plan.kind == PlanKind::Deploy
            && let Some(live) = &plan.live
        {
            ec.set_working_base(&live.id)?;
        }
        ctx.out.say(format!(
            "Nothing to do: {env} already serves exactly this{}.",
            plan.live
                .as_ref()
                .map(|l| format!(" (release {})", l.id))
                .unwrap_or_default()
        ));
        ctx.out
            .document(&serde_json::json!({ "plan": plan, "result": "no-op" }));
        return Ok(false);
    }
    let t = &plan.totals;
    let question = format!(
        "Apply {} change(s) to {env} ({} create, {} update, {} header-only, {} delete)?",
        plan.actions.len(),
        t.create,
        t.update,
        t.header_update,
        t.delete
    );
    if !ctx.out.confirm(&question, yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    Ok(true)
}

/// Apply a confirmed plan, then invalidate the CDN and report.
pub(super) async fn execute_and_report(ec: &EnvCtx<'_>, plan: Plan) -> Result<(), Error> {
    let ctx = ec.ctx;
    let env = &ec.cfg.name;
    let t = &plan.totals;
    if plan.kind == PlanKind::Deploy {
        ec.set_working_pending(&plan.new_release)?;
    }
    let release = execute(ec, &plan).await?;
    if plan.kind == PlanKind::Deploy {
        ec.set_working_base(&release.id)?;
    }
    ctx.out.say(format!(
        "{} release {} is live on {env}: {} created, {} updated, {} header-only, {} deleted.",
        ctx.out.paint("✓", crate::output::Style::Good),
        release.id,
        t.create,
        t.update,
        t.header_update,
        t.delete
    ));
    let invalidated = ec
        .invalidate_after(plan.invalidation.as_ref(), &release.id)
        .await;
    ctx.out.document(&serde_json::json!({
        "plan": plan,
        "result": "applied",
        "release": release.summary(),
        "invalidation": invalidated.as_ref().ok(),
    }));
    invalidated.map(|_| ())
}

/// Lock, re-check holds, apply, unlock, journal.
async fn execute(ec: &EnvCtx<'_>, plan: &Plan) -> Result<Release, Error> {
    let operation = match plan.kind {
        PlanKind::Deploy => "deploy",
        PlanKind::Rollback { .. } => "rollback",
        PlanKind::Promote { .. } => "promote",
    };
    let lease = ec.lock(operation).await?;
    let result = async {
        if matches!(plan.kind, PlanKind::Deploy | PlanKind::Promote { .. })
            && let Some((hold, _)) = ec.ledger.holds().await?.into_iter().next()
        {
            return Err(Error::Refused(format!(
                "{} was put on hold by {} since the plan: {}\n  → driftless unhold {}",
                ec.cfg.name, hold.by.author, hold.reason, ec.cfg.name
            )));
        }
        let who = Provenance {
            actor: &ec.ctx.actor,
            message: plan.message.clone(),
        };
        apply(&ec.ledger, plan, &who, &lease, &ec.ctx.out).await
    }
    .await;
    lease.release(&ec.ledger).await?;
    match &result {
        Ok(release) => {
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
    ctx.out.say(proof_block(&ctx.out, &plan));
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
