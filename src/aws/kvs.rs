//! The live pointer of an atomic layout behind CloudFront: a key of the environment's
//! CloudFront KeyValueStore, which the `[edge]` function reads on every request.
//!
//! The store is found by name (`driftless-<env>`, created by `edge --apply`) through the
//! CloudFront control plane, once per process; the key is read and written through the
//! KeyValueStore data plane (SigV4A). Every write carries `If-Match` with the store-wide
//! ETag, so a switch from a stale pointer is refused (the service answers 409 or 412).
//! `store::KvsPointer` keeps the live pointer in it.

use aws_sdk_cloudfrontkeyvaluestore as kvs;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use tokio::sync::OnceCell;

/// The most a KeyValueStore holds, keys and values together (CloudFront's quota: 5 MB).
pub const STORE_BYTES_MAX: u64 = 5 * 1024 * 1024;

/// The most bytes a KeyValueStore value holds.
pub const VALUE_MAX: usize = 1024;

/// Why a KeyValueStore request did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KvsError {
    /// The store does not exist (the message names the command that creates it).
    #[error("{0}")]
    Missing(String),
    /// A write named an ETag the store no longer has.
    #[error("{key}: changed since it was read (expected ETag {expected})")]
    Conflict { key: String, expected: String },
    #[error("{0}")]
    Failed(String),
}

/// An environment's CloudFront KeyValueStore, found by name on first use.
#[derive(Debug)]
pub struct KeyValueStore {
    name: String,
    /// The environment, for the command a refusal names.
    env: String,
    profile: Option<String>,
    clients: OnceCell<(aws_sdk_cloudfront::Client, kvs::Client)>,
    arn: OnceCell<String>,
}

/// The data plane's endpoint when an emulator stands in for AWS: the service's rules put
/// the account id in front of the host (`123456789012.cloudfront-kvs.global.api.aws`),
/// which an address like `127.0.0.1:19180` cannot take, so an endpoint given in
/// `AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE` (or `AWS_ENDPOINT_URL`) is used as it is.
#[derive(Debug)]
struct Fixed(String);

impl kvs::config::endpoint::ResolveEndpoint for Fixed {
    fn resolve_endpoint<'a>(
        &'a self,
        _: &'a kvs::config::endpoint::Params,
    ) -> kvs::config::endpoint::EndpointFuture<'a> {
        kvs::config::endpoint::EndpointFuture::ready(Ok(kvs::config::endpoint::Endpoint::builder()
            .url(self.0.clone())
            .build()))
    }
}

impl KeyValueStore {
    pub fn new(name: &str, env: &str, profile: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            env: env.to_owned(),
            profile: profile.map(str::to_owned),
            clients: OnceCell::new(),
            arn: OnceCell::new(),
        }
    }

    /// At a fixed endpoint with fixed credentials, for embedding driftless as a library
    /// (and its tests). The CLI never uses these: it takes the standard AWS chain.
    pub async fn with_settings(name: &str, endpoint: &str, credentials: (&str, &str)) -> Self {
        let sdk = crate::aws::loader_for(None, Some("us-east-1"))
            .await
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                credentials.0,
                credentials.1,
                None,
                None,
                "driftless-static",
            ))
            .load()
            .await;
        let data = kvs::config::Builder::from(&sdk)
            .endpoint_resolver(Fixed(endpoint.to_owned()))
            .build();
        Self {
            name: name.to_owned(),
            env: "ENV".to_owned(),
            profile: None,
            clients: OnceCell::new_with(Some((
                aws_sdk_cloudfront::Client::new(&sdk),
                kvs::Client::from_conf(data),
            ))),
            arn: OnceCell::new(),
        }
    }

    async fn clients(&self) -> &(aws_sdk_cloudfront::Client, kvs::Client) {
        self.clients
            .get_or_init(|| async {
                let sdk = crate::aws::loader_for(self.profile.as_deref(), Some("us-east-1"))
                    .await
                    .load()
                    .await;
                let mut conf = kvs::config::Builder::from(&sdk);
                let endpoint = std::env::var("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE")
                    .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                    .ok()
                    .filter(|e| !e.is_empty());
                if let Some(e) = endpoint {
                    conf = conf.endpoint_resolver(Fixed(e));
                }
                (
                    aws_sdk_cloudfront::Client::new(&sdk),
                    kvs::Client::from_conf(conf.build()),
                )
            })
            .await
    }

    pub fn target(&self) -> String {
        format!("CloudFront KeyValueStore {}", self.name)
    }

    /// The store's ARN, if it exists.
    pub async fn find(&self) -> Result<Option<String>, KvsError> {
        if let Some(arn) = self.arn.get() {
            return Ok(Some(arn.clone()));
        }
        let (cf, _) = self.clients().await;
        match cf.describe_key_value_store().name(&self.name).send().await {
            Ok(out) => {
                let arn = out
                    .key_value_store()
                    .map(|s| s.arn().to_owned())
                    .ok_or_else(|| KvsError::Failed(format!("{}: no ARN", self.target())))?;
                Ok(Some(self.arn.get_or_init(|| async { arn }).await.clone()))
            }
            Err(e) if e.code() == Some("EntityNotFound") => Ok(None),
            Err(e) => Err(KvsError::Failed(crate::aws::error::one_line(
                &e,
                &self.target(),
                self.profile.as_deref(),
            ))),
        }
    }

    /// The store's ARN; a refusal naming the command that creates it when it is missing.
    async fn arn(&self) -> Result<String, KvsError> {
        self.find().await?.ok_or_else(|| {
            KvsError::Missing(format!(
                "{} does not exist, so CloudFront has no live pointer to read\n  → create it with `driftless edge {} --apply` (it creates the store and attaches it to the function)",
                self.target(),
                self.env
            ))
        })
    }

    /// The store's description: its ETag, keys and bytes.
    async fn describe(
        &self,
    ) -> Result<
        aws_sdk_cloudfrontkeyvaluestore::operation::describe_key_value_store::DescribeKeyValueStoreOutput,
        KvsError,
    >{
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        data.describe_key_value_store()
            .kvs_arn(&arn)
            .send()
            .await
            .map_err(|e| self.failed(&e))
    }

    /// The store-wide ETag every write must name.
    pub async fn etag(&self) -> Result<String, KvsError> {
        Ok(self.describe().await?.e_tag().to_owned())
    }

    /// How many keys the store holds and their bytes (of its 5 MB).
    pub async fn usage(&self) -> Result<(i64, i64), KvsError> {
        let out = self.describe().await?;
        Ok((i64::from(out.item_count()), out.total_size_in_bytes()))
    }

    /// The value of `key`, if the store has it.
    pub async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        match data.get_key().kvs_arn(&arn).key(key).send().await {
            Ok(out) => Ok(Some(out.value().to_owned())),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// Every key starting with `prefix`, and its value (ListKeys, page by page).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<(String, String)>, KvsError> {
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = data
                .list_keys()
                .kvs_arn(&arn)
                .max_results(50)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| self.failed(&e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter(|i| i.key().starts_with(prefix))
                    .map(|i| (i.key().to_owned(), i.value().to_owned())),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    /// Make the keys starting with `prefix` exactly `wanted` (key → value): writes what
    /// differs, deletes what is not wanted, each conditional on the store's ETag (read
    /// again when another write came between). Returns how many keys changed.
    pub async fn sync(
        &self,
        prefix: &str,
        wanted: &std::collections::BTreeMap<String, String>,
    ) -> Result<usize, KvsError> {
        let held: std::collections::BTreeMap<String, String> =
            self.keys(prefix).await?.into_iter().collect();
        let mut changed = 0;
        let writes = wanted.iter().filter(|(k, v)| held.get(*k) != Some(*v));
        let deletes = held.keys().filter(|k| !wanted.contains_key(*k));
        for (key, value) in writes
            .map(|(k, v)| (k, Some(v)))
            .chain(deletes.map(|k| (k, None)))
        {
            let mut tries = 0;
            loop {
                let etag = self.etag().await?;
                let done = match value {
                    Some(v) => self.put(key, v, &etag).await.map(|_| ()),
                    None => self.delete(key, &etag).await,
                };
                match done {
                    Err(KvsError::Conflict { .. }) if tries < 5 => tries += 1,
                    other => {
                        other?;
                        break;
                    }
                }
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// Write `key`, only if the store's ETag is still `etag`. Returns the new ETag.
    pub async fn put(&self, key: &str, value: &str, etag: &str) -> Result<String, KvsError> {
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        match data
            .put_key()
            .kvs_arn(&arn)
            .key(key)
            .value(value)
            .if_match(etag)
            .send()
            .await
        {
            Ok(out) => Ok(out.e_tag().to_owned()),
            Err(e) => Err(self.write_failed(&e, key, etag)),
        }
    }

    /// Write `puts` and delete `deletes` in batches of 50 (UpdateKeys: all or nothing),
    /// each only if the store's ETag is still what the batch before returned; the first
    /// batch's is `etag`. Returns the ETag after the last.
    pub async fn update_keys(
        &self,
        puts: &[(String, String)],
        deletes: &[String],
        etag: &str,
    ) -> Result<String, KvsError> {
        use aws_sdk_cloudfrontkeyvaluestore::types::{
            DeleteKeyRequestListItem, PutKeyRequestListItem,
        };
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        let mut etag = etag.to_owned();
        let ops: Vec<(&str, Option<&str>)> = puts
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .chain(deletes.iter().map(|k| (k.as_str(), None)))
            .collect();
        for batch in ops.chunks(50) {
            let mut call = data.update_keys().kvs_arn(&arn).if_match(&etag);
            for (k, v) in batch {
                call = match v {
                    Some(v) => call.puts(
                        PutKeyRequestListItem::builder()
                            .key(*k)
                            .value(*v)
                            .build()
                            .map_err(|e| KvsError::Failed(e.to_string()))?,
                    ),
                    None => call.deletes(
                        DeleteKeyRequestListItem::builder()
                            .key(*k)
                            .build()
                            .map_err(|e| KvsError::Failed(e.to_string()))?,
                    ),
                };
            }
            match call.send().await {
                Ok(out) => out.e_tag().clone_into(&mut etag),
                Err(e) => return Err(self.write_failed(&e, batch[0].0, &etag)),
            }
        }
        Ok(etag)
    }

    /// Delete `key`, only if the store's ETag is still `etag`.
    pub async fn delete(&self, key: &str, etag: &str) -> Result<(), KvsError> {
        let arn = self.arn().await?;
        let (_, data) = self.clients().await;
        match data
            .delete_key()
            .kvs_arn(&arn)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.write_failed(&e, key, etag)),
        }
    }

    /// A refused conditional write of `key` (the store's ETag is no longer `etag`: the
    /// service answers 409 ConflictException, or 412), else the failure in one line.
    fn write_failed<E>(
        &self,
        e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        key: &str,
        etag: &str,
    ) -> KvsError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if e.code() == Some("ConflictException")
            || e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
        {
            KvsError::Conflict {
                key: format!("{}: {key}", self.target()),
                expected: etag.to_owned(),
            }
        } else {
            self.failed(e)
        }
    }

    fn failed<E>(
        &self,
        e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> KvsError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        KvsError::Failed(crate::aws::error::one_line(
            e,
            &self.target(),
            self.profile.as_deref(),
        ))
    }
}
