//! CloudFront invalidation against moto's CloudFront API: a deploy requests exactly the
//! paths visitors may have cached, with the release id as CallerReference.

use crate::servers::servers;
use crate::util::Project;

fn invalidation_paths(endpoint: &str, distribution: &str, reference: &str) -> Vec<String> {
    let s = servers();
    let list = s.aws(
        endpoint,
        &[
            "cloudfront",
            "list-invalidations",
            "--distribution-id",
            distribution,
        ],
    );
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let items = list["InvalidationList"]["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for item in items {
        let id = item["Id"].as_str().unwrap();
        let got = s.aws(
            endpoint,
            &[
                "cloudfront",
                "get-invalidation",
                "--distribution-id",
                distribution,
                "--id",
                id,
            ],
        );
        let got: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
        let batch = &got["Invalidation"]["InvalidationBatch"];
        if batch["CallerReference"] == reference {
            let mut paths: Vec<String> = batch["Paths"]["Items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            paths.sort();
            return paths;
        }
    }
    panic!("no invalidation with CallerReference {reference}");
}

#[test]
fn deploys_invalidate_exactly_what_changed() {
    let s = servers();
    let bucket = s.bucket(&s.moto);
    let distribution = s.distribution(&bucket);

    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 10 }}\n",
        s.moto
    );
    let mut env = s.env();
    env.push(("AWS_ENDPOINT_URL_CLOUDFRONT", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config).envs(env);
    p.write("index.html", "home")
        .write("docs/index.html", "docs")
        .write("assets/app.1.js", "v1");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["Invalidated", "completed"]);

    // A deploy touching three files: an update, a delete, a new fingerprinted asset.
    p.write("index.html", "home 2").remove("docs/index.html");
    p.write("assets/app.2.js", "v2");
    let plan = p.cmd(&["plan", "prod"]).expect(0);
    plan.mentions(&["CDN: 5 path(s) to invalidate", "$0.005"]);
    let deployed = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    let release = deployed["release"]["id"].as_str().unwrap().to_owned();
    assert_eq!(deployed["invalidation"]["completed"], true);
    assert_eq!(
        invalidation_paths(&s.moto, &distribution, &release),
        ["/", "/docs", "/docs/", "/docs/index.html", "/index.html"],
        "created fingerprinted assets are never invalidated; HTML and deleted keys are"
    );

    // On demand: everything, as one wildcard path.
    let manual = p
        .cmd(&["invalidate", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(manual["paths"], serde_json::json!(["/*"]));
    assert_eq!(manual["completed"], true);

    // An environment without a CDN says how to add one.
    let plain = Project::with_config(
        &tmp.path().join("plain"),
        &format!(
            "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\n",
            tmp.path().join("st").display()
        ),
    );
    plain
        .cmd(&["invalidate", "prod", "--yes"])
        .expect(2)
        .mentions(&["cloudfront"]);
}

#[test]
fn five_thousand_changed_files_collapse_within_cloudfront_limits() {
    let s = servers();
    let distribution = s.distribution("big");

    // The site lives in the local store; only the CDN is moto's CloudFront.
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\nregion = \"us-east-1\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 10 }}\n",
        tmp.path().join("store").display()
    );
    let mut env = s.env();
    env.push(("AWS_ENDPOINT_URL_CLOUDFRONT", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config).envs(env);
    let key = |i: usize| format!("section{}/page{i}.html", i % 12);
    for i in 0..5000 {
        p.write(&key(i), "v1");
    }
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    for i in 0..5000 {
        p.write(&key(i), "v2");
    }
    let deployed = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    let release = deployed["release"]["id"].as_str().unwrap().to_owned();
    let paths = invalidation_paths(&s.moto, &distribution, &release);
    let wildcards: Vec<&String> = paths.iter().filter(|p| p.ends_with('*')).collect();
    assert!(paths.len() <= 3000, "{} paths", paths.len());
    assert!(wildcards.len() <= 15, "{wildcards:?}");
    for i in 0..5000 {
        let path = format!("/{}", key(i));
        assert!(
            paths
                .iter()
                .any(|p| *p == path || p.strip_suffix('*').is_some_and(|w| path.starts_with(w))),
            "{path} is not invalidated by {paths:?}"
        );
    }
    // Twelve directories changed entirely: one wildcard each, not 5,000 paths.
    assert_eq!(paths.len(), 12, "{paths:?}");
}
