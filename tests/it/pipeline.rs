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
        .json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

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
        .json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);
    let r3 = p
        .cmd(&["rollback", "staging", "--to", &r1, "--yes", "--json"])
        .expect(0)
        .json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
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
        std::fs::read_to_string(prod.join("index.html")).unwrap(),
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
