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
    out.say("  point     current → slots/a (one write, once every file is there)");
    out.say("  keep      the in-place copies: visitors of a server rooted at the store keep getting the same bytes");
    if !out.confirm(&format!("Move {env} to the atomic layout?"), yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
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
        "✓ {env} has the atomic layout: release {} is in slot a and `current` points at it ({copied} object(s) copied).",
        live.id
    ));
    out.say(format!(
        "  Next: root your web server at {root}/current (nginx: `root …/current;`, Caddy: `root * …/current`), then remove the in-place copies:\n    driftless migrate {env} --layout atomic --finish"
    ));
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
