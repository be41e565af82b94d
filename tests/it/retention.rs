//! Retention: removed fingerprinted assets stay served for pages already open (skew
//! protection), HTML goes at once, and the first deploy after the grace deletes them —
//! only if they still hold the bytes driftless left there.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::serve::{free_port, get, serve, web_deps};
use crate::util::Project;

const RULES: &str = "
[[rules]]
match = \"assets/**\"
cache_control = \"public, max-age=31536000, immutable\"

[retention]
removed_grace = \"2s\"
";

const PAGE_1: &str = r#"<!doctype html><html><head><title>release 1</title></head><body>
<p id="ready"></p><p id="out"></p>
<button id="a" onclick="import('/assets/chunk-aaaa1111.js').then(m => out.textContent = m.text, e => out.textContent = 'error: ' + e.message)">a</button>
<button id="b" onclick="import('/assets/chunk-bbbb2222.js').then(m => out.textContent = m.text, e => out.textContent = 'error: ' + e.message)">b</button>
<script type="module" src="/assets/app-11112222.js"></script>
</body></html>"#;

fn release_1(p: &Project) {
    p.write("index.html", PAGE_1)
        .write(
            "assets/app-11112222.js",
            "document.querySelector('#ready').textContent = 'ready';",
        )
        .write(
            "assets/chunk-aaaa1111.js",
            "export const text = 'chunk a of release 1';",
        )
        .write(
            "assets/chunk-bbbb2222.js",
            "export const text = 'chunk b of release 1';",
        )
        .write("old.html", "<p>an old page</p>");
}

/// Release 2 renames the app and its chunks, and drops a page.
fn release_2(p: &Project) {
    p.remove("assets/app-11112222.js")
        .remove("assets/chunk-aaaa1111.js")
        .remove("assets/chunk-bbbb2222.js")
        .remove("old.html")
        .write(
            "index.html",
            &PAGE_1
                .replace("release 1", "release 2")
                .replace("aaaa1111", "cccc3333")
                .replace("bbbb2222", "dddd4444")
                .replace("11112222", "55556666"),
        )
        .write(
            "assets/app-55556666.js",
            "document.querySelector('#ready').textContent = 'ready';",
        )
        .write(
            "assets/chunk-cccc3333.js",
            "export const text = 'chunk c of release 2';",
        )
        .write(
            "assets/chunk-dddd4444.js",
            "export const text = 'chunk d of release 2';",
        );
}

/// A page loaded from release 1 in headless Chromium keeps loading its lazy chunks after
/// release 2 removed them; after the grace, the next deploy deletes them, and HTML was
/// never kept.
#[test]
fn open_pages_keep_their_chunks_through_a_deploy_until_the_grace_ends() {
    let node_dir = web_deps();
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let p = Project::new(&t.path().join("w"), &store, RULES);
    release_1(&p);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let port = free_port();
    let _server = serve(&p, "prod", port);

    let mut browser = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/skew.cjs"
        ))
        .arg(format!("http://127.0.0.1:{port}"))
        .env("NODE_DIR", node_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let mut to_page = browser.stdin.take().unwrap();
    let mut from_page = BufReader::new(browser.stdout.take().unwrap());
    let mut read = |what: &str| {
        let mut line = String::new();
        from_page.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the browser stopped before {what}");
        line.trim().to_owned()
    };
    assert_eq!(read("loading"), "loaded");

    // Release 2 goes live while the page of release 1 is open.
    release_2(&p);
    let done = p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    done.mentions(&[
        "3 removed asset(s) kept for open pages until",
        "keep     assets/chunk-aaaa1111.js",
        "keep     assets/app-11112222.js",
    ]);
    assert!(
        !done.stdout.contains("keep     old.html"),
        "HTML must never be kept:\n{}",
        done.stdout
    );
    assert!(store.join("assets/chunk-aaaa1111.js").is_file());
    assert!(!store.join("old.html").exists(), "HTML goes at once");
    let status = p.cmd(&["status", "prod"]).expect(0);
    status.mentions(&[
        "none: the store matches the live release",
        "kept     3 removed asset(s) still served for open pages",
    ]);
    std::thread::sleep(Duration::from_millis(1100)); // serve re-reads the live release
    assert_eq!(get(port, "/old.html", "").0, 404);

    writeln!(to_page, "click a").unwrap();
    let seen: serde_json::Value = serde_json::from_str(&read("chunk a")).unwrap();
    assert_eq!(
        seen["out"], "chunk a of release 1",
        "the open page lost its chunk"
    );

    // After the grace, `gc` deletes the kept keys (a deploy would too: see below).
    std::thread::sleep(Duration::from_millis(2100));
    let done = p.cmd(&["gc", "prod", "--yes"]).expect(0);
    done.mentions(&[
        "kept      3 removed asset(s) past their grace, deleted",
        "deleted 3 kept asset(s) whose grace was over",
    ]);
    for key in [
        "assets/chunk-aaaa1111.js",
        "assets/chunk-bbbb2222.js",
        "assets/app-11112222.js",
    ] {
        assert!(!store.join(key).exists(), "{key} outlived its grace");
    }
    std::thread::sleep(Duration::from_millis(1100));
    writeln!(to_page, "click b").unwrap();
    let seen: serde_json::Value = serde_json::from_str(&read("chunk b")).unwrap();
    assert!(
        seen["out"].as_str().unwrap().starts_with("error:"),
        "{seen}"
    );
    assert_eq!(get(port, "/assets/chunk-cccc3333.js", "").0, 200);
    assert_eq!(get(port, "/index.html", "").0, 200);
    writeln!(to_page, "quit").unwrap();
    drop(to_page);
    let out = browser.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing left to do: the store is exactly release 2, and status no longer lists
    // the kept keys gc deleted.
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["Nothing to do"]);
    let status = p.cmd(&["status", "prod"]).expect(0);
    assert!(!status.stdout.contains("kept     "), "{}", status.stdout);
}

/// Without `gc`, the first deploy after the grace deletes the kept keys.
#[test]
fn the_first_deploy_after_the_grace_deletes_kept_keys() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let p = Project::new(&t.path().join("w"), &store, RULES);
    p.write("index.html", "v1").write("assets/app-1.js", "one");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.remove("assets/app-1.js").write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert!(store.join("assets/app-1.js").is_file());
    std::thread::sleep(Duration::from_millis(2100));
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["1 to delete", "grace over"]);
    assert!(!store.join("assets/app-1.js").exists());
}

/// A kept key changed outside driftless is drift, never deleted blindly; an asset not
/// served as immutable is deleted at once; `removed_grace = "0s"` turns keeping off.
#[test]
fn kept_keys_are_deleted_only_if_they_still_hold_what_was_kept() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let p = Project::new(&t.path().join("w"), &store, RULES);
    p.write("index.html", "v1")
        .write("assets/app-1.js", "one")
        .write("notes.txt", "plain");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.remove("assets/app-1.js").remove("notes.txt");
    p.write("index.html", "v2");
    let done = p.cmd(&["--json", "deploy", "prod", "--yes"]).expect(0);
    let doc = done.json();
    assert_eq!(doc["plan"]["totals"]["delete"], 1, "{doc}");
    assert_eq!(doc["plan"]["retention"]["newly"], 1, "{doc}");
    assert!(store.join("assets/app-1.js").is_file());
    assert!(!store.join("notes.txt").exists());
    // status reports what history occupies, and the kept key with its grace.
    let status = p.cmd(&["--json", "status", "prod"]).expect(0).json();
    assert_eq!(status["storage"]["releases"], 2, "{status}");
    // Every version of every file is in the snapshots: v1, v2, one, plain.
    assert_eq!(status["storage"]["objects"], 4, "{status}");
    assert_eq!(
        status["storage"]["snapshot_bytes"],
        2 + 2 + 3 + 5,
        "{status}"
    );
    assert!(
        status["kept"]["assets/app-1.js"]["until"].is_string(),
        "{status}"
    );

    // Someone replaces the kept file in the bucket: that is drift, and after the grace
    // it is not deleted (the deploy is refused, naming it).
    std::fs::write(store.join("assets/app-1.js"), "hotfix").unwrap();
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["assets/app-1.js"]);
    std::thread::sleep(Duration::from_millis(2100));
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["[drift]", "assets/app-1.js"]);
    // Nor does gc delete it: it no longer holds what was kept.
    p.cmd(&["gc", "prod", "--yes"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(store.join("assets/app-1.js")).unwrap(),
        "hotfix"
    );

    // With no grace, removed assets go at once.
    let q = Project::new(
        &t.path().join("w2"),
        &t.path().join("store2"),
        &RULES.replace("\"2s\"", "\"0s\""),
    );
    q.write("index.html", "v1").write("assets/app-1.js", "one");
    q.cmd(&["deploy", "prod", "--yes"]).expect(0);
    q.remove("assets/app-1.js");
    q.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert!(!t.path().join("store2/assets/app-1.js").exists());

    // A bad grace is a configuration error naming the key.
    let r = Project::new(
        &t.path().join("w3"),
        &t.path().join("store3"),
        "[retention]\nremoved_grace = \"soon\"\n",
    );
    r.cmd(&["plan", "prod"])
        .expect(2)
        .mentions(&["retention.removed_grace", "\"soon\""]);
}

/// `removed_releases = 2`: a removed asset outlives its grace until two releases went
/// live after the one that removed it (rapid deploys do not cut open pages short).
#[test]
fn kept_keys_also_wait_for_n_releases() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let p = Project::new(
        &t.path().join("w"),
        &store,
        &RULES.replace(
            "removed_grace = \"2s\"",
            "removed_grace = \"0s\"\nremoved_releases = 2",
        ),
    );
    p.write("index.html", "v1").write("assets/app-1.js", "one");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.remove("assets/app-1.js").write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // No time grace at all, yet the asset stays through one more release and gc.
    p.cmd(&["gc", "prod", "--yes"]).expect(0);
    assert!(store.join("assets/app-1.js").is_file(), "gc took it early");
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert!(
        store.join("assets/app-1.js").is_file(),
        "deleted after one release"
    );
    p.write("index.html", "v4");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["grace over"]);
    assert!(
        !store.join("assets/app-1.js").exists(),
        "kept past two releases"
    );
}
