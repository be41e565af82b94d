//! Every guard of a plan, one small function each, over facts already gathered.
//!
//! A guard returns its refusals: what is wrong, the culprit (file, release, person,
//! time) and the one command that resolves it. Guards never write; `build_plan` reads as
//! the list of guards it runs. Guards that need no scan of the site (protected, hold,
//! lock, pending) also run before scanning, so a 50,000-file site is refused at once.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::EnvCtx;
use crate::Error;
use crate::config::{EnvConfig, StoreUrl};
use crate::ledger::{Hold, LockInfo, Pending, Release, ReleaseKind};
use crate::plan::base::BaseResolution;
use crate::plan::{
    Desired, Drift, FileConflict, FileConflictKind, Guard, PlanKind, Refusal, Source,
};
use crate::text::esc;
use crate::text::short_time;

/// S3's limit on a key, prefix included.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// How many drifted keys a refusal names before "and N more".
const NAMED: usize = 10;

pub(super) fn protected(cfg: &EnvConfig, kind: &PlanKind) -> Option<Refusal> {
    let (env, from) = (&cfg.name, cfg.promote_from.as_ref()?);
    (*kind == PlanKind::Deploy).then(|| Refusal {
        guard: Guard::Protected,
        message: format!("{env} is protected: it only accepts promotions of what {from} verified"),
        key: None,
        release: None,
        resolve: format!(
            "deploy to {from} (`driftless deploy {from}`), verify it (`driftless verify {from}`), then `driftless promote {from} {env}`"
        ),
    })
}

pub(super) fn holds(env: &str, kind: &PlanKind, holds: &[Hold]) -> Vec<Refusal> {
    if matches!(kind, PlanKind::Rollback { .. }) {
        return Vec::new(); // a rollback is how an incident under hold is handled
    }
    holds
        .iter()
        .map(|hold| Refusal {
            guard: Guard::Hold,
            message: format!(
                "{env} is on hold since {} by {}: {}",
                short_time(hold.at),
                esc(&hold.by.author),
                esc(&hold.reason)
            ),
            key: None,
            release: None,
            resolve: format!("when the reason is resolved: driftless unhold {env}"),
        })
        .collect()
}

pub(super) fn lock(env: &str, lock: Option<&LockInfo>) -> Option<Refusal> {
    let lock = lock?;
    if lock.expired(Timestamp::now()) || lock.holder_is_dead_here() {
        return None; // taken over when the apply locks
    }
    Some(Refusal {
        guard: Guard::Lock,
        message: format!(
            "{} on {} is running `{}` on {env} since {}",
            esc(&lock.holder.author),
            esc(&lock.holder.host),
            lock.operation,
            short_time(lock.started_at)
        ),
        key: None,
        release: None,
        resolve: format!("wait for it to finish; if that run is dead: driftless unlock {env}"),
    })
}

pub(super) fn pending(env: &str, pending: Option<&Pending>) -> Option<Refusal> {
    let pending = pending?;
    Some(Refusal {
        guard: Guard::Pending,
        message: format!(
            "an apply of release {} by {} was interrupted",
            pending.release.id,
            esc(&pending.release.actor.author)
        ),
        key: None,
        release: Some(pending.release.summary()),
        resolve: format!("`driftless deploy {env}` finishes it before planning anything new"),
    })
}

/// The guards that need no scan of the site.
pub(super) async fn early(ec: &EnvCtx<'_>, kind: &PlanKind) -> Result<Vec<Refusal>, Error> {
    let env = &ec.cfg.name;
    let mut out: Vec<Refusal> = protected(ec.cfg, kind).into_iter().collect();
    let hold_list: Vec<Hold> = ec
        .ledger
        .holds()
        .await?
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    out.extend(holds(env, kind, &hold_list));
    let held = ec.ledger.read_lock().await?.map(|(l, _)| l);
    out.extend(lock(env, held.as_ref()));
    let p = ec.ledger.pending().await?.map(|(p, _)| p);
    out.extend(pending(env, p.as_ref()));
    Ok(out)
}

/// Drift is what the store holds that the live release does not say — minus what an
/// interrupted apply wrote (that is the pending release, finished by the next deploy).
pub(super) fn drift(
    env: &str,
    drift: &[Drift],
    live: Option<&Release>,
    pending: bool,
) -> Option<Refusal> {
    if drift.is_empty() {
        return None;
    }
    let list: Vec<String> = drift
        .iter()
        .take(NAMED)
        .map(|x| format!("{} ({:?})", esc(&x.key), x.kind).to_lowercase())
        .collect();
    let more = drift.len().saturating_sub(NAMED);
    let message = format!(
        "{} object(s) in the store differ from the live release{}: {}{}",
        drift.len(),
        live.map(|l| format!(" {}", l.summary()))
            .unwrap_or_default(),
        list.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    let resolve = if pending {
        format!(
            "review with `driftless diff {env} --against store`; first finish the interrupted apply with `driftless deploy {env}`"
        )
    } else {
        format!(
            "review the bytes with `driftless diff {env} --against store`; accept the store as it is with `driftless adopt {env}`, or overwrite it with --force drift (the current bytes are kept in the store's objects/)"
        )
    };
    Some(Refusal {
        guard: Guard::Drift,
        message,
        key: drift.first().map(|x| x.key.clone()),
        release: live.map(Release::summary),
        resolve,
    })
}

/// Differences from live that driftless itself made, so not drift: removed assets kept
/// for open pages (while they hold their bytes), and keys the pending release wrote (or
/// is about to delete).
pub(super) fn expected_changes(
    drift: &mut Vec<Drift>,
    live: Option<&Release>,
    pending: Option<&Pending>,
    remote: &BTreeMap<String, crate::plan::RemoteObject>,
) {
    if let Some(l) = live {
        crate::plan::skew::not_drift(drift, l, remote);
    }
    let Some(p) = pending else { return };
    drift.retain(|d| {
        let written = p.release.manifest.get(&d.key).is_some_and(|e| {
            remote
                .get(&d.key)
                .is_some_and(|r| r.sha256.as_deref() == Some(e.sha256.as_str()))
        });
        let deleted = p.deletes.iter().any(|(k, _)| *k == d.key) && !remote.contains_key(&d.key);
        !(written || deleted)
    });
}

/// Per-file: a deploy that would take live back to older content, or over a change made
/// since the base. Names the release that made the live change — a rollback especially.
pub(super) fn revert(
    env: &str,
    conflicts: &[FileConflict],
    base: &BaseResolution,
    live: Option<&Release>,
    in_git: bool,
    in_copy: &dyn Fn(&str) -> bool,
) -> Vec<Refusal> {
    conflicts
        .iter()
        .filter(|c| {
            // Both changed, and the live change is a rollback whose commits this checkout
            // reverted: the new content is the revert (rebuilt), not the bad change.
            !(c.kind == FileConflictKind::Conflict
                && base
                    .changed_by(&c.key)
                    .is_some_and(|r| base.reverted_rollbacks.contains(&r.id)))
        })
        .map(|c| {
            let by = base.changed_by(&c.key).map(|r| &**r).or(live);
            let who = by.map_or_else(|| "the live release".to_owned(), |r| r.summary().to_string());
            let key = esc(&c.key);
            let (message, resolve) = match (by.map(|r| &r.kind), c.kind) {
                (Some(ReleaseKind::Rollback { to }), kind) => {
                    let rolled_back = base.base.as_ref().map(|b| b.id.clone()).unwrap_or_default();
                    let commit = base
                        .base
                        .as_ref()
                        .and_then(|b| b.git.as_ref())
                        .map(|g| g.commit[..g.commit.len().min(10)].to_owned());
                    let msg = by
                        .and_then(|r| r.message.as_deref())
                        .map(|m| format!(": \"{}\"", esc(m)))
                        .unwrap_or_default();
                    let yours = if kind == FileConflictKind::WouldRevert {
                        format!(
                            "your copy still has the rolled-back content{}",
                            if rolled_back.is_empty() { String::new() } else { format!(" of release {rolled_back}") }
                        )
                    } else if in_git {
                        "your copy changed it too, from a checkout that still has the rolled-back commit".to_owned()
                    } else {
                        "your copy has a change of its own to it, made before the rollback".to_owned()
                    };
                    (
                        format!(
                            "{key}: would undo rollback {who}{msg} — it took {key} back to release {to}; {yours}"
                        ),
                        match (in_git, commit) {
                            (true, Some(c)) => format!(
                                "take the rolled-back change out of your build (`git revert {c}`), rebuild and re-run; if it is fixed and meant to ship again, re-run with --force revert"
                            ),
                            _ => format!(
                                "start from live (`driftless pull {env} DIR`), rebuild and re-run; if the rolled-back change is fixed and meant to ship again, re-run with --force revert"
                            ),
                        },
                    )
                }
                (_, FileConflictKind::WouldRevert) => (
                    if in_copy(&c.key) {
                        format!(
                            "{key}: would revert a newer live version (changed by release {who}); your copy still has the older content"
                        )
                    } else {
                        format!(
                            "{key}: would be deleted, though release {who} put it live; your copy does not have it"
                        )
                    },
                    format!(
                        "see the live change with `driftless diff {env} {key}`, bring it into your copy (git pull, or `driftless pull {env} DIR`), rebuild and re-run; or overwrite it with --force revert"
                    ),
                ),
                (_, FileConflictKind::Conflict) => (
                    format!("{key}: changed both in your copy and by release {who} since your base"),
                    format!(
                        "see the live change with `driftless diff {env} {key}`, bring it into your copy (git pull, or `driftless pull {env} DIR`), rebuild and re-run; or overwrite it with --force revert"
                    ),
                ),
            };
            Refusal {
                guard: Guard::Revert,
                message,
                key: Some(c.key.clone()),
                release: by.map(Release::summary),
                resolve,
            }
        })
        .collect()
}

/// Registered features must be in the new site; say whether they are live now.
pub(super) async fn features(
    ec: &EnvCtx<'_>,
    desired: &BTreeMap<String, Desired>,
    live: Option<&Release>,
) -> Result<Vec<Refusal>, Error> {
    let env = &ec.cfg.name;
    let mut out = Vec::new();
    for (i, f) in ec.ctx.config.features.iter().enumerate() {
        let local = desired.get(&f.file).map(|d| &d.source);
        let local_has = match local {
            Some(Source::Local(path)) => {
                std::fs::read(path).is_ok_and(|b| contains(&b, f.contains.as_bytes()))
            }
            _ => false,
        };
        if local_has {
            continue;
        }
        let live_entry = live.and_then(|l| l.manifest.get(&f.file));
        let live_has = match live_entry {
            Some(e) => ec
                .ledger
                .read_content(&e.sha256)
                .await?
                .is_some_and(|b| contains(&b, f.contains.as_bytes())),
            None => false,
        };
        let live_in = || live.map(|l| l.summary().to_string()).unwrap_or_default();
        let message = match (local.is_some(), live_has) {
            (true, true) => format!(
                "feature {:?} is live ({} contains {:?} in release {}) but missing from your build",
                f.name,
                f.file,
                f.contains,
                live_in()
            ),
            (true, false) => format!(
                "feature {:?} is missing from your build ({} does not contain {:?})",
                f.name, f.file, f.contains
            ),
            (false, true) => format!(
                "feature {:?} is live (in {} of release {}) but features[{i}].file {:?} is not in the build",
                f.name,
                f.file,
                live_in(),
                f.file
            ),
            (false, false) => format!(
                "feature {:?}: features[{i}].file {:?} is not in the build",
                f.name, f.file
            ),
        };
        out.push(Refusal {
            guard: Guard::Feature,
            message,
            key: Some(f.file.clone()),
            release: live.filter(|_| live_has).map(Release::summary),
            resolve: format!(
                "restore it and rebuild (`driftless diff {env} {}` shows the live version); if it was removed on purpose, update [[features]] in driftless.toml or re-run with --force feature",
                f.file
            ),
        });
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Keys S3 cannot hold, found before anything is written.
pub(super) fn key_length(cfg: &EnvConfig, desired: &BTreeMap<String, Desired>) -> Vec<Refusal> {
    let prefix = match &cfg.store {
        StoreUrl::S3 { prefix, .. } if !prefix.is_empty() => prefix.len() + 1,
        _ => 0,
    };
    desired
        .keys()
        .filter(|k| prefix + k.len() > MAX_KEY_BYTES)
        .map(|k| Refusal {
            guard: Guard::Site,
            message: format!(
                "{}: the key is {} bytes{}; S3 keys are at most {MAX_KEY_BYTES} bytes",
                esc(&k[..k.floor_char_boundary(80)]) + "…",
                k.len(),
                if prefix > 0 {
                    format!(" plus a {prefix}-byte prefix")
                } else {
                    String::new()
                }
            ),
            key: Some(k.clone()),
            release: None,
            resolve: "shorten the path in the build (or exclude it in .driftlessignore) and re-run"
                .into(),
        })
        .collect()
}

/// How long browsers may keep a response with this `Cache-Control` without asking again,
/// when that is long enough that changing the bytes under the same name strands them:
/// `immutable`, or a `max-age` of 30 days or more.
pub(crate) fn long_lived(cache_control: &str) -> Option<String> {
    let lower = cache_control.to_ascii_lowercase();
    let mut max_age = None;
    for directive in lower.split(',').map(str::trim) {
        if directive == "immutable" {
            return Some("as long as they keep it (immutable)".into());
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    let days = max_age? / 86_400;
    (days >= 30).then(|| format!("up to {days} days"))
}

/// A file live serves as long-lived whose bytes the plan changes under the same name:
/// browsers that loaded it keep the old bytes, and no CDN invalidation reaches them.
pub(super) fn immutable(
    env: &str,
    actions: &[crate::plan::Action],
    live: Option<&Release>,
    rules: &[crate::config::Rule],
) -> Vec<Refusal> {
    let Some(live) = live else {
        return Vec::new();
    };
    actions
        .iter()
        .filter(|a| a.kind == crate::plan::ActionKind::Update)
        .filter_map(|a| {
            let served = live.manifest.get(&a.key)?;
            let cc = served.cache_control.as_deref()?;
            let how_long = long_lived(cc)?;
            let rule = rules
                .iter()
                .enumerate()
                .find(|(_, r)| r.matches(&a.key))
                .map(|(i, r)| format!(" (rules[{i}], match = {:?})", r.pattern))
                .unwrap_or_default();
            let key = esc(&a.key);
            Some(Refusal {
                guard: Guard::Immutable,
                message: format!(
                    "{key}: live serves it with Cache-Control \"{}\"{rule}; changing its bytes under the same name leaves every browser that loaded it on the old bytes {how_long}, and no CDN invalidation reaches them",
                    esc(cc)
                ),
                key: Some(a.key.clone()),
                release: Some(live.summary()),
                resolve: format!(
                    "give the changed file a new name (a content hash in it, as bundlers do: name.3f2a1b9c.ext) and reference that; if the rule marks names that carry no hash, add `fingerprinted = true` to it and give the others a short max-age; to change it in place anyway: re-run `driftless deploy {env}` with --force immutable"
                ),
            })
        })
        .collect()
}
