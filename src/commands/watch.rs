//! `driftless watch ENV [--for DURATION]` (and `deploy`/`promote --watch`): after a
//! release goes live, watch it — synthetic requests through the URL (the changed paths
//! and a sample of the site), CloudFront's error-rate metrics and named CloudWatch
//! alarms. On a trigger: roll back to the release that was live before (only if the
//! watched one is still live: the rollback is a compare-and-swap like every apply),
//! invalidate, verify, put a hold naming the trigger, journal, exit 3. A window that
//! passes is recorded with the release (`log`, `status`).

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::check::watch::Probe;
use crate::ledger::{Hold, Release, Tally, Watched};
use crate::text::esc;
use crate::ui::Style;

pub(super) async fn watch(
    ctx: &Ctx,
    env: &str,
    duration: &str,
    no_rollback: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    watch_env(&ec, duration, no_rollback).await
}

/// "15m", "90s", "1h" for `--for` / `--watch`.
pub(super) fn parse_window(text: &str) -> Result<SignedDuration, Error> {
    crate::text::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{text:?} is not a duration (e.g. \"15m\", \"90s\")"
            ))
        })
}

/// What ended the window.
enum Ended {
    Passed,
    Fired(String),
    /// Another release went live meanwhile.
    Superseded(String),
    /// Too few answers to judge the release (the URL unreachable from here).
    Inconclusive,
}

pub(super) async fn watch_env(
    ec: &EnvCtx<'_>,
    window: &str,
    no_rollback: bool,
) -> Result<(), Error> {
    let (ctx, env) = (ec.ctx, ec.cfg.name.as_str());
    ctx.out.reserve_document();
    let window = parse_window(window)?;
    let policy = ec.cfg.watch.clone();
    // A running canary is what is judged: requests pinned to its side, and for
    // comparison the same to live's side.
    let canary = match ec.ledger.layout().await? {
        crate::config::Layout::Atomic => ec.ledger.canary().await?.map(|(c, _)| c),
        crate::config::Layout::InPlace => None,
    };
    let target = match &canary {
        Some(c) => crate::check::Target::canary(&ec.ledger, ec.cfg, c).await?,
        None => crate::check::Target::read(&ec.ledger, ec.cfg, "watch").await?,
    };
    let (base, live) = (&target.base, &target.live);
    let mut probe = Probe::new(&target, &ctx.config.edge, policy.sample)?;
    let control = match &canary {
        Some(_) => {
            probe = probe.pinned(0);
            let live = crate::check::Target::read(&ec.ledger, ec.cfg, "watch").await?;
            Some(Probe::new(&live, &ctx.config.edge, policy.sample)?.pinned(99))
        }
        None => None,
    };
    if let Some(c) = &canary {
        ctx.out.say(format!(
            "A canary is running on {env}: {}. The triggers judge its side (requests carry the cookie of bucket 0); live's side (bucket 99) is shown for comparison; CloudFront's metrics cover both sides, so a trigger there aborts the canary too.",
            c.describe()
        ));
    }
    let function = crate::edge::resource_name(&ec.cfg.name);
    let cloud = crate::aws::cloudwatch::Cloud::connect(ec.cfg, Some(function)).await;
    ctx.out.say(format!(
        "Watching release {} on {env} for {window:#}: {} path(s) a round every {:#} through {base}{}; rolls back on 5xx > {:.0}%, 4xx > {:.0}%, p95 > {} ms{}",
        live.id,
        probe.paths.len(),
        policy.interval,
        cloud.describe(&policy),
        policy.error_rate * 100.0,
        policy.client_error_rate * 100.0,
        policy.p95_ms,
        if no_rollback { " (--no-rollback: report only)" } else { "" }
    ));
    let from = Timestamp::now();
    let started = Instant::now();
    let deadline = started + Duration::try_from(window).unwrap_or_default();
    let mut tally = Tally::default();
    let mut control_tally = Tally::default();
    let mut cloud_read: Option<Instant> = None;
    let ended = loop {
        if canary.is_some() {
            let now = ec.ledger.canary().await?.map(|(c, _)| c.release);
            if now.as_deref() != Some(live.id.as_str()) {
                break Ended::Superseded(now.map_or_else(
                    || "the canary was finished or aborted".to_owned(),
                    |r| format!("release {r} is the canary now"),
                ));
            }
        } else if let Some(now) = ec.ledger.head().await?.release.filter(|h| *h != live.id) {
            break Ended::Superseded(format!("{now} went live"));
        }
        let unanswered_before = tally.unanswered;
        probe.round(&mut tally).await;
        if let Some(c) = &control {
            c.round(&mut control_tally).await;
        }
        if unanswered_before == 0 && tally.unanswered > 0 {
            eprintln!(
                "driftless: warning: {} request(s) to {base} got no answer (connection failed or timed out); unanswered requests are counted apart, not as errors of the release: only the site's answers and CloudWatch can trigger a rollback",
                tally.unanswered
            );
        }
        ctx.out.say(format!(
            "  {:>4}s  {}{}",
            started.elapsed().as_secs(),
            if control.is_some() { "canary: " } else { "" },
            round_line(&tally),
        ));
        if control.is_some() {
            ctx.out
                .say(format!("         live:   {}", round_line(&control_tally)));
        }
        if let Some(t) = tally.trigger(&policy) {
            break Ended::Fired(t);
        }
        // CloudFront's metrics come by the minute: CloudWatch is read on the first round,
        // then at most once a minute, and on the last.
        let now = Instant::now();
        if cloud_read.is_none_or(|t| now - t >= CLOUDWATCH_EVERY) || now >= deadline {
            cloud_read = Some(now);
            if let Some(t) = crate::check::watch::cloud_trigger(&cloud, &policy, from).await {
                break Ended::Fired(t);
            }
        }
        if now >= deadline {
            break if tally.conclusive() {
                Ended::Passed
            } else {
                Ended::Inconclusive
            };
        }
        let pause = Duration::try_from(policy.interval).unwrap_or(Duration::from_secs(10));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
    };
    let record = Watched {
        release: live.id.clone(),
        from,
        until: Timestamp::now(),
        p95_ms: tally.p95(),
        tally,
        healthy: matches!(ended, Ended::Passed),
        trigger: None,
        rolled_back_to: None,
        by: ctx.actor.clone(),
    };
    match ended {
        Ended::Passed => {
            ec.ledger.record_watch(&record).await?;
            ec.journal(
                "watched",
                Some(&live.id),
                serde_json::to_value(&record).unwrap_or_default(),
            )
            .await;
            ctx.out.say(format!(
                "{} {}release {} on {env}: {}.{}",
                ctx.out.paint("Healthy:", Style::Good),
                if canary.is_some() { "canary " } else { "" },
                live.id,
                record.describe(),
                if canary.is_some() {
                    format!("\n  → driftless canary {env} --finish (or --percent N for more visitors first)")
                } else {
                    String::new()
                }
            ));
            ctx.out
                .final_document(&serde_json::json!({ "result": "healthy", "watch": record }));
            Ok(())
        }
        Ended::Inconclusive => {
            ec.journal(
                "watch-inconclusive",
                Some(&live.id),
                serde_json::to_value(&record).unwrap_or_default(),
            )
            .await;
            ctx.out
                .final_document(&serde_json::json!({ "result": "inconclusive", "watch": record }));
            Err(Error::Other(format!(
                "could not tell whether release {} on {env} is healthy: {} of {} synthetic requests were answered ({} unanswered: {base} was not reachable from here), and CloudWatch fired no trigger; nothing was rolled back\n  → check that this machine reaches {base}, then `driftless watch {env} --for {window:#}`",
                live.id,
                record.tally.answered(),
                record.tally.requests,
                record.tally.unanswered,
            )))
        }
        Ended::Superseded(now) => {
            ctx.out.say(format!(
                "Release {} is no longer {} on {env} ({now} meanwhile): the watch ends, nothing was rolled back.",
                live.id,
                if canary.is_some() { "the canary" } else { "live" }
            ));
            ctx.out.final_document(
                &serde_json::json!({ "result": "superseded", "live": now, "watch": record }),
            );
            Ok(())
        }
        Ended::Fired(trigger) if canary.is_some() => {
            canary_fired(ec, live, record, trigger, no_rollback).await
        }
        Ended::Fired(trigger) => fired(ec, live, record, trigger, no_rollback).await,
    }
}

/// A failed watch left as it is: recorded with the release, journalled, reported.
async fn unhealthy(
    ec: &EnvCtx<'_>,
    release: &str,
    record: &Watched,
    trigger: &str,
) -> Result<(), Error> {
    ec.ledger.record_watch(record).await?;
    ec.journal(
        "watch-failed",
        Some(release),
        serde_json::json!({ "trigger": trigger }),
    )
    .await;
    ec.ctx
        .out
        .final_document(&serde_json::json!({ "result": "unhealthy", "watch": record }));
    Ok(())
}

/// After a failed watch was acted on: the environment held with `reason`, and the
/// watch recorded with the release.
async fn hold_after(ec: &EnvCtx<'_>, record: &Watched, reason: String) -> Result<Hold, Error> {
    let hold = Hold {
        id: format!(
            "{}-{}",
            Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
            &crate::digest::unique_token()[..6]
        ),
        reason,
        by: ec.ctx.actor.clone(),
        at: Timestamp::now(),
    };
    ec.ledger.set_hold(&hold).await?;
    ec.ledger.record_watch(record).await?;
    Ok(hold)
}

/// One round's numbers: "N requests, N 5xx, N 4xx, p95 N ms[, N unanswered]".
fn round_line(tally: &Tally) -> String {
    format!(
        "{} requests, {} 5xx, {} 4xx, p95 {} ms{}",
        tally.requests,
        tally.server_errors,
        tally.client_errors,
        tally.p95(),
        if tally.unanswered > 0 {
            format!(", {} unanswered", tally.unanswered)
        } else {
            String::new()
        }
    )
}

/// A trigger fired on the canary `canary`: report, or abort it (one pointer write:
/// everyone back on live) and put the environment on hold.
async fn canary_fired(
    ec: &EnvCtx<'_>,
    canary: &Release,
    mut record: Watched,
    trigger: String,
    no_rollback: bool,
) -> Result<(), Error> {
    let (ctx, env) = (ec.ctx, ec.cfg.name.as_str());
    ctx.out.say(format!(
        "{} canary release {} on {env}: {trigger}",
        ctx.out.paint("Unhealthy:", Style::Bad),
        canary.id
    ));
    record.trigger = Some(trigger.clone());
    if no_rollback {
        unhealthy(ec, &canary.id, &record, &trigger).await?;
        return Err(Error::Other(format!(
            "canary release {} failed its watch: {trigger} (--no-rollback: nothing was changed)\n  → driftless canary {env} --abort",
            canary.id
        )));
    }
    let lease = ec.lock_for("canary-abort", Some(&canary.id)).await?;
    let aborted = crate::apply::canary::abort(&ec.ledger, env).await;
    lease.release(&ec.ledger).await?;
    let aborted = aborted?;
    ec.canary_step(
        &canary.id,
        "abort",
        aborted.percent,
        Some(format!("watch: {trigger}")),
    )
    .await;
    record.rolled_back_to = Some(aborted.live.clone());
    let hold = hold_after(
        ec,
        &record,
        format!(
            "auto-abort: canary release {} failed its watch ({trigger}); fix it, then `driftless unhold {env}`",
            canary.id
        ),
    )
    .await?;
    ec.journal(
        "canary-abort",
        Some(&canary.id),
        serde_json::json!({ "trigger": trigger, "live": aborted.live, "hold": hold.id }),
    )
    .await;
    ec.notify(
        "auto-rollback",
        Some(&canary.summary()),
        format!(
            "canary release {} failed its watch ({trigger}); aborted: everyone is on {}; {env} is on hold",
            canary.id, aborted.live
        ),
    )
    .await;
    ctx.out.final_document(&serde_json::json!({
        "result": "canary-aborted",
        "watch": record,
        "hold": hold,
    }));
    Err(Error::Refused(format!(
        "canary release {} failed its watch: {trigger}; aborted (one pointer write: every visitor gets {} again) and put {env} on hold\n  → fix it, then `driftless unhold {env}` and deploy",
        canary.id, aborted.live
    )))
}

/// A trigger fired on `live`: report, or roll back, hold, verify.
async fn fired(
    ec: &EnvCtx<'_>,
    live: &Release,
    mut record: Watched,
    trigger: String,
    no_rollback: bool,
) -> Result<(), Error> {
    let (ctx, env) = (ec.ctx, ec.cfg.name.as_str());
    ctx.out.say(format!(
        "{} release {} on {env}: {trigger}",
        ctx.out.paint("Unhealthy:", Style::Bad),
        live.id
    ));
    record.trigger = Some(trigger.clone());
    let Some(previous) = live.parent.clone().filter(|_| !no_rollback) else {
        unhealthy(ec, &live.id, &record, &trigger).await?;
        let why = if no_rollback {
            "--no-rollback: nothing was changed"
        } else {
            "it is the first release: there is nothing to roll back to"
        };
        return Err(Error::Other(format!(
            "release {} failed its watch: {trigger} ({why})\n  → driftless rollback {env}",
            live.id
        )));
    };
    // Roll back only the watched release: the plan must see it live, and the apply
    // swaps HEAD only if it still is.
    let plan = super::planning::rollback_plan(
        ec,
        &previous,
        Some(format!("auto-rollback of {}: {trigger}", live.id)),
    )
    .await?;
    if plan.seen.head.release.as_deref() != Some(live.id.as_str()) {
        ctx.out
            .final_document(&serde_json::json!({ "result": "superseded", "watch": record }));
        return Err(Error::Other(format!(
            "release {} failed its watch ({trigger}) but is no longer live: nothing was rolled back",
            live.id
        )));
    }
    ctx.show_plan(&plan);
    if let Err(e) = super::execute::confirm_and_execute(ec, plan, true, false).await {
        let now = ec.ledger.head().await?.release;
        if now.as_deref() != Some(live.id.as_str()) && now.as_deref() != Some(previous.as_str()) {
            ctx.out
                .final_document(&serde_json::json!({ "result": "superseded", "watch": record }));
            return Err(Error::Other(format!(
                "release {} failed its watch ({trigger}) but another release went live meanwhile: nothing was rolled back ({e})",
                live.id
            )));
        }
        return Err(e);
    }
    record.rolled_back_to = Some(previous.clone());
    let hold = hold_after(
        ec,
        &record,
        format!(
            "auto-rollback: release {} failed its watch ({trigger}); fix it, then `driftless unhold {env}`",
            live.id
        ),
    )
    .await?;
    ec.journal(
        "auto-rollback",
        Some(&live.id),
        serde_json::json!({ "trigger": trigger, "to": previous, "hold": hold.id }),
    )
    .await;
    ec.notify(
        "auto-rollback",
        Some(&live.summary()),
        format!(
            "release {} failed its watch ({trigger}); rolled back to {previous}; {env} is on hold",
            live.id
        ),
    )
    .await;
    let verified = if ec.cfg.url.is_some() {
        super::verify::verify_env(ec, 30)
            .await
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    ctx.out.final_document(&serde_json::json!({
        "result": "rolled-back",
        "watch": record,
        "hold": hold,
        "verify_error": verified,
    }));
    Err(Error::Refused(format!(
        "release {} failed its watch: {trigger}; rolled back to {previous} and put {env} on hold{}\n  → fix it, then `driftless unhold {env}` and deploy",
        live.id,
        verified
            .map(|v| format!(" (verify of the restored release failed: {})", esc(&v)))
            .unwrap_or_default()
    )))
}

/// How often a watch reads CloudWatch (CloudFront's metrics have one datapoint a minute).
const CLOUDWATCH_EVERY: Duration = Duration::from_secs(60);
