//! Canary releases (issue 23, item 5): `deploy ENV --canary N` serves the new release to
//! N% of visitors, sticky per visitor, everyone else staying on live; `canary ENV
//! --finish | --abort | --percent N` ends or changes it by one write; `serve` and the
//! CloudFront function make the same choice for every visitor.

use crate::serve::{free_port, get_from, serve};
use crate::util::Project;

/// What a visitor got: the page's body, and the bucket a `Set-Cookie` pinned, if any.
fn visit(port: u16, user_agent: &str, cookie: Option<u8>, path: &str) -> (String, Option<u8>) {
    let mut extra = format!("User-Agent: {user_agent}\r\n");
    if let Some(b) = cookie {
        extra.push_str(&format!("Cookie: theme=dark; driftless-bucket={b}\r\n"));
    }
    let (status, head, body) = get_from(port, "127.0.0.1", path, &extra);
    assert_eq!(status, 200, "{user_agent} {path}: {head}");
    (String::from_utf8(body).unwrap(), set_bucket(&head))
}

/// The bucket a response's `Set-Cookie: driftless-bucket=N; …` pins.
fn set_bucket(head: &str) -> Option<u8> {
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: driftless-bucket="))?;
    assert!(
        line.ends_with("; path=/; max-age=2592000; samesite=lax"),
        "{line}"
    );
    line.split(';').next()?.parse().ok()
}

/// A canary at 10%: about a tenth of 1,000 visitors get it; every one of them keeps
/// their side when they come back with the cookie of their first answer (even with
/// another user agent), and gets the assets of the same release as the page; deploys
/// and rollbacks are refused while it runs; `--percent` only adds visitors; `--abort`
/// puts everyone back on live; `--finish` makes it live for all, HEAD following.
#[test]
fn a_canary_at_ten_percent_is_sticky_and_ends_by_one_write() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "");
    p.write("index.html", "v0").write("app.js", "js v0");
    p.cmd(&["deploy", "prod", "--canary", "10", "--yes"])
        .expect(3)
        .mentions(&["has no live release yet: a canary shares visitors with one"]);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v1").write("app.js", "js v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let live = crate::util::head(&store);
    p.write("index.html", "v2").write("app.js", "js v2");
    p.cmd(&["deploy", "prod", "--canary", "10", "--yes"])
        .expect(0)
        .mentions(&[
            "Plan: deploy as a canary, to 10% of visitors → prod",
            "is on 10% of prod's visitors (a canary; the others stay on",
            "driftless canary prod --finish",
        ]);
    // Live did not move: HEAD, and the pointer's slot.
    assert_eq!(crate::util::head(&store), live);
    let pointer = std::fs::read_link(store.join("current")).unwrap();
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    let canary = status["canary"].clone();
    assert_eq!(canary["percent"], 10, "{status}");
    assert_eq!(canary["live"].as_str(), Some(live.as_str()), "{status}");
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["canary   10% of visitors get release"]);

    let port = free_port();
    let _server = serve(&p, "prod", port);
    let visitors: Vec<String> = (0..1000).map(|i| format!("visitor-{i:04}")).collect();
    let mut first = Vec::new();
    for ua in &visitors {
        let (body, pinned) = visit(port, ua, None, "/");
        let bucket = pinned.unwrap_or_else(|| panic!("{ua}: no canary cookie"));
        assert_eq!(
            body == "v2",
            bucket < 10,
            "{ua}: bucket {bucket} got {body}"
        );
        first.push((body, bucket));
    }
    let on_canary = first.iter().filter(|(b, _)| b == "v2").count();
    println!("canary at 10%: {on_canary} of 1000 visitors got the new release");
    assert!((70..=130).contains(&on_canary), "{on_canary} of 1000");
    // Back with the cookie, from another user agent: the same side, no new cookie, and
    // the asset of the same release.
    let mut same = 0;
    for (i, (body, bucket)) in first.iter().enumerate() {
        let (again, pinned) = visit(port, &format!("other-{i}"), Some(*bucket), "/");
        let (asset, _) = visit(port, &format!("other-{i}"), Some(*bucket), "/app.js");
        assert_eq!(pinned, None);
        assert_eq!(asset, format!("js {body}"), "visitor {i}");
        same += usize::from(again == *body);
    }
    println!("stickiness: {same} of 1000 visitors kept their side");
    assert_eq!(same, 1000);

    // While it runs, live changes only through `canary`.
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3).mentions(&[
        "[canary] a canary is running: release",
        "is on 10% of visitors since",
        "driftless canary prod --finish",
    ]);
    p.cmd(&["rollback", "prod", "--yes"])
        .expect(3)
        .mentions(&["[canary]"]);
    p.cmd(&["deploy", "prod", "--canary", "20", "--yes"])
        .expect(3)
        .mentions(&["[canary]"]);
    p.write("index.html", "v2");
    let id = canary["release"].as_str().unwrap();
    p.cmd(&["yank", "prod", id, "--reason", "leak", "--yes"])
        .expect(3)
        .mentions(&["is the canary on prod", "driftless canary prod --abort"]);
    let config = p.dir.join("driftless.toml");
    let atomic = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{atomic}layout = \"in-place\"\n")).unwrap();
    p.cmd(&["migrate", "prod", "--layout", "in-place", "--yes"])
        .expect(3)
        .mentions(&["a canary is running on prod"]);
    std::fs::write(&config, atomic).unwrap();

    // A larger share keeps everyone who had it.
    p.cmd(&["canary", "prod", "--percent", "50", "--yes"])
        .expect(0)
        .mentions(&["is on 50% of prod's visitors (was 10%)"]);
    for (i, (body, bucket)) in first.iter().enumerate() {
        let (now, _) = visit(port, &format!("other-{i}"), Some(*bucket), "/");
        if body == "v2" {
            assert_eq!(now, "v2", "visitor {i} left the canary");
        }
        assert_eq!(now == "v2", *bucket < 50, "visitor {i}");
    }

    // Abort: everyone on live, the pointer never moved.
    p.cmd(&["canary", "prod", "--abort", "--yes"])
        .expect(0)
        .mentions(&["aborted: every visitor of prod gets"]);
    assert_eq!(std::fs::read_link(store.join("current")).unwrap(), pointer);
    assert_eq!(crate::util::head(&store), live);
    for (i, (_, bucket)) in first.iter().enumerate().take(100) {
        let (body, pinned) = visit(port, &format!("other-{i}"), Some(*bucket), "/");
        assert_eq!((body.as_str(), pinned), ("v1", None));
    }
    // No canary, no cookie.
    assert_eq!(
        visit(port, "new-visitor", None, "/"),
        ("v1".to_owned(), None)
    );
    p.cmd(&["canary", "prod", "--abort", "--yes"])
        .expect(2)
        .mentions(&["no canary is running on prod"]);

    // Again, then finish: HEAD and the pointer follow, everyone gets it. A finish killed
    // after the pointer moved is named by status, refused an abort, and completed by
    // running it again.
    p.cmd(&["deploy", "prod", "--canary", "5", "--yes"])
        .expect(0);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["holds the canary"]);
    let canary = p.cmd(&["canary", "prod", "--json"]).expect(0).json()["canary"].clone();
    let killed = p
        .cmd(&["canary", "prod", "--finish", "--yes"])
        .env("DRIFTLESS_FAILPOINT", "after-canary-pointer")
        .run();
    assert_eq!(killed.signal, Some(9), "{}", killed.all());
    assert_eq!(crate::util::head(&store), live, "HEAD has not moved yet");
    p.cmd(&["status", "prod"]).expect(0).mentions(&[
        "a finish of the canary was interrupted",
        "driftless canary prod --finish",
    ]);
    p.cmd(&["canary", "prod", "--abort", "--yes"])
        .expect(3)
        .mentions(&[
            "was interrupted after the pointer moved",
            "driftless canary prod --finish",
        ]);
    p.cmd(&["canary", "prod", "--finish", "--yes"])
        .expect(0)
        .mentions(&["is live for every visitor of prod (was on 5%"]);
    assert_eq!(
        Some(crate::util::head(&store).as_str()),
        canary["release"].as_str()
    );
    assert_ne!(std::fs::read_link(store.join("current")).unwrap(), pointer);
    for (i, (_, bucket)) in first.iter().enumerate().take(100) {
        assert_eq!(
            visit(port, &format!("other-{i}"), Some(*bucket), "/").0,
            "v2"
        );
    }
    // Live moves again as usual; the canary release is one rollback away from v1.
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert_eq!(visit(port, "x", None, "/").0, "v3");
}

/// An in-place environment has no idle slot to hold a canary: refused, naming the move.
#[test]
fn a_canary_needs_the_atomic_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let p = Project::atomic(&tmp.path().join("w"), &store, "layout = \"in-place\"\n");
    p.write("index.html", "v1");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--canary", "10", "--yes"])
        .expect(3)
        .mentions(&[
            "a canary needs the atomic layout",
            "driftless migrate prod --layout atomic",
        ]);
    p.cmd(&["deploy", "prod", "--canary", "100", "--yes"])
        .expect(2);
}

/// Behind CloudFront (SeaweedFS, the pointer in a moto KeyValueStore): the canary is in
/// the pointer's value, so the function learns it in its one read; the published
/// function (run in Node, with the response function on its answers) and `serve` of the
/// same environment put each of 1,000 visitors on the same side and pin the same
/// bucket; abort and finish are each one KeyValueStore write.
#[test]
fn behind_cloudfront_the_function_and_serve_split_every_visitor_alike() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.seaweedfs, "cn");
    let (bucket, env) = (cf.bucket.clone(), cf.env.clone());
    let tmp = tempfile::tempdir().unwrap();
    let p = cf.project(&tmp.path().join("w"), &cf.config("atomic"));
    p.write("index.html", "v1").write("app.js", "js v1");
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    p.write("index.html", "v2").write("app.js", "js v2");
    // A viewer-response function that does not set the cookie (edited by hand): no
    // canary, which it would not keep sticky.
    let plain = tmp.path().join("plain.js");
    std::fs::write(
        &plain,
        "function handler(event) { return event.response; }\n",
    )
    .unwrap();
    let response_name = format!("driftless-{env}-response");
    s.edit_function_by_hand(&response_name, &plain, true);
    p.cmd(&["deploy", &env, "--canary", "10", "--yes"])
        .expect(3)
        .mentions(&[
            &format!("CloudFront Function {response_name} as published does not split visitors"),
            &format!("driftless edge {env} --apply"),
        ]);
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    p.cmd(&["deploy", &env, "--canary", "10", "--yes"])
        .expect(0);
    let canary = p.cmd(&["canary", &env, "--json"]).expect(0).json()["canary"].clone();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = s.key_value_store(&rt, &env);
    let read_pointer = || -> serde_json::Value {
        let raw = rt.block_on(kvs.get("current")).unwrap().expect("a pointer");
        serde_json::from_str(&raw).unwrap()
    };
    let pointer = read_pointer();
    let mut split = pointer["canary"].clone();
    // Each side carries its release's rules.
    assert!(
        split["e"].is_object() && pointer["e"].is_object(),
        "{pointer}"
    );
    split.as_object_mut().unwrap().remove("e");
    assert_eq!(
        split,
        serde_json::json!({ "slot": canary["slot"], "release": canary["cache"], "percent": 10 }),
        "{pointer}"
    );
    assert_ne!(pointer["slot"], canary["slot"]);

    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    let code = std::fs::read_to_string(export.join("function.js")).unwrap();
    let response = std::fs::read_to_string(export.join("response-function.js")).unwrap();
    crate::edge::assert_runs_on_cloudfront(&code);
    crate::edge::assert_runs_on_cloudfront(&response);
    let slots: std::collections::BTreeMap<String, Vec<u8>> = s
        .download(&s.seaweedfs, &format!("s3://{bucket}/www/slots"), &[])
        .into_iter()
        .map(|(k, b)| (format!("slots/{k}"), b))
        .collect();
    let visitors: Vec<String> = (0..1000).map(|i| format!("visitor-{i:04}")).collect();
    // Through the function: the body of the key it sent the request to, and the bucket
    // the response function pinned.
    let through_function = |pointer: &serde_json::Value, cookie: Option<u8>| {
        let cases: Vec<serde_json::Value> = visitors
            .iter()
            .map(|ua| {
                let mut headers = serde_json::json!({ "User-Agent": ua });
                if let Some(b) = cookie {
                    headers["Cookie"] = format!("driftless-bucket={b}").into();
                }
                serde_json::json!({ "path": "/", "headers": headers })
            })
            .collect();
        let keys: Vec<&String> = slots.keys().collect();
        let answers = crate::edge::harness(&serde_json::json!({
            "code": code, "response": response, "errors": [], "site": keys, "state": [],
            "kvs": { "current": pointer.to_string() }, "cases": cases,
        }));
        answers
            .iter()
            .map(|a| {
                assert_eq!(a["status"], 200, "{a}");
                let key = a["key"].as_str().unwrap();
                let pinned = a["cookies"]["driftless-bucket"].as_str().map(|c| {
                    assert!(
                        c.ends_with("; Path=/; Max-Age=2592000; SameSite=Lax"),
                        "{c}"
                    );
                    c.split(';').next().unwrap().parse::<u8>().unwrap()
                });
                (String::from_utf8(slots[key].clone()).unwrap(), pinned)
            })
            .collect::<Vec<_>>()
    };
    let at_edge = through_function(&pointer, None);
    let port = free_port();
    let server = serve(&p, &env, port);
    let served: Vec<(String, Option<u8>)> = visitors
        .iter()
        .map(|ua| visit(port, ua, None, "/"))
        .collect();
    drop(server);
    let on_canary = at_edge.iter().filter(|(b, _)| b == "v2").count();
    println!("behind CloudFront at 10%: {on_canary} of 1000 visitors got the new release");
    assert!((70..=130).contains(&on_canary), "{on_canary}");
    for (i, ua) in visitors.iter().enumerate() {
        assert_eq!(at_edge[i], served[i], "{ua}: the function and serve differ");
        assert!(at_edge[i].1.is_some(), "{ua}: no cookie");
    }
    // A visitor with a cookie keeps its bucket's side, and is not given another.
    for (bucket, side) in [(3, "v2"), (10, "v1"), (99, "v1")] {
        let answers = through_function(&pointer, Some(bucket));
        assert!(
            answers.iter().all(|a| *a == (side.to_owned(), None)),
            "{bucket}"
        );
    }

    // Abort: one write of the pointer's key, the pointer where it was, no split.
    let store_id = rt.block_on(kvs.find()).unwrap().expect("the store");
    let store_id = store_id.rsplit('/').next().unwrap().to_owned();
    let (requests, _) = crate::previews::requests_during(&[store_id.as_str()], || {
        p.cmd(&["canary", &env, "--abort", "--yes"]).expect(0);
    });
    println!("abort behind CloudFront: KeyValueStore requests {requests:?}");
    assert_eq!(requests.get("PUT"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("DELETE"), None, "{requests:?}");
    let after = read_pointer();
    assert_eq!(after["slot"], pointer["slot"]);
    assert!(after.get("canary").is_none(), "{after}");
    assert!(
        through_function(&after, None)
            .iter()
            .all(|a| *a == ("v1".to_owned(), None))
    );

    // Finish: one write too; the pointer names the canary's slot.
    p.cmd(&["deploy", &env, "--canary", "10", "--yes"])
        .expect(0);
    let (requests, _) = crate::previews::requests_during(&[store_id.as_str()], || {
        p.cmd(&["canary", &env, "--finish", "--yes"]).expect(0);
    });
    println!("finish behind CloudFront: KeyValueStore requests {requests:?}");
    assert_eq!(requests.get("PUT"), Some(&1), "{requests:?}");
    let done = read_pointer();
    assert_eq!(done["slot"], canary["slot"], "{done}");
    assert!(done.get("canary").is_none(), "{done}");
    assert!(
        through_function(&done, None)
            .iter()
            .all(|a| *a == ("v2".to_owned(), None))
    );
}
