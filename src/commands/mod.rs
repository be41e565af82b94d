//! One thin file per command, each a plain function of resolved settings: [`dispatch`]
//! maps the parsed command line to them. [`context`] is what they run in; [`execute`]
//! shows a plan, asks, applies it and reports — the same for every kind of plan.

mod adopt;
mod canary;
mod cdn;
mod context;
mod deploy;
mod diff;
mod doctor;
mod edge;
mod edge_apply;
mod execute;
mod history;
mod init;
mod migrate;
mod planning;
mod preview;
mod promote;
mod pull;
mod rollback;
mod serve;
mod sign;
mod state;
mod tooling;
mod verify;
mod watch;

pub(crate) use context::{Ctx, EnvCtx};

use crate::Error;
use crate::cli::{Cli, Command};
use crate::ui::Output;

pub(crate) async fn dispatch(cli: Cli, out: Output) -> Result<(), Error> {
    match &cli.command {
        Command::Init { site } => return init::init(&out, site.as_deref()),
        Command::Completions { shell } => return tooling::completions(*shell),
        Command::Man { dir } => return tooling::man(dir.as_deref()),
        Command::Schema => {
            tooling::schema();
            return Ok(());
        }
        Command::Doctor { env: None } => {
            return doctor::self_check(&out, cli.global.config.as_deref()).await;
        }
        _ => {}
    }
    let ctx = match &cli.command {
        // `serve DIR` previews any build directory, with or without a project around it.
        Command::Serve {
            target: Some(dir), ..
        } if cli.global.config.is_none() && std::path::Path::new(dir).is_dir() => {
            Ctx::load_or_bare(dir, out)?
        }
        _ => Ctx::load(cli.global.config.as_deref(), out)?,
    };
    let changing = changed_env(&ctx, &cli.command);
    let result = run_command(&ctx, cli.command).await;
    if let (Err(Error::Refused(why)), Some(env)) = (&result, changing)
        && !crate::ui::notify::refusal_sent()
        && !ctx.config.notify.is_empty()
    {
        // Refused before a plan (lock, account, store): still news. Nothing is journalled
        // here: the refusal may be that this is the wrong account's store.
        let event = crate::ui::notify::Event {
            event: "refused",
            env: &env,
            at: jiff::Timestamp::now(),
            by: &ctx.actor,
            release: None,
            summary: why.clone(),
            url: ctx.config.envs.get(&env).and_then(|e| e.url.as_deref()),
        };
        crate::ui::notify::send(&ctx.config.notify, None, &event).await;
    }
    result
}

/// The environment a command would change, for the refusal notification.
fn changed_env(ctx: &Ctx, command: &Command) -> Option<String> {
    match command {
        Command::Deploy { env, .. } => ctx.env_name(env.as_deref(), "deploy").ok(),
        Command::Promote { to, .. } => Some(to.clone()),
        Command::Rollback { env, .. } | Command::Migrate { env, .. } => Some(env.clone()),
        Command::Apply { file, .. } => std::fs::read(file)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("env")?.as_str().map(str::to_owned)),
        _ => None,
    }
}

async fn run_command(ctx: &Ctx, command: Command) -> Result<(), Error> {
    match command {
        Command::Init { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Schema
        | Command::Doctor { env: None } => {
            unreachable!("handled above")
        }
        Command::Plan {
            env,
            out: file,
            message,
            force,
        } => {
            let env = ctx.env_name(env.as_deref(), "plan")?;
            deploy::plan(ctx, &env, file.as_deref(), message.message, &force.force).await
        }
        Command::Deploy {
            env,
            message,
            tag,
            confirm,
            force,
            watch: window,
            preview,
            replace,
            expires,
            from_preview,
            canary,
        } => {
            let env = ctx.env_name(env.as_deref(), "deploy")?;
            if let Some(w) = &window {
                watch::parse_window(w)?; // before deploying, not after
            }
            let what = deploy::What {
                message: message.message,
                tag: tag.tag,
            };
            if let Some(name) = preview {
                let expires = expires.as_deref();
                return preview::deploy(
                    ctx,
                    &env,
                    (&name, replace),
                    expires,
                    what,
                    confirm.yes,
                    &force.force,
                )
                .await;
            }
            match from_preview {
                Some(name) => {
                    preview::make_live(ctx, &env, &name, what, confirm.yes, &force.force, 60)
                        .await?;
                }
                None => {
                    deploy::deploy(ctx, &env, what, canary, confirm.yes, &force.force).await?;
                }
            }
            match window {
                Some(w) => watch::watch(ctx, &env, &w, false).await,
                None => Ok(()),
            }
        }
        Command::Apply { file, confirm } => deploy::apply_saved(ctx, &file, confirm.yes).await,
        Command::Status { env: Some(env) } => state::status(ctx, &env).await,
        Command::Status { env: None } => promote::pipeline(ctx).await,
        Command::Promote {
            from,
            to,
            release,
            from_preview,
            message,
            tag,
            timeout,
            confirm,
            force,
            watch: window,
        } => {
            if let Some(w) = &window {
                watch::parse_window(w)?; // before deploying, not after
            }
            let target = to.clone();
            let request = promote::Request {
                from,
                to,
                release,
                message: message.message,
                tag: tag.tag,
                from_preview,
                timeout,
                yes: confirm.yes,
            };
            promote::promote(ctx, request, &force.force).await?;
            match window {
                Some(w) => watch::watch(ctx, &target, &w, false).await,
                None => Ok(()),
            }
        }
        Command::Log { env, limit } => {
            state::log(ctx, &env, usize::try_from(limit).unwrap_or(usize::MAX)).await
        }
        Command::Diff {
            env,
            against,
            exit_code,
            paths,
        } => match diff::diff(ctx, &env, &against, &paths).await? {
            n if n > 0 && exit_code => Err(Error::Differences(n)),
            _ => Ok(()),
        },
        Command::Pull { env, dir, force } => pull::pull(ctx, &env, &dir, force).await,
        Command::Adopt {
            env,
            message,
            confirm,
        } => adopt::adopt(ctx, &env, message.message, confirm.yes).await,
        Command::Rollback {
            env,
            to,
            message,
            confirm,
        } => rollback::rollback(ctx, &env, to, message.message, confirm.yes).await,
        Command::Migrate {
            env,
            layout,
            finish,
            confirm,
        } => migrate::migrate(ctx, &env, &layout, finish, confirm.yes).await,
        Command::Hold { env, reason, .. } => state::hold(ctx, &env, &reason).await,
        Command::Unhold { env, confirm } => state::unhold(ctx, &env, confirm.yes).await,
        Command::Unlock { env, confirm } => state::unlock(ctx, &env, confirm.yes).await,
        Command::Serve { target, port, bind } => {
            serve::serve(ctx, target.as_deref(), &bind, port).await
        }
        Command::Verify {
            env,
            preview,
            timeout,
        } => verify::verify(ctx, &env, preview.as_deref(), timeout).await,
        Command::Edge {
            env,
            export,
            apply,
            paths,
            confirm,
        } => edge::edge(ctx, &env, export.as_deref(), apply, confirm.yes, &paths).await,
        Command::Doctor { env: Some(env) } => doctor::doctor(ctx, &env).await,
        Command::Watch {
            env,
            window,
            no_rollback,
        } => watch::watch(ctx, &env, &window, no_rollback).await,
        Command::Sign {
            env,
            path,
            cookie,
            expires,
            kid,
            subject,
            cwt,
        } => {
            let ask = sign::Ask {
                path: path.as_deref(),
                cookie,
                expires: &expires,
                kid: kid.as_deref(),
                subject: &subject,
                cwt,
            };
            sign::sign(ctx, &env, &ask).await
        }
        Command::Canary {
            env,
            finish,
            abort,
            percent,
            confirm,
        } => {
            let change = match (finish, abort, percent) {
                (true, _, _) => canary::Change::Finish,
                (_, true, _) => canary::Change::Abort,
                (_, _, Some(p)) => canary::Change::Percent(p),
                _ => canary::Change::Show,
            };
            canary::canary(ctx, &env, change, confirm.yes).await
        }
        Command::Previews {
            env,
            delete: Some(name),
            confirm,
        } => preview::delete(ctx, &env, &name, confirm.yes).await,
        Command::Previews { env, .. } => preview::list(ctx, &env).await,
        Command::Gc { env, keep, confirm } => {
            history::gc(
                ctx,
                &env,
                keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
                confirm.yes,
            )
            .await
        }
        Command::Yank {
            env,
            release,
            reason,
            confirm,
        } => history::yank(ctx, &env, &release, &reason, confirm.yes).await,
        Command::Invalidate {
            env,
            paths,
            confirm,
        } => cdn::invalidate(ctx, &env, &paths, confirm.yes).await,
    }
}
