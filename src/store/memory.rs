//! In-memory store for unit tests. Same semantics as S3: the ETag is derived from the
//! content, so rewriting identical bytes yields the same ETag.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{Attributes, Object, ObjectMeta, PutMode, Result, Store, StoreError, validate_key};

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, Attributes, String)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn check(
        map: &BTreeMap<String, (Bytes, Attributes, String)>,
        key: &str,
        mode: &PutMode,
    ) -> Result<()> {
        match (mode, map.get(key)) {
            (PutMode::Overwrite, _) | (PutMode::Create, None) => Ok(()),
            (PutMode::Create, Some(_)) => Err(StoreError::AlreadyExists { key: key.into() }),
            (PutMode::IfMatch(want), Some((_, _, etag))) if etag == want => Ok(()),
            (PutMode::IfMatch(want), _) => Err(StoreError::Precondition {
                key: key.into(),
                expected: want.clone(),
            }),
        }
    }

    fn insert(
        map: &mut BTreeMap<String, (Bytes, Attributes, String)>,
        key: &str,
        body: Bytes,
        attrs: &Attributes,
    ) -> String {
        let etag = hex::encode(&Sha256::digest(&body)[..16]);
        map.insert(key.to_owned(), (body, attrs.clone(), etag.clone()));
        etag
    }
}

fn object(key: &str, body: &Bytes, attrs: &Attributes, etag: &str) -> Object {
    Object {
        meta: ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: etag.to_owned(),
        },
        attrs: attrs.clone(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory://".into()
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let map = self.objects.lock().unwrap();
        Ok(map
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, a, e))| object(k, b, a, e).meta)
            .collect())
    }

    async fn head(&self, key: &str) -> Result<Option<Object>> {
        validate_key(key)?;
        let map = self.objects.lock().unwrap();
        Ok(map.get(key).map(|(b, a, e)| object(key, b, a, e)))
    }

    async fn get(&self, key: &str) -> Result<Option<(Object, Bytes)>> {
        validate_key(key)?;
        let map = self.objects.lock().unwrap();
        Ok(map
            .get(key)
            .map(|(b, a, e)| (object(key, b, a, e), b.clone())))
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        attrs: &Attributes,
        mode: PutMode,
    ) -> Result<String> {
        validate_key(key)?;
        let mut map = self.objects.lock().unwrap();
        Self::check(&map, key, &mode)?;
        Ok(Self::insert(&mut map, key, body, attrs))
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
        let mut map = self.objects.lock().unwrap();
        let body = map
            .get(from)
            .map(|(b, _, _)| b.clone())
            .ok_or_else(|| StoreError::NotFound { key: from.into() })?;
        Self::check(&map, to, &mode)?;
        Ok(Self::insert(&mut map, to, body, attrs))
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<()> {
        validate_key(key)?;
        let mut map = self.objects.lock().unwrap();
        if let Some(want) = if_match {
            match map.get(key) {
                None => return Err(StoreError::NotFound { key: key.into() }),
                Some((_, _, etag)) if etag != want => {
                    return Err(StoreError::Precondition {
                        key: key.into(),
                        expected: want.into(),
                    });
                }
                Some(_) => {}
            }
        }
        map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new()).await;
    }
}
