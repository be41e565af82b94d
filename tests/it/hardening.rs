//! The holes a real site and a real team hit (issue 9): each test names the leak it
//! guards, on the local store through the real binary.

use std::path::Path;
use std::time::Duration;

use crate::util::{Project, Run, files, git, head, site_files, store_bytes};

fn project(tmp: &tempfile::TempDir) -> (Project, std::path::PathBuf) {
    let store = tmp.path().join("store");
    (Project::new(&tmp.path().join("work"), &store, ""), store)
}

/// Human output carries no raw control character from any name.
fn no_control_chars(text: &str) {
    for (i, line) in text.lines().enumerate() {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "line {i} carries a raw control character: {line:?}"
        );
    }
}

// --- 3. drift can be reviewed -------------------------------------------------------

#[test]
fn drift_is_reviewed_with_diff_against_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("pricing.html", "<p>price: 10</p>\n")
        .write("index.html", "home\n");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    std::fs::write(store.join("pricing.html"), "<p>price: 12 (hotfix)</p>\n").unwrap();
    std::fs::write(store.join("extra.txt"), "added by hand\n").unwrap();

    // The drift refusal points at the command that shows the bytes.
    p.cmd(&["plan", "prod"])
        .expect(3)
        .mentions(&["[drift]", "driftless diff prod --against store"]);
    let d = p.cmd(&["diff", "prod", "--against", "store"]).expect(0);
    d.mentions(&[
        "-<p>price: 10</p>",
        "+<p>price: 12 (hotfix)</p>",
        "extra.txt",
    ]);
    let j = p
        .cmd(&["diff", "prod", "--against", "store", "--json"])
        .expect(0)
        .json();
    let keys: Vec<&str> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["extra.txt", "pricing.html"]);
}

#[test]
fn against_local_means_the_build_even_with_an_environment_named_local() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::with_config(
        &tmp.path().join("w"),
        &format!(
            "site = \"site\"\n[env.local]\nstore = \"file://{}\"\n[env.other]\nstore = \"file://{}/o\"\n",
            store.display(),
            tmp.path().display()
        ),
    );
    p.write("index.html", "one\n");
    p.cmd(&["deploy", "local", "--yes"]).expect(0);
    p.cmd(&["deploy", "other", "--yes"]).expect(0);
    p.write("index.html", "two\n");
    p.cmd(&["diff", "local", "--against", "local"])
        .expect(0)
        .mentions(&["-one", "+two", "build"]);
    // The environment named `local` is reachable without ambiguity.
    p.cmd(&["diff", "other", "--against", "env:local"])
        .expect(0)
        .mentions(&["No differences"]);
}

// --- 4. an interrupted apply is not drift, and adopt cannot record it ----------------

#[test]
fn an_interrupted_apply_is_pending_not_drift_and_cannot_be_adopted() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    for i in 0..40 {
        p.write(&format!("page{i:02}.css"), &format!("v1 {i}"));
    }
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let v1 = head(&store);
    for i in 0..40 {
        p.write(&format!("page{i:02}.css"), &format!("v2 {i}"));
    }
    p.write("index.html", "v2");
    let killed = p
        .cmd(&["deploy", "prod", "--yes"])
        .env("DRIFTLESS_FAILPOINT", "after-assets")
        .run();
    assert_eq!(killed.signal, Some(9), "{}", killed.all());
    assert_eq!(head(&store), v1);

    let status = p.cmd(&["status", "prod"]).expect(0);
    let text = status.stdout.clone();
    let pending_at = text.find("pending").expect("status does not show pending");
    let drift_at = text.find("drift").expect("status does not show drift");
    assert!(pending_at < drift_at, "pending must come first:\n{text}");
    assert!(
        !text.contains("page00.css"),
        "objects of the pending release listed as drift:\n{text}"
    );
    let json = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(json["drift"].as_array().unwrap().len(), 0, "{json}");

    let plan = p.cmd(&["plan", "prod"]).expect(3);
    plan.mentions(&["[pending]", "driftless deploy prod"]);
    assert!(!plan.all().contains("[drift]"), "{}", plan.all());
    assert!(!plan.all().contains("driftless adopt"), "{}", plan.all());

    let before = store_bytes(&store);
    p.cmd(&["adopt", "prod", "--yes"])
        .expect(3)
        .mentions(&["interrupted", "driftless deploy prod"]);
    assert_eq!(
        store_bytes(&store),
        before,
        "adopt recorded a half-deployed site"
    );
}

#[test]
fn long_drift_lists_are_truncated_in_status() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    for i in 0..60 {
        std::fs::write(store.join(format!("junk{i:02}.txt")), "j").unwrap();
    }
    let s = p.cmd(&["status", "prod"]).expect(0);
    s.mentions(&["60 object(s)", "and 50 more"]);
    assert!(s.stdout.lines().count() < 40, "{}", s.stdout);
    let j = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(j["drift"].as_array().unwrap().len(), 60);
}

// --- 5. names are never printed raw ---------------------------------------------------

#[cfg(unix)]
#[test]
fn a_file_name_with_a_newline_or_escape_is_refused_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    p.write(
        "evil\nNothing to do: prod already serves exactly this.html",
        "x",
    );
    p.write("red\u{1b}[31mALERT.html", "x");
    let d = p.cmd(&["deploy", "prod", "--yes"]).expect(3);
    d.mentions(&["[site]", "evil\\nNothing to do", "red\\u{1b}[31mALERT.html"]);
    assert!(
        !d.stdout.lines().any(|l| l.starts_with("Nothing to do")),
        "a forged line reached the output:\n{}",
        d.stdout
    );
    no_control_chars(&d.all());
    assert!(!store.exists(), "a refused deploy wrote the store");
}

#[test]
fn untrusted_text_from_the_store_is_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    p.cmd(&[
        "deploy",
        "prod",
        "--yes",
        "-m",
        "fix\u{1b}[2Jcleared\nforged line",
    ])
    .expect(0);
    p.cmd(&["hold", "prod", "--reason", "stop\u{1b}]0;title\u{7}"])
        .expect(0);
    std::fs::write(store.join("hand\u{1b}[1mmade.txt"), "x").unwrap();
    for args in [&["log", "prod"][..], &["status", "prod"], &["plan", "prod"]] {
        let out = p.cmd(args).run();
        no_control_chars(&out.all());
    }
}

// --- 6. the store, the config and the project stay out of the site ---------------------

#[test]
fn a_store_inside_the_site_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::with_config(
        tmp.path(),
        "site = \"dist\"\n[env.prod]\nstore = \"file://dist/store\"\n",
    );
    std::fs::create_dir_all(tmp.path().join("dist")).unwrap();
    std::fs::write(tmp.path().join("dist/index.html"), "x").unwrap();
    p.cmd(&["plan", "prod"])
        .expect(2)
        .mentions(&["env.prod.store", "inside the site"]);
    assert!(!tmp.path().join("dist/store").exists());
}

#[test]
fn site_dot_never_deploys_the_config_or_the_project_state() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = tmp.path().join("w");
    let p = Project::with_config(
        &dir,
        &format!(
            "site = \".\"\n[env.prod]\nstore = \"file://{}\"\n",
            store.display()
        ),
    );
    std::fs::remove_dir(dir.join("site")).unwrap();
    std::fs::write(dir.join("index.html"), "home").unwrap();
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(site_files(&store), files(&[("index.html", "home")]));
}

#[test]
fn init_inside_the_build_directory_notices_the_project() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::with_config(
        tmp.path(),
        "site = \"dist\"\n[env.prod]\nstore = \"file://store\"\n",
    );
    let dist = tmp.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "x").unwrap();
    let _ = p;
    Run::new(&dist, &["init"])
        .expect(2)
        .mentions(&["driftless.toml", "dist"]);
    assert!(!dist.join("driftless.toml").exists());
}

// --- 7. pull never overwrites a directory silently --------------------------------------

#[test]
fn pull_refuses_a_non_empty_directory_and_names_the_site() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "live");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "my unsaved work");
    p.cmd(&["pull", "prod", "site"]).expect(3).mentions(&[
        "site directory",
        "not empty",
        "--force",
    ]);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("site/index.html")).unwrap(),
        "my unsaved work"
    );
    let other = p.dir.join("copy");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    p.cmd(&["pull", "prod", "copy"])
        .expect(3)
        .mentions(&["not empty"]);
    p.cmd(&["pull", "prod", "copy", "--force"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(other.join("index.html")).unwrap(),
        "live"
    );
    p.cmd(&["pull", "prod", "fresh"]).expect(0);
}

// --- 8. well-known secret files are never deployed, and exclusions are reported ----------

#[test]
fn well_known_secret_files_are_excluded_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    let secrets = [
        ".git-credentials",
        ".aws/credentials",
        "credentials.json",
        ".netrc",
        "terraform.tfstate",
        "backup/dump.sql",
        ".env.local",
    ];
    for s in secrets {
        p.write(s, "secret");
    }
    let j = p.cmd(&["plan", "prod", "--json"]).expect(0).json();
    let excluded: Vec<String> = j["scan"]["excluded"]
        .as_array()
        .unwrap_or_else(|| panic!("no scan.excluded in {j}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    for s in [
        ".git-credentials",
        ".aws/",
        "credentials.json",
        ".netrc",
        "terraform.tfstate",
        "backup/dump.sql",
        ".env.local",
    ] {
        assert!(
            excluded.iter().any(|e| e == s),
            "{s} not reported in {excluded:?}"
        );
    }
    p.cmd(&["plan", "prod"])
        .expect(0)
        .mentions(&["7 excluded by default"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(site_files(&store), files(&[("index.html", "x")]));
}

// --- 9. bad input and faults ------------------------------------------------------------

#[cfg(unix)]
#[test]
fn a_fifo_in_the_site_is_refused_by_name_not_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    let fifo = p.dir.join("site/pipe");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut child = p.cmd(&["deploy", "prod", "--yes"]).spawn();
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("deploy hangs on a FIFO in the site");
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let out = crate::util::Done::from("deploy".into(), child.wait_with_output().unwrap());
    assert_eq!(out.code, 3, "{}", out.all());
    out.mentions(&["pipe", "FIFO"]);
    assert!(!store.exists());
}

#[test]
fn numbers_are_range_checked() {
    let tmp = tempfile::tempdir().unwrap();
    for (limits, key) in [
        ("max_delete_share = nan", "max_delete_share"),
        ("max_delete_share = 1.5", "max_delete_share"),
        ("max_delete_share = -0.1", "max_delete_share"),
        ("max_delete_share = inf", "max_delete_share"),
    ] {
        let p = Project::new(
            tmp.path(),
            &tmp.path().join("store"),
            &format!("[limits]\n{limits}\n"),
        );
        p.write("index.html", "x");
        p.cmd(&["plan", "prod"]).expect(2).mentions(&[key, "0"]);
    }
    let p = Project::new(
        tmp.path(),
        &tmp.path().join("store"),
        "cdn = { cloudfront = \"E1\", wildcard_threshold = 0 }\n",
    );
    p.cmd(&["plan", "prod"])
        .expect(2)
        .mentions(&["wildcard_threshold"]);
}

#[test]
fn a_site_holding_the_system_home_or_repository_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("proj")).unwrap();
    for (site, dir, why) in [
        ("/", home.join("proj"), "file system"),
        (home.to_str().unwrap(), home.join("proj"), "home directory"),
        ("..", home.join("proj"), "home directory"),
    ] {
        std::fs::write(
            dir.join("driftless.toml"),
            format!(
                "site = \"{site}\"\n[env.prod]\nstore = \"file://{}/store\"\n",
                tmp.path().display()
            ),
        )
        .unwrap();
        Run::new(&dir, &["plan", "prod"])
            .env("HOME", home.to_str().unwrap())
            .expect(2)
            .mentions(&["site", why]);
    }
    // The repository the config lives in (it holds .git) is not a build directory.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("index.html"), "x").unwrap();
    std::fs::write(
        repo.join("driftless.toml"),
        format!(
            "site = \".\"\n[env.prod]\nstore = \"file://{}/s2\"\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    Run::new(&repo, &["plan", "prod"])
        .expect(2)
        .mentions(&["site", ".git"]);
    assert!(!tmp.path().join("store").exists() && !tmp.path().join("s2").exists());
}

#[test]
fn a_key_longer_than_s3_allows_is_refused_at_plan_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "x");
    // 5 directories of 220 bytes: every segment fits a file system, the key does not.
    let seg = "d".repeat(220);
    let long = format!("{seg}/{seg}/{seg}/{seg}/{seg}/page.html");
    p.write(&long, "deep");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["[site]", "1024"]);
    assert!(!store.exists(), "objects were written before the refusal");
}

// --- 13. configuration errors name the key ----------------------------------------------

#[test]
fn configuration_errors_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "x").unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "site = \"site\"\n[env.prod]\nstore = \"file://s\"\nurl = \"ftp://example.com\"\n",
            &["env.prod.url", "http"],
        ),
        (
            "site = \"site\"\n[env.prod]\nstore = \"file://s\"\nregion = eu-west-1\n",
            &["driftless.toml:4:", "quotes", "\"eu-west-1\""],
        ),
        (
            "site = \"site\"\n[env.prod]\nregion = \"eu-west-1\"\n",
            &["env.prod", "store"],
        ),
        (
            "site = \"site\"\n[env.prod]\nstore = \"file://s\"\n[edge]\nnot_found = \"404.html\"\n",
            &["edge.not_found", "404.html", "not in the build"],
        ),
        (
            "site = \"site\"\n[env.prod]\nstore = \"file://s\"\n[[features]]\nname = \"checkout\"\nfile = \"checkout.html\"\ncontains = \"pay\"\n",
            &["features", "checkout.html", "not in the build"],
        ),
    ];
    for (config, needles) in cases {
        std::fs::write(dir.join("driftless.toml"), config).unwrap();
        let out = Run::new(dir, &["plan", "prod"]).run();
        assert!(out.code == 2 || out.code == 3, "{config}\n{}", out.all());
        out.mentions(needles);
    }
    assert!(!dir.join("s").exists());
}

// --- 14. small ones ----------------------------------------------------------------------

#[test]
fn plan_without_an_environment_uses_the_only_one_or_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "x");
    p.cmd(&["plan"]).expect(0).mentions(&["prod"]);
    std::fs::write(
        p.dir.join("driftless.toml"),
        "site = \"site\"\n[env.prod]\nstore = \"file://a\"\n[env.staging]\nstore = \"file://b\"\n",
    )
    .unwrap();
    p.cmd(&["deploy", "--yes"])
        .expect(2)
        .mentions(&["prod", "staging"]);
}

#[test]
fn log_limit_zero_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "x");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["log", "prod", "--limit", "0"])
        .expect(2)
        .mentions(&["--limit"]);
}

#[test]
fn every_argument_has_help() {
    let out = Run::new(Path::new("."), &["--help"]).expect(0);
    let commands: Vec<String> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 15, "{commands:?}");
    for c in commands {
        let help = Run::new(Path::new("."), &[&c, "--help"]).expect(0).stdout;
        let mut section = "";
        let lines: Vec<&str> = help.lines().collect();
        for (i, &line) in lines.iter().enumerate() {
            if line.ends_with(':') && !line.starts_with(' ') {
                section = line;
                continue;
            }
            let arg = line.trim_start();
            if (section == "Arguments:" || section == "Options:")
                && (arg.starts_with(['-', '<'])
                    || (arg.starts_with('[')
                        && arg[1..].starts_with(|c: char| c.is_ascii_uppercase())))
            {
                let (_, rest) = line.trim_start().split_once("  ").unwrap_or(("", ""));
                // A command with a long description puts each help text on the next
                // line, indented deeper.
                let next = lines.get(i + 1).copied().unwrap_or("");
                let below = next.len() - next.trim_start().len()
                    > line.len() - line.trim_start().len()
                    && !next.trim().is_empty();
                assert!(
                    !rest.trim().is_empty() || below,
                    "`driftless {c}`: {:?} has no help text\n{help}",
                    line.trim()
                );
            }
        }
    }
}

#[test]
fn hold_is_instant_and_rollback_mentions_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // No terminal, no --yes: a stop sign still goes up at once.
    p.cmd(&["hold", "prod", "--reason", "incident"]).expect(0);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["ON HOLD", "incident"]);
    let r = p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    r.mentions(&["on hold", "incident"]);
    assert_eq!(site_files(&store), files(&[("index.html", "1")]));
}

#[test]
fn a_no_op_plan_shows_no_new_release() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let out = p.cmd(&["plan", "prod"]).expect(0);
    out.mentions(&["Nothing to do"]);
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("new ")),
        "{}",
        out.stdout
    );
}

#[test]
fn rollback_proof_block_labels_sides_by_release() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, store) = project(&tmp);
    p.write("index.html", "1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let first = head(&store);
    p.write("index.html", "2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let second = head(&store);
    let out = p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    let text = out.stdout.clone();
    let block: Vec<&str> = text.lines().filter(|l| l.contains("sha256")).collect();
    assert!(
        block.iter().any(|l| l.contains(&first)) && block.iter().any(|l| l.contains(&second)),
        "sides not labelled by release id:\n{text}"
    );
    assert!(
        !block.iter().any(|l| l.trim_start().starts_with("local")),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn broken_symlinks_and_loops_get_one_clean_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, _store) = project(&tmp);
    p.write("index.html", "x");
    let site = p.dir.join("site");
    std::os::unix::fs::symlink(site.join("nowhere.html"), site.join("dangling.html")).unwrap();
    std::fs::create_dir(site.join("loop")).unwrap();
    std::os::unix::fs::symlink(site.join("loop"), site.join("loop/again")).unwrap();
    let out = p.cmd(&["plan", "prod"]).expect(3);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("[site]"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("dangling.html") && l.contains("broken symlink")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("loop/again") && l.contains("loop")),
        "{lines:?}"
    );
    for l in lines {
        assert!(
            !l.contains("File system loop found: File system loop"),
            "{l}"
        );
    }
}

#[test]
fn the_dirty_flag_ignores_driftless_state_and_files_outside_the_project() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let store = tmp.path().join("store");
    let p = Project::new(&repo.join("web"), &store, "");
    p.write("index.html", "x");
    std::fs::write(repo.join("web/.gitignore"), "").unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    // Untracked files outside the project (a sibling in the monorepo) and driftless's own
    // state (the hash cache, bases) must not mark the build dirty.
    std::fs::write(repo.join("scratch.txt"), "elsewhere").unwrap();
    let j = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(j["plan"]["git"]["dirty"], false, "{}", j["plan"]["git"]);
    p.write("index.html", "y");
    let j = p.cmd(&["plan", "prod", "--json"]).expect(0).json();
    assert_eq!(j["git"]["dirty"], true, "a changed site file must be dirty");
}

// --- 9. network and credential errors are one clean line ---------------------------------

#[test]
fn network_and_credential_errors_are_one_clean_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "x").unwrap();
    let closed = crate::serve::free_port();
    let clean = |out: &crate::util::Done| {
        let err = out.stderr.trim();
        for junk in [
            "DispatchFailure",
            "ConnectorError",
            "Attempted:",
            "source:",
            "{",
        ] {
            assert!(!err.contains(junk), "SDK debug text leaked: {err}");
        }
        assert!(err.lines().count() <= 3, "not one clean error: {err}");
    };
    // Nothing listens: the endpoint is named, with the cause.
    std::fs::write(
        dir.join("driftless.toml"),
        format!("site = \"site\"\n[env.prod]\nstore = \"s3://bucket\"\nendpoint = \"http://127.0.0.1:{closed}\"\n"),
    )
    .unwrap();
    let s = crate::servers::servers();
    let out = Run::new(dir, &["plan", "prod"])
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .run();
    assert_eq!(out.code, 1, "{}", out.all());
    out.mentions(&[
        "cannot reach",
        &format!("127.0.0.1:{closed}"),
        "connection refused",
    ]);
    clean(&out);

    // The server is up but there are no credentials: say so, not "cannot reach".
    let bucket = s.bucket(&s.seaweedfs);
    std::fs::write(
        dir.join("driftless.toml"),
        format!(
            "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}\"\nendpoint = \"{}\"\n",
            s.seaweedfs
        ),
    )
    .unwrap();
    let out = Run::new(dir, &["plan", "prod"])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .run();
    assert_eq!(out.code, 1, "{}", out.all());
    out.mentions(&["no AWS credentials", "AWS_PROFILE"]);
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
    clean(&out);
}
