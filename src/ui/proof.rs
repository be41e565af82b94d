//! A plan for people and machines: the proof block (every change with local and remote
//! size and SHA-256, the releases involved, every guard's verdict), refusals, and the
//! plan as `--json` shows it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Output, Style};
use crate::ledger::ReleaseRef;
use crate::plan::{Action, ActionKind, Plan, PlanKind, Refusal};
use crate::text::{bytes, esc};

fn release_line(r: Option<&ReleaseRef>) -> String {
    r.map_or_else(
        || "(none)".to_owned(),
        |r| {
            let msg = r
                .message
                .as_deref()
                .map(|m| format!("  \"{}\"", esc(m)))
                .unwrap_or_default();
            format!("{r}{msg}")
        },
    )
}

pub(crate) fn refusals(out: &Output, list: &[Refusal]) -> String {
    let mut s = String::new();
    for r in list {
        let _ = writeln!(
            s,
            "  {} [{}] {}",
            out.paint("✗", Style::Bad),
            r.guard.name(),
            esc(&r.message)
        );
        let _ = writeln!(s, "      → {}", esc(&r.resolve));
    }
    s
}

/// The proof block: every change with local and remote size and SHA-256, totals, the
/// releases involved, and every guard's verdict.
pub(crate) fn proof_block(out: &Output, plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {}{} → {} ({})",
        out.paint("Plan:", Style::Strong),
        plan.kind.describe(),
        plan.canary
            .map(|p| format!(" as a canary, to {p}% of visitors"))
            .unwrap_or_default(),
        out.paint(&plan.env, Style::Strong),
        plan.store
    );
    let _ = writeln!(s, "  live  {}", release_line(plan.live.as_ref()));
    let base = match (&plan.base, &plan.live) {
        (Some(b), Some(l)) if b.id == l.id => "same as live".to_owned(),
        (b, _) => release_line(b.as_ref()),
    };
    if plan.kind == PlanKind::Deploy {
        let _ = writeln!(s, "  base  {base}");
    }
    if !plan.is_noop() {
        let _ = writeln!(s, "  new   {}", plan.new_release);
    }
    if let PlanKind::Promote { from, .. } = &plan.kind {
        let _ = writeln!(
            s,
            "  batch {} release(s) of {from} that {} has not had:",
            plan.batch.len(),
            plan.env
        );
        for r in &plan.batch {
            let _ = writeln!(s, "        {}", release_line(Some(r)));
        }
    }
    if let Some(g) = &plan.git {
        let _ = writeln!(
            s,
            "  from  commit {}{}",
            g.commit,
            if g.dirty {
                " (uncommitted changes)"
            } else {
                ""
            }
        );
    }
    if let Some(st) = &plan.scan {
        let excluded = if st.excluded.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = st
                .excluded
                .iter()
                .take(5)
                .map(|n| esc(n).into_owned())
                .collect();
            format!(
                "; {} excluded by default: {}{}",
                st.excluded.len(),
                names.join(", "),
                if st.excluded.len() > 5 { ", …" } else { "" }
            )
        };
        let _ = writeln!(
            s,
            "  site  {} files, {} ({} hashed, {} from cache){excluded}",
            st.files,
            bytes(st.bytes),
            st.hashed,
            st.cached
        );
    }
    s.push('\n');

    // What matters first: the totals, the CDN cost, and every guard's verdict.
    let _ = writeln!(s, "{}", plan.totals);
    let verdicts = plan.verdicts();
    if !verdicts.is_empty() {
        let marks: Vec<String> = verdicts
            .iter()
            .map(|(g, v)| match v {
                crate::plan::Verdict::Passed => {
                    format!("{} {}", g.name(), out.paint("✓", Style::Good))
                }
                crate::plan::Verdict::Refused => {
                    format!("{} {}", g.name(), out.paint("✗", Style::Bad))
                }
                crate::plan::Verdict::Overridden => {
                    format!("{} {}", g.name(), out.paint("! forced", Style::Warn))
                }
            })
            .collect();
        let _ = writeln!(s, "guards: {}", marks.join("  "));
    }
    if !plan.retention.kept.is_empty() {
        kept_lines(out, plan, &mut s);
    }
    if let Some(inv) = &plan.invalidation {
        let _ = writeln!(s, "{}", inv.describe());
    }
    if !plan.edge_changes.is_empty() {
        let _ = writeln!(
            s,
            "\n{} (they go live with the release):",
            out.paint("Edge rules change", Style::Strong)
        );
        for c in &plan.edge_changes {
            let _ = writeln!(s, "  {}", esc(c));
        }
        for n in &plan.edge_notes {
            let _ = writeln!(s, "  {} {}", out.paint("note:", Style::Warn), esc(n));
        }
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            s,
            "\n{} (the store differs from the live release):",
            out.paint("Drift", Style::Warn)
        );
        for d in plan
            .drift
            .iter()
            .take(if out.full { usize::MAX } else { CAP })
        {
            let _ = writeln!(
                s,
                "  {:<8} {}",
                format!("{:?}", d.kind).to_lowercase(),
                esc(&d.key)
            );
        }
        if !out.full && plan.drift.len() > CAP {
            let _ = writeln!(
                s,
                "  … and {} more (`--full` lists all)",
                plan.drift.len() - CAP
            );
        }
    }
    if !plan.overrides.is_empty() {
        let _ = writeln!(
            s,
            "\n{}",
            out.paint("Overridden guards (journalled):", Style::Warn)
        );
        for r in &plan.overrides {
            let _ = writeln!(s, "  ! [{}] {}", r.guard.name(), esc(&r.message));
        }
    }
    if plan.refused() {
        let _ = writeln!(
            s,
            "\n{}",
            out.paint("REFUSED — nothing will be changed:", Style::Bad)
        );
        s.push_str(&refusals(out, &plan.refusals));
    }

    if !plan.actions.is_empty() {
        s.push('\n');
        // In a GitHub log, the per-file listing folds away under one line.
        let folded = out.github && plan.actions.len() > CAP;
        if folded {
            let _ = writeln!(s, "::group::{} changes", plan.actions.len());
        }
        changes(out, plan, &mut s);
        if folded {
            let _ = writeln!(s, "::endgroup::");
        }
    }
    if plan.is_noop() && !plan.refused() {
        let _ = writeln!(
            s,
            "\nNothing to do: {} already serves exactly this{}.",
            plan.env,
            plan.live
                .as_ref()
                .map(|l| format!(" (release {})", l.id))
                .unwrap_or_default()
        );
    }
    s
}

/// Removed assets kept served for pages already open, and until when.
fn kept_lines(out: &Output, plan: &Plan, s: &mut String) {
    let kept = &plan.retention.kept;
    let newly: Vec<(&String, &crate::ledger::Kept)> = kept
        .iter()
        .filter(|(_, k)| k.removed_in == plan.new_release)
        .collect();
    if let Some((_, first)) = newly.first() {
        let _ = writeln!(
            s,
            "{} removed asset(s) kept for open pages until {} (deleted by the first deploy after):",
            newly.len(),
            crate::text::short_time(first.until)
        );
        let shown = if out.full { usize::MAX } else { CAP };
        for (key, _) in newly.iter().take(shown) {
            let _ = writeln!(s, "  {:<8} {}", out.paint("keep", Style::Dim), esc(key));
        }
        if newly.len() > shown {
            let _ = writeln!(
                s,
                "  … and {} more (`--full` lists all)",
                newly.len() - shown
            );
        }
    }
    let carried = kept.len() - newly.len();
    if carried > 0 {
        let until = kept
            .values()
            .filter(|k| k.removed_in != plan.new_release)
            .map(|k| k.until)
            .min()
            .map(crate::text::short_time)
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{carried} asset(s) removed earlier still kept for open pages (first grace ends {until})"
        );
    }
}

/// Per-file lines a person can read: every change with its proof when there are few (or
/// with `--full`); otherwise grouped by action and directory, with a few examples.
fn changes(out: &Output, plan: &Plan, s: &mut String) {
    // The two sides of each change, named for what they are.
    let (new_side, old_side) = match &plan.kind {
        PlanKind::Deploy => ("local".to_owned(), "remote".to_owned()),
        PlanKind::FromPreview { name, release } => (
            format!("preview {name} {release}"),
            plan.live
                .as_ref()
                .map_or_else(|| "live".to_owned(), |l| format!("live {}", l.id)),
        ),
        // What the preview shows against what live serves.
        PlanKind::Preview { name, .. } => (
            name.clone(),
            plan.live
                .as_ref()
                .map_or_else(|| "live".to_owned(), |l| format!("live {}", l.id)),
        ),
        PlanKind::Rollback { to } => (
            to.clone(),
            plan.live
                .as_ref()
                .map_or_else(|| "store".to_owned(), |l| l.id.clone()),
        ),
        PlanKind::Promote { from, release } => (
            format!("{from} {release}"),
            plan.live.as_ref().map_or_else(
                || format!("{} store", plan.env),
                |l| format!("{} {}", plan.env, l.id),
            ),
        ),
    };
    let sides = Sides {
        new: &new_side,
        old: &old_side,
        width: new_side.len().max(old_side.len()),
    };
    if out.full || plan.actions.len() <= CAP * 2 {
        for a in &plan.actions {
            action_lines(out, a, &sides, s);
        }
        return;
    }
    let _ = writeln!(
        s,
        "{} changes, grouped (`--full` lists every file with its proof; so does `plan --out FILE`):",
        plan.actions.len()
    );
    for kind in [
        ActionKind::Create,
        ActionKind::Update,
        ActionKind::HeaderUpdate,
        ActionKind::Delete,
    ] {
        let of_kind: Vec<&Action> = plan.actions.iter().filter(|a| a.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        if of_kind.len() <= EXAMPLES * 2 {
            for a in of_kind {
                action_lines(out, a, &sides, s);
            }
            continue;
        }
        // By top-level directory: count and bytes.
        let mut dirs: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for a in &of_kind {
            let dir = a.key.split_once('/').map_or("", |(d, _)| d);
            let size = a
                .local
                .as_ref()
                .map(|e| e.size)
                .or(a.remote.as_ref().map(|r| r.size))
                .unwrap_or(0);
            let e = dirs.entry(dir).or_default();
            e.0 += 1;
            e.1 += size;
        }
        let _ = writeln!(
            s,
            "  {:<8} {} files in {} director{}",
            out.paint(kind.label(), style_of(kind)),
            of_kind.len(),
            dirs.len(),
            if dirs.len() == 1 { "y" } else { "ies" }
        );
        for (dir, (n, size)) in dirs.iter().take(CAP) {
            let shown = if dir.is_empty() {
                "(top level)".to_owned()
            } else {
                format!("{}/", esc(dir))
            };
            let _ = writeln!(
                s,
                "           {shown:<30} {n:>7} files  {:>10}",
                bytes(*size)
            );
        }
        if dirs.len() > CAP {
            let _ = writeln!(s, "           … and {} more directories", dirs.len() - CAP);
        }
        let _ = writeln!(s, "           for example:");
        for a in of_kind.iter().take(EXAMPLES) {
            action_lines(out, a, &sides, s);
        }
    }
}

/// How many lines of one list a capped proof block shows.
const CAP: usize = 10;
/// How many files per action a grouped proof block shows with their proof.
const EXAMPLES: usize = 3;

struct Sides<'a> {
    new: &'a str,
    old: &'a str,
    width: usize,
}

fn style_of(kind: ActionKind) -> Style {
    match kind {
        ActionKind::Create => Style::Good,
        ActionKind::Update | ActionKind::HeaderUpdate => Style::Warn,
        ActionKind::Delete => Style::Bad,
    }
}

/// One change with its proof: key, local and remote size and SHA-256, headers.
fn action_lines(out: &Output, a: &Action, sides: &Sides<'_>, s: &mut String) {
    let (new_side, old_side, width) = (sides.new, sides.old, sides.width);
    let key = esc(&a.key);
    let _ = writeln!(
        s,
        "  {:<8} {}  {}",
        out.paint(a.kind.label(), style_of(a.kind)),
        out.paint(&key, Style::Strong),
        out.paint(&format!("({})", a.reason), Style::Dim)
    );
    if let Some(l) = &a.local {
        let headers: Vec<&str> = [&l.content_type, &l.cache_control, &l.content_encoding]
            .into_iter()
            .filter_map(|h| h.as_deref())
            .collect();
        let _ = writeln!(
            s,
            "           {new_side:<width$}  {:>10}  sha256 {}  [{}]",
            bytes(l.size),
            l.sha256,
            headers.join(" · ")
        );
    }
    match &a.remote {
        Some(r) => {
            let _ = writeln!(
                s,
                "           {old_side:<width$}  {:>10}  sha256 {}  {key}",
                bytes(r.size),
                r.sha256.as_deref().unwrap_or("(unknown)"),
            );
        }
        None => {
            let _ = writeln!(s, "           {old_side:<width$}  (none)");
        }
    }
}

/// A plan as `--json` shows it: everything but the new release's whole manifest (a
/// one-file change of a 50,000-file site stays a few KB), unless `--full`.
#[derive(Serialize)]
pub(crate) struct PlanView<'a> {
    #[serde(flatten)]
    plan: PlanFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<&'a BTreeMap<String, crate::plan::Desired>>,
}

#[derive(Serialize)]
struct PlanFields<'a> {
    format: u32,
    kind: &'a PlanKind,
    env: &'a str,
    store: &'a str,
    created_at: jiff::Timestamp,
    actor: &'a crate::ledger::Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    git: Option<&'a crate::git::GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    live: Option<&'a ReleaseRef>,
    base: Option<&'a ReleaseRef>,
    new_release: &'a str,
    actions: &'a [Action],
    totals: &'a crate::plan::Totals,
    drift: &'a [crate::plan::Drift],
    refusals: &'a [Refusal],
    overrides: &'a [Refusal],
    seen: &'a crate::plan::Seen,
    #[serde(skip_serializing_if = "Option::is_none")]
    scan: Option<&'a crate::site::ScanStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalidation: Option<&'a crate::plan::invalidation::Invalidation>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    batch: &'a [ReleaseRef],
    /// Removed assets kept served for open pages (skew protection).
    #[serde(skip_serializing_if = "is_unsettled")]
    retention: &'a crate::plan::skew::Settled,
    /// Every guard the plan ran and its verdict: passed, refused or overridden.
    guards: serde_json::Map<String, serde_json::Value>,
    /// The `[edge]` rules the new release carries, their digest, and how they differ
    /// from live's.
    #[serde(skip_serializing_if = "Option::is_none")]
    edge: Option<serde_json::Value>,
}

fn is_unsettled(s: &&crate::plan::skew::Settled) -> bool {
    s.kept.is_empty() && s.expired == 0
}

impl Output {
    /// The plan for a JSON document.
    pub(crate) fn plan_view<'a>(&self, plan: &'a Plan) -> PlanView<'a> {
        PlanView {
            plan: PlanFields {
                format: plan.format,
                kind: &plan.kind,
                env: &plan.env,
                store: &plan.store,
                created_at: plan.created_at,
                actor: &plan.actor,
                git: plan.git.as_ref(),
                message: plan.message.as_deref(),
                live: plan.live.as_ref(),
                base: plan.base.as_ref(),
                new_release: &plan.new_release,
                actions: &plan.actions,
                totals: &plan.totals,
                drift: &plan.drift,
                refusals: &plan.refusals,
                overrides: &plan.overrides,
                seen: &plan.seen,
                scan: plan.scan.as_ref(),
                invalidation: plan.invalidation.as_ref(),
                batch: &plan.batch,
                retention: &plan.retention,
                guards: plan
                    .verdicts()
                    .into_iter()
                    .map(|(g, v)| (g.name().to_owned(), serde_json::json!(v)))
                    .collect(),
                edge: plan.edge.as_ref().map(|e| {
                    serde_json::json!({ "rules": e, "sha256": e.digest(), "changes": plan.edge_changes, "notes": plan.edge_notes })
                }),
            },
            manifest: self.full.then_some(&plan.manifest),
        }
    }
}
