//! Previews (issue 23): `deploy ENV --preview NAME` puts a release at its own URL and
//! never touches live; `serve` answers `NAME.localhost`, 410 once it has expired;
//! `previews` lists and deletes; `gc` removes expired previews and the bytes only they
//! held.

use std::collections::BTreeMap;
use std::path::Path;

use crate::serve::{free_port, get, get_from, serve};
use crate::util::{Project, files, tree};

const PREVIEW_URL: &str = "preview_url = \"https://{name}.preview.example.com\"\n";

/// Every file under `dir`, with its modification time (a write would change one).
fn stamped(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    tree(dir, &[])
        .keys()
        .map(|k| {
            let m = std::fs::metadata(dir.join(k)).unwrap().modified().unwrap();
            (k.clone(), m)
        })
        .collect()
}

/// Bytes of the site and its snapshots in a local store (not the journal, which every
/// command adds to, nor the store's own metadata).
fn size_of(store: &Path) -> u64 {
    tree(store, &[".driftless/journal/", ".driftless-store/"])
        .values()
        .map(|v| v.len() as u64)
        .sum()
}

#[test]
fn a_preview_gets_its_own_url_and_live_never_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, PREVIEW_URL);
    p.write("index.html", "live v1").write("app.css", "css v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let live = tree(&store.join("current"), &[]);
    let slots = stamped(&store.join("slots"));
    let head = crate::util::head(&store);

    p.write("index.html", "preview v2").write("new.js", "js");
    p.remove("app.css");
    p.cmd(&["deploy", "prod", "--preview", "feature/New Look", "--yes"])
        .expect(0)
        .mentions(&[
            "Preview name: feature-new-look (from \"feature/New Look\")",
            "Plan: preview feature-new-look → prod",
            // The proof block is the difference against live; the build's guards ran.
            "1 to create, 1 to update, 0 header-only, 1 to delete",
            "guards: site ✓  lock ✓  pending ✓  feature ✓",
            "https://feature-new-look.preview.example.com",
        ]);
    let preview = files(&[("index.html", "preview v2"), ("new.js", "js")]);
    assert_eq!(tree(&store.join("previews/feature-new-look"), &[]), preview);
    // Live: the same pointer, HEAD, slots and bytes.
    assert_eq!(tree(&store.join("current"), &[]), live);
    assert_eq!(stamped(&store.join("slots")), slots);
    assert_eq!(crate::util::head(&store), head);

    let port = free_port();
    let _server = serve(&p, "prod", port);
    let (status, head_lines, body) = get(port, "/", "");
    assert_eq!((status, body.as_slice()), (200, b"live v1".as_slice()));
    assert!(!head_lines.contains("x-robots-tag"), "{head_lines}");
    let host = format!("feature-new-look.localhost:{port}");
    let (status, head_lines, body) = get_from(port, &host, "/", "");
    assert_eq!((status, body.as_slice()), (200, b"preview v2".as_slice()));
    assert!(head_lines.contains("x-robots-tag: noindex"), "{head_lines}");
    // The preview_url host works too (a wildcard DNS name pointed at `serve`).
    let (status, _, body) = get_from(port, "feature-new-look.preview.example.com", "/new.js", "");
    assert_eq!((status, body.as_slice()), (200, b"js".as_slice()));
    // A file only live has is not in the preview; an unknown preview is not live.
    assert_eq!(get_from(port, &host, "/app.css", "").0, 404);
    let (status, head_lines, _) = get_from(port, "nope.localhost", "/", "");
    assert_eq!(status, 404);
    assert!(head_lines.contains("x-robots-tag: noindex"), "{head_lines}");

    let listed = p.cmd(&["previews", "prod", "--json"]).expect(0).json();
    let one = &listed["previews"][0];
    assert_eq!(one["name"], "feature-new-look");
    let release = one["release"].as_str().unwrap().to_owned();
    assert!(
        store
            .join(format!(".driftless/releases/{release}.json"))
            .exists()
    );
    assert_eq!(one["complete"], true);
    assert_eq!(one["expired"], false);
    assert_eq!(one["url"], "https://feature-new-look.preview.example.com");
    assert!(one["author"].as_str().unwrap().contains('@'), "{one}");
    let at = |k: &str| one[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let days = at("expires_at").duration_since(at("created_at")).as_hours() / 24;
    assert_eq!(days, 6, "the default expiry is 7 days (less a moment)");
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert_eq!(status["previews"]["count"], 1, "{status}");
    // Not part of live's history.
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).all();
    assert!(!log.contains(&release), "{log}");

    // The same name again: updated in place, only what differs written.
    p.write("new.js", "js 2");
    p.cmd(&[
        "deploy",
        "prod",
        "--preview",
        "feature-new-look",
        "--yes",
        "--expires",
        "2d",
    ])
    .expect(0)
    .mentions(&[
        "preview feature-new-look: 1 written (0 copied from live), 0 removed, 1 already in place",
    ]);
    let (status, _, body) = get_from(port, &host, "/new.js", "");
    assert_eq!((status, body.as_slice()), (200, b"js 2".as_slice()));
    let listed = p.cmd(&["previews", "prod", "--json"]).expect(0).json();
    assert_eq!(listed["previews"].as_array().unwrap().len(), 1);
    assert_eq!(listed["previews"][0]["created_at"], one["created_at"]);
    assert_ne!(listed["previews"][0]["updated_at"], one["updated_at"]);
    assert_eq!(tree(&store.join("current"), &[]), live);

    // --delete: the URL goes at once, the files with it.
    p.cmd(&["previews", "prod", "--delete", "feature-new-look", "--yes"])
        .expect(0)
        .mentions(&["Deleted preview feature-new-look of prod: 2 file(s) removed"]);
    assert!(!store.join("previews/feature-new-look").exists());
    assert_eq!(get_from(port, &host, "/", "").0, 404);
    p.cmd(&["previews", "prod", "--delete", "feature-new-look", "--yes"])
        .expect(2)
        .mentions(&["prod has no preview \"feature-new-look\""]);
}

#[test]
fn a_preview_skips_the_guards_about_live_but_not_the_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let a = Project::atomic(&tmp.path().join("a"), &store, PREVIEW_URL);
    a.write("index.html", "a1").write("page.html", "p1");
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);
    a.write("index.html", "a2");
    a.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // Another checkout that never saw live's releases: a deploy would take back what
    // they brought, a preview is just a preview.
    let b = Project::atomic(&tmp.path().join("b"), &store, PREVIEW_URL);
    b.write("index.html", "b1");
    b.cmd(&["deploy", "prod", "--yes"]).expect(3);
    b.cmd(&["deploy", "prod", "--preview", "pr-7", "--yes"])
        .expect(0);
    assert_eq!(
        tree(&store.join("previews/pr-7"), &[]),
        files(&[("index.html", "b1")])
    );
    // A hold freezes live, not previews.
    a.cmd(&["hold", "prod", "--reason", "launch freeze"])
        .expect(0);
    a.cmd(&["deploy", "prod", "--preview", "pr-8", "--yes"])
        .expect(0);
    // The build's own problems still refuse it.
    std::os::unix::fs::symlink("/etc/passwd", a.dir.join("site/leak")).unwrap();
    a.cmd(&["deploy", "prod", "--preview", "pr-9", "--yes"])
        .expect(3)
        .mentions(&["[site]"]);
    assert!(!store.join("previews/pr-9").exists());
    // Bad names and expiries are usage errors, before anything is read.
    a.cmd(&["deploy", "prod", "--preview", "///", "--yes"])
        .expect(2)
        .mentions(&["a preview name needs letters or digits"]);
    a.cmd(&[
        "deploy",
        "prod",
        "--preview",
        "x",
        "--expires",
        "31d",
        "--yes",
    ])
    .expect(2)
    .mentions(&["at most 30d"]);
    a.cmd(&[
        "deploy",
        "prod",
        "--preview",
        "x",
        "--expires",
        "soon",
        "--yes",
    ])
    .expect(2);
}

#[test]
fn an_in_place_environment_refuses_previews_naming_migrate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::new(&tmp.path().join("w"), &store, PREVIEW_URL);
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["deploy", "prod", "--preview", "pr-1", "--yes"])
        .expect(3)
        .mentions(&[
            "previews need the atomic layout",
            "driftless migrate prod --layout atomic",
        ]);
    assert!(!store.join("previews").exists());
}

#[test]
fn an_expired_preview_answers_410_and_gc_frees_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, PREVIEW_URL);
    p.write("index.html", "live");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    // Bytes only the previews have: a large file each.
    p.write("big.bin", &"x".repeat(300_000));
    p.cmd(&[
        "deploy",
        "prod",
        "--preview",
        "pr-1",
        "--expires",
        "1s",
        "--yes",
    ])
    .expect(0);
    p.write("big.bin", &"y".repeat(300_000));
    p.cmd(&["deploy", "prod", "--preview", "pr-2", "--yes"])
        .expect(0);
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let port = free_port();
    let _server = serve(&p, "prod", port);
    let (status, head_lines, body) = get_from(port, "pr-1.localhost", "/", "");
    assert_eq!(status, 410);
    assert!(head_lines.contains("x-robots-tag: noindex"), "{head_lines}");
    assert!(
        String::from_utf8_lossy(&body).contains("Preview pr-1 has expired"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(get_from(port, "pr-2.localhost", "/big.bin", "").0, 200);
    let listed = p.cmd(&["previews", "prod"]).expect(0);
    listed.mentions(&["expired", "driftless gc prod"]);

    let before = size_of(&store);
    p.cmd(&["gc", "prod", "--yes"])
        .expect(0)
        .mentions(&["previews  1 expired, removed with their 2 file(s)", "pr-1"]);
    let after = size_of(&store);
    eprintln!("gc of an expired preview: store {before} → {after} bytes");
    // Its copy in previews/ and its content in the snapshots: 2 × 300 KB.
    assert!(
        before - after >= 600_000,
        "gc freed {} bytes ({before} → {after})",
        before - after
    );
    assert!(!store.join("previews/pr-1").exists());
    // The preview that has not expired keeps its bytes and answers.
    assert_eq!(get_from(port, "pr-2.localhost", "/big.bin", "").0, 200);
    assert_eq!(get_from(port, "pr-1.localhost", "/", "").0, 404);
    let listed = p.cmd(&["previews", "prod", "--json"]).expect(0).json();
    let names: Vec<&str> = listed["previews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pr-2"]);
    // A second gc has nothing left of pr-1 to take, and keeps pr-2's bytes.
    p.cmd(&["gc", "prod", "--yes"]).expect(0);
    assert_eq!(get_from(port, "pr-2.localhost", "/big.bin", "").0, 200);
}

#[test]
fn basic_auth_can_guard_previews_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(
        &tmp.path().join("w"),
        &store,
        &format!(
            "{PREVIEW_URL}\n[edge.basic_auth]\nuser = \"review\"\npassword_env = \"PREVIEW_PASSWORD\"\npreviews_only = true\n"
        ),
    )
    .envs(vec![("PREVIEW_PASSWORD", "correct horse battery".into())]);
    p.write("index.html", "live");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["deploy", "prod", "--preview", "pr-1", "--yes"])
        .expect(0);
    let port = free_port();
    let _server = serve(&p, "prod", port);
    assert_eq!(get(port, "/", "").0, 200, "live is public");
    assert_eq!(get_from(port, "pr-1.localhost", "/", "").0, 401);
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("review:correct horse battery");
    let (status, _, body) = get_from(
        port,
        "pr-1.localhost",
        "/",
        &format!("Authorization: Basic {auth}\r\n"),
    );
    assert_eq!((status, body.as_slice()), (200, b"live".as_slice()));
}

#[test]
fn the_reviewed_preview_goes_live_byte_for_byte_after_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let port = free_port();
    let p = Project::atomic(
        &tmp.path().join("w"),
        &store,
        &format!(
            "url = \"http://127.0.0.1:{port}\"\npreview_url = \"http://{{name}}.localhost:{port}\"\n"
        ),
    );
    p.write("index.html", "live v1").write("old.css", "old");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "reviewed v2").write("app.js", "js");
    p.remove("old.css");
    p.cmd(&["deploy", "prod", "--preview", "pr-5", "--yes"])
        .expect(0);
    let reviewed = tree(&store.join("previews/pr-5"), &[]);
    // The checkout moves on: what goes live is still what was reviewed, not this.
    p.write("index.html", "unreviewed v3");

    // No server: the preview cannot be verified, so it does not go live.
    p.cmd(&["deploy", "prod", "--from-preview", "pr-5", "--yes"])
        .expect(3)
        .mentions(&[
            "[unverified] preview pr-5 did not pass verify",
            "did not answer",
        ]);
    assert_eq!(
        tree(&store.join("current"), &[]),
        files(&[("index.html", "live v1"), ("old.css", "old")])
    );

    let _server = serve(&p, "prod", port);
    // A hand edit of the preview since it was deployed: not what was reviewed.
    let edited = store.join("previews/pr-5/app.js");
    let mut perms = std::fs::metadata(&edited).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&edited, perms).unwrap();
    std::fs::write(&edited, "tampered").unwrap();
    p.cmd(&["deploy", "prod", "--from-preview", "pr-5", "--yes"])
        .expect(3);
    assert_eq!(
        tree(&store.join("current"), &[]),
        files(&[("index.html", "live v1"), ("old.css", "old")])
    );
    p.write("index.html", "reviewed v2");
    p.cmd(&["deploy", "prod", "--preview", "pr-5", "--yes"])
        .expect(0);
    assert_eq!(tree(&store.join("previews/pr-5"), &[]), reviewed);
    p.write("index.html", "unreviewed v3");

    let snapshots = tree(&store.join(".driftless/objects"), &[]).len();
    p.cmd(&["deploy", "prod", "--from-preview", "pr-5", "--yes"])
        .expect(0)
        .mentions(&[
            "Plan: deploy of preview pr-5",
            "guards: hold ✓  lock ✓  pending ✓  canary ✓  drift ✓  stale-base ✓  revert ✓  unverified ✓  immutable ✓",
            "slot b: 2 written (2 copied from the preview), 0 removed",
        ]);
    // Nothing new came into the snapshots: no byte was uploaded.
    assert_eq!(
        tree(&store.join(".driftless/objects"), &[]).len(),
        snapshots
    );
    // Live now serves exactly the reviewed bytes (and keeps the removed stylesheet for
    // pages still open, as any release does).
    let live = tree(&store.join("current"), &[]);
    for (key, bytes) in &reviewed {
        assert_eq!(live.get(key), Some(bytes), "{key}");
    }
    assert_eq!(get(port, "/", "").2, b"reviewed v2");
    // The ledger says which preview, whose release, and who.
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    let top = &log["releases"][0];
    assert_eq!(top["kind"]["type"], "from-preview", "{top}");
    assert_eq!(top["kind"]["name"], "pr-5");
    assert!(top["author"].as_str().unwrap().contains('@'), "{top}");
    // A rollback is one pointer write away, as after any release.
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(0)
        .mentions(&["0 written"]);
    assert_eq!(get(port, "/", "").2, b"live v1");
}

/// One request of the preview table: the host it names, the path, and whether it
/// carries the basic-auth credentials.
struct Ask {
    host: &'static str,
    path: &'static str,
    auth: bool,
}

const ASKS: [Ask; 10] = [
    Ask {
        host: "pr-1",
        path: "/",
        auth: true,
    },
    Ask {
        host: "pr-1",
        path: "/docs/",
        auth: true,
    },
    Ask {
        host: "pr-1",
        path: "/docs",
        auth: true,
    },
    Ask {
        host: "pr-1",
        path: "/only-in-preview.html",
        auth: true,
    },
    Ask {
        host: "pr-1",
        path: "/",
        auth: false,
    },
    Ask {
        host: "old",
        path: "/",
        auth: true,
    },
    Ask {
        host: "nope",
        path: "/",
        auth: true,
    },
    Ask {
        host: "",
        path: "/",
        auth: false,
    },
    Ask {
        host: "",
        path: "/only-in-preview.html",
        auth: false,
    },
    Ask {
        host: "PR-1",
        path: "/docs/",
        auth: true,
    },
];

/// What an answer was, alike for `serve` and the function: status, which release's copy
/// of which key came back (`v1:index.html`), `Location`, whether it said noindex.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content: Option<String>,
    location: Option<String>,
    noindex: bool,
}

/// Previews behind CloudFront: each deploy writes the preview's key in the KeyValueStore;
/// the function (in Node, the bucket and KeyValueStore as moto holds them) picks the
/// preview from `Host` and answers the table exactly as `serve` does on the same
/// environment — including 410 for an expired preview, 404 for an unknown one, basic
/// auth on previews only, noindex on every answer it makes for a preview.
#[test]
fn the_function_and_serve_answer_previews_alike_from_the_key_value_store() {
    use base64::Engine as _;
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "pv");
    let env = cf.env.clone();
    cf.create_key_value_store();
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "{}{PREVIEW_URL}\n[edge]\nnot_found = \"404.html\"\n[edge.basic_auth]\nuser = \"review\"\npassword_env = \"PREVIEW_PASSWORD\"\npreviews_only = true\n",
        cf.config("atomic")
    );
    let mut vars = s.cloudfront_env();
    vars.push(("PREVIEW_PASSWORD", "correct horse battery".into()));
    let p = Project::with_config(&tmp.path().join("w"), &config).envs(vars);
    let site = |v: &str, extra: &[&str]| {
        for k in ["index.html", "docs/index.html", "404.html"]
            .iter()
            .chain(extra)
        {
            p.write(k, &format!("{v}:{k}"));
        }
    };
    site("v1", &[]);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    site("v2", &["only-in-preview.html"]);
    p.cmd(&["deploy", &env, "--preview", "pr-1", "--yes"])
        .expect(0);
    site("v3", &[]);
    p.cmd(&[
        "deploy",
        &env,
        "--preview",
        "old",
        "--expires",
        "1s",
        "--yes",
    ])
    .expect(0);
    std::thread::sleep(std::time::Duration::from_millis(1500));

    // What the KeyValueStore holds: the live pointer and one key per preview.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let mut held = serde_json::Map::new();
    for key in ["current", "preview:pr-1", "preview:old", "preview:nope"] {
        if let Some(v) = rt.block_on(kvs.get(key)).unwrap() {
            held.insert(key.into(), v.into());
        }
    }
    assert_eq!(held.len(), 3, "{held:?}");
    let pr1: serde_json::Value =
        serde_json::from_str(held["preview:pr-1"].as_str().unwrap()).unwrap();
    let listed = p.cmd(&["previews", &env, "--json"]).expect(0).json();
    let release = listed["previews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "pr-1")
        .unwrap()["release"]
        .clone();
    assert_eq!(pr1["release"], release);
    let (items, bytes) = rt.block_on(kvs.usage()).unwrap();
    // The pointer, two previews, and the one bucket of routing facts they all share
    // (the same directories): each release's rules go with it.
    let tables = rt.block_on(kvs.keys("t:")).unwrap().len();
    assert_eq!((items, tables), (4, 1usize));
    assert!(
        bytes < 600,
        "{bytes} bytes for a pointer, two previews and their table"
    );

    // Published: the viewer-request function and, for previews, the viewer-response one.
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["viewer response: the canary cookie, noindex on previews"]);
    let dist = cf.distribution_config();
    let events: Vec<(String, String)> =
        dist["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"]["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["EventType"].as_str().unwrap().to_owned(),
                    a["FunctionARN"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
    let name = format!("driftless-{env}");
    assert_eq!(
        events,
        [
            ("viewer-request".to_owned(), name.clone()),
            ("viewer-response".to_owned(), format!("{name}-response"))
        ]
    );
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["is up to date"]);
    // doctor: the wildcard alias previews need, with a certificate of its own; the
    // certificate a preview host gets cannot be told before its DNS name resolves.
    let doctor = |code| {
        let d = p.cmd(&["doctor", &env, "--json"]).expect(code).json();
        let check = |id: &str| {
            d["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap_or_else(|| panic!("no {id} in {d}"))
                .clone()
        };
        (check("edge.preview_alias"), check("edge.preview_tls"))
    };
    let (alias, tls) = doctor(1);
    assert_eq!(alias["level"], "fail", "{alias}");
    assert!(
        alias["fix"]
            .as_str()
            .unwrap()
            .contains("*.preview.example.com"),
        "{alias}"
    );
    assert_eq!(tls["level"], "warn", "{tls}");
    assert!(
        tls["seen"].as_str().unwrap().starts_with("could not tell"),
        "{tls}"
    );
    s.update_distribution(&cf.distribution, |config| {
        config["Aliases"] =
            serde_json::json!({ "Quantity": 1, "Items": ["*.preview.example.com"] });
        config["ViewerCertificate"] = serde_json::json!({
            "CloudFrontDefaultCertificate": false,
            "ACMCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/preview",
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021"
        });
    });
    let (alias, _) = doctor(1);
    assert_eq!(alias["level"], "pass", "{alias}");
    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    let read = |name: &str| std::fs::read_to_string(export.join(name)).unwrap();
    let code = read("function.js");
    crate::edge::assert_runs_on_cloudfront(&code);
    let bucket_keys: Vec<String> = s
        .keys_under(&s.moto, &cf.bucket, "www/")
        .into_iter()
        .filter(|k| !k.starts_with(".driftless/"))
        .collect();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("review:correct horse battery")
    );
    let host = |a: &Ask| {
        if a.host.is_empty() {
            "www.example.com".to_owned()
        } else {
            format!("{}.preview.example.com", a.host)
        }
    };
    let cases: Vec<serde_json::Value> = ASKS
        .iter()
        .map(|a| {
            let mut headers = serde_json::json!({ "Host": host(a) });
            if a.auth {
                headers["Authorization"] = auth.clone().into();
            }
            serde_json::json!({ "path": a.path, "headers": headers })
        })
        .collect();
    let errors: serde_json::Value =
        serde_json::from_str(&read("custom-error-responses.json")).unwrap();
    let response = read("response-function.js");
    crate::edge::assert_runs_on_cloudfront(&response);
    let answers = crate::edge::harness(&serde_json::json!({
        "code": code,
        "response": response,
        "policy": serde_json::Value::Null,
        "errors": errors["Items"],
        "site": bucket_keys,
        "state": [],
        "kvs": held,
        "cases": cases,
    }));
    // Each prefix holds one release's copies: which is which.
    let version = |prefix: &str| match prefix {
        "previews/pr-1/" => "v2",
        "previews/old/" => "v3",
        "slots/a/" | "" => "v1",
        other => panic!("served from {other}"),
    };
    let function: Vec<Seen> = answers
        .iter()
        .map(|r| {
            let content = r["key"].as_str().map(|k| {
                let (prefix, key) = ["previews/pr-1/", "previews/old/", "slots/a/"]
                    .iter()
                    .find_map(|p| k.strip_prefix(p).map(|rest| (*p, rest)))
                    .unwrap_or(("", k));
                format!("{}:{key}", version(prefix))
            });
            Seen {
                status: u16::try_from(r["status"].as_u64().unwrap()).unwrap(),
                content: content.or_else(|| {
                    r["body"]
                        .as_str()
                        .filter(|b| b.contains("has expired"))
                        .map(|_| "expired".into())
                }),
                location: r["location"].as_str().map(str::to_owned),
                noindex: r["own"]["x-robots-tag"] == "noindex",
            }
        })
        .collect();
    // The release of the preview is in the cache key.
    assert_eq!(answers[0]["query"]["driftless-release"]["value"], release);
    assert_eq!(answers[0]["uri"], "/previews/pr-1/index.html");

    let port = free_port();
    let _server = serve(&p, &env, port);
    let served: Vec<Seen> = ASKS
        .iter()
        .map(|a| {
            let extra = if a.auth {
                format!("Authorization: {auth}\r\n")
            } else {
                String::new()
            };
            let (status, head, body) = get_from(port, &host(a), a.path, &extra);
            let body = String::from_utf8_lossy(&body).into_owned();
            let location = head
                .lines()
                .find_map(|l| l.strip_prefix("location: "))
                .map(str::to_owned);
            Seen {
                status,
                content: if body.contains("has expired") {
                    Some("expired".into())
                } else {
                    body.starts_with('v').then_some(body)
                },
                location,
                noindex: head.contains("x-robots-tag: noindex"),
            }
        })
        .collect();
    let expected = [
        (200, Some("v2:index.html")),
        (200, Some("v2:docs/index.html")),
        (301, None),
        (200, Some("v2:only-in-preview.html")),
        (401, None),
        (410, Some("expired")),
        (404, None),
        (200, Some("v1:index.html")),
        (404, Some("v1:404.html")),
        (200, Some("v2:docs/index.html")),
    ];
    for (i, a) in ASKS.iter().enumerate() {
        let (status, content) = expected[i];
        let want = (status, content.map(str::to_owned));
        assert_eq!(
            (served[i].status, served[i].content.clone()),
            want,
            "serve: {} {}",
            host(a),
            a.path
        );
        assert_eq!(
            (function[i].status, function[i].content.clone()),
            want,
            "function: {} {}",
            host(a),
            a.path
        );
        assert_eq!(
            function[i].location,
            served[i].location,
            "{} {}",
            host(a),
            a.path
        );
        // noindex on every answer to a preview, and on no answer of live.
        assert_eq!(
            function[i].noindex,
            !a.host.is_empty(),
            "function: {} {}",
            host(a),
            a.path
        );
        assert_eq!(
            served[i].noindex,
            !a.host.is_empty(),
            "serve: {} {}",
            host(a),
            a.path
        );
    }
}

/// The requests moto saw for this environment while `run` ran, by method, and the
/// seconds it took.
pub(crate) fn requests_during(
    marks: &[&str],
    run: impl FnOnce(),
) -> (BTreeMap<String, usize>, f64) {
    let log = std::path::Path::new("/tmp/driftless-s3-test/run/moto.log");
    let before = std::fs::read_to_string(log).map(|l| l.len()).unwrap_or(0);
    let t = std::time::Instant::now();
    run();
    let secs = t.elapsed().as_secs_f64();
    let mut by = BTreeMap::new();
    // moto's log is shared by every test running at the time: only this environment's.
    for l in std::fs::read_to_string(log).unwrap()[before..].lines() {
        if !marks.iter().any(|m| l.contains(m)) {
            continue;
        }
        if let Some(method) = ["GET", "PUT", "POST", "DELETE", "HEAD"]
            .iter()
            .find(|m| l.contains(&format!("\"{m} /")))
        {
            *by.entry((*method).to_owned()).or_insert(0) += 1;
        }
    }
    (by, secs)
}

/// 20 previews alive at once behind CloudFront (S3 and KeyValueStore on moto): a
/// preview's first deploy copies live's files server-side and uploads only what
/// differs; a re-deploy writes only its change; the KeyValueStore holds one small key
/// per preview. Prints what each cost (the numbers in the note).
#[test]
fn twenty_previews_cost_what_they_change_and_fit_the_key_value_store() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "tw");
    let env = cf.env.clone();
    cf.create_key_value_store();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let store_id = rt.block_on(kvs.find()).unwrap().expect("the store");
    let store_id = store_id.rsplit('/').next().unwrap().to_owned();
    let marks = [cf.bucket.as_str(), store_id.as_str()];
    let tmp = tempfile::tempdir().unwrap();
    let p = cf.project(
        &tmp.path().join("w"),
        &format!("{}{PREVIEW_URL}", cf.config("atomic")),
    );
    const FILES: usize = 200;
    for i in 0..FILES {
        p.write(&format!("docs/page-{i:03}.html"), &format!("page {i}\n"));
    }
    p.write("index.html", "home");
    let mut rows = Vec::new();
    let mut measure = |what: &str, args: &[&str], expect: &[&str]| {
        let (by, secs) = requests_during(&marks, || {
            p.cmd(args).expect(0).mentions(expect);
        });
        rows.push(format!(
            "{what:<34} {:>5} requests {by:?}, {secs:.2} s",
            by.values().sum::<usize>()
        ));
        by.values().sum::<usize>()
    };
    measure("first deploy", &["deploy", &env, "--yes"], &[]);
    p.write("index.html", "home 2");
    measure(
        "deploy into the empty slot",
        &["deploy", &env, "--yes"],
        &[],
    );
    p.write("index.html", "home 3");
    let deploy = measure(
        "deploy of a one-file change",
        &["deploy", &env, "--yes"],
        &["slot a: 1 written"],
    );
    p.write("index.html", "home 3b");
    let first = measure(
        "first preview (one file differs)",
        &["deploy", &env, "--preview", "pr-0", "--yes"],
        &[&format!(
            "preview pr-0: {} written ({FILES} copied from live)",
            FILES + 1
        )],
    );
    p.write("index.html", "home 4");
    let again = measure(
        "same preview, one more change",
        &["deploy", &env, "--preview", "pr-0", "--yes"],
        &["preview pr-0: 1 written (0 copied from live)"],
    );
    let t = std::time::Instant::now();
    for i in 1..20 {
        p.write("index.html", &format!("home for pr-{i}"));
        p.cmd(&["deploy", &env, "--preview", &format!("pr-{i}"), "--yes"])
            .expect(0);
    }
    rows.push(format!(
        "19 more previews                   {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let listed = p.cmd(&["previews", &env, "--json"]).expect(0).json();
    assert_eq!(listed["previews"].as_array().unwrap().len(), 20);
    let (items, bytes) = rt.block_on(kvs.usage()).unwrap();
    rows.push(format!(
        "KeyValueStore                      {items} keys, {bytes} bytes of 5242880"
    ));
    eprintln!("{}", rows.join("\n"));
    // The live pointer, one key per preview, and the routing table they share: the
    // previews change files, not directories, so no preview has a bucket of its own.
    let tables = i64::try_from(
        rt.block_on(kvs.keys("t:")).unwrap().len() + rt.block_on(kvs.keys("u:")).unwrap().len(),
    )
    .unwrap();
    assert_eq!(
        items,
        21 + tables,
        "the live pointer, one key per preview, {tables} table key(s)"
    );
    assert!(
        tables <= 2,
        "{tables} table keys for 20 previews of one shape"
    );
    assert!(bytes < 21 * 200 + 2048, "{bytes} bytes");
    // A first preview costs about one request per file (server-side copies), a re-deploy
    // about what a deploy of the same change costs.
    assert!(first <= FILES * 2 + 60, "{first} requests");
    assert!(
        again <= deploy + 20,
        "{again} requests against a deploy's {deploy}"
    );

    // pr-0 goes live: nothing uploaded, and what the live slot holds (downloaded with the
    // AWS CLI) is the preview's bytes, byte for byte. The preview URL is not served here:
    // the verification is overridden, and says so.
    let made = p
        .cmd(&[
            "deploy",
            &env,
            "--from-preview",
            "pr-0",
            "--force",
            "unverified",
            "--yes",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(made["transfer"]["objects_uploaded"], 0, "{made}");
    assert_eq!(made["transfer"]["bytes_uploaded"], 0, "{made}");
    let pointer: serde_json::Value =
        serde_json::from_str(&rt.block_on(kvs.get("current")).unwrap().unwrap()).unwrap();
    let slot = pointer["slot"].as_str().unwrap();
    let url = |prefix: &str| format!("s3://{}/www/{prefix}", cf.bucket);
    let live = s.download(&s.moto, &url(&format!("slots/{slot}/")), &[]);
    let reviewed = s.download(&s.moto, &url("previews/pr-0/"), &[]);
    assert_eq!(live.len(), FILES + 1);
    assert_eq!(live, reviewed, "live is not the preview's bytes");
    eprintln!(
        "from-preview: {} files live, identical to preview pr-0; 0 objects uploaded",
        live.len()
    );
}

/// A leaked secret that a preview also serves goes with `yank`: the preview is deleted,
/// its URL stops answering, and the bytes are gone from the store.
#[test]
fn yank_deletes_the_previews_that_serve_the_leaked_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, PREVIEW_URL);
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("config.js", "SECRET=hunter2");
    let leaked = p
        .cmd(&["deploy", "prod", "--yes", "--json"])
        .expect(0)
        .json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.write("index.html", "v2 with the leak");
    p.cmd(&["deploy", "prod", "--preview", "pr-1", "--yes"])
        .expect(0);
    p.remove("config.js");
    p.cmd(&["deploy", "prod", "--preview", "pr-2", "--yes"])
        .expect(0);
    p.cmd(&["deploy", "prod", "--yes", "--force", "deletes"])
        .expect(0);
    let port = free_port();
    let _server = serve(&p, "prod", port);
    assert_eq!(get_from(port, "pr-1.localhost", "/config.js", "").0, 200);
    p.cmd(&[
        "yank",
        "prod",
        &leaked,
        "--reason",
        "committed a secret",
        "--yes",
    ])
    .expect(0)
    .mentions(&["previews  1 preview(s) serving those bytes, deleted: pr-1"]);
    assert!(!store.join("previews/pr-1").exists());
    assert_eq!(get_from(port, "pr-1.localhost", "/config.js", "").0, 404);
    // The preview without the leak stays.
    assert_eq!(get_from(port, "pr-2.localhost", "/", "").0, 200);
    let everything = tree(&store, &[".driftless-store/"]);
    assert!(
        !everything
            .values()
            .any(|b| b.windows(7).any(|w| w == b"hunter2")),
        "the secret is still in the store"
    );
}

/// Into a protected environment by promotion: a preview of staging, verified at its URL,
/// goes to prod byte for byte — not staging's live release, and nothing rebuilt.
#[test]
fn a_preview_of_staging_is_promoted_to_a_protected_prod() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "site = \"site\"\n[env.staging]\nstore = \"file://{}\"\npreview_url = \"http://{{name}}.localhost:{port}\"\n\n[env.prod]\nstore = \"file://{}\"\npromote_from = \"staging\"\n",
        tmp.path().join("staging").display(),
        tmp.path().join("prod").display()
    );
    let p = Project::with_config(&tmp.path().join("w"), &config);
    p.write("index.html", "staging live");
    p.cmd(&["deploy", "staging", "--yes"]).expect(0);
    p.write("index.html", "reviewed in pr-3")
        .write("new.js", "js");
    p.cmd(&["deploy", "staging", "--preview", "pr-3", "--yes"])
        .expect(0);
    let reviewed = tree(&tmp.path().join("staging/previews/pr-3"), &[]);
    p.write("index.html", "something else");
    // Not verified (nothing serves the preview yet): refused, nothing changed.
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--from-preview",
        "pr-3",
        "--yes",
    ])
    .expect(3)
    .mentions(&["[unverified] preview pr-3 did not pass verify"]);
    assert!(!tmp.path().join("prod/current").exists());
    let _server = serve(&p, "staging", port);
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--from-preview",
        "pr-3",
        "--yes",
    ])
    .expect(0)
    .mentions(&["Plan: promotion of staging release"]);
    assert_eq!(tree(&tmp.path().join("prod/current"), &[]), reviewed);
    // Staging's live release is untouched; prod stays protected from direct deploys.
    assert_eq!(
        tree(&tmp.path().join("staging/current"), &[]),
        files(&[("index.html", "staging live")])
    );
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    assert_eq!(log["releases"][0]["kind"]["type"], "promote", "{log}");
    assert!(
        log["releases"][0]["message"]
            .as_str()
            .unwrap()
            .contains("preview pr-3"),
        "{log}"
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(3);
    // --release names FROM's live release; with a preview it is refused as a usage error.
    p.cmd(&[
        "promote",
        "staging",
        "prod",
        "--from-preview",
        "pr-3",
        "--release",
        "HEAD",
    ])
    .expect(2);
}
