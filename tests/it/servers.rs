//! Real S3 servers for the tests, started through the project's own script
//! (`scripts/s3-test-servers.sh`). A server that cannot be started fails the test: these
//! tests never skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use driftless::store::{S3Settings, S3Store};

pub struct Servers {
    pub moto: String,
    pub seaweedfs: String,
    pub rclone: String,
    pub key: String,
    pub secret: String,
    pub aws_cli: PathBuf,
    /// SeaweedFS credential pairs that each reach only their own bucket
    /// `pipeline-<env>`, as separate accounts would: env → (key, secret).
    pub pipeline: BTreeMap<String, (String, String)>,
}

/// Start (once per test process) moto, SeaweedFS and rclone on loopback. The script's
/// watchdog stops them when this process exits.
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-test-servers.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["start", "--watch", &std::process::id().to_string()])
            .output()
            .expect("cannot run scripts/s3-test-servers.sh");
        assert!(
            out.status.success(),
            "the S3 test servers did not start — a failure, not a skip:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let vars: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let get = |k: &str| {
            vars.get(k)
                .unwrap_or_else(|| panic!("script did not print {k}"))
                .clone()
        };
        Servers {
            moto: get("MOTO_ENDPOINT"),
            seaweedfs: get("SEAWEEDFS_ENDPOINT"),
            rclone: get("RCLONE_ENDPOINT"),
            key: get("AWS_ACCESS_KEY_ID"),
            secret: get("AWS_SECRET_ACCESS_KEY"),
            aws_cli: PathBuf::from(get("AWS_CLI")),
            pipeline: vars
                .iter()
                .filter_map(|(k, v)| {
                    let env = k.strip_prefix("PIPELINE_")?.strip_suffix("_KEY")?;
                    let (key, secret) = v.split_once(':')?;
                    Some((env.to_lowercase(), (key.to_owned(), secret.to_owned())))
                })
                .collect(),
        }
    })
}

impl Servers {
    /// The AWS CLI, isolated from the developer's own AWS configuration.
    pub fn aws(&self, endpoint: &str, args: &[&str]) -> std::process::Output {
        let out = Command::new(&self.aws_cli)
            .arg("--endpoint-url")
            .arg(endpoint)
            .args(args)
            .envs(self.env())
            .output()
            .expect("run the AWS CLI");
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Change distribution `id`'s config with the AWS CLI, as someone outside driftless
    /// would: get it, edit it, update it If-Match its ETag.
    pub fn update_distribution(&self, id: &str, change: impl FnOnce(&mut serde_json::Value)) {
        let got = self.aws(
            &self.moto,
            &["cloudfront", "get-distribution-config", "--id", id],
        );
        let mut got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
        let etag = got["ETag"].as_str().unwrap().to_owned();
        change(&mut got["DistributionConfig"]);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), got["DistributionConfig"].to_string()).unwrap();
        self.aws(
            &self.moto,
            &[
                "cloudfront",
                "update-distribution",
                "--id",
                id,
                "--if-match",
                &etag,
                "--distribution-config",
                &format!("file://{}", file.path().display()),
            ],
        );
    }

    /// Environment for a driftless or AWS CLI process talking to these servers.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// `aws s3api head-object`, as JSON (ContentType, CacheControl, Metadata, ...).
    pub fn head_object(&self, endpoint: &str, bucket: &str, key: &str) -> serde_json::Value {
        let out = self.aws(
            endpoint,
            &["s3api", "head-object", "--bucket", bucket, "--key", key],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A new, empty bucket on `endpoint`.
    pub fn bucket(&self, endpoint: &str) -> String {
        let name = format!("dl-{}", &uniq()[..16]);
        self.aws(endpoint, &["s3api", "create-bucket", "--bucket", &name]);
        name
    }

    /// A new CloudFront distribution on moto in front of `bucket`: its id.
    pub fn distribution(&self, bucket: &str) -> String {
        let created = self.aws(
            &self.moto,
            &[
                "cloudfront",
                "create-distribution",
                "--origin-domain-name",
                &format!("{bucket}.s3.amazonaws.com"),
            ],
        );
        let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
        created["Distribution"]["Id"].as_str().unwrap().to_owned()
    }

    /// A driftless.toml deploying `site/` as env `prod` to `s3://LOCATION` on `endpoint`.
    pub fn prod_config(endpoint: &str, location: &str) -> String {
        format!(
            "site = \"site\"\n[env.prod]\nstore = \"s3://{location}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n"
        )
    }

    pub async fn store(&self, endpoint: &str, bucket: &str, prefix: &str) -> S3Store {
        S3Store::connect(&S3Settings {
            bucket: bucket.into(),
            prefix: prefix.into(),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint.into()),
            profile: None,
            static_credentials: Some((self.key.clone(), self.secret.clone())),
        })
        .await
    }

    /// Every object in the bucket as key → SHA-256, read with the AWS CLI (not driftless).
    pub fn bucket_hashes(
        &self,
        endpoint: &str,
        bucket: &str,
        skip_prefix: &str,
    ) -> BTreeMap<String, String> {
        use sha2::Digest as _;
        self.download(endpoint, &format!("s3://{bucket}"), &[skip_prefix])
            .into_iter()
            .map(|(k, v)| (k, hex::encode(sha2::Sha256::digest(&v))))
            .collect()
    }
}

pub fn uniq() -> String {
    use sha2::Digest as _;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

impl Servers {
    /// Environment for a driftless process whose CloudFront and KeyValueStore are moto.
    pub fn cloudfront_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = self.env();
        vars.push(("AWS_ENDPOINT_URL_CLOUDFRONT", self.moto.clone()));
        vars.push((
            "AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE",
            self.moto.clone(),
        ));
        vars
    }

    /// A new bucket on `endpoint` behind a new moto distribution, for an environment of
    /// its own (KeyValueStore and function names are per account): `tag` + a unique suffix.
    pub fn behind_cloudfront(&self, endpoint: &str, tag: &str) -> BehindCloudFront {
        let bucket = self.bucket(endpoint);
        BehindCloudFront {
            endpoint: endpoint.to_owned(),
            distribution: self.distribution(&bucket),
            bucket,
            env: format!("{tag}{}", &uniq()[..10]),
        }
    }

    /// The KeyValueStore `driftless-ENV` on moto (the live pointer of `env`).
    pub fn key_value_store(
        &self,
        rt: &tokio::runtime::Runtime,
        env: &str,
    ) -> driftless::aws::kvs::KeyValueStore {
        rt.block_on(driftless::aws::kvs::KeyValueStore::with_settings(
            &format!("driftless-{env}"),
            &self.moto,
            (&self.key, &self.secret),
        ))
    }

    /// What the KeyValueStore `kvs` holds, key → value, as the conformance harness takes
    /// it.
    pub fn kvs_values(
        rt: &tokio::runtime::Runtime,
        kvs: &driftless::aws::kvs::KeyValueStore,
    ) -> serde_json::Map<String, serde_json::Value> {
        rt.block_on(kvs.keys(""))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect()
    }

    /// Every object under the S3 URL `url` on `endpoint`, path → bytes, downloaded with
    /// the AWS CLI (not driftless); paths under any of `skip` are left out.
    pub fn download(&self, endpoint: &str, url: &str, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        self.aws(
            endpoint,
            &["s3", "sync", "--quiet", url, dir.path().to_str().unwrap()],
        );
        crate::util::tree(dir.path(), skip)
    }

    /// Someone edits CloudFront Function `name` by hand with the AWS CLI: its code from
    /// `code`, with no KeyValueStore association, then (`publish`) published.
    pub fn edit_function_by_hand(&self, name: &str, code: &Path, publish: bool) {
        let s = self;
        let etag = |out: std::process::Output| {
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["ETag"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let described = s.aws(
            &s.moto,
            &["cloudfront", "describe-function", "--name", name],
        );
        let updated = s.aws(
            &s.moto,
            &[
                "cloudfront",
                "update-function",
                "--name",
                name,
                "--if-match",
                &etag(described),
                "--function-config",
                "Comment=by hand,Runtime=cloudfront-js-2.0",
                "--function-code",
                &format!("fileb://{}", code.display()),
            ],
        );
        if publish {
            s.aws(
                &s.moto,
                &[
                    "cloudfront",
                    "publish-function",
                    "--name",
                    name,
                    "--if-match",
                    &etag(updated),
                ],
            );
        }
    }

    /// The keys under `prefix` of `bucket`, relative to it, listed with the AWS CLI.
    pub fn keys_under(&self, endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.aws(
            endpoint,
            &[
                "s3api",
                "list-objects-v2",
                "--bucket",
                bucket,
                "--prefix",
                prefix,
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Contents"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| {
                        o["Key"]
                            .as_str()
                            .unwrap()
                            .trim_start_matches(prefix)
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An environment whose store is a bucket behind a CloudFront distribution on moto.
pub struct BehindCloudFront {
    pub endpoint: String,
    pub bucket: String,
    pub distribution: String,
    pub env: String,
}

impl BehindCloudFront {
    /// Its `driftless.toml`, with `layout`.
    pub fn config(&self, layout: &str) -> String {
        let Self {
            endpoint,
            bucket,
            distribution,
            env,
        } = self;
        format!(
            "site = \"site\"\n[env.{env}]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nlayout = \"{layout}\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 5 }}\n"
        )
    }

    /// Its KeyValueStore (`driftless-ENV`), created on moto (CloudFront's stand-in,
    /// whatever the store's endpoint) as `edge --apply` would.
    pub fn create_key_value_store(&self) -> &Self {
        let s = servers();
        s.aws(
            &s.moto,
            &[
                "cloudfront",
                "create-key-value-store",
                "--name",
                &format!("driftless-{}", self.env),
            ],
        );
        self
    }

    /// `get-distribution-config` of its distribution: `ETag` and `DistributionConfig`.
    pub fn distribution_config(&self) -> serde_json::Value {
        let s = servers();
        let out = s.aws(
            &s.moto,
            &[
                "cloudfront",
                "get-distribution-config",
                "--id",
                &self.distribution,
            ],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A project in `dir` with `config`, its CloudFront and KeyValueStore on moto.
    pub fn project(&self, dir: &Path, config: &str) -> crate::util::Project {
        crate::util::Project::with_config(dir, config).envs(servers().cloudfront_env())
    }
}
