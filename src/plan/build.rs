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
    let retention = super::skew::settle(
        &mut d,
        live.as_deref(),
        &remote,
        &inputs.config.retention,
        &new_release,
        inputs.now,
    );

    let mut refusals = req.refusals;
    refusals.extend(guards::key_length(inputs.env, &req.desired));
    refusals.extend(guards::protected(inputs.env, &req.kind));
    refusals.extend(guards::holds(env, &req.kind, &state.holds));
    refusals.extend(guards::lock(env, state.lock.as_ref()));
    refusals.extend(guards::pending(env, pending.as_ref()));
    let mut automatic_overrides = Vec::new();
    if let Some(drift) = guards::drift(env, &d.drift, live.as_deref(), pending.is_some()) {
        if matches!(req.kind, PlanKind::Rollback { .. }) {
            // Restoring a known release is what a rollback is for; the drifted bytes
            // are snapshotted before they are replaced.
            automatic_overrides.push(drift);
        } else {
            refusals.push(drift);
        }
    }
    if deploy {
        let in_git = base.source == BaseSource::Git;
        refusals.extend(base.stale.clone());
        refusals.extend(guards::revert(
            env,
            &d.conflicts,
            &base,
            live.as_deref(),
            in_git,
            &|k| req.desired.contains_key(k),
        ));
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
    if !matches!(req.kind, PlanKind::Rollback { .. }) {
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

    let checked = super::guards_for(&req.kind);
    let totals = totals(&d.actions, d.unchanged);
    let invalidation = inputs
        .env
        .cdn
        .as_ref()
        .and_then(|c| super::invalidation::invalidation_for(&d.actions, c.wildcard_threshold));
    let manifest = d.manifest(req.desired);
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
    }
}
