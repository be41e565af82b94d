//! A deploy killed at any point of apply is finished by the next run, and the
//! environment then serves exactly one complete release.

use crate::util::{Project, files, head, site_files};

const POINTS: [&str; 5] = [
    "after-objects",
    "after-pending",
    "after-assets",
    "after-release",
    "after-head",
];

#[test]
fn a_killed_deploy_is_finished_by_the_next_run() {
    for point in POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let p = Project::new(tmp.path(), &store, "");
        p.write("index.html", "v1")
            .write("app.css", "css v1")
            .write("gone.js", "old");
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        let v1 = head(&store);

        p.write("index.html", "v2")
            .write("app.css", "css v2")
            .write("new.js", "new")
            .remove("gone.js");
        let killed = p
            .cmd(&["deploy", "prod", "--yes"])
            .env("DRIFTLESS_FAILPOINT", point)
            .run();
        assert_ne!(killed.code, 0, "{point}: the failpoint did not fire");

        // HEAD names a complete release: the old one, or (after the swap) the new one.
        let live = head(&store);
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

        // The next run (same host, the dead process's lease is taken over) finishes it.
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        assert_eq!(
            site_files(&store),
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
