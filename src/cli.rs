//! The command-line grammar, and nothing else: values are validated and resolved in
//! `commands` (the settings layer), and each command is a function there.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 error, 2 usage or configuration error,
             3 refused by a guard (the safety net worked), 130 interrupted (Ctrl-C).

Examples:
  driftless init                      write a commented driftless.toml
  driftless plan staging              show what a deploy would do
  driftless deploy staging -m 'New pricing page'
  driftless status staging            live release, drift, holds, lock
  driftless rollback staging          make the previous release live again";

#[derive(Debug, Parser)]
#[command(name = "driftless", version = env!("DRIFTLESS_VERSION"), about = "Deploy static sites to object storage without the classic deploy disasters.", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to driftless.toml (default: search the current directory and its parents).
    #[arg(
        long,
        global = true,
        env = "DRIFTLESS_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Disable colour (also honours NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// List everything: every file of the proof block with its proof (long plans are
    /// grouped by default), and with --json the new release's whole manifest.
    #[arg(long, global = true)]
    pub full: bool,
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
    /// deletes, immutable, unsafe-store, unverified. Overrides are shown in the proof
    /// block and journalled.
    #[arg(long = "force", value_name = "GUARD", add = ArgValueCompleter::new(guard_names))]
    pub force: Vec<String>,
}

/// A release's name wherever one is asked for: its id or an unambiguous prefix of it, a
/// tag given at deploy (`--tag v1.4`), or `HEAD` / `HEAD~N` (live, N releases back).
pub const RELEASE_NAMES: &str = "a release id (or an unambiguous prefix), a tag (`--tag` at deploy), or HEAD~N (N releases before live)";

#[derive(Debug, Args)]
pub struct TagArg {
    /// Name the new release (e.g. v1.4), usable wherever a release id is: `rollback --to
    /// v1.4`, `diff --against v1.4`. Unique per environment.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct MessageArg {
    /// Release message, shown in `log` and `status` (e.g. what changed and why).
    #[arg(long, short = 'm', value_name = "MESSAGE")]
    pub message: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented driftless.toml for this project, detecting its framework.
    #[command(
        after_help = "Example:\n  # reads package.json, hugo.toml, mkdocs.yml, book.toml, ...\n  driftless init\n  driftless init --site build"
    )]
    Init {
        /// Build directory to deploy (default: the framework's, or one that exists).
        #[arg(long, value_name = "DIR")]
        site: Option<String>,
    },
    /// Show what a deploy would do (the proof block); change nothing.
    #[command(
        after_help = "Examples:\n  driftless plan staging\n  # review, then: driftless apply plan.json\n  driftless plan staging --out plan.json"
    )]
    Plan {
        /// Environment to plan for (default: the only one in driftless.toml).
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: Option<String>,
        /// Save the plan to apply later with `driftless apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        message: MessageArg,
        #[command(flatten)]
        force: ForceArgs,
    },
    /// Plan, show the proof block, confirm, and apply.
    #[command(
        after_help = "Examples:\n  driftless deploy staging -m 'Fix checkout copy'\n  # in CI (no terminal)\n  driftless deploy staging --yes\n  # then: driftless rollback prod --to v1.4\n  driftless deploy prod --tag v1.4 --yes\n  # its own URL, live untouched\n  driftless deploy prod --preview pr-123 --expires 3d --yes\n  # the reviewed bytes go live\n  driftless deploy prod --from-preview pr-123 --yes\n  # to 10% of visitors first\n  driftless deploy prod --canary 10 --yes"
    )]
    Deploy {
        /// Environment to deploy to: exactly one, so staging and production are never
        /// deployed together (default: the only one in driftless.toml).
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: Option<String>,
        #[command(flatten)]
        message: MessageArg,
        #[command(flatten)]
        tag: TagArg,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        force: ForceArgs,
        /// Then watch the new release for DURATION ("15m"), rolling back on a trigger
        /// (see `driftless watch`).
        #[arg(long, value_name = "DURATION", conflicts_with = "preview")]
        watch: Option<String>,
        /// Deploy as preview NAME (a branch or "pr-123", made DNS-safe) at its own URL
        /// (`preview_url`); live is untouched. Needs the atomic layout.
        #[arg(long, value_name = "NAME", conflicts_with = "tag")]
        preview: Option<String>,
        /// Replace preview NAME even though it was made from another branch (or given
        /// as another name that becomes the same DNS label).
        #[arg(long, requires = "preview")]
        replace: bool,
        /// Make preview NAME's release live exactly as reviewed: verified at its URL,
        /// copied server-side into the idle slot, one pointer write (no rebuild, no upload).
        #[arg(long, value_name = "NAME", conflicts_with = "preview")]
        from_preview: Option<String>,
        /// How long the preview lives: "7d" (the default) up to "30d"; a deploy of the
        /// same NAME again renews it.
        #[arg(long, value_name = "DURATION", requires = "preview")]
        expires: Option<String>,
        /// Serve the new release to N% of visitors only (1-99, sticky per visitor); the
        /// others stay on live until the canary is finished or aborted (`driftless
        /// canary`). Needs the atomic layout.
        #[arg(long, value_name = "N", conflicts_with_all = ["preview", "from_preview"],
              value_parser = clap::value_parser!(u8).range(1..=99))]
        canary: Option<u8>,
    },
    /// Apply a plan saved with `plan --out`, if nothing it saw has moved.
    #[command(
        after_help = "Example:\n  driftless plan prod --out prod.plan.json && driftless apply prod.plan.json"
    )]
    Apply {
        /// The plan file written by `driftless plan ENV --out FILE`.
        file: PathBuf,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Live release, drift, holds, lock and any interrupted apply; with no environment,
    /// the pipeline: every environment in promotion order and how far behind it is.
    #[command(
        after_help = "Examples:\n  driftless status staging\n  driftless status            # the pipeline"
    )]
    Status {
        /// Environment to inspect (default: every environment, as a pipeline).
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: Option<String>,
    },
    /// Copy FROM's live, verified release to TO byte for byte (never rebuilt).
    #[command(
        after_help = "Examples:\n  driftless verify staging && driftless promote staging prod\n  driftless promote staging prod --release 20261121T101500Z-3fa9c1 --yes\n  # the reviewed preview, verified at its URL\n  driftless promote staging prod --from-preview pr-123"
    )]
    Promote {
        /// The environment whose live release is promoted (e.g. staging).
        #[arg(add = ArgValueCompleter::new(env_names))]
        from: String,
        /// The environment that receives it (e.g. prod).
        #[arg(add = ArgValueCompleter::new(env_names))]
        to: String,
        /// Refuse unless this is FROM's live release (promote exactly what you reviewed):
        /// a release id or prefix, a tag, or HEAD.
        #[arg(long, value_name = "RELEASE")]
        release: Option<String>,
        /// Promote preview NAME of FROM instead, verified at its URL first: the reviewed
        /// bytes go to TO (a protected environment too), not FROM's live release.
        #[arg(long, value_name = "NAME", conflicts_with = "release")]
        from_preview: Option<String>,
        #[command(flatten)]
        message: MessageArg,
        #[command(flatten)]
        tag: TagArg,
        /// Seconds to wait for TO's verify after the promotion (when TO has a `url`).
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        confirm: ConfirmArgs,
        #[command(flatten)]
        force: ForceArgs,
        /// Then watch TO's new release for DURATION, rolling back on a trigger.
        #[arg(long, value_name = "DURATION")]
        watch: Option<String>,
    },
    /// Release history, newest first.
    #[command(after_help = "Example:\n  driftless log staging --limit 5")]
    Log {
        /// Environment whose history to show.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// How many releases to show, newest first (at least 1).
        #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
    },
    /// Unified diff of text files between the live release and another state.
    #[command(
        after_help = "Examples:\n  # live → your local build\n  driftless diff staging\n  driftless diff staging index.html\n  # live → the bytes actually in the store (drift)\n  driftless diff staging --against store\n  # prod live → staging live\n  driftless diff prod --against staging\n  # an environment named like a keyword\n  driftless diff prod --against env:local\n  driftless diff staging --against 20261121T101500Z-3fa9c1\n  # in CI: fail when the build is not what is live\n  driftless diff prod --exit-code"
    )]
    Diff {
        /// Environment whose live release is the left side.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// The right side: `local` (your build, the default), `store` (the objects now
        /// in ENV's store), an environment's name (or `env:NAME`), or a release of ENV
        /// (its id or a prefix, a tag, HEAD~N).
        #[arg(long, default_value = "local", value_name = "STATE")]
        against: String,
        /// Exit with status 1 when there are differences (as `git diff --exit-code`);
        /// without it, `diff` exits 0 whether or not the two sides differ.
        #[arg(long)]
        exit_code: bool,
        /// Only these keys (files or directories).
        paths: Vec<String>,
    },
    /// Download the live release into DIR and record it as this working copy's base.
    #[command(
        after_help = "Examples:\n  driftless pull staging ./live-copy\n  # replace the files of your build directory\n  driftless pull staging site --force"
    )]
    Pull {
        /// Environment whose live release to download.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Directory to write into (must be empty or missing, unless --force).
        dir: PathBuf,
        /// Write into a directory that already holds files (they are overwritten).
        #[arg(long)]
        force: bool,
    },
    /// Record the store's current objects as a new release (first use, or accepting drift).
    #[command(
        after_help = "Examples:\n  driftless adopt staging      # take over an existing bucket\n  driftless adopt prod -m 'accept hotfix to pricing.html'"
    )]
    Adopt {
        /// Environment whose store to record.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        #[command(flatten)]
        message: MessageArg,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Make a previous release live again (a new release with the old content).
    #[command(
        after_help = "Examples:\n  # to the previous release\n  driftless rollback staging\n  # two releases before live\n  driftless rollback staging --to HEAD~2\n  # a tag given at deploy\n  driftless rollback staging --to v1.4\n  # an unambiguous prefix of an id\n  driftless rollback staging --to 20261121T1015"
    )]
    Rollback {
        /// Environment to roll back.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// The release to restore: its id or an unambiguous prefix, a tag, or HEAD~N
        /// (default: HEAD~1, the release before live).
        #[arg(long, value_name = "RELEASE")]
        to: Option<String>,
        #[command(flatten)]
        message: MessageArg,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Move an environment between the layouts, in two steps, with nothing unserved.
    ///
    /// To atomic: the live release is copied into a slot and the live pointer
    /// (`current`) created; the in-place copies keep being served until you root your
    /// web server at `current` and run it again with `--finish`. Back in place: the
    /// live release is copied to the keys visitors read in place; `--finish` removes the
    /// slots and the pointer once your server is rooted at the store again.
    #[command(
        after_help = "Examples:\n  # slot a + pointer; nothing visitors see changes\n  driftless migrate prod --layout atomic\n  # then: remove the in-place copies\n  driftless migrate prod --layout atomic --finish\n  # back: the live release copied in place\n  driftless migrate prod --layout in-place\n  # then: remove the slots and the pointer\n  driftless migrate prod --layout in-place --finish"
    )]
    Migrate {
        /// Environment to move.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// The layout to move to.
        #[arg(long, value_name = "LAYOUT", value_parser = ["atomic", "in-place"])]
        layout: String,
        /// Second step: remove what the move left (to atomic: the in-place copies, once
        /// your web server is rooted at `current`; to in place: the slots and the
        /// pointer, once it is rooted at the store).
        #[arg(long)]
        finish: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Put a stop sign on an environment at once: deploys are refused until `unhold`.
    #[command(after_help = "Example:\n  driftless hold prod --reason 'launch freeze until Monday'")]
    Hold {
        /// Environment to stop.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Why; shown to everyone whose deploy is refused.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Accepted for scripts written for older versions; a hold never asks.
        #[arg(long, short = 'y', hide = true)]
        yes: bool,
    },
    /// Lift every hold on an environment.
    #[command(after_help = "Example:\n  driftless unhold prod")]
    Unhold {
        /// Environment whose holds to lift.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Invalidate CDN paths now (default: everything, as `/*`).
    #[command(
        after_help = "Examples:\n  driftless invalidate prod                 # /* (one wildcard path)\n  driftless invalidate prod /index.html /docs/"
    )]
    Invalidate {
        /// Environment whose CDN to invalidate (needs `cdn` in driftless.toml).
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// URL paths (`/index.html`, `/docs/*`); default `/*`.
        paths: Vec<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Audit what deploys rely on: the bucket (public access, policy, anonymous reads,
    /// versioning, encryption, conditional writes), the distribution, the URL, alarms and
    /// the identity. One line per check with its fix; exit 1 on any failure.
    #[command(
        after_help = "Examples:\n  # self-check: config file, credentials, endpoint per environment\n  driftless doctor\n  driftless doctor prod\n  driftless doctor prod --json | jq '.checks[] | select(.level != \"pass\")'"
    )]
    Doctor {
        /// Environment to audit. Without one: the self-check — which config file,
        /// credential source, region and S3 endpoint each environment would use.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: Option<String>,
    },
    /// Watch the live release for a window: synthetic requests through `url`,
    /// CloudFront's error rates and named CloudWatch alarms; on a trigger, roll back to
    /// the previous release (only if the watched one is still live), hold, exit 3.
    #[command(
        after_help = "Triggers ([env.NAME.watch]): error_rate = 0.05 (5xx), client_error_rate = 0.20 (4xx),
p95_ms = 3000, interval = \"10s\", sample = 20, alarms = [\"name\"]. A window that passes is
recorded with the release (`log`, `status`).

Examples:
  driftless watch prod --for 15m
  driftless deploy prod --yes --watch 15m
  driftless watch prod --for 5m --no-rollback      # report only"
    )]
    Watch {
        /// Environment whose live release to watch.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// How long ("15m", "90s").
        #[arg(long = "for", value_name = "DURATION", default_value = "15m")]
        window: String,
        /// Only report a trigger (exit 1); never roll back.
        #[arg(long)]
        no_rollback: bool,
    },
    /// Show what `[edge]` compiles to for CloudFront (function, headers policy, error
    /// responses, and what visitors get); export it with Terraform, or publish it.
    #[command(after_help = "Examples:
  # the function's size, each rule, sample answers
  driftless edge prod
  # what a visitor gets for these paths
  driftless edge prod /docs /app/settings
  # function.js, policy JSON, Terraform
  driftless edge prod --export infra/edge
  # publish through the CloudFront API
  driftless edge prod --apply")]
    Edge {
        /// Environment whose live release the rules are compiled for.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Write function.js, response-headers-policy.json, custom-error-responses.json,
        /// driftless-edge.tf and distribution.snippet.hcl into DIR.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Create or update, publish and attach the function and policy on the
        /// environment's CloudFront distribution (`cdn`), If-Match all the way.
        #[arg(long)]
        apply: bool,
        /// Sample URL paths to answer (default: one of each kind the site has).
        paths: Vec<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Show, finish or abort the canary `deploy --canary N` started: a release served to
    /// N% of visitors (sticky per visitor), everyone else on live.
    #[command(
        after_help = "A visitor's side comes from their bucket (0-99): the `driftless-bucket` cookie set on
their first answer, else a hash of address and user agent; buckets below the share get
the canary. Finishing is one pointer write; aborting is one write too, and needs no
CDN invalidation (each release has its own cache key).

Examples:
  driftless deploy prod --canary 10 --yes    # 10% of visitors get it
  driftless canary prod                      # who gets what, since when
  driftless canary prod --percent 50 --yes   # more (those on it stay)
  driftless canary prod --finish --yes       # live for everyone
  driftless canary prod --abort --yes        # everyone back on live"
    )]
    Canary {
        /// Environment whose canary to show or end.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Make the canary live for every visitor: the pointer moves to its slot.
        #[arg(long, conflicts_with_all = ["abort", "percent"])]
        finish: bool,
        /// Take the canary back: every visitor gets the live release again.
        #[arg(long, conflicts_with = "percent")]
        abort: bool,
        /// Serve the canary to N% of visitors (1-99) from now on.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=99))]
        percent: Option<u8>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Mint a token `[edge.auth]` accepts: a JWT or a CWT (with [edge.auth.jwt]) or CloudFront
    /// signed cookies or a signed URL (with [edge.auth.signed_cookies]).
    #[command(after_help = "Examples:
  driftless sign prod                        # a JWT, for Authorization: Bearer
  driftless sign prod --cookie               # as the Cookie header's value
  driftless sign prod --expires 15m --kid k2026
  driftless sign prod --cwt                  # a CBOR Web Token (cwt = true)
  driftless sign prod /app/report.pdf        # a signed URL (signed cookies)
  curl -H \"Authorization: Bearer $(driftless sign prod)\" \\
    https://www.example.com/app/")]
    Sign {
        /// Environment whose [edge.auth] the token is for.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Sign a URL for this path (signed cookies only).
        path: Option<String>,
        /// Print a Cookie header's value instead (the configured cookie, or the three
        /// CloudFront cookies).
        #[arg(long)]
        cookie: bool,
        /// How long the token holds.
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        expires: String,
        /// The key id to sign with (a JWT, when several keys are configured).
        #[arg(long, value_name = "KID")]
        kid: Option<String>,
        /// The token's subject (`sub`).
        #[arg(long, value_name = "NAME", default_value = "driftless")]
        subject: String,
        /// Mint a CBOR Web Token instead of a JWT ([edge.auth.jwt] with `cwt = true`).
        #[arg(long)]
        cwt: bool,
    },
    /// List an environment's previews (name, release, commit, author, created, expiry,
    /// URL), or delete one.
    #[command(
        after_help = "Examples:\n  driftless previews prod\n  driftless previews prod --json\n  driftless previews prod --delete pr-123 --yes"
    )]
    Previews {
        /// Environment whose previews to list.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Delete preview NAME: its URL answers 404, its files go; `gc` frees its bytes.
        #[arg(long, value_name = "NAME")]
        delete: Option<String>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Apply the retention policy: releases outside it can no longer be restored, and
    /// the snapshots, records and expired kept assets no retained release needs go;
    /// previews past their expiry go too.
    #[command(
        after_help = "Retained: the live release, the `[retention] keep_releases` newest restorable releases
(default 10) and every release younger than `keep_days`; a pending apply's release;
the release of every preview not yet expired. Collected releases stay in `driftless
log`, marked; rolling back to one is refused. An expired preview's files are removed
with it.

Examples:
  driftless gc prod                   # show what goes, then ask
  driftless gc prod --keep 3 --yes    # keep the 3 newest releases, no prompt"
    )]
    Gc {
        /// Environment to collect.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Keep this many releases (overrides `[retention] keep_releases`; at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        keep: Option<u64>,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Remove the bytes only one release has (it leaked a secret): rollback and
    /// promotion to it are refused from then on; the CDN paths that served them are
    /// invalidated.
    #[command(
        after_help = "Bytes the live release or another restorable release also has are never removed: the
plan lists them. The live release cannot be yanked: deploy without the file first.

Example:
  driftless yank prod 20261121T101500Z-3fa9c1 \\
    --reason 'committed .env with the API key'"
    )]
    Yank {
        /// Environment of the release.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// The release (see `driftless log ENV`): its id or an unambiguous prefix, or a tag.
        release: String,
        /// Why; kept with the release in `driftless log`.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Preview an environment's live release (or a directory) with the edge rules.
    #[command(
        after_help = "Examples:\n  # the local build (site directory)\n  driftless serve\n  driftless serve staging --port 8081\n  # any free port, printed as JSON\n  driftless serve ./live-copy --port 0 --json"
    )]
    Serve {
        /// An environment name or a directory (default: the site directory).
        #[arg(add = ArgValueCompleter::new(serve_targets))]
        target: Option<String>,
        /// TCP port to listen on; 0 picks a free one (printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
        bind: String,
    },
    /// Check over HTTP, through the environment's `url`, that visitors get the live release
    /// (or, with --preview, that a preview's URL serves the preview).
    #[command(
        after_help = "Examples:\n  driftless verify staging --timeout 120\n  driftless verify prod --preview pr-123"
    )]
    Verify {
        /// Environment to verify (needs `url` in driftless.toml).
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        /// Verify preview NAME at its `preview_url` instead.
        #[arg(long, value_name = "NAME")]
        preview: Option<String>,
        /// Keep polling paths that still serve old bytes for this many seconds.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
    },
    /// Print the shell script that completes driftless's commands, options and
    /// environment names (read from driftless.toml as you type).
    #[command(
        after_help = "Examples:\n  # try it now; add to ~/.bashrc to keep it\n  source <(driftless completions bash)\n  driftless completions zsh > \"${fpath[1]}/_driftless\"\n  driftless completions fish > ~/.config/fish/completions/driftless.fish\n  driftless completions powershell >> $PROFILE"
    )]
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(
        after_help = "Examples:\n  driftless man | man -l -\n  driftless man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write driftless.1 and driftless-COMMAND.1 into DIR instead of printing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of driftless.toml (for editors; `init` points the config at it).
    #[command(
        after_help = "Example:\n  # then `#:schema ./driftless.schema.json` at the top of driftless.toml\n  driftless schema > driftless.schema.json"
    )]
    Schema,
    /// Break the deploy lock (after showing who holds it).
    #[command(after_help = "Example:\n  driftless unlock staging")]
    Unlock {
        /// Environment whose lock to break.
        #[arg(add = ArgValueCompleter::new(env_names))]
        env: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
}

/// The shells `driftless completions` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Zsh => "zsh",
            Self::Fish => "fish",
            Self::Powershell => "powershell",
            Self::Elvish => "elvish",
        }
    }
}

/// The environment variable through which a shell asks driftless to complete a line.
pub const COMPLETE_VAR: &str = "_DRIFTLESS_COMPLETE";

/// Environment names for completion, from the driftless.toml a command here would use
/// (`DRIFTLESS_CONFIG`, or the nearest one up from the current directory). Reads only the
/// `[env.*]` table names: a config that does not load yet still completes.
fn env_names(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let path = match std::env::var_os("DRIFTLESS_CONFIG") {
        Some(p) => PathBuf::from(p),
        None => match std::env::current_dir()
            .ok()
            .and_then(|d| crate::config::Config::discover(&d).ok())
        {
            Some(p) => p,
            None => return Vec::new(),
        },
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    doc.get("env")
        .and_then(toml::Value::as_table)
        .map(|envs| {
            envs.iter()
                .filter(|(name, _)| name.starts_with(prefix.as_ref()))
                .map(|(name, env)| {
                    let store = env.get("store").and_then(toml::Value::as_str).unwrap_or("");
                    CompletionCandidate::new(name.clone()).help(Some(store.to_owned().into()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The guards `--force` accepts, for completion.
fn guard_names(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    crate::plan::Guard::FORCEABLE
        .into_iter()
        .map(crate::plan::Guard::name)
        .filter(|n| n.starts_with(prefix.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// What `serve` takes: an environment, or a directory.
fn serve_targets(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    use clap_complete::engine::ValueCompleter as _;
    let mut out = env_names(current);
    out.extend(clap_complete::engine::PathCompleter::dir().complete(current));
    out
}

#[cfg(test)]
mod tests {
    /// Regression (issue 34, smaller): example lines of `migrate` and `promote` help
    /// wrapped mid-comment. Every line of every command's examples fits 80 columns, so
    /// no terminal wraps one (a comment longer than that goes on the line above).
    #[test]
    fn examples_fit_eighty_columns() {
        use clap::CommandFactory as _;
        let cli = super::Cli::command();
        let mut long = Vec::new();
        for cmd in cli.get_subcommands() {
            let Some(help) = cmd.get_after_help() else {
                continue;
            };
            let text = help.to_string();
            let examples = text.split_once("Example").map_or("", |(_, e)| e);
            for line in examples.lines().skip(1) {
                if line.chars().count() > 80 {
                    long.push(format!("{}: {line}", cmd.get_name()));
                }
            }
        }
        assert!(
            long.is_empty(),
            "example lines over 80 columns:\n{}",
            long.join("\n")
        );
    }
}
