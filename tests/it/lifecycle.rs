//! Deploy, drift, adopt, rollback, concurrent deploys, saved plans and the hash cache,
//! through the real binary on the local store.

use std::time::{Duration, SystemTime};

use crate::util::{Done, Project, files, head, site_files, store_bytes};

fn project(tmp: &tempfile::TempDir) -> (Project, std::path::PathBuf) {
    let store = tmp.path().join("store");
    (Project::new(&tmp.path().join("work"), &store, ""), store)
}

#[test]
fn drift_is_refused_then_adopted_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "home v1")
        .write("pricing.html", "price: 10");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // A hotfix made directly in the store, outside driftless.
    std::fs::write(store.join("pricing.html"), "price: 12 (hotfix)").unwrap();
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["pricing.html", "changed"]);

    p.write("index.html", "home v2");
    let before = store_bytes(&store);
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "[drift]",
        "pricing.html",
        "driftless adopt prod",
    ]);
    assert_eq!(
        store_bytes(&store),
        before,
        "refused deploy wrote something"
    );

    // Accept the hotfix as a release.
    p.cmd(&["adopt", "prod", "--yes", "-m", "accept pricing hotfix"])
        .expect(0);
    let adopted = head(&store);
    p.cmd(&["log", "prod"])
        .expect(0)
        .mentions(&[&adopted, "adopt", "accept pricing hotfix"]);

    // The stale copy still may not revert the hotfix...
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["pricing.html"]);
    assert_eq!(head(&store), adopted);

    // ...but once it starts from live, its own change deploys on top of the hotfix.
    p.cmd(&["pull", "prod", "site", "--force"]).expect(0);
    p.write("index.html", "home v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(
        site_files(&store),
        files(&[
            ("index.html", "home v2"),
            ("pricing.html", "price: 12 (hotfix)")
        ])
    );
}

#[test]
fn forced_drift_keeps_the_overwritten_bytes_recoverable() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    std::fs::write(store.join("index.html"), "edited in the bucket").unwrap();
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes", "--force", "drift"])
        .expect(0)
        .mentions(&["Overridden guards", "[drift]"]);
    assert_eq!(site_files(&store), files(&[("index.html", "v2")]));
    // The out-of-band bytes are in the content store, and the override is journalled.
    let objects = crate::util::tree(&store.join(".driftless/objects"), &[]);
    assert!(
        objects.values().any(|b| b == b"edited in the bucket"),
        "drifted bytes lost"
    );
    let journal = crate::util::tree(&store.join(".driftless/journal"), &[]);
    assert!(
        journal
            .values()
            .any(|b| String::from_utf8_lossy(b).contains("\"forced\"")),
        "override not journalled"
    );
}

#[test]
fn rollback_restores_every_file_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    let v1 = [
        ("index.html", "home 1"),
        ("a.css", "a 1"),
        ("old.html", "old"),
        ("img/x.bin", "\u{0}\u{1}binary"),
    ];
    for (k, v) in v1 {
        p.write(k, v);
    }
    p.cmd(&["deploy", "prod", "--yes", "-m", "first"]).expect(0);
    let first = head(&store);

    p.write("index.html", "home 2")
        .write("a.css", "a 2")
        .write("new.js", "new")
        .remove("old.html");
    p.cmd(&["deploy", "prod", "--yes", "-m", "second"])
        .expect(0);
    p.write("index.html", "home 3");
    p.cmd(&["deploy", "prod", "--yes", "-m", "third"]).expect(0);

    // Someone overwrites a file in the bucket, and adds one.
    std::fs::write(store.join("a.css"), "tampered").unwrap();
    std::fs::write(store.join("stray.txt"), "stray").unwrap();

    p.cmd(&["rollback", "prod", "--to", &first, "--yes"])
        .expect(0)
        .mentions(&["rollback to", &first, "a.css"]);
    assert_eq!(
        site_files(&store),
        files(&v1),
        "rollback is not byte-identical"
    );

    // The rollback is a new release; log lists it; rolling back again (to "third") works.
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    let releases = log["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 4);
    assert_eq!(releases[0]["kind"]["type"], "rollback");
    let third = releases[1]["id"].as_str().unwrap().to_owned();
    p.cmd(&["rollback", "prod", "--to", &third, "--yes"])
        .expect(0);
    assert_eq!(
        site_files(&store),
        files(&[
            ("index.html", "home 3"),
            ("a.css", "a 2"),
            ("new.js", "new"),
            ("img/x.bin", "\u{0}\u{1}binary")
        ])
    );
    // Every release log lists can be rolled back to.
    for r in releases {
        p.cmd(&[
            "rollback",
            "prod",
            "--to",
            r["id"].as_str().unwrap(),
            "--yes",
        ])
        .expect(0);
    }
}

/// Two working copies deploy different sites at the same instant: exactly one release
/// wins, the other is refused (exit 3), and the store never holds a mix.
pub fn two_deploys_race(
    rounds: usize,
    make: &dyn Fn(&std::path::Path, &str, &str) -> Project,
    site: &dyn Fn(&std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>>,
) {
    for round in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let a = make(tmp.path(), "a", "Alice <a@example.com>");
        let b = make(tmp.path(), "b", "Bob <b@example.com>");
        a.write("index.html", "base").write("x.css", "base");
        a.cmd(&["deploy", "prod", "--yes"]).expect(0);
        b.cmd(&["pull", "prod", "site"]).expect(0);
        let site_a: Vec<(String, String)> = (0..40)
            .map(|i| (format!("a{i}.html"), format!("a{i}")))
            .chain([
                ("index.html".into(), "alice".into()),
                ("x.css".into(), "alice".into()),
            ])
            .collect();
        let site_b: Vec<(String, String)> = (0..40)
            .map(|i| (format!("b{i}.html"), format!("b{i}")))
            .chain([
                ("index.html".into(), "bob".into()),
                ("x.css".into(), "bob".into()),
            ])
            .collect();
        for (k, v) in &site_a {
            a.write(k, v);
        }
        for (k, v) in &site_b {
            b.write(k, v);
        }
        let ca = a.cmd(&["deploy", "prod", "--yes"]).spawn();
        let cb = b.cmd(&["deploy", "prod", "--yes"]).spawn();
        let ra = Done::from("a".into(), ca.wait_with_output().unwrap());
        let rb = Done::from("b".into(), cb.wait_with_output().unwrap());
        let mut codes = [ra.code, rb.code];
        codes.sort_unstable();
        assert_eq!(
            codes,
            [0, 3],
            "round {round}: exactly one wins\nA: {}\nB: {}",
            ra.all(),
            rb.all()
        );
        let loser = if ra.code == 3 { &ra } else { &rb };
        assert!(
            loser.all().contains("locked")
                || loser.all().contains("changed since the plan")
                || loser.all().contains("[lock]"),
            "the loser says why: {}",
            loser.all()
        );
        let winner = if ra.code == 0 { &site_a } else { &site_b };
        let want: Vec<(&str, &str)> = winner
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            site(tmp.path()),
            files(&want),
            "round {round}: the store holds a mix"
        );
    }
}

#[test]
fn two_deploys_at_once_never_mix() {
    two_deploys_race(
        4,
        &|dir, name, who| Project::new(&dir.join(name), &dir.join("store"), "").author(who),
        &|dir| site_files(&dir.join("store")),
    );
}

#[test]
fn saved_plan_applies_only_if_nothing_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // Local files changed after planning.
    p.write("index.html", "v2");
    p.cmd(&["plan", "prod", "--out", "plan.json"]).expect(0);
    p.write("index.html", "v3");
    p.cmd(&["apply", "plan.json", "--yes"])
        .expect(3)
        .mentions(&["local site changed"]);
    assert_eq!(site_files(&store), files(&[("index.html", "v1")]));

    // The store changed after planning.
    p.cmd(&["plan", "prod", "--out", "plan.json"]).expect(0);
    std::fs::write(store.join("extra.html"), "someone else").unwrap();
    p.cmd(&["apply", "plan.json", "--yes"])
        .expect(3)
        .mentions(&["changed since the plan"]);
    std::fs::remove_file(store.join("extra.html")).unwrap();

    // Nothing moved: it applies, and without a terminal it demands --yes.
    p.cmd(&["plan", "prod", "--out", "plan.json"]).expect(0);
    p.cmd(&["apply", "plan.json"])
        .expect(2)
        .mentions(&["--yes"]);
    p.cmd(&["apply", "plan.json", "--yes"]).expect(0);
    assert_eq!(site_files(&store), files(&[("index.html", "v3")]));

    // A plan is single-use: applied again, it says so and changes nothing.
    p.cmd(&["apply", "plan.json", "--yes"])
        .expect(0)
        .mentions(&["already applied", "nothing to do"]);
}

#[test]
fn no_op_deploy_of_2000_files_reads_no_file_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    let old = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..2000 {
        let key = format!("pages/{}/{i}.html", i % 20);
        p.write(&key, &format!("<p>page {i}</p>"));
        let f = std::fs::File::options()
            .write(true)
            .open(p.dir.join("site").join(&key))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    let first = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(first["plan"]["scan"]["hashed"], 2000);
    assert_eq!(site_files(&store).len(), 2000);

    let again = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(again["result"], "no-op");
    assert_eq!(
        again["plan"]["scan"]["hashed"], 0,
        "unchanged files were re-read"
    );
    assert_eq!(again["plan"]["scan"]["cached"], 2000);
    assert_eq!(again["plan"]["totals"]["unchanged"], 2000);
}

#[test]
fn diff_status_and_json_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "line 1\nline 2\n");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "line 1\nline two\n");
    let d = p.cmd(&["diff", "prod"]).expect(0);
    d.mentions(&[
        "--- prod/index.html",
        "+++ local build/index.html",
        "-line 2",
        "+line two",
    ]);
    let s = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(s["drift"].as_array().unwrap().len(), 0);
    assert_eq!(s["base"]["id"], s["live"]["id"]);
    let plan = p.cmd(&["plan", "prod", "--json"]).expect(0).json();
    let action = &plan["actions"][0];
    assert_eq!(action["key"], "index.html");
    assert_eq!(action["kind"], "update");
    assert_eq!(action["local"]["size"], 16);
    assert_eq!(action["remote"]["size"], 14);
    assert_eq!(action["local"]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn init_detects_the_build_directory_and_the_result_deploys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("public")).unwrap();
    std::fs::write(tmp.path().join("public/index.html"), "<h1>hi</h1>").unwrap();
    crate::util::git(tmp.path(), &["init", "-q"]);
    crate::util::Run::new(tmp.path(), &["init"])
        .expect(0)
        .mentions(&["site = \"public\"", ".gitignore"]);
    let config = std::fs::read_to_string(tmp.path().join("driftless.toml")).unwrap();
    assert!(config.contains("site = \"public\""), "{config}");
    let ignore = std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == ".driftless/"), "{ignore}");
    crate::util::Run::new(tmp.path(), &["init"])
        .expect(2)
        .mentions(&["already exists"]);
    crate::util::Run::new(tmp.path(), &["deploy", "local", "--yes"]).expect(0);
    assert_eq!(
        site_files(&tmp.path().join(".driftless/local")),
        files(&[("index.html", "<h1>hi</h1>")])
    );
}

/// A reader that went away (`driftless deploy prod --yes | head -1`) does not abort the
/// command: the deploy completes and exits 0, with no panic.
#[test]
fn a_closed_stdout_does_not_abort_a_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "<h1>piped</h1>");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::util::BIN)
        .args(["deploy", "prod", "--yes"])
        .current_dir(&p.dir)
        .env("DRIFTLESS_AUTHOR", "Alice <alice@example.com>")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        site_files(&store),
        files(&[("index.html", "<h1>piped</h1>")])
    );
}
