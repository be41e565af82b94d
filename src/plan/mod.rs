//! The plan: per key what a deploy (or rollback) would do and why, plus every guard's
//! verdict and the identities of what it saw (HEAD ETag, listing digest, local digest).
//!
//! The plan is data. Reasons are for people and never drive apply; apply reads only the
//! actions, the planned manifest and the ETags seen. This module is pure: gathering
//! the facts (I/O) happens in `commands`, so the diff and guards are table-tested and
//! property-tested here.

pub mod base;
pub mod build;
mod diff;
pub mod facts;
pub mod guards;
pub mod invalidation;
pub mod skew;
pub mod workcopy;

pub use diff::{Diff, FileConflict, FileConflictKind, diff, drift};
pub use invalidation::Invalidation;
pub use skew::Settled;

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::git::GitInfo;
use crate::ledger::{Actor, Entry, Head, Manifest, ReleaseRef};
use crate::site::ScanStats;

pub const PLAN_FORMAT: u32 = 1;

/// Where apply gets a key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A file of the local site (re-hashed at apply; refused if it changed).
    Local(PathBuf),
    /// The content-addressed copy in the environment's state (`objects/<sha256>`).
    Object,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    pub entry: Entry,
    pub source: Source,
}

/// A release's manifest as a desired state whose bytes come from the store's own
/// `objects/` (rollback, promotion).
pub fn desired_from_objects(manifest: &Manifest) -> BTreeMap<String, Desired> {
    manifest
        .iter()
        .map(|(k, e)| {
            let mut entry = e.clone();
            entry.etag.clear();
            (
                k.clone(),
                Desired {
                    entry,
                    source: Source::Object,
                },
            )
        })
        .collect()
}

/// What the store actually holds at a key, as read at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteObject {
    pub size: u64,
    pub etag: String,
    /// Content hash: from the live manifest when the ETag matches it, else computed
    /// from the bytes.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Create,
    Update,
    HeaderUpdate,
    Delete,
}

impl ActionKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::HeaderUpdate => "headers",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub key: String,
    pub kind: ActionKind,
    pub reason: String,
    /// What will be written (absent for deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<Entry>,
    /// What the store held when planned (absent for creates); writes are conditional on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// The store's bytes differ from the live release's.
    Changed,
    /// In the store, not in the live release.
    Added,
    /// In the live release, not in the store.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub key: String,
    pub kind: DriftKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guard {
    /// The site itself is unusable (symlink leaving it, bad names, empty).
    Site,
    Protected,
    Hold,
    Lock,
    /// An earlier apply was interrupted and must be finished first.
    Pending,
    Drift,
    StaleBase,
    /// Per-file: the deploy would revert a newer live file, or both sides changed it.
    Revert,
    Feature,
    Deletes,
    /// The store ignores conditional writes, so compare-and-swap cannot be trusted.
    UnsafeStore,
    /// A promotion of a release its source environment has not verified.
    Unverified,
    /// A file live serves as cacheable for a long time (`immutable`, or a max-age of 30
    /// days or more) would change its bytes under the same name.
    Immutable,
    /// A canary is running: it is finished or aborted before live changes again.
    Canary,
    /// The release's rules need something of the edge that only `edge --apply` sets up
    /// (the cache behaviors CloudFront checks signed cookies on).
    Edge,
}

impl Guard {
    /// Guards a person may override with `--force GUARD`.
    pub const FORCEABLE: [Self; 8] = [
        Self::Drift,
        Self::StaleBase,
        Self::Revert,
        Self::Feature,
        Self::Deletes,
        Self::Immutable,
        Self::UnsafeStore,
        Self::Unverified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Site => "site",
            Self::Protected => "protected",
            Self::Hold => "hold",
            Self::Lock => "lock",
            Self::Pending => "pending",
            Self::Drift => "drift",
            Self::StaleBase => "stale-base",
            Self::Revert => "revert",
            Self::Feature => "feature",
            Self::Deletes => "deletes",
            Self::UnsafeStore => "unsafe-store",
            Self::Unverified => "unverified",
            Self::Immutable => "immutable",
            Self::Canary => "canary",
            Self::Edge => "edge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::FORCEABLE.into_iter().find(|g| g.name() == s)
    }
}

/// A guard's refusal: what is wrong, who and what it concerns, how to resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub guard: Guard,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseRef>,
    pub resolve: String,
}

/// The identities of what the plan saw; a saved plan is refused when any moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub head: Head,
    pub listing_digest: String,
    pub local_digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub create: usize,
    pub update: usize,
    pub header_update: usize,
    pub delete: usize,
    pub unchanged: usize,
    /// Bytes that will be uploaded (creates and updates).
    pub upload_bytes: u64,
}

impl std::fmt::Display for Totals {
    /// One line: what every change does, and the bytes to upload.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} header-only, {} to delete, {} unchanged; {} to upload",
            self.create,
            self.update,
            self.header_update,
            self.delete,
            self.unchanged,
            crate::text::bytes(self.upload_bytes)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PlanKind {
    Deploy,
    Rollback {
        to: String,
    },
    /// FROM's live release, copied byte for byte.
    Promote {
        from: String,
        release: String,
    },
    /// A release for preview `name` only: live is not touched.
    Preview {
        name: String,
        expires_at: Timestamp,
        /// The name as given, when it had to change to become a DNS label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        given: Option<String>,
    },
    /// Preview `name`'s release `release`, made live as it was reviewed.
    FromPreview {
        name: String,
        release: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub kind: PlanKind,
    pub env: String,
    pub store: String,
    pub created_at: Timestamp,
    pub actor: Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub live: Option<ReleaseRef>,
    pub base: Option<ReleaseRef>,
    pub new_release: String,
    pub actions: Vec<Action>,
    pub totals: Totals,
    pub drift: Vec<Drift>,
    /// Guards that block this plan.
    pub refusals: Vec<Refusal>,
    /// Guards that would have blocked but were overridden with `--force`.
    pub overrides: Vec<Refusal>,
    pub seen: Seen,
    /// The complete manifest of the release this plan would make live.
    pub manifest: BTreeMap<String, Desired>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanStats>,
    /// CDN paths to invalidate once applied (environments with a `cdn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<crate::plan::invalidation::Invalidation>,
    /// A promotion: every release of the source environment this one has not had yet,
    /// newest first — what the promotion batches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch: Vec<ReleaseRef>,
    /// Removed keys the new release keeps served for open pages (skew protection).
    #[serde(default)]
    pub retention: crate::plan::skew::Settled,
    /// The name the new release gets (`--tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Every guard this plan ran, in order: with `refusals` and `overrides`, each one's
    /// verdict ([`Plan::verdicts`]).
    #[serde(default)]
    pub checked: Vec<Guard>,
    /// A canary (`deploy --canary N`): the release goes to N% of visitors, live stays
    /// live for the others, until `driftless canary ENV --finish` or `--abort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<u8>,
    /// The `[edge]` rules the new release carries: they go live with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<crate::config::EdgeRules>,
    /// How they differ from live's, one line each (empty: the same rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_changes: Vec<String>,
    /// What of those changes does not move with the switch, where it does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge_notes: Vec<String>,
}

/// What one guard said about a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Passed,
    Refused,
    Overridden,
}

impl PlanKind {
    /// The operation's name: the lock's, the journal's and the notification's.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback { .. } => "rollback",
            Self::Promote { .. } => "promote",
            Self::Preview { .. } => "preview",
            Self::FromPreview { .. } => "deploy",
        }
    }

    /// What is being made live, in words ("rollback to R", "promotion of staging release R").
    pub fn describe(&self) -> String {
        match self {
            Self::Deploy => "deploy".to_owned(),
            Self::Rollback { to } => format!("rollback to {to}"),
            Self::Promote { from, release } => format!("promotion of {from} release {release}"),
            Self::Preview { name, .. } => format!("preview {name}"),
            Self::FromPreview { name, release } => format!("deploy of preview {name} ({release})"),
        }
    }
}

impl Plan {
    /// Nothing to write: no action, and no key newly kept for open pages (which changes
    /// the release even though no byte moves).
    /// Nothing to write: no file, no kept asset, and the same `[edge]` rules as live.
    pub fn is_noop(&self) -> bool {
        self.actions.is_empty() && self.retention.newly == 0 && self.edge_changes.is_empty()
    }

    pub fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// Each guard the plan ran and what it said, in the order they ran.
    pub fn verdicts(&self) -> Vec<(Guard, Verdict)> {
        let mut out: Vec<Guard> = self.checked.clone();
        for r in self.refusals.iter().chain(&self.overrides) {
            if !out.contains(&r.guard) {
                out.push(r.guard);
            }
        }
        out.into_iter()
            .map(|g| {
                let verdict = if self.refusals.iter().any(|r| r.guard == g) {
                    Verdict::Refused
                } else if self.overrides.iter().any(|r| r.guard == g) {
                    Verdict::Overridden
                } else {
                    Verdict::Passed
                };
                (g, verdict)
            })
            .collect()
    }
}

/// The guards a plan of `kind` runs, in the order the proof block lists them.
pub fn guards_for(kind: &PlanKind) -> Vec<Guard> {
    use Guard::*;
    match kind {
        PlanKind::Deploy => vec![
            Site, Protected, Hold, Lock, Pending, Canary, Drift, StaleBase, Revert, Feature,
            Deletes, Immutable,
        ],
        PlanKind::Rollback { .. } => vec![Lock, Pending, Canary, Drift],
        PlanKind::Promote { .. } => {
            vec![Hold, Lock, Pending, Canary, Drift, Unverified, Immutable]
        }
        // Live is not touched: only what the build itself may be, and the lock.
        PlanKind::Preview { .. } => vec![Site, Lock, Pending, Feature],
        // Verified at the preview's URL: that is its gate, protected or not.
        PlanKind::FromPreview { .. } => {
            vec![Hold, Lock, Pending, Canary, Drift, Unverified, Immutable]
        }
    }
}

pub fn totals(actions: &[Action], unchanged: usize) -> Totals {
    let mut t = Totals {
        unchanged,
        ..Totals::default()
    };
    for a in actions {
        match a.kind {
            ActionKind::Create => t.create += 1,
            ActionKind::Update => t.update += 1,
            ActionKind::HeaderUpdate => t.header_update += 1,
            ActionKind::Delete => t.delete += 1,
        }
        if matches!(a.kind, ActionKind::Create | ActionKind::Update) {
            t.upload_bytes += a.local.as_ref().map_or(0, |e| e.size);
        }
    }
    t
}

/// Digest of a listing: key, size and ETag of every site object.
pub fn listing_digest(remote: &BTreeMap<String, RemoteObject>) -> String {
    let mut h = Sha256::new();
    for (k, r) in remote {
        h.update(format!("{k}\t{}\t{}\n", r.size, r.etag));
    }
    hex::encode(h.finalize())
}

/// Digest of the desired site: key, content and headers.
pub fn local_digest(desired: &BTreeMap<String, Desired>) -> String {
    let mut h = Sha256::new();
    for (k, d) in desired {
        let e = &d.entry;
        h.update(format!(
            "{k}\t{}\t{}\t{:?}\t{:?}\t{:?}\n",
            e.sha256, e.size, e.content_type, e.cache_control, e.content_encoding
        ));
    }
    hex::encode(h.finalize())
}
