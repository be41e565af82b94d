//! Memory at scale (issue 10): a file is streamed, never held in memory whole. Peak RSS is
//! read with GNU time — a test of memory, not of time.

use std::path::Path;

use crate::servers::servers;
use crate::util::{Project, peak_rss};

/// A site with a 1 GiB sparse file (no disk blocks, a billion bytes to hash and send).
fn big_site(p: &Project) {
    p.write("index.html", "<a href=\"big.bin\">big</a>");
    let f = std::fs::File::create(p.dir.join("site/big.bin")).unwrap();
    f.set_len(1 << 30).unwrap();
}

/// The bound: far below the file, a little above what driftless needs for a small site.
const BOUND_KIB: u64 = 96 * 1024;

fn deploy_within_bound(p: &Project, what: &str) {
    let (done, rss) = peak_rss(p, &["deploy", "prod", "--yes"]);
    assert_eq!(done.code, 0, "{what}: {}", done.all());
    assert!(
        rss < BOUND_KIB,
        "{what}: a 1 GiB file took the deploy to {} MiB of RAM (bound {} MiB)",
        rss / 1024,
        BOUND_KIB / 1024
    );
    eprintln!("{what}: peak RSS {} MiB", rss / 1024);
}

#[test]
fn a_1gib_file_is_streamed_on_the_local_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("work"), &store, "");
    big_site(&p);
    deploy_within_bound(&p, "local store");
    let served = std::fs::metadata(store.join("big.bin")).unwrap().len();
    assert_eq!(served, 1 << 30);
    assert_no_leftovers(&p.dir);
}

#[test]
fn a_1gib_file_is_streamed_to_s3() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::servers::Servers::prod_config(&s.seaweedfs, &format!("{bucket}/www"));
    let p = Project::with_config(tmp.path(), &config).envs(s.env());
    big_site(&p);
    deploy_within_bound(&p, "SeaweedFS");
    let head = s.head_object(&s.seaweedfs, &bucket, "www/big.bin");
    assert_eq!(head["ContentLength"], 1u64 << 30, "{head}");
    assert_no_leftovers(&p.dir);
}

/// Staging files are gone once the deploy is done.
fn assert_no_leftovers(project: &Path) {
    let tmp = project.join(".driftless/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging files left behind: {left:?}");
}

/// A one-file change of a large site writes a small release record, prints a short proof
/// block and a small JSON document; a first deploy's proof block is grouped, not a line
/// per file.
#[test]
fn a_one_file_change_of_a_large_site_stays_small() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(
        &tmp.path().join("work"),
        &store,
        "[limits]\nmax_deletes = 10000\n",
    );
    for i in 0..3000 {
        p.write(
            &format!("section{}/page{i}.html", i % 30),
            &format!("<p>page {i}</p>"),
        );
    }
    let first = p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert!(
        first.stdout.lines().count() < 120,
        "a 3000-file first deploy printed {} lines",
        first.stdout.lines().count()
    );
    first.mentions(&["3000 files in 30 directories", "--full"]);
    let full = p.cmd(&["plan", "prod", "--full"]).expect(0);
    full.mentions(&["Nothing to do"]);

    p.write("section7/page7.html", "<p>page 7, changed</p>");
    let out = p.cmd(&["deploy", "prod", "--yes", "--json"]).expect(0);
    assert!(
        out.stdout.len() < 16 * 1024,
        "--json of a one-file deploy is {} bytes",
        out.stdout.len()
    );
    let id = out.release_id();
    let record = std::fs::metadata(store.join(format!(".driftless/releases/{id}.json")))
        .unwrap()
        .len();
    assert!(record < 2048, "a one-file release record is {record} bytes");
    // The whole manifest is there with --full.
    p.write("section7/page7.html", "<p>page 7, changed again</p>");
    let doc = p
        .cmd(&["plan", "prod", "--json", "--full"])
        .expect(0)
        .json();
    assert_eq!(doc["manifest"].as_object().unwrap().len(), 3000);
}

/// Interrupted while content was uploaded to S3 (packs written), the re-run sends none
/// of it again.
#[cfg(unix)]
#[test]
fn a_resumed_deploy_to_s3_uploads_nothing_twice() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::servers::Servers::prod_config(&s.seaweedfs, &bucket);
    let p = Project::with_config(tmp.path(), &config).envs(s.env());
    for i in 0..300 {
        p.write(&format!("p{i}.html"), &format!("page {i}"));
    }
    let out = crate::crash::interrupt_at(&p, "after-objects");
    assert_eq!(out.code, 130, "{}", out.all());
    let resumed = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(resumed["transfer"]["objects_uploaded"], 0, "{resumed}");
    assert_eq!(resumed["transfer"]["objects_present"], 300, "{resumed}");
}
