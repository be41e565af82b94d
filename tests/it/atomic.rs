//! The atomic layout (issue 22): a release is written into the slot nothing serves and
//! made live by one pointer write; what a web server rooted at `current` and `serve`
//! answer is always wholly one release.

use std::collections::BTreeMap;
use std::path::Path;

use crate::serve::{free_port, get, serve};
use crate::util::{Project, files, tree};

/// What a web server rooted at the store's `current` serves.
fn served(store: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(&store.join("current"), &[])
}

/// The slot and release a KeyValueStore pointer names (it carries the rules too).
fn slot_release(p: &serde_json::Value) -> (String, String) {
    assert!(p["e"].is_object(), "the pointer carries no rules: {p}");
    (
        p["slot"].as_str().unwrap().to_owned(),
        p["release"].as_str().unwrap().to_owned(),
    )
}

fn pointer(store: &Path) -> String {
    std::fs::read_link(store.join("current"))
        .unwrap()
        .display()
        .to_string()
}

/// Modification times of every file under `dir` (a write would change one).
fn mtimes(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    tree(dir, &[])
        .keys()
        .map(|k| {
            (
                k.clone(),
                std::fs::metadata(dir.join(k)).unwrap().modified().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_release_goes_live_by_one_pointer_write_and_rollback_writes_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    p.write("index.html", "v1").write("app.css", "css v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(pointer(&store), "slots/a");
    let v1 = files(&[("index.html", "v1"), ("app.css", "css v1")]);
    assert_eq!(served(&store), v1);
    // Nothing of the site is written where the slots are not.
    let top: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".driftless"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(top, ["current", "slots"]);
    for f in ["index.html", "app.css"] {
        let perms = std::fs::metadata(store.join("current").join(f))
            .unwrap()
            .permissions();
        assert!(perms.readonly(), "{f}: a served file is writable");
    }

    p.write("index.html", "v2").write("new.js", "new");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["slot b: 3 written"]);
    assert_eq!(pointer(&store), "slots/b");
    let v2 = files(&[
        ("index.html", "v2"),
        ("app.css", "css v1"),
        ("new.js", "new"),
    ]);
    assert_eq!(served(&store), v2);
    // The previous release stays whole in the other slot.
    assert_eq!(tree(&store.join("slots/a"), &[]), v1);

    let before = mtimes(&store.join("slots"));
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["layout"], "atomic");
    assert_eq!(status["pointer"]["slot"], "b");
    assert_eq!(status["pointer_matches_head"], true);
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(0)
        .mentions(&["slot a: 0 written, 0 removed, 2 already in place"]);
    assert_eq!(pointer(&store), "slots/a");
    assert_eq!(served(&store), v1);
    assert_eq!(
        mtimes(&store.join("slots")),
        before,
        "a rollback to the other slot's release wrote into a slot"
    );

    // gc keeps what the slots hold, whatever the window: going back stays one write.
    p.cmd(&["gc", "prod", "--keep", "1", "--yes"])
        .expect(0)
        .mentions(&["keep      2 release(s)"]);
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(0)
        .mentions(&["slot b: 0 written"]);
    assert_eq!(served(&store), v2);

    // The next deploy fills the idle slot with the difference only.
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes", "--force", "revert"])
        .expect(0)
        .mentions(&["slot a: 2 written, 0 removed, 1 already in place"]);
    assert_eq!(
        served(&store),
        files(&[
            ("index.html", "v3"),
            ("app.css", "css v1"),
            ("new.js", "new")
        ])
    );
}

const POINTS: [&str; 5] = [
    "after-pending",
    "after-assets",
    "after-release",
    "after-pointer",
    "after-head",
];

#[test]
fn a_killed_apply_never_shows_and_is_dropped_unless_the_pointer_moved() {
    for point in POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let p = Project::atomic(&tmp.path().join("w"), &store, "");
        p.write("index.html", "v1").write("app.css", "css v1");
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        p.write("index.html", "v2").write("app.css", "css v2");
        // The idle slot already held something: the killed run rewrites it.
        let killed = p
            .cmd(&["deploy", "prod", "--yes"])
            .env("DRIFTLESS_FAILPOINT", point)
            .run();
        assert_eq!(killed.signal, Some(9), "{point}: {}", killed.all());
        let v1 = files(&[("index.html", "v1"), ("app.css", "css v1")]);
        let v2 = files(&[("index.html", "v2"), ("app.css", "css v2")]);
        let switched = matches!(point, "after-pointer" | "after-head");
        assert_eq!(
            served(&store),
            if switched { v2.clone() } else { v1.clone() },
            "{point}: what is served is not wholly one release"
        );
        let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
        assert_eq!(
            status["pointer_matches_head"],
            point != "after-pointer",
            "{point}: {status}"
        );

        // A rollback now drops the unfinished apply instead of publishing it.
        if !switched {
            let r = p.cmd(&["rollback", "prod", "--yes"]).run();
            assert!(
                r.all().contains("Dropped an unfinished apply"),
                "{point}: {}",
                r.all()
            );
            assert!(
                !r.all().contains("is now live on prod: 2"),
                "{point}: the killed apply was published: {}",
                r.all()
            );
        }
        let again = p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        if point == "after-pointer" {
            again.mentions(&["Finished an interrupted apply"]);
        }
        assert_eq!(served(&store), v2, "{point}");
        let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
        assert!(status["pending"].is_null(), "{point}: {status}");
        assert_eq!(status["pointer_matches_head"], true, "{point}");
        assert_eq!(status["drift"].as_array().unwrap().len(), 0, "{point}");
    }
}

/// A small pseudo-random sequence (no extra crate for a test's dice).
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// A site of `n` pages and `n` assets, every file saying which version it belongs to.
fn write_version(p: &Project, v: usize, n: usize) {
    for i in 0..n {
        p.write(&format!("page{i}.html"), &format!("v{v} page {i}"));
        p.write(&format!("static/a{i}.css"), &format!("v{v} asset {i}"));
    }
}

/// The versions a served tree holds (one, unless it is a mix).
fn versions(t: &BTreeMap<String, Vec<u8>>) -> std::collections::BTreeSet<String> {
    t.values()
        .map(|b| {
            String::from_utf8_lossy(b)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// 30 deploys of `p`, each SIGKILLed at a random moment of the time a deploy takes;
/// after each, what `served` says visitors get must be wholly one release, complete.
fn random_kills(p: &Project, env: &str, n: usize, served: &dyn Fn() -> BTreeMap<String, Vec<u8>>) {
    write_version(p, 100, n);
    p.cmd(&["deploy", env, "--yes"]).expect(0);
    // How long a whole deploy of a new version takes here: the kills fall anywhere in it.
    write_version(p, 0, n);
    let started = std::time::Instant::now();
    p.cmd(&["deploy", env, "--yes"]).expect(0);
    let max_ms = u64::try_from(started.elapsed().as_millis())
        .unwrap()
        .max(50);
    eprintln!("a whole deploy takes {max_ms} ms");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut dice = Dice(seed);
    let (mut mixed, mut killed, mut incomplete, mut switched) = (0, 0, 0, 0);
    // Rounds go on until enough deploys were killed mid-run (where a kill lands is the
    // machine's timing: the test counts, it does not assume), at most 120.
    let mut round = 0;
    while round < 120 && (round < 30 || killed < 10) {
        round += 1;
        write_version(p, round, n);
        let mut child = p.cmd(&["deploy", env, "--yes"]).spawn_quiet();
        // Up to half again a clean deploy's time: a round also settles the previous
        // round's killed apply, and some kills must land after the switch.
        std::thread::sleep(std::time::Duration::from_millis(dice.next(max_ms * 3 / 2)));
        match child.try_wait().unwrap() {
            None => killed += 1,
            Some(st) if !st.success() => {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("round {round}: the deploy failed ({st}): {err}");
            }
            Some(_) => {}
        }
        let _ = child.kill();
        let _ = child.wait();
        let t = served();
        let v = versions(&t);
        if v.len() != 1 {
            mixed += 1;
            eprintln!("round {round}: a mix is served: {v:?}");
        } else if t.len() != 2 * n {
            incomplete += 1;
            eprintln!("round {round}: {} of {} files served", t.len(), 2 * n);
        } else if v.contains(&format!("v{round}")) {
            switched += 1;
        }
        // Status reads it; the next deploy (next round) drops or finishes it.
        p.cmd(&["status", env]).expect(0);
    }
    eprintln!(
        "{killed} of {round} deploys killed mid-run; {switched} of {round} left the new release served, the rest the one before; {mixed} mixed; {incomplete} incomplete"
    );
    assert!(
        killed >= 10,
        "too few deploys were killed mid-run ({killed}) to prove anything"
    );
    assert_eq!((mixed, incomplete), (0, 0));
    p.cmd(&["deploy", env, "--yes"]).expect(0);
    assert_eq!(versions(&served()).len(), 1);
}

#[test]
fn thirty_random_kills_never_leave_a_mix_served() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    random_kills(&p, "prod", 150, &|| served(&store));
}

/// The same on SeaweedFS: what a CloudFront function reading the pointer would serve is
/// the slot the pointer object names, read back with the AWS CLI.
#[test]
fn thirty_random_kills_on_seaweedfs_never_leave_a_mix_served() {
    let s = crate::servers::servers();
    let bucket = s.bucket(&s.seaweedfs);
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::s3::config(&s.seaweedfs, &bucket).replace(
        "region = \"us-east-1\"\n",
        "region = \"us-east-1\"\nlayout = \"atomic\"\n",
    );
    let p = Project::with_config(&tmp.path().join("w"), &config).envs(s.env());
    let pointed = || {
        let base = format!("s3://{bucket}/{}", crate::s3::PREFIX);
        let out = s.aws(&s.seaweedfs, &["s3", "cp", &format!("{base}/current"), "-"]);
        let slot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(slot == "a" || slot == "b", "pointer {slot:?}");
        s.download(&s.seaweedfs, &format!("{base}/slots/{slot}"), &[])
    };
    random_kills(&p, "prod", 100, &pointed);
}

/// The same behind CloudFront: the store on SeaweedFS, the pointer in a KeyValueStore
/// (moto), and what visitors get is what the published function answers, run in Node
/// against the bucket's keys and the pointer, for every page and asset.
#[test]
fn thirty_random_kills_behind_cloudfront_never_leave_a_mix_served() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.seaweedfs, "k");
    let (bucket, env) = (cf.bucket.clone(), cf.env.clone());
    let tmp = tempfile::tempdir().unwrap();
    let p = cf.project(&tmp.path().join("w"), &cf.config("atomic"));
    let n = 100;
    write_version(&p, 100, n);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let code: std::cell::OnceCell<String> = std::cell::OnceCell::new();
    let export = tmp.path().join("export");
    let paths: Vec<String> = (0..n)
        .flat_map(|i| [format!("/page{i}.html"), format!("/static/a{i}.css")])
        .collect();
    let through_function = || -> BTreeMap<String, Vec<u8>> {
        let code = code.get_or_init(|| {
            p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
                .expect(0);
            std::fs::read_to_string(export.join("function.js")).unwrap()
        });
        let pointer = rt.block_on(kvs.get("current")).unwrap().expect("a pointer");
        let slots: BTreeMap<String, Vec<u8>> = s
            .download(&s.seaweedfs, &format!("s3://{bucket}/www/slots"), &[])
            .into_iter()
            .map(|(k, b)| (format!("slots/{k}"), b))
            .collect();
        let bucket_keys: Vec<&String> = slots.keys().collect();
        let cases: Vec<serde_json::Value> = paths
            .iter()
            .map(|p| serde_json::json!({ "path": p }))
            .collect();
        let input = serde_json::json!({
            "code": code, "errors": [], "site": bucket_keys, "state": [],
            "kvs": { "current": pointer }, "cases": cases,
        });
        crate::edge::harness(&input)
            .into_iter()
            .zip(&paths)
            .filter(|(a, _)| a["status"] == 200)
            .map(|(a, path)| (path.clone(), slots[a["key"].as_str().unwrap()].clone()))
            .collect()
    };
    random_kills(&p, &env, n, &through_function);
}

/// Fingerprinted assets, as bundlers name them: a page's assets stay served (kept) after
/// the release that removed them, for pages still open.
const FINGERPRINTED: &str =
    "[[rules]]\nmatch = \"assets/**\"\ncache_control = \"public, max-age=31536000, immutable\"\n";

fn write_page_version(p: &Project, v: usize) {
    let name = format!("assets/app-{:08x}.js", 0x1000_0000 + v);
    p.write(
        "index.html",
        &format!("v{v} <script src=\"/{name}\"></script>"),
    );
    for old in std::fs::read_dir(p.dir.join("site/assets"))
        .into_iter()
        .flatten()
    {
        std::fs::remove_file(old.unwrap().path()).unwrap();
    }
    p.write(&name, &format!("v{v} app"));
}

/// A reader fetching a page and then its asset (each by `fetch`: a URL path → status and
/// body) in a loop during 20 deploys and 5 rollbacks of `env`: every asset a page names is
/// there and of the page's release. Returns the pages read.
fn reader_during_switches(
    p: &Project,
    env: &str,
    fetch: impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static,
) -> usize {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let read = std::sync::Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, read) = (stop.clone(), read.clone());
        std::thread::spawn(move || {
            let (mut pages, mut bad) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, page) = fetch("/index.html");
                assert_eq!(status, 200);
                let page = String::from_utf8(page).unwrap();
                let v = page.split_whitespace().next().unwrap().to_owned();
                let src = page.split('"').nth(1).unwrap().to_owned();
                let (status, asset) = fetch(&src);
                let asset = String::from_utf8_lossy(&asset).into_owned();
                if status != 200 || !asset.starts_with(&format!("{v} ")) {
                    bad.push(format!("{v}: {src} → {status} {asset:?}"));
                }
                pages += 1;
                read.fetch_add(1, Ordering::Relaxed);
            }
            (pages, bad)
        })
    };
    // Paced by the reader's progress, never by the clock: each switch waits until the
    // reader has read a few pages since the one before, however slow the machine.
    let read_a_few = || {
        let since = read.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        while read.load(Ordering::Relaxed) < since + 3 {
            assert!(
                !reader.is_finished(),
                "the reader stopped (see its panic below)"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(300),
                "the reader read nothing for 5 minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    read_a_few();
    for v in 1..=20 {
        write_page_version(p, v);
        // After a rollback, the next version undoes it on purpose.
        p.cmd(&["deploy", env, "--yes", "--force", "revert"])
            .expect(0);
        read_a_few();
        if v % 4 == 0 {
            p.cmd(&["rollback", env, "--yes"]).expect(0);
            read_a_few();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (pages, bad) = reader.join().unwrap();
    eprintln!(
        "{pages} pages read during 20 deploys and 5 rollbacks; {} bad",
        bad.len()
    );
    assert!(bad.is_empty(), "{bad:#?}");
    pages
}

/// A page and its assets fetched in a loop through `serve` while releases switch: every
/// asset a page names is there and of the page's release.
#[test]
fn a_reader_never_gets_a_page_with_an_asset_of_another_release() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, FINGERPRINTED);
    write_page_version(&p, 0);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let port = free_port();
    let _server = serve(&p, "prod", port);
    let pages = reader_during_switches(&p, "prod", move |path| {
        let (status, _, body) = get(port, path, "");
        (status, body)
    });
    assert!(
        pages > 50,
        "the reader read too little ({pages} pages) to prove anything"
    );
}

/// The same on S3 behind CloudFront: each request goes through the published function
/// (run in Node with the pointer read from the KeyValueStore at that moment), then to the
/// bucket (SeaweedFS) for the key it rewrote to.
#[test]
fn a_reader_through_the_function_never_gets_a_page_with_an_asset_of_another_release() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.seaweedfs, "r");
    let (bucket, env) = (cf.bucket.clone(), cf.env.clone());
    let tmp = tempfile::tempdir().unwrap();
    let p = cf.project(
        &tmp.path().join("w"),
        &(cf.config("atomic") + FINGERPRINTED),
    );
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    write_page_version(&p, 0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    let code = std::fs::read_to_string(export.join("function.js")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let store = rt.block_on(s.store(&s.seaweedfs, &bucket, "www"));
    // Regression (issue 34, smaller): the switches were spaced by the clock, and on a
    // loaded machine the reader fell behind ("read too little (1 pages)"); they wait
    // for the reader now.
    let pages = reader_during_switches(&p, &env, move |path| {
        use driftless::store::Store as _;
        let pointer = rt.block_on(kvs.get("current")).unwrap().expect("a pointer");
        let input = serde_json::json!({
            "code": code, "errors": [], "site": [], "state": [],
            "kvs": { "current": pointer }, "cases": [{ "path": path }],
        });
        let answer = &crate::edge::harness(&input)[0];
        let uri = answer["uri"]
            .as_str()
            .expect("the function passed the request on");
        let key = uri.trim_start_matches('/');
        match rt.block_on(store.get(key)).unwrap() {
            Some((_, body)) => (200, body.to_vec()),
            None => (404, Vec::new()),
        }
    });
    assert!(
        pages > 40,
        "the reader read too little ({pages} pages) to prove anything"
    );
}

#[test]
fn an_in_place_store_moves_to_the_atomic_layout_with_nothing_unserved() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = tmp.path().join("w");
    let p = Project::new(&dir, &store, "");
    p.write("index.html", "v1").write("app.css", "css v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let v1 = files(&[("index.html", "v1"), ("app.css", "css v1")]);
    assert_eq!(crate::util::site_files(&store), v1);

    // The config still says in place: refused, naming the line to change.
    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(3)
        .mentions(&["layout = \"in-place\""]);
    let config = std::fs::read_to_string(dir.join("driftless.toml"))
        .unwrap()
        .replace("layout = \"in-place\"\n", "");
    std::fs::write(dir.join("driftless.toml"), config).unwrap();
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["layout"], "in-place", "{status}");

    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(0)
        .mentions(&["2 object(s) copied", "--finish"]);
    // Both roots serve release 1: the old one (in place) and `current`.
    assert_eq!(served(&store), v1);
    assert_eq!(
        std::fs::read_to_string(store.join("index.html")).unwrap(),
        "v1"
    );
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["layout"], "atomic");
    assert_eq!(status["drift"].as_array().unwrap().len(), 0, "{status}");
    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(3)
        .mentions(&["already has the atomic layout"]);

    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["slot b"]);
    assert_eq!(
        served(&store),
        files(&[("index.html", "v2"), ("app.css", "css v1")])
    );
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(0)
        .mentions(&["slot a: 0 written"]);
    assert_eq!(served(&store), v1);

    p.cmd(&["migrate", "prod", "--layout", "atomic", "--finish", "--yes"])
        .expect(0)
        .mentions(&["removed 2 in-place"]);
    assert!(!store.join("index.html").exists());
    assert_eq!(served(&store), v1);
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["drift"].as_array().unwrap().len(), 0, "{status}");
}

#[test]
fn a_hand_edit_of_the_live_slot_is_drift_shown_by_diff_and_adoptable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    p.write("index.html", "v1\n").write("app.css", "css v1\n");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // Served files are read-only: an edit takes a deliberate chmod.
    let edited = store.join("current/index.html");
    let mut perms = std::fs::metadata(&edited).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test plays a person editing"
    )]
    perms.set_readonly(false);
    std::fs::set_permissions(&edited, perms).unwrap();
    std::fs::write(&edited, "hotfix\n").unwrap();

    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["drift"][0]["key"], "index.html", "{status}");
    p.cmd(&["diff", "prod", "--against", "store"])
        .expect(0)
        .mentions(&["+hotfix"]);
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["index.html"]);
    p.cmd(&["adopt", "prod", "--yes", "-m", "keep the hotfix"])
        .expect(0);
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["drift"].as_array().unwrap().len(), 0, "{status}");
    assert_eq!(status["pointer_matches_head"], true, "{status}");
}

/// The atomic layout behind CloudFront, on moto: the pointer is a key of the
/// environment's KeyValueStore (created and associated by `edge --apply`), the function
/// (run in Node against the bucket's keys and that key) serves the slot it names with the
/// release in the cache key, falls back to the release compiled in when the read fails;
/// a deploy switches it, a rollback is that one write and writes no site object; no
/// invalidation is ever made; the 404 page CloudFront fetches without the function
/// follows the switch.
#[test]
fn cloudfront_serves_the_slot_its_key_value_store_names() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "e");
    let (bucket, distribution, env) = (cf.bucket.clone(), cf.distribution.clone(), cf.env.clone());
    let tmp = tempfile::tempdir().unwrap();
    let config = cf.config("atomic") + "\n[edge]\nnot_found = \"404.html\"\n";
    let p = cf.project(&tmp.path().join("w"), &config);
    p.write("index.html", "<p>v1</p>")
        .write("404.html", "missing v1")
        .write("assets/app.js", "js v1");

    // No store yet: refused, naming the command that creates it.
    p.cmd(&["deploy", &env, "--yes"])
        .expect(3)
        .mentions(&["KeyValueStore", &format!("driftless edge {env} --apply")]);
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&[
            &format!("create CloudFront KeyValueStore driftless-{env}"),
            "Published the edge rules",
        ]);
    let described = s.aws(
        &s.moto,
        &[
            "cloudfront",
            "describe-function",
            "--name",
            &format!("driftless-{env}"),
        ],
    );
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    let assoc = &described["FunctionSummary"]["FunctionConfig"]["KeyValueStoreAssociations"];
    assert_eq!(assoc["Quantity"], 1, "{described}");
    // The release the function adds to the query string is in the cache key (this
    // distribution has the legacy cache settings; one with a cache policy gets driftless's).
    let dist = s.aws(
        &s.moto,
        &[
            "cloudfront",
            "get-distribution-config",
            "--id",
            &distribution,
        ],
    );
    let dist: serde_json::Value = serde_json::from_slice(&dist.stdout).unwrap();
    let fv = &dist["DistributionConfig"]["DefaultCacheBehavior"]["ForwardedValues"];
    assert_eq!(fv["QueryString"], true, "{fv}");
    assert_eq!(
        fv["QueryStringCacheKeys"]["Items"],
        serde_json::json!(["driftless-release"]),
        "{fv}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let pointer = || -> serde_json::Value {
        let raw = rt.block_on(kvs.get("current")).unwrap().expect("a pointer");
        serde_json::from_str(&raw).unwrap()
    };
    let r1 = p.cmd(&["deploy", &env, "--yes", "--json"]).expect(0).json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(slot_release(&pointer()), ("a".to_owned(), r1.clone()));
    let export1 = tmp.path().join("export1");
    p.cmd(&["edge", &env, "--export", export1.to_str().unwrap()])
        .expect(0);
    assert_eq!(
        crate::edge::terraform_resources(
            &std::fs::read_to_string(export1.join("driftless-edge.tf")).unwrap()
        ),
        [
            "aws_cloudfront_function",
            "aws_cloudfront_key_value_store",
            "aws_cloudfront_cache_policy",
            // The viewer response: the canary cookie.
            "aws_cloudfront_function"
        ]
    );
    let snippet = std::fs::read_to_string(export1.join("distribution.snippet.hcl")).unwrap();
    assert!(snippet.contains("cache_policy_id"), "{snippet}");
    crate::edge::assert_runs_on_cloudfront(
        &std::fs::read_to_string(export1.join("function.js")).unwrap(),
    );

    // What the function answers, run in Node against the bucket's keys and the store.
    let keys = || s.keys_under(&s.moto, &bucket, "www/");
    let ask = |export: &Path, kvs: serde_json::Value| -> Vec<(u64, String, String)> {
        let read = |n: &str| std::fs::read_to_string(export.join(n)).unwrap();
        let errors: serde_json::Value =
            serde_json::from_str(&read("custom-error-responses.json")).unwrap();
        let cases: Vec<serde_json::Value> = ["/", "/assets/app.js", "/nope.html"]
            .iter()
            .map(|p| serde_json::json!({ "path": p, "kvs": kvs }))
            .collect();
        let input = serde_json::json!({
            "code": read("function.js"), "errors": errors["Items"], "site": keys(),
            "state": [], "cases": cases,
        });
        crate::edge::harness(&input)
            .into_iter()
            .map(|r| {
                (
                    r["status"].as_u64().unwrap(),
                    r["key"].as_str().unwrap_or("").to_owned(),
                    r["query"]["driftless-release"]["value"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect()
    };
    // The KeyValueStore as it is: the pointer (with the live release's rules) and the
    // routing tables beside it.
    let live = |ptr: serde_json::Value| {
        let mut all = crate::servers::Servers::kvs_values(&rt, &kvs);
        all.insert("current".into(), ptr.to_string().into());
        serde_json::Value::Object(all)
    };
    let answers = ask(&export1, live(pointer()));
    assert_eq!(answers[0], (200, "slots/a/index.html".into(), r1.clone()));
    assert_eq!(
        answers[1],
        (200, "slots/a/assets/app.js".into(), r1.clone())
    );
    // The 404 page CloudFront fetches by its own path: the live release's, at the root.
    assert_eq!(answers[2].0, 404);
    assert_eq!(answers[2].1, "404.html");

    // A second release fills slot b; the switch is the pointer; no invalidation.
    p.write("index.html", "<p>v2</p>")
        .write("404.html", "missing v2");
    let r2 = p.cmd(&["deploy", &env, "--yes", "--json"]).expect(0).json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(slot_release(&pointer()), ("b".to_owned(), r2.clone()));
    // The fallback compiled in is older now, but the rules are the same: no edge drift.
    p.cmd(&["status", &env])
        .expect(0)
        .mentions(&["is live with the rules of driftless.toml"]);
    let answers = ask(&export1, live(pointer()));
    assert_eq!(answers[0], (200, "slots/b/index.html".into(), r2.clone()));
    let root_404 = s.aws(
        &s.moto,
        &["s3", "cp", &format!("s3://{bucket}/www/404.html"), "-"],
    );
    assert_eq!(String::from_utf8_lossy(&root_404.stdout), "missing v2");
    // The read fails: the release compiled in (r1 in the first export), never the bare URI.
    let answers = ask(&export1, serde_json::json!("throw"));
    assert_eq!(answers[0], (200, "slots/a/index.html".into(), r1.clone()));
    let export2 = tmp.path().join("export2");
    p.cmd(&["edge", &env, "--export", export2.to_str().unwrap()])
        .expect(0);
    let answers = ask(&export2, serde_json::json!("throw"));
    assert_eq!(answers[0], (200, "slots/b/index.html".into(), r2.clone()));
    // No pointer at all and nothing compiled in: 503, not the bucket's root.
    let cold = tmp.path().join("cold");
    std::fs::create_dir_all(&cold).unwrap();
    let code = std::fs::read_to_string(export2.join("function.js")).unwrap();
    let at = code.find(",LAST=").unwrap() + ",LAST=".len();
    let mut value =
        serde_json::Deserializer::from_str(&code[at..]).into_iter::<serde_json::Value>();
    value.next().unwrap().unwrap();
    let end = at + value.byte_offset();
    std::fs::write(
        cold.join("function.js"),
        format!("{}null{}", &code[..at], &code[end..]),
    )
    .unwrap();
    std::fs::copy(
        export2.join("custom-error-responses.json"),
        cold.join("custom-error-responses.json"),
    )
    .unwrap();
    assert_eq!(ask(&cold, serde_json::json!("throw"))[0].0, 503);
    assert_eq!(ask(&cold, serde_json::json!({}))[0].0, 503);

    // Rollback: the pointer write, no site object written.
    let log = std::path::Path::new("/tmp/driftless-s3-test/run/moto.log");
    let before = std::fs::read_to_string(log).map(|l| l.len()).unwrap_or(0);
    p.cmd(&["rollback", &env, "--yes"]).expect(0);
    assert_eq!(slot_release(&pointer()), ("a".to_owned(), r1.clone()));
    // moto's log is shared by every test running at the time: this environment's lines
    // name its bucket, its KeyValueStore, its distribution or its function.
    let arn = rt.block_on(kvs.find()).unwrap().expect("the store");
    let store_id = arn.rsplit('/').next().unwrap().to_owned();
    let during: String = std::fs::read_to_string(log).unwrap()[before..]
        .lines()
        .filter(|l| {
            [bucket.as_str(), &store_id, &distribution, &env]
                .iter()
                .any(|mark| l.contains(mark))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let site_writes: Vec<&str> = during
        .lines()
        .filter(|l| {
            (l.contains("\"PUT /") || l.contains("\"DELETE /"))
                && l.contains(&format!("/{bucket}/www/"))
                && !l.contains("/www/.driftless/")
        })
        .collect();
    // The 404 page differs between the two releases: its root copy follows, and only it.
    assert!(
        site_writes.iter().all(|l| l.contains("/www/404.html")),
        "a rollback wrote site objects: {site_writes:#?}"
    );
    let kvs_writes = during
        .lines()
        .filter(|l| l.contains("\"PUT /key-value-stores/"))
        .count();
    assert_eq!(kvs_writes, 1, "{during}");
    eprintln!(
        "rollback behind CloudFront: {} requests, {kvs_writes} KeyValueStore write, {} site object(s) written",
        during.lines().filter(|l| l.contains("HTTP/1.1\"")).count(),
        site_writes.len()
    );
    let answers = ask(&export2, live(pointer()));
    assert_eq!(answers[0], (200, "slots/a/index.html".into(), r1.clone()));
    let invalidations = s.aws(
        &s.moto,
        &[
            "cloudfront",
            "list-invalidations",
            "--distribution-id",
            &distribution,
        ],
    );
    let invalidations: serde_json::Value =
        serde_json::from_slice(&invalidations.stdout).unwrap_or_default();
    assert_eq!(
        invalidations["InvalidationList"]["Quantity"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{invalidations}"
    );
    let status = p.cmd(&["status", &env, "--json"]).expect(0).json();
    assert_eq!(status["pointer_matches_head"], true, "{status}");
    assert!(
        status["pointer"]["at"]
            .as_str()
            .unwrap()
            .contains(&format!("KeyValueStore driftless-{env}")),
        "{status}"
    );
    // Someone republishes the function without its store: doctor fails, apply repairs
    // (the same code: only the association tells).
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["is up to date"]);
    let fname = format!("driftless-{env}");
    let code_file = tmp.path().join("live.js");
    s.aws(
        &s.moto,
        &[
            "cloudfront",
            "get-function",
            "--name",
            &fname,
            "--stage",
            "LIVE",
            code_file.to_str().unwrap(),
        ],
    );
    s.edit_function_by_hand(&fname, &code_file, false);
    let doctor = p.cmd(&["doctor", &env, "--json"]).run();
    let doctor: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let check = |doctor: &serde_json::Value, id: &str| -> serde_json::Value {
        doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no {id} check: {doctor}"))
            .clone()
    };
    assert_eq!(
        check(&doctor, "edge.pointer_store")["level"],
        "fail",
        "{doctor}"
    );
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["update CloudFront Function"]);
    // doctor: the store is associated, the pointer matches HEAD, the cache key has the
    // release (other checks of a moto bucket may fail; these are the pointer's).
    let doctor = p.cmd(&["doctor", &env, "--json"]).run();
    let doctor: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    for id in ["edge.pointer_store", "edge.pointer", "edge.cache_key"] {
        let c = doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no {id} check: {doctor}"));
        assert_eq!(c["level"], "pass", "{c}");
    }
}

/// An in-place bucket behind CloudFront moves to the atomic layout with nothing
/// unserved: the function is not switched before a pointer exists, the in-place copies
/// are not removed before the function reads it; and back, the slots not removed before
/// the function reads the keys in place.
#[test]
fn an_in_place_bucket_behind_cloudfront_moves_to_the_atomic_layout_and_back() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "m");
    let (bucket, env) = (cf.bucket.clone(), cf.env.clone());
    let tmp = tempfile::tempdir().unwrap();
    let config = |layout: &str| cf.config(layout);
    let dir = tmp.path().join("w");
    let p = cf.project(&dir, &config("in-place"));
    p.write("index.html", "<p>v1</p>");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    std::fs::write(dir.join("driftless.toml"), config("atomic")).unwrap();

    // A function reading a pointer that does not exist yet would serve nothing.
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(3)
        .mentions(&[&format!("driftless migrate {env} --layout atomic")]);
    p.cmd(&["migrate", &env, "--layout", "atomic", "--yes"])
        .expect(0)
        .mentions(&[
            &format!("KeyValueStore driftless-{env}"),
            &format!("driftless edge {env} --apply"),
        ]);
    // The published function still serves the in-place copies: they stay.
    p.cmd(&["migrate", &env, "--layout", "atomic", "--finish", "--yes"])
        .expect(3)
        .mentions(&["in-place copies", &format!("driftless edge {env} --apply")]);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["migrate", &env, "--layout", "atomic", "--finish", "--yes"])
        .expect(0)
        .mentions(&["removed 1 in-place"]);
    let left = s.keys_under(&s.moto, &bucket, "www/index.html");
    assert!(
        left.is_empty(),
        "the in-place copy is still there: {left:?}"
    );
    let status = p.cmd(&["status", &env, "--json"]).expect(0).json();
    assert_eq!(status["pointer"]["slot"], "a", "{status}");
    assert_eq!(status["pointer_matches_head"], true, "{status}");
    p.write("index.html", "<p>v2</p>");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let status = p.cmd(&["status", &env, "--json"]).expect(0).json();
    assert_eq!(status["pointer"]["slot"], "b", "{status}");

    // And back: copied in place, the slots removed only once the function reads it.
    std::fs::write(dir.join("driftless.toml"), config("in-place")).unwrap();
    p.cmd(&["migrate", &env, "--layout", "in-place", "--yes"])
        .expect(0)
        .mentions(&[&format!("driftless edge {env} --apply")]);
    let root = s.aws(
        &s.moto,
        &["s3", "cp", &format!("s3://{bucket}/www/index.html"), "-"],
    );
    assert_eq!(String::from_utf8_lossy(&root.stdout), "<p>v2</p>");
    p.cmd(&["migrate", &env, "--layout", "in-place", "--finish", "--yes"])
        .expect(3)
        .mentions(&["still reads the live pointer"]);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["migrate", &env, "--layout", "in-place", "--finish", "--yes"])
        .expect(0)
        .mentions(&["has the in-place layout"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    assert_eq!(
        rt.block_on(kvs.get("current")).unwrap(),
        None,
        "the pointer is still there"
    );
    let slots = s.keys_under(&s.moto, &bucket, "www/slots/");
    assert!(slots.is_empty(), "{slots:?}");
    p.write("index.html", "<p>v3</p>");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let root = s.aws(
        &s.moto,
        &["s3", "cp", &format!("s3://{bucket}/www/index.html"), "-"],
    );
    assert_eq!(String::from_utf8_lossy(&root.stdout), "<p>v3</p>");
}

/// The way back: `migrate --layout in-place` copies the live release to the keys in
/// place while `current` keeps serving it; deploys wait for `--finish`, which removes the
/// pointer and the slots; then deploys go in place, and the move to atomic works again.
#[test]
fn an_atomic_store_moves_back_in_place_and_forth_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = tmp.path().join("w");
    let p = Project::atomic(&dir, &store, "");
    p.write("index.html", "v1").write("app.css", "css v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let v2 = files(&[("index.html", "v2"), ("app.css", "css v1")]);
    assert_eq!(served(&store), v2);
    let set_layout = |layout: &str| {
        let config = format!(
            "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\nlayout = \"{layout}\"\n",
            store.display()
        );
        std::fs::write(dir.join("driftless.toml"), config).unwrap();
    };
    // The config must say where it is going.
    p.cmd(&["migrate", "prod", "--layout", "in-place", "--yes"])
        .expect(3)
        .mentions(&["layout = \"in-place\""]);
    set_layout("in-place");
    p.cmd(&["status", "prod"])
        .expect(3)
        .mentions(&["driftless migrate prod --layout in-place"]);
    p.cmd(&["migrate", "prod", "--layout", "in-place", "--yes"])
        .expect(0)
        .mentions(&["2 object(s) copied", "--layout in-place --finish"]);
    // Both roots serve release 2: `current` and the keys in place.
    assert_eq!(served(&store), v2);
    assert_eq!(
        std::fs::read_to_string(store.join("index.html")).unwrap(),
        "v2"
    );
    // Until the move is finished nothing is deployed (`current` would go stale).
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&["--layout in-place --finish"]);
    p.cmd(&[
        "migrate", "prod", "--layout", "in-place", "--finish", "--yes",
    ])
    .expect(0)
    .mentions(&["has the in-place layout"]);
    assert!(
        std::fs::symlink_metadata(store.join("current")).is_err(),
        "`current` is still there"
    );
    assert!(
        !store.join("slots").join("a").join("index.html").exists(),
        "slot files are still there"
    );
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["layout"], "in-place", "{status}");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(
        std::fs::read_to_string(store.join("index.html")).unwrap(),
        "v3"
    );
    // And forth again.
    set_layout("atomic");
    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(0);
    assert_eq!(
        served(&store),
        files(&[("index.html", "v3"), ("app.css", "css v1")])
    );
}
