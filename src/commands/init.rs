//! `driftless init`: write a commented `driftless.toml`, detecting the build directory.

use std::path::Path;

use crate::Error;
use crate::config::FILE_NAME;
use crate::output::Output;

const CANDIDATES: [&str; 5] = ["dist", "build", "public", "_site", "out"];

fn template(site: &str, detected: bool) -> String {
    let note = if detected {
        "detected"
    } else {
        "not found yet: build your site or change this"
    };
    format!(
        r#"# driftless.toml — see `driftless --help` and the README.

# The build directory to deploy ({note}).
site = "{site}"

# Files never deployed, on top of the built-in exclusions (.git/, .env*, keys and
# certificates, OS junk) and any .driftlessignore in the site.
# ignore = ["*.map"]

# The embedded local store: works on a fresh machine with nothing installed.
[env.local]
store = "file://.driftless/local"

# An S3 bucket (AWS or any S3-compatible server).
# [env.staging]
# store = "s3://my-site-staging"
# region = "us-east-1"
# url = "https://staging.example.com"

# A protected environment: only promotions from staging.
# [env.prod]
# store = "s3://my-site-prod"
# promote_from = "staging"

# Headers by path; the first matching rule wins.
[[rules]]
match = "assets/**"
cache_control = "public, max-age=31536000, immutable"

[[rules]]
match = "**.html"
cache_control = "no-cache"

# Features that must never silently disappear from the site.
# [[features]]
# name = "checkout"
# file = "index.html"
# contains = 'id="stripe-checkout"'

# Refuse deploys that delete too much.
[limits]
max_deletes = 256
max_delete_share = 0.5
"#
    )
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
    let detected = CANDIDATES.iter().find(|c| dir.join(c).is_dir()).copied();
    let (site, found) = match (site, detected) {
        (Some(s), _) => (s, dir.join(s).is_dir()),
        (None, Some(d)) => (d, true),
        (None, None) => ("dist", false),
    };
    fs_err::write(&path, template(site, found))?;
    let ignored = ensure_gitignored(&dir)?;
    out.say(format!(
        "Wrote {} (site = \"{site}\"{}).",
        path.display(),
        if found { "" } else { ", not built yet" }
    ));
    if ignored {
        out.say("Added .driftless/ (local state and the local store) to .gitignore.");
    }
    out.say("Next: driftless plan local   then   driftless deploy local");
    out.document(&serde_json::json!({ "config": path, "site": site, "site_exists": found }));
    Ok(())
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
