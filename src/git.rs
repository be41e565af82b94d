//! What git says about the working copy: the commit a build came from, whether it is
//! dirty, and whether it contains the commit the live release was built from.
//!
//! Git is optional: outside a repository (or without `git`) driftless falls back to the
//! working copy's last-known release.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ancestry {
    Contained,
    NotContained,
    /// The commit is not in this repository at all (not fetched, or another repo).
    Unknown,
}

fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()
}

fn stdout(out: &std::process::Output) -> Option<String> {
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Repo {
    /// The repository containing `dir`, if any.
    pub fn discover(dir: &Path) -> Option<Self> {
        let out = git(dir, &["rev-parse", "--show-toplevel"])?;
        stdout(&out).map(|top| Self {
            dir: PathBuf::from(top),
        })
    }

    /// The checked-out commit; `None` in a repository without commits. Dirty means
    /// uncommitted changes in the whole working tree.
    pub fn head(&self) -> Option<GitInfo> {
        self.head_in(&self.dir, &[])
    }

    /// The checked-out commit, dirty only for uncommitted changes inside the project (the
    /// directory holding `driftless.toml`), never for driftless's own `.driftless/` state
    /// or for other projects of the same repository.
    /// The commit a build of the project in `project` (where driftless.toml is) comes
    /// from, dirty if anything there but driftless's own state differs from it.
    pub fn head_for(&self, project: &Path) -> Option<GitInfo> {
        self.head_in(project, &[".", ":(exclude).driftless"])
    }

    fn head_in(&self, dir: &Path, pathspec: &[&str]) -> Option<GitInfo> {
        let commit = stdout(&git(&self.dir, &["rev-parse", "--verify", "-q", "HEAD"])?)?;
        let mut args = vec!["status", "--porcelain", "--"];
        args.extend_from_slice(pathspec);
        let dirty = git(dir, &args)
            .and_then(|o| o.status.success().then_some(!o.stdout.is_empty()))
            .unwrap_or(true);
        let branch = git(&self.dir, &["symbolic-ref", "--short", "-q", "HEAD"])
            .as_ref()
            .and_then(stdout);
        Some(GitInfo {
            commit,
            dirty,
            branch,
        })
    }

    /// Does the checked-out HEAD contain `commit`?
    pub fn contains(&self, commit: &str) -> Ancestry {
        self.is_ancestor(commit, "HEAD")
    }

    /// Is `commit` an ancestor of (or the same as) `of`?
    pub fn is_ancestor(&self, commit: &str, of: &str) -> Ancestry {
        match git(&self.dir, &["merge-base", "--is-ancestor", commit, of]).map(|o| o.status.code())
        {
            Some(Some(0)) => Ancestry::Contained,
            Some(Some(1)) => Ancestry::NotContained,
            _ => Ancestry::Unknown,
        }
    }
}

impl Repo {
    /// Has every commit in `from..to` (what a rollback from `to` back to `from` took out)
    /// been reverted by a commit the checkout contains (`git revert` writes "This reverts
    /// commit `<sha>`.")? False when there is nothing to check or git cannot tell.
    pub fn reverts_all(&self, from: &str, to: &str) -> bool {
        let range = format!("{from}..{to}");
        let Some(listed) = git(&self.dir, &["rev-list", "--max-count=200", &range])
            .as_ref()
            .and_then(stdout)
        else {
            return false;
        };
        let commits: Vec<&str> = listed.lines().collect();
        let since = format!("{to}..HEAD");
        let Some(messages) = git(&self.dir, &["log", "--format=%B", &since])
            .as_ref()
            .and_then(stdout)
        else {
            return false;
        };
        !commits.is_empty()
            && commits
                .iter()
                .all(|c| messages.contains(&format!("This reverts commit {c}")))
    }
}

/// Who is deploying: `DRIFTLESS_AUTHOR`, else git's `user.name <user.email>`, else `$USER`.
pub fn author(dir: &Path) -> String {
    if let Ok(a) = std::env::var("DRIFTLESS_AUTHOR")
        && !a.trim().is_empty()
    {
        return a;
    }
    let cfg = |key| {
        git(dir, &["config", "--get", key])
            .as_ref()
            .and_then(stdout)
    };
    match (cfg("user.name"), cfg("user.email")) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (Some(n), None) => n,
        _ => std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into()),
    }
}

pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .or_else(|| {
            Command::new("hostname")
                .output()
                .ok()
                .and_then(|o| stdout(&o))
        })
        .unwrap_or_else(|| "unknown-host".into())
}
