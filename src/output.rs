//! How driftless talks to people and machines: the proof block, colour (off for
//! `NO_COLOR`, `--no-color` and non-terminals), progress bars on stderr, JSON on stdout
//! with `--json`, and confirmation prompts only when stdin is a terminal.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::OwoColorize as _;
use serde::Serialize;

use crate::Error;
use crate::ledger::ReleaseRef;
use std::collections::BTreeMap;

use crate::plan::{Action, ActionKind, Plan, PlanKind, Refusal};
use crate::text::{bytes, esc};

/// Set by a command that prints its own document over those of the commands it runs.
static DOCUMENT_RESERVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this run already printed its JSON document (then an error adds none).
pub(crate) static DOCUMENT_PRINTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    /// List everything (`--full`): every file of the proof block, the whole manifest.
    pub(crate) full: bool,
    color: bool,
    interactive: bool,
    progress: bool,
    /// Running in GitHub Actions: refusals as `::error` annotations, long listings in
    /// `::group::`, and a markdown summary in `$GITHUB_STEP_SUMMARY`.
    pub(crate) github: bool,
}

/// Whether an environment variable is set to something other than empty or "false".
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

impl Output {
    pub(crate) fn new(json: bool, no_color: bool, full: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        // CI logs are files: no colour codes, no bars redrawn in place, nobody to ask.
        let github = env_flag("GITHUB_ACTIONS");
        let ci = github || env_flag("CI");
        Self {
            json,
            full,
            color: !json && !no_color && !no_color_env && !ci && std::io::stdout().is_terminal(),
            interactive: !github && std::io::stdin().is_terminal(),
            progress: !json && !ci && std::io::stderr().is_terminal(),
            github,
        }
    }

    /// Human output (suppressed with `--json`).
    pub(crate) fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            stdout_line(text.as_ref());
        }
    }

    /// Print the command's JSON document (with `--json`). One per run: stdout stays one
    /// parseable document even when a command runs another (promote runs verify).
    pub(crate) fn document<T: Serialize>(&self, value: &T) {
        if DOCUMENT_RESERVED.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.final_document(value);
    }

    /// The document of a command that runs others whose documents it replaces (`watch`
    /// rolls back; `deploy --watch` watches): theirs are dropped from here on.
    pub(crate) fn reserve_document(&self) {
        DOCUMENT_RESERVED.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Print the reserving command's own document.
    pub(crate) fn final_document<T: Serialize>(&self, value: &T) {
        if self.json && !DOCUMENT_PRINTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            stdout_line(&serde_json::to_string_pretty(value).expect("output serialises"));
        }
    }

    /// Like [`Output::document`], building the value only when it is printed: a plan's
    /// JSON is not built for human output.
    pub(crate) fn document_with<T: Serialize>(&self, make: impl FnOnce() -> T) {
        if self.json {
            self.document(&make());
        }
    }

    pub(crate) fn paint(&self, text: &str, style: Style) -> String {
        if !self.color {
            return text.to_owned();
        }
        match style {
            Style::Good => text.green().to_string(),
            Style::Bad => text.red().bold().to_string(),
            Style::Warn => text.yellow().to_string(),
            Style::Strong => text.bold().to_string(),
            Style::Dim => text.dimmed().to_string(),
        }
    }

    /// A bar for work whose size is known only once it starts (its length is set then):
    /// hashing a site that is still being walked.
    pub(crate) fn bar_later(&self, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = self.bar(u64::MAX, what);
        bar.set_length(0);
        bar
    }

    /// A spinner while waiting on something of unknown length (reading a store).
    pub(crate) fn spinner(&self, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let s = ProgressBar::new_spinner();
        s.set_message(what.to_owned());
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    }

    pub(crate) fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.progress || len < 50 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        bar
    }

    /// Ask before changing an environment: `--yes` answers; without a terminal there is
    /// nobody to ask, so the caller must have said `--yes`.
    pub(crate) fn confirm(&self, question: &str, yes: bool) -> Result<bool, Error> {
        if yes {
            return Ok(true);
        }
        if !self.interactive {
            return Err(Error::Usage(
                "stdin is not a terminal, so nobody can confirm: re-run with --yes once you have reviewed the plan"
                    .into(),
            ));
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Good,
    Bad,
    Warn,
    Strong,
    Dim,
}

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

/// One line to stdout. A reader that went away (`driftless log prod | head`) must not
/// abort the command: `println!` would panic mid-apply. The work goes on; its result
/// is in the exit status and the store's journal.
pub(crate) fn stdout_line(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The proof block: every change with local and remote size and SHA-256, totals, the
/// releases involved, and every guard's verdict.
pub(crate) fn proof_block(out: &Output, plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} → {} ({})",
        out.paint("Plan:", Style::Strong),
        plan.kind.describe(),
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
            },
            manifest: self.full.then_some(&plan.manifest),
        }
    }
}

impl crate::apply::Report for Output {
    fn bar(&self, len: u64, label: &str) -> ProgressBar {
        Output::bar(self, len, label)
    }

    fn say(&self, line: String) {
        Output::say(self, line);
    }
}
