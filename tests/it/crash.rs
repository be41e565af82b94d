//! A deploy killed at any point of apply is finished by the next run, and the
//! environment then serves exactly one complete release.

use std::collections::BTreeMap;

use crate::util::{Project, files, head, site_files};

const POINTS: [&str; 5] = [
    "after-objects",
    "after-pending",
    "after-assets",
    "after-release",
    "after-head",
];

/// Kill a deploy at every failpoint of apply; after each, the live release is complete
/// (old before the HEAD swap, new after) and the next run finishes the new one.
/// A store as a scenario sees it: its site files, and the id HEAD names.
pub type SiteView = Box<dyn Fn() -> BTreeMap<String, Vec<u8>>>;
pub type HeadView = Box<dyn Fn() -> String>;

pub fn killed_deploys_are_finished(
    make: &dyn Fn(&std::path::Path) -> Project,
    view: &dyn Fn(&std::path::Path) -> (SiteView, HeadView),
) {
    for point in POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let p = make(tmp.path());
        let (site, head) = view(tmp.path());
        p.write("index.html", "v1")
            .write("app.css", "css v1")
            .write("gone.js", "old");
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        let v1 = head();

        p.write("index.html", "v2")
            .write("app.css", "css v2")
            .write("new.js", "new")
            .remove("gone.js");
        let killed = p
            .cmd(&["deploy", "prod", "--yes"])
            .env("DRIFTLESS_FAILPOINT", point)
            .run();
        assert_eq!(
            killed.signal,
            Some(9),
            "{point}: not killed by SIGKILL: {}",
            killed.all()
        );

        let live = head();
        let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
        assert_eq!(status["live"]["id"], live.as_str());
        if point == "after-head" {
            assert_ne!(live, v1, "{point}: HEAD should have moved");
        } else {
            assert_eq!(
                live, v1,
                "{point}: HEAD moved before the release was complete"
            );
        }
        if point != "after-objects" {
            assert!(
                !status["pending"].is_null(),
                "{point}: the interrupted apply is not reported"
            );
        }

        // The next run (same host: the dead process's lease is taken over) finishes it.
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        assert_eq!(
            site(),
            files(&[
                ("index.html", "v2"),
                ("app.css", "css v2"),
                ("new.js", "new")
            ]),
            "{point}: the store does not hold exactly the new release"
        );
        let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
        assert!(status["pending"].is_null(), "{point}");
        assert!(status["lock"].is_null(), "{point}: lock left behind");
        assert_eq!(
            status["drift"].as_array().unwrap().len(),
            0,
            "{point}: drift after recovery"
        );
        p.cmd(&["deploy", "prod", "--yes"])
            .expect(0)
            .mentions(&["Nothing to do"]);
    }
}

#[test]
fn a_killed_deploy_is_finished_by_the_next_run() {
    killed_deploys_are_finished(
        &|dir| Project::new(&dir.join("work"), &dir.join("store"), ""),
        &|dir| {
            let store = dir.join("store");
            let s2 = store.clone();
            (
                Box::new(move || site_files(&store)),
                Box::new(move || head(&s2)),
            )
        },
    );
}

/// Send SIGINT to a deploy paused at `point` (failpoint `POINT:pause`) and collect it.
#[cfg(unix)]
pub fn interrupt_at(p: &Project, point: &str) -> crate::util::Done {
    let child = p
        .cmd(&["deploy", "prod", "--yes"])
        .env("DRIFTLESS_FAILPOINT", &format!("{point}:pause"))
        .spawn();
    let pid = child.id();
    // The failpoint announces itself on stderr; wait for the mark file it touches.
    let mark = std::env::temp_dir().join(format!("driftless-failpoint-{pid}"));
    for _ in 0..600 {
        if mark.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(mark.exists(), "the deploy never reached {point}");
    let _ = std::fs::remove_file(&mark);
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    crate::util::Done::from(
        format!("deploy ({point})"),
        child.wait_with_output().unwrap(),
    )
}

/// Issue 9, item 12: Ctrl-C stops cleanly, says what is live, frees the lock, exits 130,
/// and the re-run resumes without uploading again what was already stored.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("work"), &store, "");
    p.write("index.html", "v1").write("a.css", "a1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let v1 = head(&store);

    // Before HEAD moves: nothing changes for visitors.
    p.write("index.html", "v2")
        .write("a.css", "a2")
        .write("b.js", "b2");
    let out = interrupt_at(&p, "after-objects");
    assert_eq!(out.code, 130, "{}", out.all());
    out.mentions(&["Interrupted", &v1, "is still live", "re-run"]);
    assert_eq!(head(&store), v1);
    assert_eq!(
        site_files(&store),
        files(&[("index.html", "v1"), ("a.css", "a1")])
    );
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert!(
        status["lock"].is_null(),
        "the lock was left behind: {status}"
    );
    let resumed = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(
        resumed["transfer"]["objects_uploaded"], 0,
        "the resumed deploy uploaded again: {resumed}"
    );

    // After HEAD moved: the new release is live and said so.
    p.write("index.html", "v3").remove("b.js");
    let out = interrupt_at(&p, "after-head");
    assert_eq!(out.code, 130, "{}", out.all());
    let live = head(&store);
    assert_ne!(live, v1);
    out.mentions(&["Interrupted", &live, "is live"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(
        site_files(&store),
        files(&[("index.html", "v3"), ("a.css", "a2")])
    );
}

/// Issue 9, item 12: a lock whose holder died on this host is shown as dead, and taking
/// it over is printed.
#[test]
fn a_dead_holders_lock_is_shown_and_its_takeover_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("work"), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2");
    let killed = p
        .cmd(&["deploy", "prod", "--yes"])
        .env("DRIFTLESS_FAILPOINT", "after-pending")
        .run();
    assert_eq!(killed.signal, Some(9));
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["lock", "dead", "no longer running"]);
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["took over the lock", "Alice"]);
}

/// Regression (issue 20.18): Ctrl-C in the middle of a long phase waited for the whole
/// phase (54 s for a 52,000-file first deploy to S3). It starts no new request, says what
/// it waits for — the writes in flight, which it then puts back — and changes nothing.
#[cfg(unix)]
#[test]
fn ctrl_c_mid_phase_starts_nothing_new_and_says_what_it_waits_for() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("work"), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let v1 = head(&store);
    for i in 0..400 {
        p.write(&format!("assets/a{i}.js"), &format!("console.log({i})"));
    }
    // Every write pauses until Ctrl-C: at most 64 are in flight when it comes (all of
    // them once started), the rest never start.
    let out = interrupt_at(&p, "site-write");
    assert_eq!(out.code, 130, "{}", out.all());
    let all = out.all();
    let waited: usize = all
        .split("stopping: waiting for the ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'waiting for the N write(s)' line:\n{all}"));
    let put_back: usize = all
        .split("putting back the ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'putting back the N key(s)' line:\n{all}"));
    // One may have finished between Ctrl-C and the count; none started after it.
    assert!(
        (1..=64).contains(&waited) && (waited..=64).contains(&put_back),
        "{all}"
    );
    out.mentions(&["Interrupted: nothing changed on prod", &v1]);
    assert_eq!(head(&store), v1);
    assert_eq!(site_files(&store), files(&[("index.html", "v1")]));
}

/// The same for content uploads to S3: the packs in flight are abandoned at once
/// (nothing refers to them yet) and the re-run uploads what is missing.
#[cfg(unix)]
#[test]
fn ctrl_c_abandons_pack_uploads_in_flight() {
    let s = crate::servers::servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::servers::Servers::prod_config(&s.seaweedfs, &bucket);
    let p = Project::with_config(tmp.path(), &config).envs(s.env());
    for i in 0..50 {
        p.write(&format!("p{i}.html"), &format!("page {i}"));
    }
    let out = interrupt_at(&p, "pack-upload");
    assert_eq!(out.code, 130, "{}", out.all());
    out.mentions(&["pack upload(s) in flight abandoned", "nothing is live yet"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
}
