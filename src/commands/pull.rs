//! `driftless pull ENV DIR`: the live release's files, as they were deployed, into a
//! local folder (from the snapshots, checked against their hashes).

use std::path::Path;

use super::Ctx;
use crate::Error;

/// Refuse to write into a directory that holds files, unless `--force`: pulling over a
/// working copy (or the build directory) silently replaces someone's work.
fn check_pull_target(ctx: &Ctx, env: &str, dir: &Path, force: bool) -> Result<(), Error> {
    let holds_files = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if !holds_files || force {
        return Ok(());
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let what = if same(dir, &ctx.config.site) {
        format!(
            "{} is the site directory (site = {:?} in driftless.toml) and is not empty: pulling into it replaces your build",
            dir.display(),
            ctx.config.site.display().to_string()
        )
    } else {
        format!(
            "{} is not empty: pulling into it overwrites its files",
            dir.display()
        )
    };
    Err(Error::Refused(format!(
        "{what}\n  → pull into a new directory (`driftless pull {env} ./live-copy`), or overwrite with --force"
    )))
}

pub(super) async fn pull(ctx: &Ctx, env: &str, dir: &Path, force: bool) -> Result<(), Error> {
    check_pull_target(ctx, env, dir, force)?;
    let ec = ctx.env(env).await?;
    let (_, live) = ec.ledger.live().await?;
    let Some(live) = live else {
        return Err(Error::Usage(format!("{env} has no live release to pull")));
    };
    let bar = ctx.out.bar(live.manifest.len() as u64, "pulling");
    for (key, entry) in &live.manifest {
        let mut body = ec.entry_bytes(key, entry).await?;
        // A precompressed object goes back to its source, which the rules compress again.
        let rule = ctx.config.rules.iter().find(|r| r.matches(key));
        if let Some(enc) = rule.and_then(|r| r.precompress)
            && entry.content_encoding.as_deref() == Some(enc.token())
        {
            body = crate::site::decompress(&body, enc)
                .map_err(|e| {
                    Error::Other(format!("{key}: cannot decompress ({}): {e}", enc.token()))
                })?
                .into();
        }
        let path = key.split('/').fold(dir.to_path_buf(), |p, s| p.join(s));
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&path, &body)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    ec.work.set_base(&live.id)?;
    ctx.out.say(format!(
        "Pulled release {} ({} files) into {}; it is now this working copy's base for {env}.",
        live.summary(),
        live.manifest.len(),
        dir.display()
    ));
    ctx.out.document_with(||
        serde_json::json!({ "release": live.summary(), "dir": dir, "files": live.manifest.len() }),
    );
    Ok(())
}
