//! Skew protection: a deploy that removes a fingerprinted asset leaves it served for a
//! grace period, so a page loaded from the previous release still finds its lazy chunks.
//!
//! A removed key is *kept* when the live release served it as immutable (its
//! `Cache-Control` says `immutable`) or it matches `[retention] keep_removed`; HTML never
//! is. Kept keys are recorded in the release (not in its manifest), are not drift while
//! they hold the bytes recorded, are carried from release to release, and are deleted by
//! the first deploy after their grace — conditionally, only if they still hold those bytes.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::{Invalid, Key};
use crate::ledger::{Kept, Release};
use crate::plan::{ActionKind, Diff, DriftKind, RemoteObject};
use crate::text::parse_duration;

/// `[retention]` as written in driftless.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// How long a removed asset stays served for pages already open, e.g. "48h", "30m",
    /// "7d" (default 48h; "0s" deletes at once).
    #[serde(default)]
    pub removed_grace: Option<String>,
    /// Globs of removed keys to keep for the grace period (default: the keys the live
    /// release served with `Cache-Control: immutable`, i.e. fingerprinted assets). HTML is
    /// never kept.
    #[serde(default)]
    pub keep_removed: Option<Vec<String>>,
    /// Removed assets also stay until this many releases have gone live after the one
    /// that removed them, whatever the time (default 0: the grace alone decides).
    #[serde(default)]
    pub removed_releases: Option<u32>,
    /// How many releases `driftless gc` keeps restorable, newest first, the live one
    /// included (default 10; at least 1). Older releases lose their snapshots.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub keep_releases: Option<usize>,
    /// Also keep every release made in this many days, e.g. "30d" (default: none).
    #[serde(default)]
    pub keep_days: Option<String>,
}

/// The retention policy, validated.
#[derive(Debug, Clone)]
pub struct Retention {
    pub grace: SignedDuration,
    /// Releases that must go live after a removal before its kept keys may go.
    pub removed_releases: u32,
    keep: Option<GlobSet>,
    /// Releases `gc` keeps restorable (the live one included).
    pub keep_releases: usize,
    /// Releases younger than this are kept too.
    pub keep_days: Option<SignedDuration>,
}

pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(48);
pub const DEFAULT_KEEP_RELEASES: usize = 10;

impl Default for Retention {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            removed_releases: 0,
            keep: None,
            keep_releases: DEFAULT_KEEP_RELEASES,
            keep_days: None,
        }
    }
}

impl RawRetention {
    pub fn validate(&self) -> Result<Retention, Invalid> {
        let at = |field: &str| Key::of("retention").then(field);
        let grace = match &self.removed_grace {
            None => DEFAULT_GRACE,
            Some(text) => parse_duration(text).ok_or_else(|| {
                Invalid::new(
                    at("removed_grace"),
                    format!(
                        "retention.removed_grace: {text:?} is not a duration (e.g. \"48h\", \"30m\", \"7d\")"
                    ),
                )
            })?,
        };
        let keep = match &self.keep_removed {
            None => None,
            Some(patterns) => {
                let mut b = GlobSetBuilder::new();
                for (i, p) in patterns.iter().enumerate() {
                    b.add(Glob::new(p).map_err(|e| {
                        Invalid::new(
                            at("keep_removed").at(i),
                            format!("retention.keep_removed: {p:?}: {e}"),
                        )
                    })?);
                }
                Some(b.build().map_err(|e| {
                    Invalid::new(at("keep_removed"), format!("retention.keep_removed: {e}"))
                })?)
            }
        };
        let keep_releases = match self.keep_releases {
            None => DEFAULT_KEEP_RELEASES,
            Some(0) => {
                return Err(Invalid::new(
                    at("keep_releases"),
                    "retention.keep_releases: must be at least 1 (the live release is always kept)",
                ));
            }
            Some(n) => n,
        };
        let keep_days = match &self.keep_days {
            None => None,
            Some(text) => Some(parse_duration(text).ok_or_else(|| {
                Invalid::new(
                    at("keep_days"),
                    format!(
                        "retention.keep_days: {text:?} is not a duration (e.g. \"30d\", \"12h\")"
                    ),
                )
            })?),
        };
        Ok(Retention {
            grace,
            removed_releases: self.removed_releases.unwrap_or(0),
            keep,
            keep_releases,
            keep_days,
        })
    }
}

impl Retention {
    fn keeps(&self, key: &str, entry: &crate::ledger::Entry) -> bool {
        if (self.grace.is_zero() && self.removed_releases == 0) || crate::keys::is_html(key) {
            return false;
        }
        match &self.keep {
            Some(set) => set.is_match(key),
            None => entry
                .cache_control
                .as_deref()
                .is_some_and(|c| c.to_ascii_lowercase().contains("immutable")),
        }
    }
}

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
            Some(entry) if entry.etag == r.etag && policy.keeps(&a.key, entry) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Entry;

    fn entry(sha: &str, cache: &str) -> Entry {
        Entry {
            sha256: sha.into(),
            size: 1,
            content_type: None,
            cache_control: Some(crate::ledger::header(cache)),
            content_encoding: None,
            etag: format!("e-{sha}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Some(SignedDuration::from_hours(48)));
        assert_eq!(parse_duration("7d"), Some(SignedDuration::from_hours(168)));
        assert_eq!(parse_duration("30m"), Some(SignedDuration::from_mins(30)));
        assert_eq!(parse_duration("0s"), Some(SignedDuration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1h"), None);
    }

    #[test]
    fn only_removed_immutable_assets_are_kept_and_html_never() {
        let policy = Retention::default();
        let immutable = "public, max-age=31536000, immutable";
        assert!(policy.keeps("assets/app-1a2b3c4d.js", &entry("a", immutable)));
        assert!(!policy.keeps("index.html", &entry("a", immutable)));
        assert!(!policy.keeps("about.txt", &entry("a", "no-cache")));
        let globbed = RawRetention {
            removed_grace: Some("1h".into()),
            keep_removed: Some(vec!["chunks/**".into()]),
            ..RawRetention::default()
        }
        .validate()
        .unwrap();
        assert!(globbed.keeps("chunks/a.js", &entry("a", "no-cache")));
        assert!(!globbed.keeps("assets/a.js", &entry("a", immutable)));
        let off = RawRetention {
            removed_grace: Some("0s".into()),
            ..RawRetention::default()
        }
        .validate()
        .unwrap();
        assert!(!off.keeps("assets/app-1a2b3c4d.js", &entry("a", immutable)));
    }
}
