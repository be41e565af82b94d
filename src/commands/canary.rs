//! `driftless canary ENV`: what a running canary serves to whom, and its end —
//! `--finish` (live for everyone), `--abort` (back to live), `--percent N`.

use super::Ctx;
use crate::Error;

/// What to do with the running canary.
pub(super) enum Change {
    Show,
    Finish,
    Abort,
    Percent(u8),
}

pub(super) async fn canary(ctx: &Ctx, env: &str, change: Change, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let out = &ctx.out;
    let Some((running, _)) = ec.ledger.canary().await? else {
        if matches!(change, Change::Show) {
            out.say(format!(
                "No canary is running on {env}. Start one with `driftless deploy {env} --canary 10`."
            ));
            out.document(&serde_json::json!({ "env": env, "canary": null }));
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "no canary is running on {env}\n  → start one with `driftless deploy {env} --canary 10`"
        )));
    };
    let (question, operation) = match change {
        Change::Show => {
            out.say(format!(
                "{env}: {}\n  → driftless canary {env} --finish | --abort | --percent N",
                running.describe()
            ));
            out.document(&serde_json::json!({ "env": env, "canary": running }));
            return Ok(());
        }
        Change::Finish => (
            format!(
                "Make release {} live for every visitor of {env}?",
                running.release
            ),
            "canary-finish",
        ),
        Change::Abort => (
            format!(
                "Take release {} back from {}% of {env}'s visitors (everyone gets {})?",
                running.release, running.percent, running.live
            ),
            "canary-abort",
        ),
        Change::Percent(p) => (
            format!(
                "Serve release {} to {p}% of {env}'s visitors (now {}%)?",
                running.release, running.percent
            ),
            "canary-percent",
        ),
    };
    if !out.confirm(&question, yes)? {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    let lease = ec.lock_for(operation, Some(&running.release)).await?;
    let result = match change {
        Change::Finish => crate::apply::canary::finish(&ec.ledger, env)
            .await
            .map(|(c, _)| {
                (
                    c.clone(),
                    format!(
                        "release {} is live for every visitor of {env} (was on {}%; {} is one rollback away)",
                        c.release, c.percent, c.live
                    ),
                )
            }),
        Change::Abort => crate::apply::canary::abort(&ec.ledger, env)
            .await
            .map(|c| {
                (
                    c.clone(),
                    format!(
                        "canary of release {} aborted: every visitor of {env} gets {} again",
                        c.release, c.live
                    ),
                )
            }),
        Change::Percent(p) => crate::apply::canary::share(&ec.ledger, env, p)
            .await
            .map(|c| {
                (
                    c.clone(),
                    format!(
                        "release {} is on {p}% of {env}'s visitors (was {}%)",
                        c.release, c.percent
                    ),
                )
            }),
        Change::Show => unreachable!("answered above"),
    };
    lease.release(&ec.ledger).await?;
    let (c, summary) = result?;
    let (step, percent) = match change {
        Change::Finish => ("finish", c.percent),
        Change::Abort => ("abort", c.percent),
        Change::Percent(p) => ("share", p),
        Change::Show => unreachable!("answered above"),
    };
    ec.canary_step(&c.release, step, percent, None).await;
    ec.journal(
        operation,
        Some(&c.release),
        serde_json::json!({ "percent": c.percent, "live": c.live }),
    )
    .await;
    out.say(format!(
        "{} {summary}.",
        out.paint("✓", crate::ui::Style::Good)
    ));
    let release = ec.ledger.release(&c.release).await.ok();
    ec.notify(
        operation,
        release
            .as_ref()
            .map(crate::ledger::Release::summary)
            .as_ref(),
        summary.clone(),
    )
    .await;
    out.document(&serde_json::json!({
        "env": env, "result": operation.trim_start_matches("canary-"), "canary": c, "summary": summary
    }));
    Ok(())
}
