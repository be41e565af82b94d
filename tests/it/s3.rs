//! The S3 backend on real S3 servers (SeaweedFS with real SigV4 auth, moto), and the
//! store probe against one that ignores conditional writes (rclone serve s3).
//! Objects are checked with the AWS CLI, not with driftless.

use std::collections::BTreeMap;
use std::path::Path;

use crate::servers::{Servers, servers};
use crate::util::{Project, files};

pub const PREFIX: &str = "www";

pub fn config(endpoint: &str, bucket: &str) -> String {
    format!(
        "site = \"site\"\n\n[env.prod]\nstore = \"s3://{bucket}/{PREFIX}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[[rules]]\nmatch = \"**.html\"\ncache_control = \"no-cache\"\n[[rules]]\nmatch = \"assets/**\"\ncache_control = \"public, max-age=31536000, immutable\"\n"
    )
}

fn project(s: &Servers, dir: &Path, endpoint: &str, bucket: &str) -> Project {
    Project::with_config(dir, &config(endpoint, bucket)).envs(s.env())
}

/// The site as a visitor would get it: every object under the prefix but the state.
pub fn bucket_site(s: &Servers, endpoint: &str, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    s.download(
        endpoint,
        &format!("s3://{bucket}/{PREFIX}"),
        &[".driftless/"],
    )
}

/// Change a key behind driftless's back, with the AWS CLI.
fn put_out_of_band(s: &Servers, endpoint: &str, bucket: &str, key: &str, content: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), content).unwrap();
    s.aws(
        endpoint,
        &[
            "s3",
            "cp",
            file.path().to_str().unwrap(),
            &format!("s3://{bucket}/{PREFIX}/{key}"),
        ],
    );
}

fn bucket_head(s: &Servers, endpoint: &str, bucket: &str) -> String {
    let out = s.aws(
        endpoint,
        &[
            "s3",
            "cp",
            &format!("s3://{bucket}/{PREFIX}/.driftless/HEAD"),
            "-",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_seaweedfs() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    driftless::store::conformance::run(&s.store(&s.seaweedfs, &bucket, "conformance").await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_moto() {
    let s = servers();
    let bucket = s.bucket(&s.moto);
    driftless::store::conformance::run(&s.store(&s.moto, &bucket, "").await).await;
}

#[test]
fn a_store_that_ignores_conditional_writes_is_refused() {
    let s = servers();
    let bucket = s.bucket(&s.rclone);
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &s.rclone, &bucket);
    p.write("index.html", "hello");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "ignores conditional writes",
        "If-None-Match",
        "--force unsafe-store",
    ]);
    assert!(
        bucket_site(s, &s.rclone, &bucket).is_empty(),
        "a refused deploy wrote site objects"
    );
    // The explicit override is printed (and journalled).
    p.cmd(&["deploy", "prod", "--yes", "--force", "unsafe-store"])
        .expect(0)
        .mentions(&["warning:", "--force unsafe-store"]);
    assert_eq!(
        bucket_site(s, &s.rclone, &bucket),
        files(&[("index.html", "hello")])
    );
}

/// The seed incident on both servers: a stale copy's deploy is refused, and the
/// bucket — listed and hashed with the AWS CLI — is unchanged.
#[test]
fn stale_copy_is_refused_on_both_servers() {
    let s = servers();
    for endpoint in [&s.seaweedfs, &s.moto] {
        let bucket = s.bucket(endpoint);
        let tmp = tempfile::tempdir().unwrap();
        let a = project(s, &tmp.path().join("a"), endpoint, &bucket);
        let b =
            project(s, &tmp.path().join("b"), endpoint, &bucket).author("Bob <bob@example.com>");
        a.write("index.html", "<h1>Shop</h1>")
            .write("assets/app.js", "v1");
        a.cmd(&["deploy", "prod", "--yes"]).expect(0);
        b.cmd(&["pull", "prod", "site"]).expect(0);
        b.write(
            "index.html",
            "<h1>Shop</h1><div class=hero-animation></div><div id=stripe-checkout></div>",
        );
        b.cmd(&["deploy", "prod", "--yes", "-m", "hero + checkout"])
            .expect(0);
        let bobs = bucket_head(s, endpoint, &bucket);

        let before = s.bucket_hashes(endpoint, &bucket, "www/.driftless/journal/");
        a.write("index.html", "<h1>Shop!</h1>");
        a.cmd(&["deploy", "prod", "--yes"])
            .expect(3)
            .mentions(&["index.html", &bobs, "Bob"]);
        let after = s.bucket_hashes(endpoint, &bucket, "www/.driftless/journal/");
        assert_eq!(
            after, before,
            "{endpoint}: the refused deploy changed the bucket"
        );
    }
}

/// Rollback restores every byte — including a file overwritten with the AWS CLI —
/// with bucket versioning off.
#[test]
fn rollback_is_byte_identical_on_both_servers() {
    let s = servers();
    for endpoint in [&s.seaweedfs, &s.moto] {
        let bucket = s.bucket(endpoint);
        let tmp = tempfile::tempdir().unwrap();
        let p = project(s, tmp.path(), endpoint, &bucket);
        let v1 = [
            ("index.html", "home 1"),
            ("css/a.css", "a 1"),
            ("old.html", "old"),
        ];
        for (k, v) in v1 {
            p.write(k, v);
        }
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        let first = bucket_head(s, endpoint, &bucket);
        p.write("index.html", "home 2")
            .write("css/a.css", "a 2")
            .write("new.js", "new")
            .remove("old.html");
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        put_out_of_band(s, endpoint, &bucket, "css/a.css", "tampered");
        p.cmd(&["rollback", "prod", "--to", &first, "--yes"])
            .expect(0);
        assert_eq!(bucket_site(s, endpoint, &bucket), files(&v1), "{endpoint}");
        // The tampered bytes were snapshotted before being replaced: nothing is lost.
        let objects = s.bucket_hashes(endpoint, &bucket, "www/.driftless/journal/");
        let tampered_sha = driftless::digest::hash_bytes(b"tampered");
        assert!(
            objects.contains_key(&format!("www/.driftless/objects/{tampered_sha}")),
            "{endpoint}: the overwritten bytes are not recoverable"
        );
    }
}

/// What driftless writes reads back right with the AWS CLI, and a file changed with
/// `aws s3 cp` is reported as drift naming that key.
#[test]
fn interoperates_with_the_aws_cli() {
    let s = servers();
    for endpoint in [&s.seaweedfs, &s.moto] {
        let bucket = s.bucket(endpoint);
        let tmp = tempfile::tempdir().unwrap();
        let p = project(s, tmp.path(), endpoint, &bucket);
        p.write("index.html", "<p>hi</p>")
            .write("assets/app.wasm", "\0asm")
            .write("assets/font.woff2", "wOF2");
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        for (key, ct, cc) in [
            ("index.html", "text/html; charset=utf-8", "no-cache"),
            (
                "assets/app.wasm",
                "application/wasm",
                "public, max-age=31536000, immutable",
            ),
            (
                "assets/font.woff2",
                "font/woff2",
                "public, max-age=31536000, immutable",
            ),
        ] {
            let head = s.head_object(endpoint, &bucket, &format!("{PREFIX}/{key}"));
            assert_eq!(head["ContentType"], ct, "{endpoint} {key}");
            assert_eq!(head["CacheControl"], cc, "{endpoint} {key}");
        }

        // Header-only change: a rule edit re-deploys as a copy, not an upload.
        let cfg = config(endpoint, &bucket).replace(
            "cache_control = \"no-cache\"",
            "cache_control = \"no-cache, must-revalidate\"",
        );
        std::fs::write(tmp.path().join("driftless.toml"), cfg).unwrap();
        let plan = p
            .cmd(&["deploy", "prod", "--yes", "--json"])
            .expect(0)
            .json();
        assert_eq!(plan["plan"]["totals"]["header_update"], 1, "{endpoint}");
        assert_eq!(plan["plan"]["totals"]["upload_bytes"], 0, "{endpoint}");
        let head = s.head_object(endpoint, &bucket, "www/index.html");
        assert_eq!(
            head["CacheControl"], "no-cache, must-revalidate",
            "{endpoint}"
        );

        put_out_of_band(s, endpoint, &bucket, "index.html", "<p>hotfix</p>");
        p.write("assets/app.wasm", "\0asm2");
        p.cmd(&["deploy", "prod", "--yes"])
            .expect(3)
            .mentions(&["[drift]", "index.html (changed)"]);
        p.cmd(&["status", "prod"])
            .expect(0)
            .mentions(&["index.html"]);
    }
}

#[test]
fn two_deploys_at_once_on_seaweedfs() {
    let s = servers();
    let buckets = std::sync::Mutex::new(BTreeMap::new());
    let bucket_for = |dir: &Path| {
        buckets
            .lock()
            .unwrap()
            .entry(dir.to_path_buf())
            .or_insert_with(|| s.bucket(&s.seaweedfs))
            .clone()
    };
    crate::lifecycle::two_deploys_race(
        2,
        &|dir, name, who| project(s, &dir.join(name), &s.seaweedfs, &bucket_for(dir)).author(who),
        &|dir| bucket_site(s, &s.seaweedfs, &bucket_for(dir)),
    );
}

#[test]
fn killed_deploys_are_finished_on_seaweedfs() {
    let s = servers();
    let buckets = std::sync::Mutex::new(BTreeMap::new());
    let bucket_for = |dir: &Path| {
        buckets
            .lock()
            .unwrap()
            .entry(dir.to_path_buf())
            .or_insert_with(|| s.bucket(&s.seaweedfs))
            .clone()
    };
    crate::crash::killed_deploys_are_finished(
        &|dir| project(s, &dir.join("work"), &s.seaweedfs, &bucket_for(dir)),
        &|dir| {
            let bucket = bucket_for(dir);
            let b2 = bucket.clone();
            (
                Box::new(move || bucket_site(s, &s.seaweedfs, &bucket)),
                Box::new(move || bucket_head(s, &s.seaweedfs, &b2)),
            )
        },
    );
}

#[test]
fn store_errors_are_one_clear_line() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let good = project(s, &tmp.path().join("good"), &s.seaweedfs, &bucket);
    good.write("index.html", "x");

    // Wrong credentials (SeaweedFS checks SigV4).
    let d = good
        .cmd(&["deploy", "prod", "--yes"])
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .expect(1);
    d.mentions(&["access denied", "credentials"]);
    assert!(
        d.stderr.lines().count() <= 2,
        "not one clear line: {}",
        d.stderr
    );
    assert!(!d.all().contains("wrong"), "a secret was printed");

    // A bucket that does not exist.
    let missing = project(
        s,
        &tmp.path().join("missing"),
        &s.seaweedfs,
        "no-such-bucket-here",
    );
    missing.write("index.html", "x");
    missing
        .cmd(&["deploy", "prod", "--yes"])
        .expect(1)
        .mentions(&["does not exist", "no-such-bucket-here"]);

    // An endpoint nobody listens on.
    let down = project(s, &tmp.path().join("down"), "http://127.0.0.1:9", &bucket);
    down.write("index.html", "x");
    let d = down.cmd(&["deploy", "prod", "--yes"]).expect(1);
    d.mentions(&["cannot reach", "127.0.0.1:9"]);
    assert!(
        d.stderr.lines().count() <= 2,
        "not one clear line: {}",
        d.stderr
    );

    // Nothing was written by any of them.
    assert!(bucket_site(s, &s.seaweedfs, &bucket).is_empty());
}

/// AWS answers a request signed for the wrong region of a bucket with 301
/// PermanentRedirect; no local server enforces regions, so a fake endpoint answers that.
#[test]
fn region_mismatch_is_explained() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten().take(20) {
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Bucket>site</Bucket><Endpoint>site.s3.eu-west-1.amazonaws.com</Endpoint></Error>";
            let resp = format!(
                "HTTP/1.1 301 Moved Permanently\r\nContent-Type: application/xml\r\nx-amz-bucket-region: eu-west-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    let s = servers();
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &endpoint, "site");
    p.write("index.html", "x");
    let d = p.cmd(&["deploy", "prod", "--yes"]).expect(1);
    d.mentions(&["another region", "set `region`"]);
    assert!(
        d.stderr.lines().count() <= 2,
        "not one clear line: {}",
        d.stderr
    );
}

/// Regression: a `profile` named in driftless.toml is what the environment's requests are
/// signed with, as `aws --profile NAME` — not credentials in the environment variables,
/// which a CI job may have exported for another account. Before, the variables won.
#[test]
fn a_profile_named_in_the_config_wins_over_credentials_in_the_environment() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let aws_config = tmp.path().join("aws-config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile deployer]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            s.key, s.secret
        ),
    )
    .unwrap();
    let config = config(&s.seaweedfs, &bucket).replace(
        "region = \"us-east-1\"\n",
        "region = \"us-east-1\"\nprofile = \"deployer\"\n",
    );
    let p = Project::with_config(tmp.path(), &config).envs(vec![
        ("AWS_ACCESS_KEY_ID", "AKIAOTHERACCOUNT0000".into()),
        ("AWS_SECRET_ACCESS_KEY", "not-this-one".into()),
        ("AWS_CONFIG_FILE", aws_config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]);
    p.write("index.html", "signed by the profile");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(
        bucket_site(s, &s.seaweedfs, &bucket)["index.html"],
        b"signed by the profile"
    );
}

/// The live pointer kept in a CloudFront KeyValueStore (moto's control plane, the data
/// plane scripts/moto-server.py adds) passes the same pointer cases as the stores: none
/// at first, created once, switched only from the current ETag, one of two racing
/// switches wins. The value names the release too (the function's cache key).
#[tokio::test(flavor = "multi_thread")]
async fn kvs_pointer_passes_the_pointer_cases_on_moto() {
    use driftless::aws::kvs::KeyValueStore;
    use driftless::store::KvsPointer;
    let s = servers();
    let name = format!("dl-{}", &crate::servers::uniq()[..16]);
    s.aws(
        &s.moto,
        &["cloudfront", "create-key-value-store", "--name", &name],
    );
    let kvs = KvsPointer(KeyValueStore::with_settings(&name, &s.moto, (&s.key, &s.secret)).await);
    driftless::store::conformance::pointer_cases(&kvs).await;
    driftless::store::LivePointer::write(&kvs, "b", "r9", None, None)
        .await
        .unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&kvs.0.get("current").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({ "slot": "b", "release": "r9" }),
        "the value names the slot and the release"
    );
    let missing = KeyValueStore::with_settings("no-such-store", &s.moto, (&s.key, &s.secret)).await;
    let err = driftless::store::LivePointer::read(&KvsPointer(missing))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not exist") && err.contains("edge ENV --apply"),
        "{err}"
    );
}
