//! The edge is part of the release (issue 35): a release carries its `[edge]` rules —
//! they go live with it, roll back with it, show in its preview and travel in its
//! promotion — through `serve` and `verify` here; at CloudFront in `edge_release`.

use crate::serve::{free_port, get_from, serve};
use crate::util::Project;

/// `[edge]` with one redirect and a CSP header.
fn rules(redirect_to: &str, csp: &str) -> String {
    format!(
        "\n[edge]\nredirects = [{{ from = \"/old\", to = \"{redirect_to}\", status = 301 }}]\nheaders = {{ \"Content-Security-Policy\" = \"{csp}\" }}\n"
    )
}

fn set_rules(p: &Project, base: &str, edge: &str) {
    std::fs::write(p.dir.join("driftless.toml"), format!("{base}{edge}")).unwrap();
}

/// (status, location, content-security-policy) of a GET of `path` on `host`.
fn ask(port: u16, host: &str, path: &str) -> (u16, Option<String>, Option<String>) {
    let (status, head, _) = get_from(port, host, path, "");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    (
        status,
        header("location"),
        header("content-security-policy"),
    )
}

#[test]
fn rules_go_live_with_the_release_and_roll_back_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{port}\"\npreview_url = \"http://{{name}}.localhost:{port}\"\n",
        tmp.path().join("store").display()
    );
    let p = Project::with_config(
        &tmp.path().join("w"),
        &format!("{base}{}", rules("/new", "default-src 'self'")),
    );
    p.write("index.html", "home")
        .write("new.html", "new")
        .write("newer.html", "newer");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = serve(&p, "prod", port);
    assert_eq!(
        ask(port, "127.0.0.1", "/old"),
        (301, Some("/new".into()), Some("default-src 'self'".into()))
    );

    // Only the rules change: a release of its own, the change shown in the proof block.
    set_rules(&p, &base, &rules("/newer", "default-src 'none'"));
    let plan = p.cmd(&["plan", "prod", "--json"]).expect(0).json();
    let changes = plan["edge"]["changes"].as_array().unwrap().clone();
    assert!(
        changes
            .iter()
            .any(|c| c == "redirect added: /old → /newer (301)"),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c == "redirect removed: /old → /new (301)"),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c
            == "header changed: Content-Security-Policy: default-src 'self' → default-src 'none'"),
        "{changes:?}"
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(0).mentions(&[
        "Edge rules change (they go live with the release):",
        "redirect added: /old → /newer (301)",
    ]);
    assert_eq!(
        ask(port, "127.0.0.1", "/old"),
        (
            301,
            Some("/newer".into()),
            Some("default-src 'none'".into())
        )
    );
    // A deploy of the same rules and bytes is nothing to do.
    p.cmd(&["deploy", "prod", "--yes"])
        .expect(0)
        .mentions(&["Nothing to do"]);

    // The breaking CSP is rolled back with `rollback`, whatever the checkout says.
    p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    assert_eq!(
        ask(port, "127.0.0.1", "/old"),
        (301, Some("/new".into()), Some("default-src 'self'".into()))
    );
    // verify checks the live release's rules (the checkout's differ now).
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["redirect", "/old"]);

    // A preview shows its own rules; live keeps its own.
    set_rules(
        &p,
        &base,
        &rules("/preview-target", "default-src 'self' preview"),
    );
    p.cmd(&["deploy", "prod", "--preview", "pr-1", "--yes"])
        .expect(0);
    assert_eq!(
        ask(port, "pr-1.localhost", "/old"),
        (
            301,
            Some("/preview-target".into()),
            Some("default-src 'self' preview".into())
        )
    );
    assert_eq!(ask(port, "127.0.0.1", "/old").1.as_deref(), Some("/new"));
    // Made live, the reviewed rules come with it.
    p.cmd(&[
        "deploy",
        "prod",
        "--from-preview",
        "pr-1",
        "--yes",
        "--force",
        "revert",
    ])
    .expect(0);
    assert_eq!(
        ask(port, "127.0.0.1", "/old").1.as_deref(),
        Some("/preview-target")
    );
    // The log says which releases carry which rules.
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    let digests: Vec<&str> = log["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["edge"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(digests.len(), 4, "{log}");
    assert_ne!(digests[0], digests[1], "{log}");
    assert_eq!(
        digests[1], digests[3],
        "the rollback carries the first rules: {log}"
    );
}

/// Promotion carries the rules staging verified, identical by hash; a protected
/// environment gets rules only that way; a newly protected path is refused without a
/// token as soon as the release that protects it is live.
#[test]
fn promotion_carries_the_verified_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let (sport, pport) = (free_port(), free_port());
    let base = format!(
        "site = \"site\"\n[env.staging]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{sport}\"\n[env.prod]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{pport}\"\npromote_from = \"staging\"\n",
        tmp.path().join("staging").display(),
        tmp.path().join("prod").display()
    );
    let p = Project::with_config(
        &tmp.path().join("w"),
        &format!("{base}{}", rules("/new", "a")),
    );
    p.write("index.html", "home").write("new.html", "new");
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    let _staging = serve(&p, "staging", sport);
    p.cmd(&["verify", "staging", "--timeout", "5"]).expect(0);
    // Someone edits the checkout's rules after staging verified: prod still gets
    // staging's, by hash.
    set_rules(&p, &base, &rules("/elsewhere", "b"));
    let promoted = p
        .cmd(&["promote", "staging", "prod", "--yes", "--json"])
        .run();
    let staging_log = p.cmd(&["log", "staging", "--json"]).expect(0).json();
    let prod_log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    assert_eq!(
        staging_log["releases"][0]["edge"],
        prod_log["releases"][0]["edge"],
        "{}",
        promoted.all()
    );
    let _prod = serve(&p, "prod", pport);
    assert_eq!(
        ask(pport, "127.0.0.1", "/old"),
        (301, Some("/new".into()), Some("a".into()))
    );
}

/// Every file under `root`, as site keys.
fn keys_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// What the edge data of real site sizes costs, and that it fits (issue 35, "any real
/// site fits"): a site of 1,501 directories, one of 20,000 with 2,000 exact and 100
/// pattern redirects, and the Rust documentation tree — KeyValueStore keys and bytes,
/// what a one-file deploy and a deploy adding one directory write, every value within
/// 1 KB, and what the store holds with both slots and 20 previews (each a change of
/// its own) at once, within 5 MB (23 wholly unrelated tables of the largest site would
/// not fit: such a deploy is refused when planned, see
/// `a_release_that_would_not_fit_the_key_value_store_is_refused_at_plan_time`).
#[test]
fn any_real_site_fits_the_key_value_store() {
    use driftless::edge::table::compile;
    let docs = std::path::Path::new(&std::env::var("HOME").unwrap())
        .join(".rustup/toolchains")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path().join("share/doc/rust/html"))
        .find(|p| p.is_dir())
        .expect("the Rust documentation tree (rustup's rust-docs)");
    let blog: Vec<String> = (0..1501)
        .map(|i| format!("posts/p{i}/index.html"))
        .collect();
    let big: Vec<String> = (0..20_000)
        .map(|i| format!("docs/s{}/p{i}/index.html", i % 40))
        .chain((0..80_000).map(|i| format!("assets/a{i}.js")))
        .collect();
    let redirects: String = (0..2000)
        .map(|i| {
            format!(
                "{{ from = \"/old/p{i}\", to = \"/docs/s{}/p{i}/\" }},\n",
                i % 40
            )
        })
        .chain((0..100).map(|i| {
            format!(
                "{{ from = \"/r{}/:a/*\", to = \"/docs/:a/:splat\" }},\n",
                i % 50
            )
        }))
        .collect();
    let plain: driftless::config::EdgeConfig =
        toml::from_str("spa_fallback = \"index.html\"").unwrap();
    let routed: driftless::config::EdgeConfig = toml::from_str(&format!(
        "spa_fallback = \"index.html\"\nredirects = [\n{redirects}]\n"
    ))
    .unwrap();
    let rust = keys_under(&docs);
    let mut rows = Vec::new();
    for (name, keys, edge) in [
        ("1,501 directories", blog, &plain),
        (
            "20,000 directories, 100,000 files, 2,000 + 100 redirects",
            big,
            &routed,
        ),
        ("the Rust documentation (rustup)", rust, &plain),
    ] {
        let first = compile(edge, keys.iter().map(String::as_str), None).unwrap();
        let layout = first.layout.clone().unwrap();
        assert!(first.values.values().all(|v| v.len() <= 1024), "{name}");
        assert!(
            first.root_text().len() <= driftless::edge::table::ROOT_MAX,
            "{name}"
        );
        // A full table is a fraction of the 5 MB: the slots' two and the previews'
        // overrides of them fit many times over.
        assert!(
            first.bytes() < 1024 * 1024,
            "{name}: {} bytes",
            first.bytes()
        );
        // A one-file change: nothing new. A new directory: one bucket.
        let mut changed = keys.clone();
        changed.push("fresh.css".into());
        let one_file = compile(edge, changed.iter().map(String::as_str), Some(&layout)).unwrap();
        let new_keys = |d: &driftless::edge::table::EdgeData| {
            d.values
                .keys()
                .filter(|k| !first.values.contains_key(*k))
                .count()
        };
        changed.push("brand-new-dir/index.html".into());
        let one_dir = compile(edge, changed.iter().map(String::as_str), Some(&layout)).unwrap();
        assert_eq!(new_keys(&one_file), 0, "{name}");
        assert_eq!(new_keys(&one_dir), 1, "{name}");
        // Held at once: live, the idle slot (the deploy before, a directory apart) and 20
        // previews, each a pull request of its own (a directory and an extension-less
        // page in a different part of the site): what the KeyValueStore holds is the
        // union of their values.
        let mut held: std::collections::BTreeMap<String, usize> = first
            .values
            .iter()
            .chain(&one_dir.values)
            .map(|(k, v)| (k.clone(), k.len() + v.len()))
            .collect();
        let top: Vec<String> = keys
            .iter()
            .filter_map(|k| k.split_once('/').map(|(d, _)| d.to_owned()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for i in 0..20 {
            let mut pr = keys.clone();
            let dir = &top[i % top.len()];
            pr.push(format!("{dir}/pr-{i}-new/index.html"));
            pr.push(format!("{dir}/pr-{i}-LICENSE"));
            let d = compile(edge, pr.iter().map(String::as_str), Some(&layout)).unwrap();
            held.extend(d.values.iter().map(|(k, v)| (k.clone(), k.len() + v.len())));
        }
        let held_bytes: usize = held.values().sum();
        assert!(
            (held_bytes as u64) + 1024 < driftless::aws::kvs::STORE_BYTES_MAX,
            "{name}: {held_bytes} bytes held"
        );
        rows.push(format!(
            "{name}: with the idle slot and 20 previews held, {} keys, {held_bytes} bytes of 5,242,880 (23 unrelated tables would take {})",
            held.len(),
            23 * first.bytes()
        ));
        rows.push(format!(
            "{name}: {} files; {} KeyValueStore keys, {} bytes ({} buckets shared, {} large folders), root {} bytes; a one-file deploy writes {} keys, adding a directory {}",
            keys.len(),
            first.values.len(),
            first.bytes(),
            layout.n,
            layout.groups.len(),
            first.root_text().len(),
            new_keys(&one_file),
            new_keys(&one_dir),
        ));
    }
    eprintln!("{}", rows.join("\n"));
}

/// The rules of one release, as `[edge]` in driftless.toml (no headers: moto has no
/// response headers policies; `each_release_is_served_with_its_own_headers` covers them).
fn release_rules(redirect_to: &str, _release: &str, protect: &str) -> String {
    format!(
        "\n[edge]\nredirects = [{{ from = \"/old\", to = \"{redirect_to}\", status = 301 }}]\n\n[edge.auth]\nprotect = [{protect}]\n\n[edge.auth.jwt]\nkeys = {{ k1 = \"DRIFTLESS_TEST_EDGE_K1\" }}\n"
    )
}

/// (status, location, the file served, X-Release) for each path.
type Answer = (u16, Option<String>, Option<String>, Option<String>);

/// The same conformance table per release at CloudFront (issue 35, Measure): the
/// function exported once, before any of it, answers — against the KeyValueStore as each
/// step leaves it (moto), and the bucket — exactly what `serve` answers: a deploy that
/// adds directories, an extension-less page, a redirect and a protected path is right at
/// the edge right after the switch with no `edge --apply`; a rollback restores the old
/// rules; a preview answers its own redirect while live does not.
#[test]
fn each_release_is_routed_by_its_own_rules_at_the_edge() {
    const K1: &str = "edge-release-test-secret-0123456789-0123456789-0123456789-abcd";
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "er");
    let env = cf.env.clone();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!(
        "{}url = \"http://127.0.0.1:{port}\"\npreview_url = \"http://{{name}}.preview.test:{port}\"\n",
        cf.config("atomic")
    );
    let p = cf
        .project(
            &tmp.path().join("w"),
            &format!("{base}{}", release_rules("/v1", "one", "\"/members/**\"")),
        )
        .envs(vec![("DRIFTLESS_TEST_EDGE_K1", K1.to_owned())]);
    let page = |p: &Project, k: &str| {
        p.write(k, &format!("file {k}"));
    };
    for k in ["index.html", "members/x.html", "docs/index.html"] {
        page(&p, k);
    }
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    // The function as published now: no `edge --apply` after this.
    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    let code = std::fs::read_to_string(export.join("function.js")).unwrap();
    let response = std::fs::read_to_string(export.join("response-function.js")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let paths = [
        "/",
        "/old",
        "/docs",
        "/docs/",
        "/newdir",
        "/newdir/",
        "/LICENSE",
        "/admin/",
        "/admin/index.html",
        "/members/x.html",
        "/missing",
    ];
    let token = driftless::edge::auth::mint_jwt(
        "HS256",
        "k1",
        K1,
        &serde_json::json!({ "exp": 4_102_444_800_i64 }),
    )
    .unwrap();
    let _ = token;
    let function = |host: &str| -> (Vec<Answer>, u64) {
        let held = crate::servers::Servers::kvs_values(&rt, &kvs);
        let keys: Vec<String> = s
            .keys_under(&s.moto, &cf.bucket, "www/")
            .into_iter()
            .filter(|k| k.starts_with("slots/") || k.starts_with("previews/"))
            .collect();
        let cases: Vec<serde_json::Value> = paths
            .iter()
            .map(|path| serde_json::json!({ "path": path, "headers": { "Host": host } }))
            .collect();
        let answers = crate::edge::harness(&serde_json::json!({
            "code": code, "response": response, "errors": [], "site": keys, "state": [],
            "kvs": held, "cases": cases, "count_reads": true,
        }));
        let most = answers
            .iter()
            .map(|a| a["reads"].as_u64().unwrap())
            .max()
            .unwrap();
        let seen = answers
            .iter()
            .map(|a| {
                let file = a["key"].as_str().map(|k| {
                    let rest = k.split_once('/').unwrap().1;
                    rest.split_once('/').unwrap().1.to_owned()
                });
                (
                    u16::try_from(a["status"].as_u64().unwrap()).unwrap(),
                    a["location"].as_str().map(str::to_owned),
                    file,
                    a["own"]["x-release"].as_str().map(str::to_owned),
                )
            })
            .collect();
        (seen, most)
    };
    let served = |host: &str| -> Vec<Answer> {
        paths
            .iter()
            .map(|path| {
                let (status, head, body) = get_from(port, host, path, "");
                let header = |n: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{n}: ")))
                        .map(str::to_owned)
                };
                let body = String::from_utf8_lossy(&body).into_owned();
                let file = body.strip_prefix("file ").map(str::to_owned);
                // The function's own answers carry no release header (the environment's
                // policy adds its headers there): compared where the origin answered.
                let release = file.as_ref().and(header("x-release"));
                (status, header("location"), file, release)
            })
            .collect()
    };
    let _server = serve(&p, &env, port);
    let agree = |what: &str, host: &str| -> Vec<Answer> {
        let (f, reads) = function(host);
        let mut v = served(host);
        // (`get_from` lower-cases the head.)
        for a in &mut v {
            a.1 = a.1.take().map(|l| l.to_ascii_lowercase());
        }
        let lower: Vec<Answer> = f
            .iter()
            .map(|a| {
                (
                    a.0,
                    a.1.as_ref().map(|l| l.to_ascii_lowercase()),
                    a.2.clone(),
                    a.3.clone(),
                )
            })
            .collect();
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(
                lower[i], v[i],
                "{what}: {path}: the function and serve differ"
            );
        }
        assert!(reads <= 3, "{what}: {reads} KeyValueStore reads");
        eprintln!(
            "{what}: {} paths alike, at most {reads} KeyValueStore reads",
            paths.len()
        );
        f
    };
    let at = |a: &[Answer], path: &str| a[paths.iter().position(|p| *p == path).unwrap()].clone();

    let one = agree("release 1", "127.0.0.1");
    assert_eq!(at(&one, "/old").1.as_deref(), Some("/v1"));
    assert_eq!(at(&one, "/docs").0, 301);

    // Release 2: a new directory, an extension-less file, another redirect, a newly
    // protected path — and no `edge --apply`.
    std::fs::write(
        p.dir.join("driftless.toml"),
        format!(
            "{base}{}",
            release_rules("/v2", "two", "\"/members/**\", \"/admin/**\"")
        ),
    )
    .unwrap();
    for k in ["newdir/index.html", "LICENSE", "admin/index.html"] {
        page(&p, k);
    }
    p.cmd(&["deploy", &env, "--yes"])
        .expect(0)
        .mentions(&["Edge rules change"]);
    let two = agree("release 2", "127.0.0.1");
    assert_eq!(at(&two, "/old").1.as_deref(), Some("/v2"));
    assert_eq!(
        (at(&two, "/newdir").0, at(&two, "/newdir").1.as_deref()),
        (301, Some("/newdir/"))
    );
    assert_eq!(at(&two, "/newdir/").2.as_deref(), Some("newdir/index.html"));
    assert_eq!(at(&two, "/LICENSE").2.as_deref(), Some("LICENSE"));
    assert_eq!(
        at(&two, "/admin/").0,
        401,
        "a newly protected path is protected at once"
    );

    // A rollback brings release 1's rules back with its bytes.
    p.cmd(&["rollback", &env, "--yes"]).expect(0);
    let back = agree("rolled back", "127.0.0.1");
    assert_eq!(at(&back, "/old").1.as_deref(), Some("/v1"));
    assert_eq!(at(&back, "/newdir").0, 404);

    // A preview answers its own redirect; live keeps its own.
    std::fs::write(
        p.dir.join("driftless.toml"),
        format!(
            "{base}{}",
            release_rules("/preview", "preview", "\"/members/**\"")
        ),
    )
    .unwrap();
    p.cmd(&["deploy", &env, "--preview", "pr-9", "--yes"])
        .expect(0);
    let previewed = agree("preview pr-9", "pr-9.preview.test");
    assert_eq!(at(&previewed, "/old").1.as_deref(), Some("/preview"));
    let live = agree("live beside the preview", "127.0.0.1");
    assert_eq!(at(&live, "/old").1.as_deref(), Some("/v1"));
    let (items, bytes) = rt.block_on(kvs.usage()).unwrap();
    eprintln!("KeyValueStore after these steps: {items} keys, {bytes} bytes");
}

/// Each release's `[edge] headers` at CloudFront: the viewer-response function adds the
/// headers of the release the pointer (or the preview's value) names, read from the
/// KeyValueStore — so a rollback of a breaking header is one pointer write.
#[test]
fn each_release_is_served_with_its_own_headers() {
    use driftless::edge::table::compile;
    let atomic = crate::edge::atomic(Some(".preview.test"));
    let response = driftless::edge::function::viewer_response(&atomic).code;
    crate::edge::assert_runs_on_cloudfront(&response);
    let release = |csp: &str| {
        let edge: driftless::config::EdgeConfig = toml::from_str(&format!(
            "headers = {{ \"Content-Security-Policy\" = \"{csp}\" }}"
        ))
        .unwrap();
        compile(&edge, ["index.html"].into_iter(), None).unwrap()
    };
    let (good, broken) = (release("default-src 'self'"), release("default-src 'none'"));
    let mut kvs = serde_json::Map::new();
    for d in [&good, &broken] {
        for (k, v) in &d.values {
            kvs.insert(k.clone(), v.clone().into());
        }
    }
    let pointer = |d: &driftless::edge::table::EdgeData| {
        serde_json::json!({ "slot": "a", "release": "r", "e": d.root }).to_string()
    };
    let code = driftless::edge::function::viewer_request(
        &driftless::config::EdgeConfig::default(),
        &[],
        None,
        &atomic,
    )
    .unwrap()
    .code;
    let mut answers = Vec::new();
    for (host, live, preview) in [
        ("www.test", &broken, &good),
        ("www.test", &good, &broken),
        ("pr-1.preview.test", &good, &broken),
    ] {
        let mut held = kvs.clone();
        held.insert("current".into(), pointer(live).into());
        held.insert(
            "preview:pr-1".into(),
            serde_json::json!({ "release": "p", "expires": 4_102_444_800_i64, "e": preview.root })
                .to_string()
                .into(),
        );
        let a = crate::edge::harness(&serde_json::json!({
            "code": code, "response": response, "errors": [], "site": ["slots/a/index.html", "previews/pr-1/index.html"],
            "state": [], "kvs": held, "cases": [{ "path": "/", "headers": { "Host": host } }],
        }));
        answers.push(
            a[0]["own"]["content-security-policy"]
                .as_str()
                .unwrap_or("none")
                .to_owned(),
        );
    }
    assert_eq!(
        answers,
        [
            "default-src 'none'",
            "default-src 'self'",
            "default-src 'none'"
        ],
        "live, then rolled back (one pointer write), then a preview with its own"
    );
}

/// An atomic environment made before releases carried their rules (its pointer names no
/// root, its slots hold no edge data): the next `edge --apply` writes each held
/// release's rules to the KeyValueStore and names them in the pointer before the new
/// function reads it, the pointer naming the same slot and release throughout (what an
/// older function reads); the deploy after goes live with its own rules, and a rollback
/// brings the older release's back by one pointer write.
#[test]
fn an_existing_atomic_environment_moves_to_per_release_rules() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "mv");
    let env = cf.env.clone();
    let tmp = tempfile::tempdir().unwrap();
    let base = cf.config("atomic");
    let edge = |to: &str| {
        format!("\n[edge]\nredirects = [{{ from = \"/old\", to = \"{to}\", status = 301 }}]\n")
    };
    let p = cf.project(&tmp.path().join("w"), &format!("{base}{}", edge("/v1")));
    for k in ["index.html", "docs/index.html"] {
        p.write(k, &format!("file {k}"));
    }
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    p.write("index.html", "file index.html, second");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);

    // Back to the state an earlier version left: no edge data anywhere.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let pointer = || -> serde_json::Value {
        serde_json::from_str(&rt.block_on(kvs.get("current")).unwrap().unwrap()).unwrap()
    };
    let before = pointer();
    assert!(before.get("e").is_some(), "{before}");
    let mut old = before.clone();
    old.as_object_mut().unwrap().remove("e");
    let etag = rt.block_on(kvs.etag()).unwrap();
    rt.block_on(kvs.put("current", &old.to_string(), &etag))
        .unwrap();
    for (k, _) in rt.block_on(kvs.keys("")).unwrap() {
        if k.starts_with("t:") || k.starts_with("u:") || k.starts_with("h:") {
            let etag = rt.block_on(kvs.etag()).unwrap();
            rt.block_on(kvs.delete(&k, &etag)).unwrap();
        }
    }
    let slots_key = s
        .keys_under(&s.moto, &cf.bucket, "")
        .into_iter()
        .find(|k| k.ends_with("/slots.json"))
        .expect("slots.json");
    let url = format!("s3://{}/{slots_key}", cf.bucket);
    let file = tmp.path().join("slots.json");
    s.aws(&s.moto, &["s3", "cp", &url, file.to_str().unwrap()]);
    let mut slots: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for held in slots.as_object_mut().unwrap().values_mut() {
        if let Some(h) = held.as_object_mut() {
            h.remove("edge");
        }
    }
    std::fs::write(&file, slots.to_string()).unwrap();
    s.aws(
        &s.moto,
        &[
            "s3",
            "cp",
            file.to_str().unwrap(),
            &url,
            "--content-type",
            "application/json",
        ],
    );

    // `edge` says what the move writes; `--apply` writes it.
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["write the [edge] rules of 2 release(s) the slots and previews hold"]);
    let after = pointer();
    assert_eq!(
        (&after["slot"], &after["release"]),
        (&old["slot"], &old["release"]),
        "the same release stays live"
    );
    assert!(
        after.get("e").is_some(),
        "the pointer names its rules: {after}"
    );
    let tables = rt.block_on(kvs.keys("t:")).unwrap().len();
    assert!(tables > 0, "the routing table is back");

    // At the edge, through the function as published: the rules and the routing facts.
    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    let code = std::fs::read_to_string(export.join("function.js")).unwrap();
    let ask = |paths: &[&str]| -> Vec<(u64, Option<String>)> {
        let held = crate::servers::Servers::kvs_values(&rt, &kvs);
        let site: Vec<String> = s
            .keys_under(&s.moto, &cf.bucket, "www/")
            .into_iter()
            .filter(|k| k.starts_with("slots/"))
            .collect();
        let cases: Vec<serde_json::Value> = paths
            .iter()
            .map(|path| serde_json::json!({ "path": path, "headers": { "Host": "www.test" } }))
            .collect();
        crate::edge::harness(&serde_json::json!({
            "code": code, "errors": [], "site": site, "state": [], "kvs": held, "cases": cases,
        }))
        .iter()
        .map(|a| {
            (
                a["status"].as_u64().unwrap(),
                a["location"].as_str().map(str::to_owned),
            )
        })
        .collect()
    };
    assert_eq!(
        ask(&["/old", "/docs"]),
        [
            (301, Some("/v1".to_owned())),
            (301, Some("/docs/".to_owned()))
        ]
    );
    // The next deploy goes live with its own rules; a rollback brings the earlier ones.
    std::fs::write(
        p.dir.join("driftless.toml"),
        format!("{base}{}", edge("/v2")),
    )
    .unwrap();
    p.write("index.html", "file index.html, third");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    assert_eq!(ask(&["/old"]), [(301, Some("/v2".to_owned()))]);
    p.cmd(&["rollback", &env, "--yes"]).expect(0);
    assert_eq!(ask(&["/old"]), [(301, Some("/v1".to_owned()))]);
}

/// Behind CloudFront a release's rules go to the KeyValueStore, which holds 5 MB: a
/// deploy whose routing data would not fit beside what the store holds is refused when
/// it is planned (guard edge, exit 3, the bytes and the limit named, the commands that
/// free room), with nothing written; a deploy that needs no new data still goes.
#[test]
fn a_release_that_would_not_fit_the_key_value_store_is_refused_at_plan_time() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "kf");
    let env = cf.env.clone();
    let tmp = tempfile::tempdir().unwrap();
    let p = cf.project(&tmp.path().join("w"), &cf.config("atomic"));
    // Enough directories that the routing table has buckets of its own.
    p.write("index.html", "home");
    for i in 0..300 {
        p.write(&format!("section-{i:03}/index.html"), &format!("page {i}"));
    }
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    // Someone else's data fills the store to within a pointer's value and 10 bytes.
    let limit = driftless::aws::kvs::STORE_BYTES_MAX;
    let (_, used) = rt.block_on(kvs.usage()).unwrap();
    let mut room = limit - u64::try_from(used).unwrap() - 1024 - 10;
    let mut junk = Vec::new();
    while room > 0 {
        let key = format!("other:{:05}", junk.len());
        let take = usize::try_from(room.min(1000 + key.len() as u64)).unwrap();
        if take <= key.len() {
            break;
        }
        let value = "x".repeat(take - key.len());
        room -= (key.len() + value.len()) as u64;
        junk.push((key, value));
    }
    let etag = rt.block_on(kvs.etag()).unwrap();
    rt.block_on(kvs.update_keys(&junk, &[], &etag)).unwrap();
    let pointer = || rt.block_on(kvs.get("current")).unwrap().unwrap();
    let live = pointer();

    // A new directory needs a bucket written: refused before anything is.
    p.write("section-new/index.html", "new");
    let refused = p.cmd(&["deploy", &env, "--yes", "--json"]).expect(3).json();
    // Refused by the plan (before any write), not by the apply.
    assert_eq!(
        refused["plan"]["refusals"][0]["guard"], "edge",
        "{refused:#}"
    );
    let text = refused.to_string();
    for part in [
        "\"edge\"",
        "more bytes",
        &format!("of its {limit}"),
        &format!("driftless-{env}"),
        &format!("driftless previews {env} --delete NAME"),
        &format!("driftless gc {env}"),
    ] {
        assert!(text.contains(part), "{part}: {refused}");
    }
    assert_eq!(pointer(), live, "nothing was written");
    p.cmd(&["status", &env])
        .expect(0)
        .mentions(&["301 files, deploy"]);

    // A change of bytes alone writes no edge data: it goes.
    std::fs::remove_dir_all(p.dir.join("site/section-new")).unwrap();
    p.write("section-001/index.html", "page 1, again");
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    assert_ne!(pointer(), live);
}

/// `status` says when `edge --apply` is needed and why: never for a deploy or for a
/// release's own rules (they go with the release); for a feature switched on, naming it;
/// for a distribution-level setting, naming what `edge --apply` would do.
#[test]
fn status_says_when_edge_apply_is_needed_and_why() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "st");
    let env = cf.env.clone();
    let tmp = tempfile::tempdir().unwrap();
    let base = cf.config("atomic");
    // (No headers: moto has no response headers policies.)
    let redirect =
        |to: &str| format!("\n[edge]\nredirects = [{{ from = \"/old\", to = \"{to}\" }}]\n");
    let config = tmp.path().join("w/driftless.toml");
    let p = cf.project(&tmp.path().join("w"), &format!("{base}{}", redirect("/v1")));
    p.write("index.html", "home").write("404.html", "missing");
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let fine = "is live with the rules of driftless.toml";
    p.cmd(&["status", &env]).expect(0).mentions(&[fine]);
    // A release's own rules change: they go with its deploy, no `edge --apply`.
    std::fs::write(&config, format!("{base}{}", redirect("/v2"))).unwrap();
    p.cmd(&["status", &env]).expect(0).mentions(&[fine]);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    p.cmd(&["status", &env]).expect(0).mentions(&[fine]);
    // A feature of the function's code: named.
    let with_previews = format!(
        "{}preview_url = \"https://{{name}}.preview.example.com\"\n{}",
        base,
        redirect("/v2")
    );
    std::fs::write(&config, &with_previews).unwrap();
    p.cmd(&["status", &env]).expect(0).mentions(&[&format!(
        "`driftless edge {env} --apply` needed: previews (preview_url) switched on"
    )]);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["status", &env]).expect(0).mentions(&[fine]);
    // The distribution's own setting (CloudFront's 404 page): what the apply would do.
    std::fs::write(
        &config,
        with_previews.replace("[edge]\n", "[edge]\nnot_found = \"404.html\"\n"),
    )
    .unwrap();
    p.cmd(&["status", &env]).expect(0).mentions(&[
        "the environment's settings at CloudFront changed",
        &format!("`driftless edge {env} --apply` would"),
        "error responses",
    ]);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["status", &env]).expect(0).mentions(&[fine]);
    // Published by an older driftless whose function was other code: the version named.
    let older = tmp.path().join("older.js");
    let code = "function handler(event) { return event.request; }\n";
    std::fs::write(&older, code).unwrap();
    s.edit_function_by_hand(&format!("driftless-{env}"), &older, true);
    let record = s
        .keys_under(&s.moto, &cf.bucket, "")
        .into_iter()
        .find(|k| k.ends_with("/edge.json"))
        .expect("edge.json");
    let url = format!("s3://{}/{record}", cf.bucket);
    let file = tmp.path().join("edge.json");
    s.aws(&s.moto, &["s3", "cp", &url, file.to_str().unwrap()]);
    let mut published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    published["version"] = "0.0.1".into();
    published["sha256"] = driftless::digest::hash_bytes(code.as_bytes()).into();
    std::fs::write(&file, published.to_string()).unwrap();
    s.aws(&s.moto, &["s3", "cp", file.to_str().unwrap(), &url]);
    p.cmd(&["status", &env]).expect(0).mentions(&[&format!(
        "`driftless edge {env} --apply` needed: driftless {} makes other function code than 0.0.1 did",
        env!("CARGO_PKG_VERSION")
    )]);
}

/// What the atomic function costs per request on the largest site measured (20,000
/// directories, 2,100 redirects), with the pointer and the routing table in the
/// KeyValueStore: the answers are right for the paths that read a bucket, and the time
/// per request in Node (the harness's S3 and headers included: an upper bound of the
/// function's own) is printed for the note — CloudFront does not publish the time its
/// compute utilisation is a share of, so no test asserts on it.
#[test]
fn the_function_routes_a_large_site_from_the_key_value_store() {
    use driftless::edge::table::compile;
    let keys: Vec<String> = (0..20_000)
        .map(|i| format!("docs/s{}/p{i}/index.html", i % 40))
        .chain(std::iter::once("index.html".to_owned()))
        .collect();
    let redirects: String = (0..2000)
        .map(|i| {
            format!(
                "{{ from = \"/old/p{i}\", to = \"/docs/s{}/p{i}/\" }},\n",
                i % 40
            )
        })
        .chain(
            (0..100).map(|i| format!("{{ from = \"/r{i}/:a/*\", to = \"/docs/:a/:splat\" }},\n")),
        )
        .collect();
    let edge: driftless::config::EdgeConfig =
        toml::from_str(&format!("redirects = [\n{redirects}]\n")).unwrap();
    let data = compile(&edge, keys.iter().map(String::as_str), None).unwrap();
    let mut kvs: serde_json::Map<String, serde_json::Value> = data
        .values
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    kvs.insert(
        "current".into(),
        serde_json::json!({ "slot": "a", "release": "r", "e": data.root })
            .to_string()
            .into(),
    );
    let atomic = crate::edge::atomic(None);
    let code = driftless::edge::function::viewer_request(
        &driftless::config::EdgeConfig::default(),
        &[],
        None,
        &atomic,
    )
    .unwrap()
    .code;
    let site: Vec<String> = keys.iter().map(|k| format!("slots/a/{k}")).collect();
    // The paths that cost most: a directory without its slash (a bucket read), an exact
    // redirect among 2,000, a pattern redirect after 99 others, a missing page.
    let asks = [
        ("/docs/s7/p19527", 301, Some("/docs/s7/p19527/")),
        ("/old/p1999", 301, Some("/docs/s39/p1999/")),
        ("/r99/s1/x/y", 301, Some("/docs/s1/x/y")),
        ("/docs/s3/nothing", 404, None),
    ];
    let run = |n: usize| -> (std::time::Duration, Vec<serde_json::Value>) {
        let cases: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({ "path": asks[i % asks.len()].0, "headers": { "Host": "www.test" } }))
            .collect();
        let start = std::time::Instant::now();
        let answers = crate::edge::harness(&serde_json::json!({
            "code": code, "errors": [], "site": site, "state": [], "kvs": kvs, "cases": cases,
            "count_reads": true,
        }));
        (start.elapsed(), answers)
    };
    let (one, _) = run(asks.len());
    let (many, answers) = run(4000 + asks.len());
    for (i, a) in answers.iter().enumerate().take(asks.len() * 2) {
        let (path, status, location) = asks[i % asks.len()];
        assert_eq!(a["status"], status, "{path}: {a}");
        assert_eq!(a["location"].as_str(), location, "{path}: {a}");
        assert!(a["reads"].as_u64().unwrap() <= 3, "{path}: {a}");
    }
    let per = many.saturating_sub(one).as_secs_f64() * 1e6 / 4000.0;
    eprintln!(
        "20,000 directories, 2,100 redirects: function {} bytes; {per:.0} µs per request in Node (harness included), at most {} KeyValueStore reads",
        code.len(),
        answers
            .iter()
            .map(|a| a["reads"].as_u64().unwrap())
            .max()
            .unwrap()
    );
}
