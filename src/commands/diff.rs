//! `driftless diff ENV [--against …]`: what differs, key by key and line by line for text,
//! between two of the local site, the store as it is, a release, another environment.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::ledger::{Entry, Manifest};
use crate::plan::facts::read_site;
use crate::plan::{Desired, Source};
use crate::text::esc;

/// One side of a diff: a manifest and where to read its bytes.
enum Side<'a> {
    Local(BTreeMap<String, Desired>),
    Release(&'a EnvCtx<'a>, Manifest),
    /// What the store holds now at each site key, read from the store itself.
    Store(&'a EnvCtx<'a>, BTreeMap<String, String>),
}

impl Side<'_> {
    fn shas(&self) -> BTreeMap<String, (String, Option<String>)> {
        match self {
            Side::Local(d) => d
                .iter()
                .map(|(k, d)| {
                    (
                        k.clone(),
                        (
                            d.entry.sha256.clone(),
                            d.entry.content_type.as_deref().map(str::to_owned),
                        ),
                    )
                })
                .collect(),
            Side::Release(_, m) => m
                .iter()
                .map(|(k, e)| {
                    (
                        k.clone(),
                        (
                            e.sha256.clone(),
                            e.content_type.as_deref().map(str::to_owned),
                        ),
                    )
                })
                .collect(),
            Side::Store(_, shas) => shas
                .iter()
                .map(|(k, sha)| (k.clone(), (sha.clone(), Some(crate::site::content_type(k)))))
                .collect(),
        }
    }

    async fn bytes(&self, key: &str) -> Result<Option<Bytes>, Error> {
        match self {
            Side::Local(d) => match d.get(key) {
                Some(Desired {
                    source: Source::Local(p),
                    entry,
                }) => Ok(Some(readable(fs_err::read(p)?.into(), entry))),
                _ => Ok(None),
            },
            Side::Release(ec, m) => match m.get(key) {
                Some(e) => Ok(Some(readable(ec.entry_bytes(key, e).await?, e))),
                None => Ok(None),
            },
            Side::Store(ec, _) => {
                let prefix = ec.ledger.live_prefix().await?.unwrap_or_default();
                Ok(ec
                    .ledger
                    .store()
                    .get(&format!("{prefix}{key}"))
                    .await?
                    .map(|(obj, body)| {
                        let entry = Entry::from_attributes("", obj.meta.size, &obj.attrs, "");
                        readable(body, &entry)
                    }))
            }
        }
    }
}

/// Bytes to show a person: a gzip or brotli object decoded (as a browser would).
fn readable(body: Bytes, entry: &Entry) -> Bytes {
    let enc = match entry.content_encoding.as_deref() {
        Some("gzip") => crate::config::Precompress::Gzip,
        Some("br") => crate::config::Precompress::Br,
        _ => return body,
    };
    crate::site::decompress(&body, enc).map_or(body, Bytes::from)
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.starts_with("text/")
            || ["json", "javascript", "xml", "svg"]
                .iter()
                .any(|w| t.contains(w))
    })
}

pub(super) async fn diff(
    ctx: &Ctx,
    env: &str,
    against: &str,
    paths: &[String],
) -> Result<usize, Error> {
    let ec = ctx.env(env).await?;
    let (_, live) = ec.ledger.live().await?;
    let left_manifest = live
        .as_ref()
        .map(|l| l.manifest.clone())
        .unwrap_or_default();
    let left_name = env.to_owned();
    let left_rules = live.as_ref().and_then(|l| l.edge.clone());
    let other_env;
    let known = || {
        ctx.config
            .envs
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    // `local` and `store` are keywords; an environment with such a name is `env:NAME`.
    let other = against
        .strip_prefix("env:")
        .or_else(|| (!["local", "store"].contains(&against)).then_some(against))
        .filter(|name| ctx.config.envs.contains_key(*name));
    // The `[edge]` rules of the right side, when it has recorded ones.
    let mut right_rules = None;
    let (right, right_name) = if against == "local" {
        right_rules = Some(crate::config::EdgeRules::of(&ctx.config.edge));
        (
            Side::Local(super::planning::scan_site(ctx)?.desired),
            "local build".to_owned(),
        )
    } else if against == "store" {
        let remote = read_site(&ec.ledger, live.as_ref()).await?;
        let shas = remote
            .into_iter()
            .filter_map(|(k, r)| r.sha256.map(|s| (k, s)))
            .collect();
        (Side::Store(&ec, shas), format!("{env} store"))
    } else if let Some(name) = other {
        other_env = ctx.env(name).await?;
        let (_, other_live) = other_env.ledger.live().await?;
        right_rules = other_live.as_ref().and_then(|l| l.edge.clone());
        let m = other_live.map(|l| l.manifest).unwrap_or_default();
        (Side::Release(&other_env, m), name.to_owned())
    } else if let Some(name) = against.strip_prefix("env:") {
        return Err(Error::Usage(format!(
            "--against env:{name}: no such environment (known: {})",
            known()
        )));
    } else {
        let id = ec.release_named(against).await.map_err(|_| {
            Error::Usage(format!(
                "--against {against}: not `local` (your build), `store`, an environment ({}), or a release of {env} ({})",
                known(),
                crate::cli::RELEASE_NAMES
            ))
        })?;
        // A collected or yanked release has no bytes left to compare: say so, and why.
        if let Err(gone) = ec.ledger.restorable(&id).await? {
            return Err(Error::Usage(format!(
                "--against {against}: release {id} was {}: its files are gone, so there is nothing to compare\n  → `driftless log {env}` shows the releases that can still be compared",
                gone.describe()
            )));
        }
        let r = ec.ledger.release(&id).await?;
        right_rules = r.edge.clone();
        (Side::Release(&ec, r.manifest), id)
    };
    let edge = match (&left_rules, &right_rules) {
        (Some(l), Some(r)) => r.changes_from(l),
        _ => Vec::new(),
    };
    let left = Side::Release(&ec, left_manifest);
    let (ls, rs) = (left.shas(), right.shas());
    let keys: BTreeSet<&String> = ls.keys().chain(rs.keys()).collect();
    let mut changes = Vec::new();
    let mut text_out = String::new();
    for key in keys {
        if !paths.is_empty()
            && !paths
                .iter()
                .any(|p| key == p || key.starts_with(&format!("{}/", p.trim_end_matches('/'))))
        {
            continue;
        }
        let (l, r) = (ls.get(key), rs.get(key));
        if l.map(|x| &x.0) == r.map(|x| &x.0) {
            continue;
        }
        let status = match (l, r) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        let ct = r.or(l).and_then(|x| x.1.as_deref());
        let mut unified = None;
        if is_text(ct) {
            let a = left.bytes(key).await?.unwrap_or_default();
            let b = right.bytes(key).await?.unwrap_or_default();
            if let (Ok(a), Ok(b)) = (std::str::from_utf8(&a), std::str::from_utf8(&b)) {
                let d = similar::TextDiff::from_lines(a, b)
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{left_name}/{}", esc(key)),
                        &format!("{right_name}/{}", esc(key)),
                    )
                    .to_string();
                unified = Some(d);
            }
        }
        match &unified {
            Some(d) => text_out.push_str(d),
            None => text_out.push_str(&format!(
                "Binary files {left_name}/{k} and {right_name}/{k} differ\n",
                k = esc(key)
            )),
        }
        changes.push(serde_json::json!({ "key": key, "status": status, "diff": unified }));
    }
    if !edge.is_empty() {
        ctx.out
            .say(format!("[edge] rules, {left_name} (live) → {right_name}:"));
        for c in &edge {
            ctx.out.say(format!("  {}", crate::text::esc(c)));
        }
    }
    if changes.is_empty() && edge.is_empty() {
        ctx.out.say(format!(
            "No differences between {left_name} (live) and {right_name}."
        ));
        if against == "local" && ctx.config.envs.contains_key("local") {
            ctx.out.say(
                "(`--against local` is your build; the environment named local is `--against env:local`)",
            );
        }
    } else {
        ctx.out.say(text_out.trim_end());
    }
    ctx.out.document_with(
        || serde_json::json!({ "left": left_name, "right": right_name, "changes": changes, "edge": edge }),
    );
    Ok(changes.len() + edge.len())
}
