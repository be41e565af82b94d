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

/// Regression (issue 20.9): `serve` read whole files into memory (a 100-byte range of a
/// 1 GiB file took 1 GB). Files and ranges are streamed; an ETag is sent and
/// `If-None-Match` answered with 304 — for a release (strong: its SHA-256) and for a
/// directory (weak). Memory is read from /proc: a test of memory, not of time.
#[test]
fn serve_streams_files_and_ranges_and_answers_if_none_match() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("work"), &store, "");
    big_site(&p);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    /// Status, lower-cased head, and the body's length (the body itself is dropped).
    fn get(port: u16, path: &str, extra: &str) -> (u16, String, u64) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{extra}\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            len += n as u64;
        }
        (status, head, len)
    }
    fn peak_kib(pid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
    let header = |head: &str, name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(": "))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_owned())
    };

    for (target, strong) in [("prod", true), ("site", false)] {
        let port = crate::serve::free_port();
        let server = crate::serve::serve(&p, target, port);
        let (status, head, len) = get(port, "/big.bin", "Range: bytes=0-99\r\n");
        assert_eq!((status, len), (206, 100), "{target}: {head}");
        assert_eq!(
            header(&head, "content-range").as_deref(),
            Some("bytes 0-99/1073741824")
        );
        let (status, head, len) = get(port, "/big.bin", "");
        assert_eq!((status, len), (200, 1 << 30), "{target}: {head}");
        let etag = header(&head, "etag").unwrap_or_else(|| panic!("{target}: no etag: {head}"));
        assert_eq!(etag.starts_with("W/"), !strong, "{target}: {etag}");
        let (status, head, len) = get(port, "/big.bin", &format!("If-None-Match: {etag}\r\n"));
        assert_eq!((status, len), (304, 0), "{target}: {head}");
        assert_eq!(get(port, "/big.bin", "If-None-Match: \"other\"\r\n").0, 200);
        let kib = peak_kib(server.pid());
        assert!(
            kib < BOUND_KIB,
            "{target}: serving a 1 GiB file took {} MiB of RAM (bound {} MiB)",
            kib / 1024,
            BOUND_KIB / 1024
        );
        eprintln!("serve {target}: peak RSS {} MiB", kib / 1024);
    }
}
