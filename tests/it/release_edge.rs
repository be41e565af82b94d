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
