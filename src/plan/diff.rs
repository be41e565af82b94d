//! The three-way diff: desired (the new site), base (what it was derived from), live
//! (the live manifest) and the store (what it actually holds) give the actions, the drift
//! and the per-file conflicts. Pure: table- and property-tested here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Action, ActionKind, Desired, Drift, DriftKind, RemoteObject};
use crate::ledger::{Entry, Manifest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileConflictKind {
    /// Local still has the base's content; live has newer content.
    WouldRevert,
    /// Local and live both changed the key since the base, differently.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConflict {
    pub key: String,
    pub kind: FileConflictKind,
}

/// The result of comparing desired, base, live and the store.
#[derive(Debug, Default)]
pub struct Diff {
    pub actions: Vec<Action>,
    pub unchanged: usize,
    pub drift: Vec<Drift>,
    pub conflicts: Vec<FileConflict>,
    /// Keys left unchanged and the ETag the store has for each: the new release's
    /// manifest is the desired state with these filled in ([`Diff::manifest`]).
    pub etags: Vec<(String, String)>,
}

fn sha_of(e: Option<&Entry>) -> Option<&str> {
    e.map(|e| e.sha256.as_str())
}

/// Three-way diff. `desired` is the new site, `base` the release it was derived from
/// (`None`: unknown), `live` the live manifest and `remote` what the store holds.
///
/// Actions compare desired with the store (so writes are conditional on what was
/// seen); drift compares the store with live; conflicts compare desired, base and live.
pub fn diff(
    desired: &BTreeMap<String, Desired>,
    base: Option<&Manifest>,
    live: Option<&Manifest>,
    remote: &BTreeMap<String, RemoteObject>,
) -> Diff {
    let empty = Manifest::new();
    let live_m = live.unwrap_or(&empty);
    let keys: BTreeSet<&String> = desired
        .keys()
        .chain(live_m.keys())
        .chain(remote.keys())
        .collect();
    let mut out = Diff::default();
    for key in keys {
        let d = desired.get(key);
        let v = live_m.get(key);
        let r = remote.get(key);

        if let Some(kind) = drift_kind(v, r) {
            out.drift.push(Drift {
                key: key.clone(),
                kind,
            });
        }

        // Per-file three-way check against the base, when it is known.
        let d_sha = d.map(|d| d.entry.sha256.as_str());
        if let Some(base) = base
            && d_sha != sha_of(v)
        {
            let b_sha = sha_of(base.get(key));
            if b_sha != sha_of(v) {
                let kind = if d_sha == b_sha {
                    FileConflictKind::WouldRevert
                } else {
                    FileConflictKind::Conflict
                };
                out.conflicts.push(FileConflict {
                    key: key.clone(),
                    kind,
                });
            }
        }

        // The action: desired against what the store holds.
        let remote_entry_headers =
            |r: &RemoteObject| v.filter(|v| Some(v.sha256.as_str()) == r.sha256.as_deref());
        let action = match (d, r) {
            (None, None) => None,
            (Some(_), None) => Some((
                ActionKind::Create,
                if v.is_some() {
                    "missing from the store: restored".to_owned()
                } else {
                    "new file".to_owned()
                },
            )),
            (None, Some(_)) => Some((
                ActionKind::Delete,
                if v.is_some() {
                    "no longer in the site".to_owned()
                } else {
                    "in the store but not in the site".to_owned()
                },
            )),
            (Some(d), Some(r)) if r.sha256.as_deref() == Some(d.entry.sha256.as_str()) => {
                match remote_entry_headers(r) {
                    Some(v) if v.same_headers(&d.entry) => None,
                    Some(v) => Some((ActionKind::HeaderUpdate, header_change(v, &d.entry))),
                    None => Some((
                        ActionKind::HeaderUpdate,
                        "same bytes, headers not known to driftless".into(),
                    )),
                }
            }
            (Some(_), Some(_)) => Some((ActionKind::Update, "content changed".to_owned())),
        };
        match action {
            None => {
                out.unchanged += 1;
                if let (Some(_), Some(r)) = (d, r) {
                    out.etags.push((key.clone(), r.etag.clone()));
                }
            }
            Some((kind, reason)) => {
                out.actions.push(Action {
                    key: key.clone(),
                    kind,
                    reason,
                    local: d.map(|d| d.entry.clone()),
                    remote: r.cloned(),
                });
            }
        }
    }
    out
}

/// How the store's object at a key differs from the live release's entry, if at all.
fn drift_kind(live: Option<&Entry>, store: Option<&RemoteObject>) -> Option<DriftKind> {
    match (live, store) {
        (Some(_), None) => Some(DriftKind::Missing),
        (None, Some(_)) => Some(DriftKind::Added),
        (Some(v), Some(r)) if r.sha256.as_deref() != Some(v.sha256.as_str()) => {
            Some(DriftKind::Changed)
        }
        _ => None,
    }
}

impl Diff {
    /// The new release's manifest: the desired state (moved, not copied) with the
    /// store's ETags for the keys left unchanged.
    pub fn manifest(
        &mut self,
        mut desired: BTreeMap<String, Desired>,
    ) -> BTreeMap<String, Desired> {
        for (k, etag) in std::mem::take(&mut self.etags) {
            if let Some(d) = desired.get_mut(&k) {
                d.entry.etag = etag;
            }
        }
        desired
    }
}

/// Drift alone: every key where the store differs from the live manifest.
pub fn drift(live: Option<&Manifest>, remote: &BTreeMap<String, RemoteObject>) -> Vec<Drift> {
    let empty = Manifest::new();
    let live = live.unwrap_or(&empty);
    let keys: BTreeSet<&String> = live.keys().chain(remote.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            drift_kind(live.get(key), remote.get(key)).map(|kind| Drift {
                key: key.clone(),
                kind,
            })
        })
        .collect()
}

fn header_change(from: &Entry, to: &Entry) -> String {
    let mut parts = Vec::new();
    let mut cmp =
        |name: &str, a: &Option<crate::ledger::Header>, b: &Option<crate::ledger::Header>| {
            if a != b {
                parts.push(format!(
                    "{name}: {} → {}",
                    a.as_deref().unwrap_or("(none)"),
                    b.as_deref().unwrap_or("(none)")
                ));
            }
        };
    cmp("content-type", &from.content_type, &to.content_type);
    cmp("cache-control", &from.cache_control, &to.cache_control);
    cmp(
        "content-encoding",
        &from.content_encoding,
        &to.content_encoding,
    );
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Source;
    use crate::plan::totals;
    use proptest::prelude::*;

    fn entry(sha: &str) -> Entry {
        Entry {
            sha256: sha.into(),
            size: sha.len() as u64,
            content_type: Some("text/html".into()),
            cache_control: None,
            content_encoding: None,
            etag: format!("e-{sha}"),
        }
    }

    fn desired(files: &[(&str, &str)]) -> BTreeMap<String, Desired> {
        files
            .iter()
            .map(|(k, s)| {
                let mut e = entry(s);
                e.etag.clear();
                (
                    (*k).to_owned(),
                    Desired {
                        entry: e,
                        source: Source::Object,
                    },
                )
            })
            .collect()
    }

    fn manifest(files: &[(&str, &str)]) -> Manifest {
        files
            .iter()
            .map(|(k, s)| ((*k).to_owned(), entry(s)))
            .collect()
    }

    fn remote_of(m: &Manifest) -> BTreeMap<String, RemoteObject> {
        m.iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    RemoteObject {
                        size: e.size,
                        etag: e.etag.clone(),
                        sha256: Some(e.sha256.clone()),
                    },
                )
            })
            .collect()
    }

    struct Case {
        name: &'static str,
        local: &'static [(&'static str, &'static str)],
        base: Option<&'static [(&'static str, &'static str)]>,
        live: &'static [(&'static str, &'static str)],
        actions: &'static [(&'static str, ActionKind)],
        conflicts: &'static [(&'static str, FileConflictKind)],
    }

    #[test]
    fn three_way_table() {
        use ActionKind::*;
        use FileConflictKind::*;
        let cases = [
            Case {
                name: "first deploy",
                local: &[("a", "1")],
                base: None,
                live: &[],
                actions: &[("a", Create)],
                conflicts: &[],
            },
            Case {
                name: "no-op",
                local: &[("a", "1")],
                base: Some(&[("a", "1")]),
                live: &[("a", "1")],
                actions: &[],
                conflicts: &[],
            },
            Case {
                name: "local edit",
                local: &[("a", "2")],
                base: Some(&[("a", "1")]),
                live: &[("a", "1")],
                actions: &[("a", Update)],
                conflicts: &[],
            },
            Case {
                name: "local delete",
                local: &[],
                base: Some(&[("a", "1")]),
                live: &[("a", "1")],
                actions: &[("a", Delete)],
                conflicts: &[],
            },
            Case {
                name: "stale copy reverts newer live",
                local: &[("a", "1")],
                base: Some(&[("a", "1")]),
                live: &[("a", "2")],
                actions: &[("a", Update)],
                conflicts: &[("a", WouldRevert)],
            },
            Case {
                name: "both changed",
                local: &[("a", "3")],
                base: Some(&[("a", "1")]),
                live: &[("a", "2")],
                actions: &[("a", Update)],
                conflicts: &[("a", Conflict)],
            },
            Case {
                name: "both made the same change",
                local: &[("a", "2")],
                base: Some(&[("a", "1")]),
                live: &[("a", "2")],
                actions: &[],
                conflicts: &[],
            },
            Case {
                name: "stale copy lacks a file live added",
                local: &[],
                base: Some(&[]),
                live: &[("n", "1")],
                actions: &[("n", Delete)],
                conflicts: &[("n", WouldRevert)],
            },
            Case {
                name: "stale copy resurrects a file live deleted",
                local: &[("o", "1")],
                base: Some(&[("o", "1")]),
                live: &[],
                actions: &[("o", Create)],
                conflicts: &[("o", WouldRevert)],
            },
            Case {
                name: "unrelated files are fine",
                local: &[("a", "2"), ("b", "1")],
                base: Some(&[("a", "1"), ("b", "1")]),
                live: &[("a", "1"), ("b", "1")],
                actions: &[("a", Update)],
                conflicts: &[],
            },
        ];
        for c in cases {
            let live = manifest(c.live);
            let base = c.base.map(manifest);
            let d = diff(
                &desired(c.local),
                base.as_ref(),
                Some(&live),
                &remote_of(&live),
            );
            let got: Vec<_> = d.actions.iter().map(|a| (a.key.as_str(), a.kind)).collect();
            assert_eq!(got, c.actions, "{}: actions", c.name);
            let got: Vec<_> = d
                .conflicts
                .iter()
                .map(|f| (f.key.as_str(), f.kind))
                .collect();
            assert_eq!(got, c.conflicts, "{}: conflicts", c.name);
            assert!(d.drift.is_empty(), "{}: no drift", c.name);
        }
    }

    #[test]
    fn drift_is_seen_and_writes_target_what_the_store_holds() {
        let live = manifest(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let mut remote = remote_of(&live);
        remote.get_mut("a").unwrap().sha256 = Some("x".into());
        remote.get_mut("a").unwrap().etag = "e-x".into();
        remote.remove("b");
        remote.insert(
            "z".into(),
            RemoteObject {
                size: 1,
                etag: "e-z".into(),
                sha256: Some("z".into()),
            },
        );
        let d = diff(
            &desired(&[("a", "1"), ("b", "1"), ("c", "1")]),
            Some(&live),
            Some(&live),
            &remote,
        );
        let drift: Vec<_> = d.drift.iter().map(|x| (x.key.as_str(), x.kind)).collect();
        assert_eq!(
            drift,
            [
                ("a", DriftKind::Changed),
                ("b", DriftKind::Missing),
                ("z", DriftKind::Added)
            ]
        );
        let a = d.actions.iter().find(|a| a.key == "a").unwrap();
        assert_eq!(a.kind, ActionKind::Update);
        assert_eq!(
            a.remote.as_ref().unwrap().etag,
            "e-x",
            "conditional on the drifted ETag"
        );
    }

    #[test]
    fn header_only_change_is_not_an_upload() {
        let live = manifest(&[("a", "1")]);
        let mut want = desired(&[("a", "1")]);
        want.get_mut("a").unwrap().entry.cache_control = Some("no-cache".into());
        let d = diff(&want, Some(&live), Some(&live), &remote_of(&live));
        assert_eq!(d.actions.len(), 1);
        assert_eq!(d.actions[0].kind, ActionKind::HeaderUpdate);
        assert!(
            d.actions[0].reason.contains("cache-control"),
            "{}",
            d.actions[0].reason
        );
        assert_eq!(totals(&d.actions, d.unchanged).upload_bytes, 0);
    }

    fn arb_state() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned),
            prop::sample::select(vec!["1", "2", "3"]).prop_map(str::to_owned),
            0..4,
        )
    }

    fn to_manifest(s: &BTreeMap<String, String>) -> Manifest {
        s.iter().map(|(k, v)| (k.clone(), entry(v))).collect()
    }

    proptest! {
        /// For any local / base / live / store states: every write or delete the plan
        /// makes to an existing key is conditional on exactly the ETag the store showed,
        /// and every key whose live content the local copy would change without the
        /// base agreeing with live is flagged (so it is refused unless forced).
        #[test]
        fn no_plan_overwrites_what_it_did_not_see(
            local in arb_state(), base in arb_state(), live in arb_state(), store in arb_state()
        ) {
            let live_m = to_manifest(&live);
            let base_m = to_manifest(&base);
            let store_m: Manifest = store.iter().map(|(k, v)| {
                let mut e = entry(v);
                e.etag = format!("store-{k}-{v}");
                (k.clone(), e)
            }).collect();
            let remote = remote_of(&store_m);
            let want: BTreeMap<String, Desired> = local.iter().map(|(k, v)| {
                let mut e = entry(v); e.etag.clear();
                (k.clone(), Desired { entry: e, source: Source::Object })
            }).collect();
            let d = diff(&want, Some(&base_m), Some(&live_m), &remote);
            for a in &d.actions {
                match (a.kind, remote.get(&a.key)) {
                    (ActionKind::Create, r) => prop_assert!(r.is_none(), "create over an existing key {}", a.key),
                    (_, Some(r)) => prop_assert_eq!(a.remote.as_ref(), Some(r), "write not conditional on what was seen"),
                    (_, None) => prop_assert!(false, "update/delete of a key the store does not hold"),
                }
                let changes_live = local.get(&a.key) != live.get(&a.key);
                let base_is_live = base.get(&a.key) == live.get(&a.key);
                if changes_live && !base_is_live {
                    prop_assert!(d.conflicts.iter().any(|c| c.key == a.key), "unflagged revert of {}", a.key);
                }
                let store_is_live = store.get(&a.key) == live.get(&a.key);
                if !store_is_live {
                    prop_assert!(d.drift.iter().any(|x| x.key == a.key), "unflagged drift at {}", a.key);
                }
            }
            // Keys the plan leaves alone must already hold the desired content.
            for (k, v) in &local {
                if !d.actions.iter().any(|a| &a.key == k) {
                    prop_assert_eq!(store.get(k), Some(v));
                }
            }
        }
    }
}
