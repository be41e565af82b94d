//! `driftless edge ENV`: what `[edge]` compiles to for CloudFront — the function and its
//! size against the budget, the headers policy, the error responses, and what a visitor
//! gets for sample paths — exported as files (with Terraform) or published (`--apply`).

use std::path::Path;

use super::{Ctx, EnvCtx};
use crate::Error;
use crate::edge::Compiled;
use crate::edge::cloudfront::CODE_BUDGET;
use crate::edge::terraform::{terraform, terraform_snippet};
use crate::edge::{Outcome, resolve};
use crate::text::esc;
use crate::ui::Style;

impl EnvCtx<'_> {
    /// Compile `[edge]` for what this environment serves (its live release; the local
    /// build when nothing is live yet).
    pub(crate) async fn compile_edge(&self) -> Result<Compiled, Error> {
        let edge = &self.ctx.config.edge;
        let (_, live) = self.ledger.live().await?;
        let live_id = live.as_ref().map(|l| l.id.clone());
        let live_release = live.clone();
        let (keys, from): (std::collections::BTreeSet<String>, String) = match live {
            Some(l) => (
                l.manifest.into_keys().collect(),
                format!("live release {}", l.id),
            ),
            None => {
                let site = super::planning::scan_site(self.ctx)?;
                (
                    site.desired.into_keys().collect(),
                    "your local build (nothing is live yet)".into(),
                )
            }
        };
        let atomic = if self.cfg.edge_reads_pointer() {
            // HEAD is the truth: the slot that holds the live release whole is what the
            // function falls back to when the KeyValueStore cannot be read.
            let (slots, _) = self.ledger.slots().await?;
            let held = live_id.and_then(|id| {
                crate::ledger::SLOTS.iter().find_map(|s| {
                    slots
                        .get(s)
                        .filter(|h| h.complete && h.release == id)
                        .map(|h| ((*s).to_owned(), h.clone()))
                })
            });
            let last_cells = match (&held, &live_release) {
                (Some((_, h)), Some(l)) => last_cells(h, l, edge),
                _ => std::collections::BTreeMap::new(),
            };
            Some(crate::edge::cloudfront::Atomic {
                pointer_key: crate::store::POINTER_KEY.to_owned(),
                last_known_good: held
                    .as_ref()
                    .map(|(s, h)| (s.clone(), h.cache_id().to_owned())),
                preview_host: self.cfg.preview_host(),
                last_root: held.and_then(|(_, h)| h.edge_root().cloned()),
                last_cells,
            })
        } else {
            None
        };
        crate::edge::compile_for(
            edge,
            &self.cfg.name,
            keys,
            from,
            &self.hidden(),
            atomic.as_ref(),
        )
        .map_err(Error::Usage)
    }

    /// Key prefixes visitors never get: the state, and the local store's internals.
    pub(crate) fn hidden(&self) -> Vec<String> {
        vec![self.cfg.state_prefix.clone(), ".driftless-store/".into()]
    }
}

/// The buckets of the live release's table, when they are few and small: compiled into
/// the function, so that the fallback routes right while the KeyValueStore cannot be read.
fn last_cells(
    held: &crate::ledger::Held,
    live: &crate::ledger::Release,
    config: &crate::config::EdgeConfig,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    const ROOM: usize = 1536;
    let (Some(e), Some(root)) = (&held.edge, held.edge_root()) else {
        return std::collections::BTreeMap::new();
    };
    let rules = live
        .edge
        .clone()
        .unwrap_or_else(|| crate::config::EdgeRules::of(config));
    let edge = crate::config::EdgeConfig::default().with_rules(&rules);
    let layout = crate::edge::table::layout_in(e);
    let Ok(data) = crate::edge::table::compile(
        &edge,
        live.served().map(|(k, _)| k.as_str()),
        layout.as_ref(),
    ) else {
        return std::collections::BTreeMap::new();
    };
    let cells: std::collections::BTreeMap<String, serde_json::Value> = data
        .values
        .into_iter()
        .filter(|(k, _)| !k.starts_with(crate::edge::table::HEADERS_PREFIX))
        .filter_map(|(k, v)| serde_json::from_str(&v).ok().map(|v| (k, v)))
        .collect();
    let size: usize = cells
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len())
        .sum();
    if data.root != *root || size > ROOM {
        return std::collections::BTreeMap::new();
    }
    cells
}

pub(super) async fn edge(
    ctx: &Ctx,
    env: &str,
    export: Option<&Path>,
    apply: bool,
    yes: bool,
    paths: &[String],
) -> Result<(), Error> {
    let ec = ctx.env(env).await?;
    let c = ec.compile_edge().await?;
    let samples = samples(&ec, &c, paths);
    show(&ec, &c, &samples);
    let drift = if apply {
        None
    } else {
        crate::apply::edge::environment::drift(&ec.edge(), &c).await?
    };
    if let Some((moved, line)) = &drift {
        let style = if *moved { Style::Warn } else { Style::Good };
        ctx.out
            .say(format!("  live      {}", ctx.out.paint(line, style)));
    }
    if let Some(dir) = export {
        let written = write_export(&c, dir)?;
        ctx.out.say(format!(
            "Exported to {}: {}",
            dir.display(),
            written.join(", ")
        ));
    }
    let applied = if apply {
        Some(super::edge_apply::apply(&ec, &c, yes).await?)
    } else {
        None
    };
    ctx.out.document_with(|| {
        serde_json::json!({
            "env": env,
            "compiled_for": c.from,
            "function": {
                "name": c.name,
                "runtime": crate::edge::cloudfront::RUNTIME,
                "size": c.function.size(),
                "budget": CODE_BUDGET,
                "sha256": c.function.digest,
                "code": c.function.code,
            },
            "headers_policy": c.policy,
            "custom_error_responses": c.errors,
            "directories": c.shape.dirs.len(),
            "bare_files": c.shape.bare_files.len(),
            "samples": samples.iter().map(|(p, o)| serde_json::json!({ "path": p, "answer": o })).collect::<Vec<_>>(),
            "exported_to": export.map(|d| d.display().to_string()),
            "applied": applied,
            "drift": drift.as_ref().map(|(moved, line)| serde_json::json!({ "moved": moved, "what": line })),
        })
    });
    Ok(())
}

/// What a visitor gets for `path`, in words: "200 docs/index.html", "301 → /docs/".
fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Serve { key, status } => format!("{status} {}", esc(key)),
        Outcome::Redirect { status, location } => format!("{status} → {}", esc(location)),
        Outcome::NotFound => "404 (no page)".into(),
        Outcome::BadRequest => "400".into(),
    }
}

/// The sample paths (given, or one of each kind the site has) and their answers.
fn samples(ec: &EnvCtx<'_>, c: &Compiled, given: &[String]) -> Vec<(String, String)> {
    let edge = &ec.ctx.config.edge;
    let mut paths: Vec<String> = given.to_vec();
    if paths.is_empty() {
        paths.push("/".into());
        if let Some(d) = c.shape.dirs.iter().find(|d| !d.is_empty()) {
            paths.push(format!("/{}", crate::store::encode_key(d)));
        }
        if let Some(r) = edge.redirects.first() {
            paths.push(r.from.clone());
        }
        paths.push("/no-such-page".into());
        paths.push("/no-such-asset.js".into());
        paths.push(format!("/{}HEAD", ec.cfg.state_prefix));
    }
    let hidden = ec.hidden();
    let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
    let exists = |k: &str| c.keys.contains(k);
    paths
        .into_iter()
        .map(|p| {
            let (path, query) = p
                .split_once('?')
                .map_or((p.as_str(), None), |(a, b)| (a, Some(b)));
            let o = resolve(edge, path, query, &exists, &hidden);
            let text = describe(&o);
            (p, text)
        })
        .collect()
}

fn show(ec: &EnvCtx<'_>, c: &Compiled, samples: &[(String, String)]) {
    let out = &ec.ctx.out;
    let edge = &ec.ctx.config.edge;
    let size = c.function.size();
    out.say(format!(
        "{} {}: [edge] compiled for {}",
        out.paint("Edge", Style::Strong),
        ec.cfg.name,
        c.from
    ));
    out.say(format!(
        "  function  CloudFront Function {} ({}), viewer request: {size} of {CODE_BUDGET} bytes ({}%)",
        c.name,
        crate::edge::cloudfront::RUNTIME,
        size * 100 / CODE_BUDGET
    ));
    let dirs = c.shape.dirs.iter().filter(|d| !d.is_empty()).count();
    let mut rules = vec![
        format!("`/dir/` serves `dir/{}`", edge.directory_index),
        format!(
            "`/dir` → 301 `/dir/` for the {dirs} director{} with an index page",
            if dirs == 1 { "y" } else { "ies" }
        ),
    ];
    match (&edge.spa_fallback, c.shape.has_spa) {
        (Some(k), true) => rules.push(format!(
            "SPA fallback: extension-less paths that are not files ({} bare file(s) known) serve `{}`; a missing .js/.css/image stays 404",
            c.shape.bare_files.len(),
            esc(k)
        )),
        (Some(k), false) => rules.push(format!("SPA fallback `{}` is not in the site: off", esc(k))),
        (None, _) => {}
    }
    for r in &edge.redirects {
        rules.push(format!(
            "redirect {} → {} ({})",
            esc(&r.from),
            esc(&r.to),
            r.status
        ));
    }
    if let Some(b) = &edge.basic_auth {
        rules.push(format!(
            "basic auth for user {} (the code holds a SHA-256 of the header, not the password)",
            esc(&b.user)
        ));
    }
    rules.push(format!("{} is never served (404)", ec.cfg.state_prefix));
    for r in rules {
        out.say(format!("            {r}"));
    }
    if let Some(r) = &c.response {
        out.say(format!(
            "  response  CloudFront Function {}-response, viewer response: {} of {CODE_BUDGET} bytes: the canary cookie (`driftless-bucket`) while a canary runs{}",
            c.name,
            r.size(),
            if c.atomic.as_ref().is_some_and(|a| a.preview_host.is_some()) {
                "; X-Robots-Tag: noindex on every preview answer"
            } else {
                ""
            }
        ));
    }
    match &c.policy {
        Some(_) => out.say(format!(
            "  headers   response headers policy {}: {} (on every answer, errors included)",
            c.name,
            edge.headers
                .keys()
                .map(|k| esc(k))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => out.say("  headers   none ([edge] headers is empty)"),
    }
    if c.errors.is_empty() {
        out.say("  errors    no custom error response (no `not_found` page in the site)");
    } else {
        out.say(format!(
            "  errors    403 and 404 from the bucket → /{} with status 404",
            esc(edge.not_found.as_deref().unwrap_or_default())
        ));
    }
    out.say("  answers");
    let width = samples.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (p, a) in samples {
        out.say(format!("            {:<width$}  {a}", esc(p)));
    }
}

/// The files of `--export`.
fn write_export(c: &Compiled, dir: &Path) -> Result<Vec<String>, Error> {
    fs_err::create_dir_all(dir)?;
    let mut files = vec![
        ("function.js", c.function.code.clone()),
        (
            "custom-error-responses.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "Quantity": c.errors.len(),
                "Items": c.errors,
            }))
            .expect("json"),
        ),
        (
            "driftless-edge.tf",
            terraform(
                &c.name,
                c.policy.as_ref(),
                c.atomic.is_some(),
                c.response.is_some(),
            ),
        ),
        (
            "distribution.snippet.hcl",
            terraform_snippet(
                &c.name,
                c.policy.is_some(),
                &c.errors,
                c.atomic.is_some(),
                c.response.is_some(),
            ),
        ),
    ];
    if let Some(r) = &c.response {
        files.push(("response-function.js", r.code.clone()));
    }
    if let Some(p) = &c.policy {
        files.push((
            "response-headers-policy.json",
            serde_json::to_string_pretty(p).expect("json"),
        ));
    }
    let mut written = Vec::new();
    for (name, body) in files {
        fs_err::write(dir.join(name), body)?;
        written.push(name.to_owned());
    }
    Ok(written)
}
