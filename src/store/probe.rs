//! Prove that a store honours conditional writes before trusting it with
//! compare-and-swap. Some S3 servers (rclone, s3rver) answer 200 and overwrite; some
//! (moto) honour conditions on PutObject but not on CopyObject — there copies are
//! emulated with GET + conditional PUT instead of being trusted.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Attributes, PutMode, Result, Store, StoreError, Workaround};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Conditions the store ignored on PutObject: it cannot be trusted with CAS.
    pub ignored: Vec<String>,
    /// Conditions the store ignores that the backend works around.
    #[serde(default)]
    pub workarounds: Vec<Workaround>,
}

impl ProbeReport {
    pub fn trusted(&self) -> bool {
        self.ignored.is_empty()
    }
}

/// Probe `store` with scratch objects under `scratch` (removed afterwards).
pub async fn probe(store: &dyn Store, scratch: &str) -> Result<ProbeReport> {
    let key = format!("{scratch}{}", crate::digest::unique_token());
    let copy_target = format!("{key}-copy");
    let plain = Attributes::default();
    let put = |body: &'static str, mode: PutMode| {
        store.put(&key, Bytes::from_static(body.as_bytes()), &plain, mode)
    };
    let mut report = ProbeReport::default();
    let first = put("first", PutMode::Create).await?;
    match put("second", PutMode::Create).await {
        Ok(_) => report
            .ignored
            .push("If-None-Match: * on PutObject (an existing object was overwritten)".into()),
        Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    match put("third", PutMode::IfMatch(format!("{first}-stale"))).await {
        Ok(_) => report
            .ignored
            .push("If-Match on PutObject (a write with a stale ETag was accepted)".into()),
        Err(StoreError::Precondition { .. }) => {}
        Err(e) => return Err(e),
    }
    store
        .put(
            &copy_target,
            Bytes::from_static(b"x"),
            &plain,
            PutMode::Overwrite,
        )
        .await?;
    let copy_refused = |r: &Result<String>| matches!(r, Err(StoreError::AlreadyExists { .. }));
    let copy = store
        .copy(&key, &copy_target, &plain, PutMode::Create)
        .await;
    if !copy_refused(&copy) {
        copy?;
        if report.trusted() && store.apply_workaround(Workaround::EmulateConditionalCopy) {
            let again = store
                .copy(&key, &copy_target, &plain, PutMode::Create)
                .await;
            if !copy_refused(&again) {
                report
                    .ignored
                    .push("If-None-Match: * on CopyObject, even emulated".into());
            }
            report.workarounds.push(Workaround::EmulateConditionalCopy);
        } else {
            report
                .ignored
                .push("If-None-Match: * on CopyObject (an existing object was overwritten)".into());
        }
    }
    // Only a store whose single-part conditions hold is worth probing further. A
    // multipart probe that errors proves nothing: fall back to one-part writes too.
    if report.trusted()
        && !store
            .probe_large_writes(&copy_target)
            .await
            .unwrap_or(false)
    {
        if store.apply_workaround(Workaround::ConditionalWritesInOnePart) {
            report
                .workarounds
                .push(Workaround::ConditionalWritesInOnePart);
        } else {
            report
                .ignored
                .push("conditions on CompleteMultipartUpload".into());
        }
    }
    let _ = store.delete(&key, None).await;
    let _ = store.delete(&copy_target, None).await;
    Ok(report)
}
