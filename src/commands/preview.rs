//! Previews: `deploy ENV --preview NAME` (a release at its own URL, live untouched),
//! `previews ENV` (list, `--delete NAME`).

use jiff::{SignedDuration, Timestamp};

use super::deploy::{What, check_edge_files};
use super::execute::{confirm_and_execute, confirmed, execute_and_report};
use super::planning::{
    parse_forces, plan_from, plan_of, read_remote, refuse_early, scan_site_concurrently,
};
use super::{Ctx, EnvCtx};
use crate::Error;
use crate::config::Layout;
use crate::git::Repo;
use crate::ledger::{Preview, slug};
use crate::plan::build::Request;
use crate::plan::facts::State;
use crate::plan::{Guard, PlanKind};
use crate::ui::Style;

/// How long a preview lives unless `--expires` says otherwise (as Firebase's channels).
pub(super) const DEFAULT_EXPIRY: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The longest `--expires`.
pub(super) const MAX_EXPIRY: SignedDuration = SignedDuration::from_hours(30 * 24);

/// The preview name from what was typed, said aloud when it had to change.
fn name_of(ctx: &Ctx, raw: &str) -> Result<String, Error> {
    let name = slug(raw).ok_or_else(|| {
        Error::Usage(format!(
            "--preview {raw:?}: a preview name needs letters or digits (it becomes the first label of the preview's host), e.g. --preview pr-123"
        ))
    })?;
    if name != raw {
        ctx.out.say(format!("Preview name: {name} (from {raw:?})"));
    }
    Ok(name)
}

fn expiry(text: Option<&str>) -> Result<SignedDuration, Error> {
    let Some(text) = text else {
        return Ok(DEFAULT_EXPIRY);
    };
    let d = crate::text::parse_duration(text).ok_or_else(|| {
        Error::Usage(format!(
            "--expires {text:?} is not a duration (e.g. \"7d\", \"48h\")"
        ))
    })?;
    if d.is_zero() {
        return Err(Error::Usage(format!(
            "--expires {text}: a preview must live for a while: give a positive duration (e.g. \"1h\", \"7d\")"
        )));
    }
    if d > MAX_EXPIRY {
        return Err(Error::Usage(format!(
            "--expires {text}: a preview lives at most 30d (deploy it again to extend it)"
        )));
    }
    Ok(d)
}

/// Previews need the atomic layout: the site's keys are under `slots/`, so `previews/`
/// belongs to driftless alone.
async fn need_atomic(ec: &EnvCtx<'_>) -> Result<(), Error> {
    if ec.ledger.layout().await? == Layout::Atomic {
        return Ok(());
    }
    let env = &ec.cfg.name;
    Err(Error::Refused(format!(
        "previews need the atomic layout, and env.{env} is in place (its site's keys could collide with previews/) — nothing was changed\n  → set layout = \"atomic\" for env.{env} in driftless.toml, then: driftless migrate {env} --layout atomic"
    )))
}

/// `driftless deploy ENV --preview NAME`.
pub(super) async fn deploy(
    ctx: &Ctx,
    env: &str,
    (raw_name, replace): (&str, bool),
    expires: Option<&str>,
    what: What,
    yes: bool,
    force: &[String],
) -> Result<(), Error> {
    let name = name_of(ctx, raw_name)?;
    let lives = expiry(expires)?;
    let forced = parse_forces(force)?;
    let ec = ctx.env(env).await?;
    need_atomic(&ec).await?;
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    let git = Repo::discover(&ctx.config.dir).and_then(|r| r.head_for(&ctx.config.dir));
    let (previews, _) = ec.ledger.previews().await?;
    if let Some(held) = previews.0.get(&name)
        && !replace
    {
        refuse_replacing(env, &name, raw_name, held, git.as_ref())?;
    }
    let kind = PlanKind::Preview {
        given: (name != raw_name).then(|| raw_name.to_owned()),
        name,
        expires_at: Timestamp::now()
            .checked_add(lives)
            .map_err(|e| Error::Usage(format!("--expires: {e}")))?,
    };
    let state = State::read(&ec.ledger).await?;
    refuse_early(&ec, &kind, &state).await?;
    let (site, remote) = tokio::try_join!(
        scan_site_concurrently(ctx),
        read_remote(&ec, state.live.as_deref())
    )?;
    check_edge_files(ctx, &site.desired)?;
    let plan = plan_from(
        &ec,
        Request {
            kind,
            desired: site.desired,
            scan: Some(site.stats),
            refusals: site.refusals,
            forced: forced.clone(),
            message: what.message,
            git,
            tag: None,
            preview: None,
            edge: Some(crate::config::EdgeRules::of(&ctx.config.edge)),
        },
        state,
        remote,
    )
    .await?;
    ctx.show_plan(&plan);
    confirm_and_execute(&ec, plan, yes, forced.contains(&Guard::UnsafeStore)).await
}

/// A preview of that name made from another branch (or, where git cannot say, given as
/// another name that became the same DNS label) is not replaced unless asked.
fn refuse_replacing(
    env: &str,
    name: &str,
    raw: &str,
    held: &Preview,
    git: Option<&crate::git::GitInfo>,
) -> Result<(), Error> {
    let branch = git.and_then(|g| g.branch.as_deref());
    let held_given = held.given.as_deref().unwrap_or(name);
    // The name itself (already a DNS label) means that preview, whoever made it.
    let other = match (held.branch.as_deref(), branch) {
        (Some(theirs), Some(ours)) => theirs != ours,
        _ => held_given != raw && raw != name,
    };
    if !other {
        return Ok(());
    }
    let from = match &held.branch {
        Some(b) => format!("branch {}", crate::text::esc(b)),
        None => format!("{held_given:?}"),
    };
    Err(Error::Refused(format!(
        "preview {name} is already {from}'s (release {}, by {}, {}); --preview {raw:?} would replace it: nothing was changed\n  → pick another name (--preview {name}-2; `driftless previews {env}` lists them), or replace it: --replace",
        held.release,
        crate::text::esc(&held.author),
        crate::text::short_time(held.updated_at)
    )))
}

/// One preview as `previews` shows it.
#[derive(serde::Serialize)]
struct Listed<'a> {
    name: &'a str,
    #[serde(flatten)]
    preview: &'a Preview,
    expired: bool,
    url: Option<String>,
}

/// `driftless previews ENV`: every preview, newest first.
pub(super) async fn list(ctx: &Ctx, env: &str) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let (previews, _) = ec.ledger.previews().await?;
    let now = Timestamp::now();
    let mut all: Vec<Listed<'_>> = previews
        .0
        .iter()
        .map(|(name, p)| Listed {
            name,
            preview: p,
            expired: p.expired(now),
            url: ec.cfg.preview_url(name),
        })
        .collect();
    all.sort_by_key(|l| std::cmp::Reverse(l.preview.updated_at));
    let out = &ctx.out;
    if all.is_empty() {
        out.say(format!(
            "No preview on {env}. Make one: driftless deploy {env} --preview pr-123"
        ));
    }
    for l in &all {
        let p = l.preview;
        let state = if l.expired {
            out.paint("expired", Style::Bad)
        } else if !p.complete {
            out.paint("incomplete", Style::Warn)
        } else {
            format!("expires {}", crate::text::short_time(p.expires_at))
        };
        out.say(format!(
            "{}  release {}  {}{}  by {}  created {}  {state}\n    {}",
            out.paint(l.name, Style::Strong),
            p.release,
            p.commit
                .as_deref()
                .map(|c| format!("commit {}", &c[..c.len().min(12)]))
                .unwrap_or_else(|| "no commit".into()),
            if p.updated_at == p.created_at {
                String::new()
            } else {
                format!("  updated {}", crate::text::short_time(p.updated_at))
            },
            crate::text::esc(&p.author),
            crate::text::short_time(p.created_at),
            l.url.as_deref().unwrap_or("(no preview_url configured)")
        ));
    }
    if all.iter().any(|l| l.expired) {
        out.say(format!(
            "Expired previews answer 410 Gone; `driftless gc {env}` removes them and the bytes only they hold."
        ));
    }
    out.document(&serde_json::json!({ "env": env, "previews": all }));
    Ok(())
}

/// `driftless previews ENV --delete NAME`: its files and its entry; its bytes in the
/// snapshots go with the next `gc`.
pub(super) async fn delete(ctx: &Ctx, env: &str, raw_name: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let name = slug(raw_name).unwrap_or_default();
    let (previews, _) = ec.ledger.previews().await?;
    let Some(p) = previews.0.get(&name) else {
        let known: Vec<&str> = previews.0.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "{env} has no preview {raw_name:?} (previews: {})\n  → driftless previews {env}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    if !ctx.out.confirm(
        &format!(
            "Delete preview {name} of {env} (release {}, by {})?",
            p.release, p.author
        ),
        yes,
    )? {
        return Err(Error::Other("not confirmed; nothing was deleted".into()));
    }
    let release = p.release.clone();
    let lease = ec.lock("preview-delete").await?;
    let result = crate::apply::preview::delete(&ec.ledger, &name).await;
    lease.release(&ec.ledger).await?;
    let files = result?;
    ec.journal(
        "preview-delete",
        Some(&release),
        serde_json::json!({ "preview": name, "files": files }),
    )
    .await;
    ctx.out.say(format!(
        "Deleted preview {name} of {env}: {files} file(s) removed; `driftless gc {env}` frees the bytes only it held."
    ));
    ctx.out.document(&serde_json::json!({
        "result": "deleted", "preview": name, "release": release, "files": files
    }));
    Ok(())
}

/// A preview about to go live: its release, and the refusal its verification gave.
pub(super) struct Reviewed {
    pub(super) name: String,
    pub(super) release: crate::ledger::Release,
    pub(super) unverified: Option<crate::plan::Refusal>,
}

/// Preview `raw_name` of `ec`'s environment, to make live (here, or by promotion): only a
/// whole one that has not expired, verified at its URL now (the gate: what reviewers saw
/// is its release).
pub(super) async fn reviewed(
    ec: &EnvCtx<'_>,
    raw_name: &str,
    timeout: u64,
) -> Result<Reviewed, Error> {
    let env = &ec.cfg.name;
    let name = slug(raw_name).unwrap_or_default();
    let (previews, _) = ec.ledger.previews().await?;
    let Some(p) = previews.0.get(&name).cloned() else {
        return Err(Error::Usage(format!(
            "{env} has no preview {raw_name:?}\n  → driftless previews {env}"
        )));
    };
    if p.expired(Timestamp::now()) {
        return Err(Error::Refused(format!(
            "preview {name} expired at {} (release {}, by {}): nothing was changed\n  → deploy it again (`driftless deploy {env} --preview {name}`), review it, then make it live",
            crate::text::short_time(p.expires_at),
            p.release,
            crate::text::esc(&p.author)
        )));
    }
    if !p.complete {
        return Err(Error::Refused(format!(
            "preview {name} is incomplete (its deploy was interrupted, or is running): nothing was changed\n  → driftless deploy {env} --preview {name}"
        )));
    }
    ec.ctx.out.say(format!(
        "Verifying preview {name} at {} …",
        ec.cfg
            .preview_url(&name)
            .as_deref()
            .unwrap_or("(no preview_url)")
    ));
    let unverified = match super::verify::verify_preview(ec, &name, timeout, false).await {
        Ok(()) => None,
        Err(e) => Some(crate::plan::Refusal {
            guard: Guard::Unverified,
            message: format!("preview {name} did not pass verify: {e}"),
            key: None,
            release: None,
            resolve: format!(
                "fix what verify names (`driftless verify {env} --preview {name}`), or override: --force unverified"
            ),
        }),
    };
    Ok(Reviewed {
        release: ec.ledger.release(&p.release).await?,
        name,
        unverified,
    })
}

/// `driftless deploy ENV --from-preview NAME`: exactly the reviewed release goes live —
/// verified at the preview's URL first, its files copied server-side from the preview
/// into the idle slot, then one pointer write. Nothing is rebuilt or uploaded.
pub(super) async fn make_live(
    ctx: &Ctx,
    env: &str,
    raw_name: &str,
    what: What,
    yes: bool,
    force: &[String],
    timeout: u64,
) -> Result<(), Error> {
    let forced = parse_forces(force)?;
    let ec = ctx.env(env).await?;
    need_atomic(&ec).await?;
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    if let Some(tag) = &what.tag {
        ec.check_new_tag(tag).await?;
    }
    let Reviewed {
        name,
        release: reviewed,
        unverified,
    } = reviewed(&ec, raw_name, timeout).await?;
    let plan = plan_of(
        &ec,
        Request {
            kind: PlanKind::FromPreview {
                name: name.clone(),
                release: reviewed.id.clone(),
            },
            desired: crate::plan::desired_from_objects(&reviewed.manifest),
            scan: None,
            refusals: unverified.into_iter().collect(),
            forced: forced.clone(),
            message: Some(
                what.message
                    .unwrap_or_else(|| format!("preview {name} ({}) made live", reviewed.id)),
            ),
            git: reviewed.git.clone(),
            tag: what.tag,
            preview: Some(std::sync::Arc::new(reviewed.clone())),
            edge: reviewed
                .edge
                .clone()
                .or_else(|| Some(crate::config::EdgeRules::of(&ctx.config.edge))),
        },
    )
    .await?;
    ctx.show_plan(&plan);
    if !confirmed(&ec, &plan, yes).await? {
        return Ok(());
    }
    ec.ensure_store_trusted(forced.contains(&Guard::UnsafeStore))
        .await?;
    let release = plan.new_release.clone();
    execute_and_report(&ec, plan, crate::ledger::Staged::default()).await?;
    ec.journal(
        "from-preview",
        Some(&release),
        serde_json::json!({ "preview": name, "release": reviewed.id, "by": ctx.actor.author }),
    )
    .await;
    Ok(())
}
