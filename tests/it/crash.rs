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
