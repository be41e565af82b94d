//! `serve` applies the edge rules over real HTTP; `verify` passes through it after a
//! deploy, and names the paths a stale edge still serves until it is purged.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::util::Project;

/// A `driftless serve` process, stopped when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(p: &Project, target: &str, port: u16) -> Server {
    // Owned by the guard from the start, so a failure below still stops it.
    let server = Server(
        p.cmd(&["serve", target, "--port", &port.to_string()])
            .spawn(),
    );
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("driftless serve did not listen on {port}");
}

/// A raw HTTP/1.0 GET: status line and headers (lower-cased), body.
fn get(port: u16, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{extra}\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

#[test]
fn verify_passes_through_serve_and_names_a_stale_edge() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (port, stale_port) = (free_port(), free_port());
    let config = format!(
        r#"site = "site"

[env.prod]
store = "file://{store}"
url = "http://127.0.0.1:{port}"

# The same environment, seen through an edge that may hold old copies.
[env.edge]
store = "file://{store}"
url = "http://127.0.0.1:{stale_port}"

[[rules]]
match = "**.html"
cache_control = "no-cache"

[edge]
headers = {{ "Strict-Transport-Security" = "max-age=31536000", "X-Content-Type-Options" = "nosniff" }}
spa_fallback = "index.html"
not_found = "404.html"
redirects = [{{ from = "/old", to = "/new", status = 301 }}]
compress = true
"#,
        store = store.display()
    );
    let p = Project::with_config(tmp.path(), &config);
    p.write("index.html", &"<h1>v1</h1>".repeat(100))
        .write("404.html", "not here")
        .write("docs/index.html", "docs v1")
        .write("assets/app.js", "console.log(1)");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _origin = serve(&p, "prod", port);

    let first = p
        .cmd(&["verify", "prod", "--timeout", "5", "--json"])
        .expect(0)
        .json();
    assert_eq!(first["failed"], serde_json::json!([]));
    assert!(first["passed"].as_u64().unwrap() >= 8, "{first}");
    let recorded = store.join(format!(
        ".driftless/verifications/{}.json",
        first["release"].as_str().unwrap()
    ));
    assert!(recorded.exists(), "the verification was not recorded");

    // The edge rules, over the wire.
    let (status, head, _) = get(port, "/old", "");
    assert_eq!(status, 301);
    assert!(head.contains("location: /new"), "{head}");
    assert_eq!(
        get(port, "/.driftless/HEAD", "").0,
        404,
        "the state prefix is served"
    );
    assert_eq!(get(port, "/.driftless-store/lock", "").0, 404);
    let (status, head, body) = get(port, "/some/client/route", "");
    assert_eq!((status, body.len()), (200, 1100), "SPA fallback");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert_eq!(get(port, "/missing.png", "").0, 404);
    let (_, head, _) = get(port, "/", "Accept-Encoding: gzip\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");

    // A stale edge: a copy of v1 keeps being served while v2 goes live.
    let copy = tmp.path().join("edge-copy");
    std::fs::create_dir_all(copy.join("docs")).unwrap();
    std::fs::create_dir_all(copy.join("assets")).unwrap();
    for k in ["index.html", "404.html", "docs/index.html", "assets/app.js"] {
        std::fs::copy(tmp.path().join("site").join(k), copy.join(k)).unwrap();
    }
    let edge = serve(&p, copy.to_str().unwrap(), stale_port);
    p.write("index.html", &"<h1>v2</h1>".repeat(100));
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    p.cmd(&["verify", "prod", "--timeout", "5"]).expect(0);
    p.cmd(&["verify", "edge", "--timeout", "3"])
        .expect(1)
        .mentions(&[
            "still serving old bytes",
            "/index.html",
            "driftless invalidate edge",
        ]);

    // Purge the edge: it serves the new bytes, and verify passes.
    std::fs::copy(tmp.path().join("site/index.html"), copy.join("index.html")).unwrap();
    p.cmd(&["verify", "edge", "--timeout", "5"])
        .expect(0)
        .mentions(&["checks passed"]);
    drop(edge);
}

#[test]
fn precompressed_assets_behind_basic_auth() {
    use flate2::read::GzDecoder;

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let port = free_port();
    let config = format!(
        r#"site = "site"

[env.preview]
store = "file://{store}"
url = "http://127.0.0.1:{port}"

[[rules]]
match = "**.css"
precompress = "gzip"
cache_control = "public, max-age=31536000, immutable"

[[rules]]
match = "**.js"
precompress = "br"

[edge]
basic_auth = {{ user = "team", password_env = "PREVIEW_PASSWORD" }}
"#,
        store = store.display()
    );
    let p = Project::with_config(tmp.path(), &config)
        .envs(vec![("PREVIEW_PASSWORD", "open sesame".into())]);
    let css = "body { color: #123456; }\n".repeat(200);
    let js = "console.log('driftless');\n".repeat(200);
    p.write("index.html", "<link rel=stylesheet href=site.css>")
        .write("site.css", &css)
        .write("app.js", &js);
    p.cmd(&["deploy", "preview", "--yes"]).expect(0);

    // The store holds the compressed bytes, and the manifest hashes them as uploaded.
    let stored = std::fs::read(store.join("site.css")).unwrap();
    assert!(stored.len() < css.len() / 4, "not compressed: {}", stored.len());
    let mut plain = String::new();
    GzDecoder::new(&stored[..]).read_to_string(&mut plain).unwrap();
    assert_eq!(plain, css);
    let log = p.cmd(&["log", "preview", "--json"]).expect(0).json();
    let release = log["releases"][0]["id"].as_str().unwrap().to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.join(format!(".driftless/releases/{release}.json"))).unwrap(),
    )
    .unwrap();
    let entry = &manifest["manifest"]["site.css"];
    assert_eq!(entry["content_encoding"], "gzip", "{entry}");
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        driftless::scan::hash_bytes(&stored)
    );
    let mut unbrotli = Vec::new();
    brotli::BrotliDecompress(
        &mut &std::fs::read(store.join("app.js")).unwrap()[..],
        &mut unbrotli,
    )
    .unwrap();
    assert_eq!(unbrotli, js.as_bytes());

    // Compression is done once: a second plan reuses the compressed copies.
    let cached: Vec<_> = std::fs::read_dir(tmp.path().join(".driftless/cache/compressed"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(cached.len(), 4, "a copy and a checksum per compressed file");
    p.cmd(&["deploy", "preview", "--yes"])
        .expect(0)
        .mentions(&["Nothing to do"]);
    let again: Vec<_> = std::fs::read_dir(tmp.path().join(".driftless/cache/compressed"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(cached, again, "compressed again");

    // Through the preview edge: anonymous visitors are refused, the team gets the
    // stored encoding; verify authenticates and checks both.
    let _edge = serve(&p, "preview", port);
    let (status, head, _) = get(port, "/", "");
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    let auth = "Authorization: Basic dGVhbTpvcGVuIHNlc2FtZQ==\r\n"; // team:open sesame
    let (status, head, body) = get(port, "/site.css", &format!("{auth}Accept-Encoding: gzip\r\n"));
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    assert_eq!(body, stored);
    let report = p
        .cmd(&["verify", "preview", "--timeout", "5", "--json"])
        .expect(0)
        .json();
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    p.cmd(&["verify", "preview", "--timeout", "5"])
        .env("PREVIEW_PASSWORD", "wrong")
        .expect(1)
        .mentions(&["HTTP 401"]);
}
