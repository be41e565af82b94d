//! `driftless migrate ENV --layout atomic`: move an environment from in place to the
//! atomic layout (the copying is `apply::migrate`'s).

use super::context::Ctx;
use crate::Error;
use crate::config::Layout;
use crate::text::bytes;
use crate::ui::Style;

pub(super) async fn migrate(ctx: &Ctx, env: &str, finish: bool, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    if ec.cfg.layout == Some(Layout::InPlace) {
        return Err(Error::Refused(format!(
            "env.{env} says layout = \"in-place\" in driftless.toml: nothing was changed\n  → set layout = \"atomic\" for env.{env} (or remove the line), then run this again"
        )));
    }
    let out = &ctx.out;
    if finish {
        return finish_move(&ec, yes).await;
    }
    let (_, live) = ec.ledger.live().await?;
    let Some(live) = live else {
        return Err(Error::Refused(format!(
            "{env} has no live release: its first deploy writes the atomic layout by itself (nothing to move)"
        )));
    };
    if let Some((p, _)) = ec.ledger.pending().await? {
        return Err(Error::Refused(format!(
            "an apply of release {} by {} is unfinished on {env}: nothing was changed\n  → finish it first: driftless deploy {env}",
            p.release.id, p.release.actor.author
        )));
    }
    let (files, size) = live
        .served()
        .fold((0, 0u64), |(n, b), (_, e)| (n + 1, b + e.size));
    out.say(format!(
        "{} migrate {env}: in place → atomic",
        out.paint("Plan", Style::Strong)
    ));
    out.say(format!(
        "  copy      release {} ({files} file(s), {}) into slots/a/, server-side",
        live.id,
        bytes(size)
    ));
    let behind_cloudfront = ec.cfg.edge_reads_pointer();
    if behind_cloudfront {
        out.say(format!(
            "  point     {} → slots/a (one write, once every file is there; the store is created if missing)",
            ec.ledger.pointer_location()
        ));
        out.say("  keep      the published function: it serves the in-place copies until `driftless edge ENV --apply` publishes one that reads the pointer");
    } else {
        out.say("  point     current → slots/a (one write, once every file is there)");
    }
    out.say("  keep      the in-place copies: visitors of a server rooted at the store keep getting the same bytes");
    if !out.confirm(&format!("Move {env} to the atomic layout?"), yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    if behind_cloudfront {
        super::edge_apply::ensure_key_value_store(&ec).await?;
    }
    let lease = ec.lock("migrate").await?;
    let result = crate::apply::migrate::to_atomic(&ec.ledger, &live, out).await;
    lease.release(&ec.ledger).await?;
    let copied = result?;
    ec.journal(
        "migrated",
        Some(&live.id),
        serde_json::json!({ "layout": "atomic", "copied": copied }),
    )
    .await;
    let root = ec.ledger.store().location();
    out.say(format!(
        "✓ {env} has the atomic layout: release {} is in slot a and the live pointer ({}) names it ({copied} object(s) copied).",
        live.id,
        ec.ledger.pointer_location()
    ));
    if behind_cloudfront {
        out.say(format!(
            "  Next: publish the function that reads the pointer, then remove the in-place copies:\n    driftless edge {env} --apply\n    driftless migrate {env} --layout atomic --finish"
        ));
    } else {
        out.say(format!(
            "  Next: root your web server at {root}/current (nginx: `root …/current;`, Caddy: `root * …/current`), then remove the in-place copies:\n    driftless migrate {env} --layout atomic --finish"
        ));
    }
    out.document_with(|| {
        serde_json::json!({ "env": env, "layout": "atomic", "release": live.id, "copied": copied })
    });
    Ok(())
}

/// `--finish`: remove the in-place copies the move left.
async fn finish_move(ec: &super::context::EnvCtx<'_>, yes: bool) -> Result<(), Error> {
    let (env, out) = (&ec.cfg.name, &ec.ctx.out);
    let (slots, _) = ec.ledger.slots().await?;
    let Some(id) = slots.in_place else {
        out.say(format!(
            "Nothing to finish on {env}: no in-place copies are left."
        ));
        return Ok(());
    };
    if ec.cfg.edge_reads_pointer() {
        // CloudFront serves the in-place copies until its function reads the pointer.
        let c = ec.compile_edge().await?;
        match super::edge_apply::drift(ec, &c).await? {
            Some((false, _)) => {}
            Some((true, why)) => {
                return Err(Error::Refused(format!(
                    "CloudFront may still serve {env} from the in-place copies (its function is not the one that reads the live pointer: {why}); nothing was removed\n  → driftless edge {env} --apply, then run this again"
                )));
            }
            None => {
                return Err(Error::Refused(format!(
                    "no driftless function is published on {env}'s distribution, so CloudFront serves the in-place copies; nothing was removed\n  → driftless edge {env} --apply, then run this again"
                )));
            }
        }
    }
    if !out.confirm(
        &format!("Remove the in-place copies of release {id} from {env} (a web server rooted at the store, not at `current`, stops serving them)?"),
        yes,
    )? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    let lease = ec.lock("migrate").await?;
    let result = crate::apply::migrate::finish(&ec.ledger).await;
    lease.release(&ec.ledger).await?;
    let (removed, left) = result?;
    ec.journal(
        "migrated",
        Some(&id),
        serde_json::json!({ "finished": true, "removed": removed, "left": left }),
    )
    .await;
    out.say(format!(
        "✓ removed {removed} in-place cop(ies) of release {id} from {env}."
    ));
    if !left.is_empty() {
        out.say(format!(
            "  left {} object(s) that were not release {id}'s as it wrote them (changed or added by hand): {}",
            left.len(),
            left.join(", ")
        ));
    }
    Ok(())
}
