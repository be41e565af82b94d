//! Bad input gets a clear message, the right exit status, and writes nothing.

use crate::util::{Project, Run};

fn nothing_written(store: &std::path::Path) {
    assert!(
        !store.exists(),
        "the store was created or written: {}",
        store.display()
    );
}

#[test]
fn malformed_toml_points_at_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("driftless.toml"),
        "site = \"site\"\n[env.prod]\nstore = \"file://s\"\nregion = [\n",
    )
    .unwrap();
    Run::new(tmp.path(), &["plan", "prod"])
        .expect(2)
        .mentions(&["driftless.toml:4:"]);
    std::fs::write(
        tmp.path().join("driftless.toml"),
        "site = \"site\"\n[env.prod]\nstroe = \"file://s\"\n",
    )
    .unwrap();
    Run::new(tmp.path(), &["deploy", "prod", "--yes"])
        .expect(2)
        .mentions(&["driftless.toml:3:1", "stroe"]);
    nothing_written(&tmp.path().join("s"));
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "[env.staging]\nstore = \"file://st\"\n");
    p.write("index.html", "x");
    p.cmd(&["deploy", "production", "--yes"])
        .expect(2)
        .mentions(&["unknown environment \"production\"", "prod, staging"]);
    nothing_written(&store);
}

#[test]
fn missing_config_and_missing_site() {
    let tmp = tempfile::tempdir().unwrap();
    Run::new(tmp.path(), &["status", "prod"])
        .expect(2)
        .mentions(&["no driftless.toml", "driftless init"]);
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    std::fs::remove_dir(tmp.path().join("site")).unwrap();
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(2)
        .mentions(&["site directory", "does not exist"]);
    nothing_written(&store);
}

#[test]
fn empty_site_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["is empty", "did the build fail"]);
    nothing_written(&store);
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_site_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "x");
    std::fs::write(tmp.path().join("id_secret"), "secret").unwrap();
    std::os::unix::fs::symlink(
        tmp.path().join("id_secret"),
        tmp.path().join("site/leak.txt"),
    )
    .unwrap();
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["leak.txt", "symlink leaves the site"]);
    nothing_written(&store);
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_file_name_is_refused_by_name() {
    use std::os::unix::ffi::OsStrExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "x");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.html");
    std::fs::write(tmp.path().join("site").join(name), "latin-1 name").unwrap();
    let done = p.cmd(&["deploy", "prod", "--yes"]).expect(3);
    // Regression (issue 20.15): the name is shown with its bad byte escaped, not as `�`.
    done.mentions(&["caf\\xe9.html", "not valid UTF-8"]);
    assert!(!done.all().contains('\u{fffd}'), "{}", done.all());
    nothing_written(&store);
}

#[test]
fn no_terminal_means_yes_is_required_and_force_names_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "x");
    p.cmd(&["deploy", "prod"])
        .expect(2)
        .mentions(&["not a terminal", "--yes"]);
    p.cmd(&["deploy", "prod", "--yes", "--force", "everything"])
        .expect(2)
        .mentions(&["drift, stale-base, revert, feature, deletes, immutable"]);
    nothing_written(&store);
}

#[test]
fn one_target_per_deploy() {
    // Staging and production "in one command" cannot be expressed.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "[env.staging]\nstore = \"file://st\"\n");
    p.write("index.html", "x");
    p.cmd(&["deploy", "staging", "prod", "--yes"])
        .expect(2)
        .mentions(&["unexpected argument"]);
    // With several environments, naming none suggests this very command.
    p.cmd(&["deploy", "--yes"])
        .expect(2)
        .mentions(&["name the environment", "`driftless deploy prod`"]);
    nothing_written(&store);
}

/// Issue 20.15: a saved plan applied twice says it was already applied (exit 0 while it
/// is live; refused, naming it, once something else went live).
#[test]
fn a_plan_applied_twice_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(tmp.path(), &store, "");
    p.write("index.html", "v1");
    p.cmd(&["plan", "prod", "--out", "p.json"]).expect(0);
    p.cmd(&["apply", "p.json", "--yes"]).expect(0);
    p.cmd(&["apply", "p.json", "--yes"])
        .expect(0)
        .mentions(&["was already applied", "is live on prod"]);
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["apply", "p.json", "--yes"])
        .expect(3)
        .mentions(&["was already applied as release", "moved on since"]);
}
