//! Every guard of a plan, one small pure function each, over facts already gathered
//! ([`super::facts`]): no guard reads the store or the site.
//!
//! A guard returns its refusals: what is wrong, the culprit (file, release, person,
//! time) and the one command that resolves it. [`super::build`] reads as the list of
//! guards it runs. Guards that need no scan of the site (protected, hold, lock, pending)
//! also run before scanning ([`early`]), so a 50,000-file site is refused at once.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::config::{EnvConfig, StoreUrl};
use crate::ledger::{Hold, LockInfo, Pending, Release, ReleaseKind};
use crate::plan::base::{BaseResolution, Stale};
use crate::plan::{Desired, Drift, FileConflict, FileConflictKind, Guard, PlanKind, Refusal};
use crate::text::esc;
use crate::text::short_time;

/// S3's limit on a key, prefix included.
pub const MAX_KEY_BYTES: usize = 1024;

/// How many drifted keys a refusal names before "and N more".
const NAMED: usize = 10;

pub fn protected(cfg: &EnvConfig, kind: &PlanKind) -> Option<Refusal> {
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

pub fn holds(env: &str, kind: &PlanKind, holds: &[Hold]) -> Vec<Refusal> {
    if matches!(kind, PlanKind::Rollback { .. } | PlanKind::Preview { .. }) {
        // A rollback is how an incident under hold is handled; a preview leaves live alone.
        return Vec::new();
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

/// Someone else's lease, unless it has expired by `now` (it is taken over when the apply
/// locks). A lease whose holder is known dead never reaches here ([`super::facts::State`]).
pub fn lock(env: &str, lock: Option<&LockInfo>, now: Timestamp) -> Option<Refusal> {
    let lock = lock?;
    if lock.expired(now) {
        return None;
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

pub fn pending(env: &str, pending: Option<&Pending>) -> Option<Refusal> {
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

/// A canary is running: live changes again only once it is finished or aborted.
pub fn canary(
    env: &str,
    kind: &PlanKind,
    canary: Option<&crate::ledger::Canary>,
) -> Option<Refusal> {
    if matches!(kind, PlanKind::Preview { .. }) {
        return None;
    }
    let c = canary?;
    Some(Refusal {
        guard: Guard::Canary,
        message: format!("a canary is running: {}", esc(&c.describe())),
        key: None,
        release: None,
        resolve: canary_resolve(env),
    })
}

/// How a running canary is ended.
pub fn canary_resolve(env: &str) -> String {
    format!(
        "`driftless canary {env} --finish` makes it live for everyone, `driftless canary {env} --abort` takes it back"
    )
}

/// The guards that need no scan of the site: protected, holds, lock, pending, canary.
pub fn early(
    cfg: &EnvConfig,
    kind: &PlanKind,
    state: &super::facts::State,
    now: Timestamp,
) -> Vec<Refusal> {
    let env = &cfg.name;
    let mut out: Vec<Refusal> = protected(cfg, kind).into_iter().collect();
    out.extend(holds(env, kind, &state.holds));
    out.extend(lock(env, state.lock.as_ref(), now));
    out.extend(pending(env, state.pending.as_ref()));
    out.extend(canary(env, kind, state.canary.as_ref()));
    out
}

/// Live moved past what this checkout or working copy knows ([`Stale`]): deploying would
/// take back what the releases since brought.
pub fn stale_base(env: &str, stale: &Stale) -> Refusal {
    let (message, release, resolve) = match stale {
        Stale::Commit {
            release,
            live,
            commit,
            unknown,
            head,
            base,
        } => {
            let why = if *unknown {
                "which is not in your repository (not fetched yet?)"
            } else {
                "which your checkout does not contain"
            };
            let (which, live_is) = if release.id == *live {
                ("live release", String::new())
            } else {
                ("release", format!(" (live is {live})"))
            };
            let base = base
                .as_ref()
                .map(|b| format!("; your base is release {b}"))
                .unwrap_or_default();
            (
                format!(
                    "{which} {release}{live_is} was built from commit {commit}, {why} (you are at {head}{base})"
                ),
                release,
                format!(
                    "git fetch && git merge {commit} (or git pull), rebuild, and re-run; `driftless diff {env}` shows what you would revert"
                ),
            )
        }
        Stale::Preview {
            name,
            preview,
            commit,
            base,
            live,
            since,
        } => {
            let built = commit
                .as_ref()
                .map(|c| format!(" from commit {c}"))
                .unwrap_or_default();
            let moved: Vec<String> = since.iter().rev().map(ToString::to_string).collect();
            (
                format!(
                    "preview {name} (release {preview}) was built{built} on top of release {base}, but live has moved since: {}",
                    moved.join(", then ")
                ),
                live,
                format!(
                    "bring what live gained into the preview's branch (`git merge` the branch {env} deploys from), deploy the preview again (`driftless deploy {env} --preview {name}`), review it and make it live; `driftless diff {env} --against {preview}` shows what it would take back; or override: --force stale-base"
                ),
            )
        }
        Stale::Never { live } => (
            format!(
                "this working copy has never deployed or pulled {env}, and {env} already serves release {live}"
            ),
            live,
            stale_advice(env),
        ),
        Stale::Behind { base, live, others } => {
            let rolled = others
                .iter()
                .find(|r| matches!(r.kind, ReleaseKind::Rollback { .. }))
                .map(|r| format!("; release {r} was a rollback"))
                .unwrap_or_default();
            let by = match others.as_slice() {
                [] | [_] => String::new(),
                many => {
                    let mut authors: Vec<&str> = Vec::new();
                    for r in many {
                        if !authors.contains(&r.author.as_str()) {
                            authors.push(&r.author);
                        }
                    }
                    format!(
                        " ({} releases since yours, by {})",
                        many.len(),
                        authors.join(", ")
                    )
                }
            };
            (
                format!(
                    "this working copy last deployed or pulled release {base}, but live is now {live}{by}{rolled}"
                ),
                live,
                stale_advice(env),
            )
        }
    };
    Refusal {
        guard: Guard::StaleBase,
        message,
        key: None,
        release: Some(release.clone()),
        resolve,
    }
}

/// What to do about a stale working copy outside git, where the site is build output.
fn stale_advice(env: &str) -> String {
    format!(
        "see what live has that your build lacks with `driftless diff {env}`, bring it into your sources and rebuild, then `driftless deploy {env} --force stale-base` (the revert guard still refuses any file live changed that your copy would take back); or keep the site in git, so driftless knows which commits live came from"
    )
}

/// Drift is what the store holds that the live release does not say — minus what an
/// interrupted apply wrote (that is the pending release, finished by the next deploy).
pub fn drift(env: &str, drift: &[Drift], live: Option<&Release>, pending: bool) -> Option<Refusal> {
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
pub fn expected_changes(
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
pub fn revert(
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
                (Some(ReleaseKind::FromPreview { name, .. }), _) => (
                    format!(
                        "{key}: live's version came from preview {name}, made live in release {who} after your base; {}",
                        if in_copy(&c.key) { "your copy has the version it replaced" } else { "your copy does not have it" }
                    ),
                    format!(
                        "see it with `driftless diff {env} {key}`; if the preview took it back by mistake (built from an older branch), re-run with --force revert to put yours live; else bring the preview's change into your copy (git pull), rebuild and re-run"
                    ),
                ),
                (Some(ReleaseKind::Rollback { to }), kind) => {
                    let rolled_back = base.base.as_ref().map(|b| b.id.clone()).unwrap_or_default();
                    let short = |c: &str| c[..c.len().min(10)].to_owned();
                    // Every commit the rollback took out: from its target's (exclusive)
                    // to the rolled-back release's.
                    let commit = base
                        .base
                        .as_ref()
                        .and_then(|b| b.git.as_ref())
                        .map(|g| match by.and_then(|r| r.git.as_ref()) {
                            Some(t) if t.commit != g.commit => {
                                format!("--no-edit {}..{}", short(&t.commit), short(&g.commit))
                            }
                            _ => short(&g.commit),
                        });
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
pub fn features(
    env: &str,
    features: &[crate::config::Feature],
    seen: &[super::facts::FeatureFact],
    live: Option<&Release>,
) -> Vec<Refusal> {
    let mut out = Vec::new();
    for (i, (f, fact)) in features.iter().zip(seen).enumerate() {
        if fact.local_has {
            continue;
        }
        let (in_build, live_has) = (fact.in_build, fact.live_has);
        let live_in = || live.map(|l| l.summary().to_string()).unwrap_or_default();
        let message = match (in_build, live_has) {
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
    out
}

/// Keys S3 cannot hold, found before anything is written.
pub fn key_length(cfg: &EnvConfig, desired: &BTreeMap<String, Desired>) -> Vec<Refusal> {
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
pub fn long_lived(cache_control: &str) -> Option<String> {
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
pub fn immutable(
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

/// Too many deletes: more than `max_deletes`, or more than `max_delete_share` of a
/// site of 10+ files.
pub fn delete_refusal(
    deletes: usize,
    live_files: usize,
    limits: &crate::config::Limits,
    env: &str,
) -> Option<Refusal> {
    if deletes == 0 {
        return None;
    }
    #[expect(clippy::cast_precision_loss, reason = "file counts are far below 2^52")]
    let share = deletes as f64 / live_files.max(1) as f64;
    let too_many = deletes > limits.max_deletes;
    // The share rule only means something on a site of some size.
    let too_much = share > limits.max_delete_share && live_files >= 10;
    (too_many || too_much).then(|| Refusal {
        guard: Guard::Deletes,
        message: format!(
            "would delete {deletes} of {live_files} live files ({:.0}%; limits: {} files, {:.0}%)",
            share * 100.0,
            limits.max_deletes,
            limits.max_delete_share * 100.0
        ),
        key: None,
        release: None,
        resolve: format!(
            "check the build output is complete (`driftless plan {env} --full` lists every delete); if the deletes are intended, re-run with --force deletes or raise [limits] in driftless.toml"
        ),
    })
}

/// Move refusals the user explicitly forced into `overrides`.
pub fn apply_forces(refusals: Vec<Refusal>, forced: &[Guard]) -> (Vec<Refusal>, Vec<Refusal>) {
    refusals
        .into_iter()
        .partition(|r| !forced.contains(&r.guard))
}

/// The site itself: what the scan found wrong (symlinks leaving it, bad names, special
/// files), and an empty site (after ignore rules: a failed build).
pub fn site(
    problems: &[crate::site::SiteProblem],
    files: usize,
    site_dir: &std::path::Path,
) -> Vec<Refusal> {
    let mut out: Vec<Refusal> = problems
        .iter()
        .map(|p| Refusal {
            guard: Guard::Site,
            message: format!("{}: {}", esc(&p.path), p.problem),
            key: Some(p.path.clone()),
            release: None,
            resolve: "fix the build output (or exclude the file in .driftlessignore) and re-run"
                .into(),
        })
        .collect();
    if files == 0 && problems.is_empty() {
        out.push(Refusal {
            guard: Guard::Site,
            message: format!(
                "the site directory {} is empty (after ignore rules): did the build fail?",
                site_dir.display()
            ),
            key: None,
            release: None,
            resolve: "build the site, then re-run".into(),
        });
    }
    out
}

/// A promotion of a release its source environment `from` has not verified (or whose
/// verification failed); `has_url`: whether `from` can be verified at all.
pub fn unverified(
    from: &str,
    has_url: bool,
    live: &Release,
    verification: Option<&crate::ledger::Verification>,
) -> Option<Refusal> {
    let rules = live.edge.as_ref().map(crate::config::EdgeRules::digest);
    let message = match verification {
        // Its rules are part of what was verified: a verification of the bytes alone
        // (made before releases carried rules) does not cover them.
        Some(v) if v.failed.is_empty() && (rules.is_none() || v.rules == rules) => return None,
        Some(v) if v.failed.is_empty() => format!(
            "{from}'s live release {} was verified at {} by {}, but not its [edge] rules (that verification predates rules carried by releases)",
            live.summary(),
            short_time(v.at),
            v.by
        ),
        Some(v) => format!(
            "{from}'s live release {} failed verification ({} check(s)) at {} by {}",
            live.summary(),
            v.failed.len(),
            short_time(v.at),
            v.by
        ),
        None => format!(
            "{from}'s live release {} has not been verified",
            live.summary()
        ),
    };
    let resolve = if has_url {
        format!("driftless verify {from}, then promote again")
    } else {
        format!(
            "add `url` to env.{from} and run `driftless verify {from}`, or promote unverified with --force unverified (recorded and journalled)"
        )
    };
    Some(Refusal {
        guard: Guard::Unverified,
        message,
        key: None,
        release: Some(live.summary()),
        resolve,
    })
}

/// `[edge.auth.signed_cookies]` behind CloudFront: CloudFront checks the cookies on a
/// cache behavior per protected pattern, which is the distribution's — it cannot switch
/// with a release. A release that protects a path the published behaviors do not cover
/// is refused until `edge --apply` adds them (protection is never late: the behaviors
/// come first, the content after). `published`: the behaviors' path patterns.
pub fn edge_protection(
    env: &str,
    rules: Option<&crate::config::EdgeRules>,
    published: Option<&[String]>,
) -> Option<Refusal> {
    let (rules, published) = (rules?, published?);
    let missing: Vec<&String> = rules
        .protect
        .iter()
        .chain(&rules.public)
        .filter(|g| {
            crate::aws::cloudfront::path_patterns(g)
                .iter()
                .any(|p| !published.contains(p))
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    let list: Vec<&str> = missing.iter().map(|g| g.as_str()).collect();
    Some(Refusal {
        guard: Guard::Edge,
        message: format!(
            "the release protects {} with CloudFront signed cookies, which CloudFront checks on cache behaviors the distribution does not have yet: it would go live unprotected",
            list.join(", ")
        ),
        key: None,
        release: None,
        resolve: format!("driftless edge {env} --apply (it adds the behaviors), then deploy again"),
    })
}

/// Checked again under the lock, just before applying: a hold put since the plan.
pub fn held_since_plan(env: &str, holds: &[Hold]) -> Option<String> {
    holds.first().map(|hold| {
        format!(
            "{env} was put on hold by {} since the plan: {}\n  → driftless unhold {env}",
            hold.by.author, hold.reason
        )
    })
}

/// A rollback to a release that gc collected or someone yanked.
pub fn unrestorable(env: &str, gone: &crate::ledger::Retired) -> String {
    format!(
        "release {} was {}: it can no longer be restored\n  → `driftless log {env}` shows the releases you can roll back to (`driftless rollback {env} --to RELEASE`)",
        gone.release.id,
        gone.describe()
    )
}

/// A store that ignores conditional writes (`ignored`: which, as the probe found them):
/// on it driftless cannot stop two deployers from overwriting each other.
pub fn unsafe_store(location: &str, ignored: &str) -> String {
    format!(
        "{location} ignores conditional writes — {ignored}; on such a store driftless cannot stop two deployers from overwriting each other"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signed cookies behind CloudFront: a release protecting a path the published
    /// cache behaviors do not cover is refused (it would go live unprotected).
    #[test]
    fn protection_is_never_late() {
        let rules = |protect: &[&str]| crate::config::EdgeRules {
            directory_index: "index.html".into(),
            spa_fallback: None,
            not_found: None,
            redirects: Vec::new(),
            headers: std::collections::BTreeMap::new(),
            protect: protect.iter().map(|p| (*p).to_owned()).collect(),
            public: Vec::new(),
        };
        let published = ["/members/*".to_owned(), "/members".to_owned()];
        assert!(
            edge_protection("prod", Some(&rules(&["/members/**"])), Some(&published)).is_none()
        );
        let r = edge_protection(
            "prod",
            Some(&rules(&["/members/**", "/admin/**"])),
            Some(&published),
        )
        .unwrap();
        assert_eq!(r.guard, Guard::Edge);
        assert!(r.message.contains("/admin/**"), "{}", r.message);
        assert!(
            r.resolve.contains("driftless edge prod --apply"),
            "{}",
            r.resolve
        );
        // Without signed cookies there is nothing to publish first.
        assert!(edge_protection("prod", Some(&rules(&["/admin/**"])), None).is_none());
    }

    /// Regression (issue 34, smaller): the stale-base refusal printed the release id
    /// twice when the stale build is not live itself.
    #[test]
    fn a_stale_build_is_named_once() {
        let r = crate::ledger::ReleaseRef {
            id: "20261201T000000Z-aaaaaa".into(),
            kind: ReleaseKind::Deploy,
            author: "Bob".into(),
            host: "h".into(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            commit: Some("0123456789abcdef".into()),
            dirty: false,
            message: None,
            files: 1,
            overrides: Vec::new(),
            tag: None,
            edge: None,
        };
        let refusal = stale_base(
            "prod",
            &Stale::Commit {
                release: r.clone(),
                live: "20261202T000000Z-bbbbbb".into(),
                commit: "0123456789abcdef".into(),
                unknown: false,
                head: "fedcba9876".into(),
                base: None,
            },
        );
        assert_eq!(
            refusal.message.matches(&r.id).count(),
            1,
            "{}",
            refusal.message
        );
        assert!(
            refusal
                .message
                .contains("(live is 20261202T000000Z-bbbbbb)"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn delete_guard() {
        let limits = crate::config::Limits {
            max_deletes: 5,
            max_delete_share: 0.5,
        };
        assert!(delete_refusal(0, 100, &limits, "p").is_none());
        assert!(delete_refusal(5, 100, &limits, "p").is_none());
        assert!(delete_refusal(6, 100, &limits, "p").is_some());
        assert!(delete_refusal(5, 10, &limits, "p").is_none());
        assert!(
            delete_refusal(4, 4, &limits, "p").is_none(),
            "tiny sites: count rule only"
        );
        assert!(
            delete_refusal(
                3,
                5,
                &crate::config::Limits {
                    max_deletes: 2,
                    max_delete_share: 1.0
                },
                "p"
            )
            .is_some()
        );
    }
}
