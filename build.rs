//! Embed the git commit this binary was built from, and its target, in
//! `driftless --version`. Where the source has no `.git` (a container build, a crate
//! download) `DRIFTLESS_COMMIT` names the commit instead.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    println!("cargo:rerun-if-env-changed=DRIFTLESS_COMMIT");
    let given = std::env::var("DRIFTLESS_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = given
        .as_deref()
        .map(|c| c.trim().chars().take(12).collect())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown target".to_owned());
    let dirty = given.is_none()
        && git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let version = match commit {
        Some(c) => format!(
            "{} (commit {c}{}, {target})",
            env!("CARGO_PKG_VERSION"),
            if dirty {
                ", with uncommitted changes"
            } else {
                ""
            }
        ),
        None => format!(
            "{} (commit unknown: not built from a git checkout, {target})",
            env!("CARGO_PKG_VERSION")
        ),
    };
    println!("cargo:rustc-env=DRIFTLESS_VERSION={version}");
    // Rebuild when the checked-out commit moves (or the index changes).
    for path in [".git/HEAD", ".git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(head_ref) = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned()))
    {
        println!("cargo:rerun-if-changed=.git/{head_ref}");
    }
}
