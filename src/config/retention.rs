//! `[retention]`: how long removed assets stay served for open pages (skew protection),
//! and which releases `gc` keeps restorable. Applying it is `plan::skew` and `gc`.

use globset::{Glob, GlobSet, GlobSetBuilder};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::{Invalid, Key};
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
    /// Is a removed `key`, served with `cache_control`, kept for open pages?
    pub fn keeps(&self, key: &str, cache_control: Option<&str>) -> bool {
        if (self.grace.is_zero() && self.removed_releases == 0) || crate::keys::is_html(key) {
            return false;
        }
        match &self.keep {
            Some(set) => set.is_match(key),
            None => cache_control.is_some_and(|c| c.to_ascii_lowercase().contains("immutable")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_removed_immutable_assets_are_kept_and_html_never() {
        let policy = Retention::default();
        let immutable = Some("public, max-age=31536000, immutable");
        assert!(policy.keeps("assets/app-1a2b3c4d.js", immutable));
        assert!(!policy.keeps("index.html", immutable));
        assert!(!policy.keeps("about.txt", Some("no-cache")));
        let globbed = RawRetention {
            removed_grace: Some("1h".into()),
            keep_removed: Some(vec!["chunks/**".into()]),
            ..RawRetention::default()
        }
        .validate()
        .unwrap();
        assert!(globbed.keeps("chunks/a.js", Some("no-cache")));
        assert!(!globbed.keeps("assets/a.js", immutable));
        let off = RawRetention {
            removed_grace: Some("0s".into()),
            ..RawRetention::default()
        }
        .validate()
        .unwrap();
        assert!(!off.keeps("assets/app-1a2b3c4d.js", immutable));
    }
}
