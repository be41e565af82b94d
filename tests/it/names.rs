//! Naming releases (issue 20, items 11 and 17): wherever a release id is asked for, an
//! unambiguous prefix, a tag given at deploy, or HEAD~N does too; a collected release is
//! named as such when diffed against.

use crate::util::{Project, head, site_files};

#[test]
fn releases_are_named_by_prefix_tag_and_head_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    let mut ids = Vec::new();
    for v in 1..=3 {
        p.write("index.html", &format!("v{v}"));
        let tag = format!("v1.{v}");
        ids.push(
            p.cmd(&["--json", "deploy", "prod", "--yes", "--tag", &tag])
                .expect(0)
                .release_id(),
        );
    }
    // A tag names one release.
    p.write("index.html", "v4");
    p.cmd(&["deploy", "prod", "--yes", "--tag", "v1.2"])
        .expect(2)
        .mentions(&["--tag v1.2", &ids[1], "already has it"]);
    p.cmd(&["deploy", "prod", "--yes", "--tag", "HEAD~1"])
        .expect(2)
        .mentions(&["a tag is"]);
    p.cmd(&["log", "prod"])
        .expect(0)
        .mentions(&["[v1.3] (live)", "[v1.1]"]);

    // HEAD~2 is two releases before live.
    p.write("index.html", "v3");
    p.cmd(&["rollback", "prod", "--to", "HEAD~2", "--yes"])
        .expect(0);
    assert_eq!(site_files(&store)["index.html"], b"v1".to_vec());
    // A tag.
    p.cmd(&["rollback", "prod", "--to", "v1.2", "--yes"])
        .expect(0);
    assert_eq!(site_files(&store)["index.html"], b"v2".to_vec());
    // An unambiguous prefix (ids made within a second share their time part).
    let short = &ids[2][..ids[2].len() - 2];
    p.cmd(&["rollback", "prod", "--to", short, "--yes"])
        .expect(0);
    assert_eq!(site_files(&store)["index.html"], b"v3".to_vec());
    // Ambiguous and unknown names are usage errors that say what a name can be.
    p.cmd(&["rollback", "prod", "--to", "x9", "--yes"])
        .expect(2)
        .mentions(&["names no release of prod", "HEAD~N"]);
    let year = &ids[0][..4];
    p.cmd(&["rollback", "prod", "--to", year, "--yes"])
        .expect(2)
        .mentions(&["is the start of", "give more of the id"]);
    p.cmd(&["rollback", "prod", "--to", "HEAD~99", "--yes"])
        .expect(2)
        .mentions(&["release(s) in live's history"]);
    // diff takes the same names.
    p.cmd(&["diff", "prod", "--against", "v1.1"])
        .expect(0)
        .mentions(&["-v3", "+v1"]);
    let live = head(&store);
    p.cmd(&["diff", "prod", "--against", "HEAD"])
        .expect(0)
        .mentions(&["No differences", &live]);
}

/// Regression (issue 20.11): a diff against a release gc collected said "content … is
/// in neither objects/ nor the site"; it says the release was collected, by whom.
#[test]
fn a_diff_against_a_collected_release_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1");
    let first = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["gc", "prod", "--keep", "1", "--yes"]).expect(0);
    p.cmd(&["diff", "prod", "--against", &first])
        .expect(2)
        .mentions(&["was collected by `driftless gc`", "Alice", "files are gone"]);
}
