//! Commands about an environment's state: `status`, `log`, `hold`, `unhold`, `unlock`.

use jiff::Timestamp;

use super::Ctx;
use crate::Error;
use crate::ledger::{Hold, Release, short_time};
use crate::output::Style;
use crate::plan::drift;
use crate::remote::read_site;

pub(super) async fn status(ctx: &Ctx, env: &str) -> Result<(), Error> {
    // Read-only, and it reports the identity (flagging a mismatch) itself: one STS call.
    let ec = ctx.env_unchecked(env).await?;
    let (_, live) = ec.ledger.live().await?;
    let remote = read_site(&ec.ledger, live.as_ref()).await?;
    let drift = drift(live.as_ref().map(|l| &l.manifest), &remote);
    let holds: Vec<Hold> = ec
        .ledger
        .holds()
        .await?
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    let lock = ec.ledger.read_lock().await?.map(|(l, _)| l);
    let pending = ec.ledger.pending().await?.map(|(p, _)| p.release.summary());
    let base = ec.working_base();

    let out = &ctx.out;
    out.say(format!(
        "{} ({})",
        out.paint(env, Style::Strong),
        ec.ledger.store().location()
    ));
    match &live {
        Some(l) => {
            let s = l.summary();
            out.say(format!("  live     {s}"));
            if let Some(m) = &s.message {
                out.say(format!("           \"{m}\""));
            }
            out.say(format!("           {} files, {}", s.files, l.kind));
        }
        None => out.say("  live     (none yet: `driftless deploy` or `driftless adopt` makes the first release)"),
    }
    if drift.is_empty() {
        out.say(format!(
            "  drift    {}",
            out.paint("none: the store matches the live release", Style::Good)
        ));
    } else {
        out.say(format!(
            "  drift    {}",
            out.paint(
                &format!("{} object(s) differ from the live release", drift.len()),
                Style::Warn
            )
        ));
        for d in &drift {
            out.say(format!(
                "           {:<8} {}",
                format!("{:?}", d.kind).to_lowercase(),
                d.key
            ));
        }
    }
    if holds.is_empty() {
        out.say("  holds    none");
    }
    for h in &holds {
        out.say(format!(
            "  hold     {} since {} by {}: {}",
            out.paint("ON HOLD", Style::Bad),
            short_time(h.at),
            h.by.author,
            h.reason
        ));
    }
    match &lock {
        None => out.say("  lock     free"),
        Some(l) => out.say(format!(
            "  lock     held by {} on {} (`{}`) since {}, lease until {}{}",
            l.holder.author,
            l.holder.host,
            l.operation,
            short_time(l.started_at),
            short_time(l.expires_at),
            if l.expired(Timestamp::now()) {
                " — expired"
            } else {
                ""
            }
        )),
    }
    if let Some(p) = &pending {
        out.say(format!(
            "  pending  {} apply of release {} by {} was interrupted; the next deploy finishes it",
            out.paint("!", Style::Bad),
            p.id,
            p.author
        ));
    }
    let base_line = match (&base, &live) {
        (Some(b), Some(l)) if b == &l.id => "live (up to date)".to_owned(),
        (Some(b), _) => format!("{b} (not live)"),
        (None, _) => "unknown (never deployed or pulled from this working copy)".to_owned(),
    };
    out.say(format!("  base     this working copy: {base_line}"));
    let (identity, identity_line) = crate::identity::describe(ec.cfg).await;
    out.say(format!("  identity {identity_line}"));
    out.document(&serde_json::json!({
        "env": env,
        "store": ec.ledger.store().location(),
        "live": live.as_ref().map(Release::summary),
        "drift": drift,
        "holds": holds,
        "lock": lock,
        "pending": pending,
        "working_copy_base": base,
        "identity": identity,
    }));
    Ok(())
}

pub(super) async fn log(ctx: &Ctx, env: &str, limit: usize) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let history = ec.ledger.history(limit).await?;
    let out = &ctx.out;
    if history.is_empty() {
        out.say(format!("{env} has no releases yet."));
    }
    for (i, r) in history.iter().enumerate() {
        let s = r.summary();
        out.say(format!(
            "{} {}  {}, {} files{}",
            out.paint(&s.id, Style::Strong),
            if i == 0 {
                out.paint("(live)", Style::Good)
            } else {
                String::new()
            },
            r.kind,
            s.files,
            if r.overrides.is_empty() {
                String::new()
            } else {
                format!(", overrides: {}", r.overrides.join(", "))
            }
        ));
        out.say(format!(
            "    by {} on {} at {}{}",
            s.author,
            s.host,
            short_time(s.created_at),
            s.commit
                .as_ref()
                .map(|c| format!(
                    ", commit {}{}",
                    &c[..c.len().min(10)],
                    if s.dirty { " (dirty)" } else { "" }
                ))
                .unwrap_or_default()
        ));
        if let Some(m) = &s.message {
            out.say(format!("    {m}"));
        }
    }
    out.document(&serde_json::json!({
        "env": env,
        "releases": history.iter().map(Release::summary).collect::<Vec<_>>(),
    }));
    Ok(())
}

pub(super) async fn hold(ctx: &Ctx, env: &str, reason: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "--reason must say why (it is shown to whoever is refused)".into(),
        ));
    }
    let question = format!("Put {env} on hold (\"{reason}\"): deploys refused until unhold?");
    if !ctx.out.confirm(&question, yes)? {
        return Err(Error::Other("not confirmed; no hold was set".into()));
    }
    let hold = Hold {
        id: format!(
            "{}-{}",
            Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
            &crate::unique_token()[..6]
        ),
        reason: reason.to_owned(),
        by: ctx.actor.clone(),
        at: Timestamp::now(),
    };
    ec.ledger.set_hold(&hold).await?;
    ec.ledger
        .journal(
            &ctx.actor,
            "hold",
            None,
            serde_json::json!({ "reason": reason, "id": hold.id }),
        )
        .await;
    ctx.out.say(format!(
        "{env} is on hold: deploys are refused until `driftless unhold {env}`."
    ));
    ctx.out.document(&hold);
    Ok(())
}

pub(super) async fn unhold(ctx: &Ctx, env: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let holds = ec.ledger.holds().await?;
    if holds.is_empty() {
        ctx.out.say(format!("{env} has no holds."));
        ctx.out.document(&serde_json::json!({ "lifted": [] }));
        return Ok(());
    }
    for (h, _) in &holds {
        ctx.out.say(format!(
            "hold by {} since {}: {}",
            h.by.author,
            short_time(h.at),
            h.reason
        ));
    }
    if !ctx
        .out
        .confirm(&format!("Lift {} hold(s) on {env}?", holds.len()), yes)?
    {
        return Err(Error::Other("not confirmed; the holds stay".into()));
    }
    for (h, etag) in &holds {
        ec.ledger.lift_hold(h, etag).await?;
        ec.ledger
            .journal(
                &ctx.actor,
                "unhold",
                None,
                serde_json::json!({ "lifted": h }),
            )
            .await;
    }
    ctx.out
        .say(format!("Lifted {} hold(s) on {env}.", holds.len()));
    ctx.out.document(
        &serde_json::json!({ "lifted": holds.iter().map(|(h, _)| h).collect::<Vec<_>>() }),
    );
    Ok(())
}

pub(super) async fn unlock(ctx: &Ctx, env: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let Some((lock, etag)) = ec.ledger.read_lock().await? else {
        ctx.out.say(format!("{env} is not locked."));
        ctx.out.document(&serde_json::json!({ "broken": null }));
        return Ok(());
    };
    ctx.out.say(format!(
        "{env} is locked by {} on {} (pid {}), running `{}` since {}, lease until {}{}.",
        lock.holder.author,
        lock.holder.host,
        lock.holder.pid,
        lock.operation,
        short_time(lock.started_at),
        short_time(lock.expires_at),
        if lock.expired(Timestamp::now()) {
            " (expired)"
        } else {
            ""
        }
    ));
    if !ctx
        .out
        .confirm("Break this lock? Only do so if that run is dead.", yes)?
    {
        return Err(Error::Other("not confirmed; the lock stays".into()));
    }
    ec.ledger.break_lock(&etag).await.map_err(|e| match e {
        crate::ledger::LedgerError::Store(crate::store::StoreError::Precondition { .. }) => {
            Error::Refused(
                "the lock changed while you were looking; run `driftless unlock` again".into(),
            )
        }
        other => other.into(),
    })?;
    ec.ledger
        .journal(
            &ctx.actor,
            "unlock",
            None,
            serde_json::json!({ "broken": lock }),
        )
        .await;
    ctx.out.say(format!("Broke the lock on {env}."));
    ctx.out.document(&serde_json::json!({ "broken": lock }));
    Ok(())
}
