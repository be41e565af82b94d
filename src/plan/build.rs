//! Building the plan from the facts: the three-way diff, what driftless itself changed
//! (not drift), skew protection, every guard, the forces, the CDN paths. Pure — no I/O
//! between reading the facts and the verdict, so a plan is table-testable without a
//! store.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::base::BaseSource;
use super::facts::Facts;
use super::{
    ActionKind, Desired, Guard, PLAN_FORMAT, Plan, PlanKind, Refusal, Seen, diff, guards,
    listing_digest, totals,
};
use crate::config::{Config, EnvConfig};
use crate::git::GitInfo;
use crate::ledger::{Actor, Release, new_release_id};
use crate::site::ScanStats;

/// What a plan is asked to do, besides the facts it is built on.
pub struct Request {
    pub kind: PlanKind,
    /// The new site.
    pub desired: BTreeMap<String, Desired>,
    pub scan: Option<ScanStats>,
    /// Refusals found before the plan (the site's problems, a promotion's gate).
    pub refusals: Vec<Refusal>,
    /// Guards the person overrides (`--force`).
    pub forced: Vec<Guard>,
    pub message: Option<String>,
    /// The commit the new release's content was built from: the checkout's for a deploy,
    /// the restored release's for a rollback, the source release's for a promotion.
    pub git: Option<GitInfo>,
    /// The name the new release gets (`--tag`).
    pub tag: Option<String>,
    /// The preview being made live (here, or by promotion): judged as a deploy of the
    /// build it was made from — its base resolved from what that build knew, the
    /// stale-base and revert guards run.
    pub preview: Option<std::sync::Arc<Release>>,
    /// The `[edge]` rules the new release carries (the config's for a build; the
    /// restored, promoted or reviewed release's otherwise).
    pub edge: Option<crate::config::EdgeRules>,
}

/// Who plans, for which environment, under which config.
pub struct Inputs<'a> {
    pub env: &'a EnvConfig,
    pub config: &'a Config,
    pub actor: &'a Actor,
    /// The store's location, as people read it.
    pub store: String,
    pub now: Timestamp,
}

/// The plan: every action with its reason, every guard's verdict.
pub fn build(inputs: &Inputs<'_>, req: Request, facts: Facts) -> Plan {
    let env = &inputs.env.name;
    let Facts {
        state,
        remote,
        base,
        history_reverts,
        features,
    } = facts;
    let (live, pending) = (state.live, state.pending);
    let deploy = req.kind == PlanKind::Deploy;
    let preview = matches!(req.kind, PlanKind::Preview { .. });
    // A deploy of a build, or a preview's build made live.
    let built = deploy || req.preview.is_some();
    let mut d = diff(
        &req.desired,
        base.base.as_ref().map(|b| &b.manifest),
        live.as_ref().map(|l| &l.manifest),
        &remote,
    );
    // No base to compare with: forcing stale-base must not let a copy revert what live's
    // history replaced.
    d.conflicts.extend(history_reverts);
    guards::expected_changes(&mut d.drift, live.as_deref(), pending.as_ref(), &remote);
    let new_release = new_release_id(inputs.now);
    // A preview is served alone, at its own URL: no open page of live needs its assets.
    let retention = if preview {
        super::skew::Settled::default()
    } else {
        super::skew::settle(
            &mut d,
            live.as_deref(),
            &remote,
            &inputs.config.retention,
            &new_release,
            inputs.now,
        )
    };

    let mut refusals = req.refusals;
    refusals.extend(guards::key_length(inputs.env, &req.desired));
    refusals.extend(guards::protected(inputs.env, &req.kind));
    refusals.extend(guards::holds(env, &req.kind, &state.holds));
    refusals.extend(guards::lock(env, state.lock.as_ref(), inputs.now));
    refusals.extend(guards::pending(env, pending.as_ref()));
    refusals.extend(guards::canary(env, &req.kind, state.canary.as_ref()));
    let mut automatic_overrides = Vec::new();
    let drift = guards::drift(env, &d.drift, live.as_deref(), pending.is_some());
    if let Some(drift) = drift.filter(|_| !preview) {
        if matches!(req.kind, PlanKind::Rollback { .. }) {
            // Restoring a known release is what a rollback is for; the drifted bytes
            // are snapshotted before they are replaced.
            automatic_overrides.push(drift);
        } else {
            refusals.push(drift);
        }
    }
    if preview {
        refusals.extend(guards::features(
            env,
            &inputs.config.features,
            &features,
            live.as_deref(),
        ));
    }
    if built {
        let in_git = base.source == BaseSource::Git;
        refusals.extend(base.stale.as_ref().map(|s| guards::stale_base(env, s)));
        refusals.extend(guards::revert(
            env,
            &d.conflicts,
            &base,
            live.as_deref(),
            in_git,
            &|k| req.desired.contains_key(k),
        ));
    }
    if deploy {
        refusals.extend(guards::features(
            env,
            &inputs.config.features,
            &features,
            live.as_deref(),
        ));
        let deletes = d
            .actions
            .iter()
            .filter(|a| a.kind == ActionKind::Delete)
            .count();
        let live_files = live.as_ref().map_or(0, |l| l.manifest.len());
        refusals.extend(guards::delete_refusal(
            deletes,
            live_files,
            &inputs.env.limits,
            env,
        ));
    }
    if !matches!(
        req.kind,
        PlanKind::Rollback { .. } | PlanKind::Preview { .. }
    ) {
        // A rollback restores bytes that were live before: refusing it would keep a
        // broken release live.
        refusals.extend(guards::immutable(
            env,
            &d.actions,
            live.as_deref(),
            &inputs.config.rules,
        ));
    }
    let (refusals, mut overrides) = guards::apply_forces(refusals, &req.forced);
    overrides.extend(automatic_overrides);

    let mut checked = super::guards_for(&req.kind);
    if req.preview.is_some() && !checked.contains(&Guard::Revert) {
        let after_drift = checked
            .iter()
            .position(|g| *g == Guard::Drift)
            .map_or(0, |i| i + 1);
        checked.splice(after_drift..after_drift, [Guard::StaleBase, Guard::Revert]);
    }
    let totals = totals(&d.actions, d.unchanged);
    // Behind a function that reads the live pointer the release is in the cache key:
    // nothing cached ever needs invalidating.
    let invalidation = inputs
        .env
        .cdn
        .as_ref()
        .filter(|_| !inputs.env.edge_reads_pointer() && !preview)
        .and_then(|c| super::invalidation::invalidation_for(&d.actions, c.wildcard_threshold));
    let manifest = d.manifest(req.desired);
    let edge_changes = edge_changes(req.edge.as_ref(), live.as_deref());
    let edge_notes = edge_notes(inputs.env, &edge_changes);
    Plan {
        format: PLAN_FORMAT,
        kind: req.kind,
        env: env.clone(),
        store: inputs.store.clone(),
        created_at: inputs.now,
        actor: inputs.actor.clone(),
        git: req.git,
        message: req.message,
        live: live.as_deref().map(Release::summary),
        base: base.base.as_deref().map(Release::summary),
        new_release,
        seen: Seen {
            head: state.head,
            listing_digest: listing_digest(&remote),
            // Computed only when the plan is saved (`plan --out`): nothing else reads it.
            local_digest: String::new(),
        },
        actions: d.actions,
        totals,
        drift: d.drift,
        refusals,
        overrides,
        invalidation,
        manifest,
        scan: req.scan,
        batch: Vec::new(),
        retention,
        tag: req.tag,
        checked,
        canary: None,
        edge: req.edge,
        edge_changes,
        edge_notes,
    }
}

/// Where changed rules do not go live with the switch, said in the proof block.
fn edge_notes(env: &EnvConfig, changes: &[String]) -> Vec<String> {
    let name = &env.name;
    let mut out = Vec::new();
    if changes.is_empty() || env.cdn.is_none() {
        return out;
    }
    if env.edge_reads_pointer() {
        if changes
            .iter()
            .any(|c| c.starts_with("header") || c.starts_with("not-found"))
        {
            out.push(format!(
                "at CloudFront the release's headers go on every answer from the bucket; CloudFront's own 404 page and the redirects and refusals the function makes carry the environment's (as `driftless edge {name} --apply` last published them), and the 404 page is the live release's"
            ));
        }
    } else {
        out.push(format!(
            "in place, CloudFront serves the environment's rules: they change when `driftless edge {name} --apply` publishes them, not with this release (`serve` and `verify` follow the release); the atomic layout switches them with it (`driftless migrate {name} --layout atomic`)"
        ));
    }
    out
}

/// How the new release's rules differ from live's, for the proof block.
fn edge_changes(new: Option<&crate::config::EdgeRules>, live: Option<&Release>) -> Vec<String> {
    match (new, live.map(|l| l.edge.as_ref())) {
        (Some(n), Some(Some(l))) => n.changes_from(l),
        (Some(_), Some(None)) => {
            vec!["first release to carry its rules (live's were the environment's)".into()]
        }
        _ => Vec::new(),
    }
}

/// The guards as a table: hand-made facts in, the verdict out — no store, no site.
#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::ledger::{Entry, Head, Hold, LockInfo, Pending, ReleaseKind, header};
    use crate::plan::base::BaseResolution;
    use crate::plan::{RemoteObject, Source};

    const CONFIG: &str = r#"
site = "site"
[env.staging]
store = "file://store/staging"
[env.prod]
store = "file://store/prod"
promote_from = "staging"
[env.staging.limits]
max_deletes = 2
[[rules]]
match = "assets/**"
cache_control = "public, max-age=31536000, immutable"
"#;

    fn entry(sha: &str, cache_control: Option<&str>) -> Entry {
        Entry {
            sha256: sha.repeat(64 / sha.len()),
            size: 10,
            content_type: None,
            cache_control: cache_control.map(header),
            content_encoding: None,
            etag: format!("etag-{sha}"),
        }
    }

    fn someone(name: &str) -> Actor {
        Actor {
            author: name.to_owned(),
            host: "elsewhere".to_owned(),
            pid: 1,
        }
    }

    fn release(id: &str, files: &[(&str, Entry)]) -> Arc<Release> {
        Arc::new(Release {
            id: id.to_owned(),
            parent: None,
            env: "staging".to_owned(),
            kind: ReleaseKind::Deploy,
            created_at: Timestamp::UNIX_EPOCH,
            actor: someone("bob"),
            git: None,
            message: None,
            overrides: Vec::new(),
            tag: None,
            manifest: files
                .iter()
                .map(|(k, e)| ((*k).to_owned(), e.clone()))
                .collect(),
            kept: BTreeMap::new(),
            delta: None,
            files_if_dropped: None,
            base: None,
            edge: None,
        })
    }

    /// What the store holds when it holds exactly `live`.
    fn served(live: Option<&Release>) -> BTreeMap<String, RemoteObject> {
        live.map(|l| &l.manifest)
            .into_iter()
            .flatten()
            .map(|(k, e)| {
                let remote = RemoteObject {
                    size: e.size,
                    etag: e.etag.clone(),
                    sha256: Some(e.sha256.clone()),
                };
                (k.clone(), remote)
            })
            .collect()
    }

    fn site(files: &[(&str, Entry)]) -> BTreeMap<String, Desired> {
        files
            .iter()
            .map(|(k, e)| {
                let mut entry = e.clone();
                entry.etag.clear();
                let source = Source::Local(format!("/site/{k}").into());
                ((*k).to_owned(), Desired { entry, source })
            })
            .collect()
    }

    /// One case: the facts as they would be read, and what is asked.
    struct Case {
        env: &'static str,
        kind: PlanKind,
        live: Option<Arc<Release>>,
        base: Option<Arc<Release>>,
        remote: Option<BTreeMap<String, RemoteObject>>,
        holds: Vec<Hold>,
        lock: Option<LockInfo>,
        pending: bool,
        desired: BTreeMap<String, Desired>,
        forced: Vec<Guard>,
        stale: Option<crate::plan::base::Stale>,
    }

    impl Case {
        fn deploy(live: Option<Arc<Release>>, desired: &[(&str, Entry)]) -> Self {
            Self {
                env: "staging",
                kind: PlanKind::Deploy,
                base: live.clone(),
                live,
                remote: None,
                holds: Vec::new(),
                lock: None,
                pending: false,
                desired: site(desired),
                forced: Vec::new(),
                stale: None,
            }
        }

        fn plan(self) -> Plan {
            let config = Config::parse(CONFIG, Path::new("driftless.toml"), Path::new("/work"))
                .expect("the test config parses");
            let actor = someone("alice");
            let inputs = Inputs {
                env: &config.envs[self.env],
                config: &config,
                actor: &actor,
                store: "file://store".to_owned(),
                now: Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 365 * 30),
            };
            let remote = self.remote.unwrap_or_else(|| served(self.live.as_deref()));
            let pending = self.pending.then(|| Pending {
                release: (*release("r-pending", &[])).clone(),
                head: Head::default(),
                deletes: Vec::new(),
                slot: None,
            });
            let facts = Facts {
                state: crate::plan::facts::State {
                    head: Head {
                        release: self.live.as_ref().map(|l| l.id.clone()),
                        etag: Some("h".to_owned()),
                    },
                    live: self.live.clone(),
                    pending,
                    holds: self.holds,
                    lock: self.lock,
                    canary: None,
                },
                remote,
                base: BaseResolution {
                    source: if self.base.is_some() {
                        BaseSource::WorkingCopy
                    } else {
                        BaseSource::None
                    },
                    base: self.base,
                    stale: self.stale,
                    since_base: self.live.into_iter().collect(),
                    changed: Vec::new(),
                    reverted_rollbacks: Default::default(),
                },
                history_reverts: Vec::new(),
                features: Vec::new(),
            };
            let request = Request {
                kind: self.kind,
                desired: self.desired,
                scan: None,
                refusals: Vec::new(),
                forced: self.forced,
                message: None,
                git: None,
                tag: None,
                preview: None,
                edge: None,
            };
            build(&inputs, request, facts)
        }
    }

    fn refused(plan: &Plan) -> Vec<Guard> {
        plan.refusals.iter().map(|r| r.guard).collect()
    }

    fn overridden(plan: &Plan) -> Vec<Guard> {
        plan.overrides.iter().map(|r| r.guard).collect()
    }

    #[test]
    fn guards_as_a_table() {
        let v1 = release("r1", &[("index.html", entry("a", None))]);
        let five = release(
            "r5",
            &[
                ("a.html", entry("a", None)),
                ("b.html", entry("b", None)),
                ("c.html", entry("c", None)),
                ("d.html", entry("d", None)),
                ("e.html", entry("e", None)),
            ],
        );
        let css = release(
            "rc",
            &[(
                "assets/app.css",
                entry("c", Some("public, max-age=31536000, immutable")),
            )],
        );
        let mut tampered = served(Some(&v1));
        tampered.insert(
            "index.html".to_owned(),
            RemoteObject {
                size: 11,
                etag: "etag-x".to_owned(),
                sha256: Some("x".repeat(64)),
            },
        );
        let hold = Hold {
            id: "h1".to_owned(),
            reason: "incident 42".to_owned(),
            by: someone("carol"),
            at: Timestamp::UNIX_EPOCH,
        };
        let far = Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 365 * 40);
        let lock = LockInfo {
            holder: someone("dave"),
            operation: "deploy".to_owned(),
            started_at: Timestamp::UNIX_EPOCH,
            expires_at: far,
            release: None,
            renewed_at: None,
        };

        let cases: Vec<(&str, Case, Vec<Guard>, Vec<Guard>)> = vec![
            (
                "a first deploy",
                Case::deploy(None, &[("index.html", entry("a", None))]),
                vec![],
                vec![],
            ),
            (
                "a plain change",
                Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))]),
                vec![],
                vec![],
            ),
            (
                "a protected environment takes promotions only",
                Case {
                    env: "prod",
                    ..Case::deploy(None, &[("index.html", entry("a", None))])
                },
                vec![Guard::Protected],
                vec![],
            ),
            (
                "a change made outside driftless",
                Case {
                    remote: Some(tampered.clone()),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::Drift],
                vec![],
            ),
            (
                "drift forced",
                Case {
                    remote: Some(tampered.clone()),
                    forced: vec![Guard::Drift],
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![],
                vec![Guard::Drift],
            ),
            (
                "forcing another guard leaves drift refused",
                Case {
                    remote: Some(tampered.clone()),
                    forced: vec![Guard::Deletes],
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::Drift],
                vec![],
            ),
            (
                "a rollback restores over drift (snapshotted first)",
                Case {
                    kind: PlanKind::Rollback {
                        to: "r0".to_owned(),
                    },
                    remote: Some(tampered),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![],
                vec![Guard::Drift],
            ),
            (
                "a stale copy would bring back older content",
                Case {
                    base: Some(release("r0", &[("index.html", entry("o", None))])),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("o", None))])
                },
                vec![Guard::Revert],
                vec![],
            ),
            (
                "a working copy that never deployed",
                Case {
                    base: None,
                    stale: Some(crate::plan::base::Stale::Never { live: v1.summary() }),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::StaleBase],
                vec![],
            ),
            (
                "stale base forced",
                Case {
                    base: None,
                    stale: Some(crate::plan::base::Stale::Never { live: v1.summary() }),
                    forced: vec![Guard::StaleBase],
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![],
                vec![Guard::StaleBase],
            ),
            (
                "on hold",
                Case {
                    holds: vec![hold.clone()],
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::Hold],
                vec![],
            ),
            (
                "a rollback is how a hold is handled",
                Case {
                    kind: PlanKind::Rollback {
                        to: "r0".to_owned(),
                    },
                    holds: vec![hold],
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![],
                vec![],
            ),
            (
                "someone else holds the lock",
                Case {
                    lock: Some(lock.clone()),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::Lock],
                vec![],
            ),
            (
                "an expired lock is taken over",
                Case {
                    lock: Some(LockInfo {
                        expires_at: Timestamp::UNIX_EPOCH,
                        ..lock
                    }),
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![],
                vec![],
            ),
            (
                "an interrupted apply comes first",
                Case {
                    pending: true,
                    ..Case::deploy(Some(v1.clone()), &[("index.html", entry("b", None))])
                },
                vec![Guard::Pending],
                vec![],
            ),
            (
                "too many deletes",
                Case::deploy(Some(five.clone()), &[("a.html", entry("a", None))]),
                vec![Guard::Deletes],
                vec![],
            ),
            (
                "deletes within the limit",
                Case::deploy(
                    Some(five),
                    &[
                        ("a.html", entry("a", None)),
                        ("b.html", entry("b", None)),
                        ("c.html", entry("c", None)),
                    ],
                ),
                vec![],
                vec![],
            ),
            (
                "an immutable file changed in place",
                Case::deploy(
                    Some(css.clone()),
                    &[(
                        "assets/app.css",
                        entry("d", Some("public, max-age=31536000, immutable")),
                    )],
                ),
                vec![Guard::Immutable],
                vec![],
            ),
            (
                "a rollback may restore an immutable file",
                Case {
                    kind: PlanKind::Rollback {
                        to: "r0".to_owned(),
                    },
                    ..Case::deploy(
                        Some(css),
                        &[(
                            "assets/app.css",
                            entry("d", Some("public, max-age=31536000, immutable")),
                        )],
                    )
                },
                vec![],
                vec![],
            ),
        ];

        let mut wrong = Vec::new();
        for (name, case, refusals, overrides) in cases {
            let plan = case.plan();
            if refused(&plan) != refusals || overridden(&plan) != overrides {
                wrong.push(format!(
                    "{name}: refused {:?} overridden {:?}, expected {refusals:?} and {overrides:?}\n    {:?}",
                    refused(&plan),
                    overridden(&plan),
                    plan.refusals.iter().map(|r| &r.message).collect::<Vec<_>>()
                ));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    #[test]
    fn a_refusal_names_the_culprit_and_the_command() {
        let v1 = release("r1", &[("index.html", entry("a", None))]);
        let plan = Case {
            holds: vec![Hold {
                id: "h1".to_owned(),
                reason: "incident 42".to_owned(),
                by: someone("carol"),
                at: Timestamp::UNIX_EPOCH,
            }],
            ..Case::deploy(Some(v1), &[("index.html", entry("b", None))])
        }
        .plan();
        let hold = &plan.refusals[0];
        assert!(hold.message.contains("carol") && hold.message.contains("incident 42"));
        assert_eq!(
            hold.resolve,
            "when the reason is resolved: driftless unhold staging"
        );
    }
}
