//! Commands about an environment's state: `status`, `log`, `hold`, `unhold`, `unlock`.

use jiff::Timestamp;

use super::Ctx;
use crate::Error;
use crate::config::Layout;
use crate::ledger::{Hold, Release};
use crate::plan::base::BaseSource;
use crate::plan::drift;
use crate::plan::facts::read_site;
use crate::text::esc;
use crate::text::short_time;
use crate::ui::Style;

/// How many drifted keys `status` lists before "and N more" (`--json` lists all).
const LISTED: usize = 10;

pub(super) async fn status(ctx: &Ctx, env: &str) -> Result<(), Error> {
    // Read-only, and it reports the identity (flagging a mismatch) itself: one STS call.
    let ec = ctx.env_unchecked(env).await?;
    let (_, live) = ec.ledger.live().await?;
    let pending = ec.ledger.pending().await?.map(|(p, _)| p);
    let remote = read_site(&ec.ledger, live.as_ref()).await?;
    let mut drift = drift(live.as_ref().map(|l| &l.manifest), &remote);
    crate::plan::guards::expected_changes(&mut drift, live.as_ref(), pending.as_ref(), &remote);
    let holds: Vec<Hold> = ec.ledger.hold_list().await?;
    let lock = ec.ledger.read_lock().await?.map(|(l, _)| l);
    let layout = ec.ledger.layout().await?;
    let pointer = ec.ledger.pointer().await?;
    let (slots, _) = ec.ledger.slots().await?;
    let (previews, _) = ec.ledger.previews().await?;
    let canary = match layout {
        Layout::Atomic => ec.ledger.canary().await?.map(|(c, _)| c),
        Layout::InPlace => None,
    };
    let now = jiff::Timestamp::now();
    let expired = previews.0.values().filter(|p| p.expired(now)).count();
    let live_id = live.as_ref().map(|l| l.id.clone());
    let layout_line = layout_line(
        layout,
        pointer.as_ref(),
        &slots,
        live_id.as_deref(),
        &ec.ledger.pointer_location(),
        canary.as_ref(),
        env,
    );
    let live = live.map(std::sync::Arc::new);
    let base = crate::plan::base::resolve(&ec.working(), live.as_ref()).await?;
    let stale = base
        .stale
        .as_ref()
        .map(|s| crate::plan::guards::stale_base(env, s).message);

    let out = &ctx.out;
    out.say(format!(
        "{} ({})",
        out.paint(env, Style::Strong),
        ec.ledger.store().location()
    ));
    match &live {
        Some(l) => {
            let s = l.summary();
            out.say(format!("  live     {s}"));
            if let Some(m) = &s.message {
                out.say(format!("           \"{}\"", esc(m)));
            }
            out.say(format!("           {} files, {}", s.files, l.kind));
        }
        None => out.say("  live     (none yet: `driftless deploy` or `driftless adopt` makes the first release)"),
    }
    let (mismatch, line) = &layout_line;
    out.say(format!(
        "  layout   {}",
        if *mismatch {
            out.paint(line, Style::Bad)
        } else {
            line.clone()
        }
    ));
    if let Some(c) = &canary {
        out.say(format!(
            "  canary   {}",
            out.paint(
                &format!(
                    "{}% of visitors get release {} (slot {}), {}% get {} — since {} by {}; `driftless canary {env} --finish | --abort`",
                    c.percent,
                    c.release,
                    c.slot,
                    100 - c.percent,
                    c.live,
                    crate::text::short_time(c.started_at),
                    esc(&c.author)
                ),
                Style::Warn
            )
        ));
    }
    if !previews.0.is_empty() {
        out.say(format!(
            "  previews {} ({expired} expired{}): `driftless previews {env}`",
            previews.0.len(),
            if expired > 0 {
                format!(", removed by `driftless gc {env}`")
            } else {
                String::new()
            }
        ));
    }
    if let Some(p) = &pending {
        let served = p.slot.is_some() && pointer.as_ref().map(|x| &x.slot) == p.slot.as_ref();
        let what = if p.slot.is_none() || served {
            format!("`driftless deploy {env}` finishes it")
        } else {
            format!(
                "nothing of it is served: the next `driftless deploy {env}` or `driftless rollback {env}` drops it (re-run the same deploy to make it live: nothing is uploaded twice)"
            )
        };
        out.say(format!(
            "  pending  {} an apply of release {} by {} was interrupted: {what}",
            out.paint("!", Style::Bad),
            p.release.id,
            esc(&p.release.actor.author)
        ));
    }
    if drift.is_empty() {
        out.say(format!(
            "  drift    {}",
            out.paint("none: the store matches the live release", Style::Good)
        ));
    } else {
        out.say(format!(
            "  drift    {}",
            out.paint(
                &format!("{} object(s) differ from the live release", drift.len()),
                Style::Warn
            )
        ));
        for d in drift.iter().take(LISTED) {
            out.say(format!(
                "           {:<8} {}",
                format!("{:?}", d.kind).to_lowercase(),
                esc(&d.key)
            ));
        }
        if drift.len() > LISTED {
            out.say(format!(
                "           … and {} more (`driftless status {env} --json` lists all; `driftless diff {env} --against store` shows them)",
                drift.len() - LISTED
            ));
        }
    }
    let storage = ec.ledger.storage().await?;
    let retention = &ctx.config.retention;
    out.say(format!(
        "  storage  {} release record(s) ({}), {} collected or yanked; snapshots {} ({} pack(s), {} object(s)); `driftless gc {env}` keeps the {} newest{}",
        storage.releases,
        crate::text::bytes(storage.release_bytes),
        storage.retired,
        crate::text::bytes(storage.snapshot_bytes),
        storage.packs,
        storage.objects,
        retention.keep_releases,
        retention
            .keep_days
            .map(|d| format!(" and those of the last {d:#}"))
            .unwrap_or_default()
    ));
    // Kept keys still served (gc may have deleted expired ones since the release).
    let kept: Vec<&crate::ledger::Kept> = live
        .as_deref()
        .map(|l| {
            l.kept
                .iter()
                .filter(|(k, v)| remote.get(*k).is_some_and(|r| r.etag == v.entry.etag))
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default();
    if !kept.is_empty() {
        let until = kept.iter().map(|k| k.until).max().map(short_time);
        let next = kept.iter().map(|k| k.until).min().map(short_time);
        out.say(format!(
            "  kept     {} removed asset(s) still served for open pages; the first grace ends {}, the last {}",
            kept.len(),
            next.unwrap_or_default(),
            until.unwrap_or_default()
        ));
    }
    if holds.is_empty() {
        out.say("  holds    none");
    }
    for h in &holds {
        out.say(format!(
            "  hold     {} since {} by {}: {}",
            out.paint("ON HOLD", Style::Bad),
            short_time(h.at),
            esc(&h.by.author),
            esc(&h.reason)
        ));
    }
    match &lock {
        None => out.say("  lock     free"),
        Some(l) => out.say(format!("  lock     {}", lock_line(l))),
    }
    let base_line = match (&base.base, &live) {
        (Some(b), Some(l)) if b.id == l.id => "live (up to date)".to_owned(),
        (Some(b), _) => format!("release {}", b.summary()),
        (None, Some(_)) => "unknown (never deployed or pulled from this working copy)".to_owned(),
        (None, None) => "none (nothing live yet)".to_owned(),
    };
    let how = match base.source {
        BaseSource::Git => " — from git: the newest release built from a commit you contain",
        BaseSource::WorkingCopy => " — the release this working copy last deployed or pulled",
        BaseSource::Preview => " — the base of the preview's build",
        BaseSource::None => "",
    };
    out.say(format!("  base     {base_line}{how}"));
    if let Some(stale) = &stale {
        out.say(format!(
            "           {} {}",
            out.paint("stale:", Style::Warn),
            stale
        ));
    }
    let watched = match &live {
        Some(l) => ec.ledger.watched(&l.id).await?,
        None => None,
    };
    if let Some(w) = &watched {
        let style = if w.healthy { Style::Good } else { Style::Bad };
        out.say(format!("  watch    {}", out.paint(&w.describe(), style)));
    }
    let doctor: Option<serde_json::Value> =
        ec.ledger.state_json("doctor.json").await?.map(|(d, _)| d);
    if let Some(d) = &doctor {
        let failed = d["failed"].as_u64().unwrap_or(0);
        let line = format!(
            "last run {} by {}: {failed} failed, {} warning(s){}",
            d["at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map_or_else(|| "?".to_owned(), crate::text::short_time),
            esc(d["by"]["author"].as_str().unwrap_or("?")),
            d["warned"].as_u64().unwrap_or(0),
            if failed > 0 {
                format!(" — `driftless doctor {env}` shows them")
            } else {
                String::new()
            }
        );
        let style = if failed > 0 { Style::Bad } else { Style::Good };
        out.say(format!("  doctor   {}", out.paint(&line, style)));
    }
    // The edge, when driftless publishes it: which side moved since.
    let edge = match &ec.cfg.cdn {
        Some(_) => match ec.compile_edge().await {
            Ok(c) => crate::apply::edge::environment::drift(&ec.edge(), &c)
                .await
                .unwrap_or_else(|e| Some((true, format!("could not be read: {e}")))),
            Err(e) => Some((true, format!("[edge] does not compile: {e}"))),
        },
        None => None,
    };
    if let Some((moved, line)) = &edge {
        let style = if *moved { Style::Warn } else { Style::Good };
        out.say(format!("  edge     {}", out.paint(line, style)));
    }
    let (identity, identity_line) = crate::aws::sts::describe(ec.cfg).await;
    out.say(format!("  identity {identity_line}"));
    out.document_with(|| {
        serde_json::json!({
            "env": env,
            "store": ec.ledger.store().location(),
            "live": live.as_deref().map(Release::summary),
            "pending": pending.as_ref().map(|p| p.release.summary()),
            "layout": layout.name(),
            "pointer": pointer.as_ref().map(|p| serde_json::json!({
                "at": ec.ledger.pointer_location(),
                "slot": p.slot,
                "release": slots.get(&p.slot).map(|h| &h.release),
            })),
            "slots": slots,
            "previews": { "count": previews.0.len(), "expired": expired },
            "canary": canary,
            "pointer_matches_head": !layout_line.0,
            "drift": drift,
            "kept": live.as_deref().map(|l| &l.kept),
            "storage": storage,
            "holds": holds,
            "lock": lock,
            "lock_holder_dead": lock.as_ref().map(crate::ledger::LockInfo::holder_is_dead_here),
            "base": base.base.as_deref().map(Release::summary),
            "base_source": base.source,
            "stale_base": stale,
            "identity": identity,
            "edge": edge.as_ref().map(|(moved, line)| serde_json::json!({ "moved": moved, "what": line })),
            "watch": watched,
            "doctor": doctor,
        })
    });
    Ok(())
}

/// The layout line of `status`: whether the pointer disagrees with HEAD, and what to say.
fn layout_line(
    layout: Layout,
    pointer: Option<&crate::ledger::Pointer>,
    slots: &crate::ledger::Slots,
    live: Option<&str>,
    at: &str,
    canary: Option<&crate::ledger::Canary>,
    env: &str,
) -> (bool, String) {
    match (layout, pointer) {
        (Layout::InPlace, _) => (
            false,
            "in-place: releases are written into the keys visitors read, so during an apply a visitor can get new pages with old assets or the reverse (`layout = \"atomic\"` switches in one write)".into(),
        ),
        (Layout::Atomic, None) => (
            false,
            "atomic: no release yet; the first deploy writes slot a and points `current` at it".into(),
        ),
        (Layout::Atomic, Some(p)) => {
            let served = slots.get(&p.slot).map(|h| h.release.as_str());
            let idle = crate::ledger::other_slot(&p.slot);
            if let Some(c) = canary.filter(|c| c.slot == p.slot) {
                return (
                    true,
                    format!(
                        "atomic: the pointer ({at}) serves slot {} = the canary's release {}, but HEAD is {}: a finish of the canary was interrupted; `driftless canary {} --finish` completes it",
                        p.slot,
                        c.release,
                        live.unwrap_or("(none)"),
                        env
                    ),
                );
            }
            let idle_line = match slots.get(idle) {
                Some(h) if canary.is_some_and(|c| c.slot == idle && c.release == h.release) => {
                    format!("slot {idle} holds the canary {} (served to its share of visitors)", h.release)
                }
                Some(h) if h.complete => format!("slot {idle} holds {} (a rollback to it is one pointer write)", h.release),
                Some(h) => format!("slot {idle} holds part of {} (an apply that did not finish)", h.release),
                None => format!("slot {idle} is empty"),
            };
            if served.is_some() && served == live {
                (
                    false,
                    format!(
                        "atomic: the pointer ({at}) serves slot {} = release {}; {idle_line}",
                        p.slot,
                        served.unwrap_or_default()
                    ),
                )
            } else {
                (
                    true,
                    format!(
                        "atomic: the pointer ({at}) serves slot {} = release {}, but HEAD is {}: the next deploy or rollback repairs it",
                        p.slot,
                        served.unwrap_or("(unknown)"),
                        live.unwrap_or("(none)")
                    ),
                )
            }
        }
    }
}

/// Who holds a lock, and whether that run is still alive.
fn lock_line(l: &crate::ledger::LockInfo) -> String {
    let state = if l.holder_is_dead_here() {
        format!(
            " — dead: process {} is no longer running on this host; the next deploy takes the lock over",
            l.holder.pid
        )
    } else if l.expired(Timestamp::now()) {
        " — expired; the next deploy takes the lock over".to_owned()
    } else {
        String::new()
    };
    format!(
        "held by {} on {} (pid {}, `{}`) since {}, lease until {}{state}",
        esc(&l.holder.author),
        esc(&l.holder.host),
        l.holder.pid,
        l.operation,
        short_time(l.started_at),
        short_time(l.expires_at),
    )
}

pub(super) async fn log(ctx: &Ctx, env: &str, limit: usize) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let history = ec.ledger.history_refs(None, limit).await?.0;
    // Releases that can no longer be restored (collected, yanked): marked.
    let ids = ec.ledger.retired_ids().await?;
    let mut retired = std::collections::BTreeMap::new();
    for s in history.iter().filter(|s| ids.contains(&s.id)) {
        if let Some(r) = ec.ledger.retired(&s.id).await? {
            retired.insert(s.id.clone(), r);
        }
    }
    let watched_ids = ec.ledger.watched_ids().await?;
    let mut watched = std::collections::BTreeMap::new();
    for s in history.iter().filter(|s| watched_ids.contains(&s.id)) {
        if let Some(w) = ec.ledger.watched(&s.id).await? {
            watched.insert(s.id.clone(), w);
        }
    }
    // Canaries: each step under its release; an aborted one (never live, so not in
    // live's history) in its place in time.
    let steps = ec.ledger.canary_steps().await?;
    let mut canaries: std::collections::BTreeMap<&str, Vec<&crate::ledger::CanaryStep>> =
        std::collections::BTreeMap::new();
    for st in &steps {
        canaries.entry(st.release.as_str()).or_default().push(st);
    }
    let in_history: std::collections::HashSet<&str> =
        history.iter().map(|s| s.id.as_str()).collect();
    let oldest = history.last().map(|s| s.created_at);
    let mut aborted = Vec::new();
    for (id, st) in &canaries {
        let started = st.first().map(|s| s.at);
        if in_history.contains(id) || started.zip(oldest).is_some_and(|(s, o)| s < o) {
            continue;
        }
        if let Ok(r) = ec.ledger.release(id).await {
            aborted.push(r.summary());
        }
    }
    aborted.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let out = &ctx.out;
    if history.is_empty() && aborted.is_empty() {
        out.say(format!("{env} has no releases yet."));
    }
    let canary_line = |id: &str| -> Option<String> {
        let st = canaries.get(id)?;
        let parts: Vec<String> = st
            .iter()
            .map(|c| {
                let what = match c.step.as_str() {
                    "start" => format!("started on {}%", c.percent),
                    "share" => format!("{}%", c.percent),
                    "finish" => format!("finished (from {}%)", c.percent),
                    "abort" => format!("aborted (at {}%)", c.percent),
                    other => other.to_owned(),
                };
                let why = c
                    .why
                    .as_deref()
                    .map(|w| format!(": {}", esc(w)))
                    .unwrap_or_default();
                format!("{what} by {} at {}{why}", esc(&c.by), short_time(c.at))
            })
            .collect();
        Some(format!("    canary: {}", parts.join("; ")))
    };
    let state_of = |id: &str| match canaries
        .get(id)
        .and_then(|s| s.last())
        .map(|s| s.step.as_str())
    {
        Some("abort") => "(canary, aborted)",
        _ => "(canary, running)",
    };
    let mut pending_aborted = aborted.iter().peekable();
    for (i, s) in history.iter().enumerate() {
        while let Some(a) = pending_aborted.next_if(|a| a.created_at > s.created_at) {
            out.say(format!(
                "{} {}  {}, {} files",
                out.paint(&a.id, Style::Dim),
                out.paint(state_of(&a.id), Style::Warn),
                a.kind,
                a.files
            ));
            out.say(format!(
                "    by {} at {} — not live for everyone",
                esc(&a.author),
                short_time(a.created_at)
            ));
            out.say(canary_line(&a.id).unwrap_or_default());
        }
        if let Some(r) = retired.get(&s.id) {
            out.say(format!(
                "{} {}  {}",
                out.paint(&s.id, Style::Dim),
                out.paint(
                    if r.yanked() {
                        "(yanked)"
                    } else {
                        "(collected)"
                    },
                    Style::Warn
                ),
                r.describe()
            ));
            out.say(format!(
                "    {}, {} files, by {} at {} — cannot be rolled back to",
                s.kind,
                s.files,
                esc(&s.author),
                short_time(s.created_at)
            ));
            continue;
        }
        // Records made before overrides were de-duplicated name a guard once per file.
        let mut overrides: Vec<&str> = Vec::new();
        for o in &s.overrides {
            if !overrides.contains(&o.as_str()) {
                overrides.push(o);
            }
        }
        out.say(format!(
            "{}{} {}  {}, {} files{}",
            out.paint(&s.id, Style::Strong),
            s.tag
                .as_deref()
                .map(|t| format!(" [{}]", esc(t)))
                .unwrap_or_default(),
            if i == 0 {
                out.paint("(live)", Style::Good)
            } else {
                String::new()
            },
            s.kind,
            s.files,
            if overrides.is_empty() {
                String::new()
            } else {
                format!(", overrides: {}", overrides.join(", "))
            }
        ));
        out.say(format!(
            "    by {} on {} at {}{}",
            esc(&s.author),
            esc(&s.host),
            short_time(s.created_at),
            s.commit
                .as_ref()
                .map(|c| format!(
                    ", commit {}{}",
                    &c[..c.len().min(10)],
                    if s.dirty { " (dirty)" } else { "" }
                ))
                .unwrap_or_default()
        ));
        if let Some(m) = &s.message {
            out.say(format!("    {}", esc(m)));
        }
        // Its `[edge]` rules, when they differ from the release before it.
        if let Some(e) = &s.edge
            && history
                .get(i + 1)
                .is_none_or(|older| older.edge.as_ref() != Some(e))
        {
            out.say(format!(
                "    [edge] rules {} (changed; `driftless diff {env} --against {}` shows how)",
                &e[..12],
                history.get(i + 1).map_or("RELEASE", |o| o.id.as_str())
            ));
        }
        if let Some(w) = watched.get(&s.id) {
            let style = if w.healthy { Style::Good } else { Style::Bad };
            out.say(format!("    {}", out.paint(&w.describe(), style)));
        }
        if let Some(line) = canary_line(&s.id) {
            out.say(line);
        }
    }
    for a in pending_aborted {
        out.say(format!(
            "{} {}  {}, {} files",
            out.paint(&a.id, Style::Dim),
            out.paint(state_of(&a.id), Style::Warn),
            a.kind,
            a.files
        ));
        out.say(canary_line(&a.id).unwrap_or_default());
    }
    out.document_with(|| {
        serde_json::json!({
            "env": env,
            "releases": history.iter().map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["retired"] = serde_json::to_value(retired.get(&s.id)).unwrap_or_default();
                v["restorable"] = serde_json::Value::Bool(!retired.contains_key(&s.id));
                v["watch"] = serde_json::to_value(watched.get(&s.id)).unwrap_or_default();
                v["canary"] = serde_json::to_value(canaries.get(s.id.as_str())).unwrap_or_default();
                v
            }).collect::<Vec<_>>(),
            "aborted_canaries": aborted.iter().map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["canary"] = serde_json::to_value(canaries.get(a.id.as_str())).unwrap_or_default();
                v
            }).collect::<Vec<_>>(),
        })
    });
    Ok(())
}

/// A stop sign must go up at once: no confirmation (it only ever prevents changes).
pub(super) async fn hold(ctx: &Ctx, env: &str, reason: &str) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "--reason must say why (it is shown to whoever is refused)".into(),
        ));
    }
    let hold = Hold {
        id: format!(
            "{}-{}",
            Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
            &crate::digest::unique_token()[..6]
        ),
        reason: reason.to_owned(),
        by: ctx.actor.clone(),
        at: Timestamp::now(),
    };
    ec.ledger.set_hold(&hold).await?;
    ec.journal(
        "hold",
        None,
        serde_json::json!({ "reason": reason, "id": hold.id }),
    )
    .await;
    ctx.out.say(format!(
        "{env} is on hold: deploys are refused until `driftless unhold {env}`."
    ));
    ec.notify("hold", None, format!("on hold: {reason}")).await;
    ctx.out.document(&hold);
    Ok(())
}

pub(super) async fn unhold(ctx: &Ctx, env: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let holds = ec.ledger.holds().await?;
    if holds.is_empty() {
        ctx.out.say(format!("{env} has no holds."));
        ctx.out
            .document_with(|| serde_json::json!({ "lifted": [] }));
        return Ok(());
    }
    for (h, _) in &holds {
        ctx.out.say(format!(
            "hold by {} since {}: {}",
            esc(&h.by.author),
            short_time(h.at),
            esc(&h.reason)
        ));
    }
    if !ctx
        .out
        .confirm(&format!("Lift {} hold(s) on {env}?", holds.len()), yes)?
    {
        return Err(Error::Other("not confirmed; the holds stay".into()));
    }
    for (h, etag) in &holds {
        ec.ledger.lift_hold(h, etag).await?;
        ec.journal("unhold", None, serde_json::json!({ "lifted": h }))
            .await;
    }
    ctx.out
        .say(format!("Lifted {} hold(s) on {env}.", holds.len()));
    let reasons: Vec<&str> = holds.iter().map(|(h, _)| h.reason.as_str()).collect();
    ec.notify(
        "unhold",
        None,
        format!("lifted {} hold(s): {}", holds.len(), reasons.join("; ")),
    )
    .await;
    ctx.out.document_with(
        || serde_json::json!({ "lifted": holds.iter().map(|(h, _)| h).collect::<Vec<_>>() }),
    );
    Ok(())
}

pub(super) async fn unlock(ctx: &Ctx, env: &str, yes: bool) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let Some((lock, etag)) = ec.ledger.read_lock().await? else {
        ctx.out.say(format!("{env} is not locked."));
        ctx.out
            .document_with(|| serde_json::json!({ "broken": null }));
        return Ok(());
    };
    ctx.out
        .say(format!("{env} is locked: {}.", lock_line(&lock)));
    if !ctx
        .out
        .confirm("Break this lock? Only do so if that run is dead.", yes)?
    {
        return Err(Error::Other("not confirmed; the lock stays".into()));
    }
    ec.ledger.break_lock(&etag).await.map_err(|e| match e {
        crate::ledger::LedgerError::Store(crate::store::StoreError::Precondition { .. }) => {
            Error::Refused(
                "the lock changed while you were looking; run `driftless unlock` again".into(),
            )
        }
        other => other.into(),
    })?;
    ec.journal("unlock", None, serde_json::json!({ "broken": lock }))
        .await;
    ctx.out.say(format!("Broke the lock on {env}."));
    ctx.out
        .document_with(|| serde_json::json!({ "broken": lock }));
    Ok(())
}
