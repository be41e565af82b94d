//! The context every command runs in. `Ctx` is the settings layer: the loaded config,
//! the output mode and who is acting; `EnvCtx` adds one environment's store, ledger and
//! this working copy's record of it, and what commands do with them alike — take the
//! lock, journal, notify, name releases, finish an interrupted apply.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Error;
use crate::config::{Config, EnvConfig, StoreUrl};
use crate::ledger::{Actor, HeldLease, Ledger};
use crate::store::{LocalStore, S3Settings, S3Store, Store};
use crate::ui::Output;

pub(crate) struct Ctx {
    pub(crate) config: Config,
    pub(crate) out: Output,
    pub(crate) actor: Actor,
}

pub(crate) struct EnvCtx<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) cfg: &'a EnvConfig,
    pub(crate) ledger: Ledger,
    /// This working copy's record of the environment.
    pub(crate) work: crate::plan::workcopy::WorkCopy,
}

impl Ctx {
    /// The proof block, and in GitHub Actions its annotations and job summary.
    pub(crate) fn show_plan(&self, plan: &crate::plan::Plan) {
        self.out.say(crate::ui::proof::proof_block(&self.out, plan));
        if self.out.github {
            crate::ui::github::refusals(&self.out, &plan.refusals, &self.config.site);
            crate::ui::github::summary(&self.out, &crate::ui::github::plan_markdown(plan));
        }
    }

    /// The environment a command names, or the only one the config defines.
    pub(super) fn env_name(&self, given: Option<&str>, verb: &str) -> Result<String, Error> {
        if let Some(name) = given {
            return Ok(name.to_owned());
        }
        let names: Vec<&String> = self.config.envs.keys().collect();
        match names.as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(Error::Usage(format!(
                "{} defines no environment: add one, e.g. [env.local] store = \"file://.driftless/local\"",
                self.config.path.display()
            ))),
            many => Err(Error::Usage(format!(
                "name the environment: {} defines {} (e.g. `driftless {verb} {}`)",
                self.config.path.display(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                many[0]
            ))),
        }
    }

    pub(super) fn load(config: Option<&std::path::Path>, out: Output) -> Result<Self, Error> {
        let path = match config {
            Some(p) => p.to_path_buf(),
            None => Config::discover(&std::env::current_dir()?)?,
        };
        let config = Config::load(&path)?;
        let actor = Actor::current(&config.dir);
        Ok(Self { config, out, actor })
    }

    /// The project's config when there is one; else the defaults, with `site` as the
    /// build directory (`serve DIR` outside a project: the default exclusions, no
    /// environment, no edge rules).
    pub(super) fn load_or_bare(site: &str, out: Output) -> Result<Self, Error> {
        let here = std::env::current_dir()?;
        if Config::discover(&here).is_ok() {
            return Self::load(None, out);
        }
        let text = format!("site = {}\n", toml::Value::String(site.to_owned()));
        let config = Config::parse(&text, &here.join(crate::config::FILE_NAME), &here)?;
        let actor = Actor::current(&config.dir);
        Ok(Self { config, out, actor })
    }

    /// This machine's cache of one store's immutable records (releases, pack indexes).
    fn store_cache(&self, location: &str, prefix: &str) -> PathBuf {
        use sha2::Digest as _;
        let id = hex::encode(&sha2::Sha256::digest(format!("{location}\n{prefix}"))[..8]);
        self.config
            .workdir_state()
            .join("cache")
            .join("stores")
            .join(id)
    }

    /// An environment, after checking (when it declares `account`) that the credentials
    /// belong to that account: nothing is read or written in the wrong one.
    pub(crate) async fn env(&self, name: &str) -> Result<EnvCtx<'_>, Error> {
        let cfg = self.config.env(name)?;
        if let Some(want) = &cfg.account {
            check_account(cfg, want).await?;
        }
        self.env_unchecked(name).await
    }

    /// An environment without the account check (for `status`, which reports it).
    pub(crate) async fn env_unchecked(&self, name: &str) -> Result<EnvCtx<'_>, Error> {
        let cfg = self.config.env(name)?;
        let store = open_store(cfg).await;
        let fresh = match cfg.store {
            crate::config::StoreUrl::File(_) => crate::config::Layout::Atomic,
            _ => crate::config::Layout::InPlace,
        };
        let ledger = Ledger::new(store.clone(), &cfg.state_prefix, &cfg.name)
            .with_cache(self.store_cache(&store.location(), &cfg.state_prefix))
            .with_layout(cfg.layout, fresh);
        // Behind CloudFront the pointer is what its function reads: a key of the
        // environment's KeyValueStore (created by `edge --apply`).
        let ledger = if cfg.edge_reads_pointer() {
            with_kvs_pointer(ledger, cfg)
                .with_projected(self.config.edge.not_found.iter().cloned().collect())
        } else {
            ledger
        };
        Ok(EnvCtx {
            ctx: self,
            cfg,
            ledger,
            work: crate::plan::workcopy::WorkCopy::new(&self.config.workdir_state(), &cfg.name),
        })
    }
}

/// `ledger` with its live pointer in the environment's KeyValueStore.
pub(crate) fn with_kvs_pointer(ledger: Ledger, cfg: &EnvConfig) -> Ledger {
    ledger.with_pointer(std::sync::Arc::new(crate::store::KvsPointer(
        crate::apply::edge::key_value_store(cfg),
    )))
}

async fn check_account(cfg: &EnvConfig, want: &str) -> Result<(), Error> {
    let env = &cfg.name;
    let profile = cfg
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok());
    let used = profile.as_deref().map_or_else(
        || "the default credential chain".to_owned(),
        |p| format!("profile {p:?}"),
    );
    match crate::aws::sts::resolve(cfg.profile.as_deref(), cfg.region.as_deref()).await {
        Ok(id) if id.account == want => Ok(()),
        Ok(id) => Err(Error::Refused(format!(
            "env.{env} is account {want}, but {used} resolves to account {} ({}): nothing was read or written\n  → use the credentials of account {want}: set `profile` for env.{env} in driftless.toml, or AWS_PROFILE",
            id.account, id.arn
        ))),
        Err(e) => Err(Error::Refused(format!(
            "env.{env} declares account {want}, but the caller's account could not be confirmed with STS ({used}): {e}\n  → check the credentials (`aws sts get-caller-identity`{}), or remove `account` from env.{env}",
            profile
                .as_deref()
                .map(|p| format!(" --profile {p}"))
                .unwrap_or_default()
        ))),
    }
}

async fn open_store(env: &EnvConfig) -> Arc<dyn Store> {
    match &env.store {
        StoreUrl::File(root) => Arc::new(LocalStore::new(root)),
        StoreUrl::S3 { bucket, prefix } => Arc::new(open_s3(env, bucket, prefix).await),
    }
}

async fn open_s3(env: &EnvConfig, bucket: &str, prefix: &str) -> S3Store {
    S3Store::connect(&S3Settings {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        region: env.region.clone(),
        endpoint: env.endpoint.clone(),
        profile: env.profile.clone(),
        static_credentials: None,
    })
    .await
}

impl EnvCtx<'_> {
    /// Journal an event of this environment, by whoever runs this command. Never fails
    /// the command (see `Ledger::journal`).
    pub(crate) async fn journal(
        &self,
        event: &str,
        release: Option<&str>,
        detail: serde_json::Value,
    ) {
        self.ledger
            .journal(&self.ctx.actor, event, release, detail)
            .await;
    }

    /// Keep a step of a canary for `log` (best effort, like the journal).
    pub(crate) async fn canary_step(
        &self,
        release: &str,
        step: &str,
        percent: u8,
        why: Option<String>,
    ) {
        let s = crate::ledger::CanaryStep {
            release: release.to_owned(),
            step: step.to_owned(),
            percent,
            why,
            by: self.ctx.actor.author.clone(),
            at: jiff::Timestamp::now(),
        };
        if let Err(e) = self.ledger.record_canary_step(s).await {
            eprintln!("warning: could not record the canary's {step} for `log`: {e}");
        }
    }

    /// Tell the `[[notify]]` webhooks that want it. Never fails the command: failures
    /// are reported and journalled by `notify::send`.
    pub(crate) async fn notify(
        &self,
        event: &str,
        release: Option<&crate::ledger::ReleaseRef>,
        summary: String,
    ) {
        if self.ctx.config.notify.is_empty() {
            return;
        }
        let event = crate::ui::notify::Event {
            event,
            env: &self.cfg.name,
            at: jiff::Timestamp::now(),
            by: &self.ctx.actor,
            release,
            summary,
            url: self.cfg.url.as_deref(),
        };
        crate::ui::notify::send(&self.ctx.config.notify, Some(&self.ledger), &event).await;
    }

    /// Who plans, for which environment, under which config.
    pub(crate) fn plan_inputs(&self) -> crate::plan::build::Inputs<'_> {
        crate::plan::build::Inputs {
            env: self.cfg,
            config: &self.ctx.config,
            actor: &self.ctx.actor,
            store: self.ledger.store().location(),
            now: jiff::Timestamp::now(),
        }
    }

    /// Where this environment's base is looked for (its ledger, the project, this
    /// working copy's record).
    pub(crate) fn working(&self) -> crate::plan::base::Working<'_> {
        crate::plan::base::Working {
            ledger: &self.ledger,
            project: &self.ctx.config.dir,
            work: &self.work,
        }
    }

    /// The release `name` stands for on this environment: an id (a collected or yanked
    /// one too: the caller decides what that means), `HEAD` / `HEAD~N`, a tag, or an
    /// unambiguous prefix of an id in live's history.
    pub(crate) async fn release_named(&self, name: &str) -> Result<String, Error> {
        let env = &self.cfg.name;
        let back = match name {
            "HEAD" | "@" => Some(0),
            _ => name
                .strip_prefix("HEAD~")
                .map(|n| {
                    n.parse::<usize>().map_err(|_| {
                        Error::Usage(format!(
                            "{name}: HEAD~N takes a number of releases back (HEAD~1 is the one before live)"
                        ))
                    })
                })
                .transpose()?
                .or_else(|| name.strip_prefix("HEAD^").map(|c| 1 + c.chars().filter(|&c| c == '^').count())),
        };
        if let Some(n) = back {
            let (history, _) = self.ledger.history_refs(None, n + 1).await?;
            return history.get(n).map(|r| r.id.clone()).ok_or_else(|| {
                Error::Usage(format!(
                    "{name}: {env} has {} release(s) in live's history; `driftless log {env}` lists them",
                    history.len()
                ))
            });
        }
        if crate::ledger::is_release_id(name) {
            return match self.ledger.release_ref(name).await {
                Ok(_) => Ok(name.to_owned()),
                Err(_) => Err(Error::Usage(format!(
                    "{name} is not a release that was live on {env}; see `driftless log {env}`"
                ))),
            };
        }
        let (history, _) = self.ledger.history_refs(None, usize::MAX).await?;
        if let Some(r) = history.iter().find(|r| r.tag.as_deref() == Some(name)) {
            return Ok(r.id.clone());
        }
        let matching: Vec<&crate::ledger::ReleaseRef> =
            history.iter().filter(|r| r.id.starts_with(name)).collect();
        match matching.as_slice() {
            [one] if name.len() >= 4 => Ok(one.id.clone()),
            [] | [_] => Err(Error::Usage(format!(
                "{name:?} names no release of {env}: use {}; `driftless log {env}` lists them",
                crate::cli::RELEASE_NAMES
            ))),
            many => Err(Error::Usage(format!(
                "{name:?} is the start of {} releases of {env} ({}{}): give more of the id",
                many.len(),
                many.iter()
                    .take(5)
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if many.len() > 5 { ", …" } else { "" }
            ))),
        }
    }

    /// A tag for a new release: a name people type, not taken on this environment.
    pub(crate) async fn check_new_tag(&self, tag: &str) -> Result<(), Error> {
        let env = &self.cfg.name;
        let ok = !tag.is_empty()
            && tag.len() <= 64
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && !tag.starts_with("HEAD")
            && !crate::ledger::is_release_id(tag);
        if !ok {
            return Err(Error::Usage(format!(
                "--tag {tag:?}: a tag is 1–64 letters, digits, '.', '_', '-' or '+', starting with a letter or digit (not HEAD…, not a release id), e.g. v1.4"
            )));
        }
        let (history, _) = self.ledger.history_refs(None, usize::MAX).await?;
        if let Some(r) = history.iter().find(|r| r.tag.as_deref() == Some(tag)) {
            return Err(Error::Usage(format!(
                "--tag {tag}: release {r} of {env} already has it; tags name one release each"
            )));
        }
        Ok(())
    }

    /// Take the environment's lease or refuse, naming the holder.
    pub(crate) async fn lock(&self, operation: &str) -> Result<HeldLease, Error> {
        self.lock_for(operation, None).await
    }

    /// Take the lease to make `release` live (the lock names it, so a run that finds it
    /// live after its holder died can clear the lock).
    pub(crate) async fn lock_for(
        &self,
        operation: &str,
        release: Option<&str>,
    ) -> Result<HeldLease, Error> {
        match self
            .ledger
            .lock(&self.ctx.actor, operation, release, crate::apply::LEASE)
            .await?
        {
            Ok(lock) => {
                if let Some(old) = &lock.taken_over {
                    let why = if old.holder_is_dead_here() {
                        format!(
                            "process {} is no longer running on this host",
                            old.holder.pid
                        )
                    } else {
                        format!(
                            "its lease expired at {}",
                            crate::text::short_time(old.expires_at)
                        )
                    };
                    self.ctx.out.say(format!(
                        "note: took over the lock of {} on {} (`{}` since {}): {why}.",
                        crate::text::esc(&old.holder.author),
                        crate::text::esc(&old.holder.host),
                        old.operation,
                        crate::text::short_time(old.started_at)
                    ));
                }
                Ok(self.ledger.hold_lease(lock, crate::apply::LEASE))
            }
            Err(held) => Err(Error::Refused(format!(
                "{} is locked: {} on {} is running `{}` since {} (lease until {})\n  → wait for it to finish; if that run is dead: driftless unlock {}",
                self.cfg.name,
                held.holder.author,
                held.holder.host,
                held.operation,
                crate::text::short_time(held.started_at),
                crate::text::short_time(held.expires_at),
                self.cfg.name
            ))),
        }
    }

    /// A lock whose holder is gone: dead on this host, or its release already live and
    /// no renewal for three renewal periods (a live holder renews every tenth of the
    /// lease). Cleared (only if it is still the one read), journalled and said: a no-op
    /// run must not leave the environment locked until the lease runs out.
    pub(crate) async fn clear_finished_lock(&self) -> Result<(), Error> {
        let Some((held, etag)) = self.ledger.read_lock().await? else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let silent = held.silent_for(now);
        let quiet = silent
            > jiff::SignedDuration::try_from(crate::apply::LEASE * 3 / 10).unwrap_or_default();
        let live = self.ledger.head().await?.release;
        let why = if held.holder_is_dead_here() {
            format!(
                "process {} is no longer running on this host",
                held.holder.pid
            )
        } else if quiet
            && held.release.is_some()
            && held.release == live
            && self.ledger.pending().await?.is_none()
        {
            format!(
                "its release {} is live and the lease was last renewed {:#} ago",
                held.release.as_deref().unwrap_or_default(),
                jiff::SignedDuration::from_secs(silent.as_secs())
            )
        } else {
            return Ok(());
        };
        match self.ledger.break_lock(&etag).await {
            Ok(()) => {}
            // Taken or released meanwhile: not ours to clear.
            Err(crate::ledger::LedgerError::Store(
                crate::store::StoreError::Precondition { .. }
                | crate::store::StoreError::NotFound { .. },
            )) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.ctx.out.say(format!(
            "note: cleared the lock of {} on {} (`{}` since {}): {why}.",
            crate::text::esc(&held.holder.author),
            crate::text::esc(&held.holder.host),
            held.operation,
            crate::text::short_time(held.started_at)
        ));
        self.journal(
            "lock-cleared",
            None,
            serde_json::json!({ "previous": held, "why": why }),
        )
        .await;
        Ok(())
    }

    /// Refuse to write to a store that ignores conditional writes, unless the user
    /// explicitly accepted the risk (`--force unsafe-store`, printed and journalled).
    pub(crate) async fn ensure_store_trusted(&self, allow_unsafe: bool) -> Result<(), Error> {
        let report = self.ledger.probe().await?;
        if report.trusted() {
            return Ok(());
        }
        let ignored = report.ignored.join("; ");
        let what = crate::plan::guards::unsafe_store(&self.ledger.store().location(), &ignored);
        if allow_unsafe {
            self.ctx.out.say(format!(
                "warning: {what}; continuing because of --force unsafe-store"
            ));
            self.journal(
                "forced",
                None,
                serde_json::json!({ "guard": "unsafe-store", "ignored": ignored }),
            )
            .await;
            return Ok(());
        }
        Err(Error::Refused(format!(
            "{what}\n  → use a store that honours them (AWS S3, MinIO, Cloudflare R2, SeaweedFS, Ceph), or accept the risk with --force unsafe-store"
        )))
    }

    /// If an earlier apply died midway, finish it (under the lock) before anything else.
    pub(crate) async fn finish_interrupted(&self) -> Result<(), Error> {
        // Recovery copies objects: apply what the store probe learned first.
        self.ledger.load_probe().await?;
        if self.ledger.pending().await?.is_none() {
            return Ok(());
        }
        let lock = self.lock("recover").await?;
        let result = async {
            if let Some((pending, etag)) = self.ledger.pending().await? {
                let by = pending.release.actor.author.clone();
                match crate::apply::recover(&self.ledger, pending, &etag, &self.ctx.actor).await? {
                    crate::apply::Recovered::Dropped(release) => self.ctx.out.say(format!(
                        "Dropped an unfinished apply of release {} (started by {by}): nothing of it was ever served on {}.",
                        release.id, self.cfg.name
                    )),
                    crate::apply::Recovered::Finished(release) => {
                        if self.work.pending().as_deref() == Some(release.id.as_str()) {
                            self.work.set_base(&release.id)?;
                        }
                        self.ctx.out.say(format!(
                            "Finished an interrupted apply: release {} (started by {by}) is now live on {}.",
                            release.id, self.cfg.name
                        ));
                    }
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        lock.release(&self.ledger).await?;
        result
    }

    /// Bytes of one release entry: from `objects/`, or the site key if it still matches.
    pub(crate) async fn entry_bytes(
        &self,
        key: &str,
        entry: &crate::ledger::Entry,
    ) -> Result<bytes::Bytes, Error> {
        if let Some(b) = self.ledger.read_content(&entry.sha256).await? {
            return Ok(b);
        }
        let prefix = self.ledger.live_prefix().await?.unwrap_or_default();
        match self.ledger.store().get(&format!("{prefix}{key}")).await? {
            Some((_, b)) if crate::digest::hash_bytes(&b) == entry.sha256 => Ok(b),
            _ => Err(Error::Other(format!(
                "{key}: content {} is in neither objects/ nor the site",
                entry.sha256
            ))),
        }
    }
}
