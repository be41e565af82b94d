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

pub(super) async fn verify(
    ctx: &Ctx,
    env: &str,
    preview: Option<&str>,
    timeout: u64,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    match preview {
        Some(name) => verify_preview(&ec, name, timeout, true).await,
        None => verify_env(&ec, timeout).await,
    }
}

/// Verify an environment that is already open (promote verifies TO after applying).
pub(super) async fn verify_env(ec: &EnvCtx<'_>, timeout: u64) -> Result<(), Error> {
    let target = crate::check::Target::read(&ec.ledger, ec.cfg, "verify").await?;
    verify_target(ec, &target, timeout, true).await
}

/// Verify preview `name` at its `preview_url`: what reviewers see is its release.
/// `document`: this is the command (`--json` prints its record), not a step of another.
pub(super) async fn verify_preview(
    ec: &EnvCtx<'_>,
    name: &str,
    timeout: u64,
    document: bool,
) -> Result<(), Error> {
    let env = &ec.cfg.name;
    let (previews, _) = ec.ledger.previews().await?;
    let Some(p) = previews.0.get(name) else {
        return Err(Error::Usage(format!(
            "{env} has no preview {name:?}\n  → driftless previews {env}"
        )));
    };
    let target = crate::check::Target::preview(&ec.ledger, ec.cfg, name, &p.release)
        .await?
        .map_err(|why| {
            Error::Usage(format!(
                "{why}: add it, e.g. preview_url = \"https://{{name}}.preview.example.com\""
            ))
        })?;
    verify_target(ec, &target, timeout, document).await
}

async fn verify_target(
    ec: &EnvCtx<'_>,
    target: &crate::check::Target,
    timeout: u64,
    document: bool,
) -> Result<(), Error> {
    let ctx = ec.ctx;
    let shown = match &target.preview {
        Some(name) => format!("preview {name} of {}", ec.cfg.name),
        None => ec.cfg.name.clone(),
    };
    let env = shown.as_str();
    let (url, live) = (&target.url, &target.live);
    // The release is checked with the rules it carries, not the checkout's.
    let edge = match &live.edge {
        Some(rules) => ctx.config.edge.with_rules(rules),
        None => ctx.config.edge.clone(),
    };
    let Run {
        checks,
        unreachable,
        started,
    } = crate::check::verify::run(
        target,
        &edge,
        &ec.cfg.state_prefix,
        ec.cfg.verify_p95_ms,
        timeout,
        super::sign::credential(ec).await?,
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
        rules: live.edge.as_ref().map(crate::config::EdgeRules::digest),
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
    if document {
        ctx.out.document(&record);
    }
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
        format!("a stale edge: `driftless invalidate {}`", ec.cfg.name)
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
