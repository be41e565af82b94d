//! GitHub Actions, natively: refusals as `::error` annotations on the file they name, and
//! the proof block and its outcome as markdown in the job's summary
//! (`$GITHUB_STEP_SUMMARY`). Only active when `GITHUB_ACTIONS=true`.
//!
//! Workflow commands are read from the log, so they go to stdout, or to stderr when stdout
//! carries the `--json` document. Values are escaped as the runner expects
//! (`%`, CR, LF; and `:` `,` in properties).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::plan::{ActionKind, Plan, PlanKind, Refusal};
use crate::text::bytes;
use crate::text::esc;
use crate::ui::Output;

/// Whether this run already annotated its refusal (then the final error adds none).
static ANNOTATED: AtomicBool = AtomicBool::new(false);

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command_line(out: &Output, line: &str) {
    if out.json {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    } else {
        crate::ui::stdout_line(line);
    }
}

/// One `::error` annotation (`file` relative to the workspace, when the refusal names one).
pub(crate) fn error(out: &Output, title: &str, file: Option<&str>, message: &str) {
    if !out.github {
        return;
    }
    ANNOTATED.store(true, Ordering::Relaxed);
    let mut props = format!("title={}", escape_property(title));
    if let Some(f) = file {
        props = format!("file={},{props}", escape_property(f));
    }
    command_line(out, &format!("::error {props}::{}", escape_data(message)));
}

/// The error that ends the run, unless a refusal was annotated already.
pub(crate) fn final_error(out: &Output, refused: bool, message: &str) {
    if out.github && !ANNOTATED.load(Ordering::Relaxed) {
        let title = if refused {
            "driftless: refused"
        } else {
            "driftless: error"
        };
        error(out, title, None, message);
    }
}

/// Each refusal, on the file it names (as a path from the workspace, which is where
/// GitHub looks for it).
pub(crate) fn refusals(out: &Output, list: &[Refusal], site: &Path) {
    if !out.github {
        return;
    }
    let root = std::env::var_os("GITHUB_WORKSPACE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    for r in list {
        let file = r.key.as_ref().map(|k| {
            let path = site.join(k);
            root.as_deref()
                .and_then(|root| path.strip_prefix(root).ok())
                .unwrap_or(&path)
                .display()
                .to_string()
        });
        let message = format!("{}\n→ {}", r.message, r.resolve);
        error(
            out,
            &format!("driftless refused: {}", r.guard.name()),
            file.as_deref(),
            &message,
        );
    }
}

/// Append markdown to the job summary. A summary that cannot be written is reported and
/// skipped: it never fails the deploy.
pub(crate) fn summary(out: &Output, markdown: &str) {
    if !out.github {
        return;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: cannot write the job summary {}: {e}",
            Path::new(&path).display()
        );
    }
}

/// Text for a markdown table cell or code span: escaped for the terminal rules too, and
/// without the characters that would end the cell or the span.
fn cell(text: &str) -> String {
    esc(text).replace('|', "\\|").replace('`', "'")
}

/// How many files the summary lists before "and N more".
const LISTED: usize = 100;

/// The proof block as markdown: what, where, the totals, every guard's verdict and the
/// changed files.
pub(crate) fn plan_markdown(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### driftless: {} → {}\n",
        cell(&plan.kind.describe()),
        cell(&plan.env)
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| store | `{}` |", cell(&plan.store));
    let release = |r: Option<&crate::ledger::ReleaseRef>| {
        r.map_or_else(|| "(none)".to_owned(), |r| cell(&r.to_string()))
    };
    let _ = writeln!(s, "| live | {} |", release(plan.live.as_ref()));
    if plan.kind == PlanKind::Deploy {
        let _ = writeln!(s, "| base | {} |", release(plan.base.as_ref()));
    }
    if !plan.is_noop() {
        let _ = writeln!(s, "| new release | `{}` |", cell(&plan.new_release));
    }
    if let Some(g) = &plan.git {
        let _ = writeln!(
            s,
            "| commit | `{}`{} |",
            cell(&g.commit),
            if g.dirty {
                " (uncommitted changes)"
            } else {
                ""
            }
        );
    }
    if let Some(m) = &plan.message {
        let _ = writeln!(s, "| message | {} |", cell(m));
    }
    let _ = writeln!(s, "\n**{}**\n", plan.totals);
    if plan.refused() {
        s.push_str(&refused_markdown(&plan.refusals));
    } else {
        let _ = writeln!(s, "**Guards:** ✅ every guard passed");
    }
    for r in &plan.overrides {
        let _ = writeln!(
            s,
            "- ⚠️ overridden `{}`: {}",
            r.guard.name(),
            cell(&r.message)
        );
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            s,
            "\n**Drift:** {} object(s) differ from the live release",
            plan.drift.len()
        );
    }
    if !plan.actions.is_empty() {
        let _ = writeln!(
            s,
            "\n<details><summary>Changed files ({})</summary>\n\n| change | file | size | sha256 |\n|---|---|---:|---|",
            plan.actions.len()
        );
        for a in plan.actions.iter().take(LISTED) {
            let (size, sha) = match (&a.local, &a.remote) {
                (Some(l), _) => (l.size, Some(l.sha256.as_str())),
                (None, Some(r)) => (r.size, r.sha256.as_deref()),
                (None, None) => (0, None),
            };
            let label = match a.kind {
                ActionKind::Create => "create",
                ActionKind::Update => "update",
                ActionKind::HeaderUpdate => "headers",
                ActionKind::Delete => "delete",
            };
            let _ = writeln!(
                s,
                "| {label} | `{}` | {} | `{}` |",
                cell(&a.key),
                bytes(size),
                sha.map_or("—", |h| &h[..h.len().min(12)])
            );
        }
        if plan.actions.len() > LISTED {
            let _ = writeln!(
                s,
                "\n… and {} more (`driftless plan {} --full` lists every file)",
                plan.actions.len() - LISTED,
                cell(&plan.env)
            );
        }
        let _ = writeln!(s, "\n</details>");
    }
    if plan.is_noop() && !plan.refused() {
        let _ = writeln!(
            s,
            "\nNothing to do: {} already serves exactly this.",
            cell(&plan.env)
        );
    }
    s.push('\n');
    s
}

/// The verdict of refusing guards, as markdown.
fn refused_markdown(refusals: &[Refusal]) -> String {
    let mut s = String::from("**Guards:** ❌ refused — nothing was changed\n\n");
    for r in refusals {
        let _ = writeln!(
            s,
            "- `{}` {} — {}",
            r.guard.name(),
            cell(&r.message),
            cell(&r.resolve)
        );
    }
    s
}

/// A refusal found before any plan (hold, lock, protected environment): its summary.
pub(crate) fn early_refusal_summary(
    out: &Output,
    kind: &PlanKind,
    env: &str,
    refusals: &[Refusal],
) {
    summary(
        out,
        &format!(
            "### driftless: {} → {}\n\n{}\n",
            kind.name(),
            cell(env),
            refused_markdown(refusals)
        ),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(super::escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(super::escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(super::cell("a|b`c\n"), "a\\|b'c\\n");
    }
}
