//! driftless: deploy a static site to object storage so that the classic deploy
//! disasters cannot happen — a stale copy overwriting newer production files, a change
//! made outside the tool silently reverted, a deploy with no way back, two people
//! deploying at once.
//!
//! The binary is a thin wrapper around [`run`]. The rooms, one per stage of a deploy:
//! [`config`] (driftless.toml), [`site`] (the local build), [`store`] (object stores),
//! [`ledger`] (state kept in the store), [`plan`] (what a deploy would do, as data, with
//! every guard), the apply engine (the only writer of releases and HEAD), [`check`]
//! (verify and watch), with [`aws`], [`edge`] and the user interface beside them and the
//! commands on top. `docs/architecture.md` is the map; `tests/it/architecture.rs` keeps it.

pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod digest;
pub mod edge;
pub mod git;
pub mod keys;
pub mod ledger;

pub mod plan;
pub mod site;
pub mod store;
pub mod text;
pub mod verdict;

mod apply;
mod commands;
mod failpoint;

mod interrupt;
mod ui;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

/// Everything that can stop a command, mapped to exit statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Scan(#[from] site::ScanError),
    /// A guard refused; the details were already shown with the plan.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error("{0}")]
    Other(String),
    /// Stopped by Ctrl-C at a safe point; the message says what is live.
    #[error("{0}")]
    Interrupted(String),
    /// `diff --exit-code` found differences (exit status 1, as `git diff --exit-code`).
    #[error("{0} file(s) differ")]
    Differences(usize),
}

impl Error {
    /// Did this fail because the store's disk is full?
    pub fn out_of_space(&self) -> bool {
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = e {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
            {
                return true;
            }
            e = err.source();
        }
        // SQLite says it in words (SQLITE_FULL).
        let text = self.to_string();
        text.contains("database or disk is full") || text.contains("No space left on device")
    }

    /// 0 success; 1 error; 2 usage or configuration; 3 refused by a guard.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Usage(_) | Self::Scan(_) => 2,
            Self::Refused(_)
            | Self::Store(store::StoreError::Refused(_))
            | Self::Ledger(
                ledger::LedgerError::Retired { .. }
                | ledger::LedgerError::Layout(_)
                | ledger::LedgerError::Store(store::StoreError::Refused(_)),
            ) => 3,
            Self::Store(_) | Self::Ledger(_) | Self::Other(_) | Self::Differences(_) => 1,
            Self::Interrupted(_) => 130,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.to_string())
    }
}

/// Parse `args`, run the command, and return the process exit status.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    limit_malloc_arenas();
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A shell asking for completions (the script `driftless completions SHELL` prints).
    match clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .var(cli::COMPLETE_VAR)
        .try_complete(args.clone(), std::env::current_dir().ok().as_deref())
    {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json = cli.global.json;
    let out = ui::Output::new(json, cli.global.no_color, cli.global.full);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driftless: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(cli, out));
    // After Ctrl-C, work abandoned on blocking threads (a pack being read) is not waited
    // for: the run stopped at a safe point, and nothing it could still do is needed.
    if matches!(result, Err(Error::Interrupted(_))) {
        runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            ui::github::final_error(&out, matches!(e, Error::Refused(_)), &e.to_string());
            match &e {
                Error::Refused(msg) => eprintln!("driftless: refused: {msg}"),
                Error::Interrupted(msg) => eprintln!("driftless: {msg}"),
                Error::Differences(n) => eprintln!("driftless: {n} file(s) differ"),
                other => eprintln!("driftless: error: {other}"),
            }
            let printed = ui::DOCUMENT_PRINTED.load(std::sync::atomic::Ordering::Relaxed);
            // A machine reading `--json` always gets a document: a refusal that printed
            // none (it came before a plan) too.
            if json && !printed {
                let doc = match &e {
                    Error::Refused(why) => {
                        serde_json::json!({ "result": "refused", "refused": why, "exit_status": code })
                    }
                    other => serde_json::json!({ "error": other.to_string(), "exit_status": code }),
                };
                ui::stdout_line(&doc.to_string());
            }
            ExitCode::from(code)
        }
    }
}

/// glibc gives every thread that allocates its own heap arena, and memory freed in one
/// is rarely returned: with tokio's workers, rayon's hashers and the SDK's tasks, a
/// 20,000-file deploy held ~80 MB resident for ~45 MB of live heap. One arena keeps peak
/// RSS near the heap (measured: 82 → 60 MB for a first deploy of 20,000 files), at no
/// measurable cost in time on the 2-core machines this is tuned on. Must run before any
/// thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
