//! Two people sharing one environment: a rollback made by one of them must not be
//! silently undone by the next deploy of either (issue 9, item 1), on the local store
//! and on SeaweedFS.

use std::path::Path;

use crate::servers::servers;
use crate::util::{Project, git};

/// The shared repository (site committed), a bare origin, and two clones.
struct Team {
    alice: Project,
    bob: Project,
    a_dir: std::path::PathBuf,
    b_dir: std::path::PathBuf,
}

fn team(tmp: &Path, config: &str, vars: &[(&'static str, String)]) -> Team {
    let seed = tmp.join("seed");
    let origin = tmp.join("origin.git");
    let p = Project::with_config(&seed, config);
    p.write("index.html", "<h1>Shop</h1><p>checkout v1</p>\n")
        .write("about.html", "about v1\n");
    std::fs::write(seed.join(".gitignore"), ".driftless/\n").unwrap();
    git(&seed, &["init", "-q", "-b", "main"]);
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-q", "-m", "v1"]);
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    git(tmp, &["clone", "-q", "--bare", &s(&seed), &s(&origin)]);
    let (a_dir, b_dir) = (tmp.join("alice"), tmp.join("bob"));
    git(tmp, &["clone", "-q", &s(&origin), &s(&a_dir)]);
    git(tmp, &["clone", "-q", &s(&origin), &s(&b_dir)]);
    Team {
        alice: Project::at(&a_dir)
            .author("Alice <alice@example.com>")
            .envs(vars.to_vec()),
        bob: Project::at(&b_dir)
            .author("Bob <bob@example.com>")
            .envs(vars.to_vec()),
        a_dir,
        b_dir,
    }
}

fn commit_of(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Alice ships v2 of index.html, then rolls it back ("v2 broke checkout"). Neither Bob
/// (whose checkout contains v2) nor Alice herself may re-ship v2 by deploying something
/// else; the refusal names the rollback, its author and message, and the ways out.
fn rollback_is_not_undone(
    config: &str,
    vars: &[(&'static str, String)],
    live_index: &dyn Fn() -> String,
) {
    let tmp = tempfile::tempdir().unwrap();
    let t = team(tmp.path(), config, vars);
    let (alice, bob) = (&t.alice, &t.bob);
    let v1_commit = commit_of(&t.a_dir);
    alice
        .cmd(&["deploy", "prod", "--yes", "-m", "v1"])
        .expect(0);

    alice.write("index.html", "<h1>Shop</h1><p>checkout v2</p>\n");
    git(&t.a_dir, &["commit", "-q", "-am", "v2"]);
    let v2_commit = commit_of(&t.a_dir);
    git(&t.a_dir, &["push", "-q", "origin", "main"]);
    alice
        .cmd(&["deploy", "prod", "--yes", "-m", "v2"])
        .expect(0);

    let rolled = alice
        .cmd(&[
            "rollback",
            "prod",
            "--yes",
            "-m",
            "v2 broke checkout",
            "--json",
        ])
        .expect(0)
        .release_id();
    assert!(
        live_index().contains("checkout v1"),
        "rollback did not restore v1"
    );

    // Bob pulls (his checkout now contains v2) and changes an unrelated page.
    git(&t.b_dir, &["pull", "-q", "origin", "main"]);
    bob.write("about.html", "about v2 by Bob\n");
    git(&t.b_dir, &["commit", "-q", "-am", "about page"]);
    let refused = bob.cmd(&["deploy", "prod", "--yes"]).expect(3);
    refused.mentions(&[
        "[revert]",
        "index.html",
        &rolled,
        "Alice",
        "v2 broke checkout",
        "--force revert",
        "git revert",
    ]);
    assert!(live_index().contains("checkout v1"), "Bob re-shipped v2");

    // Editing the rolled-back page further does not slip it through either.
    bob.write(
        "index.html",
        "<h1>Shop</h1><p>checkout v2, typo fixed</p>\n",
    );
    bob.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["[revert]", "index.html", &rolled]);
    git(&t.b_dir, &["checkout", "--", "site/index.html"]);

    // The same for Alice alone: her checkout still has v2.
    alice
        .cmd(&["plan", "prod"])
        .expect(3)
        .mentions(&["[revert]", "index.html", &rolled]);

    // status agrees with plan on the base, and does not call v2's commit live.
    let plan = alice.cmd(&["plan", "prod", "--json"]).expect(3).json();
    let status = alice.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(
        status["base"]["id"], plan["base"]["id"],
        "status and plan disagree on the base:\nstatus {status}\nplan {plan}"
    );
    let live_commit = status["live"]["commit"].as_str().unwrap_or_default();
    assert_ne!(
        live_commit, v2_commit,
        "status shows the rolled-back commit as live"
    );
    assert_eq!(live_commit, v1_commit, "the rollback serves v1's content");

    // The way out the message names: revert the commit; then Bob's page deploys and
    // the rollback stays.
    git(&t.b_dir, &["revert", "--no-edit", &v2_commit]);
    bob.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let live = live_index();
    assert!(live.contains("checkout v1"), "{live}");
    // ...and overriding is explicit, never silent.
    alice.write("index.html", "<h1>Shop</h1><p>checkout v2</p>\n");
    alice
        .cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["index.html"]);
}

#[test]
fn a_rollback_is_not_undone_by_the_next_deploy_on_the_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let config = format!(
        "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\n",
        store.display()
    );
    let read = || {
        std::fs::read_to_string(crate::util::served_path(&store, "index.html")).unwrap_or_default()
    };
    rollback_is_not_undone(&config, &[], &read);
}

#[test]
fn a_rollback_is_not_undone_by_the_next_deploy_on_seaweedfs() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let config = crate::servers::Servers::prod_config(&s.seaweedfs, &format!("{bucket}/www"));
    let read = || {
        let out = s.aws(
            &s.seaweedfs,
            &["s3", "cp", &format!("s3://{bucket}/www/index.html"), "-"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    rollback_is_not_undone(&config, &s.env(), &read);
}
