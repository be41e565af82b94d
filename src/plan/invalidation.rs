//! CDN invalidation after a deploy, rollback or on demand (CloudFront).
//!
//! Invalidate exactly what visitors could have cached stale: updated, header-changed and
//! deleted keys (with the directory forms of an `index.html`), and created HTML (a
//! directory or SPA route may have been cached before it existed) — never newly created
//! fingerprinted assets, which nobody can have cached. Above a threshold, paths collapse
//! into wildcards, staying within CloudFront's in-progress limits (3,000 paths, 15
//! wildcards). The release id is the `CallerReference`, so retrying is idempotent.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plan::{Action, ActionKind};

/// CloudFront's in-progress limits per distribution.
pub const MAX_PATHS: usize = 3000;
pub const MAX_WILDCARDS: usize = 15;
/// Free invalidation paths per account per month, then the price per path (USD).
pub const FREE_PATHS_PER_MONTH: usize = 1000;
pub const PRICE_PER_PATH: f64 = 0.005;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Invalidation {
    pub paths: Vec<String>,
    /// Wildcard paths among them (each counts as one path for billing).
    pub wildcards: usize,
    /// Paths that were collapsed into wildcards.
    pub collapsed: bool,
}

impl Invalidation {
    /// One line for the proof block: the paths and what they may cost.
    pub fn describe(&self) -> String {
        let shown: Vec<&str> = self.paths.iter().take(12).map(String::as_str).collect();
        format!(
            "CDN: {} path(s) to invalidate{}: {}{} — the first {FREE_PATHS_PER_MONTH} paths a month are free, then ${PRICE_PER_PATH} each (at most ${:.3} here)",
            self.paths.len(),
            if self.collapsed {
                " (collapsed into wildcards)"
            } else {
                ""
            },
            shown.join(" "),
            if self.paths.len() > shown.len() {
                " …"
            } else {
                ""
            },
            self.worst_case_cost()
        )
    }

    /// What this costs at most, if the free monthly allowance is already used up.
    pub fn worst_case_cost(&self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "at most 3,000 paths")]
        let n = self.paths.len() as f64;
        n * PRICE_PER_PATH
    }
}

/// The URL paths under which visitors may have cached `key`.
fn url_forms(key: &str) -> Vec<String> {
    let mut out = vec![format!("/{}", crate::store::encode_key(key))];
    if let Some(dir) = key.strip_suffix("index.html") {
        if dir.is_empty() {
            out.push("/".into());
        } else {
            let d = crate::store::encode_key(dir.trim_end_matches('/'));
            out.push(format!("/{d}/"));
            out.push(format!("/{d}"));
        }
    }
    out
}

/// The minimal invalidation for a set of applied actions.
pub fn invalidation_for(actions: &[Action], threshold: usize) -> Option<Invalidation> {
    let cached_before = actions.iter().filter(|a| match a.kind {
        ActionKind::Update | ActionKind::HeaderUpdate | ActionKind::Delete => true,
        ActionKind::Create => crate::keys::is_html(&a.key),
    });
    invalidation_for_keys(cached_before.map(|a| a.key.as_str()), threshold)
}

/// The invalidation of every URL under which `keys` may be cached.
pub fn invalidation_for_keys<'a>(
    keys: impl Iterator<Item = &'a str>,
    threshold: usize,
) -> Option<Invalidation> {
    let paths: BTreeSet<String> = keys.flat_map(url_forms).collect();
    invalidation_of(paths.into_iter().collect(), threshold)
}

/// Paths as given, collapsed into wildcards when there are more than `threshold`.
pub fn invalidation_of(paths: Vec<String>, threshold: usize) -> Option<Invalidation> {
    if paths.is_empty() {
        return None;
    }
    let threshold = threshold.clamp(1, MAX_PATHS);
    let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
    if paths.len() <= threshold && wildcards <= MAX_WILDCARDS {
        return Some(Invalidation {
            paths,
            wildcards,
            collapsed: false,
        });
    }
    // Collapse by top-level directory: `/docs/a`, `/docs/b/c` → `/docs/*`; files at the
    // root stay exact. If that is still too many, invalidate everything.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in paths {
        let top = p[1..].split_once('/').map(|(d, _)| d.to_owned());
        groups.entry(top.unwrap_or_default()).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut wildcards = 0;
    for (dir, members) in groups {
        if dir.is_empty() || members.len() == 1 {
            out.extend(members);
        } else {
            // `/{dir}` itself (a directory form) sorts into the root group and stays
            // exact when it was asked for; `/{dir}/*` does not cover it.
            out.push(format!("/{dir}/*"));
            wildcards += 1;
        }
    }
    out.sort();
    out.dedup();
    if out.len() > threshold || wildcards > MAX_WILDCARDS {
        return Some(Invalidation {
            paths: vec!["/*".into()],
            wildcards: 1,
            collapsed: true,
        });
    }
    Some(Invalidation {
        paths: out,
        wildcards,
        collapsed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Entry;
    use crate::plan::RemoteObject;

    fn action(key: &str, kind: ActionKind) -> Action {
        let entry = Entry {
            sha256: "s".into(),
            size: 1,
            content_type: None,
            cache_control: None,
            content_encoding: None,
            etag: String::new(),
        };
        let remote = RemoteObject {
            size: 1,
            etag: "e".into(),
            sha256: Some("r".into()),
        };
        Action {
            key: key.into(),
            kind,
            reason: String::new(),
            local: (kind != ActionKind::Delete).then_some(entry),
            remote: (kind != ActionKind::Create).then_some(remote),
        }
    }

    #[test]
    fn minimal_paths() {
        let actions = [
            action("index.html", ActionKind::Update),
            action("docs/index.html", ActionKind::HeaderUpdate),
            action("assets/app.3f9a.js", ActionKind::Create),
            action("new/page.html", ActionKind::Create),
            action("old.css", ActionKind::Delete),
            action("a b.html", ActionKind::Update),
        ];
        let inv = invalidation_for(&actions, 100).unwrap();
        assert_eq!(
            inv.paths,
            [
                "/",
                "/a%20b.html",
                "/docs",
                "/docs/",
                "/docs/index.html",
                "/index.html",
                "/new/page.html",
                "/old.css"
            ]
        );
        assert!(!inv.collapsed);
        assert!(invalidation_for(&[action("assets/x.js", ActionKind::Create)], 100).is_none());
    }

    #[test]
    fn many_paths_collapse_within_the_limits() {
        let actions: Vec<Action> = (0..5000)
            .map(|i| {
                action(
                    &format!("section{}/page{i}.html", i % 10),
                    ActionKind::Update,
                )
            })
            .collect();
        let inv = invalidation_for(&actions, 100).unwrap();
        assert!(inv.collapsed);
        assert!(
            inv.paths.len() <= 100 && inv.wildcards <= MAX_WILDCARDS,
            "{inv:?}"
        );
        assert_eq!(inv.wildcards, 10);
        assert!(inv.paths.contains(&"/section3/*".to_owned()));

        let actions: Vec<Action> = (0..5000)
            .map(|i| action(&format!("s{i}/index.html"), ActionKind::Update))
            .collect();
        let inv = invalidation_for(&actions, 100).unwrap();
        assert_eq!(inv.paths, ["/*"], "too many directories: everything");
    }
}
