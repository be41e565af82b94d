//! How driftless talks to people and machines: the proof block, colour (off for
//! `NO_COLOR`, `--no-color` and non-terminals), progress bars on stderr, JSON on stdout
//! with `--json`, and confirmation prompts only when stdin is a terminal.
//! [`proof`] renders a plan; [`github`] speaks to GitHub Actions; [`notify`] to webhooks.

pub(crate) mod github;
pub(crate) mod notify;
pub(crate) mod proof;

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use indicatif::{ProgressBar, ProgressStyle};
use owo_colors::OwoColorize as _;
use serde::Serialize;

use crate::Error;

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

/// One line to stdout. A reader that went away (`driftless log prod | head`) must not
/// abort the command: `println!` would panic mid-apply. The work goes on; its result
/// is in the exit status and the store's journal.
pub(crate) fn stdout_line(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

impl crate::apply::Report for Output {
    fn bar(&self, len: u64, label: &str) -> ProgressBar {
        Output::bar(self, len, label)
    }

    fn say(&self, line: String) {
        Output::say(self, line);
    }
}
