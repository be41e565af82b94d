//! One table of edge cases (`tests/edge/conformance.toml`) answered alike by the preview
//! (`driftless serve`, over real HTTP) and by the CloudFront Function `[edge]` compiles
//! to (run in Node by `tests/edge/harness.cjs`, with S3, the custom error responses and
//! the response headers policy around it); the function uses only what
//! `cloudfront-js-2.0` offers and fits its budget; the export of the bundled example is
//! a snapshot, and its Terraform parses.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;

use crate::serve::{free_port, serve, web_deps};
use crate::util::Project;

#[derive(serde::Deserialize)]
struct Table {
    site: Vec<String>,
    state: Vec<String>,
    password: String,
    edge: toml::Table,
    case: Vec<Case>,
}

#[derive(serde::Deserialize, Debug)]
struct Case {
    name: String,
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    auth: Option<String>,
    status: u16,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// What one answer was: status, Location, the key whose bytes came back, headers.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    location: Option<String>,
    key: Option<String>,
    headers: BTreeMap<String, String>,
}

fn table() -> Table {
    toml::from_str(include_str!("../edge/conformance.toml")).expect("conformance.toml")
}

/// The body of every site file names its key.
fn body(key: &str) -> String {
    format!("key:{key}\n")
}

/// A project whose `prod` (local store) serves the table's site, deployed.
fn project(t: &Table, dir: &Path) -> Project {
    let mut config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\n",
        dir.join("store").display()
    );
    let mut edge = toml::Table::new();
    edge.insert("edge".into(), toml::Value::Table(t.edge.clone()));
    config.push_str(&toml::to_string(&edge).unwrap());
    let p = Project::with_config(&dir.join("w"), &config)
        .envs(vec![("DRIFTLESS_EDGE_TEST_PASSWORD", t.password.clone())]);
    for k in &t.site {
        p.write(k, &body(k));
    }
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p
}

fn authorization(t: &Table, c: &Case) -> Option<String> {
    use base64::Engine as _;
    let (scheme, pair) = match c.auth.as_deref() {
        None => ("Basic", format!("team:{}", t.password)),
        Some("none") => return None,
        Some("wrong") => ("Basic", "team:not-the-password".to_owned()),
        Some("wrong-user") => ("Basic", format!("someone:{}", t.password)),
        // Schemes are case-insensitive (RFC 9110 §11.1).
        Some("lowercase") => ("basic", format!("team:{}", t.password)),
        Some("bearer") => ("Bearer", format!("team:{}", t.password)),
        Some(other) => panic!("{}: unknown auth {other:?}", c.name),
    };
    Some(format!(
        "{scheme} {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// The [edge] headers every answer must carry (names lower-cased).
fn edge_headers(t: &Table) -> BTreeMap<String, String> {
    t.edge["headers"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// One raw HTTP/1.0 request to `serve`.
fn ask(port: u16, t: &Table, c: &Case) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let method = c.method.as_deref().unwrap_or("GET");
    let auth = authorization(t, c)
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {} HTTP/1.0\r\nHost: edge.test\r\n{auth}\r\n",
        c.path
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let content = String::from_utf8_lossy(&buf[split + 4..]).into_owned();
    // The key whose bytes came back: from the body, or for HEAD from the length of the
    // body the expected key would have.
    let key = match content.strip_prefix("key:") {
        Some(k) => Some(k.trim_end().to_owned()),
        None if method == "HEAD" => c.key.clone().filter(|k| {
            headers.get("content-length").map(String::as_str) == Some(&body(k).len().to_string())
        }),
        None => None,
    };
    Answer {
        status,
        location: headers.get("location").cloned(),
        key,
        headers: headers
            .into_iter()
            .filter(|(k, _)| edge_headers(t).contains_key(k))
            .collect(),
    }
}

fn expected(t: &Table, c: &Case) -> Answer {
    Answer {
        status: c.status,
        location: c.location.clone(),
        key: c.key.clone(),
        headers: edge_headers(t),
    }
}

/// Compare every case; one message listing every difference.
fn check(t: &Table, what: &str, answers: &[Answer]) {
    assert!(
        t.case.len() >= 40,
        "the table has only {} cases",
        t.case.len()
    );
    let mut wrong = Vec::new();
    for (c, a) in t.case.iter().zip(answers) {
        let want = expected(t, c);
        if *a != want {
            wrong.push(format!(
                "  {} ({} {}): got {a:?}\n      want {want:?}",
                c.name,
                c.method.as_deref().unwrap_or("GET"),
                c.path
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what} differs from the table in {} of {} cases:\n{}",
        wrong.len(),
        t.case.len(),
        wrong.join("\n")
    );
}

#[test]
fn serve_answers_the_conformance_table() {
    let t = table();
    let tmp = tempfile::tempdir().unwrap();
    let p = project(&t, tmp.path());
    let port = free_port();
    let _server = serve(&p, "prod", port);
    let answers: Vec<Answer> = t.case.iter().map(|c| ask(port, &t, c)).collect();
    check(&t, "driftless serve", &answers);
}

/// The atomic layout's function inputs for a test of the code alone: the pointer at
/// `current`, no release compiled in, previews on `preview_host` (".preview.test").
pub(crate) fn atomic(preview_host: Option<&str>) -> driftless::edge::cloudfront::Atomic {
    driftless::edge::cloudfront::Atomic {
        pointer_key: "current".into(),
        last_known_good: None,
        preview_host: preview_host.map(str::to_owned),
        last_root: None,
        last_cells: std::collections::BTreeMap::new(),
    }
}

/// Run tests/edge/harness.cjs on `input`: its answers, one per case.
pub(crate) fn harness(input: &serde_json::Value) -> Vec<serde_json::Value> {
    node_harness(&[], input)
}

/// CWTs MACed by cose-js (`harness.cjs mint`), one per spec.
pub(crate) fn mint_cwts(specs: &serde_json::Value) -> Vec<String> {
    node_harness(&["mint"], specs)
        .into_iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn node_harness(args: &[&str], input: &serde_json::Value) -> Vec<serde_json::Value> {
    // node and cose-js, from the project's script
    let node_dir = web_deps();
    let mut node = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/edge/harness.cjs"
        ))
        .args(args)
        .env("NODE_DIR", node_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (installed by scripts/web-test-deps.sh)");
    node.stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the harness failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The exported function, run in Node as CloudFront would run it.
fn run_function(t: &Table, export: &Path) -> Vec<Answer> {
    run_function_on(t, export, &t.site, &serde_json::Value::Null)
}

/// The same, with the bucket holding `site` and the KeyValueStore `kvs` (or "throw").
fn run_function_on(
    t: &Table,
    export: &Path,
    site: &[String],
    kvs: &serde_json::Value,
) -> Vec<Answer> {
    web_deps(); // node, from the project's script
    let read = |name: &str| std::fs::read_to_string(export.join(name)).unwrap();
    let code = read("function.js");
    let policy: serde_json::Value =
        serde_json::from_str(&read("response-headers-policy.json")).unwrap();
    let errors: serde_json::Value =
        serde_json::from_str(&read("custom-error-responses.json")).unwrap();
    let cases: Vec<serde_json::Value> = t
        .case
        .iter()
        .map(|c| {
            let mut headers = serde_json::Map::new();
            if let Some(a) = authorization(t, c) {
                headers.insert("Authorization".into(), a.into());
            }
            let mut case = serde_json::json!({ "method": c.method.as_deref().unwrap_or("GET"), "path": c.path, "headers": headers });
            if !kvs.is_null() {
                case["kvs"] = kvs.clone();
            }
            case
        })
        .collect();
    let input = serde_json::json!({
        "code": code,
        "policy": policy,
        "errors": errors["Items"],
        "site": site,
        "state": t.state,
        "cases": cases,
    });
    let results = harness(&input);
    results
        .into_iter()
        .map(|r| Answer {
            status: u16::try_from(r["status"].as_u64().unwrap()).unwrap(),
            location: r["location"].as_str().map(str::to_owned),
            key: r["key"].as_str().map(str::to_owned),
            headers: r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
        })
        .collect()
}

/// What `cloudfront-js-2.0` refuses: modules beyond `crypto` and `cloudfront`, Node or
/// browser globals, ES modules; and the 10 KB budget.
/// The kinds of the resources a Terraform file declares, in order.
pub(crate) fn terraform_resources(tf: &str) -> Vec<String> {
    let tf: hcl::Body = hcl::from_str(tf).unwrap_or_else(|e| panic!("not HCL: {e}\n{tf}"));
    tf.blocks()
        .filter(|b| b.identifier() == "resource")
        .map(|b| b.labels()[0].as_str().to_owned())
        .collect()
}

pub(crate) fn assert_runs_on_cloudfront(code: &str) {
    // The one import the runtime takes: the KeyValueStore module, on the first line.
    let code = code
        .strip_prefix("import cf from 'cloudfront';\n")
        .unwrap_or(code);
    assert!(
        code.len() <= 10 * 1024,
        "{} bytes: over the budget",
        code.len()
    );
    for (i, part) in code.split("require(").enumerate().skip(1) {
        assert!(
            part.starts_with("'crypto')") || part.starts_with("'cloudfront')"),
            "require #{i} is not crypto or cloudfront: require({}",
            &part[..part.len().min(30)]
        );
    }
    for banned in [
        "process.",
        "fetch(",
        "setTimeout",
        "setInterval",
        "XMLHttpRequest",
        "import ",
        "export ",
        "eval(",
        "new Function",
        "globalThis",
        "console.",
        "class ",
        "=>",
    ] {
        assert!(!code.contains(banned), "the function uses {banned:?}");
    }
    assert!(code.contains("function handler(event)"), "no handler");
}

#[test]
fn the_generated_function_answers_the_conformance_table_in_node() {
    let t = table();
    let tmp = tempfile::tempdir().unwrap();
    let p = project(&t, tmp.path());
    let export = tmp.path().join("export");
    p.cmd(&["edge", "prod", "--export", export.to_str().unwrap()])
        .expect(0)
        .mentions(&["of 10240 bytes", "driftless-prod"]);
    let code = std::fs::read_to_string(export.join("function.js")).unwrap();
    assert_runs_on_cloudfront(&code);
    assert!(
        !code.contains(&t.password),
        "the password is in the function's code"
    );
    let answers = run_function(&t, &export);
    check(&t, "the CloudFront Function", &answers);
}

/// The same table answered by the function of an atomic layout behind CloudFront: the
/// site deployed into a slot of a bucket on moto, the pointer in its KeyValueStore. The
/// function serves the slot the pointer names (each answer's key is that slot's copy),
/// the 404 page from its copy at the root, and answers the same when the KeyValueStore
/// read throws (the release compiled in) — every case, identical to the table.
#[test]
fn the_atomic_function_answers_the_conformance_table_from_the_pointer() {
    let t = table();
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "t");
    let (bucket, env) = (cf.bucket.clone(), cf.env.clone());
    cf.create_key_value_store();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = cf.config("atomic");
    let mut edge = toml::Table::new();
    edge.insert("edge".into(), toml::Value::Table(t.edge.clone()));
    config.push_str(&toml::to_string(&edge).unwrap());
    let mut vars = s.cloudfront_env();
    vars.push(("DRIFTLESS_EDGE_TEST_PASSWORD", t.password.clone()));
    let p = Project::with_config(&tmp.path().join("w"), &config).envs(vars);
    for k in &t.site {
        p.write(k, &body(k));
    }
    let release = p.cmd(&["deploy", &env, "--yes", "--json"]).expect(0).json()["release"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = tmp.path().join("export");
    p.cmd(&["edge", &env, "--export", export.to_str().unwrap()])
        .expect(0);
    assert_runs_on_cloudfront(&std::fs::read_to_string(export.join("function.js")).unwrap());
    let bucket_keys: Vec<String> = s
        .keys_under(&s.moto, &bucket, "www/")
        .into_iter()
        .filter(|k| !k.starts_with(".driftless/"))
        .collect();
    assert!(
        bucket_keys.contains(&"slots/a/index.html".to_owned()),
        "{bucket_keys:?}"
    );
    let _ = release;
    // The KeyValueStore as the deploy left it: the pointer, with the release's rules,
    // and its routing table.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held: serde_json::Map<String, serde_json::Value> = rt
        .block_on(s.key_value_store(&rt, &env).keys(""))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    assert!(
        held["current"].as_str().unwrap().contains("\"e\""),
        "{held:?}"
    );
    for kvs in [serde_json::Value::Object(held), serde_json::json!("throw")] {
        let answers: Vec<Answer> = run_function_on(&t, &export, &bucket_keys, &kvs)
            .into_iter()
            .map(|mut a| {
                if let Some(k) = &a.key {
                    assert!(
                        k.starts_with("slots/a/") || k == "404.html",
                        "served from outside the live slot: {k}"
                    );
                    a.key = Some(k.trim_start_matches("slots/a/").to_owned());
                }
                a
            })
            .collect();
        check(
            &t,
            &format!("the atomic function (KeyValueStore {kvs})"),
            &answers,
        );
    }
}

/// A site whose directory list does not fit the function is refused, naming the budget.
#[test]
fn a_site_over_the_function_budget_is_refused_with_the_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Project::new(&tmp.path().join("w"), &tmp.path().join("store"), "");
    for i in 0..600 {
        p.write(
            &format!("posts/a-rather-long-post-title-{i:04}/index.html"),
            "post",
        );
    }
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["edge", "prod"]).expect(2).mentions(&[
        "over CloudFront's 10240-byte budget",
        "600 directories with an index page",
    ]);
}

/// `edge --export` of the bundled example is a snapshot (tests/edge/snapshot; refresh
/// with UPDATE_SNAPSHOTS=1), and its Terraform parses as HCL.
#[test]
fn the_bundled_example_exports_a_known_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let example = tmp.path().join("examples");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for (rel, bytes) in crate::util::tree(&src, &[".driftless/"]) {
        let to = example.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    }
    let export = tmp.path().join("export");
    crate::util::Run::new(
        &example,
        &["edge", "local", "--export", export.to_str().unwrap()],
    )
    .expect(0);
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/edge/snapshot");
    let got = crate::util::tree(&export, &[]);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let _ = std::fs::remove_dir_all(&snapshot);
        for (rel, bytes) in &got {
            std::fs::create_dir_all(&snapshot).unwrap();
            std::fs::write(snapshot.join(rel), bytes).unwrap();
        }
    }
    let want = crate::util::tree(&snapshot, &[]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "exported files"
    );
    for (rel, bytes) in &got {
        assert!(
            want[rel] == *bytes,
            "{rel} differs from tests/edge/snapshot/{rel} (UPDATE_SNAPSHOTS=1 refreshes it):\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    for hcl_file in ["driftless-edge.tf", "distribution.snippet.hcl"] {
        let text = std::str::from_utf8(&got[hcl_file]).unwrap();
        let body: hcl::Body =
            hcl::from_str(text).unwrap_or_else(|e| panic!("{hcl_file} is not HCL: {e}\n{text}"));
        assert!(body.iter().count() > 0, "{hcl_file} is empty");
    }
    assert_eq!(
        terraform_resources(std::str::from_utf8(&got["driftless-edge.tf"]).unwrap()),
        [
            "aws_cloudfront_function",
            "aws_cloudfront_response_headers_policy"
        ]
    );
    assert_runs_on_cloudfront(std::str::from_utf8(&got["function.js"]).unwrap());
}

/// `edge --apply` against moto (with the UpdateFunction / PublishFunction calls
/// scripts/moto-server.py adds): creates, publishes and attaches the function with the
/// error responses; a second apply does nothing; a config change and an out-of-band
/// change are each reported as edge drift naming the side that moved.
#[test]
fn edge_apply_on_moto_publishes_attaches_and_reports_drift() {
    let s = crate::servers::servers();
    let bucket = s.bucket(&s.moto);
    let distribution = s.distribution(&bucket);
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 5 }}\n\n[edge]\nspa_fallback = \"index.html\"\nnot_found = \"404.html\"\nredirects = [{{ from = \"/old\", to = \"/new\", status = 301 }}]\n",
        s.moto
    );
    let mut env = s.env();
    env.push(("AWS_ENDPOINT_URL_CLOUDFRONT", s.moto.clone()));
    let p = Project::with_config(tmp.path(), &config).envs(env);
    p.write("index.html", "home")
        .write("404.html", "nope")
        .write("docs/index.html", "docs");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let function_config = || -> serde_json::Value {
        let out = s.aws(
            &s.moto,
            &[
                "cloudfront",
                "get-distribution-config",
                "--id",
                &distribution,
            ],
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let live_code = || -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code.js");
        s.aws(
            &s.moto,
            &[
                "cloudfront",
                "get-function",
                "--name",
                "driftless-prod",
                "--stage",
                "LIVE",
                file.to_str().unwrap(),
            ],
        );
        std::fs::read_to_string(file).unwrap()
    };

    p.cmd(&["status", "prod"]).expect(0); // nothing published yet: no edge line needed
    p.cmd(&["edge", "prod", "--apply", "--yes"])
        .expect(0)
        .mentions(&[
            "create CloudFront Function driftless-prod",
            "attach them to distribution",
            "Published the edge rules of prod",
        ]);
    let cfg = function_config();
    let dcb = &cfg["DistributionConfig"]["DefaultCacheBehavior"];
    let assoc = &dcb["FunctionAssociations"]["Items"][0];
    assert_eq!(assoc["EventType"], "viewer-request", "{dcb}");
    assert!(
        assoc["FunctionARN"]
            .as_str()
            .unwrap()
            .ends_with("function/driftless-prod"),
        "{assoc}"
    );
    let errors = &cfg["DistributionConfig"]["CustomErrorResponses"]["Items"];
    assert_eq!(errors[0]["ErrorCode"], 403, "{errors}");
    assert_eq!(errors[1]["ResponsePagePath"], "/404.html", "{errors}");
    assert_eq!(errors[1]["ResponseCode"], "404", "{errors}");
    let export = tmp.path().join("export");
    p.cmd(&["edge", "prod", "--export", export.to_str().unwrap()])
        .expect(0);
    assert_eq!(
        live_code(),
        std::fs::read_to_string(export.join("function.js")).unwrap(),
        "the live function is not the compiled one"
    );

    // A second apply changes nothing; status says the edge is in sync.
    p.cmd(&["edge", "prod", "--apply", "--yes"])
        .expect(0)
        .mentions(&["is up to date"]);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["is live with the rules of driftless.toml"]);

    // The config moves: status names the config and the command.
    std::fs::write(
        tmp.path().join("driftless.toml"),
        config.replace("to = \"/new\"", "to = \"/newer\""),
    )
    .unwrap();
    p.cmd(&["status", "prod"]).expect(0).mentions(&[
        "`driftless edge prod --apply` needed: the [edge] rules changed (in place they go live by `edge --apply`, not with a release)",
    ]);
    p.cmd(&["edge", "prod", "--apply", "--yes"])
        .expect(0)
        .mentions(&["update CloudFront Function driftless-prod"]);
    assert!(live_code().contains("/newer"));

    // Someone edits the function by hand (update + publish, with the AWS CLI).
    let hand = tmp.path().join("hand.js");
    std::fs::write(&hand, "function handler(event) { return event.request; }\n").unwrap();
    s.edit_function_by_hand("driftless-prod", &hand, true);
    p.cmd(&["status", "prod"]).expect(0).mentions(&[
        "edge rules changed outside driftless",
        "driftless edge prod --apply",
    ]);
    p.cmd(&["edge", "prod"])
        .expect(0)
        .mentions(&["edge rules changed outside driftless"]);
    // Applying puts the config's rules back.
    p.cmd(&["edge", "prod", "--apply", "--yes"]).expect(0);
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["is live with the rules of driftless.toml"]);
}
