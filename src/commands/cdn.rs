//! CDN invalidation: after every applied deploy or rollback, and `driftless invalidate`.

use std::time::Duration;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::aws::cloudfront::{CloudFront, run};
use crate::plan::invalidation::{Invalidation, invalidation_of};

/// What was invalidated, for `--json`.
#[derive(serde::Serialize)]
pub(crate) struct Invalidated {
    pub(crate) distribution: String,
    pub(crate) id: String,
    pub(crate) paths: Vec<String>,
    pub(crate) completed: bool,
}

impl EnvCtx<'_> {
    /// Invalidate after an apply. A failure is an error (the release is live, but visitors
    /// may get stale bytes) naming the command that retries it.
    pub(crate) async fn invalidate_after(
        &self,
        inv: Option<&Invalidation>,
        release: &str,
    ) -> Result<Option<Invalidated>, Error> {
        let (Some(cfg), Some(inv)) = (&self.cfg.cdn, inv) else {
            return Ok(None);
        };
        self.invalidate_now(inv, release, Duration::from_secs(cfg.wait_seconds))
            .await
            .map(Some)
            .map_err(|e| {
                Error::Other(format!(
                    "release {release} is live, but the CDN invalidation failed: {e}\n  → retry with: driftless invalidate {} {}",
                    self.cfg.name,
                    inv.paths.join(" ")
                ))
            })
    }

    async fn invalidate_now(
        &self,
        inv: &Invalidation,
        reference: &str,
        wait: Duration,
    ) -> Result<Invalidated, Error> {
        let cfg = self.cfg.cdn.as_ref().expect("caller checked the cdn");
        let cdn = CloudFront::connect(&cfg.cloudfront, self.cfg.profile.as_deref()).await;
        let (id, completed) = run(&cdn, &inv.paths, reference, wait)
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        self.ctx.out.say(format!(
            "Invalidated {} path(s) on CloudFront {} (invalidation {id}{}).",
            inv.paths.len(),
            cfg.cloudfront,
            if completed {
                ", completed".to_owned()
            } else {
                format!(", still in progress after {}s", wait.as_secs())
            }
        ));
        self.journal("invalidated",
                None,
                serde_json::json!({ "distribution": cfg.cloudfront, "id": id, "paths": inv.paths, "completed": completed }),
            )
            .await;
        Ok(Invalidated {
            distribution: cfg.cloudfront.clone(),
            id,
            paths: inv.paths.clone(),
            completed,
        })
    }
}

pub(super) async fn invalidate(
    ctx: &Ctx,
    env: &str,
    paths: &[String],
    yes: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let Some(cfg) = &ec.cfg.cdn else {
        return Err(Error::Usage(format!(
            "{env} has no CDN: add `cdn = {{ cloudfront = \"DISTRIBUTION_ID\" }}` to [env.{env}]"
        )));
    };
    let paths: Vec<String> = if paths.is_empty() {
        vec!["/*".into()]
    } else {
        paths
            .iter()
            .map(|p| {
                if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("/{p}")
                }
            })
            .collect()
    };
    let inv = invalidation_of(paths, cfg.wildcard_threshold).expect("at least one path");
    ctx.out
        .say(format!("CloudFront {}: {}", cfg.cloudfront, inv.describe()));
    if !ctx
        .out
        .confirm(&format!("Invalidate {} path(s)?", inv.paths.len()), yes)?
    {
        return Err(Error::Other(
            "not confirmed; nothing was invalidated".into(),
        ));
    }
    let reference = format!("manual-{}", &crate::digest::unique_token()[..12]);
    let done = ec
        .invalidate_now(&inv, &reference, Duration::from_secs(cfg.wait_seconds))
        .await?;
    ctx.out.document(&done);
    Ok(())
}
