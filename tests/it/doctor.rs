//! `doctor` on moto (S3, CloudFront, CloudWatch, STS): a bucket with public access
//! allowed, a policy granting `*`, versioning off, no alarms and a 404 → 200 error
//! response each give the expected failure or warning naming the fix; after fixing them
//! with the AWS CLI they pass. The anonymous-read checks need a server that enforces
//! authentication: they are checked on SeaweedFS (moto answers an unsigned GET 404,
//! which doctor reports as inconclusive).

use crate::servers::servers;
use crate::util::Project;

fn checks(done: &crate::util::Done) -> std::collections::BTreeMap<String, (String, String)> {
    done.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                (
                    c["level"].as_str().unwrap().to_owned(),
                    format!("{} → {}", c["seen"], c["fix"]),
                ),
            )
        })
        .collect()
}

#[test]
fn doctor_names_each_gap_and_passes_once_fixed_on_moto() {
    let s = servers();
    let bucket = s.bucket(&s.moto);
    let distribution = s.distribution(&bucket);
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 5 }}\n",
        s.moto
    );
    let mut env = s.env();
    env.push(("AWS_ENDPOINT_URL_CLOUDFRONT", s.moto.clone()));
    env.push(("AWS_ENDPOINT_URL_CLOUDWATCH", s.moto.clone()));
    env.push(("AWS_ENDPOINT_URL_STS", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config).envs(env);
    p.write("index.html", "home").write("404.html", "nope");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // The gaps: a policy granting everyone, and the SPA trap (404 → /index.html, 200).
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Public","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    s.aws(
        &s.moto,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            &bucket,
            "--policy",
            &policy,
        ],
    );
    // Change the distribution's config with the AWS CLI (get, edit, update If-Match).
    let update_distribution = |change: &dyn Fn(&mut serde_json::Value)| {
        let got = s.aws(
            &s.moto,
            &[
                "cloudfront",
                "get-distribution-config",
                "--id",
                &distribution,
            ],
        );
        let mut got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
        let etag = got["ETag"].as_str().unwrap().to_owned();
        change(&mut got["DistributionConfig"]);
        let file = tmp.path().join("dist.json");
        std::fs::write(&file, got["DistributionConfig"].to_string()).unwrap();
        s.aws(
            &s.moto,
            &[
                "cloudfront",
                "update-distribution",
                "--id",
                &distribution,
                "--if-match",
                &etag,
                "--distribution-config",
                &format!("file://{}", file.display()),
            ],
        );
    };
    update_distribution(&|cfg| {
        cfg["CustomErrorResponses"] = serde_json::json!({ "Quantity": 1, "Items": [
            { "ErrorCode": 404, "ResponsePagePath": "/index.html", "ResponseCode": "200", "ErrorCachingMinTTL": 10 }
        ]});
    });

    let done = p.cmd(&["--json", "doctor", "prod"]).expect(1);
    let c = checks(&done);
    let level = |id: &str| c.get(id).map(|(l, _)| l.as_str()).unwrap_or("missing");
    assert_eq!(level("store.reachable"), "pass", "{c:?}");
    assert_eq!(level("store.conditional-writes"), "pass", "{c:?}");
    assert_eq!(level("store.public-access-block"), "fail", "{c:?}");
    assert!(
        c["store.public-access-block"]
            .1
            .contains("put-public-access-block"),
        "{c:?}"
    );
    assert_eq!(level("store.bucket-policy"), "fail", "{c:?}");
    assert!(
        c["store.bucket-policy"].1.contains("grants it to everyone"),
        "{c:?}"
    );
    assert_eq!(level("store.versioning"), "warn", "{c:?}");
    assert!(
        c["store.versioning"].1.contains("Status=Enabled"),
        "{:?}",
        c["store.versioning"]
    );
    assert_eq!(level("monitoring.alarms"), "warn", "{c:?}");
    assert!(
        c["monitoring.alarms"].1.contains("put-metric-alarm"),
        "{c:?}"
    );
    assert_eq!(level("cdn.error-responses"), "fail", "{c:?}");
    assert!(c["cdn.error-responses"].1.contains("SPA trap"), "{c:?}");
    assert_eq!(level("identity.account"), "pass", "{c:?}");
    // Human output: one line per check, with its fix.
    p.cmd(&["doctor", "prod"]).expect(1).mentions(&[
        "FAIL  store.public-access-block",
        "→ aws s3api put-public-access-block",
    ]);

    // Fix them with the AWS CLI.
    s.aws(
        &s.moto,
        &[
            "s3api", "put-public-access-block", "--bucket", &bucket,
            "--public-access-block-configuration",
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        ],
    );
    let oac = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"CloudFront","Effect":"Allow","Principal":{{"Service":"cloudfront.amazonaws.com"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*","Condition":{{"StringEquals":{{"AWS:SourceArn":"arn:aws:cloudfront::123456789012:distribution/{distribution}"}}}}}}]}}"#
    );
    s.aws(
        &s.moto,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            &bucket,
            "--policy",
            &oac,
        ],
    );
    s.aws(
        &s.moto,
        &[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            &bucket,
            "--versioning-configuration",
            "Status=Enabled",
        ],
    );
    s.aws(
        &s.moto,
        &[
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            "prod-5xx",
            "--namespace",
            "AWS/CloudFront",
            "--metric-name",
            "5xxErrorRate",
            "--dimensions",
            &format!("Name=DistributionId,Value={distribution}"),
            "Name=Region,Value=Global",
            "--statistic",
            "Average",
            "--period",
            "300",
            "--evaluation-periods",
            "1",
            "--threshold",
            "5",
            "--comparison-operator",
            "GreaterThanThreshold",
        ],
    );
    // The SPA trap goes, and what moto's default distribution lacks: HTTPS, the prefix.
    update_distribution(&|cfg| {
        cfg["CustomErrorResponses"] = serde_json::json!({ "Quantity": 0, "Items": [] });
        cfg["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "redirect-to-https".into();
        cfg["Origins"]["Items"][0]["OriginPath"] = "/www".into();
    });
    let done = p.cmd(&["--json", "doctor", "prod"]).run();
    let c = checks(&done);
    for id in [
        "store.public-access-block",
        "store.bucket-policy",
        "store.versioning",
        "monitoring.alarms",
        "cdn.error-responses",
        "cdn.https",
        "cdn.origin",
    ] {
        assert_eq!(c[id].0, "pass", "{id}: {:?}", c[id]);
    }
    // Nothing fails once fixed: doctor passes (warnings remain for what moto's default
    // distribution cannot have: a certificate of its own, the edge not yet applied).
    let failing: Vec<&String> = c
        .iter()
        .filter(|(_, (l, _))| l == "fail")
        .map(|(k, _)| k)
        .collect();
    assert!(failing.is_empty(), "{failing:?}\n{c:?}");
    assert_eq!(done.code, 0, "{}", done.all());
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["doctor   last run", "0 failed"]);
    // moto serves no unsigned GET of this key (it answers 404): inconclusive, a warning.
    assert_eq!(
        c["store.anonymous-read"].0, "warn",
        "{:?}",
        c["store.anonymous-read"]
    );
}

/// SeaweedFS enforces authentication: unsigned reads of the site and the state are refused.
#[test]
fn anonymous_reads_are_refused_on_seaweedfs() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::with_config(
        tmp.path(),
        &crate::servers::Servers::prod_config(&s.seaweedfs, &format!("{bucket}/www")),
    )
    .envs(s.env());
    p.write("index.html", "home");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let done = p.cmd(&["--json", "doctor", "prod"]).run();
    let c = checks(&done);
    assert_eq!(c["store.anonymous-read"].0, "pass", "{c:?}");
    assert_eq!(c["store.state-private"].0, "pass", "{c:?}");
    assert_eq!(c["store.conditional-writes"].0, "pass", "{c:?}");
}
