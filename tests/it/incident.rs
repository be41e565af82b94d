//! The incident driftless exists to prevent, replayed: a developer on a stale copy
//! overwrites a newer production `index.html`.

use crate::util::{Project, git, head, store_bytes};

/// Regression guard for the seed incident: stale copy A must not overwrite B's release.
#[test]
fn stale_working_copy_cannot_overwrite_a_newer_release() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let seed = tmp.path().join("seed");
    let origin = tmp.path().join("origin.git");

    // The shared repository: a site and its config (state dir ignored by git).
    let p = Project::new(&seed, &store, "");
    p.write("index.html", "<h1>Shop</h1>\n<p>Welcome</p>\n")
        .write("assets/app.js", "console.log('v1')\n");
    std::fs::write(seed.join(".gitignore"), ".driftless/\n").unwrap();
    git(&seed, &["init", "-q", "-b", "main"]);
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-q", "-m", "v1"]);
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            seed.to_str().unwrap(),
            origin.to_str().unwrap(),
        ],
    );
    let a_dir = tmp.path().join("a");
    let b_dir = tmp.path().join("b");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            a_dir.to_str().unwrap(),
        ],
    );
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            b_dir.to_str().unwrap(),
        ],
    );
    let a = Project::at(&a_dir).author("Alice <alice@example.com>");
    let b = Project::at(&b_dir).author("Bob <bob@example.com>");

    // A deploys v1 (both copies agree on it).
    a.cmd(&["deploy", "prod", "--yes", "-m", "v1"]).expect(0);

    // B adds the hero animation and the checkout, commits and deploys.
    b.write(
        "index.html",
        "<h1>Shop</h1>\n<div class=\"hero-animation\"></div>\n<p>Welcome</p>\n<div id=\"stripe-checkout\"></div>\n",
    );
    git(&b_dir, &["commit", "-q", "-am", "hero + checkout"]);
    git(&b_dir, &["push", "-q", "origin", "main"]);
    b.cmd(&["deploy", "prod", "--yes", "-m", "hero + checkout"])
        .expect(0);
    let b_release = head(&store);
    let before = store_bytes(&store);

    // A, still on the older commit, edits its stale index.html and deploys.
    a.write("index.html", "<h1>Shop</h1>\n<p>Welcome, friends</p>\n");
    let refused = a.cmd(&["deploy", "prod", "--yes"]).expect(3);
    refused.mentions(&["index.html", &b_release, "Bob", "stale-base", "git"]);

    assert_eq!(
        store_bytes(&store),
        before,
        "a refused deploy changed the store"
    );
    assert_eq!(head(&store), b_release);

    // The way out the message names works: merge B's commit, keep both changes.
    git(&a_dir, &["checkout", "-q", "--", "."]);
    git(&a_dir, &["pull", "-q", "--no-rebase", "origin", "main"]);
    a.write(
        "index.html",
        "<h1>Shop</h1>\n<div class=\"hero-animation\"></div>\n<p>Welcome, friends</p>\n<div id=\"stripe-checkout\"></div>\n",
    );
    git(&a_dir, &["commit", "-q", "-am", "friendlier welcome"]);
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let live = std::fs::read_to_string(store.join("index.html")).unwrap();
    assert!(
        live.contains("hero-animation") && live.contains("friends"),
        "{live}"
    );
}

/// Without git, the working copy's last-known release is the base: a per-file revert
/// of a newer live file is refused, naming the file, the release and its author.
#[test]
fn would_revert_is_refused_outside_git() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let a = Project::new(&tmp.path().join("a"), &store, "");
    a.write("index.html", "v1").write("about.html", "about v1");
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // B starts from live (pull), changes about.html, deploys.
    let b = Project::new(&tmp.path().join("b"), &store, "").author("Bob <bob@example.com>");
    b.cmd(&["pull", "prod", "site"]).expect(0);
    b.write("about.html", "about v2 by Bob");
    b.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let bobs = head(&store);

    // A changes only index.html; its about.html is stale.
    a.write("index.html", "v2");
    let before = store_bytes(&store);
    a.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "about.html",
        &bobs,
        "Bob",
        "would revert",
        "stale-base",
    ]);
    assert_eq!(store_bytes(&store), before);

    // Overriding stale-base alone is not enough: the per-file guard still holds.
    a.cmd(&["deploy", "prod", "--yes", "--force", "stale-base"])
        .expect(3)
        .mentions(&["about.html", "revert"]);
    assert_eq!(store_bytes(&store), before);

    // Every guard's verdict, the passing ones too (issue 20.13), in text and JSON.
    a.cmd(&["plan", "prod", "--force", "stale-base"])
        .expect(3)
        .mentions(&[
            "guards: site ✓  protected ✓  hold ✓  lock ✓  pending ✓  canary ✓  drift ✓  stale-base ! forced  revert ✗  feature ✓  deletes ✓  immutable ✓",
        ]);
    let doc = a.cmd(&["--json", "plan", "prod"]).expect(3).json();
    assert_eq!(doc["guards"]["drift"], "passed", "{doc}");
    assert_eq!(doc["guards"]["stale-base"], "refused", "{doc}");
    assert_eq!(doc["guards"]["revert"], "refused", "{doc}");
}

/// Regression (issue 20.2): a copy that never deployed has no base; forcing stale-base
/// must not switch the per-file guard off. B's index.html still has A1's bytes, which
/// live's history (A2) replaced: refused as a revert naming A2; a file B lacks that A2
/// added would be deleted: refused too. New content of B's own goes through.
#[test]
fn forcing_stale_base_without_a_base_still_refuses_a_revert() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let a = Project::new(&tmp.path().join("a"), &store, "");
    a.write("index.html", "A1").write("about.html", "about");
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);
    a.write("index.html", "A2").write("news.html", "news by A2");
    a.cmd(&["deploy", "prod", "--yes", "-m", "A2"]).expect(0);
    let a2 = head(&store);

    let b = Project::new(&tmp.path().join("b"), &store, "").author("Bob <bob@example.com>");
    b.write("index.html", "A1").write("about.html", "about");
    let before = store_bytes(&store);
    let refused = b
        .cmd(&["deploy", "prod", "--yes", "--force", "stale-base"])
        .expect(3);
    refused.mentions(&[
        "index.html: would revert",
        "news.html: would be deleted",
        &a2,
        "Alice",
    ]);
    assert_eq!(
        store_bytes(&store),
        before,
        "a refused deploy changed the store"
    );

    // B's own new content (never live before) is B's decision once stale-base is forced.
    b.write("index.html", "B's new page")
        .write("news.html", "news by A2");
    b.cmd(&["deploy", "prod", "--yes", "--force", "stale-base"])
        .expect(0);
    // Two files forced back at once: `log` names the overridden guard once (issue 20.15).
    let c = Project::new(&tmp.path().join("c"), &store, "");
    c.write("index.html", "A2").write("about.html", "about");
    c.cmd(&[
        "deploy",
        "prod",
        "--yes",
        "--force",
        "stale-base",
        "--force",
        "revert",
    ])
    .expect(0);
    let log = c.cmd(&["log", "prod", "--limit", "1"]).expect(0);
    assert!(
        log.stdout.contains("overrides: stale-base, revert\n"),
        "{}",
        log.stdout
    );
}

/// Regression (issue 20.8): outside git, this working copy's own rollback or adopt no
/// longer makes its next deploy "stale". The per-file guard still refuses to bring the
/// rolled-back content (or to revert the adopted change) back.
#[test]
fn your_own_rollback_or_adopt_does_not_make_you_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1").write("about.html", "a1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2 (broken)");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    let rollback = head(&store);
    // Re-shipping the broken page as it is: refused by the revert guard, not stale-base.
    let done = p.cmd(&["deploy", "prod", "--yes"]).expect(3);
    done.mentions(&["[revert] index.html: would undo rollback", &rollback]);
    assert!(!done.all().contains("[stale-base]"), "{}", done.all());
    // Accept the rollback in the copy and change something else: it ships, unforced.
    p.write("index.html", "v1").write("about.html", "a2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // Someone fixes about.html in the bucket; this copy adopts it and brings it in.
    std::fs::write(store.join("about.html"), "a2 hotfix").unwrap();
    p.cmd(&["adopt", "prod", "--yes"]).expect(0);
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["[revert] about.html"]);
    p.write("about.html", "a2 hotfix");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
}

/// Another person's release since this copy's base: stale, and the message says what to
/// do in a build-output workflow — diff, bring the change into the sources, rebuild, and
/// force stale-base (the per-file guard still holds).
#[test]
fn a_stale_copy_is_told_what_to_do_without_git() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let a = Project::new(&tmp.path().join("a"), &store, "");
    a.write("index.html", "v1");
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let b = Project::new(&tmp.path().join("b"), &store, "").author("Bob <bob@example.com>");
    b.cmd(&["pull", "prod", "site", "--force"]).expect(0);
    b.write("news.html", "news");
    b.cmd(&["deploy", "prod", "--yes"]).expect(0);
    a.write("index.html", "v2");
    a.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "[stale-base]",
        "Bob",
        "driftless diff prod",
        "bring it into your sources and rebuild",
        "driftless deploy prod --force stale-base",
    ]);
}
