//! Promotion: staging first, production only by promotion of what staging verified,
//! byte for byte; the identity check; the pipeline view.

use crate::serve::{free_port, serve};
use crate::servers::{servers, uniq};
use crate::util::{Project, site_files};

#[test]
fn production_only_gets_what_staging_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (staging, prod) = (tmp.path().join("staging"), tmp.path().join("prod"));
    let port = free_port();
    let config = format!(
        r#"site = "site"

[env.staging]
store = "file://{}"
url = "http://127.0.0.1:{port}"

[env.prod]
store = "file://{}"
promote_from = "staging"
"#,
        staging.display(),
        prod.display()
    );
    let p = Project::with_config(tmp.path(), &config);
    p.write("index.html", "<h1>R1</h1>").write("app.js", "r1");
    let r1 = p
        .cmd(&["deploy", "staging", "--yes", "--json"])
        .expect(0)
        .release_id();

    // Unverified: refused, prod untouched.
    p.cmd(&["promote", "staging", "prod", "--yes"])
        .expect(3)
        .mentions(&["has not been verified", &r1, "driftless verify staging"]);
    assert!(site_files(&prod).is_empty(), "prod was written");
    // A direct deploy of prod names the promotion to use instead.
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["protected", "driftless promote staging prod"]);
    assert!(site_files(&prod).is_empty(), "prod was written");

    let _edge = serve(&p, "staging", port);
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);

    // R2 is bad: verified, but rolled back on staging before anyone promotes it.
    p.write("index.html", "<h1>R2 (bad)</h1>");
    let r2 = p
        .cmd(&["deploy", "staging", "--yes", "--json"])
        .expect(0)
        .release_id();
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);
    let r3 = p
        .cmd(&["rollback", "staging", "--to", &r1, "--yes", "--json"])
        .expect(0)
        .release_id();
    p.cmd(&["promote", "staging", "prod", "--release", &r2, "--yes"])
        .expect(3)
        .mentions(&[&r2, "replaced", &r3]);
    // The rollback release is live but not verified yet.
    p.cmd(&["promote", "staging", "prod", "--release", &r3, "--yes"])
        .expect(3)
        .mentions(&["has not been verified"]);
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);
    let promoted = p
        .cmd(&[
            "promote",
            "staging",
            "prod",
            "--release",
            &r3,
            "--yes",
            "--json",
        ])
        .expect(0)
        .json();
    // The batch: every staging release prod has not had, newest first.
    let batch: Vec<&str> = promoted["plan"]["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(batch, [r3.as_str(), r2.as_str(), r1.as_str()]);
    assert_eq!(
        site_files(&prod),
        site_files(&staging),
        "not byte-identical"
    );
    assert_eq!(
        std::fs::read_to_string(crate::util::served_path(&prod, "index.html")).unwrap(),
        "<h1>R1</h1>"
    );
    let prod_release = promoted["release"]["id"].as_str().unwrap().to_owned();

    // Staging moves on (from the rolled-back working copy, explicitly).
    p.write("index.html", "<h1>R4</h1>");
    p.cmd(&[
        "deploy",
        "staging",
        "--yes",
        "--force",
        "stale-base",
        "--force",
        "revert",
    ])
    .expect(0);
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);

    // The pipeline view: prod is one release behind staging.
    let view = p.cmd(&["status", "--json"]).expect(0).json();
    let rows = view["pipeline"].as_array().unwrap();
    assert_eq!(rows[0]["env"], "staging");
    assert_eq!(rows[1]["env"], "prod");
    assert_eq!(rows[1]["behind"], 1, "{view}");
    assert_eq!(rows[0]["verified"], true, "{view}");
    p.cmd(&["status"]).expect(0).mentions(&[
        "1 release(s) behind staging",
        "driftless promote staging prod",
    ]);
    p.cmd(&["promote", "staging", "prod"])
        .expect(2)
        .mentions(&["batch 1 release(s) of staging", "--yes"]);

    // Rollback on a protected environment: only to what was live there.
    p.cmd(&["rollback", "prod", "--to", &r2, "--yes"])
        .expect(2)
        .mentions(&["not a release that was live on prod"]);
    // Who promoted what, and when, is in prod's journal.
    let journal: Vec<serde_json::Value> = std::fs::read_dir(prod.join(".driftless/journal"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    let approval = journal
        .iter()
        .find(|e| e["event"] == "promoted")
        .expect("a promoted event");
    assert_eq!(approval["release"], prod_release.as_str());
    assert_eq!(approval["detail"]["release"], r3.as_str());
    assert!(
        approval["actor"]["author"]
            .as_str()
            .unwrap()
            .contains("Alice")
    );
}

/// dev → staging → prod on SeaweedFS: three buckets, three credential pairs that each
/// reach only their own bucket (as three accounts would), selected by profile.
#[test]
fn promotions_across_three_credential_pairs_move_identical_bytes() {
    let s = servers();
    let run = &uniq()[..12];
    let tmp = tempfile::tempdir().unwrap();
    let mut credentials = String::new();
    for env in ["dev", "staging", "prod"] {
        let bucket = format!("pipeline-{env}");
        // Buckets are made once per server by the admin; each run uses its own prefix.
        let _ = std::process::Command::new(&s.aws_cli)
            .args([
                "--endpoint-url",
                &s.seaweedfs,
                "s3api",
                "create-bucket",
                "--bucket",
                &bucket,
            ])
            .envs(s.env())
            .output();
        let (key, secret) = &s.pipeline[env];
        credentials.push_str(&format!(
            "[{env}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ));
    }
    std::fs::write(tmp.path().join("credentials"), credentials).unwrap();
    let port = free_port();
    let env_block = |env: &str, extra: &str| {
        seaweed_env(
            env,
            &format!("pipeline-{env}/{run}"),
            &format!("profile = \"{env}\"\n{extra}"),
        )
    };
    let config = format!(
        "site = \"site\"\n\n{}{}{}",
        env_block("dev", ""),
        env_block(
            "staging",
            &format!("promote_from = \"dev\"\nurl = \"http://127.0.0.1:{port}\"")
        ),
        env_block("prod", "promote_from = \"staging\""),
    );
    // No credentials in the environment: each environment's profile decides.
    let p = Project::with_config(tmp.path(), &config).envs(vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            tmp.path().join("credentials").display().to_string(),
        ),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
    ]);
    p.write("index.html", "<h1>pipeline</h1>")
        .write("assets/app.js", "console.log('v1')")
        .write("docs/index.html", "docs");
    p.cmd(&["deploy", "dev", "--yes"]).expect(0);

    // dev has no url: promoting it needs the explicit override, which is recorded.
    p.cmd(&["promote", "dev", "staging", "--yes"])
        .expect(3)
        .mentions(&["has not been verified", "--force unverified"]);
    // Promoted, but staging's edge is not up yet: the promotion is live and its verify
    // fails (exit 1), which is recorded.
    let to_staging = p
        .cmd(&[
            "promote",
            "dev",
            "staging",
            "--yes",
            "--force",
            "unverified",
            "--timeout",
            "2",
            "--json",
        ])
        .expect(1);
    to_staging.mentions(&["did not answer", "connection refused"]);
    let doc = to_staging.json();
    assert_eq!(doc["plan"]["overrides"][0]["guard"], "unverified", "{doc}");

    // A failed verification is refused; the override is not accepted (staging has a url).
    p.cmd(&["promote", "staging", "prod", "--yes"])
        .expect(3)
        .mentions(&["failed verification", "driftless verify staging"]);
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--yes",
        "--force",
        "unverified",
    ])
    .expect(2)
    .mentions(&["driftless verify staging"]);
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["driftless promote staging prod"]);
    let hashes = |env: &str| {
        s.bucket_hashes(
            &s.seaweedfs,
            &format!("pipeline-{env}/{run}"),
            ".driftless/",
        )
    };
    assert!(
        hashes("prod").is_empty(),
        "prod was written before verification"
    );

    let _edge = serve(&p, "staging", port);
    p.cmd(&["verify", "staging", "--timeout", "10"]).expect(0);
    p.cmd(&["promote", "staging", "prod", "--yes"])
        .expect(0)
        .mentions(&[
            "0 object(s) copied server-side, 3 read through driftless into prod's snapshot packs.",
        ]);

    // Identical bytes in all three buckets, read with the AWS CLI as the admin.
    let dev = hashes("dev");
    assert_eq!(dev.len(), 3, "{dev:?}");
    assert_eq!(hashes("staging"), dev);
    assert_eq!(hashes("prod"), dev);

    // Promoting what is already there is a no-op, not a gate refusal.
    p.cmd(&["promote", "dev", "staging", "--yes"])
        .expect(0)
        .mentions(&["Nothing to do"]);

    // The pipeline view, in promotion order; nobody is behind.
    let view = p.cmd(&["status", "--json"]).expect(0).json();
    let rows = view["pipeline"].as_array().unwrap();
    let order: Vec<&str> = rows.iter().map(|r| r["env"].as_str().unwrap()).collect();
    assert_eq!(order, ["dev", "staging", "prod"], "{view}");
    assert_eq!(rows[1]["behind"], 0, "{view}");
    assert_eq!(rows[2]["behind"], 0, "{view}");
    assert_eq!(rows[1]["verified"], true, "{view}");
}

/// Two environments one set of credentials reaches: objects are copied server-side.
#[test]
fn one_set_of_credentials_copies_server_side() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let env_block = |env: &str, extra: &str| seaweed_env(env, &format!("{bucket}/{env}"), extra);
    let config = format!(
        "site = \"site\"\n\n{}{}",
        env_block("staging", ""),
        env_block("prod", "promote_from = \"staging\"")
    );
    let p = Project::with_config(tmp.path(), &config).envs(s.env());
    p.write("index.html", "<h1>same account</h1>")
        .write("a.css", "body{}");
    // Large files are objects of their own, copied server-side; small ones are packed,
    // so they are read and written into the other environment's packs.
    let big: String = (0..9 * 1024 * 1024 / 16)
        .map(|i| format!("{i:015}\n"))
        .collect();
    p.write("video.bin", &big);
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--yes",
        "--force",
        "unverified",
    ])
    .expect(0)
    // Regression (issue 34, smaller): "2 streamed" read as a broken promise of
    // server-side copies; what happens to the small files is said.
    .mentions(&[
        "1 object(s) copied server-side, 2 read through driftless into prod's snapshot packs (files under 8 MiB are packed, not copied one by one)",
    ]);
    let all = s.bucket_hashes(&s.seaweedfs, &bucket, "no-skip/");
    for key in ["index.html", "a.css", "video.bin"] {
        assert_eq!(all[&format!("staging/{key}")], all[&format!("prod/{key}")]);
    }
}

/// moto's STS: an environment declaring another account is refused before anything is
/// read or written; the right account deploys.
#[test]
fn a_wrong_account_is_refused_before_any_write() {
    let s = servers();
    let bucket = s.bucket(&s.moto);
    let tmp = tempfile::tempdir().unwrap();
    let config = |account: &str| {
        format!(
            "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccount = \"{account}\"\n",
            s.moto
        )
    };
    let mut env = s.env();
    env.push(("AWS_ENDPOINT_URL_STS", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config("111111111111")).envs(env);
    p.write("index.html", "<h1>which account?</h1>");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "111111111111",
        "123456789012",
        "the default credential chain",
        "profile",
    ]);
    assert!(
        s.bucket_hashes(&s.moto, &bucket, "no-skip/").is_empty(),
        "the bucket was written"
    );
    let view = p.cmd(&["status", "--json"]).expect(0).json();
    assert_eq!(
        view["pipeline"][0]["identity"]["account"], "123456789012",
        "{view}"
    );
    p.cmd(&["status"]).expect(0).mentions(&["MISMATCH"]);
    p.cmd(&["status", "prod"]).expect(0).mentions(&["MISMATCH"]);

    std::fs::write(tmp.path().join("driftless.toml"), config("123456789012")).unwrap();
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["identity"]["account"], "123456789012", "{status}");
}

/// An environment on the SeaweedFS test server, at `s3://{location}`.
fn seaweed_env(env: &str, location: &str, extra: &str) -> String {
    format!(
        "[env.{env}]\nstore = \"s3://{location}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n{extra}\n",
        servers().seaweedfs
    )
}
