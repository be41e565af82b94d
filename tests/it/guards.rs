//! Holds, locks, protected environments, features and delete limits.

use crate::util::{Project, files, head, site_files, store_bytes};

#[test]
fn hold_refuses_deploys_until_lifted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // A stop sign goes up at once, without a prompt (and --yes is still accepted).
    p.cmd(&["hold", "prod", "--reason", "launch freeze"])
        .expect(0);
    p.cmd(&["hold", "prod", "--reason", "launch freeze", "--yes"])
        .expect(0);
    p.write("index.html", "v2");
    let before = store_bytes(&store);
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "[hold]",
        "launch freeze",
        "Alice",
        "driftless unhold prod",
    ]);
    // A refused run changes nothing but journal and hold records.
    assert_eq!(store_bytes(&store), before);
    p.cmd(&["unhold", "prod"]).expect(2);
    p.cmd(&["unhold", "prod", "--yes"]).expect(0);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(site_files(&store), files(&[("index.html", "v2")]));
}

#[test]
fn lock_held_by_another_deployer_is_named_and_can_be_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // Carol, on another machine, holds the lease.
    carol_locks(&store, None);

    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "Carol",
        "ci-runner-7",
        "driftless unlock prod",
    ]);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["held by Carol"]);
    p.cmd(&["unlock", "prod", "--yes"])
        .expect(0)
        .mentions(&["Carol"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
}

#[test]
fn protected_environment_accepts_no_direct_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(
        tmp.path(),
        &store,
        "promote_from = \"staging\"\n[env.staging]\nstore = \"file://staging-store\"\n",
    );
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["[protected]", "driftless deploy staging"]);
    assert!(!store.join(".driftless/HEAD").exists());
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
}

#[test]
fn a_live_feature_may_not_silently_disappear() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let features = "[[features]]\nname = \"checkout\"\nfile = \"index.html\"\ncontains = 'id=\"stripe-checkout\"'\n";
    let config = format!(
        "site = \"site\"\n{features}\n[env.prod]\nstore = \"file://{}\"\n",
        store.display()
    );
    let p = Project::new(tmp.path(), &store, "");
    std::fs::write(tmp.path().join("driftless.toml"), config).unwrap();

    p.write("index.html", "<p>shop</p>");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["\"checkout\" is missing from your build"]);
    p.write(
        "index.html",
        "<p>shop</p><div id=\"stripe-checkout\"></div>",
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let live = head(&store);
    p.write("index.html", "<p>shop, redesigned</p>");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "\"checkout\" is live",
        &live,
        "--force feature",
    ]);
    p.cmd(&["deploy", "prod", "--yes", "--force", "feature"])
        .expect(0);
}

#[test]
fn too_many_deletes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    for i in 0..20 {
        p.write(&format!("p{i}.html"), "x");
    }
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    for i in 0..15 {
        p.remove(&format!("p{i}.html"));
    }
    let before = store_bytes(&store);
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["would delete 15 of 20", "--force deletes"]);
    assert_eq!(store_bytes(&store), before);
    p.cmd(&["deploy", "prod", "--yes", "--force", "deletes"])
        .expect(0);
    assert_eq!(site_files(&store).len(), 5);
}

/// Regression (issue 20.4): a file live serves as `immutable` (the bundled example's old
/// `assets/**` rule, names without a hash) cannot change its bytes under the same name
/// unless forced; a header-only change and a fingerprinted rename go through.
#[test]
fn an_immutable_file_is_not_changed_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(
        tmp.path(),
        &store,
        "[[rules]]\nmatch = \"assets/**\"\ncache_control = \"public, max-age=31536000, immutable\"\n",
    );
    p.write("index.html", "<link href=assets/style.css>")
        .write("assets/style.css", "body{color:red}");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("assets/style.css", "body{color:blue}");
    let before = store_bytes(&store);
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "[immutable] assets/style.css",
        "public, max-age=31536000, immutable",
        "rules[0], match = \"assets/**\"",
        "--force immutable",
    ]);
    assert_eq!(store_bytes(&store), before);
    // A plan shows the same refusal; forcing this guard alone lets it through.
    p.cmd(&["plan", "prod"])
        .expect(3)
        .mentions(&["[immutable]"]);
    p.cmd(&["deploy", "prod", "--yes", "--force", "immutable"])
        .expect(0);
    assert_eq!(
        site_files(&store)["assets/style.css"],
        b"body{color:blue}".to_vec()
    );
    // The way out: a new name, referenced by the page.
    p.remove("assets/style.css")
        .write("assets/style.5e1f9a2c.css", "body{color:green}")
        .write("index.html", "<link href=assets/style.5e1f9a2c.css>");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
}

/// Regression (issue 20.20): a deploy killed after its release went live but before it
/// released the lock left the lock behind, and a re-run with nothing to do left it too.
/// The re-run clears it (the holder is dead on this host) and says so; a lock of another
/// host whose release is live and whose lease went unrenewed is cleared the same way.
#[test]
fn a_dead_deployers_lock_is_cleared_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2");
    let killed = p
        .cmd(&["deploy", "prod", "--yes"])
        .env("DRIFTLESS_FAILPOINT", "before-unlock")
        .run();
    assert_eq!(killed.signal, Some(9), "{}", killed.all());
    let v2 = head(&store);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["held by Alice"]);
    // Nothing to deploy, and the lock goes.
    p.cmd(&["deploy", "prod", "--yes"]).expect(0).mentions(&[
        "cleared the lock of Alice",
        "is no longer running on this host",
        "Nothing to do",
    ]);
    let status = p.cmd(&["status", "prod"]).expect(0);
    assert!(status.stdout.contains("lock     free"), "{}", status.stdout);
    assert_eq!(head(&store), v2);

    // Carol's CI runner died after making its release live: its lease is not renewed.
    let lock = carol_locks(&store, Some(&v2));
    // Seen alive just now: not cleared (the lock guard names Carol).
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["Carol", "ci-runner-7"]);
    // Silent for five minutes (three renewal periods are three minutes): cleared.
    let mut info = lock.info.clone();
    info.started_at -= jiff::SignedDuration::from_mins(5);
    std::fs::write(
        store.join(".driftless/lock"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
    p.cmd(&["deploy", "prod", "--yes"]).expect(0).mentions(&[
        "cleared the lock of Carol",
        "is live and the lease was last renewed 5m",
    ]);
}

/// Carol, on CI runner 7 (another host), takes the lease of `prod` in `store` for a
/// 10-minute deploy of `release`.
fn carol_locks(store: &std::path::Path, release: Option<&str>) -> driftless::ledger::Lock {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = driftless::ledger::Ledger::new(
        std::sync::Arc::new(driftless::store::LocalStore::new(store)),
        ".driftless/",
        "prod",
    );
    let carol = driftless::ledger::Actor {
        author: "Carol".into(),
        host: "ci-runner-7".into(),
        pid: 1,
    };
    rt.block_on(ledger.lock(
        &carol,
        "deploy",
        release,
        std::time::Duration::from_secs(600),
    ))
    .unwrap()
    .unwrap()
}
