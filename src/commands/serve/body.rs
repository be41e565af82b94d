//! The bodies `serve` answers with: whole or a byte range (clamped as web servers do),
//! streamed in chunks; conditional GETs.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use bytes::Bytes;

use crate::Error;
use crate::store::Attributes;

/// A file to answer with: its length, headers, validator, and where its bytes are.
pub(super) struct Content {
    pub(super) len: u64,
    pub(super) attrs: Attributes,
    /// A strong ETag (the SHA-256) for a release's file; a weak one (size, mtime) for a
    /// file of a directory.
    pub(super) etag: String,
    pub(super) reader: Reader,
}

pub(super) enum Reader {
    File(PathBuf),
    Store {
        store: Arc<dyn crate::store::Store>,
        key: String,
    },
    Bytes(Bytes),
}

/// How much of a file one read brings into memory.
pub(super) const CHUNK: u64 = 1 << 20;

impl Reader {
    pub(super) async fn read(&self, offset: u64, len: u64) -> Result<Bytes, Error> {
        match self {
            Self::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || crate::store::read_region(&path, offset, len))
                    .await
                    .map_err(|e| Error::Other(format!("serve: {e}")))?
                    .map_err(Error::from)
            }
            Self::Store { store, key } => store
                .get_range(key, offset, len)
                .await?
                .ok_or_else(|| Error::Other(format!("{key}: gone from the store while served"))),
            Self::Bytes(b) => Ok(slice(b, offset, len)),
        }
    }

    /// `len` bytes from `start`, as a body read a chunk at a time.
    pub(super) fn body(self, start: u64, len: u64) -> Body {
        if let Self::Bytes(b) = &self {
            return Body::from(slice(b, start, len));
        }
        let stream = futures::stream::try_unfold((self, start, len), |(r, at, left)| async move {
            if left == 0 {
                return Ok::<_, Error>(None);
            }
            let chunk = r.read(at, left.min(CHUNK)).await?;
            if chunk.is_empty() {
                return Err(Error::Other("the file ended early while served".into()));
            }
            let n = chunk.len() as u64;
            Ok(Some((chunk, (r, at + n, left - n))))
        });
        Body::from_stream(stream)
    }
}

/// `len` bytes of `b` from `start` (fewer at its end).
/// A single byte range that reaches past the end, as RFC 9110 §14.1.2 reads it: a
/// suffix longer than the body selects all of it, a last position past the end stops at
/// the end. Anything else is left to the parser.
pub(super) fn clamp_range(header: &str, total: u64) -> String {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return header.to_owned();
    };
    if total == 0 || spec.contains(',') {
        return header.to_owned();
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return header.to_owned();
    };
    let end = total - 1;
    match (first.trim().parse::<u64>(), last.trim().parse::<u64>()) {
        (Err(_), Ok(suffix)) if first.trim().is_empty() && suffix > total => {
            format!("bytes=0-{end}")
        }
        (Ok(a), Ok(b)) if b > end && a <= end => format!("bytes={a}-{end}"),
        _ => header.to_owned(),
    }
}

pub(super) fn slice(b: &Bytes, start: u64, len: u64) -> Bytes {
    let s = usize::try_from(start).unwrap_or(usize::MAX).min(b.len());
    let e = usize::try_from(start.saturating_add(len))
        .unwrap_or(usize::MAX)
        .min(b.len());
    b.slice(s..e)
}

/// Does `If-None-Match` match `etag` (weak comparison, as RFC 9110 asks for GET)?
pub(super) fn none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| bare(t) == bare(etag))
}

pub(super) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
