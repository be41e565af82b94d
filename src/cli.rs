//! The command-line grammar, and nothing else: values are validated and resolved in
//! `settings`, and each command is a function in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 error, 2 usage or configuration error,
             3 refused by a guard (the safety net worked).

Examples:
  driftless init                      write a commented driftless.toml
  driftless plan staging              show what a deploy would do
  driftless deploy staging -m 'New pricing page'
  driftless status staging            live release, drift, holds, lock
  driftless rollback staging          make the previous release live again";

#[derive(Debug, Parser)]
#[command(name = "driftless", version, about = "Deploy static sites to object storage without the classic deploy disasters.", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to driftless.toml (default: search the current directory and its parents).
    #[arg(long, global = true, env = "DRIFTLESS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Disable colour (also honours NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ForceArgs {
    /// Override a guard, explicitly (repeatable): drift, stale-base, revert, feature,
    /// deletes, unsafe-store, unverified. Overrides are shown in the proof block and
    /// journalled.
    #[arg(long = "force", value_name = "GUARD")]
    pub force: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented driftless.toml, detecting the build directory.
    #[command(
        after_help = "Example:\n  driftless init            # detects dist/, build/, public/, _site/ or out/"
    )]
    Init {
        /// Build directory to deploy (default: detected).
        #[arg(long)]
        site: Option<String>,
    },
    /// Show what a deploy would do (the proof block); change nothing.
    #[command(
        after_help = "Examples:\n  driftless plan staging\n  driftless plan staging --out plan.json   # review, then: driftless apply plan.json"
    )]
    Plan {
        /// Environment (one, by name).
        env: String,
        /// Save the plan to apply later with `driftless apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Release message recorded when the plan is applied.
        #[arg(long, short = 'm')]
        message: Option<String>,
        #[command(flatten)]
        force: ForceArgs,
    },
    /// Plan, show the proof block, confirm, and apply.
    #[command(
        after_help = "Examples:\n  driftless deploy staging -m 'Fix checkout copy'\n  driftless deploy staging --yes           # in CI (no terminal)"
    )]
    Deploy {
        /// Environment (exactly one: staging and production are never deployed together).
        env: String,
        #[arg(long, short = 'm')]
        message: Option<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        force: ForceArgs,
    },
    /// Apply a plan saved with `plan --out`, if nothing it saw has moved.
    #[command(
        after_help = "Example:\n  driftless plan prod --out prod.plan.json && driftless apply prod.plan.json"
    )]
    Apply {
        file: PathBuf,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Live release, drift, holds, lock and any interrupted apply; with no environment,
    /// the pipeline: every environment in promotion order and how far behind it is.
    #[command(
        after_help = "Examples:\n  driftless status staging\n  driftless status            # the pipeline"
    )]
    Status { env: Option<String> },
    /// Copy FROM's live, verified release to TO byte for byte (never rebuilt).
    #[command(
        after_help = "Examples:\n  driftless verify staging && driftless promote staging prod\n  driftless promote staging prod --release 20261121T101500Z-3fa9c1 --yes"
    )]
    Promote {
        from: String,
        to: String,
        /// Refuse unless this is FROM's live release (promote exactly what you reviewed).
        #[arg(long, value_name = "RELEASE")]
        release: Option<String>,
        #[arg(long, short = 'm')]
        message: Option<String>,
        /// Seconds to wait for TO's verify after the promotion (when TO has a `url`).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        force: ForceArgs,
    },
    /// Release history, newest first.
    #[command(after_help = "Example:\n  driftless log staging --limit 5")]
    Log {
        env: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Unified diff of text files between the live release and another state.
    #[command(
        after_help = "Examples:\n  driftless diff staging                      # live → your local build\n  driftless diff staging index.html\n  driftless diff prod --against staging       # prod live → staging live\n  driftless diff staging --against 20261121T101500Z-3fa9c1"
    )]
    Diff {
        env: String,
        /// `local` (default), another environment's name, or a release id of ENV.
        #[arg(long, default_value = "local")]
        against: String,
        /// Only these keys.
        paths: Vec<String>,
    },
    /// Download the live release into DIR and record it as this working copy's base.
    #[command(after_help = "Example:\n  driftless pull staging ./live-copy")]
    Pull { env: String, dir: PathBuf },
    /// Record the store's current objects as a new release (first use, or accepting drift).
    #[command(
        after_help = "Examples:\n  driftless adopt staging      # take over an existing bucket\n  driftless adopt prod -m 'accept hotfix to pricing.html'"
    )]
    Adopt {
        env: String,
        #[arg(long, short = 'm')]
        message: Option<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Make a previous release live again (a new release with the old content).
    #[command(
        after_help = "Examples:\n  driftless rollback staging                  # to the previous release\n  driftless rollback staging --to 20261121T101500Z-3fa9c1"
    )]
    Rollback {
        env: String,
        /// Release id to restore (default: the parent of the live release).
        #[arg(long, value_name = "RELEASE")]
        to: Option<String>,
        #[arg(long, short = 'm')]
        message: Option<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Put a stop sign on an environment: deploys are refused until `unhold`.
    #[command(after_help = "Example:\n  driftless hold prod --reason 'launch freeze until Monday'")]
    Hold {
        env: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Lift every hold on an environment.
    #[command(after_help = "Example:\n  driftless unhold prod")]
    Unhold {
        env: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Invalidate CDN paths now (default: everything, as `/*`).
    #[command(
        after_help = "Examples:\n  driftless invalidate prod                 # /* (one wildcard path)\n  driftless invalidate prod /index.html /docs/"
    )]
    Invalidate {
        env: String,
        /// URL paths (`/index.html`, `/docs/*`); default `/*`.
        paths: Vec<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Preview an environment's live release (or a directory) with the edge rules.
    #[command(
        after_help = "Examples:\n  driftless serve                  # the local build (site directory)\n  driftless serve staging --port 8081\n  driftless serve ./live-copy"
    )]
    Serve {
        /// An environment name or a directory (default: the site directory).
        target: Option<String>,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
    },
    /// Check over HTTP, through the environment's `url`, that visitors get the live release.
    #[command(after_help = "Example:\n  driftless verify staging --timeout 120")]
    Verify {
        env: String,
        /// Keep polling paths that still serve old bytes for this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Break the deploy lock (after showing who holds it).
    #[command(after_help = "Example:\n  driftless unlock staging")]
    Unlock {
        env: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
}
