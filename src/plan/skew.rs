//! Skew protection: a deploy that removes a fingerprinted asset leaves it served for a
//! grace period, so a page loaded from the previous release still finds its lazy chunks.
//!
//! A removed key is *kept* when the live release served it as immutable (its
//! `Cache-Control` says `immutable`) or it matches `[retention] keep_removed`; HTML never
//! is. Kept keys are recorded in the release (not in its manifest), are not drift while
//! they hold the bytes recorded, are carried from release to release, and are deleted by
//! the first deploy after their grace — conditionally, only if they still hold those bytes.

use crate::config::Retention;
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ledger::{Kept, Release};
use crate::plan::{ActionKind, Diff, DriftKind, RemoteObject};

/// Whether the store still holds exactly what was kept at `key`.
fn holds(remote: &BTreeMap<String, RemoteObject>, key: &str, kept: &Kept) -> bool {
    remote
        .get(key)
        .is_some_and(|r| r.etag == kept.entry.etag && !kept.entry.etag.is_empty())
}

/// Kept keys that still hold their bytes are expected in the store: not drift.
pub fn not_drift(
    drift: &mut Vec<crate::plan::Drift>,
    live: &Release,
    remote: &BTreeMap<String, RemoteObject>,
) {
    drift.retain(|d| {
        !(d.kind == DriftKind::Added
            && live
                .kept
                .get(&d.key)
                .is_some_and(|k| holds(remote, &d.key, k)))
    });
}

/// What retention does to one plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// Every key the new release keeps served (newly removed, and carried over).
    pub kept: BTreeMap<String, Kept>,
    /// How many of them this plan removes from the site.
    pub newly: usize,
    /// Kept keys whose grace is over: deleted by this plan.
    pub expired: usize,
}

/// Turn the deletes of removed assets into kept keys, carry the live release's kept keys
/// that are still in their grace, and delete those past it (kept keys that hold their
/// recorded bytes are not drift: [`not_drift`], applied with the other expected changes).
/// `new_release`: the id the plan will make live.
pub fn settle(
    diff: &mut Diff,
    live: Option<&Release>,
    remote: &BTreeMap<String, RemoteObject>,
    policy: &Retention,
    new_release: &str,
    now: Timestamp,
) -> Settled {
    let mut out = Settled::default();
    let Some(live) = live else {
        return out;
    };
    let mut expired = 0;
    diff.actions.retain_mut(|a| {
        if a.kind != ActionKind::Delete {
            return true;
        }
        let Some(r) = &a.remote else { return true };
        if let Some(k) = live.kept.get(&a.key) {
            if !holds(remote, &a.key, k) {
                return true; // changed outside driftless: drift, and its own delete
            }
            if !k.expired(now, policy.removed_releases, true) {
                let mut carried = k.clone();
                carried.later += 1;
                out.kept.insert(a.key.clone(), carried);
                return false;
            }
            a.reason = format!(
                "kept for open pages until {}: grace over",
                crate::text::short_time(k.until)
            );
            expired += 1;
            return true;
        }
        match live.manifest.get(&a.key) {
            Some(entry)
                if entry.etag == r.etag && policy.keeps(&a.key, entry.cache_control.as_deref()) =>
            {
                out.kept.insert(
                    a.key.clone(),
                    Kept {
                        entry: entry.clone(),
                        until: now.saturating_add(policy.grace).unwrap_or(now),
                        removed_in: new_release.to_owned(),
                        later: 0,
                    },
                );
                out.newly += 1;
                false
            }
            _ => true,
        }
    });
    out.expired = expired;
    out
}
