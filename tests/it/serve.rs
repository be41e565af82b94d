//! `serve` applies the edge rules over real HTTP; `verify` passes through it after a
//! deploy, and names the paths a stale edge still serves until it is purged.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::Project;

/// A `driftless serve` process, stopped when dropped.
pub(crate) struct Server(std::process::Child);

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl From<std::process::Child> for Server {
    fn from(child: std::process::Child) -> Self {
        Self(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn serve(p: &Project, target: &str, port: u16) -> Server {
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
pub(crate) fn get(port: u16, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    get_from(port, "localhost", path, extra)
}

/// [`get`] with this `Host` header.
pub(crate) fn get_from(port: u16, host: &str, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n").unwrap();
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
    // The same environment seen through that edge: its own project (one config may not
    // name one store twice), the same store, the edge's url.
    let through_edge = Project::with_config(
        &tmp.path().join("through-edge"),
        &config.replace(
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{stale_port}"),
        ),
    );
    through_edge
        .cmd(&["verify", "prod", "--timeout", "3"])
        .expect(1)
        .mentions(&["still serving old bytes", "/index.html", "purge"]);

    // Purge the edge: it serves the new bytes, and verify passes.
    std::fs::copy(tmp.path().join("site/index.html"), copy.join("index.html")).unwrap();
    through_edge
        .cmd(&["verify", "prod", "--timeout", "5"])
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
    let stored = std::fs::read(crate::util::served_path(&store, "site.css")).unwrap();
    assert!(
        stored.len() < css.len() / 4,
        "not compressed: {}",
        stored.len()
    );
    let mut plain = String::new();
    GzDecoder::new(&stored[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, css);
    let log = p.cmd(&["log", "preview", "--json"]).expect(0).json();
    let release = log["releases"][0]["id"].as_str().unwrap().to_owned();
    // Release records are gzipped JSON.
    let mut record = String::new();
    GzDecoder::new(
        &std::fs::read(store.join(format!(".driftless/releases/{release}.json"))).unwrap()[..],
    )
    .read_to_string(&mut record)
    .unwrap();
    // A checkpoint: `entries` rows of [key, sha256, size, header set, etag].
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let row = record["entries"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "site.css")
        .unwrap_or_else(|| panic!("no site.css in {record}"));
    let headers = &record["entries"]["headers"][row[3].as_u64().unwrap() as usize];
    assert_eq!(headers[2], "gzip", "{headers}");
    assert_eq!(
        row[1].as_str().unwrap(),
        driftless::digest::hash_bytes(&stored)
    );
    let mut unbrotli = Vec::new();
    brotli::BrotliDecompress(
        &mut &std::fs::read(crate::util::served_path(&store, "app.js")).unwrap()[..],
        &mut unbrotli,
    )
    .unwrap();
    assert_eq!(unbrotli, js.as_bytes());

    // `pull` gives back the sources; deployed from them, nothing changes.
    let pulled = tmp.path().join("pulled");
    p.cmd(&["pull", "preview", pulled.to_str().unwrap()])
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(pulled.join("site.css")).unwrap(),
        css
    );
    assert_eq!(std::fs::read_to_string(pulled.join("app.js")).unwrap(), js);

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
    let (status, head, body) = get(
        port,
        "/site.css",
        &format!("{auth}Accept-Encoding: gzip\r\n"),
    );
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    assert_eq!(body, stored);
    let report = p
        .cmd(&["verify", "preview", "--timeout", "5", "--json"])
        .expect(0)
        .json();
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    let wrong = p
        .cmd(&["verify", "preview", "--timeout", "5"])
        .env("PREVIEW_PASSWORD", "wrong")
        .expect(1);
    wrong.mentions(&["HTTP 401"]);
    // Regression (issue 20.19): a short password is accepted, with a warning.
    wrong.mentions(&["PREVIEW_PASSWORD is 5 character(s); use 12 or more"]);

    // A diff of a precompressed file reads as text, not as gzip bytes.
    p.write("site.css", "body { color: red; }\n");
    p.cmd(&["diff", "preview", "site.css"])
        .expect(0)
        .mentions(&["-body { color: #123456; }", "+body { color: red; }"]);
}

/// nginx, Chromium and playwright-core, installed by the project's own script (once per
/// test run). Returns the directory holding `node_modules/playwright-core`. A missing
/// dependency fails the test; nothing is skipped.
pub(crate) fn web_deps() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        PathBuf::from(
            crate::util::script_vars("web-test-deps.sh")
                .remove("NODE_DIR")
                .expect("NODE_DIR= line"),
        )
    })
}

/// nginx with `proxy_cache` in front of `origin`, stopped when dropped (one process,
/// no master/worker split, so killing it leaves nothing behind). A request with
/// `X-Purge: 1` bypasses the cache and stores the fresh answer (open-source nginx has no
/// purge command; this is the usual refresh).
struct CachingProxy {
    child: std::process::Child,
}

impl CachingProxy {
    fn start(dir: &Path, port: u16, origin: u16) -> Self {
        web_deps();
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        let root = running_as_root();
        let conf = format!(
            r#"{user}
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache keys_zone=edge:1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{origin};
            proxy_cache edge;
            proxy_cache_valid 200 10m;
            proxy_cache_bypass $http_x_purge;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"#,
            user = if root { "user root;" } else { "" },
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (installed by scripts/web-test-deps.sh)");
        let proxy = Self { child };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }
}

impl Drop for CachingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn verify_names_what_an_nginx_cache_still_serves_until_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let (origin, edge) = (free_port(), free_port());
    let config = format!(
        r#"site = "site"

[env.prod]
store = "file://{store}"
url = "http://127.0.0.1:{edge}"

[edge]
headers = {{ "X-Content-Type-Options" = "nosniff" }}
"#,
        store = store.display()
    );
    let p = Project::with_config(tmp.path(), &config);
    p.write("index.html", "<h1>v1</h1>")
        .write("docs/index.html", "docs v1")
        .write("assets/app.js", "console.log(1)");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _origin = serve(&p, "prod", origin);
    let _nginx = CachingProxy::start(&tmp.path().join("nginx"), edge, origin);

    // Through the cache: passes, and leaves v1 cached.
    p.cmd(&["verify", "prod", "--timeout", "5"]).expect(0);
    let (_, head, _) = get(edge, "/index.html", "");
    assert!(head.contains("x-cache: hit"), "not cached by nginx: {head}");

    // v2 goes live at the origin; the cache keeps serving v1 for the changed paths.
    p.write("index.html", "<h1>v2</h1>")
        .write("docs/index.html", "docs v2");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let failed = p
        .cmd(&["verify", "prod", "--timeout", "3", "--json"])
        .expect(1);
    let report = failed.json();
    let mut stale: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["detail"]
                .as_str()
                .unwrap()
                .starts_with("serves old bytes")
        })
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    stale.sort_unstable();
    assert_eq!(
        stale,
        ["/", "/docs/", "/docs/index.html", "/index.html"],
        "{report}"
    );
    p.cmd(&["verify", "prod", "--timeout", "2"])
        .expect(1)
        .mentions(&["still serving old bytes", "/index.html", "/docs/"]);

    // Purge exactly the paths verify named: it passes.
    for path in stale {
        let (status, head, _) = get(edge, path, "X-Purge: 1\r\n");
        assert_eq!(status, 200, "{path}: {head}");
    }
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["checks passed"]);
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            // A store's live pointer (a deploy of the example in this checkout).
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), target).unwrap();
        } else if ft.is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn the_example_site_in_headless_chromium() {
    let node_dir = web_deps();
    let tmp = tempfile::tempdir().unwrap();
    let example = tmp.path().join("example");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &example,
    );
    let _ = std::fs::remove_dir_all(example.join(".driftless"));
    let p = Project::at(&example);
    p.cmd(&["deploy", "local", "--yes"]).expect(0);
    let port = free_port();
    let _server = serve(&p, "local", port);

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-example.png");
    let _ = std::fs::remove_file(&shot);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/serve-example.cjs"
    );
    let out = Command::new("node")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&shot)
        .env("NODE_DIR", node_dir)
        .output()
        .expect("node");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    // The site renders: its stylesheet applied and its module script ran.
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(seen["h1"], "Example site", "{seen}");
    assert_eq!(seen["border"], "solid", "style.css not applied: {seen}");
    assert_eq!(seen["clicked"], "Thanks!", "app.js did not run: {seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    // The edge's security headers reach the browser.
    let headers = &seen["headers"];
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    assert_eq!(headers["content-security-policy"], "default-src 'self'");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // A deep link of the single-page app loads through the fallback.
    assert_eq!(seen["deepStatus"], 200, "{seen}");
    assert_eq!(seen["route"], "Route: /account/orders", "{seen}");
    // The screenshot is saved for a human to look at.
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{}",
        shot.display()
    );
    println!("screenshot: {}", shot.display());
}

/// Issue 9, items 2 and 10: serve and verify follow real web servers for directories,
/// and a key that merely ends in `index.html` is not a directory index.
#[test]
fn directories_redirect_ranges_and_index_like_names() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let config = format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:1\"\n",
        store.display()
    );
    let p = Project::with_config(tmp.path(), &config);
    p.write("index.html", "home")
        .write("docs/index.html", "<a href=\"page.html\">page</a>")
        .write("docs/page.html", "page")
        .write("docs/error-index.html", "rustdoc error index")
        .write("syntax-index.html", "mdbook syntax index")
        .write("big.txt", &"0123456789".repeat(100));
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);

    // --port 0 picks a free port and says which; --json says it as data.
    let mut child = p.cmd(&["serve", "prod", "--port", "0", "--json"]).spawn();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let _server = Server(child);
    let doc: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let port = doc["port"].as_u64().unwrap() as u16;
    assert_ne!(port, 0);
    assert_eq!(doc["url"], format!("http://127.0.0.1:{port}/"));

    // /docs → 301 /docs/ (query kept), as S3 website endpoints and nginx answer.
    let (status, head, _) = get(port, "/docs?lang=en", "");
    assert_eq!(status, 301, "{head}");
    assert!(head.contains("location: /docs/?lang=en"), "{head}");
    assert_eq!(get(port, "/docs/", "").2, b"<a href=\"page.html\">page</a>");
    assert_eq!(
        get(port, "/docs/error-index.html", "").2,
        b"rustdoc error index"
    );
    assert_eq!(get(port, "/docs/error-", "").0, 404);

    // Range requests.
    let (status, head, body) = get(port, "/big.txt", "Range: bytes=10-19\r\n");
    assert_eq!(status, 206, "{head}");
    assert!(head.contains("content-range: bytes 10-19/1000"), "{head}");
    assert_eq!(body, b"0123456789");
    assert_eq!(get(port, "/big.txt", "Range: bytes=5000-\r\n").0, 416);
    // Regression (issue 34, smaller): a suffix longer than the body, or a last position
    // past it, selects what there is (RFC 9110 §14.1.2), as nginx answers; they were 416.
    let (status, head, body) = get(port, "/big.txt", "Range: bytes=-999999999\r\n");
    assert_eq!(status, 206, "{head}");
    assert!(head.contains("content-range: bytes 0-999/1000"), "{head}");
    assert_eq!(body.len(), 1000);
    let (status, head, body) = get(port, "/big.txt", "Range: bytes=990-5000\r\n");
    assert_eq!(status, 206, "{head}");
    assert!(head.contains("content-range: bytes 990-999/1000"), "{head}");
    assert_eq!(body.len(), 10);
    let (status, _, body) = get(port, "/big.txt", "Range: bytes=-10\r\n");
    assert_eq!((status, body.len()), (206, 10));

    // verify passes on a site with index-like names, and lists what it checked.
    std::fs::write(
        tmp.path().join("driftless.toml"),
        config.replace("127.0.0.1:1\"", &format!("127.0.0.1:{port}\"")),
    )
    .unwrap();
    let v = p.cmd(&["verify", "prod", "--timeout", "5"]).expect(0);
    v.mentions(&["/docs/error-index.html", "/docs/", "/docs"]);
    let j = p
        .cmd(&["verify", "prod", "--timeout", "5", "--json"])
        .expect(0)
        .json();
    let checks = j["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks listed: {j}"));
    assert!(
        checks
            .iter()
            .any(|c| c["path"] == "/docs" && c["ok"] == true),
        "{j}"
    );
    assert!(!checks.iter().any(|c| c["path"] == "/docs/error-"), "{j}");
}

/// Issue 9, item 14: a failed connection is named, polling stops at once, and
/// `invalidate` is suggested only for an environment with a CDN.
#[test]
fn verify_names_a_refused_connection_and_stops_early() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let port = free_port();
    let p = Project::new(
        tmp.path(),
        &store,
        &format!("url = \"http://127.0.0.1:{port}\"\n"),
    );
    p.write("index.html", "x");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let out = p.cmd(&["verify", "prod", "--timeout", "600"]).expect(1);
    out.mentions(&["connection refused", &format!("127.0.0.1:{port}")]);
    assert!(!out.all().contains("invalidate"), "{}", out.all());
    assert!(!out.all().contains("after 600s"), "{}", out.all());
}
