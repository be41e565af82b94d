//! The holes a new user found in previews, token auth, migrate and serve (issue 34): each
//! test names the hole it guards, through the real binary.

use crate::serve::{free_port, get_from};
use crate::util::Project;

/// `[edge.auth]` with JWTs of one key, `k1`, read from `DRIFTLESS_TEST_SHORT_K1`.
fn jwt_config(algorithms: &str) -> String {
    format!(
        "\n[edge.auth]\nprotect = [\"/app/**\"]\n\n[edge.auth.jwt]\nalgorithms = {algorithms}\nkeys = {{ k1 = \"DRIFTLESS_TEST_SHORT_K1\" }}\n"
    )
}

/// An atomic local environment with `config`, its `url` on a free port; the page
/// `app/page.html` deployed.
fn token_project(tmp: &std::path::Path, config: &str, secret: &str) -> (Project, u16) {
    let port = free_port();
    let p = Project::atomic(
        &tmp.join("w"),
        &tmp.join("store"),
        &format!("url = \"http://127.0.0.1:{port}\"\n{config}"),
    )
    .envs(vec![("DRIFTLESS_TEST_SHORT_K1", secret.to_owned())]);
    p.write("index.html", "home")
        .write("app/page.html", "secret page");
    (p, port)
}

/// A JWT over good claims, signed by `secret` with `alg`.
fn forged(alg: &str, secret: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    driftless::edge::auth::mint_jwt(alg, "k1", secret, &serde_json::json!({ "exp": exp })).unwrap()
}

/// Regression (issue 34.1): an empty token secret (what a CI secret that is not set
/// expands to) or a short one was accepted by `serve`, `sign` and `verify`, so anyone
/// could forge a token; now each refuses it, naming the variable and the length the
/// algorithm needs (RFC 7518 §3.2), and a secret of that length is taken.
#[test]
fn a_short_or_empty_token_secret_is_refused_everywhere_it_is_read() {
    for (algorithms, secret, said) in [
        (
            "[\"HS256\"]",
            "",
            "the environment variable DRIFTLESS_TEST_SHORT_K1 is empty",
        ),
        (
            "[\"HS256\"]",
            "short",
            "the secret in DRIFTLESS_TEST_SHORT_K1 is 5 characters long; HS256 needs a secret of at least 32 characters",
        ),
        (
            "[\"HS256\"]",
            &"x".repeat(31),
            "is 31 characters long; HS256 needs a secret of at least 32",
        ),
        (
            "[\"HS256\", \"HS512\"]",
            &"x".repeat(40),
            "is 40 characters long; HS512 needs a secret of at least 64",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (p, port) = token_project(tmp.path(), &jwt_config(algorithms), secret);
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
        // `serve` must refuse to start, not serve: waited for at most 20 s.
        let mut serving = p
            .cmd(&["serve", "prod", "--port", &port.to_string()])
            .spawn();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(st) = serving.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > std::time::Duration::from_secs(20) {
                let _ = serving.kill();
                panic!("serve started with {secret:?} as the secret");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(serving.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(err.contains(said), "{err}");
        for args in [
            vec!["sign", "prod"],
            vec!["verify", "prod", "--timeout", "2"],
        ] {
            p.cmd(&args).expect(2).mentions(&[
                said,
                "edge.auth.jwt.keys.k1",
                "openssl rand -base64",
            ]);
        }
    }
    // At the length the strongest algorithm needs, the same project signs and serves.
    let tmp = tempfile::tempdir().unwrap();
    let good = "k".repeat(64);
    let (p, port) = token_project(tmp.path(), &jwt_config("[\"HS256\", \"HS512\"]"), &good);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = crate::serve::serve(&p, "prod", port);
    let token = forged("HS512", &good);
    let (status, _, body) = get_from(
        port,
        "127.0.0.1",
        "/app/page.html",
        &format!("Authorization: Bearer {token}\r\n"),
    );
    assert_eq!((status, body.as_slice()), (200, b"secret page".as_slice()));
    p.cmd(&["sign", "prod"]).expect(0);
}

/// Regression (issue 34.1): the function let a token through whatever secret the
/// KeyValueStore held (it checked only that it was a string); now a secret shorter than
/// the token's algorithm needs fails closed — a token forged with it is refused — while
/// a good secret still lets its token in.
#[test]
fn the_function_refuses_a_short_secret_in_the_key_value_store() {
    let edge: driftless::config::EdgeConfig = toml::from_str(
        "[auth]\nprotect = [\"/app/**\"]\n[auth.jwt]\nalgorithms = [\"HS256\", \"HS512\"]\nkeys = { k1 = \"X\" }\ncwt = true\n",
    )
    .unwrap();
    let atomic = crate::edge::atomic(None);
    let keys = ["index.html", "app/page.html"];
    // The release's rules, as the pointer carries them.
    let root = driftless::edge::table::compile(&edge, keys.into_iter(), None)
        .unwrap()
        .root;
    let pointer = serde_json::json!({ "slot": "a", "release": "r1", "e": root }).to_string();
    let c = driftless::edge::compile_for(
        &edge,
        "prod",
        keys.iter().map(|k| (*k).to_owned()).collect(),
        "test".into(),
        &[".driftless/".into()],
        Some(&atomic),
    )
    .unwrap();
    let site: Vec<String> = keys.iter().map(|k| format!("slots/a/{k}")).collect();
    let good64 = "g".repeat(64);
    let cwt_by = |secret: &str| {
        driftless::edge::auth::mint_cwt("k1", secret, vec![(4, (1i64 << 40).into())]).unwrap()
    };
    let mut cases = Vec::new();
    let mut want = Vec::new();
    for (secret, alg, status) in [
        ("", "HS256", 401),
        ("short", "HS256", 401),
        (&"s".repeat(31)[..], "HS256", 401),
        (&"s".repeat(32)[..], "HS256", 200),
        (&"s".repeat(63)[..], "HS512", 401),
        (&good64[..], "HS512", 200),
    ] {
        cases.push(serde_json::json!({
            "path": "/app/page.html",
            "headers": { "Authorization": format!("Bearer {}", forged(alg, secret)) },
            "kvs": { "current": pointer, "auth:k1": secret },
        }));
        want.push((
            format!("{alg} with a {}-character secret", secret.len()),
            status,
        ));
    }
    for (secret, status) in [(&"c".repeat(31)[..], 401), (&"c".repeat(32)[..], 200)] {
        cases.push(serde_json::json!({
            "path": "/app/page.html",
            "headers": { "Authorization": format!("Bearer {}", cwt_by(secret)) },
            "kvs": { "current": pointer, "auth:k1": secret },
        }));
        want.push((
            format!("a CWT with a {}-character secret", secret.len()),
            status,
        ));
    }
    let answers = crate::edge::harness(&serde_json::json!({
        "code": c.function.code, "errors": [], "site": site, "state": [], "cases": cases,
    }));
    for ((what, status), a) in want.iter().zip(&answers) {
        assert_eq!(a["status"].as_u64(), Some(*status), "{what}: {a}");
    }
}

/// Regression (issue 34.2): `--from-preview` skipped the stale-base and revert guards, so
/// a preview built from an old branch silently took back a hotfix deployed since — on
/// staging, and by promotion on protected prod. Now a preview goes live only as a deploy
/// of its build would: refused, naming every file it would take back and the release
/// that changed it; once its branch has the hotfix, it goes live.
#[test]
fn a_stale_preview_does_not_revert_live() {
    use crate::util::{git, tree};
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let dir = tmp.path().join("repo");
    let config = format!(
        "site = \"site\"\n[env.staging]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{port}\"\npreview_url = \"http://{{name}}.localhost:{port}\"\n\n[env.prod]\nstore = \"file://{}\"\npromote_from = \"staging\"\n",
        tmp.path().join("staging").display(),
        tmp.path().join("prod").display()
    );
    let p = Project::with_config(&dir, &config);
    std::fs::write(dir.join(".gitignore"), ".driftless/\n").unwrap();
    p.write("index.html", "shop v1").write("style.css", "s1");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "v1"]);
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);

    // A branch from before the hotfix, previewed.
    git(&dir, &["checkout", "-q", "-b", "old"]);
    p.write("about.html", "about us");
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "about page"]);
    p.cmd(&["deploy", "staging", "--preview", "old", "--yes"])
        .expect(0);

    // The hotfix, deployed from main.
    git(&dir, &["checkout", "-q", "main"]);
    p.write("index.html", "shop v1 + hotfix")
        .write("hotfix.css", "h");
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "hotfix"]);
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    let hotfix = p.cmd(&["log", "staging", "--json"]).expect(0).json()["releases"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let live = || tree(&tmp.path().join("staging/current"), &[]);
    let before = live();

    let _server = crate::serve::serve(&p, "staging", port);
    let refused = p
        .cmd(&["deploy", "staging", "--from-preview", "old", "--yes"])
        .expect(3);
    refused.mentions(&[
        "stale-base",
        "preview old (release",
        "but live has moved since",
        "index.html: would revert a newer live version",
        "hotfix.css: would be deleted",
        &hotfix,
        "--force stale-base",
    ]);
    assert_eq!(live(), before, "a refused preview changed live");

    // Protected prod: the same refusal by promotion.
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);
    p.cmd(&["promote", "staging", "prod", "--yes"]).expect(0);
    let prod = || tree(&tmp.path().join("prod/current"), &[]);
    let prod_before = prod();
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--from-preview",
        "old",
        "--yes",
    ])
    .expect(3)
    .mentions(&[
        "stale-base",
        "index.html: would revert a newer live version",
        "hotfix.css: would be deleted",
    ]);
    assert_eq!(prod(), prod_before, "a refused promotion changed prod");

    // The branch takes the hotfix in and is previewed again: it goes live.
    git(&dir, &["checkout", "-q", "old"]);
    git(&dir, &["merge", "-q", "--no-edit", "main"]);
    p.cmd(&["deploy", "staging", "--preview", "old", "--yes"])
        .expect(0);
    p.cmd(&["deploy", "staging", "--from-preview", "old", "--yes"])
        .expect(0)
        .mentions(&["stale-base ✓", "revert ✓"]);
    let now = live();
    assert_eq!(now["index.html"], b"shop v1 + hotfix");
    assert_eq!(now["about.html"], b"about us");
    assert!(now.contains_key("hotfix.css"));
}

/// Regression (issue 34.1): `edge --apply` wrote an empty token secret to the
/// KeyValueStore (rc 0); now it refuses before writing anything, and the store holds no
/// secret.
#[test]
fn edge_apply_writes_no_short_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.seaweedfs, "short");
    let env = cf.env.clone();
    let p = cf
        .project(
            &tmp.path().join("w"),
            &format!("{}{}", cf.config("atomic"), jwt_config("[\"HS256\"]")),
        )
        .envs(vec![("DRIFTLESS_TEST_SHORT_K1", String::new())]);
    p.write("index.html", "home")
        .write("app/page.html", "secret page");
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(2)
        .mentions(&["DRIFTLESS_TEST_SHORT_K1 is empty", "nothing"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let held = rt.block_on(kvs.keys("auth:")).unwrap_or_default();
    assert!(held.is_empty(), "secrets written: {held:?}");
}

/// Regression (issue 34.3): after atomic → in place → atomic, `migrate --finish` removed
/// none of the in-place copies, calling driftless's own copies "changed or added by
/// hand"; now the byte-identical ones are removed, and a real hand edit is still kept.
#[test]
fn a_round_trip_between_layouts_leaves_no_in_place_copy() {
    use crate::util::files;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = tmp.path().join("w");
    let p = Project::atomic(&dir, &store, "");
    p.write("index.html", "v1")
        .write("app.css", "css")
        .write("docs/a.html", "a");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let set_layout = |layout: &str| {
        let config = format!(
            "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\nlayout = \"{layout}\"\n",
            store.display()
        );
        std::fs::write(dir.join("driftless.toml"), config).unwrap();
    };
    set_layout("in-place");
    p.cmd(&["migrate", "prod", "--layout", "in-place", "--yes"])
        .expect(0);
    p.cmd(&[
        "migrate", "prod", "--layout", "in-place", "--finish", "--yes",
    ])
    .expect(0);
    set_layout("atomic");
    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(0);
    // One in-place copy edited by hand since: that one stays.
    std::fs::write(store.join("app.css"), "edited by hand").unwrap();
    let finished = p
        .cmd(&[
            "migrate", "prod", "--layout", "atomic", "--finish", "--yes", "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(finished["removed"], 2, "{finished}");
    for key in ["index.html", "docs/a.html"] {
        assert!(!store.join(key).exists(), "{key} is still in place");
    }
    assert_eq!(
        std::fs::read_to_string(store.join("app.css")).unwrap(),
        "edited by hand"
    );
    assert_eq!(
        crate::util::tree(&store.join("current"), &[]),
        files(&[
            ("index.html", "v1"),
            ("app.css", "css"),
            ("docs/a.html", "a")
        ])
    );
}

/// Regression (issue 34.4): `serve` of a build directory answered `.env`, `id_rsa` and
/// `db.sql` with 200 while a deploy excludes them; now it answers exactly the files a
/// deploy would upload (the default exclusions, the config's `ignore`, a
/// `.driftlessignore`, `include`), following the build as it changes.
/// Regression (issue 34, smaller): `serve DIR` refused to run without a `driftless.toml`.
#[test]
fn serve_of_a_directory_answers_only_what_a_deploy_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("build");
    for (key, body) in [
        ("index.html", "home"),
        (".env", "SECRET=1"),
        ("id_rsa", "-----BEGIN"),
        ("db.sql", "insert"),
        ("notes/draft.md", "draft"),
        ("notes/.driftlessignore", "draft.md\n"),
        ("keep.pem", "public cert"),
        ("private.txt", "mine"),
    ] {
        let p = build.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    // No project around it: the default exclusions.
    let bare = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&bare).unwrap();
    let port = free_port();
    let _server = crate::serve::serve(&Project::at(&bare), build.to_str().unwrap(), port);
    let status = |path: &str| get_from(port, "127.0.0.1", path, "").0;
    assert_eq!(status("/"), 200);
    for hidden in [
        "/.env",
        "/id_rsa",
        "/db.sql",
        "/notes/draft.md",
        "/keep.pem",
    ] {
        assert_eq!(status(hidden), 404, "{hidden}");
    }
    assert_eq!(status("/private.txt"), 200);
    // A file the build adds is answered once it is there.
    std::fs::write(build.join("new.html"), "new").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(status("/new.html"), 200);
    drop(_server);

    // With a project: its `ignore` and `include` too.
    let p = Project::with_config(
        &tmp.path().join("w"),
        "site = \"site\"\nignore = [\"private.txt\"]\ninclude = [\"keep.pem\"]\n[env.prod]\nstore = \"file://store\"\n",
    );
    crate::serve::copy_dir(&build, &p.dir.join("site"));
    let port = free_port();
    let _server = crate::serve::serve(&p, "site", port);
    let status = |path: &str| get_from(port, "127.0.0.1", path, "").0;
    assert_eq!(status("/private.txt"), 404);
    assert_eq!(status("/keep.pem"), 200);
    assert_eq!(status("/.env"), 404);
    let plan = p.cmd(&["plan", "prod", "--json"]).expect(0).json();
    let planned: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    for key in &planned {
        assert_eq!(
            status(&format!("/{key}")),
            200,
            "{key} is deployed but not served"
        );
    }
    assert!(!planned.contains(&"private.txt"), "{planned:?}");
}

/// Regression (issue 34.5): a running `serve ENV` answered 404 to everything after
/// `migrate --layout in-place --finish` until restarted; it follows the store's layout
/// as it changes, either way.
#[test]
fn serve_follows_a_migration_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = tmp.path().join("w");
    let p = Project::atomic(&dir, &store, "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let port = free_port();
    let _server = crate::serve::serve(&p, "prod", port);
    let body = || get_from(port, "127.0.0.1", "/", "").2;
    assert_eq!(body(), b"v1");
    let set_layout = |layout: &str| {
        let config = format!(
            "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\nlayout = \"{layout}\"\n",
            store.display()
        );
        std::fs::write(dir.join("driftless.toml"), config).unwrap();
    };
    set_layout("in-place");
    p.cmd(&["migrate", "prod", "--layout", "in-place", "--yes"])
        .expect(0);
    assert_eq!(body(), b"v1");
    p.cmd(&[
        "migrate", "prod", "--layout", "in-place", "--finish", "--yes",
    ])
    .expect(0);
    assert_eq!(body(), b"v1", "serve lost the site after the move in place");
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(body(), b"v2");
    set_layout("atomic");
    p.cmd(&["migrate", "prod", "--layout", "atomic", "--yes"])
        .expect(0);
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // (In place, HEAD is read at most once a second.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(body(), b"v3");
}

/// A tmpfs of `size` mounted at `dir` for the test, unmounted when dropped (the tests
/// run as root, as their install steps do; a failed mount fails the test).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }

    /// Fill what is left of it with a file outside the store.
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).output();
    }
}

/// Regression (issue 34.6): `gc` could not run on a full store, exactly when it is
/// needed — it planned what it would free, then failed writing its first file (with an
/// empty operation name). The local store keeps a small reserve that gc gives back
/// first; it frees what it planned, the live release stays whole, the reserve is put
/// back. Without a reserve it says what to do and changes nothing.
#[test]
fn gc_frees_a_full_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), "1m");
    let store = disk.0.join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    let mut last = String::new();
    for i in 0..3 {
        last = format!("release {i} ");
        p.write("big.bin", &last.repeat(100_000 / last.len()))
            .write("index.html", &last);
        p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    }
    disk.fill();
    let freed = p
        .cmd(&["gc", "prod", "--keep", "1", "--yes", "--json"])
        .expect(0);
    let freed = freed.json();
    assert_eq!(freed["used_reserve"], true, "{freed}");
    assert!(freed["freed"].as_u64().unwrap() > 100_000, "{freed}");
    assert!(
        store.join(".driftless-store/reserve").exists(),
        "the reserve is not back"
    );
    assert_eq!(
        std::fs::read_to_string(store.join("current/index.html")).unwrap(),
        last
    );
    p.cmd(&["status", "prod"]).expect(0);

    // A store without a reserve (made by an older driftless), on a full disk.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    p.write("index.html", "one more");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    std::fs::remove_file(store.join(".driftless-store/reserve")).unwrap();
    disk.fill();
    let before = crate::util::store_bytes(&store);
    p.cmd(&["gc", "prod", "--keep", "1", "--yes"])
        .expect(1)
        .mentions(&["is full", "free"]);
    assert_eq!(crate::util::store_bytes(&store), before);
}

/// Regression (issue 34.7): `--preview a.b`, `a_b` and `A_B` all became `a-b`, and the
/// later silently replaced the other branch's preview; `ünïcødé` became `n-c-d`. Now a
/// preview made from another branch (or, outside git, given as another name) is not
/// replaced without `--replace`, and letters beyond ASCII stay distinct (punycode).
/// Regression (issue 34, smaller): `--expires 0s` said "is not a duration".
#[test]
fn preview_names_do_not_collide_silently() {
    use crate::util::git;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let p = Project::atomic(&dir, &tmp.path().join("store"), "");
    std::fs::write(dir.join(".gitignore"), ".driftless/\n").unwrap();
    p.write("index.html", "live");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "v1"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    git(&dir, &["checkout", "-q", "-b", "feature/x"]);
    p.cmd(&["deploy", "prod", "--preview", "a.b", "--yes"])
        .expect(0)
        .mentions(&["Preview name: a-b (from \"a.b\")"]);
    // The same branch again renews it.
    p.cmd(&["deploy", "prod", "--preview", "a.b", "--yes"])
        .expect(0);
    git(&dir, &["checkout", "-q", "-b", "feature/y"]);
    p.cmd(&["deploy", "prod", "--preview", "a_b", "--yes"])
        .expect(3)
        .mentions(&[
            "preview a-b is already branch feature/x's",
            "--preview \"a_b\" would replace it",
            "--replace",
        ]);
    let previews = || p.cmd(&["previews", "prod", "--json"]).expect(0).json();
    let list = previews();
    let a_b = list["previews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "a-b")
        .unwrap()
        .clone();
    assert_eq!(a_b["branch"], "feature/x", "{a_b}");
    p.cmd(&["deploy", "prod", "--preview", "a_b", "--replace", "--yes"])
        .expect(0);
    // Letters beyond ASCII: two names, two previews.
    p.cmd(&["deploy", "prod", "--preview", "ünïcødé", "--yes"])
        .expect(0);
    p.cmd(&["deploy", "prod", "--preview", "unicode", "--yes"])
        .expect(0);
    let names: Vec<String> = previews()["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("xn--")), "{names:?}");
    assert!(names.contains(&"unicode".to_owned()), "{names:?}");
    p.cmd(&[
        "deploy",
        "prod",
        "--preview",
        "b",
        "--expires",
        "0s",
        "--yes",
    ])
    .expect(2)
    .mentions(&["--expires 0s: a preview must live for a while: give a positive duration"]);
}

/// Regression (issue 34.8): configurations that can never work were accepted — two
/// environments promoting from each other (`status` printed nothing, every command
/// pointed at another that was refused), two environments on one store (one HEAD), and
/// basic auth beside token auth without a cookie (every protected path 401). Each is
/// refused when the config is read, naming both sides and the fix.
#[test]
fn configurations_that_can_never_work_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s").display().to_string();
    for (config, said) in [
        (
            "[env.a]\nstore = \"file://one\"\npromote_from = \"b\"\n[env.b]\nstore = \"file://two\"\npromote_from = \"a\"\n".to_owned(),
            vec!["env.a.promote_from = \"b\", env.b.promote_from = \"a\"", "none of them can ever receive a release"],
        ),
        (
            "[env.a]\nstore = \"file://one\"\npromote_from = \"c\"\n[env.b]\nstore = \"file://two\"\npromote_from = \"a\"\n[env.c]\nstore = \"file://three\"\npromote_from = \"b\"\n".to_owned(),
            vec!["promote from each other"],
        ),
        (
            format!("[env.a]\nstore = \"file://{s}\"\n[env.b]\nstore = \"file://{s}/\"\n"),
            vec!["env.a.store", "env.b.store", "are the same store", "store of its own"],
        ),
        (
            format!("[env.a]\nstore = \"file://{s}\"\n[env.b]\nstore = \"file://{s}/staging\"\n"),
            vec!["are one inside the other"],
        ),
        (
            "[env.a]\nstore = \"s3://bucket/site\"\n[env.b]\nstore = \"s3://bucket/site/\"\n".to_owned(),
            vec!["are the same store"],
        ),
        (
            "[env.a]\nstore = \"file://one\"\n[edge.basic_auth]\nuser = \"u\"\npassword_env = \"P\"\n[edge.auth]\nprotect = [\"/app/**\"]\n[edge.auth.jwt]\nkeys = { k = \"K\" }\n".to_owned(),
            vec!["both read the Authorization header", "cookie = \"session\""],
        ),
    ] {
        let p = Project::with_config(&tmp.path().join("w"), &format!("site = \"site\"\n{config}"));
        p.cmd(&["status"]).expect(2).mentions(&said);
    }
    // Apart (another bucket, another endpoint, a cookie for the token): accepted.
    for config in [
        "[env.a]\nstore = \"s3://bucket/site\"\n[env.b]\nstore = \"s3://bucket/site-staging\"\n",
        "[env.a]\nstore = \"s3://bucket\"\nendpoint = \"http://127.0.0.1:1\"\n[env.b]\nstore = \"s3://bucket\"\n",
        "[env.a]\nstore = \"file://one\"\n[edge.basic_auth]\nuser = \"u\"\npassword_env = \"P\"\n[edge.auth]\nprotect = [\"/app/**\"]\ncookie = \"session\"\n[edge.auth.jwt]\nkeys = { k = \"K\" }\n",
    ] {
        let p = Project::with_config(&tmp.path().join("w"), &format!("site = \"site\"\n{config}"));
        let out = p.cmd(&["plan", "a"]).run();
        assert_ne!(out.code, 2, "{config}: {}", out.stderr);
    }
}

/// Regression (issue 34, smaller): `log` kept no record of canaries — an aborted one was
/// missing entirely and a finished one showed as a plain deploy. Now every step shows,
/// with who and when, in text and in `--json`.
#[test]
fn log_shows_every_canary_step() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::atomic(&tmp.path().join("w"), &tmp.path().join("store"), "");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2 (aborted)");
    let aborted = p
        .cmd(&["deploy", "prod", "--canary", "10", "--yes", "--json"])
        .expect(0)
        .release_id();
    p.cmd(&["canary", "prod", "--abort", "--yes"]).expect(0);
    p.write("index.html", "v3 (finished)");
    let finished = p
        .cmd(&["deploy", "prod", "--canary", "5", "--yes", "--json"])
        .expect(0)
        .release_id();
    p.cmd(&["canary", "prod", "--percent", "50", "--yes"])
        .expect(0);
    p.cmd(&["canary", "prod", "--finish", "--yes"]).expect(0);
    let log = p.cmd(&["log", "prod"]).expect(0);
    log.mentions(&[
        &format!("{aborted} (canary, aborted)"),
        "canary: started on 10% by Alice <alice@example.com> at",
        "aborted (at 10%) by Alice",
        "canary: started on 5% by Alice",
        "50% by Alice",
        "finished (from 50%) by Alice",
    ]);
    // In time order: the finished canary (live) first, the aborted one below it.
    let text = log.stdout.clone();
    assert!(
        text.find(&finished).unwrap() < text.find(&aborted).unwrap(),
        "{text}"
    );
    let json = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    let steps: Vec<&str> = json["releases"][0]["canary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["start", "share", "finish"], "{json}");
    assert_eq!(
        json["aborted_canaries"][0]["id"],
        aborted.as_str(),
        "{json}"
    );
}

/// Regressions (issue 34, smaller), after a rollback:
/// - a build a rollback took out was still asked for (`git fetch && git merge` of an
///   unmerged preview branch's commit) by the next deploy from main;
/// - a rollback over several commits named only one in its `git revert` advice.
#[test]
fn after_a_rollback_the_advice_is_right() {
    use crate::util::git;
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let dir = tmp.path().join("repo");
    let p = Project::atomic(
        &dir,
        &tmp.path().join("store"),
        &format!("preview_url = \"http://{{name}}.localhost:{port}\"\n"),
    );
    std::fs::write(dir.join(".gitignore"), ".driftless/\n").unwrap();
    let commit = |msg: &str| {
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", msg]);
        let out = std::process::Command::new("git")
            .current_dir(&dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim()[..10].to_owned()
    };
    p.write("index.html", "v1");
    git(&dir, &["init", "-q", "-b", "main"]);
    let a = commit("v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // An unmerged branch, previewed and made live, then rolled back.
    git(&dir, &["checkout", "-q", "-b", "feat"]);
    p.write("index.html", "feature");
    commit("feature");
    p.cmd(&["deploy", "prod", "--preview", "feat", "--yes"])
        .expect(0);
    {
        let _server = crate::serve::serve(&p, "prod", port);
        p.cmd(&["deploy", "prod", "--from-preview", "feat", "--yes"])
            .expect(0);
    }
    p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    git(&dir, &["checkout", "-q", "main"]);
    p.write("about.html", "about");
    commit("about");
    let deployed = p.cmd(&["deploy", "prod", "--yes"]).run();
    assert_eq!(deployed.code, 0, "{}\n{}", deployed.stdout, deployed.stderr);
    assert!(!deployed.all().contains("git merge"), "{}", deployed.all());

    // Two commits shipped, both rolled back at once.
    p.write("index.html", "v2");
    commit("v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v3");
    let c = commit("v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    let about = log["releases"][2]["id"].as_str().unwrap().to_owned();
    let about_commit = log["releases"][2]["commit"].as_str().unwrap()[..10].to_owned();
    p.cmd(&["rollback", "prod", "--to", &about, "--yes"])
        .expect(0);
    p.write("other.html", "other");
    commit("other");
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(3)
        .mentions(&[&format!("git revert --no-edit {about_commit}..{c}")]);
    let _ = a;
}

/// Regression (issue 34, smaller): `rollback ENV` with the release before live yanked was
/// refused instead of going to the newest restorable one before it; and a refusal with
/// `--json` printed no JSON on stdout.
#[test]
fn rollback_skips_what_cannot_be_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    let mut ids = Vec::new();
    for v in ["v1", "v2", "v3"] {
        p.write("index.html", v);
        ids.push(
            p.cmd(&["deploy", "prod", "--yes", "--json"])
                .expect(0)
                .release_id(),
        );
    }
    p.cmd(&["yank", "prod", &ids[1], "--reason", "leaked a key", "--yes"])
        .expect(0);
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(0)
        .mentions(&[&format!("skipped release {} (yanked by", ids[1])]);
    assert_eq!(
        std::fs::read_to_string(store.join("current/index.html")).unwrap(),
        "v1"
    );
    // Nothing before live can be restored: refused, with a JSON document.
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::atomic(&tmp.path().join("w"), &tmp.path().join("store"), "");
    let mut ids = Vec::new();
    for v in ["v1", "v2"] {
        p.write("index.html", v);
        ids.push(
            p.cmd(&["deploy", "prod", "--yes", "--json"])
                .expect(0)
                .release_id(),
        );
    }
    p.cmd(&["yank", "prod", &ids[0], "--reason", "leaked", "--yes"])
        .expect(0);
    let refused = p.cmd(&["rollback", "prod", "--yes", "--json"]).expect(3);
    let doc = refused.json();
    assert_eq!(doc["result"], "refused", "{doc}");
    assert_eq!(doc["exit_status"], 3, "{doc}");
}

/// Regression (issue 34, smaller): what `diff`'s exit status means was not decided. It
/// exits 0 whether or not the two sides differ (a report); `--exit-code` exits 1 when
/// they do, as `git diff --exit-code`, for CI.
#[test]
fn diff_exits_one_on_differences_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::atomic(&tmp.path().join("w"), &tmp.path().join("store"), "");
    p.write("index.html", "v1\n");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["diff", "prod", "--exit-code"])
        .expect(0)
        .mentions(&["No differences"]);
    p.write("index.html", "v2\n");
    p.cmd(&["diff", "prod"]).expect(0).mentions(&["+v2"]);
    p.cmd(&["diff", "prod", "--exit-code"])
        .expect(1)
        .mentions(&["+v2", "1 file(s) differ"]);
    let j = p
        .cmd(&["diff", "prod", "--exit-code", "--json"])
        .expect(1)
        .json();
    assert_eq!(j["changes"].as_array().unwrap().len(), 1, "{j}");
}
