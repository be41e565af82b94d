//! This working copy's memory of each environment (`.driftless/bases/<env>.json`, never
//! shared, never in git): the release its files derive from when git cannot tell, the
//! release it started to apply, and the rollbacks and adoptions it made since.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Recorded {
    release: Option<String>,
    /// A release this working copy started to apply; becomes the base if a later run
    /// finishes it after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<String>,
    /// Releases this working copy made on top of `release` without building (rollbacks,
    /// adoptions), oldest first: live having moved to one of them is not "stale" — this
    /// copy saw it happen — and `release` stays the base its files derive from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    made: Vec<String>,
}

/// One environment's record in this working copy.
#[derive(Debug, Clone)]
pub struct WorkCopy {
    path: PathBuf,
}

impl WorkCopy {
    /// The record of `env` under `state_dir` (the working copy's `.driftless/`).
    pub fn new(state_dir: &Path, env: &str) -> Self {
        Self {
            path: state_dir.join("bases").join(format!("{env}.json")),
        }
    }

    fn read(&self) -> Recorded {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write(&self, r: &Recorded) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        // Written beside and renamed over: a run killed mid-write must not leave an
        // empty record (this working copy would forget its base and look stale).
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", &crate::digest::unique_token()[..8]));
        fs_err::write(&tmp, serde_json::to_vec(r).expect("serialises"))?;
        fs_err::rename(&tmp, &self.path)
    }

    /// The release this working copy's files derive from, `live` being what is live now:
    /// a release it was applying when it died counts once it is live (its apply finished,
    /// but the run never got to record it).
    pub fn base(&self, live: Option<&str>) -> Option<String> {
        let r = self.read();
        match r.pending {
            Some(p) if Some(p.as_str()) == live => Some(p),
            _ => r.release,
        }
    }

    /// The release being applied by this working copy, if a run started one.
    pub fn pending(&self) -> Option<String> {
        self.read().pending
    }

    pub fn set_base(&self, release: &str) -> std::io::Result<()> {
        self.write(&Recorded {
            release: Some(release.to_owned()),
            pending: None,
            made: Vec::new(),
        })
    }

    /// Releases this working copy made (rollbacks, adoptions) since its base.
    pub fn made_since_base(&self) -> Vec<String> {
        self.read().made
    }

    /// This working copy made `made` (a rollback or an adoption) while `from` was live:
    /// if `from` was its base (or one it made since), remember it, so its next deploy is
    /// not stale for it.
    pub fn record_made(&self, from: Option<&str>, made: &str) -> std::io::Result<()> {
        let mut r = self.read();
        let ours =
            from.is_some_and(|f| r.release.as_deref() == Some(f) || r.made.iter().any(|m| m == f));
        if ours {
            r.made.push(made.to_owned());
            self.write(&r)?;
        }
        Ok(())
    }

    /// Remember that this working copy is about to apply `release`, `live` being what
    /// is live now. A release it was applying that has since gone live (a killed run,
    /// finished by this one) becomes its base first: the record of it must not be lost
    /// if this run dies too.
    pub fn set_pending(&self, release: &str, live: Option<&str>) -> std::io::Result<()> {
        let mut r = self.read();
        if r.pending.is_some() && r.pending.as_deref() == live {
            r.release = r.pending.take();
            r.made.clear();
        }
        r.pending = Some(release.to_owned());
        self.write(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs killed in a row: the first after its release went live (finished by the
    /// next run), the second before. The base is the first one's release, not the one
    /// before it (the random-kill test behind CloudFront saw "stale-base" here).
    #[test]
    fn a_finished_pending_release_stays_the_base_when_the_next_run_dies_too() {
        let dir = tempfile::tempdir().unwrap();
        let w = WorkCopy::new(dir.path(), "prod");
        w.set_base("r10").unwrap();
        w.set_pending("r11", Some("r10")).unwrap();
        // r11 went live (the next run finished it), then that run died before its switch.
        w.set_pending("r12", Some("r11")).unwrap();
        assert_eq!(w.base(Some("r11")).as_deref(), Some("r11"));
        // A pending release that never went live is not a base.
        w.set_pending("r13", Some("r11")).unwrap();
        assert_eq!(w.base(Some("r11")).as_deref(), Some("r11"));
    }
}
