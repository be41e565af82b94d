//! What every command that makes a plan does alike: read the facts (the state, what the
//! store holds, the base, the site's scan), build the plan, and refuse — early, before a
//! scan, when a guard needs none — journalling and notifying the refusal.

use std::collections::BTreeMap;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::ledger::{Entry, Release};
use crate::plan::base::BaseResolution;
use crate::plan::build::{Request, build};
use crate::plan::facts::{Facts, State, read_site};
use crate::plan::{Desired, Guard, Plan, PlanKind, Refusal, Source, base, facts, guards};
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
pub(super) async fn scan_site_concurrently(ctx: &Ctx) -> Result<SiteScan, Error> {
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
        config.dir.join(crate::config::SCHEMA_FILE),
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
    plan_judged(ec, req, state, remote, None).await
}

/// [`plan_from`], with the ledger of the environment a promoted preview comes from (its
/// history is where the preview's base is found when TO's live is a promotion of it).
async fn plan_judged(
    ec: &EnvCtx<'_>,
    req: Request,
    state: State,
    remote: BTreeMap<String, crate::plan::RemoteObject>,
    source: Option<&crate::ledger::Ledger>,
) -> Result<Plan, Error> {
    let deploy = req.kind == PlanKind::Deploy;
    let preview = matches!(req.kind, PlanKind::Preview { .. });
    // A preview records the base its build derives from, as a deploy resolves it, so
    // that making it live later is judged against what the build knew.
    let mut base = if let Some(p) = &req.preview {
        base::of_preview(&ec.working(), state.live.as_ref(), p, source).await?
    } else if deploy || preview {
        base::resolve(&ec.working(), state.live.as_ref()).await?
    } else {
        BaseResolution::of(state.live.clone())
    };
    let built = deploy || req.preview.is_some();
    let history_reverts = match &state.live {
        Some(live) if built && base.base.is_none() => {
            base::history_reverts(&ec.working(), live, &req.desired, &mut base).await?
        }
        _ => Vec::new(),
    };
    let features = if deploy || preview {
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
    // Signed cookies behind CloudFront: the behaviors the release's patterns need.
    let behaviors = match (&req.edge, ec.ctx.config.edge.signed_cookies()) {
        (Some(_), Some(_)) if ec.cfg.edge_reads_pointer() => Some(
            ec.ledger
                .state_json::<serde_json::Value>("edge.json")
                .await?
                .and_then(|(v, _)| {
                    serde_json::from_value::<Vec<String>>(v["behaviors"].clone()).ok()
                })
                .unwrap_or_default(),
        ),
        _ => None,
    };
    let edge =
        crate::plan::guards::edge_protection(&ec.cfg.name, req.edge.as_ref(), behaviors.as_deref());
    let facts = Facts {
        state,
        remote,
        base,
        history_reverts,
        features,
    };
    let checked = behaviors.is_some();
    let mut plan = build(&ec.plan_inputs(), req, facts);
    if checked {
        plan.checked.push(Guard::Edge);
    }
    plan.refusals.extend(edge);
    // Behind CloudFront the release's rules go to the KeyValueStore: refused here, at
    // plan time, when they would not fit it.
    if let Some(rules) = &plan.edge
        && plan.refusals.is_empty()
        && let Some((message, resolve)) = crate::apply::edge::release::refused_for_room(
            &ec.ledger,
            plan.manifest.keys().map(String::as_str),
            rules,
        )
        .await?
    {
        plan.refusals.push(crate::plan::Refusal {
            guard: Guard::Edge,
            message,
            key: None,
            release: None,
            resolve,
        });
    }
    Ok(plan)
}

/// A plan with no scan (rollback, promotion): the state and the store, then the plan.
pub(super) async fn plan_of(ec: &EnvCtx<'_>, req: Request) -> Result<Plan, Error> {
    plan_of_from(ec, req, None).await
}

/// [`plan_of`] for a promotion of a preview: `source` is FROM's ledger.
pub(super) async fn plan_of_from(
    ec: &EnvCtx<'_>,
    req: Request,
    source: Option<&crate::ledger::Ledger>,
) -> Result<Plan, Error> {
    let state = State::read(&ec.ledger).await?;
    let remote = read_remote(ec, state.live.as_deref()).await?;
    plan_judged(ec, req, state, remote, source).await
}

/// The plan that makes release `target_id` live again.
pub(super) async fn rollback_plan(
    ec: &EnvCtx<'_>,
    target_id: &str,
    message: Option<String>,
) -> Result<crate::plan::Plan, Error> {
    let target = ec.ledger.release(target_id).await?;
    let desired = crate::plan::desired_from_objects(&target.manifest);
    plan_of(
        ec,
        Request {
            kind: PlanKind::Rollback {
                to: target.id.clone(),
            },
            desired,
            scan: None,
            refusals: Vec::new(),
            forced: Vec::new(),
            message: Some(message.unwrap_or_else(|| format!("rollback to {}", target.id))),
            // The content is the target's: so is the commit it was built from.
            git: target.git.clone(),
            tag: None,
            preview: None,
            // The rules come back with the bytes (a release from before releases carried
            // rules gets the config's).
            edge: target
                .edge
                .clone()
                .or_else(|| Some(crate::config::EdgeRules::of(&ec.ctx.config.edge))),
        },
    )
    .await
}

/// Refuse at once, before scanning the site, when a guard that needs no scan refuses:
/// a hold, the lock, a protected environment, an interrupted apply.
pub(super) async fn refuse_early(
    ec: &EnvCtx<'_>,
    kind: &PlanKind,
    state: &State,
) -> Result<(), Error> {
    let refusals = guards::early(ec.cfg, kind, state, jiff::Timestamp::now());
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
    ec.journal(
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

pub(super) fn refused_summary(plan: &Plan) -> String {
    refusal_summary(&plan.kind, &plan.env, &plan.refusals)
}

/// Journal a refusal and turn it into the exit-3 error.
pub(super) async fn refuse(ec: &EnvCtx<'_>, plan: &Plan) -> Error {
    // An environment that was never deployed has no history to audit: write nothing.
    if plan.live.is_some() {
        ec.journal(
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
