//! Promotion's part that is not a plan: bringing FROM's content into TO's snapshots
//! before the promotion plan is applied to TO (the plan then writes TO's site keys from
//! them, like any apply).

use std::collections::BTreeSet;
use std::path::Path;

use futures::{StreamExt as _, TryStreamExt as _};

use super::Report;
use crate::Error;
use crate::config::{EnvConfig, StoreUrl};
use crate::ledger::Ledger;
use crate::plan::{ActionKind, Plan};

/// What a promotion moved into TO's snapshots: content staged from FROM's bytes (TO's
/// site keys are then written from it), and how many pieces were copied server-side
/// or streamed through driftless.
pub(crate) struct Moved {
    pub(crate) staged: crate::ledger::Staged,
    pub(crate) copied: usize,
    pub(crate) streamed: usize,
}

/// Bring the content of every key the plan writes into TO's snapshots (unchanged keys and
/// header-only updates already have theirs there). Large objects are copied server-side
/// when one set of credentials reaches both stores; everything else is read from FROM
/// (checked against its hash), written to a local file and kept in TO's packs.
pub(crate) async fn transfer(
    (from, from_cfg): (&Ledger, &EnvConfig),
    (to, to_cfg): (&Ledger, &EnvConfig),
    plan: &Plan,
    tmp_root: &Path,
    out: &dyn Report,
) -> Result<Moved, Error> {
    let server_side = same_service(from_cfg, to_cfg);
    let wanted: BTreeSet<(&str, u64)> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Create | ActionKind::Update))
        .filter_map(|a| a.local.as_ref().map(|e| (e.sha256.as_str(), e.size)))
        .collect();
    let shas: Vec<&str> = wanted.iter().map(|(s, _)| *s).collect();
    let present = to.present(&shas).await?;
    let todo: Vec<(&str, u64)> = wanted
        .into_iter()
        .filter(|(s, _)| !present.contains(*s))
        .collect();
    fs_err::create_dir_all(tmp_root)?;
    let dir = tempfile::Builder::new()
        .prefix("promote-")
        .tempdir_in(tmp_root)
        .map_err(|e| Error::Other(format!("{}: {e}", tmp_root.display())))?;
    let bar = out.bar(todo.len() as u64, "copying");
    let done: Vec<Option<crate::ledger::LocalContent>> = futures::stream::iter(todo)
        .map(|(sha, size)| {
            let (bar, dir) = (&bar, dir.path());
            async move {
                let big = size > crate::ledger::PACK_MAX_FILE || !to.store().prefers_packs();
                if server_side && big && to.copy_object_from(from, sha).await? {
                    bar.inc(1);
                    return Ok::<_, Error>(None);
                }
                let path = dir.join(sha);
                fetch_to_file(from, sha, &path).await?;
                bar.inc(1);
                Ok(Some(crate::ledger::LocalContent {
                    sha256: sha.to_owned(),
                    path,
                    size,
                }))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    bar.finish_and_clear();
    let copied = done.iter().filter(|d| d.is_none()).count();
    let files: Vec<crate::ledger::LocalContent> = done.into_iter().flatten().collect();
    let streamed = files.len();
    let mut staged = to
        .stage_files(files, dir.path(), &|_| {})
        .await
        .map_err(|e| {
            Error::Other(format!(
                "keeping {}'s content in {}: {e}",
                from_cfg.name, to_cfg.name
            ))
        })?;
    staged.dirs.push(dir);
    Ok(Moved {
        staged,
        copied,
        streamed,
    })
}

/// One set of credentials reaches both stores: objects can be copied server-side.
pub(crate) fn same_service(a: &EnvConfig, b: &EnvConfig) -> bool {
    matches!(
        (&a.store, &b.store),
        (StoreUrl::S3 { .. }, StoreUrl::S3 { .. })
    ) && a.endpoint == b.endpoint
        && a.profile == b.profile
        && a.region == b.region
}

/// FROM's content `sha` into the local file `path`, streamed, checked against its hash.
async fn fetch_to_file(from: &Ledger, sha: &str, path: &Path) -> Result<(), Error> {
    let missing = || {
        Error::Other(format!(
            "content {sha} named by a release of {} is missing from its store, or does not match its hash",
            from.env()
        ))
    };
    match from.locate(sha).await? {
        None => return Err(missing()),
        Some(crate::ledger::Location::Object) => {
            from.store()
                .get_to_file(&from.object_key(sha), path)
                .await?
                .ok_or_else(missing)?;
        }
        Some(crate::ledger::Location::Pack { .. }) => {
            let body = from.read_content(sha).await?.ok_or_else(missing)?;
            fs_err::write(path, &body)?;
        }
    }
    let got = crate::digest::hash_file(path)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    if got != sha {
        return Err(missing());
    }
    Ok(())
}
