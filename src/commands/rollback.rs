//! `driftless rollback ENV [--to RELEASE]`: make an earlier release of live's history
//! live again — a plan like any other (shown, confirmed, applied under the lock), the
//! content taken from the environment's snapshots. Allowed under a hold: it is how an
//! incident is handled.

use super::Ctx;
use super::execute::confirm_and_execute;
use super::planning::rollback_plan;
use crate::Error;
use crate::plan::guards;

pub(super) async fn rollback(
    ctx: &Ctx,
    env: &str,
    to: Option<String>,
    message: Option<String>,
    yes: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    // A hold stops deploys, not the way back; say that it is there.
    for (hold, _) in ec.ledger.holds().await? {
        ctx.out.say(format!(
            "note: {env} is on hold since {} by {}: {} — rolling back is allowed; `driftless unhold {env}` when resolved",
            crate::text::short_time(hold.at),
            crate::text::esc(&hold.by.author),
            crate::text::esc(&hold.reason)
        ));
    }
    let target_id = match &to {
        // Only a release that was live here: walk live's ancestry as far as `id`.
        Some(name) => {
            let id = ec.release_named(name).await?;
            if !ec.ledger.history_refs(Some(&id), 100_000).await?.1 {
                return Err(Error::Usage(format!(
                    "{id} is not a release that was live on {env}; see `driftless log {env}`"
                )));
            }
            id
        }
        // The newest release before live that can still be restored; the yanked or
        // collected ones in between are skipped, and said.
        None => {
            let history = ec.ledger.history_refs(None, 100_000).await?.0;
            let Some((live, before)) = history.split_first() else {
                return Err(Error::Usage(format!(
                    "{env} has no live release to roll back from"
                )));
            };
            let mut skipped = Vec::new();
            let mut found = None;
            for r in before {
                match ec.ledger.restorable(&r.id).await? {
                    Ok(()) => {
                        found = Some(r.id.clone());
                        break;
                    }
                    Err(gone) => skipped.push((r.id.clone(), gone)),
                }
            }
            for (id, gone) in &skipped {
                ctx.out.say(format!(
                    "note: skipped release {id} ({}): it cannot be rolled back to",
                    gone.describe()
                ));
            }
            match found {
                Some(id) => id,
                None if before.is_empty() => {
                    return Err(Error::Usage(format!(
                        "live release {} on {env} has no previous release",
                        live.id
                    )));
                }
                None => {
                    return Err(Error::Refused(format!(
                        "no release before live release {} on {env} can be restored ({} skipped: yanked or collected); nothing was changed\n  → see `driftless log {env}`",
                        live.id,
                        skipped.len()
                    )));
                }
            }
        }
    };
    if let Err(gone) = ec.ledger.restorable(&target_id).await? {
        return Err(Error::Refused(guards::unrestorable(env, &gone)));
    }
    let plan = rollback_plan(&ec, &target_id, message).await?;
    ctx.show_plan(&plan);
    confirm_and_execute(&ec, plan, yes, false).await
}
