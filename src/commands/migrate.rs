//! `driftless migrate ENV --layout atomic`: move an environment from in place to the
//! atomic layout (the copying is `apply::migrate`'s).

use super::context::Ctx;
use crate::Error;
use crate::config::Layout;
use crate::text::bytes;
use crate::ui::Style;

pub(super) async fn migrate(
    ctx: &Ctx,
    env: &str,
    layout: &str,
    finish: bool,
    yes: bool,
) -> Result<(), Error> {
    if layout == "in-place" {
        return back_in_place(ctx, env, finish, yes).await;
    }
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
    let (live, files, size) = live_to_move(
        &ec,
        "its first deploy writes the atomic layout by itself (nothing to move)",
        "",
    )
    .await?;
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
        crate::apply::edge::environment::ensure_key_value_store(&ec.edge(), out).await?;
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

/// The live release a move copies, with its file count and bytes: refused when there is
/// none (`none`: why that is fine) or an apply is unfinished (`deploy_as`: how the deploy
/// that finishes it must run).
async fn live_to_move(
    ec: &super::context::EnvCtx<'_>,
    none: &str,
    deploy_as: &str,
) -> Result<(crate::ledger::Release, usize, u64), Error> {
    let env = &ec.cfg.name;
    let Some(live) = ec.ledger.live().await?.1 else {
        return Err(Error::Refused(format!("{env} has no live release: {none}")));
    };
    if let Some((p, _)) = ec.ledger.pending().await? {
        return Err(Error::Refused(format!(
            "an apply of release {} by {} is unfinished on {env}: nothing was changed\n  → finish it first: driftless deploy {env}{deploy_as}",
            p.release.id, p.release.actor.author
        )));
    }
    if let Some((c, _)) = ec.ledger.canary().await? {
        return Err(Error::Refused(format!(
            "a canary is running on {env}: {}: nothing was changed\n  → {}",
            c.describe(),
            crate::plan::guards::canary_resolve(env)
        )));
    }
    let (files, size) = live
        .served()
        .fold((0, 0u64), |(n, b), (_, e)| (n + 1, b + e.size));
    Ok((live, files, size))
}

/// Refuse unless the function published on the environment's distribution is the one
/// the config compiles to (`serving`: what CloudFront may still be serving, and why).
async fn published_function_is_current(
    ec: &super::context::EnvCtx<'_>,
    serving: &str,
) -> Result<(), Error> {
    let env = &ec.cfg.name;
    let c = ec.compile_edge().await?;
    match crate::apply::edge::environment::drift(&ec.edge(), &c).await? {
        Some((false, _)) => Ok(()),
        Some((true, why)) => Err(Error::Refused(format!(
            "CloudFront may still serve {env} {serving}: {why}); nothing was removed\n  → driftless edge {env} --apply, then run this again"
        ))),
        None => Err(Error::Refused(format!(
            "no driftless function is published on {env}'s distribution, so CloudFront may still serve {env} {serving}); nothing was removed\n  → driftless edge {env} --apply, then run this again"
        ))),
    }
}

/// `driftless migrate ENV --layout in-place [--finish]`: the way back. The config says
/// in place already (so `edge --apply` publishes the function that reads the keys in
/// place); the pointer is wherever the atomic layout kept it.
async fn back_in_place(ctx: &Ctx, env: &str, finish: bool, yes: bool) -> Result<(), Error> {
    let mut ec = ctx.env(env).await?;
    if ec.cfg.layout != Some(Layout::InPlace) {
        return Err(Error::Refused(format!(
            "env.{env} does not say layout = \"in-place\" in driftless.toml: nothing was changed\n  → set layout = \"in-place\" for env.{env} (what it is moving to), then run this again"
        )));
    }
    let behind_cloudfront = ec.cfg.behind_cloudfront();
    if behind_cloudfront {
        // The config no longer says atomic, but the pointer is still in the KeyValueStore.
        ec.ledger = super::context::with_kvs_pointer(ec.ledger.clone(), ec.cfg);
    }
    let out = &ctx.out;
    let (slots, _) = ec.ledger.slots().await?;
    if finish {
        let Some(id) = slots.leaving else {
            out.say(format!(
                "Nothing to finish on {env}: no move back to the in-place layout was started (`driftless migrate {env} --layout in-place` starts it)."
            ));
            return Ok(());
        };
        if behind_cloudfront {
            published_function_is_current(
                &ec,
                "from the slots (its function still reads the live pointer",
            )
            .await?;
        }
        if !out.confirm(
            &format!("Remove the slots and the live pointer of {env} (release {id} is served from the keys in place; a web server rooted at `current` stops serving)?"),
            yes,
        )? {
            return Err(Error::Other("not confirmed; nothing was changed".into()));
        }
        let lease = ec.lock("migrate").await?;
        let result = crate::apply::migrate::finish_in_place(&ec.ledger).await;
        lease.release(&ec.ledger).await?;
        let removed = result?;
        ec.journal(
            "migrated",
            Some(&id),
            serde_json::json!({ "layout": "in-place", "finished": true, "removed": removed }),
        )
        .await;
        out.say(format!(
            "✓ {env} has the in-place layout: the live pointer and {removed} slot file(s) are removed."
        ));
        out.document_with(|| serde_json::json!({ "env": env, "layout": "in-place", "finished": true, "removed": removed }));
        return Ok(());
    }
    let (live, files, size) = live_to_move(
        &ec,
        "nothing to move",
        " (with layout = \"atomic\" set again)",
    )
    .await?;
    out.say(format!(
        "{} migrate {env}: atomic → in place",
        out.paint("Plan", Style::Strong)
    ));
    out.say(format!(
        "  copy      release {} ({files} file(s), {}) from its slot to the keys visitors read in place, server-side",
        live.id,
        bytes(size)
    ));
    out.say(format!(
        "  keep      the slots and the live pointer ({}): what serves them keeps serving the same bytes",
        ec.ledger.pointer_location()
    ));
    if !out.confirm(&format!("Move {env} back to the in-place layout?"), yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    let lease = ec.lock("migrate").await?;
    let result = crate::apply::migrate::to_in_place(&ec.ledger, &live, out).await;
    lease.release(&ec.ledger).await?;
    let copied = result?;
    ec.journal(
        "migrated",
        Some(&live.id),
        serde_json::json!({ "layout": "in-place", "copied": copied }),
    )
    .await;
    out.say(format!(
        "✓ release {} of {env} is in place too ({copied} object(s) copied); the slots still serve it.",
        live.id
    ));
    let next = if behind_cloudfront {
        format!("publish the function that reads the keys in place: driftless edge {env} --apply")
    } else {
        format!(
            "root your web server at {} (not at `current`)",
            ec.ledger.store().location()
        )
    };
    out.say(format!(
        "  Next: {next}, then remove the slots and the pointer:\n    driftless migrate {env} --layout in-place --finish"
    ));
    out.document_with(|| {
        serde_json::json!({ "env": env, "layout": "in-place", "release": live.id, "copied": copied })
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
        published_function_is_current(
            ec,
            "from the in-place copies (its function is not the one that reads the live pointer",
        )
        .await?;
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
            "  left {} object(s) that do not hold release {id}'s bytes (changed or added by hand): {}",
            left.len(),
            left.iter().map(|k| crate::text::esc(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    out.document_with(|| {
        serde_json::json!({ "env": env, "layout": "atomic", "finished": true, "release": id, "removed": removed, "left": left })
    });
    Ok(())
}
