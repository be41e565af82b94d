//! `promote FROM TO`: FROM's live, verified release becomes TO's, byte for byte (never
//! rebuilt); and the pipeline view (`status` with no environment).

use super::execute::{confirmed, execute_and_report};
use super::planning::{parse_forces, plan_of_from};
use super::{Ctx, EnvCtx};
use crate::Error;
use crate::ledger::Release;
use crate::plan::build::Request as PlanRequest;
use crate::plan::{Guard, PlanKind, Refusal};
use crate::text::short_time;
use crate::ui::Style;

pub(super) struct Request {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) release: Option<String>,
    pub(super) message: Option<String>,
    pub(super) tag: Option<String>,
    /// Promote this preview of FROM (verified at its URL) instead of FROM's live release.
    pub(super) from_preview: Option<String>,
    pub(super) timeout: u64,
    pub(super) yes: bool,
}

pub(super) async fn promote(ctx: &Ctx, req: Request, force: &[String]) -> Result<(), Error> {
    let (from, to) = (req.from.as_str(), req.to.as_str());
    if from == to {
        return Err(Error::Usage(format!(
            "promote {from} {to}: FROM and TO must be two environments"
        )));
    }
    let to_cfg = ctx.config.env(to)?;
    ctx.config.env(from)?;
    if let Some(source) = &to_cfg.promote_from
        && source != from
    {
        return Err(Error::Usage(format!(
            "env.{to} is promoted from {source}, not {from}: driftless promote {source} {to}"
        )));
    }
    let forced = parse_forces(force)?;
    let fe = ctx.env(from).await?;
    let te = ctx.env(to).await?;
    te.finish_interrupted().await?;
    te.clear_finished_lock().await?;

    if let Some(tag) = &req.tag {
        te.check_new_tag(tag).await?;
    }
    // What goes: a preview of FROM, verified at its URL now, or FROM's live release,
    // verified there before.
    let (live, refusals, preview) = match &req.from_preview {
        Some(raw) => {
            let r = super::preview::reviewed(&fe, raw, req.timeout).await?;
            (r.release, r.unverified.into_iter().collect(), Some(r.name))
        }
        None => {
            let live = source_live(&fe, to, req.release.as_deref()).await?;
            if forced.contains(&Guard::Unverified) && fe.cfg.url.is_some() {
                return Err(Error::Usage(format!(
                    "--force unverified is only for an environment without a url; {from} has one: run `driftless verify {from}`"
                )));
            }
            let refusals = gate(&fe, &live).await?.into_iter().collect();
            (live, refusals, None)
        }
    };

    let desired = crate::plan::desired_from_objects(&live.manifest);
    let mut plan = plan_of_from(
        &te,
        PlanRequest {
            kind: PlanKind::Promote {
                from: from.to_owned(),
                release: live.id.clone(),
            },
            desired,
            scan: None,
            refusals,
            forced: forced.clone(),
            message: Some(req.message.unwrap_or_else(|| match &preview {
                Some(name) => format!("promote {from} preview {name} ({})", live.id),
                None => format!("promote {from} release {}", live.id),
            })),
            git: live.git.clone(),
            tag: req.tag.clone(),
            // A preview is judged as a deploy of its build would be, against TO's live.
            preview: preview.as_ref().map(|_| std::sync::Arc::new(live.clone())),
            // FROM's rules, identical by hash: TO gets rules only by promotion.
            edge: live
                .edge
                .clone()
                .or_else(|| Some(crate::config::EdgeRules::of(&ctx.config.edge))),
        },
        Some(&fe.ledger),
    )
    .await?;
    if plan.is_noop() {
        // TO already serves exactly this: nothing to gate.
        plan.refusals.retain(|r| r.guard != Guard::Unverified);
        plan.overrides.retain(|r| r.guard != Guard::Unverified);
    }
    // A preview is no release of FROM's history: nothing of it is batched.
    if preview.is_none() {
        let to_live = plan.live.as_ref().map(|l| &l.kind);
        plan.batch =
            crate::plan::facts::promotion_batch(&fe.ledger, &te.ledger, to_live, from).await?;
    }
    ctx.show_plan(&plan);
    if !confirmed(&te, &plan, req.yes).await? {
        return Ok(());
    }
    te.ensure_store_trusted(forced.contains(&Guard::UnsafeStore))
        .await?;
    let moved = crate::apply::promote::transfer(
        (&fe.ledger, fe.cfg),
        (&te.ledger, te.cfg),
        &plan,
        &ctx.config.workdir_state().join("tmp"),
        &ctx.out,
    )
    .await?;
    ctx.out.say(format!(
        "Content: {} object(s) copied server-side, {} read through driftless into {to}'s snapshot packs{}.",
        moved.copied,
        moved.streamed,
        if moved.streamed > 0 && crate::apply::promote::same_service(fe.cfg, te.cfg) {
            " (files under 8 MiB are packed, not copied one by one)"
        } else {
            ""
        }
    ));
    let batch_ids: Vec<&str> = plan.batch.iter().map(|r| r.id.as_str()).collect();
    let approval = serde_json::json!({
        "from": from,
        "release": live.id,
        "preview": preview,
        "batch": batch_ids,
        "confirmed": if req.yes { "--yes" } else { "interactive" },
    });
    let new_release = plan.new_release.clone();
    execute_and_report(&te, plan, moved.staged).await?;
    te.journal("promoted", Some(&new_release), approval.clone())
        .await;
    fe.journal("promoted-out", Some(&live.id), {
        let mut a = approval;
        a["to"] = to.into();
        a
    })
    .await;
    if te.cfg.url.is_some() {
        super::verify::verify_env(&te, req.timeout).await
    } else {
        ctx.out.say(format!(
            "{to} has no `url`: not verified over HTTP (add one to env.{to} to check what visitors get)."
        ));
        Ok(())
    }
}

/// FROM's live release, refused unless it is `release` when one is named.
async fn source_live(fe: &EnvCtx<'_>, to: &str, release: Option<&str>) -> Result<Release, Error> {
    let from = fe.cfg.name.as_str();
    let (_, live) = fe.ledger.live().await?;
    let Some(live) = live else {
        return Err(Error::Usage(format!(
            "{from} has no live release to promote: deploy it first (`driftless deploy {from}`)"
        )));
    };
    let wanted = match release {
        Some(name) => Some(fe.release_named(name).await?),
        None => None,
    };
    if let Some(wanted) = &wanted
        && *wanted != live.id
    {
        let was = if fe.ledger.history_refs(Some(wanted), 100_000).await?.1 {
            "was live on it once but has been replaced"
        } else {
            "was never live on it"
        };
        return Err(Error::Refused(format!(
            "release {wanted} is not {from}'s live release ({was}); {from} serves {}\n  → promote what {from} serves now (`driftless promote {from} {to}`), or first roll {from} back to it and verify it",
            live.summary()
        )));
    }
    Ok(live)
}

/// FROM's live release must be verified (when FROM can be: it has a `url`).
async fn gate(fe: &EnvCtx<'_>, live: &Release) -> Result<Option<Refusal>, Error> {
    let verification = fe.ledger.verification(&live.id).await?;
    Ok(crate::plan::guards::unverified(
        &fe.cfg.name,
        fe.cfg.url.is_some(),
        live,
        verification.as_ref(),
    ))
}

/// `status` with no environment: every environment in promotion order, its live
/// release, whether that was verified, how many releases it is behind the one it is
/// promoted from, and whose credentials it uses.
pub(super) async fn pipeline(ctx: &Ctx) -> Result<(), Error> {
    let envs = &ctx.config.envs;
    // Promotion order: each environment after the one it is promoted from.
    let mut order: Vec<&str> = Vec::new();
    while order.len() < envs.len() {
        let before = order.len();
        for (name, cfg) in envs {
            let ready = cfg
                .promote_from
                .as_deref()
                .is_none_or(|f| order.contains(&f));
            if !order.contains(&name.as_str()) && ready {
                order.push(name);
            }
        }
        if order.len() == before {
            break; // a cycle; config validation names it
        }
    }
    // Each environment is opened once, also where it is the source of the next.
    let mut opened = std::collections::HashMap::new();
    for name in &order {
        opened.insert(*name, ctx.env_unchecked(name).await);
    }
    let out = &ctx.out;
    let mut rows = Vec::new();
    for name in order {
        let mut line = out.paint(name, Style::Strong);
        let from = envs[name].promote_from.as_deref();
        if let Some(f) = from {
            line.push_str(&format!(" ← {f}"));
        }
        out.say(line);
        let source = from.and_then(|f| opened[f].as_ref().ok());
        let row = match &opened[name] {
            Ok(ec) => pipeline_row(ec, source).await,
            Err(e) => Err(Error::Other(e.to_string())),
        };
        match row {
            Ok((row, lines)) => {
                for (label, text) in lines {
                    out.say(format!("  {label:<9} {text}"));
                }
                rows.push(row);
            }
            Err(e) => {
                out.say(format!(
                    "  {}",
                    out.paint(&format!("error: {e}"), Style::Bad)
                ));
                rows.push(serde_json::json!({ "env": name, "error": e.to_string() }));
            }
        }
    }
    out.document_with(|| serde_json::json!({ "pipeline": rows }));
    Ok(())
}

/// One environment of the pipeline view: its data, and the lines a person reads.
async fn pipeline_row(
    ec: &EnvCtx<'_>,
    source: Option<&EnvCtx<'_>>,
) -> Result<(serde_json::Value, Vec<(&'static str, String)>), Error> {
    let (cfg, name) = (ec.cfg, &ec.cfg.name);
    let (_, live) = ec.ledger.live().await?;
    let mut lines = vec![(
        "live",
        live.as_ref().map_or_else(
            || "(none)".to_owned(),
            |l| format!("{} ({})", l.summary(), l.kind),
        ),
    )];
    let verification = match &live {
        Some(l) => ec.ledger.verification(&l.id).await?,
        None => None,
    };
    let verified = verification.as_ref().is_some_and(|v| v.failed.is_empty());
    lines.push((
        "verified",
        match &verification {
            Some(v) if verified => format!("passed at {} by {}", short_time(v.at), v.by),
            Some(v) => format!(
                "FAILED ({} check(s)) at {}: driftless verify {name}",
                v.failed.len(),
                short_time(v.at)
            ),
            None if cfg.url.is_none() => "no (no `url` to verify)".to_owned(),
            None => format!("no: driftless verify {name}"),
        },
    ));
    let mut behind = None;
    if let Some(from) = &cfg.promote_from {
        let fe = source.ok_or_else(|| Error::Other(format!("{from} could not be opened")))?;
        let to_live = live.as_ref().map(|l| &l.kind);
        let n = crate::plan::facts::promotion_batch(&fe.ledger, &ec.ledger, to_live, from)
            .await?
            .len();
        behind = Some(n);
        lines.push((
            "behind",
            match n {
                0 => format!("0: serves what {from} serves"),
                n => format!("{n} release(s) behind {from}: driftless promote {from} {name}"),
            },
        ));
    }
    let (identity, identity_line) = crate::aws::sts::describe(cfg).await;
    lines.push(("identity", identity_line));
    let row = serde_json::json!({
        "env": name,
        "promote_from": cfg.promote_from,
        "live": live.as_ref().map(Release::summary),
        "verified": verified,
        "behind": behind,
        "identity": identity,
        "declared_account": cfg.account,
    });
    Ok((row, lines))
}
