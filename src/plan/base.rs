//! Which release a local build derives from — its *base* — and who changed live since.
//!
//! `plan` and `status` both ask this one place, so they always agree.
//!
//! In git, the base is the newest release in live's ancestry that was *built* from a
//! commit the checkout contains. A rollback release is never a base: it is a change made
//! to live that no commit contains, so a checkout holding the rolled-back commit must be
//! judged against the release that was rolled back — and the per-file check then refuses
//! to bring the rolled-back content back. Outside git, the base is the release this
//! working copy last deployed or pulled.

use std::sync::Arc;

use crate::Error;
use crate::git::{Ancestry, GitInfo, Repo};
use crate::ledger::{Release, ReleaseKind, ReleaseRef};

/// Where a base is looked for: the environment's ledger, the project (its git
/// repository) and this working copy's record.
pub struct Working<'a> {
    pub ledger: &'a crate::ledger::Ledger,
    pub project: &'a std::path::Path,
    pub work: &'a super::workcopy::WorkCopy,
}

/// How far back base resolution walks live's ancestry.
const MAX_WALK: usize = 200;

/// Where the base came from, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseSource {
    /// The newest release built from a commit the checkout contains.
    Git,
    /// The release this working copy last deployed or pulled.
    WorkingCopy,
    /// The base a preview's build was made on (making a preview live).
    Preview,
    /// No live release yet, or nothing known.
    None,
}

pub struct BaseResolution {
    pub base: Option<Arc<Release>>,
    pub source: BaseSource,
    /// How live moved past what this working copy knows, when it did (the stale-base
    /// guard, [`super::guards::stale_base`], words the refusal).
    pub stale: Option<Stale>,
    /// Live and its ancestors down to (not including) the base, newest first: the
    /// releases that changed live since the base, to name who changed a file. Only live
    /// keeps its manifest (a chain of 50,000-file manifests would not fit in memory).
    pub since_base: Vec<Arc<Release>>,
    /// For each of `since_base`, the keys it changed (against its parent, or the base).
    pub changed: Vec<std::collections::BTreeSet<String>>,
    /// Rollbacks among `since_base` whose rolled-back commits this checkout has reverted
    /// (`git revert`): a rebuilt file that differs from what they restored is then the
    /// revert, not the rolled-back change coming back.
    pub reverted_rollbacks: std::collections::BTreeSet<String>,
}

impl BaseResolution {
    /// A plan whose base is simply `release` (rollback, promotion: live).
    pub fn of(release: Option<Arc<Release>>) -> Self {
        Self {
            base: release,
            ..Self::none()
        }
    }

    fn none() -> Self {
        Self {
            base: None,
            source: BaseSource::None,
            stale: None,
            since_base: Vec::new(),
            changed: Vec::new(),
            reverted_rollbacks: std::collections::BTreeSet::new(),
        }
    }

    /// The release among `since_base` that last changed `key` (gave it live's content).
    pub fn changed_by(&self, key: &str) -> Option<&Arc<Release>> {
        self.since_base
            .iter()
            .zip(&self.changed)
            .find(|(_, keys)| keys.contains(key))
            .map(|(r, _)| r)
    }
}

/// A release is a build of its commit unless it restores another release's content.
fn built_from_commit(r: &Release) -> Option<&GitInfo> {
    match r.kind {
        ReleaseKind::Rollback { .. } | ReleaseKind::Adopt => None,
        ReleaseKind::Deploy
        | ReleaseKind::Promote { .. }
        | ReleaseKind::Preview { .. }
        | ReleaseKind::FromPreview { .. } => r.git.as_ref(),
    }
}

pub async fn resolve(
    w: &Working<'_>,
    live: Option<&Arc<Release>>,
) -> Result<BaseResolution, Error> {
    let Some(live) = live else {
        return Ok(BaseResolution::none());
    };
    let repo = Repo::discover(w.project);
    let git = repo.as_ref().and_then(|r| r.head_for(w.project));
    if let (Some(repo), Some(git)) = (&repo, &git) {
        let (base, since_base, changed) = walk_to(w, live, |r| {
            built_from_commit(r).is_some_and(|g| repo.contains(&g.commit) == Ancestry::Contained)
        })
        .await?;
        let stale = stale_commit(live, repo, git, base.as_ref(), &since_base);
        if base.is_some() || stale.is_some() {
            let reverted_rollbacks =
                reverted_rollbacks(w, repo, &since_base, base.as_ref()).await?;
            return Ok(BaseResolution {
                base,
                source: BaseSource::Git,
                stale,
                since_base,
                changed,
                reverted_rollbacks,
            });
        }
        // No release was built from a commit this checkout knows (adopted, or made
        // outside git): fall back to what this working copy last saw.
    }
    working_copy_base(w, live).await
}

/// The base of a preview's build, judged against `live` of the environment it is about to
/// go live on (its own, or the one it is promoted to): the newest release in live's
/// ancestry that the preview's build knew — the base recorded when the preview was made
/// (or, for one made before that was recorded, what was live then), that release's
/// promotion, or, in git, any build from a commit the preview's commit contains. Live
/// moving past it since (a hotfix the preview's branch never had) makes the preview
/// stale, and the per-file check then names every file it would take back.
pub async fn of_preview(
    w: &Working<'_>,
    live: Option<&Arc<Release>>,
    preview: &Release,
    source: Option<&crate::ledger::Ledger>,
) -> Result<BaseResolution, Error> {
    let Some(live) = live else {
        return Ok(BaseResolution::none());
    };
    let known = preview.base.clone().or_else(|| preview.parent.clone());
    let repo = Repo::discover(w.project);
    let commit = preview.git.as_ref().map(|g| g.commit.clone());
    let base_commit = match &known {
        Some(id) => w
            .ledger
            .release(id)
            .await
            .ok()
            .and_then(|r| r.git)
            .map(|g| g.commit),
        None => None,
    };
    let is_base = |r: &Release| {
        let by_id = known.as_deref().is_some_and(|k| {
            r.id == k || matches!(&r.kind, ReleaseKind::Promote { release, .. } if release == k)
        });
        let by_commit = built_from_commit(r).is_some_and(|g| {
            base_commit.as_deref() == Some(g.commit.as_str())
                || match (&repo, &commit) {
                    (Some(repo), Some(c)) => repo.is_ancestor(&g.commit, c) == Ancestry::Contained,
                    _ => false,
                }
        });
        by_id || by_commit
    };
    let (mut base, mut since_base, mut changed) = walk_to(w, live, is_base).await?;
    // TO's live is a promotion of FROM's release: the preview's base is in FROM's
    // history, walked from that release (whose content TO's live is).
    if base.is_none()
        && let (Some(src), ReleaseKind::Promote { release, .. }) = (source, &live.kind)
        && let Ok(start) = src.release(release).await
    {
        let from = Working {
            ledger: src,
            project: w.project,
            work: w.work,
        };
        (base, since_base, changed) = walk_to(&from, &Arc::new(start), is_base).await?;
    }
    if base.is_none() {
        // Not in live's ancestry (collected, or another line): the per-file check falls
        // back to live's history, as a deploy without a base does.
        return Ok(BaseResolution::none());
    }
    // What the build knew: live when the preview was made (its parent) — releases since
    // then are news to it — and, in git, the builds before that whose commits it holds.
    let mut moved = Vec::new();
    let mut after = true;
    for r in &since_base {
        let parent = preview.parent.as_deref();
        if parent == Some(r.id.as_str())
            || matches!(&r.kind, ReleaseKind::Promote { release, .. } if Some(release.as_str()) == parent)
        {
            after = false;
        }
        let unknown_build = built_from_commit(r).is_some_and(|g| match (&repo, &commit) {
            (Some(repo), Some(c)) => repo.is_ancestor(&g.commit, c) != Ancestry::Contained,
            _ => false,
        });
        if after || unknown_build {
            moved.push(r.summary());
        }
    }
    let stale = (!moved.is_empty()).then(|| Stale::Preview {
        name: match &preview.kind {
            ReleaseKind::Preview { name } => name.clone(),
            _ => preview.id.clone(),
        },
        preview: preview.id.clone(),
        commit: commit.as_deref().map(|c| c[..c.len().min(10)].to_owned()),
        base: base.as_ref().map(|b| b.id.clone()).unwrap_or_default(),
        live: live.summary(),
        since: moved,
    });
    Ok(BaseResolution {
        base,
        source: BaseSource::Preview,
        stale,
        since_base,
        changed,
        reverted_rollbacks: std::collections::BTreeSet::new(),
    })
}

/// Live's ancestry walked back to the first release `is_base` accepts: the base, the
/// releases since (newest first, manifests dropped but live's), and the keys each changed.
/// At most three manifests are in memory at once.
async fn walk_to(
    w: &Working<'_>,
    live: &Arc<Release>,
    is_base: impl Fn(&Release) -> bool + Copy,
) -> Result<Walked, Error> {
    let mut walked: Walked = (None, Vec::new(), Vec::new());
    let mut current = live.clone();
    loop {
        if is_base(&current) {
            walked.0 = Some(current);
            return Ok(walked);
        }
        if walked.1.len() >= MAX_WALK {
            break;
        }
        let parent = match &current.parent {
            Some(p) => match w.ledger.release(p).await {
                Ok(r) => Some(Arc::new(r)),
                // Collected by gc: the history before it is no longer known file by file.
                Err(crate::ledger::LedgerError::Retired { .. }) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let changed = match &parent {
            Some(p) => changed_keys(&current.manifest, &p.manifest),
            None => std::collections::BTreeSet::new(),
        };
        walked.1.push(lighten(current, live));
        walked.2.push(changed);
        match parent {
            Some(p) => current = p,
            None => return Ok(walked),
        }
    }
    Ok(walked)
}

/// What a walk found: the base, the releases since, the keys each changed.
type Walked = (
    Option<Arc<Release>>,
    Vec<Arc<Release>>,
    Vec<std::collections::BTreeSet<String>>,
);

/// Keys whose content differs between two manifests.
fn changed_keys(
    a: &crate::ledger::Manifest,
    b: &crate::ledger::Manifest,
) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = a
        .iter()
        .filter(|(k, e)| b.get(*k).map(|x| &x.sha256) != Some(&e.sha256))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    out
}

/// A release kept for its header only (live keeps its manifest: it is shared).
fn lighten(r: Arc<Release>, live: &Arc<Release>) -> Arc<Release> {
    if Arc::ptr_eq(&r, live) {
        return r;
    }
    match Arc::try_unwrap(r) {
        Ok(mut owned) => {
            owned.files_if_dropped = Some(owned.manifest.len());
            owned.manifest = crate::ledger::Manifest::new();
            owned.delta = None;
            Arc::new(owned)
        }
        Err(shared) => shared,
    }
}

/// Without a base, the per-file guard still sees reverts: each key whose desired content
/// differs from live's is looked up in live's history, and if an older release held exactly
/// the desired content (or lacked the key, as the desired site does), the release after it
/// replaced that content, and deploying would revert it. Adds those conflicts, and the
/// releases that made them, to `base` (so the refusal names who made the live change).
/// Only the candidate keys' hashes are kept while walking; one release is loaded at a time.
pub async fn history_reverts(
    w: &Working<'_>,
    live: &Arc<Release>,
    desired: &std::collections::BTreeMap<String, crate::plan::Desired>,
    base: &mut BaseResolution,
) -> Result<Vec<crate::plan::FileConflict>, Error> {
    use std::collections::{BTreeMap, BTreeSet};
    let want = |k: &str| desired.get(k).map(|d| d.entry.sha256.as_str());
    let mut open: BTreeSet<String> = desired
        .keys()
        .chain(live.manifest.keys())
        .filter(|k| want(k) != live.manifest.get(*k).map(|e| e.sha256.as_str()))
        .cloned()
        .collect();
    let mut found: BTreeMap<String, (Arc<Release>, BTreeSet<String>)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut child = live.clone();
    let mut walked = 0;
    while !open.is_empty() && walked < MAX_WALK {
        let Some(parent_id) = child.parent.clone() else {
            break;
        };
        let parent = match w.ledger.release(&parent_id).await {
            Ok(r) => Arc::new(r),
            Err(crate::ledger::LedgerError::Retired { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        walked += 1;
        let reverted: Vec<String> = open
            .iter()
            .filter(|k| parent.manifest.get(*k).map(|e| e.sha256.as_str()) == want(k))
            .cloned()
            .collect();
        for k in reverted {
            open.remove(&k);
            found
                .entry(child.id.clone())
                .or_insert_with(|| (lighten(child.clone(), live), BTreeSet::new()))
                .1
                .insert(k.clone());
            conflicts.push(crate::plan::FileConflict {
                key: k,
                kind: crate::plan::FileConflictKind::WouldRevert,
            });
        }
        child = parent;
    }
    conflicts.sort_by(|a, b| a.key.cmp(&b.key));
    for (release, keys) in found.into_values() {
        base.since_base.push(release);
        base.changed.push(keys);
    }
    Ok(conflicts)
}

/// The rollbacks since the base whose rolled-back commits the checkout has reverted.
async fn reverted_rollbacks(
    w: &Working<'_>,
    repo: &Repo,
    since_base: &[Arc<Release>],
    base: Option<&Arc<Release>>,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let mut out = std::collections::BTreeSet::new();
    for (i, r) in since_base.iter().enumerate() {
        let ReleaseKind::Rollback { to } = &r.kind else {
            continue;
        };
        let Some(rolled_back) = since_base.get(i + 1).or(base) else {
            continue;
        };
        let from = match &r.git {
            Some(g) => Some(g.commit.clone()),
            None => w
                .ledger
                .release(to)
                .await
                .ok()
                .and_then(|t| t.git)
                .map(|g| g.commit),
        };
        if let (Some(from), Some(to)) = (from, built_from_commit(rolled_back))
            && repo.reverts_all(&from, &to.commit)
        {
            out.insert(r.id.clone());
        }
    }
    Ok(out)
}

/// Live moved past what this checkout or working copy knows.
#[derive(Debug, Clone)]
pub enum Stale {
    /// In git: `release` (live itself, or a build since the base) came from `commit`,
    /// which the checkout, at `head`, does not contain.
    Commit {
        release: ReleaseRef,
        live: String,
        commit: String,
        /// The commit is not in the repository at all (not fetched), rather than merely
        /// not an ancestor of the checkout.
        unknown: bool,
        head: String,
        base: Option<String>,
    },
    /// Outside git: this working copy never deployed or pulled the environment, which
    /// already serves `live`.
    Never { live: ReleaseRef },
    /// Preview `name` (release `preview`, built from `commit` on top of release `base`)
    /// is about to go live, but live moved past its base: `since`, newest first.
    Preview {
        name: String,
        preview: String,
        commit: Option<String>,
        base: String,
        live: ReleaseRef,
        since: Vec<ReleaseRef>,
    },
    /// Outside git: this working copy last deployed or pulled `base`; live is now `live`,
    /// after `others` (releases it did not make itself, oldest last).
    Behind {
        base: String,
        live: ReleaseRef,
        others: Vec<ReleaseRef>,
    },
}

/// Stale base in git: the newest build since the base (live itself, or what a rollback
/// restored) came from a commit the checkout does not contain.
fn stale_commit(
    live: &Release,
    repo: &Repo,
    git: &GitInfo,
    base: Option<&Arc<Release>>,
    since_base: &[Arc<Release>],
) -> Option<Stale> {
    // A build that a later rollback took back out is not live's content: nobody needs
    // its commit (newest first: a rollback to T covers the releases down to T).
    let mut rolled_back_to: Option<&str> = None;
    let (release, commit, ancestry) = since_base.iter().find_map(|r| {
        if let Some(t) = rolled_back_to {
            if r.id == t {
                rolled_back_to = None;
            } else {
                return None;
            }
        }
        if let ReleaseKind::Rollback { to } = &r.kind {
            rolled_back_to = Some(to.as_str());
            return None;
        }
        let g = built_from_commit(r)?;
        let ancestry = repo.contains(&g.commit);
        (ancestry != Ancestry::Contained).then_some((r, g.commit.clone(), ancestry))
    })?;
    Some(Stale::Commit {
        release: release.summary(),
        live: live.id.clone(),
        commit,
        unknown: ancestry == Ancestry::Unknown,
        head: git.commit[..git.commit.len().min(10)].to_owned(),
        base: base.map(|b| b.id.clone()),
    })
}

async fn working_copy_base(w: &Working<'_>, live: &Arc<Release>) -> Result<BaseResolution, Error> {
    let Some(id) = w.work.base(Some(&live.id)) else {
        return Ok(BaseResolution {
            base: None,
            source: BaseSource::None,
            stale: Some(Stale::Never {
                live: live.summary(),
            }),
            since_base: Vec::new(),
            changed: Vec::new(),
            reverted_rollbacks: std::collections::BTreeSet::new(),
        });
    };
    if id == live.id {
        return Ok(BaseResolution {
            base: Some(live.clone()),
            source: BaseSource::WorkingCopy,
            stale: None,
            since_base: Vec::new(),
            changed: Vec::new(),
            reverted_rollbacks: std::collections::BTreeSet::new(),
        });
    }
    // Walk live's ancestry to the base, to name who changed what since.
    let (mut base, mut since_base, mut changed) = walk_to(w, live, |r| r.id == id).await?;
    if base.is_none() {
        // No longer in live's ancestry (a release of another line): still the base for
        // the per-file comparison, but nobody since it can be named.
        base = w.ledger.release(&id).await.ok().map(Arc::new);
        since_base.clear();
        changed.clear();
    }
    // Live moved only by rollbacks and adoptions this working copy made itself: it saw
    // them, so it is not stale; the per-file guard still judges each file against them.
    let made = w.work.made_since_base();
    let ours =
        base.is_some() && !since_base.is_empty() && since_base.iter().all(|r| made.contains(&r.id));
    let stale = (!ours).then(|| Stale::Behind {
        base: id,
        live: live.summary(),
        others: since_base
            .iter()
            .filter(|r| !made.contains(&r.id))
            .map(|r| r.summary())
            .collect(),
    });
    Ok(BaseResolution {
        base,
        source: BaseSource::WorkingCopy,
        stale,
        since_base,
        changed,
        reverted_rollbacks: std::collections::BTreeSet::new(),
    })
}
