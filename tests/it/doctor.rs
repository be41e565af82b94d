//! `doctor` on moto (S3, CloudFront, CloudWatch, STS): a bucket with public access
//! allowed, a policy granting `*`, versioning off, no alarms and a 404 → 200 error
//! response each give the expected failure or warning naming the fix; after fixing them
//! with the AWS CLI they pass. moto enforces bucket policies on unsigned requests: with
//! the public policy an unsigned GET of the prefixed site and state keys answers 200
//! (doctor fails), with the CloudFront-only policy 403 (doctor passes).

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
    s.update_distribution(&distribution, |cfg| {
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
    // Regression: the store's prefix joined without '/' probed `www404.html`, which
    // answered 404 ("could not be told") while `www/index.html` was public.
    for id in ["store.anonymous-read", "store.state-private"] {
        assert_eq!(level(id), "fail", "{id}: {c:?}");
    }
    assert!(
        c["store.state-private"].1.contains(".driftless/HEAD"),
        "{c:?}"
    );
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
    s.update_distribution(&distribution, |cfg| {
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
    // moto evaluates the CloudFront-only statement as granting unsigned reads too (it
    // ignores the principal), so the two anonymous-read checks still see 200 here —
    // doctor reports what the bucket does, not what its policy looks like.
    let failing: Vec<&String> = c
        .iter()
        .filter(|(_, (l, _))| l == "fail")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        failing,
        ["store.anonymous-read", "store.state-private"],
        "{c:?}"
    );
    // Without a policy moto refuses unsigned reads (403): nothing fails, doctor passes
    // (warnings remain for what moto's default distribution cannot have: a certificate of
    // its own, the edge not yet applied, and now no policy for CloudFront).
    s.aws(
        &s.moto,
        &["s3api", "delete-bucket-policy", "--bucket", &bucket],
    );
    let done = p.cmd(&["--json", "doctor", "prod"]).run();
    let c = checks(&done);
    for id in ["store.anonymous-read", "store.state-private"] {
        assert_eq!(c[id].0, "pass", "{id}: {:?}", c[id]);
    }
    let failing: Vec<&String> = c
        .iter()
        .filter(|(_, (l, _))| l == "fail")
        .map(|(k, _)| k)
        .collect();
    assert!(failing.is_empty(), "{failing:?}\n{c:?}");
    assert_eq!(done.code, 0, "{}", done.all());
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["doctor   last run", "UTC by", "0 failed"]);
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
    // Before any deploy the state key does not exist: S3 refuses an unsigned GET of a
    // missing key (403) whatever the policy, so that is no evidence — never a pass.
    let done = p.cmd(&["--json", "doctor", "prod"]).run();
    let c = checks(&done);
    assert_eq!(c["store.state-private"].0, "warn", "{c:?}");
    assert!(
        c["store.state-private"].1.contains("could not be told"),
        "{c:?}"
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let done = p.cmd(&["--json", "doctor", "prod"]).run();
    let c = checks(&done);
    assert_eq!(c["store.anonymous-read"].0, "pass", "{c:?}");
    assert_eq!(c["store.state-private"].0, "pass", "{c:?}");
    assert_eq!(c["store.conditional-writes"].0, "pass", "{c:?}");
}

/// A local HTTPS server for `localhost` with a certificate from a test CA (trusted
/// through `SSL_CERT_FILE`), valid for `days`: doctor's and verify's TLS checks read its
/// expiry. With an `upstream` port it forwards each request there (TLS termination in
/// front of `serve`); without, it answers 200 with HSTS.
pub(crate) struct TlsServer {
    pub(crate) port: u16,
    pub(crate) ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn tls_server(days: i64, upstream: Option<u16>) -> TlsServer {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let day = |offset: i64| {
        let d = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * offset))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        rcgen::date_time_ymd(
            i32::from(d.year()),
            d.month().unsigned_abs(),
            d.day().unsigned_abs(),
        )
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = day(-1);
    params.not_after = day(days);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = std::sync::Arc::new(config);
    std::thread::spawn(move || {
        use std::io::Write as _;
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some(head) = crate::watch::read_head(&mut tls) else {
                    return;
                };
                match upstream {
                    Some(port) => crate::watch::forward(&mut tls, &head, port),
                    None => {
                        let _ = tls.write_all(
                            b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=63072000\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    TlsServer {
        port,
        ca,
        _dir: dir,
    }
}

/// A project on the local store whose `url` is `server` (`https://localhost:PORT`),
/// trusting the test CA when `trusted` (through `SSL_CERT_FILE`).
pub(crate) fn https_project(t: &std::path::Path, server: &TlsServer, trusted: bool) -> Project {
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\nurl = \"https://localhost:{}\"\n",
        t.join("store").display(),
        server.port
    );
    let ca = if trusted {
        server.ca.display().to_string()
    } else {
        "/nonexistent".to_owned()
    };
    Project::with_config(&t.join("w"), &config).envs(vec![("SSL_CERT_FILE", ca)])
}

/// doctor's URL checks against a local HTTPS server: a certificate with 90 days left
/// passes, one with 10 days left warns naming the days; HSTS is seen.
#[test]
fn doctor_reads_the_certificate_and_warns_near_expiry() {
    for (days, level) in [(90, "pass"), (10, "warn")] {
        let server = tls_server(days, None);
        let tmp = tempfile::tempdir().unwrap();
        let p = https_project(tmp.path(), &server, true);
        let done = p.cmd(&["--json", "doctor", "prod"]).run();
        let c = checks(&done);
        assert_eq!(c["url.tls"].0, level, "{days} days: {:?}", c["url.tls"]);
        assert!(
            c["url.tls"].1.contains(&format!("{} days left", days - 1))
                || c["url.tls"].1.contains(&format!("{days} days left")),
            "{:?}",
            c["url.tls"]
        );
        assert_eq!(c["url.hsts"].0, "pass", "{c:?}");
        assert_eq!(c["url.dns"].0, "pass", "{c:?}");
    }
    // Without the CA, the certificate is not trusted: a failure naming the handshake.
    let server = tls_server(90, None);
    let tmp = tempfile::tempdir().unwrap();
    let p = https_project(tmp.path(), &server, false);
    let done = p.cmd(&["--json", "doctor", "prod"]).expect(1);
    let c = checks(&done);
    assert_eq!(c["url.tls"].0, "fail", "{c:?}");
    assert!(c["url.tls"].1.contains("TLS handshake"), "{c:?}");
}

/// `doctor` with no environment: which config, and per environment the endpoint, region
/// and credential source the SDK resolves — environment variables, a profile's keys, web
/// identity (GitHub Actions' OIDC, against moto's STS), or none (exit 1, with the fix).
#[test]
fn self_check_names_config_endpoint_region_and_credential_source() {
    let s = servers();
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"site\"\n[env.local]\nstore = \"file://store\"\n[env.dev]\nstore = \"s3://dev-site\"\nendpoint = \"{}\"\n[env.prod]\nstore = \"s3://prod-site/www\"\nregion = \"eu-west-1\"\nprofile = \"team\"\n",
        s.moto
    );
    let p = Project::with_config(tmp.path(), &config);
    let aws_config = tmp.path().join("aws-config");
    std::fs::write(
        &aws_config,
        "[profile team]\naws_access_key_id = AKIATEAMEXAMPLE0001\naws_secret_access_key = x\nregion = eu-west-1\n",
    )
    .unwrap();
    let clean = |run: crate::util::Run| {
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
        ]
        .iter()
        .fold(run, |r, k| r.env_remove(k))
        .env("AWS_CONFIG_FILE", aws_config.to_str().unwrap())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
    };

    let d = clean(p.cmd(&["doctor", "--json"]))
        .env("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE000002")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-west-2")
        .expect(0);
    let v = d.json();
    assert!(
        v["config"].as_str().unwrap().ends_with("driftless.toml"),
        "{v}"
    );
    assert!(v["version"].as_str().unwrap().starts_with("0.1.0 (commit"));
    let env = |name: &str| {
        v["envs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["env"] == name)
            .cloned()
            .unwrap()
    };
    assert!(
        env("local")["store"]
            .as_str()
            .unwrap()
            .starts_with("file://")
    );
    let dev = env("dev");
    assert_eq!(dev["endpoint"], format!("{} (driftless.toml)", s.moto));
    assert_eq!(dev["region"], "us-west-2 (AWS_REGION)");
    let source = dev["credentials"]["source"].as_str().unwrap();
    assert!(source.starts_with("environment variables"), "{source}");
    assert!(source.contains("AKIA…0002"), "{source}");
    assert!(
        !d.stdout.contains("AKIAENVEXAMPLE000002"),
        "the key is never shown whole"
    );
    let prod = env("prod");
    assert_eq!(prod["region"], "eu-west-1 (driftless.toml)");
    assert_eq!(prod["endpoint"], "Amazon S3 (the region's endpoint)");
    // A profile named in driftless.toml is what that environment uses, as `aws --profile`:
    // the variables (another account's, in a CI job) are not.
    let source = prod["credentials"]["source"].as_str().unwrap();
    assert!(source.starts_with("keys in profile team"), "{source}");
    assert!(source.contains("AKIA…0001"), "{source}");

    // No credentials at all: said, with the fix, exit 1.
    let none = format!(
        "site = \"site\"\n[env.dev]\nstore = \"s3://dev-site\"\nendpoint = \"{}\"\n",
        s.moto
    );
    std::fs::write(tmp.path().join("driftless.toml"), none).unwrap();
    let d = clean(p.cmd(&["doctor"])).expect(1);
    d.mentions(&[
        "credentials  NONE:",
        "aws sso login",
        "no AWS credentials for dev",
    ]);

    // GitHub Actions' OIDC: a web identity token and a role, exchanged at STS (moto).
    let token = tmp.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyZXBvOngvZHJpZnRsZXNzIn0.",
    )
    .unwrap();
    let d = clean(p.cmd(&["doctor"]))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/deployer")
        .env("AWS_ENDPOINT_URL_STS", &s.moto)
        .env("AWS_REGION", "us-east-1")
        .expect(0);
    d.mentions(&["credentials  web identity", "temporary"]);
}

/// Regression (issue 34, smaller): `doctor` printed a literal `\n` in its CloudWatch line
/// when CloudWatch could not be reached (the reason and its advice were two lines).
#[test]
fn an_unreachable_cloudwatch_is_one_line() {
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
    env.push(("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:1".into()));
    env.push(("AWS_ENDPOINT_URL_STS", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config).envs(env);
    p.write("index.html", "home");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let text = p.cmd(&["doctor", "prod"]).run();
    let line = text
        .all()
        .lines()
        .find(|l| l.contains("monitoring.alarms") || l.contains("cannot reach CloudWatch"))
        .unwrap_or_else(|| panic!("no CloudWatch line:\n{}", text.all()))
        .to_owned();
    assert!(line.contains("cannot reach CloudWatch"), "{line}");
    assert!(!line.contains("\\n"), "a literal \\n: {line}");
    let c = checks(&p.cmd(&["--json", "doctor", "prod"]).run());
    assert!(!c["monitoring.alarms"].1.contains('\n'), "{c:?}");
}
