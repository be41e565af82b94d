//! Writes of whole bodies: one PutObject, or a multipart upload for large ones (and the
//! conditional write of a server whose CompleteMultipartUpload ignores conditions, in
//! one part).

use super::*;

/// What an upload sends: bytes in memory, or a region of a local file streamed from disk.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Bytes(&'a Bytes),
    File {
        path: &'a std::path::Path,
        offset: u64,
        len: u64,
    },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File { len, .. } => *len,
        }
    }

    /// `len` bytes from `start` as a request body (re-readable, so a retry resends it).
    async fn stream(&self, start: u64, len: u64) -> Result<ByteStream> {
        match self {
            Self::Bytes(b) => {
                let s = usize::try_from(start).unwrap_or(usize::MAX);
                let e = usize::try_from(start + len).unwrap_or(usize::MAX);
                Ok(ByteStream::from(b.slice(s..e)))
            }
            Self::File { path, offset, .. } => ByteStream::read_from()
                .path(path)
                .offset(offset + start)
                .length(aws_sdk_s3::primitives::Length::Exact(len))
                .build()
                .await
                .map_err(|e| StoreError::Io {
                    op: "read",
                    path: path.display().to_string(),
                    source: std::io::Error::other(e),
                }),
        }
    }
}

impl S3Store {
    /// Upload `body` under `key` with `mode` as its condition: one PutObject, or parts
    /// above the multipart threshold (each streamed from disk for a file).
    pub(super) async fn upload(
        &self,
        key: &str,
        body: Body<'_>,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        let token = crate::digest::unique_token();
        let one_part = mode != PutMode::Overwrite
            && self
                .one_part_conditional
                .load(std::sync::atomic::Ordering::Relaxed)
            && body.len() <= MAX_SINGLE_PUT as u64;
        if body.len() > MULTIPART_THRESHOLD as u64 && !one_part {
            return self
                .conditional(key, &mode, &token, || {
                    self.multipart(key, body, attrs, &mode, &token)
                })
                .await;
        }
        self.conditional(key, &mode, &token, || async {
            let stream = body.stream(0, body.len()).await?;
            let req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
                .body(stream);
            let req = with_condition!(with_attributes!(req, attrs, &token), &mode);
            let out = req.send().await.map_err(|e| self.error(key, e))?;
            Ok(normalize_etag(out.e_tag().unwrap_or_default()))
        })
        .await
    }

    pub(super) async fn multipart(
        &self,
        key: &str,
        body: Body<'_>,
        attrs: &Attributes,
        mode: &PutMode,
        token: &str,
    ) -> Result<String> {
        let full = self.full(key);
        let create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full);
        let create = with_attributes!(create, attrs, token)
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        let upload_id = create.upload_id().unwrap_or_default().to_owned();
        let part = PART_SIZE as u64;
        let parts: Result<Vec<CompletedPart>> = futures::stream::iter(0..body.len().div_ceil(part))
            .map(|i| {
                let upload_id = upload_id.clone();
                let full = full.clone();
                let body = &body;
                async move {
                    let n = i32::try_from(i + 1).unwrap_or(i32::MAX);
                    let start = i * part;
                    let chunk = body.stream(start, part.min(body.len() - start)).await?;
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(&full)
                        .upload_id(&upload_id)
                        .part_number(n)
                        .body(chunk)
                        .send()
                        .await
                        .map_err(|e| self.error(key, e))?;
                    Ok(CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build())
                }
            })
            .buffered(4)
            .try_collect()
            .await;
        let parts = match parts {
            Ok(p) => p,
            Err(e) => {
                self.abort_upload(&full, &upload_id).await;
                return Err(e);
            }
        };
        let complete = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        let result = with_condition!(complete, mode).send().await;
        match result {
            Ok(out) => Ok(normalize_etag(out.e_tag().unwrap_or_default())),
            Err(e) => {
                self.abort_upload(&full, &upload_id).await;
                Err(self.error(key, e))
            }
        }
    }

    /// Best effort: an abandoned upload only costs storage until the bucket's
    /// lifecycle rule (or a later abort) removes it.
    pub(super) async fn abort_upload(&self, full: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .send()
            .await;
    }
}
