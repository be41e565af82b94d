//! Where an environment's site is kept: `file://DIR` or `s3://BUCKET[/PREFIX]`, parsed and
//! checked, and whether two of them are one store.

use std::fmt;
use std::path::{Path, PathBuf};

/// `a/./b/../c` → `a/c`, without touching the file system (paths may not exist yet).
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether two stores are one, or one holds the other, in words.
pub(super) fn stores_overlap(a: &StoreUrl, b: &StoreUrl) -> Option<&'static str> {
    let under = |outer: &str, inner: &str| {
        let o = outer.trim_end_matches('/');
        let i = inner.trim_end_matches('/');
        o.is_empty() || i.starts_with(&format!("{o}/"))
    };
    let (x, y) = match (a, b) {
        (StoreUrl::File(x), StoreUrl::File(y)) => (
            normalize(x).to_string_lossy().into_owned(),
            normalize(y).to_string_lossy().into_owned(),
        ),
        (
            StoreUrl::S3 {
                bucket: ba,
                prefix: pa,
            },
            StoreUrl::S3 {
                bucket: bb,
                prefix: pb,
            },
        ) if ba == bb => (pa.clone(), pb.clone()),
        _ => return None,
    };
    if x.trim_end_matches('/') == y.trim_end_matches('/') {
        Some("are the same store")
    } else if under(&x, &y) || under(&y, &x) {
        Some("are one inside the other")
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory (absolute).
    File(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// `file://relative/dir`, `file:///absolute/dir`, or `s3://bucket[/prefix]`.
pub fn parse_store_url(url: &str, base: &Path) -> Result<StoreUrl, String> {
    if let Some(rest) = url.strip_prefix("file://") {
        if rest.is_empty() {
            return Err("file:// needs a directory, e.g. file://.driftless/local".into());
        }
        let p = Path::new(rest);
        return Ok(StoreUrl::File(if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        validate_bucket(bucket)?;
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty()
            && let Some(reason) = crate::keys::key_problem(prefix)
        {
            return Err(format!("invalid object key {prefix:?}: {reason}"));
        }
        return Ok(StoreUrl::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    Err(format!(
        "{url:?} is not a store URL; use file://DIR or s3://BUCKET[/PREFIX]"
    ))
}

fn validate_bucket(b: &str) -> Result<(), String> {
    let ok_chars = b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = b
        .chars()
        .next()
        .zip(b.chars().last())
        .is_some_and(|(f, l)| f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric());
    if (3..=63).contains(&b.len()) && ok_chars && ends_ok && !b.contains("..") {
        Ok(())
    } else {
        Err(format!(
            "{b:?} is not a valid S3 bucket name (3–63 lowercase letters, digits, '-' or '.')"
        ))
    }
}
