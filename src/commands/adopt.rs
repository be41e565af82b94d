//! `driftless adopt ENV`: record what the store serves now (changes made outside
//! driftless) as a new live release, so the next deploy does not treat it as drift.

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::plan::facts::read_site;
use crate::ui::Style;

/// Record the store's current objects as a new release.
pub(super) async fn adopt(
    ctx: &Ctx,
    env: &str,
    message: Option<String>,
    yes: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    // Adopting now would record a half-applied release as the live one.
    if let Some((pending, _)) = ec.ledger.pending().await? {
        return Err(Error::Refused(format!(
            "an apply of release {} by {} on {env} was interrupted; adopting now would record a half-deployed site\n  → finish it first: driftless deploy {env} (then adopt what still differs)",
            pending.release.id,
            crate::text::esc(&pending.release.actor.author)
        )));
    }
    let lease = ec.lock("adopt").await?;
    let result = adopt_locked(&ec, message, yes, &lease).await;
    lease.release(&ec.ledger).await?;
    result
}

async fn adopt_locked(
    ec: &EnvCtx<'_>,
    message: Option<String>,
    yes: bool,
    lease: &crate::ledger::HeldLease,
) -> Result<(), Error> {
    let ctx = ec.ctx;
    let env = &ec.cfg.name;
    let (head, live) = ec.ledger.live().await?;
    let remote = read_site(&ec.ledger, live.as_ref()).await?;
    let live_manifest = live
        .as_ref()
        .map(|l| l.manifest.clone())
        .unwrap_or_default();
    let manifest = crate::apply::snapshot_store(&ec.ledger, &live_manifest, &remote).await?;
    let drift = crate::plan::drift(Some(&live_manifest), &remote);
    if live.is_some() && drift.is_empty() {
        ctx.out.say(format!(
            "Nothing to adopt: the store matches the live release of {env}."
        ));
        ctx.out
            .document_with(|| serde_json::json!({ "result": "no-op", "env": env }));
        return Ok(());
    }
    ctx.out.say(format!(
        "{} {} object(s) in {} as a new release of {env}{}:",
        ctx.out.paint("Adopt", Style::Strong),
        manifest.len(),
        ec.ledger.store().location(),
        live.as_ref()
            .map(|l| format!(" (replacing live {})", l.summary()))
            .unwrap_or_default()
    ));
    for d in &drift {
        ctx.out.say(format!(
            "  {:<8} {}",
            format!("{:?}", d.kind).to_lowercase(),
            d.key
        ));
    }
    ec.ensure_store_trusted(false).await?;
    if !ctx
        .out
        .confirm(&format!("Record these as the live release of {env}?"), yes)?
    {
        return Err(Error::Other("not confirmed; nothing was changed".into()));
    }
    if lease.lost() {
        return Err(Error::Refused(format!(
            "the lock on {env} was broken while adopting; nothing was recorded"
        )));
    }
    let release = crate::apply::adopt(
        &ec.ledger,
        &ctx.actor,
        &head,
        live.as_ref(),
        manifest,
        message,
    )
    .await
    .map_err(|e| match e {
        crate::apply::Adopted::Moved => Error::Refused(format!(
            "the live release of {env} changed while adopting; re-run"
        )),
        crate::apply::Adopted::Failed(e) => e,
    })?;
    ec.work.record_made(head.release.as_deref(), &release.id)?;
    ec.journal(
        "adopt",
        Some(&release.id),
        serde_json::json!({ "drift": drift }),
    )
    .await;
    ctx.out.say(format!(
        "{} release {} (adopted, {} files) is live on {env}.",
        ctx.out.paint("✓", Style::Good),
        release.id,
        release.manifest.len()
    ));
    ctx.out.document_with(
        || serde_json::json!({ "result": "adopted", "release": release.summary(), "drift": drift }),
    );
    Ok(())
}
