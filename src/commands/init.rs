//! `driftless init`: write a commented `driftless.toml` that fits the project — read
//! before the first build, from what the framework leaves in the project (package.json,
//! hugo.toml, mkdocs.yml, book.toml, ...): its build directory and the paths it
//! fingerprints. It must never write a config inside a build directory.

use std::path::Path;

use crate::Error;
use crate::config::SCHEMA_FILE;
use crate::config::{Config, FILE_NAME};
use crate::ui::Output;

/// Directories a build commonly lands in, when no framework is recognised.
const CANDIDATES: [&str; 5] = ["dist", "build", "public", "_site", "out"];

/// What init recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Framework {
    name: &'static str,
    /// Why: the file (and dependency) that said so.
    seen: String,
    site: String,
    /// Where this framework puts only content-hashed files.
    immutable: Option<&'static str>,
    build: &'static str,
}

fn framework(
    name: &'static str,
    seen: String,
    site: &str,
    immutable: Option<&'static str>,
    build: &'static str,
) -> Framework {
    Framework {
        name,
        seen,
        site: site.to_owned(),
        immutable,
        build,
    }
}

/// Read the project's files to find its framework. JavaScript frameworks built on Vite
/// are checked before Vite itself.
fn detect(dir: &Path) -> Option<Framework> {
    if let Ok(text) = std::fs::read_to_string(dir.join("package.json"))
        && let Ok(pkg) = serde_json::from_str::<serde_json::Value>(&text)
    {
        let has = |dep: &str| {
            ["dependencies", "devDependencies"]
                .iter()
                .any(|k| pkg[k].get(dep).is_some())
        };
        let js: [(&str, &str, &str, Option<&str>, &str); 11] = [
            (
                "next",
                "Next.js",
                "out",
                Some("_next/static/**"),
                "npx next build (with output: 'export')",
            ),
            (
                "astro",
                "Astro",
                "dist",
                Some("_astro/**"),
                "npx astro build",
            ),
            (
                "@docusaurus/core",
                "Docusaurus",
                "build",
                Some("assets/**"),
                "npx docusaurus build",
            ),
            ("gatsby", "Gatsby", "public", None, "npx gatsby build"),
            (
                "@sveltejs/kit",
                "SvelteKit",
                "build",
                Some("_app/immutable/**"),
                "npx vite build",
            ),
            (
                "vitepress",
                "VitePress",
                ".vitepress/dist",
                Some("assets/**"),
                "npx vitepress build",
            ),
            (
                "nuxt",
                "Nuxt",
                ".output/public",
                Some("_nuxt/**"),
                "npx nuxt generate",
            ),
            (
                "@11ty/eleventy",
                "Eleventy",
                "_site",
                None,
                "npx @11ty/eleventy",
            ),
            (
                "react-scripts",
                "Create React App",
                "build",
                Some("static/**"),
                "npm run build",
            ),
            ("vite", "Vite", "dist", Some("assets/**"), "npm run build"),
            ("parcel", "Parcel", "dist", None, "npx parcel build"),
        ];
        for (dep, name, site, immutable, build) in js {
            if has(dep) {
                return Some(framework(
                    name,
                    format!("package.json: {dep}"),
                    site,
                    immutable,
                    build,
                ));
            }
        }
    }
    for file in ["hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"] {
        if dir.join(file).is_file() {
            return Some(framework("Hugo", file.into(), "public", None, "hugo"));
        }
    }
    for file in ["config.toml", "config.yaml", "config.yml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if text.to_ascii_lowercase().contains("baseurl")
            || (!text.is_empty() && dir.join("content").is_dir() && dir.join("layouts").is_dir())
        {
            return Some(framework("Hugo", file.into(), "public", None, "hugo"));
        }
    }
    if dir.join("_config.yml").is_file() {
        return Some(framework(
            "Jekyll",
            "_config.yml".into(),
            "_site",
            None,
            "bundle exec jekyll build",
        ));
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("book.toml")) {
        let site = text
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| {
                t.get("build")?
                    .get("build-dir")?
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "book".into());
        return Some(framework(
            "mdBook",
            "book.toml".into(),
            &site,
            None,
            "mdbook build",
        ));
    }
    for file in ["mkdocs.yml", "mkdocs.yaml"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            let site = text
                .lines()
                .find_map(|l| l.strip_prefix("site_dir:"))
                .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "site".into());
            return Some(framework(
                "MkDocs",
                file.into(),
                &site,
                None,
                "mkdocs build",
            ));
        }
    }
    // Each layout with the command that builds it where the site is looked for
    // (`sphinx-quickstart --sep` puts the sources in source/ and builds into build/).
    for (conf, site, build) in [
        ("conf.py", "_build/html", "sphinx-build -M html . _build"),
        (
            "docs/conf.py",
            "docs/_build/html",
            "sphinx-build -M html docs docs/_build",
        ),
        (
            "source/conf.py",
            "build/html",
            "sphinx-build -M html source build",
        ),
    ] {
        if dir.join(conf).is_file() {
            return Some(framework("Sphinx", conf.into(), site, None, build));
        }
    }
    for file in [
        ".eleventy.js",
        "eleventy.config.js",
        "eleventy.config.mjs",
        "eleventy.config.cjs",
    ] {
        if dir.join(file).is_file() {
            return Some(framework(
                "Eleventy",
                file.into(),
                "_site",
                None,
                "npx @11ty/eleventy",
            ));
        }
    }
    None
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn template(site: &str, note: &str, fw: Option<&Framework>) -> String {
    let mut rules = String::new();
    if let Some(dir) = fw.and_then(|f| f.immutable) {
        rules.push_str(&format!(
            "# {} puts only content-hashed files under {}: cache them for a year.\n[[rules]]\nmatch = \"{dir}\"\ncache_control = \"{IMMUTABLE}\"\n\n",
            fw.map_or("The framework", |f| f.name),
            dir.trim_end_matches("/**")
        ));
    }
    format!(
        r#"#:schema ./{SCHEMA_FILE}
# driftless.toml — see `driftless --help` and the README. The line above lets editors
# with a TOML language server (Taplo, Even Better TOML) check and complete this file;
# refresh the schema after upgrading driftless: driftless schema > {SCHEMA_FILE}

# The build directory to deploy ({note}).
site = "{site}"

# Files never deployed, on top of the built-in exclusions (.git/, .env*, credentials,
# keys and certificates, *.tfstate, *.sql dumps, OS junk) and any .driftlessignore in the site.
# ignore = ["*.map"]

# The embedded local store: works on a fresh machine with nothing installed.
[env.local]
store = "file://.driftless/local"
# Each release goes into a slot nothing serves and is made live by one pointer write
# (`current`, a symlink: root your web server there); rollback is one write too.
layout = "atomic"
# url = "http://127.0.0.1:8080"        # where `driftless serve local` answers, for `verify`

# An S3 bucket (AWS or any S3-compatible server).
# [env.staging]
# store = "s3://my-site-staging"
# layout = "in-place"                  # an S3 bucket is written where visitors read it
# region = "us-east-1"
# url = "https://staging.example.com"   # what `driftless verify staging` checks
# cdn = {{ cloudfront = "E2EXAMPLE" }}

# A protected environment: only promotions from staging.
# [env.prod]
# store = "s3://my-site-prod"
# promote_from = "staging"
# url = "https://www.example.com"

# Headers by path; the first matching rule wins.
{rules}# Any file whose name carries a content hash (app-1a2b3c4d.js, main.8608ea7d.min.css).
[[rules]]
match = "**"
fingerprinted = true
cache_control = "{IMMUTABLE}"

# Pages are revalidated on every visit, so a deploy is seen at once.
[[rules]]
match = "**.html"
cache_control = "no-cache"
# Behind CloudFront with the atomic layout the release is in the edge's cache key: pages
# may then carry "public, max-age=0, s-maxage=31536000" (the edge keeps each release's
# pages, browsers still revalidate every visit).

# Features that must never silently disappear from the site.
# [[features]]
# name = "checkout"
# file = "index.html"
# contains = 'id="stripe-checkout"'

# Refuse deploys that delete too much.
[limits]
max_deletes = 256
max_delete_share = 0.5

# What visitors get, in `driftless serve` and at the edge.
# [edge]
# headers = {{ "Strict-Transport-Security" = "max-age=31536000; includeSubDomains", "X-Content-Type-Options" = "nosniff" }}
# spa_fallback = "index.html"         # client-side routes (extension-less paths)
# not_found = "404.html"              # served with status 404
# redirects = [{{ from = "/old", to = "/new", status = 301 }}]

# Tell people when an environment changes: deploy, promote, rollback, refused, hold, unhold.
# [[notify]]
# url = "https://hooks.example.com/driftless"   # JSON, signed: X-Driftless-Signature: sha256=HMAC
# secret_env = "DRIFTLESS_WEBHOOK_SECRET"       # the environment variable holding the secret
# [[notify]]
# url = "https://hooks.slack.com/services/..."
# format = "slack"
# events = ["promote", "rollback", "refused"]
"#
    )
}

/// A `driftless.toml` in a parent directory: refuse when `dir` is inside its site (a
/// config there would be deployed, and the project already has one).
fn check_parent_project(dir: &Path, out: &Output) -> Result<(), Error> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let Ok(path) = Config::discover(parent) else {
        return Ok(());
    };
    let Ok(config) = Config::load(&path) else {
        out.say(format!(
            "note: {} (in a parent directory) also exists; commands run here will use the new one",
            path.display()
        ));
        return Ok(());
    };
    let site = config.site.canonicalize().unwrap_or(config.site.clone());
    let here = dir.canonicalize().unwrap_or(dir.to_path_buf());
    if here.starts_with(&site) {
        return Err(Error::Usage(format!(
            "{} is inside the build directory of {} (site = {:?}): a config here would be deployed with the site\n  → run driftless from {}",
            here.display(),
            path.display(),
            config.site.display().to_string(),
            config.dir.display()
        )));
    }
    out.say(format!(
        "note: {} (in a parent directory) governs a project there; commands run here will use the new file",
        path.display()
    ));
    Ok(())
}

pub(super) fn init(out: &Output, site: Option<&str>) -> Result<(), Error> {
    let dir = std::env::current_dir()?;
    let path = dir.join(FILE_NAME);
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; edit it, or remove it to start over",
            path.display()
        )));
    }
    check_parent_project(&dir, out)?;
    let fw = detect(&dir);
    let existing = CANDIDATES
        .iter()
        .find(|c| dir.join(c).is_dir())
        .map(|c| (*c).to_owned());
    let built_here = built_site(&dir);
    let site = match (site, &fw, existing, &built_here) {
        (Some(s), _, _, _) => s.to_owned(),
        (None, Some(f), _, _) => f.site.clone(),
        (None, None, Some(d), _) => d,
        (None, None, None, Some(here)) => here.clone(),
        (None, None, None, None) => "dist".to_owned(),
    };
    let built = dir.join(&site).join("index.html").is_file();
    let note = match (&fw, dir.join(&site).is_dir()) {
        (Some(f), _) => format!("{}'s build output", f.name),
        (None, true) if site == "." => {
            "this folder: it is already a built site (index.html here)".to_owned()
        }
        (None, true) => "detected".to_owned(),
        (None, false) => "not found yet: build your site or change this".to_owned(),
    };
    fs_err::write(&path, template(&site, &note, fw.as_ref()))?;
    let schema = dir.join(SCHEMA_FILE);
    fs_err::write(
        &schema,
        serde_json::to_string_pretty(&crate::config::schema()).expect("schemas serialise") + "\n",
    )?;
    let ignored = ensure_gitignored(&dir)?;
    match &fw {
        Some(f) => out.say(format!(
            "Detected {} ({}): site = \"{site}\"{}.",
            f.name,
            f.seen,
            f.immutable
                .map(|d| format!(", {d} cached as immutable"))
                .unwrap_or_default()
        )),
        None => out.say(format!("No framework recognised: site = \"{site}\".")),
    }
    out.say(format!(
        "Wrote {} and {SCHEMA_FILE} (for editors).",
        path.display()
    ));
    if !built {
        out.say(format!(
            "warning: {site}/index.html does not exist yet: build the site first ({}), then `driftless plan local`",
            fw.as_ref().map_or("your build command", |f| f.build)
        ));
    }
    if ignored {
        out.say("Added .driftless/ (local state and the local store) to .gitignore.");
    }
    out.say("Next: driftless plan local   then   driftless deploy local");
    out.document_with(|| {
        serde_json::json!({
            "config": path,
            "schema": schema,
            "site": site,
            "site_exists": dir.join(&site).is_dir(),
            "index_html": built,
            "framework": fw.as_ref().map(|f| f.name),
            "detected_from": fw.as_ref().map(|f| &f.seen),
        })
    });
    Ok(())
}

/// A folder that is itself a built site — `index.html` at the top, not a git repository
/// (a repository is a project, not build output) — is deployed as it is (`.`; the local
/// store under `.driftless/` is never published). Otherwise, the one subfolder with an
/// `index.html`, if exactly one has.
fn built_site(dir: &Path) -> Option<String> {
    if dir.join("index.html").is_file() && crate::git::Repo::discover(dir).is_none() {
        return Some(".".to_owned());
    }
    let with_index: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("index.html").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| !n.starts_with('.') && n != "node_modules")
        .collect();
    match with_index.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// In a git repository, keep driftless's local state out of commits.
fn ensure_gitignored(dir: &Path) -> Result<bool, Error> {
    if crate::git::Repo::discover(dir).is_none() {
        return Ok(false);
    }
    let path = dir.join(".gitignore");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current.lines().any(|l| {
        matches!(
            l.trim(),
            ".driftless" | ".driftless/" | "/.driftless/" | "/.driftless"
        )
    }) {
        return Ok(false);
    }
    let sep = if current.is_empty() || current.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    fs_err::write(&path, format!("{current}{sep}.driftless/\n"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_a_valid_config_for_every_framework() {
        for fw in [
            None,
            Some(framework(
                "Vite",
                "package.json: vite".into(),
                "dist",
                Some("assets/**"),
                "npm run build",
            )),
        ] {
            let text = template("dist", "x", fw.as_ref());
            let c = Config::parse(&text, Path::new("driftless.toml"), Path::new("/p")).unwrap();
            let immutable = |k: &str| {
                c.rules
                    .iter()
                    .find(|r| r.matches(k))
                    .and_then(|r| r.cache_control.clone())
                    .is_some_and(|cc| cc.contains("immutable"))
            };
            assert!(immutable("js/app-1a2b3c4d.js"));
            assert!(immutable("main.8608ea7d.min.css"));
            assert!(!immutable("index.html"));
            assert!(!immutable("favicon.ico"));
            assert!(!immutable("js/settings.js"));
        }
    }
}
