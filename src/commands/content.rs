//! Commands that move content between the store and people: `rollback`, `adopt`,
//! `pull` and `diff`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;

use super::execute::confirm_and_execute;
use super::planning::plan_of;
use super::{Ctx, EnvCtx};
use crate::Error;
use crate::digest::hash_bytes;
use crate::ledger::{Entry, Manifest};
use crate::plan::build::Request;
use crate::plan::facts::read_site;
use crate::plan::{Desired, PlanKind, Source, guards};
use crate::text::esc;
use crate::ui::Style;

pub(super) async fn rollback(
    ctx: &Ctx,
    env: &str,
    to: Option<String>,
    message: Option<String>,
    yes: bool,
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    ec.finish_interrupted().await?;
    ec.clear_finished_lock().await?;
    // A hold stops deploys, not the way back; say that it is there.
    for (hold, _) in ec.ledger.holds().await? {
        ctx.out.say(format!(
            "note: {env} is on hold since {} by {}: {} — rolling back is allowed; `driftless unhold {env}` when resolved",
            crate::text::short_time(hold.at),
            crate::text::esc(&hold.by.author),
            crate::text::esc(&hold.reason)
        ));
    }
    let target_id = match &to {
        // Only a release that was live here: walk live's ancestry as far as `id`.
        Some(name) => {
            let id = ec.release_named(name).await?;
            if !ec.ledger.history_refs(Some(&id), 100_000).await?.1 {
                return Err(Error::Usage(format!(
                    "{id} is not a release that was live on {env}; see `driftless log {env}`"
                )));
            }
            id
        }
        None => match ec.ledger.history_refs(None, 2).await?.0.as_slice() {
            [] => {
                return Err(Error::Usage(format!(
                    "{env} has no live release to roll back from"
                )));
            }
            [live] => {
                return Err(Error::Usage(format!(
                    "live release {} on {env} has no previous release",
                    live.id
                )));
            }
            [_, previous, ..] => previous.id.clone(),
        },
    };
    if let Err(gone) = ec.ledger.restorable(&target_id).await? {
        return Err(Error::Refused(guards::unrestorable(env, &gone)));
    }
    let plan = rollback_plan(&ec, &target_id, message).await?;
    ctx.show_plan(&plan);
    confirm_and_execute(&ec, plan, yes, false).await
}

/// The plan that makes release `target_id` live again.
pub(super) async fn rollback_plan(
    ec: &EnvCtx<'_>,
    target_id: &str,
    message: Option<String>,
) -> Result<crate::plan::Plan, Error> {
    let target = ec.ledger.release(target_id).await?;
    let desired = crate::plan::desired_from_objects(&target.manifest);
    plan_of(
        ec,
        Request {
            kind: PlanKind::Rollback {
                to: target.id.clone(),
            },
            desired,
            scan: None,
            refusals: Vec::new(),
            forced: Vec::new(),
            message: Some(message.unwrap_or_else(|| format!("rollback to {}", target.id))),
            // The content is the target's: so is the commit it was built from.
            git: target.git.clone(),
            tag: None,
        },
    )
    .await
}

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
    let mut manifest = Manifest::new();
    for (key, r) in &remote {
        let known = live_manifest
            .get(key)
            .filter(|e| e.etag == r.etag && Some(&e.sha256) == r.sha256.as_ref());
        if let Some(e) = known {
            manifest.insert(key.clone(), e.clone());
            continue;
        }
        // Not what driftless wrote: snapshot its bytes and record its headers.
        let Some((obj, body)) = ec.ledger.store().get(key).await? else {
            continue;
        };
        let sha = hash_bytes(&body);
        ec.ledger.put_object(&sha, body).await?;
        manifest.insert(
            key.clone(),
            Entry::from_attributes(&sha, obj.meta.size, &obj.attrs, &obj.meta.etag),
        );
    }
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

/// Bytes of one release entry: from `objects/`, or the site key if it still matches.
async fn entry_bytes(ec: &EnvCtx<'_>, key: &str, entry: &Entry) -> Result<Bytes, Error> {
    if let Some(b) = ec.ledger.read_content(&entry.sha256).await? {
        return Ok(b);
    }
    match ec.ledger.store().get(key).await? {
        Some((_, b)) if hash_bytes(&b) == entry.sha256 => Ok(b),
        _ => Err(Error::Other(format!(
            "{key}: content {} is in neither objects/ nor the site",
            entry.sha256
        ))),
    }
}

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
        let mut body = entry_bytes(&ec, key, entry).await?;
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

/// One side of a diff: a manifest and where to read its bytes.
enum Side<'a> {
    Local(BTreeMap<String, Desired>),
    Release(&'a EnvCtx<'a>, Manifest),
    /// What the store holds now at each site key, read from the store itself.
    Store(&'a EnvCtx<'a>, BTreeMap<String, String>),
}

impl Side<'_> {
    fn shas(&self) -> BTreeMap<String, (String, Option<String>)> {
        match self {
            Side::Local(d) => d
                .iter()
                .map(|(k, d)| {
                    (
                        k.clone(),
                        (
                            d.entry.sha256.clone(),
                            d.entry.content_type.as_deref().map(str::to_owned),
                        ),
                    )
                })
                .collect(),
            Side::Release(_, m) => m
                .iter()
                .map(|(k, e)| {
                    (
                        k.clone(),
                        (
                            e.sha256.clone(),
                            e.content_type.as_deref().map(str::to_owned),
                        ),
                    )
                })
                .collect(),
            Side::Store(_, shas) => shas
                .iter()
                .map(|(k, sha)| (k.clone(), (sha.clone(), Some(crate::site::content_type(k)))))
                .collect(),
        }
    }

    async fn bytes(&self, key: &str) -> Result<Option<Bytes>, Error> {
        match self {
            Side::Local(d) => match d.get(key) {
                Some(Desired {
                    source: Source::Local(p),
                    entry,
                }) => Ok(Some(readable(fs_err::read(p)?.into(), entry))),
                _ => Ok(None),
            },
            Side::Release(ec, m) => match m.get(key) {
                Some(e) => Ok(Some(readable(entry_bytes(ec, key, e).await?, e))),
                None => Ok(None),
            },
            Side::Store(ec, _) => Ok(ec.ledger.store().get(key).await?.map(|(obj, body)| {
                let entry = Entry::from_attributes("", obj.meta.size, &obj.attrs, "");
                readable(body, &entry)
            })),
        }
    }
}

/// Bytes to show a person: a gzip or brotli object decoded (as a browser would).
fn readable(body: Bytes, entry: &Entry) -> Bytes {
    let enc = match entry.content_encoding.as_deref() {
        Some("gzip") => crate::config::Precompress::Gzip,
        Some("br") => crate::config::Precompress::Br,
        _ => return body,
    };
    crate::site::decompress(&body, enc).map_or(body, Bytes::from)
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.starts_with("text/")
            || ["json", "javascript", "xml", "svg"]
                .iter()
                .any(|w| t.contains(w))
    })
}

pub(super) async fn diff(
    ctx: &Ctx,
    env: &str,
    against: &str,
    paths: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let (_, live) = ec.ledger.live().await?;
    let left_manifest = live
        .as_ref()
        .map(|l| l.manifest.clone())
        .unwrap_or_default();
    let left_name = env.to_owned();
    let other_env;
    let known = || {
        ctx.config
            .envs
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    // `local` and `store` are keywords; an environment with such a name is `env:NAME`.
    let other = against
        .strip_prefix("env:")
        .or_else(|| (!["local", "store"].contains(&against)).then_some(against))
        .filter(|name| ctx.config.envs.contains_key(*name));
    let (right, right_name) = if against == "local" {
        (
            Side::Local(super::planning::scan_site(ctx)?.desired),
            "local build".to_owned(),
        )
    } else if against == "store" {
        let remote = read_site(&ec.ledger, live.as_ref()).await?;
        let shas = remote
            .into_iter()
            .filter_map(|(k, r)| r.sha256.map(|s| (k, s)))
            .collect();
        (Side::Store(&ec, shas), format!("{env} store"))
    } else if let Some(name) = other {
        other_env = ctx.env(name).await?;
        let (_, other_live) = other_env.ledger.live().await?;
        let m = other_live.map(|l| l.manifest).unwrap_or_default();
        (Side::Release(&other_env, m), name.to_owned())
    } else if let Some(name) = against.strip_prefix("env:") {
        return Err(Error::Usage(format!(
            "--against env:{name}: no such environment (known: {})",
            known()
        )));
    } else {
        let id = ec.release_named(against).await.map_err(|_| {
            Error::Usage(format!(
                "--against {against}: not `local` (your build), `store`, an environment ({}), or a release of {env} ({})",
                known(),
                crate::cli::RELEASE_NAMES
            ))
        })?;
        // A collected or yanked release has no bytes left to compare: say so, and why.
        if let Err(gone) = ec.ledger.restorable(&id).await? {
            return Err(Error::Usage(format!(
                "--against {against}: release {id} was {}: its files are gone, so there is nothing to compare\n  → `driftless log {env}` shows the releases that can still be compared",
                gone.describe()
            )));
        }
        let r = ec.ledger.release(&id).await?;
        (Side::Release(&ec, r.manifest), id)
    };
    let left = Side::Release(&ec, left_manifest);
    let (ls, rs) = (left.shas(), right.shas());
    let keys: BTreeSet<&String> = ls.keys().chain(rs.keys()).collect();
    let mut changes = Vec::new();
    let mut text_out = String::new();
    for key in keys {
        if !paths.is_empty()
            && !paths
                .iter()
                .any(|p| key == p || key.starts_with(&format!("{}/", p.trim_end_matches('/'))))
        {
            continue;
        }
        let (l, r) = (ls.get(key), rs.get(key));
        if l.map(|x| &x.0) == r.map(|x| &x.0) {
            continue;
        }
        let status = match (l, r) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        let ct = r.or(l).and_then(|x| x.1.as_deref());
        let mut unified = None;
        if is_text(ct) {
            let a = left.bytes(key).await?.unwrap_or_default();
            let b = right.bytes(key).await?.unwrap_or_default();
            if let (Ok(a), Ok(b)) = (std::str::from_utf8(&a), std::str::from_utf8(&b)) {
                let d = similar::TextDiff::from_lines(a, b)
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{left_name}/{}", esc(key)),
                        &format!("{right_name}/{}", esc(key)),
                    )
                    .to_string();
                unified = Some(d);
            }
        }
        match &unified {
            Some(d) => text_out.push_str(d),
            None => text_out.push_str(&format!(
                "Binary files {left_name}/{k} and {right_name}/{k} differ\n",
                k = esc(key)
            )),
        }
        changes.push(serde_json::json!({ "key": key, "status": status, "diff": unified }));
    }
    if changes.is_empty() {
        ctx.out.say(format!(
            "No differences between {left_name} (live) and {right_name}."
        ));
        if against == "local" && ctx.config.envs.contains_key("local") {
            ctx.out.say(
                "(`--against local` is your build; the environment named local is `--against env:local`)",
            );
        }
    } else {
        ctx.out.say(text_out.trim_end());
    }
    ctx.out.document_with(
        || serde_json::json!({ "left": left_name, "right": right_name, "changes": changes }),
    );
    Ok(())
}
