//! `driftless edge ENV --apply`: the plan of `apply::edge::environment` shown, confirmed,
//! written under the environment's lock, journaled.

use super::EnvCtx;
use crate::Error;
use crate::apply::edge::{Env, environment};
use crate::edge::Compiled;
use crate::ui::Style;

impl EnvCtx<'_> {
    /// This environment, for an edge write.
    pub(crate) fn edge(&self) -> Env<'_> {
        Env {
            cfg: self.cfg,
            config: &self.ctx.config,
            ledger: &self.ledger,
        }
    }
}

/// Publish `c` to the environment's distribution. Returns what was done, for `--json`.
pub(super) async fn apply(
    ec: &EnvCtx<'_>,
    c: &Compiled,
    yes: bool,
) -> Result<serde_json::Value, Error> {
    let out = &ec.ctx.out;
    let env = &ec.cfg.name;
    let e = ec.edge();
    let plan = environment::plan(&e, c).await?;
    if plan.steps.is_empty() {
        out.say(format!(
            "Edge of {env} is up to date: CloudFront Function {} is live with this code and attached.",
            c.name
        ));
        return Ok(serde_json::json!({ "result": "up-to-date" }));
    }
    out.say(format!(
        "{} publish the edge of {env}:",
        out.paint("Plan", Style::Strong)
    ));
    for s in &plan.steps {
        out.say(format!("  - {s}"));
    }
    if !out.confirm(&format!("Publish the edge rules of {env}?"), yes)? {
        return Err(Error::Other("not confirmed; nothing was published".into()));
    }
    let steps = plan.steps.clone();
    let lease = ec.lock("edge").await?;
    let result = plan.execute(&e, c, &ec.ctx.actor, out).await;
    lease.release(&ec.ledger).await?;
    let arn = result?;
    ec.journal(
        "edge-published",
        None,
        serde_json::json!({ "function": arn, "sha256": c.function.digest, "steps": steps }),
    )
    .await;
    out.say(format!("Published the edge rules of {env}: {arn}."));
    Ok(serde_json::json!({ "result": "published", "function_arn": arn, "steps": steps }))
}
