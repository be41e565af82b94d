//! The live pointer of an atomic layout behind CloudFront: the key [`POINTER_KEY`] of the
//! environment's CloudFront KeyValueStore ([`crate::aws::kvs`]), which the `[edge]`
//! function reads on every request. The value is JSON, `{"slot":"a","release":"<id>"}`:
//! the slot to serve from and the id the function puts into the cache key. The token is
//! the store-wide ETag read *before* the value, so a switch after any write is refused.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{LivePointer, POINTER_KEY, Result, Split, StoreError};
use crate::aws::kvs::{KeyValueStore, KvsError};

/// The KeyValueStore value of the live pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PointerValue {
    slot: String,
    release: String,
    /// The live release's edge rules (see `edge::table`): they switch with it.
    #[serde(default, rename = "e", skip_serializing_if = "Option::is_none")]
    edge: Option<serde_json::Value>,
    /// A canary: the share of visitors served another slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canary: Option<Split>,
}

impl From<KvsError> for StoreError {
    fn from(e: KvsError) -> Self {
        match e {
            KvsError::Missing(m) => Self::Refused(m),
            KvsError::Conflict { key, expected } => Self::Precondition { key, expected },
            KvsError::Failed(m) => Self::Other(m),
        }
    }
}

fn pointer_value(
    slot: &str,
    release: &str,
    edge: Option<&serde_json::Value>,
    canary: Option<Split>,
) -> Result<String> {
    let v = serde_json::to_string(&PointerValue {
        slot: slot.to_owned(),
        release: release.to_owned(),
        edge: edge.cloned(),
        canary,
    })
    .expect("a pointer serialises");
    // Checked when the rules are compiled; this is the last word before the edge.
    if v.len() > crate::aws::kvs::VALUE_MAX {
        return Err(StoreError::Refused(format!(
            "the live pointer would be {} bytes, over the KeyValueStore's {} per value (the edge rules of a release and of its canary share it): nothing was changed",
            v.len(),
            crate::aws::kvs::VALUE_MAX
        )));
    }
    Ok(v)
}

/// The live pointer kept in a CloudFront KeyValueStore.
#[derive(Debug)]
pub struct KvsPointer(pub KeyValueStore);

#[async_trait]
impl LivePointer for KvsPointer {
    fn describe(&self) -> String {
        format!("{}, key {POINTER_KEY}", self.0.target())
    }

    async fn read(&self) -> Result<Option<(String, String)>> {
        let etag = self.0.etag().await?;
        let Some(raw) = self.0.get(POINTER_KEY).await? else {
            return Ok(None);
        };
        let value: PointerValue = serde_json::from_str(&raw).map_err(|e| {
            StoreError::Other(format!(
                "{}: key {POINTER_KEY} holds {raw:?}, not a driftless pointer ({e})",
                self.0.target()
            ))
        })?;
        Ok(Some((value.slot, etag)))
    }

    async fn write(
        &self,
        slot: &str,
        release: &str,
        edge: Option<&serde_json::Value>,
        expected: Option<&str>,
    ) -> Result<String> {
        let value = pointer_value(slot, release, edge, None)?;
        let etag = match expected {
            Some(e) => e.to_owned(),
            None => {
                // Only if there is none yet: the ETag read first, so a pointer written
                // after the check makes the write fail.
                let etag = self.0.etag().await?;
                if self.0.get(POINTER_KEY).await?.is_some() {
                    return Err(StoreError::AlreadyExists {
                        key: format!("{}: {POINTER_KEY}", self.0.target()),
                    });
                }
                etag
            }
        };
        Ok(self.0.put(POINTER_KEY, &value, &etag).await?)
    }

    async fn remove(&self, expected: &str) -> Result<()> {
        Ok(self.0.delete(POINTER_KEY, expected).await?)
    }

    async fn write_split(
        &self,
        slot: &str,
        release: &str,
        edge: Option<&serde_json::Value>,
        split: Option<&Split>,
        expected: &str,
    ) -> Result<String> {
        let value = pointer_value(slot, release, edge, split.cloned())?;
        Ok(self.0.put(POINTER_KEY, &value, expected).await?)
    }

    fn carries_edge(&self) -> bool {
        true
    }

    async fn token(&self) -> Result<String> {
        Ok(self.0.etag().await?)
    }

    async fn room(&self) -> Result<Option<(u64, u64)>> {
        let (_, bytes) = self.0.usage().await?;
        Ok(Some((
            u64::try_from(bytes).unwrap_or(0),
            crate::aws::kvs::STORE_BYTES_MAX,
        )))
    }

    async fn put_values(&self, values: &[(String, String)], expected: &str) -> Result<String> {
        if values.is_empty() {
            return Ok(expected.to_owned());
        }
        Ok(self.0.update_keys(values, &[], expected).await?)
    }

    async fn delete_values(&self, keys: &[String]) -> Result<()> {
        let mut tries = 0;
        loop {
            let etag = self.0.etag().await?;
            match self.0.update_keys(&[], keys, &etag).await {
                Err(KvsError::Conflict { .. }) if tries < 5 => tries += 1,
                other => return other.map(|_| ()).map_err(Into::into),
            }
        }
    }

    async fn publish_preview(
        &self,
        name: &str,
        edge: Option<(&str, i64, Option<&serde_json::Value>)>,
    ) -> Result<()> {
        let key = format!("{}{name}", super::PREVIEW_KEY_PREFIX);
        let value = edge.map(|(release, expires, root)| {
            let mut v = serde_json::json!({ "release": release, "expires": expires });
            if let Some(r) = root {
                v["e"] = r.clone();
            }
            v.to_string()
        });
        // The ETag is the whole store's: a write of another key (a deploy's switch,
        // another preview) in between only means reading it again.
        let mut tries = 0;
        loop {
            let etag = self.0.etag().await?;
            let done = match &value {
                Some(v) => self.0.put(&key, v, &etag).await.map(|_| ()),
                None if self.0.get(&key).await?.is_none() => Ok(()),
                None => self.0.delete(&key, &etag).await,
            };
            match done {
                Err(KvsError::Conflict { .. }) if tries < 5 => tries += 1,
                other => return Ok(other?),
            }
        }
    }
}
