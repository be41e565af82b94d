//! `gc` and `yank` on SeaweedFS, checked with the AWS CLI: exactly the releases outside
//! the window are collected, every retained release still rolls back byte for byte, the
//! bytes freed are the ones the proof block announced, a deploy or rollback racing gc
//! never ends with a restorable release missing a byte, and a yanked secret is gone
//! from every object of the bucket.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::s3::{PREFIX, bucket_site, config};
use crate::servers::{Servers, servers};
use crate::util::{Done, Project};

type Site = BTreeMap<String, Vec<u8>>;

/// Removed assets go at once here (skew protection has its own tests).
fn project(s: &Servers, dir: &std::path::Path, bucket: &str, retention: &str) -> Project {
    Project::with_config(
        dir,
        &format!(
            "{}\n[retention]\nremoved_grace = \"0s\"\n{retention}",
            config(&s.seaweedfs, bucket)
        ),
    )
    .envs(s.env())
}

/// The bucket's site is `expected`, byte for byte (differences named by key).
fn assert_site(s: &Servers, bucket: &str, expected: &Site, what: &str) {
    let actual = bucket_site(s, &s.seaweedfs, bucket);
    let differ: Vec<&String> = actual
        .keys()
        .chain(expected.keys())
        .filter(|k| actual.get(*k) != expected.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: the bucket differs at {differ:?}"
    );
}

/// Release `i` of the site: a page, a fingerprinted asset of its own, a file shared by
/// every release, and an image-sized file of its own (so packs hold several files).
fn write_release(p: &Project, i: usize) -> Site {
    for old in std::fs::read_dir(p.dir.join("site/assets"))
        .into_iter()
        .flatten()
        .flatten()
    {
        std::fs::remove_file(old.path()).unwrap();
    }
    let files = [
        ("index.html".to_owned(), format!("<h1>home {i}</h1>")),
        (
            format!("assets/app-{i:04}.js"),
            format!("console.log({i});"),
        ),
        ("shared.css".to_owned(), "body { margin: 0 }".to_owned()),
        ("data.bin".to_owned(), format!("{i}").repeat(20_000)),
    ];
    for (k, v) in &files {
        p.write(k, v);
    }
    files
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect()
}

/// Sizes of the state objects under `dir/` (e.g. "packs"), listed with the AWS CLI.
fn state_bytes(s: &Servers, bucket: &str) -> BTreeMap<String, u64> {
    let out = s.aws(
        &s.seaweedfs,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--prefix",
            &format!("{PREFIX}/.driftless/"),
        ],
    );
    let doc: serde_json::Value = if out.stdout.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut by_dir = BTreeMap::new();
    for o in doc["Contents"].as_array().into_iter().flatten() {
        let key = o["Key"].as_str().unwrap();
        let rest = key.trim_start_matches(&format!("{PREFIX}/.driftless/"));
        let dir = rest.split('/').next().unwrap().to_owned();
        *by_dir.entry(dir).or_insert(0) += o["Size"].as_u64().unwrap();
    }
    by_dir
}

fn history(p: &Project) -> Vec<serde_json::Value> {
    p.cmd(&["--json", "log", "prod", "--limit", "1000"])
        .expect(0)
        .json()["releases"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn gc_keeps_exactly_the_window_and_frees_what_it_announced() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &bucket, "keep_releases = 3\n");
    let mut sites: Vec<(String, Site)> = Vec::new();
    for i in 1..=10 {
        let site = write_release(&p, i);
        let id = p
            .cmd(&[
                "--json",
                "deploy",
                "prod",
                "--yes",
                "-m",
                &format!("release {i}"),
            ])
            .expect(0)
            .release_id();
        sites.push((id, site));
    }
    assert_site(s, &bucket, &sites[9].1, "release 10");
    let before = state_bytes(s, &bucket);

    let done = p.cmd(&["--json", "gc", "prod", "--yes"]).expect(0);
    let doc = done.json();
    let plan = &doc["plan"];
    let announced: u64 = ["records", "snapshots"]
        .iter()
        .flat_map(|k| plan[k].as_array().unwrap())
        .map(|p| p["size"].as_u64().unwrap())
        .sum();
    // Six releases' own packs (release 1's also holds shared.css: it stays whole).
    assert!(announced > 6 * 20_000, "{plan}");
    assert_eq!(plan["shared_packs"], 4, "{plan}");
    assert_eq!(doc["freed"], announced, "{doc}");
    let after = state_bytes(s, &bucket);
    let measured: u64 = ["releases", "packs", "objects"]
        .iter()
        .map(|d| before.get(*d).copied().unwrap_or(0) - after.get(*d).copied().unwrap_or(0))
        .sum();
    assert_eq!(measured, announced, "before {before:?}\nafter {after:?}");

    // Exactly the 7 oldest are collected; log still lists them, marked.
    let log = history(&p);
    assert_eq!(log.len(), 10);
    for (n, r) in log.iter().enumerate() {
        let expected_id = &sites[9 - n].0;
        assert_eq!(r["id"], *expected_id);
        assert_eq!(r["restorable"], n < 3, "{r}");
        if n >= 3 {
            assert_eq!(r["retired"]["how"], "collected", "{r}");
        }
    }
    p.cmd(&["log", "prod", "--limit", "4"])
        .expect(0)
        .mentions(&["(collected)", "cannot be rolled back to"]);
    // The live site was not touched.
    assert_site(s, &bucket, &sites[9].1, "live after gc");

    // Every retained release rolls back byte for byte; a collected one is refused.
    for (id, site) in [&sites[8], &sites[7], &sites[9]] {
        p.cmd(&["rollback", "prod", "--to", id, "--yes"]).expect(0);
        assert_site(s, &bucket, site, id);
    }
    p.cmd(&["rollback", "prod", "--to", &sites[6].0, "--yes"])
        .expect(3)
        .mentions(&[
            "collected by `driftless gc`",
            "can no longer be restored",
            "driftless log prod",
        ]);
    // The three rollbacks pushed releases 8–10 out of the window: a second gc takes
    // them (never a release twice), but not their bytes, which the rollbacks serve.
    let again = p.cmd(&["--json", "gc", "prod", "--yes"]).expect(0).json();
    let ids: Vec<&str> = again["plan"]["collect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&sites[9].0, &sites[8].0, &sites[7].0], "{again}");
    assert_eq!(again["plan"]["snapshots"], serde_json::json!([]), "{again}");
    assert_site(s, &bucket, &sites[9].1, "live after the second gc");
}

/// Rounds of a deploy (or a rollback) started together with `gc --keep 2`: whichever
/// wins the lock, no release `log` calls restorable ever misses a byte, and every run
/// that succeeds leaves exactly the site it announced.
#[test]
fn gc_racing_deploys_and_rollbacks_never_loses_a_restorable_release() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &bucket, "");
    let mut sites: BTreeMap<String, Site> = BTreeMap::new();
    let site = write_release(&p, 0);
    let id = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    sites.insert(id, site);
    let (mut landed, mut collected) = (0, 0);
    // Rounds go on until both sides have won often enough (who wins the lock is the
    // machine's timing, never the test's to assume), at most 40.
    let mut round = 0;
    while round < 40 && (round < 12 || landed < 3 || collected < 3) {
        round += 1;
        // Odd rounds deploy a new version; even rounds roll back to the oldest
        // release log calls restorable (the one gc is about to take).
        let (writer, wanted) = if round % 2 == 1 {
            let site = write_release(&p, round);
            // (After the rollbacks below, this working copy's base is behind: forced.)
            let deploy = [
                "--json",
                "deploy",
                "prod",
                "--yes",
                "--force",
                "stale-base",
                "--force",
                "revert",
            ];
            (p.cmd(&deploy).spawn(), Some(site))
        } else {
            let log = history(&p);
            let oldest = log.iter().rev().find(|r| r["restorable"] == true).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let wanted = sites[&oldest].clone();
            (
                p.cmd(&["--json", "rollback", "prod", "--to", &oldest, "--yes"])
                    .spawn(),
                Some(wanted),
            )
        };
        std::thread::sleep(Duration::from_millis(40 * (round % 5) as u64));
        let gc = p
            .cmd(&["--json", "gc", "prod", "--keep", "2", "--yes"])
            .spawn();
        let w = Done::from("writer".into(), writer.wait_with_output().unwrap());
        let g = Done::from("gc".into(), gc.wait_with_output().unwrap());
        assert!([0, 3].contains(&w.code), "round {round}: {}", w.all());
        assert!([0, 3].contains(&g.code), "round {round}: {}", g.all());
        if g.code == 0 {
            collected += 1;
        }
        if w.code == 3 {
            let why = w.stderr.lines().last().unwrap_or_default().to_owned();
            eprintln!("round {round}: writer refused: {why}");
        }
        if w.code == 0 && w.json()["result"] != "no-op" {
            landed += 1;
            let id = w.release_id();
            let site = wanted.unwrap();
            assert_site(s, &bucket, &site, &format!("round {round}: release {id}"));
            sites.insert(id, site);
        }
        // Every restorable release still restores: rolled back to, byte for byte.
        let log = history(&p);
        let live = log[0]["id"].as_str().unwrap().to_owned();
        let restorable: Vec<&serde_json::Value> =
            log.iter().filter(|r| r["restorable"] == true).collect();
        // Oldest first, ending with live's own content again.
        for r in restorable.iter().skip(1).rev().chain(restorable.first()) {
            let id = r["id"].as_str().unwrap();
            let done = p
                .cmd(&["--json", "rollback", "prod", "--to", id, "--yes"])
                .expect(0);
            if done.json()["result"] == "no-op" {
                continue; // the same bytes as live
            }
            assert_site(
                s,
                &bucket,
                &sites[id],
                &format!("round {round}: restorable release {id}"),
            );
            sites.insert(done.release_id(), sites[id].clone());
        }
        assert!(
            sites.contains_key(&live),
            "round {round}: live {live} is unknown"
        );
    }
    // Whoever loses the lock is refused (exit 3, nothing changed); both must have won
    // often enough for the rounds to mean something.
    eprintln!("{landed} writers and {collected} gc runs of {round} landed");
    assert!(landed >= 3, "only {landed} of {round} writers landed");
    assert!(collected >= 3, "only {collected} of {round} gc runs landed");
}

#[test]
fn a_yanked_secret_is_gone_from_the_bucket_and_its_release_refused() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &bucket, "");
    let secret = format!("API_KEY=sk-{}", crate::servers::uniq());
    let grep = |what: &str| -> Vec<String> {
        s.download(&s.seaweedfs, &format!("s3://{bucket}"), &[])
            .into_iter()
            .filter(|(_, v)| v.windows(what.len()).any(|w| w == what.as_bytes()))
            .map(|(k, _)| k)
            .collect()
    };

    let r1 = write_release(&p, 1);
    let id1 = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    // Release 2 ships the secret, with a page that release 3 keeps (same pack).
    p.write("index.html", "<h1>home 2</h1>")
        .write("secret.txt", &secret);
    let id2 = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    p.remove("secret.txt");
    let id3 = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    let r3 = bucket_site(s, &s.seaweedfs, &bucket);
    assert!(
        !grep(&secret).is_empty(),
        "the test did not leak the secret"
    );

    // The live release cannot be yanked; a release that never was live is unknown.
    p.cmd(&["yank", "prod", &id3, "--reason", "x", "--yes"])
        .expect(3)
        .mentions(&["is live on prod", "first"]);
    let done = p
        .cmd(&[
            "--json",
            "yank",
            "prod",
            &id2,
            "--reason",
            "committed the API key",
            "--yes",
        ])
        .expect(0);
    let doc = done.json();
    assert_eq!(
        doc["yank"]["removed"],
        serde_json::json!(["secret.txt"]),
        "{doc}"
    );
    assert_eq!(
        grep(&secret),
        Vec::<String>::new(),
        "the secret is still in the bucket"
    );

    p.cmd(&["rollback", "prod", "--to", &id2, "--yes"])
        .expect(3)
        .mentions(&[
            "yanked by",
            "committed the API key",
            "can no longer be restored",
        ]);
    p.cmd(&["log", "prod"])
        .expect(0)
        .mentions(&["(yanked)", "committed the API key"]);
    // Regression (issue 20.11): a diff against it says it was yanked, by whom and why.
    p.cmd(&["diff", "prod", "--against", &id2])
        .expect(2)
        .mentions(&["was yanked by", "committed the API key", "files are gone"]);
    // The other releases still roll back byte for byte (release 2's page came from
    // the rewritten pack).
    p.cmd(&["rollback", "prod", "--to", &id1, "--yes"])
        .expect(0);
    assert_site(s, &bucket, &r1, "release 1");
    p.cmd(&["rollback", "prod", "--to", &id3, "--yes"])
        .expect(0);
    assert_site(s, &bucket, &r3, "release 3");
    p.cmd(&["yank", "prod", &id2, "--reason", "again", "--yes"])
        .expect(3)
        .mentions(&["already yanked"]);
}

/// A rollback that planned before gc took its target's bytes, and takes the lock after:
/// refused under the lock (exit 3, nothing changed), never a half-restored site.
#[test]
fn a_rollback_planned_before_gc_collected_its_target_is_refused() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let p = project(s, tmp.path(), &bucket, "");
    let mut ids = Vec::new();
    for i in 1..=3 {
        write_release(&p, i);
        ids.push(
            p.cmd(&["--json", "deploy", "prod", "--yes"])
                .expect(0)
                .release_id(),
        );
    }
    let live = bucket_site(s, &s.seaweedfs, &bucket);
    // The rollback plans (release 1 is restorable then) and stops before the lock.
    let rollback = p
        .cmd(&["rollback", "prod", "--to", &ids[0], "--yes"])
        .env("DRIFTLESS_FAILPOINT", "before-lock:wait")
        .spawn();
    let mark = crate::util::wait_for_failpoint(rollback.id());
    p.cmd(&["gc", "prod", "--keep", "1", "--yes"]).expect(0);
    std::fs::remove_file(&mark).unwrap();
    let done = Done::from("rollback".into(), rollback.wait_with_output().unwrap());
    assert_eq!(done.code, 3, "{}", done.all());
    done.mentions(&["collected by `driftless gc`", "can no longer be restored"]);
    assert_site(s, &bucket, &live, "live after the refused rollback");
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["none: the store matches the live release"]);
}

/// A promotion that found its content already in production's snapshots (so sent
/// nothing), and takes the lock after production's gc collected that content: refused
/// under the lock, never a release referencing bytes that are gone.
#[test]
fn a_promotion_whose_content_gc_collected_meanwhile_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (staging, prod) = (tmp.path().join("staging"), tmp.path().join("prod"));
    let config = format!(
        // In place: on an atomic store `gc` keeps the release the idle slot holds too
        // (atomic::a_release_goes_live_by_one_pointer_write…).
        "site = \"site\"\n[retention]\nremoved_grace = \"0s\"\n[env.staging]\nstore = \"file://{}\"\n[env.prod]\nstore = \"file://{}\"\nlayout = \"in-place\"\npromote_from = \"staging\"\n",
        staging.display(),
        prod.display()
    );
    let p = Project::with_config(tmp.path(), &config);
    let promote = [
        "promote",
        "staging",
        "prod",
        "--yes",
        "--force",
        "unverified",
    ];
    p.write("index.html", "<h1>A</h1>")
        .write("a.txt", "only in A");
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    p.cmd(&promote).expect(0);
    p.write("index.html", "<h1>B</h1>").remove("a.txt");
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    p.cmd(&promote).expect(0);
    // Staging serves A again: production's snapshots still hold its bytes.
    p.write("index.html", "<h1>A</h1>")
        .write("a.txt", "only in A");
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    let before = crate::util::site_files(&prod);

    let run = p
        .cmd(&promote)
        .env("DRIFTLESS_FAILPOINT", "before-lock:wait")
        .spawn();
    let mark = crate::util::wait_for_failpoint(run.id());
    p.cmd(&["gc", "prod", "--keep", "1", "--yes"])
        .expect(0)
        .mentions(&["collect   1 release(s)"]);
    std::fs::remove_file(&mark).unwrap();
    let done = Done::from("promote".into(), run.wait_with_output().unwrap());
    assert_eq!(done.code, 3, "{}", done.all());
    done.mentions(&["no longer in the snapshots", "nothing was changed"]);
    assert_eq!(crate::util::site_files(&prod), before, "prod changed");
    // Run again, it sends the bytes and lands.
    p.cmd(&promote).expect(0);
    assert_eq!(
        std::fs::read_to_string(prod.join("a.txt")).unwrap(),
        "only in A"
    );
}
