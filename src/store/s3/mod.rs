//! S3 and S3-compatible object storage (`s3://bucket/prefix`), through the AWS SDK.
//!
//! Every conditional write is sent with its condition (`If-None-Match: *` or
//! `If-Match`), including retries: the SDK retries 5xx, throttling and connection resets
//! with backoff and jitter by re-sending the same request, so a retry can never become an
//! unconditional write. A retried write whose first attempt did land answers 412; each
//! write therefore carries a unique token in its metadata, and a 412 on an object holding
//! our own token is recognised as our success.
//!
//! Whether a store honours conditions at all is probed elsewhere (`ledger::probe`): some
//! servers (rclone, s3rver) silently ignore them.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};

use super::{
    Attributes, Object, ObjectMeta, PutMode, Result, Store, StoreError, Workaround, normalize_etag,
    validate_key,
};

/// Bodies above this are uploaded in parts.
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;
/// The largest object S3 accepts in one PutObject.
const MAX_SINGLE_PUT: usize = 5 * 1024 * 1024 * 1024;
const META_SHA256: &str = "sha256";
/// Directories listed at once.
const LIST_CONCURRENCY: usize = 16;
const META_WRITE: &str = "driftless-write";

pub use crate::aws::s3::S3Settings;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    endpoint: Option<String>,
    /// The profile the environment named (for error messages).
    profile: Option<String>,
    /// CopyObject ignores conditions on this server: copy by GET + conditional PUT.
    copy_emulated: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// CompleteMultipartUpload ignores conditions: conditional writes go in one part.
    one_part_conditional: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The headers of `attrs` (and driftless's metadata) on any SDK write builder: PutObject,
/// CopyObject and CreateMultipartUpload are different types with the same setters.
macro_rules! with_attributes {
    ($req:expr, $attrs:expr, $token:expr) => {
        $req.set_content_type($attrs.content_type.clone())
            .set_cache_control($attrs.cache_control.clone())
            .set_content_encoding($attrs.content_encoding.clone())
            .set_metadata(Some(metadata($attrs, $token)))
    };
}

/// `mode` as the condition of any SDK write builder (PutObject, CopyObject,
/// CompleteMultipartUpload).
macro_rules! with_condition {
    ($req:expr, $mode:expr) => {
        match $mode {
            PutMode::Create => $req.if_none_match("*"),
            PutMode::IfMatch(e) => $req.if_match(quote(e)),
            PutMode::Overwrite => $req,
        }
    };
}

#[cfg(test)]
mod tests;
mod upload;

use upload::Body;

impl S3Store {
    /// CopyObject from `source` (`bucket/encoded-key`, possibly another bucket) to `to`,
    /// replacing the attributes, with `mode` as the condition on `to`.
    async fn copy_raw(
        &self,
        source: &str,
        from_label: &str,
        to: &str,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        let token = crate::digest::unique_token();
        self.conditional(to, &mode, &token, || async {
            let req = self
                .client
                .copy_object()
                .bucket(&self.bucket)
                .key(self.full(to))
                .copy_source(source)
                .metadata_directive(MetadataDirective::Replace);
            let req = with_condition!(with_attributes!(req, attrs, &token), &mode);
            match req.send().await {
                Ok(out) => Ok(normalize_etag(
                    out.copy_object_result()
                        .and_then(|r| r.e_tag())
                        .unwrap_or_default(),
                )),
                Err(e) => match self.error(to, e) {
                    // 404 means a missing source, or (AWS) a missing If-Match destination.
                    StoreError::NotFound { .. } => match (&mode, self.head(to).await) {
                        (PutMode::IfMatch(_), Ok(None)) => {
                            Err(StoreError::NotFound { key: to.to_owned() })
                        }
                        _ => Err(StoreError::NotFound {
                            key: from_label.to_owned(),
                        }),
                    },
                    other => Err(other),
                },
            }
        })
        .await
    }

    /// Resolve credentials and region with the standard AWS chain (environment,
    /// `AWS_PROFILE`/`profile`, shared config and credentials files, SSO, assume role,
    /// container and instance roles). No request is made.
    /// The SDK client, configured as this store's (bucket-level audits use it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn connect(s: &S3Settings) -> Self {
        let endpoint = s
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        let prefix = if s.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", s.prefix.trim_matches('/'))
        };
        Self {
            client: crate::aws::s3::client(s).await,
            bucket: s.bucket.clone(),
            prefix,
            endpoint,
            profile: s.profile.clone(),
            copy_emulated: std::sync::Arc::default(),
            one_part_conditional: std::sync::Arc::default(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Turn an SDK error into a one-line, actionable store error.
    fn error<E>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_owned();
        let where_ = || match &self.endpoint {
            Some(e) => format!("s3://{} at {e}", self.bucket),
            None => format!("s3://{}", self.bucket),
        };
        match (status, code.as_str()) {
            (Some(412), _) | (_, "PreconditionFailed") => StoreError::Precondition {
                key: key.to_owned(),
                expected: String::new(),
            },
            (Some(409), "ConditionalRequestConflict") => StoreError::Conflict {
                key: key.to_owned(),
            },
            (_, "NoSuchBucket") => StoreError::Other(format!(
                "bucket {} does not exist (create it, or fix `store` in driftless.toml)",
                where_()
            )),
            (Some(404), _) | (_, "NoSuchKey" | "NotFound") => StoreError::NotFound {
                key: key.to_owned(),
            },
            (
                _,
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "AccessDenied"
                | "InvalidToken"
                | "ExpiredToken",
            )
            | (Some(401 | 403), _) => StoreError::Other(format!(
                "access denied by {} ({}): check the credentials (AWS_PROFILE / profile, AWS_ACCESS_KEY_ID) and the bucket policy",
                where_(),
                if code.is_empty() {
                    "HTTP 403".to_owned()
                } else {
                    code.clone()
                }
            )),
            (Some(301), _)
            | (
                _,
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException",
            ) => StoreError::Other(format!(
                "bucket {} is in another region than the one configured: set `region` for this environment in driftless.toml ({code})",
                where_()
            )),
            _ => match &err {
                SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
                    StoreError::Other(
                        crate::aws::error::Unanswered::of(&err)
                            .explain(&where_(), self.profile.as_deref()),
                    )
                }
                SdkError::TimeoutError(_) => StoreError::Other(format!("{} timed out", where_())),
                _ => StoreError::Other(format!(
                    "{key}: {} answered {}: {}",
                    where_(),
                    status.map_or_else(|| "an error".to_owned(), |s| format!("HTTP {s}")),
                    err.message().map_or_else(|| code.clone(), str::to_owned)
                )),
            },
        }
    }

    /// After a 412 on a conditional write: did our own earlier attempt land? A HEAD that
    /// gets no answer is asked again (the SDK's own retries may have run out under a
    /// burst of faults); if it never answers, that is said — never taken as "someone
    /// else changed it", which would name a culprit that does not exist.
    async fn landed(&self, key: &str, token: &str) -> Result<Option<String>> {
        let mut backoff = Duration::from_millis(200);
        let mut last = None;
        for _ in 0..5 {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .send()
                .await
            {
                Ok(head) => {
                    let ours = head
                        .metadata()
                        .and_then(|m| m.get(META_WRITE))
                        .is_some_and(|t| t == token);
                    return Ok(ours.then(|| normalize_etag(head.e_tag().unwrap_or_default())));
                }
                Err(e) => match self.error(key, e) {
                    StoreError::NotFound { .. } => return Ok(None),
                    other => last = Some(other),
                },
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Err(StoreError::Other(format!(
            "{key}: a conditional write was refused after a retry, and whether the first attempt landed could not be checked ({})",
            last.map_or_else(String::new, |e| e.to_string())
        )))
    }

    /// 412/409 handling shared by every conditional write.
    async fn conditional<F, Fut>(
        &self,
        key: &str,
        mode: &PutMode,
        token: &str,
        send: F,
    ) -> Result<String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<String>>,
    {
        let mut backoff = Duration::from_millis(100);
        for _ in 0..6 {
            match send().await {
                Ok(etag) => return Ok(etag),
                Err(StoreError::Conflict { .. }) => {
                    // A conflicting conditional write raced ours: re-evaluate.
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(StoreError::NotFound { key: k })
                    if k != key || !matches!(mode, PutMode::IfMatch(_)) =>
                {
                    return Err(StoreError::NotFound { key: k });
                }
                Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {
                    if let Some(etag) = self.landed(key, token).await? {
                        return Ok(etag);
                    }
                    return Err(match mode {
                        PutMode::Create => StoreError::AlreadyExists {
                            key: key.to_owned(),
                        },
                        PutMode::IfMatch(e) => StoreError::Precondition {
                            key: key.to_owned(),
                            expected: e.clone(),
                        },
                        PutMode::Overwrite => {
                            StoreError::Other(format!("{key}: unexpected precondition failure"))
                        }
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Other(format!(
            "{key}: conditional write kept conflicting; try again"
        )))
    }

    /// Every object under `prefix`.
    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full(prefix))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, e))?;
            for o in page.contents() {
                let Some(full) = o.key() else { continue };
                let Some(key) = full.strip_prefix(&self.prefix) else {
                    continue;
                };
                if key.is_empty() || key.ends_with('/') {
                    continue; // "directory" placeholder objects
                }
                out.push(ObjectMeta {
                    key: key.to_owned(),
                    size: u64::try_from(o.size().unwrap_or_default()).unwrap_or_default(),
                    etag: normalize_etag(o.e_tag().unwrap_or_default()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// GetObject, of `range` when given (`bytes=a-b`); `None` for a missing key.
    async fn get_output(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>> {
        validate_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .set_range(range)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) => match self.error(key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The object and its body as a stream.
    async fn get_stream(&self, key: &str) -> Result<Option<(Object, ByteStream)>> {
        let Some(out) = self.get_output(key, None).await? else {
            return Ok(None);
        };
        let obj = object(
            key,
            out.content_length(),
            out.e_tag(),
            attributes(
                out.content_type(),
                out.cache_control(),
                out.content_encoding(),
                out.metadata(),
            ),
        );
        Ok(Some((obj, out.body)))
    }

    /// The objects directly under `prefix` and its sub-"directories" (relative keys
    /// ending in `/`), one delimited listing.
    async fn list_delimited(&self, prefix: &str) -> Result<(Vec<ObjectMeta>, Vec<String>)> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full(prefix))
            .delimiter("/")
            .into_paginator()
            .send();
        let (mut objects, mut dirs) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, e))?;
            for o in page.contents() {
                let Some(key) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if key.is_empty() || key.ends_with('/') {
                    continue;
                }
                objects.push(ObjectMeta {
                    key: key.to_owned(),
                    size: u64::try_from(o.size().unwrap_or_default()).unwrap_or_default(),
                    etag: normalize_etag(o.e_tag().unwrap_or_default()),
                });
            }
            for p in page.common_prefixes() {
                if let Some(d) = p.prefix().and_then(|k| k.strip_prefix(&self.prefix)) {
                    dirs.push(d.to_owned());
                }
            }
        }
        Ok((objects, dirs))
    }
}

fn read_failed(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("{key}: reading the body failed: {e}"))
}

/// A whole response body in memory.
async fn collect(key: &str, body: ByteStream) -> Result<Bytes> {
    Ok(body
        .collect()
        .await
        .map_err(|e| read_failed(key, e))?
        .into_bytes())
}

fn quote(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn metadata(attrs: &Attributes, token: &str) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    if let Some(sha) = &attrs.sha256 {
        m.insert(META_SHA256.to_owned(), sha.clone());
    }
    m.insert(META_WRITE.to_owned(), token.to_owned());
    m
}

/// An `Object` from the fields HeadObject and GetObject both answer with.
fn object(key: &str, length: Option<i64>, etag: Option<&str>, attrs: Attributes) -> Object {
    Object {
        meta: ObjectMeta {
            key: key.to_owned(),
            size: u64::try_from(length.unwrap_or_default()).unwrap_or_default(),
            etag: normalize_etag(etag.unwrap_or_default()),
        },
        attrs,
    }
}

fn attributes(
    content_type: Option<&str>,
    cache_control: Option<&str>,
    content_encoding: Option<&str>,
    meta: Option<&std::collections::HashMap<String, String>>,
) -> Attributes {
    Attributes {
        content_type: content_type.map(str::to_owned),
        cache_control: cache_control.map(str::to_owned),
        content_encoding: content_encoding.map(str::to_owned),
        sha256: meta.and_then(|m| m.get(META_SHA256)).cloned(),
    }
}

#[async_trait]
impl Store for S3Store {
    fn location(&self) -> String {
        let path = format!("s3://{}/{}", self.bucket, self.prefix);
        let path = path.trim_end_matches('/').to_owned();
        match &self.endpoint {
            Some(e) => format!("{path} (at {e})"),
            None => path,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list_prefix(prefix).await
    }

    async fn list_except(&self, exclude: &str) -> Result<Vec<ObjectMeta>> {
        // One delimited listing of the top level, then each top-level directory at once:
        // a site of 50,000 keys is otherwise 50 pages one after another. The state area
        // (which grows with every release) is never listed.
        let (mut out, dirs) = self.list_delimited("").await?;
        out.retain(|m| !m.key.starts_with(exclude));
        let dirs: Vec<String> = dirs
            .into_iter()
            .filter(|d| !d.starts_with(exclude))
            .collect();
        let listed: Vec<Vec<ObjectMeta>> = futures::stream::iter(dirs)
            .map(|d| async move {
                let mut objects = self.list_prefix(&d).await?;
                objects.retain(|m| !m.key.starts_with(exclude));
                Ok::<_, StoreError>(objects)
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        out.extend(listed.into_iter().flatten());
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<Object>> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(h) => Ok(Some(object(
                key,
                h.content_length(),
                h.e_tag(),
                attributes(
                    h.content_type(),
                    h.cache_control(),
                    h.content_encoding(),
                    h.metadata(),
                ),
            ))),
            Err(e) => match self.error(key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(&self, key: &str) -> Result<Option<(Object, Bytes)>> {
        let Some((obj, body)) = self.get_stream(key).await? else {
            return Ok(None);
        };
        Ok(Some((obj, collect(key, body).await?)))
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        validate_key(key)?;
        self.upload(key, Body::Bytes(&body), attrs, mode).await
    }

    async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        offset: u64,
        len: u64,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        validate_key(key)?;
        self.upload(key, Body::File { path, offset, len }, attrs, mode)
            .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Option<Bytes>> {
        validate_key(key)?;
        if len == 0 {
            return Ok(self.head(key).await?.map(|_| Bytes::new()));
        }
        let range = format!("bytes={offset}-{}", offset + len - 1);
        match self.get_output(key, Some(range)).await? {
            Some(out) => Ok(Some(collect(key, out.body).await?)),
            None => Ok(None),
        }
    }

    async fn hash(&self, key: &str) -> Result<Option<(Object, String)>> {
        use sha2::Digest as _;
        let Some((obj, mut body)) = self.get_stream(key).await? else {
            return Ok(None);
        };
        let mut h = sha2::Sha256::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| read_failed(key, e))? {
            h.update(&chunk);
        }
        Ok(Some((obj, hex::encode(h.finalize()))))
    }

    async fn get_to_file(&self, key: &str, to: &std::path::Path) -> Result<Option<Object>> {
        use std::io::Write as _;
        let Some((obj, mut body)) = self.get_stream(key).await? else {
            return Ok(None);
        };
        let io = |op, source| StoreError::Io {
            op,
            path: to.display().to_string(),
            source,
        };
        let mut f = std::fs::File::create(to).map_err(|e| io("create", e))?;
        while let Some(chunk) = body.try_next().await.map_err(|e| read_failed(key, e))? {
            f.write_all(&chunk).map_err(|e| io("write", e))?;
        }
        Ok(Some(obj))
    }

    fn prefers_packs(&self) -> bool {
        true
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        validate_key(from)?;
        validate_key(to)?;
        if mode != PutMode::Overwrite
            && self
                .copy_emulated
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            let (_, body) = self.get(from).await?.ok_or_else(|| StoreError::NotFound {
                key: from.to_owned(),
            })?;
            return self.put(to, body, attrs, mode).await;
        }
        let source = self.copy_source(from).unwrap_or_default();
        self.copy_raw(&source, from, to, attrs, mode).await
    }

    fn copy_source(&self, key: &str) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.bucket,
            super::encode_key(&self.full(key))
        ))
    }

    async fn copy_from_source(
        &self,
        source: &str,
        to: &str,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<Option<String>> {
        validate_key(to)?;
        // A server whose copies ignore conditions is streamed through instead.
        if mode != PutMode::Overwrite
            && self
                .copy_emulated
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(None);
        }
        self.copy_raw(source, source, to, attrs, mode)
            .await
            .map(Some)
    }

    fn apply_workaround(&self, workaround: Workaround) -> bool {
        let flag = match workaround {
            Workaround::EmulateConditionalCopy => &self.copy_emulated,
            Workaround::ConditionalWritesInOnePart => &self.one_part_conditional,
        };
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// A one-part multipart upload onto an existing key, completed with a stale
    /// If-Match and with If-None-Match: both must be refused.
    async fn probe_large_writes(&self, scratch_key: &str) -> Result<bool> {
        let token = crate::digest::unique_token();
        let body = Bytes::from_static(b"probe");
        let attrs = Attributes::default();
        let existing = self
            .put(scratch_key, body.clone(), &attrs, PutMode::Overwrite)
            .await?;
        for mode in [
            PutMode::IfMatch(format!("{existing}-stale")),
            PutMode::Create,
        ] {
            match self
                .multipart(scratch_key, Body::Bytes(&body), &attrs, &mode, &token)
                .await
            {
                Err(StoreError::Precondition { .. } | StoreError::NotFound { .. }) => {}
                Ok(_) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        validate_key(key)?;
        let mut req = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key));
        if let Some(e) = if_match {
            req = req.if_match(quote(e));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.error(key, e) {
                StoreError::NotFound { .. } if if_match.is_none() => Ok(()),
                // A retried delete whose first attempt landed is refused (the key is
                // gone): what a delete wants is done.
                StoreError::Precondition { .. } if matches!(self.head(key).await, Ok(None)) => {
                    Ok(())
                }
                StoreError::Precondition { .. } => Err(StoreError::Precondition {
                    key: key.to_owned(),
                    expected: if_match.unwrap_or_default().to_owned(),
                }),
                other => Err(other),
            },
        }
    }
}
