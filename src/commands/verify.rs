//! `driftless verify ENV`: over real HTTP, through the environment's public `url`, check
//! that visitors get the live release — every changed path's bytes (SHA-256 of the
//! decoded body) and headers, the edge behaviour, 404s, and that the state prefix is not
//! readable. Paths still serving old bytes are polled until they converge or the timeout,
//! then named (a stale edge). The result is recorded in the environment's state.

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::check::verify::{CONNECTION_FAILED, Run};
use crate::ledger::{Check, Verification};
use crate::text::esc;
use crate::ui::Style;

pub(super) async fn verify(ctx: &Ctx, env: &str, timeout: u64) -> Result<(), Error> {
    verify_env(&ctx.env(env).await?, timeout).await
}

/// Verify an environment that is already open (promote verifies TO after applying).
pub(super) async fn verify_env(ec: &EnvCtx<'_>, timeout: u64) -> Result<(), Error> {
    let (ctx, env) = (ec.ctx, ec.cfg.name.as_str());
    let target = crate::check::Target::read(&ec.ledger, ec.cfg, "verify").await?;
    let (url, live) = (&target.url, &target.live);
    let Run {
        checks,
        unreachable,
        started,
    } = crate::check::verify::run(
        &target,
        &ctx.config.edge,
        &ec.cfg.state_prefix,
        ec.cfg.verify_p95_ms,
        timeout,
    )
    .await?;
    let failed: Vec<Check> = checks.iter().filter(|c| !c.ok).cloned().collect();
    let passed = checks.len() - failed.len();
    let record = Verification {
        release: live.id.clone(),
        url: url.clone(),
        at: jiff::Timestamp::now(),
        by: ctx.actor.author.clone(),
        passed,
        failed: failed.clone(),
        checks: checks.clone(),
    };
    ec.ledger.record_verification(&record).await?;
    let event = if failed.is_empty() {
        "verified"
    } else {
        "verify-failed"
    };
    ec.journal(
        event,
        Some(&live.id),
        serde_json::json!({ "url": url, "passed": passed, "failed": failed }),
    )
    .await;
    ctx.out.document(&record);
    for c in &checks {
        ctx.out.say(format!(
            "  {} {:<20} {}  {}",
            if c.ok {
                ctx.out.paint("✓", Style::Good)
            } else {
                ctx.out.paint("✗", Style::Bad)
            },
            c.name,
            esc(&c.path),
            c.detail
        ));
    }
    if failed.is_empty() {
        ctx.out.say(format!(
            "{} {env} ({url}) serves release {}: {passed} checks passed.",
            ctx.out.paint("✓", Style::Good),
            live.id
        ));
        return Ok(());
    }
    if unreachable {
        return Err(Error::Other(format!(
            "{env} ({url}) did not answer: {}",
            failed[0]
                .detail
                .trim_start_matches(CONNECTION_FAILED)
                .trim_start_matches(": ")
        )));
    }
    let stale: Vec<&str> = failed
        .iter()
        .filter(|c| c.detail.starts_with("serves old bytes"))
        .map(|c| c.path.as_str())
        .collect();
    let purge = if ec.cfg.cdn.is_some() {
        format!("a stale edge: `driftless invalidate {env}`")
    } else {
        "a cache in front of the site still holds old copies: purge it".to_owned()
    };
    Err(Error::Other(format!(
        "{env} ({url}) failed {} of {} checks after {}s{}",
        failed.len(),
        checks.len(),
        started.elapsed().as_secs(),
        if stale.is_empty() {
            String::new()
        } else {
            format!("; still serving old bytes: {} ({purge})", stale.join(" "))
        }
    )))
}
